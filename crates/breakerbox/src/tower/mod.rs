//! The breaker as tower middleware (the `tower` feature): a
//! [`CircuitBreakerLayer`] for `ServiceBuilder`, the
//! [`CircuitBreakerService`] it builds, and (the `http` feature) a
//! classifier for HTTP responses, [`ServerErrorsAsFailures`].
//!
//! Every clone of the service shares one [`Breaker`](crate::Breaker), which
//! the caller keeps in an `Arc` to read its `state()` and `counts()` or to
//! make plain calls through it. The error is [`Error<S::Error>`](crate::Error):
//! `is_open()` tells a rejection from the inner service's own error. It is a
//! `std::error::Error` when `S::Error` is one, so `?` turns it into tower's
//! `BoxError`; when `S::Error` is already a `BoxError` (a `tower::timeout`
//! below the breaker), [`Error::into_boxed`](crate::Error::into_boxed) makes
//! one of it, and a rejection boxed that way downcasts to
//! [`Rejected`](crate::Rejected).
//!
//! ```
//! # // The classifier is the `http` feature's: without it, nothing to run.
//! # #[cfg(not(feature = "http"))] fn main() {}
//! # #[cfg(feature = "http")] fn main() {
//! use breakerbox::tower::{CircuitBreakerLayer, ServerErrorsAsFailures};
//! use breakerbox::{Breaker, Config, Rejected};
//! use http::{Request, Response, StatusCode};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tower::{BoxError, ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! // Stands in for hyper-util's client, a tonic channel or an axum `Router`.
//! let upstream = tower::service_fn(|_: Request<()>| async {
//!     Ok::<_, BoxError>(Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body(()).unwrap())
//! });
//! let breaker = Arc::new(Breaker::new(Config { threshold: 1, ..Config::default() }));
//! let service = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new()))
//!     // Below the breaker, so that a hung upstream counts as a failure.
//!     .timeout(Duration::from_secs(2))
//!     .service(upstream);
//! let response = service.clone().oneshot(Request::new(())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE); // a failure: it opens
//! let rejected: BoxError = service.oneshot(Request::new(())).await.unwrap_err().into_boxed();
//! assert!(rejected.downcast_ref::<Rejected>().is_some());
//! # });
//! # }
//! ```
//!
//! `examples/examples/first_service.rs` in the repository is a whole axum
//! gateway built this way (hyper-util's client, the registry, tracing and
//! Prometheus); `examples/tests/http.rs` drives such a stack against a real
//! local server.
//!
//! # Where the timeout goes
//!
//! Put `tower::timeout` *below* the breaker (after it in `ServiceBuilder`
//! order), so that a hung downstream's timeout is the call's error and
//! counts as a failure. A timeout *above* the breaker drops the response
//! future, and a dropped call counts as nothing: right for a caller that gave
//! up for its own reasons, wrong as the downstream's timeout.
//!
//! # Why admission is in `call`, not `poll_ready`
//!
//! `poll_ready` forwards the inner service's readiness, so backpressure is
//! untouched. The breaker decides in `call`: a `Buffer`, a balancer or a
//! `ready()` cache in front polls readiness for requests it may send much
//! later or never, and a half-open probe slot taken in `poll_ready` would be
//! held by a request that is not running, or never runs. A rejection is
//! therefore a future that is ready at once and never calls the inner
//! service.
//!
//! # With `tower::balance`
//!
//! Give each endpoint its own breaker (a layer per endpoint). The p2c
//! balancer picks between endpoints that are *ready*, and an endpoint behind
//! an open breaker is still ready: it answers at once with `Error::Open`.
//! Three ways to route around it:
//!
//! - Retry on `is_open()` errors (`tower::retry` with a policy that retries
//!   rejections): the balancer picks again, usually another endpoint, and a
//!   rejection costs nanoseconds, not a timeout.
//! - Drive the balancer from a `Discover` stream that removes an endpoint
//!   while its breaker's [`state()`](crate::Breaker::state) reads open and
//!   puts it back when it reads half-open.
//! - A readiness mode, where an open breaker makes `poll_ready` report not
//!   ready, is not offered: waking the task when probing may start needs a
//!   timer, and this crate uses no runtime's timer. The discover stream above
//!   (polled by a task that has one) gives the same routing.

mod future;
#[cfg(feature = "http")]
mod http;
mod layer;
mod service;

pub use future::{Called, ResponseFuture};
#[cfg(feature = "http")]
pub use http::ServerErrorsAsFailures;
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreakerService;
