//! `continuum:host/training`: heads trained over frozen sentence embeddings, kept in the host's
//! SQLite database under the calling plugin's namespace (as safetensors bytes, with their
//! metrics), so a plugin predicts with its own heads and never sees another plugin's.

use continuum_gpu::train::{Head, Metrics as GpuMetrics, Targets, Task as GpuTask, TrainConfig};
use continuum_gpu::ModelKind;
use rusqlite::{params, OptionalExtension};

use super::continuum::host::inference::InferenceError;
use super::continuum::host::training::{
    HeadInfo, Host, Metrics, Prediction, Target, Task, TrainRequest, TrainingError,
};
use super::inference::to_wit;
use super::CallState;

/// Table of every plugin's heads (keyed by namespace: [`crate::registry::purge`] deletes one's).
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

impl CallState {
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

    fn train_head(&mut self, request: TrainRequest) -> Result<HeadInfo, TrainingError> {
        check_name(&request.name)?;
        if request.examples.len() > MAX_EXAMPLES {
            return Err(TrainingError::InvalidRequest(format!("at most {MAX_EXAMPLES} examples per request")));
        }
        let model = self.allowed_model(&request.embedding_model, ModelKind::Embedding).map_err(from_inference)?;
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
            deadline: Some(self.inference_deadline()),
        };
        let engines = self.call.core.engines();
        let (head, metrics) =
            engines.train(&model.id, &texts, &targets, &config).map_err(|e| from_inference(to_wit(e)))?;
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

    fn predict_with(&mut self, name: &str, texts: Vec<String>) -> Result<Vec<Prediction>, TrainingError> {
        if texts.len() > MAX_PREDICT {
            return Err(TrainingError::InvalidRequest(format!("at most {MAX_PREDICT} texts per request")));
        }
        let (model, _, weights) = self.head_row(name)?;
        // The head was trained on this model's vectors; the operator may since have disallowed it.
        self.allowed_model(&model, ModelKind::Embedding).map_err(from_inference)?;
        let head = Head::from_safetensors(&weights).map_err(backend)?;
        let deadline = Some(self.inference_deadline());
        let predictions =
            self.call.core.engines().predict(&model, &head, &texts, deadline).map_err(|e| from_inference(to_wit(e)))?;
        Ok(predictions.into_iter().map(|p| Prediction { label: p.label, score: p.score }).collect())
    }
}

impl Host for CallState {
    fn train(&mut self, request: TrainRequest) -> wasmtime::Result<Result<HeadInfo, TrainingError>> {
        self.host_call()?;
        Ok(self.train_head(request))
    }

    fn predict(
        &mut self,
        head: String,
        texts: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Prediction>, TrainingError>> {
        self.host_call()?;
        Ok(self.predict_with(&head, texts))
    }

    fn heads(&mut self) -> wasmtime::Result<Vec<HeadInfo>> {
        self.host_call()?;
        let rows: Vec<(String, Row)> = {
            let db = self.call.core.db();
            let mut stmt = db
                .prepare("SELECT name, embedding_model, metrics, weights FROM heads WHERE plugin = ?1 ORDER BY name")?;
            let rows =
                stmt.query_map(params![self.call.namespace], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?;
            rows.collect::<Result<_, _>>()?
        };
        // A head that no longer parses is left out rather than failing the whole list.
        Ok(rows.into_iter().filter_map(|(name, row)| info(name, row).ok()).collect())
    }

    fn weights(&mut self, head: String) -> wasmtime::Result<Result<Vec<u8>, TrainingError>> {
        self.host_call()?;
        Ok(self.head_row(&head).map(|(_, _, weights)| weights))
    }

    fn delete(&mut self, head: String) -> wasmtime::Result<Result<bool, TrainingError>> {
        self.host_call()?;
        let db = self.call.core.db();
        Ok(db
            .execute("DELETE FROM heads WHERE plugin = ?1 AND name = ?2", params![self.call.namespace, head])
            .map(|n| n > 0)
            .map_err(backend))
    }
}
