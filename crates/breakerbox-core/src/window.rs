//! The failure-rate rule: a sliding window of time buckets kept in one
//! [`Ring`] per thread, written only by its thread and summed by whichever
//! thread records a failure.
//!
//! # The window
//!
//! A [`RateRule`] splits time (the breaker's milliseconds) into buckets of
//! `w` ms, `w` the window divided by [`BUCKETS`] and rounded up: bucket `b`
//! holds the calls that finished in `[b * w, (b + 1) * w)`. At time `t` the
//! window is the bucket `t / w` and the [`BUCKETS`]` - 1` before it, so it
//! reaches back between `(BUCKETS - 1) * w` and `BUCKETS * w` ms; a bucket
//! leaves the window as a whole, at the instant `t` enters the bucket
//! [`BUCKETS`] after it. Only calls admitted and reported in one closed
//! generation count together: every transition starts an empty window.
//!
//! The rule is checked when a failure is counted, after counting it: with
//! at least `min_calls` calls in the window and `failures / calls >= ratio`
//! (in parts per million), the breaker opens. The window is read at the
//! latest time any failure of the breaker has counted at (this one's, unless
//! another thread's clock read later): so that of two failures on either
//! side of a bucket boundary, the later to be summed reads a window that
//! holds both. A success never opens a breaker, so a window that reaches
//! `min_calls` with a success opens at the next failure. `breakerbox-model`
//! states the same rule without rings.
//!
//! A ring knows its generation as a [`Ticket`] does, so it shares the
//! ticket's limit: a ring last written exactly a multiple of 256 transitions
//! ago within the same millisecond takes the old generation for the new one
//! and keeps its counts.
//!
//! # Rings
//!
//! A [`Ring`] is one thread's share of one breaker's window: [`BUCKETS`]
//! buckets of two counters, a success count and a failure count, each
//! tagged with its bucket's index (the low 16 bits) so that a reader tells a
//! current bucket from one the writer has since rolled over. Only one thread
//! at a time may [`add`](RateWindow::add) to a ring (the facade keeps one per
//! (breaker, thread)); it does so with plain loads and stores. When its
//! clock reaches a new bucket the writer clears the buckets in between, so a
//! ring only ever holds the [`BUCKETS`] buckets up to its newest.
//!
//! # Orderings
//!
//! Successes are stored `Relaxed`: a reader sees each counter's latest value
//! or an earlier one. Failures are also published through [`RateWindow`]'s
//! shared time of the latest failure, by one `AcqRel` `fetch_max` made after
//! the failure is stored and before the rings are summed, at the maximum it
//! returns. Read-modify-writes of one location are totally ordered and each
//! reads the one before it, so of any two failures the later one's sum
//! happens-after the earlier one's store and reads the window at a time no
//! earlier than either's: the last failure to be summed sees every failure
//! of the window. What a sum can miss is a success whose store has not
//! reached the summing thread (nothing bounds how many, or how late), which
//! makes the failure rate it computes higher and the calls fewer than an
//! exact count; see [`RateWindow::failure_opens`]. A ring that starts a new
//! generation clears its buckets and then stores the generation with
//! `Release`, and one that moves to a new bucket clears the buckets it skips
//! and then stores the newest index with `Release`; a reader loads both with
//! `Acquire`, so it never counts a bucket of an older generation as one of
//! the newer, nor a bucket the writer has cleared under an older tag. A sum
//! that overlaps a ring's restart may count the newer generation's first
//! calls as the older's: harmless, as opening checks the generation.

use core::fmt;
use core::time::Duration;

use crate::config::ConfigError;
use crate::sync::{AtomicBool, AtomicU64, Ordering};
use crate::ticket::Ticket;
use crate::time::{Timestamp, ticks_rounded_up};

/// Buckets in a window: 10 (2 in a build with `--cfg loom`, whose models
/// check every load of every bucket).
#[cfg(not(loom))]
pub const BUCKETS: usize = 10;

/// Buckets in a window: 10 (2 in a build with `--cfg loom`, whose models
/// check every load of every bucket).
#[cfg(loom)]
pub const BUCKETS: usize = 2;

const BUCKETS_U64: u64 = BUCKETS as u64;
const TAG_SHIFT: u32 = 48;
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;
const TAG_MASK: u64 = (1 << (64 - TAG_SHIFT)) - 1;

/// No generation: what a new or cleared ring holds. The stored-state bits
/// of a generation are never 3 for a closed one.
const NO_GENERATION: u64 = u64::MAX;

/// A failure-rate rule as given: open when, over the last `window`, at least
/// `min_calls` calls finished and at least `ratio` of them failed.
///
/// The `breakerbox` facade keeps the window (`breakerbox::Builder::failure_rate`);
/// this crate states the rule and checks it.
///
/// ```
/// use breakerbox_core::FailureRate;
/// use std::time::Duration;
///
/// let rate = FailureRate::new(0.5, 20, Duration::from_secs(10));
/// assert_eq!(rate.validate(), Ok(()));
/// let err = FailureRate::new(1.5, 20, Duration::from_secs(10)).validate().unwrap_err();
/// assert_eq!(err.field(), "failure_rate.ratio");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailureRate {
    ratio: f64,
    min_calls: u32,
    window: Duration,
}

impl FailureRate {
    /// The longest window: one day, which keeps the window's counters from
    /// overflowing at any rate a thread can call.
    // A bucket's counter has 48 bits: 2^48 calls in a tenth of a day is one
    // every 31 ps.
    pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
    /// The shortest window: 10 ms.
    pub const MIN_WINDOW: Duration = Duration::from_millis(BUCKETS_U64);

    /// The rule `failures / calls >= ratio` over `window`, once `min_calls`
    /// calls (0 means 1) finished in it. Checked by
    /// [`validate`](Self::validate) (and the builders): `ratio` in `(0, 1]`,
    /// `window` from [`MIN_WINDOW`](Self::MIN_WINDOW) to
    /// [`MAX_WINDOW`](Self::MAX_WINDOW).
    pub const fn new(ratio: f64, min_calls: u32, window: Duration) -> FailureRate {
        FailureRate { ratio, min_calls, window }
    }

    /// The failure ratio that opens the breaker.
    pub const fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The calls the window needs before the ratio counts.
    pub const fn min_calls(&self) -> u32 {
        self.min_calls
    }

    /// The window as given.
    pub const fn window(&self) -> Duration {
        self.window
    }

    /// Checks the rule, as the builders do: `ratio` in `(0, 1]`, `window`
    /// from [`MIN_WINDOW`](Self::MIN_WINDOW) to
    /// [`MAX_WINDOW`](Self::MAX_WINDOW), or the [`ConfigError`] naming what
    /// does not fit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        RateRule::new(self).map(drop)
    }
}

/// A validated [`FailureRate`]: what the rings and the decision use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateRule {
    ratio_ppm: u32,
    min_calls: u32,
    bucket_ticks: u64,
}

impl RateRule {
    /// `rate` in the integers the breaker uses: the ratio in parts per
    /// million (rounded to the nearest), the bucket width in whole
    /// milliseconds (the window over [`BUCKETS`], rounded up), or the
    /// [`ConfigError`] naming what does not fit.
    pub fn new(rate: &FailureRate) -> Result<RateRule, ConfigError> {
        if !(rate.ratio > 0.0 && rate.ratio <= 1.0) {
            return Err(ConfigError::FailureRatio { value: rate.ratio });
        }
        if rate.window < FailureRate::MIN_WINDOW || rate.window > FailureRate::MAX_WINDOW {
            return Err(ConfigError::RateWindow { value: rate.window });
        }
        // In range, so the product is at most 1e6 and the cast exact.
        let ratio_ppm = ((rate.ratio * 1e6).round() as u32).max(1);
        let bucket_ticks = ticks_rounded_up(rate.window).div_ceil(u128::from(BUCKETS_U64)) as u64;
        Ok(RateRule { ratio_ppm, min_calls: rate.min_calls.max(1), bucket_ticks })
    }

    /// The failure ratio that opens the breaker, in parts per million.
    pub const fn ratio_ppm(&self) -> u32 {
        self.ratio_ppm
    }

    /// The calls the window needs before the ratio counts (at least 1).
    pub const fn min_calls(&self) -> u32 {
        self.min_calls
    }

    /// One bucket's width.
    pub const fn bucket(&self) -> Duration {
        Duration::from_millis(self.bucket_ticks)
    }

    /// The whole window: [`BUCKETS`] buckets.
    pub const fn window(&self) -> Duration {
        Duration::from_millis(self.bucket_ticks * BUCKETS_U64)
    }

    /// Whether `counts` open the breaker: at least `min_calls` calls and
    /// `failures * 1e6 >= ratio_ppm * calls`.
    ///
    /// ```
    /// use breakerbox_core::FailureRate;
    /// use breakerbox_core::__private::{RateRule, WindowCounts};
    /// use std::time::Duration;
    ///
    /// let rule = RateRule::new(&FailureRate::new(0.5, 4, Duration::from_secs(10)))?;
    /// assert!(!rule.exceeded(WindowCounts { calls: 3, failures: 3 })); // too few calls
    /// assert!(rule.exceeded(WindowCounts { calls: 4, failures: 2 }));
    /// assert!(!rule.exceeded(WindowCounts { calls: 5, failures: 2 }));
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub const fn exceeded(&self, counts: WindowCounts) -> bool {
        counts.calls >= self.min_calls as u64
            && counts.failures as u128 * 1_000_000 >= self.ratio_ppm as u128 * counts.calls as u128
    }

    const fn index(&self, now: Timestamp) -> u64 {
        now.as_millis() / self.bucket_ticks
    }
}

/// Calls and failures in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WindowCounts {
    /// Calls that finished as a success or a failure.
    pub calls: u64,
    /// Of those, the failures.
    pub failures: u64,
}

/// One bucket of a [`Ring`]: each counter tagged with its bucket's index.
struct Bucket {
    successes: AtomicU64,
    failures: AtomicU64,
}

impl Bucket {
    fn clear(&self, index: u64) {
        let empty = tagged(index, 0);
        self.successes.store(empty, Ordering::Relaxed);
        self.failures.store(empty, Ordering::Relaxed);
    }
}

const fn tagged(index: u64, count: u64) -> u64 {
    ((index & TAG_MASK) << TAG_SHIFT) | count
}

/// The count in `word` if it is tagged with `index`, else 0.
const fn count_of(word: u64, index: u64) -> u64 {
    if word >> TAG_SHIFT == index & TAG_MASK { word & COUNT_MASK } else { 0 }
}

/// One thread's buckets of one breaker's window (184 bytes). See the
/// module's docs: one writer at a time, any number of readers.
pub struct Ring {
    /// The closed generation whose calls the buckets count.
    generation: AtomicU64,
    /// The newest bucket's index.
    newest: AtomicU64,
    /// Where the newest bucket ends (ms): only the writer reads it, to see
    /// whether a call starts a new bucket without dividing.
    end: AtomicU64,
    buckets: [Bucket; BUCKETS],
}

impl Ring {
    /// An empty ring.
    #[cfg(not(loom))]
    pub const fn new() -> Ring {
        Ring {
            generation: AtomicU64::new(NO_GENERATION),
            newest: AtomicU64::new(0),
            end: AtomicU64::new(0),
            buckets: [const { Bucket { successes: AtomicU64::new(0), failures: AtomicU64::new(0) } }; BUCKETS],
        }
    }

    /// An empty ring (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> Ring {
        Ring {
            generation: AtomicU64::new(NO_GENERATION),
            newest: AtomicU64::new(0),
            end: AtomicU64::new(0),
            buckets: core::array::from_fn(|_| Bucket { successes: AtomicU64::new(0), failures: AtomicU64::new(0) }),
        }
    }

    /// Empties the ring, for reuse by another breaker.
    pub fn clear(&self) {
        self.generation.store(NO_GENERATION, Ordering::Release);
    }

    /// This ring's calls in the window at `now` of the closed generation
    /// `ticket` belongs to.
    fn counts(&self, rule: &RateRule, ticket: Ticket, now: Timestamp) -> WindowCounts {
        if self.generation.load(Ordering::Acquire) != ticket.generation() {
            return WindowCounts::default();
        }
        let index = rule.index(now);
        let newest = self.newest.load(Ordering::Acquire);
        // Everything the ring holds is older than the window: its tags could
        // alias the window's after 2^16 buckets.
        if index.saturating_sub(newest) >= BUCKETS_U64 {
            return WindowCounts::default();
        }
        let mut counts = WindowCounts::default();
        for bucket_index in index.saturating_sub(BUCKETS_U64 - 1)..=index {
            let bucket = &self.buckets[(bucket_index % BUCKETS_U64) as usize];
            let failures = count_of(bucket.failures.load(Ordering::Relaxed), bucket_index);
            let successes = count_of(bucket.successes.load(Ordering::Relaxed), bucket_index);
            counts.calls += successes + failures;
            counts.failures += failures;
        }
        counts
    }

    /// Makes the bucket holding `now` in `generation` the newest, and
    /// returns the newest with its index: a `now` before the newest bucket
    /// (a clock read that raced a later one) counts in the newest.
    #[inline]
    fn bucket_for(&self, rule: &RateRule, generation: u64, now: Timestamp) -> (&Bucket, u64) {
        let at = now.as_millis();
        if self.generation.load(Ordering::Relaxed) != generation {
            self.restart(rule, generation, at);
        } else if at >= self.end.load(Ordering::Relaxed) {
            self.roll(rule, at);
        }
        let newest = self.newest.load(Ordering::Relaxed);
        (&self.buckets[(newest % BUCKETS_U64) as usize], newest)
    }

    #[cold]
    fn restart(&self, rule: &RateRule, generation: u64, at: u64) {
        let index = at / rule.bucket_ticks;
        // Consecutive indices ending at `index` (or starting at 0, or ending
        // at the last one): each bucket once, the newest tagged as `add`
        // will count in it.
        let first = index.saturating_sub(BUCKETS_U64 - 1).min(u64::MAX - (BUCKETS_U64 - 1));
        for bucket_index in (0..BUCKETS_U64).map(|offset| first + offset) {
            self.buckets[(bucket_index % BUCKETS_U64) as usize].clear(bucket_index);
        }
        self.newest.store(index, Ordering::Release);
        self.end.store(index.saturating_add(1).saturating_mul(rule.bucket_ticks), Ordering::Relaxed);
        self.generation.store(generation, Ordering::Release);
    }

    #[cold]
    fn roll(&self, rule: &RateRule, at: u64) {
        let index = at / rule.bucket_ticks;
        let newest = self.newest.load(Ordering::Relaxed);
        // Only where `end` saturated at the end of time: nothing to roll.
        if index <= newest {
            return;
        }
        for bucket_index in index.saturating_sub(BUCKETS_U64 - 1).max(newest + 1)..=index {
            self.buckets[(bucket_index % BUCKETS_U64) as usize].clear(bucket_index);
        }
        self.newest.store(index, Ordering::Release);
        self.end.store(index.saturating_add(1).saturating_mul(rule.bucket_ticks), Ordering::Relaxed);
    }
}

impl Default for Ring {
    fn default() -> Ring {
        Ring::new()
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("newest", &self.newest.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A breaker's failure-rate window: the rule, and the time of the latest
/// failure, which failures synchronize through. The rings are the caller's,
/// one per thread.
///
/// ```
/// use breakerbox_core::__private::{RateRule, RateWindow, Ring};
/// use breakerbox_core::{Config, CoreBreaker, FailureRate, Outcome, State};
/// use std::time::Duration;
///
/// let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
/// let breaker = CoreBreaker::builder(Config::default()).clock(clock).consecutive_failures(false).build()?;
/// let window = RateWindow::new(RateRule::new(&FailureRate::new(0.5, 4, Duration::from_secs(10)))?);
/// let ring = Ring::new(); // this thread's
/// for outcome in [Outcome::Success, Outcome::Failure, Outcome::Success, Outcome::Failure] {
///     let ticket = breaker.acquire()?;
///     breaker.record(ticket, outcome);
///     if window.record(&ring, ticket, breaker.now(), outcome == Outcome::Failure, [&ring]) {
///         breaker.open_on_rate(ticket);
///     }
/// }
/// assert_eq!(breaker.state(), State::Open); // 2 of 4 failed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RateWindow {
    rule: RateRule,
    /// The latest time (ms) any failure has counted at.
    latest: AtomicU64,
    /// Whether any failure has: `latest` alone cannot tell a failure at
    /// time zero from none.
    failed: AtomicBool,
}

impl RateWindow {
    /// A window for `rule`.
    pub fn new(rule: RateRule) -> RateWindow {
        RateWindow { rule, latest: AtomicU64::new(0), failed: AtomicBool::new(false) }
    }

    /// The rule.
    pub fn rule(&self) -> RateRule {
        self.rule
    }

    /// The latest time any failure has counted at ([`failure_opens`]
    /// publishes it), or `None` if none has. It is not cleared when the
    /// breaker closes, so it may name a failure of an earlier generation. A
    /// breaker whose window may still hold a failure at `now` is one with
    /// `now < latest_failure() + window`.
    ///
    /// [`failure_opens`]: Self::failure_opens
    pub fn latest_failure(&self) -> Option<Timestamp> {
        // `failed` is stored before the `latest` it goes with is published:
        // read after `latest`, it is set whenever that `latest` is a
        // failure's (and, read alone set, `latest` may lag: an earlier time).
        let latest = self.latest.load(Ordering::Acquire);
        self.failed.load(Ordering::Relaxed).then(|| Timestamp::from_millis(latest))
    }

    /// Counts a call that ended at `now`, a failure if `failed`, in `ring`,
    /// if `ticket` was issued by a closed breaker, and returns the time it
    /// counted at: `now`, or, if `now` is before the ring's newest bucket
    /// (the ring only moves forward), that bucket's start. `None` (nothing
    /// counted) for a ticket not issued while closed. Only the thread that
    /// owns `ring` may call this: two threads adding to one ring at once
    /// lose counts. Report only results the breaker applied
    /// ([`Recorded::Applied`](crate::Recorded)): stale and ignored ones
    /// count in no window.
    #[inline]
    pub fn add(&self, ring: &Ring, ticket: Ticket, now: Timestamp, failed: bool) -> Option<Timestamp> {
        if !ticket.issued_closed() {
            return None;
        }
        let (bucket, index) = ring.bucket_for(&self.rule, ticket.generation(), now);
        let counter = if failed { &bucket.failures } else { &bucket.successes };
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        Some(Timestamp::from_millis(now.as_millis().max(index * self.rule.bucket_ticks)))
    }

    /// After a failure in `ticket`'s generation was [`add`](Self::add)ed on
    /// this thread at `at` (the time `add` returned): publishes it to the
    /// other threads' sums, sums `rings` (every ring of the breaker, this
    /// thread's included) at the latest time any failure has counted at
    /// (`at`, unless another thread's failure counted later) and says
    /// whether the rule opens the breaker; if so, call
    /// [`CoreBreaker::open_on_rate`](crate::CoreBreaker::open_on_rate).
    ///
    /// Of two failures summed at once, the later sum sees both and reads a
    /// window that holds both (see the module's orderings), so a breaker the
    /// rule says must open is opened by the failure that tips it or, if that
    /// failure's sum raced another, by the other's. A success whose store has
    /// not reached this thread is missed: the ratio then reads higher than
    /// an exact count and the calls fewer.
    pub fn failure_opens<'r>(&self, ticket: Ticket, at: Timestamp, rings: impl IntoIterator<Item = &'r Ring>) -> bool {
        let at = at.as_millis();
        if !self.failed.load(Ordering::Relaxed) {
            self.failed.store(true, Ordering::Relaxed);
        }
        let latest = self.latest.fetch_max(at, Ordering::AcqRel).max(at);
        self.rule.exceeded(self.counts(ticket, Timestamp::from_millis(latest), rings))
    }

    /// [`add`](Self::add), then for a failure
    /// [`failure_opens`](Self::failure_opens): whether the caller should
    /// now call [`CoreBreaker::open_on_rate`](crate::CoreBreaker::open_on_rate).
    /// A success, or a ticket not issued while closed, never opens.
    pub fn record<'r>(
        &self,
        ring: &Ring,
        ticket: Ticket,
        now: Timestamp,
        failed: bool,
        rings: impl IntoIterator<Item = &'r Ring>,
    ) -> bool {
        match self.add(ring, ticket, now, failed) {
            Some(at) => failed && self.failure_opens(ticket, at, rings),
            None => false,
        }
    }

    /// The calls and failures over `rings` in the window at `now` of the
    /// closed generation `ticket` belongs to (a ring that starts a newer
    /// generation during the sum may add its first calls).
    pub fn counts<'r>(
        &self,
        ticket: Ticket,
        now: Timestamp,
        rings: impl IntoIterator<Item = &'r Ring>,
    ) -> WindowCounts {
        let mut total = WindowCounts::default();
        for ring in rings {
            let counts = ring.counts(&self.rule, ticket, now);
            total.calls += counts.calls;
            total.failures += counts.failures;
        }
        total
    }
}

impl fmt::Debug for RateWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateWindow").field("rule", &self.rule).finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Config, CoreBreaker};

    fn rule(ratio: f64, min_calls: u32, window_ms: u64) -> RateRule {
        RateRule::new(&FailureRate::new(ratio, min_calls, Duration::from_millis(window_ms))).unwrap()
    }

    #[test]
    fn validation_names_what_does_not_fit_and_rounds_what_does() {
        let window = Duration::from_secs(1);
        for ratio in [0.0, -0.5, 1.01, f64::NAN] {
            let err = FailureRate::new(ratio, 1, window).validate().unwrap_err();
            assert_eq!(err.field(), "failure_rate.ratio", "{ratio}");
        }
        for window in [Duration::from_millis(9), FailureRate::MAX_WINDOW + Duration::from_millis(1)] {
            let err = FailureRate::new(0.5, 1, window).validate().unwrap_err();
            assert_eq!(err.field(), "failure_rate.window", "{window:?}");
        }
        let rule = RateRule::new(&FailureRate::new(0.000_000_1, 0, Duration::from_millis(101))).unwrap();
        assert_eq!((rule.ratio_ppm(), rule.min_calls(), rule.bucket()), (1, 1, Duration::from_millis(11)));
        assert_eq!(rule.window(), Duration::from_millis(110));
        assert_eq!(RateRule::new(&FailureRate::new(1.0, 5, FailureRate::MAX_WINDOW)).unwrap().ratio_ppm(), 1_000_000);
    }

    #[test]
    fn the_latest_failure_is_the_latest_time_a_failure_counted_at() {
        let breaker = CoreBreaker::new(Config::default()).unwrap();
        let window = RateWindow::new(rule(0.9, 100, 1_000));
        let ring = Ring::new();
        assert_eq!(window.latest_failure(), None);
        let ticket = breaker.acquire().unwrap();
        let at = |ms| Timestamp::from_millis(ms);
        assert!(!window.record(&ring, ticket, at(0), false, [&ring]));
        assert_eq!(window.latest_failure(), None, "a success publishes nothing");
        assert!(!window.record(&ring, ticket, at(0), true, [&ring]));
        assert_eq!(window.latest_failure(), Some(at(0)), "a failure at time zero is one");
        assert!(!window.record(&ring, ticket, at(250), true, [&ring]));
        assert!(!window.record(&ring, ticket, at(400), false, [&ring]));
        assert_eq!(window.latest_failure(), Some(at(250)));
        assert!(!window.record(&ring, ticket, at(300), true, [&ring]));
        assert_eq!(window.latest_failure(), Some(at(400)), "counted at the ring's newest bucket, never back in time");
    }

    #[test]
    fn a_rule_reads_back_as_given_and_as_validated() {
        let rate = FailureRate::new(0.25, 7, Duration::from_millis(1_234));
        assert_eq!((rate.ratio(), rate.min_calls(), rate.window()), (0.25, 7, Duration::from_millis(1_234)));
        let rule = RateRule::new(&rate).unwrap();
        assert_eq!((rule.ratio_ppm(), rule.min_calls()), (250_000, 7));
        assert_eq!((rule.bucket(), rule.window()), (Duration::from_millis(124), Duration::from_millis(1_240)));
        let window = RateWindow::new(rule);
        assert_eq!(window.rule(), rule);
        assert!(format!("{window:?}").starts_with("RateWindow { rule: RateRule { ratio_ppm: 250000"));
        let ring = Ring::default();
        assert_eq!(format!("{ring:?}"), format!("Ring {{ generation: {}, newest: 0, .. }}", u64::MAX));
        let err = FailureRate::new(2.0, 1, Duration::from_secs(1)).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid breaker config: failure_rate.ratio = 2 is outside the limits: above 0, at most 1"
        );
    }

    #[test]
    fn exceeded_is_exact_at_the_ratio() {
        let third = rule(1.0 / 3.0, 3, 1_000);
        assert_eq!(third.ratio_ppm(), 333_333);
        assert!(third.exceeded(WindowCounts { calls: 3, failures: 1 }));
        assert!(!third.exceeded(WindowCounts { calls: 301, failures: 100 }));
        assert!(third.exceeded(WindowCounts { calls: 300, failures: 100 }));
        assert!(!third.exceeded(WindowCounts { calls: 2, failures: 2 }), "below min_calls");
    }

    fn closed_ticket() -> (CoreBreaker, Ticket) {
        let (clock, _mock) = quanta::Clock::mock();
        let breaker = CoreBreaker::with_clock(Config::default(), clock).unwrap();
        let ticket = breaker.acquire().unwrap();
        (breaker, ticket)
    }

    #[test]
    fn buckets_leave_the_window_whole_when_it_slides_past_them() {
        let (_breaker, ticket) = closed_ticket();
        let window = RateWindow::new(rule(0.5, 1, 100)); // 10 ms buckets
        let ring = Ring::new();
        let at = Timestamp::from_millis;
        assert_eq!(window.add(&ring, ticket, at(5), true), Some(at(5))); // bucket 0
        assert!(window.add(&ring, ticket, at(19), false).is_some()); // bucket 1
        assert!(window.add(&ring, ticket, at(57), false).is_some()); // bucket 5
        let counts = |now| window.counts(ticket, at(now), [&ring]);
        assert_eq!(counts(99), WindowCounts { calls: 3, failures: 1 }, "buckets 0..=9");
        assert_eq!(counts(100), WindowCounts { calls: 2, failures: 0 }, "bucket 0 left at 100");
        assert_eq!(counts(109), WindowCounts { calls: 2, failures: 0 });
        assert_eq!(counts(110), WindowCounts { calls: 1, failures: 0 }, "bucket 1 left at 110");
        assert_eq!(counts(149), WindowCounts { calls: 1, failures: 0 });
        assert_eq!(counts(150), WindowCounts::default(), "bucket 5 left at 150");
        assert_eq!(counts(10_000_000), WindowCounts::default(), "ages out, tags or not");
    }

    #[test]
    fn a_new_bucket_clears_the_ones_skipped_and_a_late_clock_counts_in_the_newest() {
        let (_breaker, ticket) = closed_ticket();
        let window = RateWindow::new(rule(0.5, 1, 100));
        let ring = Ring::new();
        let at = Timestamp::from_millis;
        for ms in 0..100 {
            window.add(&ring, ticket, at(ms), ms % 2 == 0);
        }
        assert_eq!(window.counts(ticket, at(99), [&ring]), WindowCounts { calls: 100, failures: 50 });
        window.add(&ring, ticket, at(135), true); // buckets 10..=13 replace 0..=3
        assert_eq!(window.counts(ticket, at(135), [&ring]), WindowCounts { calls: 61, failures: 31 });
        assert_eq!(window.add(&ring, ticket, at(120), false), Some(at(130)), "before bucket 13: counts in 13");
        assert_eq!(window.counts(ticket, at(135), [&ring]), WindowCounts { calls: 62, failures: 31 });
        // 2^16 buckets later the same slots and tags come round again.
        window.add(&ring, ticket, at(135 + 10 * 65_536), false);
        assert_eq!(window.counts(ticket, at(135 + 10 * 65_536), [&ring]), WindowCounts { calls: 1, failures: 0 });
    }

    #[test]
    fn the_last_buckets_of_time_count_like_any_other() {
        let (_breaker, ticket) = closed_ticket();
        let window = RateWindow::new(rule(0.5, 1, 10)); // 1 ms buckets
        let ring = Ring::new();
        let end = Timestamp::from_millis(u64::MAX);
        let before = Timestamp::from_millis(u64::MAX - 3);
        assert_eq!(window.add(&ring, ticket, before, true), Some(before));
        assert_eq!(window.add(&ring, ticket, end, false), Some(end));
        assert_eq!(window.add(&ring, ticket, end, true), Some(end));
        assert_eq!(window.counts(ticket, end, [&ring]), WindowCounts { calls: 3, failures: 2 });
        // A ring whose first call is at the very end starts there too.
        let fresh = Ring::new();
        assert_eq!(window.add(&fresh, ticket, end, true), Some(end));
        assert_eq!(window.counts(ticket, end, [&fresh]), WindowCounts { calls: 1, failures: 1 });
    }

    #[test]
    fn open_on_rate_opens_only_a_closed_breaker_in_the_tickets_generation() {
        let (clock, _mock) = quanta::Clock::mock();
        let breaker = CoreBreaker::with_clock(Config::default(), clock).unwrap();
        let now = Timestamp::from_millis(0);
        let old = breaker.acquire_at(now).unwrap();
        breaker.reset_at(now);
        assert!(!breaker.open_on_rate_at(old, now), "closed again, but in a later generation");
        breaker.trip_for_at(Duration::ZERO, now);
        let probe = breaker.acquire_at(now).unwrap();
        assert!(!breaker.open_on_rate_at(probe, now), "a probe's ticket is not a closed one");
        assert_eq!(breaker.state_at(now), crate::State::HalfOpen);
        assert_eq!(breaker.opens(), 1, "only the trip opened it");
    }

    #[test]
    fn another_generation_starts_empty_and_open_tickets_count_nowhere() {
        let (breaker, ticket) = closed_ticket();
        let window = RateWindow::new(rule(0.5, 1, 100));
        let ring = Ring::new();
        let now = Timestamp::from_millis(0);
        window.add(&ring, ticket, now, true);
        breaker.reset_at(now); // a new closed generation in the same millisecond
        let next = breaker.acquire_at(now).unwrap();
        assert_eq!(window.counts(next, now, [&ring]), WindowCounts::default());
        window.add(&ring, next, now, false);
        assert_eq!(window.counts(next, now, [&ring]), WindowCounts { calls: 1, failures: 0 });
        assert_eq!(window.counts(ticket, now, [&ring]), WindowCounts::default(), "the old one is gone");
        breaker.trip_for_at(Duration::ZERO, now);
        let probe = breaker.acquire_at(now).unwrap();
        assert_eq!(window.add(&ring, probe, now, true), None, "a probe is not a closed call");
        ring.clear();
        assert_eq!(window.counts(next, now, [&ring]), WindowCounts::default());
    }

    #[test]
    fn a_failure_summed_after_a_later_one_reads_the_window_at_the_later_time() {
        // Two threads' failures either side of a bucket boundary (10 ms
        // buckets), the one at 10 ms summed first, before the one at 9 ms is
        // stored: the second sum must read the window at 10 ms, where both
        // are, not at 9 ms, where the first is not yet.
        let (_breaker, ticket) = closed_ticket();
        let window = RateWindow::new(rule(1.0, 2, 100));
        let rings = [Ring::new(), Ring::new()];
        let at = Timestamp::from_millis;
        assert_eq!(window.add(&rings[0], ticket, at(10), true), Some(at(10)));
        assert!(!window.failure_opens(ticket, at(10), &rings), "one failure so far");
        assert_eq!(window.add(&rings[1], ticket, at(9), true), Some(at(9)));
        assert_eq!(window.counts(ticket, at(9), &rings), WindowCounts { calls: 1, failures: 1 });
        assert!(window.failure_opens(ticket, at(9), &rings), "read at 10 ms: two of two failed");
    }

    #[test]
    fn rings_of_several_threads_add_up() {
        let (_breaker, ticket) = closed_ticket();
        let window = RateWindow::new(rule(0.5, 4, 100));
        let rings = [Ring::new(), Ring::new()];
        let now = Timestamp::from_millis(3);
        window.add(&rings[0], ticket, now, false);
        window.add(&rings[1], ticket, now, true);
        window.add(&rings[0], ticket, now, false);
        assert!(!window.failure_opens(ticket, now, &rings), "3 calls");
        window.add(&rings[1], ticket, now, true);
        assert!(window.failure_opens(ticket, now, &rings), "2 of 4");
    }
}
