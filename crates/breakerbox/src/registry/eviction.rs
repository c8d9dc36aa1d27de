//! Eviction: the [`Roster`] of registered breakers, the hand that walks it
//! to make room for a new key at capacity, and the idle sweep.
//!
//! # The hand
//!
//! At capacity, a new key needs one breaker evicted. The hand is CLOCK
//! (second chance) over the roster: it reads the breaker under it; a
//! breaker whose calls and rejections changed since the hand last passed
//! was used meanwhile and is passed over (the change noted in the roster,
//! not in the breaker: a call writes nothing for it); a breaker at rest,
//! unheld and unused since the hand last passed is evicted, and the new key
//! takes its place.
//!
//! A search gives at most [`SECOND_CHANCES`] second chances (fewer in a
//! smaller registry: one lap's worth): after that, any breaker at rest and
//! unheld will do. So a new key at capacity reads a bounded number of
//! breakers while one at rest is near the hand, however large the registry
//! and however busy its breakers: where every breaker is used between two
//! passes of the hand (a working set larger than the capacity), plain CLOCK
//! would read a whole lap per eviction. A lap with second chances off and
//! no eviction means no breaker is at rest: the new key is refused with
//! `Full`, and the refusal stands for a while (`Refusal`). The hand holds
//! the writer lock for at most [`STRETCH`] breakers at a time and lets other
//! writers in between, so no writer waits for a lap of a large registry.
//!
//! Only the idle sweep ([`Registry::evict_idle`]) writes the idle
//! bookkeeping of [`Rest`](super::Rest); the hand keeps its own in the
//! roster, so the two do not blur each other's view of when a breaker was
//! last used.

use core::hash::{BuildHasher, Hash};
use std::sync::Arc;

use breakerbox_core::quanta;

use super::{Entry, Registry};
use crate::Breaker;

/// How many breakers the hand or the idle sweep reads in one hold of the
/// writer lock.
pub(super) const STRETCH: usize = 64;

/// How many recently used breakers one search passes over, at most, before
/// it takes any breaker at rest.
pub(super) const SECOND_CHANCES: usize = 8;

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
        self.slots.push(Slot { key, entry, seen: 0 });
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
    read: usize,
}

impl Search {
    pub(super) fn new(started: quanta::Instant) -> Search {
        Search { started, read: 0 }
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
            let lap = roster.len();
            let chances = lap.min(SECOND_CHANCES);
            if lap == 0 || search.read >= chances + lap {
                self.refusal.remember(search.started);
                return Room::Full;
            }
            let second_chances = search.read < chances;
            search.read += 1;
            if roster.hand >= lap {
                roster.hand = 0;
            }
            if self.read_under_hand(roster, second_chances) && self.len() < capacity {
                return Room::Made;
            }
        }
        Room::NotYet
    }

    /// Reads the breaker under the hand, and evicts it if it is at rest,
    /// unheld and (with `second_chances`) unused since the hand last
    /// passed; the hand moves on unless the slot now holds another breaker.
    fn read_under_hand(&self, roster: &mut Roster<K>, second_chances: bool) -> bool {
        let slot = &mut roster.slots[roster.hand];
        let activity = slot.entry.0.activity();
        let used = activity != slot.seen;
        slot.seen = activity;
        if !(used && second_chances) && self.evict(roster, roster.hand, activity) {
            return true;
        }
        roster.hand += 1;
        false
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
