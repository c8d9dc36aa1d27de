//! [`Classify`]: how a call's result counts, for the futures and middleware
//! that must name the classifier's type.

use breakerbox_core::Outcome;

/// Decides how the result of one call counts: a success, a failure, or
/// [`Outcome::Ignored`] (says nothing about the downstream).
///
/// Every `FnOnce(&Result<T, E>) -> Outcome` closure is one, and
/// [`ByResult`] is the default. The trait exists so that a type holding a
/// classifier can be named: [`CallFuture`](crate::CallFuture)`<B, F,
/// ByResult>` is a type a `tower::Service` can give as its future.
///
/// ```
/// use breakerbox::{ByResult, Classify, Outcome};
///
/// assert_eq!(ByResult.classify(&Err::<(), _>("503")), Outcome::Failure);
/// let not_found_is_fine = |result: &Result<(), u16>| match result {
///     Ok(()) | Err(404) => Outcome::Success,
///     Err(_) => Outcome::Failure,
/// };
/// assert_eq!(not_found_is_fine.classify(&Err(404)), Outcome::Success);
/// ```
pub trait Classify<T, E> {
    /// How `result` counts.
    fn classify(self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F: FnOnce(&Result<T, E>) -> Outcome> Classify<T, E> for F {
    #[inline(always)]
    fn classify(self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default classifier: every `Ok` is a success, every `Err` a failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ByResult;

impl<T, E> Classify<T, E> for ByResult {
    #[inline(always)]
    fn classify(self, result: &Result<T, E>) -> Outcome {
        if result.is_ok() { Outcome::Success } else { Outcome::Failure }
    }
}
