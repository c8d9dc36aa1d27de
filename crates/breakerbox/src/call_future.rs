//! [`CallFuture`]: the future of an asynchronous call through a breaker.
//!
//! Hand-written rather than an `async fn`: a panic while the inner future is
//! polled must count as a failure at once, and dropping the future between
//! polls (the caller gave up) as ignored, so every poll of the inner future
//! is bracketed by a guard; an `async fn` doing the same moves more state
//! around on every call (`BENCHMARKS.md` has the measurement). `pin-project-lite`
//! projects the pin without `unsafe` in this crate.

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};

use breakerbox_core::{Outcome, Rejected, Ticket, Timestamp};
use pin_project_lite::pin_project;

use crate::classify::Classify;
use crate::{Breaker, Error};

pin_project! {
    /// A call through a [`Breaker`] that decides at its first poll, then
    /// polls the inner future `F` and counts its result as `C` classifies it.
    ///
    /// Made by [`Breaker::call_async`] and [`Breaker::call_async_with`]
    /// (`B` is `&Breaker`) and by [`Breaker::call_async_owned`] and
    /// [`Breaker::call_async_owned_with`] (`B` is `Arc<Breaker>`, so the
    /// future is `'static` when `F` and `C` are: what a `tower::Service`
    /// or a spawned task needs).
    ///
    /// - Rejected at the first poll: ready at once with [`Error::Open`],
    ///   without polling `F`.
    /// - A panic while `F` is polled counts as a failure at the panic and
    ///   ends the call; polling again panics.
    /// - Dropped before `F` completes: counts as nothing, and a half-open
    ///   breaker gets its probe slot back. A panic in the classifier `C`
    ///   (the caller's code, not the downstream's) leaves the call to count
    ///   as ignored when the future is dropped.
    ///
    /// ```
    /// use breakerbox::{Breaker, ByResult, CallFuture, Config};
    /// use std::future::Ready;
    /// use std::sync::Arc;
    ///
    /// // A type a service can name as its `Future`.
    /// type Call = CallFuture<Arc<Breaker>, Ready<Result<u32, ()>>, ByResult>;
    /// let breaker = Arc::new(Breaker::new(Config::default()));
    /// let call: Call = breaker.call_async_owned(std::future::ready(Ok(7)));
    /// # drop(call);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct CallFuture<B, F, C>
    where
        B: Deref<Target = Breaker>,
    {
        #[pin]
        fut: F,
        breaker: B,
        // Where the call is: one field for what the stages need in turn.
        stage: Stage,
        // `None` once the call has completed.
        classify: Option<C>,
    }

    impl<B, F, C> PinnedDrop for CallFuture<B, F, C>
    where
        B: Deref<Target = Breaker>,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped before it finished: counts as nothing, frees a probe slot.
            if let Stage::Admitted { ticket, started } = core::mem::replace(this.stage, Stage::Done) {
                this.breaker.settle_unreported(ticket, started, Outcome::Ignored);
            }
        }
    }
}

/// Where a [`CallFuture`] is.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Not polled yet: the first poll asks the breaker.
    Undecided,
    /// Rejected before the first poll (the tower service admits in `call`),
    /// which the first poll returns.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    Rejected(Rejected),
    /// Admitted: the ticket, and when (for a slow-call rule), until the
    /// result is reported.
    Admitted { ticket: Ticket, started: Timestamp },
    /// Rejected, reported, or counted at a panic.
    Done,
}

impl<B: Deref<Target = Breaker>, F, C> CallFuture<B, F, C> {
    pub(crate) fn new(breaker: B, classify: C, fut: F) -> Self {
        CallFuture { breaker, classify: Some(classify), stage: Stage::Undecided, fut }
    }

    /// A call the breaker has already admitted with `ticket` (the tower
    /// service admits before it calls the inner service).
    #[cfg(feature = "tower")]
    pub(crate) fn admitted(breaker: B, (ticket, started): (Ticket, Timestamp), classify: C, fut: F) -> Self {
        CallFuture { breaker, classify: Some(classify), stage: Stage::Admitted { ticket, started }, fut }
    }

    /// A call the breaker has already rejected: its first poll returns the
    /// rejection and never polls `fut`.
    #[cfg(feature = "tower")]
    pub(crate) fn rejected(breaker: B, rejected: Rejected, classify: C, fut: F) -> Self {
        CallFuture { breaker, classify: Some(classify), stage: Stage::Rejected(rejected), fut }
    }
}

impl<T, E, B, F, C> Future for CallFuture<B, F, C>
where
    B: Deref<Target = Breaker>,
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, Error<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.classify.is_none() {
            panic!("a breaker call future was polled after it completed");
        }
        let breaker: &Breaker = this.breaker;
        let rejected = match *this.stage {
            Stage::Undecided => match breaker.admit() {
                Ok(ticket) => {
                    *this.stage = Stage::Admitted { ticket, started: breaker.started() };
                    None
                }
                Err(rejected) => Some(rejected),
            },
            Stage::Rejected(rejected) => Some(rejected),
            Stage::Admitted { .. } | Stage::Done => None,
        };
        if let Some(rejected) = rejected {
            *this.stage = Stage::Done;
            *this.classify = None;
            return Poll::Ready(Err(Error::Open(rejected)));
        }
        // A panic in `fut` unwinds through this frame, not through the future,
        // which the caller still owns (and may poll again): the guard reports
        // the failure at the panic and ends the call.
        let guard = FailOnUnwind { breaker, stage: &mut *this.stage, classify: &mut *this.classify };
        let poll = this.fut.poll(cx);
        core::mem::forget(guard);
        let Poll::Ready(result) = poll else { return Poll::Pending };
        if let Some(classify) = this.classify.take() {
            // Classified before the ticket is taken: a panic in the caller's
            // classifier leaves the ticket for the drop, which counts the
            // call as ignored, as `call_with` does.
            let outcome = classify.classify(&result);
            if let Stage::Admitted { ticket, started } = core::mem::replace(this.stage, Stage::Done) {
                breaker.settle(ticket, started, outcome);
            }
        }
        Poll::Ready(result.map_err(Error::Inner))
    }
}

impl<B: Deref<Target = Breaker>, F, C> fmt::Debug for CallFuture<B, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ticket = match self.stage {
            Stage::Admitted { ticket, .. } => Some(ticket),
            _ => None,
        };
        let rejected = match self.stage {
            Stage::Rejected(rejected) => Some(rejected),
            _ => None,
        };
        f.debug_struct("CallFuture")
            .field("ticket", &ticket)
            .field("rejected", &rejected)
            .field("done", &self.classify.is_none())
            .finish_non_exhaustive()
    }
}

/// Armed only while the inner future is polled; forgotten when the poll
/// returns, so its drop runs only when a panic unwinds through the poll.
struct FailOnUnwind<'g, C> {
    breaker: &'g Breaker,
    stage: &'g mut Stage,
    classify: &'g mut Option<C>,
}

impl<C> Drop for FailOnUnwind<'_, C> {
    fn drop(&mut self) {
        *self.classify = None;
        if let Stage::Admitted { ticket, started } = core::mem::replace(self.stage, Stage::Done) {
            self.breaker.settle(ticket, started, Outcome::Failure);
        }
    }
}
