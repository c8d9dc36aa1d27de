//! Resident memory of a registry at scale: 100,000 breakers under `String`
//! keys, each called by every one of N threads.
//!
//! ```sh
//! cargo run --release --features registry --example registry_memory -- --threads 2
//! cargo run --release --features registry --example registry_memory -- --threads 16
//! ```
//!
//! `--threads 0` registers the breakers without calling them. Prints the
//! process's resident set (`VmRSS`, Linux only) before and after,
//! and the difference per breaker. Each run is its own process, so one
//! measurement does not inherit another's allocator state.

use std::alloc::System;
use std::sync::Barrier;

use breakerbox::{Config, Registry};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

// Counts what is asked of the allocator, to tell the bytes the registry asks
// for from what the allocator adds around them.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const BREAKERS: usize = 100_000;

fn main() {
    let mut threads = 2;
    let mut breakers = BREAKERS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|value| value.parse().ok());
        match (arg.as_str(), value) {
            ("--threads", Some(n)) => threads = n,
            ("--breakers", Some(n)) => breakers = n,
            _ => {
                eprintln!("usage: registry_memory [--threads N] [--breakers N]");
                std::process::exit(2);
            }
        }
    }
    let keys: Vec<String> = (0..breakers).map(|i| format!("upstream-{i:06}.internal:8080")).collect();
    let before = resident_bytes();
    let region = Region::new(GLOBAL);
    let registry: Registry<String> = Registry::new(Config::default()).unwrap();
    if threads == 0 {
        // Registered, never called: what a breaker costs before any thread counts on it.
        for key in &keys {
            drop(registry.get_or_insert(key.as_str()).unwrap());
        }
    }
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (registry, keys, start) = (&registry, &keys, &start);
            scope.spawn(move || {
                start.wait();
                // Threads start at different keys, so they race to make them.
                for i in 0..keys.len() {
                    let key = &keys[(i + thread * keys.len() / threads) % keys.len()];
                    registry.call(key.as_str(), || Ok::<_, ()>(())).unwrap().unwrap();
                }
            });
        }
    });
    let after = resident_bytes();
    let change = region.change();
    // A reallocation's growth is in `bytes_allocated` already (stats_alloc
    // counts it there and in `bytes_reallocated`).
    let held = change.bytes_allocated - change.bytes_deallocated;
    let successes: u64 = registry.health().iter().map(|row| row.counts.successes).sum();
    assert_eq!(successes, (threads * breakers) as u64);
    assert_eq!(registry.len(), breakers);
    match (before, after) {
        (Some(before), Some(after)) => {
            let grown = after.saturating_sub(before);
            println!(
                "{breakers} breakers x {threads} threads: resident {:.1} MB -> {:.1} MB: +{:.1} MB, {} bytes a breaker \
                 ({} of them asked of the allocator)",
                mb(before),
                mb(after),
                mb(grown),
                grown / breakers as u64,
                held / breakers,
            );
        }
        _ => println!("{breakers} breakers x {threads} threads: no /proc/self/status here to read VmRSS from"),
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// `VmRSS` from `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
