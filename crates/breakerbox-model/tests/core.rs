//! Property test: random sequences of operations and time steps, applied to
//! the core and to the reference model, must get the same answers at every
//! step.
//!
//! Each sequence runs twice: through the time-explicit API starting at a
//! random offset (some just below a wrap of the word's 38-bit time field), and
//! through the clock-reading API on a mock clock. Configs include success
//! thresholds above 1, exponential backoffs with and without jitter, and a
//! failure-rate rule (a [`RateWindow`] and one [`Ring`], driven as the facade
//! drives them) with and without the consecutive rule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox_core::{
    Backoff, Config, CoreBreaker, FailureRate, Jitter, Limits, Outcome, RateWindow, Recorded, Ring, State, Ticket,
    Timestamp, Transition,
};
use breakerbox_model::{Model, Phase, Refused, Seen};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    Acquire,
    /// Report the outcome of a held ticket, chosen by index among all issued.
    Record(usize, Outcome),
    Trip,
    TripFor(u64),
    Isolate,
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
        1 => (0u64..2_000).prop_map(Op::TripFor),
        1 => Just(Op::Isolate),
        2 => Just(Op::Reset),
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

/// The builder's options: a success threshold and a backoff, as the core
/// takes them and as the model does.
#[derive(Clone, Copy, Debug)]
struct Policy {
    success_threshold: u32,
    backoff: Backoff,
    factor_permille: u32,
    /// The cap as a multiple of the timeout; 0 for a fixed backoff.
    max_times: u64,
    jitter: Jitter,
    seed: u64,
    /// A failure-rate rule: the ratio in percent, the calls it needs, the
    /// window in ms.
    rate: Option<(u32, u32, u64)>,
    /// Whether the consecutive rule is on.
    consecutive: bool,
}

impl Policy {
    fn window(&self) -> Option<RateWindow> {
        let (percent, min_calls, window_ms) = self.rate?;
        let rate = FailureRate::new(f64::from(percent) / 100.0, min_calls, Duration::from_millis(window_ms));
        Some(RateWindow::new(rate.validate().expect("generated in range")))
    }

    fn model(&self, limits: &Limits) -> Model {
        let timeout = limits.timeout().as_millis() as u64;
        let jitter = match self.jitter {
            Jitter::Full => breakerbox_model::Jitter::Full,
            Jitter::Equal => breakerbox_model::Jitter::Equal,
            _ => breakerbox_model::Jitter::None,
        };
        let max_ms = if self.max_times == 0 { timeout } else { timeout * self.max_times };
        let backoff =
            breakerbox_model::Backoff { factor_permille: self.factor_permille, max_ms, jitter, seed: self.seed };
        // With the rule off the limits read 0; the model keeps a threshold it
        // does not use.
        let threshold = limits.threshold().max(1);
        let model = Model::with_policy(threshold, limits.half_open_max(), timeout, limits.success_threshold(), backoff);
        let model = if self.consecutive { model } else { model.without_consecutive() };
        match self.rate {
            // Buckets of a tenth of the window, rounded up; the ratio in ppm.
            Some((percent, min_calls, window_ms)) => model.with_rate(breakerbox_model::Rate {
                ratio_ppm: percent * 10_000,
                min_calls,
                bucket_ms: window_ms.div_ceil(10),
            }),
            None => model,
        }
    }
}

fn policy(timeout_ms: u64) -> impl Strategy<Value = Policy> {
    let jitter = prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal)];
    let rate = prop_oneof![Just(None), (1u32..=100, 1u32..=6, 10u64..=400).prop_map(Some)];
    let consecutive = prop_oneof![2 => Just(true), 1 => Just(false)];
    (1u32..=3, prop_oneof![Just((1000u32, 0u64)), (1500u32..=3000, 1u64..=40)], jitter, any::<u64>(), rate, consecutive)
        .prop_map(move |(success_threshold, (factor_permille, max_times), jitter, seed, rate, consecutive)| {
            let backoff = if max_times == 0 {
                Backoff::fixed()
            } else {
                let max = Duration::from_millis(timeout_ms * max_times);
                Backoff::exponential(f64::from(factor_permille) / 1000.0, max)
            };
            Policy {
                success_threshold,
                backoff: backoff.jitter(jitter).seed(seed),
                factor_permille,
                max_times,
                jitter,
                seed,
                rate,
                consecutive,
            }
        })
}

/// A config and a policy for it.
fn setup() -> impl Strategy<Value = (Config, Policy)> {
    config().prop_flat_map(|config| {
        let timeout = config.timeout.as_millis() as u64;
        (Just(config), policy(timeout))
    })
}

fn start() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), (1u64 << 38) - 700..(1u64 << 38), (5u64 << 38) - 300..(5u64 << 38)]
}

/// One step's answer, in terms both sides can give.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Admitted,
    Rejected { retry_after_ms: u64 },
    HeldOpen,
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
        Phase::Open { .. } | Phase::Isolated { .. } => State::Open,
        Phase::HalfOpen { .. } => State::HalfOpen,
    }
}

/// The bits a field holding `0..=max` takes.
fn bits(max: u32) -> u32 {
    u32::BITS - max.leading_zeros()
}

/// The word's count in the model's terms, decoded by the layout the word's
/// docs state: (failures or probes in flight, probe successes, streak).
fn decoded(word: breakerbox_core::StateWord, limits: &Limits) -> (u32, u32, u32) {
    let count = word.count();
    match word.phase() {
        State::Closed => (count, 0, 0),
        State::Open if word.held_open() => (0, 0, 0),
        State::Open => (0, 0, count),
        State::HalfOpen => {
            let (in_bits, ok_bits) = (bits(limits.half_open_max()), bits(limits.success_threshold() - 1));
            (count & ((1 << in_bits) - 1), (count >> in_bits) & ((1 << ok_bits) - 1), count >> (in_bits + ok_bits))
        }
    }
}

fn model_decoded(model: &Model) -> (u32, u32, u32) {
    match model.phase() {
        Phase::Closed { failures } => (failures, 0, 0),
        Phase::Open { .. } => (0, 0, model.streak()),
        Phase::Isolated { .. } => (0, 0, 0),
        Phase::HalfOpen { in_flight, successes, .. } => (in_flight, successes, model.streak()),
    }
}

/// The core behind one of its two APIs.
trait Driven {
    fn acquire(&self, now: u64) -> Result<Ticket, breakerbox_core::Rejected>;
    fn record(&self, ticket: Ticket, outcome: Outcome, now: u64) -> Recorded;
    fn open_on_rate(&self, ticket: Ticket, now: u64) -> bool;
    /// The breaker's time at `now`.
    fn timestamp(&self, now: u64) -> Timestamp;
    fn trip(&self, now: u64);
    fn trip_for(&self, ms: u64, now: u64);
    fn isolate(&self, now: u64);
    fn reset(&self, now: u64);
    fn state(&self, now: u64) -> State;
    fn advance_to(&self, now: u64);
    fn core(&self) -> &CoreBreaker;
}

struct Explicit(CoreBreaker);

impl Driven for Explicit {
    fn acquire(&self, now: u64) -> Result<Ticket, breakerbox_core::Rejected> {
        self.0.acquire_at(Timestamp::from_millis(now))
    }
    fn record(&self, ticket: Ticket, outcome: Outcome, now: u64) -> Recorded {
        self.0.record_at(ticket, outcome, Timestamp::from_millis(now))
    }
    fn open_on_rate(&self, ticket: Ticket, now: u64) -> bool {
        self.0.open_on_rate_at(ticket, Timestamp::from_millis(now))
    }
    fn timestamp(&self, now: u64) -> Timestamp {
        Timestamp::from_millis(now)
    }
    fn trip(&self, now: u64) {
        self.0.trip_at(Timestamp::from_millis(now))
    }
    fn trip_for(&self, ms: u64, now: u64) {
        self.0.trip_for_at(Duration::from_millis(ms), Timestamp::from_millis(now))
    }
    fn isolate(&self, now: u64) {
        self.0.isolate_at(Timestamp::from_millis(now))
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
    mock: std::sync::Arc<breakerbox_core::quanta::Mock>,
}

impl Driven for Clocked {
    fn acquire(&self, _: u64) -> Result<Ticket, breakerbox_core::Rejected> {
        self.core.acquire()
    }
    fn record(&self, ticket: Ticket, outcome: Outcome, _: u64) -> Recorded {
        self.core.record(ticket, outcome)
    }
    fn open_on_rate(&self, ticket: Ticket, _: u64) -> bool {
        self.core.open_on_rate(ticket)
    }
    fn timestamp(&self, _: u64) -> Timestamp {
        self.core.now()
    }
    fn trip(&self, _: u64) {
        self.core.trip()
    }
    fn trip_for(&self, ms: u64, _: u64) {
        self.core.trip_for(Duration::from_millis(ms))
    }
    fn isolate(&self, _: u64) {
        self.core.isolate()
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
fn observed(config: Config, policy: &Policy) -> (CoreBreaker, std::sync::Arc<breakerbox_core::quanta::Mock>, Log) {
    let (clock, mock) = breakerbox_core::quanta::Clock::mock();
    let log = Log::default();
    let sink = Arc::clone(&log);
    let core = CoreBreaker::builder(config)
        .clock(clock)
        .success_threshold(policy.success_threshold)
        .backoff(policy.backoff)
        .consecutive_failures(policy.consecutive)
        .on_transition(move |t| sink.lock().unwrap().push(t.clone()))
        .build()
        .unwrap();
    (core, mock, log)
}

/// A reported transition in the model's terms.
fn as_model(t: &Transition) -> (Seen, Seen, &'static str, u64) {
    (seen(t.from()), seen(t.to()), t.reason().as_str(), t.sequence())
}

fn run(breaker: &dyn Driven, log: &Log, policy: &Policy, start: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let limits = breaker.core().limits();
    let mut model = policy.model(&limits);
    let window = policy.window();
    let ring = Ring::new();
    let mut tickets: Vec<(Ticket, breakerbox_model::Ticket)> = Vec::new();
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
                        |r| match (r.is_held_open(), r.retry_after()) {
                            (true, None) => Answer::HeldOpen,
                            (false, Some(after)) => Answer::Rejected { retry_after_ms: after.as_millis() as u64 },
                            other => panic!("is_held_open and retry_after disagree: {other:?}"),
                        },
                        |_| Answer::Admitted,
                    ),
                    expected.map_or_else(
                        |refused| match refused {
                            Refused::RetryAfter(retry_after_ms) => Answer::Rejected { retry_after_ms },
                            Refused::HeldOpen => Answer::HeldOpen,
                        },
                        |_| Answer::Admitted,
                    ),
                ),
            },
            Op::Record(_, _) if tickets.is_empty() => continue,
            Op::Record(pick, outcome) => {
                let (ticket, model_ticket) = tickets[pick % tickets.len()];
                let real = breaker.record(ticket, outcome, now) == Recorded::Applied;
                // As the facade does: an applied result goes into the
                // window, and a failure that tips it opens the breaker.
                if let Some(window) = window.as_ref().filter(|_| real && outcome != Outcome::Ignored) {
                    let failed = outcome == Outcome::Failure;
                    let at = breaker.timestamp(now);
                    if window.record(&ring, ticket, at, failed, [&ring]) {
                        breaker.open_on_rate(ticket, now);
                    }
                }
                let model_outcome = match outcome {
                    Outcome::Success => breakerbox_model::Outcome::Success,
                    Outcome::Failure => breakerbox_model::Outcome::Failure,
                    Outcome::Ignored => breakerbox_model::Outcome::Ignored,
                };
                (Answer::Recorded(real), Answer::Recorded(model.record(model_ticket, model_outcome, now)))
            }
            Op::Trip => {
                breaker.trip(now);
                model.trip(now);
                (Answer::Done, Answer::Done)
            }
            Op::TripFor(ms) => {
                breaker.trip_for(ms, now);
                model.trip_for(now, ms);
                (Answer::Done, Answer::Done)
            }
            Op::Isolate => {
                breaker.isolate(now);
                model.isolate(now);
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
        prop_assert_eq!(
            word.held_open(),
            matches!(model.phase(), Phase::Isolated { .. }),
            "held open after step {}",
            step
        );
        prop_assert_eq!(decoded(word, &limits), model_decoded(&model), "count after step {} {:?}", step, op);
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
    fn explicit_time_api_matches_the_model((config, policy) in setup(), start in start(), ops in prop::collection::vec(op(), 1..200)) {
        let (core, _mock, log) = observed(config, &policy);
        run(&Explicit(core), &log, &policy, start, &ops)?;
    }

    #[test]
    fn clock_reading_api_matches_the_model((config, policy) in setup(), ops in prop::collection::vec(op(), 1..200)) {
        let (core, mock, log) = observed(config, &policy);
        run(&Clocked { core, mock }, &log, &policy, 0, &ops)?;
    }
}
