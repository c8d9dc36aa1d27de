//! A first service: an axum gateway on 127.0.0.1 with a breaker in front of
//! each upstream, taken through an outage it scripts and checks itself.
//!
//! - `GET /users` goes through a tower stack: `CircuitBreakerLayer` over
//!   `tower::timeout` over hyper-util's client. The timeout is *below* the
//!   breaker, so an upstream that hangs counts as a failure.
//! - `GET /hosts/{host}/{*path}` goes through a `breakerbox::Registry<String>`:
//!   one breaker per host, made on first use, named after it, and opening on
//!   a failure rate too (a host failing two requests in three never fails five
//!   in a row, yet is down for most of its callers).
//! - `GET /metrics` serves every breaker's Prometheus series.
//!
//! An open breaker's requests get a 503 with `Retry-After` at once, without
//! calling the upstream, and each change of state is a `tracing` event. The
//! example calls its own gateway while it takes two upstreams from healthy to
//! failing (`users` hangs, `inventory` answers 503 to two requests in three)
//! and back, and exits 0 if each breaker opened, rejected, probed, closed and
//! shows in `/metrics`, or 1 with what it did not see.
//!
//! ```sh
//! cargo run --release -p breakerbox-examples --example first_service
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use breakerbox::prometheus::BreakerCollector;
use breakerbox::tower::{CircuitBreakerLayer, CircuitBreakerService, ServerErrorsAsFailures};
use breakerbox::{Breaker, Config, FailureRate, Reason, Registry, Rejected, Transition};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower::timeout::{Timeout, error::Elapsed};
use tower::{BoxError, ServiceBuilder, ServiceExt};

/// The gateway's deadline for an upstream's answer.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long an open breaker rejects before it lets a probe through.
const OPEN_FOR: Duration = Duration::from_millis(300);

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

#[derive(Clone)]
struct Gateway {
    users: CircuitBreakerService<Timeout<HttpClient>, ServerErrorsAsFailures>,
    users_addr: SocketAddr,
    hosts: Arc<Registry<String>>,
    /// The hosts `/hosts/{host}` may reach: an unknown name gets no breaker,
    /// so callers cannot grow the registry with made-up names.
    upstreams: Arc<HashMap<String, SocketAddr>>,
    client: Timeout<HttpClient>,
    metrics: Arc<prometheus_client::registry::Registry>,
}

async fn get_users(State(gateway): State<Gateway>) -> Response {
    let request = Request::get(format!("http://{}/users", gateway.users_addr)).body(Empty::new());
    respond("users", gateway.users.oneshot(request.expect("a loopback URI")).await)
}

async fn get_host(State(gateway): State<Gateway>, Path((host, path)): Path<(String, String)>) -> Response {
    let to = |addr| Request::get(format!("http://{addr}/{path}")).body(Empty::new()).ok();
    let Some(request) = gateway.upstreams.get(&host).and_then(to) else {
        return (StatusCode::NOT_FOUND, format!("no upstream {host} or no such path\n")).into_response();
    };
    let call = gateway.client.oneshot(request);
    match gateway.hosts.call_async(host.as_str(), call) {
        // A plain call's error is the typed `breakerbox::Error`; boxed, it
        // answers as the tower service's does.
        Ok(call) => {
            respond(&host, call.classify(ServerErrorsAsFailures::new()).await.map_err(breakerbox::Error::into_boxed))
        }
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, format!("{err}\n")).into_response(),
    }
}

/// The upstream's response, or the gateway's word on why there is none.
fn respond(upstream: &str, answer: Result<http::Response<Incoming>, BoxError>) -> Response {
    let err = match answer {
        Ok(response) => return response.map(Body::new),
        Err(err) => err,
    };
    if let Some(rejected) = err.downcast_ref::<Rejected>() {
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, format!("{upstream}: circuit open\n")).into_response();
        // None for a breaker held open: no time to tell the client.
        if let Some(secs) = rejected.retry_after_secs() {
            response.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        response
    } else if err.is::<Elapsed>() {
        StatusCode::GATEWAY_TIMEOUT.into_response()
    } else {
        (StatusCode::BAD_GATEWAY, format!("{upstream}: {err}\n")).into_response()
    }
}

async fn get_metrics(State(gateway): State<Gateway>) -> Response {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &gateway.metrics).expect("writing to a String");
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// An upstream on 127.0.0.1 whose health the script sets; it counts the
/// requests that reach it.
struct Upstream {
    addr: SocketAddr,
    failing: Arc<AtomicBool>,
    hits: Arc<AtomicU64>,
}

/// While failing, each request hangs well past the gateway's timeout if
/// `hangs`; otherwise two requests in three get a 503.
async fn upstream(hangs: bool) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    let upstream = Upstream { addr, failing: Arc::default(), hits: Arc::default() };
    let (failing, hits) = (upstream.failing.clone(), upstream.hits.clone());
    let app = axum::Router::new().fallback(move || {
        let (hit, failing) = (hits.fetch_add(1, Ordering::SeqCst) + 1, failing.load(Ordering::SeqCst));
        async move {
            if failing && hangs {
                tokio::time::sleep(10 * TIMEOUT).await;
            }
            if failing && hit % 3 != 0 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    upstream
}

/// Every breaker's transitions, as the listener heard them: what the checks read.
type Log = Arc<Mutex<Vec<Transition>>>;

/// The transitions of the breaker named `name`, in order.
fn transitions(log: &Log, name: &str) -> Vec<Transition> {
    let log = log.lock().unwrap_or_else(PoisonError::into_inner);
    let mut of: Vec<Transition> = log.iter().filter(|t| t.name() == name).cloned().collect();
    of.sort_by_key(Transition::sequence);
    of
}

fn closed_again(log: &Log, name: &str) -> bool {
    transitions(log, name).last().is_some_and(|t| t.to() == breakerbox::State::Closed)
}

/// What a script saw of its upstream through the gateway.
#[derive(Default)]
struct Seen {
    sent: u64,
    ok: u64,
    /// 503 with a `Retry-After`: the gateway's own answer while open.
    rejected: u64,
    /// Successes since the last answer that was not one.
    ok_in_a_row: u64,
}

/// Calls the gateway over loopback, one request at a time, as a client would.
struct Driver {
    client: HttpClient,
    gateway: SocketAddr,
    log: Log,
    deadline: Instant,
}

impl Driver {
    async fn get(&self, path: &str) -> Option<(StatusCode, http::HeaderMap, Bytes)> {
        let request = Request::get(format!("http://{}{path}", self.gateway)).body(Empty::new()).ok()?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.client.request(request)).await.ok()?.ok()?;
        let (parts, body) = response.into_parts();
        Some((parts.status, parts.headers, body.collect().await.ok()?.to_bytes()))
    }

    /// GETs `path` until `done` says so, or the run's deadline passes.
    async fn until(&self, path: &str, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
        while !done(seen) && Instant::now() < self.deadline {
            let answer = self.get(path).await;
            let ok = answer.as_ref().is_some_and(|(status, ..)| status.is_success());
            let rejected = answer.is_some_and(|(status, headers, _)| {
                status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key(header::RETRY_AFTER)
            });
            seen.sent += 1;
            seen.ok += u64::from(ok);
            seen.rejected += u64::from(rejected);
            seen.ok_in_a_row = if ok { seen.ok_in_a_row + 1 } else { 0 };
            // Paced, so an open breaker's timeout passes after a handful of
            // rejections rather than thousands.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Healthy; failing until the breaker has opened and rejected a few
    /// requests; healthy until it has closed and answered a few.
    async fn script(&self, upstream: &Upstream, name: &str, path: &str) -> Seen {
        let mut seen = Seen::default();
        self.until(path, &mut seen, |seen| seen.ok >= 5).await;
        tracing::info!(upstream = name, "the upstream starts failing");
        upstream.failing.store(true, Ordering::SeqCst);
        self.until(path, &mut seen, |seen| seen.rejected >= 3).await;
        tracing::info!(upstream = name, "the upstream is healthy again");
        upstream.failing.store(false, Ordering::SeqCst);
        self.until(path, &mut seen, |seen| seen.ok_in_a_row >= 3 && closed_again(&self.log, name)).await;
        seen
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().init();
    let (users_upstream, inventory) = (upstream(true).await, upstream(false).await);

    // The `tracing` feature logs each transition; this listener keeps them for the checks.
    let log = Log::default();
    let sink = log.clone();
    let listener: Arc<dyn Fn(&Transition) + Send + Sync> =
        Arc::new(move |t| sink.lock().unwrap_or_else(PoisonError::into_inner).push(t.clone()));
    let users = Breaker::builder(Config { threshold: 3, timeout: OPEN_FOR, half_open_max: 1 })
        .name("users")
        .on_transition_shared(listener.clone());
    let users = Arc::new(users.build().expect("a valid config"));
    let host_config = Config { threshold: 5, timeout: OPEN_FOR, half_open_max: 1 };
    let hosts = Registry::builder(host_config)
        .per_key(move |_host: &String| {
            Breaker::builder(host_config)
                // Half of at least 10 calls; over a minute, longer than this run, so calls decide, not time.
                .failure_rate(FailureRate::new(0.5, 10, Duration::from_secs(60)))
                .on_transition_shared(listener.clone())
        })
        .name_keys()
        .build();
    let hosts = Arc::new(hosts.expect("a valid config"));

    let collector = BreakerCollector::new();
    collector.register(&users).expect("a named breaker, registered once");
    collector.register_registry(&hosts);
    let mut metrics = prometheus_client::registry::Registry::default();
    metrics.register_collector(Box::new(collector));

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let app = axum::Router::new()
        .route("/users", get(get_users))
        .route("/hosts/{host}/{*path}", get(get_host))
        .route("/metrics", get(get_metrics))
        .with_state(Gateway {
            users: ServiceBuilder::new()
                .layer(CircuitBreakerLayer::new(users).classify(ServerErrorsAsFailures::new()))
                .timeout(TIMEOUT)
                .service(client.clone()),
            users_addr: users_upstream.addr,
            hosts,
            upstreams: Arc::new(HashMap::from([("inventory".to_string(), inventory.addr)])),
            client: ServiceBuilder::new().timeout(TIMEOUT).service(client.clone()),
            metrics: Arc::new(metrics),
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let gateway = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    tracing::info!("gateway on http://{gateway}");

    let driver = Driver { client, gateway, log, deadline: Instant::now() + Duration::from_secs(10) };
    let (users_seen, inventory_seen) = tokio::join!(
        driver.script(&users_upstream, "users", "/users"),
        driver.script(&inventory, "inventory", "/hosts/inventory/items"),
    );
    let scraped = driver.get("/metrics").await.map(|(_, _, body)| String::from_utf8_lossy(&body).into_owned());

    println!("\nreport:");
    let mut missing = Vec::new();
    for (name, seen, upstream, rule) in [
        ("users", users_seen, &users_upstream, Reason::ThresholdReached),
        ("inventory", inventory_seen, &inventory, Reason::FailureRateReached),
    ] {
        let (sent, ok, rejected) = (seen.sent, seen.ok, seen.rejected);
        let failed = sent - ok - rejected;
        let hits = upstream.hits.load(Ordering::SeqCst);
        println!("  {name}: {sent} sent, {ok} ok, {failed} failed, {rejected} rejected; the upstream saw {hits}");
        let transitions = transitions(&driver.log, name);
        let opened_by = transitions.iter().find(|t| t.to() == breakerbox::State::Open).map(Transition::reason);
        let series = format!(r#"circuit_breaker_calls_total{{breaker="{name}",outcome="rejected"}} {rejected}"#);
        let checks = [
            (opened_by == Some(rule), "opened on its rule"),
            (rejected >= 3, "rejected requests at once with 503 and Retry-After"),
            (hits + rejected <= sent, "kept rejected requests from the upstream"),
            (transitions.iter().any(|t| t.to() == breakerbox::State::HalfOpen), "let a probe through half-open"),
            (closed_again(&driver.log, name) && seen.ok_in_a_row >= 3, "closed again and answered"),
            (scraped.as_ref().is_some_and(|text| text.lines().any(|l| l == series)), "counted rejections in /metrics"),
        ];
        missing.extend(checks.iter().filter(|(ok, _)| !ok).map(|(_, what)| format!("{name}: {what}")));
    }
    if missing.is_empty() {
        println!("all seen: each breaker opened, rejected at once, probed, closed, and /metrics shows it");
        ExitCode::SUCCESS
    } else {
        println!("FAILED, not seen:\n  {}", missing.join("\n  "));
        ExitCode::FAILURE
    }
}
