//! Continuum: a host for a peer-to-peer compute grid in which every command is a sandboxed,
//! signed WebAssembly component.
//!
//! - [`runtime`] installs plugins and runs their commands, one fresh instance per call;
//! - [`reflect`] turns a component's WIT types into commands with JSON Schemas;
//! - [`sandbox`] holds the per-call limits and how a broken limit is reported;
//! - [`host_api`] implements the `continuum:host` interfaces offered to commands;
//! - [`engine`] configures wasmtime and caches precompiled components;
//! - [`registry`], [`db`], [`config`], [`paths`] keep the node's state on disk.

pub mod cli;
pub mod config;
pub mod db;
pub mod engine;
pub mod host_api;
pub mod paths;
pub mod reflect;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod terminal;

pub use host_api::Caller;
pub use runtime::{CallError, CallReport, Host, InstallOptions};
