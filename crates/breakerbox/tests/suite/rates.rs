//! The failure-rate rule and slow calls, on a mock clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::quanta::{Clock, Mock};
use breakerbox::{Breaker, Builder, Config, FailureRate, Reason, State};

fn builder(threshold: u32) -> (Builder, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let config = Config { threshold, half_open_max: 1, timeout: Duration::from_secs(5) };
    (Breaker::builder(config).clock(clock), mock)
}

fn rate(ratio: f64, min_calls: u32, window_secs: u64) -> FailureRate {
    FailureRate::new(ratio, min_calls, Duration::from_secs(window_secs))
}

fn fail(breaker: &Breaker) {
    assert!(breaker.call(|| Err::<(), _>("503")).is_err());
}

fn succeed(breaker: &Breaker) {
    assert_eq!(breaker.call(|| Ok::<_, ()>(7)), Ok(7));
}

/// The reasons of the transitions a breaker built from `builder` reports.
fn listened(builder: Builder) -> (Breaker, Arc<Mutex<Vec<Reason>>>) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let breaker = builder.on_transition(move |t| sink.lock().unwrap().push(t.reason())).build().unwrap();
    (breaker, heard)
}

/// Failures drawn at random (88% each, from a fixed seed) but never ten in
/// a row (a success is forced after nine): 160 of 200, 80%.
fn mostly_failing(calls: usize) -> Vec<bool> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut streak = 0;
    (0..calls)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let fails = state % 100 < 88 && streak < 9;
            streak = if fails { streak + 1 } else { 0 };
            fails
        })
        .collect()
}

#[test]
fn mostly_failing_calls_with_no_streak_open_on_the_rate_and_not_without_it() {
    let pattern = mostly_failing(200);
    let failures = pattern.iter().filter(|&&failed| failed).count();
    assert!((155..=165).contains(&failures), "{failures} of 200 fail: about 80%");
    assert!(pattern.windows(10).all(|ten| ten.contains(&false)), "never ten failures in a row");

    let (plain, _mock) = builder(10);
    let plain = plain.build().unwrap();
    let (rated, _mock) = builder(10);
    let (rated, heard) = listened(rated.failure_rate(rate(0.5, 20, 10)));
    let mut opened_at = None;
    for (call, &failed) in pattern.iter().enumerate() {
        for breaker in [&plain, &rated] {
            let _ = breaker.call(|| if failed { Err("503") } else { Ok(()) });
        }
        if opened_at.is_none() && rated.state() == State::Open {
            opened_at = Some(call);
        }
    }
    assert_eq!(plain.state(), State::Closed, "the consecutive rule alone never opens");
    // The first failure once 20 calls are in the window, since more than
    // half of every prefix fails.
    let first_eligible = pattern.iter().enumerate().skip(19).find(|&(_, &failed)| failed).map(|(call, _)| call);
    assert_eq!(opened_at, first_eligible);
    assert_eq!(*heard.lock().unwrap(), [Reason::FailureRateReached]);
}

#[test]
fn below_min_calls_nothing_opens_and_the_call_that_reaches_it_does() {
    let (builder, _mock) = builder(1);
    let breaker = builder.consecutive_failures(false).failure_rate(rate(1.0, 20, 10)).build().unwrap();
    for _ in 0..19 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), State::Closed, "19 calls, all failed, below 20");
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.counts().failures, 20);
}

#[test]
fn a_success_reaching_min_calls_does_not_open_but_the_next_failure_does() {
    let (builder, _mock) = builder(1);
    let breaker = builder.consecutive_failures(false).failure_rate(rate(0.5, 4, 10)).build().unwrap();
    for _ in 0..3 {
        fail(&breaker);
    }
    succeed(&breaker);
    assert_eq!(breaker.state(), State::Closed, "4 calls, 3 failed: checked on failures only");
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn buckets_age_out_exactly_when_the_window_slides_past_them() {
    // 10 s in buckets of 1 s: a call at 0.5 s is in bucket 0, which leaves
    // the window at 10 s.
    for (then, opens) in [(Duration::from_millis(9_999), true), (Duration::from_millis(10_000), false)] {
        let (builder, mock) = builder(1);
        let breaker = builder.consecutive_failures(false).failure_rate(rate(1.0, 4, 10)).build().unwrap();
        mock.increment(Duration::from_millis(500));
        for _ in 0..3 {
            fail(&breaker);
        }
        mock.increment(then - Duration::from_millis(500));
        fail(&breaker);
        let expected = if opens { State::Open } else { State::Closed };
        assert_eq!(breaker.state(), expected, "a fourth failure at {then:?}");
    }
}

#[test]
fn a_close_and_a_reset_each_start_an_empty_window() {
    let (builder, mock) = builder(1);
    let breaker = builder.consecutive_failures(false).failure_rate(rate(1.0, 4, 60)).build().unwrap();
    for _ in 0..3 {
        fail(&breaker);
    }
    breaker.trip();
    mock.increment(Duration::from_secs(5));
    succeed(&breaker); // the probe closes
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "the three failures before the close are gone");
    for _ in 0..2 {
        fail(&breaker);
    }
    breaker.reset();
    fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "and so are the three before the reset");
    for _ in 0..3 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn ignored_and_stale_results_count_nowhere_and_rejections_are_not_calls() {
    let (builder, mock) = builder(1);
    let breaker = builder.consecutive_failures(false).failure_rate(rate(1.0, 3, 60)).build().unwrap();
    fail(&breaker);
    let ignored =
        breaker.call_with(|_: &Result<(), &str>| breakerbox::Outcome::Ignored, || Err::<(), _>("our own deadline"));
    assert!(ignored.is_err());
    let stale = breaker.try_acquire().unwrap();
    breaker.trip();
    assert!(breaker.call(|| Ok::<_, ()>(())).unwrap_err().is_open(), "a rejection");
    mock.increment(Duration::from_secs(5));
    succeed(&breaker); // closes: a new window
    assert_eq!(stale.failure(), breakerbox::Recorded::Stale);
    fail(&breaker);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Closed, "two failures: the stale one and the ignored one did not count");
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn either_rule_opens_whichever_fires_first() {
    let (builder, _mock) = builder(3);
    let (breaker, heard) = listened(builder.failure_rate(rate(0.9, 10, 10)));
    for _ in 0..3 {
        fail(&breaker);
    }
    assert_eq!(*heard.lock().unwrap(), [Reason::ThresholdReached], "3 in a row before 10 calls");
}

#[test]
fn slow_successes_count_as_failures_for_the_consecutive_rule_and_the_caller_gets_its_value() {
    let (builder, mock) = builder(2);
    let breaker = builder.slow_call(Duration::from_millis(100)).build().unwrap();
    let slow = |took: Duration| {
        breaker.call(|| {
            mock.increment(took);
            Ok::<_, ()>("200 OK")
        })
    };
    assert_eq!(slow(Duration::from_millis(100)), Ok("200 OK"));
    assert_eq!(breaker.counts().failures, 0, "100 ms is not longer than 100 ms");
    assert_eq!(slow(Duration::from_millis(101)), Ok("200 OK"));
    assert_eq!((breaker.counts().successes, breaker.counts().failures), (1, 1));
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(slow(Duration::from_secs(20)), Ok("200 OK"));
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_call_is_timed_from_its_own_admission_not_from_the_start_of_the_clock() {
    let (builder, mock) = builder(1);
    let breaker = builder.slow_call(Duration::from_millis(100)).build().unwrap();
    mock.increment(Duration::from_secs(60));
    succeed(&breaker);
    let permit = breaker.try_acquire().unwrap();
    mock.increment(Duration::from_millis(50));
    permit.success();
    let mut call = std::pin::pin!(breaker.call_async(async { Ok::<_, ()>(()) }));
    assert!(call.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())).is_ready());
    assert_eq!((breaker.counts().successes, breaker.counts().failures), (3, 0), "each took at most 50 ms");
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn slow_successes_trip_the_rate_rule_and_a_slow_probe_reopens() {
    let (builder, mock) = builder(1);
    let breaker = builder
        .consecutive_failures(false)
        .failure_rate(rate(0.5, 4, 60))
        .slow_call(Duration::from_secs(1))
        .build()
        .unwrap();
    for took in [0, 2, 0, 2] {
        let permit = breaker.try_acquire().unwrap();
        mock.increment(Duration::from_secs(took));
        permit.success();
    }
    assert_eq!(breaker.state(), State::Open, "2 of 4 slow");
    mock.increment(Duration::from_secs(5));
    let probe = breaker.try_acquire().unwrap();
    mock.increment(Duration::from_secs(2));
    probe.success();
    assert_eq!(breaker.state(), State::Open, "a slow probe is a failed probe");
}

#[test]
fn a_rate_shared_by_eight_threads_opens_and_loses_no_count() {
    let (builder, _mock) = builder(1);
    let breaker = builder.consecutive_failures(false).failure_rate(rate(0.4, 100, 60)).build().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for call in 0..200 {
                    let _ = breaker.call(|| if call % 2 == 0 { Ok(()) } else { Err(()) });
                }
            });
        }
    });
    // Half of every thread's calls fail: once 100 calls are in the window,
    // the next failure summed sees at least 40% failed.
    assert_eq!(breaker.state(), State::Open);
    let counts = breaker.counts();
    assert_eq!(counts.successes + counts.failures + counts.rejections, 8 * 200);
    assert_eq!(counts.opens, 1);
}

#[test]
fn config_errors_name_the_rate_and_the_slow_call() {
    let (builder_a, _mock) = builder(1);
    let err = builder_a.failure_rate(rate(0.0, 1, 10)).build().unwrap_err();
    assert_eq!(err.field(), "failure_rate.ratio");
    assert_eq!(
        err.to_string(),
        "invalid breaker config: failure_rate.ratio = 0 is outside the limits: above 0, at most 1"
    );
    let (builder_b, _mock) = builder(1);
    let err = builder_b.failure_rate(FailureRate::new(0.5, 1, Duration::from_millis(5))).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid breaker config: failure_rate.window = 5 ms is outside the limits 10 ms to 24 h"
    );
    let (builder_c, _mock) = builder(1);
    let err = builder_c.slow_call(Duration::ZERO).build().unwrap_err();
    assert_eq!(err.field(), "slow_call");
    let (builder_d, _mock) = builder(1);
    assert!(builder_d.slow_call(Config::MAX_TIMEOUT).build().is_ok(), "the longest threshold is accepted");
    let (builder_e, _mock) = builder(1);
    let too_long = Config::MAX_TIMEOUT + Duration::from_nanos(1);
    assert_eq!(
        builder_e.slow_call(too_long).build().unwrap_err(),
        breakerbox::ConfigError::SlowCall { value: too_long }
    );
}

#[test]
fn a_watched_breaker_counts_rejections_and_dropped_permits_like_any_other() {
    let (builder, _mock) = builder(2);
    let breaker = builder.failure_rate(rate(0.5, 10, 10)).build().unwrap();
    drop(breaker.try_acquire().unwrap());
    fail(&breaker);
    fail(&breaker);
    assert!(breaker.call(|| Ok::<_, ()>(())).unwrap_err().is_open());
    assert!(breaker.try_acquire().is_err());
    let counts = breaker.counts();
    assert_eq!((counts.successes, counts.failures, counts.rejections, counts.opens), (0, 2, 2, 1));
}
