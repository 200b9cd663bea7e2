//! Continuum: a host for a peer-to-peer compute grid in which every command is a sandboxed,
//! signed WebAssembly component. This crate is the command line ([`cli`]) and the `continuum`
//! binary; it re-exports the crates it is built on, so `continuum::runtime` is
//! `continuum_core::runtime` and `continuum::node` is `continuum_node`:
//!
//! - `continuum-core`: loading, reflecting, sandboxing and calling commands, the host
//!   interfaces, grants, alloys, installs, the event log (nothing in it knows the node);
//! - `continuum-node`: the HTTP API, owner socket and peer authentication ([`node`]) and peers
//!   over iroh ([`grid`]);
//! - `continuum-gpu`: the models behind inference and training.

pub mod cli;
pub mod process;

pub use continuum_core::*;
pub use continuum_node as node;
pub use continuum_node::grid;
