//! The `facade_sequence` target: the facade `Breaker` on a mock clock, driven
//! through everything a caller can do (calls that succeed, fail or panic,
//! classified calls, fallbacks, futures polled by hand and dropped
//! mid-flight, permits held across other operations), mirrored in [`Model`].
//!
//! The facade's semantics are the model's, with these mappings: a panic in
//! the wrapped call (or future) is a failure, counted at the panic (a
//! panicked future may be dropped later, or never polled again: the call is
//! over either way); a permit or an admitted future dropped before it reports
//! is ignored; a future decides at its first poll, not when it is made. After every step the state agrees with the model's
//! and `counts()` equals the driver's own tally exactly: successes and
//! failures count even when stale, ignored results do not, rejections do;
//! `opens` counts the model's changes into open, and the breaker's listener
//! hears exactly the model's changes of state, in order, each once.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::Arbitrary;
use breakerbox::quanta::Mock;
use breakerbox::{Breaker, Counts, Error, OwnedPermit, Permit, Recorded, Rejected, Transition};
use breakerbox_model::{Model, Refused, Seen};

use crate::config::{ConfigInput, PolicyInput, WatchInput, check_validation, policy_fits};
use crate::panics::{catch_deliberate, deliberate};
use crate::time::Jump;
use crate::{MAX_TICKET_AGE, Outcome, seen};

const NANOS_PER_MS: u64 = 1_000_000;

/// How a wrapped call (or future) ends.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// `Ok(1)`.
    Ok,
    /// `Err(2)`.
    Err,
    /// Panics with [`DeliberatePanic`](crate::DeliberatePanic).
    Panic,
}

impl End {
    fn run(self) -> Result<u8, u8> {
        match self {
            End::Ok => Ok(1),
            End::Err => Err(2),
            End::Panic => deliberate(),
        }
    }

    /// The outcome the breaker should count, given the classifier's choice
    /// (`None`: the default one, `Ok` is a success and `Err` a failure).
    /// A panic is a failure whatever the classifier: it never sees a result.
    fn outcome(self, classify: Option<Outcome>) -> Outcome {
        match (self, classify) {
            (End::Panic, _) => Outcome::Failure,
            (_, Some(outcome)) => outcome,
            (End::Ok, None) => Outcome::Success,
            (End::Err, None) => Outcome::Failure,
        }
    }

    /// What the call returns when it ran; `None` for a panic.
    fn returned(self) -> Option<Result<u8, Error<u8>>> {
        match self {
            End::Ok => Some(Ok(1)),
            End::Err => Some(Err(Error::Inner(2))),
            End::Panic => None,
        }
    }
}

/// How a held permit reports.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// `permit.success()`.
    Success,
    /// `permit.failure()`.
    Failure,
    /// `permit.record(outcome)`.
    Record(Outcome),
}

/// One operation.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `call(f)`.
    Call(End),
    /// `call_with(|_| outcome, f)`.
    CallWith {
        /// How `f` ends.
        end: End,
        /// What the classifier says.
        outcome: Outcome,
    },
    /// `call_with_fallback(f, fallback)`.
    CallWithFallback(End),
    /// `try_acquire()`, or `try_acquire_owned()`; the permit is held.
    Acquire {
        /// Whether to take an owned permit.
        owned: bool,
    },
    /// Reports a held permit, chosen by index mod their number.
    Report {
        /// Which permit.
        pick: u16,
        /// How it reports.
        how: Report,
    },
    /// Drops a held permit without reporting.
    DropPermit {
        /// Which permit.
        pick: u16,
    },
    /// Makes a `call_async` (or `call_async(..).classify(|_| outcome)`)
    /// future around an inner future that is pending `pending` times, then
    /// ends; it is not polled yet. An odd `pending` makes it the way a
    /// spawned task does instead, `async move` around a clone of the
    /// breaker's `Arc`, so both kinds of future are driven without a new
    /// field, which would change how saved inputs decode.
    Spawn {
        /// Polls of the inner future that return `Pending`.
        pending: u8,
        /// How the inner future ends.
        end: End,
        /// The classifier's answer, or `None` for `call_async`.
        classify: Option<Outcome>,
    },
    /// Polls a future once with a no-op waker (not one whose poll panicked).
    Poll {
        /// Which future.
        pick: u16,
    },
    /// Drops a future: not yet polled, pending, or after its poll panicked.
    Cancel {
        /// Which future.
        pick: u16,
    },
    /// `trip()`.
    Trip,
    /// `trip_for(ms)`.
    TripFor(u16),
    /// `isolate()`.
    Isolate,
    /// `reset()`.
    Reset,
    /// Moves the mock clock forward.
    Advance(Jump),
}

/// The `facade_sequence` target's input.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The config; a refused one is checked and ends the run.
    pub config: ConfigInput,
    /// The builder's success threshold and backoff; a combination that does
    /// not fit ends the run (the `config` target checks the refusal).
    pub policy: PolicyInput,
    /// A failure rate, slow calls, the consecutive rule switched off.
    pub watch: WatchInput,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// Runs the `facade_sequence` target's checks on one input.
///
/// # Panics
///
/// On the first disagreement with the model or the tally, naming the step
/// and the operation.
pub fn facade_sequence(input: &Input) {
    let config = input.config.config();
    let expected = check_validation(&config);
    let (clock, mock) = breakerbox::quanta::Clock::mock();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    if let Some(valid) = expected {
        if !policy_fits(&valid, &input.policy) {
            return;
        }
    }
    let timeout_ms = expected.map_or(0, |valid| valid.timeout().as_millis() as u64);
    let builder = Breaker::builder(config)
        .clock(clock)
        .success_threshold(input.policy.success_threshold())
        .backoff(input.policy.backoff(timeout_ms))
        .name("fuzzed")
        .on_transition(move |t| sink.lock().unwrap().push(t.clone()));
    let built = input.watch.build(builder).build();
    let breaker = match (expected, built) {
        (Some(limits), Ok(breaker)) => {
            let mut expected = limits.config();
            if input.watch.consecutive_off {
                expected.threshold = 0;
            }
            assert_eq!(breaker.config(), expected, "Breaker::builder({config:?}).clock(mock).build()");
            Arc::new(breaker)
        }
        (None, Err(err)) => {
            assert_eq!(Err(err), config.validate(), "Breaker::builder({config:?}).clock(mock).build()");
            return;
        }
        (expected, got) => {
            panic!("Breaker::builder({config:?}).clock(mock).build() = {got:?}, validate gave {expected:?}")
        }
    };
    let limits = config.validate().expect("checked above");
    let mut run = Run {
        breaker: &breaker,
        mock,
        model: input.watch.model(input.policy.model(&limits)),
        timeout_ms,
        tally: Counts::default(),
        heard,
        permits: Vec::new(),
        flights: Vec::new(),
        retired_permits: Vec::new(),
        retired_flights: Vec::new(),
    };
    run.check("start", None);
    for (step, op) in input.ops.iter().enumerate() {
        run.step(step, *op);
    }
    // Drop what is still held, one at a time, still checking; the retired
    // ones (outside the generation limit) go last, unchecked.
    while !run.permits.is_empty() {
        run.step(input.ops.len(), Op::DropPermit { pick: 0 });
    }
    while !run.flights.is_empty() {
        run.step(input.ops.len(), Op::Cancel { pick: 0 });
    }
}

/// A borrowed or an owned permit.
enum AnyPermit<'b> {
    Borrowed(Permit<'b>),
    Owned(OwnedPermit),
}

impl AnyPermit<'_> {
    fn report(self, how: Report) -> Recorded {
        // The two permit types share their methods but no trait.
        macro_rules! report {
            ($permit:expr) => {
                match how {
                    Report::Success => $permit.success(),
                    Report::Failure => $permit.failure(),
                    Report::Record(outcome) => $permit.record(outcome.real()),
                }
            };
        }
        match self {
            AnyPermit::Borrowed(permit) => report!(permit),
            AnyPermit::Owned(permit) => report!(permit),
        }
    }
}

/// A permit held by the driver, with the model's ticket and generation.
struct HeldPermit<'b> {
    permit: AnyPermit<'b>,
    ticket: breakerbox_model::Ticket,
    generation: u64,
    /// When it was admitted (ms), for the slow-call rule.
    started: u64,
}

type CallFuture<'b> = Pin<Box<dyn Future<Output = Result<u8, Error<u8>>> + 'b>>;

/// A future made by `call_async` and not finished yet.
struct Flight<'b> {
    future: CallFuture<'b>,
    pending: u8,
    end: End,
    classify: Option<Outcome>,
    /// Polls of the inner future so far.
    polls: u32,
    /// The model's ticket and generation once the first poll admitted it,
    /// and when (ms).
    admitted: Option<(breakerbox_model::Ticket, u64, u64)>,
    /// Whether a poll panicked. The call is over then (a failure, counted at
    /// the panic); the caller still holds the future until it drops it, as
    /// a task that caught the panic would, and never polls it again.
    panicked: bool,
}

/// An inner future: `Pending` for `pending` polls, then `end`.
struct Scripted {
    pending: u8,
    end: End,
}

impl Future for Scripted {
    type Output = Result<u8, u8>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<u8, u8>> {
        if self.pending > 0 {
            self.pending -= 1;
            Poll::Pending
        } else {
            Poll::Ready(self.end.run())
        }
    }
}

/// The driver's state between steps.
struct Run<'b> {
    breaker: &'b Arc<Breaker>,
    mock: Arc<Mock>,
    model: Model,
    timeout_ms: u64,
    tally: Counts,
    /// What the breaker's listener has heard and the driver not yet checked.
    heard: Arc<Mutex<Vec<Transition>>>,
    permits: Vec<HeldPermit<'b>>,
    flights: Vec<Flight<'b>>,
    /// Permits held past [`MAX_TICKET_AGE`] generations: kept alive and
    /// untouched until the run ends, like calls that never come back.
    retired_permits: Vec<AnyPermit<'b>>,
    /// Futures admitted more than [`MAX_TICKET_AGE`] generations ago, kept
    /// the same way.
    retired_flights: Vec<CallFuture<'b>>,
}

impl<'b> Run<'b> {
    /// The breaker's clock in ms: the mock started at 0 when the breaker
    /// took its base instant, and the breaker rounds down.
    fn now(&self) -> u64 {
        self.mock.value() / NANOS_PER_MS
    }

    fn step(&mut self, step: usize, op: Op) {
        let generation = self.model.generation();
        let now = self.now();
        let context = |model: &Model| format!("step {step} {op:?} at {now} ms ({model:?})");
        let breaker: &'b Arc<Breaker> = self.breaker;
        match op {
            Op::Call(end) => {
                let mut ran = false;
                let admitted = self.model.acquire(now);
                let result = catch_deliberate(|| {
                    breaker.call(|| {
                        ran = true;
                        end.run()
                    })
                });
                self.called(admitted, ran, end, None, result, &context);
            }
            Op::CallWith { end, outcome } => {
                let mut ran = false;
                let admitted = self.model.acquire(now);
                let result = catch_deliberate(|| {
                    breaker.call_with(
                        |_: &Result<u8, u8>| outcome.real(),
                        || {
                            ran = true;
                            end.run()
                        },
                    )
                });
                self.called(admitted, ran, end, Some(outcome), result, &context);
            }
            Op::CallWithFallback(end) => {
                let mut ran = false;
                let mut fell_back = None;
                let admitted = self.model.acquire(now);
                let result = catch_deliberate(|| {
                    breaker.call_with_fallback(
                        || {
                            ran = true;
                            end.run()
                        },
                        |rejected| {
                            fell_back = Some(rejected);
                            Ok(3)
                        },
                    )
                });
                match admitted {
                    Err(retry_after) => {
                        assert_eq!(result, Some(Ok(3)), "the fallback's answer, {}", context(&self.model));
                        let rejected = fell_back.unwrap_or_else(|| panic!("no fallback, {}", context(&self.model)));
                        check_rejected(rejected, retry_after, &context(&self.model));
                        assert!(!ran, "a rejected call ran, {}", context(&self.model));
                        self.tally.rejections += 1;
                    }
                    Ok(ticket) => {
                        assert!(
                            ran && fell_back.is_none(),
                            "ran {ran}, fell back {fell_back:?}, {}",
                            context(&self.model)
                        );
                        let expected = end.returned().map(|returned| returned.map_err(|err| err.into_inner().unwrap()));
                        assert_eq!(result, expected, "what call_with_fallback returned, {}", context(&self.model));
                        self.settle(ticket, end.outcome(None), now);
                    }
                }
            }
            Op::Acquire { owned } => {
                let admitted = self.model.acquire(now);
                let permit = if owned {
                    breaker.try_acquire_owned().map(AnyPermit::Owned)
                } else {
                    breaker.try_acquire().map(AnyPermit::Borrowed)
                };
                match (admitted, permit) {
                    (Ok(ticket), Ok(permit)) => {
                        let generation = self.model.generation();
                        self.permits.push(HeldPermit { permit, ticket, generation, started: now })
                    }
                    (Err(retry_after), Err(rejected)) => {
                        check_rejected(rejected, retry_after, &context(&self.model));
                        self.tally.rejections += 1;
                    }
                    (admitted, permit) => {
                        let permit = permit.map(|_| "a permit");
                        panic!("model {admitted:?}, facade {permit:?}, {}", context(&self.model))
                    }
                }
            }
            Op::Report { .. } | Op::DropPermit { .. } if self.permits.is_empty() => {}
            Op::Report { pick, how } => {
                let held = self.permits.remove(usize::from(pick) % self.permits.len());
                let outcome = match how {
                    Report::Success => Outcome::Success,
                    Report::Failure => Outcome::Failure,
                    Report::Record(outcome) => outcome,
                };
                let real = held.permit.report(how) == Recorded::Applied;
                let model = self.settle_call(held.ticket, outcome, held.started, now);
                assert_eq!(
                    real,
                    model,
                    "applied? permit of generation {} in generation {generation}, {}",
                    held.generation,
                    context(&self.model)
                );
            }
            Op::DropPermit { pick } => {
                let held = self.permits.remove(usize::from(pick) % self.permits.len());
                drop(held.permit);
                self.settle_call(held.ticket, Outcome::Ignored, held.started, now);
            }
            Op::Spawn { pending, end, classify } => {
                let inner = Scripted { pending, end };
                let classifier = move |_: &Result<u8, u8>| classify.map_or(breakerbox::Outcome::Success, Outcome::real);
                let future: CallFuture<'b> = match (classify, pending % 2 == 1) {
                    (None, false) => Box::pin(breaker.call_async(inner)),
                    (Some(_), false) => Box::pin(breaker.call_async(inner).classify(classifier)),
                    (None, true) => {
                        let owned = Arc::clone(breaker);
                        Box::pin(async move { owned.call_async(inner).await })
                    }
                    (Some(_), true) => {
                        let owned = Arc::clone(breaker);
                        Box::pin(async move { owned.call_async(inner).classify(classifier).await })
                    }
                };
                self.flights.push(Flight { future, pending, end, classify, polls: 0, admitted: None, panicked: false });
            }
            Op::Poll { .. } | Op::Cancel { .. } if self.flights.is_empty() => {}
            Op::Poll { pick } if self.flights[usize::from(pick) % self.flights.len()].panicked => {}
            Op::Poll { pick } => {
                let index = usize::from(pick) % self.flights.len();
                let first = self.flights[index].admitted.is_none();
                let admitted = if first { Some(self.model.acquire(now)) } else { None };
                let flight = &mut self.flights[index];
                let poll = catch_deliberate(|| flight.future.as_mut().poll(&mut Context::from_waker(Waker::noop())));
                match admitted {
                    Some(Err(retry_after)) => {
                        match poll {
                            Some(Poll::Ready(Err(Error::Open(rejected)))) => {
                                check_rejected(rejected, retry_after, &context(&self.model))
                            }
                            other => panic!("a rejected future polled to {other:?}, {}", context(&self.model)),
                        }
                        self.flights.remove(index);
                        self.tally.rejections += 1;
                        return self.after(step, op, generation);
                    }
                    Some(Ok(ticket)) => flight.admitted = Some((ticket, self.model.generation(), now)),
                    None => {}
                }
                flight.polls += 1;
                if flight.polls <= u32::from(flight.pending) {
                    assert!(
                        matches!(poll, Some(Poll::Pending)),
                        "poll {} gave {poll:?}, {}",
                        flight.polls,
                        context(&self.model)
                    );
                } else {
                    let expected = flight.end.returned().map(Poll::Ready);
                    assert_eq!(poll, expected, "the last poll, {}", context(&self.model));
                    let (ticket, _, started) = flight.admitted.expect("admitted above");
                    let outcome = flight.end.outcome(flight.classify);
                    if flight.end == End::Panic {
                        // Kept until a `Cancel`: the failure counts now, at
                        // the panic, not when the caller drops the future.
                        flight.panicked = true;
                    } else {
                        self.flights.remove(index);
                    }
                    self.settle_call(ticket, outcome, started, now);
                }
            }
            Op::Cancel { pick } => {
                let flight = self.flights.remove(usize::from(pick) % self.flights.len());
                let (admitted, panicked) = (flight.admitted, flight.panicked);
                drop(flight);
                match admitted {
                    // A panicked call already counted as a failure.
                    Some(_) if panicked => {}
                    Some((ticket, _, started)) => {
                        self.settle_call(ticket, Outcome::Ignored, started, now);
                    }
                    None => {}
                }
            }
            Op::Trip => {
                breaker.trip();
                self.model.trip(now);
            }
            Op::TripFor(ms) => {
                breaker.trip_for(std::time::Duration::from_millis(u64::from(ms)));
                self.model.trip_for(now, u64::from(ms));
            }
            Op::Isolate => {
                breaker.isolate();
                self.model.isolate(now);
            }
            Op::Reset => {
                breaker.reset();
                self.model.reset();
            }
            Op::Advance(jump) => {
                let from = self.mock.value();
                let to = jump.target_nanos(from, &self.model, self.timeout_ms);
                self.mock.increment(to - from);
            }
        }
        self.after(step, op, generation);
    }

    /// The checks after a `call`, `call_with` (with the classifier's answer)
    /// or a panic out of either.
    fn called(
        &mut self,
        admitted: Result<breakerbox_model::Ticket, Refused>,
        ran: bool,
        end: End,
        classify: Option<Outcome>,
        result: Option<Result<u8, Error<u8>>>,
        context: &dyn Fn(&Model) -> String,
    ) {
        let now = self.now();
        match admitted {
            Err(retry_after) => {
                assert!(!ran, "a rejected call ran, {}", context(&self.model));
                match result {
                    Some(Err(Error::Open(rejected))) => check_rejected(rejected, retry_after, &context(&self.model)),
                    other => panic!("a rejected call returned {other:?}, {}", context(&self.model)),
                }
                self.tally.rejections += 1;
            }
            Ok(ticket) => {
                assert!(ran, "an admitted call did not run, {}", context(&self.model));
                assert_eq!(result, end.returned(), "what the call returned, {}", context(&self.model));
                self.settle(ticket, end.outcome(classify), now);
            }
        }
    }

    /// Reports `outcome` to the model and counts it in the tally as the
    /// facade should: whether the model applied it.
    fn settle(&mut self, ticket: breakerbox_model::Ticket, outcome: Outcome, now: u64) -> bool {
        self.settle_call(ticket, outcome, now, now)
    }

    /// [`settle`](Self::settle) for a call admitted at `started`: a slow
    /// success counts as a failure, in the tally too.
    fn settle_call(&mut self, ticket: breakerbox_model::Ticket, outcome: Outcome, started: u64, now: u64) -> bool {
        match self.model.counts_as(outcome.model(), started, now) {
            breakerbox_model::Outcome::Success => self.tally.successes += 1,
            breakerbox_model::Outcome::Failure => self.tally.failures += 1,
            breakerbox_model::Outcome::Ignored => {}
        }
        self.model.record_call(ticket, outcome.model(), started, now)
    }

    /// Retires what is too old to report, then checks.
    fn after(&mut self, step: usize, op: Op, generation: u64) {
        let current = self.model.generation();
        // A call is an acquire and a report: up to two transitions.
        assert!(current - generation <= 2, "step {step} {op:?} made {} transitions", current - generation);
        let changes: Vec<_> =
            self.model.take_changes().into_iter().map(|c| (c.from, c.to, c.reason.as_str(), c.generation)).collect();
        self.tally.opens +=
            changes.iter().filter(|(from, to, ..)| *from != Seen::Open && *to == Seen::Open).count() as u64;
        let heard: Vec<_> = self
            .heard
            .lock()
            .unwrap()
            .drain(..)
            .inspect(|t| assert_eq!(t.name(), "fuzzed", "every transition carries the name"))
            .map(|t| (seen(t.from()), seen(t.to()), t.reason().as_str(), t.sequence()))
            .collect();
        assert_eq!(heard, changes, "transitions reported by step {step} {op:?} ({:?})", self.model);
        // Inside the documented generation limit: see MAX_TICKET_AGE. Not
        // dropped (that would report them as ignored): kept, never touched.
        // Ages change only with the generation, so only then is there work.
        if current != generation {
            let (old, young) = core::mem::take(&mut self.permits)
                .into_iter()
                .partition(|held| current - held.generation >= MAX_TICKET_AGE);
            self.permits = young;
            self.retired_permits.extend(old.into_iter().map(|held: HeldPermit<'b>| held.permit));
            let (old, young) = core::mem::take(&mut self.flights)
                .into_iter()
                .partition(|flight| flight.admitted.is_some_and(|(_, issued, _)| current - issued >= MAX_TICKET_AGE));
            self.flights = young;
            self.retired_flights.extend(old.into_iter().map(|flight: Flight<'b>| flight.future));
        }
        self.check(step, Some(op));
    }

    /// Everything that must hold between steps.
    fn check(&self, step: impl core::fmt::Display, op: Option<Op>) {
        let now = self.now();
        assert_eq!(
            seen(self.breaker.state()),
            self.model.seen(now),
            "state after step {step} {op:?} at {now} ms ({:?})",
            self.model
        );
        assert_eq!(self.breaker.counts(), self.tally, "counts after step {step} {op:?} at {now} ms ({:?})", self.model);
    }
}

fn check_rejected(rejected: Rejected, refused: Refused, context: &str) {
    match refused {
        Refused::RetryAfter(retry_after) => {
            assert!(!rejected.is_held_open(), "{rejected:?} held open, {context}");
            assert_eq!(rejected.retry_after(), Some(Duration::from_millis(retry_after)), "retry_after, {context}");
            assert_eq!(rejected.retry_after_secs(), Some(retry_after.div_ceil(1_000)), "retry_after_secs, {context}");
            assert!(retry_after >= 1, "a rejection with no time left, {context}");
        }
        Refused::HeldOpen => {
            assert!(rejected.is_held_open(), "{rejected:?} not held open, {context}");
            assert_eq!((rejected.retry_after(), rejected.retry_after_secs()), (None, None), "held open, {context}");
        }
    }
}
