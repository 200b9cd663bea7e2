//! The `continuum:host` interfaces offered to commands: one module per WIT interface, each
//! owning its binding (the generated `Host` trait impl), its policy checks and its state.
//! This module holds the per-call store state they share and links them with WASI.

pub mod commands;
pub mod events;
pub mod inference;
pub mod log;
pub mod store;
pub mod training;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable, ResourceType};
use wasmtime::Engine;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::access::Caller;
use crate::runtime::HostCore;
use crate::sandbox::{HostCallLimit, MemoryGuard};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "continuum:host/command",
    imports: { default: trappable },
    with: { "continuum:host/inference.generation": inference::Generation },
});

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
    /// Host-interface calls made so far, and the most allowed.
    pub host_calls: (u64, u64),
    /// What the call's tree (the top-level call and every call nested in it) has spent on
    /// inference: one budget, shared down the nesting.
    pub inference: Arc<inference::Usage>,
    /// The call.
    pub call: CallContext,
}

impl CallState {
    /// Counts one host-interface call; past the budget, traps with [`HostCallLimit`].
    pub fn host_call(&mut self) -> wasmtime::Result<()> {
        let (made, max) = &mut self.host_calls;
        *made += 1;
        if *made > *max {
            return Err(wasmtime::Error::new(HostCallLimit(*max)));
        }
        Ok(())
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The host capabilities a plugin can be granted, one per `continuum:host` interface.
pub const HOST_CAPABILITIES: [&str; 6] =
    ["host:log", "host:store", "host:commands", "host:events", "host:inference", "host:training"];

/// The capability an import requests: `continuum:host/store@0.1.0` → `host:store`. WASI
/// imports need none (WASI is always linked, sandboxed by each call's context: no files, no
/// environment, no network); any other import is its own name, which can never be granted.
pub fn capability_of(import: &str) -> Option<String> {
    if import.starts_with("wasi:") {
        return None;
    }
    match import.strip_prefix("continuum:host/") {
        Some(rest) => Some(format!("host:{}", rest.split('@').next().unwrap_or(rest))),
        None => Some(import.to_string()),
    }
}

/// The capabilities `imports` request, sorted, without repeats.
pub fn requested(imports: &[String]) -> Vec<String> {
    let mut caps: Vec<String> = imports.iter().filter_map(|i| capability_of(i)).collect();
    caps.sort();
    caps.dedup();
    caps
}

/// Links WASI (sandboxed per call by its context) and the `continuum:host` interfaces whose
/// capabilities are in `approved`; nothing else, so an unapproved import cannot instantiate.
pub fn add_to_linker(linker: &mut Linker<CallState>, approved: &[String]) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    let granted = |cap: &str| approved.iter().any(|a| a == cap);
    if granted("host:log") {
        continuum::host::log::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    }
    if granted("host:store") {
        continuum::host::store::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    }
    if granted("host:commands") {
        continuum::host::commands::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    }
    if granted("host:events") {
        continuum::host::events::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    }
    if granted("host:inference") {
        continuum::host::inference::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    }
    if granted("host:training") {
        continuum::host::training::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    }
    Ok(())
}

/// Links the `continuum:host` interfaces `component` imports without their capability in
/// `approved` so that it instantiates yet gets nothing from them (how a proof run is confined):
/// each of their functions traps with an error naming the capability, except `host:log`'s,
/// which drop the record (a log line changes no result and would reach only the operator's
/// terminal).
pub fn add_unapproved_to_linker(
    linker: &mut Linker<CallState>,
    engine: &Engine,
    component: &Component,
    approved: &[String],
) -> Result<()> {
    let ty = component.component_type();
    for (import, item) in ty.imports(engine) {
        let unapproved = |cap: &String| HOST_CAPABILITIES.contains(&cap.as_str()) && !approved.contains(cap);
        let Some(cap) = capability_of(import).filter(unapproved) else { continue };
        let ComponentItem::ComponentInstance(interface) = item.ty else { continue };
        let mut instance = linker.instance(import)?;
        for (name, export) in interface.exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) if cap == "host:log" => instance.func_new(name, |_, _, _, _| Ok(()))?,
                ComponentItem::ComponentFunc(_) => {
                    let message = format!(
                        "{cap} is not approved for this proof run, so `{import}#{name}` is unavailable: proofs run \
                         with only the capabilities the trust store pre-approves for the alloy's publisher (none \
                         for one not in it); `continuum trust add <publisher key> --name <name> --approve {cap}` \
                         approves it"
                    );
                    instance.func_new(name, move |_, _, _, _| Err(wasmtime::format_err!("{message}")))?
                }
                ComponentItem::Resource(_) => instance.resource(name, ResourceType::host::<()>(), |_, _| Ok(()))?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// A plugin asks for capabilities the operator has not approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "plugin `{plugin}` needs {} which {} not approved; approve with {}",
    missing.join(", "),
    if missing.len() == 1 { "is" } else { "are" },
    approve_hint(plugin, missing, *installed)
)]
pub struct NotApproved {
    /// The plugin.
    pub plugin: String,
    /// The capabilities it requests without approval.
    pub missing: Vec<String>,
    /// Whether it is already installed (the fix is `plugin allow`, not `--allow`).
    pub installed: bool,
}

fn approve_hint(plugin: &str, missing: &[String], installed: bool) -> String {
    if installed {
        format!("`continuum plugin allow {plugin} {}`", missing.join(" "))
    } else {
        format!("--allow {} at install (or trust its publisher with --approve)", missing.join(" --allow "))
    }
}
