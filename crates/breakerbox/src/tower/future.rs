//! [`ResponseFuture`]: the tower service's future, a [`CallFuture`] around
//! the inner service's future, or around nothing when the breaker rejected
//! the request.

use std::sync::Arc;

use crate::{Breaker, CallFuture};

pub use called::Called;

/// The future of [`CircuitBreakerService::call`](crate::tower::CircuitBreakerService):
/// a [`CallFuture`] that the service made already decided. Rejected, it is
/// ready at once with [`Error::Open`](crate::Error::Open) and the inner
/// service was never called; admitted, it is the inner service's future under
/// the breaker's ticket, with [`CallFuture`]'s panic and drop semantics. No
/// allocation: the inner future is held in place.
pub type ResponseFuture<F, C, B = Arc<Breaker>> = CallFuture<B, Called<F>, C>;

mod called {
    // pin-project-lite takes no doc comment on a variant's field; the
    // variant's own says what `future` is.
    #![allow(missing_docs)]

    use core::future::Future;
    use core::pin::Pin;
    use core::task::{Context, Poll};

    use pin_project_lite::pin_project;

    pin_project! {
        /// The inner service's future, if the breaker let the request
        /// through: what a [`ResponseFuture`](super::ResponseFuture) wraps. A
        /// rejected request has none, and its future never polls this.
        #[project = CalledProjection]
        #[derive(Debug)]
        pub enum Called<F> {
            /// The request was sent: `future` is the inner service's future.
            Sent {
                #[pin]
                future: F,
            },
            /// The breaker rejected the request; the inner service was not
            /// called.
            NotSent,
        }
    }

    impl<F: Future> Future for Called<F> {
        type Output = F::Output;

        #[inline(always)]
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            match self.project() {
                CalledProjection::Sent { future } => future.poll(cx),
                CalledProjection::NotSent => panic!("a rejected request has no inner future to poll"),
            }
        }
    }
}
