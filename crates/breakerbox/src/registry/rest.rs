//! [`Rest`]: what a registry keeps on each of its breakers to evict it;
//! [`RestMark`], what a call compares before and after to tell whether it
//! left the breaker not at rest; and the registry's judgements of a
//! breaker: [`Breaker::at_rest`], [`Breaker::severity`].
//!
//! # Orderings
//!
//! The handshake is [`EvictionFlag`]'s (its `# Orderings`): the evictor
//! marks and fences, then reads the breaker; a call whose end changed the
//! breaker's state word or window, or left it not at rest, or a caller
//! that cloned its `Arc`, fences and reads the flag. The evictor reads the
//! `Arc`'s count, then `copies`, then fences (`Acquire`), so that a holder
//! that changed the breaker and then dropped its `Arc` (a `Release`
//! decrement) has its change seen by the reads that follow. Everything
//! after the flag (the removal, the putting back) runs under the
//! registry's writer mutex, and `activity` and `since` are read and written
//! only under it.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

use breakerbox_core::__private::{EvictionFlag, RateWindow, RawWord as _};
use breakerbox_core::{State, StateWord, Timestamp};

use crate::Breaker;

/// A registered breaker's eviction bookkeeping: 40 bytes in the padding of
/// the breaker's second cache line.
#[derive(Debug, Default)]
pub(crate) struct Rest {
    /// Marked by an evictor before it checks the breaker a last time; left
    /// marked on a breaker it removed until it is put back.
    evicting: EvictionFlag,
    /// How many of the breaker's `Arc`s the map owns: the live entry, and
    /// removed entries the map has not dropped yet (it drops them lazily).
    copies: AtomicUsize,
    /// The breaker's calls and rejections when a sweep last saw them change.
    activity: AtomicU64,
    /// When (ms on the breaker's clock) a sweep last saw them change; 0,
    /// the breaker's creation, until one does.
    since: AtomicU64,
    /// Where the breaker is in the registry's eviction ring, while it is
    /// registered.
    slot: AtomicUsize,
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

    /// A map entry now owns one more of the breaker's `Arc`s.
    pub(crate) fn add_copy(&self) {
        self.copies.fetch_add(1, Ordering::Relaxed);
    }

    /// A map entry owning one of the breaker's `Arc`s was dropped.
    pub(crate) fn drop_copy(&self) {
        self.copies.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether anything but the map holds the breaker, given its `Arc`'s
    /// `strong` count read just before (under the writer mutex). Copies go
    /// up only under that mutex and may go down at any time (the map drops
    /// removed entries when it likes), so reading `strong` first never
    /// takes a holder for a copy.
    pub(crate) fn held_outside(&self, strong: usize) -> bool {
        let held = strong > self.copies.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        held
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

    /// Where the breaker is in the eviction ring (under the writer mutex).
    pub(crate) fn slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed)
    }

    /// The breaker moved to `slot` of the eviction ring (under the writer
    /// mutex).
    pub(crate) fn move_to(&self, slot: usize) {
        self.slot.store(slot, Ordering::Relaxed);
    }
}

/// What a call leaving the breaker not at rest changes: the state word,
/// and the window's latest failure, which only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RestMark {
    word: StateWord,
    latest_failure: Option<Timestamp>,
}

impl RestMark {
    pub(crate) fn new(word: StateWord, latest_failure: Option<Timestamp>) -> RestMark {
        RestMark { word, latest_failure }
    }

    /// Whether the word is closed with no failure counted (the window aside).
    pub(crate) fn quiet(&self) -> bool {
        self.word.phase() == State::Closed && self.word.count() == 0
    }

    /// When the window last counted a failure, if it ever has.
    pub(crate) fn latest_failure(&self) -> Option<Timestamp> {
        self.latest_failure
    }
}

/// What a breaker would lose if the registry forgot it, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Closed, nothing counted: a fresh breaker is the same.
    AtRest,
    /// Closed, with failures counted toward opening.
    Counting,
    /// Probing.
    HalfOpen,
    /// Rejecting calls.
    Open,
}

impl Breaker {
    /// What a call that leaves the breaker not at rest changes (see
    /// [`at_rest`](Self::at_rest)): the state word, and the time of the
    /// window's latest failure. Two loads, one of them the word every call
    /// reads anyway.
    #[inline(always)]
    pub(crate) fn rest_mark(&self) -> RestMark {
        let latest = self.window().and_then(RateWindow::latest_failure);
        RestMark::new(self.core().snapshot(), latest)
    }

    /// Whether forgetting the breaker at `now` and making a new one would
    /// change no decision: it is closed (not held open) with no failure in
    /// its streak, and its failure-rate window (if any) holds no failure.
    pub(crate) fn at_rest(&self, now: Timestamp) -> bool {
        let mark = self.rest_mark();
        mark.quiet() && !self.window_holds(mark.latest_failure(), now)
    }

    /// How much forgetting the breaker would lose, to choose between two
    /// breakers for one key. By the stored state, not the state at `now`:
    /// an open breaker whose timeout has passed reads half-open, but what it
    /// holds is an open, which the key must not lose.
    pub(crate) fn severity(&self, now: Timestamp) -> Severity {
        match self.core().snapshot().phase() {
            State::Open => Severity::Open,
            State::HalfOpen => Severity::HalfOpen,
            State::Closed if self.at_rest(now) => Severity::AtRest,
            State::Closed => Severity::Counting,
        }
    }

    /// Whether the window may still hold, at `now`, a failure counted at
    /// `latest`.
    fn window_holds(&self, latest: Option<Timestamp>, now: Timestamp) -> bool {
        let Some(rate) = self.window() else { return false };
        let window = rate.rule().window().as_millis() as u64;
        latest.is_some_and(|latest| now.as_millis() < latest.as_millis().saturating_add(window))
    }

    /// The time on the breaker's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.core().now()
    }

    /// What a sweep or the eviction hand reads to tell whether the breaker
    /// was used: its calls and rejections.
    pub(crate) fn activity(&self) -> u64 {
        let counts = self.counts();
        counts.successes + counts.failures + counts.rejections
    }
}
