//! The `core_vs_model` target: a config and a sequence of operations applied
//! to `CoreBreaker`'s time-explicit API and to [`Model`] side by side, with
//! every answer, the state word and the core's invariants checked after every
//! step. The ideas are those of `crates/breakerbox-model/tests/core.rs`, with
//! any config, any start time, tickets reported in any order (twice, late,
//! never), jumps of any size and clocks that step back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::Arbitrary;
use breakerbox_core::{CoreBreaker, RateWindow, Recorded, Ring, Ticket, Timestamp, Transition};
use breakerbox_model::{Model, Phase, Refused};

use crate::config::{ConfigInput, CoreWatchInput, PolicyInput, check_validation, policy_fits};
use crate::time::Jump;
use crate::{MAX_TICKET_AGE, Outcome, seen, stored};

/// The stamp field's modulus: the word keeps transition times mod 2^38 ms.
const STAMP_MODULUS: u64 = 1 << 38;

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
    /// `acquire_at(now)`; an admitted call's ticket joins the held tickets.
    Acquire,
    /// `record_at(ticket, outcome, now)` with a held ticket, chosen by index
    /// among every ticket issued so far (reported or not), mod their number.
    Record {
        /// Which ticket.
        pick: u16,
        /// Its outcome.
        outcome: Outcome,
    },
    /// `trip_at(now)`.
    Trip,
    /// `trip_for_at(ms, now)`.
    TripFor(u16),
    /// `isolate_at(now)`.
    Isolate,
    /// `reset_at(now)`.
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

/// Runs the `core_vs_model` target's checks on one input.
///
/// # Panics
///
/// On the first disagreement between the core and the model, or a broken
/// invariant, naming the step and the operation.
pub fn core_vs_model(input: &Input) {
    let config = input.config.config();
    let expected = check_validation(&config);
    let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let Some(valid) = expected else {
        assert_eq!(CoreBreaker::with_clock(config, clock).map(|_| ()), config.validate().map(|_| ()));
        return;
    };
    if !policy_fits(&valid, &input.policy) {
        return;
    }
    let timeout_ms = valid.timeout().as_millis() as u64;
    let built = CoreBreaker::builder(config)
        .clock(clock)
        .success_threshold(input.policy.success_threshold())
        .backoff(input.policy.backoff(timeout_ms))
        .consecutive_failures(!input.watch.consecutive_off)
        .on_transition(move |t| sink.lock().unwrap().push(t.clone()))
        .build();
    let core = match (expected, built) {
        (Some(limits), Ok(core)) => {
            let mut expected = limits.config();
            if input.watch.consecutive_off {
                expected.threshold = 0;
            }
            assert_eq!(core.limits().config(), expected, "CoreBreaker::builder({config:?})");
            let successes = input.policy.success_threshold().max(1);
            assert_eq!(core.limits().success_threshold(), successes, "success threshold of {:?}", input.policy);
            core
        }
        (None, Err(err)) => {
            assert_eq!(Err(err), config.validate(), "CoreBreaker::with_clock({config:?})");
            return;
        }
        (expected, got) => panic!("CoreBreaker::with_clock({config:?}) = {got:?}, validate gave {expected:?}"),
    };
    let limits = core.limits();
    let timeout_ms = u64::try_from(limits.timeout().as_millis()).expect("validated timeouts fit in u64 ms");
    let mut run = Run {
        model: input.watch.facade().model(input.policy.model(&limits)),
        threshold: limits.threshold(),
        half_open_max: limits.half_open_max(),
        timeout_ms,
        core,
        now: input.start.millis(),
        last_transition: None,
        tickets: Vec::new(),
        heard,
        window: input.watch.rate.map(|rate| RateWindow::new(rate.real().validate().expect("in range by construction"))),
        ring: Ring::new(),
    };
    run.check("start", None);
    for (step, op) in input.ops.iter().enumerate() {
        run.step(step, *op);
    }
}

impl Run {
    fn step(&mut self, step: usize, op: Op) {
        let at = Timestamp::from_millis(self.now);
        let generation = self.model.generation();
        match op {
            Op::Acquire => match (self.core.acquire_at(at), self.model.acquire(self.now)) {
                (Ok(real), Ok(model)) => self.tickets.push(Held { real, model, generation: self.model.generation() }),
                (Err(rejected), Err(Refused::HeldOpen)) => {
                    assert!(rejected.is_held_open(), "step {step} {op:?} at {}: {rejected:?} not held open", self.now);
                    assert_eq!((rejected.retry_after(), rejected.retry_after_secs()), (None, None));
                }
                (Err(rejected), Err(Refused::RetryAfter(retry_after))) => {
                    assert!(!rejected.is_held_open(), "step {step} {op:?}: {rejected:?} held open");
                    assert_eq!(
                        rejected.retry_after(),
                        Some(Duration::from_millis(retry_after)),
                        "step {step} {op:?} at {}: retry_after ({:?})",
                        self.now,
                        self.model
                    );
                    assert!(retry_after >= 1, "step {step} {op:?}: a rejection with no time left");
                }
                (real, model) => {
                    panic!("step {step} {op:?} at {}: core {real:?}, model {model:?} ({:?})", self.now, self.model)
                }
            },
            Op::Record { .. } if self.tickets.is_empty() => {}
            Op::Record { pick, outcome } => {
                let held = self.tickets[usize::from(pick) % self.tickets.len()];
                let real = self.core.record_at(held.real, outcome.real(), at) == Recorded::Applied;
                // As the facade does: an applied result goes into the
                // window, and a failure that tips it opens the breaker.
                let failed = outcome.real() == breakerbox_core::Outcome::Failure;
                if let Some(window) =
                    self.window.as_ref().filter(|_| real && outcome.real() != breakerbox_core::Outcome::Ignored)
                {
                    if window.record(&self.ring, held.real, at, failed, [&self.ring]) {
                        self.core.open_on_rate_at(held.real, at);
                    }
                }
                let model = self.model.record(held.model, outcome.model(), self.now);
                assert_eq!(
                    real, model,
                    "step {step} {op:?} at {}: applied? ticket of generation {} in generation {generation} ({:?})",
                    self.now, held.generation, self.model
                );
            }
            Op::Trip => {
                self.core.trip_at(at);
                self.model.trip(self.now);
            }
            Op::TripFor(ms) => {
                self.core.trip_for_at(std::time::Duration::from_millis(u64::from(ms)), at);
                self.model.trip_for(self.now, u64::from(ms));
            }
            Op::Isolate => {
                self.core.isolate_at(at);
                self.model.isolate(self.now);
            }
            Op::Reset => {
                self.core.reset_at(at);
                self.model.reset();
            }
            Op::Advance(jump) => self.now = jump.target_ms(self.now, &self.model, self.timeout_ms),
            Op::Rewind(ms) => self.now = self.now.saturating_sub(u64::from(ms)),
            Op::Peek(jump) => {
                let then = jump.target_ms(self.now, &self.model, self.timeout_ms);
                assert_eq!(
                    seen(self.core.state_at(Timestamp::from_millis(then))),
                    self.model.seen(then),
                    "step {step} {op:?}: state_at({then}) with now {} ({:?})",
                    self.now,
                    self.model
                );
            }
        }
        if self.model.generation() != generation {
            assert_eq!(self.model.generation(), generation + 1, "one step makes at most one transition");
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
        assert_eq!(heard, changes, "step {step} {op:?} at {}: transitions reported", self.now);
        // Inside the documented generation limit: see MAX_TICKET_AGE.
        let current = self.model.generation();
        self.tickets.retain(|held| current - held.generation < MAX_TICKET_AGE);
        self.check(step, Some(op));
    }

    /// Everything that must hold between steps.
    fn check(&self, step: impl core::fmt::Display, op: Option<Op>) {
        let word = self.core.snapshot();
        let limits = self.core.limits();
        let context = || format!("after step {step} {op:?} at {}: word {word:?}, model {:?}", self.now, self.model);
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
            seen(self.core.state_at(Timestamp::from_millis(self.now))),
            self.model.seen(self.now),
            "state_at(now) {}",
            context()
        );
    }
}
