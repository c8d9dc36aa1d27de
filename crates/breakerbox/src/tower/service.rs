//! [`CircuitBreakerService`]: admission in `call`, readiness from the inner
//! service.

use core::ops::Deref;
use core::task::{Context, Poll};
use std::sync::Arc;

use tower_service::Service;

use crate::call_future::CallFuture;
use crate::classify::{ByResult, Classify};
use crate::tower::{Called, ResponseFuture};
use crate::{Breaker, Error, Outcome, PermitOf};

/// A service behind a [`Breaker`]: built by
/// [`CircuitBreakerLayer`](crate::tower::CircuitBreakerLayer), or by
/// [`new`](Self::new) around a service directly. Clones share the breaker.
///
/// - `poll_ready` is the inner service's readiness, untouched.
/// - `call` asks the breaker first. Rejected, it returns a future that is
///   ready at once with [`Error::Open`] and never calls the inner service;
///   admitted, it calls the inner service and returns a [`ResponseFuture`]
///   that counts the result as the classifier `C` says when it completes,
///   counts a panic in the inner service (in `call` or in its future) as a
///   failure, and counts nothing if dropped before completing (a half-open
///   breaker gets its probe slot back).
///
/// ```
/// use breakerbox::tower::CircuitBreakerService;
/// use breakerbox::{Breaker, Config, Error};
/// use std::sync::Arc;
/// use tower::{Service, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let breaker = Arc::new(Breaker::new(Config { threshold: 1, ..Config::default() }));
/// let flaky = tower::service_fn(|fail: bool| async move { if fail { Err("503") } else { Ok("200") } });
/// let mut service = CircuitBreakerService::new(flaky, breaker.clone());
/// assert_eq!(service.ready().await.unwrap().call(true).await, Err(Error::Inner("503")));
/// let rejected = service.ready().await.unwrap().call(false).await.unwrap_err();
/// assert!(rejected.is_open()); // the inner service was not called
/// # });
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
    C: Classify<S::Response, S::Error> + Clone,
    B: Deref<Target = Breaker> + Clone,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S::Future, C, B>;

    /// The inner service's readiness. Admission waits for `call`: a `Buffer`
    /// or a balancer in front polls readiness for requests it may never
    /// send, and a probe slot taken here would be held for them.
    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Inner)
    }

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        let ticket = match self.breaker.admit() {
            Ok(ticket) => ticket,
            Err(rejected) => {
                return CallFuture::rejected(self.breaker.clone(), rejected, self.classify.clone(), Called::NotSent);
            }
        };
        // A panic in the inner service's `call` unwinds through the permit,
        // which counts it as a failure.
        let mut permit = PermitOf::new(&*self.breaker, ticket);
        permit.count_drop_as(Outcome::Failure);
        let future = self.inner.call(request);
        let ticket = permit.into_ticket();
        CallFuture::admitted(self.breaker.clone(), ticket, self.classify.clone(), Called::Sent { future })
    }
}
