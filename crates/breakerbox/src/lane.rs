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
//! A breaker with a failure-rate rule also gets a window [`Ring`] on the
//! lane of each thread that reports to it (184 bytes, four to a chunk),
//! handed out, listed by the breaker ([`crate::rules::Rules`]) and given
//! back the same way.
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
//! through [`IDLE`] when a thread exits, a freed slot or ring through its
//! lane's `freed` or `freed_rings` list when a breaker is dropped. Rings
//! have their own orderings (see [`breakerbox_core::__private::RateWindow`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use breakerbox_core::__private::Ring;
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

    pub(crate) fn clear(&self) {
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

/// Rings per chunk: 4 rings of 184 bytes, in six 128-byte lines.
const CHUNK_RINGS: usize = 4;

const _: () = assert!(size_of::<Slot>() == 24);

/// What a lane hands out one per breaker: counter slots, and the window
/// rings of breakers with a failure-rate rule.
pub(crate) trait Pooled: Sync + Sized + 'static {
    /// A new chunk of them, leaked, on cache lines of its own.
    fn chunk() -> &'static [Self];
    /// Zeroes one that a dropped breaker gave back.
    fn reset(&self);
}

/// `N` new items on cache lines of their own, leaked.
fn leaked_chunk<T: Sync + 'static, const N: usize>(make: impl Fn() -> T) -> &'static [T] {
    let chunk: &'static CachePadded<[T; N]> = Box::leak(Box::new(CachePadded::new(std::array::from_fn(|_| make()))));
    &**chunk
}

impl Pooled for Slot {
    fn chunk() -> &'static [Slot] {
        leaked_chunk::<_, CHUNK_SLOTS>(Slot::new)
    }

    fn reset(&self) {
        self.clear();
    }
}

impl Pooled for Ring {
    fn chunk() -> &'static [Ring] {
        leaked_chunk::<_, CHUNK_RINGS>(Ring::new)
    }

    fn reset(&self) {
        self.clear();
    }
}

/// The part of a lane that breakers reach: where a dropped breaker gives its
/// slots and rings back. Leaked, since a breaker may give one back to a lane
/// whose thread has exited.
pub(crate) struct Lane {
    freed: Mutex<Vec<Freed<Slot>>>,
    freed_rings: Mutex<Vec<Freed<Ring>>>,
}

/// A slot or ring a dropped breaker gave back, cleared, with that breaker's
/// id so the lane can forget the old mapping when it reuses it.
struct Freed<T: 'static> {
    breaker: u64,
    item: &'static T,
}

impl Lane {
    /// Takes back `slot`, which counted for `breaker` (now being dropped)
    /// on this lane, for reuse by the lane's thread.
    pub(crate) fn give_back(&self, breaker: u64, slot: &'static Slot) {
        give_back(&self.freed, breaker, slot);
    }

    /// [`give_back`](Self::give_back) for a window ring.
    pub(crate) fn give_back_ring(&self, breaker: u64, ring: &'static Ring) {
        give_back(&self.freed_rings, breaker, ring);
    }
}

fn give_back<T: Pooled>(freed: &Mutex<Vec<Freed<T>>>, breaker: u64, item: &'static T) {
    item.reset();
    freed.lock().unwrap_or_else(PoisonError::into_inner).push(Freed { breaker, item });
}

/// One kind of item a lane hands out: its map of breakers to items and the
/// unused rest of its newest chunk. Only the thread holding the lane
/// touches it.
struct Pool<T: 'static> {
    /// The lane's item for each breaker it has counted on. Entries of
    /// dropped breakers stay until their item is reused, so this holds at
    /// most one entry per item the lane owns.
    map: HashMap<u64, &'static T, BuildHasherDefault<IdHasher>>,
    fresh: &'static [T],
}

impl<T: Pooled> Pool<T> {
    fn new() -> Pool<T> {
        Pool { map: HashMap::default(), fresh: &[] }
    }

    /// The item for `breaker`, and whether it is new to it.
    fn get(&mut self, breaker: u64, freed: &Mutex<Vec<Freed<T>>>) -> (&'static T, bool) {
        if let Some(&item) = self.map.get(&breaker) {
            return (item, false);
        }
        let item = self.reuse(freed).unwrap_or_else(|| self.carve());
        self.map.insert(breaker, item);
        (item, true)
    }

    fn reuse(&mut self, freed: &Mutex<Vec<Freed<T>>>) -> Option<&'static T> {
        // `try_lock`: a breaker being dropped on this very thread may hold the
        // lock (if its push allocates and the allocator counts on a breaker);
        // a fresh item is as good as a freed one.
        let mut freed = match freed.try_lock() {
            Ok(freed) => freed,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let Freed { breaker, item } = freed.pop()?;
        drop(freed);
        self.map.remove(&breaker);
        Some(item)
    }

    fn carve(&mut self) -> &'static T {
        if self.fresh.is_empty() {
            self.fresh = T::chunk();
        }
        let (item, rest) = self.fresh.split_first().expect("a chunk is never empty");
        self.fresh = rest;
        item
    }
}

/// A lane with what only the thread holding it touches. Moved into the
/// holding thread's thread-local, and back into [`IDLE`] when that thread
/// exits.
pub(crate) struct OwnedLane {
    lane: &'static Lane,
    slots: Pool<Slot>,
    rings: Pool<Ring>,
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
        let lane: &'static Lane =
            Box::leak(Box::new(Lane { freed: Mutex::new(Vec::new()), freed_rings: Mutex::new(Vec::new()) }));
        OwnedLane { lane, slots: Pool::new(), rings: Pool::new() }
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
        self.slots.get(breaker, &self.lane.freed)
    }

    /// The lane's window ring for `breaker`, and whether it is new (the
    /// caller must then register it with the breaker's window).
    pub(crate) fn ring(&mut self, breaker: u64) -> (&'static Ring, bool) {
        self.rings.get(breaker, &self.lane.freed_rings)
    }

    #[cfg(test)]
    fn carve(&mut self) -> &'static Slot {
        self.slots.carve()
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
pub(crate) mod tests {
    use std::hash::BuildHasher;

    use super::*;

    /// A lane of its own, for tests that need one to register with.
    pub(crate) fn lane() -> &'static Lane {
        OwnedLane::new().lane
    }

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
        assert!(!owned.slots.map.contains_key(&7), "and the dropped breaker's entry is gone");
    }

    #[test]
    fn rings_are_carved_side_by_side_kept_per_breaker_and_reused_cleared() {
        let mut owned = OwnedLane::new();
        let (ring, new) = owned.ring(7);
        assert!(new);
        let (again, new) = owned.ring(7);
        assert!(!new && core::ptr::eq(again, ring), "the same breaker finds the same ring");
        let (next, _) = owned.ring(8);
        let apart = core::ptr::from_ref(next) as usize - core::ptr::from_ref(ring) as usize;
        assert_eq!(apart, size_of::<Ring>(), "packed in one chunk, not allocated one by one");
        // A ring with counts, given back when its breaker is dropped.
        let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
        let core = breakerbox_core::CoreBreaker::with_clock(crate::Config::default(), clock).unwrap();
        let ticket = core.acquire().unwrap();
        let rate = breakerbox_core::FailureRate::new(0.5, 1, std::time::Duration::from_secs(1));
        let rule = breakerbox_core::__private::RateRule::new(&rate).unwrap();
        let window = breakerbox_core::__private::RateWindow::new(rule);
        let now = breakerbox_core::Timestamp::ZERO;
        assert!(window.add(ring, ticket, now, true).is_some());
        assert_eq!(window.counts(ticket, now, [ring]).calls, 1);
        owned.lane().give_back_ring(7, ring);
        assert_eq!(window.counts(ticket, now, [ring]).calls, 0, "cleared when given back");
        let (reused, new) = owned.ring(9);
        assert!(new && core::ptr::eq(reused, ring), "the freed ring goes to the next breaker");
        assert!(!owned.rings.map.contains_key(&7), "and the dropped breaker's entry is gone");
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
