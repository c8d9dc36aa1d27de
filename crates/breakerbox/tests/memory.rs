//! What counting costs in memory, measured with a counting global allocator.
//!
//! Its own test binary, with no test harness (`harness = false`): the
//! allocator counts every allocation in the process, so nothing may run beside
//! the measurement, and libtest's main thread allocates while its tests run.
//! Threads that are not measured wait on a barrier (which allocates nothing)
//! meanwhile.

use std::alloc::System;
use std::sync::Barrier;

use breakerbox::{Breaker, Config, FailureRate};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Threads alive at once: several hundred, so the last one to take a lane
/// would have had a high index under a design that sizes a breaker's
/// counters by the thread's index.
const THREADS: usize = 512;

/// Fresh breakers the last thread makes its first calls into.
const FRESH: usize = 64;

fn ok() -> Result<(), ()> {
    Ok(())
}

fn main() {
    counting_memory_grows_with_the_threads_that_call_not_with_their_number();
    eprintln!("memory: ok");
}

fn counting_memory_grows_with_the_threads_that_call_not_with_their_number() {
    // A breaker no thread has called: at most 256 bytes, nothing on the heap
    // (with the `tracing` feature, a 32-byte box pointing at the listener
    // every breaker shares).
    assert!(size_of::<Breaker>() <= 256, "a breaker is {} bytes", size_of::<Breaker>());
    drop(Breaker::default()); // the clock's (and the tracing listener's) one-time setup
    let region = Region::new(GLOBAL);
    let idle = Breaker::default();
    let observer = if cfg!(feature = "tracing") { 32 } else { 0 };
    assert_eq!(region.change().bytes_allocated, observer, "building a breaker allocates");
    // A name: the box (name and listener, 32 bytes) and the `Arc<str>`
    // (two counts, 16 bytes, and the text padded to 8 bytes).
    let region = Region::new(GLOBAL);
    let named = Breaker::builder(Config::default()).name("users").build().unwrap();
    assert_eq!(
        region.change().bytes_allocated,
        32 + 16 + "users".len().next_multiple_of(8),
        "a named breaker allocates"
    );
    drop(named);

    let shared = Breaker::default();
    let fresh: Vec<Breaker> = (0..FRESH).map(|_| Breaker::default()).collect();
    let called = Barrier::new(THREADS);
    let measured = Barrier::new(THREADS);
    let (first, all) = std::thread::scope(|scope| {
        let others: Vec<_> = (0..THREADS - 1)
            .map(|_| {
                scope.spawn(|| {
                    assert_eq!(shared.call(ok), Ok(()));
                    called.wait();
                    measured.wait();
                })
            })
            .collect();
        let last = scope.spawn(|| {
            assert_eq!(shared.call(ok), Ok(())); // this thread's lane: the last of THREADS
            called.wait();
            let region = Region::new(GLOBAL);
            assert_eq!(fresh[0].call(ok), Ok(()));
            let first = region.change();
            for breaker in &fresh[1..] {
                assert_eq!(breaker.call(ok), Ok(()));
            }
            let all = region.change();
            measured.wait();
            (first, all)
        });
        // Joined, not left to the scope: the scope returns once each closure
        // has, while the threads' lanes may still be running their
        // thread-local destructors, which would count in the next measurement.
        for other in others {
            other.join().unwrap();
        }
        last.join().unwrap()
    });

    eprintln!("first call: {} bytes; {FRESH} first calls: {} bytes", first.bytes_allocated, all.bytes_allocated);
    // The first call into one more breaker: a 24-byte slot from the lane's
    // chunk and the breaker's first list entry (a 4-entry vector of 16 bytes).
    assert!(first.bytes_allocated <= 128, "a thread's first call into a breaker allocated {first:?}");
    // Into many: slots, list entries and the lane's map, growth included.
    let per_breaker = all.bytes_allocated / FRESH;
    assert!(per_breaker <= 512, "{per_breaker} bytes a breaker on average ({all:?})");
    assert_eq!(shared.counts().successes, THREADS as u64);
    assert!(fresh.iter().all(|breaker| breaker.counts().successes == 1));
    assert_eq!(idle.counts().successes, 0);

    // A failure-rate rule: the watch's box at build (the rule, its shared
    // failure counter and the first link of its list of rings: 264 bytes),
    // and for each thread that calls, a 184-byte ring (carved four to a
    // chunk) beside the slot, with their entries in the lane's maps and the
    // breaker's lists (about 400 bytes where a plain breaker takes about 150).
    let rate = FailureRate::new(0.5, 20, std::time::Duration::from_secs(10));
    let region = Region::new(GLOBAL);
    let rated: Vec<Breaker> =
        (0..FRESH).map(|_| Breaker::builder(Config::default()).failure_rate(rate).build().unwrap()).collect();
    let per_build = (region.change().bytes_allocated - rated.capacity() * size_of::<Breaker>()) / FRESH;
    let called = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                assert_eq!(rated[0].call(ok), Ok(())); // this thread's lane
                let region = Region::new(GLOBAL);
                for breaker in &rated[1..] {
                    assert_eq!(breaker.call(ok), Ok(()));
                }
                region.change().bytes_allocated / (FRESH - 1)
            })
            .join()
            .unwrap()
    });
    eprintln!("a breaker with a failure rate: {per_build} bytes at build; {called} bytes per thread that calls it");
    assert!(per_build <= 320, "{per_build} bytes to build a breaker with a failure rate");
    assert!(called <= 512, "{called} bytes for a thread's first call into a breaker with a failure rate");
}
