//! What a user asks for ([`Config`]) and what the state word can hold
//! ([`ValidConfig`], or a [`ConfigError`] naming the field that does not fit).

use core::fmt;
use core::time::Duration;

use crate::time::ticks_rounded_up;
use crate::word;

/// How a breaker behaves: when it opens, how long it stays open, how many
/// probes it lets through while half-open.
///
/// A zero field means its default, as in the Go package this crate follows
/// (each field says which); [`validate`](Self::validate) resolves them.
///
/// With the `serde` feature a `Config` serializes as `threshold`,
/// `timeout_ms` (rounded up to whole milliseconds) and `half_open_max`, and
/// deserializes from the same fields: each optional (missing or zero means
/// the default), values the breaker cannot hold refused with the
/// [`ConfigError`] message, unknown fields refused.
///
/// ```
/// use breakerbox_core::Config;
/// use std::time::Duration;
///
/// let config = Config { threshold: 3, timeout: Duration::from_secs(10), ..Config::default() };
/// assert_eq!(config.half_open_max, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Consecutive failures that open a closed breaker, at most
    /// [`Config::MAX_THRESHOLD`]. Zero means the default,
    /// [`Config::DEFAULT_THRESHOLD`] (5).
    pub threshold: u32,
    /// How long an open breaker rejects calls before it lets a probe through
    /// (at most [`Config::MAX_TIMEOUT`], rounded up to whole milliseconds),
    /// and the first step of a backoff. Also how long a half-open breaker
    /// waits for a probe that never reports before it starts over with fresh
    /// probes (with a backoff, the current step). Zero means the default,
    /// [`Config::DEFAULT_TIMEOUT`] (30 s).
    ///
    /// It fires within a millisecond of its value either way: the time of
    /// the transition and the clock are both whole milliseconds rounded
    /// down (see [`TICK`](crate::TICK)). A clock that jumps back by some
    /// time keeps an open breaker open that much longer.
    pub timeout: Duration,
    /// Probes a half-open breaker lets run at once, at most
    /// [`Config::MAX_HALF_OPEN`]. Zero means the default,
    /// [`Config::DEFAULT_HALF_OPEN`] (1).
    pub half_open_max: u32,
}

impl Config {
    /// The threshold used when `threshold` is zero.
    pub const DEFAULT_THRESHOLD: u32 = 5;
    /// The timeout used when `timeout` is zero.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The probe limit used when `half_open_max` is zero.
    pub const DEFAULT_HALF_OPEN: u32 = 1;
    /// The largest threshold (65 535).
    pub const MAX_THRESHOLD: u32 = word::COUNT_MAX as u32;
    /// The largest probe limit (65 535).
    pub const MAX_HALF_OPEN: u32 = word::COUNT_MAX as u32;
    /// The largest success threshold (32 768), with one probe and a fixed
    /// backoff. Combined with a larger `half_open_max` or a backoff it must be
    /// smaller: see [`ConfigError::HalfOpenCount`].
    pub const MAX_SUCCESS_THRESHOLD: u32 = 1 << (word::COUNT_BITS - 1);
    /// The longest timeout: 2^36 milliseconds, about 2.18 years; backoff
    /// caps and `trip_for` share it.
    ///
    /// The breaker measures distances in time exactly up to 2^37 ms either
    /// way: an open breaker's deadline reads as passed from the deadline to
    /// 2^37 ms after it, a deadline at most this far ahead always reads as
    /// ahead, and a half-open round's lease is measured exactly.
    pub const MAX_TIMEOUT: Duration = Duration::from_millis(word::MAX_TIMEOUT_TICKS);

    /// Checks every field against its limit and resolves zero fields to their
    /// defaults.
    ///
    /// ```
    /// use breakerbox_core::Config;
    ///
    /// let err = Config { threshold: 70_000, ..Config::default() }.validate().unwrap_err();
    /// assert_eq!(err.field(), "threshold");
    /// assert!(err.to_string().contains("70000"));
    /// ```
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
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
        Ok(ValidConfig {
            timeout_ticks: timeout_ticks as u64,
            threshold: threshold as u16,
            half_open_max: half_open_max as u16,
            success_threshold: 1,
            in_flight_bits: bits(half_open_max),
            success_bits: 0,
        })
    }
}

/// The bits a field holding `0..=max` takes.
const fn bits(max: u32) -> u8 {
    (u32::BITS - max.leading_zeros()) as u8
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

/// A validated [`Config`]: every limit checked, defaults resolved, the
/// timeout rounded up to whole milliseconds, and, for a breaker's own (read
/// with [`CoreBreaker::valid_config`](crate::CoreBreaker::valid_config)), the
/// builder's options.
///
/// Made only by [`Config::validate`] (or the builder, with its options), so
/// every value is one the breaker can hold.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValidConfig {
    pub(crate) timeout_ticks: u64,
    pub(crate) threshold: u16,
    pub(crate) half_open_max: u16,
    pub(crate) success_threshold: u16,
    pub(crate) in_flight_bits: u8,
    pub(crate) success_bits: u8,
}

impl fmt::Debug for ValidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidConfig")
            .field("threshold", &self.threshold)
            .field("half_open_max", &self.half_open_max)
            .field("timeout_ticks", &self.timeout_ticks)
            .field("success_threshold", &self.success_threshold)
            .finish()
    }
}

impl ValidConfig {
    /// Consecutive failures that open the breaker (1 to 65 535), or 0 when
    /// that rule is off ([`Builder::consecutive_failures`](crate::Builder::consecutive_failures));
    /// [`config`](Self::config) then reports a threshold of 0 too, which a
    /// new breaker would read as the default.
    pub const fn threshold(&self) -> u32 {
        self.threshold as u32
    }

    /// Probes let through at once while half-open (1 to 65 535).
    pub const fn half_open_max(&self) -> u32 {
        self.half_open_max as u32
    }

    /// Probe successes of one half-open round that close the breaker (1 by
    /// default; set with [`Builder::success_threshold`](crate::Builder::success_threshold)).
    pub const fn success_threshold(&self) -> u32 {
        self.success_threshold as u32
    }

    /// This config with the builder's options: `success_threshold` (0
    /// means 1) and a backoff of `steps` steps. The half-open count holds
    /// probes in flight, successes so far and the streak side by side in 16
    /// bits; a combination that does not fit is refused.
    pub(crate) fn with_policy(self, success_threshold: u32, steps: u32) -> Result<ValidConfig, ConfigError> {
        let success_threshold = match success_threshold {
            0 => 1,
            n if n > Config::MAX_SUCCESS_THRESHOLD => return Err(ConfigError::SuccessThreshold { value: n }),
            n => n,
        };
        let success_bits = bits(success_threshold - 1);
        let needed = u32::from(self.in_flight_bits) + u32::from(success_bits) + u32::from(bits(steps));
        if needed > word::COUNT_BITS {
            return Err(ConfigError::HalfOpenCount {
                half_open_max: self.half_open_max(),
                success_threshold,
                backoff_steps: steps,
            });
        }
        Ok(ValidConfig { success_threshold: success_threshold as u16, success_bits, ..self })
    }

    /// This config with the consecutive-failure rule switched off.
    pub(crate) const fn without_consecutive_rule(self) -> ValidConfig {
        ValidConfig { threshold: 0, ..self }
    }

    /// The open timeout, rounded up to whole milliseconds.
    pub const fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ticks)
    }

    /// The configuration this came from, with every field explicit.
    ///
    /// ```
    /// use breakerbox_core::Config;
    /// use std::time::Duration;
    ///
    /// let valid = Config { timeout: Duration::from_micros(1_500), ..Config::default() }.validate()?;
    /// assert_eq!(valid.config().timeout, Duration::from_millis(2));
    /// # Ok::<(), breakerbox_core::ConfigError>(())
    /// ```
    pub const fn config(&self) -> Config {
        Config { threshold: self.threshold(), timeout: self.timeout(), half_open_max: self.half_open_max() }
    }
}

/// A [`Config`] field the state word cannot hold.
///
/// The message names the field, the value given and the limit.
///
/// `PartialEq` but not `Eq`: a refused backoff factor is an `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// The builder's success threshold is above
    /// [`Config::MAX_SUCCESS_THRESHOLD`].
    SuccessThreshold {
        /// The value given.
        value: u32,
    },
    /// The backoff's factor is not between 1 and 65.535.
    BackoffFactor {
        /// The value given.
        value: f64,
    },
    /// The backoff's cap is below the timeout or above
    /// [`Config::MAX_TIMEOUT`].
    BackoffMax {
        /// The value given.
        value: Duration,
    },
    /// The backoff takes more than 63 steps to reach its cap (its factor is
    /// too close to 1 for the distance from the timeout to the cap).
    BackoffSteps {
        /// The factor given.
        factor: f64,
        /// The cap given.
        max: Duration,
    },
    /// A half-open breaker has 16 bits for its probes in flight, its probe
    /// successes so far and its backoff streak together: with `bits(n)` the
    /// bits `n` takes, `bits(half_open_max) + bits(success_threshold - 1) +
    /// bits(backoff_steps)` must be at most 16. Each alone fits; together
    /// they do not.
    HalfOpenCount {
        /// The probe limit.
        half_open_max: u32,
        /// The success threshold.
        success_threshold: u32,
        /// The steps the backoff takes to reach its cap.
        backoff_steps: u32,
    },
    /// A [`FailureRate`](crate::FailureRate)'s ratio is not in `(0, 1]`.
    FailureRatio {
        /// The value given.
        value: f64,
    },
    /// A [`FailureRate`](crate::FailureRate)'s window is shorter than
    /// [`FailureRate::MIN_WINDOW`](crate::FailureRate::MIN_WINDOW) or longer
    /// than [`FailureRate::MAX_WINDOW`](crate::FailureRate::MAX_WINDOW).
    RateWindow {
        /// The value given.
        value: Duration,
    },
    /// A slow-call threshold is zero or longer than [`Config::MAX_TIMEOUT`].
    SlowCall {
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
            ConfigError::SuccessThreshold { .. } => "success_threshold",
            ConfigError::BackoffFactor { .. } | ConfigError::BackoffSteps { .. } => "backoff.factor",
            ConfigError::BackoffMax { .. } => "backoff.max",
            ConfigError::HalfOpenCount { .. } => "half_open_max + success_threshold + backoff",
            ConfigError::FailureRatio { .. } => "failure_rate.ratio",
            ConfigError::RateWindow { .. } => "failure_rate.window",
            ConfigError::SlowCall { .. } => "slow_call",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field();
        f.write_str("invalid breaker config: ")?;
        match *self {
            ConfigError::Threshold { value } => {
                write!(f, "{field} = {value} is over the limit of {}", Config::MAX_THRESHOLD)
            }
            ConfigError::HalfOpenMax { value } => {
                write!(f, "{field} = {value} is over the limit of {}", Config::MAX_HALF_OPEN)
            }
            ConfigError::Timeout { value } => over_the_longest_timeout(f, field, value),
            ConfigError::SuccessThreshold { value } => {
                write!(f, "{field} = {value} is over the limit of {}", Config::MAX_SUCCESS_THRESHOLD)
            }
            ConfigError::BackoffFactor { value } => {
                write!(f, "{field} = {value} is outside the limits 1 to 65.535")
            }
            ConfigError::BackoffMax { value } if value > Config::MAX_TIMEOUT => {
                over_the_longest_timeout(f, field, value)
            }
            ConfigError::BackoffMax { value } => write!(
                f,
                "{field} = {} is below the timeout: the cap must be at least the first open's length",
                Human(value)
            ),
            ConfigError::BackoffSteps { factor, max } => write!(
                f,
                "backoff.factor = {factor} takes more than {} opens in a row to reach backoff.max = {}: \
                 raise the factor or lower the cap",
                crate::backoff::MAX_STEPS,
                Human(max)
            ),
            ConfigError::HalfOpenCount { half_open_max, success_threshold, backoff_steps } => {
                let (probes, successes, steps) =
                    (bits(half_open_max), bits(success_threshold.saturating_sub(1)), bits(backoff_steps));
                write!(
                    f,
                    "half_open_max = {half_open_max} ({probes} bits), success_threshold = {success_threshold} \
                     ({successes} bits) and a backoff of {backoff_steps} steps ({steps} bits) need {} bits of the \
                     half-open state, over the {} it has: lower half_open_max or success_threshold, or let the \
                     backoff reach its cap in fewer steps (a larger backoff.factor or a smaller backoff.max)",
                    u32::from(probes) + u32::from(successes) + u32::from(steps),
                    word::COUNT_BITS
                )
            }
            ConfigError::FailureRatio { value } => {
                write!(f, "{field} = {value} is outside the limits: above 0, at most 1")
            }
            ConfigError::RateWindow { value } => write!(
                f,
                "{field} = {} is outside the limits {} to {}",
                Human(value),
                Human(crate::FailureRate::MIN_WINDOW),
                Human(crate::FailureRate::MAX_WINDOW)
            ),
            ConfigError::SlowCall { value } => {
                let (value, limit) = against(value, Config::MAX_TIMEOUT);
                write!(f, "{field} = {value} is outside the limits: above 0, at most {limit}")
            }
        }
    }
}

/// A duration in the unit a person would pick: `250 ms`, `1.5 s`, `24 h`,
/// `2.18 years`; at most two decimals, trailing zeros dropped, and the unit
/// chosen after rounding (999.999 ms is `1 s`, not `1000 ms`).
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const YEAR: f64 = 365.25 * 24.0 * 3600.0;
        // (seconds in the unit, its name, the rounded value at which the next unit takes over)
        const UNITS: [(f64, &str, f64); 8] = [
            (1e-9, "ns", 1000.0),
            (1e-6, "µs", 1000.0),
            (1e-3, "ms", 1000.0),
            (1.0, "s", 120.0),
            (60.0, "min", 120.0),
            (3600.0, "h", 48.0),
            (24.0 * 3600.0, "days", 365.25),
            (YEAR, "years", f64::INFINITY),
        ];
        let secs = self.0.as_secs_f64();
        let (value, unit) = UNITS
            .iter()
            .map(|&(size, unit, next)| ((secs / size * 100.0).round() / 100.0, unit, next))
            .find(|&(value, _, next)| value < next)
            .map_or((0.0, "ns"), |(value, unit, _)| (value, unit));
        let text = format!("{value:.2}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        let unit = if text == "1" && unit == "years" { "year" } else { unit };
        write!(f, "{text} {unit}")
    }
}

/// `field = value is over the limit of 2.18 years (2^36 ms)`: the words of
/// every duration capped at [`Config::MAX_TIMEOUT`].
fn over_the_longest_timeout(f: &mut fmt::Formatter<'_>, field: &str, value: Duration) -> fmt::Result {
    let (value, limit) = against(value, Config::MAX_TIMEOUT);
    write!(f, "{field} = {value} is over the limit of {limit} (2^36 ms)")
}

/// A value and its limit in human units, or exactly (`Debug`) when rounding
/// would print the two the same: `68719476.737s is over the limit of
/// 68719476.736s`, not `2.18 years is over the limit of 2.18 years`.
fn against(value: Duration, limit: Duration) -> (String, String) {
    let (value_text, limit_text) = (Human(value).to_string(), Human(limit).to_string());
    if value_text == limit_text { (format!("{value:?}"), format!("{limit:?}")) } else { (value_text, limit_text) }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_slow_call_errors_name_field_value_and_limits() {
        let cases = [
            (
                ConfigError::FailureRatio { value: 1.5 },
                "failure_rate.ratio",
                "failure_rate.ratio = 1.5 is outside the limits: above 0, at most 1",
            ),
            (
                ConfigError::RateWindow { value: Duration::from_millis(3) },
                "failure_rate.window",
                "failure_rate.window = 3 ms is outside the limits 10 ms to 24 h",
            ),
            (
                ConfigError::SlowCall { value: Duration::ZERO },
                "slow_call",
                "slow_call = 0 ns is outside the limits: above 0, at most 2.18 years",
            ),
        ];
        for (err, field, message) in cases {
            assert_eq!(err.field(), field);
            assert_eq!(err.to_string(), format!("invalid breaker config: {message}"));
        }
    }

    #[test]
    fn durations_print_in_the_unit_a_person_would_pick() {
        for (duration, text) in [
            (Duration::ZERO, "0 ns"),
            (Duration::from_nanos(999), "999 ns"),
            (Duration::from_micros(1), "1 µs"),
            (Duration::from_millis(1), "1 ms"),
            (Duration::from_micros(1_500), "1.5 ms"),
            (Duration::from_millis(250), "250 ms"),
            (Duration::from_millis(1_000), "1 s"),
            (Duration::from_millis(119_990), "119.99 s"),
            (Duration::from_secs(120), "2 min"),
            (Duration::from_secs(90 * 60), "90 min"),
            (Duration::from_secs(2 * 3600), "2 h"),
            (Duration::from_nanos(999_999_999), "1 s"),
            (Duration::from_micros(999_999), "1 s"),
            (Duration::from_nanos(999_996), "1 ms"),
            (Duration::from_secs(47 * 3600 + 3599), "2 days"),
            (Duration::from_secs(24 * 3600), "24 h"),
            (Duration::from_secs(2 * 24 * 3600), "2 days"),
            (Duration::from_secs(36_525 * 864), "1 year"),
            (Config::MAX_TIMEOUT, "2.18 years"),
        ] {
            assert_eq!(Human(duration).to_string(), text, "{duration:?}");
        }
    }

    #[test]
    fn a_backoff_cap_below_the_timeout_or_over_the_limit_says_which() {
        let below = ConfigError::BackoffMax { value: Duration::from_millis(10) };
        assert_eq!(
            below.to_string(),
            "invalid breaker config: backoff.max = 10 ms is below the timeout: the cap must be at least the first \
             open's length"
        );
        let at_the_limit = ConfigError::BackoffMax { value: Config::MAX_TIMEOUT };
        assert!(at_the_limit.to_string().contains("is below the timeout"), "the limit itself is allowed");
        let over = ConfigError::BackoffMax { value: Config::MAX_TIMEOUT + Duration::from_millis(1) };
        assert_eq!(
            over.to_string(),
            "invalid breaker config: backoff.max = 68719476.737s is over the limit of 68719476.736s (2^36 ms)"
        );
    }

    #[test]
    fn a_message_never_panics_on_a_success_threshold_of_zero() {
        let err = ConfigError::HalfOpenCount { half_open_max: 1, success_threshold: 0, backoff_steps: 0 };
        assert!(err.to_string().contains("success_threshold = 0 (0 bits)"), "{err}");
    }

    #[test]
    fn a_half_open_state_too_small_for_the_options_says_which_fields_to_lower() {
        let err = ConfigError::HalfOpenCount { half_open_max: 300, success_threshold: 200, backoff_steps: 10 };
        assert_eq!(err.field(), "half_open_max + success_threshold + backoff");
        assert_eq!(
            err.to_string(),
            "invalid breaker config: half_open_max = 300 (9 bits), success_threshold = 200 (8 bits) and a backoff of \
             10 steps (4 bits) need 21 bits of the half-open state, over the 16 it has: lower half_open_max or \
             success_threshold, or let the backoff reach its cap in fewer steps (a larger backoff.factor or a \
             smaller backoff.max)"
        );
    }

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
        assert_eq!(err.to_string(), "invalid breaker config: threshold = 65536 is over the limit of 65535");

        let err = Config { half_open_max: u32::MAX, ..Config::default() }.validate().unwrap_err();
        assert_eq!(err.field(), "half_open_max");
        assert_eq!(err.to_string(), "invalid breaker config: half_open_max = 4294967295 is over the limit of 65535");

        let too_long = Config::MAX_TIMEOUT + Duration::from_nanos(1);
        let err = Config { timeout: too_long, ..Config::default() }.validate().unwrap_err();
        assert_eq!(err, ConfigError::Timeout { value: too_long });
        assert_eq!(
            err.to_string(),
            "invalid breaker config: timeout = 68719476.736000001s is over the limit of 68719476.736s (2^36 ms)"
        );
        let err = Config { timeout: Duration::from_secs(3 * 365 * 24 * 3600), ..Config::default() }.validate();
        assert_eq!(
            err.unwrap_err().to_string(),
            "invalid breaker config: timeout = 3 years is over the limit of 2.18 years (2^36 ms)"
        );

        let err = Config { timeout: Duration::MAX, ..Config::default() }.validate().unwrap_err();
        assert_eq!(err.field(), "timeout");
    }

    #[test]
    fn sub_tick_timeouts_round_up_to_one_tick() {
        let limits = Config { timeout: Duration::from_nanos(1), ..Config::default() }.validate().unwrap();
        assert_eq!(limits.timeout_ticks, 1);
    }
}
