//! The facade's integration tests, one module a file, in one binary: a
//! change to the library then rebuilds and links one test binary rather
//! than one per file, which is most of what mutation testing pays per
//! mutant. `tests/memory.rs` stays a binary of its own: it installs a
//! counting global allocator.

mod behaviour;
mod observability;
mod rates;
#[cfg(feature = "registry")]
mod registry;
#[cfg(feature = "http")]
mod tower_layer;
