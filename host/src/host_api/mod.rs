//! The `continuum:host` interfaces offered to commands: one module per WIT interface, each
//! owning its binding (the generated `Host` trait impl), its policy checks and its state.
//! This module holds the per-call store state they share and links them with WASI.

pub mod commands;
pub mod events;
pub mod log;
pub mod store;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::runtime::HostCore;
use crate::sandbox::MemoryGuard;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "continuum:host/command",
    imports: { default: trappable },
});

/// Who a call runs for. Nested calls (`commands.call`) keep the original caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// A stable id: `owner` for the local operator.
    pub id: String,
}

impl Caller {
    /// The local owner of this node (CLI, local socket).
    pub fn owner() -> Self {
        Caller { id: "owner".into() }
    }
}

/// What every host interface knows about the call it serves.
pub struct CallContext {
    /// The host, for nested calls and shared state.
    pub core: Arc<HostCore>,
    /// The plugin being run.
    pub plugin: String,
    /// Whose store and events the call uses (the plugin's name, or a proof run's scratch space).
    pub namespace: String,
    /// The full name of the command being run.
    pub command: String,
    /// Who the call runs for.
    pub caller: Caller,
    /// How many `commands.call` levels above this call.
    pub depth: u32,
    /// When the call's deadline passes.
    pub deadline: Instant,
}

/// The state of one store: one call of one command in a fresh instance.
pub struct CallState {
    /// WASI context: no files, no environment, no network; stdio captured.
    pub wasi: WasiCtx,
    /// WASI resources.
    pub table: ResourceTable,
    /// The linear-memory cap.
    pub memory: MemoryGuard,
    /// The call.
    pub call: CallContext,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Links WASI (sandboxed per call by its context) and every `continuum:host` interface.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    continuum::host::log::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    continuum::host::store::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    continuum::host::commands::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    continuum::host::events::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    Ok(())
}
