//! What operators see: transition listeners through the facade's calls, the
//! `tracing` events, the Prometheus collector's text and serde output. Every
//! test runs on a mock clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::quanta::{Clock, Mock};
use breakerbox::{Breaker, Config, Error, Reason, State, Transition};

type Log = Arc<Mutex<Vec<Transition>>>;

/// "db": threshold 2, one probe, 100 ms, its transitions appended to the log.
fn observed() -> (Breaker, Arc<Mock>, Log) {
    let (clock, mock) = Clock::mock();
    let log = Log::default();
    let sink = Arc::clone(&log);
    let breaker = Breaker::builder(Config { threshold: 2, half_open_max: 1, timeout: Duration::from_millis(100) })
        .clock(clock)
        .name("db")
        .on_transition(move |t| sink.lock().unwrap().push(t.clone()))
        .build()
        .unwrap();
    (breaker, mock, log)
}

fn fail(breaker: &Breaker) -> Result<(), Error<&'static str>> {
    breaker.call(|| Err("down"))
}

fn succeed(breaker: &Breaker) -> Result<(), Error<&'static str>> {
    breaker.call(|| Ok(()))
}

#[test]
fn calls_report_each_change_with_its_reason() {
    let (b, mock, log) = observed();
    let _ = fail(&b);
    let _ = fail(&b);
    let _ = succeed(&b); // rejected: nothing to report
    mock.increment(Duration::from_millis(100));
    let _ = fail(&b); // the probe: open -> half-open, then half-open -> open
    mock.increment(Duration::from_millis(100));
    let _ = succeed(&b);
    let heard: Vec<_> = log.lock().unwrap().iter().map(|t| (t.from(), t.to(), t.reason(), t.sequence())).collect();
    assert_eq!(
        heard,
        [
            (State::Closed, State::Open, Reason::ThresholdReached, 1),
            (State::Open, State::HalfOpen, Reason::TimeoutElapsed, 2),
            (State::HalfOpen, State::Open, Reason::ProbeFailed, 3),
            (State::Open, State::HalfOpen, Reason::TimeoutElapsed, 4),
            (State::HalfOpen, State::Closed, Reason::ProbeSucceeded, 5),
        ]
    );
    assert!(log.lock().unwrap().iter().all(|t| t.name() == "db"));
    assert_eq!(b.counts().opens, 2);
}

#[test]
fn a_panicking_listener_leaves_state_counts_and_the_callers_result_right() {
    let (clock, _mock) = Clock::mock();
    let b = Breaker::builder(Config { threshold: 1, ..Config::default() })
        .clock(clock)
        .on_transition(|_| panic!("a bug in the listener"))
        .build()
        .unwrap();
    assert_eq!(fail(&b), Err(Error::Inner("down")), "the caller gets its own result, not the listener's panic");
    assert_eq!(b.state(), State::Open);
    let counts = b.counts();
    assert_eq!((counts.successes, counts.failures, counts.opens), (0, 1, 1), "the failure that tripped it counts");
    assert!(fail(&b).unwrap_err().is_open());
    assert_eq!(b.counts().rejections, 1);
}

#[test]
fn isolation_and_a_timed_trip_are_reported() {
    let (b, mock, log) = observed();
    b.trip_for(Duration::from_secs(120));
    b.isolate();
    mock.increment(Duration::from_secs(3_600));
    assert!(fail(&b).unwrap_err().rejected().unwrap().is_held_open());
    b.reset();
    let heard: Vec<_> = log.lock().unwrap().iter().map(|t| (t.from(), t.to(), t.reason())).collect();
    assert_eq!(
        heard,
        [
            (State::Closed, State::Open, Reason::Tripped),
            (State::Open, State::Open, Reason::Isolated),
            (State::Open, State::Closed, Reason::Reset),
        ]
    );
    assert_eq!(b.counts().opens, 1, "isolating an open breaker is not another opening");
}

#[test]
fn name_and_debug() {
    let (b, _mock, _log) = observed();
    assert_eq!(b.name(), "db");
    assert!(format!("{b:?}").starts_with(r#"Breaker { name: "db", state: Closed,"#), "{b:?}");
    assert_eq!(Breaker::default().name(), "");
}

#[cfg(feature = "tracing")]
mod tracing_events {
    use super::*;
    use std::io::Write;
    use std::thread::{self, ThreadId};

    /// A writer into a shared buffer, for the fmt subscriber, that keeps only
    /// what the thread `keep` writes.
    #[derive(Clone)]
    struct Captured {
        buffer: Arc<Mutex<Vec<u8>>>,
        keep: ThreadId,
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if thread::current().id() == self.keep {
                self.buffer.lock().unwrap().extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // The subscriber is global, not scoped with `with_default`: tracing caches
    // whether a callsite is wanted once per process, and while a single scoped
    // subscriber exists, another thread that reaches a callsite first (any other
    // test opening a breaker) caches it as unwanted by its own empty default, and
    // this test then sees no event. Other threads' events are dropped by the writer.
    #[test]
    fn one_event_per_transition_warn_when_it_opens_and_none_per_call() {
        let captured = Captured { buffer: Arc::default(), keep: thread::current().id() };
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other test sets a global subscriber");
        // A callsite another thread registered between the subscriber's
        // registration and its becoming the global default was cached as
        // unwanted: ask again, now that every thread's default is this one.
        tracing::callsite::rebuild_interest_cache();
        let (b, mock, _log) = observed();
        for _ in 0..10 {
            let _ = succeed(&b);
        }
        let _ = fail(&b);
        let _ = fail(&b);
        mock.increment(Duration::from_millis(100));
        let _ = succeed(&b);
        let text = String::from_utf8(captured.buffer.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "three transitions, no event for the calls: {text}");
        assert!(lines[0].starts_with(" WARN breakerbox: circuit breaker opened"), "{text}");
        assert!(
            lines[0].ends_with(r#"name="db" from="closed" to="open" reason="threshold_reached" sequence=1"#),
            "{text}"
        );
        assert!(lines[1].starts_with(" INFO breakerbox: circuit breaker changed state"), "{text}");
        assert!(lines[1].contains(r#"from="open" to="half_open" reason="timeout_elapsed""#), "{text}");
        assert!(lines[2].contains(r#"from="half_open" to="closed" reason="probe_succeeded" sequence=3"#), "{text}");
    }

    #[test]
    fn a_listener_still_runs_beside_the_event() {
        let (b, _mock, log) = observed();
        b.trip();
        assert_eq!(log.lock().unwrap().len(), 1);
    }
}

#[cfg(feature = "prometheus")]
mod prometheus {
    use super::*;
    use breakerbox::prometheus::{BreakerCollector, RegisterError};
    use prometheus_client::registry::Registry;
    use std::collections::{BTreeMap, HashSet};

    /// One sample: its metric name and labels, and its value.
    type Series = (String, BTreeMap<String, String>);

    /// A strict reader of the OpenMetrics text format, enough to refuse
    /// anything malformed in what the collector writes: every sample belongs
    /// to a family declared by `# TYPE` before it (counters as `<family>_total`),
    /// names and label names are valid, label values are quoted with escapes,
    /// values parse, no series appears twice, and the text ends with `# EOF`.
    fn parse(text: &str) -> BTreeMap<Series, f64> {
        let valid_name = |name: &str| {
            let mut chars = name.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        assert!(text.ends_with("# EOF\n"), "no # EOF at the end: {text}");
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = BTreeMap::new();
        let mut seen = HashSet::new();
        for line in text.lines() {
            if line == "# EOF" {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let (kind, family, value) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
                assert!(valid_name(family), "family name {family:?}");
                match kind {
                    "TYPE" => {
                        assert!(["counter", "gauge"].contains(&value), "type {value}");
                        assert!(types.insert(family.to_string(), value.to_string()).is_none(), "{family} typed twice");
                    }
                    "HELP" | "UNIT" => {}
                    _ => panic!("unknown descriptor line {line:?}"),
                }
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line:?}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed {line:?}"))),
                None => (series, ""),
            };
            assert!(valid_name(name), "metric name {name:?}");
            let family = types
                .iter()
                .find(|(family, kind)| match kind.as_str() {
                    "counter" => name == format!("{family}_total"),
                    _ => name == family.as_str(),
                })
                .unwrap_or_else(|| panic!("sample {name} of no declared family"));
            assert!(name.starts_with(family.0.as_str()));
            let mut parsed = BTreeMap::new();
            let mut rest = labels;
            while !rest.is_empty() {
                let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line:?}"));
                assert!(valid_name(key) && !key.contains(':'), "label name {key:?}");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            other => panic!("bad escape {other:?} in {line:?}"),
                        },
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label value in {line:?}"),
                    }
                };
                assert!(parsed.insert(key.to_string(), value).is_none(), "label {key} twice in {line:?}");
                rest = &after[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
            let series = (name.to_string(), parsed);
            assert!(seen.insert(series.clone()), "series twice: {line:?}");
            samples.insert(series, value);
        }
        samples
    }

    fn scrape(registry: &Registry) -> BTreeMap<Series, f64> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        parse(&text)
    }

    fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        samples[&(name.to_string(), labels)]
    }

    #[test]
    fn a_scrape_parses_and_its_numbers_are_the_counts() {
        let (clock, mock) = Clock::mock();
        let named = |name: &str| {
            Arc::new(
                Breaker::builder(Config { threshold: 2, ..Config::default() })
                    .clock(clock.clone())
                    .name(name)
                    .build()
                    .unwrap(),
            )
        };
        // A name that needs escaping in a label value.
        let (users, billing) = (named("users"), named("billing \"eu\"\\west"));
        let collector = BreakerCollector::new();
        collector.register(&users).unwrap();
        collector.register(&billing).unwrap();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector.clone()));

        for _ in 0..7 {
            let _ = succeed(&users);
        }
        let _ = fail(&users);
        let _ = fail(&billing);
        let _ = fail(&billing);
        let _ = succeed(&billing); // rejected
        mock.increment(Duration::from_secs(1));

        let samples = scrape(&registry);
        assert_eq!(samples.len(), 2 * (3 + 3 + 1), "seven series per breaker: {samples:?}");
        for breaker in [&users, &billing] {
            let (name, counts) = (breaker.name(), breaker.counts());
            let calls =
                |outcome| value(&samples, "circuit_breaker_calls_total", &[("breaker", name), ("outcome", outcome)]);
            assert_eq!(calls("success"), counts.successes as f64, "{name}");
            assert_eq!(calls("failure"), counts.failures as f64, "{name}");
            assert_eq!(calls("rejected"), counts.rejections as f64, "{name}");
            assert_eq!(value(&samples, "circuit_breaker_opens_total", &[("breaker", name)]), counts.opens as f64);
            for state in [State::Closed, State::Open, State::HalfOpen] {
                let gauge = value(&samples, "circuit_breaker_state", &[("breaker", name), ("state", state.as_str())]);
                assert_eq!(gauge, f64::from(u8::from(state == breaker.state())), "{name} {state}");
            }
        }
        assert_eq!(billing.counts().rejections, 1);
        assert_eq!(value(&samples, "circuit_breaker_state", &[("breaker", billing.name()), ("state", "open")]), 1.0);
        assert_eq!(users.counts().successes, 7);
    }

    #[test]
    fn registration_refuses_what_would_make_series_collide_and_forgets_dropped_breakers() {
        let collector = BreakerCollector::new();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector.clone()));
        let first = Arc::new(Breaker::builder(Config::default()).name("users").build().unwrap());
        collector.register(&first).unwrap();
        let twin = Arc::new(Breaker::builder(Config::default()).name("users").build().unwrap());
        let duplicate = collector.register(&twin).unwrap_err();
        assert_eq!(duplicate, RegisterError::Duplicate("users".into()));
        assert_eq!(duplicate.to_string(), r#"a breaker named "users" is already registered"#);
        let unnamed = collector.register(&Arc::new(Breaker::default())).unwrap_err();
        assert_eq!(unnamed, RegisterError::Unnamed);
        assert_eq!(unnamed.to_string(), "a breaker needs a name to be collected (Builder::name)");
        assert_eq!(scrape(&registry).len(), 7);
        drop(first);
        assert_eq!(scrape(&registry).len(), 0, "a dropped breaker leaves the scrape");
        collector.register(&twin).unwrap();
        assert_eq!(scrape(&registry).len(), 7, "and its name is free again");
        static PAYMENTS: std::sync::LazyLock<Breaker> =
            std::sync::LazyLock::new(|| Breaker::builder(Config::default()).name("payments").build().unwrap());
        collector.register_static(&PAYMENTS).unwrap();
        assert_eq!(scrape(&registry).len(), 14);
        assert_eq!(format!("{collector:?}"), r#"BreakerCollector { breakers: ["users", "payments"] }"#);
    }

    #[cfg(feature = "registry")]
    #[test]
    fn a_registered_registry_shows_its_named_breakers_at_each_scrape() {
        let hosts: Arc<breakerbox::Registry<String>> =
            Arc::new(breakerbox::Registry::builder(Config::default()).name_keys().build().unwrap());
        let anonymous: Arc<breakerbox::Registry<u32>> = Arc::new(breakerbox::Registry::new(Config::default()).unwrap());
        let collector = BreakerCollector::new();
        collector.register_registry(&hosts);
        collector.register_registry(&anonymous);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector.clone()));
        assert!(scrape(&registry).is_empty());
        hosts.call("db-1", || Ok::<_, ()>(())).unwrap().unwrap();
        hosts.call("db-2", || Err::<(), _>(())).unwrap().unwrap_err();
        anonymous.call(&7, || Ok::<_, ()>(())).unwrap().unwrap();
        let samples = scrape(&registry);
        assert_eq!(samples.len(), 14, "two named breakers, seven series each; the unnamed one is left out");
        assert_eq!(value(&samples, "circuit_breaker_calls_total", &[("breaker", "db-2"), ("outcome", "failure")]), 1.0);
        // A breaker's own registration is not checked against a registry's names.
        let twin = Arc::new(Breaker::builder(Config::default()).name("db-1").build().unwrap());
        collector.register(&twin).unwrap();
        drop(hosts);
        collector.register(&Arc::new(Breaker::builder(Config::default()).name("later").build().unwrap())).unwrap();
        assert_eq!(scrape(&registry).len(), 7, "a dropped registry leaves the scrape: only the twin is left");
    }
}

#[cfg(feature = "serde")]
#[test]
fn counts_and_transitions_serialize_for_health_endpoints() {
    let (b, _mock, log) = observed();
    let _ = succeed(&b);
    b.trip();
    assert_eq!(serde_json::to_string(&b.counts()).unwrap(), r#"{"successes":1,"failures":0,"rejections":0,"opens":1}"#);
    assert_eq!(serde_json::to_string(&b.state()).unwrap(), r#""open""#);
    assert_eq!(
        serde_json::to_string(&log.lock().unwrap()[0]).unwrap(),
        r#"{"name":"db","from":"closed","to":"open","reason":"tripped","sequence":1,"at_ms":0}"#
    );
    let config: Config = serde_json::from_str(&serde_json::to_string(&b.config()).unwrap()).unwrap();
    assert_eq!(config, b.config());
}
