//! The `registry_sequence` target: a keyed [`Registry`] on a mock clock,
//! driven one operation at a time (calls that succeed or fail on up to six
//! keys, trips, time, `evict_idle`, `get`, `remove`, new keys at capacity),
//! each registered key's breaker mirrored in a [`Model`] of its own.
//!
//! Besides the model, the driver keeps per key a tally of the breaker's
//! counts and the registry's idle bookkeeping as `breakerbox::registry`
//! describes it: a breaker's activity is its calls and rejections; a sweep
//! (every `evict_idle`, and the one a new key at capacity runs) notes when
//! it last changed, and the breaker is idle from then; a breaker just made
//! is idle from when it was made. A breaker is at rest when its model's
//! stored phase is `Closed { failures: 0 }` (no failure rate here).
//!
//! After every step: `len()` equals the driver's count and never exceeds
//! the capacity; the registry's keys are the driver's; each breaker's
//! `state()` is its model's `seen(now)` and its `counts()` the tally (a
//! breaker made anew for a key counts from zero). `evict_idle` removes
//! exactly the breakers at rest and idle for `idle_after`; `get` finds
//! exactly the registered keys and makes none; `remove` forgets its key. A
//! new key at capacity within a millisecond of a refusal (the shortest a
//! refusal lasts; sweeps take no time on the mock clock) is refused with
//! [`RegistryError::Full`] without a sweep, so nothing changes, not even the
//! idle bookkeeping. Otherwise it sweeps, and is refused exactly when no
//! registered breaker is at rest (nothing changes but the bookkeeping, and
//! the refusal starts); or it evicts `max(1, capacity / 32)` breakers at
//! rest (all of them, if fewer), each idle at least as long as every breaker
//! at rest it keeps (ties go either way), and is registered.
//!
//! One thread runs every step and `get`'s handle is dropped at once, so no
//! call races an eviction and no breaker is held outside the registry when
//! a sweep runs: the put-back handshake never runs here (the stress tests
//! in `crates/breakerbox/tests/suite/registry.rs` cover it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use breakerbox::quanta::Mock;
use breakerbox::{Config, Counts, Error, Registry, RegistryError};
use breakerbox_model::{Model, Outcome as ModelOutcome, Phase, Seen};

use crate::seen;

/// How many keys the fuzzer picks from: `0..KEYS`.
pub const KEYS: u8 = 6;

/// The registry's settings. The fuzzer draws each in its range; a
/// hand-written input needs `threshold` and `timeout_ms` of at least 1
/// (the model has no defaults) and may go outside the other ranges.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Every breaker's `Config::threshold`: 1 to 4.
    #[arbitrary(with = threshold)]
    pub threshold: u32,
    /// Every breaker's `Config::timeout`, in ms: 1 to 2000.
    #[arbitrary(with = timeout_ms)]
    pub timeout_ms: u64,
    /// `RegistryBuilder::idle_after`, in ms: 0 to 2000.
    #[arbitrary(with = idle_after_ms)]
    pub idle_after_ms: u64,
    /// `RegistryBuilder::capacity`, if any: 0 to 6.
    #[arbitrary(with = capacity)]
    pub capacity: Option<usize>,
}

fn threshold(u: &mut Unstructured<'_>) -> arbitrary::Result<u32> {
    u.int_in_range(1..=4)
}

fn timeout_ms(u: &mut Unstructured<'_>) -> arbitrary::Result<u64> {
    u.int_in_range(1..=2_000)
}

fn idle_after_ms(u: &mut Unstructured<'_>) -> arbitrary::Result<u64> {
    u.int_in_range(0..=2_000)
}

fn capacity(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<usize>> {
    Ok(if u.arbitrary()? { Some(u.int_in_range(0..=6)?) } else { None })
}

fn key(u: &mut Unstructured<'_>) -> arbitrary::Result<u8> {
    u.int_in_range(0..=KEYS - 1)
}

fn advance_ms(u: &mut Unstructured<'_>) -> arbitrary::Result<u64> {
    u.int_in_range(0..=3_000)
}

/// One operation.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `registry.call(&key, ..)` returning `Ok(())` or `Err(())`: registers
    /// the key if it is new (evicting or refused at capacity).
    Call {
        /// The key, below [`KEYS`].
        #[arbitrary(with = key)]
        key: u8,
        /// Whether the call succeeds.
        ok: bool,
    },
    /// `registry.with(&key, |breaker| breaker.trip())`, if the key is
    /// registered (nothing otherwise: a trip would register it).
    Trip(#[arbitrary(with = key)] u8),
    /// Moves the mock clock forward this many ms: 0 to 3000.
    Advance(#[arbitrary(with = advance_ms)] u64),
    /// `registry.evict_idle()`.
    Evict,
    /// `registry.get(&key)`, the handle dropped at once.
    Get(#[arbitrary(with = key)] u8),
    /// `registry.remove(&key)`.
    Remove(#[arbitrary(with = key)] u8),
}

/// The `registry_sequence` target's input.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The registry's settings.
    pub settings: Settings,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// What a run did, for tests to pin that an input reached the paths it was
/// written for; the checks themselves are done by then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Breakers made for a key (a new key, or one evicted or removed before).
    pub made: usize,
    /// Breakers `evict_idle` removed.
    pub evicted_idle: usize,
    /// Breakers evicted to make room for a new key at capacity.
    pub evicted_for_room: usize,
    /// New keys refused with [`RegistryError::Full`] by a sweep that found
    /// nothing at rest.
    pub refused: usize,
    /// New keys refused with [`RegistryError::Full`] without a sweep, within
    /// a refusal.
    pub refused_without_sweep: usize,
    /// Breakers `remove` returned.
    pub removed: usize,
}

/// Runs the `registry_sequence` target's checks on one input, and says
/// what the run did.
///
/// # Panics
///
/// On the first disagreement with the oracle, naming the step and the
/// operation; on a hand-written input with a `threshold` or `timeout_ms`
/// of 0.
pub fn registry_sequence(input: &Input) -> Summary {
    let settings = input.settings;
    assert!(settings.threshold >= 1 && settings.timeout_ms >= 1, "a hand-written input out of range: {settings:?}");
    let config =
        Config { threshold: settings.threshold, timeout: Duration::from_millis(settings.timeout_ms), half_open_max: 1 };
    let (clock, mock) = breakerbox::quanta::Clock::mock();
    let builder = Registry::builder(config).clock(clock).idle_after(Duration::from_millis(settings.idle_after_ms));
    let builder = match settings.capacity {
        Some(capacity) => builder.capacity(capacity),
        None => builder,
    };
    let registry = builder.build().unwrap_or_else(|err| panic!("{settings:?}: {err}"));
    let mut run = Run {
        registry: &registry,
        mock,
        settings,
        now: 0,
        refused_until: 0,
        known: BTreeMap::new(),
        summary: Summary::default(),
    };
    run.check("start", None);
    for (step, op) in input.ops.iter().enumerate() {
        run.step(step, *op);
        run.check(step, Some(*op));
    }
    run.summary
}

/// The driver's view of one registered key.
#[derive(Debug)]
struct Known {
    /// Its breaker's semantics.
    model: Model,
    /// What its breaker's `counts()` should be.
    tally: Counts,
    /// Its activity when a sweep last saw it change (0 when made).
    swept_activity: u64,
    /// When a sweep last saw its activity change, or when it was made (ms).
    idle_since: u64,
}

impl Known {
    fn new(settings: Settings, now: u64) -> Known {
        Known {
            model: Model::new(settings.threshold, 1, settings.timeout_ms),
            tally: Counts::default(),
            swept_activity: 0,
            idle_since: now,
        }
    }

    /// Calls and rejections: what a sweep reads.
    fn activity(&self) -> u64 {
        self.tally.successes + self.tally.failures + self.tally.rejections
    }

    /// Closed with no failure in the streak: forgetting it changes nothing.
    fn at_rest(&self) -> bool {
        self.model.phase() == Phase::Closed { failures: 0 }
    }

    /// Counts the model's changes into open since the last call.
    fn take_opens(&mut self) {
        let changes = self.model.take_changes();
        self.tally.opens += changes.iter().filter(|c| c.from != Seen::Open && c.to == Seen::Open).count() as u64;
    }
}

/// The registry under test and the driver's oracle.
struct Run<'r> {
    registry: &'r Registry<u8>,
    mock: Arc<Mock>,
    settings: Settings,
    /// ms since the start, on the mock clock.
    now: u64,
    /// Until when (ms) a new key at capacity is refused without a sweep; 0
    /// before the first refusal.
    refused_until: u64,
    known: BTreeMap<u8, Known>,
    summary: Summary,
}

impl Run<'_> {
    fn step(&mut self, step: usize, op: Op) {
        let now = self.now;
        let context = move || format!("step {step} {op:?} at {now} ms");
        let context: &dyn Fn() -> String = &context;
        match op {
            Op::Call { key, ok } => {
                let mut made_room = None;
                if !self.known.contains_key(&key) {
                    if let Some(capacity) = self.settings.capacity {
                        if self.known.len() >= capacity && now < self.refused_until {
                            let result = self.registry.call(&key, || Ok::<_, ()>(()));
                            assert_eq!(
                                result,
                                Err(RegistryError::Full { capacity }),
                                "key {key} within a refusal, {}",
                                context()
                            );
                            self.summary.refused_without_sweep += 1;
                            return;
                        }
                        if self.known.len() >= capacity {
                            // The registry sweeps with no idle minimum for
                            // at most a thirty-second of the capacity.
                            let at_rest = self.sweep(0);
                            made_room = Some((capacity, at_rest));
                        }
                    }
                }
                let before: BTreeSet<u8> = self.known.keys().copied().collect();
                let result = self.registry.call(&key, || if ok { Ok(()) } else { Err(()) });
                if let Some((capacity, at_rest)) = made_room {
                    if at_rest.is_empty() {
                        assert_eq!(
                            result,
                            Err(RegistryError::Full { capacity }),
                            "no breaker at rest to evict for key {key}, {}",
                            context()
                        );
                        self.summary.refused += 1;
                        self.refused_until = now + 1;
                        return;
                    }
                    assert!(result.is_ok(), "{result:?}, with a breaker at rest to evict, {}", context());
                    self.made_room(&before, capacity, &at_rest, context);
                }
                let result = result.unwrap_or_else(|err| panic!("{err:?}, {}", context()));
                if !self.known.contains_key(&key) {
                    self.known.insert(key, Known::new(self.settings, now));
                    self.summary.made += 1;
                }
                let known = self.known.get_mut(&key).expect("registered above");
                match known.model.acquire(now) {
                    Ok(ticket) => {
                        let expected = if ok { Ok(()) } else { Err(Error::Inner(())) };
                        assert_eq!(result, expected, "an admitted call on key {key}, {}", context());
                        let outcome = if ok { ModelOutcome::Success } else { ModelOutcome::Failure };
                        known.model.record(ticket, outcome, now);
                        if ok {
                            known.tally.successes += 1;
                        } else {
                            known.tally.failures += 1;
                        }
                    }
                    Err(_) => {
                        assert!(
                            matches!(result, Err(Error::Open(_))),
                            "a call on key {key} the model rejects gave {result:?}, {}",
                            context()
                        );
                        known.tally.rejections += 1;
                    }
                }
                known.take_opens();
            }
            Op::Trip(key) => {
                if let Some(known) = self.known.get_mut(&key) {
                    let tripped = self.registry.with(&key, |breaker| breaker.trip());
                    assert_eq!(tripped, Ok(()), "a trip of registered key {key}, {}", context());
                    known.model.trip(now);
                    known.take_opens();
                }
            }
            Op::Advance(ms) => {
                self.now += ms;
                self.mock.increment(Duration::from_millis(ms));
            }
            Op::Evict => {
                let idle = self.sweep(self.settings.idle_after_ms);
                let evicted = self.registry.evict_idle();
                let expected: Vec<u8> = idle.iter().map(|&(key, _)| key).collect();
                assert_eq!(evicted, expected.len(), "evict_idle, expected keys {expected:?} to go, {}", context());
                for key in expected {
                    self.known.remove(&key);
                }
                self.summary.evicted_idle += evicted;
            }
            Op::Get(key) => {
                let handle = self.registry.get(&key);
                match (self.known.get(&key), &handle) {
                    (Some(known), Some(breaker)) => assert_eq!(
                        seen(breaker.state()),
                        known.model.seen(now),
                        "get of key {key} ({:?}), {}",
                        known.model,
                        context()
                    ),
                    (None, None) => {}
                    (known, _) => {
                        panic!("get of key {key} gave {handle:?}, registered: {}, {}", known.is_some(), context())
                    }
                }
                drop(handle);
            }
            Op::Remove(key) => {
                let removed = self.registry.remove(&key);
                match (self.known.remove(&key), &removed) {
                    (Some(known), Some(breaker)) => {
                        assert_eq!(
                            seen(breaker.state()),
                            known.model.seen(now),
                            "the removed breaker of key {key} ({:?}), {}",
                            known.model,
                            context()
                        );
                        assert_eq!(breaker.counts(), known.tally, "the removed breaker of key {key}, {}", context());
                        self.summary.removed += 1;
                    }
                    (None, None) => {}
                    (known, _) => {
                        panic!("remove of key {key} gave {removed:?}, registered: {}, {}", known.is_some(), context())
                    }
                }
            }
        }
    }

    /// What a sweep does to the idle bookkeeping of every key, and the keys
    /// at rest and idle at least `idle_after` ms, with how long each has
    /// been idle.
    fn sweep(&mut self, idle_after: u64) -> Vec<(u8, u64)> {
        let now = self.now;
        let mut candidates = Vec::new();
        for (&key, known) in &mut self.known {
            let activity = known.activity();
            if activity != known.swept_activity {
                known.swept_activity = activity;
                known.idle_since = now;
            }
            let idle = now - known.idle_since;
            if known.at_rest() && idle >= idle_after {
                candidates.push((key, idle));
            }
        }
        candidates
    }

    /// A new key at `capacity` was registered after the sweep found
    /// `at_rest` (not empty) among the keys `before`: checks which went and
    /// forgets them.
    fn made_room(
        &mut self,
        before: &BTreeSet<u8>,
        capacity: usize,
        at_rest: &[(u8, u64)],
        context: &dyn Fn() -> String,
    ) {
        let mut present = BTreeSet::new();
        self.registry.for_each(|&key, _| {
            present.insert(key);
        });
        let gone: Vec<u8> = before.difference(&present).copied().collect();
        let most = (capacity / 32).max(1);
        assert_eq!(
            gone.len(),
            most.min(at_rest.len()),
            "a new key at capacity {capacity} evicted {gone:?}, at rest (key, idle ms): {at_rest:?}, {}",
            context()
        );
        let idle_of = |key: u8| at_rest.iter().find(|&&(k, _)| k == key).map(|&(_, idle)| idle);
        let mut least_gone = u64::MAX;
        for &key in &gone {
            let idle = idle_of(key).unwrap_or_else(|| {
                panic!(
                    "a new key at capacity evicted key {key}, not at rest ({:?}); at rest: {at_rest:?}, {}",
                    self.known[&key].model,
                    context()
                )
            });
            least_gone = least_gone.min(idle);
        }
        for &(key, idle) in at_rest {
            assert!(
                gone.contains(&key) || idle <= least_gone,
                "a new key at capacity evicted {gone:?} and kept key {key}, idle longer ({idle} ms); at rest: \
                 {at_rest:?}, {}",
                context()
            );
        }
        self.summary.evicted_for_room += gone.len();
        for key in gone {
            self.known.remove(&key);
        }
    }

    /// Everything that must hold between steps.
    fn check(&self, step: impl core::fmt::Display, op: Option<Op>) {
        let now = self.now;
        let len = self.registry.len();
        assert_eq!(len, self.known.len(), "len after step {step} {op:?} at {now} ms, oracle {:?}", self.known);
        if let Some(capacity) = self.settings.capacity {
            assert!(len <= capacity, "{len} breakers, capacity {capacity}, after step {step} {op:?}");
        }
        let mut rows = self.registry.health();
        rows.sort_unstable_by_key(|row| row.key);
        let keys: Vec<u8> = rows.iter().map(|row| row.key).collect();
        let expected: Vec<u8> = self.known.keys().copied().collect();
        assert_eq!(keys, expected, "the registered keys after step {step} {op:?} at {now} ms");
        for row in rows {
            let known = &self.known[&row.key];
            assert_eq!(
                seen(row.state),
                known.model.seen(now),
                "state of key {} after step {step} {op:?} at {now} ms ({:?})",
                row.key,
                known.model
            );
            assert_eq!(
                row.counts, known.tally,
                "counts of key {} after step {step} {op:?} at {now} ms ({:?})",
                row.key, known.model
            );
        }
    }
}
