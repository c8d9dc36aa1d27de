//! Lanes and the counter slots in them: the per-thread side of counting.
//!
//! A *lane* is a set of counter slots that one thread at a time writes. A
//! thread takes a lane at its first count on any breaker and gives it back
//! when it exits ([`crate::local`] does both); the next thread to need one
//! takes it over, slots, totals and all. So there are never more lanes than
//! threads counting at once, and a program that spawns threads forever
//! reuses lanes instead of growing.
//!
//! A lane hands out a [`Slot`] the first time its thread counts on a breaker.
//! Slots are packed [`CHUNK_SLOTS`] to a chunk that belongs to the lane, on
//! cache lines of its own ([`CachePadded`]), so a thread's increments never
//! touch a line another thread writes; a (breaker, thread) pair costs one
//! 24-byte slot, not a padded line. The breaker keeps a list of its slots to
//! sum them ([`crate::counts::Tally`]); when it is dropped it clears them and
//! gives them back to their lanes, which reuse them for the next breakers
//! their threads count on.
//!
//! Chunks and lanes are leaked (`&'static`), which is what lets the
//! thread-local cache hold a plain reference with no `unsafe` and no
//! reference count. Their memory is reused, never returned to the allocator:
//! a lane keeps as many slots as it ever had breakers counting on it at once
//! (rounded up to whole chunks), and its map of breakers, like a breaker's
//! list of slots, keeps the capacity it grew to.
//!
//! # Orderings
//!
//! A slot's counters are atomics written only by the thread holding its lane,
//! with a plain load and store (`Relaxed`); readers (`counts()`) load them
//! `Relaxed` and see each counter's latest value or an earlier one. Every
//! hand-over of a slot goes through a mutex, whose release and acquire order
//! the old writer's last store before the new writer's first load: a lane
//! through [`IDLE`] when a thread exits, a freed slot through its lane's
//! `freed` list when a breaker is dropped.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crossbeam_utils::CachePadded;

use crate::counts::{Count, Counts};

/// One breaker's counters on one lane.
pub(crate) struct Slot {
    successes: AtomicU64,
    failures: AtomicU64,
    rejections: AtomicU64,
}

impl Slot {
    pub(crate) const fn new() -> Slot {
        Slot { successes: AtomicU64::new(0), failures: AtomicU64::new(0), rejections: AtomicU64::new(0) }
    }

    #[inline(always)]
    pub(crate) fn counter(&self, count: Count) -> &AtomicU64 {
        match count {
            Count::Success => &self.successes,
            Count::Failure => &self.failures,
            Count::Rejection => &self.rejections,
        }
    }

    pub(crate) fn add_to(&self, total: &mut Counts) {
        total.successes += self.successes.load(Ordering::Relaxed);
        total.failures += self.failures.load(Ordering::Relaxed);
        total.rejections += self.rejections.load(Ordering::Relaxed);
    }

    fn clear(&self) {
        self.successes.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.rejections.store(0, Ordering::Relaxed);
    }
}

/// Adds one to a counter only this thread writes: a plain load and store, no
/// locked read-modify-write.
#[inline(always)]
pub(crate) fn increment(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Slots per chunk: 16 slots of 24 bytes fill three 128-byte lines.
const CHUNK_SLOTS: usize = 16;

type Chunk = CachePadded<[Slot; CHUNK_SLOTS]>;

const _: () = assert!(size_of::<Slot>() == 24);

/// The part of a lane that breakers reach: where a dropped breaker gives its
/// slots back. Leaked, since a breaker may give a slot back to a lane whose
/// thread has exited.
pub(crate) struct Lane {
    freed: Mutex<Vec<Freed>>,
}

/// A slot a dropped breaker gave back, cleared, with that breaker's id so the
/// lane can forget the old mapping when it reuses the slot.
struct Freed {
    breaker: u64,
    slot: &'static Slot,
}

impl Lane {
    /// Takes back `slot`, which counted for `breaker` (now being dropped)
    /// on this lane, for reuse by the lane's thread.
    pub(crate) fn give_back(&self, breaker: u64, slot: &'static Slot) {
        slot.clear();
        self.freed.lock().unwrap_or_else(PoisonError::into_inner).push(Freed { breaker, slot });
    }
}

/// A lane with what only the thread holding it touches: its map of breakers
/// to slots and the unused rest of its newest chunk. Moved into the holding
/// thread's thread-local, and back into [`IDLE`] when that thread exits.
pub(crate) struct OwnedLane {
    lane: &'static Lane,
    /// The lane's slot for each breaker it has counted on. Entries of dropped
    /// breakers stay until their slot is reused, so this holds at most one
    /// entry per slot the lane owns.
    slots: HashMap<u64, &'static Slot, BuildHasherDefault<IdHasher>>,
    fresh: &'static [Slot],
}

/// Lanes whose threads have exited, waiting for new threads.
static IDLE: Mutex<Vec<OwnedLane>> = Mutex::new(Vec::new());

impl OwnedLane {
    /// An idle lane, or a new one if none is idle.
    pub(crate) fn take() -> OwnedLane {
        let idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop();
        idle.unwrap_or_else(OwnedLane::new)
    }

    fn new() -> OwnedLane {
        let lane: &'static Lane = Box::leak(Box::new(Lane { freed: Mutex::new(Vec::new()) }));
        OwnedLane { lane, slots: HashMap::default(), fresh: &[] }
    }

    /// Hands the lane to the next thread that needs one.
    pub(crate) fn retire(self) {
        IDLE.lock().unwrap_or_else(PoisonError::into_inner).push(self);
    }

    pub(crate) fn lane(&self) -> &'static Lane {
        self.lane
    }

    /// The lane's slot for `breaker`, and whether it is new (the caller must
    /// then register it with the breaker).
    pub(crate) fn slot(&mut self, breaker: u64) -> (&'static Slot, bool) {
        if let Some(&slot) = self.slots.get(&breaker) {
            return (slot, false);
        }
        let slot = self.reuse().unwrap_or_else(|| self.carve());
        self.slots.insert(breaker, slot);
        (slot, true)
    }

    fn reuse(&mut self) -> Option<&'static Slot> {
        // `try_lock`: a breaker being dropped on this very thread may hold the
        // lock (if its push allocates and the allocator counts on a breaker);
        // a fresh slot is as good as a freed one.
        let mut freed = match self.lane.freed.try_lock() {
            Ok(freed) => freed,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let Freed { breaker, slot } = freed.pop()?;
        drop(freed);
        self.slots.remove(&breaker);
        Some(slot)
    }

    fn carve(&mut self) -> &'static Slot {
        if let [slot, rest @ ..] = self.fresh {
            self.fresh = rest;
            return slot;
        }
        let chunk: &'static Chunk = Box::leak(Box::new(CachePadded::new(std::array::from_fn(|_| Slot::new()))));
        let [slot, rest @ ..] = &**chunk;
        self.fresh = rest;
        slot
    }
}

/// Breaker ids are consecutive integers: a multiply spreads them over the
/// table's buckets (whose index is the hash's low bits and whose tag is its
/// top seven), and nothing outside the crate picks them, so there is no
/// flooding to defend against.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Never called: the map's keys are `u64` ids, hashed by `write_u64`.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_lane_carves_its_slots_side_by_side() {
        let mut owned = OwnedLane::new();
        let first = core::ptr::from_ref(owned.carve()) as usize;
        let second = core::ptr::from_ref(owned.carve()) as usize;
        assert_eq!(second - first, size_of::<Slot>(), "packed in one chunk, not allocated one by one");
    }

    #[test]
    fn a_freed_slot_is_reused_unless_its_list_is_busy() {
        let mut owned = OwnedLane::new();
        let (slot, new) = owned.slot(7);
        assert!(new);
        let (again, new) = owned.slot(7);
        assert!(!new && core::ptr::eq(again, slot), "the same breaker finds the same slot");
        owned.lane().give_back(7, slot);
        {
            let _busy = owned.lane.freed.lock().unwrap();
            let (other, new) = owned.slot(8);
            assert!(new && !core::ptr::eq(other, slot), "a locked list is skipped, not waited on");
        }
        let (reused, new) = owned.slot(9);
        assert!(new && core::ptr::eq(reused, slot), "the freed slot goes to the next breaker");
        assert!(!owned.slots.contains_key(&7), "and the dropped breaker's entry is gone");
    }

    #[test]
    fn consecutive_ids_hash_apart_in_both_the_index_and_the_tag() {
        let hasher = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=128u64).map(|id| hasher.hash_one(id)).collect();
        let mut indices: Vec<u64> = hashes.iter().map(|hash| hash & 127).collect();
        indices.sort_unstable();
        indices.dedup();
        assert_eq!(indices.len(), 128, "the low bits tell 128 consecutive ids apart");
        let mut tags: Vec<u64> = hashes.iter().map(|hash| hash >> 57).collect();
        tags.sort_unstable();
        tags.dedup();
        assert!(tags.len() >= 64, "only {} distinct tags for 128 ids", tags.len());
    }
}
