//! [`Builder`]: every way to configure a [`Breaker`] beyond its [`Config`].

use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use breakerbox_core::__private::{RateRule, RateWindow};
use breakerbox_core::{Backoff, Config, ConfigError, CoreBreaker, FailureRate, RecentClock, Transition, quanta};

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
/// use breakerbox::{Breaker, Config, State};
/// use std::time::Duration;
///
/// let (clock, mock) = breakerbox::quanta::Clock::mock();
/// let breaker = Breaker::builder(Config { threshold: 2, ..Config::default() }).clock(clock).build()?;
/// breaker.trip();
/// mock.increment(Duration::from_secs(30));
/// assert_eq!(breaker.state(), State::HalfOpen);
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Clone)]
pub struct Builder {
    core: breakerbox_core::Builder,
    /// Kept here rather than handed to the core at once, so that `build`
    /// can put the `tracing` event in front of it.
    listener: Option<Listener>,
    rate: Option<FailureRate>,
    slow_call: Option<Duration>,
}

type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

impl Builder {
    pub(crate) fn new(config: Config) -> Builder {
        Builder { core: CoreBreaker::builder(config), listener: None, rate: None, slow_call: None }
    }

    /// Runs the breaker on `clock` instead of the real one: typically
    /// `quanta::Clock::mock()` in tests, so that time moves only when the
    /// test says (use the [`quanta`](crate::quanta) re-export so the versions
    /// match).
    pub fn clock(self, clock: quanta::Clock) -> Builder {
        Builder { core: self.core.clock(clock), ..self }
    }

    /// Runs the breaker on the coarse [`RecentClock`]: a rejection while open
    /// costs a shared load instead of a cycle-counter read, and the breaker's
    /// time lags real time by about a millisecond (see [`RecentClock`] for
    /// the trade).
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, RecentClock};
    ///
    /// let clock = RecentClock::shared()?; // starts the process's upkeep thread once
    /// let breaker = Breaker::builder(Config::default()).recent_clock(clock).build()?;
    /// breaker.trip();
    /// assert!(breaker.call(|| Ok::<_, ()>(())).unwrap_err().is_open());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recent_clock(self, clock: RecentClock) -> Builder {
        Builder { core: self.core.recent_clock(clock), ..self }
    }

    /// How long consecutive opens last: [`Backoff::fixed`] (the default:
    /// every open lasts the timeout) or [`Backoff::exponential`], spread by
    /// a [`Jitter`](crate::Jitter) if asked. See
    /// [`breakerbox_core::Builder::backoff`] for the schedule and the hung-probe
    /// lease.
    ///
    /// ```
    /// use breakerbox::{Backoff, Breaker, Config, Jitter};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breakerbox::quanta::Clock::mock();
    /// let config = Config { threshold: 1, timeout: Duration::from_secs(1), half_open_max: 1 };
    /// let breaker = Breaker::builder(config)
    ///     .clock(clock)
    ///     .backoff(Backoff::exponential(2.0, Duration::from_secs(60)).jitter(Jitter::Full))
    ///     .build()?;
    /// let _ = breaker.call(|| Err::<(), _>("down"));
    /// let wait = breaker.call(|| Ok::<_, &str>(())).unwrap_err().rejected().unwrap().retry_after().unwrap();
    /// assert!(wait >= Duration::from_millis(1) && wait <= Duration::from_secs(1));
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn backoff(self, backoff: Backoff) -> Builder {
        Builder { core: self.core.backoff(backoff), ..self }
    }

    /// Probe successes of one half-open round needed to close (default 1;
    /// 0 means the default); any probe failure reopens first. See
    /// [`breakerbox_core::Builder::success_threshold`].
    pub fn success_threshold(self, successes: u32) -> Builder {
        Builder { core: self.core.success_threshold(successes), ..self }
    }

    /// Opens the breaker also when the failure rate over a sliding window is
    /// too high: while closed, a failure opens it when, over the last
    /// `rate.window()`, at least `rate.min_calls()` calls finished and
    /// `failures / calls >= rate.ratio()`. The consecutive rule stays on
    /// unless [`consecutive_failures(false)`](Self::consecutive_failures);
    /// whichever fires first opens the breaker, the rate rule's opening is
    /// reported as [`Reason::FailureRateReached`](crate::Reason).
    ///
    /// The window is 10 buckets of
    /// `window / 10` (rounded up to whole milliseconds): a call counts from
    /// the moment it finishes until its bucket is ten buckets old, so the
    /// window reaches back between 9 and 10 buckets. Only calls admitted
    /// and reported while closed in one generation count: ignored and stale
    /// results and rejections count nowhere, and every transition (a close,
    /// a [`reset`](Breaker::reset)) starts an empty window. The rule is
    /// checked when a failure is counted; a success never opens the breaker.
    ///
    /// Cost: every call reads the breaker's clock when it reports (a
    /// cycle-counter read on the default clock, a shared load on a
    /// [`RecentClock`]) and stores to a ring of buckets only its thread
    /// writes (184 bytes per breaker and thread); a failure sums every
    /// thread's ring. A sum can miss a success another thread is storing at
    /// that moment, which reads the rate a little high; a failure is never
    /// missed by the failures after it, so a breaker the rule says must open
    /// is opened by the failure that tips it or the next one. `BENCHMARKS.md`
    /// has the numbers.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, FailureRate, State};
    /// use std::time::Duration;
    ///
    /// let (clock, _mock) = breakerbox::quanta::Clock::mock();
    /// let breaker = Breaker::builder(Config { threshold: 5, ..Config::default() })
    ///     .clock(clock)
    ///     .failure_rate(FailureRate::new(0.5, 10, Duration::from_secs(10)))
    ///     .build()?;
    /// for i in 0..10 {
    ///     // Every other call fails: never five in a row, but half of them.
    ///     let _ = breaker.call(|| if i % 2 == 0 { Ok(()) } else { Err("503") });
    /// }
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn failure_rate(self, rate: FailureRate) -> Builder {
        Builder { rate: Some(rate), ..self }
    }

    /// Counts a call that succeeded after longer than `threshold` as a
    /// failure, for the consecutive rule, the failure rate and a half-open
    /// probe alike; the caller still gets its value, and
    /// [`Counts::failures`](crate::Counts) includes it. A downstream that
    /// answers in 20 s instead of 20 ms is down for its callers.
    ///
    /// Time is the breaker's clock in whole milliseconds, read when the call
    /// is admitted and when it reports, so a call is slow when the two
    /// readings differ by more than `threshold` (rounded up to whole
    /// milliseconds): up to a millisecond off either way, and on a
    /// [`RecentClock`] also by the clock's lag. Timing every call costs two
    /// clock reads per call (one with a failure rate already on). Rejected
    /// by [`build`](Self::build) when zero or above
    /// [`Config::MAX_TIMEOUT`].
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, State};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breakerbox::quanta::Clock::mock();
    /// let breaker = Breaker::builder(Config { threshold: 2, ..Config::default() })
    ///     .clock(clock)
    ///     .slow_call(Duration::from_secs(2))
    ///     .build()?;
    /// for _ in 0..2 {
    ///     let answer = breaker.call(|| {
    ///         mock.increment(Duration::from_secs(20)); // the downstream took 20 s
    ///         Ok::<_, ()>("200 OK")
    ///     });
    ///     assert_eq!(answer, Ok("200 OK"));
    /// }
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn slow_call(self, threshold: Duration) -> Builder {
        Builder { slow_call: Some(threshold), ..self }
    }

    /// Whether `Config::threshold` consecutive failures open the breaker
    /// (default `true`). Switch it off to let a
    /// [`failure_rate`](Self::failure_rate) alone decide; without one, only
    /// [`trip`](Breaker::trip) and friends open the breaker.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, FailureRate, State};
    /// use std::time::Duration;
    ///
    /// let breaker = Breaker::builder(Config { threshold: 1, ..Config::default() })
    ///     .consecutive_failures(false)
    ///     .failure_rate(FailureRate::new(0.9, 20, Duration::from_secs(10)))
    ///     .build()?;
    /// let _ = breaker.call(|| Err::<(), _>("one failure is not 90% of 20 calls"));
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn consecutive_failures(self, on: bool) -> Builder {
        Builder { core: self.core.consecutive_failures(on), ..self }
    }

    /// Names the breaker for logs and metrics: [`Breaker::name`], `Debug`,
    /// every [`Transition`], the `tracing` events and the Prometheus
    /// collector's `breaker` label show it. Costs the name's `Arc<str>` and a
    /// 32-byte box (shared with the listener) at build, nothing per call.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config};
    ///
    /// let breaker = Breaker::builder(Config::default()).name("users").build()?;
    /// assert_eq!(breaker.name(), "users");
    /// assert!(format!("{breaker:?}").starts_with(r#"Breaker { name: "users", state: Closed"#));
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn name(self, name: impl Into<Arc<str>>) -> Builder {
        Builder { core: self.core.name(name), ..self }
    }

    /// Calls `listener` once for every change of state, on the thread whose
    /// compare-and-swap made it, right after that CAS, with no lock held: see
    /// [`Transition`] for what counts as a change and how to order the events
    /// of concurrent threads. A later call replaces an earlier listener.
    ///
    /// The listener runs inside the call that made the transition (a call
    /// whose failure opened the breaker, the first call after the timeout),
    /// so keep it short: log, count, or send to a channel. A listener that
    /// panics does not reach that caller: the panic hook runs as for any
    /// panic (printing the message), the panic is caught, and the transition,
    /// the call's result and its count stand as if the listener had
    /// returned. (Under `panic = "abort"` a panic aborts the process,
    /// listener or not.)
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, Reason, State};
    /// use std::sync::mpsc;
    ///
    /// let (events, received) = mpsc::channel();
    /// let breaker = Breaker::builder(Config { threshold: 1, ..Config::default() })
    ///     .name("users")
    ///     .on_transition(move |t| { let _ = events.send(t.clone()); })
    ///     .build()?;
    /// let _ = breaker.call(|| Err::<(), _>("connection refused"));
    /// let opened = received.try_recv().unwrap();
    /// assert_eq!((opened.from(), opened.to(), opened.reason()), (State::Closed, State::Open, Reason::ThresholdReached));
    /// assert_eq!(opened.to_string(), "users: closed -> open (threshold reached, #1)");
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn on_transition(self, listener: impl Fn(&Transition) + Send + Sync + 'static) -> Builder {
        self.on_transition_shared(Arc::new(listener))
    }

    /// [`on_transition`](Self::on_transition) with a listener many breakers
    /// share: each holds a clone of the `Arc` instead of a boxed copy.
    /// [`Transition::name`] tells them apart. (With the `tracing` feature,
    /// each breaker puts the tracing event in front of it, in a small
    /// allocation of its own.)
    pub fn on_transition_shared(self, listener: Arc<dyn Fn(&Transition) + Send + Sync>) -> Builder {
        Builder { listener: Some(listener), ..self }
    }

    /// The breaker, or the [`ConfigError`] naming the field that does not
    /// fit (threshold or half_open_max above 65 535, timeout above 2^36 ms,
    /// about 2.18 years). Never panics.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config};
    ///
    /// let err = Breaker::builder(Config { threshold: 1 << 20, ..Config::default() }).build().unwrap_err();
    /// assert_eq!(err.field(), "threshold");
    /// ```
    pub fn build(self) -> Result<Breaker, ConfigError> {
        let rate = self.rate.map(|rate| RateRule::new(&rate)).transpose()?.map(RateWindow::new);
        let slow_ticks = match self.slow_call {
            None => None,
            Some(value) if value.is_zero() || value > Config::MAX_TIMEOUT => {
                return Err(ConfigError::SlowCall { value });
            }
            // At most `MAX_TIMEOUT` (2^36 ms): the cast is exact.
            Some(value) => Some(value.as_nanos().div_ceil(1_000_000) as u64),
        };
        let core = match with_tracing(self.listener) {
            Some(listener) => self.core.on_transition_shared(listener),
            None => self.core,
        };
        Ok(Breaker::watching(core.build()?, rate, slow_ticks))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("core", &self.core)
            .field("listener", &self.listener.as_ref().map(|_| "Fn(&Transition)"))
            .field("failure_rate", &self.rate)
            .field("slow_call", &self.slow_call)
            .finish()
    }
}

/// The listener to install: the user's, behind one `tracing` event per
/// transition when that feature is on. Breakers without a listener of their
/// own share one tracing listener.
fn with_tracing(listener: Option<Listener>) -> Option<Listener> {
    #[cfg(feature = "tracing")]
    {
        static TRACE_ONLY: std::sync::LazyLock<Listener> =
            std::sync::LazyLock::new(|| Arc::new(crate::trace::transition));
        Some(match listener {
            None => Arc::clone(&TRACE_ONLY),
            Some(listener) => Arc::new(move |t: &Transition| {
                crate::trace::transition(t);
                listener(t);
            }),
        })
    }
    #[cfg(not(feature = "tracing"))]
    listener
}
