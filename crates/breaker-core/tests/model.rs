//! Property test: random sequences of operations and time steps, applied to
//! the core and to the reference model, must get the same answers at every
//! step.
//!
//! Each sequence runs twice: through the time-explicit API starting at a
//! random offset (some just below a wrap of the word's 38-bit time field), and
//! through the clock-reading API on a mock clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breaker_core::{Config, CoreBreaker, Outcome, Recorded, State, Ticket, Timestamp, Transition};
use breaker_model::{Model, Phase, Seen};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    Acquire,
    /// Report the outcome of a held ticket, chosen by index among all issued.
    Record(usize, Outcome),
    Trip,
    Reset,
    Advance(u64),
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![Just(Outcome::Success), Just(Outcome::Failure), Just(Outcome::Ignored)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Acquire),
        6 => (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Record(i, o)),
        1 => Just(Op::Trip),
        1 => Just(Op::Reset),
        3 => (0u64..20).prop_map(Op::Advance),
        3 => (0u64..1_000).prop_map(Op::Advance),
        // Rare long waits; 200 of them stay below the 2^37 ms bound.
        1 => (0u64..(1 << 29)).prop_map(Op::Advance),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (prop_oneof![1u32..=6, Just(Config::MAX_THRESHOLD)], 1u32..=3, 1u64..=500).prop_map(
        |(threshold, half_open_max, timeout)| Config {
            threshold,
            half_open_max,
            timeout: Duration::from_millis(timeout),
        },
    )
}

fn start() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), (1u64 << 38) - 700..(1u64 << 38), (5u64 << 38) - 300..(5u64 << 38)]
}

/// One step's answer, in terms both sides can give.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Admitted,
    Rejected { retry_after_ms: u64 },
    Recorded(bool),
    Done,
}

fn seen(state: State) -> Seen {
    match state {
        State::Closed => Seen::Closed,
        State::Open => Seen::Open,
        State::HalfOpen => Seen::HalfOpen,
    }
}

fn stored(model: &Model) -> State {
    match model.phase() {
        Phase::Closed { .. } => State::Closed,
        Phase::Open { .. } => State::Open,
        Phase::HalfOpen { .. } => State::HalfOpen,
    }
}

/// The core behind one of its two APIs.
trait Driven {
    fn acquire(&self, now: u64) -> Result<Ticket, breaker_core::Rejected>;
    fn record(&self, ticket: Ticket, outcome: Outcome, now: u64) -> Recorded;
    fn trip(&self, now: u64);
    fn reset(&self, now: u64);
    fn state(&self, now: u64) -> State;
    fn advance_to(&self, now: u64);
    fn core(&self) -> &CoreBreaker;
}

struct Explicit(CoreBreaker);

impl Driven for Explicit {
    fn acquire(&self, now: u64) -> Result<Ticket, breaker_core::Rejected> {
        self.0.acquire_at(Timestamp::from_millis(now))
    }
    fn record(&self, ticket: Ticket, outcome: Outcome, now: u64) -> Recorded {
        self.0.record_at(ticket, outcome, Timestamp::from_millis(now))
    }
    fn trip(&self, now: u64) {
        self.0.trip_at(Timestamp::from_millis(now))
    }
    fn reset(&self, now: u64) {
        self.0.reset_at(Timestamp::from_millis(now))
    }
    fn state(&self, now: u64) -> State {
        self.0.state_at(Timestamp::from_millis(now))
    }
    fn advance_to(&self, _: u64) {}
    fn core(&self) -> &CoreBreaker {
        &self.0
    }
}

struct Clocked {
    core: CoreBreaker,
    mock: std::sync::Arc<breaker_core::quanta::Mock>,
}

impl Driven for Clocked {
    fn acquire(&self, _: u64) -> Result<Ticket, breaker_core::Rejected> {
        self.core.acquire()
    }
    fn record(&self, ticket: Ticket, outcome: Outcome, _: u64) -> Recorded {
        self.core.record(ticket, outcome)
    }
    fn trip(&self, _: u64) {
        self.core.trip()
    }
    fn reset(&self, _: u64) {
        self.core.reset()
    }
    fn state(&self, _: u64) -> State {
        self.core.state()
    }
    fn advance_to(&self, now: u64) {
        let behind = now - self.core.now().as_millis();
        self.mock.increment(Duration::from_millis(behind));
    }
    fn core(&self) -> &CoreBreaker {
        &self.core
    }
}

type Log = Arc<Mutex<Vec<Transition>>>;

/// A core on a mock clock whose listener appends to the returned log.
fn observed(config: Config) -> (CoreBreaker, std::sync::Arc<breaker_core::quanta::Mock>, Log) {
    let (clock, mock) = breaker_core::quanta::Clock::mock();
    let log = Log::default();
    let sink = Arc::clone(&log);
    let core = CoreBreaker::builder(config)
        .clock(clock)
        .on_transition(move |t| sink.lock().unwrap().push(t.clone()))
        .build()
        .unwrap();
    (core, mock, log)
}

/// A reported transition in the model's terms.
fn as_model(t: &Transition) -> (Seen, Seen, &'static str, u64) {
    (seen(t.from()), seen(t.to()), t.reason().as_str(), t.sequence())
}

fn run(breaker: &dyn Driven, log: &Log, config: Config, start: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let limits = config.validate().unwrap();
    let mut model = Model::new(limits.threshold(), limits.half_open_max(), limits.timeout().as_millis() as u64);
    let mut tickets: Vec<(Ticket, breaker_model::Ticket)> = Vec::new();
    let mut now = start;
    for (step, &op) in ops.iter().enumerate() {
        let (real, expected) = match op {
            Op::Acquire => match (breaker.acquire(now), model.acquire(now)) {
                (Ok(ticket), Ok(model_ticket)) => {
                    tickets.push((ticket, model_ticket));
                    (Answer::Admitted, Answer::Admitted)
                }
                (real, expected) => (
                    real.map_or_else(
                        |r| Answer::Rejected { retry_after_ms: r.retry_after().as_millis() as u64 },
                        |_| Answer::Admitted,
                    ),
                    expected.map_or_else(|retry_after_ms| Answer::Rejected { retry_after_ms }, |_| Answer::Admitted),
                ),
            },
            Op::Record(_, _) if tickets.is_empty() => continue,
            Op::Record(pick, outcome) => {
                let (ticket, model_ticket) = tickets[pick % tickets.len()];
                let real = breaker.record(ticket, outcome, now) == Recorded::Applied;
                let model_outcome = match outcome {
                    Outcome::Success => breaker_model::Outcome::Success,
                    Outcome::Failure => breaker_model::Outcome::Failure,
                    Outcome::Ignored => breaker_model::Outcome::Ignored,
                };
                (Answer::Recorded(real), Answer::Recorded(model.record(model_ticket, model_outcome, now)))
            }
            Op::Trip => {
                breaker.trip(now);
                model.trip(now);
                (Answer::Done, Answer::Done)
            }
            Op::Reset => {
                breaker.reset(now);
                model.reset();
                (Answer::Done, Answer::Done)
            }
            Op::Advance(ms) => {
                now += ms;
                breaker.advance_to(now);
                (Answer::Done, Answer::Done)
            }
        };
        prop_assert_eq!(real, expected, "step {} {:?}", step, op);
        let word = breaker.core().snapshot();
        prop_assert_eq!(word.phase(), stored(&model), "stored phase after step {} {:?}", step, op);
        prop_assert_eq!(word.count(), model.count(), "count after step {} {:?}", step, op);
        prop_assert_eq!(seen(breaker.state(now)), model.seen(now), "state after step {} {:?}", step, op);
        let reported: Vec<_> = log.lock().unwrap().drain(..).map(|t| as_model(&t)).collect();
        let changes: Vec<_> =
            model.take_changes().into_iter().map(|c| (c.from, c.to, c.reason.as_str(), c.generation)).collect();
        prop_assert_eq!(reported, changes, "transitions reported by step {} {:?}", step, op);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn explicit_time_api_matches_the_model(config in config(), start in start(), ops in prop::collection::vec(op(), 1..200)) {
        let (core, _mock, log) = observed(config);
        run(&Explicit(core), &log, config, start, &ops)?;
    }

    #[test]
    fn clock_reading_api_matches_the_model(config in config(), ops in prop::collection::vec(op(), 1..200)) {
        let (core, mock, log) = observed(config);
        run(&Clocked { core, mock }, &log, config, 0, &ops)?;
    }
}
