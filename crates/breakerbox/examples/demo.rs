//! A service calls a flaky downstream from several threads through one
//! breaker: healthy, then an outage, then recovery. Prints a timeline and a
//! summary of what the breaker let through, what it rejected and how much
//! waiting on a dead downstream it saved the callers.
//!
//! `--scenario brownout` makes the outage partial: four of the downstream's
//! five backends are down behind a round-robin balancer, so four calls in
//! five fail, in turn. It runs twice, with the consecutive rule alone (a
//! threshold of 10, which calls that fail four in five do not reach) and
//! with a failure-rate rule as well (which opens).
//!
//! ```sh
//! cargo run --release --example demo
//! cargo run --release --example demo -- --threads 8 --outage 3 --threshold 3 --timeout 250
//! cargo run --release --example demo -- --scenario brownout
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use breakerbox::{Breaker, Config, Error, FailureRate, State};

const USAGE: &str = "\
usage: demo [options]

  --threads N         caller threads                          (default 4)
  --healthy SECS      healthy time before the outage          (default 1.5)
  --outage SECS       how long the downstream is down         (default 2)
  --recovery SECS     healthy time after the outage           (default 1.5)
  --interval MS       length of one timeline line             (default 250)
  --threshold N       consecutive failures that open          (default 5)
  --timeout MS        how long the breaker stays open         (default 500)
  --half-open-max N   probes let through at once              (default 1)
  --latency MS        a healthy call's latency                (default 2)
  --hang MS           how long a call to the dead downstream
                      waits before it fails                   (default 100)
  --error-rate P      chance a healthy call fails, 0..1       (default 0.01)
  --rate R            also open when at least R of the calls
                      in the last --window failed, 0..1       (default off)
  --window MS         the failure-rate window                 (default 1000)
  --min-calls N       calls the window needs first            (default 20)
  --scenario NAME     outage: every call fails (default);
                      brownout: 4 of 5 backends are down behind
                      round-robin, run without and with --rate
                      (0.5 unless given; --threshold 10 unless
                      given, as four threads finishing their
                      calls out of order make runs of 5 failures)
  --help              this text";

#[derive(Clone, Debug)]
struct Options {
    threads: usize,
    healthy: Duration,
    outage: Duration,
    recovery: Duration,
    interval: Duration,
    config: Config,
    latency: Duration,
    hang: Duration,
    error_rate: f64,
    rate: Option<f64>,
    window: Duration,
    min_calls: u32,
    brownout: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threads: 4,
            healthy: Duration::from_millis(1_500),
            outage: Duration::from_secs(2),
            recovery: Duration::from_millis(1_500),
            interval: Duration::from_millis(250),
            config: Config { threshold: 5, timeout: Duration::from_millis(500), half_open_max: 1 },
            latency: Duration::from_millis(2),
            hang: Duration::from_millis(100),
            error_rate: 0.01,
            rate: None,
            window: Duration::from_secs(1),
            min_calls: 20,
            brownout: false,
        }
    }
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: cannot read {value:?} as a number"))
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = parse(flag, value)?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{flag}: {value} is not a duration in seconds"))
}

fn millis(flag: &str, value: &str) -> Result<Duration, String> {
    Ok(Duration::from_millis(parse(flag, value)?))
}

fn parse_options(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options::default();
    let mut threshold_given = false;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), value.to_owned()),
            None => {
                let value = args.next().ok_or_else(|| format!("{arg}: needs a value"))?;
                (arg, value)
            }
        };
        let (flag, value) = (flag.as_str(), value.as_str());
        match flag {
            "--threads" => options.threads = parse(flag, value)?,
            "--healthy" => options.healthy = seconds(flag, value)?,
            "--outage" => options.outage = seconds(flag, value)?,
            "--recovery" => options.recovery = seconds(flag, value)?,
            "--interval" => options.interval = millis(flag, value)?,
            "--threshold" => {
                options.config.threshold = parse(flag, value)?;
                threshold_given = true;
            }
            "--timeout" => options.config.timeout = millis(flag, value)?,
            "--half-open-max" => options.config.half_open_max = parse(flag, value)?,
            "--latency" => options.latency = millis(flag, value)?,
            "--hang" => options.hang = millis(flag, value)?,
            "--error-rate" => options.error_rate = parse(flag, value)?,
            "--rate" => options.rate = Some(parse(flag, value)?),
            "--window" => options.window = millis(flag, value)?,
            "--min-calls" => options.min_calls = parse(flag, value)?,
            "--scenario" => {
                options.brownout = match value {
                    "outage" => false,
                    "brownout" => true,
                    other => return Err(format!("--scenario: {other:?} is not outage or brownout")),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.brownout && !threshold_given {
        options.config.threshold = 10;
    }
    if !(1..=256).contains(&options.threads) {
        return Err(format!("--threads: {} is not between 1 and 256", options.threads));
    }
    if options.interval < Duration::from_millis(10) {
        return Err("--interval: must be at least 10 ms".to_owned());
    }
    if !(0.0..=1.0).contains(&options.error_rate) {
        return Err(format!("--error-rate: {} is not between 0 and 1", options.error_rate));
    }
    let total = options.healthy + options.outage + options.recovery;
    if total > Duration::from_secs(600) || total.is_zero() {
        return Err("the whole run (healthy + outage + recovery) must be between 0 and 600 seconds".to_owned());
    }
    Ok(Some(options))
}

/// What happened in one line of the timeline.
#[derive(Default)]
struct Interval {
    succeeded: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
}

/// The downstream: up, then down for the outage, then up again.
struct Downstream {
    start: Instant,
    outage_from: Duration,
    outage_until: Duration,
    latency: Duration,
    hang: Duration,
    error_rate: f64,
    /// Four of five backends down during the outage, taken in turn.
    brownout: bool,
    next_backend: AtomicU64,
}

#[derive(Debug)]
enum DownstreamError {
    TimedOut,
    Flaked,
}

impl Downstream {
    fn call(&self, dice: &mut u64) -> Result<(), DownstreamError> {
        let at = self.start.elapsed();
        if (self.outage_from..self.outage_until).contains(&at) {
            let backend = self.next_backend.fetch_add(1, Ordering::Relaxed) % 5;
            if !self.brownout || backend < 4 {
                std::thread::sleep(self.hang);
                return Err(DownstreamError::TimedOut);
            }
        }
        std::thread::sleep(self.latency);
        if roll(dice) < self.error_rate { Err(DownstreamError::Flaked) } else { Ok(()) }
    }
}

/// A xorshift step mapped to [0, 1): enough randomness for a demo.
fn roll(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("demo: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rate = match (options.rate, options.brownout) {
        (Some(ratio), _) => Some(FailureRate::new(ratio, options.min_calls, options.window)),
        (None, true) => Some(FailureRate::new(0.5, options.min_calls, options.window)),
        (None, false) => None,
    };
    // A brownout runs first with the consecutive rule alone, to compare.
    let runs = if options.brownout { vec![None, rate] } else { vec![rate] };
    let mut outcomes = Vec::new();
    for rate in runs {
        let builder = Breaker::builder(options.config);
        let breaker = match rate.map_or(builder.clone(), |rate| builder.failure_rate(rate)).build() {
            Ok(breaker) => breaker,
            Err(err) => {
                eprintln!("demo: {err}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        match rate {
            Some(rate) => println!(
                "With a failure rate: also open when {:.0}% of at least {} calls in the last {:?} failed.",
                rate.ratio() * 100.0,
                rate.min_calls(),
                rate.window()
            ),
            None if options.brownout => println!("With the consecutive rule alone:"),
            None => {}
        }
        let waited = run(&options, &breaker);
        outcomes.push((rate.is_some(), breaker.counts().opens, waited));
        println!();
    }
    if options.brownout {
        for (rated, opens, waited) in outcomes {
            let rule = if rated { "with the failure rate" } else { "consecutive rule alone" };
            println!("{rule:<24} opened {opens} time(s); callers waited {waited:.1?} on failing backends");
        }
    }
    ExitCode::SUCCESS
}

/// Runs the timeline; returns how long callers waited on failed calls.
fn run(options: &Options, breaker: &Breaker) -> Duration {
    let total = options.healthy + options.outage + options.recovery;
    let lines = total.as_nanos().div_ceil(options.interval.as_nanos()) as usize;
    let timeline: Vec<Interval> = (0..lines).map(|_| Interval::default()).collect();
    let start = Instant::now();
    let downstream = Downstream {
        start,
        outage_from: options.healthy,
        outage_until: options.healthy + options.outage,
        latency: options.latency,
        hang: options.hang,
        error_rate: options.error_rate,
        brownout: options.brownout,
        next_backend: AtomicU64::new(0),
    };
    // Each caller sends a request every `pace`, as a service under steady load would.
    let pace = options.latency * 5;

    println!(
        "{} threads call a downstream through one breaker (threshold {}, timeout {:?}, {} probe(s)).",
        options.threads, options.config.threshold, options.config.timeout, options.config.half_open_max
    );
    if options.brownout {
        println!(
            "The downstream is healthy for {:?}; for {:?}, 4 of its 5 backends are down (a call there hangs {:?}, \
             then fails), taken in turn; then healthy again.\n",
            options.healthy, options.outage, options.hang
        );
    } else {
        println!(
            "The downstream is healthy for {:?}, down for {:?} (each call hangs {:?}, then fails), then healthy \
             again.\n",
            options.healthy, options.outage, options.hang
        );
    }
    println!("  time  state        ok  fail  reject  waiting saved  # ok  x failed  . rejected");

    std::thread::scope(|scope| {
        for thread in 0..options.threads {
            let (timeline, downstream) = (&timeline, &downstream);
            scope.spawn(move || {
                let mut dice = 0x9E37_79B9_7F4A_7C15 ^ (thread as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                let mut next = Instant::now();
                while start.elapsed() < total {
                    let result = breaker.call(|| downstream.call(&mut dice));
                    let line = ((start.elapsed().as_nanos() / options.interval.as_nanos()) as usize).min(lines - 1);
                    let counter = match result {
                        Ok(()) => &timeline[line].succeeded,
                        Err(Error::Inner(_)) => &timeline[line].failed,
                        Err(Error::Open(_)) => &timeline[line].rejected,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    next += pace;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    } else {
                        next = Instant::now();
                    }
                }
            });
        }
        let mut widest = 1;
        for (line, interval) in timeline.iter().enumerate() {
            let end = options.interval * (line as u32 + 1);
            if let Some(wait) = end.min(total).checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            print_line(line, options, breaker.state(), interval, &mut widest);
        }
    });
    print_summary(options, breaker, &timeline, start.elapsed());
    let failed: u64 = timeline.iter().map(|interval| interval.failed.load(Ordering::Relaxed)).sum();
    options.hang * failed as u32
}

fn print_line(line: usize, options: &Options, state: State, interval: &Interval, widest: &mut u64) {
    let ok = interval.succeeded.load(Ordering::Relaxed);
    let failed = interval.failed.load(Ordering::Relaxed);
    let rejected = interval.rejected.load(Ordering::Relaxed);
    let saved = options.hang.as_secs_f64() * rejected as f64;
    // Scale bars to the busiest line so far; at least one mark for any nonzero count.
    *widest = (*widest).max(ok + failed + rejected);
    let width = |n: u64| if n == 0 { 0 } else { ((n * 40).div_ceil(*widest)) as usize };
    let at = options.interval * (line as u32 + 1);
    println!(
        "{:>5.2}s  {:<9} {:>5} {:>5} {:>7} {:>12.1}s  {}{}{}",
        at.as_secs_f64(),
        state.to_string(),
        ok,
        failed,
        rejected,
        saved,
        "#".repeat(width(ok)),
        "x".repeat(width(failed)),
        ".".repeat(width(rejected)),
    );
}

fn print_summary(options: &Options, breaker: &Breaker, timeline: &[Interval], elapsed: Duration) {
    let sum = |pick: fn(&Interval) -> &AtomicU64| timeline.iter().map(|i| pick(i).load(Ordering::Relaxed)).sum::<u64>();
    let (ok, failed, rejected) = (sum(|i| &i.succeeded), sum(|i| &i.failed), sum(|i| &i.rejected));
    let counts = breaker.counts();
    println!("\nSummary after {:.2?}:", elapsed);
    println!("  calls let through   {:>8}  ({ok} ok, {failed} failed)", ok + failed);
    println!("  calls rejected      {:>8}  (answered at once instead of waiting on a dead downstream)", rejected);
    println!(
        "  waiting saved       {:>7.1}s  (rejected calls x the {:?} each would have hung)",
        options.hang.as_secs_f64() * rejected as f64,
        options.hang
    );
    println!(
        "  breaker counts      {:>8}  successes, {} failures, {} rejections (they match the timeline: {})",
        counts.successes,
        counts.failures,
        counts.rejections,
        counts.successes == ok && counts.failures == failed && counts.rejections == rejected,
    );
    println!("  times opened        {:>8}", counts.opens);
    println!("  final state         {:>8}", breaker.state().to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> impl Iterator<Item = String> + '_ {
        line.split_whitespace().map(str::to_owned)
    }

    #[test]
    fn defaults_run_about_five_seconds() {
        let options = parse_options(args("")).unwrap().unwrap();
        assert_eq!(options.healthy + options.outage + options.recovery, Duration::from_secs(5));
    }

    #[test]
    fn flags_in_both_spellings() {
        let options = parse_options(args("--threads 8 --outage=3 --timeout 250 --half-open-max 2")).unwrap().unwrap();
        assert_eq!(options.threads, 8);
        assert_eq!(options.outage, Duration::from_secs(3));
        assert_eq!(options.config.timeout, Duration::from_millis(250));
        assert_eq!(options.config.half_open_max, 2);
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        assert_eq!(parse_options(args("--threads many")).unwrap_err(), "--threads: cannot read \"many\" as a number");
        assert_eq!(parse_options(args("--frobnicate 1")).unwrap_err(), "unknown option --frobnicate");
        assert_eq!(parse_options(args("--threads")).unwrap_err(), "--threads: needs a value");
        assert_eq!(parse_options(args("--threads 0")).unwrap_err(), "--threads: 0 is not between 1 and 256");
        assert!(parse_options(args("--outage -1")).unwrap_err().starts_with("--outage"));
        assert!(parse_options(args("--help")).unwrap().is_none());
        assert_eq!(
            parse_options(args("--scenario flood")).unwrap_err(),
            "--scenario: \"flood\" is not outage or brownout"
        );
    }

    #[test]
    fn a_brownout_raises_the_threshold_unless_one_is_given() {
        assert_eq!(parse_options(args("--scenario brownout")).unwrap().unwrap().config.threshold, 10);
        let given = parse_options(args("--threshold 7 --scenario brownout")).unwrap().unwrap();
        assert_eq!(given.config.threshold, 7);
        assert_eq!(parse_options(args("")).unwrap().unwrap().config.threshold, 5);
    }

    #[test]
    fn a_brownout_fails_four_calls_in_five_and_never_five_in_a_row() {
        let downstream = Downstream {
            start: Instant::now(),
            outage_from: Duration::ZERO,
            outage_until: Duration::from_secs(3_600),
            latency: Duration::ZERO,
            hang: Duration::ZERO,
            error_rate: 0.0,
            brownout: true,
            next_backend: AtomicU64::new(0),
        };
        let mut dice = 1;
        let failed: Vec<bool> = (0..100).map(|_| downstream.call(&mut dice).is_err()).collect();
        assert_eq!(failed.iter().filter(|&&failed| failed).count(), 80);
        assert!(failed.windows(5).all(|five| five.contains(&false)));
    }
}
