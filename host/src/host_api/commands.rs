//! `continuum:host/commands`: composition. A nested call runs as the original caller, with
//! the remaining time of the outer call, one level deeper; the depth is capped.

use super::continuum::host::commands::{CallError as WitCallError, Host};
use super::CallState;
use crate::runtime::CallError;

impl Host for CallState {
    fn call(&mut self, name: String, params_json: String) -> wasmtime::Result<Result<String, WitCallError>> {
        self.host_call()?;
        let call = &self.call;
        let params: serde_json::Value = match serde_json::from_str(&params_json) {
            Ok(v) => v,
            Err(e) => return Ok(Err(WitCallError::InvalidParams(format!("params are not valid JSON: {e}")))),
        };
        let report = call.core.call_nested(&call.caller, &name, &params, call.depth + 1, call.deadline);
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
