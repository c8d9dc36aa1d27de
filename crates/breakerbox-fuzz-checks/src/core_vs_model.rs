//! The `core_vs_model` target, also the engine of the property test in
//! `crates/breakerbox-model/tests/core.rs`: a config and a sequence of
//! operations applied to `CoreBreaker` and to [`Model`] side by side, with
//! every answer, every reported transition, the state word and the core's
//! invariants checked after every step. Any config, any start time, tickets
//! reported in any order (twice, late, never), jumps of any size and clocks
//! that step back, through either of the core's APIs ([`Api`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::Arbitrary;
use breakerbox_core::__private::{RateRule, RateWindow, RawWord as _, Ring};
use breakerbox_core::quanta::{Clock, Mock};
use breakerbox_core::{CoreBreaker, FailureRate, Recorded, Ticket, Timestamp, Transition};
use breakerbox_model::{Model, Phase, Refused};

use crate::config::{ConfigInput, CoreWatchInput, PolicyInput, check_validation, policy_fits};
use crate::time::Jump;
use crate::{MAX_TICKET_AGE, Outcome, seen, stored};

/// The stamp field's modulus: the word keeps transition times mod 2^38 ms.
const STAMP_MODULUS: u64 = 1 << 38;

const NANOS_PER_MS: u64 = 1_000_000;

/// The latest time (ms) a run through [`Api::Clocked`] moves to: the mock
/// clock counts nanoseconds in a `u64`. About 584 years, 67 wraps of the
/// stamp field.
pub const CLOCKED_MAX_MS: u64 = u64::MAX / NANOS_PER_MS;

/// Which of the core's two APIs a run drives. The driver keeps the time
/// either way; the clock-reading API reads it from a `quanta` mock clock the
/// driver sets whenever the time moves, so nothing sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `acquire_at`, `record_at`, `trip_at` and the rest, given the time.
    Explicit,
    /// `acquire`, `record`, `trip` and the rest, reading the mock clock;
    /// times past [`CLOCKED_MAX_MS`] are clamped to it.
    Clocked,
}

/// What a run takes beyond its [`Input`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Harness {
    /// The API the operations go through.
    pub api: Api,
    /// Milliseconds added to the input's failure-rate window, if it has one.
    /// [`RateInput`](crate::config::RateInput) gives whole tens of ms, so
    /// every bucket is a whole ms; 1 to 9 here make the core round the
    /// buckets up.
    pub window_extra_ms: u8,
}

/// Where the breaker's time starts (ms after its base instant). A closed
/// breaker reads no elapsed time, so any start is inside the documented
/// limits, including just below a wrap of the 38-bit stamp and the top of
/// `u64`.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the base instant.
    Zero,
    /// `before` ms before the stamp field's `wraps + 1`-th wrap.
    BeforeWrap {
        /// Which wrap (0 is the first, at 2^38 ms).
        wraps: u8,
        /// How far before it.
        before: u16,
    },
    /// Any time.
    Any(u64),
}

impl Start {
    /// The start time in ms.
    pub fn millis(self) -> u64 {
        match self {
            Start::Zero => 0,
            Start::BeforeWrap { wraps, before } => ((u64::from(wraps) + 1) * STAMP_MODULUS) - u64::from(before),
            Start::Any(ms) => ms,
        }
    }
}

/// One operation.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Asks for a permit; an admitted call's ticket joins the held tickets.
    Acquire,
    /// Reports a held ticket, chosen by index among every ticket issued so
    /// far (reported or not), mod their number.
    Record {
        /// Which ticket.
        pick: u16,
        /// Its outcome.
        outcome: Outcome,
    },
    /// `trip`.
    Trip,
    /// `trip_for` this many ms.
    TripFor(u16),
    /// `isolate`.
    Isolate,
    /// `reset`.
    Reset,
    /// Moves time forward.
    Advance(Jump),
    /// `state_at(t)` for a `t` this jump lands on, without moving time.
    Peek(Jump),
    /// Moves time back this many ms (not below 0): the next operations see a
    /// `now` before the last transition, as when another thread's clock read
    /// raced it, which the core documents as no time elapsed. At most
    /// 65 535 ms a step, so even thousands of steps stay far inside the
    /// 2^37 ms bound on the distance from the last transition.
    Rewind(u16),
}

/// The `core_vs_model` target's input.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The config; a refused one is checked and ends the run.
    pub config: ConfigInput,
    /// The builder's success threshold and backoff; a combination that does
    /// not fit ends the run (the `config` target checks the refusal).
    pub policy: PolicyInput,
    /// A failure-rate window (one ring, as one thread's calls fill it) and
    /// the consecutive rule switched off.
    pub watch: CoreWatchInput,
    /// The time of the first operation.
    pub start: Start,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// A ticket held by the driver: the core's and the model's, and the model's
/// generation it was issued in.
#[derive(Clone, Copy, Debug)]
struct Held {
    real: Ticket,
    model: breakerbox_model::Ticket,
    generation: u64,
}

/// The driver's state between steps.
struct Run {
    core: CoreBreaker,
    api: Api,
    /// The clock the core reads, kept at `now` for [`Api::Clocked`].
    mock: Arc<Mock>,
    model: Model,
    threshold: u32,
    half_open_max: u32,
    timeout_ms: u64,
    now: u64,
    /// When the last transition happened: `None` before the first, when the
    /// word still carries the initial stamp 0.
    last_transition: Option<u64>,
    tickets: Vec<Held>,
    /// What the core's listener has heard and the driver not yet checked.
    heard: Arc<Mutex<Vec<Transition>>>,
    window: Option<RateWindow>,
    ring: Ring,
}

/// Runs the `core_vs_model` target's checks on one input, through each API
/// in turn, with the input's failure-rate window as given.
///
/// # Panics
///
/// As [`run`].
pub fn core_vs_model(input: &Input) {
    for api in [Api::Explicit, Api::Clocked] {
        run(input, Harness { api, window_extra_ms: 0 });
    }
}

/// Builds the breaker and the model `input` describes and applies its
/// operations to both through `harness`. `false` if no operation ran: the
/// config was refused (and the refusal checked), or the builder's options
/// do not fit it (which the `config` target checks).
///
/// # Panics
///
/// On the first disagreement between the core and the model, or a broken
/// invariant, naming the API, the step, the operation and the time.
pub fn run(input: &Input, harness: Harness) -> bool {
    let config = input.config.config();
    let Some(valid) = check_validation(&config) else {
        let (clock, _mock) = Clock::mock();
        assert_eq!(
            CoreBreaker::with_clock(config, clock).map(drop),
            config.validate().map(drop),
            "CoreBreaker::with_clock({config:?})"
        );
        return false;
    };
    if !policy_fits(&valid, &input.policy) {
        return false;
    }
    let (clock, mock) = Clock::mock();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let timeout_ms = u64::try_from(valid.timeout().as_millis()).expect("validated timeouts fit in u64 ms");
    let core = CoreBreaker::builder(config)
        .clock(clock)
        .success_threshold(input.policy.success_threshold())
        .backoff(input.policy.backoff(timeout_ms))
        .consecutive_failures(!input.watch.consecutive_off)
        .on_transition(move |t| sink.lock().unwrap().push(t.clone()))
        .build()
        .unwrap_or_else(|err| panic!("CoreBreaker::builder({config:?}) with {:?}: {err}", input.policy));
    let mut expected = valid.config();
    if input.watch.consecutive_off {
        expected.threshold = 0;
    }
    assert_eq!(core.config(), expected, "CoreBreaker::builder({config:?})");
    let limits = core.valid_config();
    let successes = input.policy.success_threshold().max(1);
    assert_eq!(limits.success_threshold(), successes, "success threshold of {:?}", input.policy);
    let rate = input.watch.rate.map(|rate| {
        let given = rate.real();
        let window = given.window() + Duration::from_millis(u64::from(harness.window_extra_ms));
        let rule = RateRule::new(&FailureRate::new(given.ratio(), given.min_calls(), window));
        // The model's own reading of the documented bucket width, so that
        // the core's rounding is checked, not copied.
        let bucket_ms = (window.as_millis() as u64).div_ceil(breakerbox_model::BUCKETS);
        (rule.expect("in range by construction"), breakerbox_model::Rate { bucket_ms, ..rate.model() })
    });
    let model = CoreWatchInput { rate: None, ..input.watch }.facade().model(input.policy.model(&limits));
    let mut run = Run {
        model: match rate {
            Some((_, rate)) => model.with_rate(rate),
            None => model,
        },
        threshold: limits.threshold(),
        half_open_max: limits.half_open_max(),
        timeout_ms,
        core,
        api: harness.api,
        mock,
        now: 0,
        last_transition: None,
        tickets: Vec::new(),
        heard,
        window: rate.map(|(rule, _)| RateWindow::new(rule)),
        ring: Ring::new(),
    };
    run.move_to(input.start.millis());
    run.check("start", None);
    for (step, op) in input.ops.iter().enumerate() {
        run.step(step, *op);
    }
    true
}

impl Run {
    /// Calls the core through the run's API: `explicit` given the driver's
    /// time, or `clocked`, which reads the same time from the mock clock.
    fn call<T>(
        &self,
        explicit: impl FnOnce(&CoreBreaker, Timestamp) -> T,
        clocked: impl FnOnce(&CoreBreaker) -> T,
    ) -> T {
        match self.api {
            Api::Explicit => explicit(&self.core, Timestamp::from_millis(self.now)),
            Api::Clocked => clocked(&self.core),
        }
    }

    /// Moves the driver's time, and the mock clock with it.
    fn move_to(&mut self, ms: u64) {
        match self.api {
            Api::Explicit => self.now = ms,
            Api::Clocked => {
                self.now = ms.min(CLOCKED_MAX_MS);
                let (target, current) = (self.now * NANOS_PER_MS, self.mock.value());
                if target >= current {
                    self.mock.increment(target - current);
                } else {
                    self.mock.decrement(current - target);
                }
                assert_eq!(self.core.now(), Timestamp::from_millis(self.now), "the core reads the mock clock's time");
            }
        }
    }

    /// Where a message about step `step` happened.
    fn at_step(&self, step: impl core::fmt::Display, op: Option<Op>) -> String {
        at_step(self.api, self.now, step, op)
    }

    fn step(&mut self, step: usize, op: Op) {
        let generation = self.model.generation();
        let (api, now) = (self.api, self.now);
        let here = move || at_step(api, now, step, Some(op));
        match op {
            Op::Acquire => {
                match (self.call(CoreBreaker::acquire_at, CoreBreaker::acquire), self.model.acquire(self.now)) {
                    (Ok(real), Ok(model)) => {
                        self.tickets.push(Held { real, model, generation: self.model.generation() });
                    }
                    (Err(rejected), Err(Refused::HeldOpen)) => {
                        assert!(rejected.is_held_open(), "{}: {rejected:?} not held open", here());
                        assert_eq!(
                            (rejected.retry_after(), rejected.retry_after_secs()),
                            (None, None),
                            "{}: held open, with a time to retry",
                            here()
                        );
                    }
                    (Err(rejected), Err(Refused::RetryAfter(retry_after))) => {
                        assert!(!rejected.is_held_open(), "{}: {rejected:?} held open", here());
                        assert_eq!(
                            rejected.retry_after(),
                            Some(Duration::from_millis(retry_after)),
                            "{}: retry_after ({:?})",
                            here(),
                            self.model
                        );
                        assert!(retry_after >= 1, "{}: a rejection with no time left", here());
                    }
                    (real, model) => panic!("{}: core {real:?}, model {model:?} ({:?})", here(), self.model),
                }
            }
            Op::Record { .. } if self.tickets.is_empty() => {}
            Op::Record { pick, outcome } => {
                let held = self.tickets[usize::from(pick) % self.tickets.len()];
                let real = self.call(
                    |core, at| core.record_at(held.real, outcome.real(), at),
                    |core| core.record(held.real, outcome.real()),
                ) == Recorded::Applied;
                // As the facade does: an applied result goes into the
                // window, and a failure that tips it opens the breaker.
                if let Some(window) = self.window.as_ref().filter(|_| real && outcome != Outcome::Ignored) {
                    let at = self.call(|_, at| at, CoreBreaker::now);
                    if window.record(&self.ring, held.real, at, outcome == Outcome::Failure, [&self.ring]) {
                        self.call(|core, at| core.open_on_rate_at(held.real, at), |core| core.open_on_rate(held.real));
                    }
                }
                let model = self.model.record(held.model, outcome.model(), self.now);
                assert_eq!(
                    real,
                    model,
                    "{}: applied? ticket of generation {} in generation {generation} ({:?})",
                    here(),
                    held.generation,
                    self.model
                );
            }
            Op::Trip => {
                self.call(CoreBreaker::trip_at, CoreBreaker::trip);
                self.model.trip(self.now);
            }
            Op::TripFor(ms) => {
                let duration = Duration::from_millis(u64::from(ms));
                self.call(|core, at| core.trip_for_at(duration, at), |core| core.trip_for(duration));
                self.model.trip_for(self.now, u64::from(ms));
            }
            Op::Isolate => {
                self.call(CoreBreaker::isolate_at, CoreBreaker::isolate);
                self.model.isolate(self.now);
            }
            Op::Reset => {
                self.call(CoreBreaker::reset_at, CoreBreaker::reset);
                self.model.reset();
            }
            Op::Advance(jump) => self.move_to(jump.target_ms(self.now, &self.model, self.timeout_ms)),
            Op::Rewind(ms) => self.move_to(self.now.saturating_sub(u64::from(ms))),
            Op::Peek(jump) => {
                let then = jump.target_ms(self.now, &self.model, self.timeout_ms);
                assert_eq!(
                    seen(self.core.state_at(Timestamp::from_millis(then))),
                    self.model.seen(then),
                    "{}: state_at({then}) ({:?})",
                    here(),
                    self.model
                );
            }
        }
        if self.model.generation() != generation {
            assert_eq!(self.model.generation(), generation + 1, "{}: more than one transition", here());
            self.last_transition = Some(self.now);
        }
        let heard: Vec<_> = self
            .heard
            .lock()
            .unwrap()
            .drain(..)
            .map(|t| (seen(t.from()), seen(t.to()), t.reason().as_str(), t.sequence(), t.at().as_millis()))
            .collect();
        let changes: Vec<_> = self
            .model
            .take_changes()
            .into_iter()
            .map(|c| (c.from, c.to, c.reason.as_str(), c.generation, self.now))
            .collect();
        assert_eq!(
            heard,
            changes,
            "{}: transitions reported (from, to, reason, sequence, at)",
            self.at_step(step, Some(op))
        );
        // Inside the documented generation limit: see MAX_TICKET_AGE.
        let current = self.model.generation();
        self.tickets.retain(|held| current - held.generation < MAX_TICKET_AGE);
        self.check(step, Some(op));
    }

    /// Everything that must hold between steps.
    fn check(&self, step: impl core::fmt::Display, op: Option<Op>) {
        let word = self.core.snapshot();
        let limits = self.core.valid_config();
        let context = || format!("after {}: word {word:?}, model {:?}", self.at_step(&step, op), self.model);
        assert_eq!(word.phase(), stored(&self.model), "stored phase {}", context());
        assert_eq!(word.held_open(), matches!(self.model.phase(), Phase::Isolated { .. }), "held open {}", context());
        assert_eq!(u64::from(word.epoch()), self.model.generation() % 256, "epoch {}", context());
        // The count, by the layout the word's docs state.
        let bits = |max: u32| u32::BITS - max.leading_zeros();
        let (in_bits, ok_bits) = (bits(limits.half_open_max()), bits(limits.success_threshold() - 1));
        let count = word.count();
        let time = match self.model.phase() {
            Phase::Closed { failures } => {
                assert_eq!(count, failures, "failures {}", context());
                assert!(count < self.threshold.max(1), "closed count below threshold {}", context());
                self.last_transition.unwrap_or(0)
            }
            Phase::Open { until, .. } => {
                assert_eq!(count, self.model.streak(), "open streak {}", context());
                until
            }
            Phase::Isolated { since } => {
                assert_eq!(count, 0, "held open count {}", context());
                since
            }
            Phase::HalfOpen { since, in_flight, successes } => {
                assert_eq!(count & ((1 << in_bits) - 1), in_flight, "probes in flight {}", context());
                assert_eq!((count >> in_bits) & ((1 << ok_bits) - 1), successes, "successes {}", context());
                assert_eq!(count >> (in_bits + ok_bits), self.model.streak(), "half-open streak {}", context());
                assert!(in_flight <= self.half_open_max, "half-open count within half_open_max {}", context());
                since
            }
        };
        assert_eq!(word.stamp(), time % STAMP_MODULUS, "time field {}", context());
        assert_eq!(
            seen(self.call(CoreBreaker::state_at, CoreBreaker::state)),
            self.model.seen(self.now),
            "state now {}",
            context()
        );
    }
}

/// Where a message about step `step` happened.
fn at_step(api: Api, now: u64, step: impl core::fmt::Display, op: Option<Op>) -> String {
    match op {
        Some(op) => format!("{api:?} API, step {step} {op:?} at {now} ms"),
        None => format!("{api:?} API, {step} at {now} ms"),
    }
}
