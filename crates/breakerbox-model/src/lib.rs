//! The breaker's semantics, written for clarity rather than speed.
//!
//! This is the one statement of what the breaker should do, shared by the
//! property tests in this package's `tests/` (the core, the registry) and the
//! fuzzers: they drive the real breaker and this model with the same
//! operations and require the same answers. Nothing here is packed or atomic; generations are unbounded and
//! time is a plain millisecond count.
//!
//! The real breaker keeps two documented limits this model does not have:
//! generations are told apart by an 8-bit epoch plus the time of the
//! transition, and elapsed time is read exactly only below 2^37 ms. Drivers
//! keep their inputs inside those limits (fewer than 256 transitions in one
//! millisecond while a ticket is held, no single wait of 2^37 ms or more since
//! the last transition).
//!
//! ```
//! use breakerbox_model::{Model, Outcome, Phase, Refused};
//!
//! let mut model = Model::new(2, 1, 100);
//! let a = model.acquire(0).unwrap();
//! let b = model.acquire(0).unwrap();
//! model.record(a, Outcome::Failure, 1);
//! model.record(b, Outcome::Failure, 2);
//! assert_eq!(model.phase(), Phase::Open { since: 2, until: 102 });
//! assert_eq!(model.acquire(50), Err(Refused::RetryAfter(52)));
//! ```

/// How an admitted call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The downstream worked.
    Success,
    /// The downstream failed.
    Failure,
    /// Nothing is known about the downstream; counts nothing, frees the slot.
    Ignored,
}

/// The model's state, with the data each phase keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Calls go through.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Calls are rejected until `until`.
    Open {
        /// When the breaker opened (ms).
        since: u64,
        /// When the first probe may go through (ms).
        until: u64,
    },
    /// Probes go through, at most `half_open_max` at once.
    HalfOpen {
        /// When this round of probing started (ms).
        since: u64,
        /// Probes admitted in this round that have not reported.
        in_flight: u32,
        /// Probe successes so far in this round.
        successes: u32,
    },
    /// Held open by `isolate` until `reset`: no probes.
    Isolated {
        /// When it was isolated (ms).
        since: u64,
    },
}

/// How an open breaker's time is spread: none, or drawn from a hash of the
/// seed, the time of the opening and the backoff step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// The open lasts the backed-off duration `d` exactly.
    None,
    /// Uniform over `1..=d` ms.
    Full,
    /// Uniform over `d - d / 2..=d` ms.
    Equal,
}

/// How long consecutive opens last. The `k`-th open in a row (no close in
/// between) is based on `d(k)`: `d(1) = timeout`, `d(k + 1) = min(ceil(d(k)
/// * factor_permille / 1000), max_ms)`; the open lasts `d(k)` spread by the
/// jitter, and a round of probing is replaced after `d(k)` (unspread).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// The growth factor in thousandths; 1000 keeps every open at `timeout`.
    pub factor_permille: u32,
    /// The cap, at least the timeout.
    pub max_ms: u64,
    /// How each open is spread.
    pub jitter: Jitter,
    /// The jitter's seed.
    pub seed: u64,
}

impl Backoff {
    /// Every open lasts the timeout: the Go package's rule.
    pub const fn fixed(timeout_ms: u64) -> Backoff {
        Backoff { factor_permille: 1000, max_ms: timeout_ms, jitter: Jitter::None, seed: 0 }
    }

    /// `d(step)`, for `step >= 1`.
    pub fn base_ms(&self, timeout_ms: u64, step: u32) -> u64 {
        let mut d = timeout_ms.min(self.max_ms);
        for _ in 1..step {
            let next = (u128::from(d) * u128::from(self.factor_permille)).div_ceil(1000);
            d = u64::try_from(next).unwrap_or(u64::MAX).min(self.max_ms);
        }
        d
    }

    /// The last step at which `d` still grows (0 when it never does, as
    /// with a fixed backoff): the streak saturates there, since later steps
    /// last the same. `d(0)` is `d(1)`, the timeout.
    pub fn steps(&self, timeout_ms: u64) -> u32 {
        if self.base_ms(timeout_ms, 2) == self.base_ms(timeout_ms, 1) {
            return 0;
        }
        let mut step = 2;
        while self.base_ms(timeout_ms, step + 1) != self.base_ms(timeout_ms, step) {
            step += 1;
        }
        step
    }

    /// How long an open entered at `now` on `step` lasts.
    pub fn open_ms(&self, timeout_ms: u64, step: u32, now: u64) -> u64 {
        let d = self.base_ms(timeout_ms, step);
        let draw = mix(self.seed ^ now.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(step));
        match self.jitter {
            Jitter::None => d,
            Jitter::Full => 1 + draw % d,
            Jitter::Equal => d - d / 2 + draw % (d / 2 + 1),
        }
    }
}

/// Buckets in a failure-rate window.
pub const BUCKETS: u64 = 10;

/// The failure-rate rule: while closed, a failure opens the model when,
/// over the window at the latest time any failure has counted at (this
/// failure's, unless an earlier one counted later: a clock set back), at
/// least `min_calls` calls finished and `failures * 1e6 >= ratio_ppm *
/// calls`. Time is cut into buckets of
/// `bucket_ms`; the window at `now` is the bucket holding `now` and the
/// [`BUCKETS`]` - 1` before it. Only calls admitted and reported in the
/// current closed generation count; ignored and stale ones count nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    /// The failure ratio that opens, in parts per million (1 to 1e6).
    pub ratio_ppm: u32,
    /// Calls the window needs before the ratio counts (at least 1).
    pub min_calls: u32,
    /// One bucket's width (at least 1 ms).
    pub bucket_ms: u64,
}

impl Rate {
    /// Whether a call that counted at `at` is in the window at `now`: its
    /// bucket is `now`'s or one of the nine before (not a later one).
    pub fn holds(&self, at: u64, now: u64) -> bool {
        let (bucket, current) = (at / self.bucket_ms, now / self.bucket_ms);
        bucket <= current && current - bucket < BUCKETS
    }
}

/// The jitter's hash: the splitmix64 finaliser, a bijection of `u64`.
pub const fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Why a call was not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refused {
    /// Open (or half-open with every slot held): a probe will be let
    /// through in this many ms at the latest.
    RetryAfter(u64),
    /// Isolated: nothing goes through until `reset`.
    HeldOpen,
}

/// The state callers see, as the real breaker's `state()` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seen {
    /// Closed.
    Closed,
    /// Open, timeout not yet passed.
    Open,
    /// Half-open, or open with the timeout passed.
    HalfOpen,
}

/// Why the model changed state; the real breaker's `Reason`, spelled the
/// same way by [`Reason::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Closed to open at the threshold.
    ThresholdReached,
    /// Half-open to open.
    ProbeFailed,
    /// Half-open to closed.
    ProbeSucceeded,
    /// Open to half-open, at the first acquire after the timeout.
    TimeoutElapsed,
    /// Half-open to half-open: a new round after every slot was held a
    /// whole timeout.
    ProbesReplaced,
    /// A trip of a breaker that was not open.
    Tripped,
    /// A reset of a breaker that was not closed.
    Reset,
    /// An `isolate` of a breaker that was not isolated.
    Isolated,
    /// Closed to open by the failure-rate rule.
    FailureRateReached,
}

impl Reason {
    /// The reason in snake case.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ThresholdReached => "threshold_reached",
            Reason::ProbeFailed => "probe_failed",
            Reason::ProbeSucceeded => "probe_succeeded",
            Reason::TimeoutElapsed => "timeout_elapsed",
            Reason::ProbesReplaced => "probes_replaced",
            Reason::Tripped => "tripped",
            Reason::Reset => "reset",
            Reason::Isolated => "isolated",
            Reason::FailureRateReached => "failure_rate_reached",
        }
    }
}

/// A change of state, as a listener on the real breaker hears it. A trip of
/// an open model and a reset of a closed one start a new generation but are
/// not changes of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Change {
    /// The stored state before.
    pub from: Seen,
    /// The stored state after.
    pub to: Seen,
    /// Why.
    pub reason: Reason,
    /// The generation the change started: the real breaker's sequence number.
    pub generation: u64,
}

/// The generation an admitted call belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    generation: u64,
}

/// The reference circuit breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    threshold: u32,
    half_open_max: u32,
    timeout: u64,
    success_threshold: u32,
    backoff: Backoff,
    /// Where the streak stops growing: [`Backoff::steps`].
    steps: u32,
    phase: Phase,
    /// Opens since the last close; a trip counts, a `trip_for` does not.
    streak: u32,
    /// Bumped by every transition; a ticket from another one is stale.
    generation: u64,
    /// Changes of state not yet taken with [`Model::take_changes`].
    changes: Vec<Change>,
    /// Whether `threshold` consecutive failures open the model.
    consecutive: bool,
    /// The failure-rate rule, if any.
    rate: Option<Rate>,
    /// Successes slower than this many ms count as failures.
    slow_ms: Option<u64>,
    /// The calls of this closed generation: when each finished, and whether
    /// it counted as a failure.
    calls: Vec<(u64, bool)>,
    /// The latest time a failure counted at in any generation: where the
    /// window is read after a failure.
    latest_failure: u64,
}

impl Model {
    /// A closed model with the Go package's rules: every open lasts the
    /// timeout, one probe success closes. Every limit at least 1 (the real
    /// breaker resolves a zero to its default before it gets here).
    pub fn new(threshold: u32, half_open_max: u32, timeout_ms: u64) -> Model {
        Model::with_policy(threshold, half_open_max, timeout_ms, 1, Backoff::fixed(timeout_ms))
    }

    /// A closed model that closes after `success_threshold` probe successes
    /// of one round and backs its opens off by `backoff`.
    pub fn with_policy(
        threshold: u32,
        half_open_max: u32,
        timeout_ms: u64,
        success_threshold: u32,
        backoff: Backoff,
    ) -> Model {
        assert!(threshold >= 1 && half_open_max >= 1 && timeout_ms >= 1, "limits are resolved and positive");
        assert!(success_threshold >= 1 && backoff.factor_permille >= 1000 && backoff.max_ms >= timeout_ms);
        Model {
            threshold,
            half_open_max,
            timeout: timeout_ms,
            success_threshold,
            backoff,
            steps: backoff.steps(timeout_ms),
            phase: Phase::Closed { failures: 0 },
            streak: 0,
            generation: 0,
            changes: Vec::new(),
            consecutive: true,
            rate: None,
            slow_ms: None,
            calls: Vec::new(),
            latest_failure: 0,
        }
    }

    /// This model with the failure-rate rule as well (or instead, with
    /// [`without_consecutive`](Self::without_consecutive)).
    pub fn with_rate(self, rate: Rate) -> Model {
        assert!(rate.ratio_ppm >= 1 && rate.ratio_ppm <= 1_000_000 && rate.min_calls >= 1 && rate.bucket_ms >= 1);
        Model { rate: Some(rate), ..self }
    }

    /// This model without the consecutive-failure rule.
    pub fn without_consecutive(self) -> Model {
        Model { consecutive: false, ..self }
    }

    /// This model counting a success that took longer than `slow_ms` (its
    /// report's `now` minus its `started`) as a failure, for every rule.
    pub fn with_slow_call(self, slow_ms: u64) -> Model {
        Model { slow_ms: Some(slow_ms), ..self }
    }

    /// How a call admitted at `started` and reported at `now` with
    /// `outcome` counts: a success slower than the slow-call threshold is a
    /// failure.
    pub fn counts_as(&self, outcome: Outcome, started: u64, now: u64) -> Outcome {
        let slow = self.slow_ms.is_some_and(|slow_ms| now.saturating_sub(started) > slow_ms);
        if outcome == Outcome::Success && slow { Outcome::Failure } else { outcome }
    }

    /// The time a call reported at `now` counts at in the window: `now`, but
    /// never before the bucket of the latest call of this generation (time
    /// in the window only moves forward, as a thread's clock would).
    fn call_time(&self, now: u64) -> u64 {
        match (self.rate, self.calls.last()) {
            (Some(rate), Some(&(latest, _))) => now.max(latest / rate.bucket_ms * rate.bucket_ms),
            _ => now,
        }
    }

    /// Calls and failures in the failure-rate window at `now` (none without
    /// the rule).
    pub fn window(&self, now: u64) -> (u64, u64) {
        let Some(rate) = self.rate else { return (0, 0) };
        let held = self.calls.iter().filter(|&&(at, _)| rate.holds(at, now));
        held.fold((0, 0), |(calls, failures), &(_, failed)| (calls + 1, failures + u64::from(failed)))
    }

    /// The stored phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Opens since the last close, saturated at [`Backoff::steps`].
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Failures while closed, probes in flight while half-open, 0 while open
    /// or isolated.
    pub fn count(&self) -> u32 {
        match self.phase {
            Phase::Closed { failures } => failures,
            Phase::Open { .. } | Phase::Isolated { .. } => 0,
            Phase::HalfOpen { in_flight, .. } => in_flight,
        }
    }

    /// The state a caller sees at `now`, without changing anything: an
    /// isolated model reads open.
    pub fn seen(&self, now: u64) -> Seen {
        match self.phase {
            Phase::Closed { .. } => Seen::Closed,
            Phase::Open { until, .. } if now >= until => Seen::HalfOpen,
            Phase::Open { .. } | Phase::Isolated { .. } => Seen::Open,
            Phase::HalfOpen { .. } => Seen::HalfOpen,
        }
    }

    /// How long a round of probing may hold every slot before it is
    /// replaced: the current step's backed-off duration, unspread.
    pub fn lease_ms(&self) -> u64 {
        self.backoff.base_ms(self.timeout, self.streak)
    }

    /// Asks to let a call through at `now`.
    pub fn acquire(&mut self, now: u64) -> Result<Ticket, Refused> {
        match self.phase {
            Phase::Closed { .. } => Ok(self.ticket()),
            Phase::HalfOpen { since, in_flight, successes } => {
                if in_flight < self.half_open_max {
                    self.phase = Phase::HalfOpen { since, in_flight: in_flight + 1, successes };
                    return Ok(self.ticket());
                }
                // Every probe is hung: after a lease, start a new round.
                let waited = now.saturating_sub(since);
                let lease = self.lease_ms();
                if waited >= lease {
                    self.enter(
                        Phase::HalfOpen { since: now, in_flight: 1, successes: 0 },
                        Some(Reason::ProbesReplaced),
                    );
                    Ok(self.ticket())
                } else {
                    Err(Refused::RetryAfter(lease - waited))
                }
            }
            Phase::Open { until, .. } if now >= until => {
                self.enter(Phase::HalfOpen { since: now, in_flight: 1, successes: 0 }, Some(Reason::TimeoutElapsed));
                Ok(self.ticket())
            }
            Phase::Open { until, .. } => Err(Refused::RetryAfter(until - now)),
            Phase::Isolated { .. } => Err(Refused::HeldOpen),
        }
    }

    /// Reports the outcome of the call behind `ticket` at `now`; `true` if it
    /// was applied, `false` if it was stale.
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: u64) -> bool {
        self.record_call(ticket, outcome, now, now)
    }

    /// [`record`](Self::record) for a call that started at `started`: with
    /// a slow-call threshold, a success that took longer counts as a
    /// failure.
    pub fn record_call(&mut self, ticket: Ticket, outcome: Outcome, started: u64, now: u64) -> bool {
        if ticket.generation != self.generation {
            return false;
        }
        let outcome = self.counts_as(outcome, started, now);
        match (self.phase, outcome) {
            (Phase::Open { .. } | Phase::Isolated { .. }, _) => return false,
            (Phase::Closed { .. }, Outcome::Success) => {
                let at = self.call_time(now);
                self.calls.push((at, false));
                self.phase = Phase::Closed { failures: 0 };
            }
            (Phase::Closed { failures }, Outcome::Failure) => {
                let at = self.call_time(now);
                self.calls.push((at, true));
                if self.rate.is_some() {
                    self.latest_failure = self.latest_failure.max(at);
                }
                if self.consecutive && failures + 1 >= self.threshold {
                    self.open(now, Reason::ThresholdReached);
                } else if self.rate.is_some_and(|rate| {
                    let (calls, failures) = self.window(self.latest_failure);
                    calls >= u64::from(rate.min_calls)
                        && u128::from(failures) * 1_000_000 >= u128::from(rate.ratio_ppm) * u128::from(calls)
                }) {
                    self.open(now, Reason::FailureRateReached);
                } else if self.consecutive {
                    self.phase = Phase::Closed { failures: failures + 1 };
                }
            }
            (Phase::Closed { .. }, Outcome::Ignored) => {}
            (Phase::HalfOpen { since, in_flight, successes }, Outcome::Success) => {
                if successes + 1 >= self.success_threshold {
                    self.streak = 0;
                    self.enter(Phase::Closed { failures: 0 }, Some(Reason::ProbeSucceeded));
                } else {
                    // Not yet: the probe's slot is free for the next one.
                    let in_flight = in_flight.saturating_sub(1);
                    self.phase = Phase::HalfOpen { since, in_flight, successes: successes + 1 };
                }
            }
            (Phase::HalfOpen { .. }, Outcome::Failure) => self.open(now, Reason::ProbeFailed),
            (Phase::HalfOpen { since, in_flight, successes }, Outcome::Ignored) => {
                // A ticket reported twice must not free a slot it never held.
                self.phase = Phase::HalfOpen { since, in_flight: in_flight.saturating_sub(1), successes };
            }
        }
        true
    }

    /// Opens at `now` as a failure would: the streak advances and the open
    /// lasts its step. An isolated model stays isolated.
    pub fn trip(&mut self, now: u64) {
        if !matches!(self.phase, Phase::Isolated { .. }) {
            self.open(now, Reason::Tripped);
        }
    }

    /// Opens at `now` for `for_ms`, at most 2^36 ms (the real breaker's
    /// longest timeout), the streak as it was. An isolated model stays
    /// isolated.
    pub fn trip_for(&mut self, now: u64, for_ms: u64) {
        if !matches!(self.phase, Phase::Isolated { .. }) {
            let reason = self.changes_state(Seen::Open).then_some(Reason::Tripped);
            let until = now.saturating_add(for_ms.min(1 << 36));
            self.enter(Phase::Open { since: now, until }, reason);
        }
    }

    /// Holds the model open, with no probes, until [`reset`](Self::reset).
    /// Isolating an isolated model does nothing.
    pub fn isolate(&mut self, now: u64) {
        if !matches!(self.phase, Phase::Isolated { .. }) {
            self.enter(Phase::Isolated { since: now }, Some(Reason::Isolated));
        }
    }

    /// Closes with no failures and no streak, whatever the state.
    pub fn reset(&mut self) {
        let reason = self.changes_state(Seen::Closed).then_some(Reason::Reset);
        self.streak = 0;
        self.enter(Phase::Closed { failures: 0 }, reason);
    }

    /// The changes of state since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Transitions handed out so far; tickets from before the last one are stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Opens at `now` on the next step of the streak.
    fn open(&mut self, now: u64, reason: Reason) {
        self.streak = (self.streak + 1).min(self.steps);
        let until = now.saturating_add(self.backoff.open_ms(self.timeout, self.streak, now));
        let reason = self.changes_state(Seen::Open).then_some(reason);
        self.enter(Phase::Open { since: now, until }, reason);
    }

    /// Whether entering `to` is a change of state (an open model that opens
    /// again, or a closed one that closes again, only starts a generation).
    fn changes_state(&self, to: Seen) -> bool {
        self.stored() != to || matches!(self.phase, Phase::Isolated { .. })
    }

    fn enter(&mut self, phase: Phase, reason: Option<Reason>) {
        let from = self.stored();
        self.phase = phase;
        self.generation += 1;
        self.calls.clear();
        if let Some(reason) = reason {
            self.changes.push(Change { from, to: self.stored(), reason, generation: self.generation });
        }
    }

    /// The stored state as the real breaker's word reports it: isolated is
    /// open.
    fn stored(&self) -> Seen {
        match self.phase {
            Phase::Closed { .. } => Seen::Closed,
            Phase::Open { .. } | Phase::Isolated { .. } => Seen::Open,
            Phase::HalfOpen { .. } => Seen::HalfOpen,
        }
    }

    fn ticket(&self) -> Ticket {
        Ticket { generation: self.generation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_success_closes_and_makes_other_probes_stale() {
        let mut model = Model::new(1, 2, 10);
        model.trip(0);
        let first = model.acquire(10).unwrap();
        let second = model.acquire(10).unwrap();
        assert!(model.record(first, Outcome::Success, 11));
        assert_eq!(model.phase(), Phase::Closed { failures: 0 });
        assert!(!model.record(second, Outcome::Failure, 12));
        assert_eq!(model.phase(), Phase::Closed { failures: 0 });
    }

    #[test]
    fn hung_probes_are_replaced_after_a_timeout() {
        let mut model = Model::new(1, 1, 10);
        model.trip(0);
        let hung = model.acquire(10).unwrap();
        assert_eq!(model.acquire(19), Err(Refused::RetryAfter(1)));
        let fresh = model.acquire(20).unwrap();
        assert!(!model.record(hung, Outcome::Failure, 21));
        assert!(model.record(fresh, Outcome::Success, 21));
        assert_eq!(model.seen(21), Seen::Closed);
        let reasons: Vec<Reason> = model.take_changes().iter().map(|c| c.reason).collect();
        assert_eq!(reasons, [Reason::Tripped, Reason::TimeoutElapsed, Reason::ProbesReplaced, Reason::ProbeSucceeded]);
    }

    #[test]
    fn a_trip_of_an_open_model_starts_a_generation_but_is_no_change() {
        let mut model = Model::new(1, 1, 10);
        model.trip(0);
        model.trip(5);
        model.reset();
        model.reset();
        let changes = model.take_changes();
        assert_eq!(
            changes.iter().map(|c| (c.from, c.to, c.generation)).collect::<Vec<_>>(),
            [(Seen::Closed, Seen::Open, 1), (Seen::Open, Seen::Closed, 3)]
        );
        assert_eq!(model.generation(), 4);
    }

    #[test]
    fn ignored_probe_frees_its_slot() {
        let mut model = Model::new(1, 1, 10);
        model.trip(0);
        let probe = model.acquire(10).unwrap();
        assert!(model.acquire(10).is_err());
        assert!(model.record(probe, Outcome::Ignored, 10));
        assert!(model.acquire(10).is_ok());
    }

    fn exponential(jitter: Jitter) -> Backoff {
        Backoff { factor_permille: 2000, max_ms: 1000, jitter, seed: 7 }
    }

    /// Opens the model by its threshold (1) at `now` and returns how long
    /// the open lasts.
    fn open_and_fail_probe(model: &mut Model, now: u64) -> u64 {
        let probe = model.acquire(now).unwrap();
        assert!(model.record(probe, Outcome::Failure, now));
        match model.phase() {
            Phase::Open { since, until } => until - since,
            phase => panic!("not open: {phase:?}"),
        }
    }

    #[test]
    fn consecutive_opens_back_off_to_the_cap_and_a_close_starts_over() {
        let mut model = Model::with_policy(1, 1, 100, 1, exponential(Jitter::None));
        let mut now = 0;
        let mut lasted = Vec::new();
        for _ in 0..6 {
            let d = open_and_fail_probe(&mut model, now);
            lasted.push(d);
            now += d;
        }
        assert_eq!(lasted, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(model.streak(), 5, "saturated where the steps stop growing");
        let probe = model.acquire(now).unwrap();
        assert!(model.record(probe, Outcome::Success, now));
        assert_eq!(model.streak(), 0);
        assert_eq!(open_and_fail_probe(&mut model, now), 100);
    }

    #[test]
    fn jitter_stays_inside_its_range_and_repeats_for_the_same_inputs() {
        let full = exponential(Jitter::Full);
        let equal = exponential(Jitter::Equal);
        for now in 0..1_000 {
            assert!((1..=400).contains(&full.open_ms(100, 3, now)));
            assert!((200..=400).contains(&equal.open_ms(100, 3, now)));
            assert_eq!(full.open_ms(100, 3, now), full.open_ms(100, 3, now));
        }
        let spread: std::collections::HashSet<u64> = (0..1_000).map(|now| full.open_ms(100, 3, now)).collect();
        assert!(spread.len() > 300, "full jitter draws many values: {}", spread.len());
    }

    #[test]
    fn a_success_threshold_needs_that_many_successes_in_one_round() {
        let mut model = Model::with_policy(1, 1, 10, 3, Backoff::fixed(10));
        model.trip(0);
        for expected in [Seen::HalfOpen, Seen::HalfOpen, Seen::Closed] {
            let probe = model.acquire(10).unwrap();
            assert!(model.record(probe, Outcome::Success, 10), "a success frees the slot for the next probe");
            assert_eq!(model.seen(10), expected);
        }
        model.trip(20);
        let probe = model.acquire(30).unwrap();
        assert!(model.record(probe, Outcome::Success, 30));
        let probe = model.acquire(30).unwrap();
        assert!(model.record(probe, Outcome::Failure, 30));
        assert_eq!(model.seen(30), Seen::Open, "one failure reopens whatever the successes");
    }

    #[test]
    fn isolation_holds_until_reset_and_trips_do_not_lift_it() {
        let mut model = Model::new(1, 1, 10);
        model.isolate(0);
        model.trip(5);
        model.trip_for(5, 1);
        assert_eq!(model.acquire(1_000_000), Err(Refused::HeldOpen));
        assert_eq!(model.seen(1_000_000), Seen::Open);
        model.reset();
        assert!(model.acquire(1_000_000).is_ok());
        let reasons: Vec<Reason> = model.take_changes().iter().map(|c| c.reason).collect();
        assert_eq!(reasons, [Reason::Isolated, Reason::Reset]);
    }

    #[test]
    fn trip_for_opens_for_exactly_that_long_and_keeps_the_streak() {
        let mut model = Model::with_policy(1, 1, 100, 1, exponential(Jitter::None));
        model.trip_for(0, 5_000);
        assert_eq!(model.acquire(4_999), Err(Refused::RetryAfter(1)));
        assert_eq!(model.streak(), 0);
        assert_eq!(open_and_fail_probe(&mut model, 5_000), 100, "the first automatic open is step 1");
    }
}
