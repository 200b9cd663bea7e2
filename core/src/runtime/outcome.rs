//! What a call produced: its report, or why it has no result ([`CallError`]), and how it
//! ended ([`Outcome`]): one typed name for the audit log, the HTTP API, the wire and exit codes.

use std::time::Duration;

use serde_json::Value;

use crate::sandbox::LimitHit;

/// Why a call did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No installed command has this name.
    #[error("unknown command `{name}`; {hint}")]
    UnknownCommand {
        /// The command name asked for.
        name: String,
        /// What the plugin has instead, or that no such plugin is installed.
        hint: String,
    },
    /// The parameters do not fit the command's schema (checked before the plugin runs).
    #[error("{command}: {message}")]
    InvalidParams {
        /// The command's full name.
        command: String,
        /// What does not fit the schema.
        message: String,
    },
    /// The command returned the error case of its result.
    #[error("{command} returned an error: {error}")]
    CommandFailed {
        /// The command's full name.
        command: String,
        /// The error value the command returned, as JSON.
        error: Value,
    },
    /// The call broke a sandbox limit and was stopped.
    #[error("{command} was stopped: {limit}{}", fix_hint(.plugin, .limit))]
    Limit {
        /// The command's full name.
        command: String,
        /// The name of the plugin that provides it.
        plugin: String,
        /// The limit that was broken.
        limit: LimitHit,
    },
    /// The plugin trapped (crashed).
    #[error("{command} trapped: {message}")]
    Trapped {
        /// The command's full name.
        command: String,
        /// The trap's message.
        message: String,
    },
    /// The caller may not call this command (no grant confers it, or it is owner-only).
    #[error("{command}: permission denied: {reason}")]
    Denied {
        /// The command's full name.
        command: String,
        /// Why the caller may not call it.
        reason: String,
    },
    /// `commands.call` nested deeper than allowed.
    #[error("{command}: nested calls are limited to {max} levels (max-call-depth)")]
    DepthExceeded {
        /// The command's full name.
        command: String,
        /// The most nesting levels allowed (`max-call-depth`).
        max: u32,
    },
    /// Whoever started the call tree cancelled it (a job's `cancel`) before it ended.
    #[error("{command} was cancelled before it finished")]
    Cancelled {
        /// The command.
        command: String,
    },
    /// The host could not run the call.
    #[error("{command}: {message}")]
    Host {
        /// The command's full name.
        command: String,
        /// What went wrong in the host.
        message: String,
    },
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
    /// How the call ended.
    pub fn outcome(&self) -> Outcome {
        match self {
            CallError::UnknownCommand { .. } => Outcome::UnknownCommand,
            CallError::InvalidParams { .. } => Outcome::InvalidParams,
            CallError::CommandFailed { .. } => Outcome::CommandError,
            CallError::Limit { limit, .. } => match limit {
                LimitHit::Deadline { .. } => Outcome::Deadline,
                LimitHit::Memory { .. } => Outcome::MemoryLimit,
                LimitHit::Output { .. } => Outcome::OutputLimit,
                LimitHit::Transfer { .. } => Outcome::TransferLimit,
                LimitHit::Stack => Outcome::StackOverflow,
                LimitHit::HostCalls { .. } => Outcome::HostCallLimit,
            },
            CallError::Trapped { .. } => Outcome::Trap,
            CallError::Denied { .. } => Outcome::Denied,
            CallError::DepthExceeded { .. } => Outcome::DepthExceeded,
            CallError::Host { .. } => Outcome::HostError,
            CallError::Cancelled { .. } => Outcome::Cancelled,
        }
    }

    /// The process exit code the CLI uses for this error.
    pub fn exit_code(&self) -> i32 {
        self.outcome().exit_code()
    }
}

/// How a call or a request ended: one name for the audit log, the HTTP API's error `code`, the
/// grid wire and the CLI's exit code. Written in kebab case (`unknown-command`); a name this
/// version does not know (from a newer peer) reads as [`Outcome::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The call produced its result.
    Ok,
    /// No installed command has that name.
    UnknownCommand,
    /// The parameters do not fit the command's schema.
    InvalidParams,
    /// The request itself is malformed (not a call's parameters: its JSON, headers, query).
    BadRequest,
    /// What the request names does not exist (not a command: a shipped plugin, say).
    NotFound,
    /// The request body is over the node's limit.
    TooLarge,
    /// The request's `Host` header does not name this node.
    WrongHost,
    /// The command returned the error case of its result.
    CommandError,
    /// The call ran past its deadline.
    Deadline,
    /// The call hit its memory cap.
    MemoryLimit,
    /// The call's output was over its cap.
    OutputLimit,
    /// The call moved more data through host interfaces than allowed.
    TransferLimit,
    /// The guest overflowed its stack.
    StackOverflow,
    /// The call made more host-interface calls than allowed.
    HostCallLimit,
    /// The guest trapped.
    Trap,
    /// The caller may not do this.
    Denied,
    /// The caller did not authenticate (or its credentials are not valid).
    Unauthenticated,
    /// Nested calls went deeper than allowed.
    DepthExceeded,
    /// The host failed to run the call.
    HostError,
    /// The node is at capacity; try again later.
    Busy,
    /// No peer can take the call.
    NoPeer,
    /// A peer could not be reached.
    Unreachable,
    /// A peer did not answer in time, or a request body did not arrive in time.
    Timeout,
    /// A peer's answer was not a valid answer.
    Malformed,
    /// Too few peers agreed for the requested quorum.
    Quorum,
    /// Whoever started it cancelled it (a job).
    Cancelled,
    /// The node stopped while it ran (a job found running at start).
    Interrupted,
    /// The peer running it stopped answering for longer than its lease (a grid job).
    Lost,
    /// The caller's grant has spent its budget for the period (calls, credits or tokens).
    BudgetExhausted,
    /// An outcome this version does not know.
    #[serde(other)]
    Other,
}

impl Outcome {
    /// Its name, as written in the log and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::UnknownCommand => "unknown-command",
            Outcome::InvalidParams => "invalid-params",
            Outcome::BadRequest => "bad-request",
            Outcome::NotFound => "not-found",
            Outcome::TooLarge => "too-large",
            Outcome::WrongHost => "wrong-host",
            Outcome::CommandError => "command-error",
            Outcome::Deadline => "deadline",
            Outcome::MemoryLimit => "memory-limit",
            Outcome::OutputLimit => "output-limit",
            Outcome::TransferLimit => "transfer-limit",
            Outcome::StackOverflow => "stack-overflow",
            Outcome::HostCallLimit => "host-call-limit",
            Outcome::Trap => "trap",
            Outcome::Denied => "denied",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::DepthExceeded => "depth-exceeded",
            Outcome::HostError => "host-error",
            Outcome::Busy => "busy",
            Outcome::NoPeer => "no-peer",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::Malformed => "malformed",
            Outcome::Quorum => "quorum",
            Outcome::Cancelled => "cancelled",
            Outcome::Interrupted => "interrupted",
            Outcome::Lost => "lost",
            Outcome::BudgetExhausted => "budget-exhausted",
            Outcome::Other => "other",
        }
    }

    /// The CLI's exit code: 0 ok, 2 bad input, 3 the command's own error, 4 a broken limit or
    /// a crash, 5 refused, 6 the grid could not serve it (a lost job too), 7 cancelled or
    /// interrupted, 1 anything else.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::UnknownCommand | Outcome::InvalidParams | Outcome::BadRequest => 2,
            Outcome::CommandError => 3,
            Outcome::Deadline
            | Outcome::MemoryLimit
            | Outcome::OutputLimit
            | Outcome::TransferLimit
            | Outcome::StackOverflow
            | Outcome::HostCallLimit
            | Outcome::Trap
            | Outcome::DepthExceeded => 4,
            Outcome::Denied | Outcome::Unauthenticated | Outcome::BudgetExhausted => 5,
            Outcome::NoPeer | Outcome::Unreachable | Outcome::Timeout | Outcome::Quorum | Outcome::Lost => 6,
            Outcome::Cancelled | Outcome::Interrupted => 7,
            Outcome::HostError
            | Outcome::Busy
            | Outcome::Malformed
            | Outcome::NotFound
            | Outcome::TooLarge
            | Outcome::WrongHost
            | Outcome::Other => 1,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

#[cfg(test)]
mod tests {
    use super::Outcome;

    /// The wire and the log spell each outcome as `as_str` does, and read it back; an unknown
    /// name from a newer peer is `Other`, not an error.
    #[test]
    fn outcomes_round_trip_by_name() {
        for outcome in [
            Outcome::Ok,
            Outcome::UnknownCommand,
            Outcome::HostCallLimit,
            Outcome::NoPeer,
            Outcome::Busy,
            Outcome::NotFound,
            Outcome::TooLarge,
            Outcome::WrongHost,
            Outcome::Cancelled,
            Outcome::Interrupted,
            Outcome::Lost,
            Outcome::BudgetExhausted,
        ] {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
            assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), outcome);
        }
        assert_eq!(serde_json::from_str::<Outcome>("\"from-the-future\"").unwrap(), Outcome::Other);
    }
}
