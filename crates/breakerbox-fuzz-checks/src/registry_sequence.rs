//! The `registry_sequence` target: a keyed [`Registry`] on a mock clock,
//! driven one operation at a time (calls that succeed or fail on up to six
//! keys, trips, time, `evict_idle`, `get`, `remove`, new keys at capacity,
//! and calls that span other operations), each registered key's breaker
//! mirrored in a [`Model`] of its own.
//!
//! Besides the model, the driver keeps per key a tally of the breaker's
//! counts, and mirrors the registry's eviction as `breakerbox::registry`
//! describes it:
//! - the roster: registered keys in the order the hand visits them (a new
//!   key goes last; a key that leaves is replaced by the last), the hand's
//!   position, and per key the activity (calls and rejections) the hand saw
//!   when it last passed (0 when made) and its credit (0 when made);
//! - a new key at capacity, unless within a millisecond of a refusal (the
//!   shortest a refusal lasts; searches take no time on the mock clock),
//!   runs the hand: it credits the breaker under it for its use since the
//!   hand last passed (1 for one call or rejection, 2 for more), evicts it
//!   if it has no credit and is at rest (and unheld), or else takes a
//!   credit; at the end of a lap without an eviction the breaker at rest
//!   with the least credit left and, of those, the least use (the first of
//!   those tied) is evicted; after two such laps the key is refused with
//!   [`RegistryError::Full`] and the refusal starts. Which keys go is
//!   predicted exactly;
//! - `evict_idle` walks the roster from its end, notes for each key when its
//!   activity last changed (idle from then; a breaker just made is idle from
//!   when it was made) and evicts those at rest and idle for `idle_after`.
//!
//! A breaker is at rest when its model's stored phase is
//! `Closed { failures: 0 }` (no failure rate here).
//!
//! A call that spans other operations ([`Op::Span`]) runs inside
//! `registry.with(&key, ..)`: the operations in between may evict its
//! breaker (the hand or `evict_idle`), register a fresh one for the key, or
//! remove it, and time may pass before the call ends. The driver then
//! applies the put-back rule of the module docs, by stored state: an
//! evicted breaker the call changed, or left not at rest, comes back if the
//! key has none; if a fresh breaker took the key, the one that would lose
//! more if forgotten (open, then half-open, then counting failures) stays,
//! and an open one that does not stay trips the one that does. A removed
//! breaker never comes back.
//!
//! After every step: `len()` equals the driver's count and never exceeds
//! the capacity; the registry's keys are the driver's; each breaker's
//! `state()` is its model's `seen(now)` and its `counts()` the tally (a
//! breaker made anew for a key counts from zero).
//!
//! One thread runs every step and `get`'s handle is dropped at once, so no
//! breaker is held outside the registry when the hand runs. Two callers
//! racing for one new key during a refusal cannot be expressed on one
//! thread; a unit test in `registry/mod.rs` covers that race.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use breakerbox::quanta::Mock;
use breakerbox::{Breaker, Config, Counts, Error, Registry, RegistryError};
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
    /// A call spanning other operations, if the key is registered.
    Span(Span),
}

/// `registry.with(&key, |breaker| ..)`: runs `during`, then
/// `breaker.call(..)` (which may no longer be the key's breaker), then
/// moves the clock `advance_ms` before the call returns.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The key, below [`KEYS`].
    #[arbitrary(with = key)]
    pub key: u8,
    /// Whether the spanning call succeeds.
    pub ok: bool,
    /// What happens while the call runs.
    pub during: [During; 3],
    /// How long the call takes after them: 0 to 3000 ms.
    #[arbitrary(with = advance_ms)]
    pub advance_ms: u64,
}

/// An operation inside a [`Span`]: one of [`Op`]'s, as another thread
/// would run it.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum During {
    /// [`Op::Call`].
    Call {
        /// The key, below [`KEYS`].
        #[arbitrary(with = key)]
        key: u8,
        /// Whether the call succeeds.
        ok: bool,
    },
    /// [`Op::Advance`].
    Advance(#[arbitrary(with = advance_ms)] u64),
    /// [`Op::Evict`].
    Evict,
    /// [`Op::Remove`].
    Remove(#[arbitrary(with = key)] u8),
    /// `registry.get(&key)`, the handle held until the span ends: the
    /// breaker is held outside the registry meanwhile.
    Hold(#[arbitrary(with = key)] u8),
}

impl During {
    fn op(self) -> Op {
        match self {
            During::Call { key, ok } => Op::Call { key, ok },
            During::Advance(ms) => Op::Advance(ms),
            During::Evict => Op::Evict,
            During::Remove(key) => Op::Remove(key),
            During::Hold(key) => Op::Get(key),
        }
    }
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
    /// New keys refused with [`RegistryError::Full`] by a search that
    /// found nothing at rest.
    pub refused: usize,
    /// New keys refused with [`RegistryError::Full`] without a search,
    /// within a refusal.
    pub refused_without_sweep: usize,
    /// Breakers `remove` returned.
    pub removed: usize,
    /// Spanning calls whose breaker was evicted and came back, or whose
    /// open state tripped the fresh breaker of their key.
    pub put_back: usize,
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
        roster: Vec::new(),
        hand: 0,
        made: 0,
        span: None,
        put_back_over: 0,
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
    /// Which breaker: the count of breakers made before it.
    id: usize,
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
    fn new(id: usize, settings: Settings, now: u64) -> Known {
        Known {
            id,
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

    /// What forgetting it would lose, by stored phase: at rest, counting,
    /// half-open, open.
    fn severity(&self) -> u8 {
        match self.model.phase() {
            Phase::Closed { failures: 0 } => 0,
            Phase::Closed { .. } => 1,
            Phase::HalfOpen { .. } => 2,
            Phase::Open { .. } | Phase::Isolated { .. } => 3,
        }
    }

    /// Runs a call on it at `now` and checks the result: what a call through
    /// the registry or a span does.
    fn call(&mut self, ok: bool, result: Result<(), Error<()>>, now: u64, context: &dyn Fn() -> String) {
        match self.model.acquire(now) {
            Ok(ticket) => {
                let expected = if ok { Ok(()) } else { Err(Error::Inner(())) };
                assert_eq!(result, expected, "an admitted call (breaker {}), {}", self.id, context());
                let outcome = if ok { ModelOutcome::Success } else { ModelOutcome::Failure };
                self.model.record(ticket, outcome, now);
                if ok {
                    self.tally.successes += 1;
                } else {
                    self.tally.failures += 1;
                }
            }
            Err(_) => {
                assert!(
                    matches!(result, Err(Error::Open(_))),
                    "a call the model rejects (breaker {}) gave {result:?}, {}",
                    self.id,
                    context()
                );
                self.tally.rejections += 1;
            }
        }
        self.take_opens();
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
    /// The registered keys in the hand's order, each with the activity the
    /// hand saw when it last passed.
    roster: Vec<Hand>,
    /// The next roster slot the hand reads.
    hand: usize,
    /// Breakers made so far.
    made: usize,
    /// The spanning call in progress, if any.
    span: Option<SpanState>,
    /// Breakers put back at capacity since the last new key.
    put_back_over: usize,
    summary: Summary,
}

/// What the roster keeps for one key: the key, the activity the hand saw
/// when it last passed, and the credit left.
#[derive(Clone, Copy, Debug)]
struct Hand {
    key: u8,
    seen: u64,
    credit: u8,
}

impl Hand {
    fn new(key: u8) -> Hand {
        Hand { key, seen: 0, credit: 0 }
    }
}

/// The registry's `MAX_CREDIT`: the most passes of the hand a breaker
/// survives unused.
const MAX_CREDIT: u8 = 2;

/// The credit `used` calls and rejections earn: 0 for none, then one more
/// per doubling (1 for 1, 2 for 2 or 3, 3 for 4 to 7, ...), at most
/// [`MAX_CREDIT`].
fn credit_for(used: u64) -> u8 {
    let mut credit = 0;
    let mut at_least = 1;
    while credit < MAX_CREDIT && used >= at_least {
        credit += 1;
        at_least *= 2;
    }
    credit
}

/// A spanning call in progress.
struct SpanState {
    /// The id of the breaker the call runs on.
    id: usize,
    /// That breaker once it left the registry: evicted (`true`, marked for
    /// a put-back) or removed (`false`).
    gone: Option<(Known, bool)>,
    /// Handles held until the span ends, and the ids of their breakers.
    holds: Vec<(Arc<Breaker>, usize)>,
}

impl Run<'_> {
    fn step(&mut self, step: usize, op: Op) {
        let now = self.now;
        let context = move || format!("step {step} {op:?} at {now} ms");
        let context: &dyn Fn() -> String = &context;
        match op {
            Op::Call { key, ok } => {
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
                        if !self.make_room(capacity) {
                            let result = self.registry.call(&key, || Ok::<_, ()>(()));
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
                    }
                }
                let result = self.registry.call(&key, || if ok { Ok(()) } else { Err(()) });
                let result = result.unwrap_or_else(|err| panic!("{err:?}, {}", context()));
                self.register(key);
                self.known.get_mut(&key).expect("registered above").call(ok, result, now, context);
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
                let expected = self.sweep_idle();
                let evicted = self.registry.evict_idle();
                assert_eq!(evicted, expected.len(), "evict_idle, expected keys {expected:?} to go, {}", context());
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
                match (self.known.get(&key), &removed) {
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
                        self.forget(key, false);
                    }
                    (None, None) => {}
                    (known, _) => {
                        panic!("remove of key {key} gave {removed:?}, registered: {}, {}", known.is_some(), context())
                    }
                }
            }
            Op::Span(span) => {
                if let Some(known) = self.known.get(&span.key) {
                    self.span(step, span, known.id, known.model.phase(), context);
                }
            }
        }
    }

    /// Runs a spanning call on `id`, the breaker of `span.key`.
    fn span(&mut self, step: usize, span: Span, id: usize, before: Phase, context: &dyn Fn() -> String) {
        let registry = self.registry;
        self.span = Some(SpanState { id, gone: None, holds: Vec::new() });
        let result = registry.with(&span.key, |breaker| {
            for during in span.during {
                match during {
                    During::Hold(key) => self.hold(key),
                    during => self.step(step, during.op()),
                }
            }
            let result = breaker.call(|| if span.ok { Ok(()) } else { Err(()) });
            let now = self.now;
            let state = self.span.as_mut().expect("in a span");
            let known = match &mut state.gone {
                Some((known, _)) => known,
                None => self.known.get_mut(&span.key).filter(|known| known.id == id).expect("registered"),
            };
            known.call(span.ok, result, now, context);
            // What the registry's check at the end of a call sees: the
            // state word moved since the call began, or is not at rest.
            let changed = before != known.model.phase() || !known.at_rest();
            self.step(step, Op::Advance(span.advance_ms));
            changed
        });
        let changed = result.unwrap_or_else(|err| panic!("{err:?}, {}", context()));
        let Some(SpanState { gone, holds, .. }) = self.span.take() else { unreachable!("set above") };
        let held: Vec<usize> = holds.iter().map(|&(_, id)| id).collect();
        drop(holds);
        let Some((returning, true)) = gone else { return };
        if !changed {
            return;
        }
        // The put-back rule, by stored phase.
        match self.known.remove(&span.key) {
            None => {
                self.restore(span.key, returning);
                self.summary.put_back += 1;
            }
            Some(mut present) => {
                if returning.severity() > present.severity() && !held.contains(&present.id) {
                    self.unroll(span.key);
                    self.restore(span.key, returning);
                    self.summary.put_back += 1;
                } else {
                    if returning.severity() == 3 && present.severity() < 3 {
                        present.model.trip(self.now);
                        present.take_opens();
                        self.summary.put_back += 1;
                    }
                    self.known.insert(span.key, present);
                }
            }
        }
    }

    /// `During::Hold`: takes and keeps a handle on `key`'s breaker, if it
    /// has one.
    fn hold(&mut self, key: u8) {
        let handle = self.registry.get(&key);
        let known = self.known.get(&key);
        assert_eq!(handle.is_some(), known.is_some(), "get of key {key} to hold");
        if let (Some(handle), Some(known), Some(span)) = (handle, known, &mut self.span) {
            span.holds.push((handle, known.id));
        }
    }

    /// Whether breaker `id` is held outside the registry.
    fn is_held(&self, id: usize) -> bool {
        self.span.as_ref().is_some_and(|span| span.holds.iter().any(|&(_, held)| held == id))
    }

    /// Registers `key` if it is new.
    fn register(&mut self, key: u8) {
        if !self.known.contains_key(&key) {
            self.known.insert(key, Known::new(self.made, self.settings, self.now));
            self.made += 1;
            self.summary.made += 1;
            self.roster.push(Hand::new(key));
        }
    }

    /// Puts `known` back under `key`, which has no breaker: last in the
    /// roster, with the hand's note of it afresh.
    fn restore(&mut self, key: u8, known: Known) {
        self.known.insert(key, known);
        self.roster.push(Hand::new(key));
        if self.settings.capacity.is_some_and(|capacity| self.known.len() > capacity) {
            self.put_back_over += 1;
        }
    }

    /// Forgets `key`'s breaker, evicted (`evicted`) or removed; keeps it
    /// aside if a spanning call runs on it.
    fn forget(&mut self, key: u8, evicted: bool) {
        let known = self.known.remove(&key).expect("registered");
        self.unroll(key);
        if let Some(span) = &mut self.span {
            if span.id == known.id {
                span.gone = Some((known, evicted));
            }
        }
    }

    /// Takes `key` out of the roster: the last slot moves into its place.
    fn unroll(&mut self, key: u8) {
        let slot = self.roster.iter().position(|hand| hand.key == key).expect("in the roster");
        self.roster.swap_remove(slot);
    }

    /// The hand's search for room for a new key at `capacity`: evicts (and
    /// forgets) the breakers it finds, and says whether there is room.
    fn make_room(&mut self, capacity: usize) -> bool {
        let (mut read, mut laps, mut lap_end) = (0, 0, 0);
        // In the current lap: the key at rest and unheld with the least
        // credit left (the credit, the key, its breaker's id).
        let mut least_used: Option<((u8, u64), u8, usize)> = None;
        loop {
            if self.known.len() < capacity {
                self.put_back_over = 0;
                return true;
            }
            if read >= lap_end {
                if let Some((_, key, id)) = least_used.take() {
                    let still = self
                        .known
                        .get(&key)
                        .is_some_and(|known| known.id == id && known.at_rest() && !self.is_held(id));
                    if still {
                        self.forget(key, true);
                        self.summary.evicted_for_room += 1;
                        continue;
                    }
                }
                if laps == 2 || self.roster.is_empty() {
                    return false;
                }
                laps += 1;
                lap_end = read + self.roster.len();
            }
            read += 1;
            if self.hand >= self.roster.len() {
                self.hand = 0;
            }
            let Hand { key, seen, credit } = self.roster[self.hand];
            let known = &self.known[&key];
            let activity = known.activity();
            let used = activity - seen;
            let credit = (credit + credit_for(used)).min(MAX_CREDIT);
            let evictable = known.at_rest() && !self.is_held(known.id);
            let id = known.id;
            self.roster[self.hand] = Hand { key, seen: activity, credit: credit.saturating_sub(1) };
            if credit == 0 {
                if evictable {
                    self.forget(key, true);
                    self.summary.evicted_for_room += 1;
                    continue;
                }
            } else if evictable && least_used.is_none_or(|(least, _, _)| (credit - 1, used) < least) {
                least_used = Some(((credit - 1, used), key, id));
            }
            self.hand += 1;
        }
    }

    /// What `evict_idle` does: walks the roster from its end, notes each
    /// key's activity, and evicts (and forgets) those at rest and idle for
    /// `idle_after`; returns their keys.
    fn sweep_idle(&mut self) -> Vec<u8> {
        let now = self.now;
        let mut evicted = Vec::new();
        for slot in (0..self.roster.len()).rev() {
            let key = self.roster[slot].key;
            let id = self.known[&key].id;
            let held = self.is_held(id);
            let known = self.known.get_mut(&key).expect("registered");
            let activity = known.activity();
            if activity != known.swept_activity {
                known.swept_activity = activity;
                known.idle_since = now;
            }
            if known.at_rest() && !held && now - known.idle_since >= self.settings.idle_after_ms {
                self.forget(key, true);
                evicted.push(key);
            }
        }
        evicted
    }

    /// Everything that must hold between steps.
    fn check(&self, step: impl core::fmt::Display, op: Option<Op>) {
        let now = self.now;
        let len = self.registry.len();
        assert_eq!(len, self.known.len(), "len after step {step} {op:?} at {now} ms, oracle {:?}", self.known);
        if let Some(capacity) = self.settings.capacity {
            // A breaker put back at capacity is one over, until the next
            // new key evicts back down.
            assert!(
                len <= capacity + self.put_back_over,
                "{len} breakers, capacity {capacity}, {} put back over it, after step {step} {op:?}",
                self.put_back_over
            );
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
