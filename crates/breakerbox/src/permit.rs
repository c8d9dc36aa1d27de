//! Permits: an admitted call for code that cannot hand the breaker a closure
//! (middleware, hot loops).

use core::fmt;
use core::ops::Deref;
use std::sync::Arc;

use breakerbox_core::{Outcome, Recorded, Ticket, Timestamp};

use crate::Breaker;
use crate::counts::ThreadSlot;

/// An admitted call, borrowed from its [`Breaker`]: report how it ended with
/// [`record`](PermitOf::record), [`success`](PermitOf::success) or
/// [`failure`](PermitOf::failure). Made by [`Breaker::try_acquire`].
pub type Permit<'a> = PermitOf<&'a Breaker>;

/// An admitted call that owns an `Arc` of its [`Breaker`], for middleware
/// that must hold the permit across `'static` boundaries. Made by
/// [`Breaker::try_acquire_owned`].
pub type OwnedPermit = PermitOf<Arc<Breaker>>;

/// An admitted call that has not reported yet; see [`Permit`] and
/// [`OwnedPermit`].
///
/// Dropping it without reporting counts as [`Outcome::Ignored`]: nothing is
/// counted and a half-open breaker gets the probe slot back.
///
/// ```
/// use breakerbox::{Breaker, Config, State};
///
/// let breaker = Breaker::new(Config { threshold: 1, ..Config::default() });
/// let permit = breaker.try_acquire()?;
/// let response: Result<u32, &str> = Err("503"); // the call, made by hand
/// match response {
///     Ok(_) => permit.success(),
///     Err(_) => permit.failure(),
/// };
/// assert_eq!(breaker.state(), State::Open);
/// # Ok::<(), breakerbox::Rejected>(())
/// ```
#[must_use = "dropping a permit reports the call as ignored"]
pub struct PermitOf<B: Deref<Target = Breaker>> {
    breaker: B,
    ticket: Ticket,
    /// When the call was admitted, if the breaker times calls (a slow-call
    /// rule); zero otherwise.
    started: Timestamp,
    /// What dropping the permit reports: `Ignored`, or `Failure` while the
    /// wrapped call runs inside a closure or future the breaker polls, so a
    /// panic unwinding through it counts as a failure. `None` once reported.
    on_drop: Option<Outcome>,
}

impl<B: Deref<Target = Breaker>> PermitOf<B> {
    /// A permit for a call admitted just now with `ticket`, timed if the
    /// breaker has a slow-call rule.
    pub(crate) fn new(breaker: B, ticket: Ticket) -> PermitOf<B> {
        let started = breaker.started();
        PermitOf { breaker, ticket, started, on_drop: Some(Outcome::Ignored) }
    }

    /// [`new`](Self::new) for a breaker known to have no watch (its counter
    /// slot was in the plain cache), without looking.
    #[inline(always)]
    pub(crate) fn untimed(breaker: B, ticket: Ticket) -> PermitOf<B> {
        debug_assert!(!breaker.is_watched(), "a watched breaker's slot is never in the plain cache");
        PermitOf { breaker, ticket, started: Timestamp::ZERO, on_drop: Some(Outcome::Ignored) }
    }

    /// Reports how the call ended; whether it still counted for the state
    /// machine or arrived after a transition ([`Recorded::Stale`]). Stale
    /// results still count in [`Breaker::counts`].
    #[inline(always)]
    pub fn record(mut self, outcome: Outcome) -> Recorded {
        self.on_drop = None;
        self.breaker.settle(self.ticket, self.started, outcome)
    }

    /// [`record`](Self::record) counting in a slot the caller looked up on
    /// this thread.
    #[inline(always)]
    pub(crate) fn record_in(mut self, slot: ThreadSlot<'_>, outcome: Outcome) -> Recorded {
        self.on_drop = None;
        self.breaker.settle_in(slot, self.ticket, outcome)
    }

    /// [`record`](Self::record) for a breaker with a watch, in this
    /// thread's slot and ring, looked up on this thread.
    #[inline(always)]
    pub(crate) fn record_watched(
        mut self,
        watch: &crate::watch::Watch,
        place: Option<(&'static crate::lane::Slot, &'static breakerbox_core::Ring)>,
        outcome: Outcome,
    ) -> Recorded {
        self.on_drop = None;
        self.breaker.settle_watched(watch, place, self.ticket, self.started, outcome)
    }

    /// Reports a success.
    #[inline]
    pub fn success(self) -> Recorded {
        self.record(Outcome::Success)
    }

    /// Reports a failure.
    #[inline]
    pub fn failure(self) -> Recorded {
        self.record(Outcome::Failure)
    }

    /// The ticket and the start, without reporting: whoever takes them
    /// reports the call.
    #[cfg(feature = "tower")]
    #[inline(always)]
    pub(crate) fn into_ticket(mut self) -> (Ticket, Timestamp) {
        self.on_drop = None;
        (self.ticket, self.started)
    }

    /// Makes a drop count as a failure while user code runs, as ignored after.
    #[inline]
    pub(crate) fn count_drop_as(&mut self, outcome: Outcome) {
        self.on_drop = Some(outcome);
    }
}

impl<B: Deref<Target = Breaker>> Drop for PermitOf<B> {
    #[inline]
    fn drop(&mut self) {
        // After `record` this is a no-op the compiler sees through; only an
        // unreported permit pays for the call.
        if let Some(outcome) = self.on_drop.take() {
            self.breaker.settle_unreported(self.ticket, self.started, outcome);
        }
    }
}

impl<B: Deref<Target = Breaker>> fmt::Debug for PermitOf<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("ticket", &self.ticket).finish_non_exhaustive()
    }
}
