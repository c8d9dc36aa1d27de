//! Instruction counts of the breaker's hot paths under callgrind: the
//! deterministic performance gate.
//!
//! ```sh
//! bash benches/check-instructions.sh                           # run, compare with the bounds
//! cargo bench -p breakerbox-benches --bench instructions          # run only (needs valgrind, gungraun-runner)
//! ```
//!
//! Each benchmark runs [`CALLS`] calls in a loop, so the per-call cost
//! dominates the fixed cost of entering the benchmark function. The breaker
//! is built (and this thread's counter slot registered, with one call) in
//! the `#[bench]` argument expression, which gungraun evaluates outside the
//! measured function; the breaker is returned, so its drop is not measured
//! either. The bounds and the check are in `benches/instructions-bounds.txt`
//! and `benches/check-instructions.sh`.
//!
//! As in the criterion suite (`benches/breaker.rs`), every result is reduced
//! to one `bool` before `black_box`. Instructions are not time: a load that
//! misses, a contended line or a slow clock read is one instruction here.
//! This gate catches code added to a hot path; criterion measures the time.

#![allow(missing_docs, reason = "gungraun's macros generate public modules and items without docs")]

use std::hint::black_box;

use breakerbox::{Breaker, Config};
use breakerbox_core::{CoreBreaker, Outcome, Recorded};
use gungraun::{library_benchmark, library_benchmark_group, main};

/// Calls per benchmark run. Changing it changes every count: the bounds in
/// `benches/instructions-bounds.txt` are per run, not per call.
const CALLS: u64 = 1000;

/// The work every benchmark wraps, as in the criterion suite.
#[inline(always)]
fn downstream_ok() -> Result<u64, u64> {
    Ok(black_box(1))
}

/// A closed breaker whose first call (registering this thread's counter
/// slot) has already happened.
fn closed_breaker() -> Breaker {
    let breaker = Breaker::default();
    assert!(breaker.call(downstream_ok).is_ok(), "a new breaker must be closed");
    breaker
}

/// An open breaker (tripped, default clock) that has already rejected once.
fn open_breaker() -> Breaker {
    let breaker = Breaker::default();
    breaker.trip();
    assert!(breaker.call(downstream_ok).is_err(), "a tripped breaker must reject");
    breaker
}

/// A closed core that has already admitted and recorded once.
fn closed_core() -> CoreBreaker {
    let core = CoreBreaker::new(Config::default()).expect("the default config is valid");
    let ticket = core.acquire().expect("a new core must be closed");
    let _ = core.record(ticket, Outcome::Success);
    core
}

// `Breaker::call`: on a closed breaker, the downstream succeeding; and on an
// open breaker, a rejection, which reads the clock. The TSC read (`rdtsc`) is
// one instruction here, so the open case counts the breaker's work around the
// clock, not the clock's latency (BENCHMARKS.md has the time).
// (`library_benchmark` rejects doc comments, hence plain ones.)
#[library_benchmark]
#[bench::closed(closed_breaker())]
#[bench::open(open_breaker())]
fn call(breaker: Breaker) -> Breaker {
    for _ in 0..CALLS {
        black_box(breaker.call(downstream_ok).is_ok());
    }
    breaker
}

// The core's ticket API on a closed core: `acquire`, then `record` a success.
#[library_benchmark]
#[bench::closed(closed_core())]
fn core_acquire_record(core: CoreBreaker) -> CoreBreaker {
    for _ in 0..CALLS {
        let ticket = core.acquire().expect("a closed core admits");
        let result = downstream_ok();
        let applied = matches!(core.record(ticket, Outcome::Success), Recorded::Applied);
        black_box(applied && result.is_ok());
    }
    core
}

library_benchmark_group!(
    name = hot_paths;
    benchmarks = call, core_acquire_record
);

main!(library_benchmark_groups = hot_paths);
