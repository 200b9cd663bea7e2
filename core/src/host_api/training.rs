//! `continuum:host/training`: heads trained over frozen sentence embeddings, kept in the host's
//! SQLite database under the calling plugin's namespace (as safetensors bytes, with their
//! metrics), so a plugin predicts with its own heads and never sees another plugin's.

use continuum_gpu::train::{Head, Metrics as GpuMetrics, Targets, Task as GpuTask, TrainConfig};
use continuum_gpu::ModelKind;
use rusqlite::{params, Connection, OptionalExtension};
use wasmtime::component::{HasData, Linker};

use super::continuum::host::inference::InferenceError;
use super::continuum::host::training::{
    HeadInfo, Host, Metrics, Prediction, Target, Task, TrainRequest, TrainingError,
};
use super::inference::{to_wit, ModelAccess, Usage};
use super::{CallContext, CallState, Metered, Trappable};
use crate::runtime::watch::CallEvent;

/// Table of every plugin's heads (keyed by namespace: [`purge`] deletes one's).
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "training",
    migrations: &["
CREATE TABLE IF NOT EXISTS heads (
    plugin          TEXT NOT NULL,
    name            TEXT NOT NULL,
    embedding_model TEXT NOT NULL,
    metrics         TEXT NOT NULL,
    weights         BLOB NOT NULL,
    created_ms      INTEGER NOT NULL,
    PRIMARY KEY (plugin, name)
) STRICT;
"],
};

/// Most examples one training request may carry.
pub const MAX_EXAMPLES: usize = 100_000;
/// Most texts one predict request may carry.
pub const MAX_PREDICT: usize = 10_000;

/// Deletes every head of `namespace` (its part of [`crate::registry::purge`]).
pub fn purge(conn: &Connection, namespace: &str) -> anyhow::Result<()> {
    conn.execute("DELETE FROM heads WHERE plugin = ?1", [namespace])?;
    Ok(())
}

/// What `continuum:host/training` sees of a call: the call (its namespace, whose heads it
/// keeps; its plugin and deadline, for the embedding models) and what its tree has spent.
pub struct TrainingHost<'a> {
    /// The call.
    call: &'a CallContext,
    /// What the call's tree has spent on inference (training runs in its time budget).
    usage: &'a Usage,
}

/// The [`HasData`] marker of this interface's view ([`TrainingHost`], behind the host-call
/// budget): the `D` of the generated `add_to_linker`.
pub struct HasTrainingHost;

impl HasData for HasTrainingHost {
    type Data<'a> = Metered<'a, TrainingHost<'a>>;
}

/// Links `continuum:host/training`, each of its calls served by the call's [`TrainingHost`].
pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    super::continuum::host::training::add_to_linker::<_, HasTrainingHost>(linker, project)
}

/// The call's view for this interface, behind the store's host-call budget.
fn project(state: &mut CallState) -> Metered<'_, TrainingHost<'_>> {
    Metered::new(&mut state.host_calls, TrainingHost { call: &state.call, usage: &state.inference })
}

fn from_inference(e: InferenceError) -> TrainingError {
    match e {
        InferenceError::UnknownModel(m) | InferenceError::ModelNotAllowed(m) => TrainingError::UnknownModel(m),
        InferenceError::InvalidRequest(m) | InferenceError::PromptTooLong(m) => TrainingError::InvalidRequest(m),
        InferenceError::BudgetExceeded(m) => TrainingError::BudgetExceeded(m),
        InferenceError::Backend(m) => TrainingError::Backend(m),
    }
}

fn backend(e: impl std::fmt::Display) -> TrainingError {
    TrainingError::Backend(e.to_string())
}

fn check_name(name: &str) -> Result<(), TrainingError> {
    let ok = !name.is_empty() && name.len() <= 128 && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(TrainingError::InvalidRequest(format!("head names are 1 to 128 printable characters, got {name:?}")))
    }
}

fn wit_metrics(m: &GpuMetrics) -> Metrics {
    Metrics {
        train_examples: m.train_examples,
        validation_examples: m.validation_examples,
        steps: m.steps,
        train_loss: m.train_loss,
        validation_loss: m.validation_loss,
        validation_accuracy: m.validation_accuracy,
        validation_mae: m.validation_mae,
        milliseconds: m.milliseconds,
    }
}

/// A stored head row: (embedding model, metrics JSON, weights).
type Row = (String, String, Vec<u8>);

fn info(name: String, (embedding_model, metrics, weights): Row) -> Result<HeadInfo, TrainingError> {
    let head = Head::from_safetensors(&weights).map_err(backend)?;
    let metrics: GpuMetrics = serde_json::from_str(&metrics).map_err(backend)?;
    Ok(HeadInfo {
        name,
        task: match head.task() {
            GpuTask::Classification => Task::Classification,
            GpuTask::Regression => Task::Regression,
        },
        labels: head.labels().to_vec(),
        embedding_model,
        metrics: wit_metrics(&metrics),
        size_bytes: weights.len() as u64,
    })
}

impl TrainingHost<'_> {
    /// The stored row of this namespace's head `name`.
    fn head_row(&self, name: &str) -> Result<Row, TrainingError> {
        let db = self.call.core.db();
        db.query_row(
            "SELECT embedding_model, metrics, weights FROM heads WHERE plugin = ?1 AND name = ?2",
            params![self.call.namespace, name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(backend)?
        .ok_or_else(|| {
            TrainingError::UnknownHead(format!(
                "plugin `{}` has no head named `{name}`; train it first",
                self.call.plugin
            ))
        })
    }

    /// Trains the head `request` describes and keeps it, replacing one of the same name.
    fn train_head(&self, request: TrainRequest) -> Result<HeadInfo, TrainingError> {
        check_name(&request.name)?;
        if request.examples.len() > MAX_EXAMPLES {
            return Err(TrainingError::InvalidRequest(format!("at most {MAX_EXAMPLES} examples per request")));
        }
        let models = ModelAccess::new(self.call, self.usage);
        let model = models.allowed_model(&request.embedding_model, ModelKind::Embedding).map_err(from_inference)?;
        let task = match request.task {
            Task::Classification => GpuTask::Classification,
            Task::Regression => GpuTask::Regression,
        };
        let mut texts = Vec::with_capacity(request.examples.len());
        let (mut labels, mut values) = (Vec::new(), Vec::new());
        for (i, example) in request.examples.into_iter().enumerate() {
            texts.push(example.text);
            match (task, example.target) {
                (GpuTask::Classification, Target::Label(l)) => labels.push(l),
                (GpuTask::Regression, Target::Value(v)) => values.push(v),
                (GpuTask::Classification, Target::Value(_)) => {
                    return Err(TrainingError::InvalidRequest(format!("example {i}: classification needs a label")))
                }
                (GpuTask::Regression, Target::Label(_)) => {
                    return Err(TrainingError::InvalidRequest(format!("example {i}: regression needs a value")))
                }
            }
        }
        let targets = if task == GpuTask::Classification { Targets::Labels(labels) } else { Targets::Values(values) };
        let config = TrainConfig {
            task,
            epochs: request.epochs,
            learning_rate: f64::from(request.learning_rate),
            weight_decay: 0.01,
            hidden: request.hidden,
            validation_fraction: request.validation_fraction,
            seed: request.seed,
            deadline: Some(models.deadline()),
        };
        let engines = self.call.core.engines();
        // Each epoch is reported as progress, and a cancelled call tree stops between epochs.
        let watch = &self.call.watch;
        let mut on_epoch = |epoch: u32, epochs: u32| {
            watch.emit(CallEvent::Progress {
                command: self.call.command.clone(),
                fraction: epoch as f32 / epochs.max(1) as f32,
                message: format!("training `{}`: epoch {} of {epochs}", request.name, epoch + 1),
            });
            !watch.is_cancelled()
        };
        let (head, metrics) = engines
            .train(&model.id, &texts, &targets, &config, &mut on_epoch)
            .map_err(|e| from_inference(to_wit(e)))?;
        let weights = head.to_safetensors().map_err(backend)?;
        let metrics_json = serde_json::to_string(&metrics).map_err(backend)?;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        self.call
            .core
            .db()
            .execute(
                "INSERT OR REPLACE INTO heads (plugin, name, embedding_model, metrics, weights, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![self.call.namespace, request.name, model.id, metrics_json, weights, now],
            )
            .map_err(backend)?;
        info(request.name, (model.id, metrics_json, weights))
    }

    /// Predicts for each of `texts` with this namespace's head `name`.
    fn predict_with(&self, name: &str, texts: Vec<String>) -> Result<Vec<Prediction>, TrainingError> {
        if texts.len() > MAX_PREDICT {
            return Err(TrainingError::InvalidRequest(format!("at most {MAX_PREDICT} texts per request")));
        }
        let (model, _, weights) = self.head_row(name)?;
        // The head was trained on this model's vectors; the operator may since have disallowed it.
        let models = ModelAccess::new(self.call, self.usage);
        models.allowed_model(&model, ModelKind::Embedding).map_err(from_inference)?;
        let head = Head::from_safetensors(&weights).map_err(backend)?;
        let deadline = Some(models.deadline());
        let predictions =
            self.call.core.engines().predict(&model, &head, &texts, deadline).map_err(|e| from_inference(to_wit(e)))?;
        Ok(predictions.into_iter().map(|p| Prediction { label: p.label, score: p.score }).collect())
    }

    /// Every head of this namespace, by name, as stored.
    fn head_rows(&self) -> rusqlite::Result<Vec<(String, Row)>> {
        let db = self.call.core.db();
        let mut stmt =
            db.prepare("SELECT name, embedding_model, metrics, weights FROM heads WHERE plugin = ?1 ORDER BY name")?;
        let rows =
            stmt.query_map(params![self.call.namespace], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?;
        rows.collect()
    }
}

impl Host for Metered<'_, TrainingHost<'_>> {
    fn train(&mut self, request: TrainRequest) -> Result<HeadInfo, Trappable<TrainingError>> {
        let head = self.enter()?.train_head(request)?;
        Ok(head)
    }

    fn predict(&mut self, head: String, texts: Vec<String>) -> Result<Vec<Prediction>, Trappable<TrainingError>> {
        let predictions = self.enter()?.predict_with(&head, texts)?;
        Ok(predictions)
    }

    fn heads(&mut self) -> wasmtime::Result<Vec<HeadInfo>> {
        let rows = self.enter()?.head_rows()?;
        // A head that no longer parses is left out rather than failing the whole list.
        Ok(rows.into_iter().filter_map(|(name, row)| info(name, row).ok()).collect())
    }

    fn weights(&mut self, head: String) -> Result<Vec<u8>, Trappable<TrainingError>> {
        let (_, _, weights) = self.enter()?.head_row(&head)?;
        Ok(weights)
    }

    fn delete(&mut self, head: String) -> Result<bool, Trappable<TrainingError>> {
        let call = self.enter()?.call;
        let deleted = call
            .core
            .db()
            .execute("DELETE FROM heads WHERE plugin = ?1 AND name = ?2", params![call.namespace, head])
            .map_err(backend)?;
        Ok(deleted > 0)
    }

    fn convert_training_error(&mut self, error: Trappable<TrainingError>) -> wasmtime::Result<TrainingError> {
        error.into_wit()
    }
}
