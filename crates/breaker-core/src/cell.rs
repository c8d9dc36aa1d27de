//! The atomic cell: the state word in an `AtomicU64`, changed only by one CAS
//! per transition.
//!
//! # Orderings
//!
//! Every access is `Relaxed`, on purpose:
//!
//! - The word publishes no other memory. Each decision is a function of the
//!   word's value alone (and of `now`, which comes from the caller or the
//!   clock, never from memory another thread wrote), so no acquire/release
//!   pairing is needed to make some other data visible alongside it.
//! - All changes are read-modify-writes of this one location, which are totally
//!   ordered (its modification order) whatever the ordering argument: a
//!   `compare_exchange` succeeds only against the latest value, so two threads
//!   can never both apply a transition from the same word, and no update is
//!   lost. The loom suite checks this for every transition.
//! - A decision made from a plain load (admitting on a closed word, a success
//!   that finds nothing to reset, reading the state) is linearised at that
//!   load. Coherence gives the ordering users can observe: once a thread has
//!   seen a word, its later loads never see an older one, and anything that
//!   happens-before a load (say, a `reset` followed by a channel send to the
//!   loading thread) is visible to it.
//!
//! `Acquire` loads would cost an `ldar` instead of an `ldr` on every admission
//! on AArch64 (identical code on x86-64) and would order nothing we rely on.
//! The flip side, stated in the crate docs: the breaker is not a
//! synchronisation point for the caller's own data.

use crate::sync::{AtomicU64, Ordering};
use crate::transition::Step;
use crate::word::StateWord;

/// One breaker's state word.
#[derive(Debug)]
pub(crate) struct StateCell {
    word: AtomicU64,
}

impl StateCell {
    pub(crate) fn new() -> StateCell {
        StateCell { word: AtomicU64::new(StateWord::INITIAL.bits()) }
    }

    #[inline]
    pub(crate) fn load(&self) -> StateWord {
        StateWord::from_bits(self.word.load(Ordering::Relaxed))
    }

    /// Runs the pure `step` on the current word and stores its result with
    /// one CAS, retrying on a conflict with the word the CAS found. A step
    /// that leaves the word unchanged stores nothing, which is what keeps the
    /// healthy path to loads only.
    ///
    /// Always inlined into its callers, the breaker's out-of-line slow paths
    /// (the healthy path never gets here): each caller's step then folds to
    /// its own few instructions, and the no-write comparison folds away where
    /// the step cannot change the word.
    #[inline(always)]
    pub(crate) fn transition<D>(&self, step: impl FnMut(StateWord) -> Step<D>) -> D {
        self.transition_from(self.load(), step)
    }

    /// [`transition`](Self::transition) from a word the caller has just
    /// loaded (and found it could not decide on without the full step),
    /// saving a second load. A word that has changed since fails the CAS.
    #[inline(always)]
    pub(crate) fn transition_from<D>(&self, mut current: StateWord, mut step: impl FnMut(StateWord) -> Step<D>) -> D {
        loop {
            let Step { decision, next } = step(current);
            if next == current {
                return decision;
            }
            match self.word.compare_exchange_weak(current.bits(), next.bits(), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return decision,
                Err(actual) => current = StateWord::from_bits(actual),
            }
        }
    }
}
