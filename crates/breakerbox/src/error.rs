//! [`Error`]: what a call through the breaker returns when it does not return
//! the call's value.

use core::fmt;

use breakerbox_core::Rejected;

/// The error of a call through a [`Breaker`](crate::Breaker): either the
/// breaker rejected it without running it, or it ran and returned its own
/// error.
///
/// `Inner` is transparent: it displays as the inner error and reports the
/// inner error's source, so an error report does not print the same message
/// twice. Match on it or call [`into_inner`](Error::into_inner) to get the
/// inner error back.
///
/// ```
/// use breakerbox::{Breaker, Config, Error};
///
/// let breaker = Breaker::new(Config { threshold: 1, ..Config::default() }).unwrap();
/// let err = breaker.call(|| Err::<(), _>("connection refused")).unwrap_err();
/// assert_eq!(err.to_string(), "connection refused");
/// assert_eq!(err.into_inner(), Some("connection refused"));
///
/// let err = breaker.call(|| Ok::<_, &str>(())).unwrap_err();
/// assert!(err.is_open());
/// assert_eq!(err.to_string(), "circuit breaker is open");
/// assert!(matches!(err, Error::Open(_)));
/// ```
///
/// # With `?`
///
/// `Error<E>` is a [`std::error::Error`] whenever `E` is, so `?` converts it
/// into `Box<dyn Error + Send + Sync>` (or `anyhow::Error`, `eyre::Report`)
/// whenever `E: Error + Send + Sync + 'static`. For an `E` that is not an
/// error type (a `&str`, an enum of your own), convert the inner error with
/// [`map_inner`](Error::map_inner), or box the whole error with
/// [`into_boxed`](Error::into_boxed).
///
/// ```
/// use breakerbox::{Breaker, Config};
///
/// fn port(breaker: &Breaker) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
///     let port = breaker.call(|| "8080".parse::<u16>())?; // E = ParseIntError, an error type
///     let host = breaker.call(|| Err::<String, _>("no host")).map_err(|err| err.into_boxed())?;
///     Ok(port + host.len() as u16)
/// }
///
/// let breaker = Breaker::default();
/// assert_eq!(port(&breaker).unwrap_err().to_string(), "no host");
/// ```
///
/// Two cases, for good: the breaker either refused the call or ran it. A
/// timeout, a cancellation or any other way the call can end is the call's
/// own error (`Inner`), decided by the code that runs it, so matching `Open`
/// and `Inner` stays exhaustive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error<E> {
    /// The breaker is open (or half-open with every probe slot taken); the
    /// call did not run. The Go package's `ErrOpen`.
    Open(Rejected),
    /// The call ran and returned this error.
    Inner(E),
}

impl<E> Error<E> {
    /// Whether the breaker rejected the call.
    pub const fn is_open(&self) -> bool {
        matches!(self, Error::Open(_))
    }

    /// The call's own error, or `None` if the breaker rejected it.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Open(_) => None,
            Error::Inner(inner) => Some(inner),
        }
    }

    /// The same error with the inner error converted by `f`; a rejection
    /// stays a rejection.
    ///
    /// ```
    /// use breakerbox::Error;
    ///
    /// let err: Error<u16> = Error::Inner(503);
    /// assert_eq!(err.map_inner(|status| format!("status {status}")), Error::Inner("status 503".to_string()));
    /// ```
    pub fn map_inner<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::Open(rejected) => Error::Open(rejected),
            Error::Inner(inner) => Error::Inner(f(inner)),
        }
    }

    /// The error as a boxed [`std::error::Error`]: the [`Rejected`] itself,
    /// or the inner error converted as `?` converts it (a `&str` or `String`
    /// becomes a message, an error type is boxed as it is). The tower
    /// service's error is this.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config, Rejected};
    ///
    /// let breaker = Breaker::default();
    /// breaker.trip();
    /// let boxed = breaker.call(|| Ok::<_, &str>(())).unwrap_err().into_boxed();
    /// assert!(boxed.downcast_ref::<Rejected>().is_some());
    /// ```
    pub fn into_boxed(self) -> Box<dyn std::error::Error + Send + Sync>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match self {
            Error::Open(rejected) => Box::new(rejected),
            Error::Inner(inner) => inner.into(),
        }
    }

    /// The rejection, or `None` if the call ran.
    ///
    /// ```
    /// use breakerbox::{Breaker, Config};
    ///
    /// let breaker = Breaker::default();
    /// breaker.trip();
    /// let err = breaker.call(|| Ok::<_, ()>(())).unwrap_err();
    /// assert!(err.rejected().unwrap().retry_after().is_some_and(|after| after <= std::time::Duration::from_secs(30)));
    /// ```
    pub const fn rejected(&self) -> Option<Rejected> {
        match self {
            Error::Open(rejected) => Some(*rejected),
            Error::Inner(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open(rejected) => rejected.fmt(f),
            Error::Inner(inner) => inner.fmt(f),
        }
    }
}

impl<E: std::error::Error> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open(_) => None,
            Error::Inner(inner) => inner.source(),
        }
    }
}

impl<E> From<Rejected> for Error<E> {
    fn from(rejected: Rejected) -> Error<E> {
        Error::Open(rejected)
    }
}
