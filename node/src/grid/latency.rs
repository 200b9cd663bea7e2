//! The latencies of recent successful requests: what the adaptive wait of `any` quorum is
//! sized by.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use continuum_core::sync::lock;

use super::Grid;

/// How many recent latencies are kept.
const WINDOW: usize = 128;

/// The latencies of the last [`WINDOW`] successful requests, oldest first.
#[derive(Default)]
pub(super) struct LatencyWindow {
    samples: Mutex<VecDeque<Duration>>,
}

impl LatencyWindow {
    /// Records one successful request's latency, forgetting the oldest beyond the window.
    pub(super) fn record(&self, latency: Duration) {
        let mut samples = lock(&self.samples);
        samples.push_back(latency);
        if samples.len() > WINDOW {
            samples.pop_front();
        }
    }

    /// The 95th percentile of the window, if it holds any latency.
    fn p95(&self) -> Option<Duration> {
        let mut sorted: Vec<Duration> = lock(&self.samples).iter().copied().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort();
        Some(sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)])
    }
}

impl Grid {
    /// The 95th percentile of recent successful request latencies, if any were measured.
    pub fn latency_p95(&self) -> Option<Duration> {
        self.inner.latencies.p95()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_latest_and_reads_their_p95() {
        let window = LatencyWindow::default();
        assert_eq!(window.p95(), None);
        for ms in 1..=WINDOW as u64 + 100 {
            window.record(Duration::from_millis(ms));
        }
        // 101..=228 ms are kept; the 95th percentile of 128 samples is the 122nd.
        assert_eq!(window.p95(), Some(Duration::from_millis(222)));
    }
}
