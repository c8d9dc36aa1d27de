//! Eviction: the [`Roster`] of registered breakers, the hand that walks it
//! to make room for a new key at capacity, and the idle sweep.
//!
//! # The hand
//!
//! At capacity, a new key needs one breaker evicted. The hand is CLOCK with
//! credits (GCLOCK) over the roster: it reads the breaker under it, and
//! credits it for the calls and rejections made since the hand last passed
//! (one credit for one call, two for two or more, at most [`MAX_CREDIT`];
//! the change is noted in the roster, not in the breaker: a call writes
//! nothing for it). A breaker with no credit, at rest and unheld is evicted
//! and the new key takes its place; one with credit is passed over and
//! spends one. So a breaker used once survives one pass unused (CLOCK's
//! second chance), and a busier one two: a burst of new keys, during which
//! callers wait for the writer lock and call nothing, takes two laps of
//! the hand before it reaches a busy breaker. More credit keeps keys whose
//! use has stopped for more laps, which costs keys still in use their
//! place (the soak's figures for 2, 4 and 8 are in `BENCHMARKS.md`). Every credit spent was
//! earned by a call, so the hand's reads are at most the evictions plus the
//! calls: O(1) per call, amortised.
//!
//! A lap of the roster without an eviction (every breaker at rest still had
//! credit, as when the registry first fills) does not go round again: at
//! its end it evicts the breaker at rest and unheld with the least credit
//! left and, of those, the least use since the hand's previous pass (the
//! first of those tied), if it still is at rest and unheld. A
//! second lap does the same; two laps without an eviction mean no breaker
//! was found at rest and unheld: the new key is refused with `Full`, and
//! the refusal stands for a while (`Refusal`). The hand holds the writer
//! lock for at most [`STRETCH`] breakers at a time and lets other writers
//! in between, so no writer waits for a lap of a large registry.
//!
//! Only the idle sweep ([`Registry::evict_idle`]) writes the idle
//! bookkeeping of [`Rest`](super::Rest); the hand keeps its own in the
//! roster, so the two do not blur each other's view of when a breaker was
//! last used.

use core::hash::{BuildHasher, Hash};
use std::sync::{Arc, Weak};

use breakerbox_core::quanta;

use super::{Entry, Registry};
use crate::Breaker;

/// How many breakers the hand or the idle sweep reads in one hold of the
/// writer lock.
pub(super) const STRETCH: usize = 64;

/// The most credit a breaker holds: passes of the hand it survives unused.
pub(super) const MAX_CREDIT: u8 = 2;

/// The credit earned by `used` calls and rejections since the hand last
/// passed: 0 for none, then one more per doubling (1 for 1, 2 for 2 or 3,
/// 3 for 4 to 7, ...), at most [`MAX_CREDIT`].
fn credit_for(used: u64) -> u8 {
    match used {
        0 => 0,
        used => u8::try_from(used.ilog2() + 1).unwrap_or(MAX_CREDIT).min(MAX_CREDIT),
    }
}

/// Every registered breaker, with its key, in the order the hand visits
/// them; owned by the writer lock. A breaker is in the roster exactly when
/// it is in the map, and knows its place in it ([`Rest::slot`](super::Rest::slot)).
pub(super) struct Roster<K> {
    slots: Vec<Slot<K>>,
    /// The next slot the hand reads.
    hand: usize,
}

struct Slot<K> {
    key: K,
    entry: Entry,
    /// The breaker's calls and rejections when the hand last passed.
    seen: u64,
    /// Passes of the hand it survives unused.
    credit: u8,
}

impl<K> Default for Roster<K> {
    fn default() -> Self {
        Roster { slots: Vec::new(), hand: 0 }
    }
}

impl<K> Roster<K> {
    /// Adds a breaker just registered under `key`.
    pub(super) fn push(&mut self, key: K, entry: Entry) {
        entry.0.rest().move_to(self.slots.len());
        self.slots.push(Slot { key, entry, seen: 0, credit: 0 });
    }

    /// Removes `breaker`, unregistered from the map.
    pub(super) fn remove(&mut self, breaker: &Breaker) {
        let slot = breaker.rest().slot();
        debug_assert!(core::ptr::eq(Arc::as_ptr(&self.slots[slot].entry.0), breaker));
        self.slots.swap_remove(slot);
        if let Some(moved) = self.slots.get(slot) {
            moved.entry.0.rest().move_to(slot);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }
}

/// How far a new key's search for room has gone, across holds of the
/// writer lock.
pub(super) struct Search {
    started: quanta::Instant,
    /// Breakers read so far.
    read: usize,
    /// Laps begun.
    laps: u8,
    /// The value of `read` at which the current lap ends.
    lap_end: usize,
    /// In the current lap: the breaker at rest and unheld with the least
    /// credit left and, of those, the least use, with those two.
    least_used: Option<((u8, u64), Weak<Breaker>)>,
}

impl Search {
    pub(super) fn new(started: quanta::Instant) -> Search {
        Search { started, read: 0, laps: 0, lap_end: 0, least_used: None }
    }

    /// How many breakers the search has read.
    #[cfg(test)]
    pub(super) fn read(&self) -> usize {
        self.read
    }
}

/// What a stretch of the hand's search found.
pub(super) enum Room {
    /// The registry is below capacity: register the new key.
    Made,
    /// Nothing to evict: refuse the new key.
    Full,
    /// The stretch ended without room; release the lock and go on.
    NotYet,
}

impl<K, S> Registry<K, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Evicts until the registry is below `capacity`, reading at most
    /// [`STRETCH`] breakers (under the writer lock). A refusal in force
    /// refuses without a search: callers that waited for the lock behind a
    /// search that found nothing share its answer.
    pub(super) fn make_room(&self, roster: &mut Roster<K>, capacity: usize, search: &mut Search) -> Room {
        if self.len() < capacity {
            return Room::Made;
        }
        if self.refusal.active() {
            return Room::Full;
        }
        for _ in 0..STRETCH {
            if search.read >= search.lap_end {
                if let Some((_, least_used)) = search.least_used.take() {
                    if self.evict_least_used(roster, &least_used) && self.len() < capacity {
                        return Room::Made;
                    }
                }
                if search.laps == 2 || roster.len() == 0 {
                    self.refusal.remember(search.started);
                    return Room::Full;
                }
                search.laps += 1;
                search.lap_end = search.read + roster.len();
            }
            search.read += 1;
            if roster.hand >= roster.len() {
                roster.hand = 0;
            }
            if self.read_under_hand(roster, &mut search.least_used) && self.len() < capacity {
                return Room::Made;
            }
        }
        Room::NotYet
    }

    /// Reads the breaker under the hand and credits its use; evicts it if
    /// it has no credit, is at rest and unheld, or else spends a credit; one
    /// at rest and unheld may become the search's `least_used`. The hand
    /// moves on unless the slot now holds another breaker.
    fn read_under_hand(&self, roster: &mut Roster<K>, least_used: &mut Option<((u8, u64), Weak<Breaker>)>) -> bool {
        let slot = &mut roster.slots[roster.hand];
        let activity = slot.entry.0.activity();
        let used = activity.wrapping_sub(slot.seen);
        slot.credit = slot.credit.saturating_add(credit_for(used)).min(MAX_CREDIT);
        slot.seen = activity;
        if slot.credit == 0 {
            if self.evict(roster, roster.hand, activity) {
                return true;
            }
        } else {
            slot.credit -= 1;
            let (rank, breaker) = ((slot.credit, used), &slot.entry.0);
            if least_used.as_ref().is_none_or(|&(least, _)| rank < least)
                && breaker.at_rest(breaker.now())
                && !breaker.rest().held_outside(Arc::strong_count(breaker))
            {
                *least_used = Some((rank, Arc::downgrade(breaker)));
            }
        }
        roster.hand += 1;
        false
    }

    /// Evicts the lap's breaker with the least credit, if it is still
    /// registered, at rest and unheld (used since or not).
    fn evict_least_used(&self, roster: &mut Roster<K>, least_used: &Weak<Breaker>) -> bool {
        let Some(breaker) = least_used.upgrade() else { return false };
        let slot = breaker.rest().slot();
        let registered = roster.slots.get(slot).is_some_and(|held| Arc::ptr_eq(&held.entry.0, &breaker));
        let activity = breaker.activity();
        // The eviction counts the breaker's holders: this one goes first.
        drop(breaker);
        registered && self.evict(roster, slot, activity)
    }

    /// Evicts every breaker at rest idle for `idle_after` ms, holding the
    /// writer lock for [`STRETCH`] breakers at a time, and returns how many.
    /// Walks the roster from its end, so that an eviction, which moves the
    /// last breaker into the freed slot, moves one already read.
    pub(super) fn sweep_idle(&self, idle_after: u64) -> usize {
        let mut evicted = 0;
        let mut end = usize::MAX;
        loop {
            let mut roster = self.lock();
            end = end.min(roster.len());
            let start = end.saturating_sub(STRETCH);
            for slot in (start..end).rev() {
                let breaker = &roster.slots[slot].entry.0;
                let (now, activity) = (breaker.now(), breaker.activity());
                let idle = breaker.rest().idle_for(activity, now.as_millis());
                if idle >= idle_after && breaker.at_rest(now) && self.evict(&mut roster, slot, activity) {
                    evicted += 1;
                }
            }
            if start == 0 {
                return evicted;
            }
            end = start;
        }
    }

    /// Evicts the breaker in `slot` if it is still at rest, unheld and at
    /// `activity`, its calls and rejections when it was read (under the
    /// writer lock).
    pub(super) fn evict(&self, roster: &mut Roster<K>, slot: usize, activity: u64) -> bool {
        let Slot { key, entry, .. } = &roster.slots[slot];
        let breaker = &entry.0;
        let rest = breaker.rest();
        rest.mark_evicting();
        let still = !rest.held_outside(Arc::strong_count(breaker))
            && breaker.at_rest(breaker.now())
            && breaker.activity() == activity;
        if still && self.map.remove_if_sync(key, |entry| Arc::ptr_eq(&entry.0, breaker)) {
            // The mark stays: a call racing the eviction must find it.
            self.len.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
            let breaker = Arc::clone(breaker);
            roster.remove(&breaker);
            return true;
        }
        rest.clear();
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_grows_by_one_per_doubling_of_use() {
        let credits: Vec<u8> = [0, 1, 2, 3, 4, 7, 8, 255, 256, u64::MAX].into_iter().map(credit_for).collect();
        assert_eq!(credits, [0, 1, 2, 2, 2, 2, 2, 2, 2, 2]);
    }
}
