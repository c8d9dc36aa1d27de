//! Property test of the facade's `Registry` against the reference model:
//! eviction removes exactly the breakers the model says are at rest and
//! idle, and every other breaker keeps the state the model gives it.
//!
//! It lives with the model, not in the facade, so that the published
//! `breakerbox` package and its tests do not depend on this unpublished crate.

use std::collections::HashMap;
use std::time::Duration;

use breakerbox::{Config, Registry, State};
use breakerbox_model::{Model, Outcome as ModelOutcome, Phase};
use proptest::prelude::*;

/// What the property test does to the registry.
#[derive(Clone, Debug)]
enum Op {
    Call { key: u8, ok: bool },
    Trip { key: u8 },
    Advance { ms: u64 },
    Evict,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS_PT, any::<bool>()).prop_map(|(key, ok)| Op::Call { key, ok }),
        1 => (0..KEYS_PT).prop_map(|key| Op::Trip { key }),
        3 => (0..1_500u64).prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::Evict),
    ]
}

const KEYS_PT: u8 = 5;
const THRESHOLD: u32 = 3;
const TIMEOUT_MS: u64 = 1_000;
const IDLE_MS: u64 = 700;

/// The test's view of one registered key: the reference model of its
/// breaker, its activity, and when a sweep last saw that change.
struct Known {
    model: Model,
    activity: u64,
    swept_activity: u64,
    idle_since: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Eviction removes exactly the breakers the reference model says are
    /// at rest (closed, no failure in the streak) and that no sweep has
    /// seen used for `idle_after`; every other breaker keeps its state.
    #[test]
    fn eviction_removes_exactly_the_idle_breakers_at_rest(ops in prop::collection::vec(op(), 1..80)) {
        let (clock, mock) = breakerbox::quanta::Clock::mock();
        let config = Config { threshold: THRESHOLD, timeout: Duration::from_millis(TIMEOUT_MS), half_open_max: 1 };
        let registry: Registry<u8> =
            Registry::builder(config).clock(clock).idle_after(Duration::from_millis(IDLE_MS)).build().unwrap();
        let mut known: HashMap<u8, Known> = HashMap::new();
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Call { key, ok } => {
                    let entry = known.entry(key).or_insert_with(|| Known {
                        model: Model::new(THRESHOLD, 1, TIMEOUT_MS),
                        activity: 0,
                        swept_activity: 0,
                        idle_since: now,
                    });
                    entry.activity += 1;
                    let admitted = entry.model.acquire(now);
                    let result = registry.call(&key, || if ok { Ok(()) } else { Err(()) }).unwrap();
                    match admitted {
                        Ok(ticket) => {
                            prop_assert_eq!(result.is_ok(), ok);
                            let outcome = if ok { ModelOutcome::Success } else { ModelOutcome::Failure };
                            entry.model.record(ticket, outcome, now);
                        }
                        Err(_) => prop_assert!(result.unwrap_err().is_open()),
                    }
                }
                Op::Trip { key } => {
                    if let Some(entry) = known.get_mut(&key) {
                        registry.with(&key, |breaker| breaker.trip()).unwrap();
                        entry.model.trip(now);
                    }
                }
                Op::Advance { ms } => {
                    now += ms;
                    mock.increment(Duration::from_millis(ms));
                }
                Op::Evict => {
                    let mut expected: Vec<u8> = Vec::new();
                    for (&key, entry) in &mut known {
                        if entry.activity != entry.swept_activity {
                            entry.swept_activity = entry.activity;
                            entry.idle_since = now;
                        }
                        let at_rest = entry.model.phase() == Phase::Closed { failures: 0 };
                        if at_rest && now - entry.idle_since >= IDLE_MS {
                            expected.push(key);
                        }
                    }
                    let evicted = registry.evict_idle();
                    prop_assert_eq!(evicted, expected.len());
                    for key in expected {
                        known.remove(&key);
                    }
                }
            }
            prop_assert_eq!(registry.len(), known.len());
            for (key, entry) in &known {
                let breaker = registry.get(key);
                prop_assert!(breaker.is_some(), "key {} forgotten", key);
                let seen = match entry.model.seen(now) {
                    breakerbox_model::Seen::Closed => State::Closed,
                    breakerbox_model::Seen::Open => State::Open,
                    breakerbox_model::Seen::HalfOpen => State::HalfOpen,
                };
                prop_assert_eq!(breaker.unwrap().state(), seen, "key {}", key);
            }
        }
    }
}
