//! One breaker per downstream service (the Go docs' `BreakerPool`): an outage
//! of one service opens only its own breaker, and calls to the others go on.
//!
//! ```sh
//! cargo run --example pool
//! ```

use std::time::Duration;

use breaker::{Breaker, Config, Error, State};

/// The downstream services this tool talks to, each behind its own breaker.
struct BreakerPool {
    inventory: Breaker,
    pricing: Breaker,
    reviews: Breaker,
}

impl BreakerPool {
    fn new() -> BreakerPool {
        let config = Config { threshold: 5, timeout: Duration::from_secs(30), half_open_max: 1 };
        BreakerPool { inventory: Breaker::new(config), pricing: Breaker::new(config), reviews: Breaker::new(config) }
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
}
