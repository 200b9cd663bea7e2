//! `continuum:host/events`: plugins append entries to the node's event log, kinds namespaced
//! by the plugin (`kv.put`); the call waits until its entry is committed.

use wasmtime::component::{HasData, Linker};

use super::continuum::host::events::Host;
use super::{CallState, Metered};
use crate::runtime::HostCore;

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

/// What `continuum:host/events` sees of a call: the host's event log, the namespace that
/// prefixes its kinds and the command that records them.
pub struct EventsHost<'a> {
    /// The host, for its event log.
    core: &'a HostCore,
    /// The prefix of the call's event kinds.
    namespace: &'a str,
    /// The full name of the command being run, each entry's subject.
    command: &'a str,
}

/// The [`HasData`] marker of this interface's view ([`EventsHost`], behind the host-call
/// budget): the `D` of the generated `add_to_linker`.
pub struct HasEventsHost;

impl HasData for HasEventsHost {
    type Data<'a> = Metered<'a, EventsHost<'a>>;
}

/// Links `continuum:host/events`, each of its calls served by the call's [`EventsHost`].
pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    super::continuum::host::events::add_to_linker::<_, HasEventsHost>(linker, project)
}

/// The call's view for this interface, behind the store's host-call budget.
fn project(state: &mut CallState) -> Metered<'_, EventsHost<'_>> {
    let call = &state.call;
    Metered::new(
        &mut state.host_calls,
        EventsHost { core: &call.core, namespace: &call.namespace, command: &call.command },
    )
}

impl EventsHost<'_> {
    /// Appends an event of `kind` (namespaced here) with the JSON `payload_json` and waits
    /// until it is committed; the guest's error otherwise.
    fn record(&self, kind: &str, payload_json: &str) -> Result<(), String> {
        check_kind(kind)?;
        if payload_json.len() > MAX_PAYLOAD {
            return Err(format!("payload of {} bytes is larger than {MAX_PAYLOAD}", payload_json.len()));
        }
        let payload: serde_json::Value =
            serde_json::from_str(payload_json).map_err(|e| format!("payload is not valid JSON: {e}"))?;
        let kind = format!("{}.{kind}", self.namespace);
        if crate::eventlog::is_host_kind(&kind) {
            return Err(format!(
                "event kind `{kind}` is reserved for the host (plugin `{}` shares its name with a host kind: reinstall it under another --name)",
                self.namespace
            ));
        }
        self.core
            .log()
            .append(&kind, self.command, &payload)
            .map(|_| ())
            .map_err(|e| format!("cannot record the event: {e:#}"))
    }
}

impl Host for Metered<'_, EventsHost<'_>> {
    fn emit(&mut self, kind: String, payload_json: String) -> wasmtime::Result<Result<(), String>> {
        Ok(self.enter()?.record(&kind, &payload_json))
    }
}
