//! A circuit breaker's whole state machine in one `AtomicU64`.
//!
//! This is the core under the [`breakerbox`](https://docs.rs/breakerbox) facade,
//! for libraries that embed a breaker in their own hot path. The state
//! (closed, open, half-open), the failure or probe count, a transition epoch
//! and the time of the last transition share one word ([`StateWord`]); every
//! transition is one compare-and-swap computed by a pure function, and a
//! healthy closed breaker is only ever loaded, never written, so threads
//! sharing it do not contend.
//!
//! ```
//! use breakerbox_core::{Config, CoreBreaker, Outcome, Recorded, State};
//! use std::time::Duration;
//!
//! let (clock, mock) = breakerbox_core::quanta::Clock::mock();
//! let breaker = CoreBreaker::with_clock(Config { threshold: 1, ..Config::default() }, clock)?;
//!
//! let slow = breaker.acquire()?;          // a call admitted while closed...
//! let fast = breaker.acquire()?;
//! breaker.record(fast, Outcome::Failure); // ...the breaker opens...
//! assert_eq!(breaker.state(), State::Open);
//! // ...and the slow call's late result is stale: it changes nothing.
//! assert_eq!(breaker.record(slow, Outcome::Success), Recorded::Stale);
//! assert_eq!(breaker.state(), State::Open);
//!
//! mock.increment(Duration::from_secs(30));
//! assert_eq!(breaker.state(), State::HalfOpen);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Semantics follow the Go package `mist-go/circuitbreaker`, made stricter:
//! results are matched to the generation they were admitted in, a half-open
//! breaker limits probes *in flight* (an ignored probe frees its slot), probes
//! that never report cannot wedge it, and reading the state has no side
//! effects. `docs/ARCHITECTURE.md` in the repository has the transition
//! table and the orderings, and the bit layout, which is not part of the API.
//!
//! A closed breaker's `acquire` and a healthy `record` are each one load and
//! a compare, inlined into the caller; everything else they do (anything that
//! may write or needs the time) is an out-of-line call. The clock is read
//! there and by `state` on an open breaker, `trip`, `reset` and `now`: the raw
//! cycle counter by default, or, opted into with [`RecentClock`], a coarse
//! time a background thread keeps, which makes an open breaker's rejections
//! cheaper at the price of about a millisecond of lag.
//!
//! A breaker built with [`CoreBreaker::builder`] can carry a name and a
//! transition listener: each change of state is reported once, as a
//! [`Transition`] with its [`Reason`] and a sequence number, by the thread
//! whose CAS made it, right after the CAS. [`CoreBreaker::opens`] counts
//! changes into open whether or not anyone listens. The `serde` feature
//! serializes [`State`], [`Reason`], [`Transition`] and [`Config`], and
//! deserializes a [`Config`] with the same validation as
//! [`Config::validate`]:
//!
//! ```
//! # #[cfg(feature = "serde")] {
//! use breakerbox_core::Config;
//! use std::time::Duration;
//!
//! let config: Config = serde_json::from_str(r#"{ "threshold": 3, "timeout_ms": 1500 }"#).unwrap();
//! assert_eq!(config, Config { threshold: 3, timeout: Duration::from_millis(1500), half_open_max: 0 });
//! let err = serde_json::from_str::<Config>(r#"{ "threshold": 70000 }"#).unwrap_err();
//! assert!(err.to_string().contains("threshold = 70000 is over the limit of 65535"), "{err}");
//! # }
//! ```
//!
//! A rule kept outside the breaker (the facade's failure rate over a sliding
//! window, or one of your own) opens it with [`CoreBreaker::open_on_rate`]:
//! the same single CAS as any transition, and only if the breaker is still
//! closed in the generation of the call that tipped the rule.
//!
//! The breaker orders only itself: loads of the word are `Relaxed` and so is
//! everything on the healthy path (see the `# Orderings` section of the
//! cell's source), so do not use its state to publish your own data between
//! threads.

// docs.rs builds with `--cfg docsrs` on nightly: each feature-gated item then
// carries a badge naming its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

// Outside semver: what the facade and the workspace's tests need and users
// should not touch. See its docs, and docs/ARCHITECTURE.md for why a hidden
// module rather than an internal crate.
#[doc(hidden)]
pub mod __private;
mod backoff;
mod breaker;
mod builder;
mod cell;
mod config;
mod evict;
mod observe;
mod recent_clock;
#[cfg(feature = "serde")]
mod serde_impls;
mod sync;
mod ticket;
mod time;
mod transition;
mod window;
mod word;

pub use backoff::{Backoff, Jitter};
pub use breaker::CoreBreaker;
pub use builder::Builder;
pub use config::{Config, ConfigError, ValidConfig};
pub use observe::{Reason, Transition};
pub use recent_clock::RecentClock;
pub use ticket::{Outcome, Recorded, Rejected, Ticket};
pub use time::{TICK, Timestamp};
pub use window::FailureRate;
pub use word::{State, StateWord};

/// The clock crate the breaker runs on, re-exported so that
/// `quanta::Clock::mock()` in tests matches the breaker's version.
pub use quanta;

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
