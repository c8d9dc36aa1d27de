//! [`Fallback`]: a call future that answers a rejection with the caller's
//! fallback.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use breakerbox_core::Rejected;
use pin_project_lite::pin_project;

use crate::Error;

pin_project! {
    /// A call that runs `fallback(rejected)` when the breaker rejects it:
    /// the Go package's `DoWithFallback`, made by
    /// [`CallFuture::fallback`](crate::CallFuture::fallback). `C` is the
    /// call's future, `G` the fallback, `H` the fallback's future.
    ///
    /// Its output is the call's own `Result<T, E>`: a rejection never
    /// reaches the caller, the inner future's errors pass through, and the
    /// fallback's result is returned as it is.
    #[must_use = "futures do nothing unless polled"]
    pub struct Fallback<C, G, H> {
        #[pin]
        stage: FallbackStage<C, G, H>,
    }
}

pin_project! {
    #[project = StageProjection]
    enum FallbackStage<C, G, H> {
        Calling { #[pin] call: C, fallback: Option<G> },
        FallingBack { #[pin] fallback: H },
    }
}

impl<C, G, H> Fallback<C, G, H> {
    pub(crate) fn new(call: C, fallback: G) -> Self {
        Fallback { stage: FallbackStage::Calling { call, fallback: Some(fallback) } }
    }
}

impl<T, E, C, G, H> Future for Fallback<C, G, H>
where
    C: Future<Output = Result<T, Error<E>>>,
    G: FnOnce(Rejected) -> H,
    H: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut stage = self.project().stage;
        loop {
            let next = match stage.as_mut().project() {
                StageProjection::Calling { call, fallback } => match ready!(call.poll(cx)) {
                    Ok(value) => return Poll::Ready(Ok(value)),
                    Err(Error::Inner(err)) => return Poll::Ready(Err(err)),
                    Err(Error::Open(rejected)) => {
                        let fallback = fallback.take().expect("a fallback runs once: the call ends with it");
                        FallbackStage::FallingBack { fallback: fallback(rejected) }
                    }
                },
                StageProjection::FallingBack { fallback } => return fallback.poll(cx),
            };
            stage.set(next);
        }
    }
}

impl<C: fmt::Debug, G, H> fmt::Debug for Fallback<C, G, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.stage {
            FallbackStage::Calling { call, .. } => {
                f.debug_struct("Fallback").field("call", call).finish_non_exhaustive()
            }
            FallbackStage::FallingBack { .. } => {
                f.debug_struct("Fallback").field("falling_back", &true).finish_non_exhaustive()
            }
        }
    }
}
