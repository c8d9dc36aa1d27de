//! [`Builder`]: every way to configure a [`Breaker`] beyond its [`Config`].

use core::fmt;
use std::sync::Arc;

use breaker_core::{Backoff, Config, ConfigError, CoreBreaker, RecentClock, Transition, quanta};

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
    core: breaker_core::Builder,
    /// Kept here rather than handed to the core at once, so that `build`
    /// can put the `tracing` event in front of it.
    listener: Option<Listener>,
}

type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

impl Builder {
    pub(crate) fn new(config: Config) -> Builder {
        Builder { core: CoreBreaker::builder(config), listener: None }
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
    /// use breaker::{Breaker, Config, RecentClock};
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
    /// [`breaker_core::Builder::backoff`] for the schedule and the hung-probe
    /// lease.
    ///
    /// ```
    /// use breaker::{Backoff, Breaker, Config, Jitter};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breaker::quanta::Clock::mock();
    /// let config = Config { threshold: 1, timeout: Duration::from_secs(1), half_open_max: 1 };
    /// let breaker = Breaker::builder(config)
    ///     .clock(clock)
    ///     .backoff(Backoff::exponential(2.0, Duration::from_secs(60)).jitter(Jitter::Full))
    ///     .build()?;
    /// let _ = breaker.call(|| Err::<(), _>("down"));
    /// let wait = breaker.call(|| Ok::<_, &str>(())).unwrap_err().rejected().unwrap().retry_after();
    /// assert!(wait >= Duration::from_millis(1) && wait <= Duration::from_secs(1));
    /// # Ok::<(), breaker::ConfigError>(())
    /// ```
    pub fn backoff(self, backoff: Backoff) -> Builder {
        Builder { core: self.core.backoff(backoff), ..self }
    }

    /// Probe successes of one half-open round needed to close (default 1;
    /// 0 means the default); any probe failure reopens first. See
    /// [`breaker_core::Builder::success_threshold`].
    pub fn success_threshold(self, successes: u32) -> Builder {
        Builder { core: self.core.success_threshold(successes), ..self }
    }

    /// Names the breaker for logs and metrics: [`Breaker::name`], `Debug`,
    /// every [`Transition`], the `tracing` events and the Prometheus
    /// collector's `breaker` label show it. Costs the name's `Arc<str>` and a
    /// 32-byte box (shared with the listener) at build, nothing per call.
    ///
    /// ```
    /// use breaker::{Breaker, Config};
    ///
    /// let breaker = Breaker::builder(Config::default()).name("users").build()?;
    /// assert_eq!(breaker.name(), "users");
    /// assert!(format!("{breaker:?}").starts_with(r#"Breaker { name: "users", state: Closed"#));
    /// # Ok::<(), breaker::ConfigError>(())
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
    /// use breaker::{Breaker, Config, Reason, State};
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
    /// assert_eq!(opened.to_string(), "users: closed -> open (threshold_reached, #1)");
    /// # Ok::<(), breaker::ConfigError>(())
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
    /// use breaker::{Breaker, Config};
    ///
    /// let err = Breaker::builder(Config { threshold: 1 << 20, ..Config::default() }).build().unwrap_err();
    /// assert_eq!(err.field(), "threshold");
    /// ```
    pub fn build(self) -> Result<Breaker, ConfigError> {
        let core = match with_tracing(self.listener) {
            Some(listener) => self.core.on_transition_shared(listener),
            None => self.core,
        };
        Ok(Breaker::from_core(core.build()?))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("core", &self.core)
            .field("listener", &self.listener.as_ref().map(|_| "Fn(&Transition)"))
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
