//! `continuum:host/commands`: composition. A nested call runs as the original caller, with
//! the remaining time of the outer call, one level deeper; the depth is capped, and the
//! inference budget is the top-level call's, shared down the nesting.

use std::sync::Arc;
use std::time::Instant;

use super::continuum::host::commands::{CallError as WitCallError, Host};
use super::inference::Usage;
use super::CallState;
use crate::runtime::CallError;

/// Where a call sits in its call tree, and what it shares with the rest of that tree.
pub struct Nesting {
    /// How many `commands.call` levels above it (0: a top-level call).
    pub depth: u32,
    /// When the call above it must finish: a nested call gets at most what is left.
    pub deadline: Instant,
    /// What the whole tree has spent on inference: one budget per top-level call, so calling
    /// another command (or the same one again) never buys a fresh one.
    pub inference: Arc<Usage>,
}

impl Nesting {
    /// A call tree of its own, `depth` levels down, to finish by `deadline`, with fresh budgets.
    pub fn fresh(depth: u32, deadline: Instant) -> Self {
        Nesting { depth, deadline, inference: Arc::default() }
    }
}

impl Host for CallState {
    fn call(&mut self, name: String, params_json: String) -> wasmtime::Result<Result<String, WitCallError>> {
        self.host_call()?;
        let call = &self.call;
        let params: serde_json::Value = match serde_json::from_str(&params_json) {
            Ok(v) => v,
            Err(e) => return Ok(Err(WitCallError::InvalidParams(format!("params are not valid JSON: {e}")))),
        };
        let nesting = Nesting { depth: call.depth + 1, deadline: call.deadline, inference: self.inference.clone() };
        let report = call.core.call_nested(&call.caller, &name, &params, &nesting);
        Ok(match report.result {
            Ok(value) => Ok(value.to_string()),
            Err(e) => Err(match e {
                CallError::UnknownCommand { .. } => WitCallError::UnknownCommand(e.to_string()),
                CallError::InvalidParams { .. } => WitCallError::InvalidParams(e.to_string()),
                CallError::CommandFailed { error, .. } => WitCallError::CommandFailed(error.to_string()),
                CallError::DepthExceeded { .. } | CallError::Denied { .. } => WitCallError::Denied(e.to_string()),
                CallError::Limit { .. } | CallError::Trapped { .. } | CallError::Host { .. } => {
                    WitCallError::Aborted(e.to_string())
                }
            }),
        })
    }
}
