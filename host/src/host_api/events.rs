//! `continuum:host/events`: plugins append entries to the node's event log, kinds namespaced
//! by the plugin (`kv.put`); the call waits until its entry is committed.

use super::continuum::host::events::Host;
use super::CallState;

/// Largest payload, in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Checks an event kind: 1–64 characters of `a-z 0-9 . - _`.
fn check_kind(kind: &str) -> Result<(), String> {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "event kind `{}` must be 1-64 characters of a-z, 0-9, `.`, `-`, `_`",
            crate::terminal::strip_control(kind)
        ))
    }
}

impl Host for CallState {
    fn emit(&mut self, kind: String, payload_json: String) -> wasmtime::Result<Result<(), String>> {
        self.host_call()?;
        if let Err(e) = check_kind(&kind) {
            return Ok(Err(e));
        }
        if payload_json.len() > MAX_PAYLOAD {
            return Ok(Err(format!("payload of {} bytes is larger than {MAX_PAYLOAD}", payload_json.len())));
        }
        let payload: serde_json::Value = match serde_json::from_str(&payload_json) {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("payload is not valid JSON: {e}"))),
        };
        let call = &self.call;
        let kind = format!("{}.{kind}", call.namespace);
        if crate::eventlog::is_host_kind(&kind) {
            return Ok(Err(format!(
                "event kind `{kind}` is reserved for the host (plugin `{}` shares its name with a host kind: reinstall it under another --name)",
                call.namespace
            )));
        }
        Ok(call
            .core
            .log()
            .append(&kind, &call.command, &payload)
            .map(|_| ())
            .map_err(|e| format!("cannot record the event: {e:#}")))
    }
}
