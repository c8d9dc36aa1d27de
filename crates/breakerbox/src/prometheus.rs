//! The `prometheus` feature: a [`prometheus_client`] collector that reads
//! every registered breaker's counts and state when it is scraped.
//!
//! Nothing happens per call: the breaker already keeps exact counts (in
//! slots only the calling thread writes) and the collector adds them up at
//! scrape time. Registering a breaker costs one entry in the collector's
//! list.
//!
//! The series, one set per breaker, labelled with its name:
//!
//! | series | type | value |
//! |---|---|---|
//! | `circuit_breaker_calls_total{breaker, outcome="success"}` | counter | [`Counts::successes`](crate::Counts::successes) |
//! | `circuit_breaker_calls_total{breaker, outcome="failure"}` | counter | [`Counts::failures`](crate::Counts::failures) |
//! | `circuit_breaker_calls_total{breaker, outcome="rejected"}` | counter | [`Counts::rejections`](crate::Counts::rejections) |
//! | `circuit_breaker_state{breaker, state="closed" \| "open" \| "half_open"}` | gauge | 1 for the state [`Breaker::state`] reads, 0 for the others |
//! | `circuit_breaker_opens_total{breaker}` | counter | [`Counts::opens`](crate::Counts::opens): changes of state into open |
//!
//! A scrape reads each breaker's counts and then its state; a call that
//! finishes in between shows in one and not the other, as with any
//! collector of live values.
//!
//! ```
//! use breakerbox::prometheus::BreakerCollector;
//! use breakerbox::{Breaker, Config};
//! use prometheus_client::registry::Registry;
//! use std::sync::Arc;
//!
//! let users = Arc::new(Breaker::builder(Config::default()).name("users").build()?);
//! let collector = BreakerCollector::new();
//! collector.register(&users)?;
//! let mut registry = Registry::default();
//! registry.register_collector(Box::new(collector.clone())); // a handle: later registrations show too
//!
//! let _ = users.call(|| Ok::<_, ()>(()));
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! assert!(text.contains(r#"circuit_breaker_calls_total{breaker="users",outcome="success"} 1"#), "{text}");
//! assert!(text.contains(r#"circuit_breaker_state{breaker="users",state="closed"} 1"#), "{text}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use std::sync::{Arc, PoisonError, RwLock, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::{Breaker, Counts, State};

/// A [`Collector`] of breakers: register it once with a
/// `prometheus_client` `Registry` (a clone is a handle to the same list), and
/// register breakers with it whenever they are made.
///
/// It holds `Arc`-shared breakers weakly: a breaker dropped everywhere else
/// leaves the scrape (and its name becomes free again); the collector lets go
/// of its memory (the `Arc`'s allocation, which a weak reference keeps) at
/// the next registration.
#[derive(Clone, Default)]
pub struct BreakerCollector {
    breakers: Arc<RwLock<Vec<Registered>>>,
}

enum Registered {
    Shared(Weak<Breaker>),
    Static(&'static Breaker),
    /// Every named breaker a keyed registry holds at scrape time.
    #[cfg(feature = "registry")]
    Keyed(Weak<dyn Breakers>),
}

/// What the collector needs of a [`Registry`](crate::Registry), whatever
/// its key type.
#[cfg(feature = "registry")]
trait Breakers: Send + Sync {
    fn each(&self, f: &mut dyn FnMut(&Breaker));
}

#[cfg(feature = "registry")]
impl<K: core::hash::Hash + Eq + Send + Sync + 'static> Breakers for crate::Registry<K> {
    fn each(&self, f: &mut dyn FnMut(&Breaker)) {
        self.for_each(|_, breaker| f(breaker));
    }
}

impl Registered {
    /// Calls `read` with each live breaker this entry stands for.
    fn each(&self, read: &mut dyn FnMut(&Breaker)) {
        match self {
            Registered::Shared(weak) => {
                if let Some(breaker) = weak.upgrade() {
                    read(&breaker);
                }
            }
            Registered::Static(breaker) => read(breaker),
            #[cfg(feature = "registry")]
            Registered::Keyed(weak) => {
                if let Some(registry) = weak.upgrade() {
                    registry.each(read);
                }
            }
        }
    }

    /// Whether what this entry stands for is still alive.
    fn alive(&self) -> bool {
        match self {
            Registered::Shared(weak) => weak.strong_count() > 0,
            Registered::Static(_) => true,
            #[cfg(feature = "registry")]
            Registered::Keyed(weak) => weak.strong_count() > 0,
        }
    }

    /// Whether this entry is a breaker named `name`.
    fn is_named(&self, name: &str) -> bool {
        match self {
            #[cfg(feature = "registry")]
            Registered::Keyed(_) => false,
            _ => {
                let mut named = false;
                self.each(&mut |breaker| named |= breaker.name() == name);
                named
            }
        }
    }
}

/// Why [`BreakerCollector::register`] refused a breaker: its series would
/// be indistinguishable from another's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// The breaker has no name ([`Builder::name`](crate::Builder::name)),
    /// which the `breaker` label needs.
    Unnamed,
    /// A live registered breaker already has this name.
    Duplicate(String),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Unnamed => f.write_str("a breaker needs a name to be collected (Builder::name)"),
            RegisterError::Duplicate(name) => write!(f, "a breaker named {name:?} is already registered"),
        }
    }
}

impl std::error::Error for RegisterError {}

impl BreakerCollector {
    /// A collector with no breakers.
    pub fn new() -> BreakerCollector {
        BreakerCollector::default()
    }

    /// Adds a breaker to every later scrape, until it is dropped. It must
    /// have a name no other live registered breaker has.
    ///
    /// ```
    /// use breakerbox::prometheus::{BreakerCollector, RegisterError};
    /// use breakerbox::{Breaker, Config};
    /// use std::sync::Arc;
    ///
    /// let collector = BreakerCollector::new();
    /// let anonymous = Arc::new(Breaker::default());
    /// assert_eq!(collector.register(&anonymous), Err(RegisterError::Unnamed));
    /// ```
    pub fn register(&self, breaker: &Arc<Breaker>) -> Result<(), RegisterError> {
        self.add(breaker.name(), Registered::Shared(Arc::downgrade(breaker)))
    }

    /// [`register`](Self::register) for a breaker in a `static`, held for
    /// good.
    pub fn register_static(&self, breaker: &'static Breaker) -> Result<(), RegisterError> {
        self.add(breaker.name(), Registered::Static(breaker))
    }

    /// Adds every named breaker of a keyed [`Registry`](crate::Registry)
    /// to every later scrape, as the registry holds them at that scrape,
    /// until the registry is dropped (features `prometheus` and `registry`).
    /// Name the breakers with
    /// [`name_keys`](crate::registry::RegistryBuilder::name_keys) or
    /// [`name_with`](crate::registry::RegistryBuilder::name_with); unnamed
    /// ones are left out. Names are not checked against other registrations:
    /// keys come and go after this call.
    ///
    /// ```
    /// use breakerbox::prometheus::BreakerCollector;
    /// use breakerbox::{Config, Registry};
    /// use std::sync::Arc;
    ///
    /// let hosts: Arc<Registry<String>> = Arc::new(Registry::builder(Config::default()).name_keys().build()?);
    /// let collector = BreakerCollector::new();
    /// collector.register_registry(&hosts);
    /// let mut metrics = prometheus_client::registry::Registry::default();
    /// metrics.register_collector(Box::new(collector.clone()));
    ///
    /// hosts.call("10.0.0.7:443", || Ok::<_, ()>(()))?.unwrap(); // a key first seen after registering
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &metrics)?;
    /// assert!(text.contains(r#"circuit_breaker_calls_total{breaker="10.0.0.7:443",outcome="success"} 1"#), "{text}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "registry")]
    pub fn register_registry<K>(&self, registry: &Arc<crate::Registry<K>>)
    where
        K: core::hash::Hash + Eq + Send + Sync + 'static,
    {
        let registry: Arc<dyn Breakers> = Arc::clone(registry) as Arc<dyn Breakers>;
        let mut breakers = self.breakers.write().unwrap_or_else(PoisonError::into_inner);
        breakers.retain(Registered::alive);
        breakers.push(Registered::Keyed(Arc::downgrade(&registry)));
    }

    fn add(&self, name: &str, entry: Registered) -> Result<(), RegisterError> {
        if name.is_empty() {
            return Err(RegisterError::Unnamed);
        }
        let mut breakers = self.breakers.write().unwrap_or_else(PoisonError::into_inner);
        // Registration is rare: prune the dropped ones here, not at scrape.
        breakers.retain(Registered::alive);
        if breakers.iter().any(|registered| registered.is_named(name)) {
            return Err(RegisterError::Duplicate(name.to_string()));
        }
        breakers.push(entry);
        Ok(())
    }

    /// The live registered breakers' names, counts and states, read now;
    /// a registry's unnamed breakers are left out.
    fn read(&self) -> Vec<(String, Counts, State)> {
        let breakers = self.breakers.read().unwrap_or_else(PoisonError::into_inner);
        let mut read = Vec::with_capacity(breakers.len());
        for registered in breakers.iter() {
            registered.each(&mut |b| {
                if !b.name().is_empty() {
                    read.push((b.name().to_string(), b.counts(), b.state()));
                }
            });
        }
        read
    }
}

impl Collector for BreakerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let breakers = self.read();
        {
            let help = "Calls through the circuit breaker, by outcome (rejected: not let through)";
            let mut family = encoder.encode_descriptor("circuit_breaker_calls", help, None, MetricType::Counter)?;
            for (name, counts, _) in &breakers {
                for (outcome, value) in
                    [("success", counts.successes), ("failure", counts.failures), ("rejected", counts.rejections)]
                {
                    let labels = [("breaker", name.as_str()), ("outcome", outcome)];
                    ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let help = "Circuit breaker state: 1 for the current one";
            let mut family = encoder.encode_descriptor("circuit_breaker_state", help, None, MetricType::Gauge)?;
            for (name, _, current) in &breakers {
                for state in [State::Closed, State::Open, State::HalfOpen] {
                    let labels = [("breaker", name.as_str()), ("state", state.as_str())];
                    ConstGauge::new(i64::from(state == *current)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let help = "Times the circuit breaker changed state into open";
        let mut family = encoder.encode_descriptor("circuit_breaker_opens", help, None, MetricType::Counter)?;
        for (name, counts, _) in &breakers {
            ConstCounter::new(counts.opens).encode(family.encode_family(&[("breaker", name.as_str())])?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for BreakerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.read().into_iter().map(|(name, ..)| name).collect();
        f.debug_struct("BreakerCollector").field("breakers", &names).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, PoisonError};

    use super::BreakerCollector;
    use crate::{Breaker, Config};

    fn entries(collector: &BreakerCollector) -> usize {
        collector.breakers.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn named(name: &str) -> Arc<Breaker> {
        Arc::new(Breaker::builder(Config::default()).name(name).build().unwrap())
    }

    // Scrapes skip a dropped breaker either way; only the entry count shows
    // that registration prunes it rather than keeping it forever.
    #[test]
    fn registering_prunes_the_entries_of_dropped_breakers() {
        let collector = BreakerCollector::new();
        collector.register(&named("users")).unwrap();
        let kept = named("orders");
        collector.register(&kept).unwrap();
        assert_eq!(entries(&collector), 1, "the dropped users breaker was pruned");
        #[cfg(feature = "registry")]
        {
            collector.register_registry(&Arc::new(crate::Registry::<u32>::new(Config::default()).unwrap()));
            collector.register(&named("later")).unwrap();
            assert_eq!(entries(&collector), 2, "orders and later: the dropped registry was pruned");
        }
    }
}
