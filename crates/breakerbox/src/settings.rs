//! [`Settings`]: everything a config file says about one breaker, as plain
//! data, and (the `serde` feature) read from the file with the builder's
//! validation.

use core::time::Duration;

use breakerbox_core::{Backoff, Config, ConfigError, FailureRate};

use crate::{Breaker, Builder};

/// One breaker's [`Config`] and the rules of its [`Builder`], as data: what
/// a service keeps in its config file, one entry per downstream.
///
/// With the `serde` feature it deserializes from the [`Config`] fields
/// (`threshold`, `timeout_ms`, `half_open_max`) and the rules, each
/// optional: `success_threshold`, `consecutive_failures` (default `true`),
/// `slow_call_ms`, `backoff { factor, max_ms, jitter, seed }` and
/// `failure_rate { ratio, min_calls, window_ms }`. Reading validates as
/// [`Builder::build`] does and refuses unknown fields, so a typo or a value
/// out of range fails at load time. A refusal names the setting as the
/// builder does (`failure_rate.window`, not the file's `window_ms`) and gives
/// durations in human units (`5 ms`).
///
/// The clock, the name and the transition listener are not data: set them
/// on the [`Builder`] that [`builder`](Self::builder) returns.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use breakerbox::{Settings, State};
///
/// let users: Settings = serde_json::from_str(r#"{
///     "threshold": 10,
///     "timeout_ms": 5000,
///     "success_threshold": 2,
///     "slow_call_ms": 2000,
///     "backoff": { "factor": 2.0, "max_ms": 300000, "jitter": "equal" },
///     "failure_rate": { "ratio": 0.5, "min_calls": 20, "window_ms": 10000 }
/// }"#)?;
/// let breaker = users.builder().name("users").build()?;
/// assert_eq!(breaker.state(), State::Closed);
///
/// let typo = serde_json::from_str::<Settings>(r#"{ "failure_rate": { "ratio": 1.5, "window_ms": 10000 } }"#);
/// assert!(typo.unwrap_err().to_string().contains("failure_rate.ratio = 1.5 is outside the limits"));
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Without serde, it is a value to fill in and share between breakers:
///
/// ```
/// use breakerbox::{Config, FailureRate, Settings};
/// use std::time::Duration;
///
/// let mut settings = Settings::from(Config { threshold: 3, ..Config::default() });
/// settings.failure_rate = Some(FailureRate::new(0.5, 20, Duration::from_secs(10)));
/// settings.validate()?;
/// let (a, b) = (settings.builder().build()?, settings.builder().build()?);
/// # let _ = (a, b);
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// The Go package's three numbers.
    pub config: Config,
    /// Probe successes of one half-open round that close the breaker (0
    /// means 1); [`Builder::success_threshold`].
    pub success_threshold: u32,
    /// Whether `config.threshold` consecutive failures open the breaker;
    /// [`Builder::consecutive_failures`].
    pub consecutive_failures: bool,
    /// Each open in a row longer than the last; [`Builder::backoff`].
    pub backoff: Option<Backoff>,
    /// Open on a failure rate over a sliding window; [`Builder::failure_rate`].
    pub failure_rate: Option<FailureRate>,
    /// A success slower than this counts as a failure; [`Builder::slow_call`].
    pub slow_call: Option<Duration>,
}

impl Default for Settings {
    /// The default [`Config`], the consecutive rule on, no other rule.
    fn default() -> Settings {
        Settings::from(Config::default())
    }
}

impl From<Config> for Settings {
    /// `config` with the consecutive rule on and no other rule.
    fn from(config: Config) -> Settings {
        Settings {
            config,
            success_threshold: 1,
            consecutive_failures: true,
            backoff: None,
            failure_rate: None,
            slow_call: None,
        }
    }
}

impl Settings {
    /// A builder with every field applied, for the clock, name or listener
    /// still to come.
    pub fn builder(&self) -> Builder {
        let mut builder = Breaker::builder(self.config)
            .success_threshold(self.success_threshold)
            .consecutive_failures(self.consecutive_failures);
        if let Some(backoff) = self.backoff {
            builder = builder.backoff(backoff);
        }
        if let Some(rate) = self.failure_rate {
            builder = builder.failure_rate(rate);
        }
        if let Some(threshold) = self.slow_call {
            builder = builder.slow_call(threshold);
        }
        builder
    }

    /// The error [`Builder::build`] would give for these settings, if any.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Exactly what `build` checks, on a clock that costs nothing to make.
        self.builder().clock(breakerbox_core::quanta::Clock::mock().0).build().map(drop)
    }
}

#[cfg(feature = "serde")]
mod file {
    use core::time::Duration;

    use breakerbox_core::{Backoff, Config, FailureRate, Jitter};
    use serde::de::{Deserialize, Deserializer, Error as _};

    use super::Settings;

    /// What a config file holds for one breaker, before validation.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SettingsFields {
        #[serde(default)]
        threshold: u32,
        #[serde(default)]
        timeout_ms: u64,
        #[serde(default)]
        half_open_max: u32,
        #[serde(default)]
        success_threshold: u32,
        #[serde(default = "on")]
        consecutive_failures: bool,
        #[serde(default)]
        slow_call_ms: Option<u64>,
        #[serde(default)]
        backoff: Option<BackoffFields>,
        #[serde(default)]
        failure_rate: Option<RateFields>,
    }

    fn on() -> bool {
        true
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct BackoffFields {
        factor: f64,
        #[serde(default)]
        max_ms: Option<u64>,
        #[serde(default)]
        jitter: JitterField,
        #[serde(default)]
        seed: Option<u64>,
    }

    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "snake_case")]
    enum JitterField {
        #[default]
        None,
        Full,
        Equal,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RateFields {
        ratio: f64,
        #[serde(default)]
        min_calls: u32,
        window_ms: u64,
    }

    impl<'de> Deserialize<'de> for Settings {
        /// From the fields in [`Settings`]' docs, validated as
        /// [`Builder::build`](crate::Builder::build) validates.
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Settings, D::Error> {
            let fields = SettingsFields::deserialize(deserializer)?;
            let backoff = match fields.backoff {
                None => None,
                Some(backoff) => {
                    let shaped = match backoff.max_ms {
                        Some(max) => Backoff::exponential(backoff.factor, Duration::from_millis(max)),
                        None if backoff.factor == 1.0 => Backoff::fixed(),
                        None if (1.0..=65.535).contains(&backoff.factor) => {
                            return Err(D::Error::custom(format!(
                                "invalid breaker config: backoff.max_ms is missing: a backoff.factor of {} needs a \
                                 cap on how long an open may last",
                                backoff.factor
                            )));
                        }
                        // A factor out of range is the error to report, not the missing cap.
                        None => Backoff::exponential(backoff.factor, Duration::ZERO),
                    };
                    let jittered = shaped.jitter(match backoff.jitter {
                        JitterField::None => Jitter::None,
                        JitterField::Full => Jitter::Full,
                        JitterField::Equal => Jitter::Equal,
                    });
                    Some(backoff.seed.map_or(jittered, |seed| jittered.seed(seed)))
                }
            };
            let settings = Settings {
                config: Config {
                    threshold: fields.threshold,
                    timeout: Duration::from_millis(fields.timeout_ms),
                    half_open_max: fields.half_open_max,
                },
                success_threshold: fields.success_threshold,
                consecutive_failures: fields.consecutive_failures,
                backoff,
                failure_rate: fields
                    .failure_rate
                    .map(|rate| FailureRate::new(rate.ratio, rate.min_calls, Duration::from_millis(rate.window_ms))),
                slow_call: fields.slow_call_ms.map(Duration::from_millis),
            };
            settings.validate().map_err(D::Error::custom)?;
            Ok(settings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakerbox_core::{Jitter, State};

    #[test]
    fn a_builder_from_settings_has_every_rule() {
        let (clock, mock) = breakerbox_core::quanta::Clock::mock();
        let mut settings = Settings::from(Config { threshold: 2, timeout: Duration::from_secs(1), half_open_max: 1 });
        settings.success_threshold = 2;
        settings.backoff = Some(Backoff::exponential(2.0, Duration::from_secs(8)).jitter(Jitter::None));
        settings.slow_call = Some(Duration::from_millis(100));
        let breaker = settings.builder().clock(clock).build().unwrap();
        for _ in 0..2 {
            let slow = breaker.call(|| {
                mock.increment(Duration::from_millis(101));
                Ok::<_, ()>(())
            });
            assert_eq!(slow, Ok(()), "a slow success still answers");
        }
        assert_eq!(breaker.state(), State::Open, "two slow calls are two failures");
        mock.increment(Duration::from_secs(1));
        let _ = breaker.call(|| Err::<(), _>(()));
        let wait = breaker
            .call(|| Ok::<_, ()>(()))
            .unwrap_err()
            .rejected()
            .unwrap()
            .retry_after()
            .expect("open, not held open");
        assert_eq!(wait, Duration::from_secs(2), "the second open in a row lasts twice the timeout");
        mock.increment(wait);
        breaker.call(|| Ok::<_, ()>(())).unwrap();
        assert_eq!(breaker.state(), State::HalfOpen, "one probe success of two");
        breaker.call(|| Ok::<_, ()>(())).unwrap();
        assert_eq!(breaker.state(), State::Closed);
    }

    #[test]
    fn the_consecutive_rule_and_the_rate_come_through() {
        let mut settings = Settings::from(Config { threshold: 1, ..Config::default() });
        settings.consecutive_failures = false;
        settings.failure_rate = Some(FailureRate::new(0.5, 4, Duration::from_secs(10)));
        let breaker = settings.builder().clock(breakerbox_core::quanta::Clock::mock().0).build().unwrap();
        for i in 0..3 {
            let _ = breaker.call(|| if i % 2 == 0 { Ok(()) } else { Err(()) });
            assert_eq!(breaker.state(), State::Closed, "call {i}: below min_calls, and no consecutive rule");
        }
        let _ = breaker.call(|| Err::<(), _>(()));
        assert_eq!(breaker.state(), State::Open, "2 failures of 4 calls");
    }

    #[test]
    fn validate_gives_the_error_build_would() {
        let mut settings = Settings::default();
        assert_eq!(settings.validate(), Ok(()));
        settings.slow_call = Some(Duration::ZERO);
        assert_eq!(settings.validate(), Err(ConfigError::SlowCall { value: Duration::ZERO }));
        settings.slow_call = None;
        settings.success_threshold = 70_000;
        assert_eq!(settings.validate(), Err(ConfigError::SuccessThreshold { value: 70_000 }));
        assert_eq!(settings.builder().build().map(drop), settings.validate());
    }

    #[cfg(feature = "serde")]
    mod file {
        use super::*;

        fn read(json: &str) -> Result<Settings, String> {
            serde_json::from_str::<Settings>(json).map_err(|err| err.to_string())
        }

        #[test]
        fn an_empty_entry_means_the_defaults() {
            let empty = read("{}").unwrap();
            assert_eq!(empty.config, Config { threshold: 0, timeout: Duration::ZERO, half_open_max: 0 });
            assert_eq!(empty.builder().build().unwrap().config(), Config::default(), "zero means the default");
            assert_eq!((empty.success_threshold, empty.consecutive_failures), (0, true));
            assert_eq!((empty.backoff, empty.failure_rate, empty.slow_call), (None, None, None));
        }

        #[test]
        fn every_field_is_read() {
            let settings = read(
                r#"{ "threshold": 7, "timeout_ms": 1500, "half_open_max": 2, "success_threshold": 3,
                     "consecutive_failures": false, "slow_call_ms": 250,
                     "backoff": { "factor": 2, "max_ms": 60000, "jitter": "full", "seed": 9 },
                     "failure_rate": { "ratio": 0.25, "min_calls": 10, "window_ms": 30000 } }"#,
            )
            .unwrap();
            assert_eq!(
                settings.config,
                Config { threshold: 7, timeout: Duration::from_millis(1_500), half_open_max: 2 }
            );
            assert_eq!(settings.success_threshold, 3);
            assert!(!settings.consecutive_failures);
            assert_eq!(settings.slow_call, Some(Duration::from_millis(250)));
            let backoff = Backoff::exponential(2.0, Duration::from_secs(60)).jitter(Jitter::Full).seed(9);
            assert_eq!(settings.backoff, Some(backoff));
            assert_eq!(settings.failure_rate, Some(FailureRate::new(0.25, 10, Duration::from_secs(30))));
        }

        #[test]
        fn a_fixed_backoff_needs_no_cap_and_an_exponential_one_does() {
            let fixed = read(r#"{ "backoff": { "factor": 1, "jitter": "equal" } }"#).unwrap();
            assert_eq!(fixed.backoff, Some(Backoff::fixed().jitter(Jitter::Equal)));
            let err = read(r#"{ "backoff": { "factor": 2 } }"#).unwrap_err();
            assert!(err.starts_with("invalid breaker config: backoff.max_ms is missing"), "{err}");
            let err = read(r#"{ "backoff": { "factor": 0.5 } }"#).unwrap_err();
            assert!(err.starts_with("invalid breaker config: backoff.factor = 0.5 is outside the limits"), "{err}");
        }

        #[test]
        fn values_out_of_range_are_refused_naming_the_field() {
            for (json, message) in [
                (r#"{ "threshold": 70000 }"#, "threshold = 70000 is over the limit of 65535"),
                (r#"{ "slow_call_ms": 0 }"#, "slow_call = 0 ns is outside the limits"),
                (r#"{ "backoff": { "factor": 0.5, "max_ms": 1000 } }"#, "backoff.factor = 0.5 is outside the limits"),
                (r#"{ "failure_rate": { "ratio": 0.5, "window_ms": 5 } }"#, "failure_rate.window = 5 ms is outside"),
                (
                    r#"{ "half_open_max": 4095, "success_threshold": 16, "backoff": { "factor": 2, "max_ms": 240000 } }"#,
                    "over the 16 it has: lower half_open_max or success_threshold",
                ),
            ] {
                let err = read(json).unwrap_err();
                assert!(err.contains(message), "{json}: {err}");
            }
        }

        #[test]
        fn unknown_fields_and_jitters_are_refused() {
            for (json, message) in [
                (r#"{ "treshold": 3 }"#, "unknown field `treshold`"),
                (
                    r#"{ "failure_rate": { "ratio": 0.5, "window_ms": 1000, "min_call": 3 } }"#,
                    "unknown field `min_call`",
                ),
                (r#"{ "backoff": { "factor": 1, "jitter": "some" } }"#, "unknown variant `some`"),
            ] {
                let err = read(json).unwrap_err();
                assert!(err.contains(message), "{json}: {err}");
            }
        }
    }
}
