//! The builder's policies on a mock clock: backoff (exact, jittered, capped,
//! reset by a close), the success threshold, `trip_for` and `isolate`.

use std::sync::Arc;
use std::time::Duration;

use breakerbox_core::quanta::{Clock, Mock};
use breakerbox_core::{Backoff, Config, ConfigError, CoreBreaker, Jitter, Outcome, Recorded, State};

const SECOND: Duration = Duration::from_secs(1);

/// Threshold 1, timeout 1 s, one probe, with `backoff` and `successes`.
fn breaker(backoff: Backoff, successes: u32) -> (CoreBreaker, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let config = Config { threshold: 1, timeout: SECOND, half_open_max: 1 };
    let breaker =
        CoreBreaker::builder(config).clock(clock).backoff(backoff).success_threshold(successes).build().unwrap();
    (breaker, mock)
}

/// Fails a call (the first one, or a probe once the open is over) and
/// returns how long the breaker then stays open, moving the clock to its end.
fn fail_and_wait(breaker: &CoreBreaker, mock: &Mock) -> Duration {
    let ticket = breaker.acquire().expect("closed, or the open is over");
    assert_eq!(breaker.record(ticket, Outcome::Failure), Recorded::Applied);
    let open_for = breaker.acquire().unwrap_err().retry_after().expect("open, not held open");
    mock.increment(open_for);
    open_for
}

fn succeed(breaker: &CoreBreaker) {
    let ticket = breaker.acquire().expect("admitted");
    assert_eq!(breaker.record(ticket, Outcome::Success), Recorded::Applied);
}

#[test]
fn exponential_opens_double_to_the_cap_and_a_close_starts_over() {
    let (b, mock) = breaker(Backoff::exponential(2.0, Duration::from_secs(10)), 1);
    let lasted: Vec<u64> = (0..7).map(|_| fail_and_wait(&b, &mock).as_secs()).collect();
    assert_eq!(lasted, [1, 2, 4, 8, 10, 10, 10]);
    succeed(&b); // the probe after the last open closes it
    assert_eq!(b.state(), State::Closed);
    assert_eq!(fail_and_wait(&b, &mock), SECOND, "a close resets the streak");
}

#[test]
fn a_fractional_factor_rounds_each_step_up_to_whole_milliseconds() {
    let (b, mock) = breaker(Backoff::exponential(1.5, Duration::from_secs(4)), 1);
    let lasted: Vec<u128> = (0..6).map(|_| fail_and_wait(&b, &mock).as_millis()).collect();
    assert_eq!(lasted, [1_000, 1_500, 2_250, 3_375, 4_000, 4_000]);
}

#[test]
fn retry_after_counts_down_a_backed_off_open() {
    let (b, mock) = breaker(Backoff::exponential(3.0, Duration::from_secs(60)), 1);
    fail_and_wait(&b, &mock);
    let ticket = b.acquire().unwrap();
    b.record(ticket, Outcome::Failure); // the second open: 3 s
    mock.increment(Duration::from_millis(1_250));
    assert_eq!(b.acquire().unwrap_err().retry_after(), Some(Duration::from_millis(1_750)));
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_millis(1_750));
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn a_reset_starts_the_streak_over_and_trip_advances_it() {
    let (b, mock) = breaker(Backoff::exponential(2.0, Duration::from_secs(60)), 1);
    fail_and_wait(&b, &mock);
    fail_and_wait(&b, &mock);
    b.trip(); // the third open in a row
    assert_eq!(b.acquire().unwrap_err().retry_after(), Some(Duration::from_secs(4)));
    b.reset();
    assert_eq!(fail_and_wait(&b, &mock), SECOND);
}

#[test]
fn jittered_opens_stay_in_their_range_and_spread() {
    for (jitter, low) in [(Jitter::Full, 1), (Jitter::Equal, 2_000)] {
        let (b, mock) = breaker(Backoff::exponential(2.0, Duration::from_secs(4)).jitter(jitter).seed(42), 1);
        fail_and_wait(&b, &mock);
        fail_and_wait(&b, &mock);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            // From the third open on, the base is the cap, 4 s.
            let open_for = fail_and_wait(&b, &mock).as_millis() as u64;
            assert!((low..=4_000).contains(&open_for), "{jitter:?}: {open_for} ms");
            seen.insert(open_for);
            mock.increment(Duration::from_millis(1)); // a different millisecond each time
        }
        assert!(seen.len() > 300, "{jitter:?} spread over {} values only", seen.len());
    }
}

#[test]
fn the_same_seed_and_times_give_the_same_opens() {
    let opens = || {
        let (b, mock) = breaker(Backoff::fixed().jitter(Jitter::Full).seed(7), 1);
        (0..20).map(|_| fail_and_wait(&b, &mock)).collect::<Vec<_>>()
    };
    assert_eq!(opens(), opens());
    let (b, mock) = breaker(Backoff::fixed().jitter(Jitter::Full).seed(8), 1);
    let other: Vec<_> = (0..20).map(|_| fail_and_wait(&b, &mock)).collect();
    assert_ne!(opens(), other, "another seed spreads differently");
}

#[test]
fn a_flapping_downstream_closes_only_after_n_successes_in_a_row() {
    let (b, mock) = breaker(Backoff::fixed(), 3);
    fail_and_wait(&b, &mock);
    // Success, success, failure: reopened, not closed.
    succeed(&b);
    succeed(&b);
    assert_eq!(b.state(), State::HalfOpen);
    fail_and_wait(&b, &mock);
    // A new round starts from zero successes.
    succeed(&b);
    succeed(&b);
    assert_eq!(b.state(), State::HalfOpen);
    succeed(&b);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_success_below_the_threshold_frees_its_probe_slot() {
    let (b, _mock) = breaker(Backoff::fixed(), 2);
    b.trip_for(Duration::ZERO);
    let probe = b.acquire().unwrap();
    assert!(b.acquire().is_err(), "one slot");
    b.record(probe, Outcome::Success);
    assert!(b.acquire().is_ok(), "the success gave the slot back");
}

#[test]
fn hung_probes_are_replaced_after_the_backed_off_duration() {
    let (b, mock) = breaker(Backoff::exponential(2.0, Duration::from_secs(60)), 1);
    fail_and_wait(&b, &mock);
    fail_and_wait(&b, &mock); // the streak is 2: opens (and leases) of 2 s
    let _hung = b.acquire().unwrap();
    mock.increment(Duration::from_millis(1_999));
    assert_eq!(b.acquire().unwrap_err().retry_after(), Some(Duration::from_millis(1)));
    mock.increment(Duration::from_millis(1));
    assert!(b.acquire().is_ok(), "a fresh round after the lease");
}

#[test]
fn trip_for_opens_for_exactly_that_long_and_keeps_the_streak() {
    let (b, mock) = breaker(Backoff::exponential(2.0, Duration::from_secs(60)), 1);
    fail_and_wait(&b, &mock); // streak 1
    b.trip_for(Duration::from_secs(120)); // Retry-After: 120
    assert_eq!(b.acquire().unwrap_err().retry_after(), Some(Duration::from_secs(120)));
    mock.increment(Duration::from_millis(119_999));
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_millis(1));
    assert_eq!(b.state(), State::HalfOpen);
    let probe = b.acquire().unwrap();
    b.record(probe, Outcome::Failure);
    assert_eq!(b.acquire().unwrap_err().retry_after(), Some(2 * SECOND), "the streak went on from 1");
}

#[test]
fn trip_for_is_capped_at_the_longest_timeout() {
    let (b, _mock) = breaker(Backoff::fixed(), 1);
    b.trip_for(Duration::MAX);
    assert_eq!(b.acquire().unwrap_err().retry_after(), Some(Config::MAX_TIMEOUT));
}

#[test]
fn isolate_admits_nothing_however_long_until_reset() {
    let (b, mock) = breaker(Backoff::fixed(), 1);
    b.isolate();
    for _ in 0..10 {
        mock.increment(Duration::from_secs(365 * 24 * 3_600));
        let rejected = b.acquire().unwrap_err();
        assert!(rejected.is_held_open());
        assert_eq!((rejected.retry_after(), rejected.retry_after_secs()), (None, None), "no time to come back at");
        assert_eq!(rejected.to_string(), "circuit breaker is held open");
        assert_eq!(b.state(), State::Open);
    }
    b.trip();
    b.trip_for(Duration::ZERO);
    assert!(b.acquire().unwrap_err().is_held_open(), "trips do not lift it");
    assert!(b.snapshot().held_open());
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert!(b.acquire().is_ok());
}

#[test]
fn a_result_arriving_while_held_open_is_stale() {
    let (b, _mock) = breaker(Backoff::fixed(), 1);
    let ticket = b.acquire().unwrap();
    b.isolate();
    assert_eq!(b.record(ticket, Outcome::Success), Recorded::Stale);
    assert!(b.snapshot().held_open());
}

#[test]
fn policies_that_do_not_fit_are_refused_naming_field_value_and_limit() {
    let build = |backoff: Backoff, successes: u32, half_open_max: u32| {
        let config = Config { timeout: SECOND, half_open_max, ..Config::default() };
        CoreBreaker::builder(config).backoff(backoff).success_threshold(successes).build().map(|_| ())
    };
    let err = build(Backoff::exponential(0.5, Duration::from_secs(9)), 1, 1).unwrap_err();
    assert_eq!(err, ConfigError::BackoffFactor { value: 0.5 });
    assert_eq!(err.to_string(), "invalid breaker config: backoff.factor = 0.5 is outside the limits 1 to 65.535");
    let err = build(Backoff::exponential(2.0, Duration::from_millis(999)), 1, 1).unwrap_err();
    assert_eq!(err.field(), "backoff.max");
    assert!(err.to_string().contains("backoff.max = 999 ms is below the timeout: the cap must be at least"), "{err}");
    let err = build(Backoff::exponential(1.001, Config::MAX_TIMEOUT), 1, 1).unwrap_err();
    assert!(err.to_string().contains("takes more than 63 opens in a row to reach backoff.max = 2.18 years"), "{err}");
    let err = build(Backoff::fixed(), 70_000, 1).unwrap_err();
    assert_eq!(err.to_string(), "invalid breaker config: success_threshold = 70000 is over the limit of 32768");
    assert!(build(Backoff::fixed(), 32_768, 1).is_ok(), "32 767 successes so far and one slot fill 16 bits");
    assert_eq!(build(Backoff::fixed(), 32_769, 1), Err(ConfigError::SuccessThreshold { value: 32_769 }));
    // 4095 probes (12 bits) and 16 successes (4 bits) fill the count; a backoff does not fit beside them.
    assert!(build(Backoff::fixed(), 16, 4_095).is_ok());
    let err = build(Backoff::exponential(2.0, Duration::from_secs(8)), 16, 4_095).unwrap_err();
    assert_eq!(err, ConfigError::HalfOpenCount { half_open_max: 4_095, success_threshold: 16, backoff_steps: 4 });
    assert!(
        err.to_string().contains("need 19 bits of the half-open state, over the 16 it has: lower half_open_max"),
        "{err}"
    );
    // A few thousand probes with a realistic backoff and one success still fit.
    assert!(build(Backoff::exponential(2.0, Duration::from_secs(60)), 1, 2_000).is_ok());
    // 17 doubling steps (5 bits) beside 2 047 probes (11 bits) fit; beside 4 095 (12) they do not.
    let seventeen_steps = Backoff::exponential(2.0, Duration::from_secs(1 << 16));
    assert!(build(seventeen_steps, 1, 2_047).is_ok());
    let err = build(seventeen_steps, 1, 4_095).unwrap_err();
    assert_eq!(err, ConfigError::HalfOpenCount { half_open_max: 4_095, success_threshold: 1, backoff_steps: 17 });
}

#[test]
fn a_backoff_may_take_63_steps_to_its_cap_and_no_more() {
    let config = Config { timeout: Duration::from_millis(1), ..Config::default() };
    let build =
        |max_ms| CoreBreaker::builder(config).backoff(Backoff::exponential(1.1, Duration::from_millis(max_ms))).build();
    // With a factor of 1.1 from 1 ms, d(63) = 2 277 ms and d(64) = 2 505 ms.
    assert!(build(2_277).is_ok());
    let err = build(2_505).unwrap_err();
    assert!(matches!(err, ConfigError::BackoffSteps { .. }), "{err:?}");
    assert_eq!(err.field(), "backoff.factor");
}

#[test]
fn breakers_without_a_seed_spread_their_opens_differently() {
    let opens = || {
        let (clock, mock) = Clock::mock();
        let config = Config { threshold: 1, timeout: SECOND, half_open_max: 1 };
        let b =
            CoreBreaker::builder(config).clock(clock).backoff(Backoff::fixed().jitter(Jitter::Full)).build().unwrap();
        (0..20).map(|_| fail_and_wait(&b, &mock)).collect::<Vec<_>>()
    };
    assert_ne!(opens(), opens(), "each breaker draws its own seed");
}

#[test]
fn jitter_kinds_have_names() {
    let names: Vec<String> = [Jitter::None, Jitter::Full, Jitter::Equal].iter().map(ToString::to_string).collect();
    assert_eq!(names, ["none", "full", "equal"]);
}

#[test]
fn replacing_hung_probes_discards_the_rounds_successes() {
    let (clock, mock) = Clock::mock();
    let config = Config { threshold: 1, timeout: SECOND, half_open_max: 2 };
    let b = CoreBreaker::builder(config).clock(clock).success_threshold(2).build().unwrap();
    b.trip();
    mock.increment(SECOND);
    let first = b.acquire().unwrap();
    let hung = b.acquire().unwrap();
    assert_eq!(b.record(first, Outcome::Success), Recorded::Applied); // one success of two
    let _also_hung = b.acquire().unwrap(); // both slots held again
    mock.increment(SECOND);
    let fresh = b.acquire().expect("a new round after the lease");
    assert_eq!(b.record(hung, Outcome::Success), Recorded::Stale, "the old round's probe");
    assert_eq!(b.record(fresh, Outcome::Success), Recorded::Applied);
    assert_eq!(b.state(), State::HalfOpen, "the new round has one success, not two");
    let again = b.acquire().unwrap();
    b.record(again, Outcome::Success);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn an_overfull_half_open_count_names_all_three_fields() {
    let config = Config { half_open_max: 4_095, ..Config::default() };
    let err = CoreBreaker::builder(config).success_threshold(100).build().unwrap_err();
    assert_eq!(err.field(), "half_open_max + success_threshold + backoff");
}
