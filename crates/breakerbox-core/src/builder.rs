//! [`Builder`]: every way to configure a [`CoreBreaker`] beyond its
//! [`Config`].

use core::fmt;
use std::sync::{Arc, OnceLock};

use crate::backoff::{Backoff, BackoffError};
use crate::breaker::CoreBreaker;
use crate::config::{Config, ConfigError};
use crate::observe::{Listener, Observer, Transition};
use crate::recent_clock::RecentClock;
use crate::time::TimeSource;

/// Builds a [`CoreBreaker`]: the [`Config`] and every option beyond it. Made
/// by [`CoreBreaker::builder`].
///
/// ```
/// use breakerbox_core::{Config, CoreBreaker, State};
///
/// let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
/// let breaker = CoreBreaker::builder(Config::default())
///     .clock(clock)
///     .name("payments")
///     .on_transition(|t| eprintln!("{t}"))
///     .build()?;
/// breaker.trip(); // prints "payments: closed -> open (tripped, #1)"
/// assert_eq!(breaker.state(), State::Open);
/// # Ok::<(), breakerbox_core::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Clone)]
pub struct Builder {
    config: Config,
    clock: ClockChoice,
    name: Option<Arc<str>>,
    listener: Option<Listener>,
    backoff: Backoff,
    success_threshold: u32,
    consecutive: bool,
}

#[derive(Clone)]
enum ClockChoice {
    Real,
    Given(quanta::Clock),
    Recent(RecentClock),
}

impl Builder {
    pub(crate) fn new(config: Config) -> Builder {
        Builder {
            config,
            clock: ClockChoice::Real,
            name: None,
            listener: None,
            backoff: Backoff::fixed(),
            success_threshold: 1,
            consecutive: true,
        }
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
    pub fn recent_clock(mut self, clock: RecentClock) -> Builder {
        self.clock = ClockChoice::Recent(clock);
        self
    }

    /// Names the breaker, for logs and metrics: [`CoreBreaker::name`],
    /// [`Transition::name`] and `Debug` show it. Costs the name's `Arc<str>`
    /// and a 32-byte box (shared with the listener) at build, nothing per
    /// call.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Calls `listener` once for every change of state (see [`Transition`]
    /// for what counts as one), on the thread whose compare-and-swap made it,
    /// right after that CAS, with no lock held. A later call replaces an
    /// earlier listener.
    ///
    /// The listener runs inside the call that made the transition, so keep
    /// it short: log, count, or send to a channel. A listener that panics
    /// does not reach the caller: the panic hook runs as for any panic, the
    /// panic is caught, and the transition and the call that made it stand
    /// as if the listener had returned. (Under `panic = "abort"` a panic
    /// aborts the process, listener or not.)
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, Reason};
    /// use std::sync::mpsc;
    ///
    /// let (events, received) = mpsc::channel();
    /// let breaker = CoreBreaker::builder(Config::default())
    ///     .on_transition(move |t| { let _ = events.send(t.clone()); })
    ///     .build()?;
    /// breaker.trip();
    /// assert_eq!(received.try_recv().unwrap().reason(), Reason::Tripped);
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub fn on_transition(self, listener: impl Fn(&Transition) + Send + Sync + 'static) -> Builder {
        self.on_transition_shared(Arc::new(listener))
    }

    /// [`on_transition`](Self::on_transition) with a listener many breakers
    /// share: each holds a clone of the `Arc`, so a thousand breakers cost
    /// one listener, not a thousand boxed copies. [`Transition::name`] tells
    /// them apart.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, Transition};
    /// use std::sync::{Arc, OnceLock};
    ///
    /// let log: Arc<dyn Fn(&Transition) + Send + Sync> = Arc::new(|t| eprintln!("{t}"));
    /// let breakers: Vec<CoreBreaker> = ["users", "billing"]
    ///     .into_iter()
    ///     .map(|name| CoreBreaker::builder(Config::default()).name(name).on_transition_shared(log.clone()).build())
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(breakers[1].name(), "billing");
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub fn on_transition_shared(mut self, listener: Arc<dyn Fn(&Transition) + Send + Sync>) -> Builder {
        self.listener = Some(listener);
        self
    }

    /// How long consecutive opens last: [`Backoff::fixed`] (every open
    /// lasts the timeout, the default) or [`Backoff::exponential`], with
    /// optional [`Jitter`](crate::Jitter). A half-open round whose every
    /// slot is held is replaced after the current step's backed-off duration
    /// (before jitter), so hung probes are not replaced more often than the
    /// backoff would let probes through.
    ///
    /// ```
    /// use breakerbox_core::{Backoff, Config, CoreBreaker, Outcome, Timestamp};
    /// use std::time::Duration;
    ///
    /// let config = Config { threshold: 1, timeout: Duration::from_secs(1), half_open_max: 1 };
    /// let breaker = CoreBreaker::builder(config).backoff(Backoff::exponential(2.0, Duration::from_secs(5))).build()?;
    /// let mut now = Timestamp::ZERO;
    /// let mut lasted = Vec::new();
    /// for _ in 0..5 {
    ///     let ticket = breaker.acquire_at(now)?; // the first call, then each probe
    ///     breaker.record_at(ticket, Outcome::Failure, now);
    ///     let open_for = breaker.acquire_at(now).unwrap_err().retry_after().unwrap();
    ///     lasted.push(open_for.as_secs());
    ///     now = Timestamp::from_millis(now.as_millis() + open_for.as_millis() as u64);
    /// }
    /// assert_eq!(lasted, [1, 2, 4, 5, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Builder {
        self.backoff = backoff;
        self
    }

    /// Probe successes of one half-open round that close the breaker
    /// (default 1, the Go package's rule; 0 means the default). Any probe
    /// failure reopens it first. A success that does not close yet frees its
    /// probe slot for the next probe; a new round (after hung probes were
    /// replaced) starts the count over.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, Outcome, State};
    ///
    /// let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
    /// let breaker = CoreBreaker::builder(Config { timeout: std::time::Duration::ZERO, ..Config::default() })
    ///     .clock(clock)
    ///     .success_threshold(3)
    ///     .build()?;
    /// breaker.trip_for(std::time::Duration::ZERO);
    /// for _ in 0..2 {
    ///     let probe = breaker.acquire()?;
    ///     breaker.record(probe, Outcome::Success);
    ///     assert_eq!(breaker.state(), State::HalfOpen);
    /// }
    /// let probe = breaker.acquire()?;
    /// breaker.record(probe, Outcome::Success);
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn success_threshold(mut self, successes: u32) -> Builder {
        self.success_threshold = successes;
        self
    }

    /// Whether `Config::threshold` consecutive failures open the breaker
    /// (the default, `true`). Switch it off when another rule (a
    /// [`FailureRate`](crate::FailureRate) in the facade, or
    /// [`CoreBreaker::open_on_rate`] driven by your own) decides instead: a
    /// failure of a closed breaker then writes nothing, and the threshold of
    /// [`CoreBreaker::config`] and [`CoreBreaker::valid_config`] reads 0.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, Outcome, State};
    ///
    /// let breaker = CoreBreaker::builder(Config { threshold: 1, ..Config::default() })
    ///     .consecutive_failures(false)
    ///     .build()?;
    /// for _ in 0..100 {
    ///     let ticket = breaker.acquire()?;
    ///     breaker.record(ticket, Outcome::Failure);
    /// }
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consecutive_failures(mut self, on: bool) -> Builder {
        self.consecutive = on;
        self
    }

    /// The breaker, or the [`ConfigError`] naming the field that does not
    /// fit (threshold or half_open_max above 65 535, timeout above 2^36 ms,
    /// about 2.18 years, a backoff out of range, or a half-open count that
    /// the probe limit, the success threshold and the backoff together
    /// overflow). Never panics.
    pub fn build(self) -> Result<CoreBreaker, ConfigError> {
        let limits = self.config.validate()?;
        let schedule = self.backoff.schedule(limits.timeout_ticks).map_err(|err| match err {
            BackoffError::Factor => ConfigError::BackoffFactor { value: self.backoff.factor() },
            BackoffError::Max => ConfigError::BackoffMax { value: self.backoff.max().unwrap_or_default() },
            BackoffError::Steps => {
                ConfigError::BackoffSteps { factor: self.backoff.factor(), max: self.backoff.max().unwrap_or_default() }
            }
        })?;
        let limits = limits.with_policy(self.success_threshold, schedule.steps)?;
        let limits = if self.consecutive { limits } else { limits.without_consecutive_rule() };
        let schedule = (self.backoff != Backoff::fixed()).then(|| Box::new(schedule));
        let time = match self.clock {
            ClockChoice::Real => TimeSource::new(real_clock()),
            ClockChoice::Given(clock) => TimeSource::new(clock),
            ClockChoice::Recent(clock) => TimeSource::recent(clock.into_clock()),
        };
        let observer = match (self.name, self.listener) {
            (None, None) => None,
            (name, listener) => Some(Box::new(Observer { name, listener })),
        };
        Ok(CoreBreaker::assemble(limits, time, observer, schedule))
    }
}

/// The real clock, made once per process and cloned for each breaker:
/// `quanta::Clock::new()` probes the processor with `cpuid` each time,
/// which a virtual machine traps (tens of microseconds a breaker, which a
/// registry making breakers for new keys pays per key), and every clock it
/// makes reads the same counter with the same calibration.
fn real_clock() -> quanta::Clock {
    static REAL: OnceLock<quanta::Clock> = OnceLock::new();
    REAL.get_or_init(quanta::Clock::new).clone()
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = match self.clock {
            ClockChoice::Real => "real",
            ClockChoice::Given(_) => "given",
            ClockChoice::Recent(_) => "recent",
        };
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("clock", &clock)
            .field("name", &self.name)
            .field("listener", &self.listener.as_ref().map(|_| "Fn(&Transition)"))
            .field("backoff", &self.backoff)
            .field("success_threshold", &self.success_threshold)
            .field("consecutive_failures", &self.consecutive)
            .finish()
    }
}
