//! `continuum:host/log`: plugin log records into the host's tracing, tagged with plugin and
//! command. Control characters (terminal escapes) are stripped first.

use super::continuum::host::log::{Host, Level};
use super::CallState;
use crate::terminal::strip_control;

/// Longest log message kept; the rest is cut off.
const MAX_MESSAGE: usize = 8 * 1024;

impl Host for CallState {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.host_call()?;
        let mut message = strip_control(&message);
        if message.len() > MAX_MESSAGE {
            let cut = (0..=MAX_MESSAGE).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        let (plugin, command) = (&self.call.plugin, &self.call.command);
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
