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
//! Nothing on the call path writes for eviction: how recently a breaker
//! was used is read from its calls and rejections, by the eviction itself.
//!
//! - [`RegistryBuilder::capacity`]: a new key at capacity evicts one
//!   breaker at rest, found by a hand that goes round the registered
//!   breakers (CLOCK, an approximation of least recently used): a breaker
//!   used since the hand last passed is passed over, once if it was called
//!   once, twice if more; one at rest and unheld that was not is evicted. A
//!   lap without such a breaker evicts the one at rest and unheld used
//!   least; two laps without any mean none is at rest: the new key gets
//!   [`RegistryError::Full`] with nothing registered. The hand's reads are
//!   bounded by the evictions plus the calls made, so a new key costs O(1)
//!   amortised whatever the registry's size. A breaker put back by a racing
//!   call may take the registry one past capacity per such race; the next
//!   new key then evicts back down to it.
//! - A refusal stands for a while: for 16 times as long as the search that
//!   found nothing at rest took, and at least a millisecond, on the
//!   registry's clock ([`RegistryBuilder::clock`]), a new key at capacity is
//!   refused at once, without a search and without the writer lock (a key
//!   another caller registered meanwhile is found, not refused). At
//!   capacity during an outage of every downstream, searching then takes
//!   about a seventeenth of the time, and a refused caller pays a clock read
//!   and a lookup. A breaker that comes to rest meanwhile makes room for the
//!   first new key after the refusal ends; a removal makes room at once.
//! - [`RegistryBuilder::idle_after`]: [`Registry::evict_idle`] removes the
//!   breakers at rest and idle that long. Call it from a timer; nothing runs
//!   in the background. Each call notes which breakers' calls and
//!   rejections changed since the last, so a breaker is idle from the first
//!   `evict_idle` that saw its activity stop.
//!
//! # Locks
//!
//! Lookups take none. Every change of the map (a new key, an eviction, a
//! removal, a breaker put back) takes one writer mutex, which also guards
//! the roster of breakers the hand goes round. A search for room and
//! `evict_idle` read at most 64 breakers (their counts: a lock on each and
//! a sum over the threads that called it) per hold of the mutex and let
//! other writers in between, so no writer waits for a pass over the whole
//! registry. A call or `get` that races the eviction of its own breaker
//! takes the mutex to put it back. A new key's breaker is made before the
//! mutex is taken. [`with`](Registry::with) and the calls hold the map's epoch guard while
//! the call runs, which delays the freeing of removed entries (not of live
//! ones) until the longest call in flight ends; an evicted breaker's memory
//! is freed when the map next reuses its slot or resizes.
//!
//! # Hashing
//!
//! Keys are hashed with [`KeyHasher`] unless
//! [`RegistryBuilder::hasher`] names another `BuildHasher`; its docs say
//! what it does against keys chosen to collide.

mod builder;
mod eviction;
mod hasher;
mod refusal;
mod rest;

use core::fmt;
use core::future::Future;
use core::hash::{BuildHasher, Hash};
use std::borrow::Borrow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use breakerbox_core::{ConfigError, State};
use scc::{Guard, HashIndex};

use builder::Make;
use eviction::{Room, Roster, Search};
use refusal::Refusal;
use rest::{RestMark, Severity};

pub use builder::RegistryBuilder;
pub use hasher::{KeyHash, KeyHasher};
pub(crate) use rest::Rest;

use crate::classify::Classify;
use crate::{Breaker, CallFuture, Config, Counts, Error};

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
pub struct Registry<K, S: BuildHasher = KeyHasher> {
    map: HashIndex<K, Entry, S>,
    make: Make<K>,
    capacity: Option<usize>,
    /// Milliseconds.
    idle_after: Option<u64>,
    len: AtomicUsize,
    /// The registered breakers in the order eviction visits them, held by
    /// every change of the map: a new key, an eviction, a removal, a
    /// breaker put back. Lookups never take it.
    writer: Mutex<Roster<K>>,
    /// Until when a new key at capacity is refused without a search.
    refusal: Refusal,
}

/// One of a registered breaker's `Arc`s, in the map or in the roster,
/// counted in the breaker's [`Rest`] from when it is made to when it is
/// dropped (which, for an entry removed from the map, the map does when it
/// likes).
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
        RegistryBuilder::new(config)
    }
}

impl<K, S> Registry<K, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    S: BuildHasher,
{
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
        let mut roster = self.lock();
        let breaker = self.map.peek_with(key, |_, entry| Arc::clone(&entry.0))?;
        self.unregister(&mut roster, key, &breaker).then_some(breaker)
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
    /// (a lock on each, and a sum over the threads that called it), holding
    /// the writer lock for 64 breakers at a time (see [Locks](self#locks)):
    /// a key registered meanwhile may be left for the next time.
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
        match self.idle_after {
            Some(idle_after) => self.sweep_idle(idle_after),
            None => 0,
        }
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
            // force answers for the search it would run.
            if capacity == 0 || (self.len() >= capacity && self.refusal.active()) {
                // The caller's lookup missed, but another caller may have
                // registered the key since: a key that exists is never Full.
                return match self.map.peek_with(key, |_, entry| Arc::clone(&entry.0)) {
                    Some(present) => Ok(self.hold(key, present)),
                    None => Err(RegistryError::Full { capacity }),
                };
            }
        }
        // Made before the writer lock, so that writers do not wait on the
        // allocations; dropped unused if another caller registers the key
        // first.
        let owned = key.to_owned();
        let breaker = Arc::new(self.make.breaker(&owned).map_err(RegistryError::Config)?);
        let roster_key = key.to_owned();
        let mut search = Search::new(self.refusal.now());
        loop {
            let mut roster = self.lock();
            if let Some(present) = self.map.peek_with(key, |_, entry| Arc::clone(&entry.0)) {
                return Ok(present);
            }
            if let Some(capacity) = self.capacity {
                match self.make_room(&mut roster, capacity, &mut search) {
                    Room::Made => {}
                    Room::Full => return Err(RegistryError::Full { capacity }),
                    // Lets other writers in between two stretches of the search.
                    Room::NotYet => continue,
                }
            }
            self.register(&mut roster, owned, roster_key, Arc::clone(&breaker));
            return Ok(breaker);
        }
    }

    /// Adds `breaker` under `key` (twice owned: the map's and the roster's),
    /// absent from the map (under the writer lock).
    fn register(&self, roster: &mut Roster<K>, key: K, roster_key: K, breaker: Arc<Breaker>) {
        if self.map.insert_sync(key, Entry::new(Arc::clone(&breaker))).is_ok() {
            self.len.fetch_add(1, Ordering::Relaxed);
            roster.push(roster_key, Entry::new(breaker));
        }
    }

    /// Removes `breaker` from under `key`, if it is there, from the map and
    /// the roster (under the writer lock).
    fn unregister<Q>(&self, roster: &mut Roster<K>, key: &Q, breaker: &Arc<Breaker>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let removed = self.map.remove_if_sync(key, |entry| Arc::ptr_eq(&entry.0, breaker));
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
            roster.remove(breaker);
        }
        removed
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
        let mut roster = self.lock();
        let rest = breaker.rest();
        if !rest.is_evicting() {
            // The evictor saw the change and kept it, or it is back already.
            return Arc::clone(breaker);
        }
        let Some(present) = self.map.peek_with(key, |_, entry| Arc::clone(&entry.0)) else {
            rest.clear();
            self.register(&mut roster, key.to_owned(), key.to_owned(), Arc::clone(breaker));
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
            self.unregister(&mut roster, key, &present);
            rest.clear();
            self.register(&mut roster, key.to_owned(), key.to_owned(), Arc::clone(breaker));
            return Arc::clone(breaker);
        }
        if returning == Severity::Open && current < Severity::Open {
            // The open state must not be lost with the breaker that had it:
            // the one that stays opens too.
            present.trip();
        }
        present
    }

    fn lock(&self) -> MutexGuard<'_, Roster<K>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Checks, when a call through a registered breaker ends (or unwinds),
/// whether it changed the breaker while an eviction took it out.
struct ChangeCheck<'a, K, S, Q>
where
    K: Hash + Eq + Send + Sync + 'static + Borrow<Q>,
    S: BuildHasher,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    registry: &'a Registry<K, S>,
    key: &'a Q,
    breaker: &'a Arc<Breaker>,
    before: RestMark,
}

impl<K, S, Q> Drop for ChangeCheck<'_, K, S, Q>
where
    K: Hash + Eq + Send + Sync + 'static + Borrow<Q>,
    S: BuildHasher,
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
fn changed<K, S, Q>(registry: &Registry<K, S>, key: &Q, breaker: &Arc<Breaker>)
where
    K: Hash + Eq + Send + Sync + 'static + Borrow<Q>,
    S: BuildHasher,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    if breaker.rest().evicting_after_change() {
        let _ = registry.put_back(key, breaker);
    }
}

impl<K, S: BuildHasher> fmt::Debug for Registry<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .field("idle_after_ms", &self.idle_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakerbox_core::quanta;
    use core::time::Duration;

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
            // What the hand does to a breaker it evicts.
            let mut roster = registry.lock();
            evicted.rest().mark_evicting();
            assert!(registry.unregister(&mut roster, &1, &evicted));
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
        let mut roster = registry.lock();
        let mut search = Search::new(registry.refusal.now());
        assert!(matches!(registry.make_room(&mut roster, 1, &mut search), Room::Full));
        assert_eq!((registry.len(), search.read()), (1, 0), "no search");
        mock.increment(Duration::from_millis(1));
        assert!(matches!(registry.make_room(&mut roster, 1, &mut search), Room::Made), "the hand evicts key 1");
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
    fn an_eviction_keeps_a_breaker_called_after_it_was_read() {
        let registry: Registry<u32> = Registry::new(Config::default()).unwrap();
        registry.call(&1, || Ok::<_, ()>(())).unwrap().unwrap();
        let breaker = registry.get(&1).unwrap();
        let read = breaker.activity();
        drop(breaker);
        // Read at rest, as the hand or a sweep reads it; then called before
        // the eviction, as another thread may call it.
        registry.call(&1, || Ok::<_, ()>(())).unwrap().unwrap();
        let mut roster = registry.lock();
        assert!(!registry.evict(&mut roster, 0, read), "its activity changed");
        assert!(!registry.get(&1).unwrap().rest().is_evicting());
        assert!(registry.evict(&mut roster, 0, read + 1));
        assert!(registry.is_empty());
    }

    #[test]
    fn the_hand_passes_over_a_breaker_used_since_it_last_passed() {
        let (clock, _mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(2).build().unwrap();
        registry.call(&1, || Ok::<_, ()>(())).unwrap().unwrap();
        registry.call(&2, || Ok::<_, ()>(())).unwrap().unwrap();
        // Both used since registered: the hand notes that and, a lap on,
        // evicts the first (key 1).
        registry.call(&3, || Ok::<_, ()>(())).unwrap().unwrap();
        assert!(registry.get(&1).is_none());
        // Key 2 is used again; 3 is new, used once: the hand reaches 2 first
        // and passes it over, then 3, then evicts 2, unused since.
        registry.call(&2, || Ok::<_, ()>(())).unwrap().unwrap();
        registry.call(&4, || Ok::<_, ()>(())).unwrap().unwrap();
        let mut keys: Vec<u32> = registry.health().into_iter().map(|row| row.key).collect();
        keys.sort_unstable();
        assert_eq!(keys, [3, 4]);
    }

    #[test]
    fn a_lap_of_used_breakers_evicts_the_least_used() {
        let (clock, _mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(4).build().unwrap();
        for (key, calls) in [(0, 4), (1, 1), (2, 8), (3, 2)] {
            for _ in 0..calls {
                registry.call(&key, || Ok::<_, ()>(())).unwrap().unwrap();
            }
        }
        // All used since made, so all have credit: not the first under the
        // hand (key 0) but the one with the least (key 1, used once) goes.
        registry.call(&4, || Ok::<_, ()>(())).unwrap().unwrap();
        let mut keys: Vec<u32> = registry.health().into_iter().map(|row| row.key).collect();
        keys.sort_unstable();
        assert_eq!(keys, [0, 2, 3, 4]);
    }

    /// Takes `key`'s breaker out as an eviction does, and returns it.
    fn evict_key(registry: &Registry<u32>, key: u32) -> Arc<Breaker> {
        let breaker = registry.get(&key).unwrap();
        let mut roster = registry.lock();
        breaker.rest().mark_evicting();
        assert!(registry.unregister(&mut roster, &key, &breaker));
        breaker
    }

    fn keys(registry: &Registry<u32>) -> Vec<u32> {
        let mut keys: Vec<u32> = registry.health().into_iter().map(|row| row.key).collect();
        keys.sort_unstable();
        keys
    }

    fn call(registry: &Registry<u32>, key: u32, times: usize) {
        for _ in 0..times {
            registry.call(&key, || Ok::<_, ()>(())).unwrap().unwrap();
        }
    }

    #[test]
    fn the_least_used_breaker_is_the_one_with_least_credit_then_least_use() {
        let (clock, _mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(3).build().unwrap();
        for (key, times) in [(1, 1), (2, 2), (3, 1)] {
            call(&registry, key, times);
        }
        call(&registry, 4, 1); // the lap's least used: key 1; key 3 moves into its slot
        assert_eq!(keys(&registry), [2, 3, 4]);
        call(&registry, 3, 1);
        // Key 3 (first in the roster) earned a credit and spends it; key 2,
        // unused, spends its last one: of the two at no credit, key 2 was
        // used less. A second lap would have taken key 3.
        call(&registry, 5, 1);
        assert_eq!(keys(&registry), [3, 4, 5]);
    }

    #[test]
    fn a_held_breaker_is_never_the_least_used() {
        let (clock, _mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(3).build().unwrap();
        for (key, times) in [(1, 1), (2, 5), (3, 5)] {
            call(&registry, key, times);
        }
        let held = registry.get(&1).unwrap();
        call(&registry, 4, 1);
        assert_eq!(keys(&registry), [1, 3, 4]);
        drop(held);
    }

    #[test]
    fn a_new_key_over_capacity_evicts_back_below_it() {
        let (clock, _mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(2).build().unwrap();
        call(&registry, 1, 1);
        call(&registry, 2, 1);
        call(&registry, 3, 1); // the lap's least used, key 1, goes; key 2 is noted
        // Key 3's breaker evicted mid-call, a fresh key 4, then the call
        // fails: key 3 comes back, one past the capacity.
        let evicted = evict_key(&registry, 3);
        call(&registry, 4, 1);
        assert!(evicted.call(|| Err::<(), _>(())).is_err());
        let _ = registry.put_back(&3, &evicted);
        assert_eq!(registry.len(), 3);
        // Key 2, unused since noted, goes first and leaves the registry at
        // capacity; key 4, the lap's least used, second; key 3 counts a
        // failure and stays.
        call(&registry, 5, 1);
        assert_eq!(keys(&registry), [3, 5]);
        // Again from a lap of breakers all used since made: the lap-end
        // eviction (key 1) leaves it at capacity, and the second lap takes
        // key 3.
        let (clock, _mock) = quanta::Clock::mock();
        let registry: Registry<u32> = Registry::builder(Config::default()).clock(clock).capacity(2).build().unwrap();
        call(&registry, 1, 1);
        call(&registry, 2, 1);
        let evicted = evict_key(&registry, 2);
        call(&registry, 3, 1);
        assert!(evicted.call(|| Err::<(), _>(())).is_err());
        let _ = registry.put_back(&2, &evicted);
        assert_eq!(registry.len(), 3);
        call(&registry, 4, 1);
        assert_eq!(keys(&registry), [2, 4]);
    }

    #[test]
    fn the_hand_refuses_only_when_nothing_is_at_rest() {
        let (clock, mock) = quanta::Clock::mock();
        let config = Config { threshold: 1, ..Config::default() };
        let registry: Registry<u32> = Registry::builder(config).clock(clock).capacity(3).build().unwrap();
        for key in 1..=3 {
            let _ = registry.call(&key, || Err::<(), _>(()));
        }
        assert_eq!(registry.call(&4, || Ok::<_, ()>(())).unwrap_err(), RegistryError::Full { capacity: 3 });
        mock.increment(Duration::from_secs(60));
        // Key 2 closes; the others stay open (their probes were never made).
        registry.call(&2, || Ok::<_, ()>(())).unwrap().unwrap();
        registry.call(&4, || Ok::<_, ()>(())).unwrap().unwrap();
        assert!(registry.get(&2).is_none(), "the one at rest went");
        assert_eq!(registry.len(), 3);
    }
}
