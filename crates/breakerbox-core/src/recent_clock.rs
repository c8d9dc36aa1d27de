//! [`RecentClock`]: an opt-in coarse clock for breakers that reject a lot.

use std::sync::{Mutex, PoisonError};

use crate::time::TICK;

/// A coarse clock: quanta's "recent" time, which a background thread
/// refreshes every [`TICK`], for breakers built with
/// [`CoreBreaker::with_recent_clock`](crate::CoreBreaker::with_recent_clock)
/// (or the facade's `Breaker::builder(config).recent_clock(clock)`).
///
/// Reading it is a load of one shared word instead of a cycle-counter read,
/// which is most of what an open breaker's rejection costs with the default
/// clock (`BENCHMARKS.md` has the numbers).
///
/// The price:
/// - The breaker's time lags real time by up to a tick plus however late the
///   thread is scheduled. Transitions are stamped and timeouts checked with
///   the same lagging time, so what shifts a timeout is the change in lag: it
///   fires late by as much as the lag at the check exceeds the lag when the
///   breaker opened, and early by as much as it falls short. Normally both
///   are under a tick; on a starved machine the lag has no bound either way.
/// - The process gains a thread (named `quanta-upkeep`) that wakes every tick.
///   It is started by the first [`shared`](Self::shared) and runs until the
///   process exits, so a breaker on this clock can never be left with time
///   that has stopped (which would keep an open breaker open for good).
/// - The recent time is one value for the whole process. Code that sets it by
///   hand (`quanta::set_recent`) moves every such breaker's clock, and a
///   child made by `fork` has no upkeep thread: its breakers' time stands
///   still. Do not use this clock in a process that forks without `exec`.
///
/// ```
/// use breakerbox_core::{Config, CoreBreaker, RecentClock, State};
///
/// let clock = RecentClock::shared()?;
/// let breaker = CoreBreaker::with_recent_clock(Config::default(), clock.clone())?;
/// breaker.trip();
/// assert!(breaker.acquire().is_err()); // rejected without reading the cycle counter
/// assert_eq!(breaker.state(), State::Open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RecentClock {
    clock: quanta::Clock,
}

/// The process's upkeep thread, once started. A static is never dropped, so
/// the thread is never stopped.
static UPKEEP: Mutex<Option<quanta::Handle>> = Mutex::new(None);

impl RecentClock {
    /// The process's recent clock, starting its upkeep thread on first use.
    ///
    /// # Errors
    ///
    /// [`quanta::Error::UpkeepRunning`] if quanta's upkeep thread was started
    /// by other code (its owner could stop it, freezing the time, so this
    /// clock does not rely on it); an error if the thread cannot be spawned.
    /// A later call tries again.
    pub fn shared() -> Result<RecentClock, quanta::Error> {
        let clock = quanta::Clock::new();
        let mut upkeep = UPKEEP.lock().unwrap_or_else(PoisonError::into_inner);
        if upkeep.is_none() {
            *upkeep = Some(quanta::Upkeep::new_with_clock(TICK, clock.clone()).start()?);
        }
        Ok(RecentClock { clock })
    }

    pub(crate) fn into_clock(self) -> quanta::Clock {
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_upkeep_thread_serves_every_clone_and_call() {
        let before = quanta::Clock::new().now();
        let clock = RecentClock::shared().expect("no other code starts quanta's upkeep in this test binary");
        // Set before the thread starts: never the zero that would freeze time.
        assert!(clock.clock.recent() >= before);
        assert!(RecentClock::shared().is_ok(), "a second call shares the running thread");
        let other = quanta::Upkeep::new(TICK).start();
        assert!(matches!(other, Err(quanta::Error::UpkeepRunning)), "the thread is running");
    }
}
