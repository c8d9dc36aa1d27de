//! Many breakers by key: lookup plus a healthy call in the concurrent maps a
//! registry could sit on, and through `breakerbox::Registry` (on scc's
//! `HashIndex`, the map these numbers chose).
//!
//! ```sh
//! cargo bench -p breakerbox-benches --bench registry
//! BENCH_THREADS=4 cargo bench -p breakerbox-benches --bench registry
//! ```
//!
//! Every map holds the same 10,000 `Arc<Breaker>`s under `String` keys and is
//! looked up by `&str`; each thread walks the keys in its own scrambled
//! order, so lookups spread over the whole map as a proxy's hosts would.
//! `registry_at_capacity` times a new key refused by a full registry of
//! open breakers.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use breakerbox::{Breaker, Config, Registry};
use criterion::{Criterion, criterion_group, criterion_main};

const KEYS: usize = 10_000;

/// Keys every thread hits in the hot-key groups.
const HOT: usize = 4;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("upstream-{i}.internal:8080")).collect()
}

/// The order thread `thread` visits keys in: a stride coprime with `KEYS`.
fn order(thread: usize) -> Vec<usize> {
    let stride = [7_919, 6_007, 4_001, 3_001][thread % 4];
    (0..KEYS).map(|i| (i * stride + thread * 101) % KEYS).collect()
}

fn threads() -> usize {
    std::env::var("BENCH_THREADS").ok().and_then(|n| n.parse().ok()).unwrap_or(2)
}

/// Runs `visit(key_index)` `iters` times on each of `threads` threads at
/// once, walking the keys, and returns the slowest thread's time.
/// Over the first `keys` keys only: with a few, every thread hits the same
/// entries, as when one upstream takes most of the traffic.
fn per_thread_over(keys: usize, threads: usize, iters: u64, visit: impl Fn(usize) + Sync) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let (start, visit) = (&start, &visit);
                scope.spawn(move || {
                    let order = order(thread);
                    start.wait();
                    let began = Instant::now();
                    for i in 0..iters as usize {
                        visit(order[i % KEYS] % keys);
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).max().unwrap_or_default()
    })
}

fn healthy(breaker: &Breaker) -> bool {
    breaker.call(|| Ok::<u64, u64>(black_box(1))).is_ok()
}

fn maps(c: &mut Criterion) {
    let keys = keys();
    let breakers: Vec<Arc<Breaker>> = (0..KEYS).map(|_| Arc::new(Breaker::default())).collect();

    let papaya_map = papaya::HashMap::new();
    // The default (incremental) resizing leaves reads looking through two
    // tables until later writes finish the copy; blocking resizing does not.
    let papaya_blocking = papaya::HashMap::builder().resize_mode(papaya::ResizeMode::Blocking).build();
    let scc_index = scc::HashIndex::new();
    let scc_map = scc::HashMap::new();
    let dash = dashmap::DashMap::new();
    for (key, breaker) in keys.iter().zip(&breakers) {
        papaya_map.pin().insert(key.clone(), Arc::clone(breaker));
        papaya_blocking.pin().insert(key.clone(), Arc::clone(breaker));
        let _ = scc_index.insert_sync(key.clone(), Arc::clone(breaker));
        let _ = scc_map.insert_sync(key.clone(), Arc::clone(breaker));
        dash.insert(key.clone(), Arc::clone(breaker));
    }
    let vec_floor = &breakers;
    let ours: Registry<String> = Registry::new(Config::default()).unwrap();
    for key in &keys {
        drop(ours.get_or_insert(key.as_str()).unwrap());
    }

    for (n, spread) in [(1, KEYS), (threads(), KEYS), (threads(), HOT)] {
        let hot = if spread == HOT { "_hot_keys" } else { "" };
        let mut group = c.benchmark_group(format!("registry_maps_{n}_threads{hot}"));
        group.bench_function("vec_index_no_lookup", |b| {
            b.iter_custom(|iters| per_thread_over(spread, n, iters, |i| assert!(healthy(&vec_floor[i]))))
        });
        group.bench_function("breaker_registry", |b| {
            b.iter_custom(|iters| {
                per_thread_over(spread, n, iters, |i| {
                    assert!(ours.call(keys[i].as_str(), || Ok::<u64, u64>(black_box(1))).unwrap().is_ok());
                })
            })
        });
        group.bench_function("papaya", |b| {
            b.iter_custom(|iters| {
                per_thread_over(spread, n, iters, |i| {
                    let map = papaya_map.pin();
                    assert!(healthy(map.get(keys[i].as_str()).unwrap()));
                })
            })
        });
        group.bench_function("papaya_blocking_resize", |b| {
            b.iter_custom(|iters| {
                per_thread_over(spread, n, iters, |i| {
                    let map = papaya_blocking.pin();
                    assert!(healthy(map.get(keys[i].as_str()).unwrap()));
                })
            })
        });
        group.bench_function("scc_hash_index", |b| {
            b.iter_custom(|iters| {
                per_thread_over(spread, n, iters, |i| {
                    assert!(scc_index.peek_with(keys[i].as_str(), |_, breaker| healthy(breaker)).unwrap());
                })
            })
        });
        group.bench_function("scc_hash_map", |b| {
            b.iter_custom(|iters| {
                per_thread_over(spread, n, iters, |i| {
                    assert!(scc_map.read_sync(keys[i].as_str(), |_, breaker| healthy(breaker)).unwrap());
                })
            })
        });
        group.bench_function("dashmap", |b| {
            b.iter_custom(|iters| {
                per_thread_over(spread, n, iters, |i| assert!(healthy(&dash.get(keys[i].as_str()).unwrap())))
            })
        });
        group.finish();
    }
}

/// A new key refused at capacity while every registered breaker is open (an
/// outage of every upstream): what each refused caller pays, the sweeps
/// that find nothing to evict included.
fn at_capacity(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_at_capacity");
    group.sample_size(10);
    for size in [KEYS, 10 * KEYS] {
        let registry: Registry<String> =
            Registry::builder(Config::default()).capacity(size).build().expect("a valid config");
        for i in 0..size {
            registry.with(format!("upstream-{i}.internal:8080").as_str(), Breaker::trip).expect("below capacity");
        }
        group.bench_function(format!("new_key_refused_{size}_open"), |b| {
            b.iter(|| assert!(registry.call("new-upstream.internal:8080", || Ok::<u64, u64>(black_box(1))).is_err()))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = maps, at_capacity
}
criterion_main!(benches);
