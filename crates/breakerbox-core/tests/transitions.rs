//! Transition reports: every reason with its states, exactly-once delivery,
//! sequence numbers, and a listener that panics. All on a mock clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox_core::__private::RawWord as _;
use breakerbox_core::quanta::{Clock, Mock};
use breakerbox_core::{Config, CoreBreaker, Outcome, Reason, Recorded, State, Timestamp, Transition};

type Log = Arc<Mutex<Vec<Transition>>>;

/// A breaker named "db" (threshold 2, 2 probes, 100 ms) whose listener
/// appends to the returned log.
fn observed() -> (CoreBreaker, Arc<Mock>, Log) {
    let (clock, mock) = Clock::mock();
    let log = Log::default();
    let sink = Arc::clone(&log);
    let config = Config { threshold: 2, half_open_max: 2, timeout: Duration::from_millis(100) };
    let breaker = CoreBreaker::builder(config)
        .clock(clock)
        .name("db")
        .on_transition(move |t| sink.lock().unwrap().push(t.clone()))
        .build()
        .unwrap();
    (breaker, mock, log)
}

/// The log's (from, to, reason) triples, emptying it.
fn drain(log: &Log) -> Vec<(State, State, Reason)> {
    log.lock().unwrap().drain(..).map(|t| (t.from(), t.to(), t.reason())).collect()
}

fn fail(breaker: &CoreBreaker) -> Recorded {
    let ticket = breaker.acquire().unwrap();
    breaker.record(ticket, Outcome::Failure)
}

fn open(breaker: &CoreBreaker, mock: &Mock, log: &Log) {
    fail(breaker);
    fail(breaker);
    mock.increment(Duration::from_millis(100));
    assert_eq!(breaker.state(), State::HalfOpen);
    drain(log);
}

#[test]
fn the_threshold_opens_and_says_so_once() {
    let (b, _mock, log) = observed();
    fail(&b);
    assert_eq!(drain(&log), [], "a failure short of the threshold is not a transition");
    fail(&b);
    assert_eq!(drain(&log), [(State::Closed, State::Open, Reason::ThresholdReached)]);
    assert!(b.acquire().is_err());
    assert_eq!(drain(&log), [], "a rejection is not a transition");
}

#[test]
fn the_first_call_after_the_timeout_starts_probing_not_the_timeout_itself() {
    let (b, mock, log) = observed();
    open(&b, &mock, &log);
    assert_eq!(drain(&log), [], "reading the state moves nothing: the move is lazy");
    let probe = b.acquire().unwrap();
    assert_eq!(drain(&log), [(State::Open, State::HalfOpen, Reason::TimeoutElapsed)]);
    let _second = b.acquire().unwrap();
    assert_eq!(drain(&log), [], "a second probe slot is not a transition");
    b.record(probe, Outcome::Ignored);
    assert_eq!(drain(&log), []);
}

#[test]
fn a_probe_success_closes_and_a_probe_failure_reopens() {
    let (b, mock, log) = observed();
    open(&b, &mock, &log);
    let probe = b.acquire().unwrap();
    b.record(probe, Outcome::Failure);
    assert_eq!(drain(&log)[1..], [(State::HalfOpen, State::Open, Reason::ProbeFailed)]);
    mock.increment(Duration::from_millis(100));
    let probe = b.acquire().unwrap();
    let late = b.acquire().unwrap();
    b.record(probe, Outcome::Success);
    assert_eq!(drain(&log)[1..], [(State::HalfOpen, State::Closed, Reason::ProbeSucceeded)]);
    assert_eq!(b.record(late, Outcome::Failure), Recorded::Stale);
    assert_eq!(drain(&log), [], "a stale result is not a transition");
}

#[test]
fn hung_probes_replaced_is_half_open_to_half_open() {
    let (b, mock, log) = observed();
    open(&b, &mock, &log);
    let _hung = (b.acquire().unwrap(), b.acquire().unwrap());
    mock.increment(Duration::from_millis(99));
    assert!(b.acquire().is_err());
    mock.increment(Duration::from_millis(1));
    let _fresh = b.acquire().unwrap();
    assert_eq!(drain(&log)[1..], [(State::HalfOpen, State::HalfOpen, Reason::ProbesReplaced)]);
}

#[test]
fn trip_and_reset_report_only_changes_of_state() {
    let (b, mock, log) = observed();
    b.reset();
    assert_eq!(drain(&log), [], "resetting a closed breaker changes no state");
    b.trip();
    b.trip();
    assert_eq!(drain(&log), [(State::Closed, State::Open, Reason::Tripped)], "a second trip only restarts the timer");
    b.reset();
    assert_eq!(drain(&log), [(State::Open, State::Closed, Reason::Reset)]);
    open(&b, &mock, &log);
    let _probe = b.acquire().unwrap();
    b.trip();
    assert_eq!(drain(&log)[1..], [(State::HalfOpen, State::Open, Reason::Tripped)]);
    mock.increment(Duration::from_millis(100));
    let _probe = b.acquire().unwrap();
    b.reset();
    assert_eq!(drain(&log)[1..], [(State::HalfOpen, State::Closed, Reason::Reset)]);
}

#[test]
fn events_carry_the_name_the_time_and_a_sequence_matching_the_epoch() {
    let (b, mock, log) = observed();
    mock.increment(Duration::from_millis(5));
    b.trip();
    b.trip(); // numbered, not reported
    mock.increment(Duration::from_millis(7));
    b.reset();
    let events = log.lock().unwrap().clone();
    assert_eq!(events.iter().map(Transition::sequence).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(events[1].at(), Timestamp::from_millis(12));
    assert!(events.iter().all(|t| t.name() == "db"));
    assert_eq!(events[1].to_string(), "db: open -> closed (reset, #3)");
    assert_eq!(b.snapshot().epoch(), 3, "the epoch is the sequence's low byte");
}

#[test]
fn sequences_keep_counting_past_the_epoch_wrap() {
    let (b, _mock, log) = observed();
    for _ in 0..300 {
        b.trip();
        b.reset();
    }
    let sequences: Vec<u64> = log.lock().unwrap().iter().map(Transition::sequence).collect();
    assert_eq!(sequences, (1..=600).collect::<Vec<_>>());
    assert_eq!(b.opens(), 300);
}

#[test]
fn opens_counts_changes_into_open_with_or_without_a_listener() {
    let (clock, mock) = Clock::mock();
    let b = CoreBreaker::with_clock(Config { threshold: 1, ..Config::default() }, clock).unwrap();
    fail(&b); // threshold
    b.trip(); // already open
    mock.increment(Duration::from_secs(30));
    let probe = b.acquire().unwrap();
    b.record(probe, Outcome::Failure); // probe failed
    b.reset();
    b.trip(); // tripped
    assert_eq!(b.opens(), 3);
}

#[test]
fn a_panicking_listener_leaves_the_transition_and_the_caller_alone() {
    let (clock, _mock) = Clock::mock();
    let heard = Arc::new(Mutex::new(0));
    let count = Arc::clone(&heard);
    let b = CoreBreaker::builder(Config { threshold: 1, ..Config::default() })
        .clock(clock)
        .on_transition(move |_| {
            *count.lock().unwrap() += 1;
            panic!("listener bug");
        })
        .build()
        .unwrap();
    assert_eq!(fail(&b), Recorded::Applied, "the call that tripped it returns normally");
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.opens(), 1);
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(*heard.lock().unwrap(), 2, "the listener is still called after it panicked");
}

#[test]
fn eight_threads_get_every_change_reported_once_and_in_sequence_order() {
    let (b, mock, log) = observed();
    std::thread::scope(|s| {
        for thread in 0..8u64 {
            let (b, mock) = (&b, &mock);
            s.spawn(move || {
                for i in 0..2_000u64 {
                    match (thread + i) % 6 {
                        0 => b.trip(),
                        1 => b.reset(),
                        2 => mock.increment(Duration::from_millis(50)),
                        _ => {
                            if let Ok(ticket) = b.acquire() {
                                let outcome =
                                    if (thread * 7 + i) % 3 == 0 { Outcome::Success } else { Outcome::Failure };
                                b.record(ticket, outcome);
                            }
                        }
                    }
                }
            });
        }
    });
    let mut events = log.lock().unwrap().clone();
    events.sort_by_key(Transition::sequence);
    assert!(events.len() > 100, "the run made few transitions: {}", events.len());
    assert!(events.last().unwrap().sequence() > 256, "the numbers did not pass the epoch's wrap");
    assert!(events.windows(2).all(|w| w[0].sequence() < w[1].sequence()), "a sequence number was reported twice");
    // Sorted by sequence, each event starts where the one before ended: a
    // lost, duplicated or misnumbered report breaks the chain.
    let mut state = State::Closed;
    for event in &events {
        assert_eq!(event.from(), state, "event {event:?} does not follow {state:?}");
        state = event.to();
    }
    assert_eq!(state, b.snapshot().phase(), "the last event ends in the stored state");
    assert_eq!(events.iter().filter(|t| t.to() == State::Open).count() as u64, b.opens());
}

#[test]
fn transitions_and_builders_debug_print_what_they_hold() {
    let (b, _mock, log) = observed();
    b.trip();
    let debug = format!("{:?}", log.lock().unwrap()[0]);
    assert_eq!(
        debug,
        r#"Transition { name: "db", from: Closed, to: Open, reason: Tripped, sequence: 1, at: Timestamp(0) }"#
    );
    let builder = CoreBreaker::builder(Config::default()).name("db").on_transition(|_| {}).success_threshold(2);
    assert_eq!(
        format!("{builder:?}"),
        r#"Builder { config: Config { threshold: 5, timeout: 30s, half_open_max: 1 }, clock: "real", name: Some("db"), listener: Some("Fn(&Transition)"), backoff: Backoff { factor: 1.0, max: None, jitter: None, seed: None }, success_threshold: 2, consecutive_failures: true }"#
    );
}
