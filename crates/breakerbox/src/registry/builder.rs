//! [`RegistryBuilder`]: how a registry makes its breakers, names them, and
//! when it evicts them.

use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::time::Duration;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use breakerbox_core::{ConfigError, quanta};
use scc::HashIndex;

use super::eviction::Roster;
use super::refusal::Refusal;
use super::{KeyHasher, Registry};
use crate::{Breaker, Builder, Config};

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
pub struct RegistryBuilder<K, S = KeyHasher> {
    config: Config,
    hasher: S,
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
    pub(super) fn new(config: Config) -> RegistryBuilder<K> {
        RegistryBuilder {
            config,
            hasher: KeyHasher::default(),
            clock: None,
            per_key: None,
            names: None,
            capacity: None,
            idle_after: None,
        }
    }
}

impl<K, S> RegistryBuilder<K, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Hashes keys with `hasher` instead of the default [`KeyHasher`]: for
    /// example `std::hash::RandomState` (SipHash) where keys come from
    /// untrusted input and the strongest guard against flooding matters more
    /// than lookup speed (see [`KeyHasher`]).
    ///
    /// ```
    /// use breakerbox::{Config, Registry};
    /// use std::hash::RandomState;
    ///
    /// let tenants: Registry<String, RandomState> =
    ///     Registry::builder(Config::default()).hasher(RandomState::new()).build()?;
    /// tenants.call("acme", || Ok::<_, ()>(()))?.unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hasher<H: BuildHasher>(self, hasher: H) -> RegistryBuilder<K, H> {
        let RegistryBuilder { config, hasher: _, clock, per_key, names, capacity, idle_after } = self;
        RegistryBuilder { config, hasher, clock, per_key, names, capacity, idle_after }
    }

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
    /// failure rate, a listener per key. Called for a new key before the
    /// registry's writer lock is taken, once per caller that finds the key
    /// new (callers racing for one key each make a breaker; one is
    /// registered, the others are dropped unused). A builder whose config
    /// does not fit makes that key's calls fail with
    /// [`RegistryError::Config`](super::RegistryError::Config).
    pub fn per_key(self, per_key: impl Fn(&K) -> Builder + Send + Sync + 'static) -> Self {
        RegistryBuilder { per_key: Some(Box::new(per_key)), ..self }
    }

    /// Names each breaker `name(key)` (overriding a name `per_key` gave):
    /// the name its transitions, tracing events and metrics carry. Runs
    /// when `per_key` does.
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

    /// Holds at most `capacity` breakers: at capacity, a new key evicts a
    /// breaker at rest not used since the eviction hand last passed, or is
    /// refused with [`RegistryError::Full`](super::RegistryError::Full) if
    /// none is at rest; a refusal then stands for a while without another
    /// search (see the [module docs](super)). A capacity of 0 refuses every
    /// key.
    pub fn capacity(self, capacity: usize) -> Self {
        RegistryBuilder { capacity: Some(capacity), ..self }
    }

    /// A breaker at rest is removed by [`Registry::evict_idle`] once `idle`
    /// (rounded up to whole milliseconds) has passed since the first
    /// `evict_idle` that saw its calls and rejections where they still are:
    /// `evict_idle`, not calls, notices activity, so idle time is counted
    /// from one.
    pub fn idle_after(self, idle: Duration) -> Self {
        RegistryBuilder { idle_after: Some(idle), ..self }
    }

    /// The registry, or the [`ConfigError`] of its config (checked now,
    /// unless [`per_key`](Self::per_key) replaces it).
    pub fn build(self) -> Result<Registry<K, S>, ConfigError> {
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
            map: HashIndex::with_capacity_and_hasher(map_capacity(self.capacity), self.hasher),
            make: Make { per_key, names: self.names },
            capacity: self.capacity,
            idle_after,
            len: AtomicUsize::new(0),
            writer: Mutex::new(Roster::default()),
            refusal,
        })
    }
}

/// The map's initial capacity for a registry of `capacity` breakers: twice
/// that, so that at capacity, where every new key removes an entry and adds
/// one, the removed entries the map keeps until it may free them spread
/// over enough buckets not to lengthen lookups; up to 65,536, beyond which
/// the map grows as it fills.
fn map_capacity(capacity: Option<usize>) -> usize {
    capacity.map_or(0, |capacity| capacity.saturating_mul(2).clamp(4_096, 1 << 16))
}

impl<K, S> fmt::Debug for RegistryBuilder<K, S> {
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

/// How a registry makes the breaker for a key.
pub(super) struct Make<K> {
    per_key: PerKey<K>,
    names: Option<Names<K>>,
}

type PerKey<K> = Box<dyn Fn(&K) -> Builder + Send + Sync>;
type Names<K> = Box<dyn Fn(&K) -> String + Send + Sync>;

impl<K> Make<K> {
    pub(super) fn breaker(&self, key: &K) -> Result<Breaker, ConfigError> {
        let builder = (self.per_key)(key);
        match &self.names {
            Some(name) => builder.name(name(key)),
            None => builder,
        }
        .build()
    }
}
