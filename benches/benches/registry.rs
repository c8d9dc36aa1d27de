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
//! `registry_hashers` times the registry's lookup plus a healthy call with
//! each hasher it could default to, on `String` and `u64` keys.
//! `registry_at_capacity` times a new key refused by a full registry of
//! open breakers; `registry_rotation` a working set larger than the
//! capacity, where nearly every call registers a key and evicts another.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use std::hash::BuildHasher;

use breakerbox::registry::KeyHasher;
use breakerbox::{Breaker, Config, Registry};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

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

/// The registry's lookup plus a healthy call with each hasher, in a
/// registry of 10,000 keys: one hot `String` key called by every thread
/// (the cost of the lookup itself), and every key in scrambled order
/// (mostly cache misses), `String` keys looked up by `&str` and `u64` keys.
fn hashers(c: &mut Criterion) {
    /// Each registry lives only for its own rows, so that the breakers of
    /// the others do not crowd the threads' counter slots.
    fn rows<S: BuildHasher + Sync>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, make: impl Fn() -> S) {
        let names = keys();
        let by_name: Registry<String, S> =
            Registry::builder(Config::default()).hasher(make()).build().expect("a valid config");
        for name in &names {
            drop(by_name.get_or_insert(name.as_str()).expect("no capacity"));
        }
        let hot = names[4_321].as_str();
        for threads in [1, threads()] {
            group.bench_function(format!("{name}_string_hot_key_{threads}_threads"), |b| {
                b.iter_custom(|iters| {
                    per_thread_over(1, threads, iters, |_| {
                        assert!(matches!(by_name.call(hot, || Ok::<u64, u64>(black_box(1))), Ok(Ok(1))));
                    })
                })
            });
            group.bench_function(format!("{name}_string_keys_{threads}_threads"), |b| {
                b.iter_custom(|iters| {
                    per_thread_over(KEYS, threads, iters, |i| {
                        assert!(matches!(by_name.call(names[i].as_str(), || Ok::<u64, u64>(black_box(1))), Ok(Ok(1))));
                    })
                })
            });
        }
        drop(by_name);
        let by_id: Registry<u64, S> =
            Registry::builder(Config::default()).hasher(make()).build().expect("a valid config");
        for id in 0..KEYS as u64 {
            drop(by_id.get_or_insert(&id).expect("no capacity"));
        }
        for threads in [1, threads()] {
            group.bench_function(format!("{name}_u64_keys_{threads}_threads"), |b| {
                b.iter_custom(|iters| {
                    per_thread_over(KEYS, threads, iters, |i| {
                        assert!(matches!(by_id.call(&(i as u64), || Ok::<u64, u64>(black_box(1))), Ok(Ok(1))));
                    })
                })
            });
        }
    }
    let mut group = c.benchmark_group("registry_hashers");
    rows(&mut group, "key_hasher_foldhash", KeyHasher::new);
    rows(&mut group, "siphash_std", std::hash::RandomState::new);
    rows(&mut group, "ahash", ahash::RandomState::new);
    rows(&mut group, "rustc_hash_fx", || rustc_hash::FxBuildHasher);
    group.finish();
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

/// Calls over a working set of `keys` keys through a registry of capacity
/// `capacity` (none: unbounded), on `threads` threads: with more keys than
/// room, nearly every call evicts a breaker at rest and makes one.
fn rotation(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_rotation");
    group.sample_size(10);
    let names = keys();
    let rows: [(Option<usize>, usize, usize); 6] = [
        (None, 100, 2),
        (Some(50), 51, 2),
        (Some(50), 100, 2),
        (Some(3_200), 6_400, 2),
        (Some(50), 100, 32),
        (Some(3_200), 6_400, 32),
    ];
    for (capacity, keys, threads) in rows {
        let builder = Registry::builder(Config::default());
        let builder = match capacity {
            Some(capacity) => builder.capacity(capacity),
            None => builder,
        };
        let registry: Registry<String> = builder.build().expect("a valid config");
        let room = capacity.map_or_else(|| "unbounded".to_owned(), |c| format!("capacity_{c}"));
        group.bench_function(format!("{room}_{keys}_keys_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                per_thread_over(keys, threads, iters, |key| {
                    let called = registry.call(names[key].as_str(), || Ok::<u64, u64>(black_box(1)));
                    assert!(matches!(called, Ok(Ok(1))));
                })
            })
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
    targets = maps, hashers, at_capacity, rotation
}
criterion_main!(benches);
