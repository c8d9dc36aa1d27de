//! The state machine as pure functions: (word, event, now) -> (decision, next
//! word). No atomics, no clock.
//!
//! `now` is passed as a closure and asked for only on the branches whose
//! answer depends on time (an open breaker checking its timeout, a full
//! half-open breaker checking for hung probes, a transition stamping the word).
//! The clock-reading API hands in a closure that reads the clock (again on a
//! CAS retry, so a retry never decides on a time older than the word it
//! read), so a healthy closed breaker never reads the clock; the
//! time-explicit API hands in a constant.
//!
//! | phase     | event                          | next                                 | decision      | reason |
//! |-----------|--------------------------------|--------------------------------------|---------------|--------|
//! | closed    | acquire                        | unchanged                            | admitted      |        |
//! | closed    | success                        | count = 0                            | applied       |        |
//! | closed    | failure, count + 1 < threshold | count + 1                            | applied       |        |
//! | closed    | failure, count + 1 = threshold | open at now                          | applied       | threshold reached |
//! | closed    | ignored                        | unchanged                            | applied       |        |
//! | open      | acquire, elapsed < timeout     | unchanged                            | rejected      |        |
//! | open      | acquire, elapsed >= timeout    | half-open at now, count = 1          | admitted      | timeout elapsed |
//! | half-open | acquire, count < max           | count + 1                            | admitted      |        |
//! | half-open | acquire, full, elapsed < timeout | unchanged                          | rejected      |        |
//! | half-open | acquire, full, elapsed >= timeout | half-open at now, count = 1 (hung probes go stale) | admitted | probes replaced |
//! | half-open | success                        | closed at now                        | applied       | probe succeeded |
//! | half-open | failure                        | open at now                          | applied       | probe failed |
//! | half-open | ignored                        | count - 1                            | applied       |        |
//! | any       | result with another generation | unchanged                            | stale         |        |
//! | open      | any result                     | unchanged                            | stale         |        |
//! | open      | trip                           | open at now (timer restarts)         |               |        |
//! | other     | trip                           | open at now                          |               | tripped |
//! | closed    | reset                          | closed at now                        |               |        |
//! | other     | reset                          | closed at now                        |               | reset  |
//!
//! "at now" is [`StateWord::enter`]: a new epoch and stamp, so every ticket
//! issued before the transition is stale after it. A row with a reason is a
//! change of state that the breaker's listener hears about; the two "at now"
//! rows without one start a new generation in the same state and are not
//! reported.

use crate::config::Limits;
use crate::observe::Reason;
use crate::ticket::{Outcome, Recorded, Rejected, Ticket};
use crate::time::Timestamp;
use crate::word::{State, StateWord};

/// A decision and the word to store for it; `next == word` means no write.
/// `reason` is set when storing `next` is a change of state a listener hears
/// about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a step whose next word is not stored did not happen"]
pub(crate) struct Step<D> {
    pub(crate) decision: D,
    pub(crate) next: StateWord,
    pub(crate) reason: Option<Reason>,
}

impl<D> Step<D> {
    const fn to(next: StateWord, decision: D) -> Step<D> {
        Step { decision, next, reason: None }
    }

    fn because(self, reason: Reason) -> Step<D> {
        Step { reason: Some(reason), ..self }
    }
}

/// Asks to let one call through.
#[inline]
pub(crate) fn acquire(
    word: StateWord,
    limits: &Limits,
    now: &mut impl FnMut() -> Timestamp,
) -> Step<Result<Ticket, Rejected>> {
    match word.phase() {
        State::Closed => admit(word),
        State::Open => start_probing_or_reject(word, limits, now()),
        State::HalfOpen if word.count() < limits.half_open_max => admit(word.with_count(word.count() + 1)),
        // Every slot is held: starting over after a timeout is what keeps a
        // probe that never reports from wedging the breaker.
        State::HalfOpen => start_probing_or_reject(word, limits, now()),
    }
}

/// The rows of [`acquire`] decided from the word alone that leave it as it
/// is: a closed breaker admits. Callers try this before paying for a clock
/// read or a CAS loop; `None` means "run [`acquire`]".
#[inline(always)]
pub(crate) fn acquire_read_only(word: StateWord) -> Option<Ticket> {
    match word.phase() {
        State::Closed => Some(Ticket::issued_in(word)),
        State::Open | State::HalfOpen => None,
    }
}

const fn admit(next: StateWord) -> Step<Result<Ticket, Rejected>> {
    Step::to(next, Ok(Ticket::issued_in(next)))
}

fn start_probing_or_reject(word: StateWord, limits: &Limits, now: Timestamp) -> Step<Result<Ticket, Rejected>> {
    let elapsed = word.elapsed(now);
    if elapsed >= limits.timeout_ticks {
        let reason = match word.phase() {
            State::HalfOpen => Reason::ProbesReplaced,
            State::Closed | State::Open => Reason::TimeoutElapsed,
        };
        admit(word.enter(State::HalfOpen, now).with_count(1)).because(reason)
    } else {
        Step::to(word, Err(Rejected::after_ticks(limits.timeout_ticks - elapsed)))
    }
}

/// Reports how the call behind `ticket` ended.
#[inline]
pub(crate) fn record(
    word: StateWord,
    ticket: Ticket,
    outcome: Outcome,
    limits: &Limits,
    now: &mut impl FnMut() -> Timestamp,
) -> Step<Recorded> {
    if !ticket.belongs_to(word) {
        return Step::to(word, Recorded::Stale);
    }
    let applied = |next| Step::to(next, Recorded::Applied);
    match (word.phase(), outcome) {
        // Open generations issue no tickets, so a match here is an alias of an
        // old generation (see the word's docs) and must not count.
        (State::Open, _) => Step::to(word, Recorded::Stale),
        (State::Closed, Outcome::Success) => applied(word.with_count(0)),
        (State::Closed, Outcome::Failure) if word.count() + 1 >= limits.threshold => {
            applied(word.enter(State::Open, now())).because(Reason::ThresholdReached)
        }
        (State::Closed, Outcome::Failure) => applied(word.with_count(word.count() + 1)),
        (State::Closed, Outcome::Ignored) => applied(word),
        (State::HalfOpen, Outcome::Success) => {
            applied(word.enter(State::Closed, now())).because(Reason::ProbeSucceeded)
        }
        (State::HalfOpen, Outcome::Failure) => applied(word.enter(State::Open, now())).because(Reason::ProbeFailed),
        (State::HalfOpen, Outcome::Ignored) => applied(word.with_count(word.count().saturating_sub(1))),
    }
}

/// The rows of [`record`] decided from the word alone that leave it as it
/// is and dominate a healthy service: a success on a closed word with no
/// failure counted, an ignored call on a closed word. `None` means "run
/// [`record`]".
#[inline(always)]
pub(crate) fn record_read_only(word: StateWord, ticket: Ticket, outcome: Outcome) -> Option<Recorded> {
    let unchanged = match outcome {
        Outcome::Success => word.count() == 0,
        Outcome::Ignored => true,
        Outcome::Failure => false,
    };
    (unchanged && word.phase() == State::Closed && ticket.belongs_to(word)).then_some(Recorded::Applied)
}

/// Opens the breaker now, whatever its state (an open one restarts its
/// timer, which is not a change of state).
#[inline]
pub(crate) fn trip(word: StateWord, now: &mut impl FnMut() -> Timestamp) -> Step<()> {
    let step = Step::to(word.enter(State::Open, now()), ());
    if word.phase() == State::Open { step } else { step.because(Reason::Tripped) }
}

/// Closes the breaker now with no failures, whatever its state (a closed
/// one starts a new generation, which is not a change of state).
#[inline]
pub(crate) fn reset(word: StateWord, now: &mut impl FnMut() -> Timestamp) -> Step<()> {
    let step = Step::to(word.enter(State::Closed, now()), ());
    if word.phase() == State::Closed { step } else { step.because(Reason::Reset) }
}

/// The state as callers see it: an open breaker whose timeout has passed is
/// half-open, although the word changes only at the next acquire.
#[inline]
pub(crate) fn observe(word: StateWord, limits: &Limits, now: &mut impl FnMut() -> Timestamp) -> State {
    match word.phase() {
        State::Open if word.elapsed(now()) >= limits.timeout_ticks => State::HalfOpen,
        phase => phase,
    }
}

#[cfg(test)]
mod tests;
