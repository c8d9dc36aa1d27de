//! The benchmarks live in `benches/breaker.rs`; `BENCHMARKS.md` at the repository root has the numbers.
