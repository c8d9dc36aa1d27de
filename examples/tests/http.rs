//! The tower layer end to end: a real HTTP server on 127.0.0.1 (port 0) and
//! a real client (hyper-util's), on a tokio runtime. The breaker's time is a
//! mock clock; the server counts the requests that reach it. The facade's
//! own tests (`crates/breakerbox/tests/suite/tower_layer.rs`) check the same
//! rules against an in-process service.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use breakerbox::quanta::{Clock, Mock};
use breakerbox::tower::{CircuitBreakerLayer, CircuitBreakerService, ServerErrorsAsFailures};
use breakerbox::{Breaker, Config, Outcome, Rejected, State};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// A local HTTP server that answers every request with the status set in
/// `status` (or waits on `hang` first, when `hanging` is set), counting the
/// requests it sees.
struct Upstream {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    status: Arc<AtomicU16>,
    hanging: Arc<AtomicBool>,
    hang: Arc<Notify>,
    /// Notified at every request.
    arrived: Arc<Notify>,
}

impl Upstream {
    async fn start(status: u16) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        let upstream = Upstream {
            addr,
            requests: Arc::new(AtomicUsize::new(0)),
            status: Arc::new(AtomicU16::new(status)),
            hanging: Arc::new(AtomicBool::new(false)),
            hang: Arc::new(Notify::new()),
            arrived: Arc::new(Notify::new()),
        };
        let (requests, status, hanging, hang, arrived) = (
            upstream.requests.clone(),
            upstream.status.clone(),
            upstream.hanging.clone(),
            upstream.hang.clone(),
            upstream.arrived.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (requests, status, hanging, hang, arrived) =
                    (requests.clone(), status.clone(), hanging.clone(), hang.clone(), arrived.clone());
                let handler = hyper::service::service_fn(move |_request: Request<Incoming>| {
                    let (status, hanging, hang) = (status.clone(), hanging.clone(), hang.clone());
                    requests.fetch_add(1, Ordering::SeqCst);
                    arrived.notify_one();
                    async move {
                        if hanging.load(Ordering::SeqCst) {
                            hang.notified().await;
                        }
                        let status = StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
                        Ok::<_, Infallible>(Response::builder().status(status).body(Full::new(Bytes::new())).unwrap())
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), handler),
                );
            }
        });
        upstream
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn request(&self) -> Request<Empty<Bytes>> {
        Request::get(format!("http://{}/", self.addr)).body(Empty::new()).unwrap()
    }
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn breaker(threshold: u32, timeout: Duration) -> (Arc<Breaker>, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let config = Config { threshold, timeout, half_open_max: 1 };
    (Arc::new(Breaker::with_clock(config, clock).expect("a valid config")), mock)
}

fn counts(breaker: &Breaker) -> (u64, u64, u64) {
    let counts = breaker.counts();
    (counts.successes, counts.failures, counts.rejections)
}

/// Sends one request through `service` and returns its status, or the error.
async fn send<S>(service: &mut S, request: Request<Empty<Bytes>>) -> Result<StatusCode, S::Error>
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = BoxError>,
{
    let response = service.ready().await?.call(request).await?;
    let status = response.status();
    response.into_body().collect().await.expect("the body arrives");
    Ok(status)
}

#[tokio::test]
async fn server_errors_open_it_it_rejects_without_touching_the_server_and_a_probe_closes_it() {
    let upstream = Upstream::start(503).await;
    let (breaker, mock) = breaker(3, Duration::from_secs(10));
    let mut service = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new()))
        .service(client());

    for _ in 0..3 {
        assert_eq!(send(&mut service, upstream.request()).await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(upstream.requests(), 3);

    for _ in 0..5 {
        let err = send(&mut service, upstream.request()).await.unwrap_err();
        assert!(err.is::<Rejected>(), "{err:?}");
    }
    assert_eq!(upstream.requests(), 3, "the server saw no request while the breaker was open");

    mock.increment(Duration::from_secs(10));
    assert_eq!(breaker.state(), State::HalfOpen);
    upstream.answer(200);
    assert_eq!(send(&mut service, upstream.request()).await.unwrap(), StatusCode::OK);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(upstream.requests(), 4);
    assert_eq!(counts(&breaker), (1, 3, 5));
}

#[tokio::test]
async fn refused_connections_count_as_failures() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }; // nothing listens there any more
    let (breaker, _mock) = breaker(2, Duration::from_secs(10));
    let mut service = CircuitBreakerService::new(client(), breaker.clone());
    for _ in 0..2 {
        let request = Request::get(format!("http://{closed}/")).body(Empty::new()).unwrap();
        let err = send(&mut service, request).await.unwrap_err();
        let refused = err.downcast_ref::<hyper_util::client::legacy::Error>();
        assert!(refused.is_some_and(hyper_util::client::legacy::Error::is_connect), "{err:?}");
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(counts(&breaker), (0, 2, 0));
}

#[tokio::test]
async fn client_errors_counted_as_successes_keep_it_closed() {
    let upstream = Upstream::start(404).await;
    let (breaker, _mock) = breaker(1, Duration::from_secs(10));
    let layer = CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new());
    let mut service = ServiceBuilder::new().layer(layer).service(client());
    for _ in 0..5 {
        assert_eq!(send(&mut service, upstream.request()).await.unwrap(), StatusCode::NOT_FOUND);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!((upstream.requests(), counts(&breaker)), (5, (5, 0, 0)));

    // The same answers counted by a classifier of the caller's own.
    let (strict, _mock) = self::breaker(1, Duration::from_secs(10));
    let four_xx_fails = |result: &Result<Response<Incoming>, hyper_util::client::legacy::Error>| match result {
        Ok(response) if response.status().is_success() => Outcome::Success,
        _ => Outcome::Failure,
    };
    let mut service =
        ServiceBuilder::new().layer(CircuitBreakerLayer::new(strict.clone()).classify(four_xx_fails)).service(client());
    assert_eq!(send(&mut service, upstream.request()).await.unwrap(), StatusCode::NOT_FOUND);
    assert_eq!(strict.state(), State::Open);
}

#[tokio::test]
async fn a_dropped_response_future_frees_the_half_open_slot() {
    let upstream = Upstream::start(200).await;
    upstream.hanging.store(true, Ordering::SeqCst);
    let (breaker, mock) = breaker(1, Duration::from_secs(10));
    let mut service = CircuitBreakerService::new(client(), breaker.clone());
    breaker.trip();
    mock.increment(Duration::from_secs(10));

    let mut probe = Box::pin(service.ready().await.unwrap().call(upstream.request()));
    // Poll the probe until its request has reached the server, which holds it.
    tokio::select! {
        _ = &mut probe => panic!("the server answers no request while hanging"),
        () = upstream.arrived.notified() => {}
    }
    let full = send(&mut service, upstream.request()).await.unwrap_err();
    assert!(full.is::<Rejected>(), "the probe holds the only slot");
    drop(probe);
    assert_eq!(breaker.state(), State::HalfOpen);

    upstream.hanging.store(false, Ordering::SeqCst);
    assert_eq!(send(&mut service, upstream.request()).await.unwrap(), StatusCode::OK);
    assert_eq!(breaker.state(), State::Closed, "the dropped probe's slot went to the next request");
    assert_eq!(counts(&breaker), (1, 0, 1));
}

#[tokio::test]
async fn clones_share_one_breaker() {
    let upstream = Upstream::start(500).await;
    let (breaker, _mock) = breaker(2, Duration::from_secs(10));
    let layer = CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new());
    let mut first = ServiceBuilder::new().layer(layer.clone()).service(client());
    let mut second = first.clone();
    let mut third = ServiceBuilder::new().layer(layer).service(client());
    send(&mut first, upstream.request()).await.unwrap();
    send(&mut second, upstream.request()).await.unwrap();
    assert!(send(&mut third, upstream.request()).await.unwrap_err().is::<Rejected>());
    assert!(send(&mut first, upstream.request()).await.unwrap_err().is::<Rejected>());
    assert_eq!((upstream.requests(), counts(&breaker)), (2, (0, 2, 2)));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_below_the_breaker_counts_a_hung_server_as_a_failure() {
    let upstream = Upstream::start(200).await;
    upstream.hanging.store(true, Ordering::SeqCst);
    let (breaker, _mock) = breaker(1, Duration::from_secs(10));
    // tokio's paused clock moves to the timeout as soon as every task waits.
    let mut service = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .timeout(Duration::from_secs(5))
        .service(client());
    let err = service.ready().await.unwrap().call(upstream.request()).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    assert_eq!(breaker.state(), State::Open);
    let rejected: BoxError = service.ready().await.unwrap().call(upstream.request()).await.unwrap_err();
    assert!(rejected.is::<Rejected>(), "{rejected:?}");
    assert_eq!(counts(&breaker), (0, 1, 1));
}

/// What an axum app answers when the breaker's stack fails: 503 with
/// `Retry-After` for a rejection, 504 for the timeout, 502 for the rest.
async fn answer_error(err: BoxError) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(rejected) = err.downcast_ref::<Rejected>() {
        let wait = rejected.retry_after_secs().unwrap_or(1).to_string();
        (StatusCode::SERVICE_UNAVAILABLE, [(http::header::RETRY_AFTER, wait)], "upstream circuit open").into_response()
    } else if err.is::<tower::timeout::error::Elapsed>() {
        StatusCode::GATEWAY_TIMEOUT.into_response()
    } else {
        StatusCode::BAD_GATEWAY.into_response()
    }
}

#[tokio::test]
async fn an_axum_app_maps_a_rejection_to_503_with_retry_after() {
    let upstream = Arc::new(Upstream::start(500).await);
    let (breaker, mock) = breaker(2, Duration::from_secs(7));
    let forward = {
        let (upstream, client) = (upstream.clone(), client());
        tower::service_fn(move |_: axum::extract::Request| {
            let (request, client) = (upstream.request(), client.clone());
            async move {
                let response = client.request(request).await?;
                Ok::<_, BoxError>(axum::response::IntoResponse::into_response(response.status()))
            }
        })
    };
    // The recommended stack, as a user writes it: the breaker's BoxError goes
    // straight into `HandleErrorLayer`, with no conversion in between.
    let app = axum::Router::new().route_service(
        "/",
        ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(answer_error))
            .layer(CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new()))
            .timeout(Duration::from_secs(5))
            .service(forward),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let app_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = client();
    let get = || Request::get(format!("http://{app_addr}/")).body(Empty::new()).unwrap();
    for _ in 0..2 {
        let response = client.request(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "the upstream's answer, passed on");
    }
    assert_eq!(breaker.state(), State::Open);

    mock.increment(Duration::from_secs(2));
    let response = client.request(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[http::header::RETRY_AFTER], "5", "7 s open, 2 s gone");
    assert_eq!(upstream.requests(), 2, "a rejection never reached the upstream");

    mock.increment(Duration::from_secs(5));
    upstream.answer(200);
    assert_eq!(client.request(get()).await.unwrap().status(), StatusCode::OK, "the probe went through");
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(counts(&breaker), (1, 2, 1));
}
