//! Composing a breaker with retries, both ways round.
//!
//! - Retry inside the breaker: the breaker sees one call per request, so
//!   three failed attempts count as one failure. It opens only when whole
//!   requests keep failing: slower to open, unmoved by a brief flap.
//! - Breaker inside the retry: every attempt counts. It opens sooner, and
//!   once open, the remaining attempts are rejected at once instead of
//!   hammering a service that is down.
//!
//! Choose by how fast you want the circuit to open. Inside-out (breaker
//! inside) protects the downstream best; outside-in (retry inside) tolerates
//! transient errors best.
//!
//! ```sh
//! cargo run --example retry
//! ```

use breakerbox::{Breaker, Config, Error};

const ATTEMPTS: u32 = 3;

/// Retries `attempt` up to `ATTEMPTS` times, stopping at the first success
/// or at an error `give_up` says not to retry.
fn retry<T, E>(mut attempt: impl FnMut() -> Result<T, E>, give_up: impl Fn(&E) -> bool) -> Result<T, E> {
    let mut last = attempt();
    for _ in 1..ATTEMPTS {
        match &last {
            Err(err) if !give_up(err) => last = attempt(),
            _ => break,
        }
    }
    last
}

fn down() -> Result<(), &'static str> {
    Err("503 service unavailable")
}

fn main() {
    let config = Config { threshold: 3, ..Config::default() };

    // Retry inside the breaker: N attempts count as one failure.
    let outside = Breaker::new(config).expect("a valid config");
    let mut requests = 0;
    while outside.call(|| retry(down, |_| false)).is_err_and(|e| !e.is_open()) {
        requests += 1;
    }
    println!(
        "retry inside the breaker: opened after {requests} requests ({} attempts reached the service)",
        requests * ATTEMPTS
    );

    // Breaker inside the retry: each attempt counts, and a rejection ends the retries.
    let inside = Breaker::new(config).expect("a valid config");
    let mut requests = 0;
    let mut reached = 0;
    loop {
        requests += 1;
        let result = retry(
            || {
                inside.call(|| {
                    reached += 1;
                    down()
                })
            },
            Error::is_open,
        );
        if result.is_err_and(|e| e.is_open()) {
            break;
        }
    }
    println!(
        "breaker inside the retry: opened after {reached} attempts; request {requests} was rejected without reaching the service"
    );
    assert_eq!(reached, 3, "the breaker opened after `threshold` attempts");
}
