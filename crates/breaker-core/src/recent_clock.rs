//! [`RecentClock`]: an opt-in coarse clock for breakers that reject a lot.

use std::sync::Arc;

use crate::time::TICK;

/// A coarse clock: the time kept by a background thread that refreshes it
/// every [`TICK`] (quanta's `recent` time and its upkeep thread), for breakers
/// built with [`CoreBreaker::with_recent_clock`](crate::CoreBreaker::with_recent_clock).
///
/// Reading it is a shared load instead of a cycle-counter read, which is most
/// of what an open breaker's rejection costs (about 17 ns here with the
/// default clock). The price: the breaker's time lags real time by up to a
/// tick plus however late the upkeep thread is scheduled, so an open breaker
/// lets its first probe through that much later, and a program gains a
/// thread. The thread runs as long as any clone of this clock (or any breaker
/// built on it) is alive, so a breaker can never be left with a frozen clock
/// that would keep it open for good.
///
/// One upkeep thread serves the whole process: start one `RecentClock` and
/// clone it for every breaker.
///
/// ```
/// use breaker_core::{Config, CoreBreaker, RecentClock, State};
///
/// let clock = RecentClock::start()?;
/// let breaker = CoreBreaker::with_recent_clock(Config::default(), clock.clone())?;
/// breaker.trip();
/// assert!(breaker.acquire().is_err()); // rejected without reading the cycle counter
/// assert_eq!(breaker.state(), State::Open);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RecentClock {
    clock: quanta::Clock,
    /// Dropping the last clone stops the thread.
    upkeep: Arc<quanta::Handle>,
}

impl RecentClock {
    /// Starts the upkeep thread.
    ///
    /// # Errors
    ///
    /// [`quanta::Error::UpkeepRunning`] if an upkeep thread is already
    /// running in this process (another `RecentClock`, or quanta's `Upkeep`
    /// started elsewhere): clone the first clock instead. Also an error if
    /// the thread cannot be spawned.
    pub fn start() -> Result<RecentClock, quanta::Error> {
        let clock = quanta::Clock::new();
        let upkeep = quanta::Upkeep::new_with_clock(TICK, clock.clone()).start()?;
        Ok(RecentClock { clock, upkeep: Arc::new(upkeep) })
    }

    pub(crate) fn into_parts(self) -> (quanta::Clock, Arc<quanta::Handle>) {
        (self.clock, self.upkeep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test in this binary that starts an upkeep thread: there is one
    // per process.
    #[test]
    fn one_upkeep_thread_per_process_until_the_last_clone_drops() {
        let before = quanta::Clock::new().now();
        let clock = RecentClock::start().expect("no other upkeep thread runs in this test binary");
        // Set before the thread starts: never the zero that would freeze time.
        assert!(clock.clock.recent() >= before);
        let clone = clock.clone();
        assert!(matches!(RecentClock::start(), Err(quanta::Error::UpkeepRunning)));
        drop(clock);
        assert!(matches!(RecentClock::start(), Err(quanta::Error::UpkeepRunning)), "a clone still holds it");
        drop(clone);
        assert!(RecentClock::start().is_ok(), "the last drop stopped the thread");
    }
}
