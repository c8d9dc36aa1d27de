//! Permits: an admitted call for code that cannot hand the breaker a closure
//! (middleware, hot loops), and [`Admission`], the admitted call every call
//! path holds inside.

use core::fmt;
use core::ops::Deref;
use std::sync::Arc;

use breakerbox_core::{Outcome, Recorded, Ticket, Timestamp};

use crate::Breaker;
use crate::counts::ThreadSlot;
use crate::unwind::failing_on_unwind;

/// An admitted call that has not reported yet, borrowed from its
/// [`Breaker`]: report how it ended with [`record`](Permit::record),
/// [`success`](Permit::success) or [`failure`](Permit::failure). Made by
/// [`Breaker::try_acquire`].
///
/// Dropping it without reporting counts as [`Outcome::Ignored`]: nothing is
/// counted and a half-open breaker gets the probe slot back.
///
/// ```
/// use breakerbox::{Breaker, Config, State};
///
/// let breaker = Breaker::new(Config { threshold: 1, ..Config::default() })?;
/// let permit = breaker.try_acquire()?;
/// let response: Result<u32, &str> = Err("503"); // the call, made by hand
/// match response {
///     Ok(_) => permit.success(),
///     Err(_) => permit.failure(),
/// };
/// assert_eq!(breaker.state(), State::Open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a permit reports the call as ignored"]
pub struct Permit<'a>(Admission<&'a Breaker>);

/// [`Permit`] owning an `Arc` of its [`Breaker`], for middleware that must
/// hold the permit across `'static` boundaries (a spawned task, a response
/// body). Made by [`Breaker::try_acquire_owned`].
///
/// ```
/// use breakerbox::{Breaker, Config, OwnedPermit};
/// use std::sync::Arc;
///
/// let breaker = Arc::new(Breaker::default());
/// let permit: OwnedPermit = breaker.try_acquire_owned()?;
/// std::thread::spawn(move || permit.success()).join().unwrap();
/// assert_eq!(breaker.counts().successes, 1);
/// # Ok::<(), breakerbox::Rejected>(())
/// ```
#[must_use = "dropping a permit reports the call as ignored"]
pub struct OwnedPermit(Admission<Arc<Breaker>>);

macro_rules! permit_methods {
    ($permit:ty, $name:literal) => {
        impl $permit {
            /// Reports how the call ended; whether it still counted for the
            /// state machine or arrived after a transition
            /// ([`Recorded::Stale`]). Stale results still count in
            /// [`Breaker::counts`].
            #[inline(always)]
            pub fn record(self, outcome: Outcome) -> Recorded {
                self.0.record(outcome)
            }

            /// Reports a success: `record(Outcome::Success)`.
            #[inline]
            pub fn success(self) -> Recorded {
                self.0.record(Outcome::Success)
            }

            /// Reports a failure: `record(Outcome::Failure)`.
            #[inline]
            pub fn failure(self) -> Recorded {
                self.0.record(Outcome::Failure)
            }
        }

        impl fmt::Debug for $permit {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($name).field("ticket", &self.0.ticket).finish_non_exhaustive()
            }
        }
    };
}

permit_methods!(Permit<'_>, "Permit");
permit_methods!(OwnedPermit, "OwnedPermit");

impl<'a> Permit<'a> {
    pub(crate) fn new(admission: Admission<&'a Breaker>) -> Permit<'a> {
        Permit(admission)
    }
}

impl OwnedPermit {
    pub(crate) fn new(admission: Admission<Arc<Breaker>>) -> OwnedPermit {
        OwnedPermit(admission)
    }
}

/// A call the breaker admitted: its ticket, when it started (if the breaker
/// times calls), and what its drop reports if the call never reports.
pub(crate) struct Admission<B: Deref<Target = Breaker>> {
    breaker: B,
    ticket: Ticket,
    /// When the call was admitted, if the breaker times calls (a slow-call
    /// rule); zero otherwise.
    started: Timestamp,
    /// `Some(Ignored)` until the call reports; `None` after.
    on_drop: Option<Outcome>,
}

impl<B: Deref<Target = Breaker>> Admission<B> {
    /// A call admitted just now with `ticket`, timed if the breaker has a
    /// slow-call rule.
    pub(crate) fn new(breaker: B, ticket: Ticket) -> Admission<B> {
        let started = breaker.started();
        Admission { breaker, ticket, started, on_drop: Some(Outcome::Ignored) }
    }

    /// [`new`](Self::new) for a breaker known to have no rules (its counter
    /// slot was in the plain cache), without looking.
    #[inline(always)]
    pub(crate) fn untimed(breaker: B, ticket: Ticket) -> Admission<B> {
        debug_assert!(!breaker.is_watched(), "a watched breaker's slot is never in the plain cache");
        Admission { breaker, ticket, started: Timestamp::ZERO, on_drop: Some(Outcome::Ignored) }
    }

    /// Runs the caller's code for this call: a panic in it reports the call
    /// as a failure before it continues to the caller.
    #[inline(always)]
    pub(crate) fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        failing_on_unwind(f, || self.fail_now())
    }

    fn fail_now(&mut self) {
        if self.on_drop.take().is_some() {
            self.breaker.settle_unreported(self.ticket, self.started, Outcome::Failure);
        }
    }

    #[inline(always)]
    pub(crate) fn record(mut self, outcome: Outcome) -> Recorded {
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

    /// [`record`](Self::record) for a breaker with rules, in the place the
    /// caller looked up.
    #[inline(always)]
    pub(crate) fn record_watched(
        mut self,
        rules: &crate::rules::Rules,
        place: Option<(&'static crate::lane::Slot, &'static breakerbox_core::__private::Ring)>,
        outcome: Outcome,
    ) -> Recorded {
        self.on_drop = None;
        self.breaker.settle_watched(rules, place, self.ticket, self.started, outcome)
    }

    /// The ticket and start, for a future that reports later; the drop no
    /// longer reports.
    #[cfg(feature = "tower")]
    #[inline(always)]
    pub(crate) fn into_ticket(mut self) -> (Ticket, Timestamp) {
        self.on_drop = None;
        (self.ticket, self.started)
    }
}

impl<B: Deref<Target = Breaker>> Drop for Admission<B> {
    #[inline]
    fn drop(&mut self) {
        // After `record` this is a no-op the compiler sees through; only an
        // unreported call pays for it.
        if let Some(outcome) = self.on_drop.take() {
            self.breaker.settle_unreported(self.ticket, self.started, outcome);
        }
    }
}
