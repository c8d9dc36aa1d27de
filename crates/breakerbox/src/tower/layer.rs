//! [`CircuitBreakerLayer`]: wraps a service in a [`CircuitBreakerService`].

use core::ops::Deref;
use std::sync::Arc;

use tower_layer::Layer;

use crate::Breaker;
use crate::classify::ByResult;
use crate::tower::CircuitBreakerService;

/// A [`Layer`] that puts a [`Breaker`] in front of a service: every service it
/// builds, and every clone of those, shares the one breaker.
///
/// ```
/// use breakerbox::tower::CircuitBreakerLayer;
/// use breakerbox::{Breaker, Config};
/// use std::sync::Arc;
/// use tower::ServiceBuilder;
///
/// let users = Arc::new(Breaker::default());
/// let layer = CircuitBreakerLayer::new(users.clone());
/// let service = ServiceBuilder::new().layer(layer).service_fn(|id: u32| async move {
///     Ok::<_, std::io::Error>(format!("user {id}"))
/// });
/// # drop(service);
/// assert_eq!(users.counts().successes, 0); // the same breaker: state() and counts() for health pages
/// ```
///
/// The breaker is held as `B`: an `Arc<Breaker>` ([`new`](Self::new)),
/// which every request's future clones, or a `&'static Breaker`
/// ([`from_static`](Self::from_static)), which costs nothing to copy.
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<C = ByResult, B = Arc<Breaker>> {
    breaker: B,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer around `breaker`, counting every `Ok` as a success and every
    /// `Err` as a failure. Keep a clone of the `Arc` to read the breaker's
    /// [`state`](Breaker::state) and [`counts`](Breaker::counts), or to
    /// make plain calls through the same breaker.
    ///
    /// Every request's future holds a clone of the `Arc`: an atomic
    /// increment and decrement of its shared reference count, a few
    /// nanoseconds on one core and a contended cache line when many cores
    /// call through one breaker at once. [`from_static`](Self::from_static)
    /// avoids both.
    pub fn new(breaker: Arc<Breaker>) -> CircuitBreakerLayer {
        CircuitBreakerLayer { breaker, classify: ByResult }
    }
}

impl CircuitBreakerLayer<ByResult, &'static Breaker> {
    /// A layer around a breaker that lives for the whole program (a
    /// `static`, or one leaked on purpose): each request's future holds the
    /// reference, with no reference count to touch, so the healthy path
    /// stays loads and one thread-private increment.
    ///
    /// ```
    /// use breakerbox::tower::CircuitBreakerLayer;
    /// use breakerbox::{Breaker, Config};
    /// use std::sync::LazyLock;
    ///
    /// static PAYMENTS: LazyLock<Breaker> = LazyLock::new(|| Breaker::default());
    ///
    /// let layer = CircuitBreakerLayer::from_static(&PAYMENTS);
    /// # drop(layer);
    /// ```
    pub fn from_static(breaker: &'static Breaker) -> CircuitBreakerLayer<ByResult, &'static Breaker> {
        CircuitBreakerLayer { breaker, classify: ByResult }
    }
}

impl<C, B> CircuitBreakerLayer<C, B> {
    /// The same layer with another classifier: any
    /// [`Classify`](crate::Classify)`<Response, Error>` that is `Clone` (a
    /// closure, whose argument type must be written out, or a type such as
    /// [`ServerErrorsAsFailures`](crate::tower::ServerErrorsAsFailures)). It
    /// is cloned for every request.
    ///
    /// ```
    /// use breakerbox::tower::CircuitBreakerLayer;
    /// use breakerbox::{Breaker, Config, Outcome};
    /// use std::sync::Arc;
    ///
    /// // A caller-side deadline (our own timeout, below the breaker, would be
    /// // a failure instead) says nothing about the downstream.
    /// let layer = CircuitBreakerLayer::new(Arc::new(Breaker::default())).classify(
    ///     |result: &Result<String, tower::BoxError>| match result {
    ///         Ok(_) => Outcome::Success,
    ///         Err(err) if err.to_string() == "deadline of the caller" => Outcome::Ignored,
    ///         Err(_) => Outcome::Failure,
    ///     },
    /// );
    /// # drop(layer);
    /// ```
    pub fn classify<D>(self, classify: D) -> CircuitBreakerLayer<D, B> {
        CircuitBreakerLayer { breaker: self.breaker, classify }
    }

    /// The breaker every service of this layer shares.
    pub fn breaker(&self) -> &B {
        &self.breaker
    }
}

impl<S, C: Clone, B: Deref<Target = Breaker> + Clone> Layer<S> for CircuitBreakerLayer<C, B> {
    type Service = CircuitBreakerService<S, C, B>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::with_classifier(inner, self.breaker.clone(), self.classify.clone())
    }
}
