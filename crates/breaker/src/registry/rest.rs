//! [`Rest`]: what a registry keeps on each of its breakers to evict it, and
//! the handshake that keeps a breaker from being forgotten while a call
//! leaves it not at rest.
//!
//! # Orderings
//!
//! Eviction and a call that changes the breaker race like the two sides of
//! Dekker's algorithm. The evictor stores `evicting`, fences (`SeqCst`) and
//! reads the breaker (its word, window, counts and reference count); a call
//! whose end changed the breaker's state word or window fences (`SeqCst`)
//! and loads `evicting`; taking a [`Handle`](super::Handle) clones the
//! breaker's `Arc`, fences and loads `evicting`. Of the two fences one comes
//! first in their single total order, so either the evictor sees the change
//! (a failure streak, an open, a second reference) and keeps the breaker, or
//! the call sees `evicting` and puts the breaker back. Everything after the
//! flag (the removal, the putting back) runs under the registry's writer
//! mutex. `activity` and `since` are read and written only under that mutex.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};

/// A registered breaker's eviction bookkeeping: 24 bytes in the padding of
/// the breaker's second cache line.
#[derive(Debug, Default)]
pub(crate) struct Rest {
    /// Set by an evictor before it checks the breaker a last time; left set
    /// on a breaker it removed.
    evicting: AtomicBool,
    /// The breaker's calls and rejections when a sweep last saw them change.
    activity: AtomicU64,
    /// When (ms on the breaker's clock) a sweep last saw them change.
    since: AtomicU64,
}

impl Rest {
    /// The evictor's side: marks the breaker, then fences; the caller reads
    /// the breaker after this returns.
    pub(crate) fn mark_evicting(&self) {
        self.evicting.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The evictor kept the breaker, or it was put back.
    pub(crate) fn clear(&self) {
        self.evicting.store(false, Ordering::Relaxed);
    }

    /// The caller's side, after it changed the breaker or took a reference
    /// to it: whether an evictor may have removed it.
    pub(crate) fn evicting_after_change(&self) -> bool {
        fence(Ordering::SeqCst);
        self.evicting.load(Ordering::Relaxed)
    }

    /// Whether the flag is still set (under the writer mutex).
    pub(crate) fn is_evicting(&self) -> bool {
        self.evicting.load(Ordering::Relaxed)
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
