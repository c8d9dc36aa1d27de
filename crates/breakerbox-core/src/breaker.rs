//! [`CoreBreaker`]: the cell, the validated config and the clock together.

use core::fmt;
use core::time::Duration;

use crossbeam_utils::CachePadded;

use crate::backoff::Schedule;
use crate::builder::Builder;
use crate::cell::StateCell;
use crate::config::{Config, ConfigError, ValidConfig};
use crate::observe::{Change, Observer};
use crate::recent_clock::RecentClock;
use crate::sync::{AtomicU64, Ordering};
use crate::ticket::{Outcome, Recorded, Rejected, Ticket};
use crate::time::{TimeSource, Timestamp, ticks_rounded_up};
use crate::transition::{self, Policy, Step};
use crate::word::{State, StateWord};

/// A lock-free circuit breaker: one `AtomicU64` and a clock.
///
/// Admit a call with [`acquire`](Self::acquire), run it, hand the
/// [`Ticket`] back with its [`Outcome`] through [`record`](Self::record).
/// Every method takes `&self` and is safe to call from any number of threads;
/// every change is one CAS on the state word, and a healthy closed breaker is
/// only ever read.
///
/// Each method has a time-explicit twin (`*_at`) that takes a [`Timestamp`]
/// instead of reading the clock, for callers that already hold one and for
/// tests, models and fuzzers. Mixing the two on one breaker is fine as long as
/// the timestamps come from [`now`](Self::now) or
/// [`timestamp`](Self::timestamp) of the same breaker (on a
/// [`RecentClock`], `timestamp` caps instants at the clock's lagging time, so
/// that a timestamp never runs ahead of the ones transitions are stamped with).
///
/// ```
/// use breakerbox_core::{Config, CoreBreaker, Outcome, State};
/// use std::time::Duration;
///
/// let (clock, mock) = breakerbox_core::quanta::Clock::mock();
/// let config = Config { threshold: 2, timeout: Duration::from_secs(5), half_open_max: 1 };
/// let breaker = CoreBreaker::with_clock(config, clock)?;
///
/// for _ in 0..2 {
///     let ticket = breaker.acquire().expect("closed breakers admit");
///     breaker.record(ticket, Outcome::Failure);
/// }
/// assert_eq!(breaker.state(), State::Open);
/// assert!(breaker.acquire().is_err());
///
/// mock.increment(Duration::from_secs(5));
/// let probe = breaker.acquire().expect("the timeout has passed");
/// breaker.record(probe, Outcome::Success);
/// assert_eq!(breaker.state(), State::Closed);
/// # Ok::<(), breakerbox_core::ConfigError>(())
/// ```
pub struct CoreBreaker {
    // Padded so that a neighbour's writes (another breaker in an array, a
    // counter) never invalidate the line every admission reads. The word
    // shares that line only with the config and the clock, which nothing
    // writes after construction: a breaker is one line, not a line for the
    // word and another for the rest.
    parts: CachePadded<Parts>,
}

struct Parts {
    cell: StateCell,
    limits: ValidConfig,
    time: TimeSource,
    /// Changes of state into open, counted by the thread that made each.
    opens: AtomicU64,
    /// Boxed: it is read only on transitions, and a breaker without a name
    /// or a listener should not spend its cache line on them.
    observer: Option<Box<Observer>>,
    /// The backoff, boxed for the same reason; `None` is the fixed one.
    schedule: Option<Box<Schedule>>,
}

// The word's line holds the word and what every transition reads; it must
// not spill into a second line.
#[cfg(not(loom))]
const _: () = assert!(size_of::<Parts>() <= 128);

impl CoreBreaker {
    /// A builder for a breaker with options beyond the [`Config`]: the clock,
    /// a name, a transition listener.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker};
    ///
    /// let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
    /// let breaker = CoreBreaker::builder(Config::default()).name("users").clock(clock).build()?;
    /// assert_eq!(breaker.name(), "users");
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub fn builder(config: Config) -> Builder {
        Builder::new(config)
    }

    /// A breaker on the real monotonic clock (`quanta::Clock::new()`).
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, State};
    ///
    /// let breaker = CoreBreaker::new(Config::default())?;
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub fn new(config: Config) -> Result<CoreBreaker, ConfigError> {
        CoreBreaker::builder(config).build()
    }

    /// A breaker on the given clock; `quanta::Clock::mock()` in tests, so
    /// time moves only when the test says so.
    pub fn with_clock(config: Config, clock: quanta::Clock) -> Result<CoreBreaker, ConfigError> {
        CoreBreaker::builder(config).clock(clock).build()
    }

    /// A breaker on a [`RecentClock`]: rejections while open cost a shared
    /// load instead of a cycle-counter read, and the breaker's time lags by
    /// up to a tick plus the upkeep thread's scheduling delay (see
    /// [`RecentClock`] for the trade).
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, RecentClock};
    ///
    /// let clock = RecentClock::shared()?;
    /// let breaker = CoreBreaker::with_recent_clock(Config::default(), clock)?;
    /// let ticket = breaker.acquire()?;
    /// breaker.record(ticket, breakerbox_core::Outcome::Success);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_recent_clock(config: Config, clock: RecentClock) -> Result<CoreBreaker, ConfigError> {
        CoreBreaker::builder(config).recent_clock(clock).build()
    }

    pub(crate) fn assemble(
        limits: ValidConfig,
        time: TimeSource,
        observer: Option<Box<Observer>>,
        schedule: Option<Box<Schedule>>,
    ) -> CoreBreaker {
        let parts = Parts { cell: StateCell::new(), limits, time, opens: AtomicU64::new(0), observer, schedule };
        CoreBreaker { parts: CachePadded::new(parts) }
    }

    /// What the transition functions need beyond the word.
    #[inline(always)]
    fn policy(&self) -> Policy<'_> {
        Policy { limits: &self.parts.limits, schedule: &self.parts.schedule }
    }

    /// Asks to let one call through, reading the clock only if the breaker is
    /// not closed.
    ///
    /// A closed breaker admits with one load. An open one rejects until its
    /// deadline (the timeout, or the backoff's current step, or a
    /// [`trip_for`](Self::trip_for)'s duration, after it opened), then the
    /// first acquire moves it to half-open and is the first probe. A
    /// half-open one admits up to `half_open_max` probes at once; when every
    /// slot is held and the round of probing started a whole lease ago (the
    /// timeout, or the backoff's current step before jitter), the next
    /// acquire starts a fresh round and the old probes go stale. The lease
    /// runs from the start of the round, not from each probe's admission: a
    /// probe let into a slot that an ignored probe freed late in the round
    /// can be replaced after less than a full lease. A breaker held open by
    /// [`isolate`](Self::isolate) rejects every call until a reset.
    #[inline]
    pub fn acquire(&self) -> Result<Ticket, Rejected> {
        let word = self.parts.cell.load();
        match transition::acquire_read_only(word) {
            Some(ticket) => Ok(ticket),
            None => self.acquire_changing(word, &mut || self.parts.time.now()),
        }
    }

    /// [`acquire`](Self::acquire) at a time the caller gives.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, Timestamp};
    /// use std::time::Duration;
    ///
    /// let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
    /// let breaker = CoreBreaker::with_clock(Config { timeout: Duration::from_millis(100), ..Config::default() }, clock)?;
    /// breaker.trip_at(Timestamp::from_millis(1_000));
    /// assert!(breaker.acquire_at(Timestamp::from_millis(1_099)).is_err());
    /// assert!(breaker.acquire_at(Timestamp::from_millis(1_100)).is_ok());
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    #[inline]
    pub fn acquire_at(&self, now: Timestamp) -> Result<Ticket, Rejected> {
        let word = self.parts.cell.load();
        match transition::acquire_read_only(word) {
            Some(ticket) => Ok(ticket),
            None => self.acquire_changing(word, &mut || now),
        }
    }

    /// Reports how an admitted call ended. Reads the clock only when the
    /// result makes the breaker change state.
    ///
    /// A ticket issued before the breaker's last transition is stale: the
    /// result changes nothing and [`Recorded::Stale`] says so.
    #[inline]
    pub fn record(&self, ticket: Ticket, outcome: Outcome) -> Recorded {
        let word = self.parts.cell.load();
        match transition::record_read_only(word, ticket, outcome) {
            Some(recorded) => recorded,
            None => self.record_changing(word, ticket, outcome, &mut || self.parts.time.now()),
        }
    }

    /// [`record`](Self::record) at a time the caller gives.
    #[inline]
    pub fn record_at(&self, ticket: Ticket, outcome: Outcome, now: Timestamp) -> Recorded {
        let word = self.parts.cell.load();
        match transition::record_read_only(word, ticket, outcome) {
            Some(recorded) => recorded,
            None => self.record_changing(word, ticket, outcome, &mut || now),
        }
    }

    // The paths that may write or read the clock stay out of line, so that
    // what callers inline (and their compiler weighs when deciding what to
    // inline around it) is the healthy path's load and compare. The four
    // public methods spell out load-then-decide each rather than share a
    // helper taking the `now` closure: through such a helper the compiler
    // stores the closure on every call, the healthy ones included.

    #[inline(never)]
    fn acquire_changing(&self, word: StateWord, now: &mut impl FnMut() -> Timestamp) -> Result<Ticket, Rejected> {
        self.parts.cell.transition_from(
            word,
            |word| transition::acquire(word, self.policy(), now),
            |change| self.report(change),
        )
    }

    #[inline(never)]
    fn record_changing(
        &self,
        word: StateWord,
        ticket: Ticket,
        outcome: Outcome,
        now: &mut impl FnMut() -> Timestamp,
    ) -> Recorded {
        self.parts.cell.transition_from(
            word,
            |word| transition::record(word, ticket, outcome, self.policy(), now),
            |change| self.report(change),
        )
    }

    /// Counts and reports a change one of this breaker's CASes made.
    #[cold]
    fn report(&self, change: Change) {
        if change.reason.is_some() && change.to.phase() == State::Open && change.from.phase() != State::Open {
            self.parts.opens.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(observer) = &self.parts.observer {
            observer.report(change);
        }
    }

    /// Opens the breaker now, as a failure would: the backoff streak advances
    /// and the open lasts its next step (the timeout, without a backoff). An
    /// open breaker restarts its timer; a breaker held open by
    /// [`isolate`](Self::isolate) stays held. Every outstanding ticket goes
    /// stale.
    pub fn trip(&self) {
        // The clock is read inside the CAS loop, as acquire and record read
        // it: a retry after losing to another transition must not stamp a
        // time older than that transition's, which would shorten its open
        // period.
        let now = &mut || self.parts.time.now();
        self.manual(|word| transition::trip(word, self.policy(), now));
    }

    /// [`trip`](Self::trip) at a time the caller gives.
    pub fn trip_at(&self, now: Timestamp) {
        self.manual(|word| transition::trip(word, self.policy(), &mut || now));
    }

    /// Opens the breaker now for `duration` (rounded up to whole
    /// milliseconds, at most [`Config::MAX_TIMEOUT`]), whatever the backoff
    /// says, and leaves the backoff streak as it is: for a downstream that
    /// said when to come back (an HTTP 429 or 503 with `Retry-After`). Then
    /// probing starts as after any open. A breaker held open stays held.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, State};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breakerbox_core::quanta::Clock::mock();
    /// let breaker = CoreBreaker::with_clock(Config::default(), clock)?;
    /// breaker.trip_for(Duration::from_secs(120)); // Retry-After: 120
    /// assert_eq!(breaker.acquire().unwrap_err().retry_after(), Some(Duration::from_secs(120)));
    /// mock.increment(Duration::from_secs(120));
    /// assert_eq!(breaker.state(), State::HalfOpen);
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub fn trip_for(&self, duration: Duration) {
        let ticks = clamp_ticks(duration);
        let now = &mut || self.parts.time.now();
        self.manual(|word| transition::trip_for(word, ticks, self.policy(), now));
    }

    /// [`trip_for`](Self::trip_for) at a time the caller gives.
    pub fn trip_for_at(&self, duration: Duration, now: Timestamp) {
        let ticks = clamp_ticks(duration);
        self.manual(|word| transition::trip_for(word, ticks, self.policy(), &mut || now));
    }

    /// Holds the breaker open until [`reset`](Self::reset): no call and no
    /// probe goes through however long the clock runs, [`state`](Self::state)
    /// reads [`State::Open`], and every rejection says
    /// [`is_held_open`](Rejected::is_held_open). For maintenance, or an
    /// operator who knows the downstream is down. Trips do not lift it.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, State};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breakerbox_core::quanta::Clock::mock();
    /// let breaker = CoreBreaker::with_clock(Config::default(), clock)?;
    /// breaker.isolate();
    /// mock.increment(Duration::from_secs(3_600));
    /// assert!(breaker.acquire().unwrap_err().is_held_open());
    /// breaker.reset();
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub fn isolate(&self) {
        let now = &mut || self.parts.time.now();
        self.manual(|word| transition::isolate(word, now));
    }

    /// [`isolate`](Self::isolate) at a time the caller gives.
    pub fn isolate_at(&self, now: Timestamp) {
        self.manual(|word| transition::isolate(word, &mut || now));
    }

    /// Closes the breaker now with no failures and no backoff streak,
    /// whatever its state (this is what lifts [`isolate`](Self::isolate)).
    /// Every outstanding ticket goes stale.
    pub fn reset(&self) {
        let now = &mut || self.parts.time.now();
        self.manual(|word| transition::reset(word, now));
    }

    /// [`reset`](Self::reset) at a time the caller gives.
    pub fn reset_at(&self, now: Timestamp) {
        self.manual(|word| transition::reset(word, &mut || now));
    }

    /// Opens the breaker if it is still closed in the generation `ticket`
    /// was issued in, because a rule kept outside the breaker says so (the
    /// facade's failure-rate window, or a rule of your own; see
    /// [`Builder::consecutive_failures`]): as reaching the threshold would,
    /// with the backoff's next step, reported as
    /// [`Reason::FailureRateReached`](crate::Reason).
    /// `true` if this call opened it; `false` if the breaker was no longer
    /// closed in that generation (another failure, a trip or a reset got
    /// there first), which changes nothing.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, State};
    ///
    /// let breaker = CoreBreaker::new(Config::default())?;
    /// let ticket = breaker.acquire()?;
    /// assert!(breaker.open_on_rate(ticket));
    /// assert!(!breaker.open_on_rate(ticket), "already open: the ticket's generation is over");
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_on_rate(&self, ticket: Ticket) -> bool {
        let now = &mut || self.parts.time.now();
        self.parts
            .cell
            .transition(|word| transition::open_on_rate(word, ticket, self.policy(), now), |change| self.report(change))
    }

    /// [`open_on_rate`](Self::open_on_rate) at a time the caller gives.
    pub fn open_on_rate_at(&self, ticket: Ticket, now: Timestamp) -> bool {
        self.parts.cell.transition(
            |word| transition::open_on_rate(word, ticket, self.policy(), &mut || now),
            |change| self.report(change),
        )
    }

    /// Runs a manual transition's step in the CAS loop and reports what it
    /// changed.
    fn manual(&self, step: impl FnMut(StateWord) -> Step<()>) {
        self.parts.cell.transition(step, |change| self.report(change));
    }

    /// The state as callers see it, without changing anything: an open
    /// breaker whose deadline has passed reports [`State::HalfOpen`] although
    /// it moves there only at the next acquire. Reads the clock only if the
    /// breaker is open.
    #[inline]
    pub fn state(&self) -> State {
        transition::observe(self.parts.cell.load(), &mut || self.parts.time.now())
    }

    /// [`state`](Self::state) at a time the caller gives.
    #[inline]
    pub fn state_at(&self, now: Timestamp) -> State {
        transition::observe(self.parts.cell.load(), &mut || now)
    }

    /// The stored state, for metrics and debugging: one load, nothing
    /// decided (see [`StateWord`]).
    #[inline]
    pub fn snapshot(&self) -> StateWord {
        self.parts.cell.load()
    }

    /// The current time on this breaker's clock.
    #[inline]
    pub fn now(&self) -> Timestamp {
        self.parts.time.now()
    }

    /// An instant of this breaker's clock as a [`Timestamp`], for callers
    /// that already read the clock in their own loop. Instants before the
    /// breaker was created map to [`Timestamp::ZERO`].
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker, Timestamp};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breakerbox_core::quanta::Clock::mock();
    /// let breaker = CoreBreaker::with_clock(Config::default(), clock.clone())?;
    /// mock.increment(Duration::from_millis(42));
    /// assert_eq!(breaker.timestamp(clock.now()), Timestamp::from_millis(42));
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    #[inline]
    pub fn timestamp(&self, instant: quanta::Instant) -> Timestamp {
        self.parts.time.timestamp(instant)
    }

    /// The config in force, with every field explicit: defaults resolved
    /// and the timeout rounded up to whole milliseconds. With
    /// [`Builder::consecutive_failures`] off its threshold is 0.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker};
    /// use std::time::Duration;
    ///
    /// let breaker = CoreBreaker::new(Config { timeout: Duration::from_micros(1_500), ..Config::default() })?;
    /// assert_eq!(breaker.config(), Config { timeout: Duration::from_millis(2), ..Config::default() });
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub fn config(&self) -> Config {
        self.parts.limits.config()
    }

    /// The config in force with the builder's options: what
    /// [`config`](Self::config) gives, and the success threshold.
    pub fn valid_config(&self) -> ValidConfig {
        self.parts.limits
    }

    /// The name given with [`Builder::name`]; empty when there is none.
    pub fn name(&self) -> &str {
        self.parts.observer.as_ref().and_then(|observer| observer.name.as_deref()).unwrap_or("")
    }

    /// How many times the breaker has changed state into open (a threshold
    /// reached, a probe failed, a trip or an isolation of a breaker that was
    /// not open) since it was created. Kept whether or not anyone listens.
    ///
    /// ```
    /// use breakerbox_core::{Config, CoreBreaker};
    ///
    /// let breaker = CoreBreaker::new(Config::default())?;
    /// breaker.trip();
    /// breaker.trip(); // already open: not a change of state
    /// assert_eq!(breaker.opens(), 1);
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub fn opens(&self) -> u64 {
        self.parts.opens.load(Ordering::Relaxed)
    }
}

/// A duration as whole ticks, rounded up and capped at the longest timeout.
fn clamp_ticks(duration: Duration) -> u64 {
    ticks_rounded_up(duration).min(u128::from(crate::word::MAX_TIMEOUT_TICKS)) as u64
}

impl fmt::Debug for CoreBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreBreaker")
            .field("name", &self.name())
            .field("word", &self.snapshot())
            .field("config", &self.parts.limits)
            .finish()
    }
}
