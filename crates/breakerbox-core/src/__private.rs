//! For the `breakerbox` facade only, and for this workspace's tests,
//! benches, fuzzers and loom models. Not part of the public API: outside
//! semver, it may change or disappear in any release, a patch release
//! included. Depend on `breakerbox` for what it is used for.
//!
//! It holds what the facade builds on but users should not: the registry's
//! eviction handshake, the failure-rate window's rings (the facade keeps
//! one per thread), and the state word's raw fields. Keeping them here, not
//! at the crate root, leaves the bit layout and the counting design free to
//! change without a major release of either crate.

pub use crate::evict::EvictionFlag;
pub use crate::window::{BUCKETS, RateRule, RateWindow, Ring, WindowCounts};

use crate::word::StateWord;

/// The raw fields of a [`StateWord`], laid out as `docs/ARCHITECTURE.md`
/// ("The state word") describes: import it (`use
/// breakerbox_core::__private::RawWord as _;`) and call them as methods.
pub trait RawWord: Copy {
    /// The count field: consecutive failures while closed; the streak while
    /// open; probes in flight, successes and streak packed from the low bits
    /// up while half-open (each as wide as the breaker's config needs); zero
    /// while held open.
    fn count(self) -> u32;
    /// The epoch: the low byte of the transition's sequence number.
    fn epoch(self) -> u8;
    /// The time field, in milliseconds modulo 2^38: an open word's deadline,
    /// the time of the last transition otherwise.
    fn stamp(self) -> u64;
}

impl RawWord for StateWord {
    #[inline]
    fn count(self) -> u32 {
        StateWord::count(self)
    }

    #[inline]
    fn epoch(self) -> u8 {
        StateWord::epoch(self)
    }

    #[inline]
    fn stamp(self) -> u64 {
        StateWord::stamp(self)
    }
}
