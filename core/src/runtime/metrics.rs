//! Counters of the calls this host ran, for an operator's scraper (`GET /metrics`): calls by
//! command and outcome, and each command's latency as a histogram. Held in memory since the
//! host started; the event log stays the record.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::sync::lock;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 8] = [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 60.0];

/// Most distinct commands counted; past it (names no installed plugin has, a flood of them)
/// calls count under `(other)`, so a caller cannot grow the table without bound.
const MAX_COMMANDS: usize = 4096;

/// One command's latency histogram.
#[derive(Default, Clone)]
struct Latency {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// One command's calls by outcome, and its latency.
#[derive(Default)]
struct CommandCounts {
    outcomes: BTreeMap<&'static str, u64>,
    latency: Latency,
}

#[derive(Default)]
struct Counts {
    commands: BTreeMap<String, CommandCounts>,
}

/// The call counters of one host.
#[derive(Default)]
pub struct CallMetrics {
    counts: Mutex<Counts>,
}

impl CallMetrics {
    /// Counts one call of `command` that ended with `outcome` after `elapsed`.
    pub fn record(&self, command: &str, outcome: &'static str, elapsed: Duration) {
        let mut counts = lock(&self.counts);
        let known = counts.commands.contains_key(command) || counts.commands.len() < MAX_COMMANDS;
        // An unknown command's name is the caller's text: never a label of its own.
        let command = if outcome == "unknown-command" || !known { "(other)" } else { command };
        // Only a command's first call allocates its name.
        if !counts.commands.contains_key(command) {
            counts.commands.insert(command.to_string(), CommandCounts::default());
        }
        let counted = counts.commands.get_mut(command).expect("inserted above");
        *counted.outcomes.entry(outcome).or_default() += 1;
        let latency = &mut counted.latency;
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in latency.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        latency.count += 1;
        latency.sum_seconds += seconds;
    }

    /// The counters in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        let counts = lock(&self.counts);
        let _ = writeln!(out, "# HELP continuum_calls_total Calls run by this node, by command and outcome.");
        let _ = writeln!(out, "# TYPE continuum_calls_total counter");
        for (command, counted) in &counts.commands {
            for (outcome, n) in &counted.outcomes {
                let _ =
                    writeln!(out, "continuum_calls_total{{command=\"{}\",outcome=\"{outcome}\"}} {n}", label(command));
            }
        }
        let _ = writeln!(out, "# HELP continuum_call_duration_seconds How long calls took, by command.");
        let _ = writeln!(out, "# TYPE continuum_call_duration_seconds histogram");
        for (command, CommandCounts { latency: l, .. }) in &counts.commands {
            let command = label(command);
            for (n, bound) in l.buckets.iter().zip(BUCKETS) {
                let _ =
                    writeln!(out, "continuum_call_duration_seconds_bucket{{command=\"{command}\",le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "continuum_call_duration_seconds_bucket{{command=\"{command}\",le=\"+Inf\"}} {}",
                l.count
            );
            let _ = writeln!(out, "continuum_call_duration_seconds_sum{{command=\"{command}\"}} {}", l.sum_seconds);
            let _ = writeln!(out, "continuum_call_duration_seconds_count{{command=\"{command}\"}} {}", l.count);
        }
    }
}

/// A label value escaped as Prometheus' text format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_command_and_outcome_and_unknown_names_are_not_labels() {
        let m = CallMetrics::default();
        m.record("text/stats", "ok", Duration::from_millis(2));
        m.record("text/stats", "ok", Duration::from_millis(200));
        m.record("made-up/\"name", "unknown-command", Duration::from_millis(1));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("continuum_calls_total{command=\"text/stats\",outcome=\"ok\"} 2"), "{out}");
        assert!(out.contains("continuum_call_duration_seconds_bucket{command=\"text/stats\",le=\"0.005\"} 1"), "{out}");
        assert!(out.contains("continuum_call_duration_seconds_count{command=\"text/stats\"} 2"), "{out}");
        assert!(
            out.contains("command=\"(other)\",outcome=\"unknown-command\"} 1") && !out.contains("made-up"),
            "{out}"
        );
    }
}
