//! Replays the saved fuzzer inputs under `regressions/<target>/` (raw bytes,
//! decoded exactly as libFuzzer's harness decodes them) and a handful of
//! hand-written inputs, on stable, as part of `cargo test --workspace`.
//!
//! A crash the fuzzer finds goes into `regressions/<target>/` under a name
//! that says what it was (see `fuzz/README.md`). An input that shows an open
//! bug in the library goes into `regressions/<target>/open/` instead, with
//! an `#[ignore = "..."]` test of its own below, so the suite stays green
//! until the bug is fixed and the file moves up a directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use breakerbox_core::{Config, CoreBreaker, Outcome as CoreOutcome, Recorded, Timestamp};
use breakerbox_fuzz_checks::config::{
    BackoffInput, ConfigInput, CoreWatchInput, Limit, PolicyInput, Timeout, WatchInput,
};
use breakerbox_fuzz_checks::core_vs_model::{self, Start};
use breakerbox_fuzz_checks::facade_sequence::{self, End};
use breakerbox_fuzz_checks::registry_sequence::{self, Settings, Summary};
use breakerbox_fuzz_checks::time::Jump;
use breakerbox_fuzz_checks::{Outcome, quiet_deliberate_panics, replay};

fn regressions(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions").join(target)
}

/// Replays every file directly in `regressions/<target>/`, which must exist
/// and hold at least one input: a missing or emptied directory fails rather
/// than passing with nothing replayed.
fn replay_dir(target: &str) {
    quiet_deliberate_panics();
    let dir = regressions(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    for file in &files {
        let bytes = std::fs::read(file).expect("a readable regression input");
        eprintln!("replaying {}", file.display());
        assert!(replay(target, &bytes), "{} does not decode as a {target} input: a stale file?", file.display());
    }
    assert!(!files.is_empty(), "{} holds no input to replay", dir.display());
}

#[test]
fn saved_core_vs_model_inputs_pass() {
    replay_dir("core_vs_model");
}

#[test]
fn saved_facade_sequence_inputs_pass() {
    replay_dir("facade_sequence");
}

#[test]
fn saved_config_inputs_pass() {
    replay_dir("config");
}

/// No failure rate, the consecutive rule on.
const NO_CORE_WATCH: CoreWatchInput = CoreWatchInput { rate: None, consecutive_off: false };

/// Nothing watched beyond consecutive failures.
const NO_WATCH: WatchInput = WatchInput { rate: None, slow_ms: None, consecutive_off: false };

/// The Go package's rules: one success closes, every open lasts the timeout.
const GO_RULES: PolicyInput = PolicyInput { success_threshold: Limit::Small(1), backoff: BackoffInput::Fixed };

fn config(threshold: u8, half_open_max: u8, timeout_ms: u8) -> ConfigInput {
    ConfigInput {
        threshold: Limit::Small(threshold),
        half_open_max: Limit::Small(half_open_max),
        timeout: Timeout::Short(timeout_ms),
    }
}

// Hand-written inputs: one per behaviour worth pinning by name.

#[test]
fn core_hung_probes_are_replaced_and_report_stale() {
    use core_vs_model::Op::*;
    let ops = vec![
        Trip,
        Advance(Jump::Deadline(-1)),
        Acquire, // rejected, retry after 1 ms
        Advance(Jump::Millis(1)),
        Acquire, // the first probe
        Acquire, // full: rejected
        Advance(Jump::Deadline(0)),
        Acquire, // a fresh round; the first probe is now stale
        Record { pick: 0, outcome: Outcome::Failure },
        Record { pick: 1, outcome: Outcome::Success },
        Peek(Jump::Huge(u64::MAX)),
    ];
    core_vs_model::core_vs_model(&core_vs_model::Input {
        watch: NO_CORE_WATCH,
        policy: GO_RULES,
        config: config(1, 1, 10),
        start: Start::Zero,
        ops,
    });
}

#[test]
fn core_survives_stamp_wraps_and_jumps_to_the_documented_bound() {
    use core_vs_model::Op::*;
    // The longest timeout (2^36 ms): a jump of u64::MAX ms is clamped to
    // 2^37 - 1 ms after the last transition, the last elapsed time the core
    // reads exactly, where the timeout has long passed.
    let config = ConfigInput { timeout: Timeout::NearMax(0), ..config(2, 3, 0) };
    let ops = vec![
        Acquire,
        Advance(Jump::Huge(1 << 40)), // closed: any jump, across stamp wraps
        Acquire,
        Record { pick: 0, outcome: Outcome::Failure },
        Record { pick: 1, outcome: Outcome::Failure }, // opens
        Peek(Jump::Huge(u64::MAX)),
        Advance(Jump::Deadline(-1)),
        Acquire,
        Advance(Jump::Huge(u64::MAX)),
        Acquire,
        Acquire,
        Record { pick: 2, outcome: Outcome::Ignored },
        Record { pick: 2, outcome: Outcome::Ignored }, // twice: must not free a slot it never held
        Acquire,
        Acquire,
        Acquire,
    ];
    for start in [
        Start::BeforeWrap { wraps: 0, before: 3 },
        Start::BeforeWrap { wraps: 255, before: 0 },
        Start::Any(u64::MAX - 5),
    ] {
        core_vs_model::core_vs_model(&core_vs_model::Input {
            watch: NO_CORE_WATCH,
            policy: GO_RULES,
            config,
            start,
            ops: ops.clone(),
        });
    }
}

#[test]
fn core_now_before_the_last_transition_is_no_time_elapsed() {
    use core_vs_model::Op::*;
    let ops = vec![
        Advance(Jump::Millis(100)),
        Trip,
        Rewind(40),
        Acquire, // rejected: retry after the whole timeout
        Advance(Jump::Deadline(0)),
        Acquire, // the probe
        Rewind(1),
        Acquire,                                       // full; the clock is behind the half-open stamp
        Record { pick: 0, outcome: Outcome::Failure }, // reopens, stamped 1 ms earlier
        Advance(Jump::Deadline(-1)),
        Acquire,
        Rewind(u16::MAX), // saturates at 0
        Acquire,
    ];
    core_vs_model::core_vs_model(&core_vs_model::Input {
        watch: NO_CORE_WATCH,
        policy: GO_RULES,
        config: config(1, 1, 10),
        start: Start::Zero,
        ops,
    });
}

#[test]
fn core_drops_tickets_256_generations_old() {
    use core_vs_model::Op::*;
    // 256 transitions in one millisecond while a ticket is held is where the
    // core's generations alias (documented); the driver must stop reporting
    // that ticket rather than expect it to be stale.
    let mut ops = vec![Acquire];
    for _ in 0..128 {
        ops.extend([Trip, Reset]);
    }
    ops.push(Record { pick: 0, outcome: Outcome::Failure });
    core_vs_model::core_vs_model(&core_vs_model::Input {
        watch: NO_CORE_WATCH,
        policy: GO_RULES,
        config: config(1, 1, 10),
        start: Start::Zero,
        ops,
    });
}

/// Why the driver needs [`breakerbox_fuzz_checks::MAX_TICKET_AGE`]: the
/// documented aliasing, shown on the core directly.
#[test]
fn the_core_aliases_generations_after_256_transitions_in_one_millisecond() {
    let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
    let core = CoreBreaker::with_clock(Config { threshold: 1, ..Config::default() }, clock).unwrap();
    let at = Timestamp::from_millis(7);
    core.reset_at(at);
    let ticket = core.acquire_at(at).unwrap();
    for _ in 0..128 {
        core.trip_at(at);
        core.reset_at(at);
    }
    assert_eq!(core.record_at(ticket, CoreOutcome::Failure, at), Recorded::Applied, "the documented limit");
}

#[test]
fn core_refused_configs_end_the_run() {
    let input = core_vs_model::Input {
        watch: NO_CORE_WATCH,
        policy: GO_RULES,
        config: ConfigInput { threshold: Limit::Any(70_000), ..config(1, 1, 1) },
        start: Start::Zero,
        ops: vec![core_vs_model::Op::Acquire],
    };
    core_vs_model::core_vs_model(&input);
}

#[test]
fn facade_panics_count_as_failures_and_drops_as_ignored() {
    quiet_deliberate_panics();
    use facade_sequence::Op::*;
    let ops = vec![
        Call(End::Panic), // a failure: opens
        Call(End::Ok),    // rejected
        Advance(Jump::Millis(10)),
        Spawn { pending: 3, end: End::Ok, classify: None },
        Poll { pick: 0 },         // the probe, pending
        Acquire { owned: false }, // full: rejected
        Cancel { pick: 0 },       // ignored: frees the slot
        Acquire { owned: true },  // the new probe
        Spawn { pending: 0, end: End::Panic, classify: Some(Outcome::Success) },
        Poll { pick: 0 },                                          // admitted? no: full, rejected
        Report { pick: 0, how: facade_sequence::Report::Success }, // closes
        CallWith { end: End::Err, outcome: Outcome::Ignored },     // classified as ignored: counts nothing
        CallWith { end: End::Panic, outcome: Outcome::Ignored }, // a panic is a failure whatever the classifier: opens
        CallWithFallback(End::Ok),                               // rejected: the fallback
    ];
    facade_sequence::facade_sequence(&facade_sequence::Input {
        policy: GO_RULES,
        watch: NO_WATCH,
        config: config(1, 1, 10),
        ops,
    });
}

/// A panic while a `call_async` future's inner future is polled counts as a
/// failure at the panic, not when the caller drops the future (the caller
/// owns it, so the unwinding stack does not drop it), and ends the call: a
/// later poll does not poll the inner future again. The fuzzer found this
/// when `call_async` first became a hand-written future; its minimised input
/// is `regressions/facade_sequence/panicking-future-counts-at-the-panic`.
#[test]
fn facade_a_panicking_future_counts_as_a_failure_at_the_panic() {
    quiet_deliberate_panics();
    use facade_sequence::Op::*;
    let ops = vec![
        Spawn { pending: 0, end: End::Panic, classify: None },
        Poll { pick: 0 }, // panics: the failure counts now, and opens the breaker (threshold 1)
        Cancel { pick: 0 },
    ];
    facade_sequence::facade_sequence(&facade_sequence::Input {
        policy: GO_RULES,
        watch: NO_WATCH,
        config: config(1, 1, 10),
        ops,
    });
}

#[test]
fn facade_stale_results_still_count() {
    quiet_deliberate_panics();
    use facade_sequence::Op::*;
    let ops = vec![
        Acquire { owned: false },
        Acquire { owned: true },
        Spawn { pending: 2, end: End::Err, classify: None },
        Poll { pick: 0 },
        Trip,
        Report { pick: 0, how: facade_sequence::Report::Failure }, // stale, counted
        Report { pick: 0, how: facade_sequence::Report::Record(Outcome::Success) }, // stale, counted
        Poll { pick: 0 },
        Poll { pick: 0 }, // finishes: stale failure, counted
        Reset,
        Spawn { pending: 0, end: End::Ok, classify: Some(Outcome::Ignored) },
        Poll { pick: 0 }, // ignored: not counted
        Advance(Jump::Nanos(999_999)),
        Advance(Jump::Nanos(1)),
        CallWith { end: End::Panic, outcome: Outcome::Ignored }, // a panic is a failure
        Acquire { owned: false },                                // still held at the end: dropped as ignored
    ];
    facade_sequence::facade_sequence(&facade_sequence::Input {
        policy: GO_RULES,
        watch: NO_WATCH,
        config: config(3, 2, 0),
        ops,
    });
}

#[test]
fn config_extremes() {
    quiet_deliberate_panics();
    let limits = [Limit::Small(0), Limit::Small(1), Limit::Boundary(0), Limit::Boundary(1), Limit::Any(u32::MAX)];
    let timeouts = [
        Timeout::Zero,
        Timeout::Nanos(1),
        Timeout::Nanos(1_000_001),
        Timeout::NearMax(0),
        Timeout::NearMax(1),
        Timeout::NearMax(-1),
        Timeout::NearMax(-1_000_000),
        Timeout::Millis(u64::MAX),
        Timeout::Full { secs: u64::MAX, nanos: 999_999_999 },
    ];
    for threshold in limits {
        for half_open_max in limits {
            for timeout in timeouts {
                breakerbox_fuzz_checks::config(&breakerbox_fuzz_checks::config::Input {
                    policy: GO_RULES,
                    config: ConfigInput { threshold, half_open_max, timeout },
                });
            }
        }
    }
    assert_eq!(Timeout::NearMax(0).duration(), Config::MAX_TIMEOUT);
    assert_eq!(Timeout::Full { secs: 1, nanos: 1_000_000_001 }.duration(), Duration::new(1, 1));
}

fn registry(
    threshold: u32,
    timeout_ms: u64,
    idle_after_ms: u64,
    capacity: Option<usize>,
    ops: Vec<registry_sequence::Op>,
) -> Summary {
    registry_sequence::registry_sequence(&registry_sequence::Input {
        settings: Settings { threshold, timeout_ms, idle_after_ms, capacity },
        ops,
    })
}

#[test]
fn registry_evict_idle_takes_exactly_the_idle_breakers_at_rest() {
    use registry_sequence::Op::*;
    let ops = vec![
        Call { key: 0, ok: true },
        Call { key: 1, ok: false }, // closed, one failure: not at rest
        Call { key: 2, ok: false },
        Call { key: 2, ok: false }, // open
        Call { key: 3, ok: true },
        Trip(3), // open
        Trip(4), // not registered: nothing
        Evict,   // every activity changed since the last sweep: idle from now
        Advance(499),
        Evict, // idle 499 ms < 500
        Advance(1),
        Get(0), // a handle taken and dropped: no activity, no hold
        Evict,  // key 0 goes; 1 counts a failure, 2 and 3 are open
        Advance(1_000),
        Call { key: 2, ok: true }, // the probe closes it: at rest, but busy
        Evict,                     // 2's activity changed: idle from now; 3 is stored open (seen half-open)
        Advance(500),
        Evict,                     // key 2 goes
        Call { key: 1, ok: true }, // clears the streak
        Advance(2_000),
        Evict, // 1's activity changed at this sweep
        Advance(500),
        Evict, // key 1 goes; key 3 stays, open
    ];
    let summary = registry(2, 1_000, 500, None, ops);
    assert_eq!(summary, Summary { made: 4, evicted_idle: 3, ..Summary::default() });
}

#[test]
fn registry_a_new_key_at_capacity_evicts_a_breaker_at_rest_or_is_refused() {
    use registry_sequence::Op::*;
    let ops = vec![
        Call { key: 0, ok: false }, // open
        Advance(5),
        Call { key: 1, ok: false }, // open
        Call { key: 2, ok: true },  // full: nothing at rest
        Advance(1_000),
        Call { key: 0, ok: true },  // the probe closes 0: at rest
        Call { key: 2, ok: true },  // evicts 0
        Get(2),                     // the handle is dropped at once
        Call { key: 3, ok: true },  // evicts 2 (1 is stored open, not at rest)
        Call { key: 1, ok: true },  // registered: no room needed; closes it
        Call { key: 4, ok: false }, // evicts 1 or 3: both at rest
        Remove(4),
        Call { key: 5, ok: true }, // room without evicting
    ];
    let summary = registry(1, 1_000, 2_000, Some(2), ops);
    assert_eq!(summary, Summary { made: 6, evicted_for_room: 3, refused: 1, removed: 1, ..Summary::default() });
    // A breaker counting a failure is not at rest either, however idle; and
    // a refusal stands for a millisecond without another sweep.
    let ops = vec![
        Call { key: 0, ok: false }, // closed, one failure
        Advance(3_000),
        Evict,
        Advance(3_000),
        Call { key: 1, ok: true }, // full
        Call { key: 0, ok: true }, // the streak cleared: at rest
        Call { key: 1, ok: true }, // still refused, without a sweep
        Advance(1),
        Call { key: 1, ok: true }, // evicts 0
    ];
    let summary = registry(2, 1_000, 0, Some(1), ops);
    assert_eq!(
        summary,
        Summary { made: 2, evicted_for_room: 1, refused: 1, refused_without_sweep: 1, ..Summary::default() }
    );
}

/// At capacity the hand evicts a breaker at rest that was not used since
/// it last passed; one used since gets a second chance.
#[test]
fn registry_the_hand_gives_a_used_breaker_a_second_chance() {
    use registry_sequence::Op::*;
    let ops = vec![
        Call { key: 0, ok: true },
        Call { key: 1, ok: true },
        Call { key: 2, ok: true },
        Call { key: 3, ok: true }, // all used since made: a lap of notes, then 0 goes
        Get(0),
        Call { key: 2, ok: true }, // 2, now first in the roster, is used again
        Call { key: 4, ok: true }, // 2 passed over, 1 (noted, unused since) goes
        Get(1),
    ];
    let summary = registry(3, 1_000, 2_000, Some(3), ops);
    assert_eq!(summary, Summary { made: 5, evicted_for_room: 2, ..Summary::default() });
    // With a capacity of 0 every new key is refused and nothing is made.
    let ops = vec![
        Call { key: 0, ok: true },
        Get(0),
        Evict,
        Trip(0),
        Remove(0),
        Call { key: 5, ok: false },
        Advance(1),
        Call { key: 5, ok: true },
    ];
    assert_eq!(registry(1, 1, 0, Some(0), ops), Summary { refused: 2, refused_without_sweep: 1, ..Summary::default() });
}

/// Without a racing call nothing is put back: an evicted or removed key's
/// next call makes a new breaker, counting from zero (the driver checks
/// `counts()` against a tally started afresh), and a handle from `get`,
/// dropped, does not keep its breaker from eviction.
#[test]
fn registry_an_evicted_key_comes_back_as_a_new_breaker() {
    use registry_sequence::Op::*;
    let ops = vec![
        Call { key: 0, ok: true },
        Call { key: 0, ok: true },
        Get(0),
        Evict,                      // idle_after 0: at rest is enough
        Get(0),                     // gone
        Call { key: 0, ok: false }, // a new breaker: one failure, not two successes and a failure
        Evict,                      // counts a failure: kept
        Trip(0),
        Evict, // open: kept
        Remove(0),
        Remove(0),
        Call { key: 0, ok: true }, // new again, closed
        Evict,
    ];
    let summary = registry(2, 100, 0, None, ops);
    assert_eq!(summary, Summary { made: 3, evicted_idle: 2, removed: 1, ..Summary::default() });
}

/// A few thousand pseudo-random inputs per target on stable: no substitute
/// for the fuzzer, but it runs on every `cargo test`.
#[test]
fn random_inputs_pass() {
    quiet_deliberate_panics();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for target in ["core_vs_model", "facade_sequence", "config", "registry_sequence"] {
        for _ in 0..2_000 {
            let len = (next() % 512) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            replay(target, &bytes);
        }
    }
}

/// A failing call spans an eviction of its breaker, a fresh breaker for
/// its key held by another caller, and the open timeout: the fresh breaker
/// opens, as the open the call learned must not be lost (the open breaker,
/// read half-open by the time the call ends, once lost it).
#[test]
fn registry_a_failing_call_spanning_an_eviction_and_a_timeout_opens_the_held_fresh_breaker() {
    use registry_sequence::{During, Op::*, Span};
    let ops = vec![
        Call { key: 0, ok: true },
        Span(Span {
            key: 0,
            ok: false,
            during: [During::Evict, During::Call { key: 0, ok: true }, During::Hold(0)],
            advance_ms: 1_000,
        }),
        Get(0),
    ];
    let summary = registry(1, 1_000, 0, None, ops);
    assert_eq!(summary, Summary { made: 2, evicted_idle: 1, put_back: 1, ..Summary::default() });
    // Not held, the fresh breaker gives way to the evicted one, open; a
    // call that leaves its evicted breaker at rest does not bring it back.
    let ops = vec![
        Call { key: 0, ok: true },
        Call { key: 1, ok: true },
        Span(Span {
            key: 0,
            ok: false,
            // The hand evicts 0 for 2, then 1 for a fresh 0.
            during: [During::Call { key: 2, ok: true }, During::Call { key: 0, ok: true }, During::Advance(0)],
            advance_ms: 0,
        }),
        Get(0), // the evicted one, open
        Span(Span {
            key: 2,
            ok: true,
            // Evicted for 3, and not back: its call left it at rest.
            during: [During::Call { key: 3, ok: true }, During::Advance(1), During::Advance(0)],
            advance_ms: 0,
        }),
        Get(2),
    ];
    let summary = registry(1, 1_000, 0, Some(2), ops);
    assert_eq!(summary, Summary { made: 5, evicted_for_room: 3, put_back: 1, ..Summary::default() });
}
