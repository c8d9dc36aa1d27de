//! [`Rest`]: what a registry keeps on each of its breakers to evict it, and
//! the handshake that keeps a breaker from being forgotten while a call
//! leaves it not at rest.
//!
//! # Orderings
//!
//! The handshake is [`EvictionFlag`]'s (its `# Orderings`): the evictor
//! marks and fences, then reads the breaker; a call whose end changed the
//! breaker's state word or window, or a caller that cloned its `Arc`,
//! fences and reads the flag. Everything after the flag (the removal, the
//! putting back) runs under the registry's writer mutex, and `activity` and
//! `since` are read and written only under it.

use core::sync::atomic::{AtomicU64, Ordering};

use breaker_core::EvictionFlag;

/// A registered breaker's eviction bookkeeping: 24 bytes in the padding of
/// the breaker's second cache line.
#[derive(Debug, Default)]
pub(crate) struct Rest {
    /// Marked by an evictor before it checks the breaker a last time; left
    /// marked on a breaker it removed.
    evicting: EvictionFlag,
    /// The breaker's calls and rejections when a sweep last saw them change.
    activity: AtomicU64,
    /// When (ms on the breaker's clock) a sweep last saw them change.
    since: AtomicU64,
}

impl Rest {
    /// The evictor's side: marks the breaker, then fences; the caller reads
    /// the breaker after this returns.
    pub(crate) fn mark_evicting(&self) {
        self.evicting.mark();
    }

    /// The evictor kept the breaker, or it was put back.
    pub(crate) fn clear(&self) {
        self.evicting.clear();
    }

    /// The caller's side, after it changed the breaker or took a reference
    /// to it: whether an evictor may have removed it.
    pub(crate) fn evicting_after_change(&self) -> bool {
        self.evicting.seen_after_change()
    }

    /// Whether the flag is still set (under the writer mutex).
    pub(crate) fn is_evicting(&self) -> bool {
        self.evicting.is_marked()
    }

    /// Notes the breaker's activity (its calls and rejections) at `now`
    /// (ms), and returns how long it has not changed.
    pub(crate) fn idle_for(&self, activity: u64, now: u64) -> u64 {
        if self.activity.load(Ordering::Relaxed) != activity {
            self.activity.store(activity, Ordering::Relaxed);
            self.since.store(now, Ordering::Relaxed);
        }
        now.saturating_sub(self.since.load(Ordering::Relaxed))
    }

    /// Whether the activity is still what the last sweep noted.
    pub(crate) fn unchanged(&self, activity: u64) -> bool {
        self.activity.load(Ordering::Relaxed) == activity
    }

    /// Starts the idle time of a breaker just registered, at `now` (ms).
    pub(crate) fn start(&self, now: u64) {
        self.since.store(now, Ordering::Relaxed);
    }
}
