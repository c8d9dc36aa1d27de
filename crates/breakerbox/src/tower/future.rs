//! [`ResponseFuture`]: the tower service's future, opaque, around a
//! [`CallFuture`] over the inner service's future (or over nothing, when the
//! breaker rejected the request).

use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Arc;

use pin_project_lite::pin_project;
use tower_service::Service;

use crate::call_future::CallFuture;
use crate::classify::{ByResult, Classify};
use crate::{Breaker, Error};

/// What tower's middleware answers with: any error, boxed.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The future of [`CircuitBreakerService::call`](crate::tower::CircuitBreakerService).
    /// Rejected, it is ready at once with a boxed
    /// [`Rejected`](crate::Rejected) and the inner service was never called;
    /// admitted, it is the inner service's future under the breaker's
    /// ticket, with [`CallFuture`]'s panic and drop semantics: a panic counts
    /// as a failure, a drop before completion as nothing. The classifier `C`
    /// sees the inner service's own error, before it is boxed. No
    /// allocation but the boxing of an error: the inner future is held in
    /// place.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C = ByResult, B = Arc<Breaker>>
    where
        B: Deref<Target = Breaker>,
    {
        #[pin]
        call: CallFuture<B, Sent<F>, C>,
    }
}

impl<F, C, B: Deref<Target = Breaker>> ResponseFuture<F, C, B> {
    /// Asks `breaker`, then calls `inner` if it is admitted.
    #[inline]
    pub(crate) fn call<S, Request>(inner: &mut S, request: Request, breaker: &B, classify: C) -> Self
    where
        S: Service<Request, Future = F>,
        B: Clone,
    {
        let call = match breaker.admit() {
            Ok(ticket) => {
                // A panic in the inner service's `call` unwinds through the
                // admission, which counts it as a failure.
                let mut admission = crate::permit::Admission::new(breaker.clone(), ticket);
                let future = admission.run(|| inner.call(request));
                CallFuture::admitted(breaker.clone(), admission.into_ticket(), classify, Sent::Admitted { future })
            }
            Err(rejected) => CallFuture::rejected(breaker.clone(), rejected, classify, Sent::Refused),
        };
        ResponseFuture { call }
    }
}

impl<T, E, F, C, B> Future for ResponseFuture<F, C, B>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
    B: Deref<Target = Breaker>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().call.poll(cx).map(|result| result.map_err(Error::into_boxed))
    }
}

impl<F, C, B: Deref<Target = Breaker>> core::fmt::Debug for ResponseFuture<F, C, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponseFuture").field("call", &self.call).finish()
    }
}

pin_project! {
    /// The inner service's future, if the request was sent. A rejected
    /// request's [`CallFuture`] answers before it would poll this.
    #[project = SentProjection]
    pub(crate) enum Sent<F> {
        Admitted { #[pin] future: F },
        Refused,
    }
}

impl<F: Future> Future for Sent<F> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project() {
            SentProjection::Admitted { future } => future.poll(cx),
            // `CallFuture` answers a rejection without polling its future.
            SentProjection::Refused => unreachable!("a rejected request has no inner future"),
        }
    }
}
