//! The single place the core takes its atomics from.
//!
//! A normal build uses `core::sync::atomic`; a build with `--cfg loom` uses
//! loom's instrumented types, so the loom suite model-checks the very code that
//! ships. Nothing else in the crate names an atomic type directly.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
