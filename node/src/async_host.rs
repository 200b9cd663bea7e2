//! The host as the node's async code holds it. [`Host`]'s methods block (SQLite, log commits,
//! guest code); async handlers and the serve lifecycle get an [`AsyncHost`] instead, whose ways
//! to the host are [`AsyncHost::run`] (work sent to the host's call pool) and
//! [`AsyncHost::call`] (a command call on that pool), so a blocking call on an async runtime
//! thread does not compile rather than being caught in review.
//!
//! How this is checked:
//! - the type: `http::AppState::host` is an [`AsyncHost`], which hands out no `&Host` outside
//!   a `run` closure, so a handler that calls a `Host` method directly does not compile; the
//!   serve lifecycle's async half (`crate::serve`) holds an [`AsyncHost`] too, plus the `Host`
//!   it passes to `Grid::start` (the grid's own concern);
//! - a grep for the ways around the type:
//!   `grep -rn "\.core()\|\.offload(\|grid\.host()" node/src/http node/src/lib.rs` lists only
//!   lines inside `run` closures, and in `open_host` and `serve`, which are not async.

use std::sync::Arc;

use anyhow::Result;
use continuum_core::runtime::watch::Watch;
use continuum_core::{CallReport, Caller, Host};
use serde_json::Value;

/// A [`Host`] reachable from async code only through work sent to its call pool.
#[derive(Clone)]
pub struct AsyncHost(Host);

impl AsyncHost {
    /// Wraps `host` for async code.
    pub fn new(host: Host) -> Self {
        AsyncHost(host)
    }

    /// Runs `work` with the host on the host's call pool and waits for it without blocking the
    /// async runtime; a panic in `work` comes back as an error.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce(&Host) -> T + Send + 'static) -> Result<T> {
        let host = self.0.clone();
        self.0.offload(move || work(&host)).await
    }

    /// Calls command `name` with JSON `params` as `caller`, `watch` over the call tree: the
    /// guest runs on the call pool, and the call's audit entry is committed before the report
    /// is returned, awaited without holding a thread (see [`Host::call_async`]).
    pub async fn call(&self, caller: Caller, name: String, params: Value, watch: Arc<Watch>) -> CallReport {
        self.0.call_async(caller, name, params, watch).await
    }

    /// This node's id (its public key in hex): held in memory, never blocks.
    pub fn node_id(&self) -> String {
        self.0.node_id()
    }

    /// The schema of command `name` if its plugin is loaded: memory only, never blocks (the
    /// owner's schema lookups are answered without a trip to the call pool).
    pub fn loaded_schema(&self, name: &str) -> Option<continuum_core::reflect::CommandSchema> {
        self.0.loaded_schema(name)
    }
}
