//! Panics raised on purpose, and keeping them quiet under the fuzzer.
//!
//! The facade check makes wrapped calls panic on purpose and catches them.
//! Under libFuzzer every panic goes through the hook `libfuzzer-sys` installs,
//! which prints it and aborts the process, even if the panic would have been
//! caught. [`quiet_deliberate_panics`] puts a filter in front of whatever hook
//! is installed: the deliberate panics pass silently and are caught by the
//! check; every other panic (a failed check, a panic inside the library)
//! still reaches the previous hook, so it is still printed and, under the
//! fuzzer, still a crash. A panic that escapes the target function is a crash
//! in any case (`libfuzzer-sys` catches it and aborts).

use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// The payload of every panic the checks raise on purpose, inside a call
/// the breaker wraps (`std::panic::panic_any(DeliberatePanic)`).
#[derive(Clone, Copy, Debug)]
pub struct DeliberatePanic;

/// Installs, once per process, a panic hook that keeps the checks' deliberate
/// panics quiet and hands every other panic to the hook installed before it.
///
/// Call it from the fuzz targets' `init`, after `libfuzzer-sys` has installed
/// its aborting hook. The checks work without it; they are only noisier.
pub fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if info.payload().is::<DeliberatePanic>() {
                return;
            }
            previous(info);
        }));
    });
}

/// Raises the deliberate panic.
pub(crate) fn deliberate() -> ! {
    panic::panic_any(DeliberatePanic)
}

/// Runs `f`, which may panic with [`DeliberatePanic`] (from a wrapped call):
/// `Some` of its value, or `None` if it panicked that way. Any other panic is
/// a finding and carries on unwinding.
pub(crate) fn catch_deliberate<R>(f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) if payload.is::<DeliberatePanic>() => None,
        Err(payload) => panic::resume_unwind(payload),
    }
}
