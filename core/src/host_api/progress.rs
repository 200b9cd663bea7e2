//! `continuum:host/progress`: a command reports how far it has come; the report goes to the
//! call tree's watch (a job's followers, a terminal), stripped of control characters and cut
//! to [`MAX_MESSAGE`] bytes. A fraction outside 0 to 1 is refused with a message saying so.

use wasmtime::component::{HasData, Linker};

use super::continuum::host::progress::Host;
use super::{CallContext, CallState, Metered};
use crate::runtime::watch::CallEvent;
use crate::terminal::{strip_control, truncate};

/// Longest progress message kept; the rest is cut off.
pub const MAX_MESSAGE: usize = 1024;

/// What `continuum:host/progress` sees of a call: the call, whose watch receives the reports.
pub struct ProgressHost<'a> {
    /// The call reporting.
    call: &'a CallContext,
}

/// The [`HasData`] marker of this interface's view ([`ProgressHost`], behind the host-call
/// budget): the `D` of the generated `add_to_linker`.
pub struct HasProgressHost;

impl HasData for HasProgressHost {
    type Data<'a> = Metered<'a, ProgressHost<'a>>;
}

/// Links `continuum:host/progress`, each of its calls served by the call's [`ProgressHost`].
pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    super::continuum::host::progress::add_to_linker::<_, HasProgressHost>(linker, project)
}

/// The call's view for this interface, behind the store's host-call budget.
fn project(state: &mut CallState) -> Metered<'_, ProgressHost<'_>> {
    Metered::new(&mut state.host_calls, ProgressHost { call: &state.call })
}

impl Host for Metered<'_, ProgressHost<'_>> {
    fn report(&mut self, fraction: f32, message: String) -> wasmtime::Result<Result<(), String>> {
        let ProgressHost { call } = *self.enter()?;
        if !(0.0..=1.0).contains(&fraction) {
            return Ok(Err(format!("progress fraction {fraction} is not a number from 0 to 1")));
        }
        if call.watch.observed() {
            let mut message = strip_control(&message);
            truncate(&mut message, MAX_MESSAGE);
            call.watch.emit(CallEvent::Progress { command: call.command.clone(), fraction, message });
        }
        Ok(Ok(()))
    }
}
