//! The breaker's semantics, written for clarity rather than speed.
//!
//! This is the one statement of what the breaker should do, shared by the
//! core's property tests, the facade's tests and the fuzzers: they drive the
//! real breaker and this model with the same operations and require the same
//! answers. Nothing here is packed or atomic; generations are unbounded and
//! time is a plain millisecond count.
//!
//! The real breaker keeps two documented limits this model does not have:
//! generations are told apart by an 8-bit epoch plus the time of the
//! transition, and elapsed time is read exactly only below 2^37 ms. Drivers
//! keep their inputs inside those limits (fewer than 256 transitions in one
//! millisecond while a ticket is held, no single wait of 2^37 ms or more since
//! the last transition).
//!
//! ```
//! use breaker_model::{Model, Outcome, Phase};
//!
//! let mut model = Model::new(2, 1, 100);
//! let a = model.acquire(0).unwrap();
//! let b = model.acquire(0).unwrap();
//! model.record(a, Outcome::Failure, 1);
//! model.record(b, Outcome::Failure, 2);
//! assert_eq!(model.phase(), Phase::Open { since: 2 });
//! assert_eq!(model.acquire(50), Err(52));
//! ```

/// How an admitted call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The downstream worked.
    Success,
    /// The downstream failed.
    Failure,
    /// Nothing is known about the downstream; counts nothing, frees the slot.
    Ignored,
}

/// The model's state, with the data each phase keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Calls go through.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Calls are rejected until `since + timeout`.
    Open {
        /// When the breaker opened (ms).
        since: u64,
    },
    /// Probes go through, at most `half_open_max` at once.
    HalfOpen {
        /// When this round of probing started (ms).
        since: u64,
        /// Probes admitted in this round that have not reported.
        in_flight: u32,
    },
}

/// The state callers see, as the real breaker's `state()` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seen {
    /// Closed.
    Closed,
    /// Open, timeout not yet passed.
    Open,
    /// Half-open, or open with the timeout passed.
    HalfOpen,
}

/// Why the model changed state; the real breaker's `Reason`, spelled the
/// same way by [`Reason::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Closed to open at the threshold.
    ThresholdReached,
    /// Half-open to open.
    ProbeFailed,
    /// Half-open to closed.
    ProbeSucceeded,
    /// Open to half-open, at the first acquire after the timeout.
    TimeoutElapsed,
    /// Half-open to half-open: a new round after every slot was held a
    /// whole timeout.
    ProbesReplaced,
    /// A trip of a breaker that was not open.
    Tripped,
    /// A reset of a breaker that was not closed.
    Reset,
}

impl Reason {
    /// The reason in snake case.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ThresholdReached => "threshold_reached",
            Reason::ProbeFailed => "probe_failed",
            Reason::ProbeSucceeded => "probe_succeeded",
            Reason::TimeoutElapsed => "timeout_elapsed",
            Reason::ProbesReplaced => "probes_replaced",
            Reason::Tripped => "tripped",
            Reason::Reset => "reset",
        }
    }
}

/// A change of state, as a listener on the real breaker hears it. A trip of
/// an open model and a reset of a closed one start a new generation but are
/// not changes of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Change {
    /// The stored state before.
    pub from: Seen,
    /// The stored state after.
    pub to: Seen,
    /// Why.
    pub reason: Reason,
    /// The generation the change started: the real breaker's sequence number.
    pub generation: u64,
}

/// The generation an admitted call belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    generation: u64,
}

/// The reference circuit breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    threshold: u32,
    half_open_max: u32,
    timeout: u64,
    phase: Phase,
    /// Bumped by every transition; a ticket from another one is stale.
    generation: u64,
    /// Changes of state not yet taken with [`Model::take_changes`].
    changes: Vec<Change>,
}

impl Model {
    /// A closed model; every limit at least 1 (the real breaker resolves a
    /// zero to its default before it gets here).
    pub fn new(threshold: u32, half_open_max: u32, timeout_ms: u64) -> Model {
        assert!(threshold >= 1 && half_open_max >= 1 && timeout_ms >= 1, "limits are resolved and positive");
        Model {
            threshold,
            half_open_max,
            timeout: timeout_ms,
            phase: Phase::Closed { failures: 0 },
            generation: 0,
            changes: Vec::new(),
        }
    }

    /// The stored phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Failures while closed, probes in flight while half-open, 0 while open.
    pub fn count(&self) -> u32 {
        match self.phase {
            Phase::Closed { failures } => failures,
            Phase::Open { .. } => 0,
            Phase::HalfOpen { in_flight, .. } => in_flight,
        }
    }

    /// The state a caller sees at `now`, without changing anything.
    pub fn seen(&self, now: u64) -> Seen {
        match self.phase {
            Phase::Closed { .. } => Seen::Closed,
            Phase::Open { since } if now.saturating_sub(since) >= self.timeout => Seen::HalfOpen,
            Phase::Open { .. } => Seen::Open,
            Phase::HalfOpen { .. } => Seen::HalfOpen,
        }
    }

    /// Asks to let a call through at `now`: the ticket, or the milliseconds
    /// until a probe will be let through at the latest.
    pub fn acquire(&mut self, now: u64) -> Result<Ticket, u64> {
        match self.phase {
            Phase::Closed { .. } => Ok(self.ticket()),
            Phase::HalfOpen { since, in_flight } => {
                if in_flight < self.half_open_max {
                    self.phase = Phase::HalfOpen { since, in_flight: in_flight + 1 };
                    Ok(self.ticket())
                } else {
                    // Every probe is hung: after a timeout, start a new round.
                    self.probe_after_timeout(since, now)
                }
            }
            Phase::Open { since } => self.probe_after_timeout(since, now),
        }
    }

    fn probe_after_timeout(&mut self, since: u64, now: u64) -> Result<Ticket, u64> {
        let waited = now.saturating_sub(since);
        if waited >= self.timeout {
            let reason = match self.phase {
                Phase::HalfOpen { .. } => Reason::ProbesReplaced,
                Phase::Closed { .. } | Phase::Open { .. } => Reason::TimeoutElapsed,
            };
            self.enter(Phase::HalfOpen { since: now, in_flight: 1 }, Some(reason));
            Ok(self.ticket())
        } else {
            Err(self.timeout - waited)
        }
    }

    /// Reports the outcome of the call behind `ticket` at `now`; `true` if it
    /// was applied, `false` if it was stale.
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: u64) -> bool {
        if ticket.generation != self.generation {
            return false;
        }
        match (self.phase, outcome) {
            (Phase::Open { .. }, _) => return false,
            (Phase::Closed { .. }, Outcome::Success) => self.phase = Phase::Closed { failures: 0 },
            (Phase::Closed { failures }, Outcome::Failure) => {
                if failures + 1 >= self.threshold {
                    self.enter(Phase::Open { since: now }, Some(Reason::ThresholdReached));
                } else {
                    self.phase = Phase::Closed { failures: failures + 1 };
                }
            }
            (Phase::Closed { .. }, Outcome::Ignored) => {}
            (Phase::HalfOpen { .. }, Outcome::Success) => {
                self.enter(Phase::Closed { failures: 0 }, Some(Reason::ProbeSucceeded))
            }
            (Phase::HalfOpen { .. }, Outcome::Failure) => {
                self.enter(Phase::Open { since: now }, Some(Reason::ProbeFailed))
            }
            (Phase::HalfOpen { since, in_flight }, Outcome::Ignored) => {
                // A ticket reported twice must not free a slot it never held.
                self.phase = Phase::HalfOpen { since, in_flight: in_flight.saturating_sub(1) };
            }
        }
        true
    }

    /// Opens at `now`, whatever the state.
    pub fn trip(&mut self, now: u64) {
        let reason = (!matches!(self.phase, Phase::Open { .. })).then_some(Reason::Tripped);
        self.enter(Phase::Open { since: now }, reason);
    }

    /// Closes with no failures, whatever the state.
    pub fn reset(&mut self) {
        let reason = (!matches!(self.phase, Phase::Closed { .. })).then_some(Reason::Reset);
        self.enter(Phase::Closed { failures: 0 }, reason);
    }

    /// The changes of state since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Transitions handed out so far; tickets from before the last one are stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn enter(&mut self, phase: Phase, reason: Option<Reason>) {
        let from = self.stored();
        self.phase = phase;
        self.generation += 1;
        if let Some(reason) = reason {
            self.changes.push(Change { from, to: self.stored(), reason, generation: self.generation });
        }
    }

    fn stored(&self) -> Seen {
        match self.phase {
            Phase::Closed { .. } => Seen::Closed,
            Phase::Open { .. } => Seen::Open,
            Phase::HalfOpen { .. } => Seen::HalfOpen,
        }
    }

    fn ticket(&self) -> Ticket {
        Ticket { generation: self.generation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_success_closes_and_makes_other_probes_stale() {
        let mut model = Model::new(1, 2, 10);
        model.trip(0);
        let first = model.acquire(10).unwrap();
        let second = model.acquire(10).unwrap();
        assert!(model.record(first, Outcome::Success, 11));
        assert_eq!(model.phase(), Phase::Closed { failures: 0 });
        assert!(!model.record(second, Outcome::Failure, 12));
        assert_eq!(model.phase(), Phase::Closed { failures: 0 });
    }

    #[test]
    fn hung_probes_are_replaced_after_a_timeout() {
        let mut model = Model::new(1, 1, 10);
        model.trip(0);
        let hung = model.acquire(10).unwrap();
        assert_eq!(model.acquire(19), Err(1));
        let fresh = model.acquire(20).unwrap();
        assert!(!model.record(hung, Outcome::Failure, 21));
        assert!(model.record(fresh, Outcome::Success, 21));
        assert_eq!(model.seen(21), Seen::Closed);
        let reasons: Vec<Reason> = model.take_changes().iter().map(|c| c.reason).collect();
        assert_eq!(reasons, [Reason::Tripped, Reason::TimeoutElapsed, Reason::ProbesReplaced, Reason::ProbeSucceeded]);
    }

    #[test]
    fn a_trip_of_an_open_model_starts_a_generation_but_is_no_change() {
        let mut model = Model::new(1, 1, 10);
        model.trip(0);
        model.trip(5);
        model.reset();
        model.reset();
        let changes = model.take_changes();
        assert_eq!(
            changes.iter().map(|c| (c.from, c.to, c.generation)).collect::<Vec<_>>(),
            [(Seen::Closed, Seen::Open, 1), (Seen::Open, Seen::Closed, 3)]
        );
        assert_eq!(model.generation(), 4);
    }

    #[test]
    fn ignored_probe_frees_its_slot() {
        let mut model = Model::new(1, 1, 10);
        model.trip(0);
        let probe = model.acquire(10).unwrap();
        assert!(model.acquire(10).is_err());
        assert!(model.record(probe, Outcome::Ignored, 10));
        assert!(model.acquire(10).is_ok());
    }
}
