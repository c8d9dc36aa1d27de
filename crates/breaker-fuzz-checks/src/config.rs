//! The `config` target: any [`Config`] into `Config::validate` and every
//! constructor. Never a panic from the fallible ones; a refusal names a field
//! that is out of range, with its value and limit in the message; an
//! acceptance resolves zeros to the defaults and rounds the timeout up to
//! whole milliseconds, and the constructors agree with `validate`.

use std::time::Duration;

use arbitrary::Arbitrary;
use breaker::Breaker;
use breaker_core::{Config, ConfigError, CoreBreaker, Limits};

use crate::panics::{catch_expected, message};
use crate::time::MAX_ELAPSED_MS;

/// A `u32` limit (`threshold` or `half_open_max`): often small, so the
/// behaviour targets spend their time on behaviour, often at the 65 535
/// boundary, and any value is reachable.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// 0 to 7 (0 means the default).
    Small(u8),
    /// 65 535 plus this: both sides of the largest value the word holds.
    Boundary(i8),
    /// Any value at all.
    Any(u32),
}

impl Limit {
    /// The value this stands for.
    pub fn value(self) -> u32 {
        match self {
            Limit::Small(small) => u32::from(small % 8),
            Limit::Boundary(delta) => Config::MAX_THRESHOLD.wrapping_add_signed(i32::from(delta)),
            Limit::Any(value) => value,
        }
    }
}

/// A timeout, from zero (the default) through sub-millisecond values to
/// `u64::MAX` seconds, with both sides of [`Config::MAX_TIMEOUT`].
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Zero: the default, 30 s.
    Zero,
    /// Up to 255 ms.
    Short(u8),
    /// Any number of milliseconds.
    Millis(u64),
    /// Any number of nanoseconds.
    Nanos(u64),
    /// Any `Duration` (`nanos` taken mod 10^9).
    Full {
        /// Whole seconds.
        secs: u64,
        /// Nanoseconds past them.
        nanos: u32,
    },
    /// [`Config::MAX_TIMEOUT`] plus this many nanoseconds.
    NearMax(i32),
}

impl Timeout {
    /// The duration this stands for.
    pub fn duration(self) -> Duration {
        match self {
            Timeout::Zero => Duration::ZERO,
            Timeout::Short(ms) => Duration::from_millis(u64::from(ms)),
            Timeout::Millis(ms) => Duration::from_millis(ms),
            Timeout::Nanos(nanos) => Duration::from_nanos(nanos),
            Timeout::Full { secs, nanos } => Duration::new(secs, nanos % 1_000_000_000),
            Timeout::NearMax(delta) => {
                let max = Config::MAX_TIMEOUT.as_nanos() as u64;
                Duration::from_nanos(max.saturating_add_signed(i64::from(delta)))
            }
        }
    }
}

/// A [`Config`] as the fuzzer builds it; shared by every target.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigInput {
    /// `Config::threshold`.
    pub threshold: Limit,
    /// `Config::half_open_max`.
    pub half_open_max: Limit,
    /// `Config::timeout`.
    pub timeout: Timeout,
}

impl ConfigInput {
    /// The config this stands for.
    pub fn config(&self) -> Config {
        Config {
            threshold: self.threshold.value(),
            timeout: self.timeout.duration(),
            half_open_max: self.half_open_max.value(),
        }
    }
}

/// The `config` target's input.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input {
    /// The config to try.
    pub config: ConfigInput,
}

/// Runs the `config` target's checks on one input.
///
/// # Panics
///
/// On the first disagreement with the documented behaviour.
pub fn config(input: &Input) {
    let config = input.config.config();
    let expected = check_validation(&config);

    let (clock, _mock) = breaker::quanta::Clock::mock();
    match (expected, CoreBreaker::with_clock(config, clock)) {
        (Some(limits), Ok(core)) => assert_eq!(core.limits(), limits, "CoreBreaker::with_clock({config:?})"),
        (None, Err(err)) => assert_eq!(Err(err), config.validate(), "CoreBreaker::with_clock({config:?})"),
        (expected, got) => panic!("CoreBreaker::with_clock({config:?}) = {got:?}, validate gave {expected:?}"),
    }
    for (name, built) in [
        ("Breaker::try_new", Breaker::try_new(config)),
        ("Breaker::builder().clock().build", Breaker::builder(config).clock(breaker::quanta::Clock::mock().0).build()),
    ] {
        match (expected, built) {
            (Some(limits), Ok(breaker)) => {
                assert_eq!(breaker.config(), limits.config(), "{name}({config:?}).config()");
                assert_eq!(breaker.state(), breaker::State::Closed, "{name}({config:?}) starts closed");
                assert_eq!(breaker.counts(), breaker::Counts::default(), "{name}({config:?}) starts at zero");
            }
            (None, Err(err)) => assert_eq!(Err(err), config.validate(), "{name}({config:?})"),
            (expected, got) => panic!("{name}({config:?}) = {got:?}, validate gave {expected:?}"),
        }
    }
    // The panicking constructors panic exactly on a refusal, with its message.
    for (name, built) in [
        ("Breaker::new", catch_expected(|| Breaker::new(config))),
        ("Breaker::with_clock", catch_expected(|| Breaker::with_clock(config, breaker::quanta::Clock::mock().0))),
    ] {
        match (config.validate(), built) {
            (Ok(limits), Ok(breaker)) => assert_eq!(breaker.config(), limits.config(), "{name}({config:?})"),
            (Err(err), Err(payload)) => {
                assert_eq!(message(&*payload), Some(err.to_string().as_str()), "{name}({config:?})'s panic message");
            }
            (Ok(_), Err(payload)) => panic!("{name}({config:?}) panicked ({:?}) on a valid config", message(&*payload)),
            (Err(err), Ok(_)) => panic!("{name}({config:?}) did not panic although validate refused it: {err}"),
        }
    }
}

/// Checks `config.validate()` against the documented rules, computed here
/// independently: `Some(limits)` if it accepts, `None` if it refuses.
///
/// # Panics
///
/// If `validate` accepts a config out of range or refuses one in range, if
/// a refusal names a field that is in range or a value that was not given,
/// if its message lacks the field, the value or the limit, or if an
/// acceptance resolves a field other than as documented.
pub fn check_validation(config: &Config) -> Option<Limits> {
    let threshold_ok = config.threshold <= Config::MAX_THRESHOLD;
    let half_open_ok = config.half_open_max <= Config::MAX_HALF_OPEN;
    let timeout = if config.timeout.is_zero() { Config::DEFAULT_TIMEOUT } else { config.timeout };
    let timeout_ms = timeout.as_nanos().div_ceil(1_000_000);
    // Half of what the stamp measures (see `Config::MAX_TIMEOUT`).
    let timeout_ok = timeout_ms <= u128::from(MAX_ELAPSED_MS).div_ceil(2);
    match config.validate() {
        Ok(limits) => {
            assert!(
                threshold_ok && half_open_ok && timeout_ok,
                "validate accepted {config:?}, out of range (threshold ok {threshold_ok}, half_open_max ok \
                 {half_open_ok}, timeout ok {timeout_ok}) as {limits:?}"
            );
            let threshold = if config.threshold == 0 { Config::DEFAULT_THRESHOLD } else { config.threshold };
            let half_open_max =
                if config.half_open_max == 0 { Config::DEFAULT_HALF_OPEN } else { config.half_open_max };
            assert_eq!(limits.threshold(), threshold, "threshold of {config:?}");
            assert_eq!(limits.half_open_max(), half_open_max, "half_open_max of {config:?}");
            assert_eq!(u128::from(limits.timeout().as_millis() as u64), timeout_ms, "timeout (ms) of {config:?}");
            assert_eq!(limits.timeout(), Duration::from_millis(timeout_ms as u64), "timeout of {config:?}");
            assert!(
                limits.timeout() >= timeout && limits.timeout() - timeout < Duration::from_millis(1),
                "the timeout of {config:?} is rounded up to the next whole ms: {:?}",
                limits.timeout()
            );
            let resolved = limits.config();
            assert_eq!(
                resolved,
                Config { threshold, timeout: limits.timeout(), half_open_max },
                "limits().config() of {config:?}"
            );
            assert_eq!(resolved.validate(), Ok(limits), "a resolved config validates to the same limits");
            Some(limits)
        }
        Err(err) => {
            assert!(
                !(threshold_ok && half_open_ok && timeout_ok),
                "validate refused {config:?}, every field in range: {err}"
            );
            let (field, out_of_range, value, limit) = match err {
                ConfigError::Threshold { value } => {
                    assert_eq!(value, config.threshold, "the value in {err:?}");
                    ("threshold", !threshold_ok, value.to_string(), Config::MAX_THRESHOLD.to_string())
                }
                ConfigError::HalfOpenMax { value } => {
                    assert_eq!(value, config.half_open_max, "the value in {err:?}");
                    ("half_open_max", !half_open_ok, value.to_string(), Config::MAX_HALF_OPEN.to_string())
                }
                ConfigError::Timeout { value } => {
                    assert_eq!(value, config.timeout, "the value in {err:?}");
                    ("timeout", !timeout_ok, format!("{value:?}"), format!("{:?}", Config::MAX_TIMEOUT))
                }
                other => panic!("a ConfigError this check does not know: {other:?}"),
            };
            assert_eq!(err.field(), field, "field() of {err:?}");
            assert!(out_of_range, "{config:?} refused naming {field}, which is in range: {err}");
            let text = err.to_string();
            for part in [field, &value, &limit] {
                assert!(text.contains(part), "the message {text:?} for {config:?} does not contain {part:?}");
            }
            None
        }
    }
}
