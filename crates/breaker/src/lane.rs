//! The per-thread side of counting: lanes, the slots in them, and the
//! thread-local cache that finds a breaker's slot in one load.
//!
//! A *lane* is a set of counter slots that one thread at a time writes. A
//! thread takes a lane at its first count on any breaker and gives it back
//! when it exits; the next thread to need one takes it over, slots, totals and
//! all. So there are never more lanes than threads counting at once, and a
//! program that spawns threads forever reuses lanes instead of growing.
//!
//! A lane hands out a [`Slot`] the first time its thread counts on a breaker.
//! Slots are packed [`CHUNK_SLOTS`] to a chunk that belongs to the lane, on
//! cache lines of its own ([`CachePadded`]), so a thread's increments never
//! touch a line another thread writes; a (breaker, thread) pair costs one
//! 24-byte slot, not a padded line. The breaker keeps a list of its slots to
//! sum them ([`crate::counts::Tally`]); when it is dropped it clears them and
//! gives them back to their lanes, which reuse them for the next breaker.
//!
//! Chunks and lanes are leaked (`&'static`), which is what lets the
//! thread-local cache hold a plain reference with no `unsafe` and no reference
//! count: their memory is reused, never returned to the allocator, so it stays
//! at the high-water mark of (breaker, thread) pairs alive at once.
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

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crossbeam_utils::CachePadded;

use crate::counts::{Count, Counts};

/// One breaker's counters on one lane.
#[derive(Default)]
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

/// Slots per chunk: 16 slots of 24 bytes are exactly three 128-byte lines.
pub(crate) const CHUNK_SLOTS: usize = 16;

type Chunk = CachePadded<[Slot; CHUNK_SLOTS]>;

const _: () = assert!(size_of::<Slot>() == 24);

/// A lane's place for slots that dropped breakers give back. Lanes are
/// leaked: a breaker may give a slot back to a lane whose thread has exited.
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

/// What the thread holding a lane keeps, moved into the thread-local on lease
/// and back into [`IDLE`] at thread exit.
struct Held {
    lane: &'static Lane,
    /// The lane's slot for each breaker it has counted on. Entries of dropped
    /// breakers stay until their slot is reused, so this holds at most one
    /// entry per slot the lane owns.
    slots: HashMap<u64, &'static Slot, BuildHasherDefault<IdHasher>>,
    /// The unused rest of the lane's newest chunk.
    fresh: &'static [Slot],
}

impl Held {
    fn new() -> Held {
        let lane: &'static Lane = Box::leak(Box::new(Lane { freed: Mutex::new(Vec::new()) }));
        Held { lane, slots: HashMap::default(), fresh: &[] }
    }

    /// The lane's slot for `breaker`, and whether it is new (the caller must
    /// then register it with the breaker).
    fn slot(&mut self, breaker: u64) -> (&'static Slot, bool) {
        if let Some(&slot) = self.slots.get(&breaker) {
            return (slot, false);
        }
        let slot = self.reuse().unwrap_or_else(|| self.carve());
        self.slots.insert(breaker, slot);
        (slot, true)
    }

    fn reuse(&mut self) -> Option<&'static Slot> {
        let Freed { breaker, slot } = self.lane.freed.lock().unwrap_or_else(PoisonError::into_inner).pop()?;
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

/// Lanes whose threads have exited, waiting for new threads.
static IDLE: Mutex<Vec<Held>> = Mutex::new(Vec::new());

/// The lane this thread holds, if it has counted yet.
struct Holder(Option<Held>);

impl Drop for Holder {
    /// At thread exit: forget the cached slots, so that counts made later in
    /// the thread's teardown take the shared path, and hand the lane on.
    fn drop(&mut self) {
        if let Some(held) = self.0.take() {
            CACHE.with(|cache| cache.iter().for_each(|entry| entry.set(Entry::EMPTY)));
            IDLE.lock().unwrap_or_else(PoisonError::into_inner).push(held);
        }
    }
}

/// Entries in the thread-local cache: a power of two.
pub(crate) const CACHE_LEN: usize = 64;

/// A cached (breaker, slot) pair; `breaker` 0 is no breaker.
#[derive(Clone, Copy)]
struct Entry {
    breaker: u64,
    slot: &'static Slot,
}

/// What empty cache entries point to; never written, as no breaker has id 0.
static NO_SLOT: Slot = Slot::new();

impl Entry {
    const EMPTY: Entry = Entry { breaker: 0, slot: &NO_SLOT };
}

thread_local! {
    // Const-initialised with no destructor: reading it is a plain TLS load,
    // and it stays readable while other thread-locals are torn down.
    static CACHE: [Cell<Entry>; CACHE_LEN] = const { [const { Cell::new(Entry::EMPTY) }; CACHE_LEN] };
    // Its destructor hands the lane on when the thread exits.
    static HOLDER: RefCell<Holder> = const { RefCell::new(Holder(None)) };
}

/// The cache entry for a breaker at `position` (its address in units of its
/// size, see [`Tally`](crate::counts::Tally)): breakers side by side (in an
/// array, a slab) take consecutive entries, 64 of them before two share one,
/// and breakers in separate allocations (`Arc`s) spread over them. An
/// address costs no load to hash, unlike the breaker's id.
#[inline(always)]
fn entry_index(position: usize) -> usize {
    position & (CACHE_LEN - 1)
}

/// This thread's slot for breaker `breaker`, at `position`, if the
/// thread-local cache has it: every count but the first after a cache
/// collision, a thread's first count on the breaker, or thread teardown.
#[inline(always)]
pub(crate) fn cached(breaker: u64, position: usize) -> Option<&'static Slot> {
    let entry = CACHE.with(|cache| cache[entry_index(position)].get());
    (entry.breaker == breaker).then_some(entry.slot)
}

/// This thread's slot for `breaker` (at `position`), taking a
/// lane and a slot if need be, and caching it; `register` is called with a
/// slot new to the breaker. `None` when the thread cannot hold a lane: it is
/// tearing down its thread-locals, or this is a count made from inside the
/// lane bookkeeping itself (an allocator that counts on a breaker).
#[cold]
#[inline(never)]
pub(crate) fn slot(
    breaker: u64,
    position: usize,
    register: impl FnOnce(&'static Lane, &'static Slot),
) -> Option<&'static Slot> {
    let (lane, slot, new) = HOLDER
        .try_with(|holder| {
            let mut holder = holder.try_borrow_mut().ok()?;
            let held = holder.0.get_or_insert_with(|| {
                IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_else(Held::new)
            });
            let (slot, new) = held.slot(breaker);
            Some((held.lane, slot, new))
        })
        .ok()??;
    if new {
        register(lane, slot);
    }
    CACHE.with(|cache| cache[entry_index(position)].set(Entry { breaker, slot }));
    Some(slot)
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

/// Runs `f` while this thread's lane bookkeeping is borrowed, as it is when
/// an allocation inside it calls back into a breaker.
#[cfg(test)]
pub(crate) fn with_lane_busy<R>(f: impl FnOnce() -> R) -> R {
    HOLDER.with(|holder| {
        let _busy = holder.borrow_mut();
        f()
    })
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_lane_carves_its_slots_side_by_side() {
        let mut held = Held::new();
        let first = core::ptr::from_ref(held.carve()) as usize;
        let second = core::ptr::from_ref(held.carve()) as usize;
        assert_eq!(second - first, size_of::<Slot>(), "packed in one chunk, not allocated one by one");
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
