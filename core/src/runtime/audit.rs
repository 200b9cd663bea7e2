//! The audit trail of a call: a `call.invoked` entry before it runs, a `call.completed` or
//! `call.failed` entry after, and a result released only once that entry has committed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::{CallError, CallReport, HostCore};
use crate::access::Caller;
use crate::alloy::custody::sha256_hex;
use crate::eventlog::PendingCommit;
use crate::host_api::commands::Nesting;
use crate::sync::lock;

/// What a call's audit entries record of its input (JSON text).
struct InputDigest {
    /// sha256 of the text, hex.
    hash: String,
    /// Length of the text.
    bytes: usize,
}

/// The payload of `call.invoked`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Invoked<'a> {
    caller: String,
    depth: u32,
    input_hash: &'a str,
}

/// The payload of `call.completed` / `call.failed` (its fields in the order readers have always
/// seen them).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Finished<'a> {
    caller: String,
    grant: Option<String>,
    command: &'a str,
    plugin_digest: Option<String>,
    depth: u32,
    input_hash: &'a str,
    input_bytes: usize,
    output_hash: String,
    output_bytes: usize,
    duration_us: u64,
    outcome: &'a str,
}

/// A finished call whose audit entry is queued; its result may be released only once that
/// entry has committed (a call that cannot be audited has its result withheld).
#[must_use = "a call's result is released only once its audit entry has committed"]
pub struct AuditedCall {
    command: String,
    report: CallReport,
    /// The audit entry's commit (none when auditing is off, or the call failed before running).
    commit: Option<Result<PendingCommit>>,
}

impl AuditedCall {
    /// Blocks until the audit entry has committed, then gives the report.
    pub fn wait(self) -> CallReport {
        let committed = self.commit.map(|c| c.and_then(PendingCommit::wait));
        Self::released(self.command, self.report, committed)
    }

    /// Awaits the audit entry's commit on the async side, then gives the report.
    pub async fn committed(self) -> CallReport {
        let committed = match self.commit {
            Some(Ok(pending)) => Some(pending.committed().await),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        Self::released(self.command, self.report, committed)
    }

    /// The report, its result withheld if the audit entry did not commit.
    fn released(command: String, mut report: CallReport, committed: Option<Result<()>>) -> CallReport {
        if let Some(Err(e)) = committed {
            report.result = Err(CallError::Host {
                command,
                message: format!(
                    "the call ran but its audit entry could not be committed, so its result is withheld: {e:#}"
                ),
            });
        }
        report
    }
}

impl HostCore {
    /// Runs and audits one call at `nesting`; returns once its audit entry is queued.
    pub(super) fn call_in(
        self: &Arc<Self>,
        caller: &Caller,
        name: &str,
        params: &Value,
        nesting: &Nesting,
    ) -> AuditedCall {
        let depth = nesting.depth;
        let started = Instant::now();
        let mut report = CallReport::of(Ok(Value::Null));
        let audit = self.audit.load(Ordering::Relaxed);
        let input = audit.then(|| {
            let text = params.to_string();
            InputDigest { hash: sha256_hex(text.as_bytes()), bytes: text.len() }
        });
        if let Some(input) = &input {
            let invoked = Invoked { caller: caller.id(), depth, input_hash: &input.hash };
            if let Err(e) = self.log.append_later("call.invoked", name, &invoked) {
                report.result = Err(CallError::Host { command: name.into(), message: format!("{e:#}") });
                return AuditedCall { command: name.into(), report, commit: None };
            }
        }
        report.result = self.run(caller, name, params, nesting, &mut report);
        report.elapsed = started.elapsed();
        let outcome = report.result.as_ref().map_or_else(|e| e.outcome().as_str(), |_| "ok");
        self.metrics.record(name, outcome, report.elapsed);
        let commit = input.map(|input| self.audit(caller, name, depth, &input, &report));
        AuditedCall { command: name.into(), report, commit }
    }

    /// Queues the audit entry of a finished call.
    fn audit(
        &self,
        caller: &Caller,
        name: &str,
        depth: u32,
        input: &InputDigest,
        report: &CallReport,
    ) -> Result<PendingCommit> {
        let (kind, outcome, output) = match &report.result {
            Ok(v) => ("call.completed", "ok", v.to_string()),
            Err(CallError::CommandFailed { error, .. }) => ("call.failed", "command-error", error.to_string()),
            Err(e) => ("call.failed", e.outcome().as_str(), e.to_string()),
        };
        let grant = match caller {
            Caller::Key { grant: Some(g), .. } => Some(g.id.clone()),
            _ => None,
        };
        let plugin = name.split('/').next().unwrap_or(name);
        let digest = lock(&self.loaded).get(plugin).map(|p| p.digest.clone());
        let payload = Finished {
            caller: caller.id(),
            grant,
            command: name,
            plugin_digest: digest,
            depth,
            input_hash: &input.hash,
            input_bytes: input.bytes,
            output_hash: sha256_hex(output.as_bytes()),
            output_bytes: output.len(),
            duration_us: report.elapsed.as_micros() as u64,
            outcome,
        };
        self.log.record(kind, name, &payload)
    }

    /// The counters of the calls this host ran (`GET /metrics`).
    pub fn metrics(&self) -> &super::metrics::CallMetrics {
        &self.metrics
    }

    /// Entries of the event log queued and not yet committed.
    pub fn log_lag(&self) -> usize {
        self.log.pending()
    }

    /// Turns call auditing off or on (for `continuum bench`, to measure what it costs).
    pub fn set_audit(&self, on: bool) {
        self.audit.store(on, Ordering::Relaxed);
    }
}
