//! [`Refusal`]: how long a registry at capacity keeps refusing new keys
//! without sweeping again, after a sweep found nothing to evict.
//!
//! A sweep reads every breaker, so at capacity with nothing at rest (an
//! outage of every downstream) a sweep per new key would cost each refused
//! caller time in proportion to the registry's size, under the writer lock
//! that every other new key waits on. Remembering the refusal for
//! [`SWEEPS_PER_REFUSAL`] times as long as the sweep took keeps sweeping to
//! about a seventeenth of the time while new keys keep coming, and a
//! refusal in that time is a load or two and a clock read, with no lock.

use core::time::Duration;
use std::sync::atomic::{AtomicU64, Ordering};

use breakerbox_core::quanta;

/// A refusal lasts this many times as long as the sweep that found
/// nothing to evict.
pub(crate) const SWEEPS_PER_REFUSAL: u32 = 16;

/// The shortest a refusal lasts: new keys that arrive together after a
/// failed sweep are refused by it, even where a sweep takes no measurable
/// time (a small registry, or a mock clock).
pub(crate) const MIN_REFUSAL: Duration = Duration::from_millis(1);

/// When a registry's latest refusal at capacity ends, on the registry's
/// clock.
pub(crate) struct Refusal {
    clock: quanta::Clock,
    /// The clock's reading when the registry was built: `until` counts from
    /// it.
    origin: quanta::Instant,
    /// Nanoseconds after `origin` until which a new key at capacity is
    /// refused without a sweep; 0 before the first refusal. Written under
    /// the writer lock and read both without it and under it: a stale read
    /// outside only sends the caller to the lock, after which it reads the
    /// latest deadline.
    until: AtomicU64,
}

impl Refusal {
    pub(crate) fn new(clock: quanta::Clock) -> Refusal {
        let origin = clock.now();
        Refusal { clock, origin, until: AtomicU64::new(0) }
    }

    /// The clock's reading now, to time a sweep.
    pub(crate) fn now(&self) -> quanta::Instant {
        self.clock.now()
    }

    /// Whether a refusal is still in force.
    pub(crate) fn active(&self) -> bool {
        let until = self.until.load(Ordering::Relaxed);
        // Before the first refusal, no clock read.
        until != 0 && self.since_origin(self.clock.now()) < until
    }

    /// Remembers a refusal after a sweep that started at `started` and
    /// found too little to evict.
    pub(crate) fn remember(&self, started: quanta::Instant) {
        let now = self.clock.now();
        let lasts = now.saturating_duration_since(started).saturating_mul(SWEEPS_PER_REFUSAL).max(MIN_REFUSAL);
        let lasts = u64::try_from(lasts.as_nanos()).unwrap_or(u64::MAX);
        self.until.store(self.since_origin(now).saturating_add(lasts), Ordering::Relaxed);
    }

    fn since_origin(&self, instant: quanta::Instant) -> u64 {
        u64::try_from(instant.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_lasts_sixteen_sweeps_and_at_least_a_millisecond() {
        let (clock, mock) = quanta::Clock::mock();
        let refusal = Refusal::new(clock);
        assert!(!refusal.active(), "none before the first");
        refusal.remember(refusal.now());
        assert!(refusal.active());
        mock.increment(MIN_REFUSAL - Duration::from_nanos(1));
        assert!(refusal.active());
        mock.increment(Duration::from_nanos(1));
        assert!(!refusal.active(), "over after a millisecond");

        let started = refusal.now();
        mock.increment(Duration::from_millis(10)); // the sweep
        refusal.remember(started);
        mock.increment(Duration::from_millis(160) - Duration::from_nanos(1));
        assert!(refusal.active());
        mock.increment(Duration::from_nanos(1));
        assert!(!refusal.active(), "over after sixteen times the sweep");
    }
}
