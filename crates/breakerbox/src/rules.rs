//! [`Rules`]: what a breaker watches beyond consecutive failures, the
//! failure rate over a window and slow calls, and the window rings of the
//! threads that report to it.
//!
//! A breaker with rules never has an entry in the thread-local counter
//! cache that plain breakers use ([`crate::local`]): its calls find that
//! cache empty and take the watched path, which looks up the thread's
//! (slot, ring) pair in a cache of its own. So a plain breaker's healthy
//! call pays nothing for rules existing: the branch that sends a watched
//! call away is the cache check every call already makes.

use std::sync::OnceLock;

use breakerbox_core::__private::{RateWindow, Ring};
use breakerbox_core::{Ticket, Timestamp};

use crate::lane::Lane;

/// A breaker's failure-rate window and slow-call threshold.
pub(crate) struct Rules {
    /// The breaker's id, under which its rings sit on their lanes.
    breaker: u64,
    pub(crate) rate: Option<RateWindow>,
    /// Successes that took longer than this (ms) count as failures.
    pub(crate) slow_ticks: Option<u64>,
    rings: RingList,
}

impl Rules {
    pub(crate) fn new(breaker: u64, rate: Option<RateWindow>, slow_ticks: Option<u64>) -> Rules {
        Rules { breaker, rate, slow_ticks, rings: RingList::default() }
    }

    /// Registers a ring a lane handed out for this breaker.
    pub(crate) fn register(&self, lane: &'static Lane, ring: &'static Ring) {
        self.rings.push(Registered { lane, ring });
    }

    /// Whether a call that started at `started` and ended at `now` was slow.
    #[inline]
    pub(crate) fn slow(&self, started: Timestamp, now: Timestamp) -> bool {
        self.slow_ticks.is_some_and(|slow| now.as_millis().saturating_sub(started.as_millis()) > slow)
    }

    /// Counts a success the breaker applied in this thread's `ring`.
    #[inline(always)]
    pub(crate) fn add_success(&self, ring: &Ring, ticket: Ticket, now: Timestamp) {
        if let Some(rate) = &self.rate {
            let _ = rate.add(ring, ticket, now, false);
        }
    }

    /// Counts a failure the breaker applied in this thread's `ring`, and says
    /// whether the rule says the breaker must open.
    pub(crate) fn add_failure(&self, ring: &Ring, ticket: Ticket, now: Timestamp) -> bool {
        self.rate.as_ref().is_some_and(|rate| rate.record(ring, ticket, now, true, self.rings.iter()))
    }
}

impl Drop for Rules {
    /// Gives every ring back to its lane: every call through the breaker
    /// happened before its drop.
    fn drop(&mut self) {
        for registered in self.rings.iter_registered() {
            registered.lane.give_back_ring(self.breaker, registered.ring);
        }
    }
}

/// A ring and the lane it belongs to.
#[derive(Clone, Copy)]
struct Registered {
    lane: &'static Lane,
    ring: &'static Ring,
}

/// Cells per link of a [`RingList`].
const LINK: usize = 8;

/// An append-only list that a failure reads without a lock: links of
/// [`LINK`] cells, each set once. A push takes the first unset cell (a
/// `OnceLock` makes a racing push wait for the cell's winner, then move on);
/// a reader walks every set cell. There are at most as many entries as lanes
/// ever reported to the breaker, which is at most the most threads that
/// reported at once.
#[derive(Default)]
struct RingList {
    cells: [OnceLock<Registered>; LINK],
    next: OnceLock<Box<RingList>>,
}

impl RingList {
    fn push(&self, mut entry: Registered) {
        let mut list = self;
        loop {
            for cell in &list.cells {
                match cell.set(entry) {
                    Ok(()) => return,
                    Err(refused) => entry = refused,
                }
            }
            list = list.next.get_or_init(Box::default);
        }
    }

    fn iter_registered(&self) -> impl Iterator<Item = &Registered> {
        let links = std::iter::successors(Some(self), |list| list.next.get().map(|next| &**next));
        links.flat_map(|list| list.cells.iter().filter_map(OnceLock::get))
    }

    fn iter(&self) -> impl Iterator<Item = &'static Ring> + '_ {
        self.iter_registered().map(|registered| registered.ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Breaker, Config, FailureRate};

    fn watched() -> Breaker {
        let rate = FailureRate::new(0.5, 10, std::time::Duration::from_secs(10));
        Breaker::builder(Config::default()).failure_rate(rate).build().unwrap()
    }

    /// This thread's cached ring for `breaker`, if any.
    fn cached_ring(breaker: &Breaker) -> Option<*const Ring> {
        let tally = breaker.tally();
        crate::local::cached_watched(tally.id(), tally.position()).map(|(_, ring)| core::ptr::from_ref(ring))
    }

    #[test]
    fn a_watched_breaker_is_cached_on_its_own_path_never_the_plain_one() {
        std::thread::spawn(|| {
            let breaker = watched();
            assert!(cached_ring(&breaker).is_none());
            for _ in 0..3 {
                assert_eq!(breaker.call(|| Ok::<_, ()>(())), Ok(()));
            }
            assert!(cached_ring(&breaker).is_some(), "the watched cache holds the slot and ring");
            assert!(!breaker.tally().thread_slot().is_cached(), "the plain cache never does");
            assert_eq!(breaker.counts().successes, 3);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_dropped_breakers_rings_go_back_to_their_lanes() {
        std::thread::spawn(|| {
            let first = watched();
            assert_eq!(first.call(|| Err::<(), _>(())), Err(crate::Error::Inner(())));
            let ring = cached_ring(&first).expect("cached after the first call");
            drop(first);
            let second = watched();
            assert_eq!(second.call(|| Ok::<_, ()>(())), Ok(()));
            assert_eq!(cached_ring(&second), Some(ring), "the lane reuses the freed ring");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_list_keeps_every_push_across_links() {
        let list = RingList::default();
        let lane = crate::lane::tests::lane();
        let rings: Vec<&'static Ring> = (0..3 * LINK + 1).map(|_| &*Box::leak(Box::new(Ring::new()))).collect();
        std::thread::scope(|scope| {
            for chunk in rings.chunks(5) {
                let list = &list;
                scope.spawn(move || chunk.iter().for_each(|&ring| list.push(Registered { lane, ring })));
            }
        });
        let mut seen: Vec<usize> = list.iter().map(|ring| core::ptr::from_ref(ring) as usize).collect();
        let mut pushed: Vec<usize> = rings.iter().map(|&ring| core::ptr::from_ref(ring) as usize).collect();
        seen.sort_unstable();
        pushed.sort_unstable();
        assert_eq!(seen, pushed);
    }
}
