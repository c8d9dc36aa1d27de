//! The `tracing` feature: one event per transition, nothing per call.

use breakerbox_core::{State, Transition};

/// Emits `t` as one event with target `breakerbox`: `warn` when the breaker
/// opens, `info` for every other change. Fields: `name`, `from`, `to`,
/// `reason` (snake case, as metric labels spell them) and `sequence`.
pub(crate) fn transition(t: &Transition) {
    let (name, from, to, reason) = (t.name(), t.from().as_str(), t.to().as_str(), t.reason().as_str());
    let sequence = t.sequence();
    if t.to() == State::Open {
        tracing::warn!(target: "breakerbox", name, from, to, reason, sequence, "circuit breaker opened");
    } else {
        tracing::info!(target: "breakerbox", name, from, to, reason, sequence, "circuit breaker changed state");
    }
}
