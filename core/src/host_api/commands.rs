//! `continuum:host/commands`: composition. A nested call runs as the original caller, with
//! the remaining time of the outer call, one level deeper; the depth is capped, and the
//! inference budget is the top-level call's, shared down the nesting.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasData, Linker};

use super::continuum::host::commands::{CallError as WitCallError, Host};
use super::inference::Usage;
use super::{CallContext, CallState, Metered, Trappable};
use crate::runtime::watch::Watch;
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
    /// The tree's live events and cancel switch, shared down the nesting.
    pub watch: Arc<Watch>,
}

impl Nesting {
    /// A call tree of its own, `depth` levels down, to finish by `deadline`, with fresh budgets
    /// and `watch` over it.
    pub fn fresh(depth: u32, deadline: Instant, watch: Arc<Watch>) -> Self {
        Nesting { depth, deadline, inference: Arc::default(), watch }
    }
}

/// What `continuum:host/commands` sees of a call: the call (its caller, depth and deadline,
/// which a nested call inherits) and what its tree has spent on inference.
pub struct CommandsHost<'a> {
    /// The call making nested calls.
    call: &'a CallContext,
    /// What its tree has spent on inference, shared with the calls it nests.
    inference: &'a Arc<Usage>,
}

/// The [`HasData`] marker of this interface's view ([`CommandsHost`], behind the host-call
/// budget): the `D` of the generated `add_to_linker`.
pub struct HasCommandsHost;

impl HasData for HasCommandsHost {
    type Data<'a> = Metered<'a, CommandsHost<'a>>;
}

/// Links `continuum:host/commands`, each of its calls served by the call's [`CommandsHost`].
pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    super::continuum::host::commands::add_to_linker::<_, HasCommandsHost>(linker, project)
}

/// The call's view for this interface, behind the store's host-call budget.
fn project(state: &mut CallState) -> Metered<'_, CommandsHost<'_>> {
    Metered::new(&mut state.host_calls, CommandsHost { call: &state.call, inference: &state.inference })
}

/// A nested call's failure as the WIT variant.
fn to_wit(e: CallError) -> WitCallError {
    match e {
        CallError::UnknownCommand { .. } => WitCallError::UnknownCommand(e.to_string()),
        CallError::InvalidParams { .. } => WitCallError::InvalidParams(e.to_string()),
        CallError::CommandFailed { error, .. } => WitCallError::CommandFailed(error.to_string()),
        CallError::DepthExceeded { .. } | CallError::Denied { .. } => WitCallError::Denied(e.to_string()),
        CallError::Limit { .. } | CallError::Trapped { .. } | CallError::Host { .. } | CallError::Cancelled { .. } => {
            WitCallError::Aborted(e.to_string())
        }
    }
}

impl Host for Metered<'_, CommandsHost<'_>> {
    fn call(&mut self, name: String, params_json: String) -> Result<String, Trappable<WitCallError>> {
        let CommandsHost { call, inference } = *self.enter()?;
        let params: serde_json::Value = serde_json::from_str(&params_json)
            .map_err(|e| WitCallError::InvalidParams(format!("params are not valid JSON: {e}")))?;
        let nesting = Nesting {
            depth: call.depth + 1,
            deadline: call.deadline,
            inference: inference.clone(),
            watch: call.watch.clone(),
        };
        let report = call.core.call_nested(&call.caller, &name, &params, &nesting);
        let value = report.result.map_err(to_wit)?;
        Ok(value.to_string())
    }

    fn convert_call_error(&mut self, error: Trappable<WitCallError>) -> wasmtime::Result<WitCallError> {
        error.into_wit()
    }
}
