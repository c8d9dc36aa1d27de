//! Every (phase, event) pair of the transition table, and its edges.

use super::*;
use crate::config::Config;
use core::time::Duration;

const T0: u64 = 1_000;

fn limits(threshold: u32, half_open_max: u32, timeout_ms: u64) -> ValidConfig {
    Config { threshold, timeout: Duration::from_millis(timeout_ms), half_open_max }.validate().unwrap()
}

/// The fixed backoff with `limits`.
fn fixed(limits: &ValidConfig) -> Policy<'_> {
    Policy { limits, schedule: &None }
}

fn at(ms: u64) -> impl FnMut() -> Timestamp {
    move || Timestamp::from_millis(ms)
}

/// A `now` that fails the test if a branch that should not depend on time
/// asks for it.
fn never() -> impl FnMut() -> Timestamp {
    || panic!("this transition must not read the clock")
}

fn closed(count: u32) -> StateWord {
    StateWord::INITIAL.enter(Stored::Closed, Timestamp::from_millis(T0)).with_count(count)
}

/// An open word whose deadline is `ms`.
fn open_until(ms: u64) -> StateWord {
    StateWord::INITIAL.enter(Stored::Open, Timestamp::from_millis(ms))
}

fn half_open(count: u32, since: u64) -> StateWord {
    StateWord::INITIAL.enter(Stored::HalfOpen, Timestamp::from_millis(since)).with_count(count)
}

fn entered(from: StateWord, phase: Stored, ms: u64) -> StateWord {
    from.enter(phase, Timestamp::from_millis(ms))
}

#[test]
fn closed_acquire_admits_without_a_write_or_a_clock_read() {
    let word = closed(2);
    let step = acquire(word, fixed(&limits(5, 1, 100)), &mut never());
    assert_eq!(step.next, word);
    assert_eq!(step.decision, Ok(Ticket::issued_in(word)));
}

#[test]
fn closed_success_resets_the_streak_and_writes_only_when_there_is_one() {
    let l = limits(5, 1, 100);
    let step = record(closed(3), Ticket::issued_in(closed(3)), Outcome::Success, fixed(&l), &mut never());
    assert_eq!((step.next, step.decision), (closed(0), Recorded::Applied));
    let step = record(closed(0), Ticket::issued_in(closed(0)), Outcome::Success, fixed(&l), &mut never());
    assert_eq!(step.next, closed(0), "a healthy success must not write");
}

#[test]
fn closed_failure_below_threshold_counts_without_a_clock_read() {
    let step =
        record(closed(3), Ticket::issued_in(closed(0)), Outcome::Failure, fixed(&limits(5, 1, 100)), &mut never());
    assert_eq!((step.next, step.decision), (closed(4), Recorded::Applied));
}

#[test]
fn closed_failure_reaching_threshold_opens_until_now_plus_the_timeout() {
    let step =
        record(closed(4), Ticket::issued_in(closed(4)), Outcome::Failure, fixed(&limits(5, 1, 100)), &mut at(T0 + 7));
    assert_eq!(step.next, entered(closed(4), Stored::Open, T0 + 107));
    assert_eq!(step.next.phase(), State::Open);
    assert_eq!(step.next.count(), 0, "a fixed backoff keeps no streak");
    assert_eq!(
        (step.decision, step.reason, step.at),
        (Recorded::Applied, Some(Reason::ThresholdReached), at(T0 + 7)())
    );
}

#[test]
fn threshold_one_opens_on_the_first_failure() {
    let step =
        record(closed(0), Ticket::issued_in(closed(0)), Outcome::Failure, fixed(&limits(1, 1, 100)), &mut at(T0));
    assert_eq!(step.next.phase(), State::Open);
}

#[test]
fn largest_threshold_counts_to_the_top_of_the_field() {
    let l = limits(Config::MAX_THRESHOLD, 1, 100);
    let below = closed(Config::MAX_THRESHOLD - 2);
    let step = record(below, Ticket::issued_in(below), Outcome::Failure, fixed(&l), &mut never());
    assert_eq!(step.next.count(), Config::MAX_THRESHOLD - 1);
    let step = record(step.next, Ticket::issued_in(below), Outcome::Failure, fixed(&l), &mut at(T0));
    assert_eq!(step.next.phase(), State::Open);
}

#[test]
fn closed_ignored_changes_nothing() {
    let step =
        record(closed(2), Ticket::issued_in(closed(2)), Outcome::Ignored, fixed(&limits(5, 1, 100)), &mut never());
    assert_eq!((step.next, step.decision), (closed(2), Recorded::Applied));
}

#[test]
fn open_rejects_until_the_deadline_and_says_how_long_is_left() {
    let l = limits(5, 1, 100);
    let word = open_until(T0 + 100);
    let step = acquire(word, fixed(&l), &mut at(T0 + 99));
    assert_eq!((step.next, step.decision), (word, Err(Rejected::after_ticks(1))));
    let step = acquire(word, fixed(&l), &mut at(T0));
    assert_eq!(step.decision, Err(Rejected::after_ticks(100)));
}

#[test]
fn open_acquire_at_the_deadline_is_the_first_probe() {
    let word = open_until(T0 + 100);
    let step = acquire(word, fixed(&limits(5, 1, 100)), &mut at(T0 + 100));
    let expected = entered(word, Stored::HalfOpen, T0 + 100).with_count(1);
    assert_eq!((step.next, step.decision), (expected, Ok(Ticket::issued_in(expected))));
    assert_eq!(step.reason, Some(Reason::TimeoutElapsed));
}

#[test]
fn open_acquire_with_now_before_the_opening_waits_for_the_deadline() {
    // The clock stepped back 1 ms: the open lasts 1 ms longer, and says so.
    let step = acquire(open_until(T0 + 100), fixed(&limits(5, 1, 100)), &mut at(T0 - 1));
    assert_eq!(step.decision, Err(Rejected::after_ticks(101)));
}

#[test]
fn timeout_of_one_tick() {
    let l = limits(5, 1, 1);
    assert!(acquire(open_until(T0 + 1), fixed(&l), &mut at(T0)).decision.is_err());
    assert!(acquire(open_until(T0 + 1), fixed(&l), &mut at(T0 + 1)).decision.is_ok());
}

#[test]
fn largest_timeout_is_measured_exactly() {
    let max = crate::word::MAX_TIMEOUT_TICKS;
    let l = limits(1, 1, max);
    let step = record(closed(0), Ticket::issued_in(closed(0)), Outcome::Failure, fixed(&l), &mut at(T0));
    assert!(acquire(step.next, fixed(&l), &mut at(T0 + max - 1)).decision.is_err());
    assert!(acquire(step.next, fixed(&l), &mut at(T0 + max)).decision.is_ok());
}

#[test]
fn the_largest_timeout_stays_passed_for_at_least_its_own_length() {
    let max = crate::word::MAX_TIMEOUT_TICKS;
    let l = limits(5, 1, max);
    let word = open_until(T0 + max);
    // Every time from the deadline to a timeout after it finds it passed...
    for late in [max, max + 1, 2 * max - 1] {
        assert!(acquire(word, fixed(&l), &mut at(T0 + late)).decision.is_ok(), "{late} ms after opening");
    }
    // ...and only more than 2^37 ms past the deadline does the word read it as ahead again.
    assert!(acquire(word, fixed(&l), &mut at(T0 + max + (1 << 37))).decision.is_ok());
    assert!(acquire(word, fixed(&l), &mut at(T0 + max + (1 << 37) + 1)).decision.is_err());
}

#[test]
fn deadline_across_the_time_field_wrap() {
    let l = limits(5, 1, 100);
    let wrap = 1u64 << 38;
    let word = open_until(wrap + 70);
    assert!(acquire(word, fixed(&l), &mut at(wrap + 69)).decision.is_err());
    assert!(acquire(word, fixed(&l), &mut at(wrap + 70)).decision.is_ok());
    assert!(acquire(word, fixed(&l), &mut at(wrap - 30)).decision.is_err());
}

#[test]
fn open_drops_every_result() {
    let l = limits(5, 1, 100);
    let word = open_until(T0);
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Ignored] {
        let step = record(word, Ticket::issued_in(closed(0)), outcome, fixed(&l), &mut never());
        assert_eq!((step.next, step.decision), (word, Recorded::Stale));
        // Even a ticket that matches the open generation (only an alias could).
        let step = record(word, Ticket::issued_in(word), outcome, fixed(&l), &mut never());
        assert_eq!((step.next, step.decision), (word, Recorded::Stale));
    }
}

#[test]
fn half_open_admits_up_to_the_limit_without_a_clock_read() {
    let l = limits(5, 2, 100);
    let step = acquire(half_open(1, T0), fixed(&l), &mut never());
    assert_eq!(step.next, half_open(2, T0));
    assert_eq!(step.decision, Ok(Ticket::issued_in(half_open(1, T0))));
}

#[test]
fn full_half_open_rejects_until_the_timeout() {
    let l = limits(5, 2, 100);
    let step = acquire(half_open(2, T0), fixed(&l), &mut at(T0 + 40));
    assert_eq!((step.next, step.decision), (half_open(2, T0), Err(Rejected::after_ticks(60))));
}

#[test]
fn full_half_open_starts_over_after_the_timeout_and_old_probes_go_stale() {
    let l = limits(5, 2, 100);
    let hung = half_open(2, T0);
    let step = acquire(hung, fixed(&l), &mut at(T0 + 100));
    let fresh = entered(hung, Stored::HalfOpen, T0 + 100).with_count(1);
    assert_eq!((step.next, step.decision), (fresh, Ok(Ticket::issued_in(fresh))));
    let late = record(fresh, Ticket::issued_in(hung), Outcome::Failure, fixed(&l), &mut never());
    assert_eq!((late.next, late.decision), (fresh, Recorded::Stale));
}

#[test]
fn largest_half_open_max_fills_the_count_field() {
    let l = limits(5, Config::MAX_HALF_OPEN, 100);
    let almost = half_open(Config::MAX_HALF_OPEN - 1, T0);
    let step = acquire(almost, fixed(&l), &mut never());
    assert_eq!(step.next.count(), Config::MAX_HALF_OPEN);
    assert!(acquire(step.next, fixed(&l), &mut at(T0)).decision.is_err());
}

#[test]
fn half_open_success_closes_at_now() {
    let word = half_open(2, T0);
    let step = record(word, Ticket::issued_in(word), Outcome::Success, fixed(&limits(5, 2, 100)), &mut at(T0 + 3));
    assert_eq!((step.next, step.decision), (entered(word, Stored::Closed, T0 + 3), Recorded::Applied));
    assert_eq!(step.next.count(), 0);
}

#[test]
fn half_open_failure_reopens_until_now_plus_the_timeout() {
    let word = half_open(1, T0);
    let step = record(word, Ticket::issued_in(word), Outcome::Failure, fixed(&limits(5, 1, 100)), &mut at(T0 + 3));
    assert_eq!((step.next, step.decision), (entered(word, Stored::Open, T0 + 103), Recorded::Applied));
    assert_eq!(step.reason, Some(Reason::ProbeFailed));
}

#[test]
fn half_open_ignored_frees_a_slot_without_a_clock_read() {
    let word = half_open(2, T0);
    let step = record(word, Ticket::issued_in(word), Outcome::Ignored, fixed(&limits(5, 2, 100)), &mut never());
    assert_eq!((step.next, step.decision), (half_open(1, T0), Recorded::Applied));
}

#[test]
fn stale_tickets_change_nothing_in_any_phase() {
    let l = limits(3, 2, 100);
    let closed_era = closed(0);
    let after_reopen = entered(entered(closed_era, Stored::Open, T0), Stored::HalfOpen, T0 + 100).with_count(1);
    let reclosed = entered(after_reopen, Stored::Closed, T0 + 150);
    for word in [after_reopen, reclosed, reclosed.with_count(2)] {
        for outcome in [Outcome::Success, Outcome::Failure, Outcome::Ignored] {
            let step = record(word, Ticket::issued_in(closed_era), outcome, fixed(&l), &mut never());
            assert_eq!((step.next, step.decision), (word, Recorded::Stale), "{word:?} {outcome:?}");
        }
    }
}

#[test]
fn trip_and_reset_start_a_new_epoch_from_every_phase() {
    let l = limits(5, 1, 100);
    for word in [closed(2), open_until(T0), half_open(1, T0)] {
        let tripped = trip(word, fixed(&l), &mut at(T0 + 5));
        assert_eq!(tripped.next, entered(word, Stored::Open, T0 + 105));
        assert_eq!(tripped.reason, (word.phase() != State::Open).then_some(Reason::Tripped));
        let cleared = reset(word, &mut at(T0 + 5));
        assert_eq!(cleared.next, entered(word, Stored::Closed, T0 + 5));
        assert_eq!(cleared.reason, (word.phase() != State::Closed).then_some(Reason::Reset));
        assert_ne!(tripped.next.epoch(), word.epoch());
        assert_eq!(cleared.next.count(), 0);
    }
}

#[test]
fn observe_reports_half_open_once_the_deadline_has_passed_and_held_open_as_open() {
    assert_eq!(observe(open_until(T0 + 100), &mut at(T0 + 99)), State::Open);
    assert_eq!(observe(open_until(T0 + 100), &mut at(T0 + 100)), State::HalfOpen);
    assert_eq!(observe(closed(4), &mut never()), State::Closed);
    assert_eq!(observe(half_open(1, T0), &mut never()), State::HalfOpen);
    assert_eq!(observe(closed(0).enter(Stored::Isolated, Timestamp::from_millis(T0)), &mut never()), State::Open);
}

/// Every word of a small grid: each phase, counts at the edges, two stamps.
fn grid() -> Vec<StateWord> {
    let mut words = Vec::new();
    for count in [0, 1, 2, 4] {
        for since in [T0, T0 + 50] {
            words.extend([
                closed(count),
                half_open(count, since),
                open_until(since).with_count(count),
                open_until(since).enter(Stored::Isolated, Timestamp::from_millis(since)),
            ]);
        }
    }
    words
}

#[test]
fn the_read_only_acquire_agrees_with_the_full_step_and_covers_closed_words() {
    let l = limits(5, 2, 100);
    for word in grid() {
        match acquire_read_only(word) {
            Some(ticket) => {
                let step = acquire(word, fixed(&l), &mut never());
                assert_eq!((step.next, step.decision), (word, Ok(ticket)), "{word:?}");
            }
            None => assert_ne!(word.phase(), State::Closed, "a closed word must take the read-only path"),
        }
    }
}

#[test]
fn the_read_only_record_agrees_with_the_full_step_and_covers_the_healthy_success() {
    let l = limits(5, 2, 100);
    let mut taken = 0;
    for word in grid() {
        for issued_in in grid() {
            for outcome in [Outcome::Success, Outcome::Failure, Outcome::Ignored] {
                let ticket = Ticket::issued_in(issued_in);
                if let Some(recorded) = record_read_only(word, ticket, outcome) {
                    taken += 1;
                    let step = record(word, ticket, outcome, fixed(&l), &mut never());
                    assert_eq!((step.next, step.decision), (word, recorded), "{word:?} {issued_in:?} {outcome:?}");
                }
            }
        }
    }
    assert!(record_read_only(closed(0), Ticket::issued_in(closed(0)), Outcome::Success).is_some());
    assert!(record_read_only(closed(3), Ticket::issued_in(closed(0)), Outcome::Ignored).is_some());
    assert!(taken > 0);
}
