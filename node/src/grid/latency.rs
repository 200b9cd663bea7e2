//! Latencies: of recent successful requests to peers, over all of them (what the adaptive wait
//! of `any` quorum is sized by) and per peer (what routing expects of each); and of the calls
//! this node served (what its offer tells others to expect).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use continuum_core::sync::lock;

use super::Grid;

/// How many recent latencies are kept per window.
const WINDOW: usize = 128;
/// Most peers whose latencies are kept; past it the windows start over.
const MAX_PEERS: usize = 1024;

/// The last [`WINDOW`] latencies, oldest first.
#[derive(Default)]
struct Samples(VecDeque<Duration>);

impl Samples {
    fn push(&mut self, latency: Duration) {
        self.0.push_back(latency);
        if self.0.len() > WINDOW {
            self.0.pop_front();
        }
    }

    /// The `percent`th percentile, if any latency is held.
    fn percentile(&self, percent: usize) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self.0.iter().copied().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort();
        Some(sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)])
    }
}

/// Recent latencies of one kind: over all, and by peer.
#[derive(Default)]
pub(super) struct LatencyWindow {
    all: Mutex<Samples>,
    by_peer: Mutex<HashMap<String, Samples>>,
}

impl LatencyWindow {
    /// Records one successful request's latency (of `peer`, when it is a peer's).
    pub(super) fn record(&self, peer: Option<&str>, latency: Duration) {
        lock(&self.all).push(latency);
        if let Some(peer) = peer {
            let mut by_peer = lock(&self.by_peer);
            if !by_peer.contains_key(peer) && by_peer.len() >= MAX_PEERS {
                by_peer.clear();
            }
            by_peer.entry(peer.to_string()).or_default().push(latency);
        }
    }

    /// The `percent`th percentile over all, if any latency is held.
    pub(super) fn percentile(&self, percent: usize) -> Option<Duration> {
        lock(&self.all).percentile(percent)
    }

    /// How many latencies the window holds over all.
    pub(super) fn samples(&self) -> usize {
        lock(&self.all).0.len()
    }

    /// The median latency of `peer`, if any was measured.
    pub(super) fn median_of(&self, peer: &str) -> Option<Duration> {
        lock(&self.by_peer).get(peer).and_then(|s| s.percentile(50))
    }
}

impl Grid {
    /// The 95th percentile of recent successful request latencies, if any were measured.
    pub fn latency_p95(&self) -> Option<Duration> {
        self.inner.latencies.percentile(95)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_latest_and_reads_their_percentiles() {
        let window = LatencyWindow::default();
        assert_eq!(window.percentile(95), None);
        for ms in 1..=WINDOW as u64 + 100 {
            window.record(Some("p"), Duration::from_millis(ms));
        }
        // 101..=228 ms are kept; the 95th percentile of 128 samples is the 122nd.
        assert_eq!(window.percentile(95), Some(Duration::from_millis(222)));
        assert_eq!(window.median_of("p"), Some(Duration::from_millis(165)));
        assert_eq!(window.median_of("q"), None);
    }
}
