//! The atomic cell: the state word in an `AtomicU64`, changed only by one CAS
//! per transition, and the published count of transitions that numbers them
//! for listeners.
//!
//! # Orderings
//!
//! Every load of the word is `Relaxed`, on purpose, and so would every CAS
//! be but for the numbering of transitions (the last point below):
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
//! - The CAS that stores a new word and the accesses to the published count
//!   are `SeqCst`: numbering a transition relies on "the word did not change
//!   between my read of the count and my CAS", a statement about two
//!   locations that needs them in one total order (see
//!   [`StateCell::transition_from`]). Only the paths that write pay for it,
//!   and on x86-64 not even they (a locked instruction is a full barrier).
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
    /// A thread about to start a new generation reads the published count
    /// `p` first; if its CAS then succeeds, the word did not change between
    /// that read and the CAS, so the count there was the word's, and it is
    /// `p` plus the epoch's distance from `p`'s low byte, provided the
    /// published count lagged by less than 256. The thread publishes its own
    /// number (`fetch_max`) right after its CAS, which covers every earlier
    /// transition too, so the lag is at most the number of threads between a
    /// CAS and its publish at that moment. A word that recurs exactly (256
    /// transitions within one tick while the thread held it) defeats the CAS
    /// check, as it defeats staleness checks.
    ///
    /// The CAS and the count's accesses are `SeqCst`: "the word did not
    /// change between the read and the CAS" needs the two locations in one
    /// total order. It costs nothing on x86-64 (a locked instruction is a
    /// full barrier anyway), and on any target it is paid only by
    /// transitions, never by the healthy path's loads.
    #[inline(always)]
    pub(crate) fn transition_from<D>(
        &self,
        mut current: StateWord,
        mut step: impl FnMut(StateWord) -> Step<D>,
        report: impl FnOnce(Change),
    ) -> D {
        loop {
            let Step { decision, next, reason } = step(current);
            if next == current {
                return decision;
            }
            let renews = next.epoch() != current.epoch();
            let published = if renews { self.published.load(Ordering::SeqCst) } else { 0 };
            match self.word.compare_exchange_weak(current.bits(), next.bits(), Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) if renews => {
                    let lag = current.epoch().wrapping_sub(published as u8);
                    let sequence = published + u64::from(lag) + 1;
                    self.published.fetch_max(sequence, Ordering::SeqCst);
                    report(Change { from: current, to: next, reason, sequence });
                    return decision;
                }
                Ok(_) => return decision,
                Err(actual) => current = StateWord::from_bits(actual),
            }
        }
    }
}
