//! The one place where a panic in the caller's code becomes a failure.
//!
//! Every call path (the closure of a sync call, the inner future's `poll`,
//! the inner service's `call`) runs the caller's code through
//! [`failing_on_unwind`], so "a panic counts as a failure and continues to
//! the caller" is written once.

/// Runs `f`; if it panics, `on_panic` runs while the panic unwinds through
/// this frame, and the panic then continues to the caller.
///
/// Inlined: on the path that returns, the guard is forgotten, and the
/// compiler keeps only the landing pad, so a call that does not panic pays
/// nothing for it.
#[inline(always)]
pub(crate) fn failing_on_unwind<R>(f: impl FnOnce() -> R, on_panic: impl FnOnce()) -> R {
    let guard = OnUnwind(Some(on_panic));
    let result = f();
    core::mem::forget(guard);
    result
}

struct OnUnwind<G: FnOnce()>(Option<G>);

impl<G: FnOnce()> Drop for OnUnwind<G> {
    fn drop(&mut self) {
        if let Some(on_panic) = self.0.take() {
            on_panic();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::failing_on_unwind;
    use std::cell::Cell;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    #[test]
    fn runs_the_handler_only_on_a_panic() {
        let handled = Cell::new(0);
        assert_eq!(failing_on_unwind(|| 7, || handled.set(handled.get() + 1)), 7);
        assert_eq!(handled.get(), 0);
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            failing_on_unwind(|| panic!("downstream"), || handled.set(handled.get() + 1))
        }));
        assert!(unwound.is_err(), "the panic continues to the caller");
        assert_eq!(handled.get(), 1);
    }
}
