//! `serde` support (the `serde` feature): [`State`], [`Reason`] and
//! [`Transition`] serialize for health endpoints and event logs; [`Config`]
//! serializes and deserializes for config files.
//!
//! A `Config` is written as `threshold`, `timeout_ms` and `half_open_max`:
//! a timeout in whole milliseconds, the breaker's own resolution (a sub-ms
//! timeout is written rounded up, as the breaker rounds it). Reading one
//! follows the rules of [`Config`] itself: a missing or zero field means its
//! default, and a value the state word cannot hold is an error naming the
//! field, the value and the limit (the [`ConfigError`] message). Unknown
//! fields are an error, so a typo in a config file does not silently leave a
//! default in place.

use core::time::Duration;

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::config::{Config, ConfigError};
use crate::observe::{Reason, Transition};
use crate::time::ticks_rounded_up;
use crate::word::State;

impl Serialize for State {
    /// As its [`as_str`](State::as_str) string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Serialize for Reason {
    /// As its [`as_str`](Reason::as_str) string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Serialize for Transition {
    /// As `name`, `from`, `to`, `reason`, `sequence` and `at_ms`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Transition", 6)?;
        s.serialize_field("name", self.name())?;
        s.serialize_field("from", &self.from())?;
        s.serialize_field("to", &self.to())?;
        s.serialize_field("reason", &self.reason())?;
        s.serialize_field("sequence", &self.sequence())?;
        s.serialize_field("at_ms", &self.at().as_millis())?;
        s.end()
    }
}

impl Serialize for Config {
    /// As `threshold`, `timeout_ms` (rounded up to whole milliseconds) and
    /// `half_open_max`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let timeout_ms = u64::try_from(ticks_rounded_up(self.timeout)).unwrap_or(u64::MAX);
        let mut s = serializer.serialize_struct("Config", 3)?;
        s.serialize_field("threshold", &self.threshold)?;
        s.serialize_field("timeout_ms", &timeout_ms)?;
        s.serialize_field("half_open_max", &self.half_open_max)?;
        s.end()
    }
}

/// What a config file holds, before validation.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFields {
    #[serde(default)]
    threshold: u32,
    #[serde(default)]
    timeout_ms: u64,
    #[serde(default)]
    half_open_max: u32,
}

impl<'de> Deserialize<'de> for Config {
    /// From `threshold`, `timeout_ms` and `half_open_max`, each optional
    /// (missing or zero means the default), validated as
    /// [`Config::validate`] does.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
        let fields = ConfigFields::deserialize(deserializer)?;
        let config = Config {
            threshold: fields.threshold,
            timeout: Duration::from_millis(fields.timeout_ms),
            half_open_max: fields.half_open_max,
        };
        config.validate().map_err(|err: ConfigError| D::Error::custom(err))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_round_trips() {
        let config = Config { threshold: 7, timeout: Duration::from_millis(2_500), half_open_max: 3 };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(json, r#"{"threshold":7,"timeout_ms":2500,"half_open_max":3}"#);
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);
    }

    #[test]
    fn missing_and_zero_fields_mean_the_defaults() {
        let config: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(config.validate().unwrap().config(), Config::default());
        let config: Config = serde_json::from_str(r#"{"threshold":0,"timeout_ms":0}"#).unwrap();
        assert_eq!(config.validate().unwrap().config(), Config::default());
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_limit() {
        for (json, field) in [
            (r#"{"threshold":65536}"#, "threshold = 65536 is over the limit of 65535"),
            (r#"{"half_open_max":100000}"#, "half_open_max = 100000 is over the limit of 65535"),
            (r#"{"timeout_ms":68719476737}"#, "timeout = 68719476.737s is over the limit of 68719476.736s"),
        ] {
            let err = serde_json::from_str::<Config>(json).unwrap_err().to_string();
            assert!(err.contains(field), "{json}: {err}");
        }
        let at_limit = format!(r#"{{"timeout_ms":{}}}"#, Config::MAX_TIMEOUT.as_millis());
        assert!(serde_json::from_str::<Config>(&at_limit).is_ok());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Config>(r#"{"treshold":3}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `treshold`"), "{err}");
    }

    #[test]
    fn a_sub_millisecond_timeout_is_written_rounded_up() {
        let config = Config { timeout: Duration::from_micros(1_500), ..Config::default() };
        assert!(serde_json::to_string(&config).unwrap().contains(r#""timeout_ms":2"#));
    }

    #[test]
    fn states_and_reasons_are_snake_case_strings() {
        assert_eq!(serde_json::to_string(&State::HalfOpen).unwrap(), r#""half_open""#);
        assert_eq!(serde_json::to_string(&Reason::ProbeFailed).unwrap(), r#""probe_failed""#);
    }
}
