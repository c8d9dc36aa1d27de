//! Loom model of a registry's eviction handshake ([`EvictionFlag`]): an
//! evictor removing a breaker it finds at rest races a call that opens it.
//! Run with the same command as `models.rs` (`--cfg loom`).
//!
//! The evictor marks the flag, reads the state word and "removes" the
//! breaker if it is closed with no failure counted (otherwise it clears the
//! flag); the call reads the word, fails (threshold 1: it opens the
//! breaker), and if the word changed asks the flag, "putting the breaker
//! back" if it is marked. In no execution may the breaker end removed, open
//! and not put back: that is the failing host handed a fresh breaker.

#![cfg(loom)]

use std::sync::Mutex;
use std::time::Duration;

use breakerbox_core::__private::{EvictionFlag, RawWord as _};
use breakerbox_core::quanta::Clock;
use breakerbox_core::{Config, CoreBreaker, Outcome, State, Timestamp};
use loom::sync::Arc;

/// What happened in one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Ending {
    removed: bool,
    put_back: bool,
}

/// The evictor's side: mark the flag, then "remove" the breaker if its word
/// is closed with no failure counted, or clear the flag. Joins to whether
/// it removed.
fn spawn_evictor(breaker: &Arc<CoreBreaker>, flag: &Arc<EvictionFlag>) -> loom::thread::JoinHandle<bool> {
    let (breaker, flag) = (Arc::clone(breaker), Arc::clone(flag));
    loom::thread::spawn(move || {
        flag.mark();
        let word = breaker.snapshot();
        if word.phase() == State::Closed && word.count() == 0 {
            true
        } else {
            flag.clear();
            false
        }
    })
}

#[test]
fn a_call_that_opens_a_breaker_being_evicted_always_puts_it_back_or_keeps_it() {
    let seen = std::sync::Arc::new(Mutex::new(std::collections::HashSet::new()));
    let record = std::sync::Arc::clone(&seen);
    loom::model(move || {
        let (clock, _mock) = Clock::mock();
        let config = Config { threshold: 1, timeout: Duration::from_millis(100), half_open_max: 1 };
        let breaker = Arc::new(CoreBreaker::with_clock(config, clock).unwrap());
        let flag = Arc::new(EvictionFlag::new());
        let evictor = spawn_evictor(&breaker, &flag);
        let now = Timestamp::from_millis(1);
        let before = breaker.snapshot();
        let ticket = breaker.acquire_at(now).unwrap();
        breaker.record_at(ticket, Outcome::Failure, now);
        let put_back = breaker.snapshot() != before && flag.seen_after_change();
        let removed = evictor.join().unwrap();
        assert_eq!(breaker.snapshot().phase(), State::Open);
        assert!(!removed || put_back, "removed while open, and not put back");
        record.lock().unwrap().insert(Ending { removed, put_back });
    });
    // Every way the race can end shows up: kept (the evictor saw the open
    // word), removed then put back, and kept although the call saw the mark
    // (the evictor cleared it after).
    let seen = seen.lock().unwrap();
    assert!(seen.contains(&Ending { removed: false, put_back: false }), "{seen:?}");
    assert!(seen.contains(&Ending { removed: true, put_back: true }), "{seen:?}");
    assert!(seen.contains(&Ending { removed: false, put_back: true }), "{seen:?}");
}

/// A call's end asks the flag when the word changed or is not at rest, as
/// the registry's does: a word can come back to what a call saw at its
/// start (its failure restores a streak another thread's success reset).
fn asks(before: breakerbox_core::StateWord, after: breakerbox_core::StateWord) -> bool {
    after != before || after.phase() != State::Closed || after.count() != 0
}

#[test]
fn a_failure_streak_restored_under_an_eviction_is_never_forgotten() {
    loom::model(|| {
        let (clock, _mock) = Clock::mock();
        let config = Config { threshold: 3, timeout: Duration::from_millis(100), half_open_max: 1 };
        let breaker = Arc::new(CoreBreaker::with_clock(config, clock).unwrap());
        let flag = Arc::new(EvictionFlag::new());
        let now = Timestamp::from_millis(1);
        // A streak of one, which the success below ends.
        let ticket = breaker.acquire_at(now).unwrap();
        breaker.record_at(ticket, Outcome::Failure, now);
        // The failing call starts (reads its word) before the success.
        let before = breaker.snapshot();
        let failing = breaker.acquire_at(now).unwrap();
        let succeeding = {
            let breaker = Arc::clone(&breaker);
            loom::thread::spawn(move || {
                let ticket = breaker.acquire_at(now).unwrap();
                breaker.record_at(ticket, Outcome::Success, now);
            })
        };
        let evictor = spawn_evictor(&breaker, &flag);
        breaker.record_at(failing, Outcome::Failure, now);
        let put_back = asks(before, breaker.snapshot()) && flag.seen_after_change();
        succeeding.join().unwrap();
        let removed = evictor.join().unwrap();
        let word = breaker.snapshot();
        let at_rest = word.phase() == State::Closed && word.count() == 0;
        assert!(!removed || put_back || at_rest, "removed with a streak of {}, and not put back", word.count());
    });
}
