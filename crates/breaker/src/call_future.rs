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

use breaker_core::{Outcome, Rejected, Ticket, Timestamp};
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
    /// use breaker::{Breaker, ByResult, CallFuture, Config};
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
        // `Some` from the admission until the result is reported; `None`
        // with `classify` still there means the first poll has not decided.
        ticket: Option<Ticket>,
        // When the call was admitted, for a slow-call rule.
        started: Timestamp,
        // A rejection decided before the first poll (the tower service
        // admits in `call`), which the first poll returns.
        rejected: Option<Rejected>,
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
            if let Some(ticket) = this.ticket.take() {
                this.breaker.settle_unreported(ticket, *this.started, Outcome::Ignored);
            }
        }
    }
}

impl<B: Deref<Target = Breaker>, F, C> CallFuture<B, F, C> {
    pub(crate) fn new(breaker: B, classify: C, fut: F) -> Self {
        CallFuture { breaker, classify: Some(classify), ticket: None, started: Timestamp::ZERO, rejected: None, fut }
    }

    /// A call the breaker has already admitted with `ticket` (the tower
    /// service admits before it calls the inner service).
    #[cfg(feature = "tower")]
    pub(crate) fn admitted(breaker: B, (ticket, started): (Ticket, Timestamp), classify: C, fut: F) -> Self {
        CallFuture { breaker, classify: Some(classify), ticket: Some(ticket), started, rejected: None, fut }
    }

    /// A call the breaker has already rejected: its first poll returns the
    /// rejection and never polls `fut`.
    #[cfg(feature = "tower")]
    pub(crate) fn rejected(breaker: B, rejected: Rejected, classify: C, fut: F) -> Self {
        let started = Timestamp::ZERO;
        CallFuture { breaker, classify: Some(classify), ticket: None, started, rejected: Some(rejected), fut }
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
        if this.ticket.is_none() {
            let admission = match this.rejected.take() {
                Some(rejected) => Err(rejected),
                None => breaker.admit(),
            };
            match admission {
                Ok(ticket) => {
                    *this.ticket = Some(ticket);
                    *this.started = breaker.started();
                }
                Err(rejected) => {
                    *this.classify = None;
                    return Poll::Ready(Err(Error::Open(rejected)));
                }
            }
        }
        // A panic in `fut` unwinds through this frame, not through the future,
        // which the caller still owns (and may poll again): the guard reports
        // the failure at the panic and ends the call.
        let guard =
            FailOnUnwind { breaker, ticket: &mut *this.ticket, started: *this.started, classify: &mut *this.classify };
        let poll = this.fut.poll(cx);
        core::mem::forget(guard);
        let Poll::Ready(result) = poll else { return Poll::Pending };
        if let Some(classify) = this.classify.take() {
            // Classified before the ticket is taken: a panic in the caller's
            // classifier leaves the ticket for the drop, which counts the
            // call as ignored, as `call_with` does.
            let outcome = classify.classify(&result);
            if let Some(ticket) = this.ticket.take() {
                breaker.settle(ticket, *this.started, outcome);
            }
        }
        Poll::Ready(result.map_err(Error::Inner))
    }
}

impl<B: Deref<Target = Breaker>, F, C> fmt::Debug for CallFuture<B, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture")
            .field("ticket", &self.ticket)
            .field("rejected", &self.rejected)
            .field("done", &self.classify.is_none())
            .finish_non_exhaustive()
    }
}

/// Armed only while the inner future is polled; forgotten when the poll
/// returns, so its drop runs only when a panic unwinds through the poll.
struct FailOnUnwind<'g, C> {
    breaker: &'g Breaker,
    ticket: &'g mut Option<Ticket>,
    started: Timestamp,
    classify: &'g mut Option<C>,
}

impl<C> Drop for FailOnUnwind<'_, C> {
    fn drop(&mut self) {
        *self.classify = None;
        if let Some(ticket) = self.ticket.take() {
            self.breaker.settle(ticket, self.started, Outcome::Failure);
        }
    }
}
