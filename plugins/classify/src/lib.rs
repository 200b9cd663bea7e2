//! `classify`: train text classifiers through the host's `training` interface and predict
//! with them. The host embeds the texts, trains the head and keeps it; this plugin shapes
//! requests and reports.

use continuum_sdk::progress;
use continuum_sdk::training::{self, Example as TrainingExample, HeadInfo, Target, Task, TrainRequest, TrainingError};

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "continuum-plugins:classify/classify",
    with: {
        "continuum:host/training@0.1.0": continuum_sdk::host::training,
        "continuum:host/progress@0.1.0": continuum_sdk::host::progress,
    },
});

struct Classify;

fn error(e: TrainingError) -> String {
    training::message(&e).to_string()
}

fn report(head: HeadInfo) -> Report {
    Report {
        name: head.name,
        labels: head.labels,
        train_examples: head.metrics.train_examples,
        validation_examples: head.metrics.validation_examples,
        validation_accuracy: head.metrics.validation_accuracy.unwrap_or(0.0),
        train_loss: head.metrics.train_loss,
        steps: head.metrics.steps,
        milliseconds: head.metrics.milliseconds,
    }
}

fn predict_texts(name: &str, texts: Vec<String>) -> Result<Vec<Prediction>, String> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let predictions = training::predict(name, &texts).map_err(error)?;
    Ok(texts
        .into_iter()
        .zip(predictions)
        .map(|(text, p)| Prediction { text, label: p.label, score: p.score })
        .collect())
}

impl Guest for Classify {
    fn train(
        name: String,
        examples: Vec<Example>,
        epochs: Option<u32>,
        learning_rate: Option<f32>,
        hidden: Option<u32>,
        validation_fraction: Option<f32>,
        seed: Option<u64>,
    ) -> Result<Report, String> {
        let request = TrainRequest {
            name,
            embedding_model: String::new(),
            task: Task::Classification,
            examples: examples
                .into_iter()
                .map(|e| TrainingExample { text: e.text, target: Target::Label(e.label) })
                .collect(),
            epochs: epochs.unwrap_or(150),
            learning_rate: learning_rate.unwrap_or(0.01),
            hidden: hidden.unwrap_or(0),
            validation_fraction: validation_fraction.unwrap_or(0.2),
            seed: seed.unwrap_or(0),
        };
        // The host reports each epoch between these two.
        let _ = progress::report(0.0, &format!("embedding {} examples", request.examples.len()));
        let trained = training::train(&request).map(report).map_err(error)?;
        let _ = progress::report(1.0, &format!("trained `{}`", trained.name));
        Ok(trained)
    }

    fn predict(name: String, texts: Vec<String>) -> Result<Vec<Prediction>, String> {
        predict_texts(&name, texts)
    }

    fn evaluate(name: String, examples: Vec<Example>) -> Result<Evaluation, String> {
        if examples.is_empty() {
            return Err("give at least one labelled example".into());
        }
        let texts = examples.iter().map(|e| e.text.clone()).collect();
        let predictions = predict_texts(&name, texts)?;
        let total = examples.len() as u32;
        let mistakes: Vec<Prediction> =
            predictions.into_iter().zip(&examples).filter(|(p, e)| p.label != e.label).map(|(p, _)| p).collect();
        let correct = total - mistakes.len() as u32;
        Ok(Evaluation { correct, total, accuracy: correct as f32 / total as f32, mistakes })
    }

    fn classifiers() -> Vec<Report> {
        training::heads().into_iter().filter(|h| h.task == Task::Classification).map(report).collect()
    }

    fn forget(name: String) -> Result<bool, String> {
        training::delete(&name).map_err(error)
    }
}

export!(Classify);
