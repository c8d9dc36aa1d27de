//! Property test: random configs and sequences of operations and time steps,
//! applied to the core and to the reference model by the `core_vs_model`
//! fuzz target's driver ([`core_vs_model::run`]), which checks every answer,
//! every reported transition, the state word and the invariants after every
//! step. Here the inputs are the ones proptest generates and shrinks; the
//! fuzzer explores the same statement with inputs of any shape.
//!
//! Each sequence runs through the time-explicit API and through the
//! clock-reading API on a mock clock, from zero or from just below a wrap of
//! the word's 38-bit time field. Configs include the largest threshold,
//! success thresholds above 1, exponential backoffs with and without jitter,
//! and a failure-rate rule with and without the consecutive rule, its window
//! any whole number of ms from 10 to 409, so that the core rounds buckets up.

use breakerbox_fuzz_checks::Outcome;
use breakerbox_fuzz_checks::config::{
    BackoffInput, ConfigInput, CoreWatchInput, JitterInput, Limit, PolicyInput, RateInput, Timeout,
};
use breakerbox_fuzz_checks::core_vs_model::{self, Api, Harness, Input, Op, Start};
use breakerbox_fuzz_checks::time::Jump;
use proptest::prelude::*;

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![Just(Outcome::Success), Just(Outcome::Failure), Just(Outcome::Ignored)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Acquire),
        6 => (any::<u16>(), outcome()).prop_map(|(pick, outcome)| Op::Record { pick, outcome }),
        1 => Just(Op::Trip),
        1 => (0u16..2_000).prop_map(Op::TripFor),
        1 => Just(Op::Isolate),
        2 => Just(Op::Reset),
        3 => (0u16..20).prop_map(|ms| Op::Advance(Jump::Millis(ms))),
        3 => (0u16..1_000).prop_map(|ms| Op::Advance(Jump::Millis(ms))),
        // Rare long waits; the driver keeps them inside the core's bound.
        1 => (0u64..(1 << 29)).prop_map(|ms| Op::Advance(Jump::Huge(ms))),
        // Around the deadline, where the next acquire changes its answer.
        2 => (-2i8..=2).prop_map(|delta| Op::Advance(Jump::Deadline(delta))),
        1 => prop_oneof![(0u16..1_000).prop_map(Jump::Millis), (-2i8..=2).prop_map(Jump::Deadline)].prop_map(Op::Peek),
        1 => (0u16..50).prop_map(Op::Rewind),
    ]
}

fn config() -> impl Strategy<Value = ConfigInput> {
    // `Limit::Boundary(0)` is `Config::MAX_THRESHOLD`.
    let threshold = prop_oneof![(1u8..=6).prop_map(Limit::Small), Just(Limit::Boundary(0))];
    (threshold, 1u8..=3, 1u64..=500).prop_map(|(threshold, half_open_max, timeout_ms)| ConfigInput {
        threshold,
        half_open_max: Limit::Small(half_open_max),
        timeout: Timeout::Millis(timeout_ms),
    })
}

/// Success thresholds and backoffs that fit every [`config`], so that every
/// case runs.
fn policy() -> impl Strategy<Value = PolicyInput> {
    let jitter = prop_oneof![Just(JitterInput::None), Just(JitterInput::Full), Just(JitterInput::Equal)];
    let backoff = prop_oneof![
        (jitter.clone(), any::<u64>()).prop_map(|(jitter, seed)| BackoffInput::FixedJitter { jitter, seed }),
        (1500u16..=3000, 1u8..=40, jitter, any::<u64>()).prop_map(|(factor_permille, max_times, jitter, seed)| {
            BackoffInput::Exponential { factor_permille, max_times, jitter, seed }
        }),
    ];
    (1u8..=3, backoff).prop_map(|(success_threshold, backoff)| PolicyInput {
        success_threshold: Limit::Small(success_threshold),
        backoff,
    })
}

/// A failure-rate rule of 1 to 100 %, 1 to 6 calls, a window of 10 to 400 ms
/// in tens (the harness adds the odd ms), or none; the consecutive rule
/// mostly on.
fn watch() -> impl Strategy<Value = CoreWatchInput> {
    let rate = prop_oneof![
        Just(None),
        (0u8..100, 0u8..6, 0u8..40).prop_map(|(percent, min_calls, tens_of_ms)| Some(RateInput {
            percent,
            min_calls,
            tens_of_ms
        })),
    ];
    (rate, prop_oneof![2 => Just(false), 1 => Just(true)])
        .prop_map(|(rate, consecutive_off)| CoreWatchInput { rate, consecutive_off })
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        Just(Start::Zero),
        (1u16..=700).prop_map(|before| Start::BeforeWrap { wraps: 0, before }),
        (1u16..=300).prop_map(|before| Start::BeforeWrap { wraps: 4, before }),
    ]
}

/// An input and the ms the harness adds to its failure-rate window.
fn input() -> impl Strategy<Value = (Input, u8)> {
    (config(), policy(), watch(), start(), prop::collection::vec(op(), 1..200), 0u8..10).prop_map(
        |(config, policy, watch, start, ops, window_extra_ms)| {
            (Input { config, policy, watch, start, ops }, window_extra_ms)
        },
    )
}

/// Runs `input` through `api`; every generated input must run, or the
/// strategies have drifted out of what the builder accepts.
fn check(input: &Input, api: Api, window_extra_ms: u8) {
    assert!(core_vs_model::run(input, Harness { api, window_extra_ms }), "refused, so nothing ran: {input:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn explicit_time_api_matches_the_model((input, window_extra_ms) in input()) {
        check(&input, Api::Explicit, window_extra_ms);
    }

    #[test]
    fn clock_reading_api_matches_the_model((input, window_extra_ms) in input()) {
        check(&input, Api::Clocked, window_extra_ms);
    }
}

// Shrunk failures of the property tests, as explicit inputs: proptest's
// saved seeds replay only through the strategies that made them. Each runs
// through both APIs.

/// The Go package's rules with only a failure-rate rule: one consecutive
/// failure (switched off), one probe, a 1 ms fixed backoff.
fn rate_only(percent: u8, min_calls: u8, tens_of_ms: u8, ops: Vec<Op>) -> Input {
    Input {
        config: ConfigInput { threshold: Limit::Small(1), half_open_max: Limit::Small(1), timeout: Timeout::Millis(1) },
        policy: PolicyInput {
            success_threshold: Limit::Small(1),
            backoff: BackoffInput::FixedJitter { jitter: JitterInput::None, seed: 0 },
        },
        watch: CoreWatchInput { rate: Some(RateInput { percent, min_calls, tens_of_ms }), consecutive_off: true },
        start: Start::Zero,
        ops,
    }
}

fn both_apis(input: &Input, window_extra_ms: u8) {
    for api in [Api::Explicit, Api::Clocked] {
        check(input, api, window_extra_ms);
    }
}

fn record(pick: u16, outcome: Outcome) -> Op {
    Op::Record { pick, outcome }
}

#[test]
fn a_ticket_reported_again_in_the_next_bucket_counts_once() {
    use Outcome::*;
    // 51 %, 1 call, an 11 ms window: buckets of 2 ms.
    let ops = vec![Op::Acquire, record(0, Success), Op::Advance(Jump::Millis(2)), record(0, Failure)];
    both_apis(&rate_only(50, 0, 0, ops), 1);
}

#[test]
fn a_ticket_reported_again_after_a_rate_open_and_a_reset_counts_once() {
    use Outcome::*;
    // 51 %, 1 call, a 10 ms window.
    let ops = vec![
        Op::Acquire,
        record(0, Failure), // opens on the rate
        Op::Reset,
        Op::Acquire,
        Op::Acquire,
        record(1, Success),
        record(1, Failure), // the same ticket again
    ];
    both_apis(&rate_only(50, 0, 0, ops), 0);
}

#[test]
fn tickets_reported_again_across_resets_in_a_rounded_up_window() {
    use Outcome::*;
    // 1 %, 3 calls, a 21 ms window: buckets rounded up to 3 ms.
    let mut ops = vec![record(0, Success), record(0, Success)];
    ops.extend([Op::Acquire; 14]);
    ops.extend([record(0, Success), Op::Reset, Op::Acquire, Op::Acquire, Op::Acquire, record(9, Ignored), Op::Reset]);
    ops.extend([Op::Acquire; 4]);
    ops.extend([
        record(19, Failure),
        Op::Acquire,
        record(19, Success),
        Op::Advance(Jump::Millis(4)),
        record(19, Failure),
    ]);
    both_apis(&rate_only(0, 2, 1, ops), 1);
}
