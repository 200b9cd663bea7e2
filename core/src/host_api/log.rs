//! `continuum:host/log`: plugin log records into the host's tracing, tagged with plugin and
//! command. Control characters (terminal escapes) are stripped first.

use wasmtime::component::{HasData, Linker};

use super::continuum::host::log::{Host, Level};
use super::{CallState, Metered};
use crate::terminal::{strip_control, truncate};

/// Longest log message kept; the rest is cut off.
const MAX_MESSAGE: usize = 8 * 1024;

/// What `continuum:host/log` sees of a call: whose records it writes.
pub struct LogHost<'a> {
    /// The plugin being run.
    plugin: &'a str,
    /// The full name of the command being run.
    command: &'a str,
}

/// The [`HasData`] marker of this interface's view ([`LogHost`], behind the host-call
/// budget): the `D` of the generated `add_to_linker`.
pub struct HasLogHost;

impl HasData for HasLogHost {
    type Data<'a> = Metered<'a, LogHost<'a>>;
}

/// Links `continuum:host/log`, each of its calls served by the call's [`LogHost`].
pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    super::continuum::host::log::add_to_linker::<_, HasLogHost>(linker, project)
}

/// The call's view for this interface, behind the store's host-call budget.
fn project(state: &mut CallState) -> Metered<'_, LogHost<'_>> {
    let call = &state.call;
    Metered::new(&mut state.host_calls, LogHost { plugin: &call.plugin, command: &call.command })
}

impl Host for Metered<'_, LogHost<'_>> {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let LogHost { plugin, command } = *self.enter()?;
        let mut message = strip_control(&message);
        if truncate(&mut message, MAX_MESSAGE) {
            message.push('…');
        }
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, command, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, command, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, command, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, command, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, command, "{message}"),
        }
        Ok(())
    }
}
