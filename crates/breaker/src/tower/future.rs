//! [`ResponseFuture`]: a rejection ready at once, or an admitted call.

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Arc;

use pin_project_lite::pin_project;

use crate::call_future::{CallFuture, FailOnUnwind, poll_admitted};
use crate::classify::Classify;
use crate::{Breaker, Error, Rejected};

pin_project! {
    /// The future of [`CircuitBreakerService::call`](crate::tower::CircuitBreakerService):
    /// ready at once with [`Error::Open`] if the breaker rejected the request,
    /// otherwise the inner service's future under the breaker's ticket, with
    /// [`CallFuture`](crate::CallFuture)'s panic and drop semantics. No
    /// allocation: the inner future is held in place.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C, B = Arc<Breaker>>
    where
        B: Deref<Target = Breaker>,
    {
        rejected: Option<Rejected>,
        #[pin]
        call: Option<CallFuture<B, F, C>>,
    }
}

impl<F, C, B: Deref<Target = Breaker>> ResponseFuture<F, C, B> {
    pub(crate) fn rejected(rejected: Rejected) -> Self {
        ResponseFuture { rejected: Some(rejected), call: None }
    }

    pub(crate) fn admitted(call: CallFuture<B, F, C>) -> Self {
        ResponseFuture { rejected: None, call: Some(call) }
    }
}

impl<T, E, F, C, B> Future for ResponseFuture<F, C, B>
where
    B: Deref<Target = Breaker>,
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, Error<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(call) = this.call.as_pin_mut() {
            let (breaker, ticket, classify, fut) = call.admitted_parts();
            if classify.is_none() {
                panic!("a breaker response future was polled after it completed");
            }
            return poll_admitted!(breaker, ticket, classify, fut, cx);
        }
        match this.rejected.take() {
            Some(rejected) => Poll::Ready(Err(Error::Open(rejected))),
            None => panic!("a breaker response future was polled after it completed"),
        }
    }
}

impl<F, C, B: Deref<Target = Breaker>> fmt::Debug for ResponseFuture<F, C, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").field("rejected", &self.rejected).field("call", &self.call).finish()
    }
}
