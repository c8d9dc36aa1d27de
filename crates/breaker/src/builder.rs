//! [`Builder`]: every way to configure a [`Breaker`] beyond its [`Config`].

use core::fmt;

use breaker_core::{Config, ConfigError, CoreBreaker, RecentClock, quanta};

use crate::Breaker;

/// Builds a [`Breaker`]: the [`Config`] (the Go package's three numbers) and
/// every option beyond it. Made by [`Breaker::builder`].
///
/// [`Config`] stays a plain struct of the Go package's three fields, so
/// `Config { threshold, timeout, half_open_max }` literals keep compiling;
/// options added later come here, as methods, so code that uses this builder
/// keeps compiling too.
///
/// ```
/// use breaker::{Breaker, Config, State};
/// use std::time::Duration;
///
/// let (clock, mock) = breaker::quanta::Clock::mock();
/// let breaker = Breaker::builder(Config { threshold: 2, ..Config::default() }).clock(clock).build()?;
/// breaker.trip();
/// mock.increment(Duration::from_secs(30));
/// assert_eq!(breaker.state(), State::HalfOpen);
/// # Ok::<(), breaker::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Clone)]
pub struct Builder {
    config: Config,
    clock: ClockChoice,
}

#[derive(Clone)]
enum ClockChoice {
    Real,
    Given(quanta::Clock),
    Recent(RecentClock),
}

impl Builder {
    pub(crate) fn new(config: Config) -> Builder {
        Builder { config, clock: ClockChoice::Real }
    }

    /// Runs the breaker on `clock` instead of the real one: typically
    /// `quanta::Clock::mock()` in tests, so that time moves only when the
    /// test says (use the [`quanta`](crate::quanta) re-export so the versions
    /// match).
    pub fn clock(mut self, clock: quanta::Clock) -> Builder {
        self.clock = ClockChoice::Given(clock);
        self
    }

    /// Runs the breaker on the coarse [`RecentClock`]: a rejection while open
    /// costs a shared load instead of a cycle-counter read, and the breaker's
    /// time lags real time by about a millisecond (see [`RecentClock`] for
    /// the trade).
    ///
    /// ```
    /// use breaker::{Breaker, Config, RecentClock};
    ///
    /// let clock = RecentClock::shared()?; // starts the process's upkeep thread once
    /// let breaker = Breaker::builder(Config::default()).recent_clock(clock).build()?;
    /// breaker.trip();
    /// assert!(breaker.call(|| Ok::<_, ()>(())).unwrap_err().is_open());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recent_clock(mut self, clock: RecentClock) -> Builder {
        self.clock = ClockChoice::Recent(clock);
        self
    }

    /// The breaker, or the [`ConfigError`] naming the field that does not
    /// fit (threshold or half_open_max above 65 535, timeout above 2^36 ms,
    /// about 2.18 years). Never panics.
    ///
    /// ```
    /// use breaker::{Breaker, Config};
    ///
    /// let err = Breaker::builder(Config { threshold: 1 << 20, ..Config::default() }).build().unwrap_err();
    /// assert_eq!(err.field(), "threshold");
    /// ```
    pub fn build(self) -> Result<Breaker, ConfigError> {
        let core = match self.clock {
            ClockChoice::Real => CoreBreaker::new(self.config),
            ClockChoice::Given(clock) => CoreBreaker::with_clock(self.config, clock),
            ClockChoice::Recent(clock) => CoreBreaker::with_recent_clock(self.config, clock),
        }?;
        Ok(Breaker::from_core(core))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = match self.clock {
            ClockChoice::Real => "real",
            ClockChoice::Given(_) => "given",
            ClockChoice::Recent(_) => "recent",
        };
        f.debug_struct("Builder").field("config", &self.config).field("clock", &clock).finish()
    }
}
