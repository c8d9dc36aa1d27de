//! The checks behind the cargo-fuzz targets in `fuzz/`, as plain functions of
//! structured inputs, so that they also run on stable under `cargo test`.
//!
//! Each target has a module with its `Input` (decoded from the fuzzer's raw
//! bytes by `#[derive(Arbitrary)]`) and one function that runs the input and
//! panics on the first disagreement:
//!
//! | function | drives | compares with |
//! |---|---|---|
//! | [`core_vs_model()`] | `CoreBreaker`'s time-explicit API and its mock-clock API (the model's property test feeds the same driver) | [`breakerbox_model::Model`], the raw state word, the invariants |
//! | [`facade_sequence()`] | `Breaker` on a mock clock: calls, panics, futures, permits | the model, and a running tally for `counts()` |
//! | [`config()`] | `Config::validate`, `Breaker::new` and friends | the documented limits, defaults and messages |
//! | [`registry_sequence()`] | `Registry<u8>` on a mock clock: calls, trips, `evict_idle`, `get`, `remove`, new keys at capacity | a model per key, a tally per key, and the idle bookkeeping: which breakers are evicted or refuse a new key |
//!
//! The fuzz targets are one line each: decode, call the function. The tests
//! in `tests/` replay the saved inputs under `regressions/<target>/` through
//! [`decode`], byte for byte as libFuzzer would.
//!
//! The real breaker has two documented limits the model does not have (see
//! `breakerbox_model`'s crate docs and "Time" and "Generations" in
//! `docs/ARCHITECTURE.md`); the drivers keep their inputs inside them, each in
//! one place: [`time::Jump`] for time and [`MAX_TICKET_AGE`] for generations.

use arbitrary::{Arbitrary, Unstructured};

pub mod config;
pub mod core_vs_model;
pub mod facade_sequence;
mod panics;
pub mod registry_sequence;
pub mod time;

pub use config::config;
pub use core_vs_model::core_vs_model;
pub use facade_sequence::facade_sequence;
pub use panics::{DeliberatePanic, quiet_deliberate_panics};
pub use registry_sequence::registry_sequence;

/// How many transitions a held ticket may see before the driver stops
/// reporting it.
///
/// A ticket carries its generation: an 8-bit epoch, the phase and the time of
/// the transition (mod 2^38 ms). Two generations are confused only if a
/// multiple of 256 transitions separate them and their stamps are equal mod
/// 2^38 ms, a documented limit of the core the model does not share. Dropping
/// every ticket (or retiring every permit and future) once it is 256 or more
/// generations old, counted with [`breakerbox_model::Model::generation`], keeps
/// the inputs inside that limit without looking at the core's internals; it
/// loses no coverage of stale reports, which are stale after one transition.
pub const MAX_TICKET_AGE: u64 = 256;

/// Decodes a fuzz target's raw input bytes into its structured input exactly
/// as `libfuzzer-sys`'s `fuzz_target!` does (the size-hint short cut, then
/// `arbitrary_take_rest`), or `None` where the target would skip the input.
pub fn decode<T: for<'a> Arbitrary<'a>>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < T::size_hint(0).0 {
        return None;
    }
    T::arbitrary_take_rest(Unstructured::new(bytes)).ok()
}

/// Decodes `bytes` as the input of the target named `target` (the names of
/// the binaries in `fuzz/`) and runs its check; `false` if the bytes do not
/// decode, as libFuzzer would skip them.
///
/// # Panics
///
/// On the first disagreement the check finds, and on an unknown target name.
pub fn replay(target: &str, bytes: &[u8]) -> bool {
    match target {
        "core_vs_model" => decode(bytes).map(|input| core_vs_model(&input)).is_some(),
        "facade_sequence" => decode(bytes).map(|input| facade_sequence(&input)).is_some(),
        "config" => decode(bytes).map(|input| config(&input)).is_some(),
        "registry_sequence" => decode(bytes).map(|input| registry_sequence(&input)).is_some(),
        other => panic!("no fuzz target named {other:?}"),
    }
}

/// The decoded input for the target named `target`, pretty-printed as
/// `cargo fuzz fmt` prints it, or `None` if the bytes do not decode.
///
/// # Panics
///
/// On an unknown target name.
pub fn describe(target: &str, bytes: &[u8]) -> Option<String> {
    match target {
        "core_vs_model" => decode::<core_vs_model::Input>(bytes).map(|input| format!("{input:#?}")),
        "facade_sequence" => decode::<facade_sequence::Input>(bytes).map(|input| format!("{input:#?}")),
        "config" => decode::<config::Input>(bytes).map(|input| format!("{input:#?}")),
        "registry_sequence" => decode::<registry_sequence::Input>(bytes).map(|input| format!("{input:#?}")),
        other => panic!("no fuzz target named {other:?}"),
    }
}

/// How an admitted call ended, in the fuzzer's terms; converts to the core's
/// and the model's `Outcome`.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `Outcome::Success`.
    Success,
    /// `Outcome::Failure`.
    Failure,
    /// `Outcome::Ignored`.
    Ignored,
}

impl Outcome {
    /// The core's (and the facade's) outcome.
    pub const fn real(self) -> breakerbox_core::Outcome {
        match self {
            Outcome::Success => breakerbox_core::Outcome::Success,
            Outcome::Failure => breakerbox_core::Outcome::Failure,
            Outcome::Ignored => breakerbox_core::Outcome::Ignored,
        }
    }

    /// The model's outcome.
    pub const fn model(self) -> breakerbox_model::Outcome {
        match self {
            Outcome::Success => breakerbox_model::Outcome::Success,
            Outcome::Failure => breakerbox_model::Outcome::Failure,
            Outcome::Ignored => breakerbox_model::Outcome::Ignored,
        }
    }
}

/// The state as the model's [`Seen`](breakerbox_model::Seen) names it.
pub(crate) const fn seen(state: breakerbox_core::State) -> breakerbox_model::Seen {
    match state {
        breakerbox_core::State::Closed => breakerbox_model::Seen::Closed,
        breakerbox_core::State::Open => breakerbox_model::Seen::Open,
        breakerbox_core::State::HalfOpen => breakerbox_model::Seen::HalfOpen,
    }
}

/// The model's stored phase as the core's [`State`](breakerbox_core::State).
pub(crate) fn stored(model: &breakerbox_model::Model) -> breakerbox_core::State {
    match model.phase() {
        breakerbox_model::Phase::Closed { .. } => breakerbox_core::State::Closed,
        breakerbox_model::Phase::Open { .. } | breakerbox_model::Phase::Isolated { .. } => breakerbox_core::State::Open,
        breakerbox_model::Phase::HalfOpen { .. } => breakerbox_core::State::HalfOpen,
    }
}
