//! Routing: in which order the peers that offer a command are asked, by a policy — `fastest`
//! (the lowest expected completion time: this node's measured latency to the peer plus the
//! peer's backlog per compute slot times its median call time, the default), `cheapest` (the
//! lowest expected price, then the fastest) or `least-loaded` (the least backlog per slot, then
//! the fastest) — after dropping those asking more than `--max-price`.

use std::cmp::Ordering;
use std::time::Duration;

use super::capacity::Capacity;
use super::peers::Peer;
use super::short;
use crate::market::terms::{credits, Price};

/// How the peers that may run a call are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Lowest expected completion time.
    #[default]
    Fastest,
    /// Lowest expected price.
    Cheapest,
    /// Least backlog per compute slot.
    LeastLoaded,
}

impl Policy {
    /// Parses `fastest`, `cheapest` or `least-loaded`.
    pub fn parse(text: &str) -> Result<Policy, String> {
        match text {
            "fastest" => Ok(Policy::Fastest),
            "cheapest" => Ok(Policy::Cheapest),
            "least-loaded" => Ok(Policy::LeastLoaded),
            other => Err(format!("unknown --route `{other}`; use fastest, cheapest or least-loaded")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Policy::Fastest => "fastest",
            Policy::Cheapest => "cheapest",
            Policy::LeastLoaded => "least-loaded",
        }
    }
}

/// A peer that offers the command, with what its offer and this node's measurements say.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The peer.
    pub peer: Peer,
    /// Its capacity and load, as its offer says.
    pub capacity: Capacity,
    /// Its price for the command.
    pub price: Price,
    /// This node's median latency to it, if measured.
    pub latency: Option<Duration>,
}

impl Candidate {
    /// Its median call time, as its offer says (1 ms when it has served none).
    fn call_ms(&self) -> f64 {
        self.capacity.latency.p50_ms.unwrap_or(1).max(1) as f64
    }

    /// When a call sent now is expected to be answered, in ms.
    pub fn expected_ms(&self) -> f64 {
        let network = self.latency.map_or(self.call_ms(), |l| l.as_secs_f64() * 1000.0);
        network + self.call_ms() * self.capacity.load.backlog_per_slot()
    }

    /// What a call is expected to cost, in millicredits.
    pub fn expected_price(&self) -> u64 {
        self.price.estimate(self.call_ms() as u64)
    }

    fn describe(&self) -> String {
        format!(
            "{} expected {:.0} ms (backlog {:.1}/slot), {} credits",
            short(&self.peer.id),
            self.expected_ms(),
            self.capacity.load.backlog_per_slot(),
            credits(self.expected_price())
        )
    }
}

/// Orders `candidates` by `policy`, without those expected to cost more than `max_price`
/// (millicredits); the order and why the first was chosen. Err when the price left none.
pub fn rank(
    policy: Policy,
    max_price: Option<u64>,
    mut candidates: Vec<Candidate>,
) -> Result<(Vec<Candidate>, String), String> {
    if let Some(max) = max_price {
        let cheapest = candidates.iter().map(Candidate::expected_price).min();
        candidates.retain(|c| c.expected_price() <= max);
        if candidates.is_empty() {
            return Err(format!(
                "every peer offering it asks more than --max-price {} credits (the cheapest expects {})",
                credits(max),
                credits(cheapest.unwrap_or(0))
            ));
        }
    }
    let by_time =
        |a: &Candidate, b: &Candidate| a.expected_ms().partial_cmp(&b.expected_ms()).unwrap_or(Ordering::Equal);
    candidates.sort_by(|a, b| match policy {
        Policy::Fastest => by_time(a, b),
        Policy::Cheapest => a.expected_price().cmp(&b.expected_price()).then_with(|| by_time(a, b)),
        Policy::LeastLoaded => a
            .capacity
            .load
            .backlog_per_slot()
            .partial_cmp(&b.capacity.load.backlog_per_slot())
            .unwrap_or(Ordering::Equal)
            .then_with(|| by_time(a, b)),
    });
    let reason = match candidates.as_slice() {
        [] => format!("{}: no candidate", policy.name()),
        [only] => format!("{}: {} (the only one)", policy.name(), only.describe()),
        [first, second, ..] => format!("{}: {}; next {}", policy.name(), first.describe(), second.describe()),
    };
    Ok((candidates, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::capacity::{Load, ServedLatency};

    fn candidate(id: &str, backlog: usize, price: u64) -> Candidate {
        Candidate {
            peer: Peer { id: id.repeat(64), name: None, addrs: vec![], relays: vec![], grant: None },
            capacity: Capacity {
                cores: 2,
                load: Load { calls_running: backlog, slots: 1, ..Load::default() },
                latency: ServedLatency { p50_ms: Some(10), p95_ms: Some(20), samples: 5 },
                ..Capacity::default()
            },
            price: Price { millicredits_per_call: price, ..Price::default() },
            latency: Some(Duration::from_millis(2)),
        }
    }

    #[test]
    fn policies_order_by_time_price_and_load() {
        let all = vec![candidate("a", 3, 100), candidate("b", 0, 900), candidate("c", 1, 50)];
        let first = |policy, max| rank(policy, max, all.clone()).map(|(c, _)| c[0].peer.id[..1].to_string());
        assert_eq!(first(Policy::Fastest, None).unwrap(), "b");
        assert_eq!(first(Policy::Cheapest, None).unwrap(), "c");
        assert_eq!(first(Policy::LeastLoaded, None).unwrap(), "b");
        assert_eq!(first(Policy::Fastest, Some(100)).unwrap(), "c");
        assert!(first(Policy::Fastest, Some(10)).unwrap_err().contains("the cheapest expects 0.05"));
        let (_, reason) = rank(Policy::Fastest, None, all).unwrap();
        assert!(reason.starts_with(&format!("fastest: {} expected 2 ms", short(&"b".repeat(64)))), "{reason}");
    }
}
