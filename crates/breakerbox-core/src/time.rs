//! Time as the breaker sees it: whole milliseconds since its own base instant.
//!
//! The state word keeps the time of the last transition in a 38-bit field of
//! [`TICK`]-sized ticks (see [`crate::word`]). Everything outside the word
//! speaks [`Timestamp`], a full 64-bit tick count, so callers of the
//! time-explicit API never deal with the field's width.

use core::time::Duration;

/// The resolution of the breaker's clock: one millisecond.
///
/// Timeouts are rounded up to whole ticks; the time of a transition and the
/// current time are both rounded down, so a timeout fires within one tick of
/// its exact value, either side (`docs/ARCHITECTURE.md`, "Time", has the
/// cases).
pub const TICK: Duration = Duration::from_millis(1);

const NANOS_PER_TICK: u128 = TICK.as_nanos();
const _: () = assert!(NANOS_PER_TICK == 1_000_000, "from_elapsed assumes millisecond ticks");

/// A point in time, in whole milliseconds since a breaker's base instant.
///
/// A breaker takes its base instant from its clock when it is created, so
/// `Timestamp::from_millis(0)` is the moment of creation. Read the current one
/// with [`CoreBreaker::now`](crate::CoreBreaker::now), or build one by hand
/// for the time-explicit (`*_at`) API, as tests, the loom models and the
/// fuzzers do.
///
/// ```
/// use breakerbox_core::Timestamp;
/// use std::time::Duration;
///
/// let t = Timestamp::from_millis(1_500);
/// assert_eq!(t, Timestamp::from_elapsed(Duration::from_micros(1_500_999)));
/// assert_eq!(t.as_millis(), 1_500);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The base instant itself.
    pub const ZERO: Timestamp = Timestamp(0);

    /// The timestamp `millis` milliseconds after the base instant.
    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(millis)
    }

    /// The timestamp `elapsed` after the base instant, rounded down to a whole
    /// tick. Saturates at [`u64::MAX`] milliseconds (about 584 million years).
    pub const fn from_elapsed(elapsed: Duration) -> Timestamp {
        // Whole seconds and sub-second millis are u64 arithmetic; `as_millis`
        // would divide a u128, which costs more than the clock read itself.
        let millis = elapsed.as_secs().saturating_mul(1_000).saturating_add(elapsed.subsec_millis() as u64);
        Timestamp(millis)
    }

    /// Milliseconds since the base instant.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

/// A duration rounded up to whole ticks, so that rounding the configured
/// timeout never shortens it.
pub(crate) const fn ticks_rounded_up(duration: Duration) -> u128 {
    duration.as_nanos().div_ceil(NANOS_PER_TICK)
}

/// A breaker's clock: a `quanta::Clock`, how it is read, and the moment the
/// breaker counts from.
#[derive(Clone, Debug)]
pub(crate) struct TimeSource {
    clock: quanta::Clock,
    reading: Reading,
    /// The base as an `Instant`, for instants callers hand in and the coarse
    /// reading.
    base: quanta::Instant,
}

/// How [`TimeSource::now`] reads the clock.
#[derive(Clone, Copy, Debug)]
enum Reading {
    /// The raw counter, exact to the tick.
    Counter {
        /// The base as the clock's raw counter.
        base_raw: u64,
        /// How a raw counter difference becomes milliseconds.
        scale: RawScale,
    },
    /// quanta's recent time, kept fresh by the upkeep thread of
    /// [`RecentClock`](crate::RecentClock) (or, for a mock clock, the mock
    /// time itself).
    Recent,
}

/// Raw counter units to milliseconds, worked out once from the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RawScale {
    /// The raw counter counts nanoseconds (the OS clock quanta falls back to,
    /// and the mock clock): an exact division by a constant.
    Nanos,
    /// A cycle counter (the TSC): milliseconds are `raw * factor >> 64`, one
    /// multiply instead of quanta's scaling to nanoseconds and a division.
    Factor(u64),
    /// A counter too slow for a 64-bit factor (below 1 kHz; quanta uses
    /// none): quanta's scaling to nanoseconds and a division.
    ViaNanos,
}

/// The counter span the scale is measured over: long enough that quanta's
/// rounding of it is far below a nanosecond per tick.
const SCALE_SPAN_LOG2: u32 = 40;

impl RawScale {
    fn of(clock: &quanta::Clock) -> RawScale {
        let span = 1u64 << SCALE_SPAN_LOG2;
        let nanos = clock.delta_as_nanos(0, span);
        if nanos == span {
            return RawScale::Nanos;
        }
        // nanos per raw unit, times 2^64, over nanos per millisecond; rounded
        // down, so this clock never runs ahead of quanta's own scaling.
        let factor = (u128::from(nanos) << (64 - SCALE_SPAN_LOG2)) / NANOS_PER_TICK;
        u64::try_from(factor).map_or(RawScale::ViaNanos, RawScale::Factor)
    }

    #[inline(always)]
    fn to_ticks(self, raw_elapsed: u64, clock: &quanta::Clock) -> u64 {
        match self {
            RawScale::Nanos => raw_elapsed / NANOS_PER_TICK as u64,
            RawScale::Factor(factor) => ((u128::from(raw_elapsed) * u128::from(factor)) >> 64) as u64,
            RawScale::ViaNanos => clock.delta_as_nanos(0, raw_elapsed) / NANOS_PER_TICK as u64,
        }
    }
}

impl TimeSource {
    pub(crate) fn new(clock: quanta::Clock) -> TimeSource {
        let base_raw = clock.raw();
        let base = clock.scaled(base_raw);
        TimeSource { reading: Reading::Counter { base_raw, scale: RawScale::of(&clock) }, clock, base }
    }

    /// A time source on quanta's recent time, which [`RecentClock`](crate::RecentClock)'s
    /// upkeep thread keeps fresh; a mock clock's recent time is its mock time.
    pub(crate) fn recent(clock: quanta::Clock) -> TimeSource {
        let base = clock.now();
        TimeSource { clock, reading: Reading::Recent, base }
    }

    /// Reads the clock. This is the only place the core does.
    ///
    /// The raw counter and one multiply to milliseconds are cheaper than
    /// quanta's scaling to nanoseconds and a division; a counter reading
    /// before the base counts as the base. Inlined where the time is needed: the out-of-line
    /// slow paths of acquire and record, `state`, `trip`, `reset`, `now`, and
    /// `timestamp` on the recent clock; never into the healthy path.
    #[inline]
    pub(crate) fn now(&self) -> Timestamp {
        match self.reading {
            Reading::Counter { base_raw, scale } => {
                Timestamp(scale.to_ticks(self.clock.raw().saturating_sub(base_raw), &self.clock))
            }
            Reading::Recent => self.since_base(self.clock.recent()),
        }
    }

    /// An instant of this breaker's clock as a [`Timestamp`]; instants before
    /// the base instant map to [`Timestamp::ZERO`]. On the recent clock,
    /// instants after its current (lagging) time map to that time: a
    /// timestamp ahead of the one transitions are stamped with would shorten
    /// timeouts.
    #[inline]
    pub(crate) fn timestamp(&self, instant: quanta::Instant) -> Timestamp {
        match self.reading {
            Reading::Counter { .. } => self.since_base(instant),
            Reading::Recent => self.since_base(instant).min(self.now()),
        }
    }

    #[inline]
    fn since_base(&self, instant: quanta::Instant) -> Timestamp {
        Timestamp::from_elapsed(instant.saturating_duration_since(self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_rounds_down_and_saturates() {
        assert_eq!(Timestamp::from_elapsed(Duration::from_nanos(999_999)), Timestamp::ZERO);
        assert_eq!(Timestamp::from_elapsed(Duration::from_millis(7)).as_millis(), 7);
        assert_eq!(Timestamp::from_elapsed(Duration::MAX).as_millis(), u64::MAX);
    }

    #[test]
    fn durations_round_up_to_whole_ticks() {
        assert_eq!(ticks_rounded_up(Duration::from_nanos(1)), 1);
        assert_eq!(ticks_rounded_up(Duration::from_millis(3)), 3);
        assert_eq!(ticks_rounded_up(Duration::from_micros(3_001)), 4);
        assert_eq!(ticks_rounded_up(Duration::ZERO), 0);
    }

    #[test]
    fn time_source_counts_from_its_creation() {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(10));
        let time = TimeSource::new(clock);
        assert_eq!(time.now(), Timestamp::ZERO);
        mock.increment(Duration::from_micros(2_500));
        assert_eq!(time.now(), Timestamp::from_millis(2));
        assert_eq!(time.timestamp(time.clock.now()), Timestamp::from_millis(2));
        mock.decrement(Duration::from_secs(5));
        assert_eq!(time.now(), Timestamp::ZERO, "a clock behind the base reads as the base");
    }

    #[test]
    fn the_mock_clock_scales_exactly() {
        let (clock, _mock) = quanta::Clock::mock();
        let scale = RawScale::of(&clock);
        assert_eq!(scale, RawScale::Nanos);
        assert_eq!(scale.to_ticks(1_999_999, &clock), 1);
        assert_eq!(scale.to_ticks(2_000_000, &clock), 2, "a whole millisecond must not read as one less");
    }

    #[test]
    fn the_real_clock_scale_agrees_with_quanta_within_a_tick() {
        let clock = quanta::Clock::new();
        let scale = RawScale::of(&clock);
        for raw in [0, 1, 1_000, 1_000_000, 1 << 30, 1 << 40, 1 << 50, 1 << 60] {
            let quanta_ticks = clock.delta_as_nanos(0, raw) / 1_000_000;
            let ours = scale.to_ticks(raw, &clock);
            // Never ahead of quanta's own scaling, at most a tick behind.
            assert!(ours <= quanta_ticks && quanta_ticks - ours <= 1, "raw {raw}: {ours} ms, quanta {quanta_ticks} ms");
        }
    }

    #[test]
    fn the_production_scale_converts_a_real_interval_as_quanta_does() {
        let clock = quanta::Clock::new();
        let scale = RawScale::of(&clock);
        let span = 1u64 << SCALE_SPAN_LOG2;
        if clock.delta_as_nanos(0, span) == span {
            assert_eq!(scale, RawScale::Nanos, "quanta's OS clock counts nanoseconds");
        } else {
            assert!(matches!(scale, RawScale::Factor(_)), "a cycle counter gets the one-multiply scale: {scale:?}");
        }
        let time = TimeSource::new(clock.clone());
        let (raw_before, before) = (clock.raw(), time.now());
        std::thread::sleep(Duration::from_millis(5));
        let (raw_after, after) = (clock.raw(), time.now());
        // quanta's own conversion of the same interval is the reference.
        let quanta_nanos = clock.delta_as_nanos(raw_before, raw_after);
        assert!(quanta_nanos >= 5_000_000, "slept 5 ms, quanta says {quanta_nanos} ns");
        let ours = scale.to_ticks(raw_after - raw_before, &clock);
        let exact = quanta_nanos / 1_000_000;
        assert!(ours <= exact && exact - ours <= 1, "{ours} ms for quanta's {quanta_nanos} ns");
        // Through `now`, each end rounds down on its own: one tick more either way.
        let elapsed = after.as_millis() - before.as_millis();
        assert!(elapsed.abs_diff(exact) <= 1, "now() moved {elapsed} ms over quanta's {quanta_nanos} ns");
    }

    #[test]
    fn the_slow_counter_scale_goes_through_quantas_nanoseconds() {
        // No quanta clock counts slower than 1 kHz, so no real breaker takes
        // this path; the mock clock (nanoseconds) exercises its arithmetic.
        let (clock, _mock) = quanta::Clock::mock();
        assert_eq!(RawScale::ViaNanos.to_ticks(2_999_999, &clock), 2);
        assert_eq!(RawScale::ViaNanos.to_ticks(3_000_000, &clock), 3);
    }

    #[test]
    fn a_cycle_counter_scale_rounds_down() {
        // A 3 GHz counter: 1/3 ns per unit, so 3 million units are one ms.
        let clock = quanta::Clock::new();
        let scale = RawScale::Factor(((1u128 << 64) / 3 / 1_000_000) as u64);
        assert_eq!(scale.to_ticks(2_999_999, &clock), 0);
        assert_eq!(scale.to_ticks(6_000_000, &clock), 1, "rounded down: time never runs ahead");
        assert_eq!(scale.to_ticks(6_000_100, &clock), 2);
    }

    #[test]
    fn the_recent_reading_follows_the_clocks_recent_time() {
        // A mock clock's recent time is its mock time: no upkeep thread needed.
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(10));
        let time = TimeSource::recent(clock.clone());
        assert_eq!(time.now(), Timestamp::ZERO);
        mock.increment(Duration::from_micros(2_500));
        assert_eq!(time.now(), Timestamp::from_millis(2));
        assert_eq!(time.timestamp(clock.now()), Timestamp::from_millis(2));
        // An instant ahead of the recent time is capped at it; the counter
        // reading has no lag to protect and takes the instant as it is.
        let ahead = clock.now() + Duration::from_millis(5);
        assert_eq!(time.timestamp(ahead), Timestamp::from_millis(2));
        let counter = TimeSource::new(clock); // based at the current mock time
        assert_eq!(counter.timestamp(ahead), Timestamp::from_millis(5));
    }

    #[test]
    fn real_clock_reads_agree_with_instants() {
        let time = TimeSource::new(quanta::Clock::new());
        let before = time.timestamp(time.clock.now());
        let now = time.now();
        let after = time.timestamp(time.clock.now());
        // The raw path and the instant path round differently by at most a tick.
        assert!(before.as_millis() <= now.as_millis() + 1 && now.as_millis() <= after.as_millis() + 1);
    }
}
