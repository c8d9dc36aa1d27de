//! Time in the drivers: jumps of any size, from sub-millisecond steps to
//! centuries, kept inside the core's documented bound in one place.
//!
//! The core measures the time since its last transition exactly only below
//! 2^37 ms (about 4.36 years; "Time" in `docs/ARCHITECTURE.md`, and the crate
//! docs of `breakerbox_model`, which has no such limit). It reads that elapsed
//! time only while open or half-open; a closed breaker never looks at it, and
//! the docs promise correctness "across any number of wraps and any uptime".
//! So [`latest_ms`] bounds a jump only while the model is open or half-open:
//! then the model's `since` is the time of the last transition, and time may
//! go up to `since + 2^37 - 1` ms and no further. While closed, time may jump
//! any distance (saturating at the top of `u64`, where it stops), which keeps
//! wraps of the 38-bit stamp in play.

use arbitrary::Arbitrary;
use breakerbox_core::Config;
use breakerbox_model::{Model, Phase};

/// The longest time since the last transition the core reads exactly:
/// 2^37 - 1 ms, twice [`Config::MAX_TIMEOUT`] less a millisecond.
pub const MAX_ELAPSED_MS: u64 = (1 << 37) - 1;

const _: () = assert!(Config::MAX_TIMEOUT.as_millis() == (MAX_ELAPSED_MS as u128).div_ceil(2));

const NANOS_PER_MS: u64 = 1_000_000;

/// A step forward in time. The fuzzer picks the size; the driver clamps the
/// result to [`latest_ms`].
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jump {
    /// Nanoseconds: sub-millisecond steps on the facade's mock clock (the
    /// breaker rounds its clock down to whole ms); whole ms of it for the core.
    Nanos(u32),
    /// Milliseconds.
    Millis(u16),
    /// Seconds, up to about 136 years.
    Seconds(u32),
    /// Any number of milliseconds, up to the top of `u64`.
    Huge(u64),
    /// To `delta` ms from the current deadline of an open or half-open model
    /// (where the next acquire changes its answer), if that is ahead; nowhere
    /// while closed or held open.
    Deadline(i8),
}

impl Jump {
    /// Where this jump lands, in ms, from `now` ms, clamped to [`latest_ms`].
    pub fn target_ms(self, now: u64, model: &Model, timeout_ms: u64) -> u64 {
        let target = match self {
            Jump::Nanos(nanos) => now.saturating_add(u64::from(nanos) / NANOS_PER_MS),
            Jump::Millis(ms) => now.saturating_add(u64::from(ms)),
            Jump::Seconds(secs) => now.saturating_add(u64::from(secs) * 1_000),
            Jump::Huge(ms) => now.saturating_add(ms),
            Jump::Deadline(delta) => deadline(model, timeout_ms, delta).unwrap_or(now).max(now),
        };
        target.min(latest_ms(model))
    }

    /// Where this jump lands, in ns on a mock clock, from `now` ns, clamped
    /// so that the clock rounded down to ms stays at or below [`latest_ms`].
    pub fn target_nanos(self, now: u64, model: &Model, timeout_ms: u64) -> u64 {
        let target = match self {
            Jump::Nanos(nanos) => now.saturating_add(u64::from(nanos)),
            Jump::Millis(ms) => now.saturating_add(u64::from(ms) * NANOS_PER_MS),
            Jump::Seconds(secs) => now.saturating_add(u64::from(secs).saturating_mul(1_000 * NANOS_PER_MS)),
            Jump::Huge(ms) => now.saturating_add(ms.saturating_mul(NANOS_PER_MS)),
            Jump::Deadline(delta) => {
                deadline(model, timeout_ms, delta).map_or(now, |ms| ms.saturating_mul(NANOS_PER_MS)).max(now)
            }
        };
        // The last nanosecond of the latest allowed millisecond.
        let latest = (u128::from(latest_ms(model)) + 1) * u128::from(NANOS_PER_MS) - 1;
        target.min(u64::try_from(latest).unwrap_or(u64::MAX))
    }
}

/// The latest time (ms) a driver may move to: unbounded while the model is
/// closed or held open (neither reads the time); while it is open or
/// half-open, its `since` (the time of the last transition) plus
/// [`MAX_ELAPSED_MS`]: an open deadline is at most [`Config::MAX_TIMEOUT`]
/// after `since`, so the distance to it stays readable too. See the module
/// docs for why.
pub fn latest_ms(model: &Model) -> u64 {
    match model.phase() {
        Phase::Closed { .. } | Phase::Isolated { .. } => u64::MAX,
        Phase::Open { since, .. } | Phase::HalfOpen { since, .. } => since.saturating_add(MAX_ELAPSED_MS),
    }
}

/// `delta` ms from the next deadline of an open model (its `until`) or a
/// half-open one (`since` plus its lease).
fn deadline(model: &Model, _timeout_ms: u64, delta: i8) -> Option<u64> {
    let at = match model.phase() {
        Phase::Closed { .. } | Phase::Isolated { .. } => return None,
        Phase::Open { until, .. } => until,
        Phase::HalfOpen { since, .. } => since.saturating_add(model.lease_ms()),
    };
    Some(at.saturating_add_signed(i64::from(delta)))
}
