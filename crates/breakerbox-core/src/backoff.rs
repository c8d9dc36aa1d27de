//! How long an open breaker stays open: [`Backoff`] as the builder takes it,
//! and the [`Schedule`] it resolves to, whose durations are pure functions
//! of the step (opens in a row), the timeout and the time of the opening.

use core::fmt;
use core::time::Duration;

use crate::time::ticks_rounded_up;

/// How an open's duration is spread around its backed-off value, so that
/// breakers that opened together (a fleet's, on one outage) do not probe
/// together.
///
/// The draw is a hash of the breaker's seed, the millisecond of the opening
/// and the step: the same inputs give the same duration, so a test on a mock
/// clock with a fixed [`Backoff::seed`] can state it exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// No spread: the open lasts the backed-off duration `d` exactly.
    #[default]
    None,
    /// "Full jitter": uniform over `1 ms..=d`. Spreads probes the most; an
    /// open can be much shorter than `d`.
    Full,
    /// "Equal jitter": uniform over `d - d/2..=d`. Never shorter than half
    /// of `d`.
    Equal,
}

/// How long consecutive opens last, for
/// [`Builder::backoff`](crate::Builder::backoff).
///
/// The `k`-th open in a row (opens with no close in between; a failed probe
/// counts) is based on `d(k)`: `d(1)` is the config's timeout and
/// `d(k + 1) = min(d(k) * factor, max)`, computed in whole milliseconds with
/// the factor rounded to thousandths and each product rounded up. The open
/// lasts `d(k)` spread by the [`Jitter`]. A close (a probe success or
/// `reset`) starts the next open at `d(1)` again.
///
/// ```
/// use breakerbox_core::{Backoff, Config, CoreBreaker, Jitter, Outcome, Timestamp};
/// use std::time::Duration;
///
/// let config = Config { threshold: 1, timeout: Duration::from_secs(1), half_open_max: 1 };
/// let breaker = CoreBreaker::builder(config)
///     .backoff(Backoff::exponential(2.0, Duration::from_secs(60)).jitter(Jitter::Equal))
///     .build()?;
/// let ticket = breaker.acquire_at(Timestamp::ZERO)?;
/// breaker.record_at(ticket, Outcome::Failure, Timestamp::ZERO);
/// let first = breaker.acquire_at(Timestamp::ZERO).unwrap_err().retry_after().unwrap();
/// assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    factor: f64,
    max: Option<Duration>,
    jitter: Jitter,
    seed: Option<u64>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::fixed()
    }
}

impl Backoff {
    /// Every open lasts the timeout: the Go package's rule, and the default.
    pub const fn fixed() -> Backoff {
        Backoff { factor: 1.0, max: None, jitter: Jitter::None, seed: None }
    }

    /// Each open in a row lasts `factor` times the one before, up to `max`.
    /// `factor` must be at least 1 and at most 65.535, `max` at least the
    /// timeout and at most [`Config::MAX_TIMEOUT`](crate::Config::MAX_TIMEOUT)
    /// (checked at build: [`ConfigError::BackoffFactor`](crate::ConfigError::BackoffFactor),
    /// [`ConfigError::BackoffMax`](crate::ConfigError::BackoffMax)).
    pub const fn exponential(factor: f64, max: Duration) -> Backoff {
        Backoff { factor, max: Some(max), jitter: Jitter::None, seed: None }
    }

    /// Spreads each open by `jitter`.
    pub const fn jitter(self, jitter: Jitter) -> Backoff {
        Backoff { jitter, ..self }
    }

    /// Seeds the jitter. Without a seed each breaker draws one from the
    /// process's random state (`std`'s `RandomState`), so two processes
    /// (or two breakers) spread their opens differently; a test sets one to
    /// state exact durations.
    pub const fn seed(self, seed: u64) -> Backoff {
        Backoff { seed: Some(seed), ..self }
    }

    pub(crate) const fn factor(&self) -> f64 {
        self.factor
    }

    pub(crate) const fn max(&self) -> Option<Duration> {
        self.max
    }

    /// The schedule for a breaker with `timeout_ticks`, or why there is
    /// none.
    pub(crate) fn schedule(&self, timeout_ticks: u64) -> Result<Schedule, BackoffError> {
        if !(self.factor >= 1.0 && self.factor <= 65.535) {
            return Err(BackoffError::Factor);
        }
        let factor_permille = (self.factor * 1000.0).round() as u32;
        let max_ticks = match self.max {
            None => timeout_ticks,
            Some(max) => {
                let ticks = ticks_rounded_up(max);
                if ticks < u128::from(timeout_ticks) || ticks > u128::from(crate::word::MAX_TIMEOUT_TICKS) {
                    return Err(BackoffError::Max);
                }
                ticks as u64
            }
        };
        let seed = self.seed.unwrap_or_else(random_seed);
        let schedule = Schedule { factor_permille, max_ticks, jitter: self.jitter, seed, steps: 0 };
        let steps = schedule.count_steps(timeout_ticks).ok_or(BackoffError::Steps)?;
        Ok(Schedule { steps, ..schedule })
    }
}

/// A seed from the process's random hash keys.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// Why a [`Backoff`] does not fit the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackoffError {
    Factor,
    Max,
    Steps,
}

/// The most steps a backoff may take to reach its cap: the streak is kept
/// in six bits of the state word.
pub(crate) const MAX_STEPS: u32 = 63;

/// A resolved [`Backoff`]: durations in ticks, the factor in thousandths,
/// and the number of steps after which durations stop growing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    factor_permille: u32,
    max_ticks: u64,
    jitter: Jitter,
    seed: u64,
    /// The last step at which the duration still grows; 0 when it never
    /// does. The streak saturates here.
    pub(crate) steps: u32,
}

impl Schedule {
    /// The Go package's schedule: every open lasts the timeout.
    pub(crate) const FIXED: Schedule =
        Schedule { factor_permille: 1000, max_ticks: u64::MAX, jitter: Jitter::None, seed: 0, steps: 0 };

    /// `d(step)`: the backed-off duration of the `step`-th open in a row;
    /// `d(0)` is `d(1)`, the timeout.
    pub(crate) fn base_ticks(&self, timeout_ticks: u64, step: u32) -> u64 {
        let mut d = timeout_ticks.min(self.max_ticks);
        for _ in 1..step {
            let next = (u128::from(d) * u128::from(self.factor_permille)).div_ceil(1000);
            d = u64::try_from(next).unwrap_or(u64::MAX).min(self.max_ticks);
        }
        d
    }

    /// The last step at which `d` grows, if it stops within [`MAX_STEPS`].
    fn count_steps(&self, timeout_ticks: u64) -> Option<u32> {
        if self.base_ticks(timeout_ticks, 2) == self.base_ticks(timeout_ticks, 1) {
            return Some(0);
        }
        let mut step = 2;
        while self.base_ticks(timeout_ticks, step + 1) != self.base_ticks(timeout_ticks, step) {
            step += 1;
            if step > MAX_STEPS {
                return None;
            }
        }
        Some(step)
    }

    /// How long the `step`-th open in a row, entered at `now_ticks`, lasts.
    pub(crate) fn open_ticks(&self, timeout_ticks: u64, step: u32, now_ticks: u64) -> u64 {
        let d = self.base_ticks(timeout_ticks, step);
        let draw = mix(self.seed ^ now_ticks.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(step));
        match self.jitter {
            Jitter::None => d,
            Jitter::Full => 1 + draw % d,
            Jitter::Equal => d - d / 2 + draw % (d / 2 + 1),
        }
    }
}

/// The jitter's hash: the splitmix64 finaliser, a bijection of `u64`.
const fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_steps_double_up_to_the_cap() {
        let schedule = Backoff::exponential(2.0, Duration::from_millis(1_000)).seed(1).schedule(100).unwrap();
        let steps: Vec<u64> = (0..=7).map(|k| schedule.base_ticks(100, k)).collect();
        assert_eq!(steps, [100, 100, 200, 400, 800, 1_000, 1_000, 1_000]);
        assert_eq!(schedule.steps, 5);
        assert_eq!(Backoff::fixed().schedule(100).unwrap().steps, 0);
        assert_eq!(Schedule::FIXED.base_ticks(100, 9), 100);
    }

    #[test]
    fn bad_backoffs_are_refused() {
        let max = Duration::from_secs(1);
        assert_eq!(Backoff::exponential(0.5, max).schedule(100), Err(BackoffError::Factor));
        assert_eq!(Backoff::exponential(f64::NAN, max).schedule(100), Err(BackoffError::Factor));
        assert_eq!(Backoff::exponential(2.0, Duration::from_millis(99)).schedule(100), Err(BackoffError::Max));
        assert_eq!(Backoff::exponential(1.001, Duration::from_secs(3_600)).schedule(1), Err(BackoffError::Steps));
    }
}
