//! What a user asks for ([`Config`]) and what the state word can hold
//! ([`Limits`], or a [`ConfigError`] naming the field that does not fit).

use core::fmt;
use core::time::Duration;

use crate::time::{TICK, ticks_rounded_up};
use crate::word;

/// How a breaker behaves: when it opens, how long it stays open, how many
/// probes it lets through while half-open.
///
/// A zero field means its default, as in the Go package this crate follows.
///
/// With the `serde` feature a `Config` serializes as `threshold`,
/// `timeout_ms` (rounded up to whole milliseconds) and `half_open_max`, and
/// deserializes from the same fields: each optional (missing or zero means
/// the default), values the breaker cannot hold refused with the
/// [`ConfigError`] message, unknown fields refused.
///
/// ```
/// use breaker_core::Config;
/// use std::time::Duration;
///
/// let config = Config { threshold: 3, timeout: Duration::from_secs(10), ..Config::default() };
/// assert_eq!(config.half_open_max, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Consecutive failures that open a closed breaker (default 5, at most
    /// [`Config::MAX_THRESHOLD`]).
    pub threshold: u32,
    /// How long an open breaker rejects calls before it lets a probe through
    /// (default 30 s, at most [`Config::MAX_TIMEOUT`], rounded up to whole
    /// milliseconds). Also how long a half-open breaker waits for a probe
    /// that never reports before it starts over with fresh probes.
    ///
    /// It fires within a millisecond of its value either way: the time of
    /// the transition and the clock are both whole milliseconds rounded
    /// down (see [`TICK`](crate::TICK)). A clock that jumps back by some
    /// time keeps an open breaker open that much longer.
    pub timeout: Duration,
    /// Probes a half-open breaker lets run at once (default 1, at most
    /// [`Config::MAX_HALF_OPEN`]).
    pub half_open_max: u32,
}

impl Config {
    /// The threshold used when `threshold` is zero.
    pub const DEFAULT_THRESHOLD: u32 = 5;
    /// The timeout used when `timeout` is zero.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The probe limit used when `half_open_max` is zero.
    pub const DEFAULT_HALF_OPEN: u32 = 1;
    /// The largest threshold the state word's count field holds (65 535).
    pub const MAX_THRESHOLD: u32 = word::COUNT_MAX as u32;
    /// The largest probe limit the state word's count field holds (65 535).
    pub const MAX_HALF_OPEN: u32 = word::COUNT_MAX as u32;
    /// The longest timeout: 2^36 milliseconds, about 2.18 years.
    ///
    /// The state word measures up to 2^37 - 1 ms since the last transition;
    /// past that, elapsed time reads as zero again. Capping the timeout at
    /// half of that leaves an open breaker at least a timeout's length of
    /// time (from `timeout` to 2^37 ms after it opened) in which a call
    /// finds the timeout passed, however long the timeout.
    pub const MAX_TIMEOUT: Duration = Duration::from_millis(word::MAX_TIMEOUT_TICKS);

    /// Checks that every field fits the state word and resolves zero fields to
    /// their defaults.
    ///
    /// ```
    /// use breaker_core::Config;
    ///
    /// let err = Config { threshold: 70_000, ..Config::default() }.validate().unwrap_err();
    /// assert_eq!(err.field(), "threshold");
    /// assert!(err.to_string().contains("70000"));
    /// ```
    pub fn validate(&self) -> Result<Limits, ConfigError> {
        let threshold = match self.threshold {
            0 => Self::DEFAULT_THRESHOLD,
            t if t > Self::MAX_THRESHOLD => return Err(ConfigError::Threshold { value: t }),
            t => t,
        };
        let half_open_max = match self.half_open_max {
            0 => Self::DEFAULT_HALF_OPEN,
            h if h > Self::MAX_HALF_OPEN => return Err(ConfigError::HalfOpenMax { value: h }),
            h => h,
        };
        let timeout = if self.timeout.is_zero() { Self::DEFAULT_TIMEOUT } else { self.timeout };
        let timeout_ticks = ticks_rounded_up(timeout);
        if timeout_ticks > u128::from(word::MAX_TIMEOUT_TICKS) {
            return Err(ConfigError::Timeout { value: self.timeout });
        }
        Ok(Limits { threshold, half_open_max, timeout_ticks: timeout_ticks as u64 })
    }
}

impl Default for Config {
    /// 5 consecutive failures, 30 seconds, 1 probe: the Go package's defaults.
    fn default() -> Config {
        Config {
            threshold: Self::DEFAULT_THRESHOLD,
            timeout: Self::DEFAULT_TIMEOUT,
            half_open_max: Self::DEFAULT_HALF_OPEN,
        }
    }
}

/// A validated [`Config`]: defaults resolved, the timeout in whole ticks.
///
/// Made only by [`Config::validate`], so every value fits the state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    pub(crate) threshold: u32,
    pub(crate) half_open_max: u32,
    pub(crate) timeout_ticks: u64,
}

impl Limits {
    /// Consecutive failures that open the breaker (1 to 65 535).
    pub const fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Probes let through at once while half-open (1 to 65 535).
    pub const fn half_open_max(&self) -> u32 {
        self.half_open_max
    }

    /// The open timeout, rounded up to whole milliseconds.
    pub const fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ticks)
    }

    /// The configuration these limits came from, with every field explicit.
    ///
    /// ```
    /// use breaker_core::Config;
    /// use std::time::Duration;
    ///
    /// let limits = Config { timeout: Duration::from_micros(1_500), ..Config::default() }.validate()?;
    /// assert_eq!(limits.config().timeout, Duration::from_millis(2));
    /// # Ok::<(), breaker_core::ConfigError>(())
    /// ```
    pub const fn config(&self) -> Config {
        Config { threshold: self.threshold, timeout: self.timeout(), half_open_max: self.half_open_max }
    }
}

/// A [`Config`] field the state word cannot hold.
///
/// The message names the field, the value given and the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `threshold` is above [`Config::MAX_THRESHOLD`].
    Threshold {
        /// The value given.
        value: u32,
    },
    /// `half_open_max` is above [`Config::MAX_HALF_OPEN`].
    HalfOpenMax {
        /// The value given.
        value: u32,
    },
    /// `timeout` is above [`Config::MAX_TIMEOUT`].
    Timeout {
        /// The value given.
        value: Duration,
    },
}

impl ConfigError {
    /// The name of the [`Config`] field that was refused.
    pub const fn field(&self) -> &'static str {
        match self {
            ConfigError::Threshold { .. } => "threshold",
            ConfigError::HalfOpenMax { .. } => "half_open_max",
            ConfigError::Timeout { .. } => "timeout",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field();
        match *self {
            ConfigError::Threshold { value } => {
                write!(f, "invalid breaker config: {field} = {value} exceeds the limit {}", Config::MAX_THRESHOLD)
            }
            ConfigError::HalfOpenMax { value } => {
                write!(f, "invalid breaker config: {field} = {value} exceeds the limit {}", Config::MAX_HALF_OPEN)
            }
            ConfigError::Timeout { value } => write!(
                f,
                "invalid breaker config: {field} = {value:?} exceeds the limit {:?} ({} ticks of {TICK:?})",
                Config::MAX_TIMEOUT,
                word::MAX_TIMEOUT_TICKS,
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fields_mean_defaults() {
        let limits = Config { threshold: 0, timeout: Duration::ZERO, half_open_max: 0 }.validate().unwrap();
        assert_eq!(limits.config(), Config::default());
        assert_eq!(Config::default(), Config { threshold: 5, timeout: Duration::from_secs(30), half_open_max: 1 });
    }

    #[test]
    fn largest_values_are_accepted() {
        let config = Config { threshold: 65_535, timeout: Config::MAX_TIMEOUT, half_open_max: 65_535 };
        let limits = config.validate().unwrap();
        assert_eq!(limits.config(), config);
        assert_eq!(limits.timeout_ticks, 1 << 36);
    }

    #[test]
    fn values_past_the_layout_are_refused_with_field_value_and_limit() {
        let err = Config { threshold: 65_536, ..Config::default() }.validate().unwrap_err();
        assert_eq!(err, ConfigError::Threshold { value: 65_536 });
        assert_eq!(err.to_string(), "invalid breaker config: threshold = 65536 exceeds the limit 65535");

        let err = Config { half_open_max: u32::MAX, ..Config::default() }.validate().unwrap_err();
        assert_eq!(err.field(), "half_open_max");
        assert_eq!(err.to_string(), "invalid breaker config: half_open_max = 4294967295 exceeds the limit 65535");

        let too_long = Config::MAX_TIMEOUT + Duration::from_nanos(1);
        let err = Config { timeout: too_long, ..Config::default() }.validate().unwrap_err();
        assert_eq!(err, ConfigError::Timeout { value: too_long });
        assert!(err.to_string().starts_with("invalid breaker config: timeout = 68719476.736000001s exceeds the limit"));

        let err = Config { timeout: Duration::MAX, ..Config::default() }.validate().unwrap_err();
        assert_eq!(err.field(), "timeout");
    }

    #[test]
    fn sub_tick_timeouts_round_up_to_one_tick() {
        let limits = Config { timeout: Duration::from_nanos(1), ..Config::default() }.validate().unwrap();
        assert_eq!(limits.timeout_ticks, 1);
    }
}
