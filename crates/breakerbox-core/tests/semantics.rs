//! The documented semantics, one test each, on a mock clock.

use std::sync::Arc;
use std::time::Duration;

use breakerbox_core::__private::RawWord as _;
use breakerbox_core::quanta::{Clock, Mock};
use breakerbox_core::{Config, CoreBreaker, Outcome, Recorded, State};

fn breaker(threshold: u32, half_open_max: u32, timeout_ms: u64) -> (CoreBreaker, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let config = Config { threshold, half_open_max, timeout: Duration::from_millis(timeout_ms) };
    (CoreBreaker::with_clock(config, clock).unwrap(), mock)
}

fn fail(breaker: &CoreBreaker, times: u32) {
    for _ in 0..times {
        let ticket = breaker.acquire().unwrap();
        assert_eq!(breaker.record(ticket, Outcome::Failure), Recorded::Applied);
    }
}

#[test]
fn closed_counts_consecutive_failures_and_opens_at_the_threshold() {
    let (b, mock) = breaker(3, 1, 100);
    fail(&b, 2);
    assert_eq!((b.state(), b.snapshot().count()), (State::Closed, 2));
    mock.increment(Duration::from_millis(7));
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.snapshot().stamp(), 107, "open until now plus the timeout");
}

#[test]
fn a_success_ends_the_streak() {
    let (b, _mock) = breaker(3, 1, 100);
    fail(&b, 2);
    let ticket = b.acquire().unwrap();
    b.record(ticket, Outcome::Success);
    fail(&b, 2);
    assert_eq!((b.state(), b.snapshot().count()), (State::Closed, 2));
}

#[test]
fn open_rejects_until_the_timeout_then_admits_one_probe() {
    let (b, mock) = breaker(1, 1, 100);
    fail(&b, 1);
    mock.increment(Duration::from_millis(99));
    assert_eq!(b.acquire().unwrap_err().retry_after(), Some(Duration::from_millis(1)));
    mock.increment(Duration::from_millis(1));
    let probe = b.acquire().expect("the first acquire after the timeout is a probe");
    assert_eq!(b.snapshot().phase(), State::HalfOpen);
    assert!(b.acquire().is_err(), "half_open_max = 1");
    assert_eq!(b.record(probe, Outcome::Success), Recorded::Applied);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn reading_the_state_past_the_timeout_reports_half_open_and_writes_nothing() {
    let (b, mock) = breaker(1, 1, 100);
    fail(&b, 1);
    let before = b.snapshot();
    mock.increment(Duration::from_millis(100));
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.snapshot(), before);
    assert_eq!(b.snapshot().phase(), State::Open);
}

#[test]
fn half_open_limits_probes_in_flight_and_an_ignored_probe_frees_its_slot() {
    let (b, mock) = breaker(1, 2, 100);
    b.trip();
    mock.increment(Duration::from_millis(100));
    let first = b.acquire().unwrap();
    let _second = b.acquire().unwrap();
    assert!(b.acquire().is_err());
    assert_eq!(b.record(first, Outcome::Ignored), Recorded::Applied);
    assert!(b.acquire().is_ok(), "the ignored probe's slot is free again");
    assert!(b.acquire().is_err());
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn probe_failure_reopens_and_restarts_the_timer() {
    let (b, mock) = breaker(1, 1, 100);
    b.trip();
    mock.increment(Duration::from_millis(150));
    let probe = b.acquire().unwrap();
    mock.increment(Duration::from_millis(30));
    b.record(probe, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_millis(99));
    assert_eq!(b.acquire().unwrap_err().retry_after(), Some(Duration::from_millis(1)));
    mock.increment(Duration::from_millis(1));
    assert!(b.acquire().is_ok());
}

#[test]
fn first_probe_success_closes_and_other_probes_are_stale() {
    let (b, mock) = breaker(1, 3, 100);
    b.trip();
    mock.increment(Duration::from_millis(100));
    let probes: Vec<_> = (0..3).map(|_| b.acquire().unwrap()).collect();
    assert_eq!(b.record(probes[1], Outcome::Success), Recorded::Applied);
    assert_eq!(b.record(probes[0], Outcome::Failure), Recorded::Stale);
    assert_eq!(b.record(probes[2], Outcome::Failure), Recorded::Stale);
    assert_eq!((b.state(), b.snapshot().count()), (State::Closed, 0));
}

#[test]
fn a_slow_closed_era_failure_does_not_count_toward_the_new_streak() {
    let (b, mock) = breaker(2, 1, 100);
    let slow = b.acquire().unwrap();
    fail(&b, 2);
    mock.increment(Duration::from_millis(100));
    let probe = b.acquire().unwrap();
    b.record(probe, Outcome::Success);
    fail(&b, 1);
    assert_eq!(b.record(slow, Outcome::Failure), Recorded::Stale);
    assert_eq!((b.state(), b.snapshot().count()), (State::Closed, 1));
}

#[test]
fn a_slow_closed_era_success_neither_closes_half_open_nor_frees_a_slot() {
    let (b, mock) = breaker(1, 1, 100);
    let slow = b.acquire().unwrap();
    fail(&b, 1);
    mock.increment(Duration::from_millis(100));
    let _probe = b.acquire().unwrap();
    assert_eq!(b.record(slow, Outcome::Success), Recorded::Stale);
    assert_eq!(b.record(slow, Outcome::Ignored), Recorded::Stale);
    assert_eq!((b.state(), b.snapshot().count()), (State::HalfOpen, 1));
    assert!(b.acquire().is_err(), "the probe's slot is still held");
}

#[test]
fn hung_probes_cannot_wedge_the_breaker() {
    let (b, mock) = breaker(1, 2, 100);
    b.trip();
    mock.increment(Duration::from_millis(100));
    let hung = [b.acquire().unwrap(), b.acquire().unwrap()];
    mock.increment(Duration::from_millis(99));
    assert!(b.acquire().is_err());
    mock.increment(Duration::from_millis(1));
    let fresh = b.acquire().expect("a whole timeout with every slot held starts a fresh round");
    assert_eq!(b.snapshot().count(), 1);
    for ticket in hung {
        assert_eq!(b.record(ticket, Outcome::Failure), Recorded::Stale);
    }
    assert_eq!(b.record(fresh, Outcome::Success), Recorded::Applied);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn trip_and_reset_are_manual_transitions_that_start_new_epochs() {
    let (b, mock) = breaker(5, 1, 100);
    let held = b.acquire().unwrap();
    b.trip();
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_millis(60));
    b.trip();
    mock.increment(Duration::from_millis(60));
    assert_eq!(b.state(), State::Open, "tripping an open breaker restarts its timeout");
    b.reset();
    assert_eq!((b.state(), b.snapshot().count()), (State::Closed, 0));
    assert_eq!(b.record(held, Outcome::Failure), Recorded::Stale);
    assert_eq!(b.snapshot().epoch(), 3);
}

#[test]
fn zero_config_fields_use_the_go_defaults() {
    let (clock, mock) = Clock::mock();
    let b = CoreBreaker::with_clock(Config { threshold: 0, timeout: Duration::ZERO, half_open_max: 0 }, clock).unwrap();
    assert_eq!(b.config(), Config::default());
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    mock.increment(Duration::from_secs(30));
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn the_breaker_is_send_sync_and_shares_one_cache_line_free_word() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<CoreBreaker>();
    assert!(std::mem::align_of::<CoreBreaker>() >= 64, "the word sits on its own cache line");
}

#[test]
fn debug_shows_the_name_the_word_and_the_config() {
    let (b, _mock) = breaker(3, 2, 100);
    fail(&b, 1);
    let debug = format!("{b:?}");
    assert!(debug.starts_with("CoreBreaker { name: \"\", word: StateWord { phase: Closed, count: 1,"), "{debug}");
    assert!(
        debug.contains(
            "config: ValidConfig { threshold: 3, half_open_max: 2, timeout_ticks: 100, success_threshold: 1 }"
        ),
        "{debug}"
    );
}

#[test]
fn debug_shows_a_given_name() {
    let b = CoreBreaker::builder(Config::default()).name("users").build().unwrap();
    assert!(format!("{b:?}").starts_with("CoreBreaker { name: \"users\","));
}

#[test]
fn an_instant_of_the_breakers_clock_maps_to_its_milliseconds() {
    let (clock, mock) = Clock::mock();
    let b = CoreBreaker::with_clock(Config::default(), clock.clone()).unwrap();
    mock.increment(Duration::from_millis(1_234));
    assert_eq!(b.timestamp(clock.now()), breakerbox_core::Timestamp::from_millis(1_234));
    assert_eq!(b.timestamp(clock.now()), b.now());
}
