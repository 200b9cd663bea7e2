//! `continuum:host/events`: plugins append events under their own name. Kept in a plain table
//! until the signed, hash-chained event log replaces it.

use rusqlite::{params, Connection};

use super::continuum::host::events::Host;
use super::CallState;

/// Table of events.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    plugin  TEXT NOT NULL,
    command TEXT NOT NULL,
    caller  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    payload TEXT NOT NULL
) STRICT;
";

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

/// Appends an event (also used by the host itself, e.g. `plugin.installed`).
pub fn append(
    conn: &Connection,
    plugin: &str,
    command: &str,
    caller: &str,
    kind: &str,
    payload_json: &str,
) -> rusqlite::Result<()> {
    let at_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    conn.execute(
        "INSERT INTO events (at_ms, plugin, command, caller, kind, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at_ms, plugin, command, caller, kind, payload_json],
    )?;
    Ok(())
}

impl Host for CallState {
    fn emit(&mut self, kind: String, payload_json: String) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = check_kind(&kind) {
            return Ok(Err(e));
        }
        if payload_json.len() > MAX_PAYLOAD {
            return Ok(Err(format!("payload of {} bytes is larger than {MAX_PAYLOAD}", payload_json.len())));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&payload_json) {
            return Ok(Err(format!("payload is not valid JSON: {e}")));
        }
        let call = &self.call;
        let kind = format!("{}.{kind}", call.namespace);
        Ok(append(&call.core.db(), &call.namespace, &call.command, &call.caller.id(), &kind, &payload_json)
            .map_err(|e| format!("cannot record the event: {e}")))
    }
}
