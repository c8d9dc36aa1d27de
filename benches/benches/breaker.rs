//! The breaker against its floor and its peers.
//!
//! ```sh
//! cargo bench -p breakerbox-benches --bench breaker                      # the suite, about 1.5 minutes on 2 cores
//! cargo bench -p breakerbox-benches --bench breaker -- --quick           # criterion's quick mode
//! cargo bench -p breakerbox-benches --bench breaker -- closed_success    # one group
//! BENCH_THREADS=4 cargo bench -p breakerbox-benches --bench breaker -- contended
//! ```
//!
//! `--bench breaker` matters: without it cargo also runs the instruction
//! harness, which rejects criterion's options.
//!
//! Groups: `closed_success`, `contended`, `open_reject`, `failure_path`,
//! `async`, `tower` (the layer), `observability`, `core`, `clock`,
//! `recent_clock` (the opt-in coarse clock), `failure_rate` (the rate rule
//! and slow calls, beside the crates.io `breaker` 2.x and tower-resilience's
//! time-based window).
//! `BENCHMARKS.md` at the repository root has the numbers and what they mean.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use breakerbox::{Breaker, Config, FailureRate, RecentClock};
use breakerbox_core::{CoreBreaker, Outcome};
use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;

/// Whether a contender's call ran and succeeded. Every benchmark reduces its
/// result to one `bool` before `black_box`: a 16-byte `Result` through
/// `black_box` costs a store-forwarding stall (about 6 ns here) that would
/// swamp the differences being measured.
trait Ran {
    fn ran_ok(&self) -> bool;
}

impl<T, E> Ran for Result<T, E> {
    fn ran_ok(&self) -> bool {
        self.is_ok()
    }
}

impl<T, E> Ran for Option<Result<T, E>> {
    fn ran_ok(&self) -> bool {
        matches!(self, Some(Ok(_)))
    }
}

#[inline(always)]
fn ok(result: impl Ran) -> bool {
    result.ran_ok()
}

/// The work every benchmark wraps: as cheap as possible, so the breaker's
/// cost is what is measured.
#[inline(always)]
fn downstream_ok() -> Result<u64, u64> {
    Ok(black_box(1))
}

#[inline(always)]
fn downstream_err() -> Result<u64, u64> {
    Err(black_box(2))
}

fn ours() -> Breaker {
    Breaker::default()
}

fn failsafe_peer() -> impl failsafe::CircuitBreaker + Clone + Send + Sync {
    let backoff = failsafe::backoff::constant(Duration::from_secs(30));
    failsafe::Config::new().failure_policy(failsafe::failure_policy::consecutive_failures(5, backoff)).build()
}

fn recloser_peer() -> recloser::Recloser {
    recloser::Recloser::custom().error_rate(0.5).closed_len(5).open_wait(Duration::from_secs(30)).build()
}

/// The "obvious" breaker: one mutex around the state, locked before and after
/// every call.
struct MutexBreaker {
    inner: Mutex<MutexState>,
    threshold: u32,
    timeout: Duration,
}

struct MutexState {
    failures: u32,
    opened_at: Option<Instant>,
}

impl MutexBreaker {
    fn new() -> MutexBreaker {
        MutexBreaker {
            inner: Mutex::new(MutexState { failures: 0, opened_at: None }),
            threshold: 5,
            timeout: Duration::from_secs(30),
        }
    }

    fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Option<Result<T, E>> {
        {
            let state = self.inner.lock().unwrap();
            if state.opened_at.is_some_and(|at| at.elapsed() < self.timeout) {
                return None;
            }
        }
        let result = f();
        let mut state = self.inner.lock().unwrap();
        if result.is_ok() {
            state.failures = 0;
            state.opened_at = None;
        } else {
            state.failures += 1;
            if state.failures >= self.threshold {
                state.opened_at = Some(Instant::now());
            }
        }
        Some(result)
    }
}

fn closed_success(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed_success");
    group.bench_function("bare_closure", |b| b.iter(|| black_box(downstream_ok().is_ok())));
    let floor = AtomicU64::new(0);
    group.bench_function("bare_atomic_load", |b| {
        b.iter(|| {
            let _ = black_box(floor.load(Ordering::Relaxed));
            black_box(downstream_ok().is_ok())
        })
    });
    let breaker = ours();
    group.bench_function("breaker", |b| b.iter(|| black_box(ok(breaker.call(downstream_ok)))));
    let core = CoreBreaker::new(Config::default()).unwrap();
    group.bench_function("breaker_core_ticket", |b| {
        b.iter(|| {
            let ticket = core.acquire().unwrap();
            let result = downstream_ok();
            let _ = black_box(core.record(ticket, Outcome::Success));
            black_box(result.is_ok())
        })
    });
    let peer = failsafe_peer();
    group.bench_function("failsafe", |b| b.iter(|| black_box(ok(peer.call(downstream_ok)))));
    let peer = recloser_peer();
    group.bench_function("recloser", |b| b.iter(|| black_box(ok(peer.call(downstream_ok)))));
    let peer = MutexBreaker::new();
    group.bench_function("mutex_breaker", |b| b.iter(|| black_box(ok(peer.call(downstream_ok)))));
    group.finish();
}

fn threads() -> usize {
    std::env::var("BENCH_THREADS").ok().and_then(|n| n.parse().ok()).unwrap_or(2)
}

/// Runs `call` `iters` times on each of `threads` threads at once and returns
/// the slowest thread's time: per-call time per thread, as criterion divides
/// by `iters`.
fn per_thread(threads: usize, iters: u64, call: impl Fn() + Sync) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        call();
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).max().unwrap_or_default()
    })
}

fn contended(c: &mut Criterion) {
    let n = threads();
    let mut group = c.benchmark_group(format!("contended_{n}_threads"));
    let floor = AtomicU64::new(0);
    group.bench_function("bare_atomic_load", |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(floor.load(Ordering::Relaxed));
                let _ = black_box(downstream_ok());
            })
        })
    });
    let breaker = ours();
    group.bench_function("breaker", |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(ok(breaker.call(downstream_ok)));
            })
        })
    });
    let peer = failsafe_peer();
    group.bench_function("failsafe", |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(ok(peer.call(downstream_ok)));
            })
        })
    });
    let peer = recloser_peer();
    group.bench_function("recloser", |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(ok(peer.call(downstream_ok)));
            })
        })
    });
    let peer = MutexBreaker::new();
    group.bench_function("mutex_breaker", |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(ok(peer.call(downstream_ok)));
            })
        })
    });
    group.finish();
}

fn open_reject(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_reject");
    let breaker = ours();
    breaker.trip();
    group.bench_function("breaker", |b| b.iter(|| black_box(ok(breaker.call(downstream_ok)))));

    let peer = failsafe_peer();
    for _ in 0..5 {
        let _ = peer.call(downstream_err);
    }
    assert!(!peer.is_call_permitted(), "failsafe peer must be open");
    group.bench_function("failsafe", |b| b.iter(|| black_box(ok(peer.call(downstream_ok)))));
    let peer = recloser_peer();
    // Its ring buffer must fill before it computes a failure rate.
    let opened = (0..20).any(|_| matches!(peer.call(downstream_err), Err(recloser::Error::Rejected)));
    assert!(opened, "recloser peer must be open");
    group.bench_function("recloser", |b| b.iter(|| black_box(ok(peer.call(downstream_ok)))));
    let peer = MutexBreaker::new();
    for _ in 0..5 {
        let _ = peer.call(downstream_err);
    }
    group.bench_function("mutex_breaker", |b| b.iter(|| black_box(ok(peer.call(downstream_ok)))));
    group.finish();
}

fn failure_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("failure_path");
    // The largest threshold, and a success every 1000 calls, keep it closed:
    // every failure is a CAS, the success that ends the streak another.
    let breaker = Breaker::new(Config { threshold: Config::MAX_THRESHOLD, ..Config::default() }).unwrap();
    let mut n = 0u32;
    group.bench_function("failure_below_threshold", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            if n.is_multiple_of(1000) {
                black_box(ok(breaker.call(downstream_ok)))
            } else {
                black_box(ok(breaker.call(downstream_err)))
            }
        })
    });
    let (clock, mock) = breakerbox::quanta::Clock::mock();
    let breaker = Breaker::with_clock(Config { threshold: 1, ..Config::default() }, clock).unwrap();
    group.bench_function("trip_probe_close_cycle", |b| {
        b.iter(|| {
            let _ = black_box(ok(breaker.call(downstream_err)));
            mock.increment(Duration::from_secs(30));
            black_box(ok(breaker.call(downstream_ok)))
        })
    });
    group.finish();
}

/// Polls a future that is expected to be ready at once, pinned where it is
/// made (as a task holds its future), and says whether it was ready with
/// an `Ok`.
macro_rules! ready_ok {
    ($future:expr) => {{
        let future = pin!($future);
        matches!(future.poll(&mut Context::from_waker(Waker::noop())), Poll::Ready(Ok(_)))
    }};
}

fn async_calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("async");
    group.bench_function("bare_future", |b| b.iter(|| black_box(ready_ok!(async { downstream_ok() }))));
    let breaker = ours();
    group.bench_function("breaker_call_async", |b| {
        b.iter(|| black_box(ready_ok!(breaker.call_async(async { downstream_ok() }))))
    });
    // The same call around `std::future::Ready` rather than an `async` block.
    group.bench_function("bare_ready", |b| b.iter(|| black_box(ready_ok!(std::future::ready(downstream_ok())))));
    group.bench_function("breaker_call_async_ready", |b| {
        b.iter(|| black_box(ready_ok!(breaker.call_async(std::future::ready(downstream_ok())))))
    });
    group.finish();
}

/// The healthy call of a breaker someone watches (a name, a transition
/// listener, registered with a Prometheus collector that a registry holds)
/// beside the same call unwatched, and beside what peers do instead: a
/// metrics counter incremented on every call.
fn observability(c: &mut Criterion) {
    let mut group = c.benchmark_group("observability");
    // Both in an `Arc`, as a collector needs them: the same allocation and
    // alignment, so the comparison is of what watching adds and nothing else.
    let plain = std::sync::Arc::new(ours());
    group.bench_function("breaker_plain", |b| b.iter(|| black_box(ok(plain.call(downstream_ok)))));
    let transitions = std::sync::Arc::new(AtomicU64::new(0));
    let heard = std::sync::Arc::clone(&transitions);
    let watched = std::sync::Arc::new(
        Breaker::builder(Config::default())
            .name("watched")
            .on_transition(move |_| {
                heard.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap(),
    );
    let collector = breakerbox::prometheus::BreakerCollector::new();
    collector.register(&watched).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(collector));
    group.bench_function("breaker_listener_collector", |b| b.iter(|| black_box(ok(watched.call(downstream_ok)))));
    let per_call: prometheus_client::metrics::counter::Counter = Default::default();
    registry.register("calls", "calls made", per_call.clone());
    group.bench_function("breaker_plus_counter_per_call", |b| {
        b.iter(|| {
            per_call.inc();
            black_box(ok(plain.call(downstream_ok)))
        })
    });
    let n = threads();
    group.bench_function(format!("breaker_listener_collector_{n}_threads"), |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(ok(watched.call(downstream_ok)));
            })
        })
    });
    group.bench_function(format!("breaker_plus_counter_per_call_{n}_threads"), |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                per_call.inc();
                let _ = black_box(ok(plain.call(downstream_ok)));
            })
        })
    });
    group.finish();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains(r#"circuit_breaker_calls_total{breaker="watched",outcome="success"}"#));
    assert_eq!(transitions.load(Ordering::Relaxed), 0, "a healthy breaker makes no transition");
}

fn core(c: &mut Criterion) {
    let mut group = c.benchmark_group("core");
    let core = CoreBreaker::new(Config::default()).unwrap();
    group.bench_function("acquire_record", |b| {
        b.iter(|| {
            let ticket = core.acquire().unwrap();
            black_box(core.record(ticket, Outcome::Success))
        })
    });
    let now = core.now();
    group.bench_function("acquire_record_at", |b| {
        b.iter(|| {
            let ticket = core.acquire_at(black_box(now)).unwrap();
            black_box(core.record_at(ticket, Outcome::Success, now))
        })
    });
    group.bench_function("state", |b| b.iter(|| black_box(core.state())));
    let open = CoreBreaker::new(Config::default()).unwrap();
    open.trip();
    group.bench_function("acquire_open_clock", |b| b.iter(|| black_box(open.acquire().is_ok())));
    let at = open.now();
    group.bench_function("acquire_open_at", |b| b.iter(|| black_box(open.acquire_at(black_box(at)).is_ok())));

    group.finish();
}

/// What one clock read costs here: the floor under every path that needs the
/// time (an open breaker's rejection, a transition).
fn clock(c: &mut Criterion) {
    let mut group = c.benchmark_group("clock");
    let clock = breakerbox::quanta::Clock::new();
    group.bench_function("quanta_now", |b| b.iter(|| black_box(clock.now())));
    group.bench_function("quanta_raw", |b| b.iter(|| black_box(clock.raw())));
    group.bench_function("std_instant_now", |b| b.iter(|| black_box(Instant::now())));
    let core = CoreBreaker::new(Config::default()).unwrap();
    group.bench_function("breaker_core_now", |b| b.iter(|| black_box(core.now())));
    group.finish();
}

/// Rejection on the opt-in coarse clock, reported apart from the default
/// clock's. Last in the run: its upkeep thread, once started, wakes every
/// millisecond until the process exits.
fn recent_clock(c: &mut Criterion) {
    let mut group = c.benchmark_group("recent_clock");
    let clock = RecentClock::shared().expect("quanta's upkeep thread is free in the bench process");
    let breaker = Breaker::builder(Config::default()).recent_clock(clock.clone()).build().unwrap();
    breaker.trip();
    group.bench_function("breaker_call_open", |b| b.iter(|| black_box(ok(breaker.call(downstream_ok)))));
    let open = CoreBreaker::with_recent_clock(Config::default(), clock).unwrap();
    open.trip();
    group.bench_function("core_acquire_open", |b| b.iter(|| black_box(open.acquire().is_ok())));
    group.finish();
}

/// A `Service` called as tower calls it: readiness, `call`, then the
/// future polled to completion (ready at once here). Reduced to one `bool`.
#[inline(always)]
fn call_ready<S: tower::Service<u64, Response = u64>>(service: &mut S, cx: &mut Context<'_>) -> bool {
    let ready = service.poll_ready(cx).is_ready();
    ready && ready_ok!(service.call(black_box(1)))
}

/// The layer's cost over the inner service alone, and against the tower
/// circuit breaker users would otherwise pick (tower-resilience, its
/// consecutive-failures model, the closest to ours).
fn tower_layer(c: &mut Criterion) {
    use breakerbox::tower::CircuitBreakerLayer;
    use std::sync::Arc;
    use tower::{Layer, ServiceBuilder};

    let mut group = c.benchmark_group("tower");
    let inner = tower::service_fn(|request: u64| std::future::ready(Ok::<u64, Refused>(black_box(request))));
    let mut cx = Context::from_waker(Waker::noop());
    let mut bare = inner;
    group.bench_function("bare_service", |b| b.iter(|| black_box(call_ready(&mut bare, &mut cx))));
    let breaker = Arc::new(ours());
    let mut layered = ServiceBuilder::new().layer(CircuitBreakerLayer::new(breaker.clone())).service(inner);
    group.bench_function("breaker_layer", |b| b.iter(|| black_box(call_ready(&mut layered, &mut cx))));
    let forever: &'static Breaker = Box::leak(Box::new(ours()));
    let mut layered_static = ServiceBuilder::new().layer(CircuitBreakerLayer::from_static(forever)).service(inner);
    group.bench_function("breaker_layer_static", |b| b.iter(|| black_box(call_ready(&mut layered_static, &mut cx))));
    let peer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .consecutive_failures(5)
        .wait_duration_in_open(Duration::from_secs(30))
        .build()
        .expect("a valid tower-resilience config");
    let mut peer = peer.layer(inner);
    group.bench_function("tower_resilience_layer", |b| b.iter(|| black_box(call_ready(&mut peer, &mut cx))));

    // Two threads, each with its own clone of the service, one breaker.
    let n = threads();
    let layered = ServiceBuilder::new().layer(CircuitBreakerLayer::new(breaker)).service(inner);
    group.bench_function(format!("breaker_layer_{n}_threads"), |b| {
        b.iter_custom(|iters| per_thread_service(n, iters, &layered))
    });
    let layered_static = ServiceBuilder::new().layer(CircuitBreakerLayer::from_static(forever)).service(inner);
    group.bench_function(format!("breaker_layer_static_{n}_threads"), |b| {
        b.iter_custom(|iters| per_thread_service(n, iters, &layered_static))
    });
    group.finish();
}

/// The bench services' error: the layer's needs `Into<BoxError>`, as tower's
/// own middleware's do.
#[derive(Clone, Copy, Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for Refused {}

/// [`per_thread`] for a service: each thread calls its own clone.
fn per_thread_service<S>(threads: usize, iters: u64, service: &S) -> Duration
where
    S: tower::Service<u64, Response = u64> + Clone + Send,
{
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let mut service = service.clone();
                let start = &start;
                scope.spawn(move || {
                    let mut cx = Context::from_waker(Waker::noop());
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        black_box(call_ready(&mut service, &mut cx));
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).max().unwrap_or_default()
    })
}

/// A healthy call with the failure-rate rule on (50% of at least 20 calls
/// over 10 s), on each clock and with slow calls timed too; on two threads;
/// and the peers with a rate rule, in the same run: the crates.io `breaker`
/// 2.x (its ring of the last 100 outcomes; an async call polled once) and
/// tower-resilience (its time-based window of 10 s, through the layer).
fn failure_rate(c: &mut Criterion) {
    let mut group = c.benchmark_group("failure_rate");
    let rate = FailureRate::new(0.5, 20, Duration::from_secs(10));
    let plain = ours();
    group.bench_function("breaker_plain", |b| b.iter(|| black_box(ok(plain.call(downstream_ok)))));
    let rated = Breaker::builder(Config::default()).failure_rate(rate).build().expect("a valid config");
    group.bench_function("breaker_rate", |b| b.iter(|| black_box(ok(rated.call(downstream_ok)))));
    let recent = RecentClock::shared().expect("the upkeep thread starts");
    let rated_recent = Breaker::builder(Config::default())
        .failure_rate(rate)
        .recent_clock(recent.clone())
        .build()
        .expect("a valid config");
    group.bench_function("breaker_rate_recent_clock", |b| b.iter(|| black_box(ok(rated_recent.call(downstream_ok)))));
    let slow = Breaker::builder(Config::default())
        .failure_rate(rate)
        .slow_call(Duration::from_secs(1))
        .build()
        .expect("a valid config");
    group.bench_function("breaker_rate_slow_call", |b| b.iter(|| black_box(ok(slow.call(downstream_ok)))));
    let slow_recent = Breaker::builder(Config::default())
        .failure_rate(rate)
        .slow_call(Duration::from_secs(1))
        .recent_clock(recent)
        .build()
        .expect("a valid config");
    group.bench_function("breaker_rate_slow_call_recent_clock", |b| {
        b.iter(|| black_box(ok(slow_recent.call(downstream_ok))))
    });
    let n = threads();
    group.bench_function(format!("breaker_rate_{n}_threads"), |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(ok(rated.call(downstream_ok)));
            })
        })
    });
    group.bench_function(format!("breaker_rate_recent_clock_{n}_threads"), |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(ok(rated_recent.call(downstream_ok)));
            })
        })
    });

    let peer = breaker2::CircuitBreaker::new(
        breaker2::CircuitBreakerConfig::builder()
            .failure_rate_threshold(0.5)
            .sliding_window_size(100)
            .minimum_calls(20)
            .build(),
    );
    group.bench_function("breaker2_sliding_window", |b| {
        b.iter(|| black_box(ready_ok!(peer.call(|| async { downstream_ok() }))))
    });
    group.bench_function(format!("breaker2_sliding_window_{n}_threads"), |b| {
        b.iter_custom(|iters| {
            per_thread(n, iters, || {
                let _ = black_box(ready_ok!(peer.call(|| async { downstream_ok() })));
            })
        })
    });
    let inner = tower::service_fn(|request: u64| std::future::ready(Ok::<u64, Refused>(black_box(request))));
    let tower_peer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_type(tower_resilience_circuitbreaker::SlidingWindowType::TimeBased)
        .sliding_window_duration(Duration::from_secs(10))
        .minimum_number_of_calls(20)
        .build()
        .expect("a valid tower-resilience config");
    let mut tower_peer = tower::Layer::layer(&tower_peer, inner);
    let mut cx = Context::from_waker(Waker::noop());
    group
        .bench_function("tower_resilience_time_window", |b| b.iter(|| black_box(call_ready(&mut tower_peer, &mut cx))));
    group.bench_function(format!("tower_resilience_time_window_{n}_threads"), |b| {
        b.iter_custom(|iters| per_thread_service(n, iters, &tower_peer))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = closed_success, contended, open_reject, failure_path, async_calls, tower_layer, observability, core, clock,
        recent_clock, failure_rate
}
criterion_main!(benches);
