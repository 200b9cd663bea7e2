//! What a call produced: its report, or why it has no result ([`CallError`]), with the short
//! outcome name the audit log and the HTTP API use and the exit code the CLI uses.

use std::time::Duration;

use serde_json::Value;

use crate::sandbox::LimitHit;

/// Why a call did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No installed command has this name.
    #[error("unknown command `{name}`; {hint}")]
    UnknownCommand { name: String, hint: String },
    /// The parameters do not fit the command's schema (checked before the plugin runs).
    #[error("{command}: {message}")]
    InvalidParams { command: String, message: String },
    /// The command returned the error case of its result.
    #[error("{command} returned an error: {error}")]
    CommandFailed { command: String, error: Value },
    /// The call broke a sandbox limit and was stopped.
    #[error("{command} was stopped: {limit}{}", fix_hint(.plugin, .limit))]
    Limit { command: String, plugin: String, limit: LimitHit },
    /// The plugin trapped (crashed).
    #[error("{command} trapped: {message}")]
    Trapped { command: String, message: String },
    /// The caller may not call this command (no grant confers it, or it is owner-only).
    #[error("{command}: permission denied: {reason}")]
    Denied { command: String, reason: String },
    /// `commands.call` nested deeper than allowed.
    #[error("{command}: nested calls are limited to {max} levels (max-call-depth)")]
    DepthExceeded { command: String, max: u32 },
    /// The host could not run the call.
    #[error("{command}: {message}")]
    Host { command: String, message: String },
}

/// How to fix a broken limit, when a setting governs it: which key to raise, and where.
fn fix_hint(plugin: &str, limit: &LimitHit) -> String {
    match limit.setting() {
        Some(key) => {
            format!("; if the command needs more, raise it under [plugins.{plugin}.limits] {key} in continuum.toml")
        }
        None => String::new(),
    }
}

impl CallError {
    /// A short name of the outcome, for the audit log.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::UnknownCommand { .. } => "unknown-command",
            CallError::InvalidParams { .. } => "invalid-params",
            CallError::CommandFailed { .. } => "command-error",
            CallError::Limit { limit, .. } => match limit {
                LimitHit::Deadline { .. } => "deadline",
                LimitHit::Memory { .. } => "memory-limit",
                LimitHit::Output { .. } => "output-limit",
                LimitHit::Transfer { .. } => "transfer-limit",
                LimitHit::Stack => "stack-overflow",
                LimitHit::HostCalls { .. } => "host-call-limit",
            },
            CallError::Trapped { .. } => "trap",
            CallError::Denied { .. } => "denied",
            CallError::DepthExceeded { .. } => "depth-exceeded",
            CallError::Host { .. } => "host-error",
        }
    }

    /// The process exit code the CLI uses for this error.
    pub fn exit_code(&self) -> i32 {
        outcome_exit_code(self.outcome())
    }
}

/// The CLI exit code for a call outcome ([`CallError::outcome`], also the HTTP API's error code).
pub fn outcome_exit_code(outcome: &str) -> i32 {
    match outcome {
        "unknown-command" | "invalid-params" => 2,
        "command-error" => 3,
        "deadline" | "memory-limit" | "output-limit" | "transfer-limit" | "stack-overflow" | "host-call-limit"
        | "trap" | "depth-exceeded" => 4,
        "denied" => 5,
        _ => 1,
    }
}

/// Everything a call produced: its result and the plugin's captured stdout/stderr.
#[derive(Debug)]
pub struct CallReport {
    /// The JSON result, or why there is none.
    pub result: Result<Value, CallError>,
    /// What the plugin wrote to stdout (raw; filter before showing on a terminal).
    pub stdout: Vec<u8>,
    /// What the plugin wrote to stderr (raw).
    pub stderr: Vec<u8>,
    /// Wall-clock time of the call.
    pub elapsed: Duration,
}

impl CallReport {
    /// A report of `result` with no output yet and no time taken.
    pub fn of(result: Result<Value, CallError>) -> CallReport {
        CallReport { result, stdout: Vec::new(), stderr: Vec::new(), elapsed: Duration::ZERO }
    }
}

/// One line describing a trap: wasmtime's reason, plus the guest's last stderr line (a Rust
/// guest prints its panic message there).
pub(super) fn trap_message(error: &wasmtime::Error, stderr: &[u8]) -> String {
    let reason = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string().lines().next().unwrap_or_default().to_string(),
    };
    let text = crate::terminal::strip_control(&String::from_utf8_lossy(stderr));
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // A Python traceback's cause is its last `SomethingError: …` line (componentize-py then
    // panics with a generic message); otherwise the last line says it (a Rust panic message).
    let python_error = lines.iter().rev().find(|l| {
        l.split_once(": ")
            .is_some_and(|(kind, _)| (kind.ends_with("Error") || kind.ends_with("Exception")) && !kind.contains(' '))
    });
    let last = lines.iter().rev().find(|l| !l.contains("note: run with"));
    match python_error.or(last) {
        Some(line) => format!("{reason} (plugin stderr: {line})"),
        None => reason,
    }
}
