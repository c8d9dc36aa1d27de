//! Property test of the facade's `Registry` against the reference model,
//! through the `registry_sequence` fuzz target's driver
//! ([`registry_sequence::registry_sequence`]): each key's breaker against a
//! model of its own, and the registry's eviction (the idle sweep, the hand
//! at capacity, the refusal, a call that spans an eviction and the put-back)
//! against the driver's mirror of it, after every step. Here the inputs are
//! the ones proptest generates and shrinks; the fuzzer explores the same
//! statement with inputs of any shape.
//!
//! It lives with the model, not in the facade, so that the published
//! `breakerbox` package and its tests do not depend on this unpublished crate.

use breakerbox_fuzz_checks::registry_sequence::{self, During, Input, KEYS, Op, Settings, Span};
use proptest::prelude::*;

fn key() -> impl Strategy<Value = u8> {
    0..KEYS
}

fn advance() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0..50u64, 1 => 0..3_000u64]
}

fn during() -> impl Strategy<Value = During> {
    prop_oneof![
        4 => (key(), any::<bool>()).prop_map(|(key, ok)| During::Call { key, ok }),
        1 => advance().prop_map(During::Advance),
        2 => Just(During::Evict),
        1 => key().prop_map(During::Remove),
        2 => key().prop_map(During::Hold),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (key(), any::<bool>()).prop_map(|(key, ok)| Op::Call { key, ok }),
        1 => key().prop_map(Op::Trip),
        3 => advance().prop_map(Op::Advance),
        2 => Just(Op::Evict),
        1 => key().prop_map(Op::Get),
        1 => key().prop_map(Op::Remove),
        2 => (key(), any::<bool>(), [during(), during(), during()], advance())
            .prop_map(|(key, ok, during, advance_ms)| Op::Span(Span { key, ok, during, advance_ms })),
    ]
}

fn settings() -> impl Strategy<Value = Settings> {
    (1..=4u32, 1..=2_000u64, 0..=2_000u64, prop::option::of(0..=6usize)).prop_map(
        |(threshold, timeout_ms, idle_after_ms, capacity)| Settings { threshold, timeout_ms, idle_after_ms, capacity },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The driver panics, naming the step, on the first disagreement.
    #[test]
    fn the_registry_agrees_with_the_model(settings in settings(), ops in prop::collection::vec(op(), 1..80)) {
        registry_sequence::registry_sequence(&Input { settings, ops });
    }
}
