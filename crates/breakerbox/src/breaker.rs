//! [`Breaker`]: the core state machine, counters, and the call API on top.

use core::fmt;
use core::future::Future;
use std::sync::Arc;

use breakerbox_core::__private::{RateWindow, Ring};
use breakerbox_core::quanta;
use breakerbox_core::{Config, ConfigError, CoreBreaker, Outcome, Recorded, Rejected, State, Ticket, Timestamp};

use crate::builder::Builder;
use crate::call_future::CallFuture;
use crate::classify::{ByResult, Classify};
use crate::counts::{Count, Counts, Tally, ThreadSlot};
use crate::error::Error;
use crate::lane::{Slot, increment};
use crate::local;
use crate::permit::{Admission, OwnedPermit, Permit};
use crate::rules::Rules;

/// A circuit breaker around calls to one downstream service.
///
/// Share it by reference or in an `Arc`: every method takes `&self`, and a
/// healthy closed breaker is only ever read, so threads calling through it do
/// not slow each other down.
///
/// ```
/// use breakerbox::{Breaker, Config, Error, State};
/// use std::time::Duration;
///
/// let (clock, mock) = breakerbox::quanta::Clock::mock();
/// let config = Config { threshold: 2, timeout: Duration::from_secs(10), half_open_max: 1 };
/// let breaker = Breaker::with_clock(config, clock).unwrap();
///
/// let flaky = || Err::<u32, _>("timed out");
/// assert!(matches!(breaker.call(flaky), Err(Error::Inner("timed out"))));
/// assert!(matches!(breaker.call(flaky), Err(Error::Inner("timed out"))));
/// assert_eq!(breaker.state(), State::Open);
/// assert!(breaker.call(|| Ok::<_, &str>(1)).unwrap_err().is_open()); // not run
///
/// mock.increment(Duration::from_secs(10));
/// assert_eq!(breaker.call(|| Ok::<_, &str>(7)), Ok(7)); // the probe
/// assert_eq!(breaker.state(), State::Closed);
/// ```
pub struct Breaker {
    core: CoreBreaker,
    tally: Tally,
    /// The failure-rate window and slow-call threshold, if either is set.
    rules: Option<Box<Rules>>,
    /// What a [`Registry`](crate::Registry) keeps to evict it; it fits in
    /// the padding of the breaker's second cache line.
    #[cfg(feature = "registry")]
    rest: crate::registry::Rest,
}

impl Breaker {
    /// A builder for a breaker with options beyond the [`Config`]: the
    /// clock, a name, a listener, the failure-rate and slow-call rules, and
    /// every option added later.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config};
    ///
    /// let (clock, _mock) = breakerbox::quanta::Clock::mock();
    /// let breaker = Breaker::builder(Config::default()).name("billing").clock(clock).build()?;
    /// assert_eq!(breaker.name(), "billing");
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn builder(config: Config) -> Builder {
        Builder::new(config)
    }

    /// A breaker on the real clock, or the [`ConfigError`] naming the field
    /// that does not fit (threshold or half_open_max above 65 535, timeout
    /// above about 2.18 years): `Breaker::builder(config).build()`. Never
    /// panics; [`Breaker::default()`] is the infallible form for the default
    /// config. [`CoreBreaker::new`] does the same.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config};
    /// use std::time::Duration;
    ///
    /// let breaker = Breaker::new(Config { threshold: 3, timeout: Duration::from_secs(5), half_open_max: 2 })?;
    /// assert_eq!(breaker.config().half_open_max, 2);
    ///
    /// let err = Breaker::new(Config { half_open_max: 100_000, ..Config::default() }).unwrap_err();
    /// assert_eq!(err.field(), "half_open_max");
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn new(config: Config) -> Result<Breaker, ConfigError> {
        Breaker::builder(config).build()
    }

    /// [`new`](Self::new) on the given clock, typically
    /// `quanta::Clock::mock()` in tests (use the [`quanta`](crate::quanta)
    /// re-export so the versions match): `Breaker::builder(config).clock(clock).build()`.
    /// [`CoreBreaker::with_clock`] does the same.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, State};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breakerbox::quanta::Clock::mock();
    /// let breaker = Breaker::with_clock(Config::default(), clock)?;
    /// breaker.trip();
    /// mock.increment(Duration::from_secs(30)); // no sleeping in tests
    /// assert_eq!(breaker.state(), State::HalfOpen);
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn with_clock(config: Config, clock: quanta::Clock) -> Result<Breaker, ConfigError> {
        Breaker::builder(config).clock(clock).build()
    }

    fn assemble(core: CoreBreaker, tally: Tally, rules: Option<Box<Rules>>) -> Breaker {
        Breaker {
            core,
            tally,
            rules,
            #[cfg(feature = "registry")]
            rest: crate::registry::Rest::default(),
        }
    }

    /// A breaker on `core` watching `rate` and slow calls (over `slow_ticks`
    /// ms), if either is set.
    pub(crate) fn watching(core: CoreBreaker, rate: Option<RateWindow>, slow_ticks: Option<u64>) -> Breaker {
        if rate.is_none() && slow_ticks.is_none() {
            return Breaker::assemble(core, Tally::new(), None);
        }
        let tally = Tally::with_watch(true);
        let rules = Some(Box::new(Rules::new(tally.id(), rate, slow_ticks)));
        Breaker::assemble(core, tally, rules)
    }

    /// Runs `f` if the breaker lets it through; every `Err` counts as a
    /// failure, every `Ok` as a success. The Go package's `Do`.
    ///
    /// A panic in `f` counts as a failure and continues to the caller.
    ///
    /// ```
    /// use breakerbox::{Breaker, Error};
    ///
    /// let breaker = Breaker::default();
    /// let parsed: Result<u16, Error<std::num::ParseIntError>> = breaker.call(|| "8080".parse());
    /// assert_eq!(parsed, Ok(8080));
    /// ```
    #[inline(always)]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, Error<E>> {
        self.call_with(ByResult, f)
    }

    /// Runs `f` if the breaker lets it through; `classify` decides how its
    /// result counts. [`Outcome::Ignored`] counts nothing and frees a probe
    /// slot: for errors that say nothing about the downstream, such as the
    /// caller's own timeout or cancellation. A panic in `f` counts as a
    /// failure; a panic in `classify` (the caller's code, not the
    /// downstream's) counts as ignored.
    ///
    /// `classify` is any [`Classify`]: a closure over `&Result<T, E>` (give
    /// its parameter a type: the compiler does not infer it through the
    /// trait) or a named classifier.
    ///
    /// ```
    /// use breakerbox::{Breaker, Outcome};
    ///
    /// #[derive(Debug)]
    /// enum HttpError { NotFound, Unavailable, CallerTimedOut }
    ///
    /// let breaker = Breaker::default();
    /// let classify = |result: &Result<(), HttpError>| match result {
    ///     Ok(()) | Err(HttpError::NotFound) => Outcome::Success, // the service answered
    ///     Err(HttpError::Unavailable) => Outcome::Failure,
    ///     Err(HttpError::CallerTimedOut) => Outcome::Ignored,    // our deadline, not theirs
    /// };
    /// let _ = breaker.call_with(classify, || Err(HttpError::NotFound));
    /// let _ = breaker.call_with(classify, || Err(HttpError::CallerTimedOut));
    /// assert_eq!((breaker.counts().successes, breaker.counts().failures), (1, 0));
    /// ```
    // Always inlined: it is the counter-slot lookup, a load, the caller's
    // closure, a load and an increment, but with a plain `#[inline]` the
    // compiler keeps it out of line in a loop, adding a call and a result
    // returned through memory to every call.
    #[inline(always)]
    pub fn call_with<T, E>(
        &self,
        classify: impl Classify<T, E>,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        // Built here from the ticket rather than taken out of `try_acquire`'s
        // `Result`: moving the permit out costs a store-forwarding stall.
        // One lookup of this thread's counter slot serves the rejection or
        // the outcome: the whole call runs on this thread.
        let slot = self.tally.thread_slot();
        // Not cached: this thread's first call here, a cache collision, or a
        // breaker with rules. Checking first costs nothing: the counts
        // below would branch on the same test.
        if !slot.is_cached() {
            return self.call_uncached(classify, f);
        }
        let mut admission = Admission::untimed(self, self.admit_in(slot)?);
        let result = admission.run(f);
        admission.record_in(slot, classify.classify(&result));
        result.map_err(Error::Inner)
    }

    /// A call whose counter slot is not in this thread's plain cache: the
    /// first call here, a cache collision, or a breaker with rules.
    // Out of line, so that the plain path around it stays small (inlined,
    // it cost a plain call 3 instructions and gained the watched one
    // nothing); not `#[cold]`, since for a breaker with rules this is every
    // call.
    #[inline(never)]
    fn call_uncached<T, E>(
        &self,
        classify: impl Classify<T, E>,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        if let Some(rules) = self.rules.as_deref() {
            // One lookup of this thread's slot and ring serves the whole call.
            let place = self.watched_place(rules);
            let ticket = match self.core.acquire() {
                Ok(ticket) => ticket,
                Err(rejected) => {
                    self.count_in(place, Count::Rejection);
                    return Err(Error::Open(rejected));
                }
            };
            let mut admission = Admission::new(self, ticket);
            let result = admission.run(f);
            admission.record_watched(rules, place, classify.classify(&result));
            return result.map_err(Error::Inner);
        }
        let mut admission = Admission::new(self, self.admit()?);
        let result = admission.run(f);
        admission.record(classify.classify(&result));
        result.map_err(Error::Inner)
    }

    /// Runs `f` if the breaker lets it through, `fallback` if it does not.
    /// The Go package's `DoWithFallback`. A failing `f` returns its own error;
    /// the fallback runs only on a rejection. For a future,
    /// [`call_async`](Self::call_async)`(..).`[`fallback`](CallFuture::fallback)`(..)`.
    ///
    /// ```
    /// use breakerbox::Breaker;
    ///
    /// let breaker = Breaker::default();
    /// breaker.trip();
    /// let answer = breaker.call_with_fallback(|| Ok::<_, ()>("fresh"), |_rejected| Ok("cached"));
    /// assert_eq!(answer, Ok("cached"));
    /// ```
    #[inline]
    pub fn call_with_fallback<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        fallback: impl FnOnce(Rejected) -> Result<T, E>,
    ) -> Result<T, E> {
        match self.call(f) {
            Ok(value) => Ok(value),
            Err(Error::Inner(err)) => Err(err),
            Err(Error::Open(rejected)) => fallback(rejected),
        }
    }

    /// Awaits `fut` if the breaker lets it through; every `Err` counts as a
    /// failure. No executor is needed beyond the one polling the returned
    /// future, and the breaker decides at its first poll. Before polling,
    /// [`classify`](CallFuture::classify) sets how the result counts and
    /// [`fallback`](CallFuture::fallback) answers a rejection.
    ///
    /// If the returned future is dropped before `fut` completes (the caller
    /// gave up, a `select!` branch lost, a timeout fired), the call counts as
    /// nothing and a half-open breaker gets its probe slot back. A panic while
    /// `fut` is polled counts as a failure.
    ///
    /// ```
    /// use breakerbox::Breaker;
    /// use std::future::Future;
    /// use std::pin::pin;
    /// use std::task::{Context, Poll, Waker};
    ///
    /// let breaker = Breaker::default();
    /// let mut call = pin!(breaker.call_async(async { Ok::<_, ()>(42) }));
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert_eq!(call.as_mut().poll(&mut cx), Poll::Ready(Ok(42)));
    /// ```
    ///
    /// The future borrows the breaker. For a `'static` future (a spawned
    /// task), move an `Arc` of the breaker into the task and call through it
    /// there, or keep the breaker in a `static`:
    ///
    /// ```
    /// use breakerbox::Breaker;
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = Arc::new(Breaker::default());
    /// let task = tokio::spawn({
    ///     let breaker = Arc::clone(&breaker);
    ///     async move { breaker.call_async(async { Ok::<_, ()>(42) }).await }
    /// });
    /// assert_eq!(task.await.unwrap(), Ok(42));
    /// # });
    /// ```
    #[inline]
    pub fn call_async<T, E, F>(&self, fut: F) -> CallFuture<&Breaker, F>
    where
        F: Future<Output = Result<T, E>>,
    {
        CallFuture::new(self, fut)
    }

    /// Admits one call, or says why not. Report its outcome through the
    /// [`Permit`]; dropping the permit unreported counts as ignored.
    ///
    /// ```
    /// use breakerbox::{Breaker, Recorded};
    ///
    /// let breaker = Breaker::default();
    /// match breaker.try_acquire() {
    ///     Ok(permit) => assert_eq!(permit.success(), Recorded::Applied),
    ///     Err(rejected) => println!("not now: {rejected}"),
    /// }
    /// assert_eq!(breaker.counts().successes, 1);
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        self.admit().map(|ticket| Permit::new(Admission::new(self, ticket)))
    }

    /// [`try_acquire`](Self::try_acquire) for a breaker in an `Arc`: the
    /// permit keeps the breaker alive, so it can move into a `'static` task.
    /// [`OwnedPermit`] has an example.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, Rejected> {
        self.admit().map(|ticket| OwnedPermit::new(Admission::new(Arc::clone(self), ticket)))
    }
    /// The state as callers see it, without side effects: an open breaker
    /// whose timeout has passed reports [`State::HalfOpen`].
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, State};
    ///
    /// let breaker = Breaker::default();
    /// assert_eq!(breaker.state(), State::Closed);
    /// assert_eq!(breaker.state().to_string(), "closed");
    /// ```
    #[inline]
    pub fn state(&self) -> State {
        self.core.state()
    }

    /// Successes, failures, rejections and opens since the breaker was
    /// created, summed over every thread that used it.
    #[inline]
    pub fn counts(&self) -> Counts {
        Counts { opens: self.core.opens(), ..self.tally.sum() }
    }

    /// The name given with [`Builder::name`]; empty when there is none.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// Opens the breaker now, as a failure would (with a backoff, for its
    /// next step). Calls in flight report stale results.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, State};
    ///
    /// let breaker = Breaker::default();
    /// breaker.trip();
    /// assert_eq!(breaker.state(), State::Open);
    /// breaker.reset();
    /// assert_eq!(breaker.state(), State::Closed);
    /// ```
    pub fn trip(&self) {
        self.core.trip();
    }

    /// Opens the breaker now for `duration` (at most
    /// [`Config::MAX_TIMEOUT`]), whatever the backoff says, keeping the
    /// backoff streak: for a downstream that said when to come back (a 429
    /// or 503 with `Retry-After`). Probing starts after it, as after any
    /// open. A breaker held open by [`isolate`](Self::isolate) stays held.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config};
    /// use std::time::Duration;
    ///
    /// let breaker = Breaker::default();
    /// breaker.trip_for(Duration::from_secs(120)); // Retry-After: 120
    /// let rejected = breaker.call(|| Ok::<_, ()>(())).unwrap_err().rejected().unwrap();
    /// assert!(rejected.retry_after().is_some_and(|after| after > Duration::from_secs(119)));
    /// ```
    pub fn trip_for(&self, duration: core::time::Duration) {
        self.core.trip_for(duration);
    }

    /// Holds the breaker open until [`reset`](Self::reset): nothing goes
    /// through however long one waits, [`state`](Self::state) reads open, and
    /// each rejection says [`Rejected::is_held_open`]. Trips do not lift it.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, State};
    ///
    /// let breaker = Breaker::default();
    /// breaker.isolate(); // maintenance
    /// assert!(breaker.call(|| Ok::<_, ()>(())).unwrap_err().rejected().unwrap().is_held_open());
    /// breaker.reset();
    /// assert_eq!(breaker.state(), State::Closed);
    /// ```
    pub fn isolate(&self) {
        self.core.isolate();
    }

    /// Closes the breaker now with no failures and no backoff streak (and
    /// lifts [`isolate`](Self::isolate)). Calls in flight report stale
    /// results.
    pub fn reset(&self) {
        self.core.reset();
    }

    /// The config in force, with defaults filled in and the timeout rounded
    /// up to whole milliseconds.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config};
    ///
    /// let breaker = Breaker::new(Config { threshold: 0, ..Config::default() }).unwrap();
    /// assert_eq!(breaker.config().threshold, 5);
    /// ```
    pub fn config(&self) -> Config {
        self.core.config()
    }

    #[cfg(test)]
    pub(crate) fn tally(&self) -> &Tally {
        &self.tally
    }

    #[inline]
    pub(crate) fn admit(&self) -> Result<Ticket, Rejected> {
        self.core.acquire().inspect_err(|_| self.count(Count::Rejection))
    }

    /// The core breaker, for the registry's judgement of whether this one
    /// is at rest.
    #[cfg(feature = "registry")]
    pub(crate) fn core(&self) -> &CoreBreaker {
        &self.core
    }

    /// The failure-rate window, if the breaker has one.
    #[cfg(feature = "registry")]
    pub(crate) fn window(&self) -> Option<&RateWindow> {
        self.rules.as_deref().and_then(|rules| rules.rate.as_ref())
    }

    /// The breaker's eviction bookkeeping in a registry.
    #[cfg(feature = "registry")]
    pub(crate) fn rest(&self) -> &crate::registry::Rest {
        &self.rest
    }

    /// Whether the breaker has a failure-rate or slow-call rule.
    pub(crate) fn is_watched(&self) -> bool {
        self.rules.is_some()
    }

    /// When a call admitted now started, for the slow-call rule; zero (and
    /// no clock read) without one.
    #[inline]
    pub(crate) fn started(&self) -> Timestamp {
        match &self.rules {
            Some(rules) if rules.slow_ticks.is_some() => self.core.now(),
            _ => Timestamp::ZERO,
        }
    }

    /// Adds one to `count` in this thread's slot, whichever path finds it.
    fn count(&self, count: Count) {
        match self.rules.as_deref() {
            None => self.tally.add(count),
            Some(rules) => self.count_in(self.watched_place(rules), count),
        }
    }

    #[inline]
    fn count_in(&self, place: Option<(&'static Slot, &'static Ring)>, count: Count) {
        match place {
            Some((slot, _)) => increment(slot.counter(count)),
            None => self.tally.add_shared(count),
        }
    }

    /// This thread's slot and window ring for a watched breaker; `None` when
    /// the thread cannot use its lane (it is tearing down).
    #[inline]
    pub(crate) fn watched_place(&self, rules: &Rules) -> Option<(&'static Slot, &'static Ring)> {
        let (id, position) = (self.tally.id(), self.tally.position());
        local::cached_watched(id, position).or_else(|| {
            local::watched(
                id,
                position,
                rules.rate.is_some(),
                |lane, slot| self.tally.register(lane, slot),
                |lane, ring| rules.register(lane, ring),
            )
        })
    }

    /// [`admit`](Self::admit) counting a rejection in a slot looked up
    /// before the acquire: the lookup's loads then overlap the clock read
    /// that decides the rejection instead of following it. Only `call_with`
    /// does this, where the same lookup then counts the outcome; a lookup
    /// made ahead and not reused would slow the healthy path of the others.
    #[inline(always)]
    pub(crate) fn admit_in(&self, slot: ThreadSlot<'_>) -> Result<Ticket, Rejected> {
        self.core.acquire().inspect_err(|_| self.tally.add_in(slot, Count::Rejection))
    }

    /// [`settle`](Self::settle) for a call that ended without reporting (a
    /// dropped permit or future, a panic): out of line, off the paths that
    /// report.
    #[cold]
    #[inline(never)]
    pub(crate) fn settle_unreported(&self, ticket: Ticket, started: Timestamp, outcome: Outcome) {
        self.settle(ticket, started, outcome);
    }

    /// Reports the outcome of the call admitted with `ticket` at `started`.
    #[inline(always)]
    pub(crate) fn settle(&self, ticket: Ticket, started: Timestamp, outcome: Outcome) -> Recorded {
        let slot = self.tally.thread_slot();
        if slot.is_cached() {
            self.settle_in(slot, ticket, outcome)
        } else {
            self.settle_uncached(ticket, started, outcome)
        }
    }

    /// [`settle`](Self::settle) when this thread's slot is not in the plain
    /// cache: a first count, a collision, or a breaker with rules.
    #[inline(never)]
    fn settle_uncached(&self, ticket: Ticket, started: Timestamp, outcome: Outcome) -> Recorded {
        let Some(rules) = self.rules.as_deref() else {
            let recorded = self.core.record(ticket, outcome);
            match outcome {
                Outcome::Success => self.tally.add(Count::Success),
                Outcome::Failure => self.tally.add(Count::Failure),
                Outcome::Ignored => {}
            }
            return recorded;
        };
        self.settle_watched(rules, self.watched_place(rules), ticket, started, outcome)
    }

    /// [`settle`](Self::settle) for a breaker with rules, in this thread's
    /// `place`: a success that was not slow counts in the slot and the ring;
    /// a failure (or a slow success) takes the out-of-line path that may sum
    /// the window and open.
    #[inline(always)]
    pub(crate) fn settle_watched(
        &self,
        rules: &Rules,
        place: Option<(&'static Slot, &'static Ring)>,
        ticket: Ticket,
        started: Timestamp,
        outcome: Outcome,
    ) -> Recorded {
        match outcome {
            Outcome::Ignored => self.core.record(ticket, outcome),
            Outcome::Success => {
                let now = self.core.now();
                if rules.slow(started, now) {
                    return self.settle_watched_failure(rules, place, ticket, now);
                }
                let recorded = self.core.record_at(ticket, Outcome::Success, now);
                match place {
                    Some((slot, ring)) => {
                        increment(slot.counter(Count::Success));
                        if recorded == Recorded::Applied {
                            rules.add_success(ring, ticket, now);
                        }
                    }
                    None => self.tally.add_shared(Count::Success),
                }
                recorded
            }
            Outcome::Failure => self.settle_watched_failure(rules, place, ticket, self.core.now()),
        }
    }

    /// A failure (or a slow success) of a breaker with rules: counted,
    /// added to the window, and the window summed to decide whether the
    /// failure rate opens the breaker.
    #[cold]
    #[inline(never)]
    fn settle_watched_failure(
        &self,
        rules: &Rules,
        place: Option<(&'static Slot, &'static Ring)>,
        ticket: Ticket,
        now: Timestamp,
    ) -> Recorded {
        let recorded = self.core.record_at(ticket, Outcome::Failure, now);
        self.count_in(place, Count::Failure);
        if let (Recorded::Applied, Some((_, ring))) = (recorded, place) {
            if rules.add_failure(ring, ticket, now) {
                self.core.open_on_rate_at(ticket, now);
            }
        }
        recorded
    }

    /// Always inlined so that, in `call`, the outcome is known where it is
    /// matched on and the healthy success folds to a few instructions.
    #[inline(always)]
    pub(crate) fn settle_in(&self, slot: ThreadSlot<'_>, ticket: Ticket, outcome: Outcome) -> Recorded {
        let recorded = self.core.record(ticket, outcome);
        match outcome {
            Outcome::Success => self.tally.add_in(slot, Count::Success),
            Outcome::Failure => self.tally.add_in(slot, Count::Failure),
            Outcome::Ignored => {}
        }
        recorded
    }
}

impl Default for Breaker {
    /// A breaker with the default [`Config`] (5 failures, 30 s, 1 probe).
    fn default() -> Breaker {
        // The default config fits by construction: a unit test checks it.
        Breaker::new(Config::default()).expect("the default config is valid")
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name())
            .field("state", &self.state())
            .field("config", &self.config())
            .field("counts", &self.counts())
            .finish()
    }
}
