//! What passes between a caller and the breaker around one call: the
//! [`Ticket`] of an admitted call, the [`Outcome`] it reports, what the breaker
//! did with it ([`Recorded`]), and the [`Rejected`] error of a call not let
//! through.

use core::fmt;
use core::time::Duration;

use crate::word::StateWord;

/// Proof that a call was admitted, and in which generation of the breaker.
///
/// `Copy` and eight bytes. Hand it back once with the call's [`Outcome`]
/// (reporting one ticket twice counts twice: the breaker cannot tell); a ticket
/// from before a transition is *stale* and changes nothing. A ticket that is
/// never handed back holds nothing in a closed breaker; in a half-open one it
/// holds a probe slot until the round's lease (the timeout, or the backoff's
/// current step) has passed, after which the breaker starts over with fresh
/// probes.
///
/// A ticket held across transitions is told from the generations after its
/// own unless a multiple of 256 transitions happen within one millisecond
/// (only `trip` or `reset` in a loop can do that), or it is held for years:
/// across a generation that starts a multiple of 2^38 ms (about 8.7 years)
/// after its own, a multiple of 256 transitions later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a ticket should be handed back with the call's outcome"]
pub struct Ticket {
    generation: u64,
}

impl Ticket {
    pub(crate) const fn issued_in(word: StateWord) -> Ticket {
        Ticket { generation: word.generation() }
    }

    pub(crate) const fn belongs_to(self, word: StateWord) -> bool {
        self.generation == word.generation()
    }

    pub(crate) const fn generation(self) -> u64 {
        self.generation
    }

    /// Whether the breaker was closed when it issued this ticket.
    pub(crate) const fn issued_closed(self) -> bool {
        matches!(StateWord::from_bits(self.generation).stored(), crate::word::Stored::Closed)
    }
}

/// How an admitted call ended, as far as the breaker should count it.
///
/// ```
/// use breakerbox_core::{Config, CoreBreaker, Outcome, State};
///
/// let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
/// let breaker = CoreBreaker::with_clock(Config { threshold: 1, ..Config::default() }, clock)?;
/// let ticket = breaker.acquire()?;
/// breaker.record(ticket, Outcome::Ignored); // counts nothing
/// assert_eq!(breaker.state(), State::Closed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The downstream worked: resets the failure streak, closes a half-open
    /// breaker.
    Success,
    /// The downstream failed: extends the streak (opening at the threshold),
    /// reopens a half-open breaker.
    Failure,
    /// Says nothing about the downstream (the caller gave up, the error was the
    /// caller's own): counts nothing and frees the probe slot.
    Ignored,
}

/// What the breaker did with a reported [`Outcome`].
///
/// ```
/// use breakerbox_core::{Config, CoreBreaker, Outcome, Recorded};
///
/// let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
/// let breaker = CoreBreaker::with_clock(Config::default(), clock)?;
/// let ticket = breaker.acquire()?;
/// breaker.reset(); // a transition: the ticket's generation is over
/// assert_eq!(breaker.record(ticket, Outcome::Failure), Recorded::Stale);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recorded {
    /// The ticket was current: the outcome was applied.
    Applied,
    /// The ticket was from an earlier generation: nothing changed.
    Stale,
}

/// The error of a call the breaker did not let through.
///
/// `Copy`; its message is the Go package's `ErrOpen` text.
///
/// ```
/// use breakerbox_core::{Config, CoreBreaker};
/// use std::time::Duration;
///
/// let (clock, mock) = breakerbox_core::quanta::Clock::mock();
/// let breaker = CoreBreaker::with_clock(Config { timeout: Duration::from_secs(10), ..Config::default() }, clock)?;
/// breaker.trip();
/// mock.increment(Duration::from_secs(4));
/// let rejected = breaker.acquire().unwrap_err();
/// assert_eq!(rejected.to_string(), "circuit breaker is open");
/// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(6)));
/// assert_eq!(rejected.retry_after_secs(), Some(6)); // a `Retry-After` header's value
/// # Ok::<(), breakerbox_core::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rejected {
    /// Ticks until a probe, or [`HELD_OPEN`] for a breaker held open.
    retry_after_ticks: u64,
}

/// The retry time of a breaker held open: there is none until a reset.
const HELD_OPEN: u64 = u64::MAX;

impl Rejected {
    pub(crate) const fn after_ticks(retry_after_ticks: u64) -> Rejected {
        Rejected { retry_after_ticks }
    }

    pub(crate) const fn held_open() -> Rejected {
        Rejected { retry_after_ticks: HELD_OPEN }
    }

    /// How long until the breaker lets a probe through, at the latest (a
    /// half-open breaker frees a slot sooner if a probe reports), in whole
    /// milliseconds.
    ///
    /// `None` for a breaker held open by `isolate`: it lets nothing through
    /// until someone resets it, so there is no time to wait for (and
    /// [`is_held_open`](Self::is_held_open) is true).
    pub const fn retry_after(&self) -> Option<Duration> {
        if self.retry_after_ticks == HELD_OPEN { None } else { Some(Duration::from_millis(self.retry_after_ticks)) }
    }

    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up: the
    /// value of an HTTP `Retry-After` header. `None` for a breaker held
    /// open, where a client should not be told when to come back.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breakerbox_core::quanta::Clock::mock();
    /// let breaker = CoreBreaker::with_clock(Config { timeout: Duration::from_millis(2_500), ..Config::default() }, clock)?;
    /// breaker.trip();
    /// assert_eq!(breaker.acquire().unwrap_err().retry_after_secs(), Some(3));
    /// mock.increment(Duration::from_millis(2_499));
    /// assert_eq!(breaker.acquire().unwrap_err().retry_after_secs(), Some(1), "1 ms left is 1 s, never 0");
    /// breaker.isolate();
    /// assert_eq!(breaker.acquire().unwrap_err().retry_after_secs(), None);
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub const fn retry_after_secs(&self) -> Option<u64> {
        if self.retry_after_ticks == HELD_OPEN { None } else { Some(self.retry_after_ticks.div_ceil(1_000)) }
    }

    /// Whether the breaker is held open by `isolate`: no call goes through
    /// until someone calls `reset`, however long one waits.
    pub const fn is_held_open(&self) -> bool {
        self.retry_after_ticks == HELD_OPEN
    }
}

impl fmt::Debug for Rejected {
    /// `Rejected { retry_after: Some(6s) }`, or `Rejected { held_open: true }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_after() {
            Some(after) => f.debug_struct("Rejected").field("retry_after", &after).finish(),
            None => f.debug_struct("Rejected").field("held_open", &true).finish(),
        }
    }
}

impl fmt::Display for Rejected {
    /// The Go package's `ErrOpen` text; "circuit breaker is held open" when
    /// isolated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_held_open() { "circuit breaker is held open" } else { "circuit breaker is open" })
    }
}

impl std::error::Error for Rejected {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_milliseconds_and_none_when_held_open() {
        assert_eq!(Rejected::after_ticks(1_500).retry_after(), Some(Duration::from_millis(1_500)));
        assert_eq!(Rejected::after_ticks(0).retry_after(), Some(Duration::ZERO));
        assert_eq!(Rejected::held_open().retry_after(), None);
        assert!(Rejected::held_open().is_held_open() && !Rejected::after_ticks(1).is_held_open());
        assert_eq!(format!("{:?}", Rejected::after_ticks(6_000)), "Rejected { retry_after: 6s }");
        assert_eq!(format!("{:?}", Rejected::held_open()), "Rejected { held_open: true }");
    }

    #[test]
    fn retry_after_secs_rounds_up_to_whole_seconds() {
        for (ticks, secs) in [(0, 0), (1, 1), (999, 1), (1_000, 1), (1_001, 2), (2_500, 3), (120_000, 120)] {
            assert_eq!(Rejected::after_ticks(ticks).retry_after_secs(), Some(secs), "{ticks} ms");
        }
        assert_eq!(Rejected::held_open().retry_after_secs(), None);
    }
}
