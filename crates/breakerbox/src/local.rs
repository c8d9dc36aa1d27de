//! This thread's lane and the thread-local cache that finds a breaker's slot
//! on it with one load.
//!
//! The cache is a table of [`CACHE_LEN`] (breaker id, slot) entries indexed by
//! the breaker's position (its address in units of its size, see
//! [`Tally`](crate::counts::Tally)) and checked against the breaker's id:
//! addresses are reused by later breakers, ids never are, so an entry left by
//! a dropped breaker never matches again. A miss looks in the lane's map, and
//! a thread's first count on a breaker takes a slot from its lane (and the
//! lane itself at the thread's first count on any breaker).

use std::cell::{Cell, RefCell};

use breakerbox_core::__private::Ring;

use crate::lane::{Lane, OwnedLane, Slot};

/// The lane this thread holds, if it has counted yet.
struct Holder(Option<OwnedLane>);

impl Drop for Holder {
    /// At thread exit: forget the cached slots, so that counts made later in
    /// the thread's teardown take the shared path, and hand the lane on.
    fn drop(&mut self) {
        if let Some(lane) = self.0.take() {
            let _ = CACHE.try_with(|cache| cache.iter().for_each(|entry| entry.set(Entry::EMPTY)));
            let _ = WATCHED.try_with(|cache| cache.iter().for_each(|entry| entry.set(WatchedEntry::EMPTY)));
            lane.retire();
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

/// A cached (breaker, slot, ring) triple of a breaker with a
/// [`Rules`](crate::rules::Rules); `breaker` 0 is no breaker.
#[derive(Clone, Copy)]
struct WatchedEntry {
    breaker: u64,
    slot: &'static Slot,
    ring: &'static Ring,
}

/// The ring of a watched breaker without a failure-rate rule, and of empty
/// entries; never written.
static NO_RING: Ring = Ring::new();

impl WatchedEntry {
    const EMPTY: WatchedEntry = WatchedEntry { breaker: 0, slot: &NO_SLOT, ring: &NO_RING };
}

thread_local! {
    // Const-initialised with no destructor: reading it is a plain TLS load,
    // and it stays readable while other thread-locals are torn down.
    static CACHE: [Cell<Entry>; CACHE_LEN] = const { [const { Cell::new(Entry::EMPTY) }; CACHE_LEN] };
    // The same for breakers with rules, which never have an entry above.
    static WATCHED: [Cell<WatchedEntry>; CACHE_LEN] =
        const { [const { Cell::new(WatchedEntry::EMPTY) }; CACHE_LEN] };
    // Its destructor hands the lane on when the thread exits.
    static HOLDER: RefCell<Holder> = const { RefCell::new(Holder(None)) };
}

/// The cache entry for a breaker at `position`. Breakers side by side in
/// an array or a slab take consecutive entries, 64 of them before two share
/// one (fewer when something else sits between them); breakers in separate
/// allocations (`Arc`s) spread over them. An address costs no load to hash,
/// unlike the breaker's id. Two breakers on one entry, called in turn by one
/// thread, send each other's counts to the cold path (a map lookup) every
/// time.
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

/// This thread's slot for `breaker` (at `position`), taking a lane and a
/// slot if need be, and caching it; `register` is called with a slot new to
/// the breaker. `None` when the thread cannot use its lane: it is tearing
/// down its thread-locals, or the lane's bookkeeping is already borrowed
/// further up this thread's stack (a count made from inside it).
/// A breaker with rules is never cached (`cache` false): its counts must
/// take the watched path.
#[cold]
#[inline(never)]
pub(crate) fn slot(
    breaker: u64,
    position: usize,
    cache: bool,
    register: impl FnOnce(&'static Lane, &'static Slot),
) -> Option<&'static Slot> {
    let (lane, slot, new) = with_lane(|owned| owned.slot(breaker))?;
    if new {
        register(lane, slot);
    }
    if cache {
        CACHE.with(|cache| cache[entry_index(position)].set(Entry { breaker, slot }));
    }
    Some(slot)
}

/// Runs `f` on this thread's lane, taking one if need be; `None` when the
/// thread cannot use its lane (see [`slot`]).
fn with_lane<T: 'static>(
    f: impl FnOnce(&mut OwnedLane) -> (&'static T, bool),
) -> Option<(&'static Lane, &'static T, bool)> {
    HOLDER
        .try_with(|holder| {
            let mut holder = holder.try_borrow_mut().ok()?;
            let owned = holder.0.get_or_insert_with(OwnedLane::take);
            let (item, new) = f(owned);
            Some((owned.lane(), item, new))
        })
        .ok()?
}

/// This thread's slot and ring for watched breaker `breaker` (at
/// `position`), if the watched cache has them.
#[inline(always)]
pub(crate) fn cached_watched(breaker: u64, position: usize) -> Option<(&'static Slot, &'static Ring)> {
    let entry = WATCHED.with(|cache| cache[entry_index(position)].get());
    (entry.breaker == breaker).then_some((entry.slot, entry.ring))
}

/// [`slot`] for a watched breaker: its slot and, if `with_ring`, its window
/// ring (otherwise a ring nothing counts in), each registered by its
/// callback when new, and cached together.
#[cold]
#[inline(never)]
pub(crate) fn watched(
    breaker: u64,
    position: usize,
    with_ring: bool,
    register_slot: impl FnOnce(&'static Lane, &'static Slot),
    register_ring: impl FnOnce(&'static Lane, &'static Ring),
) -> Option<(&'static Slot, &'static Ring)> {
    let slot = slot(breaker, position, false, register_slot)?;
    let ring = if with_ring {
        let (lane, ring, new) = with_lane(|owned| owned.ring(breaker))?;
        if new {
            register_ring(lane, ring);
        }
        ring
    } else {
        &NO_RING
    };
    WATCHED.with(|cache| cache[entry_index(position)].set(WatchedEntry { breaker, slot, ring }));
    Some((slot, ring))
}

/// Runs `f` while this thread's lane bookkeeping is borrowed, as it is when
/// code running inside it (an allocation) counts on a breaker.
#[cfg(test)]
pub(crate) fn with_lane_busy<R>(f: impl FnOnce() -> R) -> R {
    HOLDER.with(|holder| {
        let _busy = holder.borrow_mut();
        f()
    })
}
