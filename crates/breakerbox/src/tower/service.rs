//! [`CircuitBreakerService`]: admission in `call`, readiness from the inner
//! service.

use core::ops::Deref;
use core::task::{Context, Poll};
use std::sync::Arc;

use tower_service::Service;

use crate::Breaker;
use crate::classify::{ByResult, Classify};
use crate::tower::ResponseFuture;

/// What tower's middleware answers with: any error, boxed.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service behind a [`Breaker`]: built by
/// [`CircuitBreakerLayer`](crate::tower::CircuitBreakerLayer), or by
/// [`new`](Self::new) around a service directly. Clones share the breaker.
///
/// - `poll_ready` is the inner service's readiness, untouched.
/// - `call` asks the breaker first. Rejected, it returns a future that is
///   ready at once with a boxed [`Rejected`](crate::Rejected) and never
///   calls the inner service;
///   admitted, it calls the inner service and returns a [`ResponseFuture`]
///   that counts the result as the classifier `C` says when it completes,
///   counts a panic in the inner service (in `call` or in its future) as a
///   failure, and counts nothing if dropped before completing (a half-open
///   breaker gets its probe slot back).
///
/// ```
/// use breakerbox::tower::CircuitBreakerService;
/// use breakerbox::{Breaker, Config, Rejected};
/// use std::sync::Arc;
/// use tower::{Service, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let breaker = Arc::new(Breaker::new(Config { threshold: 1, ..Config::default() })?);
/// let flaky = tower::service_fn(|fail: bool| async move { if fail { Err("503") } else { Ok("200") } });
/// let mut service = CircuitBreakerService::new(flaky, breaker.clone());
/// let failed = service.ready().await?.call(true).await.unwrap_err();
/// assert_eq!(failed.to_string(), "503"); // the inner error, boxed
/// let rejected = service.ready().await?.call(false).await.unwrap_err();
/// assert!(rejected.is::<Rejected>()); // the inner service was not called
/// # Ok::<(), tower::BoxError>(())
/// # }).unwrap();
/// ```
///
/// `B` is how the breaker is held: `Arc<Breaker>`, or `&'static Breaker`
/// (see [`CircuitBreakerLayer::from_static`](crate::tower::CircuitBreakerLayer::from_static)).
#[derive(Clone, Debug)]
pub struct CircuitBreakerService<S, C = ByResult, B = Arc<Breaker>> {
    inner: S,
    breaker: B,
    classify: C,
}

impl<S> CircuitBreakerService<S> {
    /// `inner` behind `breaker`, every `Ok` a success and every `Err` a
    /// failure.
    pub fn new(inner: S, breaker: Arc<Breaker>) -> CircuitBreakerService<S> {
        CircuitBreakerService { inner, breaker, classify: ByResult }
    }
}

impl<S, C, B> CircuitBreakerService<S, C, B> {
    /// `inner` behind `breaker` (an `Arc<Breaker>` or a `&'static Breaker`),
    /// with results counted as `classify` says (cloned for every request).
    pub fn with_classifier(inner: S, breaker: B, classify: C) -> CircuitBreakerService<S, C, B> {
        CircuitBreakerService { inner, breaker, classify }
    }

    /// The breaker this service shares with its clones.
    pub fn breaker(&self) -> &B {
        &self.breaker
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, taken out.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, B, Request> Service<Request> for CircuitBreakerService<S, C, B>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
    B: Deref<Target = Breaker> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C, B>;

    /// The inner service's readiness. Admission waits for `call`: a `Buffer`
    /// or a balancer in front polls readiness for requests it may never
    /// send, and a probe slot taken here would be held for them.
    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        ResponseFuture::call(&mut self.inner, request, &self.breaker, self.classify.clone())
    }
}
