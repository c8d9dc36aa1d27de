//! The tower layer against an in-process upstream: a `tower::Service` that
//! answers HTTP statuses, refuses, or hangs, and counts the requests that
//! reach it. The breaker's time is a mock clock. The same rules are checked
//! end to end, with a real server and client on loopback, in the
//! workspace's `examples/tests/http.rs`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use breakerbox::quanta::{Clock, Mock};
use breakerbox::tower::{CircuitBreakerLayer, CircuitBreakerService, ServerErrorsAsFailures};
use breakerbox::{Breaker, Config, Outcome, Rejected, State};
use http::{Request, Response, StatusCode};
use tokio::sync::Notify;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// What the upstream does with a request.
#[derive(Clone, Default)]
struct Upstream {
    requests: Arc<AtomicUsize>,
    /// The status it answers; 0 refuses the request with an error.
    status: Arc<AtomicU16>,
    hanging: Arc<AtomicBool>,
    hang: Arc<Notify>,
}

impl Upstream {
    fn answering(status: u16) -> Upstream {
        let upstream = Upstream::default();
        upstream.answer(status);
        upstream
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<()>, &'static str>> + Send>>;

impl Service<Request<()>> for Upstream {
    type Response = Response<()>;
    type Error = &'static str;
    type Future = Answer;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<()>) -> Answer {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let (status, hanging, hang) = (self.status.clone(), self.hanging.clone(), self.hang.clone());
        Box::pin(async move {
            if hanging.load(Ordering::SeqCst) {
                hang.notified().await;
            }
            match status.load(Ordering::SeqCst) {
                0 => Err("connection refused"),
                code => Ok(Response::builder().status(code).body(()).unwrap()),
            }
        })
    }
}

fn breaker(threshold: u32, timeout: Duration) -> (Arc<Breaker>, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let config = Config { threshold, timeout, half_open_max: 1 };
    (Arc::new(Breaker::with_clock(config, clock).unwrap()), mock)
}

fn counts(breaker: &Breaker) -> (u64, u64, u64) {
    let counts = breaker.counts();
    (counts.successes, counts.failures, counts.rejections)
}

/// Sends one request through `service` and returns its status, or the error.
async fn send<S>(service: &mut S) -> Result<StatusCode, S::Error>
where
    S: Service<Request<()>, Response = Response<()>>,
{
    Ok(service.ready().await?.call(Request::new(())).await?.status())
}

#[tokio::test]
async fn server_errors_open_it_it_rejects_without_calling_the_upstream_and_a_probe_closes_it() {
    let upstream = Upstream::answering(503);
    let (breaker, mock) = breaker(3, Duration::from_secs(10));
    let mut service = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new()))
        .service(upstream.clone());

    for _ in 0..3 {
        assert_eq!(send(&mut service).await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!((breaker.state(), upstream.requests()), (State::Open, 3));
    for _ in 0..5 {
        assert!(send(&mut service).await.unwrap_err().is::<Rejected>());
    }
    assert_eq!(upstream.requests(), 3, "no request reached the upstream while the breaker was open");

    mock.increment(Duration::from_secs(10));
    upstream.answer(200);
    assert_eq!(send(&mut service).await.unwrap(), StatusCode::OK);
    assert_eq!((breaker.state(), upstream.requests()), (State::Closed, 4));
    assert_eq!(counts(&breaker), (1, 3, 5));
}

#[tokio::test]
async fn errors_of_the_upstream_count_as_failures() {
    let upstream = Upstream::answering(0);
    let (breaker, _mock) = breaker(2, Duration::from_secs(10));
    let mut service = CircuitBreakerService::new(upstream, breaker.clone());
    for _ in 0..2 {
        assert_eq!(send(&mut service).await.unwrap_err().to_string(), "connection refused");
    }
    assert_eq!((breaker.state(), counts(&breaker)), (State::Open, (0, 2, 0)));
}

#[tokio::test]
async fn client_errors_count_as_successes_unless_a_classifier_says_otherwise() {
    let upstream = Upstream::answering(404);
    let (breaker, _mock) = breaker(1, Duration::from_secs(10));
    let layer = CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new());
    let mut service = ServiceBuilder::new().layer(layer).service(upstream.clone());
    for _ in 0..5 {
        assert_eq!(send(&mut service).await.unwrap(), StatusCode::NOT_FOUND);
    }
    assert_eq!((breaker.state(), counts(&breaker)), (State::Closed, (5, 0, 0)));

    let (strict, _mock) = self::breaker(1, Duration::from_secs(10));
    let only_2xx = |result: &Result<Response<()>, &'static str>| match result {
        Ok(response) if response.status().is_success() => Outcome::Success,
        _ => Outcome::Failure,
    };
    let mut service =
        ServiceBuilder::new().layer(CircuitBreakerLayer::new(strict.clone()).classify(only_2xx)).service(upstream);
    assert_eq!(send(&mut service).await.unwrap(), StatusCode::NOT_FOUND);
    assert_eq!(strict.state(), State::Open);
}

#[tokio::test]
async fn a_dropped_response_future_frees_the_half_open_slot() {
    let upstream = Upstream::answering(200);
    upstream.hanging.store(true, Ordering::SeqCst);
    let (breaker, mock) = breaker(1, Duration::from_secs(10));
    let mut service = CircuitBreakerService::new(upstream.clone(), breaker.clone());
    breaker.trip();
    mock.increment(Duration::from_secs(10));

    let mut probe = Box::pin(service.ready().await.unwrap().call(Request::new(())));
    assert!(futures_poll(&mut probe).is_pending(), "the upstream holds the probe");
    assert!(send(&mut service).await.unwrap_err().is::<Rejected>(), "the probe holds the only slot");
    drop(probe);
    assert_eq!(breaker.state(), State::HalfOpen);

    upstream.hanging.store(false, Ordering::SeqCst);
    assert_eq!(send(&mut service).await.unwrap(), StatusCode::OK);
    assert_eq!(breaker.state(), State::Closed, "the dropped probe's slot went to the next request");
    assert_eq!(counts(&breaker), (1, 0, 1));
}

fn futures_poll<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn clones_share_one_breaker() {
    let upstream = Upstream::answering(500);
    let (breaker, _mock) = breaker(2, Duration::from_secs(10));
    let layer = CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new());
    let mut first = ServiceBuilder::new().layer(layer.clone()).service(upstream.clone());
    let mut second = first.clone();
    let mut third = ServiceBuilder::new().layer(layer).service(upstream.clone());
    send(&mut first).await.unwrap();
    send(&mut second).await.unwrap();
    assert!(send(&mut third).await.unwrap_err().is::<Rejected>());
    assert!(send(&mut first).await.unwrap_err().is::<Rejected>());
    assert_eq!((upstream.requests(), counts(&breaker)), (2, (0, 2, 2)));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_below_the_breaker_counts_a_hung_upstream_as_a_failure() {
    let upstream = Upstream::answering(200);
    upstream.hanging.store(true, Ordering::SeqCst);
    let (breaker, _mock) = breaker(1, Duration::from_secs(10));
    // tokio's paused clock moves to the timeout as soon as every task waits.
    let mut service = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .timeout(Duration::from_secs(5))
        .service(upstream);
    let err = service.ready().await.unwrap().call(Request::new(())).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    assert_eq!(breaker.state(), State::Open);
    let rejected: BoxError = service.ready().await.unwrap().call(Request::new(())).await.unwrap_err();
    assert!(rejected.downcast_ref::<Rejected>().is_some(), "{rejected:?}");
    assert_eq!(counts(&breaker), (0, 1, 1));
}

/// A service that is ready only when `ready` is set, and fails its
/// readiness when `broken` is.
#[derive(Clone, Default)]
struct Gate {
    ready: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
}

impl Service<()> for Gate {
    type Response = ();
    type Error = &'static str;
    type Future = std::future::Ready<Result<(), &'static str>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.broken.load(Ordering::SeqCst) {
            Poll::Ready(Err("broken"))
        } else if self.ready.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, (): ()) -> Self::Future {
        std::future::ready(Ok(()))
    }
}

#[test]
fn poll_ready_is_the_inner_services() {
    let gate = Gate::default();
    let (breaker, _mock) = breaker(1, Duration::from_secs(10));
    breaker.trip(); // an open breaker does not make the service unready, nor ready
    let mut service = CircuitBreakerService::new(gate.clone(), breaker.clone());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_pending());
    gate.ready.store(true, Ordering::SeqCst);
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let rejected = service.call(());
    assert!(format!("{rejected:?}").contains("rejected: Some(Rejected"), "{rejected:?}");
    gate.broken.store(true, Ordering::SeqCst);
    let Poll::Ready(Err(broken)) = service.poll_ready(&mut cx) else { panic!("the inner service's readiness failed") };
    assert_eq!(broken.to_string(), "broken");
    assert_eq!(counts(&breaker), (0, 0, 1), "readiness admits nothing; the call was rejected");
}

/// A service whose `call` panics when `panic_in_call` is set, and whose
/// future panics otherwise.
struct Exploding {
    panic_in_call: bool,
}

impl Service<()> for Exploding {
    type Response = ();
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        assert!(!self.panic_in_call, "call exploded");
        Box::pin(async { panic!("future exploded") })
    }
}

#[test]
fn a_panic_in_the_inner_service_counts_as_a_failure() {
    for panic_in_call in [true, false] {
        let (breaker, _mock) = breaker(1, Duration::from_secs(10));
        let mut service = CircuitBreakerService::new(Exploding { panic_in_call }, breaker.clone());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let future = service.call(());
            let _ = pin!(future).poll(&mut Context::from_waker(Waker::noop()));
        }));
        assert!(panicked.is_err());
        assert_eq!((breaker.state(), counts(&breaker)), (State::Open, (0, 1, 0)), "panic in call: {panic_in_call}");
    }
}

#[test]
fn the_http_classifier_counts_5xx_and_optionally_429_as_failures() {
    let plain = ServerErrorsAsFailures::new();
    let shedding = ServerErrorsAsFailures::new().too_many_requests_as_failure();
    for (status, plain_outcome, shedding_outcome) in [
        (StatusCode::OK, Outcome::Success, Outcome::Success),
        (StatusCode::NOT_FOUND, Outcome::Success, Outcome::Success),
        (StatusCode::TOO_MANY_REQUESTS, Outcome::Success, Outcome::Failure),
        (StatusCode::INTERNAL_SERVER_ERROR, Outcome::Failure, Outcome::Failure),
        (StatusCode::SERVICE_UNAVAILABLE, Outcome::Failure, Outcome::Failure),
    ] {
        assert_eq!(plain.outcome_of(status), plain_outcome, "{status}");
        assert_eq!(shedding.outcome_of(status), shedding_outcome, "{status}");
    }
}
