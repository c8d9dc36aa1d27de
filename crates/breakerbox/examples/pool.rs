//! One breaker per downstream service (the Go docs' `BreakerPool`): an outage
//! of one service opens only its own breaker, and calls to the others go on.
//!
//! Two forms: a struct with one breaker per service known at compile time,
//! and, with the `registry` feature, a [`Registry`](breakerbox::Registry) for
//! downstreams found at run time (a proxy's upstream hosts).
//!
//! ```sh
//! cargo run --example pool --features registry
//! ```

use std::time::Duration;

use breakerbox::{Breaker, Config, Error, State};

/// The downstream services this tool talks to, each behind its own breaker.
struct BreakerPool {
    inventory: Breaker,
    pricing: Breaker,
    reviews: Breaker,
}

impl BreakerPool {
    fn new() -> BreakerPool {
        let config = Config { threshold: 5, timeout: Duration::from_secs(30), half_open_max: 1 };
        BreakerPool {
            inventory: Breaker::new(config).expect("a valid config"),
            pricing: Breaker::new(config).expect("a valid config"),
            reviews: Breaker::new(config).expect("a valid config"),
        }
    }

    fn stock(&self, item: u32) -> Result<u32, Error<String>> {
        self.inventory.call(|| Ok(item * 3))
    }

    fn price(&self, item: u32) -> Result<u32, Error<String>> {
        // The pricing service is down for this whole example.
        self.pricing.call(|| Err(format!("pricing: connection refused for item {item}")))
    }

    fn reviews(&self, item: u32) -> Result<Vec<String>, Error<String>> {
        self.reviews.call(|| Ok(vec![format!("item {item}: five stars")]))
    }
}

fn main() {
    let pool = BreakerPool::new();
    for item in 1..=8 {
        let price = match pool.price(item) {
            Ok(price) => price.to_string(),
            Err(Error::Open(_)) => "unavailable (breaker open, not called)".to_owned(),
            Err(Error::Inner(err)) => format!("unavailable ({err})"),
        };
        let stock = pool.stock(item).map_or_else(|e| e.to_string(), |n| n.to_string());
        let reviews = pool.reviews(item).map_or(0, |r| r.len());
        println!("item {item}: stock {stock}, price {price}, {reviews} review(s)");
    }
    println!();
    for (name, breaker) in [("inventory", &pool.inventory), ("pricing", &pool.pricing), ("reviews", &pool.reviews)] {
        println!("{name:<10} {:<9} {:?}", breaker.state().to_string(), breaker.counts());
    }
    assert_eq!(pool.pricing.state(), State::Open);
    assert_eq!(pool.inventory.state(), State::Closed);
    println!();
    upstreams();
}

/// A proxy spreading requests over upstream hosts it learns at run time: one
/// breaker per host, made at the host's first request.
#[cfg(feature = "registry")]
fn upstreams() {
    use breakerbox::Registry;

    let hosts: Registry<String> = Registry::builder(Config { threshold: 3, ..Config::default() })
        .name_keys()
        .capacity(10_000)
        .build()
        .expect("a valid config");
    // Discovered from service discovery, say; 10.0.0.3 has gone away.
    let discovered: Vec<String> = (1..=4).map(|n| format!("10.0.0.{n}:8080")).collect();
    let forward = |host: &str, request: u32| -> Result<String, String> {
        if host.starts_with("10.0.0.3") {
            Err(format!("{host}: connection refused"))
        } else {
            Ok(format!("{host} served request {request}"))
        }
    };
    let mut served = 0;
    for request in 0..40 {
        let host = &discovered[request as usize % discovered.len()];
        match hosts.call(host.as_str(), || forward(host, request)) {
            Ok(Ok(_)) => served += 1,
            Ok(Err(Error::Open(_))) => {} // skipped at once: its breaker is open
            Ok(Err(Error::Inner(_))) => {}
            Err(full) => println!("request {request}: {full}"),
        }
    }
    println!("{served} of 40 requests served over {} upstream hosts", hosts.len());
    let mut rows = hosts.health();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    for row in rows {
        println!("{:<14} {:<9} {:?}", row.key, row.state.to_string(), row.counts);
    }
    assert_eq!(hosts.get("10.0.0.3:8080").map(|breaker| breaker.state()), Some(State::Open));
    assert_eq!(hosts.get("10.0.0.3:8080").map(|breaker| breaker.counts().rejections), Some(7));
    assert_eq!(served, 30);
}

#[cfg(not(feature = "registry"))]
fn upstreams() {
    println!("(run with `--features registry` for one breaker per upstream host found at run time)");
}
