//! A circuit breaker for calls to a downstream service.
//!
//! The call / fallback API is being built; until then this crate re-exports
//! the lock-free core.

pub use breaker_core::*;
