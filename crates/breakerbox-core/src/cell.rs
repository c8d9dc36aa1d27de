//! The atomic cell: the state word in an `AtomicU64`, changed only by one CAS
//! per transition, and the published count of transitions that numbers them
//! for listeners.
//!
//! # Orderings
//!
//! Every access to the word is `Relaxed`, on purpose:
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
//!
//! The published count that numbers transitions is the one exception: its
//! `fetch_max` is `Release` and its load `Acquire`, so that a count a thread
//! reads never runs ahead of the word it replaces (see
//! [`StateCell::transition_from`]). Only transitions touch it.
//!
//! `Acquire` loads would cost an `ldar` instead of an `ldr` on every admission
//! on AArch64 (identical code on x86-64) and would order nothing we rely on.
//! The flip side, stated in the crate docs: the breaker is not a
//! synchronisation point for the caller's own data.

use crate::observe::Change;
use crate::sync::{AtomicU64, Ordering};
use crate::transition::Step;
use crate::word::StateWord;

/// One breaker's state word, and the count of its generations.
#[derive(Debug)]
pub(crate) struct StateCell {
    word: AtomicU64,
    /// The highest transition number whose CAS is known to have happened
    /// (the *published* count); the word's epoch is the low byte of the true
    /// count. See [`StateCell::transition_from`].
    published: AtomicU64,
}

impl StateCell {
    pub(crate) fn new() -> StateCell {
        StateCell { word: AtomicU64::new(StateWord::INITIAL.bits()), published: AtomicU64::new(0) }
    }

    #[inline]
    pub(crate) fn load(&self) -> StateWord {
        StateWord::from_bits(self.word.load(Ordering::Relaxed))
    }

    /// Runs the pure `step` on the current word and stores its result with
    /// one CAS, retrying on a conflict with the word the CAS found. A step
    /// that leaves the word unchanged stores nothing, which is what keeps the
    /// healthy path to loads only. Returns the step's decision; when the
    /// stored word starts a new generation, hands the [`Change`] to `report`
    /// first (only then: the paths that store nothing carry no check for it).
    ///
    /// Always inlined into its callers, the breaker's out-of-line slow paths
    /// (the healthy path never gets here): each caller's step then folds to
    /// its own few instructions, and the no-write comparison folds away where
    /// the step cannot change the word.
    #[inline(always)]
    pub(crate) fn transition<D>(&self, step: impl FnMut(StateWord) -> Step<D>, report: impl FnOnce(Change)) -> D {
        self.transition_from(self.load(), step, report)
    }

    /// [`transition`](Self::transition) from a word the caller has just
    /// loaded (and found it could not decide on without the full step),
    /// saving a second load. A word that has changed since fails the CAS.
    ///
    /// # Numbering transitions
    ///
    /// The word holds only the low byte of its transition count (the epoch).
    /// A thread about to start a new generation from word `w` reads the
    /// published count `p` first, and after a successful CAS takes the
    /// number `p + (epoch(w) - p mod 256) + 1`, then publishes it with
    /// `fetch_max`. That number is exact when `N(w) - 256 < p <= N(w)`, where
    /// `N(w)` is the true count of `w`:
    ///
    /// - `p <= N(w)`: a published number was stored (`Release`) after its
    ///   own CAS, and our `Acquire` load read it, so that CAS happens-before
    ///   ours and comes before it in the word's modification order; ours
    ///   replaced `w`, so `w` is that transition's word or a later one.
    /// - `p > N(w) - 256`: the count lags the word only by transitions
    ///   whose publish this thread has not seen yet: those whose thread sits
    ///   between its CAS and its `fetch_max` (each publish covers every
    ///   earlier number too), plus what the hardware has not yet made
    ///   visible. That stays far below 256 unless 256 threads are stalled
    ///   in that window at once.
    ///
    /// A word that recurs exactly (256 transitions within one tick while a
    /// thread held it) can make the CAS succeed later than the thread's read
    /// of `w`, as it defeats staleness checks. Either failure can only give
    /// a number that is too small, which `fetch_max` then ignores, so one
    /// wrong number never spoils the later ones.
    #[inline(always)]
    pub(crate) fn transition_from<D>(
        &self,
        mut current: StateWord,
        mut step: impl FnMut(StateWord) -> Step<D>,
        report: impl FnOnce(Change),
    ) -> D {
        loop {
            let Step { decision, next, reason, at } = step(current);
            if next == current {
                return decision;
            }
            let renews = next.epoch() != current.epoch();
            let published = if renews { self.published.load(Ordering::Acquire) } else { 0 };
            match self.word.compare_exchange_weak(current.bits(), next.bits(), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) if renews => {
                    let sequence = number(published, current.epoch());
                    self.published.fetch_max(sequence, Ordering::Release);
                    report(Change { from: current, to: next, reason, at, sequence });
                    return decision;
                }
                Ok(_) => return decision,
                Err(actual) => current = StateWord::from_bits(actual),
            }
        }
    }
}

/// The number of the transition that replaced a word of epoch `epoch`, given
/// the published count `published` read before the CAS: the count the epoch
/// is the low byte of, found from `published` by the epoch's lead over its
/// low byte, plus one.
const fn number(published: u64, epoch: u8) -> u64 {
    published + epoch.wrapping_sub(published as u8) as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn a_transition_is_numbered_from_the_published_count_and_the_epoch() {
        assert_eq!(number(0, 0), 1, "the first transition");
        assert_eq!(number(41, 41), 42, "nothing unpublished");
        assert_eq!(number(41, 42), 43, "one transition not yet published");
        assert_eq!(number(41, 44), 45, "three");
        assert_eq!(number(255, 1), 258, "across the epoch's wrap");
        assert_eq!(number(1_000, 1_000u64 as u8), 1_001);
    }
}
