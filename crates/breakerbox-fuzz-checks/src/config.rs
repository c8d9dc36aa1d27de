//! The `config` target: any [`Config`] into `Config::validate` and every
//! constructor. Never a panic from the fallible ones; a refusal names a field
//! that is out of range, with its value and limit in the message; an
//! acceptance resolves zeros to the defaults and rounds the timeout up to
//! whole milliseconds, and the constructors agree with `validate`.

use std::time::Duration;

use arbitrary::Arbitrary;
use breakerbox::Breaker;
use breakerbox_core::{Config, ConfigError, CoreBreaker, ValidConfig};

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

/// How an open is spread, in the fuzzer's terms.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitterInput {
    /// No spread.
    None,
    /// Full jitter.
    Full,
    /// Equal jitter.
    Equal,
}

/// A backoff as the fuzzer builds it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffInput {
    /// `Backoff::fixed()`.
    Fixed,
    /// `Backoff::fixed()` with jitter.
    FixedJitter {
        /// The spread.
        jitter: JitterInput,
        /// The seed.
        seed: u64,
    },
    /// `Backoff::exponential(factor, max)`.
    Exponential {
        /// The factor in thousandths: 1000 to 4000 mostly, anything reachable.
        factor_permille: u16,
        /// The cap as a multiple of the timeout (0 is below it: refused).
        max_times: u8,
        /// The spread.
        jitter: JitterInput,
        /// The seed.
        seed: u64,
    },
}

/// The builder's options beyond the config: a success threshold and a
/// backoff.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyInput {
    /// `Builder::success_threshold` (0 means 1).
    pub success_threshold: Limit,
    /// `Builder::backoff`.
    pub backoff: BackoffInput,
}

impl JitterInput {
    fn real(self) -> breakerbox_core::Jitter {
        match self {
            JitterInput::None => breakerbox_core::Jitter::None,
            JitterInput::Full => breakerbox_core::Jitter::Full,
            JitterInput::Equal => breakerbox_core::Jitter::Equal,
        }
    }

    fn model(self) -> breakerbox_model::Jitter {
        match self {
            JitterInput::None => breakerbox_model::Jitter::None,
            JitterInput::Full => breakerbox_model::Jitter::Full,
            JitterInput::Equal => breakerbox_model::Jitter::Equal,
        }
    }
}

impl PolicyInput {
    /// The success threshold given to the builder.
    pub fn success_threshold(&self) -> u32 {
        self.success_threshold.value()
    }

    /// The backoff given to the builder, for a breaker whose resolved
    /// timeout is `timeout_ms`.
    pub fn backoff(&self, timeout_ms: u64) -> breakerbox_core::Backoff {
        match self.backoff {
            BackoffInput::Fixed => breakerbox_core::Backoff::fixed(),
            BackoffInput::FixedJitter { jitter, seed } => {
                breakerbox_core::Backoff::fixed().jitter(jitter.real()).seed(seed)
            }
            BackoffInput::Exponential { factor_permille, max_times, jitter, seed } => {
                let max = std::time::Duration::from_millis(timeout_ms.saturating_mul(u64::from(max_times)));
                breakerbox_core::Backoff::exponential(f64::from(factor_permille) / 1000.0, max)
                    .jitter(jitter.real())
                    .seed(seed)
            }
        }
    }

    /// The model of a breaker built with this policy and a config that
    /// validated to `limits` (the builder accepted both).
    pub fn model(&self, limits: &ValidConfig) -> breakerbox_model::Model {
        let timeout_ms = limits.timeout().as_millis() as u64;
        let backoff = match self.backoff {
            BackoffInput::Fixed => breakerbox_model::Backoff::fixed(timeout_ms),
            BackoffInput::FixedJitter { jitter, seed } => breakerbox_model::Backoff {
                jitter: jitter.model(),
                seed,
                ..breakerbox_model::Backoff::fixed(timeout_ms)
            },
            BackoffInput::Exponential { factor_permille, max_times, jitter, seed } => breakerbox_model::Backoff {
                factor_permille: u32::from(factor_permille),
                max_ms: timeout_ms * u64::from(max_times),
                jitter: jitter.model(),
                seed,
            },
        };
        // A threshold of 0 means the consecutive rule is off: the caller
        // switches the model's off too, and the model needs some threshold.
        breakerbox_model::Model::with_policy(
            limits.threshold().max(1),
            limits.half_open_max(),
            timeout_ms,
            self.success_threshold().max(1),
            backoff,
        )
    }
}

/// A failure-rate rule as the fuzzer builds it: small windows and call
/// counts, so that runs of a few hundred operations open on it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateInput {
    /// The ratio in percent, 1 to 100 (taken mod 100, plus 1).
    pub percent: u8,
    /// The calls the window needs, 1 to 8 (mod 8, plus 1).
    pub min_calls: u8,
    /// The window in tens of milliseconds, 1 to 64 (mod 64, plus 1): buckets
    /// of 1 to 64 ms.
    pub tens_of_ms: u8,
}

impl RateInput {
    /// The rule given to the builder.
    pub fn real(&self) -> breakerbox_core::FailureRate {
        let ratio = f64::from(self.percent % 100 + 1) / 100.0;
        let window = std::time::Duration::from_millis(10 * (u64::from(self.tens_of_ms % 64) + 1));
        breakerbox_core::FailureRate::new(ratio, u32::from(self.min_calls % 8) + 1, window)
    }

    /// The model's statement of the same rule: the ratio in parts per
    /// million as `FailureRate::validate` documents it (rounded to the
    /// nearest), buckets of a tenth of the window.
    pub fn model(&self) -> breakerbox_model::Rate {
        breakerbox_model::Rate {
            ratio_ppm: (u32::from(self.percent % 100) + 1) * 10_000,
            min_calls: u32::from(self.min_calls % 8) + 1,
            bucket_ms: u64::from(self.tens_of_ms % 64) + 1,
        }
    }
}

/// What the facade watches beyond consecutive failures. All zeros (what the
/// inputs saved before it existed decode to, with zero bytes inserted) is
/// none of it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchInput {
    /// `Builder::failure_rate`.
    pub rate: Option<RateInput>,
    /// `Builder::slow_call` in ms, 1 to 256 (plus 1).
    pub slow_ms: Option<u8>,
    /// `Builder::consecutive_failures(false)`.
    pub consecutive_off: bool,
}

impl WatchInput {
    /// The builder with these options.
    pub fn build(&self, builder: breakerbox::Builder) -> breakerbox::Builder {
        let builder = builder.consecutive_failures(!self.consecutive_off);
        let builder = match self.rate {
            Some(rate) => builder.failure_rate(rate.real()),
            None => builder,
        };
        match self.slow_ms {
            Some(ms) => builder.slow_call(std::time::Duration::from_millis(u64::from(ms) + 1)),
            None => builder,
        }
    }

    /// `model` with these options.
    pub fn model(&self, model: breakerbox_model::Model) -> breakerbox_model::Model {
        let model = if self.consecutive_off { model.without_consecutive() } else { model };
        let model = match self.rate {
            Some(rate) => model.with_rate(rate.model()),
            None => model,
        };
        match self.slow_ms {
            Some(ms) => model.with_slow_call(u64::from(ms) + 1),
            None => model,
        }
    }
}

/// The failure-rate rule and the consecutive rule's switch, for the core
/// (which has no slow-call rule: that is the facade's). All zeros is
/// neither.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreWatchInput {
    /// A failure-rate window, driven as the facade drives it.
    pub rate: Option<RateInput>,
    /// `Builder::consecutive_failures(false)`.
    pub consecutive_off: bool,
}

impl CoreWatchInput {
    /// The same options as the facade takes them, with no slow-call rule.
    pub fn facade(&self) -> WatchInput {
        WatchInput { rate: self.rate, slow_ms: None, consecutive_off: self.consecutive_off }
    }
}

/// Whether the builder must accept `policy` with a config that validated to
/// `limits`, computed here from the documented rules: the factor in
/// 1..=65.535 (in whole thousandths, as given here), the cap from the
/// timeout to [`Config::MAX_TIMEOUT`], at most 63 steps to reach it, a
/// success threshold up to 32 768, and the half-open count's three fields in
/// 16 bits.
pub fn policy_fits(limits: &ValidConfig, policy: &PolicyInput) -> bool {
    let timeout_ms = limits.timeout().as_millis() as u64;
    let bits = |max: u32| u32::BITS - max.leading_zeros();
    let success_threshold = match policy.success_threshold() {
        0 => 1,
        n => n,
    };
    if success_threshold > Config::MAX_SUCCESS_THRESHOLD {
        return false;
    }
    let steps = match policy.backoff {
        BackoffInput::Fixed | BackoffInput::FixedJitter { .. } => 0,
        BackoffInput::Exponential { factor_permille, max_times, .. } => {
            let max_ms = u128::from(timeout_ms) * u128::from(max_times);
            if !(1000..=65_535).contains(&factor_permille)
                || max_ms < u128::from(timeout_ms)
                || max_ms > Config::MAX_TIMEOUT.as_millis()
            {
                return false;
            }
            let model = breakerbox_model::Backoff {
                factor_permille: u32::from(factor_permille),
                max_ms: max_ms as u64,
                jitter: breakerbox_model::Jitter::None,
                seed: 0,
            };
            // The model's count, stopped early where the limit is passed.
            let base = |k| model.base_ms(timeout_ms, k);
            if base(2) == base(1) {
                0
            } else {
                let mut step = 2;
                while base(step + 1) != base(step) && step <= 63 {
                    step += 1;
                }
                if step > 63 {
                    return false;
                }
                step
            }
        }
    };
    bits(limits.half_open_max()) + bits(success_threshold - 1) + bits(steps) <= 16
}

/// The `config` target's input.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input {
    /// The config to try.
    pub config: ConfigInput,
    /// The builder's options to try with it.
    pub policy: PolicyInput,
}

/// Runs the `config` target's checks on one input.
///
/// # Panics
///
/// On the first disagreement with the documented behaviour.
pub fn config(input: &Input) {
    let config = input.config.config();
    let expected = check_validation(&config);

    let (clock, _mock) = breakerbox::quanta::Clock::mock();
    match (expected, CoreBreaker::with_clock(config, clock)) {
        (Some(limits), Ok(core)) => assert_eq!(core.valid_config(), limits, "CoreBreaker::with_clock({config:?})"),
        (None, Err(err)) => assert_eq!(Err(err), config.validate(), "CoreBreaker::with_clock({config:?})"),
        (expected, got) => panic!("CoreBreaker::with_clock({config:?}) = {got:?}, validate gave {expected:?}"),
    }
    for (name, built) in [
        ("Breaker::new", Breaker::new(config)),
        ("Breaker::with_clock", Breaker::with_clock(config, breakerbox::quanta::Clock::mock().0)),
        (
            "Breaker::builder().clock().build",
            Breaker::builder(config).clock(breakerbox::quanta::Clock::mock().0).build(),
        ),
    ] {
        match (expected, built) {
            (Some(limits), Ok(breaker)) => {
                assert_eq!(breaker.config(), limits.config(), "{name}({config:?}).config()");
                assert_eq!(breaker.state(), breakerbox::State::Closed, "{name}({config:?}) starts closed");
                assert_eq!(breaker.counts(), breakerbox::Counts::default(), "{name}({config:?}) starts at zero");
            }
            (None, Err(err)) => assert_eq!(Err(err), config.validate(), "{name}({config:?})"),
            (expected, got) => panic!("{name}({config:?}) = {got:?}, validate gave {expected:?}"),
        }
    }
    assert_eq!(
        breakerbox::Registry::<u8>::new(config).err(),
        config.validate().err(),
        "Registry::new({config:?}) refuses exactly what validate refuses"
    );
    // The builder's options: accepted exactly when they fit, and then the
    // breaker holds them.
    if let Some(limits) = expected {
        let policy = input.policy;
        let timeout_ms = limits.timeout().as_millis() as u64;
        let built = CoreBreaker::builder(config)
            .success_threshold(policy.success_threshold())
            .backoff(policy.backoff(timeout_ms))
            .build();
        let fits = policy_fits(&limits, &policy);
        match built {
            Ok(core) => {
                assert!(fits, "the builder accepted {policy:?} with {limits:?}, which does not fit");
                assert_eq!(core.valid_config().success_threshold(), policy.success_threshold().max(1));
            }
            Err(err) => {
                assert!(!fits, "the builder refused {policy:?} with {limits:?}: {err}");
                assert!(err.to_string().starts_with("invalid breaker config: "), "{err}");
            }
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
pub fn check_validation(config: &Config) -> Option<ValidConfig> {
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
                "validate()?.config() of {config:?}"
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
                    // Durations print rounded in human units, or exactly where
                    // rounding would print the value as the limit.
                    let text = err.to_string();
                    assert!(
                        !text.contains("= 2.18 years is over the limit of 2.18 years"),
                        "the message {text:?} gives the value as the limit"
                    );
                    ("timeout", !timeout_ok, "timeout = ".to_string(), "(2^36 ms)".to_string())
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
