//! Loom models of the failure-rate window: per-thread rings summed by the
//! thread that records a failure, racing each other, a success and a trip.
//! Run with the same command as `models.rs` (`--cfg loom`, which also
//! shrinks the window to two buckets so that a sum's loads stay few).
//!
//! Each model drives the core as the facade does: record the result, add it
//! to the thread's own ring, and after a failure sum every ring
//! ([`RateWindow::failed`]) and open the breaker with
//! [`CoreBreaker::open_on_rate_at`] if the rule says so. The consecutive rule
//! is off, so only the window opens the breaker. Every execution is checked
//! against the model's invariant, and every case the model names must show
//! up in some execution.

#![cfg(loom)]

use std::sync::Mutex;
use std::time::Duration;

use breakerbox_core::__private::{RateRule, RateWindow, Ring};
use breakerbox_core::quanta::Clock;
use breakerbox_core::{Config, CoreBreaker, FailureRate, Outcome, Recorded, State, Ticket, Timestamp};
use loom::sync::Arc;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A closed breaker with only the window to open it, and a window over
/// `min_calls` calls at `ratio` (20 ms: two buckets of 10 ms under loom).
fn setup(ratio: f64, min_calls: u32) -> (CoreBreaker, RateWindow) {
    let (clock, _mock) = Clock::mock();
    let config = Config { threshold: 1, timeout: Duration::from_millis(100), half_open_max: 1 };
    let breaker = CoreBreaker::builder(config).clock(clock).consecutive_failures(false).build().unwrap();
    let rule = RateRule::new(&FailureRate::new(ratio, min_calls, Duration::from_millis(20))).unwrap();
    (breaker, RateWindow::new(rule))
}

/// What a reported result did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reported {
    /// The breaker had moved on: the result was stale.
    Stale,
    /// Counted; a failure's sum did not reach the rule.
    Counted,
    /// A failure's sum reached the rule, but the breaker had moved on when
    /// it tried to open it.
    TooLate,
    /// A failure's sum reached the rule and opened the breaker.
    Opened,
}

/// A result reported at `now` as the facade reports it.
fn report(
    breaker: &CoreBreaker,
    window: &RateWindow,
    rings: &[Ring; 2],
    own: usize,
    ticket: Ticket,
    failed: bool,
    now: Timestamp,
) -> Reported {
    let outcome = if failed { Outcome::Failure } else { Outcome::Success };
    if breaker.record_at(ticket, outcome, now) != Recorded::Applied {
        return Reported::Stale;
    }
    match window.record(&rings[own], ticket, now, failed, rings.iter()) {
        true if breaker.open_on_rate_at(ticket, now) => Reported::Opened,
        true => Reported::TooLate,
        false => Reported::Counted,
    }
}

/// Runs `model` under loom and checks that every case in `cases` was
/// reached and no other.
fn explore(cases: &[&str], model: impl Fn() -> String + Sync + Send + 'static) {
    let reached = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = std::sync::Arc::clone(&reached);
    loom::model::Builder::new().check(move || {
        let case = model();
        let mut names = sink.lock().unwrap();
        if !names.contains(&case) {
            names.push(case);
        }
    });
    let names = reached.lock().unwrap();
    let unknown: Vec<_> = names.iter().filter(|name| !cases.contains(&name.as_str())).collect();
    assert!(unknown.is_empty(), "executions fell into cases the model does not name: {unknown:?}");
    let unreached: Vec<_> = cases.iter().filter(|&&case| !names.iter().any(|name| name == case)).collect();
    assert!(unreached.is_empty(), "no execution fell into these cases: {unreached:?}");
}

/// Two failures on two threads, at 9 and 10 ms (either side of a bucket
/// boundary), a window that opens at two failed calls: whichever failure is
/// summed last sees both and reads the window where both are, so the
/// breaker always opens, exactly once. Backs the claim in `RateWindow`'s
/// orderings: failures are published through one read-modify-write
/// (`AcqRel`, carrying the latest failure's time) before the sum. With it
/// made `Relaxed`, or with each sum read at its own failure's time, loom
/// finds an execution where each sum misses the other's failure and the
/// breaker stays closed.
#[test]
fn concurrent_failures_are_never_both_missed() {
    explore(&["both sums saw both", "the earlier sum missed the later failure"], || {
        let (breaker, window) = setup(1.0, 2);
        let tickets = [breaker.acquire_at(at(0)).unwrap(), breaker.acquire_at(at(0)).unwrap()];
        let shared = Arc::new((breaker, window, [Ring::new(), Ring::new()]));
        let threads: Vec<_> = (0..2)
            .map(|own| {
                let shared = Arc::clone(&shared);
                loom::thread::spawn(move || {
                    let (breaker, window, rings) = &*shared;
                    report(breaker, window, rings, own, tickets[own], true, at(9 + own as u64))
                })
            })
            .collect();
        let reported: Vec<Reported> = threads.into_iter().map(|thread| thread.join().unwrap()).collect();
        let (breaker, ..) = &*shared;
        assert_eq!(breaker.state_at(at(10)), State::Open, "two failures of two calls must open: {reported:?}");
        assert_eq!(breaker.opens(), 1);
        let opened = reported.iter().filter(|&&r| r == Reported::Opened).count();
        assert_eq!(opened, 1, "exactly one sum opens it: {reported:?}");
        match reported[..] {
            [Reported::Opened, Reported::TooLate] | [Reported::TooLate, Reported::Opened] => {
                "both sums saw both".into()
            }
            [Reported::Opened, Reported::Counted] | [Reported::Counted, Reported::Opened] => {
                "the earlier sum missed the later failure".into()
            }
            _ => panic!("a failure of a closed breaker went stale: {reported:?}"),
        }
    });
}

/// A failure's sum racing a success on another thread and a trip then a
/// reset on a third. The window opens at two calls, half failed: with the
/// success it opens, without it (the success not yet stored) it does not.
/// Whatever the interleaving, the rate opens the breaker only in the
/// generation its ticket came from: after the reset the breaker is closed,
/// and it opened exactly once (by the rate or by the trip, never both). With
/// the generation check dropped from `open_on_rate`, loom finds the rate
/// opening the breaker after the reset.
#[test]
fn a_sum_racing_a_success_and_a_trip_opens_only_its_own_generation() {
    let cases = [
        "rate opened before the trip",
        "the sum missed the success",
        "the sum saw the success, the trip came first",
        "the failure came after the trip",
    ];
    explore(&cases, || {
        let (breaker, window) = setup(0.5, 2);
        let success = breaker.acquire_at(at(0)).unwrap();
        let failure = breaker.acquire_at(at(0)).unwrap();
        let shared = Arc::new((breaker, window, [Ring::new(), Ring::new()]));
        let succeeding = {
            let shared = Arc::clone(&shared);
            loom::thread::spawn(move || {
                let (breaker, window, rings) = &*shared;
                report(breaker, window, rings, 0, success, false, at(10))
            })
        };
        let failing = {
            let shared = Arc::clone(&shared);
            loom::thread::spawn(move || {
                let (breaker, window, rings) = &*shared;
                report(breaker, window, rings, 1, failure, true, at(10))
            })
        };
        let tripping = {
            let shared = Arc::clone(&shared);
            loom::thread::spawn(move || {
                let (breaker, ..) = &*shared;
                breaker.trip_at(at(20));
                breaker.reset_at(at(30));
            })
        };
        let succeeded = succeeding.join().unwrap();
        assert!(matches!(succeeded, Reported::Counted | Reported::Stale), "a success never opens: {succeeded:?}");
        let failed = failing.join().unwrap();
        tripping.join().unwrap();
        let (breaker, ..) = &*shared;
        assert_eq!(breaker.state_at(at(30)), State::Closed, "the reset is the last transition ({failed:?})");
        assert_eq!(breaker.opens(), 1, "opened by the rate or the trip, not both ({failed:?})");
        match failed {
            Reported::Opened => "rate opened before the trip".into(),
            Reported::Counted => "the sum missed the success".into(),
            Reported::TooLate => "the sum saw the success, the trip came first".into(),
            Reported::Stale => "the failure came after the trip".into(),
        }
    });
}
