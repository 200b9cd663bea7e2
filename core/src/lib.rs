//! Continuum's core: everything a single host does with signed, sandboxed WebAssembly
//! commands, without the node, the grid or the command line (crates `continuum-node` and
//! `continuum` build on it; nothing here depends on them).
//!
//! - [`runtime`] loads plugins and runs their commands, one fresh instance per call;
//! - [`admin`] issues and revokes grants and trusts publishers, as the owner does, each change
//!   recorded in the event log;
//! - [`install`] installs plugins (development components and signed alloys), packs,
//!   verifies and attests alloys;
//! - [`authoring`] scaffolds and builds command projects in Rust, Python and JavaScript;
//! - [`alloy`] is the signed artifact format; [`keys`] and [`trust`] hold signing keys and
//!   trusted publishers;
//! - [`reflect`] turns a component's WIT types into commands with JSON Schemas;
//! - [`sandbox`] holds the per-call limits and how a broken limit is reported;
//! - [`host_api`] implements the `continuum:host` interfaces offered to commands (inference
//!   and training run on the `continuum-gpu` engines);
//! - [`discovery`] finds commands by meaning (embeddings) or by words;
//! - [`engine`] configures wasmtime and caches precompiled components;
//! - [`call_pool`] runs calls and other blocking work for async callers (the node's handlers);
//! - [`signing`] is the one signature scheme (domain-separated, strict) of every signed format;
//! - [`eventlog`] is the signed, hash-chained record of everything the node does;
//! - [`registry`], [`db`], [`config`], [`paths`] keep the node's state on disk;
//! - [`sync`] locks shared state so that one panicking holder does not poison it for all.

pub mod access;
pub mod admin;
pub mod alloy;
pub mod authoring;
pub mod call_pool;
pub mod config;
pub mod db;
pub mod dir_grant;
pub mod discovery;
pub mod engine;
pub mod eventlog;
pub mod grants;
pub mod host_api;
pub mod install;
pub mod keys;
pub mod node_set;
pub mod paths;
pub mod reflect;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod signing;
pub mod sync;
pub mod terminal;
pub mod trust;

pub use access::Caller;
pub use install::{AlloyOptions, InstallOptions};
pub use runtime::{CallError, CallReport, Calls, Host, Outcome};

/// The tables of every core module, migrated when a host opens its data directory (the node
/// crate migrates its own).
pub const SCHEMAS: [&db::Schema; 9] = [
    &registry::SCHEMA,
    &host_api::store::SCHEMA,
    &host_api::training::SCHEMA,
    &discovery::SCHEMA,
    &eventlog::SCHEMA,
    &trust::SCHEMA,
    &grants::SCHEMA,
    &engine::SCHEMA,
    &node_set::SCHEMA,
];

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The cores this process may use (at least 1), read once: `available_parallelism` reads the
/// cgroup's files on every call (≈ 30–70 µs each on a cgroup v1 machine), and opening a host
/// sized three things by it.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
