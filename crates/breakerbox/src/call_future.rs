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

use crate::classify::{ByResult, Classify};
use crate::fallback::Fallback;
use crate::unwind::failing_on_unwind;
use crate::{Breaker, Error};

pin_project! {
    /// A call through a [`Breaker`] that decides at its first poll, then
    /// polls the inner future `F` and counts its result as `C` classifies it.
    ///
    /// Made by [`Breaker::call_async`] (`B` is `&Breaker`) and by
    /// `Registry::call_async` (`B` is `Arc<Breaker>`, so the future is
    /// `'static` when `F` and `C` are: what a spawned task needs). Before the
    /// first poll, [`classify`](Self::classify) sets how the result counts
    /// and [`fallback`](Self::fallback) answers a rejection.
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
    /// use breakerbox::{Breaker, CallFuture};
    /// use std::future::Ready;
    ///
    /// // A type a struct can name as its field.
    /// type Call<'a> = CallFuture<&'a Breaker, Ready<Result<u32, ()>>>;
    /// let breaker = Breaker::default();
    /// let call: Call<'_> = breaker.call_async(std::future::ready(Ok(7)));
    /// # drop(call);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct CallFuture<B, F, C = ByResult>
    where
        B: Deref<Target = Breaker>,
    {
        // First, so that an unfinished call reports before `fut` drops, as
        // it would if the caller dropped the call before its future.
        call: Call<B>,
        #[pin]
        fut: F,
        // `None` once the call has completed.
        classify: Option<C>,
    }
}

/// The breaker and where the call is; its drop reports a call that was
/// admitted and never finished as ignored.
struct Call<B: Deref<Target = Breaker>> {
    breaker: B,
    stage: Stage,
}

#[derive(Clone, Copy, Debug)]
enum Stage {
    Undecided,
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    Rejected(Rejected),
    Admitted {
        ticket: Ticket,
        started: Timestamp,
    },
    Done,
}

impl<B: Deref<Target = Breaker>> Drop for Call<B> {
    fn drop(&mut self) {
        // Dropped before it finished: counts as nothing, frees a probe slot.
        if let Stage::Admitted { ticket, started } = core::mem::replace(&mut self.stage, Stage::Done) {
            self.breaker.settle_unreported(ticket, started, Outcome::Ignored);
        }
    }
}

impl<B: Deref<Target = Breaker>, F> CallFuture<B, F> {
    pub(crate) fn new(breaker: B, fut: F) -> Self {
        CallFuture { call: Call { breaker, stage: Stage::Undecided }, classify: Some(ByResult), fut }
    }
}

impl<B: Deref<Target = Breaker>, F, C> CallFuture<B, F, C> {
    #[cfg(feature = "tower")]
    pub(crate) fn admitted(breaker: B, (ticket, started): (Ticket, Timestamp), classify: C, fut: F) -> Self {
        CallFuture { call: Call { breaker, stage: Stage::Admitted { ticket, started } }, classify: Some(classify), fut }
    }

    #[cfg(feature = "tower")]
    pub(crate) fn rejected(breaker: B, rejected: Rejected, classify: C, fut: F) -> Self {
        CallFuture { call: Call { breaker, stage: Stage::Rejected(rejected) }, classify: Some(classify), fut }
    }

    /// The same call with `classify` deciding how its result counts:
    /// [`Outcome::Ignored`] counts nothing and frees a probe slot, for
    /// errors that say nothing about the downstream (the caller's own
    /// deadline, a cancellation). Any [`Classify`], a closure among them.
    ///
    /// ```
    /// use breakerbox::{Breaker, Outcome};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = Breaker::default();
    /// let deadline_is_ours = |result: &Result<(), &str>| match result {
    ///     Err("deadline exceeded") => Outcome::Ignored,
    ///     Err(_) => Outcome::Failure,
    ///     Ok(()) => Outcome::Success,
    /// };
    /// let call = breaker.call_async(async { Err::<(), _>("deadline exceeded") }).classify(deadline_is_ours);
    /// assert!(call.await.is_err());
    /// assert_eq!(breaker.counts().failures, 0);
    /// # });
    /// ```
    pub fn classify<D>(self, classify: D) -> CallFuture<B, F, D> {
        let CallFuture { call, fut, classify: old } = self;
        // A call that already completed stays completed.
        CallFuture { call, fut, classify: old.map(|_| classify) }
    }

    /// The same call answering a rejection with `fallback(rejected)`
    /// instead of [`Error::Open`]: the Go package's `DoWithFallback`. The
    /// inner future's own error passes through unchanged, and the fallback
    /// runs only when the breaker rejected the call.
    ///
    /// ```
    /// use breakerbox::Breaker;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = Breaker::default();
    /// breaker.trip();
    /// let page = breaker.call_async(async { Ok::<_, ()>("live") }).fallback(|_| async { Ok("cached") });
    /// assert_eq!(page.await, Ok("cached"));
    /// # });
    /// ```
    pub fn fallback<G, H>(self, fallback: G) -> Fallback<Self, G, H>
    where
        G: FnOnce(Rejected) -> H,
    {
        Fallback::new(self, fallback)
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
        let call = this.call;
        let breaker: &Breaker = &call.breaker;
        let rejected = match call.stage {
            Stage::Undecided => match breaker.admit() {
                Ok(ticket) => {
                    call.stage = Stage::Admitted { ticket, started: breaker.started() };
                    None
                }
                Err(rejected) => Some(rejected),
            },
            Stage::Rejected(rejected) => Some(rejected),
            Stage::Admitted { .. } | Stage::Done => None,
        };
        if let Some(rejected) = rejected {
            call.stage = Stage::Done;
            *this.classify = None;
            return Poll::Ready(Err(Error::Open(rejected)));
        }
        // A panic in `fut` unwinds through this frame, not through the future,
        // which the caller still owns (and may poll again): the call fails at
        // the panic and ends.
        let stage = &mut call.stage;
        let classify = &mut *this.classify;
        let fut = this.fut;
        let poll = failing_on_unwind(
            || fut.poll(cx),
            || {
                *classify = None;
                if let Stage::Admitted { ticket, started } = core::mem::replace(stage, Stage::Done) {
                    breaker.settle(ticket, started, Outcome::Failure);
                }
            },
        );
        let Poll::Ready(result) = poll else { return Poll::Pending };
        if let Some(classify) = this.classify.take() {
            // Classified before the ticket is taken: a panic in the caller's
            // classifier leaves the ticket for the drop, which counts the
            // call as ignored, as `call_with` does.
            let outcome = classify.classify(&result);
            if let Stage::Admitted { ticket, started } = core::mem::replace(&mut call.stage, Stage::Done) {
                breaker.settle(ticket, started, outcome);
            }
        }
        Poll::Ready(result.map_err(Error::Inner))
    }
}

impl<B: Deref<Target = Breaker>, F, C> fmt::Debug for CallFuture<B, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ticket = match self.call.stage {
            Stage::Admitted { ticket, .. } => Some(ticket),
            _ => None,
        };
        let rejected = match self.call.stage {
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
