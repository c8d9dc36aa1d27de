//! A circuit breaker for calls to a downstream service: fast when all is
//! well, fast to say no when it is not.
//!
//! After `threshold` consecutive failures the breaker opens and rejects calls
//! at once instead of letting them wait on a dead service; after `timeout` it
//! lets up to `half_open_max` probes through; the first probe success closes
//! it, the first probe failure reopens it.
//!
//! ```
//! use breakerbox::{Breaker, Config, Error};
//! use std::time::Duration;
//!
//! let breaker = Breaker::new(Config { threshold: 5, timeout: Duration::from_secs(30), half_open_max: 1 })?;
//!
//! match breaker.call(|| fetch_user(42)) {
//!     Ok(user) => println!("hello, {user}"),
//!     Err(Error::Open(_)) => println!("user service is down; serving a cached page"),
//!     Err(Error::Inner(err)) => println!("the call failed: {err}"),
//! }
//! # fn fetch_user(id: u32) -> Result<String, std::io::Error> { Ok(format!("user {id}")) }
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```
//!
//! # From the Go package
//!
//! | Go `circuitbreaker` | this crate |
//! |---|---|
//! | `New(Config{...})` (zero fields take the defaults) | [`Breaker::new`] (zero fields take the same defaults; a value too large for the state word is a [`ConfigError`]) |
//! | `cb.Do(ctx, fn)` | [`Breaker::call`], [`Breaker::call_async`] |
//! | `cb.DoWithFallback(ctx, fn, fallback)` | [`Breaker::call_with_fallback`], [`Breaker::call_async`]`(..).`[`fallback`](CallFuture::fallback)`(..)` |
//! | `cb.State()` | [`Breaker::state`] |
//! | `cb.Counts()` | [`Breaker::counts`] |
//! | `ErrOpen`, `errors.Is(err, ErrOpen)` | [`Error::Open`], [`Error::is_open`]; from the tower service, a boxed [`Rejected`] (`err.is::<Rejected>()`) |
//! | context cancellation does not count | [`Outcome::Ignored`] from a [`Classify`] ([`Breaker::call_with`], [`CallFuture::classify`]), or drop the future |
//!
//! Where it is stricter than the Go package: a result that arrives after the
//! breaker changed state is stale and changes nothing; half-open limits probes
//! *in flight*, so an ignored or abandoned probe frees its slot; a probe that
//! never returns cannot wedge the breaker (after `timeout` a fresh probe is let
//! through, while the hung one may still be running); [`Breaker::state`] has no side effects; a panic in the wrapped
//! call counts as a failure.
//!
//! # Beyond the Go package
//!
//! Off by default, on the [`Builder`]: [`Builder::backoff`] (each open in a
//! row longer, up to a cap, spread by [`Jitter`]), [`Builder::success_threshold`]
//! (several probe successes of one round to close); and on the breaker,
//! [`Breaker::trip_for`] (open for a `Retry-After`) and [`Breaker::isolate`]
//! (held open until [`Breaker::reset`]). Each lives in the core's state word
//! and changes with the transition it belongs to. Also on the builder:
//! [`Builder::failure_rate`] (open when too many calls over a sliding window
//! of time failed, a [`FailureRate`]), [`Builder::slow_call`] (a success that
//! took too long is a failure) and [`Builder::consecutive_failures`] (switch
//! the Go package's rule off); their per-thread windows live beside the
//! counters, and the opening is the same single CAS on the word.
//!
//! # Cost
//!
//! A closed breaker admits a call with one atomic load and counts it in a
//! slot only the calling thread writes, so threads sharing a breaker do not
//! write a shared cache line while the downstream is healthy (a thread's
//! first call on a breaker registers its slot, under a mutex). The state
//! machine lives in [`breakerbox_core`]; see its docs for the packed state word.
//!
//! Rejecting a call while open reads the clock, which is most of its cost
//! (`BENCHMARKS.md` in the repository has the numbers). A program whose breakers reject at high rates can opt
//! into a coarse clock kept by a background thread, [`RecentClock`], with
//! [`Builder::recent_clock`].
//!
//! # Observability
//!
//! A breaker can have a name ([`Builder::name`]) and a transition listener
//! ([`Builder::on_transition`]): the listener hears each change of state
//! once, as a [`Transition`] with its [`Reason`] and a sequence number,
//! from the thread whose compare-and-swap made it. [`Counts`] adds up calls,
//! rejections and opens across threads, exactly, whenever it is read. None of
//! this runs on a healthy call. Three optional features build on it:
//!
//! - `tracing`: one `tracing` event per transition (target `breakerbox`, `warn`
//!   when it opens, `info` otherwise), with fields `name`, `from`, `to`,
//!   `reason` and `sequence`, for every breaker without a listener of its
//!   own. Each such breaker holds a 32-byte box pointing at the tracing
//!   listener (shared by all breakers without a listener of their own);
//!   nothing happens per call.
//! - `prometheus`: [`prometheus::BreakerCollector`], a `prometheus-client`
//!   collector that reads registered breakers' counts and state at scrape
//!   time.
//! - `serde`: `Serialize` for [`State`], [`Counts`], [`Reason`],
//!   [`Transition`] and [`Config`], and a validated `Deserialize` for
//!   [`Config`] and for [`Settings`], a config file's entry for one breaker
//!   with the builder's rules (failure rate, slow calls, backoff, success
//!   threshold).
//!
//! ```
//! use breakerbox::{Breaker, Config, Reason, State};
//! use std::sync::{Arc, Mutex};
//!
//! let (clock, mock) = breakerbox::quanta::Clock::mock();
//! let log = Arc::new(Mutex::new(Vec::new()));
//! let sink = Arc::clone(&log);
//! let users = Breaker::builder(Config { threshold: 1, ..Config::default() })
//!     .clock(clock)
//!     .name("users")
//!     .on_transition(move |t| sink.lock().unwrap().push((t.to(), t.reason())))
//!     .build()?;
//! let _ = users.call(|| Err::<(), _>("refused"));
//! mock.increment(std::time::Duration::from_secs(30));
//! let _ = users.call(|| Ok::<_, &str>(()));
//! assert_eq!(*log.lock().unwrap(), [
//!     (State::Open, Reason::ThresholdReached),
//!     (State::HalfOpen, Reason::TimeoutElapsed),  // lazily, at the first call after the timeout
//!     (State::Closed, Reason::ProbeSucceeded),
//! ]);
//! assert_eq!(users.counts().opens, 1);
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```
//!
//! # Time in tests
//!
//! The breaker runs on a [`quanta`] clock, and `quanta::Clock::mock()` gives
//! a test full control of it: pass the clock to [`Breaker::with_clock`] (or
//! [`Builder::clock`]) and move time with the `Mock` handle; no test needs to
//! sleep. A test that pauses tokio's time (`tokio::time::pause`) does not move
//! quanta's: advance the mock by the same amount alongside.
//!
//! `quanta` is a public dependency: its `Clock` is in this crate's API, and
//! it is re-exported as [`breakerbox::quanta`](crate::quanta) so tests use the
//! same version. A major version of quanta will come with a major version of
//! this crate. A clock trait of our own would let other clocks drive a
//! breaker, but would put an indirect call (or a type parameter on
//! `Breaker`) on every clock read, which is most of what a rejection costs;
//! the mock already covers tests.

// docs.rs builds with `--cfg docsrs` on nightly: each feature-gated item then
// carries a badge naming its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod breaker;
mod builder;
mod call_future;
mod classify;
mod counts;
mod error;
mod fallback;
mod lane;
mod local;
mod permit;
#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "registry")]
pub mod registry;
mod rules;
mod settings;
#[cfg(feature = "tower")]
pub mod tower;
#[cfg(feature = "tracing")]
mod trace;
mod unwind;

pub use crate::breaker::Breaker;
pub use builder::Builder;
pub use call_future::CallFuture;
pub use classify::{ByResult, Classify};
pub use counts::Counts;
pub use error::Error;
pub use fallback::Fallback;
pub use permit::{OwnedPermit, Permit};
#[cfg(feature = "registry")]
pub use registry::{Registry, RegistryError};
pub use settings::Settings;

pub use breakerbox_core::{
    Backoff, Config, ConfigError, CoreBreaker, FailureRate, Jitter, Outcome, Reason, RecentClock, Recorded, Rejected,
    State, Timestamp, Transition,
};

/// The clock crate the breaker runs on, re-exported so that
/// `breakerbox::quanta::Clock::mock()` in tests matches the breaker's version.
pub use breakerbox_core::quanta;
