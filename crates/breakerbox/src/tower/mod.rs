//! The breaker as tower middleware (the `tower` feature): a
//! [`CircuitBreakerLayer`] for `ServiceBuilder`, the
//! [`CircuitBreakerService`] it builds, and (the `http` feature) a
//! classifier for HTTP responses, [`ServerErrorsAsFailures`].
//!
//! Every clone of the service shares one [`Breaker`](crate::Breaker), which
//! the caller keeps in an `Arc` to read its `state()` and `counts()` or to
//! make plain calls through it.
//!
//! # Errors
//!
//! As tower's own middleware (`timeout`, `load_shed`) do, the service
//! answers with tower's `BoxError` (`Box<dyn Error + Send + Sync>`) and needs
//! the inner service's error to convert into one. A rejection is a boxed
//! [`Rejected`](crate::Rejected): `err.downcast_ref::<Rejected>()` tells it
//! from the inner service's own error and gives the time to wait
//! ([`retry_after_secs`](crate::Rejected::retry_after_secs) for a
//! `Retry-After` header). So the service stacks under `tower::timeout`,
//! inside `ServiceBuilder` and under axum's `HandleErrorLayer` with no
//! conversion of its own. The classifier sees the inner service's error
//! before it is boxed. The price: an error, the rejection among them, is
//! boxed (one allocation); a healthy call allocates nothing. For the typed
//! [`Error`](crate::Error) instead, call through
//! [`Breaker::call_async`](crate::Breaker::call_async).
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
//!     Ok::<_, BoxError>(Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body(())?)
//! });
//! let breaker = Arc::new(Breaker::new(Config { threshold: 1, ..Config::default() })?);
//! let service = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new()))
//!     // Below the breaker, so that a hung upstream counts as a failure.
//!     .timeout(Duration::from_secs(2))
//!     .service(upstream);
//! let response = service.clone().oneshot(Request::new(())).await?;
//! assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE); // a failure: it opens
//! let rejected: BoxError = service.oneshot(Request::new(())).await.unwrap_err();
//! assert_eq!(rejected.downcast_ref::<Rejected>().and_then(Rejected::retry_after_secs), Some(30));
//! # Ok::<(), BoxError>(())
//! # }).unwrap();
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
//! an open breaker is still ready: it answers at once with a boxed `Rejected`.
//! Three ways to route around it:
//!
//! - Retry on rejections (`tower::retry` with a policy that retries an
//!   error that `is::<Rejected>()`): the balancer picks again, usually another endpoint, and a
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

pub use future::ResponseFuture;
#[cfg(feature = "http")]
pub use http::ServerErrorsAsFailures;
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreakerService;
