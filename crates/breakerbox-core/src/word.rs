//! The state word: a breaker's whole state in one `u64`.
//!
//! ```text
//!  63                                    26 25        18 17                 2 1   0
//! +----------------------------------------+------------+--------------------+-----+
//! |  time (38)                             | epoch (8)  |     count (16)     | st  |
//! +----------------------------------------+------------+--------------------+-----+
//! ```
//!
//! `docs/ARCHITECTURE.md` ("The state word") says what each field holds and
//! the limits the widths set. The layout is private: [`StateWord`]'s public
//! accessors read what it means, and the raw fields reach the facade and the
//! workspace's tests only through [`crate::__private::RawWord`].

use core::fmt;

use crate::time::Timestamp;

// The state is the low bits: no shift.
const STATE_BITS: u32 = 2;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

const COUNT_SHIFT: u32 = STATE_BITS;
pub(crate) const COUNT_BITS: u32 = 16;
/// The largest value of the count field.
pub(crate) const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const COUNT_MASK: u64 = COUNT_MAX << COUNT_SHIFT;

const EPOCH_SHIFT: u32 = COUNT_SHIFT + COUNT_BITS;
const EPOCH_BITS: u32 = 8;
const EPOCH_MAX: u64 = (1 << EPOCH_BITS) - 1;
const EPOCH_MASK: u64 = EPOCH_MAX << EPOCH_SHIFT;

const STAMP_SHIFT: u32 = EPOCH_SHIFT + EPOCH_BITS;
const STAMP_BITS: u32 = 64 - STAMP_SHIFT;
const STAMP_MAX: u64 = (1 << STAMP_BITS) - 1;

/// The longest elapsed time the stamp measures; wrapping differences past it
/// are read as `now` preceding the stamp.
pub(crate) const MAX_ELAPSED_TICKS: u64 = (1 << (STAMP_BITS - 1)) - 1;

/// The longest timeout, backoff cap and `trip_for`: half the distances the
/// time field measures. A deadline at most this far ahead is always read as
/// ahead, and once passed it reads as passed for 2^37 ticks; a lease this
/// long is measured exactly from the start of its round.
pub(crate) const MAX_TIMEOUT_TICKS: u64 = 1 << (STAMP_BITS - 2);

const GENERATION_MASK: u64 = !COUNT_MASK;

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const ISOLATED: u64 = 3;

const _: () = assert!(STAMP_BITS == 38 && STATE_MASK & COUNT_MASK & EPOCH_MASK == 0);
const _: () = assert!(MAX_ELAPSED_TICKS + 1 - MAX_TIMEOUT_TICKS >= MAX_TIMEOUT_TICKS);

/// The three states of a circuit breaker.
///
/// Two spellings, one per kind of output: [`as_str`](Self::as_str) gives the
/// identifier machines read (`closed`, `open`, `half_open`: serde, the
/// Prometheus `state` label, the `tracing` fields), and `Display` the text
/// people read (`closed`, `open`, `half-open`, as the Go package prints it).
///
/// ```
/// use breakerbox_core::State;
///
/// assert_eq!(State::HalfOpen.as_str(), "half_open");
/// assert_eq!(State::HalfOpen.to_string(), "half-open");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls go through; consecutive failures are counted.
    Closed,
    /// Calls are rejected at once until the timeout has passed.
    Open,
    /// A limited number of probes go through; the first result decides.
    HalfOpen,
}

/// What the word stores: the three states, and open held by `isolate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    Closed,
    Open,
    HalfOpen,
    Isolated,
}

impl State {
    /// The state as an identifier in snake case (`closed`, `open`,
    /// `half_open`), as serialized values, metric labels and `tracing`
    /// fields spell it; `Display` gives the Go package's `half-open`.
    ///
    /// ```
    /// use breakerbox_core::State;
    ///
    /// assert_eq!(State::HalfOpen.as_str(), "half_open");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        })
    }
}

/// A snapshot of a breaker's state, read with
/// [`CoreBreaker::snapshot`](crate::CoreBreaker::snapshot): `Copy`, one load,
/// nothing decided.
///
/// Its [`phase`](StateWord::phase) is the stored state: an open breaker whose
/// deadline has passed still stores `Open` until the next acquire moves it; use
/// [`CoreBreaker::state`](crate::CoreBreaker::state) for the state as callers
/// see it. Two snapshots of one breaker are equal when nothing changed it in
/// between, or when what changed was undone (a failure streak started and
/// reset, in the same generation); a transition always makes them differ,
/// within the limits under which generations alias (see
/// [`Ticket`](crate::Ticket)).
///
/// ```
/// use breakerbox_core::{Config, CoreBreaker, State};
///
/// let (clock, _mock) = breakerbox_core::quanta::Clock::mock();
/// let breaker = CoreBreaker::with_clock(Config::default(), clock)?;
/// let before = breaker.snapshot();
/// assert_eq!((before.phase(), before.held_open()), (State::Closed, false));
/// breaker.isolate();
/// let after = breaker.snapshot();
/// assert_eq!((after.phase(), after.held_open()), (State::Open, true));
/// assert_ne!(before, after);
/// # Ok::<(), breakerbox_core::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateWord(u64);

impl StateWord {
    /// A new breaker: closed, no failures, epoch 0, stamped at the base instant.
    pub(crate) const INITIAL: StateWord = StateWord(CLOSED);

    pub(crate) const fn from_bits(bits: u64) -> StateWord {
        StateWord(bits)
    }

    /// The raw bits, laid out as the module's docs describe.
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    /// The stored phase; open when held open.
    pub const fn phase(self) -> State {
        match self.0 & STATE_MASK {
            CLOSED => State::Closed,
            OPEN | ISOLATED => State::Open,
            _ => State::HalfOpen,
        }
    }

    /// Whether the breaker is held open by `isolate` until `reset`.
    pub const fn held_open(self) -> bool {
        self.0 & STATE_MASK == ISOLATED
    }

    /// The stored state, held open told apart from open.
    pub(crate) const fn stored(self) -> Stored {
        match self.0 & STATE_MASK {
            CLOSED => Stored::Closed,
            OPEN => Stored::Open,
            HALF_OPEN => Stored::HalfOpen,
            _ => Stored::Isolated,
        }
    }

    /// The raw count field: consecutive failures while closed; the packed
    /// probes in flight, successes and streak while half-open; the streak
    /// while open; zero while held open.
    pub(crate) const fn count(self) -> u32 {
        ((self.0 & COUNT_MASK) >> COUNT_SHIFT) as u32
    }

    /// The transition counter, wrapping at 256: the low byte of the
    /// transition's sequence number.
    pub(crate) const fn epoch(self) -> u8 {
        ((self.0 & EPOCH_MASK) >> EPOCH_SHIFT) as u8
    }

    /// The time field, in ticks modulo 2^38: an open word's deadline, the
    /// time of the last transition otherwise.
    pub(crate) const fn stamp(self) -> u64 {
        self.0 >> STAMP_SHIFT
    }

    /// Everything but the count: what identifies the state a ticket was
    /// issued in.
    pub(crate) const fn generation(self) -> u64 {
        self.0 & GENERATION_MASK
    }

    /// The same word with another count; `count` must fit the field, which
    /// config validation guarantees for every count a transition writes.
    pub(crate) const fn with_count(self, count: u32) -> StateWord {
        debug_assert!(count as u64 <= COUNT_MAX);
        StateWord((self.0 & !COUNT_MASK) | ((count as u64 & COUNT_MAX) << COUNT_SHIFT))
    }

    /// A transition into `stored` with time field `time` (the deadline when
    /// open, `now` otherwise): next epoch, zero count.
    pub(crate) const fn enter(self, stored: Stored, time: Timestamp) -> StateWord {
        let stored = match stored {
            Stored::Closed => CLOSED,
            Stored::Open => OPEN,
            Stored::HalfOpen => HALF_OPEN,
            Stored::Isolated => ISOLATED,
        };
        let epoch = (self.epoch() as u64 + 1) & EPOCH_MAX;
        let stamp = time.as_millis() & STAMP_MAX;
        StateWord((stamp << STAMP_SHIFT) | (epoch << EPOCH_SHIFT) | stored)
    }

    /// Ticks from `now` to the time field, reading the wrapping difference
    /// as signed: zero once `now` has reached it.
    pub(crate) const fn until(self, now: Timestamp) -> u64 {
        let diff = self.stamp().wrapping_sub(now.as_millis()) & STAMP_MAX;
        if diff > MAX_ELAPSED_TICKS { 0 } else { diff }
    }

    /// Ticks from the stamp to `now`, reading the wrapping difference as
    /// signed: a `now` before the stamp is zero elapsed.
    pub(crate) const fn elapsed(self, now: Timestamp) -> u64 {
        let diff = now.as_millis().wrapping_sub(self.stamp()) & STAMP_MAX;
        if diff > MAX_ELAPSED_TICKS { 0 } else { diff }
    }
}

impl fmt::Debug for StateWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateWord")
            .field("phase", &self.phase())
            .field("count", &self.count())
            .field("epoch", &self.epoch())
            .field("stamp", &self.stamp())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap_and_fill_the_word() {
        assert_eq!(STATE_MASK | COUNT_MASK | EPOCH_MASK | (STAMP_MAX << STAMP_SHIFT), u64::MAX);
        assert_eq!(STATE_MASK & COUNT_MASK, 0);
        assert_eq!(COUNT_MASK & EPOCH_MASK, 0);
        assert_eq!(EPOCH_MASK & (STAMP_MAX << STAMP_SHIFT), 0);
    }

    #[test]
    fn enter_sets_every_field() {
        let word = StateWord::INITIAL.with_count(9).enter(Stored::HalfOpen, Timestamp::from_millis(1234));
        assert_eq!(word.phase(), State::HalfOpen);
        assert_eq!(word.count(), 0);
        assert_eq!(word.epoch(), 1);
        assert_eq!(word.stamp(), 1234);
    }

    #[test]
    fn largest_values_round_trip() {
        let at_max = Timestamp::from_millis(STAMP_MAX);
        let word = StateWord::INITIAL.enter(Stored::Open, at_max).with_count(65_535);
        assert_eq!((word.phase(), word.count(), word.stamp()), (State::Open, 65_535, STAMP_MAX));
        let word = (0..255).fold(word, |w, _| w.enter(Stored::Open, at_max));
        assert_eq!(word.epoch(), 0, "the epoch wraps at 256");
    }

    #[test]
    fn count_changes_keep_the_generation() {
        let word = StateWord::INITIAL.enter(Stored::HalfOpen, Timestamp::from_millis(5));
        assert_eq!(word.with_count(3).generation(), word.generation());
        assert_ne!(word.enter(Stored::HalfOpen, Timestamp::from_millis(5)).generation(), word.generation());
    }

    #[test]
    fn stamp_wraps_and_elapsed_survives_the_wrap() {
        let near_wrap = Timestamp::from_millis(STAMP_MAX - 10);
        let word = StateWord::INITIAL.enter(Stored::Open, near_wrap);
        assert_eq!(word.elapsed(near_wrap), 0);
        assert_eq!(word.elapsed(Timestamp::from_millis(STAMP_MAX + 1 + 5)), 16);
        // A full u64 of ticks is many wraps of the field; only the difference matters.
        let late = Timestamp::from_millis(u64::MAX - 3);
        let word = StateWord::INITIAL.enter(Stored::Open, late);
        assert_eq!(word.elapsed(Timestamp::from_millis(late.as_millis().wrapping_add(100))), 100);
    }

    #[test]
    fn now_before_the_stamp_is_zero_elapsed() {
        let word = StateWord::INITIAL.enter(Stored::Open, Timestamp::from_millis(1_000));
        assert_eq!(word.elapsed(Timestamp::from_millis(999)), 0);
        assert_eq!(word.elapsed(Timestamp::ZERO), 0);
    }

    #[test]
    fn elapsed_is_exact_up_to_the_documented_bound() {
        let word = StateWord::INITIAL.enter(Stored::Open, Timestamp::from_millis(7));
        let at_bound = Timestamp::from_millis(7 + MAX_ELAPSED_TICKS);
        assert_eq!(word.elapsed(at_bound), MAX_ELAPSED_TICKS);
        // One tick further reads as "before the stamp": the documented limit.
        assert_eq!(word.elapsed(Timestamp::from_millis(8 + MAX_ELAPSED_TICKS)), 0);
    }

    #[test]
    fn debug_shows_every_field() {
        let word = StateWord::INITIAL.enter(Stored::HalfOpen, Timestamp::from_millis(77)).with_count(3);
        assert_eq!(format!("{word:?}"), "StateWord { phase: HalfOpen, count: 3, epoch: 1, stamp: 77 }");
    }

    #[test]
    fn phase_display_matches_the_go_package() {
        assert_eq!(State::Closed.to_string(), "closed");
        assert_eq!(State::Open.to_string(), "open");
        assert_eq!(State::HalfOpen.to_string(), "half-open");
    }
}

#[cfg(test)]
mod held_open_and_deadlines {
    use super::*;

    #[test]
    fn a_held_open_word_reads_open_and_says_so() {
        let word = StateWord::INITIAL.enter(Stored::Isolated, Timestamp::from_millis(3));
        assert_eq!((word.phase(), word.held_open(), word.stored()), (State::Open, true, Stored::Isolated));
        let open = StateWord::INITIAL.enter(Stored::Open, Timestamp::from_millis(3));
        assert!(!open.held_open());
        assert_ne!(word.generation(), open.generation());
    }

    #[test]
    fn until_counts_down_to_the_time_field_and_stays_at_zero_after_it() {
        let word = StateWord::INITIAL.enter(Stored::Open, Timestamp::from_millis(STAMP_MAX + 10));
        assert_eq!(word.until(Timestamp::from_millis(STAMP_MAX - 5)), 15, "across the field's wrap");
        assert_eq!(word.until(Timestamp::from_millis(STAMP_MAX + 10)), 0);
        assert_eq!(word.until(Timestamp::from_millis(STAMP_MAX + 10 + (1 << 37))), 0, "2^37 ticks past it");
        // Past that, the distance reads as a deadline ahead: the documented limit.
        assert_eq!(word.until(Timestamp::from_millis(STAMP_MAX + 11 + (1 << 37))), MAX_ELAPSED_TICKS);
    }
}
