//! Continuum: a host for a peer-to-peer compute grid in which every command is a sandboxed,
//! signed WebAssembly component.
//!
//! - [`runtime`] loads plugins and runs their commands, one fresh instance per call;
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
//! - [`call_pool`] runs calls and other blocking work for the node's async handlers;
//! - [`signing`] is the one signature scheme (domain-separated, strict) of every signed format;
//! - [`eventlog`] is the signed, hash-chained record of everything the node does;
//! - [`registry`], [`db`], [`config`], [`paths`] keep the node's state on disk.

pub mod access;
pub mod alloy;
pub mod authoring;
pub mod call_pool;
pub mod cli;
pub mod config;
pub mod db;
pub mod discovery;
pub mod engine;
pub mod eventlog;
pub mod grants;
pub mod grid;
pub mod host_api;
pub mod install;
pub mod keys;
pub mod node;
pub mod paths;
pub mod reflect;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod signing;
pub mod terminal;
pub mod trust;

pub use access::Caller;
pub use install::{AlloyOptions, InstallOptions};
pub use runtime::{CallError, CallReport, Host};

/// The tables of every module, migrated when a host opens its data directory.
pub const SCHEMAS: [&db::Schema; 10] = [
    &registry::SCHEMA,
    &host_api::store::SCHEMA,
    &host_api::training::SCHEMA,
    &discovery::SCHEMA,
    &eventlog::SCHEMA,
    &trust::SCHEMA,
    &grants::SCHEMA,
    &engine::SCHEMA,
    &grid::peers::SCHEMA,
    &node::auth::SCHEMA,
];

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
