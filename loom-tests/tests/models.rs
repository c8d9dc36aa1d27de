//! Loom models of the breaker core: the transitions threads can race, checked
//! over every interleaving (up to the preemption bound) of the code that
//! ships, whose atomics `breakerbox_core`'s `sync` module swaps for loom's under
//! `--cfg loom`.
//!
//! Run the suite with exactly this (its own target dir, so a loom build never
//! invalidates the normal one):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom cargo test -p breakerbox-loom-tests --release
//! ```
//!
//! Without `--cfg loom` this file compiles to nothing, so a plain
//! `cargo test --workspace` skips it.
//!
//! # How a model is checked
//!
//! A model is a [`Scenario`]: a config, a sequential setup run before any
//! thread starts, and 2 or 3 threads, each a short program of calls to the
//! time-explicit API (`acquire_at`, `record_at`, `trip_at`, `reset_at`,
//! `state_at`) at fixed, distinct timestamps. No model reads a clock. Every
//! execution loom explores is checked three ways:
//!
//! 1. Inside each thread, after every call: the word it loads is well formed
//!    (a closed count below the threshold, an open count of zero, a half-open
//!    count at most `half_open_max`) and its epoch never goes backwards.
//! 2. After the threads join, *sequential consistency*: every call's return
//!    value together with the final word must equal what some sequential order
//!    of the same calls (keeping each thread's program order) produces on a
//!    fresh breaker. The orders are enumerated and run on the real breaker
//!    before exploring. This catches lost updates and double transitions (a
//!    broken CAS), whatever the transition functions say.
//! 3. The model's own invariant (its verdict function), stated in terms of the
//!    transition table: which result is applied or stale, the epoch exactly
//!    one past its start, the stamp being the time of the thread that
//!    transitioned, counts within limits. This catches a wrong transition
//!    function, which check 2 cannot, as its sequential reference runs the
//!    same functions. The verdict also names the case the execution fell
//!    into (which thread tripped, which result won).
//!
//! After the exploration, every behaviour some sequential order produces must
//! have shown up in at least one execution, and so must every case the model
//! lists, so no model passes vacuously by never reaching the race it is about
//! (or by a breaker that, say, never recovers, so one side of the race never
//! happens).
//!
//! The preemption bound is part of the command, not only a speed-up: loom's
//! unbounded DPOR remembers only the last access to an atomic, and without a
//! bound it was seen to skip a schedule (`fast_path_success_races_failure`
//! never ran the failure wholly before the success), which the coverage check
//! above reports. With `LOOM_MAX_PREEMPTIONS=3`, loom adds the conservative
//! backtracking points of bounded DPOR and every model reaches all its
//! behaviours; the whole suite takes seconds (unbounded, some models run for
//! many minutes).
//!
//! Loom's `compare_exchange_weak` is its strong CAS: spurious failures are not
//! modelled, only failures against a word another thread changed (whose retry
//! path the models do exercise).
//!
//! # The ordering claims the models back
//!
//! The `# Orderings` section of `crates/breakerbox-core/src/cell.rs` argues that
//! `Relaxed` is enough for every access. Each model names the claims it backs:
//!
//! - **total order**: read-modify-writes of the one word are totally ordered,
//!   so a CAS only succeeds against the latest value and no two threads apply
//!   a transition from the same word;
//! - **no lost update**: no read-modify-write overwrites another's change;
//! - **load linearises**: a decision taken from a plain load (admitting on a
//!   closed word, a success with no streak to reset, reading the state) is
//!   linearised at that load, and a thread never sees the word go back to an
//!   older value.
#![cfg(loom)]

use std::sync::Mutex;
use std::time::Duration;

use breakerbox_core::__private::RawWord as _;
use breakerbox_core::quanta::Clock;
use breakerbox_core::{
    Backoff, Config, CoreBreaker, Outcome, Recorded, Rejected, State, StateWord, Ticket, Timestamp, ValidConfig,
};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};

/// The open timeout of every model, in milliseconds.
const TIMEOUT_MS: u64 = 100;

const fn config(threshold: u32, half_open_max: u32) -> Config {
    Config { threshold, timeout: Duration::from_millis(TIMEOUT_MS), half_open_max }
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// One call a model thread makes; the `u64` is the time passed to it, in ms.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `acquire_at`; an admitted ticket becomes the thread's held ticket.
    Acquire(u64),
    /// `record_at` with a ticket: the held one, or one the setup made.
    Record(Tk, Outcome, u64),
    /// `trip_at`.
    Trip(u64),
    /// `reset_at`.
    Reset(u64),
    /// `state_at`.
    Observe(u64),
}

/// Which ticket a [`Op::Record`] hands back.
#[derive(Clone, Copy, Debug)]
enum Tk {
    /// The ticket of this thread's last acquire (none if it was rejected).
    Held,
    /// The setup's ticket at this index.
    Setup(usize),
}

/// What one call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    Admitted(Ticket),
    Rejected(Rejected),
    Recorded(Recorded),
    /// A record of the held ticket when the acquire before it was rejected.
    NoTicket,
    Done,
    Observed(State),
}

/// The builder's options a model runs with.
#[derive(Clone, Copy, Debug)]
struct Policy {
    success_threshold: u32,
    backoff: Backoff,
}

/// The Go package's rules: one probe success closes; every open lasts the
/// timeout.
const GO_RULES: Policy = Policy { success_threshold: 1, backoff: Backoff::fixed() };

/// A model: config, options, setup, and the programs of its threads.
struct Scenario {
    config: Config,
    policy: Policy,
    /// Runs before the threads start; returns the tickets `Tk::Setup` names.
    setup: fn(&CoreBreaker) -> Vec<Ticket>,
    threads: &'static [&'static [Op]],
}

/// The observable outcome of one execution.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    /// Per thread, per call.
    returns: Vec<Vec<Ret>>,
    /// The word after every thread has joined.
    last: StateWord,
}

impl Run {
    fn ret(&self, thread: usize, op: usize) -> Ret {
        self.returns[thread][op]
    }

    fn recorded(&self, thread: usize, op: usize) -> Option<Recorded> {
        match self.ret(thread, op) {
            Ret::Recorded(recorded) => Some(recorded),
            Ret::NoTicket => None,
            other => panic!("thread {thread} call {op} is not a record: {other:?}"),
        }
    }

    fn applied(&self, thread: usize, op: usize) -> bool {
        self.recorded(thread, op) == Some(Recorded::Applied)
    }

    fn admitted(&self, thread: usize, op: usize) -> Option<Ticket> {
        match self.ret(thread, op) {
            Ret::Admitted(ticket) => Some(ticket),
            Ret::Rejected(_) => None,
            other => panic!("thread {thread} call {op} is not an acquire: {other:?}"),
        }
    }

    /// How a thread's acquire-then-record went: `rejected`, `applied` or
    /// `stale`.
    fn call_went(&self, thread: usize) -> &'static str {
        match (self.admitted(thread, 0), self.recorded(thread, 1)) {
            (None, None) => "rejected",
            (Some(_), Some(Recorded::Applied)) => "applied",
            (Some(_), Some(Recorded::Stale)) => "stale",
            other => panic!("thread {thread}: {other:?}"),
        }
    }

    fn observed(&self, thread: usize, op: usize) -> State {
        match self.ret(thread, op) {
            Ret::Observed(state) => state,
            other => panic!("thread {thread} call {op} is not a state read: {other:?}"),
        }
    }
}

/// The final word's fields, in the order (phase, count, epoch, time of the
/// last transition). An open word keeps its deadline, which with the models'
/// fixed backoff is the time it opened plus [`TIMEOUT_MS`].
fn fields(word: StateWord) -> (State, u32, u8, u64) {
    (word.phase(), word.count(), word.epoch(), transitioned_at(word))
}

/// When `word`'s last transition happened (see [`fields`]).
fn transitioned_at(word: StateWord) -> u64 {
    match word.phase() {
        State::Open if !word.held_open() => word.stamp() - TIMEOUT_MS,
        _ => word.stamp(),
    }
}

/// Makes one call and returns what it returned.
fn call(breaker: &CoreBreaker, setup: &[Ticket], held: &mut Option<Ticket>, op: Op) -> Ret {
    match op {
        Op::Acquire(ms) => match breaker.acquire_at(at(ms)) {
            Ok(ticket) => {
                *held = Some(ticket);
                Ret::Admitted(ticket)
            }
            Err(rejected) => {
                *held = None;
                Ret::Rejected(rejected)
            }
        },
        Op::Record(tk, outcome, ms) => {
            let ticket = match tk {
                Tk::Held => *held,
                Tk::Setup(i) => Some(setup[i]),
            };
            match ticket {
                Some(ticket) => Ret::Recorded(breaker.record_at(ticket, outcome, at(ms))),
                None => Ret::NoTicket,
            }
        }
        Op::Trip(ms) => {
            breaker.trip_at(at(ms));
            Ret::Done
        }
        Op::Reset(ms) => {
            breaker.reset_at(at(ms));
            Ret::Done
        }
        Op::Observe(ms) => Ret::Observed(breaker.state_at(at(ms))),
    }
}

/// The shape every word must have, whoever loads it and when (the count's
/// layout is the one docs/ARCHITECTURE.md states).
fn assert_well_formed(word: StateWord, limits: ValidConfig) {
    let bits = |max: u32| u32::BITS - max.leading_zeros();
    let in_bits = bits(limits.half_open_max());
    let count = word.count();
    match word.phase() {
        State::Closed => assert!(count < limits.threshold(), "closed count at the threshold: {word:?}"),
        State::Open if word.held_open() => assert_eq!(count, 0, "held open with a count: {word:?}"),
        State::Open => assert!(count <= 63, "a streak past the longest backoff: {word:?}"),
        State::HalfOpen => {
            let in_flight = count & ((1 << in_bits) - 1);
            let successes = (count >> in_bits) & ((1 << bits(limits.success_threshold() - 1)) - 1);
            assert!(in_flight <= limits.half_open_max(), "more probes than half_open_max: {word:?}");
            assert!(successes < limits.success_threshold(), "a half-open word with enough successes: {word:?}");
        }
    }
}

/// One model thread: runs its program, checking after each call that the word
/// it loads is well formed and no older than the last one it loaded.
fn run_thread(breaker: &CoreBreaker, setup: &[Ticket], ops: &[Op], limits: ValidConfig) -> Vec<Ret> {
    let mut held = None;
    let mut seen: Option<StateWord> = None;
    let mut returns = Vec::with_capacity(ops.len());
    for &op in ops {
        returns.push(call(breaker, setup, &mut held, op));
        let word = breaker.snapshot();
        assert_well_formed(word, limits);
        if let Some(before) = seen {
            // Epochs only grow (mod 256; no model comes near a wrap).
            assert!(word.epoch().wrapping_sub(before.epoch()) < 128, "word went back: {before:?} then {word:?}");
        }
        seen = Some(word);
    }
    returns
}

fn new_breaker(scenario: &Scenario) -> CoreBreaker {
    CoreBreaker::builder(scenario.config)
        .clock(Clock::mock().0)
        .success_threshold(scenario.policy.success_threshold)
        .backoff(scenario.policy.backoff)
        .build()
        .expect("model configs are valid")
}

/// Every outcome a sequential order of the scenario's calls produces, each
/// thread's calls kept in program order. Runs on the real breaker inside a
/// single-threaded loom model (loom atomics exist only inside one), which has
/// exactly one execution.
fn sequential_runs(scenario: &'static Scenario) -> Vec<Run> {
    let out = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&out);
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 1 << 20;
    builder.check(move || {
        let mut runs = Vec::new();
        let mut order = Vec::new();
        let mut next = vec![0; scenario.threads.len()];
        for_each_order(scenario.threads, &mut next, &mut order, &mut |order| {
            let breaker = new_breaker(scenario);
            let setup = (scenario.setup)(&breaker);
            let mut held = vec![None; scenario.threads.len()];
            let mut returns = vec![Vec::new(); scenario.threads.len()];
            for &thread in order {
                let op = scenario.threads[thread][returns[thread].len()];
                returns[thread].push(call(&breaker, &setup, &mut held[thread], op));
            }
            let run = Run { returns, last: breaker.snapshot() };
            if !runs.contains(&run) {
                runs.push(run);
            }
        });
        *sink.lock().unwrap() = runs;
    });
    std::mem::take(&mut *out.lock().unwrap())
}

/// Calls `visit` with every interleaving of the threads' programs, as a list
/// of thread indices.
fn for_each_order(threads: &[&[Op]], next: &mut [usize], order: &mut Vec<usize>, visit: &mut impl FnMut(&[usize])) {
    let mut done = true;
    for thread in 0..threads.len() {
        if next[thread] < threads[thread].len() {
            done = false;
            next[thread] += 1;
            order.push(thread);
            for_each_order(threads, next, order, visit);
            order.pop();
            next[thread] -= 1;
        }
    }
    if done {
        visit(order);
    }
}

/// Explores the scenario with loom (the preemption bound comes from
/// `LOOM_MAX_PREEMPTIONS`) and checks every execution as the module docs say.
///
/// `verdict` is the model's own invariant, given the run and the breaker
/// (which it may go on using); it returns the name of the case the execution
/// fell into. Every name it returns must be one of `cases`, and every one of
/// `cases` must come up in some execution: the race can go each way, and does.
fn explore(scenario: &'static Scenario, cases: &[&str], verdict: fn(&Run, &CoreBreaker) -> String) {
    let expected = sequential_runs(scenario);
    let reached = std::sync::Arc::new(Mutex::new((Vec::<Run>::new(), Vec::<String>::new())));
    let sink = std::sync::Arc::clone(&reached);
    let expected_in_model = expected.clone();
    loom::model::Builder::new().check(move || {
        let breaker = Arc::new(new_breaker(scenario));
        let limits = breaker.valid_config();
        let setup = (scenario.setup)(&breaker);
        let handles: Vec<_> = scenario
            .threads
            .iter()
            .map(|&ops| {
                let breaker = Arc::clone(&breaker);
                let setup = setup.clone();
                loom::thread::spawn(move || run_thread(&breaker, &setup, ops, limits))
            })
            .collect();
        let returns = handles.into_iter().map(|handle| handle.join().unwrap()).collect();
        let run = Run { returns, last: breaker.snapshot() };
        assert_well_formed(run.last, limits);
        assert!(
            expected_in_model.contains(&run),
            "no sequential order of the calls explains this execution:\n{run:#?}\nsequential orders give:\n{expected_in_model:#?}"
        );
        let case = verdict(&run, &breaker);
        let (runs, names) = &mut *sink.lock().unwrap();
        if !runs.contains(&run) {
            runs.push(run);
        }
        if !names.contains(&case) {
            names.push(case);
        }
    });
    let (runs, names) = &*reached.lock().unwrap();
    let missed: Vec<_> = expected.iter().filter(|run| !runs.contains(run)).collect();
    assert!(missed.is_empty(), "the exploration never reached these sequential behaviours:\n{missed:#?}");
    let unknown: Vec<_> = names.iter().filter(|name| !cases.contains(&name.as_str())).collect();
    assert!(unknown.is_empty(), "executions fell into cases the model does not name: {unknown:?}");
    let unreached: Vec<_> = cases.iter().filter(|&&case| !names.iter().any(|name| name == case)).collect();
    assert!(unreached.is_empty(), "no execution fell into these cases: {unreached:?}");
}

// ---------------------------------------------------------------------------
// 1. Concurrent failures around the threshold.
// ---------------------------------------------------------------------------

/// Threshold 3 with a streak of 2: one ticket of the closed generation.
fn closed_streak_of_two(breaker: &CoreBreaker) -> Vec<Ticket> {
    let ticket = breaker.acquire_at(at(0)).unwrap();
    assert_eq!(breaker.record_at(ticket, Outcome::Failure, at(1)), Recorded::Applied);
    assert_eq!(breaker.record_at(ticket, Outcome::Failure, at(2)), Recorded::Applied);
    vec![ticket]
}

static AT_THRESHOLD: Scenario = Scenario {
    config: config(3, 1),
    policy: GO_RULES,
    setup: closed_streak_of_two,
    threads: &[
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 10)],
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 20)],
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 30)],
    ],
};

/// Three failures race a closed breaker one failure short of its threshold.
///
/// Invariant: it opens exactly once. Exactly one failure is applied (it is the
/// one that trips; the other two find the open word and are stale), the epoch
/// is exactly the initial one + 1, the open word is stamped with the time the
/// applying thread passed, and no word any thread loads has a closed count at
/// the threshold.
///
/// Backs **total order**: three CASes start from the same closed word and
/// only one can succeed against it; the losers must re-run the transition on
/// the open word. Were two CASes to succeed from the same word, two would be
/// applied and the epoch would be +2.
#[test]
fn failures_at_the_threshold_open_exactly_once() {
    explore(&AT_THRESHOLD, &["thread 0 trips", "thread 1 trips", "thread 2 trips"], |run, _| {
        let applied: Vec<usize> = (0..3).filter(|&t| run.applied(t, 0)).collect();
        assert_eq!(applied.len(), 1, "exactly one failure trips: {run:?}");
        for t in (0..3).filter(|t| !applied.contains(t)) {
            assert_eq!(run.recorded(t, 0), Some(Recorded::Stale), "{run:?}");
        }
        let tripper = applied[0];
        assert_eq!(fields(run.last), (State::Open, 0, 1, 10 * (tripper as u64 + 1)), "{run:?}");
        format!("thread {tripper} trips")
    });
}

/// Threshold 3 with a streak of 1.
fn closed_streak_of_one(breaker: &CoreBreaker) -> Vec<Ticket> {
    let ticket = breaker.acquire_at(at(0)).unwrap();
    assert_eq!(breaker.record_at(ticket, Outcome::Failure, at(1)), Recorded::Applied);
    vec![]
}

static BELOW_THRESHOLD: Scenario = Scenario {
    config: config(3, 1),
    policy: GO_RULES,
    setup: closed_streak_of_one,
    threads: &[
        &[Op::Acquire(10), Op::Record(Tk::Held, Outcome::Failure, 11)],
        &[Op::Acquire(20), Op::Record(Tk::Held, Outcome::Failure, 21)],
        &[Op::Acquire(30), Op::Record(Tk::Held, Outcome::Failure, 31)],
    ],
};

/// Three threads each acquire and fail on a closed breaker two failures short
/// of its threshold.
///
/// Invariant: exactly two failures are applied (one counts, one trips) and the
/// third thread is either rejected (it acquired after the opening) or stale;
/// the breaker opens exactly once (epoch exactly +1), stamped with the time of
/// one of the two applied failures; counts stay below the threshold.
///
/// Backs **no lost update** (the counting increment is never overwritten by
/// the other failure, or the breaker would need a third failure) and **total
/// order** (one opening); the closed admissions are load-only and back **load
/// linearises**: an admission that loaded the closed word is explained as
/// happening before the opening, so a result it reports after the opening is
/// stale, never applied.
#[test]
fn failures_below_the_threshold_count_each_and_open_once() {
    let cases = [
        "thread 0 rejected",
        "thread 0 stale",
        "thread 1 rejected",
        "thread 1 stale",
        "thread 2 rejected",
        "thread 2 stale",
    ];
    explore(&BELOW_THRESHOLD, &cases, |run, _| {
        let applied: Vec<usize> = (0..3).filter(|&t| run.applied(t, 1)).collect();
        assert_eq!(applied.len(), 2, "two failures reach the threshold: {run:?}");
        let left_out = (0..3).find(|t| !applied.contains(t)).unwrap();
        let case = if run.admitted(left_out, 0).is_none() {
            assert_eq!(run.ret(left_out, 1), Ret::NoTicket);
            "rejected"
        } else {
            assert_eq!(run.recorded(left_out, 1), Some(Recorded::Stale), "{run:?}");
            "stale"
        };
        let (phase, count, epoch, stamp) = fields(run.last);
        assert_eq!((phase, count, epoch), (State::Open, 0, 1), "{run:?}");
        assert!(applied.iter().any(|&t| stamp == 10 * (t as u64 + 1) + 1), "stamp of a non-tripping thread: {run:?}");
        format!("thread {left_out} {case}")
    });
}

// ---------------------------------------------------------------------------
// 2. Concurrent acquires after the open timeout.
// ---------------------------------------------------------------------------

/// Opened at 0 (epoch 1); its timeout ends at 100.
fn open_at_zero(breaker: &CoreBreaker) -> Vec<Ticket> {
    breaker.trip_at(at(0));
    vec![]
}

const THREE_ACQUIRES_AFTER_TIMEOUT: &[&[Op]] = &[&[Op::Acquire(100)], &[Op::Acquire(101)], &[Op::Acquire(102)]];

static PROBE_START_MAX_1: Scenario =
    Scenario { config: config(5, 1), policy: GO_RULES, setup: open_at_zero, threads: THREE_ACQUIRES_AFTER_TIMEOUT };

static PROBE_START_MAX_2: Scenario =
    Scenario { config: config(5, 2), policy: GO_RULES, setup: open_at_zero, threads: THREE_ACQUIRES_AFTER_TIMEOUT };

/// The verdict of both probe-start models: exactly one thread moves the
/// breaker to half-open, exactly `max` probes are admitted, all in the new
/// generation.
fn probes_start_once(run: &Run, breaker: &CoreBreaker, max: usize) -> String {
    let admitted: Vec<(usize, Ticket)> = (0..3).filter_map(|t| run.admitted(t, 0).map(|ticket| (t, ticket))).collect();
    assert_eq!(admitted.len(), max, "admitted probes: {run:?}");
    assert!(admitted.iter().all(|&(_, ticket)| ticket == admitted[0].1), "probes of different generations: {run:?}");
    let (phase, count, epoch, stamp) = fields(run.last);
    assert_eq!((phase, count as usize, epoch), (State::HalfOpen, max, 2), "{run:?}");
    let starter = (stamp - 100) as usize;
    assert!(admitted.iter().any(|&(t, _)| t == starter), "half-open stamped by a rejected thread: {run:?}");
    // The admitted probes belong to the word that is there now.
    assert_eq!(breaker.record_at(admitted[0].1, Outcome::Success, at(110)), Recorded::Applied);
    assert_eq!(fields(breaker.snapshot()), (State::Closed, 0, 3, 110));
    let admitted: Vec<usize> = admitted.iter().map(|&(t, _)| t).collect();
    format!("thread {starter} starts, {admitted:?} admitted")
}

/// Three acquires race an open breaker whose timeout has passed, with one
/// probe allowed.
///
/// Invariant: exactly one thread moves it to half-open (epoch exactly +1,
/// stamped with that thread's time), exactly one probe is admitted and the
/// others are rejected; the probe's result is applied.
///
/// Backs **total order**: every thread computes the same open -> half-open
/// transition from the same word, and only one CAS succeeds against it.
#[test]
fn acquires_after_the_timeout_start_probing_once_max_1() {
    let cases = ["thread 0 starts, [0] admitted", "thread 1 starts, [1] admitted", "thread 2 starts, [2] admitted"];
    explore(&PROBE_START_MAX_1, &cases, |run, breaker| probes_start_once(run, breaker, 1));
}

/// As the `max_1` model, with two probes allowed: one thread moves the breaker
/// to half-open, one more is admitted into the same generation (count 2), the
/// third is rejected.
///
/// Backs **total order** (one transition) and **no lost update** (the second
/// admission's increment is never lost, which would let the third in).
#[test]
fn acquires_after_the_timeout_start_probing_once_max_2() {
    let cases = [
        "thread 0 starts, [0, 1] admitted",
        "thread 0 starts, [0, 2] admitted",
        "thread 1 starts, [0, 1] admitted",
        "thread 1 starts, [1, 2] admitted",
        "thread 2 starts, [0, 2] admitted",
        "thread 2 starts, [1, 2] admitted",
    ];
    explore(&PROBE_START_MAX_2, &cases, |run, breaker| probes_start_once(run, breaker, 2));
}

// ---------------------------------------------------------------------------
// 3. A probe's success racing another probe's failure.
// ---------------------------------------------------------------------------

/// Half-open since 100 (epoch 2) with both of two probes in flight.
fn two_probes_in_flight(breaker: &CoreBreaker) -> Vec<Ticket> {
    breaker.trip_at(at(0));
    let first = breaker.acquire_at(at(100)).unwrap();
    let second = breaker.acquire_at(at(100)).unwrap();
    vec![first, second]
}

static PROBES_DISAGREE: Scenario = Scenario {
    config: config(5, 2),
    policy: GO_RULES,
    setup: two_probes_in_flight,
    threads: &[
        &[Op::Record(Tk::Setup(0), Outcome::Success, 110)],
        &[Op::Record(Tk::Setup(1), Outcome::Failure, 120)],
        &[Op::Acquire(115)],
    ],
};

/// Two probes of one half-open generation (`half_open_max` 2) report a success
/// and a failure at once, while a third thread asks to be let in.
///
/// Invariant: exactly one result is applied and the other is stale; the final
/// state is closed (stamped 110) if the success won or open (stamped 120) if
/// the failure did, count 0, epoch exactly +1. The third thread is admitted
/// only into the closed breaker (never into the full half-open one).
///
/// Backs **total order**: both results compute a transition from the same
/// half-open word; only the first CAS succeeds, and the other, re-run on the
/// new word, finds its ticket stale.
#[test]
fn probe_success_races_probe_failure() {
    let cases = ["success wins, acquire admitted", "success wins, acquire rejected", "failure wins"];
    explore(&PROBES_DISAGREE, &cases, |run, _| {
        let (success, failure) = (run.recorded(0, 0).unwrap(), run.recorded(1, 0).unwrap());
        let (expected, case) = match (success, failure) {
            (Recorded::Applied, Recorded::Stale) => ((State::Closed, 0, 3, 110), "success wins"),
            (Recorded::Stale, Recorded::Applied) => ((State::Open, 0, 3, 120), "failure wins"),
            other => panic!("exactly one probe result must apply, got {other:?}: {run:?}"),
        };
        assert_eq!(fields(run.last), expected, "{run:?}");
        match (case, run.admitted(2, 0)) {
            ("failure wins", Some(_)) => panic!("admitted into a full half-open or an open breaker: {run:?}"),
            ("failure wins", None) => case.to_string(),
            (_, Some(_)) => format!("{case}, acquire admitted"),
            (_, None) => format!("{case}, acquire rejected"),
        }
    });
}

// ---------------------------------------------------------------------------
// 4. Stale results racing transitions.
// ---------------------------------------------------------------------------

/// A closed generation at 5 (epoch 1), a ticket of it, then a trip and a reset
/// within the same millisecond: closed again at 5 (epoch 3), which differs
/// from the old generation in the epoch alone. A current ticket, and a streak
/// of 1 (threshold 2).
fn old_closed_ticket_same_stamp(breaker: &CoreBreaker) -> Vec<Ticket> {
    breaker.reset_at(at(5));
    let old = breaker.acquire_at(at(5)).unwrap();
    breaker.trip_at(at(5));
    breaker.reset_at(at(5));
    let current = breaker.acquire_at(at(5)).unwrap();
    assert_eq!(breaker.record_at(current, Outcome::Failure, at(5)), Recorded::Applied);
    vec![old, current]
}

static STALE_VS_OPENING: Scenario = Scenario {
    config: config(2, 1),
    policy: GO_RULES,
    setup: old_closed_ticket_same_stamp,
    threads: &[
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 6)],
        &[Op::Record(Tk::Setup(0), Outcome::Success, 7)],
        &[Op::Record(Tk::Setup(1), Outcome::Failure, 8)],
    ],
};

/// Results of a ticket from an older closed generation (same phase and stamp,
/// only the epoch differs) race a current failure that opens the breaker.
///
/// Invariant: the old results are stale however they interleave with the
/// opening, before or after it (the failure would open the breaker a second
/// time, the success would reset the streak the opening failure needs); the
/// current failure is applied and the final word is the one it alone makes:
/// open at 8, epoch exactly +1.
///
/// Backs **total order** and **no lost update**: a stale result's CAS never
/// happens (its step leaves the word unchanged), and the current failure's
/// CAS, retried if need be, applies against the latest word.
#[test]
fn stale_results_race_an_opening_failure() {
    explore(&STALE_VS_OPENING, &["stale results change nothing"], |run, _| {
        assert_eq!(run.recorded(0, 0), Some(Recorded::Stale), "{run:?}");
        assert_eq!(run.recorded(1, 0), Some(Recorded::Stale), "{run:?}");
        assert_eq!(run.recorded(2, 0), Some(Recorded::Applied), "{run:?}");
        assert_eq!(fields(run.last), (State::Open, 0, 4, 8), "{run:?}");
        "stale results change nothing".to_string()
    });
}

/// A probe of a half-open generation (100, epoch 2), then a reset at 110
/// (epoch 3) and a current ticket of the closed generation.
fn old_probe_then_reset(breaker: &CoreBreaker) -> Vec<Ticket> {
    breaker.trip_at(at(0));
    let old = breaker.acquire_at(at(100)).unwrap();
    breaker.reset_at(at(110));
    let current = breaker.acquire_at(at(110)).unwrap();
    vec![old, current]
}

static STALE_VS_TRIP: Scenario = Scenario {
    config: config(2, 2),
    policy: GO_RULES,
    setup: old_probe_then_reset,
    threads: &[
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 120)],
        &[Op::Trip(130)],
        &[Op::Record(Tk::Setup(1), Outcome::Failure, 140)],
    ],
};

/// A late probe failure from before a reset races a `trip` and a current
/// failure.
///
/// Invariant: the old probe's failure is stale in every order (before the
/// trip the word is the reset's closed one, after it the trip's open one);
/// the final word is the trip's: open at 130, epoch exactly +1, count 0,
/// whether or not the current failure counted before it.
///
/// Backs **total order** and **no lost update**: the trip's unconditional
/// transition is a CAS from whatever word is latest, so a streak counted just
/// before it is replaced, never resurrected.
#[test]
fn stale_probe_result_races_trip() {
    let cases = ["current failure counted before the trip", "current failure stale after the trip"];
    explore(&STALE_VS_TRIP, &cases, |run, _| {
        assert_eq!(run.recorded(0, 0), Some(Recorded::Stale), "{run:?}");
        assert_eq!(fields(run.last), (State::Open, 0, 4, 130), "{run:?}");
        match run.recorded(2, 0).unwrap() {
            Recorded::Applied => "current failure counted before the trip",
            Recorded::Stale => "current failure stale after the trip",
        }
        .to_string()
    });
}

// ---------------------------------------------------------------------------
// 5. A success resetting the streak racing failures.
// ---------------------------------------------------------------------------

static SUCCESS_VS_FAILURES: Scenario = Scenario {
    config: config(4, 1),
    policy: GO_RULES,
    setup: closed_streak_of_two,
    threads: &[
        &[Op::Record(Tk::Setup(0), Outcome::Success, 10)],
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 20)],
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 30)],
    ],
};

/// A success races two failures on a closed breaker with a streak of 2 and
/// threshold 4.
///
/// Invariant: the final word is one a sequential order gives: success first
/// (closed, count 2), success between the failures (closed, count 1), or
/// success last (the failures reach the threshold and open the breaker at the
/// second failure's time; the success is then stale). Both failures always
/// apply.
///
/// Backs **no lost update**: the reset to zero and the increments are CASes
/// from the word each read, so neither overwrites the other (a lost reset
/// would leave count 3, a lost increment count 0 or 1 in the wrong order).
#[test]
fn success_races_failures() {
    let cases = [
        "success first: count 2",
        "success between: count 1",
        "success last: opened at 20",
        "success last: opened at 30",
    ];
    explore(&SUCCESS_VS_FAILURES, &cases, |run, _| {
        assert!(run.applied(1, 0) && run.applied(2, 0), "failures always count: {run:?}");
        let case = match fields(run.last) {
            (State::Closed, 2, 0, _) => "success first: count 2",
            (State::Closed, 1, 0, _) => "success between: count 1",
            (State::Open, 0, 1, 20) => "success last: opened at 20",
            (State::Open, 0, 1, 30) => "success last: opened at 30",
            other => panic!("no sequential order ends in {other:?}: {run:?}"),
        };
        let expected = if run.last.phase() == State::Open { Recorded::Stale } else { Recorded::Applied };
        assert_eq!(run.recorded(0, 0), Some(expected), "{run:?}");
        case.to_string()
    });
}

/// A closed breaker with no streak (threshold 3) and a ticket of it.
fn closed_no_streak(breaker: &CoreBreaker) -> Vec<Ticket> {
    vec![breaker.acquire_at(at(0)).unwrap()]
}

static FAST_SUCCESS_VS_FAILURE: Scenario = Scenario {
    config: config(3, 1),
    policy: GO_RULES,
    setup: closed_no_streak,
    threads: &[&[Op::Record(Tk::Setup(0), Outcome::Success, 10)], &[Op::Record(Tk::Setup(0), Outcome::Failure, 20)]],
};

/// A success on a closed breaker with no streak (the load-only fast path: no
/// write) races a failure.
///
/// Invariant: the final count is 0 (failure, then success resets it) or 1
/// (success saw no streak, then the failure counts); both apply, the epoch
/// never moves.
///
/// Backs **load linearises**: a success that loaded count 0 and wrote
/// nothing is explained as happening at its load, before the failure.
#[test]
fn fast_path_success_races_failure() {
    explore(&FAST_SUCCESS_VS_FAILURE, &["failure first: count 0", "success first: count 1"], |run, _| {
        assert!(run.applied(0, 0) && run.applied(1, 0), "{run:?}");
        match fields(run.last) {
            (State::Closed, 0, 0, 0) => "failure first: count 0",
            (State::Closed, 1, 0, 0) => "success first: count 1",
            other => panic!("no sequential order ends in {other:?}: {run:?}"),
        }
        .to_string()
    });
}

// ---------------------------------------------------------------------------
// 6. An ignored probe racing new acquires.
// ---------------------------------------------------------------------------

static IGNORED_VS_ACQUIRES: Scenario = Scenario {
    config: config(5, 2),
    policy: GO_RULES,
    setup: two_probes_in_flight,
    threads: &[&[Op::Record(Tk::Setup(0), Outcome::Ignored, 110)], &[Op::Acquire(120)], &[Op::Acquire(130)]],
};

/// A full half-open breaker (2 of 2 probes in flight): one probe reports
/// `Ignored`, freeing its slot, while two threads try to acquire.
///
/// Invariant: the slot is freed exactly once and reused at most once: at most
/// one of the acquires is admitted (and only if it came after the free), the
/// count never exceeds `half_open_max`, and the final count is 2 - 1 + the
/// admitted number; the generation never changes (epoch 2, stamp 100).
///
/// Backs **no lost update** (the decrement and the increment compose) and
/// **total order** (the two acquires cannot both take the one free slot from
/// the same word).
#[test]
fn ignored_probe_races_acquires() {
    let cases = ["no acquire admitted", "thread 1 takes the slot", "thread 2 takes the slot"];
    explore(&IGNORED_VS_ACQUIRES, &cases, |run, _| {
        assert!(run.applied(0, 0), "{run:?}");
        let admitted: Vec<usize> = (1..3).filter(|&t| run.admitted(t, 0).is_some()).collect();
        assert_eq!(fields(run.last), (State::HalfOpen, 1 + admitted.len() as u32, 2, 100), "{run:?}");
        match admitted[..] {
            [] => "no acquire admitted".to_string(),
            [t] => format!("thread {t} takes the slot"),
            _ => panic!("one freed slot admitted {admitted:?}: {run:?}"),
        }
    });
}

// ---------------------------------------------------------------------------
// 7. Hung-probe recovery racing the hung probe's late result.
// ---------------------------------------------------------------------------

/// Half-open since 100 (epoch 2) with its one probe in flight.
fn one_probe_in_flight(breaker: &CoreBreaker) -> Vec<Ticket> {
    breaker.trip_at(at(0));
    vec![breaker.acquire_at(at(100)).unwrap()]
}

static RECOVERY_VS_LATE_FAILURE: Scenario = Scenario {
    config: config(5, 1),
    policy: GO_RULES,
    setup: one_probe_in_flight,
    threads: &[&[Op::Acquire(200)], &[Op::Record(Tk::Setup(0), Outcome::Failure, 150)]],
};

static RECOVERY_VS_LATE_SUCCESS: Scenario = Scenario {
    config: config(5, 1),
    policy: GO_RULES,
    setup: one_probe_in_flight,
    threads: &[&[Op::Acquire(200)], &[Op::Record(Tk::Setup(0), Outcome::Success, 150)]],
};

static RECOVERY_VS_LATE_IGNORED: Scenario = Scenario {
    config: config(5, 1),
    policy: GO_RULES,
    setup: one_probe_in_flight,
    threads: &[&[Op::Acquire(200)], &[Op::Record(Tk::Setup(0), Outcome::Ignored, 150)]],
};

/// The verdict of the three recovery models: the late result is stale exactly
/// when the recovery came first, and the final word is what the order gives.
fn recovery_or_late_result(
    run: &Run,
    breaker: &CoreBreaker,
    late_applied: (State, u32, u8, u64),
    admits_after: bool,
) -> String {
    let probe = run.admitted(0, 0);
    let case = match run.recorded(1, 0).unwrap() {
        Recorded::Stale => {
            // Recovery first: a fresh generation with one probe, and it is the
            // new probe's result that counts.
            assert!(probe.is_some(), "recovery must admit: {run:?}");
            assert_eq!(fields(run.last), (State::HalfOpen, 1, 3, 200), "{run:?}");
            "recovery first"
        }
        Recorded::Applied => {
            assert_eq!(fields(run.last), late_applied, "{run:?}");
            assert_eq!(probe.is_some(), admits_after, "{run:?}");
            "late result first"
        }
    };
    // Whatever the order, an admitted ticket belongs to the word left behind.
    if let Some(probe) = probe {
        assert_eq!(breaker.record_at(probe, Outcome::Ignored, at(210)), Recorded::Applied, "{run:?}");
    }
    case.to_string()
}

const RECOVERY_CASES: &[&str] = &["recovery first", "late result first"];

/// A half-open breaker whose one probe hung for a whole timeout: a new
/// acquire (recovery: fresh half-open generation at 200) races the hung
/// probe's late failure (at 150).
///
/// Invariant: if the recovery came first, the late failure is stale and the
/// breaker is half-open at 200, epoch +1, with the new probe's ticket current;
/// if the failure came first, it is applied (open at 150, epoch +1) and the
/// acquire is rejected (50 ms into the new timeout).
///
/// Backs **total order**: recovery and result both transition from the same
/// half-open word, so exactly one of them does.
#[test]
fn hung_probe_recovery_races_its_late_failure() {
    explore(&RECOVERY_VS_LATE_FAILURE, RECOVERY_CASES, |run, breaker| {
        recovery_or_late_result(run, breaker, (State::Open, 0, 3, 150), false)
    });
}

/// As the late-failure model, with a late success: if it came first the
/// breaker closes at 150 (epoch +1) and the acquire is admitted in the closed
/// breaker.
///
/// Backs **total order**.
#[test]
fn hung_probe_recovery_races_its_late_success() {
    explore(&RECOVERY_VS_LATE_SUCCESS, RECOVERY_CASES, |run, breaker| {
        recovery_or_late_result(run, breaker, (State::Closed, 0, 3, 150), true)
    });
}

/// As the late-failure model, with a late `Ignored`: if it came first it frees
/// the slot (count 0, same generation) and the acquire takes it without a new
/// epoch (half-open at 100, epoch 2, count 1).
///
/// Backs **total order** and **no lost update** (free then take composes).
#[test]
fn hung_probe_recovery_races_its_late_ignored() {
    explore(&RECOVERY_VS_LATE_IGNORED, RECOVERY_CASES, |run, breaker| {
        recovery_or_late_result(run, breaker, (State::HalfOpen, 1, 2, 100), true)
    });
}

// ---------------------------------------------------------------------------
// 8. trip and reset racing ordinary traffic.
// ---------------------------------------------------------------------------

/// Threshold 2 with a streak of 1.
fn closed_streak_of_one_t2(breaker: &CoreBreaker) -> Vec<Ticket> {
    let ticket = breaker.acquire_at(at(0)).unwrap();
    assert_eq!(breaker.record_at(ticket, Outcome::Failure, at(1)), Recorded::Applied);
    vec![]
}

static TRIP_VS_TRAFFIC: Scenario = Scenario {
    config: config(2, 1),
    policy: GO_RULES,
    setup: closed_streak_of_one_t2,
    threads: &[
        &[Op::Trip(50)],
        &[Op::Acquire(60), Op::Record(Tk::Held, Outcome::Failure, 61)],
        &[Op::Acquire(70), Op::Record(Tk::Held, Outcome::Success, 71)],
    ],
};

/// A `trip` races a failing call and a succeeding call on a closed breaker
/// with a streak of 1 (threshold 2).
///
/// Invariant: the breaker ends open at the trip's time (50), count 0: nothing
/// admitted before the trip is applied after it, and nothing is admitted
/// after it (60 and 70 are within its timeout). The epoch is +2 exactly when
/// the failure opened the breaker before the trip (it was applied with the
/// streak intact), +1 otherwise.
///
/// Backs **total order** and **no lost update** (the trip's CAS replaces the
/// latest word, and a result re-run against the open word is stale), and
/// **load linearises** (the closed admissions are loads).
#[test]
fn trip_races_traffic() {
    let cases = [
        "epoch 2: failure applied, success rejected",
        "epoch 2: failure applied, success stale",
        "epoch 1: failure applied, success applied",
        "epoch 1: failure stale, success applied",
        "epoch 1: failure stale, success stale",
        "epoch 1: failure stale, success rejected",
        "epoch 1: failure rejected, success applied",
        "epoch 1: failure rejected, success stale",
        "epoch 1: failure rejected, success rejected",
    ];
    explore(&TRIP_VS_TRAFFIC, &cases, |run, _| {
        let (phase, count, epoch, stamp) = fields(run.last);
        assert_eq!((phase, count, stamp), (State::Open, 0, 50), "{run:?}");
        let (failure, success) = (run.call_went(1), run.call_went(2));
        // The failure opens the breaker before the trip iff it applied with
        // the streak intact: the success did not reset it first.
        let opened_first = failure == "applied" && success != "applied";
        assert_eq!(epoch, 1 + u8::from(opened_first), "{run:?}");
        format!("epoch {epoch}: failure {failure}, success {success}")
    });
}

/// Threshold 3 with a streak of 2 and a ticket of the closed generation.
static RESET_VS_TRAFFIC: Scenario = Scenario {
    config: config(3, 1),
    policy: GO_RULES,
    setup: closed_streak_of_two,
    threads: &[
        &[Op::Reset(50)],
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 60)],
        &[Op::Acquire(70), Op::Record(Tk::Held, Outcome::Failure, 71)],
    ],
};

/// A `reset` races a failure that would open the breaker and a new call that
/// fails.
///
/// Invariant: the breaker ends closed at the reset's time (50). A failure
/// applied before the reset opens the breaker (the streak is at 2 of 3): at
/// most one can, and it adds one epoch; a failure applied after the reset
/// starts a new streak of 1. So applied failures = (epoch - 1) + count, with
/// epoch 1 or 2 and count 0 or 1.
///
/// Backs **total order** (one opening from the streak word) and **no lost
/// update** (the reset is never overwritten by a failure computed from the
/// word before it).
#[test]
fn reset_races_traffic() {
    let cases = [
        "epoch 1, count 1: old failure stale, new call applied",
        "epoch 1, count 0: old failure stale, new call stale",
        "epoch 2, count 1: old failure applied, new call applied",
        "epoch 2, count 0: old failure applied, new call rejected",
        "epoch 2, count 0: old failure applied, new call stale",
        "epoch 2, count 0: old failure stale, new call applied",
    ];
    explore(&RESET_VS_TRAFFIC, &cases, |run, _| {
        let (phase, count, epoch, stamp) = fields(run.last);
        assert_eq!((phase, stamp), (State::Closed, 50), "{run:?}");
        assert!((1..=2).contains(&epoch) && count <= 1, "{run:?}");
        let applied = [run.applied(1, 0), run.applied(2, 1)].into_iter().filter(|&a| a).count();
        assert_eq!(applied, (epoch - 1) as usize + count as usize, "{run:?}");
        let old = if run.applied(1, 0) { "applied" } else { "stale" };
        format!("epoch {epoch}, count {count}: old failure {old}, new call {}", run.call_went(2))
    });
}

// ---------------------------------------------------------------------------
// More: load-only decisions.
// ---------------------------------------------------------------------------

static STATE_READS_VS_PROBE: Scenario = Scenario {
    config: config(5, 1),
    policy: GO_RULES,
    setup: open_at_zero,
    threads: &[&[Op::Acquire(100), Op::Record(Tk::Held, Outcome::Success, 101)], &[Op::Observe(50), Op::Observe(50)]],
};

/// Two `state_at` reads race a probe that takes an open breaker to half-open
/// and then closes it. The reads pass 50 ms, inside the timeout, so they
/// report the stored phase.
///
/// Invariant: the reads follow the breaker's history open -> half-open ->
/// closed and never go back along it (half-open then open, closed then
/// anything else); the probe is admitted and applied, closing at 101.
///
/// Backs **load linearises**: each read is one relaxed load, linearised at
/// that load, and coherence keeps a thread's later load from seeing an older
/// word than its earlier one.
#[test]
fn state_reads_never_go_back() {
    let cases = [
        "open then open",
        "open then half-open",
        "open then closed",
        "half-open then half-open",
        "half-open then closed",
        "closed then closed",
    ];
    explore(&STATE_READS_VS_PROBE, &cases, |run, _| {
        assert!(run.admitted(0, 0).is_some() && run.applied(0, 1), "{run:?}");
        assert_eq!(fields(run.last), (State::Closed, 0, 3, 101), "{run:?}");
        let rank = |state| match state {
            State::Open => 0,
            State::HalfOpen => 1,
            State::Closed => 2,
        };
        let (first, second) = (run.observed(1, 0), run.observed(1, 1));
        assert!(rank(first) <= rank(second), "a read went back: {run:?}");
        format!("{first} then {second}")
    });
}

/// Threshold 1: a closed breaker and a ticket of it.
static ADMISSION_VS_OPENING: Scenario = Scenario {
    config: config(1, 1),
    policy: GO_RULES,
    setup: closed_no_streak,
    threads: &[
        &[Op::Record(Tk::Setup(0), Outcome::Failure, 10)],
        &[Op::Acquire(20), Op::Record(Tk::Held, Outcome::Success, 21)],
    ],
};

/// A closed admission (one load, no write) and its success race the failure
/// that opens the breaker (threshold 1).
///
/// Invariant: the breaker ends open at 10, epoch +1, whatever the order. An
/// admission that loaded the closed word is explained as before the opening:
/// its success then applies only if it also came before the opening (count
/// stays 0, no write), and is stale otherwise. An acquire after the opening is
/// rejected with 90 ms left of the timeout.
///
/// Backs **load linearises** (the admission and the no-streak success are
/// loads) and **total order** (the opening happens once).
#[test]
fn closed_admission_races_opening() {
    let cases = ["admitted, success applied", "admitted, success stale", "rejected"];
    explore(&ADMISSION_VS_OPENING, &cases, |run, _| {
        assert!(run.applied(0, 0), "{run:?}");
        assert_eq!(fields(run.last), (State::Open, 0, 1, 10), "{run:?}");
        if let Ret::Rejected(rejected) = run.ret(1, 0) {
            assert_eq!(rejected.retry_after(), Some(Duration::from_millis(TIMEOUT_MS - 10)), "{run:?}");
        }
        match run.call_went(1) {
            "rejected" => "rejected".to_string(),
            went => format!("admitted, success {went}"),
        }
    });
}

/// `trip` and `reset` read the clock inside their CAS loop, after loading the
/// word, as `acquire` and `record` do: a trip that loses its CAS to another
/// transition re-reads the clock on the retry, so it never stamps a time older
/// than the transition it lost to (which would shorten that open period).
///
/// One thread trips; the other moves the mock clock 50 ms on and then trips
/// (or resets). Every transition after the clock moved must carry a stamp of
/// at least 50 ms, and the last one is always after it. Backs **total order**
/// for the clock-reading API. This model reads a clock, unlike the others:
/// the mock's own atomics are not loom's, so loom switches threads only at
/// the word's loads and CASes, which is where the race is.
#[test]
fn a_retried_trip_or_reset_never_stamps_an_older_time() {
    for reset_second in [false, true] {
        let stamps = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&stamps);
        loom::model::Builder::new().check(move || {
            let (clock, mock) = Clock::mock();
            let breaker = Arc::new(CoreBreaker::with_clock(config(1, 1), clock).expect("a valid config"));
            // The mock clock is invisible to loom, which reorders threads only
            // around conflicting accesses to its own atomics: this flag, read
            // just before the trip and written just before the clock moves,
            // makes loom also run the trip's start before the clock moves.
            let clock_moves = Arc::new(AtomicBool::new(false));
            let first = {
                let (breaker, clock_moves) = (Arc::clone(&breaker), Arc::clone(&clock_moves));
                loom::thread::spawn(move || {
                    let _ = clock_moves.load(Ordering::Relaxed);
                    breaker.trip();
                })
            };
            clock_moves.store(true, Ordering::Relaxed);
            mock.increment(Duration::from_millis(50));
            if reset_second {
                breaker.reset();
            } else {
                breaker.trip();
            }
            first.join().unwrap();
            let last = breaker.snapshot();
            assert_eq!(last.epoch(), 2, "two transitions");
            assert_eq!(transitioned_at(last), 50, "the last transition happened after the clock moved: {last:?}");
            sink.lock().unwrap().push(last.phase());
        });
        if reset_second {
            // Both orders of the two transitions happened.
            let phases = stamps.lock().unwrap();
            assert!(phases.contains(&State::Open) && phases.contains(&State::Closed), "{phases:?}");
        }
    }
}

/// Three threads make transitions at once (a trip, a reset, a trip), each
/// with its listener report after its CAS. Every transition gets a distinct
/// sequence number from 1 to 3, numbered in the order the CASes happened
/// (the reported ones, sorted by number, chain from closed to the final
/// state), whatever order the reports come in, and each change of state is
/// reported exactly once. Some execution must report out of number order, so
/// the model does reach the race it is about.
///
/// Backs the numbering argument of `StateCell::transition_from` (a CAS, then
/// the count's `fetch_max`; the count read between the load and the CAS).
/// Deliberate break it catches: numbering a transition `published + 1`,
/// ignoring the epoch's lead over the published count, gives two transitions
/// the same number when the second CAS comes before the first publish.
#[test]
fn concurrent_transitions_are_numbered_in_cas_order() {
    let out_of_order = std::sync::Arc::new(Mutex::new(0usize));
    let tally = std::sync::Arc::clone(&out_of_order);
    loom::model::Builder::new().check(move || {
        let events = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&events);
        let breaker = CoreBreaker::builder(config(1, 1))
            .clock(Clock::mock().0)
            .on_transition(move |t| sink.lock().unwrap().push((t.sequence(), t.from(), t.to())))
            .build()
            .expect("a valid config");
        let breaker = Arc::new(breaker);
        let threads: Vec<_> = [(true, 10), (false, 20)]
            .into_iter()
            .map(|(trip, ms)| {
                let breaker = Arc::clone(&breaker);
                loom::thread::spawn(move || {
                    if trip {
                        breaker.trip_at(at(ms));
                    } else {
                        breaker.reset_at(at(ms));
                    }
                })
            })
            .collect();
        breaker.trip_at(at(30));
        for thread in threads {
            thread.join().unwrap();
        }
        let reported = events.lock().unwrap().clone();
        let mut sorted = reported.clone();
        sorted.sort_by_key(|&(sequence, ..)| sequence);
        if sorted != reported {
            *tally.lock().unwrap() += 1;
        }
        assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0), "a number was given twice: {reported:?}");
        assert!(sorted.iter().all(|&(sequence, ..)| (1..=3).contains(&sequence)), "{reported:?}");
        let mut state = State::Closed;
        for &(sequence, from, to) in &sorted {
            assert_eq!(from, state, "#{sequence} does not follow the change before it: {reported:?}");
            state = to;
        }
        let last = breaker.snapshot();
        assert_eq!((state, last.epoch()), (last.phase(), 3), "{reported:?}");
        assert_eq!(breaker.opens(), sorted.iter().filter(|&&(_, _, to)| to == State::Open).count() as u64);
    });
    assert!(*out_of_order.lock().unwrap() > 0, "no execution reported out of number order");
}

// ---------------------------------------------------------------------------
// Policies in the word: a success threshold, backoff, rounds of probing.
// ---------------------------------------------------------------------------

/// Two probe successes close; a backoff doubling from the timeout (100 ms)
/// to 400 ms.
const TWO_SUCCESSES_BACKOFF: Policy =
    Policy { success_threshold: 2, backoff: Backoff::exponential(2.0, Duration::from_millis(400)) };

/// The count of a half-open word with two probe slots and a success
/// threshold of 2, unpacked: (in flight, successes, streak).
fn probes(word: StateWord) -> (u32, u32, u32) {
    let count = word.count();
    (count & 0b11, (count >> 2) & 1, count >> 3)
}

static SUCCESS_BELOW_THRESHOLD_VS_FAILURE: Scenario = Scenario {
    config: config(5, 2),
    policy: TWO_SUCCESSES_BACKOFF,
    setup: two_probes_in_flight,
    threads: &[
        &[Op::Record(Tk::Setup(0), Outcome::Success, 110)],
        &[Op::Record(Tk::Setup(1), Outcome::Failure, 120)],
        &[Op::Acquire(115)],
    ],
};

/// With a success threshold of 2, one probe's success races another's
/// failure (both of one round, two slots), while a third thread asks in.
///
/// Invariant: the failure always applies and reopens (epoch exactly +1, the
/// second open of the streak: 200 ms from 120); the success applies only if
/// it came first, and then it does not close but frees its slot, so the
/// third thread can be admitted into the same round; it is never admitted
/// otherwise. The breaker never closes.
///
/// Backs **total order** for the half-open count's three fields: the
/// success's count-only CAS and the failure's reopening CAS start from the
/// same word, and the loser re-runs on the winner's word. Deliberate break it
/// catches: a success below the threshold that keeps its slot (`in_flight`
/// not decremented): the third thread is then never admitted, and the case
/// "success first, third admitted" is never reached.
#[test]
fn a_success_below_the_threshold_races_a_failure() {
    let cases = ["success first, third admitted", "success first, third rejected", "failure first"];
    explore(&SUCCESS_BELOW_THRESHOLD_VS_FAILURE, &cases, |run, _| {
        assert!(run.applied(1, 0), "the failure reopens whatever the success did: {run:?}");
        let last = run.last;
        assert_eq!((last.phase(), last.epoch(), last.count(), last.stamp()), (State::Open, 3, 2, 320), "{run:?}");
        match (run.applied(0, 0), run.admitted(2, 0)) {
            (true, Some(_)) => "success first, third admitted".to_string(),
            (true, None) => "success first, third rejected".to_string(),
            (false, None) => "failure first".to_string(),
            (false, Some(_)) => panic!("admitted into a full round or an open breaker: {run:?}"),
        }
    });
}

static TWO_REOPENS: Scenario = Scenario {
    config: config(5, 2),
    policy: TWO_SUCCESSES_BACKOFF,
    setup: two_probes_in_flight,
    threads: &[&[Op::Record(Tk::Setup(0), Outcome::Failure, 110)], &[Op::Record(Tk::Setup(1), Outcome::Failure, 120)]],
};

/// Both probes of a round (the first open of a streak, so its opens last
/// 100, then 200, then 400 ms) fail at once: two threads reopen the breaker
/// at the same time.
///
/// Invariant: exactly one failure applies; the streak advances once, to 2
/// (the next open lasts 200 ms from the time of the failure that applied),
/// and the epoch by exactly one.
///
/// Backs **total order** for the streak: it lives in the word, so it moves
/// with the transition's one CAS. Deliberate break it catches: storing the
/// new word with a plain `swap` instead of the CAS in
/// `StateCell::transition_from` (both failures then apply, which no
/// sequential order explains).
#[test]
fn two_reopens_at_once_advance_the_streak_once() {
    let cases = ["first failure applied", "second failure applied"];
    explore(&TWO_REOPENS, &cases, |run, _| {
        let (case, at) = match (run.applied(0, 0), run.applied(1, 0)) {
            (true, false) => ("first failure applied", 110),
            (false, true) => ("second failure applied", 120),
            other => panic!("exactly one reopening must apply, got {other:?}: {run:?}"),
        };
        let last = run.last;
        assert_eq!((last.phase(), last.epoch(), last.count()), (State::Open, 3, 2), "streak 2: {run:?}");
        assert_eq!(last.stamp(), at + 200, "open for the second step: {run:?}");
        case.to_string()
    });
}

/// Success threshold 2, two slots: a round started at 100 whose first probe
/// succeeded (one success so far) and whose two slots are held again, by a
/// probe of the first pair and a later one. Tickets: the held probe of the
/// first pair (0).
fn a_round_with_one_success_and_full(breaker: &CoreBreaker) -> Vec<Ticket> {
    breaker.trip_at(at(0));
    let first = breaker.acquire_at(at(100)).unwrap();
    let second = breaker.acquire_at(at(100)).unwrap();
    assert_eq!(breaker.record_at(first, Outcome::Success, at(110)), Recorded::Applied);
    let _third = breaker.acquire_at(at(110)).unwrap();
    assert_eq!(probes(breaker.snapshot()), (2, 1, 1));
    vec![second]
}

static LATE_PROBE_OF_AN_OLD_ROUND: Scenario = Scenario {
    config: config(5, 2),
    policy: TWO_SUCCESSES_BACKOFF,
    setup: a_round_with_one_success_and_full,
    threads: &[
        &[Op::Acquire(200), Op::Record(Tk::Held, Outcome::Success, 215)],
        &[Op::Record(Tk::Setup(0), Outcome::Success, 212)],
    ],
};

/// A probe of an old round reports its success while a new round replaces
/// the old one (every slot held for the lease, 100 ms, the backoff's first
/// step) and the new round's first probe succeeds.
///
/// Invariant: if the late success came first, it was the old round's second
/// success and closed the breaker (the other thread is then admitted into
/// the closed breaker); if the round was replaced first, the late success is
/// stale and the new round's single success leaves it half-open with one
/// success of two.
///
/// Backs the rule that successes count within one round only. Deliberate
/// break it catches: a new round that keeps the old round's successes
/// (`start_round` copying them): the new round's first success then closes
/// the breaker, which no sequential order explains.
#[test]
fn a_late_probe_of_an_old_round_does_not_count_in_the_new_one() {
    let cases = ["late success closed the old round", "round replaced, late success stale"];
    explore(&LATE_PROBE_OF_AN_OLD_ROUND, &cases, |run, _| {
        let last = run.last;
        if run.applied(1, 0) {
            assert_eq!(last.phase(), State::Closed, "the old round's second success closes: {run:?}");
            "late success closed the old round".to_string()
        } else {
            assert!(run.applied(0, 1), "the new round's probe is current: {run:?}");
            assert_eq!(last.phase(), State::HalfOpen, "{run:?}");
            assert_eq!((probes(last), last.stamp()), ((0, 1, 1), 200), "one success of two, round from 200: {run:?}");
            "round replaced, late success stale".to_string()
        }
    });
}
