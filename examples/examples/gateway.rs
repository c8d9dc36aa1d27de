//! A gateway calls an upstream HTTP service through tower, with and without
//! the breaker, while the upstream goes through an outage: what does the
//! caller's latency look like?
//!
//! Two identical upstream servers run on 127.0.0.1 (ephemeral ports) and
//! follow the same script: healthy, then an outage (each request hangs and
//! then fails with 503, or the connection is reset at once), then healthy
//! again. Two client stacks (hyper-util's client under `tower::timeout`) call
//! them at the same fixed rate, one through `CircuitBreakerLayer`, one
//! without. Per interval it prints what each caller sent and got, the
//! breaker's state, and the p50/p99 latency the caller saw.
//!
//! What an operator would see comes along: the breaker's transitions are
//! printed as they happen (from its `on_transition` listener), and a
//! `/metrics` endpoint on 127.0.0.1 serves the Prometheus text of the
//! breaker's counts and state (`breakerbox::prometheus::BreakerCollector`); at
//! the end the gateway scrapes it once and prints what it got.
//!
//! With `--backoff 2` each open in a row lasts twice the one before (up to 8
//! times `--open-for`), and the summary lists how long each open lasted.
//!
//! ```sh
//! cargo run --release -p breakerbox-examples --example gateway
//! cargo run --release -p breakerbox-examples --example gateway -- --outage reset --plot outage.svg
//! cargo run --release -p breakerbox-examples --example gateway -- --backoff 2 --outage-for 6 --recovery 4
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use breakerbox::prometheus::BreakerCollector;
use breakerbox::tower::{CircuitBreakerLayer, ServerErrorsAsFailures};
use breakerbox::{Backoff, Breaker, Config, Jitter, Reason, State};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

const USAGE: &str = "\
usage: gateway [options]

  --rate N            requests a second from each caller            (default 200)
  --healthy SECS      healthy time before the outage                (default 1.5)
  --outage-for SECS   how long the upstream is down                 (default 2)
  --recovery SECS     healthy time after the outage                 (default 1.5)
  --outage KIND       slow: a request hangs, then gets 503;
                      reset: the connection is dropped at once      (default slow)
  --hang MS           how long a request hangs in a slow outage     (default 1000)
  --client-timeout MS the callers' timeout, below the breaker       (default 250)
  --interval MS       length of one line of the timeline            (default 250)
  --threshold N       consecutive failures that open the breaker    (default 5)
  --open-for MS       how long the breaker stays open               (default 500)
  --backoff FACTOR    each open in a row lasts FACTOR times the one before,
                      up to 8 x --open-for (default: every open the same)
  --jitter KIND       spread each open: none, full or equal          (default none)
  --plot FILE.svg     also draw both latency timelines and the breaker's state
  --help              this text";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outage {
    Slow,
    Reset,
}

#[derive(Clone, Debug)]
struct Options {
    rate: u32,
    healthy: Duration,
    outage_for: Duration,
    recovery: Duration,
    outage: Outage,
    hang: Duration,
    client_timeout: Duration,
    interval: Duration,
    config: Config,
    backoff_factor: Option<f64>,
    jitter: Jitter,
    plot: Option<String>,
}

impl Options {
    /// The breaker these options describe (without its listener).
    fn builder(&self) -> breakerbox::Builder {
        let backoff = match self.backoff_factor {
            Some(factor) => Backoff::exponential(factor, 8 * self.config.timeout),
            None => Backoff::fixed(),
        };
        Breaker::builder(self.config).name("upstream").backoff(backoff.jitter(self.jitter))
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rate: 200,
            healthy: Duration::from_millis(1_500),
            outage_for: Duration::from_secs(2),
            recovery: Duration::from_millis(1_500),
            outage: Outage::Slow,
            hang: Duration::from_millis(1_000),
            client_timeout: Duration::from_millis(250),
            interval: Duration::from_millis(250),
            config: Config { threshold: 5, timeout: Duration::from_millis(500), half_open_max: 1 },
            backoff_factor: None,
            jitter: Jitter::None,
            plot: None,
        }
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--help" {
            return Err(String::new());
        }
        const FLAGS: [&str; 14] = [
            "--rate",
            "--healthy",
            "--outage-for",
            "--recovery",
            "--outage",
            "--hang",
            "--client-timeout",
            "--interval",
            "--threshold",
            "--open-for",
            "--backoff",
            "--jitter",
            "--plot",
            "--help",
        ];
        if !FLAGS.contains(&flag.as_str()) {
            return Err(format!("unknown option {flag}"));
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| {
            value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or(format!("{what}: {value:?} is not a positive number"))
        };
        let millis = |what: &str| number(what).map(|ms| Duration::from_secs_f64(ms / 1_000.0));
        let seconds = |what: &str| number(what).map(Duration::from_secs_f64);
        match flag.as_str() {
            "--rate" => options.rate = number("--rate")?.min(10_000.0) as u32,
            "--healthy" => options.healthy = seconds("--healthy")?,
            "--outage-for" => options.outage_for = seconds("--outage-for")?,
            "--recovery" => options.recovery = seconds("--recovery")?,
            "--outage" => {
                options.outage = match value.as_str() {
                    "slow" => Outage::Slow,
                    "reset" => Outage::Reset,
                    other => return Err(format!("--outage: {other:?} is neither slow nor reset")),
                }
            }
            "--hang" => options.hang = millis("--hang")?,
            "--client-timeout" => options.client_timeout = millis("--client-timeout")?,
            "--interval" => options.interval = millis("--interval")?,
            "--threshold" => options.config.threshold = number("--threshold")? as u32,
            "--open-for" => options.config.timeout = millis("--open-for")?,
            "--backoff" => options.backoff_factor = Some(number("--backoff")?),
            "--jitter" => {
                options.jitter = match value.as_str() {
                    "none" => Jitter::None,
                    "full" => Jitter::Full,
                    "equal" => Jitter::Equal,
                    other => return Err(format!("--jitter: {other:?} is not none, full or equal")),
                }
            }
            "--plot" => options.plot = Some(value.clone()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.rate == 0 {
        return Err("--rate must be at least 1".into());
    }
    if options.healthy + options.outage_for + options.recovery > Duration::from_secs(60) {
        return Err("the run is capped at 60 seconds".into());
    }
    options.builder().build().map_err(|err| err.to_string())?;
    Ok(options)
}

/// An upstream that follows the script: healthy, the outage, healthy again.
async fn upstream(options: &Options, start: Instant) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    let (outage_from, outage_until) = (options.healthy, options.healthy + options.outage_for);
    let (outage, hang) = (options.outage, options.hang);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let down = (outage_from..outage_until).contains(&start.elapsed());
            if down && outage == Outage::Reset {
                drop(stream);
                continue;
            }
            let handler = hyper::service::service_fn(move |_request: Request<Incoming>| async move {
                let down = (outage_from..outage_until).contains(&start.elapsed());
                let status = match (down, outage) {
                    (false, _) => StatusCode::OK,
                    (true, Outage::Slow) => {
                        tokio::time::sleep(hang).await;
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    // A kept-alive connection is aborted too.
                    (true, Outage::Reset) => return Err(std::io::Error::other("upstream down")),
                };
                Ok(Response::builder().status(status).body(Full::new(Bytes::from_static(b"ok"))).unwrap())
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), handler));
        }
    });
    addr
}

/// What a caller saw in one interval.
#[derive(Clone, Debug, Default)]
struct Interval {
    sent: u32,
    ok: u32,
    failed: u32,
    rejected: u32,
    latencies_us: Vec<u32>,
    state: Option<State>,
}

impl Interval {
    /// The `p` quantile of the latencies, in microseconds (`None` with no calls).
    fn percentile_us(&self, p: f64) -> Option<f64> {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let at = ((sorted.len().checked_sub(1)? as f64) * p).round() as usize;
        Some(f64::from(sorted[at]))
    }
}

type Timeline = Arc<Mutex<Vec<Interval>>>;

#[derive(Clone, Copy)]
enum Seen {
    Ok,
    Failed,
    Rejected,
}

fn record(timeline: &Timeline, index: usize, seen: Seen, latency: Duration) {
    let mut timeline = timeline.lock().unwrap();
    let interval = &mut timeline[index];
    match seen {
        Seen::Ok => interval.ok += 1,
        Seen::Failed => interval.failed += 1,
        Seen::Rejected => interval.rejected += 1,
    }
    interval.latencies_us.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
}

/// Sends `request` through `service` and says how it ended.
async fn send<S, E>(mut service: S, request: Request<Empty<Bytes>>) -> Seen
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = E>,
    E: Into<BoxError>,
{
    let response = match service.ready().await {
        Ok(ready) => ready.call(request).await,
        Err(err) => Err(err),
    };
    match response {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await;
            if status.is_success() && body.is_ok() { Seen::Ok } else { Seen::Failed }
        }
        Err(err) => {
            let err: BoxError = err.into();
            if err.downcast_ref::<breakerbox::Rejected>().is_some() { Seen::Rejected } else { Seen::Failed }
        }
    }
}

/// Starts one call to `addr` through `service`, recorded in `timeline` at
/// `index` (the interval it was sent in).
fn launch<S, E>(calls: &mut tokio::task::JoinSet<()>, service: S, addr: SocketAddr, timeline: &Timeline, index: usize)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<Incoming>, Error = E> + Send + 'static,
    S::Future: Send,
    E: Into<BoxError> + Send + 'static,
{
    timeline.lock().unwrap()[index].sent += 1;
    let timeline = timeline.clone();
    let request = Request::get(format!("http://{addr}/")).body(Empty::new()).unwrap();
    calls.spawn(async move {
        let began = Instant::now();
        let seen = send(service, request).await;
        record(&timeline, index, seen, began.elapsed());
    });
}

/// Serves the registry's text at `/metrics` on a loopback port.
async fn serve_metrics(registry: Registry) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    let registry = Arc::new(registry);
    let metrics = axum::routing::get(move || async move {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encoding into a String");
        ([(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
    });
    let app = axum::Router::new().route("/metrics", metrics);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// One GET of the gateway's own `/metrics`, as a scraper would make it.
async fn scrape(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
) -> String {
    let uri: http::Uri = format!("http://{addr}/metrics").parse().expect("a valid uri");
    let response = client.get(uri).await.expect("the metrics endpoint answers");
    let body = response.into_body().collect().await.expect("a whole body").to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// What the run leaves: both timelines, the breaker, and one scrape of
/// `/metrics` taken after the last call.
struct Ran {
    with: Vec<Interval>,
    without: Vec<Interval>,
    breaker: Arc<Breaker>,
    metrics: String,
    /// Each transition: when, into which state, why.
    transitions: Vec<(Duration, State, Reason)>,
}

async fn run(options: Options) -> Ran {
    let start = Instant::now();
    let total = options.healthy + options.outage_for + options.recovery;
    let intervals = (total.as_secs_f64() / options.interval.as_secs_f64()).ceil() as usize;
    let (guarded_addr, bare_addr) = (upstream(&options, start).await, upstream(&options, start).await);

    let opens = Arc::new(Mutex::new(Vec::new()));
    let opened = Arc::clone(&opens);
    let breaker = Arc::new(
        options
            .builder()
            // Called on the thread whose call made the transition: one line, no more.
            .on_transition(move |t| {
                let at = start.elapsed();
                println!("[{:6.3} s] transition: {t}", at.as_secs_f64());
                opened.lock().unwrap().push((at, t.to(), t.reason()));
            })
            .build()
            .expect("options checked when parsed"),
    );
    let collector = BreakerCollector::new();
    collector.register(&breaker).expect("a named breaker");
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let metrics_addr = serve_metrics(registry).await;
    println!("metrics: http://{metrics_addr}/metrics");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    // The breaker answers with a `BoxError`; a rejection downcasts to `Rejected`.
    let guarded = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()).classify(ServerErrorsAsFailures::new()))
        .timeout(options.client_timeout)
        .service(client.clone());
    let bare = ServiceBuilder::new().timeout(options.client_timeout).service(client.clone());

    let with: Timeline = Arc::new(Mutex::new(vec![Interval::default(); intervals]));
    let without: Timeline = Arc::new(Mutex::new(vec![Interval::default(); intervals]));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(options.rate)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut calls = tokio::task::JoinSet::new();
    let mut last_index = 0;
    loop {
        ticks.tick().await;
        let elapsed = start.elapsed();
        if elapsed >= total {
            break;
        }
        let index = ((elapsed.as_secs_f64() / options.interval.as_secs_f64()) as usize).min(intervals - 1);
        if index != last_index {
            with.lock().unwrap()[last_index].state = Some(breaker.state());
            last_index = index;
        }
        launch(&mut calls, guarded.clone(), guarded_addr, &with, index);
        launch(&mut calls, bare.clone(), bare_addr, &without, index);
    }
    with.lock().unwrap()[last_index].state = Some(breaker.state());
    // Every call ends within the client timeout.
    while calls.join_next().await.is_some() {}
    let metrics = scrape(&client, metrics_addr).await;
    let with = with.lock().unwrap().clone();
    let without = without.lock().unwrap().clone();
    let transitions = opens.lock().unwrap().clone();
    Ran { with, without, breaker, metrics, transitions }
}

/// How long each open lasted: from a change into open to the next change
/// (the first probe, or a reset). With a backoff they grow.
fn open_periods(transitions: &[(Duration, State, Reason)]) -> Vec<Duration> {
    transitions
        .windows(2)
        .filter(|pair| pair[0].1 == State::Open)
        .map(|pair| pair[1].0.saturating_sub(pair[0].0))
        .collect()
}

/// A latency for the table: microseconds below a millisecond, milliseconds above.
fn latency(us: Option<f64>) -> String {
    match us {
        None => "-".to_string(),
        Some(us) if us < 1_000.0 => format!("{us:.0} us"),
        Some(us) => format!("{:.1} ms", us / 1_000.0),
    }
}

fn state_name(state: Option<State>) -> &'static str {
    match state {
        Some(State::Closed) => "closed",
        Some(State::Open) => "OPEN",
        Some(State::HalfOpen) => "half-open",
        None => "-",
    }
}

fn print(options: &Options, with: &[Interval], without: &[Interval]) {
    println!(
        "upstream: healthy {:.1}s, then {} for {:.1}s, then healthy {:.1}s; {} requests/s per caller, caller timeout {:?}",
        options.healthy.as_secs_f64(),
        match options.outage {
            Outage::Slow => format!("hanging {:?} then 503", options.hang),
            Outage::Reset => "resetting connections".to_string(),
        },
        options.outage_for.as_secs_f64(),
        options.recovery.as_secs_f64(),
        options.rate,
        options.client_timeout,
    );
    println!();
    println!("          |                with the breaker                     |              without");
    println!("    time  | sent   ok fail  rej  state           p50       p99   | sent   ok fail       p50       p99");
    for (i, (w, b)) in with.iter().zip(without).enumerate() {
        let at = options.interval.as_secs_f64() * (i + 1) as f64;
        println!(
            "  {at:5.2}s  | {:4} {:4} {:4} {:4}  {:<10} {:>9} {:>9}   | {:4} {:4} {:4} {:>9} {:>9}",
            w.sent,
            w.ok,
            w.failed,
            w.rejected,
            state_name(w.state),
            latency(w.percentile_us(0.5)),
            latency(w.percentile_us(0.99)),
            b.sent,
            b.ok,
            b.failed,
            latency(b.percentile_us(0.5)),
            latency(b.percentile_us(0.99)),
        );
    }
}

fn summary(with: &[Interval], without: &[Interval], breaker: &Breaker) -> bool {
    let total = |timeline: &[Interval], f: fn(&Interval) -> u32| timeline.iter().map(f).sum::<u32>();
    let waited = |timeline: &[Interval]| {
        timeline.iter().flat_map(|i| &i.latencies_us).map(|&us| f64::from(us) / 1e6).sum::<f64>()
    };
    let counts = breaker.counts();
    println!();
    println!("summary:");
    println!(
        "  with the breaker:    {} sent, {} ok, {} failed, {} rejected at once; callers waited {:.1} s in all",
        total(with, |i| i.sent),
        total(with, |i| i.ok),
        total(with, |i| i.failed),
        total(with, |i| i.rejected),
        waited(with),
    );
    println!(
        "  without:             {} sent, {} ok, {} failed; callers waited {:.1} s in all",
        total(without, |i| i.sent),
        total(without, |i| i.ok),
        total(without, |i| i.failed),
        waited(without),
    );
    let matches = counts.rejections == u64::from(total(with, |i| i.rejected))
        && counts.successes + counts.failures == u64::from(total(with, |i| i.ok + i.failed));
    println!(
        "  breaker counts:      {} successes, {} failures, {} rejections, opened {} times (they match the timeline: {matches})",
        counts.successes, counts.failures, counts.rejections, counts.opens
    );
    matches
}

fn plot(
    path: &str,
    options: &Options,
    with: &[Interval],
    without: &[Interval],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let step = options.interval.as_secs_f64();
    let end = step * with.len() as f64;
    let highest = with.iter().chain(without).filter_map(|i| i.percentile_us(0.99)).fold(1_000.0_f64, f64::max) * 1.5;
    let root = SVGBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Caller latency through an upstream outage", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, (1.0..highest).log_scale())?;
    chart.configure_mesh().x_desc("time (s)").y_desc("latency seen by the caller (µs, log)").draw()?;
    // The breaker's state behind the lines: open in red, half-open in amber.
    for (i, interval) in with.iter().enumerate() {
        let color = match interval.state {
            Some(State::Open) => RGBColor(255, 205, 205),
            Some(State::HalfOpen) => RGBColor(255, 235, 190),
            _ => continue,
        };
        let x = step * i as f64;
        chart.draw_series(std::iter::once(Rectangle::new([(x, 1.0), (x + step, highest)], color.filled())))?;
    }
    let outage = (options.healthy.as_secs_f64(), (options.healthy + options.outage_for).as_secs_f64());
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(outage.0, highest / 1.4), (outage.1, highest)],
            BLACK.mix(0.15).filled(),
        )))?
        .label("upstream down (top band); breaker open / half-open (red / amber)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], RGBColor(255, 205, 205).filled()));
    let line = |timeline: &[Interval], p: f64| -> Vec<(f64, f64)> {
        timeline
            .iter()
            .enumerate()
            .filter_map(|(i, interval)| Some((step * (i as f64 + 0.5), interval.percentile_us(p)?.max(1.0))))
            .collect()
    };
    for (timeline, p, color, label) in [
        (without, 0.99, RED.mix(1.0), "without the breaker, p99"),
        (without, 0.5, RED.mix(0.5), "without the breaker, p50"),
        (with, 0.99, BLUE.mix(1.0), "with the breaker, p99"),
        (with, 0.5, BLUE.mix(0.5), "with the breaker, p50"),
    ] {
        let style = ShapeStyle::from(color).stroke_width(2);
        chart
            .draw_series(LineSeries::new(line(timeline, p), style))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("gateway: {message}\n");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let Ran { with, without, breaker, metrics, transitions } = runtime.block_on(run(options.clone()));
    println!();
    print(&options, &with, &without);
    let matches = summary(&with, &without, &breaker);
    let periods: Vec<String> = open_periods(&transitions).iter().map(|d| format!("{} ms", d.as_millis())).collect();
    println!("  open periods:        {} (until the first probe after each)", periods.join(", "));
    println!();
    println!("GET /metrics after the run:");
    print!("{metrics}");
    let counts = breaker.counts();
    let served = [
        format!(r#"circuit_breaker_calls_total{{breaker="upstream",outcome="success"}} {}"#, counts.successes),
        format!(r#"circuit_breaker_calls_total{{breaker="upstream",outcome="failure"}} {}"#, counts.failures),
        format!(r#"circuit_breaker_calls_total{{breaker="upstream",outcome="rejected"}} {}"#, counts.rejections),
        format!(r#"circuit_breaker_opens_total{{breaker="upstream"}} {}"#, counts.opens),
    ];
    let matches = matches && served.iter().all(|line| metrics.lines().any(|served| served == line));
    if let Some(path) = &options.plot {
        match plot(path, &options, &with, &without) {
            Ok(()) => println!("  chart:               {path}"),
            Err(err) => {
                eprintln!("gateway: could not draw {path}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    if matches { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
