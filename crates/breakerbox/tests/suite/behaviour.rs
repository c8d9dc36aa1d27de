//! The Go package's documented behaviour and the facade's own guarantees,
//! on a mock clock.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use breakerbox::quanta::{Clock, Mock};
use breakerbox::{Breaker, Config, Error, Outcome, Recorded, State};

fn breaker(threshold: u32, half_open_max: u32, timeout_ms: u64) -> (Breaker, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let config = Config { threshold, half_open_max, timeout: Duration::from_millis(timeout_ms) };
    (Breaker::with_clock(config, clock).unwrap(), mock)
}

fn fail(breaker: &Breaker) {
    assert!(matches!(breaker.call(|| Err::<(), _>("down")), Err(Error::Inner("down"))));
}

fn succeed(breaker: &Breaker) {
    assert_eq!(breaker.call(|| Ok::<_, ()>(())), Ok(()));
}

/// Successes, failures and rejections.
fn counts(breaker: &Breaker) -> (u64, u64, u64) {
    let counts = breaker.counts();
    (counts.successes, counts.failures, counts.rejections)
}

/// Polls a future once with a waker that does nothing.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// A future that is pending once, then ready with `output`.
fn pending_once<T>(output: T) -> impl Future<Output = T> {
    let mut output = Some(output);
    let mut polled = false;
    std::future::poll_fn(move |_| {
        if std::mem::replace(&mut polled, true) { Poll::Ready(output.take().unwrap()) } else { Poll::Pending }
    })
}

// The Go package's documentation, point by point.

#[test]
fn go_defaults_apply_to_zero_fields() {
    let (clock, _mock) = Clock::mock();
    let b = Breaker::with_clock(Config { threshold: 0, timeout: Duration::ZERO, half_open_max: 0 }, clock).unwrap();
    assert_eq!(b.config(), Config { threshold: 5, timeout: Duration::from_secs(30), half_open_max: 1 });
}

#[test]
fn go_opens_after_threshold_consecutive_failures() {
    let (b, _mock) = breaker(5, 1, 30_000);
    for _ in 0..4 {
        fail(&b);
    }
    succeed(&b);
    for _ in 0..4 {
        fail(&b);
    }
    assert_eq!(b.state(), State::Closed, "a success in between restarts the streak");
    fail(&b);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn go_open_rejects_without_calling_the_function() {
    let (b, _mock) = breaker(1, 1, 30_000);
    fail(&b);
    let mut called = false;
    let err = b
        .call(|| {
            called = true;
            Ok::<_, ()>(())
        })
        .unwrap_err();
    assert!(!called);
    assert!(err.is_open());
    assert_eq!(err.rejected().unwrap().to_string(), "circuit breaker is open");
    assert_eq!(b.counts().rejections, 1);
}

#[test]
fn go_timeout_moves_open_to_half_open_and_one_probe_success_closes() {
    let (b, mock) = breaker(1, 1, 30_000);
    fail(&b);
    mock.increment(Duration::from_millis(29_999));
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_millis(1));
    assert_eq!(b.state(), State::HalfOpen);
    succeed(&b);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn go_one_probe_failure_reopens() {
    let (b, mock) = breaker(1, 1, 1_000);
    fail(&b);
    mock.increment(Duration::from_secs(1));
    fail(&b);
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_millis(999));
    assert_eq!(b.state(), State::Open, "the timer restarted at the probe failure");
}

#[test]
fn go_half_open_max_concurrent_probes() {
    let (b, mock) = breaker(1, 2, 1_000);
    b.trip();
    mock.increment(Duration::from_secs(1));
    let first = b.try_acquire().unwrap();
    let second = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    assert!(b.call(|| Ok::<_, ()>(())).unwrap_err().is_open());
    assert_eq!(first.success(), Recorded::Applied);
    assert_eq!(second.failure(), Recorded::Stale, "the first probe already closed it");
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn go_cancellation_does_not_count() {
    let (b, _mock) = breaker(1, 1, 1_000);
    let result = b.call_with(|_: &Result<(), &str>| Outcome::Ignored, || Err::<(), _>("context canceled"));
    assert!(matches!(result, Err(Error::Inner("context canceled"))));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(counts(&b), (0, 0, 0));
}

#[test]
fn go_fallback_runs_when_open_with_the_rejection() {
    let (b, _mock) = breaker(1, 1, 1_000);
    b.trip();
    let answer = b.call_with_fallback(
        || Ok::<_, String>("primary"),
        |rejected| {
            assert_eq!(rejected.to_string(), "circuit breaker is open");
            Ok("fallback")
        },
    );
    assert_eq!(answer, Ok("fallback"));
}

#[test]
fn go_state_strings_and_counts() {
    let (b, _mock) = breaker(3, 1, 1_000);
    assert_eq!(b.state().to_string(), "closed");
    succeed(&b);
    fail(&b);
    assert_eq!((b.counts().successes, b.counts().failures), (1, 1));
    b.trip();
    assert_eq!(b.state().to_string(), "open");
    assert_eq!(State::HalfOpen.to_string(), "half-open");
}

// Where the facade is stricter than the Go package.

#[test]
fn fallback_does_not_run_when_the_call_fails() {
    let (b, _mock) = breaker(5, 1, 1_000);
    let answer = b.call_with_fallback(|| Err::<(), _>("boom"), |_| panic!("the fallback must not run"));
    assert_eq!(answer, Err("boom"));
    assert_eq!(b.counts().failures, 1);
}

#[test]
fn a_panic_is_a_failure_and_continues_to_the_caller() {
    let (b, _mock) = breaker(1, 1, 1_000);
    let panic = catch_unwind(AssertUnwindSafe(|| b.call(|| -> Result<(), ()> { panic!("downstream exploded") })));
    let payload = panic.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"downstream exploded"));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.counts().failures, 1);
}

#[test]
fn a_panicking_probe_reopens() {
    let (b, mock) = breaker(1, 1, 1_000);
    b.trip();
    mock.increment(Duration::from_secs(1));
    let _ = catch_unwind(AssertUnwindSafe(|| b.call(|| -> Result<(), ()> { panic!("probe exploded") })));
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_dropped_future_counts_nothing_and_frees_its_probe_slot() {
    let (b, mock) = breaker(1, 1, 1_000);
    b.trip();
    mock.increment(Duration::from_secs(1));
    {
        let mut call = pin!(b.call_async(pending_once(Ok::<_, ()>(()))));
        assert!(poll_once(call.as_mut()).is_pending());
        assert!(b.try_acquire().is_err(), "the pending probe holds the only slot");
    }
    assert_eq!(counts(&b), (0, 0, 1));
    assert_eq!(b.state(), State::HalfOpen);
    let probe = b.try_acquire().expect("the dropped probe's slot is free");
    probe.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_future_that_completes_counts_like_a_call() {
    let (b, _mock) = breaker(1, 1, 1_000);
    let mut call = pin!(b.call_async(pending_once(Err::<(), _>("refused"))));
    assert!(poll_once(call.as_mut()).is_pending());
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Err(Error::Inner("refused"))));
    assert_eq!(b.state(), State::Open);
    let mut rejected = pin!(b.call_async(async { Ok::<_, &str>(()) }));
    assert!(matches!(poll_once(rejected.as_mut()), Poll::Ready(Err(Error::Open(_)))));
}

#[test]
fn a_panic_while_polling_is_a_failure() {
    let (b, _mock) = breaker(1, 1, 1_000);
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let mut call = pin!(b.call_async(async { panic!("poll exploded") as Result<(), ()> }));
        let _ = poll_once(call.as_mut());
    }));
    assert!(panic.is_err());
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.counts().failures, 1);
}

#[test]
fn async_classify_and_fallback() {
    let (b, _mock) = breaker(1, 1, 1_000);
    let mut call =
        pin!(b.call_async(async { Err::<(), _>("caller timeout") }).classify(|_: &Result<(), &str>| Outcome::Ignored));
    assert!(matches!(poll_once(call.as_mut()), Poll::Ready(Err(Error::Inner("caller timeout")))));
    assert_eq!(b.state(), State::Closed);
    b.trip();
    let mut call = pin!(b.call_async(async { Ok::<_, ()>("primary") }).fallback(|_| async { Ok("fallback") }));
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Ok("fallback")));
    b.reset();
    let mut call = pin!(b.call_async(async { Err::<&str, _>(()) }).fallback(|_| async { Ok("fallback") }));
    let shown = format!("{call:?}");
    assert!(shown.starts_with("Fallback { call: CallFuture { ticket: None"), "{shown}");
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Err(())));
}

#[test]
fn a_slow_call_failing_after_the_breaker_recovered_is_stale() {
    let (b, mock) = breaker(2, 1, 1_000);
    let b = Arc::new(b);
    let (release, wait) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel::<()>();
    let slow = {
        let b = Arc::clone(&b);
        std::thread::spawn(move || {
            b.call(|| {
                started.send(()).unwrap();
                wait.recv().unwrap();
                Err::<(), _>("late timeout")
            })
        })
    };
    is_started.recv().unwrap();
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_secs(1));
    succeed(&b);
    fail(&b);
    release.send(()).unwrap();
    assert!(matches!(slow.join().unwrap(), Err(Error::Inner("late timeout"))));
    assert_eq!(b.state(), State::Closed, "the slow failure must not complete the new streak");
    assert_eq!(b.counts().failures, 4, "stale results still count in counts()");
}

#[test]
fn a_hung_probe_cannot_wedge_the_breaker() {
    let (b, mock) = breaker(1, 1, 1_000);
    b.trip();
    mock.increment(Duration::from_secs(1));
    let hung = b.try_acquire().unwrap();
    mock.increment(Duration::from_millis(999));
    assert!(b.call(|| Ok::<_, ()>(())).unwrap_err().is_open());
    mock.increment(Duration::from_millis(1));
    succeed(&b);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(hung.failure(), Recorded::Stale);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn an_ignored_probe_frees_its_slot() {
    let (b, mock) = breaker(1, 1, 1_000);
    b.trip();
    mock.increment(Duration::from_secs(1));
    let _ = b.call_with(|_: &Result<(), &str>| Outcome::Ignored, || Err::<(), _>("caller gave up"));
    assert_eq!(b.state(), State::HalfOpen);
    succeed(&b);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn dropping_a_permit_is_ignored() {
    let (b, mock) = breaker(1, 1, 1_000);
    b.trip();
    mock.increment(Duration::from_secs(1));
    drop(b.try_acquire().unwrap());
    assert_eq!(b.counts().failures + b.counts().successes, 0);
    let owned = Arc::new(b);
    let permit = owned.try_acquire_owned().expect("the dropped permit freed the slot");
    assert!(format!("{permit:?}").starts_with("OwnedPermit { ticket: Ticket"), "{permit:?}");
    assert_eq!(permit.record(Outcome::Failure), Recorded::Applied);
    assert_eq!(owned.state(), State::Open);
}

#[test]
fn counts_from_eight_threads_add_up_exactly() {
    let (b, _mock) = breaker(u16::MAX as u32, 1, 1_000);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let b = &b;
            scope.spawn(move || {
                for i in 0..5_000u32 {
                    // Failures are never consecutive enough to open the breaker.
                    let _ = b.call(|| if (i + t) % 4 == 0 { Err(()) } else { Ok(()) });
                }
            });
        }
    });
    assert_eq!(counts(&b), (30_000, 10_000, 0));
    b.trip();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..1_000 {
                    assert!(b.call(|| Ok::<_, ()>(())).is_err());
                }
            });
        }
    });
    assert_eq!(b.counts().rejections, 8_000);
}

#[test]
fn a_threads_first_call_counts_through_every_entry_point() {
    // A thread's first count on a breaker takes the slow path that finds its
    // slot; each entry point must get there for an outcome and a rejection.
    type Entry = fn(&Breaker) -> bool;
    let entries: [(&str, Entry); 3] = [
        ("call", |b| b.call(|| Ok::<_, ()>(())).is_ok()),
        ("try_acquire", |b| b.try_acquire().map(|permit| permit.success()).is_ok()),
        ("call_async", |b| {
            matches!(poll_once(std::pin::pin!(b.call_async(async { Ok::<_, ()>(()) }))), Poll::Ready(Ok(())))
        }),
    ];
    for (name, entry) in entries {
        let (b, _mock) = breaker(5, 1, 1_000);
        std::thread::scope(|scope| scope.spawn(|| assert!(entry(&b), "{name}")).join().unwrap());
        b.trip();
        std::thread::scope(|scope| scope.spawn(|| assert!(!entry(&b), "{name}")).join().unwrap());
        assert_eq!(counts(&b), (1, 0, 1), "{name}");
    }
}

#[test]
fn a_call_nested_in_a_threads_first_call_counts_both() {
    // The outer call looks its slot up before the thread has one; the inner
    // call assigns it. Both must land, once each.
    let (b, _mock) = breaker(5, 1, 1_000);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let outer = b.call(|| b.call(|| Ok::<_, ()>(1)).map_err(|_| ()));
            assert_eq!(outer, Ok(1));
        });
    });
    assert_eq!(counts(&b), (2, 0, 0));
}

#[test]
fn a_breaker_on_the_recent_clock_runs_the_same_state_machine() {
    let clock = breakerbox::RecentClock::shared().expect("nothing else starts quanta's upkeep in this test binary");
    let b = Breaker::builder(Config { threshold: 2, ..Config::default() }).recent_clock(clock).build().unwrap();
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), State::Open);
    assert!(b.call(|| Ok::<_, ()>(())).unwrap_err().is_open());
    b.reset();
    succeed(&b);
    assert_eq!(counts(&b), (1, 2, 1));
}

#[test]
fn construction_errors_name_the_field_and_say_the_value() {
    let err = Breaker::new(Config { timeout: Duration::MAX, ..Config::default() }).unwrap_err();
    assert_eq!(err.field(), "timeout");
    let err = Breaker::new(Config { threshold: u32::MAX, ..Config::default() }).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("threshold = 4294967295"), "{message}");
}

#[test]
fn error_is_a_std_error_with_the_inner_source() {
    #[derive(Debug)]
    struct Io(std::io::Error);
    impl std::fmt::Display for Io {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("request failed")
        }
    }
    impl std::error::Error for Io {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let err: Error<Io> = Error::Inner(Io(std::io::Error::other("reset by peer")));
    let as_std: &dyn std::error::Error = &err;
    assert_eq!(as_std.to_string(), "request failed");
    assert_eq!(as_std.source().unwrap().to_string(), "reset by peer");
    let (b, _mock) = breaker(1, 1, 1_000);
    b.trip();
    let open: Error<Io> = b.call(|| Ok(())).unwrap_err();
    assert!(std::error::Error::source(&open).is_none());
    assert!(open.rejected().is_some() && open.into_inner().is_none());
    assert_eq!(err.into_inner().map(|io| io.0.to_string()).as_deref(), Some("reset by peer"));
}

#[test]
fn the_breaker_is_send_sync_static() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Breaker>();
    assert_send_sync::<breakerbox::OwnedPermit>();
    fn assert_send<T: Send>(_: &T) {}
    let b = Breaker::default();
    assert_send(&b.call_async(async { Ok::<_, ()>(()) }));
}

#[test]
fn polling_a_completed_call_future_panics_clearly() {
    let (b, _mock) = breaker(1, 1, 1_000);
    let mut call = pin!(b.call_async(async { Ok::<_, ()>(1) }));
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Ok(1)));
    let again = catch_unwind(AssertUnwindSafe(|| poll_once(call.as_mut()))).unwrap_err();
    assert_eq!(again.downcast_ref::<&str>(), Some(&"a breaker call future was polled after it completed"));
    assert_eq!(b.counts().successes, 1, "the second poll counted nothing");
}

#[test]
fn a_panic_in_a_kept_future_counts_at_the_panic_and_ends_the_call() {
    let (b, _mock) = breaker(1, 1, 1_000);
    let mut polls = 0;
    let inner = std::future::poll_fn(move |_| {
        polls += 1;
        if polls == 1 { panic!("poll exploded") } else { Poll::Ready(Ok::<_, ()>(())) }
    });
    let mut call = pin!(b.call_async(inner));
    assert!(catch_unwind(AssertUnwindSafe(|| poll_once(call.as_mut()))).is_err());
    assert_eq!(b.counts().failures, 1, "counted at the panic, though the caller still holds the future");
    assert_eq!(b.state(), State::Open);
    let again = catch_unwind(AssertUnwindSafe(|| poll_once(call.as_mut())));
    assert!(again.is_err(), "the call is over: the inner future is not polled again");
    assert_eq!(counts(&b), (0, 1, 0));
}

#[test]
fn errors_convert_with_question_mark_and_box() {
    fn through(breaker: &Breaker, fail: bool) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
        let parsed = breaker.call(|| if fail { "x".parse::<u16>() } else { "80".parse::<u16>() })?;
        Ok(parsed)
    }
    let (b, _mock) = breaker(5, 1, 1_000);
    assert_eq!(through(&b, false).unwrap(), 80);
    assert_eq!(through(&b, true).unwrap_err().to_string(), "invalid digit found in string");
    b.trip();
    let rejected = through(&b, false).unwrap_err();
    // `?` boxes the whole error: a rejection displays as one and downcasts to it.
    assert_eq!(rejected.to_string(), "circuit breaker is open");
    assert!(rejected.downcast_ref::<Error<std::num::ParseIntError>>().is_some_and(Error::is_open));
    let boxed = b.call(|| Ok::<(), &str>(())).unwrap_err().into_boxed();
    assert_eq!(boxed.to_string(), "circuit breaker is open");
    assert_eq!(Error::<&str>::Inner("no route").into_boxed().to_string(), "no route");
    assert!(b.call(|| Ok::<(), u8>(())).unwrap_err().map_inner(u16::from).is_open());
    assert_eq!(Error::<u8>::Inner(7).map_inner(u16::from), Error::Inner(7u16));
}

#[test]
fn a_call_moved_into_a_task_is_static_and_counts_like_a_borrowed_one() {
    fn assert_send_static<T: Send + 'static>(_: &T) {}
    // The spawn idiom `call_async`'s docs give: the task owns a clone of the
    // `Arc` and makes the call inside.
    fn spawned<F: Future<Output = Result<(), ()>>>(
        b: &Arc<Breaker>,
        fut: F,
    ) -> impl Future<Output = Result<(), Error<()>>> + use<F> {
        let b = Arc::clone(b);
        async move { b.call_async(fut).await }
    }
    let (b, mock) = breaker(1, 1, 1_000);
    let b = Arc::new(b);
    let call = spawned(&b, async { Ok::<_, ()>(()) });
    assert_send_static(&call);
    assert_eq!(poll_once(pin!(call)), Poll::Ready(Ok(())));

    // A panic while polling is a failure at the panic.
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let call = spawned(&b, async { panic!("poll exploded") as Result<(), ()> });
        let _ = poll_once(pin!(call));
    }));
    assert!(panic.is_err());
    assert_eq!(b.state(), State::Open);

    // A dropped probe counts nothing and frees its slot.
    mock.increment(Duration::from_secs(1));
    let mut probe = Box::pin(spawned(&b, pending_once(Ok::<_, ()>(()))));
    assert!(poll_once(probe.as_mut()).is_pending());
    assert!(b.try_acquire().is_err(), "the pending probe holds the only slot");
    drop(probe);
    assert_eq!(b.state(), State::HalfOpen);

    // A classifier of its own.
    let owned = Arc::clone(&b);
    let call = async move { owned.call_async(async { Err(()) }).classify(|_: &Result<(), ()>| Outcome::Ignored).await };
    assert_eq!(poll_once(pin!(call)), Poll::Ready(Err(Error::Inner(()))));
    assert_eq!(b.state(), State::HalfOpen, "ignored: the probe slot is free again");
    assert_eq!(counts(&b), (1, 1, 1));
    assert_eq!(Arc::strong_count(&b), 1, "every finished or dropped call gave its Arc back");
}

#[test]
fn debug_output_shows_what_an_operator_needs() {
    let (b, _mock) = breaker(2, 1, 1_000);
    fail(&b);
    let debug = format!("{b:?}");
    assert!(debug.starts_with(r#"Breaker { name: "", state: Closed, config: Config { threshold: 2,"#), "{debug}");
    assert!(debug.contains("counts: Counts { successes: 0, failures: 1, rejections: 0, opens: 0 }"), "{debug}");
    let opened = breaker(1, 1, 1_000).0;
    fail(&opened);
    assert!(format!("{opened:?}").contains("rejections: 0, opens: 1 }"), "{opened:?}");

    let (clock, _mock) = breakerbox::quanta::Clock::mock();
    let builder = Breaker::builder(Config::default()).clock(clock);
    assert!(format!("{builder:?}").contains(r#"clock: "given""#), "{builder:?}");
    assert!(format!("{:?}", Breaker::builder(Config::default())).contains(r#"clock: "real""#));
    let recent = Breaker::builder(Config::default()).recent_clock(breakerbox::RecentClock::shared().unwrap());
    assert!(format!("{recent:?}").contains(r#"clock: "recent""#), "{recent:?}");

    let permit = b.try_acquire().unwrap();
    assert!(format!("{permit:?}").starts_with("Permit { ticket: Ticket"), "{permit:?}");
    drop(permit);

    let mut call = pin!(b.call_async(pending_once(Ok::<_, ()>(()))));
    assert!(format!("{call:?}").contains("ticket: None"), "{call:?}");
    assert!(poll_once(call.as_mut()).is_pending());
    assert!(format!("{call:?}").contains("ticket: Some("), "{call:?}");
}

#[test]
fn is_open_tells_a_rejection_from_the_calls_own_error() {
    let (b, _mock) = breaker(1, 1, 1_000);
    let own = b.call(|| Err::<(), _>("refused")).unwrap_err();
    assert!(!own.is_open() && own.rejected().is_none());
    let rejected = b.call(|| Ok::<_, &str>(())).unwrap_err();
    assert!(rejected.is_open() && rejected.rejected().is_some());
}

#[test]
fn a_panicking_classifier_counts_as_ignored_and_frees_the_probe_slot() {
    let (b, mock) = breaker(1, 1, 1_000);
    b.trip();
    mock.increment(Duration::from_secs(1));
    // Sync: the probe's classifier panics after the call ran.
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let _ = b.call_with(|_: &Result<(), ()>| panic!("classifier exploded"), || Ok(()));
    }));
    assert!(panic.is_err());
    assert_eq!((b.state(), counts(&b)), (State::HalfOpen, (0, 0, 0)), "ignored: nothing counted");
    // Async: the slot comes back when the future is dropped.
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let call = b.call_async(async { Ok(()) }).classify(|_: &Result<(), ()>| panic!("classifier exploded"));
        let _ = poll_once(pin!(call));
    }));
    assert!(panic.is_err());
    assert_eq!((b.state(), counts(&b)), (State::HalfOpen, (0, 0, 0)));
    let probe = b.try_acquire().expect("every panicked probe gave its slot back");
    probe.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn the_builder_passes_backoff_and_success_threshold_to_the_core() {
    let (clock, mock) = Clock::mock();
    let config = Config { threshold: 1, timeout: Duration::from_secs(1), half_open_max: 1 };
    let b = Breaker::builder(config)
        .clock(clock)
        .backoff(breakerbox::Backoff::exponential(3.0, Duration::from_secs(60)))
        .success_threshold(2)
        .build()
        .unwrap();
    fail(&b);
    let retry = |b: &Breaker| b.call(|| Ok::<_, ()>(())).unwrap_err().rejected().unwrap().retry_after();
    assert_eq!(retry(&b), Some(Duration::from_secs(1)));
    mock.increment(Duration::from_secs(1));
    fail(&b); // the probe fails: the second open lasts 3 s
    assert_eq!(retry(&b), Some(Duration::from_secs(3)));
    mock.increment(Duration::from_secs(3));
    succeed(&b);
    assert_eq!(b.state(), State::HalfOpen, "one success of two");
    succeed(&b);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn trip_for_and_isolate_through_the_facade() {
    let (b, mock) = breaker(5, 1, 1_000);
    b.trip_for(Duration::from_secs(120));
    let rejected = b.call(|| Ok::<_, ()>(())).unwrap_err().rejected().unwrap();
    assert_eq!((rejected.retry_after(), rejected.is_held_open()), (Some(Duration::from_secs(120)), false));
    b.isolate();
    mock.increment(Duration::from_secs(1_000));
    let rejected = b.call(|| Ok::<_, ()>(())).unwrap_err().rejected().unwrap();
    assert!(rejected.is_held_open());
    assert_eq!(b.state(), State::Open);
    b.reset();
    succeed(&b);
    assert_eq!(counts(&b), (1, 0, 2));
}
