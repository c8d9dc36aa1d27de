//! What a breaker tells the world when it changes state: the [`Transition`]
//! handed to a listener, its [`Reason`], and the breaker's name.
//!
//! Nothing here runs on a call that does not change the state: a listener is
//! called only by the thread whose compare-and-swap made a transition, after
//! that CAS, with no lock held.

use core::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::time::Timestamp;
use crate::word::{State, StateWord};

/// Why a breaker changed state.
///
/// ```
/// use breakerbox_core::Reason;
///
/// assert_eq!(Reason::ThresholdReached.to_string(), "threshold reached");
/// assert_eq!(Reason::ProbesReplaced.as_str(), "probes_replaced");
/// ```
///
/// `#[non_exhaustive]`: policies added later (backoff, failure rates) bring
/// reasons of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Closed to open: the consecutive failures reached the threshold.
    ThresholdReached,
    /// Half-open to open: a probe failed.
    ProbeFailed,
    /// Half-open to closed: a probe succeeded.
    ProbeSucceeded,
    /// Open to half-open: the timeout had passed and a call came. The move is
    /// lazy, as in gobreaker: it happens at the first acquire after the
    /// timeout, not when the timeout passes, so a breaker nobody calls stays
    /// open (though [`state`](crate::CoreBreaker::state) reads half-open).
    TimeoutElapsed,
    /// Half-open to half-open: every probe slot was held for a whole timeout
    /// (the backed-off one, with a backoff), so a call started a fresh round
    /// of probing and the old probes went stale. With
    /// [`Isolated`](Self::Isolated), the transitions whose `from` and `to`
    /// can be equal.
    ProbesReplaced,
    /// Closed or half-open to open: [`trip`](crate::CoreBreaker::trip) or
    /// [`trip_for`](crate::CoreBreaker::trip_for).
    Tripped,
    /// Open, held open or half-open to closed:
    /// [`reset`](crate::CoreBreaker::reset).
    Reset,
    /// Held open by [`isolate`](crate::CoreBreaker::isolate), from any state
    /// but held open (so `from` may be open and `to` is open: held open
    /// reads as open).
    Isolated,
    /// Closed to open: the failure rate over the window reached the
    /// builder's [`FailureRate`](crate::FailureRate) (slow calls count as
    /// failures); see [`CoreBreaker::open_on_rate`](crate::CoreBreaker::open_on_rate).
    FailureRateReached,
}

impl Reason {
    /// The reason as an identifier in snake case (`threshold_reached`), as
    /// serialized values and `tracing` fields spell it; `Display` gives it
    /// in words (`threshold reached`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::ThresholdReached => "threshold_reached",
            Reason::ProbeFailed => "probe_failed",
            Reason::ProbeSucceeded => "probe_succeeded",
            Reason::TimeoutElapsed => "timeout_elapsed",
            Reason::ProbesReplaced => "probes_replaced",
            Reason::Tripped => "tripped",
            Reason::Reset => "reset",
            Reason::Isolated => "isolated",
            Reason::FailureRateReached => "failure_rate_reached",
        }
    }
}

impl fmt::Display for Reason {
    /// In words: `threshold reached`, `probe failed`, `failure rate reached`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::ThresholdReached => "threshold reached",
            Reason::ProbeFailed => "probe failed",
            Reason::ProbeSucceeded => "probe succeeded",
            Reason::TimeoutElapsed => "timeout elapsed",
            Reason::ProbesReplaced => "probes replaced",
            Reason::Tripped => "tripped",
            Reason::Reset => "reset",
            Reason::Isolated => "isolated",
            Reason::FailureRateReached => "failure rate reached",
        })
    }
}

/// One change of a breaker's state, as a listener set with
/// [`Builder::on_transition`](crate::Builder::on_transition) receives it.
///
/// A trip of an open breaker (which restarts its timer) and a reset of a
/// closed one change no state and report nothing. Every other transition is
/// reported exactly once, by the thread whose compare-and-swap made it.
///
/// Two threads can report at the same moment, so listeners may see events
/// out of order; [`sequence`](Self::sequence) puts them back in order.
///
/// ```
/// use breakerbox_core::{Config, CoreBreaker, Reason, State};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// let breaker = CoreBreaker::builder(Config::default())
///     .name("users")
///     .on_transition(move |t| log.lock().unwrap().push((t.from(), t.to(), t.reason(), t.sequence())))
///     .build()?;
/// breaker.trip();
/// breaker.trip(); // already open: restarts the timer, reports nothing
/// breaker.reset();
/// assert_eq!(*seen.lock().unwrap(), [
///     (State::Closed, State::Open, Reason::Tripped, 1),
///     (State::Open, State::Closed, Reason::Reset, 3),
/// ]);
/// # Ok::<(), breakerbox_core::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Transition {
    from: State,
    to: State,
    reason: Reason,
    sequence: u64,
    at: Timestamp,
    name: Option<Arc<str>>,
}

impl Transition {
    /// The state before.
    pub fn from(&self) -> State {
        self.from
    }

    /// The state after.
    pub fn to(&self) -> State {
        self.to
    }

    /// Why it happened.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The breaker's transition number: 1 for its first, one more for each
    /// after. Orders the events of one breaker however their reports
    /// interleave.
    ///
    /// It counts every change of the state word's generation, the unreported
    /// ones too (a trip of an open breaker, a reset of a closed one), so
    /// reported numbers can skip. It is exact unless 256 or more threads
    /// sit between a transition and its report at once, or a thread holds a
    /// snapshot across a multiple of 256 transitions within one millisecond
    /// (the limit under which generations alias, see
    /// [`Ticket`](crate::Ticket)).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// When it happened, on the breaker's clock, in milliseconds since the
    /// breaker's base instant.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// The breaker's name; empty when it has none.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

impl fmt::Debug for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transition")
            .field("name", &self.name())
            .field("from", &self.from)
            .field("to", &self.to)
            .field("reason", &self.reason)
            .field("sequence", &self.sequence)
            .field("at", &self.at)
            .finish()
    }
}

impl fmt::Display for Transition {
    /// `users: closed -> open (threshold reached, #1)`, in the words of the
    /// states' and the reason's `Display`; without a name the line starts at
    /// the states.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            write!(f, "{name}: ")?;
        }
        write!(f, "{} -> {} ({}, #{})", self.from, self.to, self.reason, self.sequence)
    }
}

/// A listener for transitions.
pub(crate) type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

/// A breaker's name and listener: boxed off the breaker's cache line, and
/// only when there is one or the other.
pub(crate) struct Observer {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) listener: Option<Listener>,
}

/// A change of the state word's generation that one CAS made: the words
/// either side, its sequence number and, when it is a change of state, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a change nobody reports is lost"]
pub(crate) struct Change {
    pub(crate) from: StateWord,
    pub(crate) to: StateWord,
    pub(crate) reason: Option<Reason>,
    pub(crate) at: Timestamp,
    pub(crate) sequence: u64,
}

impl Observer {
    /// Calls the listener with `change` if it is a change of state.
    ///
    /// A panicking listener is caught here: the transition has happened
    /// and must stay the way it is, and the call that made it must not fail
    /// because of observability code. The panic hook has already run (and
    /// printed the message) by the time the panic is caught. Under
    /// `panic = "abort"` there is nothing to catch: the process aborts.
    pub(crate) fn report(&self, change: Change) {
        let (Some(listener), Some(reason)) = (&self.listener, change.reason) else { return };
        let transition = Transition {
            from: change.from.phase(),
            to: change.to.phase(),
            reason,
            sequence: change.sequence,
            at: change.at,
            name: self.name.clone(),
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| listener(&transition))) {
            // A payload whose own drop panics must not escape either.
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
        }
    }
}
