//! The resident engines: models are loaded from the catalog on first use, stay loaded, and are
//! shared by every caller; every computation waits its turn in one [`Queue`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::catalog::{Catalog, ModelEntry, ModelKind};
use crate::embed::Embedder;
use crate::llm::{Completion, GenerateRequest, Llm};
use crate::queue::Queue;
use crate::textstream::Piece;
use crate::train::{Head, Metrics, Prediction, Targets, TrainConfig};
use crate::{InferenceError, ModelError};

/// How the engines use the machine.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// CPU threads per computation.
    pub threads: u32,
    /// Computations allowed at once.
    pub slots: u32,
    /// Context window per generation request, in tokens (capped by the model's own).
    pub context: u32,
}

impl EngineConfig {
    /// The settings for a machine with `cores` cores: up to 8 threads per computation, as many
    /// computations at once as that leaves cores for, a 4 096-token context.
    pub fn for_cores(cores: u32) -> Self {
        let threads = cores.clamp(1, 8);
        EngineConfig { threads, slots: (cores / threads).max(1), context: 4096 }
    }
}

/// Loaded models by id, each with the digests of the files it was loaded from: a model removed
/// and added again under the same id (beside a running node) is loaded afresh, not served from
/// the old copy.
type Resident<T> = HashMap<String, (Vec<String>, Arc<T>)>;

/// The resident copy of `entry`, or the one `load` makes (kept for next time).
fn resident<T, E>(
    models: &Mutex<Resident<T>>,
    entry: &ModelEntry,
    load: impl FnOnce() -> Result<T, E>,
) -> Result<Arc<T>, E> {
    let digests: Vec<String> = entry.files.iter().map(|f| f.sha256.clone()).collect();
    let mut models = lock(models);
    if let Some((loaded_from, model)) = models.get(&entry.id) {
        if *loaded_from == digests {
            return Ok(model.clone());
        }
    }
    let model = Arc::new(load()?);
    models.insert(entry.id.clone(), (digests, model.clone()));
    Ok(model)
}

/// Loaded models and the queue in front of them.
pub struct Engines {
    catalog: Catalog,
    config: EngineConfig,
    llms: Mutex<Resident<Llm>>,
    embedders: Mutex<Resident<Embedder>>,
    queue: Queue,
}

impl Engines {
    /// Engines over the models in `catalog`.
    pub fn new(catalog: Catalog, config: EngineConfig) -> Self {
        Engines {
            catalog,
            queue: Queue::new(config.slots),
            config,
            llms: Mutex::default(),
            embedders: Mutex::default(),
        }
    }

    /// The model catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The engine settings.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// The catalog entry for `id` of `kind`; an empty id means the first model of that kind.
    pub fn resolve(&self, id: &str, kind: ModelKind) -> Result<ModelEntry, ModelError> {
        let entry = if id.is_empty() {
            self.catalog.default_of(kind).ok_or_else(|| ModelError::Unknown {
                id: format!("(any {kind} model)"),
                available: self.catalog.list().unwrap_or_default().into_iter().map(|m| m.id).collect(),
            })?
        } else {
            self.catalog.get(id)?
        };
        if entry.kind != kind {
            return Err(ModelError::WrongKind { id: entry.id, kind: entry.kind, wanted: kind });
        }
        Ok(entry)
    }

    /// The GPU models run on, by name; none when they run on the CPU.
    pub fn gpu_name(&self) -> Option<String> {
        // Opening a CUDA device is not free: asked once per process.
        static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        NAME.get_or_init(|| crate::device().is_cuda().then(|| "CUDA device 0".to_string())).clone()
    }

    /// Ids of the models loaded now.
    pub fn loaded(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.llms).keys().chain(lock(&self.embedders).keys()).cloned().collect();
        ids.sort();
        ids
    }

    /// The language model `id`, loading it (after checking its digests) on first use.
    pub fn llm(&self, id: &str) -> Result<(ModelEntry, Arc<Llm>), InferenceError> {
        let entry = self.resolve(id, ModelKind::Llm)?;
        let llm = resident(&self.llms, &entry, || -> Result<Llm, InferenceError> {
            self.catalog.verify(&entry)?;
            let path = self.catalog.dir(&entry.id).join(crate::catalog::LLM_FILE);
            Llm::load(&path, self.config.context, self.config.threads)
        })?;
        Ok((entry, llm))
    }

    /// The embedding model `id`, loading it on first use.
    pub fn embedder(&self, id: &str) -> Result<(ModelEntry, Arc<Embedder>), InferenceError> {
        let entry = self.resolve(id, ModelKind::Embedding)?;
        let embedder = resident(&self.embedders, &entry, || -> Result<Embedder, InferenceError> {
            self.catalog.verify(&entry)?;
            Ok(Embedder::load(&self.catalog.dir(&entry.id))
                .map_err(|e| ModelError::Unusable { id: entry.id.clone(), reason: format!("{e:#}") })?)
        })?;
        Ok((entry, embedder))
    }

    /// Generates with model `id` once a compute slot is free.
    pub fn generate(
        &self,
        id: &str,
        request: &GenerateRequest,
        on_piece: &mut dyn FnMut(&Piece) -> bool,
    ) -> Result<Completion, InferenceError> {
        let (_, llm) = self.llm(id)?;
        let _slot = self.queue.acquire(request.deadline)?;
        llm.generate(request, on_piece)
    }

    /// Embeds `texts` with model `id` once a compute slot is free.
    pub fn embed(
        &self,
        id: &str,
        texts: &[String],
        deadline: Option<Instant>,
    ) -> Result<Vec<Vec<f32>>, InferenceError> {
        let (_, embedder) = self.embedder(id)?;
        let _slot = self.queue.acquire(deadline)?;
        embedder.embed(texts).map_err(|e| InferenceError::Backend(format!("{e:#}")))
    }

    /// Embeds `texts` with `embedding_model` and trains a head on them, in one compute slot.
    /// `on_epoch(epoch, epochs)` is told before each epoch and stops training by returning
    /// false ([`InferenceError::Cancelled`]). Errors in the data or settings come back as
    /// [`InferenceError::InvalidRequest`].
    pub fn train(
        &self,
        embedding_model: &str,
        texts: &[String],
        targets: &Targets,
        config: &TrainConfig,
        on_epoch: &mut dyn FnMut(u32, u32) -> bool,
    ) -> Result<(Head, Metrics), InferenceError> {
        let (_, embedder) = self.embedder(embedding_model)?;
        let _slot = self.queue.acquire(config.deadline)?;
        let features = embedder.embed(texts).map_err(|e| InferenceError::Backend(format!("{e:#}")))?;
        crate::train::train(config, &features, targets, on_epoch).map_err(|e| match e.downcast::<InferenceError>() {
            Ok(budget) => budget,
            Err(other) => InferenceError::InvalidRequest(format!("{other:#}")),
        })
    }

    /// Predicts for `texts` with `head`, embedding them with `embedding_model`.
    pub fn predict(
        &self,
        embedding_model: &str,
        head: &Head,
        texts: &[String],
        deadline: Option<Instant>,
    ) -> Result<Vec<Prediction>, InferenceError> {
        let (_, embedder) = self.embedder(embedding_model)?;
        let _slot = self.queue.acquire(deadline)?;
        let features = embedder.embed(texts).map_err(|e| InferenceError::Backend(format!("{e:#}")))?;
        head.predict(&features).map_err(|e| InferenceError::InvalidRequest(format!("{e:#}")))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Loads the model at `path` (a .gguf file or an embedding folder) and runs it once. Meant to
/// run in a throwaway child process before a model joins the catalog: llama.cpp aborts the
/// process on some malformed models that pass [`crate::gguf::validate`], and a probe that dies
/// takes only itself down.
pub fn probe(path: &std::path::Path) -> Result<(), InferenceError> {
    if path.is_dir() {
        let embedder = Embedder::load(path).map_err(|e| InferenceError::InvalidModel(format!("{e:#}")))?;
        embedder.embed(&["probe".to_string()]).map_err(|e| InferenceError::Backend(format!("{e:#}")))?;
        return Ok(());
    }
    let llm = Llm::load(path, 64, 1)?;
    let request = GenerateRequest {
        prompt: crate::llm::Prompt::Text("a".into()),
        max_tokens: 1,
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        stop: Vec::new(),
        deadline: None,
    };
    llm.generate(&request, &mut |_| true).map(|_| ())
}
