//! [`Error`]: what a call through the breaker returns when it does not return
//! the call's value.

use core::fmt;

use breaker_core::Rejected;

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
/// use breaker::{Breaker, Config, Error};
///
/// let breaker = Breaker::new(Config { threshold: 1, ..Config::default() });
/// let err = breaker.call(|| Err::<(), _>("connection refused")).unwrap_err();
/// assert_eq!(err.to_string(), "connection refused");
/// assert_eq!(err.into_inner(), Some("connection refused"));
///
/// let err = breaker.call(|| Ok::<_, &str>(())).unwrap_err();
/// assert!(err.is_open());
/// assert_eq!(err.to_string(), "circuit breaker is open");
/// assert!(matches!(err, Error::Open(_)));
/// ```
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

    /// The rejection, or `None` if the call ran.
    ///
    /// ```
    /// use breaker::{Breaker, Config};
    ///
    /// let breaker = Breaker::new(Config::default());
    /// breaker.trip();
    /// let err = breaker.call(|| Ok::<_, ()>(())).unwrap_err();
    /// assert!(err.rejected().unwrap().retry_after() <= std::time::Duration::from_secs(30));
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
