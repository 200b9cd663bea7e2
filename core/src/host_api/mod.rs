//! The `continuum:host` interfaces offered to commands: one module per WIT interface, each
//! owning its binding (the generated traits' impls), its policy checks and its tables. This
//! module holds the per-call store state and links the interfaces with WASI.
//!
//! **One view per interface.** A store's data is one [`CallState`], but no interface implements
//! its generated traits on it: each implements them on its own view of the call
//! ([`log::LogHost`], [`store::StoreHost`], [`commands::CommandsHost`], [`events::EventsHost`],
//! [`progress::ProgressHost`], [`inference::InferenceHost`], [`training::TrainingHost`]), which holds only what that
//! interface uses. Each module's `add_to_linker` passes the generated `add_to_linker::<_, D>` a
//! projection from the `CallState` to that view, `D` being the module's
//! [`HasData`](wasmtime::component::HasData) marker, as wasmtime-wasi projects its
//! `WasiCtxView`. Policy that depends only on the plugin (its model policy) is resolved once per
//! plugin load and carried in [`CallContext::models`]; [`inference::ModelAccess`] reads it.
//!
//! **The host-call budget, in one place.** The projection wraps the view in a [`Metered`] with
//! the store's host-call count, and the view is reachable only through [`Metered::enter`], which
//! counts the call and, past the limit, traps with [`HostCallLimit`](crate::sandbox::HostCallLimit).
//! So a host function cannot reach its interface's state uncounted, and none counts by hand.
//! Only calls into `continuum:host` interfaces count (WASI is linked on the `CallState` itself),
//! and the count is per store, as before. Dropping a resource (a `generation`) is not a host
//! call and does not count: a destructor opens the view with [`Metered::for_destructor`].
//!
//! **Errors with `?`.** A function whose WIT result has a named error type returns that type in
//! a [`Trappable`] (bindgen's `trappable_error_type`): in its body, `?` makes a WIT error the
//! guest's `err` value and a wasmtime error (the budget spent, a stale handle) a trap; each
//! interface's generated `convert_*` hook splits the two with [`Trappable::into_wit`].
//! `events.emit`, whose error is a plain `string`, returns the guest's result from a helper that
//! uses `?` itself.

pub mod commands;
pub mod events;
pub mod http;
pub mod inference;
pub mod log;
pub mod progress;
pub mod store;
pub mod training;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable, ResourceTableError, ResourceType, Val};
use wasmtime::Engine;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::access::Caller;
use crate::runtime::HostCore;
use crate::sandbox::MemoryGuard;

/// The bindings generated from `wit/host.wit`: their items carry the WIT's own docs, where it
/// has them.
mod bindings {
    #![allow(missing_docs)]
    use super::Trappable;

    wasmtime::component::bindgen!({
        path: "../wit",
        world: "continuum:host/command",
        imports: { default: trappable },
        trappable_error_type: {
            "continuum:host/store.store-error" => Trappable<continuum::host::store::StoreError>,
            "continuum:host/commands.call-error" => Trappable<continuum::host::commands::CallError>,
            "continuum:host/inference.inference-error" => Trappable<continuum::host::inference::InferenceError>,
            "continuum:host/training.training-error" => Trappable<continuum::host::training::TrainingError>,
        },
        with: { "continuum:host/inference.generation": crate::host_api::inference::Generation },
    });
}

pub use bindings::*;

/// How a host function whose WIT result has a named error type `E` fails: with `E`, which the
/// guest receives as the result's `err`, or with a trap, which aborts the guest's call.
pub enum Trappable<E> {
    /// The WIT error, returned to the guest.
    Returned(E),
    /// A trap: the host-call budget is spent, a resource handle is stale.
    Trap(wasmtime::Error),
}

impl<E> Trappable<E> {
    /// The WIT error for the guest, or the trap as the `Err` (each `convert_*` hook).
    pub fn into_wit(self) -> wasmtime::Result<E> {
        match self {
            Trappable::Returned(error) => Ok(error),
            Trappable::Trap(trap) => Err(trap),
        }
    }
}

/// The WIT error type of a `continuum:host` interface: `?` makes it a [`Trappable::Returned`].
pub trait WitError {}

impl WitError for continuum::host::store::StoreError {}
impl WitError for continuum::host::commands::CallError {}
impl WitError for continuum::host::inference::InferenceError {}
impl WitError for continuum::host::training::TrainingError {}

impl<E: WitError> From<E> for Trappable<E> {
    fn from(error: E) -> Self {
        Trappable::Returned(error)
    }
}

impl<E> From<wasmtime::Error> for Trappable<E> {
    fn from(trap: wasmtime::Error) -> Self {
        Trappable::Trap(trap)
    }
}

impl<E> From<ResourceTableError> for Trappable<E> {
    fn from(stale: ResourceTableError) -> Self {
        Trappable::Trap(stale.into())
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
    /// The models the plugin may use and their budgets (resolved when it was loaded).
    pub models: Arc<crate::config::ModelPolicy>,
    /// The call tree's live events and cancel switch.
    pub watch: Arc<crate::runtime::watch::Watch>,
}

/// The state of one store: one call of one command in a fresh instance. The host interfaces
/// see it only through their views ([`Metered`]; see the module doc).
pub struct CallState {
    /// WASI context: no files, no environment, no network; stdio captured.
    pub wasi: WasiCtx,
    /// WASI resources, and the host interfaces' (inference's generations).
    pub table: ResourceTable,
    /// The linear-memory cap.
    pub memory: MemoryGuard,
    /// Host-interface calls made so far, and the most allowed (counted by [`Metered::enter`]).
    pub host_calls: (u64, u64),
    /// What the call's tree (the top-level call and every call nested in it) has spent on
    /// inference: one budget, shared down the nesting.
    pub inference: Arc<inference::Usage>,
    /// `wasi:http`'s state (incoming requests; outgoing ones are refused).
    pub http: http::HttpState,
    /// The call.
    pub call: CallContext,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The host-call budget: the one place where host calls are counted.
mod metered {
    use crate::sandbox::HostCallLimit;

    /// An interface's view `V` of one call, behind the store's host-call count: a host function
    /// reaches the view only through [`Metered::enter`], which counts the call.
    pub struct Metered<'a, V> {
        /// Host-interface calls made so far in the store, and the most allowed.
        host_calls: &'a mut (u64, u64),
        /// The interface's view of the call.
        view: V,
    }

    impl<'a, V> Metered<'a, V> {
        /// `view`, counted against the store's `host_calls` (made so far, most allowed).
        pub fn new(host_calls: &'a mut (u64, u64), view: V) -> Self {
            Metered { host_calls, view }
        }

        /// Counts one host call and opens the view; past the budget, traps with
        /// [`HostCallLimit`].
        pub fn enter(&mut self) -> wasmtime::Result<&mut V> {
            let (made, max) = &mut *self.host_calls;
            *made += 1;
            if *made > *max {
                return Err(wasmtime::Error::new(HostCallLimit(*max)));
            }
            Ok(&mut self.view)
        }

        /// Opens the view uncounted, for a resource destructor only: dropping a resource is not
        /// a host call, and a guest past its budget can still release what it holds.
        pub fn for_destructor(&mut self) -> &mut V {
            &mut self.view
        }
    }
}

pub use metered::Metered;

/// The host capabilities a plugin can be granted, one per `continuum:host` interface.
pub const HOST_CAPABILITIES: [&str; 7] =
    ["host:log", "host:store", "host:commands", "host:events", "host:progress", "host:inference", "host:training"];

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

/// Adds one `continuum:host` interface to a linker.
type LinkInterface = fn(&mut Linker<CallState>) -> wasmtime::Result<()>;

/// Links WASI (sandboxed per call by its context) and the `continuum:host` interfaces whose
/// capabilities are in `approved`; nothing else, so an unapproved import cannot instantiate.
pub fn add_to_linker(linker: &mut Linker<CallState>, approved: &[String]) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    http::add_to_linker(linker)?;
    let interfaces: [(&str, LinkInterface); 7] = [
        ("host:log", log::add_to_linker),
        ("host:progress", progress::add_to_linker),
        ("host:store", store::add_to_linker),
        ("host:commands", commands::add_to_linker),
        ("host:events", events::add_to_linker),
        ("host:inference", inference::add_to_linker),
        ("host:training", training::add_to_linker),
    ];
    for (capability, add) in interfaces {
        if approved.iter().any(|a| a == capability) {
            add(linker)?;
        }
    }
    Ok(())
}

/// Links the `continuum:host` interfaces `component` imports without their capability in
/// `approved` so that it instantiates yet gets nothing from them (how a proof run is confined):
/// each of their functions traps with an error naming the capability, except `host:log`'s and
/// `host:progress`'s, which drop the record (neither changes a result; a log line would reach
/// only the operator's terminal).
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
                // A log line or a progress report changes no result: dropped, reported done.
                ComponentItem::ComponentFunc(_) if matches!(cap.as_str(), "host:log" | "host:progress") => instance
                    .func_new(name, |_, _, _, results| {
                        results.iter_mut().for_each(|r| *r = Val::Result(Ok(None)));
                        Ok(())
                    })?,
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
