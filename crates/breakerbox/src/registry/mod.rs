//! [`Registry`]: one breaker per key (an upstream host, a tenant, a shard),
//! made on first use, found with a lock-free lookup, and evicted when idle
//! and at rest. The `registry` feature.
//!
//! The map is [`scc::HashIndex`], whose reads take no lock and write nothing
//! shared: a lookup plus a healthy call stays loads only, as a lone
//! breaker's call does. It was chosen by measurement against `papaya`,
//! `scc::HashMap` and `dashmap` (the `registry` bench; `BENCHMARKS.md` in
//! the repository has the numbers).
//!
//! # Eviction
//!
//! A breaker is *at rest* when forgetting it and making a fresh one would
//! change no decision: it is closed (not open, half-open or held open),
//! counts no failure in its consecutive streak, and its failure-rate window
//! (if it has one) holds no failure. Only a breaker at rest, with no
//! [`Arc`] held outside the registry (from [`get`](Registry::get) or a
//! pending [`call_async`](Registry::call_async)), is ever evicted. A call
//! through the registry that races an eviction and leaves the breaker not
//! at rest puts it back (the handshake is a flag in the core, described in
//! `docs/ARCHITECTURE.md`), so an open breaker, or
//! one counting a failure streak, is not silently forgotten. If a fresh
//! breaker took the key in between, the one that would lose more if
//! forgotten (open, then half-open, then counting failures, judged by the
//! stored state: an open breaker whose timeout has passed, which reads
//! half-open, counts as open) stays, unless the fresh one is held outside
//! the registry; an open breaker that does not stay trips the one that
//! does, so the open state carries over. A
//! success that races an eviction may go uncounted with the breaker it
//! counted on, and calls made through an `Arc` kept past its breaker's
//! eviction (or [`remove`](Registry::remove)) go to a breaker the registry
//! no longer has.
//!
//! Idle time is measured without touching the call path: each sweep reads
//! a breaker's calls and rejections and notes when they last changed, so a
//! breaker is idle from the first sweep that saw its activity stop.
//!
//! - [`RegistryBuilder::idle_after`]: [`Registry::evict_idle`] removes the
//!   breakers at rest and idle that long. Call it from a timer; nothing runs
//!   in the background.
//! - [`RegistryBuilder::capacity`]: a new key at capacity first evicts the
//!   breakers at rest that have been idle longest (a thirty-second of the
//!   capacity, at least one), however briefly; if none is at rest the new
//!   key gets [`RegistryError::Full`] and nothing is registered. A breaker
//!   put back by a racing call may take the registry one past capacity per
//!   such race; the next new key then evicts back down to it.
//! - A refusal stands for a while: for 16 times as long as the sweep that
//!   found nothing at rest took, and at least a millisecond, on the
//!   registry's clock ([`RegistryBuilder::clock`]), a new key at capacity is
//!   refused at once, without a sweep and without the writer lock (a key
//!   another caller registered meanwhile is found, not refused). At
//!   capacity during an outage of every downstream, sweeping then takes
//!   about a seventeenth of the time and a refused caller pays a clock read
//!   (the `registry` bench: 35 ns, where a sweep of 100,000 open breakers
//!   takes about 11 ms). A breaker that comes to rest meanwhile makes room
//!   for the first new key after the refusal ends; a removal makes room at
//!   once.
//!
//! # Locks
//!
//! Lookups take none. Every change of the map (a new key, a sweep, a
//! removal, a breaker put back) takes one writer mutex, and a sweep holds
//! it while it reads every breaker's counts: new keys wait for it (except
//! those a refusal at capacity turns away), and so does a call or `get`
//! that races the eviction of its own breaker (to put it back). The
//! builder's `per_key` and `name_with` closures run under it and must not
//! call into the registry. [`with`](Registry::with) and the calls hold the
//! map's epoch guard while the call runs, which delays the freeing of
//! removed entries (not of live ones) until the longest call in flight
//! ends; an evicted breaker's memory is freed when the map next reuses its
//! slot or resizes.

mod refusal;
mod rest;

use core::cmp::Reverse;
use core::fmt;
use core::future::Future;
use core::hash::Hash;
use core::time::Duration;
use std::borrow::Borrow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use breakerbox_core::{ConfigError, State, quanta};
use scc::{Guard, HashIndex};

use refusal::Refusal;

pub(crate) use rest::{Rest, RestMark};

use crate::breaker::Severity;
use crate::classify::Classify;
use crate::{Breaker, Builder, CallFuture, Config, Counts, Error};

/// Breakers by key, made on first use.
///
/// ```
/// use breakerbox::{Config, Registry, State};
///
/// let hosts: Registry<String> = Registry::new(Config { threshold: 2, ..Config::default() }).unwrap();
/// for _ in 0..2 {
///     let _ = hosts.call("db-1:5432", || Err::<(), _>("refused"))?;
/// }
/// let answer = hosts.call("db-2:5432", || Ok::<_, &str>(42))?;
/// assert_eq!(answer, Ok(42));
/// assert_eq!(hosts.get("db-1:5432").unwrap().state(), State::Open);
/// assert_eq!(hosts.len(), 2);
/// # Ok::<(), breakerbox::RegistryError>(())
/// ```
///
/// Calls return the registry's error outside the call's own: the outer
/// `Result` is `Err` only when the key had no breaker and none could be
/// made ([`RegistryError`]), as `tokio::time::timeout` wraps its future's
/// result.
pub struct Registry<K> {
    map: HashIndex<K, Entry>,
    make: Make<K>,
    capacity: Option<usize>,
    /// Milliseconds.
    idle_after: Option<u64>,
    len: AtomicUsize,
    /// Held by every change of the map: a new key, a sweep, a removal, a
    /// breaker put back. Lookups never take it.
    writer: Mutex<()>,
    /// Until when a new key at capacity is refused without a sweep.
    refusal: Refusal,
}

/// How a registry makes the breaker for a key.
struct Make<K> {
    per_key: PerKey<K>,
    names: Option<Names<K>>,
}

type PerKey<K> = Box<dyn Fn(&K) -> Builder + Send + Sync>;
type Names<K> = Box<dyn Fn(&K) -> String + Send + Sync>;

impl<K> Make<K> {
    fn breaker(&self, key: &K) -> Result<Breaker, ConfigError> {
        let builder = (self.per_key)(key);
        match &self.names {
            Some(name) => builder.name(name(key)),
            None => builder,
        }
        .build()
    }
}

/// A map entry: one of its breaker's `Arc`s, counted in the breaker's
/// [`Rest`] from when it is made to when the map drops it (which, for a
/// removed entry, the map does when it likes).
struct Entry(Arc<Breaker>);

impl Entry {
    fn new(breaker: Arc<Breaker>) -> Entry {
        breaker.rest().add_copy();
        Entry(breaker)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.0.rest().drop_copy();
    }
}

/// Why a registry has no breaker to give for a key.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The key is new, the registry holds `capacity` breakers, and none of
    /// them was at rest to make room at the latest sweep: each was open,
    /// half-open, counting failures or held outside the registry. A sweep
    /// that finds none is trusted for a while (see the
    /// [module docs](crate::registry)) before another runs.
    Full {
        /// The registry's capacity.
        capacity: usize,
    },
    /// The key is new and the builder made for it has a bad config.
    Config(ConfigError),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Full { capacity } => {
                write!(f, "breaker registry is full: {capacity} breakers, none at rest to evict for a new key")
            }
            RegistryError::Config(err) => write!(f, "breaker registry: the config for a new key: {err}"),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Config(err) => Some(err),
            RegistryError::Full { .. } => None,
        }
    }
}

/// One registered breaker as [`Registry::health`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyHealth<K> {
    /// The key.
    pub key: K,
    /// Its breaker's state.
    pub state: State,
    /// Its breaker's counts.
    pub counts: Counts,
}

impl<K> Registry<K>
where
    K: Hash + Eq + Send + Sync + 'static,
{
    /// A registry making every breaker from `config` on the real clock,
    /// with no capacity and no names; an error if `config` does not fit, as
    /// [`Breaker::new`].
    ///
    /// ```
    /// use breakerbox::{Config, Registry};
    ///
    /// let hosts: Registry<String> = Registry::new(Config::default())?;
    /// assert!(hosts.is_empty());
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn new(config: Config) -> Result<Registry<K>, ConfigError> {
        Registry::builder(config).build()
    }

    /// A builder for a registry whose breakers use `config`, unless
    /// [`per_key`](RegistryBuilder::per_key) says otherwise.
    ///
    /// ```
    /// use breakerbox::{Config, Registry};
    /// use std::time::Duration;
    ///
    /// let tenants: Registry<u64> = Registry::builder(Config::default())
    ///     .capacity(100_000)
    ///     .idle_after(Duration::from_secs(600))
    ///     .build()?;
    /// assert_eq!(tenants.capacity(), Some(100_000));
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn builder(config: Config) -> RegistryBuilder<K> {
        RegistryBuilder { config, clock: None, per_key: None, names: None, capacity: None, idle_after: None }
    }

    /// Runs `f` through the breaker for `key` (made now if the key is new):
    /// [`Breaker::call`] after one lookup, with no reference count touched.
    /// `key` is borrowed: a `&str` for `String` keys.
    #[inline]
    pub fn call<Q, T, E>(&self, key: &Q, f: impl FnOnce() -> Result<T, E>) -> Result<Result<T, Error<E>>, RegistryError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.with(key, |breaker| breaker.call(f))
    }

    /// [`call`](Self::call) with a classifier: [`Breaker::call_with`].
    #[inline]
    pub fn call_with<Q, T, E>(
        &self,
        key: &Q,
        classify: impl Classify<T, E>,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, Error<E>>, RegistryError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.with(key, |breaker| breaker.call_with(classify, f))
    }

    /// Runs `f` with the breaker for `key` (made now if the key is new):
    /// what [`call`](Self::call) is made of, for the rest of the
    /// [`Breaker`] API (a fallback, a permit, a trip). If `f` leaves the
    /// breaker not at rest while it is being evicted, it is put back.
    ///
    /// ```
    /// use breakerbox::{Config, Registry};
    ///
    /// let shards: Registry<u32> = Registry::new(Config::default())?;
    /// shards.with(&7, |breaker| breaker.trip())?;
    /// let page = shards.with(&7, |breaker| breaker.call_with_fallback(|| Ok::<_, ()>("fresh"), |_| Ok("cached")))?;
    /// assert_eq!(page, Ok("cached"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&Breaker) -> R) -> Result<R, RegistryError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let guard = Guard::new();
        match self.map.peek(key, &guard) {
            Some(entry) => Ok(self.run(key, &entry.0, f)),
            None => {
                let breaker = self.insert(key)?;
                Ok(self.run(key, &breaker, f))
            }
        }
    }

    /// [`Breaker::call_async`] through the breaker for `key` (made now if
    /// the key is new); [`classify`](CallFuture::classify) and
    /// [`fallback`](CallFuture::fallback) apply as there. The future owns a
    /// clone of the breaker's `Arc`: one reference-count increment and
    /// decrement per call, the price of a future that may move between
    /// threads (it is `'static` when `F` is), and the breaker cannot be
    /// evicted while it is pending.
    ///
    /// ```
    /// use breakerbox::{Config, Registry};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let models: Registry<String> = Registry::new(Config::default())?;
    /// let reply = models.call_async("llm-eu", async { Ok::<_, std::io::Error>("hi") })?.await;
    /// assert_eq!(reply?, "hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn call_async<Q, T, E, F>(&self, key: &Q, fut: F) -> Result<CallFuture<Arc<Breaker>, F>, RegistryError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = Result<T, E>>,
    {
        Ok(CallFuture::new(self.get_or_insert(key)?, fut))
    }

    /// The breaker for `key`, if it has one, to hold for a batch of calls
    /// (each then costs what a lone breaker's call costs) or to hand to a
    /// task. It is not evicted while the `Arc` (or a clone) lives; once it is
    /// dropped the breaker may be, and calls through an `Arc` kept after an
    /// eviction go to a breaker the registry no longer has.
    pub fn get<Q>(&self, key: &Q) -> Option<Arc<Breaker>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let breaker = self.map.peek_with(key, |_, entry| Arc::clone(&entry.0))?;
        Some(self.hold(key, breaker))
    }

    /// [`get`](Self::get), making the breaker if the key is new.
    pub fn get_or_insert<Q>(&self, key: &Q) -> Result<Arc<Breaker>, RegistryError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.map.peek_with(key, |_, entry| Arc::clone(&entry.0)) {
            Some(breaker) => Ok(self.hold(key, breaker)),
            None => self.insert(key),
        }
    }

    /// Removes the breaker for `key`, whatever its state, and returns it.
    /// The next call with the key makes a new one.
    pub fn remove<Q>(&self, key: &Q) -> Option<Arc<Breaker>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let _writer = self.lock();
        let breaker = self.map.peek_with(key, |_, entry| Arc::clone(&entry.0))?;
        self.map.remove_sync(key).then(|| {
            self.len.fetch_sub(1, Ordering::Relaxed);
            breaker
        })
    }

    /// How many breakers the registry holds: exact between changes, which
    /// are serialized; one past the capacity for each breaker put back at
    /// capacity, until the next new key.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the registry holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most breakers the registry holds, if bounded.
    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Calls `f` once with each key and its breaker, in no particular
    /// order, without locking out calls or new keys (which it may or may not
    /// see). It keeps a set of the breakers seen, as the map may list one
    /// twice while it resizes.
    ///
    /// ```
    /// use breakerbox::{Config, Registry, State};
    ///
    /// let hosts: Registry<String> = Registry::new(Config::default()).unwrap();
    /// hosts.call("a", || Ok::<_, ()>(()))?.unwrap();
    /// let mut open = 0;
    /// hosts.for_each(|_host, breaker| open += usize::from(breaker.state() == State::Open));
    /// assert_eq!(open, 0);
    /// # Ok::<(), breakerbox::RegistryError>(())
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&K, &Breaker)) {
        let guard = Guard::new();
        // The map may list an entry twice while it resizes.
        let mut seen = std::collections::HashSet::new();
        for (key, entry) in self.map.iter(&guard) {
            if seen.insert(Arc::as_ptr(&entry.0)) {
                f(key, &entry.0);
            }
        }
    }

    /// Each key with its breaker's state and counts: a health page's rows.
    /// Reads each breaker's counts: a lock, and a sum over the threads that
    /// called it.
    pub fn health(&self) -> Vec<KeyHealth<K>>
    where
        K: Clone,
    {
        let mut rows = Vec::with_capacity(self.len());
        self.for_each(|key, breaker| {
            rows.push(KeyHealth { key: key.clone(), state: breaker.state(), counts: breaker.counts() })
        });
        rows
    }

    /// Evicts every breaker at rest that has been idle for
    /// [`idle_after`](RegistryBuilder::idle_after), and returns how many.
    /// Without `idle_after`, evicts nothing. Reads every breaker's counts
    /// (a lock on each, and a sum over the threads that called it) and holds
    /// the writer lock while it does (see [Locks](self#locks)).
    ///
    /// ```
    /// use breakerbox::{Config, Registry};
    /// use std::time::Duration;
    ///
    /// let (clock, mock) = breakerbox::quanta::Clock::mock();
    /// let hosts: Registry<String> =
    ///     Registry::builder(Config::default()).clock(clock).idle_after(Duration::from_secs(60)).build()?;
    /// hosts.call("gone-host", || Ok::<_, ()>(())).unwrap().unwrap();
    /// assert_eq!(hosts.evict_idle(), 0); // starts its idle time
    /// mock.increment(Duration::from_secs(60));
    /// assert_eq!(hosts.evict_idle(), 1);
    /// assert!(hosts.is_empty());
    /// # Ok::<(), breakerbox::ConfigError>(())
    /// ```
    pub fn evict_idle(&self) -> usize {
        let Some(idle_after) = self.idle_after else { return 0 };
        let _writer = self.lock();
        self.sweep(idle_after, usize::MAX)
    }

    /// Runs `f` on `breaker`, registered under `key`, and puts the breaker
    /// back if `f` changed it while an eviction took it out.
    #[inline(always)]
    fn run<Q, R>(&self, key: &Q, breaker: &Arc<Breaker>, f: impl FnOnce(&Breaker) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // A guard rather than a check after `f`, so a panic in `f` checks too.
        let check = ChangeCheck { registry: self, key, breaker, before: breaker.rest_mark() };
        let result = f(breaker);
        drop(check);
        result
    }

    /// A clone of `breaker`'s `Arc`, taken from the map under `key`, made
    /// safe to hold: if an eviction was taking it out, it is put back, or the
    /// breaker now registered under `key` is returned instead.
    fn hold<Q>(&self, key: &Q, breaker: Arc<Breaker>) -> Arc<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if breaker.rest().evicting_after_change() { self.put_back(key, &breaker) } else { breaker }
    }

    /// Makes and registers the breaker for a new `key` (or returns the one
    /// another thread registered first), evicting to make room at capacity.
    #[cold]
    #[inline(never)]
    fn insert<Q>(&self, key: &Q) -> Result<Arc<Breaker>, RegistryError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(capacity) = self.capacity {
            // Refused without the lock: nothing fits in 0, and a refusal in
            // force answers for the sweep it would run.
            if capacity == 0 || (self.len() >= capacity && self.refusal.active()) {
                // The caller's lookup missed, but another caller may have
                // registered the key since: a key that exists is never Full.
                return match self.map.peek_with(key, |_, entry| Arc::clone(&entry.0)) {
                    Some(present) => Ok(self.hold(key, present)),
                    None => Err(RegistryError::Full { capacity }),
                };
            }
        }
        let _writer = self.lock();
        if let Some(present) = self.map.peek_with(key, |_, entry| Arc::clone(&entry.0)) {
            return Ok(present);
        }
        if let Some(capacity) = self.capacity {
            if !self.make_room(capacity) {
                return Err(RegistryError::Full { capacity });
            }
        }
        let key = key.to_owned();
        let breaker = Arc::new(self.make.breaker(&key).map_err(RegistryError::Config)?);
        self.register(key, Arc::clone(&breaker));
        Ok(breaker)
    }

    /// Whether the registry has room for one more breaker under `capacity`,
    /// after evicting the longest-idle breakers at rest if it had none (under
    /// the writer lock). A refusal in force refuses without a sweep: callers
    /// that waited for the lock behind a sweep that found nothing share its
    /// answer instead of each sweeping again.
    fn make_room(&self, capacity: usize) -> bool {
        if self.len() < capacity {
            return true;
        }
        if self.refusal.active() {
            return false;
        }
        let started = self.refusal.now();
        self.sweep(0, (self.len() + 1 - capacity).max(capacity / 32));
        if self.len() < capacity {
            return true;
        }
        self.refusal.remember(started);
        false
    }

    /// Adds `breaker` under `key`, absent from the map (under the writer lock).
    fn register(&self, key: K, breaker: Arc<Breaker>) {
        if self.map.insert_sync(key, Entry::new(breaker)).is_ok() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Puts back `breaker`, which an eviction may have taken out from under
    /// `key` while a call changed it or a caller took it, and returns the
    /// breaker registered under `key` after: `breaker`, unless another was
    /// registered meanwhile and it stays (see below).
    #[cold]
    #[inline(never)]
    fn put_back<Q>(&self, key: &Q, breaker: &Arc<Breaker>) -> Arc<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let _writer = self.lock();
        let rest = breaker.rest();
        if !rest.is_evicting() {
            // The evictor saw the change and kept it, or it is back already.
            return Arc::clone(breaker);
        }
        let Some(present) = self.map.peek_with(key, |_, entry| Arc::clone(&entry.0)) else {
            rest.clear();
            self.register(key.to_owned(), Arc::clone(breaker));
            return Arc::clone(breaker);
        };
        if Arc::ptr_eq(&present, breaker) {
            rest.clear();
            return present;
        }
        // A fresh breaker took the key after the eviction. The one that
        // would lose more if forgotten stays; the other leaves the map
        // marked, so a call that changes it later tries again.
        let (returning, current) = (breaker.severity(breaker.now()), present.severity(present.now()));
        // `present` is held by this function and the map: anything more is
        // a caller's, and a held breaker is not taken out from under it.
        let present_held = present.rest().held_outside(Arc::strong_count(&present) - 1);
        if returning > current && !present_held {
            present.rest().mark_evicting();
            if self.map.remove_if_sync(key, |entry| Arc::ptr_eq(&entry.0, &present)) {
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
            rest.clear();
            self.register(key.to_owned(), Arc::clone(breaker));
            return Arc::clone(breaker);
        }
        if returning == Severity::Open && current < Severity::Open {
            // The open state must not be lost with the breaker that had it:
            // the one that stays opens too.
            present.trip();
        }
        present
    }

    /// Evicts up to `most` breakers at rest, idle for at least `idle_after`
    /// ms, the longest idle first, and returns how many (under the writer
    /// lock).
    fn sweep(&self, idle_after: u64, most: usize) -> usize {
        let guard = Guard::new();
        let mut candidates: Vec<(u64, &K, &Arc<Breaker>)> = Vec::new();
        for (key, entry) in self.map.iter(&guard) {
            let breaker = &entry.0;
            let now = breaker.now();
            let idle = breaker.rest().idle_for(activity(breaker), now.as_millis());
            if idle >= idle_after && breaker.at_rest(now) {
                candidates.push((idle, key, breaker));
            }
        }
        candidates.sort_unstable_by_key(|&(idle, _, _)| Reverse(idle));
        self.evict(candidates, most, idle_after > 0)
    }

    /// Evicts `candidates` (idle time, key, breaker) in order while they
    /// are still at rest, unheld (and, if `idle` matters, unused since the
    /// sweep looked), up to `most`, and returns how many (under the writer
    /// lock).
    fn evict(&self, candidates: Vec<(u64, &K, &Arc<Breaker>)>, most: usize, idle: bool) -> usize {
        let mut evicted = 0;
        for (_, key, breaker) in candidates {
            if evicted == most {
                break;
            }
            let rest = breaker.rest();
            if rest.is_evicting() {
                // Marked under this lock means removed, by this sweep (an
                // iteration during a resize may list an entry twice) or an
                // earlier one: the mark must stay for a racing call to see.
                continue;
            }
            rest.mark_evicting();
            let still = !rest.held_outside(Arc::strong_count(breaker))
                && breaker.at_rest(breaker.now())
                && (!idle || rest.unchanged(activity(breaker)));
            if still && self.map.remove_if_sync(key, |entry| Arc::ptr_eq(&entry.0, breaker)) {
                self.len.fetch_sub(1, Ordering::Relaxed);
                evicted += 1;
            } else {
                rest.clear();
            }
        }
        evicted
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a sweep reads to tell whether a breaker was used: its calls and
/// rejections.
fn activity(breaker: &Breaker) -> u64 {
    let counts = breaker.counts();
    counts.successes + counts.failures + counts.rejections
}

/// Checks, when a call through a registered breaker ends (or unwinds),
/// whether it changed the breaker while an eviction took it out.
struct ChangeCheck<'a, K, Q>
where
    K: Hash + Eq + Send + Sync + 'static + Borrow<Q>,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    registry: &'a Registry<K>,
    key: &'a Q,
    breaker: &'a Arc<Breaker>,
    before: RestMark,
}

impl<K, Q> Drop for ChangeCheck<'_, K, Q>
where
    K: Hash + Eq + Send + Sync + 'static + Borrow<Q>,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    #[inline(always)]
    fn drop(&mut self) {
        let after = self.breaker.rest_mark();
        // A call can leave the word as it found it yet not at rest (another
        // thread's success reset the streak this call's failure restores),
        // so a word not at rest asks too; a healthy call never does.
        if after != self.before || !after.quiet() {
            changed(self.registry, self.key, self.breaker);
        }
    }
}

/// A call changed the breaker's word or window: the caller's side of the
/// handshake with eviction.
#[cold]
#[inline(never)]
fn changed<K, Q>(registry: &Registry<K>, key: &Q, breaker: &Arc<Breaker>)
where
    K: Hash + Eq + Send + Sync + 'static + Borrow<Q>,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    if breaker.rest().evicting_after_change() {
        let _ = registry.put_back(key, breaker);
    }
}

impl<K> fmt::Debug for Registry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .field("idle_after_ms", &self.idle_after)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Registry`]: how its breakers are made, how they are named,
/// its capacity and when a breaker is idle. Made by [`Registry::builder`].
///
/// ```
/// use breakerbox::{Breaker, Config, Registry};
/// use std::time::Duration;
///
/// // Payments get a stricter breaker than the rest.
/// let services: Registry<String> = Registry::builder(Config::default())
///     .per_key(|service: &String| {
///         let threshold = if service.starts_with("payments") { 2 } else { 10 };
///         Breaker::builder(Config { threshold, ..Config::default() })
///     })
///     .name_keys()
///     .build()?;
/// let payments = services.get_or_insert("payments-eu").unwrap();
/// assert_eq!((payments.config().threshold, payments.name()), (2, "payments-eu"));
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RegistryBuilder<K> {
    config: Config,
    clock: Option<quanta::Clock>,
    per_key: Option<PerKey<K>>,
    names: Option<Names<K>>,
    capacity: Option<usize>,
    idle_after: Option<Duration>,
}

impl<K> RegistryBuilder<K>
where
    K: Hash + Eq + Send + Sync + 'static,
{
    /// Runs the breakers made from the config on `clock` (a mock in tests).
    /// Breakers from [`per_key`](Self::per_key) run on the clock their
    /// builder gives. Idle time is measured on each breaker's clock; how
    /// long a refusal at capacity stands, on this one (the real clock
    /// without it).
    pub fn clock(self, clock: quanta::Clock) -> Self {
        RegistryBuilder { clock: Some(clock), ..self }
    }

    /// Makes each key's breaker from the [`Builder`] `per_key` returns for
    /// it, instead of from the registry's config and clock: a config, a
    /// failure rate, a listener per key. Called once per new key, under the
    /// registry's writer lock: it must not call into the registry, which
    /// would wait on that lock for ever. A builder whose config does not fit
    /// makes that key's calls fail with [`RegistryError::Config`].
    pub fn per_key(self, per_key: impl Fn(&K) -> Builder + Send + Sync + 'static) -> Self {
        RegistryBuilder { per_key: Some(Box::new(per_key)), ..self }
    }

    /// Names each breaker `name(key)` (overriding a name `per_key` gave):
    /// the name its transitions, tracing events and metrics carry. Runs
    /// under the registry's writer lock, like `per_key`.
    pub fn name_with(self, name: impl Fn(&K) -> String + Send + Sync + 'static) -> Self {
        RegistryBuilder { names: Some(Box::new(name)), ..self }
    }

    /// Names each breaker after its key, as the key displays.
    pub fn name_keys(self) -> Self
    where
        K: fmt::Display,
    {
        self.name_with(|key| key.to_string())
    }

    /// Holds at most `capacity` breakers: at capacity, a new key evicts the
    /// longest-idle breakers at rest, or is refused with
    /// [`RegistryError::Full`] if none is; a refusal then stands for a
    /// while without another sweep (see the [module docs](self)). A
    /// capacity of 0 refuses every key.
    pub fn capacity(self, capacity: usize) -> Self {
        RegistryBuilder { capacity: Some(capacity), ..self }
    }

    /// A breaker at rest is removed by [`Registry::evict_idle`] once `idle`
    /// (rounded up to whole milliseconds) has passed since the first sweep
    /// that saw its calls and rejections where they still are: sweeps, not
    /// calls, notice activity, so idle time is counted from a sweep.
    pub fn idle_after(self, idle: Duration) -> Self {
        RegistryBuilder { idle_after: Some(idle), ..self }
    }

    /// The registry, or the [`ConfigError`] of its config (checked now,
    /// unless [`per_key`](Self::per_key) replaces it).
    pub fn build(self) -> Result<Registry<K>, ConfigError> {
        let refusal = Refusal::new(self.clock.clone().unwrap_or_default());
        let per_key = match self.per_key {
            Some(per_key) => per_key,
            None => {
                let (config, clock) = (self.config, self.clock);
                let builder = move || match &clock {
                    Some(clock) => Breaker::builder(config).clock(clock.clone()),
                    None => Breaker::builder(config),
                };
                builder().build()?;
                Box::new(move |_: &K| builder())
            }
        };
        let idle_after =
            self.idle_after.map(|idle| u64::try_from(idle.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX));
        Ok(Registry {
            map: HashIndex::new(),
            make: Make { per_key, names: self.names },
            capacity: self.capacity,
            idle_after,
            len: AtomicUsize::new(0),
            writer: Mutex::new(()),
            refusal,
        })
    }
}

impl<K> fmt::Debug for RegistryBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("config", &self.config)
            .field("per_key", &self.per_key.is_some())
            .field("names", &self.names.is_some())
            .field("capacity", &self.capacity)
            .field("idle_after", &self.idle_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry of one key whose breaker has been evicted (and so is
    /// marked), with a fresh breaker registered in its place.
    fn evicted_and_replaced(threshold: u32) -> (Registry<u32>, Arc<Breaker>, Arc<Breaker>) {
        let registry: Registry<u32> = Registry::new(Config { threshold, ..Config::default() }).unwrap();
        let (evicted, fresh) = evict_and_replace(&registry);
        (registry, evicted, fresh)
    }

    /// Key 1's breaker, evicted, and the fresh breaker now in its place.
    fn evict_and_replace(registry: &Registry<u32>) -> (Arc<Breaker>, Arc<Breaker>) {
        let evicted = registry.get_or_insert(&1).unwrap();
        {
            // What a sweep does to a breaker it evicts.
            let _writer = registry.lock();
            evicted.rest().mark_evicting();
            assert!(registry.map.remove_sync(&1));
            registry.len.fetch_sub(1, Ordering::Relaxed);
        }
        let fresh = registry.get_or_insert(&1).unwrap();
        (evicted, fresh)
    }

    #[test]
    fn a_breaker_at_rest_coming_back_leaves_the_fresh_one_and_keeps_its_mark() {
        let (registry, evicted, fresh) = evicted_and_replaced(5);
        let fresh_at = Arc::as_ptr(&fresh);
        drop(fresh);
        // Nobody holds the fresh one: a tie still leaves it in place.
        let stays = registry.put_back(&1, &evicted);
        assert!(std::ptr::eq(Arc::as_ptr(&stays), fresh_at));
        assert_eq!(stays.state(), State::Closed, "nothing to carry over");
        assert!(evicted.rest().is_evicting(), "a later change must try again");
    }

    #[test]
    fn a_dropped_registry_lets_go_of_its_copies() {
        let registry: Registry<u32> = Registry::new(Config::default()).unwrap();
        let held = registry.get_or_insert(&1).unwrap();
        assert!(held.rest().held_outside(Arc::strong_count(&held)));
        drop(registry);
        assert_eq!(Arc::strong_count(&held), 1);
        assert!(held.rest().held_outside(1), "the map's copy is gone: one `Arc` is a holder's");
    }

    #[test]
    fn an_open_breaker_coming_back_replaces_a_fresh_one_nobody_holds() {
        let (registry, evicted, fresh) = evicted_and_replaced(5);
        drop(fresh);
        evicted.trip();
        assert!(Arc::ptr_eq(&registry.put_back(&1, &evicted), &evicted));
        assert!(!evicted.rest().is_evicting());
        assert_eq!(registry.get(&1).unwrap().state(), State::Open);
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn a_breaker_counting_failures_coming_back_replaces_a_fresh_one_at_rest() {
        let (registry, evicted, fresh) = evicted_and_replaced(5);
        drop(fresh);
        let _ = evicted.call(|| Err::<(), _>(()));
        assert!(Arc::ptr_eq(&registry.put_back(&1, &evicted), &evicted), "a streak outweighs none");
        assert_eq!(registry.get(&1).unwrap().counts().failures, 1);
    }

    #[test]
    fn a_fresh_breaker_counting_failures_stays_against_one_at_rest() {
        let (registry, evicted, fresh) = evicted_and_replaced(5);
        let _ = fresh.call(|| Err::<(), _>(()));
        drop(fresh);
        assert_eq!(registry.put_back(&1, &evicted).counts().failures, 1, "the fresh one, with its failure");
        assert!(evicted.rest().is_evicting());
    }

    #[test]
    fn an_open_breaker_coming_back_opens_a_fresh_one_held_elsewhere() {
        let (registry, evicted, fresh) = evicted_and_replaced(5);
        evicted.trip();
        assert!(Arc::ptr_eq(&registry.put_back(&1, &evicted), &fresh), "a held breaker is not replaced");
        assert_eq!(fresh.state(), State::Open, "the open state carries over");
        assert!(evicted.rest().is_evicting());
    }

    #[test]
    fn an_open_breaker_coming_back_leaves_a_held_open_one_as_it_is() {
        let (clock, mock) = quanta::Clock::mock();
        let timeout = Duration::from_millis(100);
        let registry: Registry<u32> =
            Registry::builder(Config { timeout, ..Config::default() }).clock(clock).build().unwrap();
        let (evicted, fresh) = evict_and_replace(&registry);
        fresh.trip();
        mock.increment(timeout / 2);
        evicted.trip();
        assert!(Arc::ptr_eq(&registry.put_back(&1, &evicted), &fresh));
        mock.increment(timeout / 2);
        assert_eq!(fresh.call(|| Ok::<_, ()>(())), Ok(()), "its open period is not restarted");
        assert_eq!(fresh.counts().opens, 1);
    }

    #[test]
    fn a_caller_behind_a_failed_sweep_is_refused_by_it_without_sweeping() {
        let (clock, mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(1).build().unwrap();
        registry.call(&1, || Ok::<_, ()>(())).unwrap().unwrap(); // at rest: evictable
        // As if another caller's sweep had just found nothing, while this one
        // waited for the lock.
        registry.refusal.remember(registry.refusal.now());
        let _writer = registry.lock();
        assert!(!registry.make_room(1));
        assert_eq!(registry.len(), 1, "no sweep");
        mock.increment(Duration::from_millis(1));
        assert!(registry.make_room(1), "the refusal is over: a sweep evicts key 1");
        assert!(registry.is_empty());
    }

    #[test]
    fn a_refusal_in_force_answers_without_the_lock() {
        let (clock, _mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(1).build().unwrap();
        let held = registry.get_or_insert(&1).unwrap();
        assert_eq!(registry.get_or_insert(&2).unwrap_err(), RegistryError::Full { capacity: 1 });
        let (answer, answered) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let writer = registry.lock();
            scope.spawn(|| answer.send(registry.get_or_insert(&3).map(drop)).unwrap());
            // Only a wait for the lock, which this thread holds, would take long.
            let refused = answered.recv_timeout(Duration::from_secs(60));
            drop(writer);
            assert_eq!(refused, Ok(Err(RegistryError::Full { capacity: 1 })), "refused while the lock is held");
        });
        drop(held);
    }

    #[test]
    fn a_failing_call_spanning_an_eviction_and_a_timeout_still_opens_the_key() {
        let (clock, mock) = quanta::Clock::mock();
        let timeout = Duration::from_secs(10);
        let registry: Registry<u32> =
            Registry::builder(Config { threshold: 1, timeout, ..Config::default() }).clock(clock).build().unwrap();
        registry.call(&1, || Ok::<_, ()>(())).unwrap().unwrap();
        let mut fresh = None;
        let failed = registry.with(&1, |breaker| {
            // Mid-call: a sweep evicts the breaker at rest, another caller
            // registers a fresh one for the key and holds it.
            let (_, replaced) = evict_and_replace(&registry);
            fresh = Some(replaced);
            let failed = breaker.call(|| Err::<(), _>("reset"));
            // The call ends after the open breaker's timeout: it reads
            // half-open now, but what it learned is an open.
            mock.increment(timeout);
            failed
        });
        assert!(failed.unwrap().is_err());
        let fresh = fresh.unwrap();
        assert!(Arc::ptr_eq(&registry.get(&1).unwrap(), &fresh), "the held fresh breaker stays");
        assert_eq!(fresh.state(), State::Open, "and carries the open of the evicted one");
    }

    #[test]
    fn a_key_registered_after_the_callers_lookup_is_never_full() {
        let (clock, _mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(1).build().unwrap();
        let held = registry.get_or_insert(&1).unwrap();
        registry.refusal.remember(registry.refusal.now());
        // `insert` is where a caller whose lookup missed goes: as if another
        // thread registered key 1 between that lookup and this call.
        let found = registry.insert(&1).expect("key 1 exists: not Full");
        assert!(Arc::ptr_eq(&found, &held));
        assert_eq!(registry.insert(&2).unwrap_err(), RegistryError::Full { capacity: 1 });
    }

    #[test]
    fn an_idle_sweep_keeps_a_breaker_called_after_it_was_listed() {
        let (clock, mock) = quanta::Clock::mock();
        let registry: Registry<u32> =
            Registry::builder(Config::default()).clock(clock).idle_after(Duration::from_secs(1)).build().unwrap();
        registry.call(&1, || Ok::<_, ()>(())).unwrap().unwrap();
        assert_eq!(registry.evict_idle(), 0, "idle from this sweep");
        mock.increment(Duration::from_secs(1));
        let guard = Guard::new();
        let (key, entry) = registry.map.iter(&guard).next().unwrap();
        let breaker = &entry.0;
        // Listed idle and at rest, as a sweep lists it; then called before
        // the eviction, as another thread may call it.
        assert_eq!(breaker.rest().idle_for(activity(breaker), breaker.now().as_millis()), 1_000);
        assert_eq!(breaker.call(|| Ok::<_, ()>(())), Ok(()));
        let _writer = registry.lock();
        assert_eq!(registry.evict(vec![(1_000, key, breaker)], 1, true), 0, "its activity changed");
        assert!(!breaker.rest().is_evicting());
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn a_breaker_listed_twice_keeps_the_mark_of_its_removal() {
        let registry: Registry<u32> = Registry::new(Config::default()).unwrap();
        let breaker = registry.get_or_insert(&1).unwrap();
        drop(breaker);
        let guard = Guard::new();
        let (key, entry) = registry.map.iter(&guard).next().unwrap();
        let breaker = &entry.0;
        let _writer = registry.lock();
        // As an iteration during a resize may list it.
        assert_eq!(registry.evict(vec![(0, key, breaker), (0, key, breaker)], 2, false), 1);
        assert!(registry.is_empty());
        assert!(breaker.rest().is_evicting(), "a call that changes it must still find the mark");
    }
}
