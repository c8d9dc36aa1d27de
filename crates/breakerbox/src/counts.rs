//! Cumulative counts kept without writing shared memory on the healthy path.
//!
//! Every thread that counts on a breaker does so in a slot of its own that
//! only it writes, so an increment is a plain load and store (no locked
//! read-modify-write, no cache line bouncing between cores). The slots live on
//! the thread's *lane* (see [`crate::lane`]): one 24-byte slot per (breaker,
//! thread) pair, packed with the same thread's slots for other breakers. The
//! breaker's [`Tally`] lists its slots and adds them up.
//!
//! Finding the slot is one thread-local load: a small cache ([`crate::local`])
//! indexed by the breaker's address and checked against its id. A thread's
//! first count on a breaker takes the cold path, which may take a lane, hand
//! out a slot and register it with the breaker under a mutex.
//!
//! Memory: a breaker no thread has counted on allocates nothing; each thread
//! that counts on it adds a slot on the thread's lane (24 bytes, allocated
//! sixteen at a time per lane), an entry in the breaker's list (16 bytes) and
//! one in the lane's map (about 17 bytes), with growth slack. Dropping the
//! breaker gives its slots back to their lanes for reuse.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::lane::{Lane, Slot, increment};
use crate::local;

/// How many calls a breaker has let through and how they ended, how many it
/// rejected, and how often it opened, since it was created.
///
/// Results that arrived after a transition (stale) still count here: the call
/// did succeed or fail. Calls reported as [`Outcome::Ignored`](crate::Outcome)
/// and calls dropped before they finished count nowhere.
///
/// ```
/// use breakerbox::{Breaker, Config, Counts};
///
/// let breaker = Breaker::default();
/// let _ = breaker.call(|| Ok::<_, ()>(1));
/// let _ = breaker.call(|| Err::<(), _>("down"));
/// let counts: Counts = breaker.counts();
/// assert_eq!((counts.successes, counts.failures, counts.rejections), (1, 1, 0));
/// ```
///
/// `#[non_exhaustive]`: counts the breaker may keep later (ignored or stale
/// results, transitions) will be new fields, so build one with
/// [`Counts::default`] and read the fields by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Counts {
    /// Calls that ran and were counted as successes.
    pub successes: u64,
    /// Calls that ran and were counted as failures (panics included).
    pub failures: u64,
    /// Calls rejected without running because the breaker was open (or
    /// half-open with every probe slot taken).
    pub rejections: u64,
    /// Times the breaker changed state into open: a threshold reached, a
    /// probe failed, a trip of a breaker that was not open.
    pub opens: u64,
}

/// Which count an event adds to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Success,
    Failure,
    Rejection,
}

/// This thread's slot in one tally, looked up ahead of time, or `None` when
/// the count must take the cold path. Not `Send`: a slot has one writer, the
/// thread holding its lane, so a lookup must not be used on another thread.
/// The lane stays this thread's until the thread's thread-locals are torn
/// down, which cannot happen while a call holding the lookup is on the stack.
#[derive(Clone, Copy)]
pub(crate) struct ThreadSlot<'a> {
    slot: Option<&'static Slot>,
    _tally: PhantomData<(&'a Tally, *const ())>,
}

/// Breaker ids: unique for the life of the process, never 0.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A breaker's counters: a slot on the lane of each thread that has counted.
pub(crate) struct Tally {
    /// What this tally's slots are cached under: unlike its address, never
    /// reused by another breaker.
    id: u64,
    registered: Mutex<Vec<Registered>>,
    /// For counts made by a thread that cannot hold a lane (tearing down):
    /// shared, so incremented with `fetch_add`.
    shared: Slot,
    /// Whether the breaker has a [`Rules`](crate::rules::Rules): then its
    /// slots never enter the plain cache, so its calls take the watched
    /// path.
    watched: bool,
}

/// One of a tally's slots and the lane it belongs to.
struct Registered {
    lane: &'static Lane,
    slot: &'static Slot,
}

impl ThreadSlot<'_> {
    /// Whether the plain cache had the slot: never for a watched breaker.
    #[inline(always)]
    pub(crate) fn is_cached(&self) -> bool {
        self.slot.is_some()
    }
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally::with_watch(false)
    }

    /// A tally for a breaker with rules if `watched`.
    pub(crate) fn with_watch(watched: bool) -> Tally {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Tally { id, registered: Mutex::new(Vec::new()), shared: Slot::new(), watched }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Lists a slot a lane handed out for this tally.
    pub(crate) fn register(&self, lane: &'static Lane, slot: &'static Slot) {
        self.registered.lock().unwrap_or_else(PoisonError::into_inner).push(Registered { lane, slot });
    }

    /// Adds one to `count` in the slot shared by threads that cannot use
    /// their lane.
    pub(crate) fn add_shared(&self, count: Count) {
        self.shared.counter(count).fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to `count` in this thread's slot.
    #[inline(always)]
    pub(crate) fn add(&self, count: Count) {
        self.add_in(self.thread_slot(), count);
    }

    /// Adds one to `count` in this thread's slot, looked up earlier on this
    /// thread with [`thread_slot`](Self::thread_slot).
    #[inline(always)]
    pub(crate) fn add_in(&self, slot: ThreadSlot<'_>, count: Count) {
        match slot.slot {
            Some(slot) => increment(slot.counter(count)),
            None => self.add_first(count),
        }
    }

    /// This thread's slot, if the thread-local cache has it.
    #[inline(always)]
    pub(crate) fn thread_slot(&self) -> ThreadSlot<'_> {
        ThreadSlot { slot: local::cached(self.id, self.position()), _tally: PhantomData }
    }

    /// Where this tally sits, in units of the size of the [`Breaker`] it is
    /// part of: breakers side by side have consecutive positions, which the
    /// cache spreads them by. A division by a constant: a shift where a
    /// breaker's size is a power of two (256 bytes on x86-64 and AArch64).
    ///
    /// [`Breaker`]: crate::Breaker
    #[inline(always)]
    pub(crate) fn position(&self) -> usize {
        core::ptr::from_ref(self) as usize / size_of::<crate::Breaker>()
    }

    /// [`add_in`](Self::add_in) when the cache did not have the slot: a
    /// thread's first count here, a cache collision, or thread teardown.
    #[cold]
    #[inline(never)]
    fn add_first(&self, count: Count) {
        match local::slot(self.id, self.position(), !self.watched, |lane, slot| self.register(lane, slot)) {
            Some(slot) => increment(slot.counter(count)),
            None => self.add_shared(count),
        }
    }

    /// The totals over every slot. Each slot only grows, so a sum taken while
    /// other threads count is a total some moment between the call's start
    /// and end could have had per slot; once those threads are joined it is
    /// exact.
    pub(crate) fn sum(&self) -> Counts {
        let mut total = Counts::default();
        self.shared.add_to(&mut total);
        for registered in self.registered.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            registered.slot.add_to(&mut total);
        }
        total
    }

    /// How many threads' slots this tally holds.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.registered.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Tally {
    /// Gives every slot back to its lane. Nothing counts here any more: every
    /// call through the breaker happened before its drop.
    fn drop(&mut self) {
        let registered = self.registered.get_mut().unwrap_or_else(PoisonError::into_inner);
        for Registered { lane, slot } in registered.drain(..) {
            lane.give_back(self.id, slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up_exactly() {
        let tally = Tally::new();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for i in 0..10_000 {
                        tally.add(if i % 3 == 0 { Count::Failure } else { Count::Success });
                        tally.add(Count::Rejection);
                    }
                });
            }
        });
        assert_eq!(tally.sum(), Counts { successes: 8 * 6_666, failures: 8 * 3_334, rejections: 80_000, opens: 0 });
        // A thread that finished early may have handed its lane, and its slot
        // here, to one started later.
        assert!((1..=8).contains(&tally.slots()), "{} slots for 8 threads", tally.slots());
    }

    #[test]
    fn lanes_of_exited_threads_are_reused_and_keep_their_totals() {
        let tally = std::sync::Arc::new(Tally::new());
        for _ in 0..50 {
            let tally = tally.clone();
            // `join` waits for the thread's thread-local destructors, so its
            // lane is idle again before the next thread starts.
            std::thread::spawn(move || tally.add(Count::Success)).join().unwrap();
        }
        assert_eq!(tally.sum().successes, 50);
        // Other tests' threads may take idle lanes meanwhile, but not 50 of them.
        assert!(tally.slots() < 50, "{} slots for 50 sequential threads", tally.slots());
    }

    #[test]
    fn a_dropped_breakers_slots_are_cleared_and_reused() {
        std::thread::spawn(|| {
            let first = Tally::new();
            first.add(Count::Failure);
            first.add(Count::Failure);
            let slot = std::ptr::from_ref(first.thread_slot().slot.expect("cached after the first count"));
            drop(first);
            let second = Tally::new();
            second.add(Count::Success);
            let reused = std::ptr::from_ref(second.thread_slot().slot.expect("cached"));
            assert_eq!(reused, slot, "the lane reuses the freed slot");
            assert_eq!(
                second.sum(),
                Counts { successes: 1, failures: 0, rejections: 0, opens: 0 },
                "and it starts at zero"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_slot_is_found_again_after_its_cache_entry_is_overwritten() {
        std::thread::spawn(|| {
            let tallies: Vec<Tally> = (0..4 * local::CACHE_LEN).map(|_| Tally::new()).collect();
            for _ in 0..3 {
                for tally in &tallies {
                    tally.add(Count::Success);
                }
            }
            for tally in &tallies {
                assert_eq!(tally.sum().successes, 3);
                assert_eq!(tally.slots(), 1, "collisions find the lane's slot, not a new one");
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn sixty_four_breakers_side_by_side_stay_cached_at_once() {
        std::thread::spawn(|| {
            let breakers: Vec<crate::Breaker> = (0..local::CACHE_LEN).map(|_| crate::Breaker::default()).collect();
            for breaker in &breakers {
                assert!(breaker.call(|| Ok::<_, ()>(())).is_ok());
            }
            let cached = breakers.iter().filter(|breaker| breaker.tally().thread_slot().slot.is_some()).count();
            assert_eq!(cached, local::CACHE_LEN, "each breaker in the array has a cache entry of its own");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_moved_tally_keeps_its_slot() {
        std::thread::spawn(|| {
            let tally = Tally::new();
            tally.add(Count::Success);
            let moved = Box::new(tally);
            moved.add(Count::Success);
            assert_eq!((moved.sum().successes, moved.slots()), (2, 1));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_count_with_no_lane_to_use_goes_to_the_shared_slot() {
        let tally = Tally::new();
        // The lane bookkeeping is busy (as when an allocator counts on a
        // breaker from inside it): the count must not be lost or panic.
        local::with_lane_busy(|| tally.add(Count::Failure));
        assert_eq!(tally.shared.counter(Count::Failure).load(Ordering::Relaxed), 1);
        assert_eq!(tally.sum().failures, 1);
        assert_eq!(tally.slots(), 0);
    }

    /// A thread-local whose destructor counts, for the test below.
    struct CountsOnExit(std::sync::Arc<Tally>);

    impl Drop for CountsOnExit {
        fn drop(&mut self) {
            self.0.add(Count::Rejection);
        }
    }

    thread_local! {
        static ON_EXIT: std::cell::RefCell<Option<CountsOnExit>> = const { std::cell::RefCell::new(None) };
    }

    #[test]
    fn counts_made_while_a_thread_tears_down_are_not_lost() {
        let tally = std::sync::Arc::new(Tally::new());
        let for_thread = tally.clone();
        std::thread::spawn(move || {
            // Registered before the lane's destructor, so (thread-local
            // destructors run last-registered first) it runs after the lane
            // has been handed on.
            ON_EXIT.with(|on_exit| *on_exit.borrow_mut() = Some(CountsOnExit(for_thread.clone())));
            for_thread.add(Count::Success);
        })
        .join()
        .unwrap();
        assert_eq!(tally.sum(), Counts { successes: 1, failures: 0, rejections: 1, opens: 0 });
        assert_eq!(
            tally.shared.counter(Count::Rejection).load(Ordering::Relaxed),
            1,
            "counted after the lane was handed on"
        );
    }
}
