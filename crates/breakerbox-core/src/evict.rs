//! [`EvictionFlag`]: the handshake that lets a keyed registry forget a
//! breaker at rest without forgetting one a racing call just changed.

use core::fmt;

use crate::sync::{AtomicBool, Ordering, fence};

/// One breaker's side of the handshake between a registry evicting it and
/// a call changing it (opening it, starting a failure streak) or a caller
/// taking a reference to it.
///
/// - The evictor [`mark`](Self::mark)s the flag, then reads the breaker
///   (its state word, its window, its reference count) a last time and
///   removes it only if it is still at rest; otherwise it
///   [`clear`](Self::clear)s the flag.
/// - A call that changed the breaker, or a caller that took a reference to
///   it, asks [`seen_after_change`](Self::seen_after_change) and puts the
///   breaker back if it is set.
///
/// Either the evictor's last read sees the change, or the caller sees the
/// flag, never neither.
///
/// ```
/// use breakerbox_core::__private::EvictionFlag;
/// use breakerbox_core::{Config, CoreBreaker, Outcome, State};
///
/// let breaker = CoreBreaker::new(Config { threshold: 1, ..Config::default() })?;
/// let flag = EvictionFlag::new();
/// // The evictor marks the breaker and finds it at rest: it removes it.
/// flag.mark();
/// assert_eq!(breaker.snapshot().phase(), State::Closed);
/// // A call admitted before the removal fails and opens it; it sees the mark.
/// let ticket = breaker.acquire()?;
/// breaker.record(ticket, Outcome::Failure);
/// assert!(flag.seen_after_change()); // so it puts the breaker back
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Orderings
///
/// Dekker's pattern with two `SeqCst` fences: the evictor stores the flag,
/// fences, then loads the breaker; the caller changes the breaker (a CAS on
/// the word, a store to a window or a reference count), fences, then loads
/// the flag. The fences are totally ordered: if the evictor's comes first,
/// the caller's load sees the flag; if the caller's does, the evictor's
/// loads see the change. The flag itself is `Relaxed`: the fences order it.
/// A fence costs tens of cycles, so the caller's side runs only after a
/// call that changed the breaker, never on a healthy call.
#[derive(Default)]
pub struct EvictionFlag {
    marked: AtomicBool,
}

impl EvictionFlag {
    /// An unmarked flag.
    pub fn new() -> EvictionFlag {
        EvictionFlag { marked: AtomicBool::new(false) }
    }

    /// The evictor's side: marks the breaker, then fences; read the breaker
    /// after this returns.
    pub fn mark(&self) {
        self.marked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The evictor kept the breaker, or it was put back.
    pub fn clear(&self) {
        self.marked.store(false, Ordering::Relaxed);
    }

    /// The caller's side, after it changed the breaker or took a reference
    /// to it: fences, then says whether an evictor may have removed it.
    pub fn seen_after_change(&self) -> bool {
        fence(Ordering::SeqCst);
        self.marked.load(Ordering::Relaxed)
    }

    /// Whether the flag is set, for code that holds the lock every mark and
    /// clear is made under.
    pub fn is_marked(&self) -> bool {
        self.marked.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for EvictionFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvictionFlag").field("marked", &self.is_marked()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn marking_clearing_and_asking() {
        let flag = EvictionFlag::new();
        assert!(!flag.is_marked() && !flag.seen_after_change());
        flag.mark();
        assert!(flag.is_marked() && flag.seen_after_change());
        assert_eq!(format!("{flag:?}"), "EvictionFlag { marked: true }");
        flag.clear();
        assert!(!flag.is_marked() && !flag.seen_after_change());
        assert!(!EvictionFlag::default().is_marked());
    }
}
