//! A soak of the registry: 4 threads for a bounded time (60 s unless told)
//! through one `Registry<String>` of capacity 10,000 over a stream of
//! 1,000,000 distinct keys, on the real clock.
//!
//! ```sh
//! cargo run --release -p breakerbox --features registry --example registry_soak -- --secs 10
//! ```
//!
//! What it runs. Each thread makes two calls in three to a *hot set* of 64
//! keys (`hot-{k}.svc.cluster.local`; every thread calls every one), and one
//! in three to its *window*: 2,000 keys (`upstream-{n}.svc.cluster.local`,
//! n in 0..1,000,000) that slides forward one key every 16 of the thread's
//! window calls, through its own quarter of the key space and round again.
//! Window keys always succeed; new ones keep arriving, so the ones left
//! behind must be evicted to make room. The hot set's downstream fails on a
//! schedule counted in calls, not time: the threads run in epochs of 100,000
//! calls each, lined up by a barrier, and hot keys 0..32 are down one epoch
//! in four (8 of them at a time: their breakers trip, probe and fail, then
//! recover and close), keys 48..64 fail one call in ten (a failure streak
//! that never trips, so the breaker is not at rest), and keys 32..48 never
//! fail. The breakers open after 5 failures in a row and probe after 50 ms,
//! so the outage keys go round open, half-open and closed dozens of times in
//! 10 s.
//!
//! What it checks; each failure is printed, and the run exits with 1:
//!
//! 1. Memory: sampled every 0.5 s, the resident set (`VmRSS`, Linux) and the
//!    heap in use (bytes allocated and not freed, by a counting allocator)
//!    never grow more than 10% above their figures at the end of the
//!    warm-up (the highest of its last four samples). The warm-up is the
//!    first 20% of the run, and longer if need be until the registry has
//!    made 10 times its capacity in breakers (the allocator's arenas keep
//!    growing for a while after the registry is full), but at most half the
//!    run.
//! 2. Counts: each thread tallies what every hot call returned (`Ok(Ok)` a
//!    success, `Err(Error::Inner)` a failure, `Err(Error::Open)` a
//!    rejection); at the end each hot key's breaker counts exactly the sum.
//!    A hot breaker evicted and made afresh would count less.
//! 3. No hot breaker is ever replaced, open or not: every hot call runs
//!    through the breaker the key got first (a pointer compare inside
//!    `with`), and `get` returns it at every sample and at the end.
//!    Refusals (`RegistryError::Full`) are allowed, and reported.
//! 4. `len()` never exceeds the capacity by more than one per thread (a call
//!    racing an eviction may put its breaker back past the capacity).
//! 5. Window calls, whose downstream never fails, are never rejected.
//!
//! Then it prints the calls per second, the latency of hot and window calls
//! (every 64th call of each thread is timed), the breakers made and the
//! evictions that implies, the refusals, the memory figures, and
//! `soak: ok` when every check passed.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Weak};
use std::time::{Duration, Instant};

use breakerbox::{Breaker, Config, Error, Registry, RegistryError, State};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

// Counts what is asked of the allocator: the heap in use, next to the
// resident set, tells the registry's memory from the allocator's.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Threads calling the registry.
const THREADS: usize = 4;
/// The registry's capacity.
const CAPACITY: usize = 10_000;
/// Distinct window keys: `upstream-{n}` for n in 0..KEYS.
const KEYS: u64 = 1_000_000;
/// Keys in the hot set.
const HOT: usize = 64;
/// Keys in each thread's window (KEYS is a multiple of it).
const WINDOW: u64 = 2_000;
/// Window calls per step of the window.
const STEP: u64 = 16;
/// Calls per thread in an epoch of the hot set's schedule.
const EPOCH_CALLS: u64 = 100_000;
/// Every how many calls a thread times one, to start with.
const TIME_EVERY: u64 = 64;
/// Latency samples a thread keeps (4 bytes each); past it, every other one
/// is dropped and the thread times half as often.
const LATENCY_SAMPLES: usize = 1 << 18;
/// The least share of the run that is warm-up.
const WARM_UP: f64 = 0.2;
/// The warm-up lasts at least until the registry made this many breakers...
const WARM_UP_BREAKERS: u64 = 10 * CAPACITY as u64;
/// ...unless that takes more than this share of the run.
const WARM_UP_MOST: f64 = 0.5;
/// Samples at the end of the warm-up whose highest is the warm-up figure.
const BASELINE: usize = 4;
/// How far above its warm-up figure memory may grow.
const MEMORY_SLACK: f64 = 0.10;
/// How often the main thread samples memory, `len` and the hot breakers.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Failures of one check printed before the rest are only counted.
const SHOW: usize = 5;

/// The hot key `k`'s downstream: whether the `nth` call a thread makes to it
/// fails in `epoch`.
fn hot_fails(k: usize, epoch: u64, nth: u64) -> bool {
    match k {
        0..32 => k as u64 % 4 == epoch % 4,
        32..48 => false,
        _ => nth.is_multiple_of(10),
    }
}

fn main() {
    let secs = parse_secs();
    let config = Config { threshold: 5, timeout: Duration::from_millis(50), half_open_max: 1 };
    let registry: Registry<String> = Registry::builder(config).capacity(CAPACITY).build().expect("a valid config");
    let hot_keys: Vec<String> = (0..HOT).map(|k| format!("hot-{k}.svc.cluster.local")).collect();

    // Each hot key's first breaker, after a first call (a success, tallied
    // here). A `Weak`, not an `Arc`: a breaker held outside the registry is
    // never evicted, which would make check 3 pass for nothing; the `Weak`
    // keeps the allocation, so no later breaker can take its address.
    let originals: Vec<Weak<Breaker>> = hot_keys
        .iter()
        .map(|key| {
            registry.call(key.as_str(), || Ok::<_, &str>(())).expect("room for the hot set").expect("a success");
            Arc::downgrade(&registry.get(key.as_str()).expect("just registered"))
        })
        .collect();

    println!(
        "registry soak: {THREADS} threads for {secs} s, capacity {CAPACITY}, {KEYS} keys \
         ({WINDOW}-key window a thread, {HOT} hot keys)"
    );
    let run = Duration::from_secs(secs);
    let made = AtomicU64::new(HOT as u64);
    let (barrier, go) = (Barrier::new(THREADS), AtomicBool::new(true));
    let start = Instant::now();
    let deadline = start + run;
    let mut samples = Samples::default();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let worker = Worker {
                    thread,
                    registry: &registry,
                    hot_keys: &hot_keys,
                    originals: &originals,
                    made: &made,
                    barrier: &barrier,
                    go: &go,
                    deadline,
                };
                scope.spawn(move || worker.run())
            })
            .collect();
        let mut next = start + SAMPLE_EVERY;
        while next <= deadline {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let into = next.duration_since(start).as_secs_f64() / run.as_secs_f64();
            let warm = into >= WARM_UP && (made.load(Ordering::Relaxed) >= WARM_UP_BREAKERS || into >= WARM_UP_MOST);
            samples.take(&registry, &hot_keys, &originals, start, warm);
            next += SAMPLE_EVERY;
        }
        workers.into_iter().map(|worker| worker.join().expect("a worker panicked")).collect()
    });
    let elapsed = start.elapsed();

    let mut failed = Failures::default();
    report_calls(&tallies, elapsed);
    report_breakers(&registry, &tallies);
    check_hot_set(&registry, &hot_keys, &originals, &tallies, &samples, start, &mut failed);
    check_len(&registry, &tallies, &samples, &mut failed);
    let window_rejected: u64 = tallies.iter().map(|tally| tally.window_not_ok).sum();
    if window_rejected > 0 {
        failed.push(5, format!("{window_rejected} window calls (whose downstream never fails) did not succeed"));
    }
    samples.check_memory(&mut failed);
    failed.finish();
}

/// `--secs N` from the command line, or 60.
fn parse_secs() -> u64 {
    let mut secs = 60;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|value| value.parse().ok())) {
            ("--secs", Some(n)) if n > 0 => secs = n,
            _ => {
                eprintln!("usage: registry_soak [--secs N]   (N > 0; 60 unless told)");
                std::process::exit(2);
            }
        }
    }
    secs
}

/// Prints the calls per second and the latency of the timed calls.
fn report_calls(tallies: &[Tally], elapsed: Duration) {
    let calls: u64 = tallies.iter().map(|tally| tally.calls).sum();
    let per_sec = calls as f64 / elapsed.as_secs_f64();
    println!(
        "calls: {} in {:.2} s: {:.2} M/s, {:.2} M/s a thread",
        thousands(calls),
        elapsed.as_secs_f64(),
        per_sec / 1e6,
        per_sec / 1e6 / THREADS as f64
    );
    let (mut hot, mut window): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for &sample in tallies.iter().flat_map(|tally| tally.latency.samples()) {
        match Latencies::split(sample) {
            (ns, false) => hot.push(ns),
            (ns, true) => window.push(ns),
        }
    }
    let mut all: Vec<u32> = hot.iter().chain(&window).copied().collect();
    for (name, sorted) in [("all", &mut all), ("hot", &mut hot), ("window", &mut window)] {
        sorted.sort_unstable();
        println!(
            "latency, {name} calls ({} timed): p50 {}, p99 {}, p99.9 {}, max {}",
            thousands(sorted.len() as u64),
            nanos(percentile(sorted, 0.50)),
            nanos(percentile(sorted, 0.99)),
            nanos(percentile(sorted, 0.999)),
            nanos(sorted.last().copied().unwrap_or(0)),
        );
    }
}

/// Prints the breakers made, the evictions they imply, and the refusals.
fn report_breakers(registry: &Registry<String>, tallies: &[Tally]) {
    let made: u64 = tallies.iter().map(|tally| tally.made).sum();
    let remade: u64 = tallies.iter().map(|tally| tally.remade).sum();
    let registered = HOT as u64 + made + remade;
    let len = registry.len();
    println!(
        "breakers: {} made ({} window keys, {} of them made again while still in their window; {HOT} hot keys); \
         len {len} at the end: {} evicted",
        thousands(registered),
        thousands(made),
        thousands(remade),
        thousands(registered.saturating_sub(len as u64)),
    );
    let hot_full: u64 = tallies.iter().map(|tally| tally.hot_full).sum();
    let window_full: u64 = tallies.iter().map(|tally| tally.window_full).sum();
    println!("refusals (RegistryError::Full): {window_full} window calls, {hot_full} hot calls");
}

/// Checks 2 and 3: each hot key's counts are the sum of what its callers
/// saw, and it kept its first breaker throughout.
fn check_hot_set(
    registry: &Registry<String>,
    hot_keys: &[String],
    originals: &[Weak<Breaker>],
    tallies: &[Tally],
    samples: &Samples,
    start: Instant,
    failed: &mut Failures,
) {
    let firsts: Vec<(usize, Instant)> =
        (0..HOT).filter_map(|k| Some((k, tallies.iter().filter_map(|tally| tally.first_replaced[k]).min()?))).collect();
    if let (Some(earliest), Some(latest)) = (firsts.iter().map(|f| f.1).min(), firsts.iter().map(|f| f.1).max()) {
        let not_closed: u64 = tallies.iter().flat_map(|tally| tally.replaced_not_closed).sum();
        failed.push(
            3,
            format!(
                "{} of {HOT} hot keys got another breaker (keys {:?}), first seen between {:.3} s and {:.3} s; \
                 {not_closed} hot calls found another breaker while the first was open or half-open",
                firsts.len(),
                firsts.iter().map(|f| f.0).collect::<Vec<_>>(),
                earliest.duration_since(start).as_secs_f64(),
                latest.duration_since(start).as_secs_f64(),
            ),
        );
    }
    let (mut totals, mut outage_opens) = ([0u64; 4], Vec::new());
    for (k, key) in hot_keys.iter().enumerate() {
        // The first call, made before the threads started, was a success.
        let mut expected = [1, 0, 0];
        for tally in tallies {
            for (sum, n) in expected.iter_mut().zip(tally.hot[k]) {
                *sum += n;
            }
        }
        let replaced: u64 = tallies.iter().map(|tally| tally.replaced[k]).sum();
        if let Some(first) = tallies.iter().filter_map(|tally| tally.first_replaced[k]).min() {
            let not_closed: u64 = tallies.iter().map(|tally| tally.replaced_not_closed[k]).sum();
            failed.push(
                3,
                format!(
                    "hot key {key}: {replaced} calls ran through another breaker than its first, from {:.3} s on \
                     ({not_closed} of them while the first was open or half-open)",
                    first.duration_since(start).as_secs_f64(),
                ),
            );
        }
        let Some(breaker) = registry.get(key.as_str()) else {
            failed.push(3, format!("hot key {key} has no breaker at the end"));
            continue;
        };
        if replaced == 0 && !std::ptr::eq(Arc::as_ptr(&breaker), originals[k].as_ptr()) {
            failed.push(3, format!("hot key {key} has another breaker at the end than its first"));
        }
        let counts = breaker.counts();
        let got = [counts.successes, counts.failures, counts.rejections];
        if got != expected {
            failed.push(
                2,
                format!(
                    "hot key {key}: the breaker counts {got:?}, its callers saw {expected:?} \
                     (successes, failures, rejections)"
                ),
            );
        }
        for (total, n) in totals.iter_mut().zip([counts.successes, counts.failures, counts.rejections, counts.opens]) {
            *total += n;
        }
        if k < 32 {
            outage_opens.push(counts.opens);
        }
    }
    for violation in &samples.replaced {
        failed.push(3, violation.clone());
    }
    println!(
        "hot set: {} successes, {} failures, {} rejections, {} opens (keys 0..32: {}..{} opens each); \
         open or half-open at {} of {} key samples",
        thousands(totals[0]),
        thousands(totals[1]),
        thousands(totals[2]),
        thousands(totals[3]),
        outage_opens.iter().min().copied().unwrap_or(0),
        outage_opens.iter().max().copied().unwrap_or(0),
        samples.hot_not_closed,
        samples.hot_seen,
    );
}

/// Check 4: `len()` never went past the capacity by more than a put-back
/// per thread.
fn check_len(registry: &Registry<String>, tallies: &[Tally], samples: &Samples, failed: &mut Failures) {
    let most = tallies.iter().map(|tally| tally.max_len).chain([samples.max_len, registry.len()]).max().unwrap_or(0);
    println!("len: at most {most} seen (limit {})", CAPACITY + THREADS);
    if most > CAPACITY + THREADS {
        failed.push(4, format!("len reached {most}, over the capacity {CAPACITY} + {THREADS}"));
    }
}

/// What a worker thread borrows.
struct Worker<'a> {
    thread: usize,
    registry: &'a Registry<String>,
    hot_keys: &'a [String],
    originals: &'a [Weak<Breaker>],
    /// Breakers made, by every thread: how far the warm-up has got.
    made: &'a AtomicU64,
    barrier: &'a Barrier,
    go: &'a AtomicBool,
    deadline: Instant,
}

/// What one worker thread saw.
struct Tally {
    /// Calls made.
    calls: u64,
    /// Per hot key: successes, failures, rejections.
    hot: [[u64; 3]; HOT],
    /// Per hot key: calls that ran through another breaker than its first.
    replaced: [u64; HOT],
    /// Per hot key: those of them made while the first was open or half-open.
    replaced_not_closed: [u64; HOT],
    /// Per hot key: when this thread first found another breaker.
    first_replaced: [Option<Instant>; HOT],
    /// Hot calls refused with `Full`.
    hot_full: u64,
    /// Window calls refused with `Full`.
    window_full: u64,
    /// Window calls that were rejected or failed.
    window_not_ok: u64,
    /// Window keys called for the first time since they entered the window
    /// (each gets a new breaker: the last time a window passed by, hundreds
    /// of thousands of keys ago, is long evicted).
    made: u64,
    /// Window keys that found another breaker than at their last call while
    /// still in the window: evicted, and made again.
    remade: u64,
    /// The most `len()` this thread read (at each timed call).
    max_len: usize,
    /// Timed calls.
    latency: Latencies,
}

impl Worker<'_> {
    /// Calls until the deadline, an epoch at a time, and returns what it saw.
    fn run(self) -> Tally {
        let mut tally = Tally {
            calls: 0,
            hot: [[0; 3]; HOT],
            replaced: [0; HOT],
            replaced_not_closed: [0; HOT],
            first_replaced: [None; HOT],
            hot_full: 0,
            window_full: 0,
            window_not_ok: 0,
            made: 0,
            remade: 0,
            max_len: 0,
            latency: Latencies::new(),
        };
        let mut key = String::with_capacity(48);
        // Per window position (n % WINDOW): the key last called there and the
        // address of the breaker it ran through.
        let mut window = vec![(u64::MAX, 0usize); WINDOW as usize];
        let first = self.thread as u64 * (KEYS / THREADS as u64);
        let (mut hot_calls, mut window_calls) = (0u64, 0u64);
        for epoch in 0.. {
            // Every thread starts an epoch with the others, so the schedule
            // is the same for all; the leader decides whether there is one.
            if self.barrier.wait().is_leader() {
                self.go.store(Instant::now() < self.deadline, Ordering::Relaxed);
            }
            self.barrier.wait();
            if !self.go.load(Ordering::Relaxed) {
                break;
            }
            for _ in 0..EPOCH_CALLS {
                let to_window = tally.calls.is_multiple_of(3);
                let timed = tally.latency.wants(tally.calls).then(Instant::now);
                if to_window {
                    let n = (first + window_calls / STEP + mix(window_calls) % WINDOW) % KEYS;
                    key.clear();
                    write!(key, "upstream-{n}.svc.cluster.local").expect("a String takes any write");
                    self.window_call(&mut tally, &mut window[(n % WINDOW) as usize], n, &key);
                    window_calls += 1;
                } else {
                    self.hot_call(&mut tally, epoch, hot_calls);
                    hot_calls += 1;
                }
                if let Some(started) = timed {
                    tally.latency.record(started.elapsed(), to_window);
                    tally.max_len = tally.max_len.max(self.registry.len());
                }
                tally.calls += 1;
            }
        }
        tally
    }

    /// One call to a hot key, checked to run through the key's first breaker.
    fn hot_call(&self, tally: &mut Tally, epoch: u64, hot_calls: u64) {
        let k = (hot_calls as usize + self.thread * (HOT / THREADS)) % HOT;
        let fails = hot_fails(k, epoch, hot_calls / HOT as u64);
        let original = &self.originals[k];
        let answer = self.registry.with(self.hot_keys[k].as_str(), |breaker| {
            let same = std::ptr::eq(breaker, original.as_ptr());
            (same, breaker.call(|| if fails { Err("503 from the hot downstream") } else { Ok(()) }))
        });
        match answer {
            Ok((same, outcome)) => {
                let column = match outcome {
                    Ok(()) => 0,
                    Err(Error::Inner(_)) => 1,
                    Err(Error::Open(_)) => 2,
                };
                tally.hot[k][column] += 1;
                if !same {
                    tally.replaced[k] += 1;
                    tally.first_replaced[k].get_or_insert_with(Instant::now);
                    if original.upgrade().is_some_and(|first| first.state() != State::Closed) {
                        tally.replaced_not_closed[k] += 1;
                    }
                }
            }
            Err(RegistryError::Full { .. }) => tally.hot_full += 1,
            Err(err) => panic!("hot key {}: {err}", self.hot_keys[k]),
        }
    }

    /// One call to window key `n` (spelled `key`), whose downstream never
    /// fails; `last` is the key last called at its window position, and the
    /// address of its breaker then.
    fn window_call(&self, tally: &mut Tally, last: &mut (u64, usize), n: u64, key: &str) {
        let answer =
            self.registry.with(key, |breaker| (std::ptr::from_ref(breaker).addr(), breaker.call(|| Ok::<_, &str>(()))));
        match answer {
            Ok((at, outcome)) => {
                if last.0 != n {
                    tally.made += 1;
                    self.made.fetch_add(1, Ordering::Relaxed);
                } else if last.1 != at {
                    tally.remade += 1;
                    self.made.fetch_add(1, Ordering::Relaxed);
                }
                *last = (n, at);
                if outcome.is_err() {
                    tally.window_not_ok += 1;
                }
            }
            Err(RegistryError::Full { .. }) => tally.window_full += 1,
            Err(err) => panic!("window key {key}: {err}"),
        }
    }
}

/// A thread's timed calls: the duration in ns, with the top bit set for a
/// window call. Sampled one call in `every`, into a buffer allocated and
/// written before the run (so it adds nothing to the resident set later)
/// and thinned to every other sample whenever it fills, so the samples stay
/// spread evenly over the whole run.
struct Latencies {
    buf: Vec<u32>,
    len: usize,
    every: u64,
}

impl Latencies {
    const WINDOW_BIT: u32 = 1 << 31;

    fn new() -> Latencies {
        // Not zeros: a zeroed allocation may stay unmapped until written.
        Latencies { buf: vec![u32::MAX; LATENCY_SAMPLES], len: 0, every: TIME_EVERY }
    }

    /// Whether the thread's call number `call` is one to time.
    fn wants(&self, call: u64) -> bool {
        call.is_multiple_of(self.every)
    }

    fn record(&mut self, took: Duration, to_window: bool) {
        if self.len == self.buf.len() {
            for i in 0..self.len / 2 {
                self.buf[i] = self.buf[2 * i];
            }
            self.len /= 2;
            self.every *= 2;
        }
        let ns = u32::try_from(took.as_nanos()).unwrap_or(u32::MAX).min(Self::WINDOW_BIT - 1);
        self.buf[self.len] = if to_window { ns | Self::WINDOW_BIT } else { ns };
        self.len += 1;
    }

    fn samples(&self) -> &[u32] {
        &self.buf[..self.len]
    }

    /// A sample's duration in ns, and whether it was a window call.
    fn split(sample: u32) -> (u32, bool) {
        (sample & !Self::WINDOW_BIT, sample & Self::WINDOW_BIT != 0)
    }
}

/// What the main thread sampled every [`SAMPLE_EVERY`].
#[derive(Default)]
struct Samples {
    /// The memory figures, one per sample.
    memory: Vec<Memory>,
    /// The most `len()` seen.
    max_len: usize,
    /// Hot keys found without their first breaker (the first few).
    replaced: Vec<String>,
    /// Hot-key samples taken, and how many found the breaker not closed.
    hot_seen: u64,
    hot_not_closed: u64,
}

/// How to read one figure from a [`Memory`] sample, if it has it.
type Figure = fn(&Memory) -> Option<u64>;

/// One sample of memory.
#[derive(Clone, Copy)]
struct Memory {
    /// Seconds into the run.
    at: f64,
    /// The resident set, where `/proc` has it.
    resident: Option<u64>,
    /// The bytes allocated and not freed.
    heap: u64,
    /// Whether the warm-up was over.
    warm: bool,
}

impl Samples {
    /// Samples memory, `len()` and every hot key's breaker.
    fn take(
        &mut self,
        registry: &Registry<String>,
        hot_keys: &[String],
        originals: &[Weak<Breaker>],
        start: Instant,
        warm: bool,
    ) {
        let at = start.elapsed().as_secs_f64();
        let len = registry.len();
        self.max_len = self.max_len.max(len);
        let mut not_closed = 0;
        for (key, original) in hot_keys.iter().zip(originals) {
            let now = registry.get(key.as_str());
            let state = now.as_ref().map(|breaker| breaker.state());
            not_closed += u64::from(state.is_some_and(|state| state != State::Closed));
            let same = now.as_ref().is_some_and(|breaker| std::ptr::eq(Arc::as_ptr(breaker), original.as_ptr()));
            if !same && self.replaced.len() < SHOW {
                let first = original.upgrade().map(|first| first.state());
                let what = match state {
                    None => "no breaker".to_owned(),
                    Some(state) => format!("another breaker ({state})"),
                };
                let first = first.map_or_else(|| "dropped".to_owned(), |state| format!("{state}"));
                self.replaced.push(format!("at {at:.1} s, hot key {key} has {what}; its first breaker is {first}"));
            }
        }
        self.hot_seen += hot_keys.len() as u64;
        self.hot_not_closed += not_closed;
        let memory = Memory { at, resident: resident_bytes(), heap: heap_bytes(), warm };
        self.memory.push(memory);
        if self.memory.len().is_multiple_of(4) {
            println!(
                "  {at:5.1} s  resident {}  heap {}  len {len}  hot keys open or half-open: {not_closed}{}",
                memory.resident.map_or_else(|| "?".to_owned(), mb),
                mb(memory.heap),
                if warm { "" } else { "  (warming up)" },
            );
        }
    }

    /// Check 1: prints the memory figures, and fails if one grew past its
    /// warm-up figure and the slack. The warm-up figure is the highest of
    /// the warm-up's last [`BASELINE`] samples: the heap in use moves by a
    /// few percent with the evicted breakers waiting to be freed.
    fn check_memory(&self, failed: &mut Failures) {
        let Some(end) = self.memory.iter().position(|sample| sample.warm) else {
            println!("memory: the run ended before the warm-up did: not checked");
            return;
        };
        let (warm_up, after) = (&self.memory[(end + 1).saturating_sub(BASELINE)..=end], &self.memory[end + 1..]);
        let ended = self.memory[end].at;
        let figures: [(&str, Figure); 2] =
            [("resident", |sample| sample.resident), ("heap in use", |sample| Some(sample.heap))];
        for (name, figure) in figures {
            let (Some(first), Some(base)) = (figure(&self.memory[0]), warm_up.iter().filter_map(figure).max()) else {
                println!("memory: no {name} figure here (VmRSS, from /proc/self/status): not checked");
                continue;
            };
            let low = after.iter().filter_map(figure).min().unwrap_or(base);
            let (high_at, high) = after
                .iter()
                .filter_map(|sample| Some((sample.at, figure(sample)?)))
                .fold((ended, base), |high, (at, bytes)| if bytes > high.1 { (at, bytes) } else { high });
            let change = |bytes: u64| (bytes as f64 / base as f64 - 1.0) * 100.0;
            println!(
                "memory: {name} {} at {:.1} s, {} at the end of the warm-up ({ended:.1} s), then {}..{} \
                 ({:+.1}%..{:+.1}%, limit +{:.0}%)",
                mb(first),
                self.memory[0].at,
                mb(base),
                mb(low),
                mb(high),
                change(low),
                change(high),
                MEMORY_SLACK * 100.0,
            );
            if high as f64 > base as f64 * (1.0 + MEMORY_SLACK) {
                failed.push(
                    1,
                    format!(
                        "{name} grew to {} at {high_at:.1} s: {:+.1}% on {} at the end of the warm-up ({ended:.1} s)",
                        mb(high),
                        change(high),
                        mb(base),
                    ),
                );
            }
        }
    }
}

/// The checks that failed, by check number.
#[derive(Default)]
struct Failures(Vec<(u8, String)>);

impl Failures {
    fn push(&mut self, check: u8, what: String) {
        self.0.push((check, what));
    }

    /// Prints the failures (the first few of each check) and exits with 1,
    /// or prints `soak: ok`.
    fn finish(self) {
        if self.0.is_empty() {
            println!("soak: ok");
            return;
        }
        for check in 1..=5 {
            let of_check: Vec<&String> = self.0.iter().filter(|(c, _)| *c == check).map(|(_, what)| what).collect();
            for what in of_check.iter().take(SHOW) {
                println!("FAILED ({check}): {what}");
            }
            if of_check.len() > SHOW {
                println!("FAILED ({check}): ... and {} more", of_check.len() - SHOW);
            }
        }
        println!("soak: FAILED ({} failures)", self.0.len());
        std::process::exit(1);
    }
}

/// `VmRSS` from `/proc/self/status`, in bytes (as the `registry_memory`
/// example reads it).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The bytes allocated and not freed, by the counting allocator (which
/// adds a reallocation's growth to `bytes_allocated` and its shrinking to
/// `bytes_deallocated`, besides `bytes_reallocated`).
fn heap_bytes() -> u64 {
    let stats = GLOBAL.stats();
    stats.bytes_allocated.saturating_sub(stats.bytes_deallocated) as u64
}

/// A well-mixed 64-bit number from `x` (splitmix64's finalizer): where in
/// its window a thread's call goes.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sample at quantile `q` of `sorted`, or 0.
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Nanoseconds, in the unit that reads best.
fn nanos(ns: u32) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", f64::from(ns) / 1e3),
        _ => format!("{:.1} ms", f64::from(ns) / 1e6),
    }
}

/// Bytes as megabytes.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `n` with its thousands separated by commas.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
