//! Cumulative counts kept without writing shared memory on the healthy path.
//!
//! Every thread that touches a breaker gets its own cache-padded slot in that
//! breaker and is the only writer of it, so an increment is a plain load and
//! store (no locked read-modify-write, no cache line bouncing between cores).
//! [`Tally::sum`] adds the slots up. Slots are found by a small per-thread
//! index, handed out from a pool and returned when the thread exits, so a
//! program that spawns threads forever reuses slots instead of growing.
//!
//! A slot handed from an exited thread to a new one keeps its totals: the
//! pool's mutex orders the old thread's last store before the new thread's
//! first load, so nothing is lost in the handoff. Increments made while a
//! thread is being torn down (after its index is returned) go to one shared
//! slot with `fetch_add`.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crossbeam_utils::CachePadded;

/// How many calls a breaker has let through and how they ended, and how many
/// it rejected, since it was created.
///
/// Results that arrived after a transition (stale) still count here: the call
/// did succeed or fail. Calls reported as [`Outcome::Ignored`](crate::Outcome)
/// and calls dropped before they finished count nowhere.
///
/// ```
/// use breaker::{Breaker, Config, Counts};
///
/// let breaker = Breaker::new(Config::default());
/// let _ = breaker.call(|| Ok::<_, ()>(1));
/// let _ = breaker.call(|| Err::<(), _>("down"));
/// assert_eq!(breaker.counts(), Counts { successes: 1, failures: 1, rejections: 0 });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// Calls that ran and were counted as successes.
    pub successes: u64,
    /// Calls that ran and were counted as failures (panics included).
    pub failures: u64,
    /// Calls rejected without running because the breaker was open (or
    /// half-open with every probe slot taken).
    pub rejections: u64,
}

/// Which count an event adds to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Success,
    Failure,
    Rejection,
}

#[derive(Default)]
struct Slot {
    successes: AtomicU64,
    failures: AtomicU64,
    rejections: AtomicU64,
}

impl Slot {
    fn counter(&self, count: Count) -> &AtomicU64 {
        match count {
            Count::Success => &self.successes,
            Count::Failure => &self.failures,
            Count::Rejection => &self.rejections,
        }
    }

    fn add_to(&self, total: &mut Counts) {
        total.successes += self.successes.load(Ordering::Relaxed);
        total.failures += self.failures.load(Ordering::Relaxed);
        total.rejections += self.rejections.load(Ordering::Relaxed);
    }
}

/// This thread's slot in one tally, looked up ahead of time, or `None` when
/// the count must take the slow path. Not `Send`: a slot has one writer, the
/// thread it belongs to, so a lookup must not be used on another thread. It
/// stays this thread's until the thread's `Lease` drops at thread exit, which
/// cannot happen while a call holding the lookup is still on the stack.
#[derive(Clone, Copy)]
pub(crate) struct ThreadSlot<'a> {
    slot: Option<&'a Slot>,
    _not_send: PhantomData<*const ()>,
}

/// Bucket `b` holds `2^b` slots, so 32 buckets cover 2^32 - 1 live threads.
const BUCKETS: usize = 32;

/// A breaker's counters: one slot per live thread that has used it.
pub(crate) struct Tally {
    buckets: [OnceLock<Box<[CachePadded<Slot>]>>; BUCKETS],
    /// For threads with no index: ones being torn down, or past 2^32 - 1.
    shared: CachePadded<Slot>,
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally { buckets: [const { OnceLock::new() }; BUCKETS], shared: CachePadded::new(Slot::default()) }
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

    /// This thread's slot, if the thread has a position and the bucket
    /// holding it exists: every call but a thread's first on this breaker.
    #[inline(always)]
    pub(crate) fn thread_slot(&self) -> ThreadSlot<'_> {
        // The two codes that are not positions decode to offsets past the end
        // of the last bucket, so the bounds check turns them away too.
        let (bucket, offset) = Position(POSITION.with(Cell::get)).bucket_and_offset();
        let slot = self.buckets[bucket].get().and_then(|slots| slots.get(offset)).map(|slot| &**slot);
        ThreadSlot { slot, _not_send: PhantomData }
    }

    /// [`add_in`](Self::add_in) for a thread's first count on this breaker (it may
    /// need a position and a bucket) and for threads with no position.
    #[cold]
    #[inline(never)]
    fn add_first(&self, count: Count) {
        match thread_position().and_then(|position| self.slot(position)) {
            Some(slot) => increment(slot.counter(count)),
            None => {
                self.shared.counter(count).fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The slot at `position`, filling its bucket if need be; `None` never
    /// happens for a position the pool hands out, but costs nothing to handle.
    fn slot(&self, position: Position) -> Option<&Slot> {
        let (bucket, offset) = position.bucket_and_offset();
        let slots =
            self.buckets[bucket].get_or_init(|| (0..1usize << bucket).map(|_| CachePadded::default()).collect());
        slots.get(offset).map(|slot| &**slot)
    }

    /// The totals over every slot. Each slot only grows, so a sum taken while
    /// other threads count is a total some moment between the call's start
    /// and end could have had per slot; once those threads are joined it is
    /// exact.
    pub(crate) fn sum(&self) -> Counts {
        let mut total = Counts::default();
        self.shared.add_to(&mut total);
        for slots in self.buckets.iter().filter_map(OnceLock::get) {
            for slot in slots.iter() {
                slot.add_to(&mut total);
            }
        }
        total
    }
}

/// Adds one to a counter only this thread writes: a plain load and store, no
/// locked read-modify-write.
#[inline(always)]
fn increment(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Where a thread's slot sits in every breaker's table, worked out once when
/// the thread gets its index and kept in one thread-local word: the bucket in
/// the high 32 bits, the offset in the low 32. Index `i` is the
/// `(i + 1 - 2^b)`-th slot of bucket `b = floor(log2(i + 1))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Position(u64);

/// The two thread-local values that are not positions (no bucket is this high).
const UNASSIGNED: u64 = u64::MAX;
const RETIRED: u64 = u64::MAX - 1;
const _: () = {
    let last_bucket_len = 1 << (BUCKETS - 1);
    assert!(Position(UNASSIGNED).bucket_and_offset().1 >= last_bucket_len);
    assert!(Position(RETIRED).bucket_and_offset().1 >= last_bucket_len);
};
/// The largest index a bucket holds.
const LAST_INDEX: usize = (1 << BUCKETS) - 2;

impl Position {
    const fn of(index: usize) -> Position {
        let position = index + 1;
        let bucket = usize::BITS - 1 - position.leading_zeros();
        let offset = position - (1 << bucket);
        Position(((bucket as u64) << 32) | offset as u64)
    }

    #[inline]
    const fn bucket_and_offset(self) -> (usize, usize) {
        // The mask lets the compiler drop the bucket array's bounds check.
        (((self.0 >> 32) as usize) & (BUCKETS - 1), self.0 as u32 as usize)
    }

    const fn index(self) -> usize {
        let (bucket, offset) = self.bucket_and_offset();
        (1 << bucket) + offset - 1
    }
}

thread_local! {
    // Const-initialised with no destructor, so reading it is a plain TLS load
    // and stays valid while other thread-locals are being destroyed.
    static POSITION: Cell<u64> = const { Cell::new(UNASSIGNED) };
    // Its destructor returns the index to the pool when the thread exits.
    static LEASE: Lease = const { Lease };
}

/// Indices of exited threads, reused lowest first to keep buckets small.
static POOL: Mutex<IndexPool> = Mutex::new(IndexPool { next: 0, free: Vec::new() });

struct IndexPool {
    next: usize,
    free: Vec<usize>,
}

fn thread_position() -> Option<Position> {
    match POSITION.with(Cell::get) {
        code if code < RETIRED => Some(Position(code)),
        UNASSIGNED => assign_position(),
        _ => None,
    }
}

#[cold]
fn assign_position() -> Option<Position> {
    let index = {
        let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match pool.free.iter().enumerate().min_by_key(|&(_, index)| *index) {
            Some((at, _)) => pool.free.swap_remove(at),
            None if pool.next <= LAST_INDEX => {
                pool.next += 1;
                pool.next - 1
            }
            None => return None,
        }
    };
    // Registering the lease can fail if this thread is already tearing down
    // its thread-locals; then the index goes straight back.
    if LEASE.try_with(|_| ()).is_err() {
        release(index);
        POSITION.with(|cell| cell.set(RETIRED));
        return None;
    }
    let position = Position::of(index);
    POSITION.with(|cell| cell.set(position.0));
    Some(position)
}

fn release(index: usize) {
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).free.push(index);
}

struct Lease;

impl Drop for Lease {
    fn drop(&mut self) {
        let code = POSITION.with(|cell| cell.replace(RETIRED));
        if code < RETIRED {
            release(Position(code).index());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_fill_buckets_in_order_and_give_the_index_back() {
        let expected = [(0, (0, 0)), (1, (1, 0)), (2, (1, 1)), (3, (2, 0)), (6, (2, 3)), (7, (3, 0))];
        for (index, place) in expected {
            assert_eq!(Position::of(index).bucket_and_offset(), place, "index {index}");
            assert_eq!(Position::of(index).index(), index);
        }
        let last = Position::of(LAST_INDEX);
        assert_eq!(last.bucket_and_offset(), (BUCKETS - 1, (1 << (BUCKETS - 1)) - 1));
        assert_eq!(last.index(), LAST_INDEX);
        assert!(last.0 < RETIRED);
    }

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
        assert_eq!(tally.sum(), Counts { successes: 8 * 6_666, failures: 8 * 3_334, rejections: 80_000 });
    }

    #[test]
    fn indices_of_exited_threads_are_reused_and_keep_their_totals() {
        let tally = std::sync::Arc::new(Tally::new());
        for _ in 0..50 {
            let tally = tally.clone();
            // `join` waits for the thread's thread-local destructors, so its
            // index is back in the pool before the next thread starts.
            std::thread::spawn(move || tally.add(Count::Success)).join().unwrap();
        }
        assert_eq!(tally.sum().successes, 50);
        // Other tests' threads may hold indices meanwhile, but not 50 of them.
        let allocated: usize = tally.buckets.iter().filter_map(OnceLock::get).map(|b| b.len()).sum();
        assert!(allocated < 50, "{allocated} slots for 50 sequential threads");
    }

    #[test]
    fn a_retired_thread_counts_in_the_shared_slot() {
        let tally = Tally::new();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                POSITION.with(|cell| cell.set(RETIRED));
                tally.add(Count::Failure);
            });
        });
        assert_eq!(tally.shared.failures.load(Ordering::Relaxed), 1);
        assert_eq!(tally.sum().failures, 1);
    }
}
