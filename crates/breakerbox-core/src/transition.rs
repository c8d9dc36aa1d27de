//! The state machine as pure functions: (word, event, now) -> (decision, next
//! word). No atomics, no clock.
//!
//! `now` is passed as a closure and asked for only on the branches whose
//! answer depends on time (an open breaker checking its deadline, a full
//! half-open breaker checking for hung probes, a transition stamping the word).
//! The clock-reading API hands in a closure that reads the clock (again on a
//! CAS retry, so a retry never decides on a time older than the word it
//! read), so a healthy closed breaker never reads the clock; the
//! time-explicit API hands in a constant.
//!
//! `d(k)` is the backoff's duration for the `k`-th open in a row and
//! `open(k)` that duration spread by its jitter ([`Schedule`]); `k'` is the
//! streak plus one, saturated where the backoff stops growing. Half-open
//! counts are (probes in flight, successes, streak).
//!
//! | stored    | event                              | next                                       | decision | reason |
//! |-----------|------------------------------------|--------------------------------------------|----------|--------|
//! | closed    | acquire                            | unchanged                                  | admitted |        |
//! | closed    | success                            | count = 0                                  | applied  |        |
//! | closed    | failure, consecutive rule off      | unchanged                                  | applied  |        |
//! | closed    | failure, count + 1 < threshold     | count + 1                                  | applied  |        |
//! | closed    | failure, count + 1 = threshold     | open until now + open(k'), streak k' (0 + 1, saturated) | applied  | threshold reached |
//! | closed    | ignored                            | unchanged                                  | applied  |        |
//! | closed    | open on rate, ticket current       | open until now + open(k'), streak k'       | opened   | failure rate reached |
//! | other     | open on rate                       | unchanged                                  | not opened |      |
//! | open      | acquire, before the deadline       | unchanged                                  | rejected (until the deadline) | |
//! | open      | acquire, at or after the deadline  | half-open at now, (1, 0, streak)           | admitted | timeout elapsed |
//! | half-open | acquire, in flight < max           | in flight + 1                              | admitted |        |
//! | half-open | acquire, full, elapsed < d(streak) | unchanged                                  | rejected |        |
//! | half-open | acquire, full, elapsed >= d(streak)| half-open at now, (1, 0, streak): hung probes go stale | admitted | probes replaced |
//! | half-open | success, successes + 1 = needed    | closed at now, streak 0                    | applied  | probe succeeded |
//! | half-open | success, successes + 1 < needed    | in flight - 1, successes + 1               | applied  |        |
//! | half-open | failure                            | open until now + open(k'), streak k'       | applied  | probe failed |
//! | half-open | ignored                            | in flight - 1                              | applied  |        |
//! | held open | acquire                            | unchanged                                  | rejected (held open) | |
//! | any       | result with another generation     | unchanged                                  | stale    |        |
//! | open, held open | any result                   | unchanged                                  | stale    |        |
//! | open      | trip                               | open until now + open(k'), streak k'       |          |        |
//! | closed, half-open | trip                       | open until now + open(k'), streak k'       |          | tripped |
//! | open      | trip_for(t)                        | open until now + t, streak kept            |          |        |
//! | closed, half-open | trip_for(t)                | open until now + t, streak kept            |          | tripped |
//! | held open | trip, trip_for                     | unchanged                                  |          |        |
//! | held open | isolate                            | unchanged                                  |          |        |
//! | other     | isolate                            | held open at now                           |          | isolated |
//! | closed    | reset                              | closed at now                              |          |        |
//! | other     | reset                              | closed at now, streak 0                    |          | reset  |
//!
//! "at now" or "until" is [`StateWord::enter`]: a new epoch and time, so
//! every ticket issued before the transition is stale after it. A row with a
//! reason is a change of state that the breaker's listener hears about; the
//! rows that enter without one start a new generation in the same state and
//! are not reported. Isolating an open breaker is reported (open to open,
//! reason isolated): it changes what the breaker will do.

use crate::backoff::Schedule;
use crate::config::ValidConfig;
use crate::observe::Reason;
use crate::ticket::{Outcome, Recorded, Rejected, Ticket};
use crate::time::Timestamp;
use crate::word::{State, StateWord, Stored};

/// A decision and the word to store for it; `next == word` means no write.
/// `reason` is set when storing `next` is a change of state a listener hears
/// about, and `at` is when it happened (an open word's time field is its
/// deadline, not the time of the transition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a step whose next word is not stored did not happen"]
pub(crate) struct Step<D> {
    pub(crate) decision: D,
    pub(crate) next: StateWord,
    pub(crate) reason: Option<Reason>,
    pub(crate) at: Timestamp,
}

impl<D> Step<D> {
    const fn to(next: StateWord, decision: D) -> Step<D> {
        Step { decision, next, reason: None, at: Timestamp::ZERO }
    }

    fn because(self, reason: Option<Reason>, at: Timestamp) -> Step<D> {
        Step { reason, at, ..self }
    }
}

/// What a transition needs beyond the word: the limits and the backoff.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy<'a> {
    pub(crate) limits: &'a ValidConfig,
    /// The backoff's box, `None` for the fixed one: looked into only by the
    /// rows that need it, so that a rejection does not pay for the load.
    pub(crate) schedule: &'a Option<Box<Schedule>>,
}

impl Policy<'_> {
    fn schedule(&self) -> &Schedule {
        self.schedule.as_deref().unwrap_or(&Schedule::FIXED)
    }
}

/// A half-open word's count, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Probes {
    in_flight: u32,
    successes: u32,
    streak: u32,
}

impl Probes {
    fn of(word: StateWord, limits: &ValidConfig) -> Probes {
        let count = word.count();
        let (in_bits, ok_bits) = (u32::from(limits.in_flight_bits), u32::from(limits.success_bits));
        Probes {
            in_flight: count & low_bits(in_bits),
            successes: (count >> in_bits) & low_bits(ok_bits),
            streak: count >> (in_bits + ok_bits),
        }
    }

    /// A probe of this round reported without closing it: its slot is free.
    /// Saturating: a ticket reported twice must not free a slot it never
    /// held.
    fn one_fewer(self) -> Probes {
        Probes { in_flight: self.in_flight.saturating_sub(1), ..self }
    }

    fn packed(self, limits: &ValidConfig) -> u32 {
        let (in_bits, ok_bits) = (u32::from(limits.in_flight_bits), u32::from(limits.success_bits));
        self.in_flight | (self.successes << in_bits) | (self.streak << (in_bits + ok_bits))
    }
}

const fn low_bits(bits: u32) -> u32 {
    if bits >= u32::BITS { u32::MAX } else { (1 << bits) - 1 }
}

/// The backoff streak a word carries: opens in a row so far.
fn streak(word: StateWord, limits: &ValidConfig) -> u32 {
    match word.stored() {
        Stored::Closed | Stored::Isolated => 0,
        Stored::Open => word.count(),
        Stored::HalfOpen => Probes::of(word, limits).streak,
    }
}

/// Asks to let one call through.
#[inline]
pub(crate) fn acquire(
    word: StateWord,
    policy: Policy<'_>,
    now: &mut impl FnMut() -> Timestamp,
) -> Step<Result<Ticket, Rejected>> {
    // Two arms and a default, not a four-way match: LLVM compiles four cases
    // to a jump table, whose indirect jump the open rejection (the path an
    // outage runs at full rate) would pay on every call.
    match word.stored() {
        Stored::Open => {
            let now = now();
            match word.until(now) {
                0 => start_round(word, word.count(), policy.limits, now, Reason::TimeoutElapsed),
                left => Step::to(word, Err(Rejected::after_ticks(left))),
            }
        }
        Stored::Closed => admit(word),
        _ => acquire_probe_or_held(word, policy, now),
    }
}

/// [`acquire`] on a half-open or held-open word.
#[inline]
fn acquire_probe_or_held(
    word: StateWord,
    policy: Policy<'_>,
    now: &mut impl FnMut() -> Timestamp,
) -> Step<Result<Ticket, Rejected>> {
    let limits = policy.limits;
    if word.stored() == Stored::Isolated {
        return Step::to(word, Err(Rejected::held_open()));
    }
    let probes = Probes::of(word, limits);
    if probes.in_flight < limits.half_open_max() {
        let next = Probes { in_flight: probes.in_flight + 1, ..probes };
        return admit(word.with_count(next.packed(limits)));
    }
    replace_round_or_reject(word, probes, policy, now())
}

/// A full half-open round: every slot is held. Starting over after a lease
/// is what keeps a probe that never reports from wedging the breaker.
#[cold]
#[inline(never)]
fn replace_round_or_reject(
    word: StateWord,
    probes: Probes,
    policy: Policy<'_>,
    now: Timestamp,
) -> Step<Result<Ticket, Rejected>> {
    let lease = policy.schedule().base_ticks(policy.limits.timeout_ticks, probes.streak);
    let elapsed = word.elapsed(now);
    if elapsed >= lease {
        start_round(word, probes.streak, policy.limits, now, Reason::ProbesReplaced)
    } else {
        Step::to(word, Err(Rejected::after_ticks(lease - elapsed)))
    }
}

/// The rows of [`acquire`] decided from the word alone that leave it as it
/// is: a closed breaker admits. Callers try this before paying for a clock
/// read or a CAS loop; `None` means "run [`acquire`]".
#[inline(always)]
pub(crate) fn acquire_read_only(word: StateWord) -> Option<Ticket> {
    match word.phase() {
        State::Closed => Some(Ticket::issued_in(word)),
        State::Open | State::HalfOpen => None,
    }
}

const fn admit(next: StateWord) -> Step<Result<Ticket, Rejected>> {
    Step::to(next, Ok(Ticket::issued_in(next)))
}

/// A new round of probing at `now`, whose first probe is the caller.
fn start_round(
    word: StateWord,
    streak: u32,
    limits: &ValidConfig,
    now: Timestamp,
    reason: Reason,
) -> Step<Result<Ticket, Rejected>> {
    let probes = Probes { in_flight: 1, successes: 0, streak };
    admit(word.enter(Stored::HalfOpen, now).with_count(probes.packed(limits))).because(Some(reason), now)
}

/// Opens on the next step of the streak, as a failure does.
fn open<D>(word: StateWord, policy: Policy<'_>, now: Timestamp, reason: Reason, decision: D) -> Step<D> {
    let limits = policy.limits;
    let schedule = policy.schedule();
    let step = (streak(word, limits) + 1).min(schedule.steps);
    let lasts = schedule.open_ticks(limits.timeout_ticks, step, now.as_millis());
    open_for(word, lasts, step, now, reason, decision)
}

/// Opens at `now` for `ticks` with `streak`; a change of state unless the
/// breaker was open already.
fn open_for<D>(word: StateWord, ticks: u64, streak: u32, now: Timestamp, reason: Reason, decision: D) -> Step<D> {
    let until = Timestamp::from_millis(now.as_millis().saturating_add(ticks));
    let next = word.enter(Stored::Open, until).with_count(streak);
    Step::to(next, decision).because(changes_state(word, Stored::Open).then_some(reason), now)
}

/// Whether entering `to` from `word` is a change of state: reopening an
/// open breaker or closing a closed one only starts a new generation.
fn changes_state(word: StateWord, to: Stored) -> bool {
    word.stored() != to
}

/// Reports how the call behind `ticket` ended.
#[inline]
pub(crate) fn record(
    word: StateWord,
    ticket: Ticket,
    outcome: Outcome,
    policy: Policy<'_>,
    now: &mut impl FnMut() -> Timestamp,
) -> Step<Recorded> {
    if !ticket.belongs_to(word) {
        return Step::to(word, Recorded::Stale);
    }
    let limits = policy.limits;
    let applied = |next| Step::to(next, Recorded::Applied);
    match (word.stored(), outcome) {
        // Open generations issue no tickets, so a match here is an alias of an
        // old generation (see the word's docs) and must not count.
        (Stored::Open | Stored::Isolated, _) => Step::to(word, Recorded::Stale),
        (Stored::Closed, Outcome::Success) => applied(word.with_count(0)),
        (Stored::Closed, Outcome::Failure) if limits.threshold == 0 => applied(word),
        (Stored::Closed, Outcome::Failure) if word.count() + 1 >= limits.threshold() => {
            open(word, policy, now(), Reason::ThresholdReached, Recorded::Applied)
        }
        (Stored::Closed, Outcome::Failure) => applied(word.with_count(word.count() + 1)),
        (Stored::Closed, Outcome::Ignored) => applied(word),
        (Stored::HalfOpen, Outcome::Success) => {
            let probes = Probes::of(word, limits);
            if probes.successes + 1 >= limits.success_threshold() {
                let now = now();
                applied(word.enter(Stored::Closed, now)).because(Some(Reason::ProbeSucceeded), now)
            } else {
                // Not yet: the probe's slot is free for the next one.
                let next = Probes { successes: probes.successes + 1, ..probes.one_fewer() };
                applied(word.with_count(next.packed(limits)))
            }
        }
        (Stored::HalfOpen, Outcome::Failure) => open(word, policy, now(), Reason::ProbeFailed, Recorded::Applied),
        (Stored::HalfOpen, Outcome::Ignored) => {
            applied(word.with_count(Probes::of(word, limits).one_fewer().packed(limits)))
        }
    }
}

/// The rows of [`record`] decided from the word alone that leave it as it
/// is and dominate a healthy service: a success on a closed word with no
/// failure counted, an ignored call on a closed word. `None` means "run
/// [`record`]".
#[inline(always)]
pub(crate) fn record_read_only(word: StateWord, ticket: Ticket, outcome: Outcome) -> Option<Recorded> {
    let unchanged = match outcome {
        Outcome::Success => word.count() == 0,
        Outcome::Ignored => true,
        Outcome::Failure => false,
    };
    (unchanged && word.phase() == State::Closed && ticket.belongs_to(word)).then_some(Recorded::Applied)
}

/// Opens a closed breaker whose generation `ticket` belongs to, as reaching
/// the threshold would, because a rule kept outside the word (the failure
/// rate) says so; `true` if this opened it.
#[inline]
pub(crate) fn open_on_rate(
    word: StateWord,
    ticket: Ticket,
    policy: Policy<'_>,
    now: &mut impl FnMut() -> Timestamp,
) -> Step<bool> {
    if ticket.belongs_to(word) && word.stored() == Stored::Closed {
        open(word, policy, now(), Reason::FailureRateReached, true)
    } else {
        Step::to(word, false)
    }
}

/// Opens the breaker now as a failure would: the streak advances and the
/// open lasts its step (an open one restarts its timer on the next step,
/// which is not a change of state). A breaker held open stays held.
#[inline]
pub(crate) fn trip(word: StateWord, policy: Policy<'_>, now: &mut impl FnMut() -> Timestamp) -> Step<()> {
    match word.stored() {
        Stored::Isolated => Step::to(word, ()),
        _ => open(word, policy, now(), Reason::Tripped, ()),
    }
}

/// Opens the breaker now for `ticks`, keeping the streak. A breaker held
/// open stays held.
#[inline]
pub(crate) fn trip_for(
    word: StateWord,
    ticks: u64,
    policy: Policy<'_>,
    now: &mut impl FnMut() -> Timestamp,
) -> Step<()> {
    if word.stored() == Stored::Isolated {
        return Step::to(word, ());
    }
    open_for(word, ticks, streak(word, policy.limits), now(), Reason::Tripped, ())
}

/// Holds the breaker open, with no probes, until a reset.
#[inline]
pub(crate) fn isolate(word: StateWord, now: &mut impl FnMut() -> Timestamp) -> Step<()> {
    if word.stored() == Stored::Isolated {
        return Step::to(word, ());
    }
    let now = now();
    Step::to(word.enter(Stored::Isolated, now), ()).because(Some(Reason::Isolated), now)
}

/// Closes the breaker now with no failures and no streak, whatever its
/// state (a closed one starts a new generation, which is not a change of
/// state).
#[inline]
pub(crate) fn reset(word: StateWord, now: &mut impl FnMut() -> Timestamp) -> Step<()> {
    let now = now();
    Step::to(word.enter(Stored::Closed, now), ())
        .because(changes_state(word, Stored::Closed).then_some(Reason::Reset), now)
}

/// The state as callers see it: an open breaker whose deadline has passed is
/// half-open, although the word changes only at the next acquire; a breaker
/// held open is open.
#[inline]
pub(crate) fn observe(word: StateWord, now: &mut impl FnMut() -> Timestamp) -> State {
    match word.stored() {
        Stored::Open if word.until(now()) == 0 => State::HalfOpen,
        Stored::Open | Stored::Isolated => State::Open,
        Stored::Closed => State::Closed,
        Stored::HalfOpen => State::HalfOpen,
    }
}

#[cfg(test)]
mod tests;
