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
    pub use crate::bindings::continuum::host::{commands, events, inference, log, progress, store, training};
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

/// How far a long command has come, for whoever follows it (a job's status and stream).
pub mod progress {
    /// Reports that `fraction` of the work (0 to 1) is done and what the command is doing.
    /// A report no one follows costs one host call; a fraction outside 0 to 1 is refused.
    pub fn report(fraction: f32, message: &str) -> Result<(), String> {
        crate::host::progress::report(fraction, message)
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

/// Text generation and embeddings on the host's models.
pub mod inference {
    pub use crate::host::inference::{
        Chunk, Completion, FinishReason, GenerateRequest, Generation, InferenceError, Message, ModelInfo, ModelKind,
        Prompt,
    };

    /// The host's message inside an inference error (it says what to fix).
    pub fn message(error: &InferenceError) -> &str {
        match error {
            InferenceError::UnknownModel(m)
            | InferenceError::ModelNotAllowed(m)
            | InferenceError::InvalidRequest(m)
            | InferenceError::PromptTooLong(m)
            | InferenceError::BudgetExceeded(m)
            | InferenceError::Backend(m) => m,
        }
    }

    /// A request with the usual defaults: greedy decoding, no stop sequences, the default model.
    pub fn request(prompt: Prompt, max_tokens: u32) -> GenerateRequest {
        GenerateRequest {
            model: String::new(),
            prompt,
            max_tokens,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            stop: Vec::new(),
        }
    }

    /// Starts a generation; read it with `next()` or wait for it with `finish()`.
    pub fn generate(request: &GenerateRequest) -> Result<Generation, InferenceError> {
        crate::host::inference::generate(request)
    }

    /// Generates and reads the stream to the end, handing each piece to `on_chunk`.
    pub fn stream(request: &GenerateRequest, mut on_chunk: impl FnMut(&Chunk)) -> Result<Completion, InferenceError> {
        let generation = generate(request)?;
        while let Some(chunk) = generation.next()? {
            on_chunk(&chunk);
        }
        generation.finish()
    }

    /// Embeds `texts` (L2-normalized vectors); an empty `model` picks the default.
    pub fn embed(model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, InferenceError> {
        crate::host::inference::embed(model, texts)
    }

    /// The models this plugin may use.
    pub fn models() -> Vec<ModelInfo> {
        crate::host::inference::models()
    }

    /// Cosine similarity of two vectors (0 when either is zero).
    pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let (na, nb) = (norm(a), norm(b));
        if na == 0.0 || nb == 0.0 {
            0.0
        } else {
            dot / (na * nb)
        }
    }
}

/// Training heads over sentence embeddings; heads are kept by the host under your plugin.
pub mod training {
    pub use crate::host::training::{
        delete, heads, predict, train, weights, Example, HeadInfo, Metrics, Prediction, Target, Task, TrainRequest,
        TrainingError,
    };

    /// The host's message inside a training error.
    pub fn message(error: &TrainingError) -> &str {
        match error {
            TrainingError::UnknownHead(m)
            | TrainingError::UnknownModel(m)
            | TrainingError::InvalidRequest(m)
            | TrainingError::BudgetExceeded(m)
            | TrainingError::Backend(m) => m,
        }
    }
}
