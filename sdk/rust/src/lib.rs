//! Write Continuum commands in Rust.
//!
//! A command is a function exported by a WebAssembly component. Describe it in WIT, generate
//! the export bindings with [`wit_bindgen::generate!`] and map the `continuum:host` interfaces
//! you import onto this crate's bindings with `with`, so that the helpers below and your
//! bindings share one set of types:
//!
//! ```ignore
//! wit_bindgen::generate!({
//!     path: ["../../wit", "wit"],
//!     world: "continuum-plugins:hello/hello",
//!     with: { "continuum:host/log@0.1.0": continuum_sdk::host::log },
//! });
//!
//! struct Hello;
//! impl Guest for Hello {
//!     fn greet(name: String) -> String {
//!         continuum_sdk::log::info(&format!("greeting {name}"));
//!         format!("Hello, {name}!")
//!     }
//! }
//! export!(Hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the result is a component.

pub use wit_bindgen;

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "continuum:host/command",
        pub_export_macro: false,
    });
}

/// The generated bindings of the `continuum:host` interfaces (for `with` in your own bindings).
pub mod host {
    pub use crate::bindings::continuum::host::{commands, events, log, store};
}

/// Structured logging into the host's tracing (tagged with your plugin and command).
pub mod log {
    use crate::host::log::{write, Level};

    /// Logs a debug message.
    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }
    /// Logs an informational message.
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    /// Logs a warning.
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
    /// Logs an error.
    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}

/// The plugin's private key-value store.
pub mod store {
    use crate::host::store as raw;
    pub use crate::host::store::StoreError;

    /// Returns the bytes stored under `key`.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        raw::get(key)
    }
    /// Returns the value under `key` as UTF-8 text (invalid UTF-8 is replaced).
    pub fn get_string(key: &str) -> Result<Option<String>, StoreError> {
        Ok(raw::get(key)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }
    /// Stores `value` under `key`.
    pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), StoreError> {
        raw::set(key, value.as_ref())
    }
    /// Removes `key`; returns whether it existed.
    pub fn delete(key: &str) -> Result<bool, StoreError> {
        raw::delete(key)
    }
    /// Lists up to `limit` keys starting with `prefix`, in byte order.
    pub fn keys(prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        raw::keys(prefix, limit)
    }
}

/// Composition: call other commands as the original caller.
pub mod commands {
    pub use crate::host::commands::CallError;

    /// The host's message inside a call error (it names the command and what went wrong).
    pub fn message(error: &CallError) -> &str {
        match error {
            CallError::UnknownCommand(m)
            | CallError::InvalidParams(m)
            | CallError::CommandFailed(m)
            | CallError::Aborted(m)
            | CallError::Denied(m) => m,
        }
    }

    /// Calls `name` (`plugin/function`) with JSON parameters and returns its JSON result.
    pub fn call(name: &str, params: &serde_json::Value) -> Result<serde_json::Value, CallError> {
        let raw = crate::host::commands::call(name, &params.to_string())?;
        serde_json::from_str(&raw).map_err(|e| CallError::CommandFailed(format!("result is not JSON: {e}")))
    }
}

/// The host's event log.
pub mod events {
    /// Appends an event of `kind` (namespaced by your plugin) with a JSON payload.
    pub fn emit(kind: &str, payload: &serde_json::Value) -> Result<(), String> {
        crate::host::events::emit(kind, &payload.to_string())
    }
}
