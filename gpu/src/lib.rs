//! Continuum's native AI core, offered to commands through the `continuum:host/inference` and
//! `continuum:host/training` interfaces: text generation with llama.cpp, sentence embeddings and
//! head training with candle, over models kept in a validated catalog and shared by every
//! plugin. Requests go through one queue so concurrent calls never oversubscribe the cores.

pub mod catalog;
pub mod embed;
pub mod engines;
pub mod gguf;
pub mod llm;
pub mod queue;
#[cfg(feature = "testmodel")]
pub mod testmodel;
pub mod textstream;
pub mod train;

pub use catalog::{Catalog, ModelEntry, ModelKind};
pub use engines::{EngineConfig, Engines};

/// A model could not be found or used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    /// No model has this id.
    #[error("no model `{id}` is installed{}; add one with `continuum model add <path> --id {id}`", list(available))]
    Unknown {
        /// The id asked for.
        id: String,
        /// The ids that exist.
        available: Vec<String>,
    },
    /// The model exists but is of another kind.
    #[error("model `{id}` is a {kind} model; this needs a{} {wanted} model", if *wanted == ModelKind::Embedding { "n" } else { "" })]
    WrongKind {
        /// The id.
        id: String,
        /// What it is.
        kind: ModelKind,
        /// What was needed.
        wanted: ModelKind,
    },
    /// The model's files are missing, changed or refused by the engine.
    #[error("model `{id}` cannot be used: {reason}")]
    Unusable {
        /// The id.
        id: String,
        /// Why.
        reason: String,
    },
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        " (none are installed)".into()
    } else {
        format!(" (installed: {})", ids.join(", "))
    }
}

/// Why an inference or training request failed. Each message says how to fix it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    /// The model is unknown, of the wrong kind or unusable.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A model file failed validation (nothing was loaded).
    #[error("{0}")]
    InvalidModel(String),
    /// A request parameter is out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The prompt does not fit in the context window.
    #[error("the prompt is {tokens} tokens but the context holds {context}; shorten the prompt")]
    PromptTooLong {
        /// Tokens in the prompt.
        tokens: u32,
        /// The context window.
        context: u32,
    },
    /// A token or time budget was exceeded.
    #[error("budget exceeded: {0}")]
    BudgetExceeded(String),
    /// The engine failed.
    #[error("inference backend error: {0}")]
    Backend(String),
    /// Whoever started the work stopped it (a job cancelled).
    #[error("cancelled after {0}")]
    Cancelled(String),
}

/// The device models run on: the first CUDA GPU with the `cuda` feature, else the CPU.
pub fn device() -> candle_core::Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = candle_core::Device::new_cuda(0) {
        return d;
    }
    candle_core::Device::Cpu
}
