//! Training with candle: a small head (linear, or one hidden layer) over frozen sentence
//! embeddings, for classification or regression, optimized with AdamW. The result is a
//! safetensors weights artifact carrying its own metadata (task, labels, scaling) and the
//! metrics measured on a held-out split; [`Head::predict`] runs it.
//!
//! Only the head trains: candle's fused layer-norm and softmax have no backward pass, so the
//! BERT encoder stays frozen and its embeddings are the features.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What the head predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// One label out of those seen in training.
    Classification,
    /// A number.
    Regression,
}

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Classification or regression.
    pub task: Task,
    /// Passes over the training split (1 to 10 000).
    pub epochs: u32,
    /// AdamW learning rate (0 < lr ≤ 1).
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Width of the hidden layer; 0 for a linear head.
    pub hidden: u32,
    /// Share of the examples held out to measure the head (0 to 0.5).
    pub validation_fraction: f32,
    /// Seed for the split, the shuffles and the initial weights: same seed, same head.
    pub seed: u64,
    /// When to give up (checked after each epoch).
    pub deadline: Option<Instant>,
}

/// Training targets, one per example.
#[derive(Debug, Clone)]
pub enum Targets {
    /// Class labels (classification).
    Labels(Vec<String>),
    /// Numbers (regression).
    Values(Vec<f32>),
}

/// What training measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    /// Examples used for training.
    pub train_examples: u32,
    /// Examples held out for validation.
    pub validation_examples: u32,
    /// Optimizer steps taken.
    pub steps: u32,
    /// Mean loss over the last epoch.
    pub train_loss: f32,
    /// Loss on the validation split (the training split when none is held out).
    pub validation_loss: f32,
    /// Share of validation examples labelled correctly (classification).
    pub validation_accuracy: Option<f32>,
    /// Mean absolute error on the validation split (regression).
    pub validation_mae: Option<f32>,
    /// Wall time of training, in milliseconds.
    pub milliseconds: u64,
}

/// One prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The predicted label (classification) or empty (regression).
    pub label: String,
    /// The label's probability (classification) or the predicted value (regression).
    pub score: f32,
}

/// A trained head.
#[derive(Debug)]
pub struct Head {
    task: Task,
    labels: Vec<String>,
    /// Regression targets are standardized for training: (mean, std).
    scale: (f32, f32),
    layers: Vec<(Tensor, Tensor)>,
    input_dim: usize,
}

const BATCH: usize = 32;

fn seeded(rng: &mut StdRng, rows: usize, cols: usize, bound: f32, device: &Device) -> Result<Var> {
    let values: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-bound..bound)).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(values, (rows, cols), device)?)?)
}

impl TrainConfig {
    fn check(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.epochs) {
            bail!("epochs must be 1 to 10000, got {}", self.epochs);
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            bail!("learning-rate must be in (0, 1], got {}", self.learning_rate);
        }
        if !(0.0..=0.5).contains(&self.validation_fraction) {
            bail!("validation-fraction must be 0 to 0.5, got {}", self.validation_fraction);
        }
        if self.hidden > 4096 {
            bail!("hidden must be 0 (linear) to 4096, got {}", self.hidden);
        }
        Ok(())
    }
}

/// Trains a head on `features` (one embedding per example) and `targets`.
pub fn train(
    config: &TrainConfig,
    features: &[Vec<f32>],
    targets: &Targets,
    on_epoch: &mut dyn FnMut(u32, u32) -> bool,
) -> Result<(Head, Metrics)> {
    config.check()?;
    let started = Instant::now();
    let n = features.len();
    let count = match targets {
        Targets::Labels(l) => l.len(),
        Targets::Values(v) => v.len(),
    };
    if n < 2 || n != count {
        bail!("training needs at least 2 examples with one target each (got {n} examples, {count} targets)");
    }
    let input_dim = features[0].len();
    if input_dim == 0 || features.iter().any(|f| f.len() != input_dim) {
        bail!("every example must have the same non-zero number of features");
    }
    let (task, labels, y, scale) = encode_targets(config.task, targets)?;
    let device = crate::device();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let held = ((n as f32) * config.validation_fraction).round() as usize;
    let (validation, training) = order.split_at(held.min(n - 1));

    let outputs = if task == Task::Classification { labels.len() } else { 1 };
    let mut vars = Vec::new();
    let mut dims = vec![input_dim];
    if config.hidden > 0 {
        dims.push(config.hidden as usize);
    }
    dims.push(outputs);
    for pair in dims.windows(2) {
        let bound = (1.0 / pair[0] as f32).sqrt();
        vars.push((seeded(&mut rng, pair[1], pair[0], bound, &device)?, seeded(&mut rng, 1, pair[1], bound, &device)?));
    }
    let params = ParamsAdamW { lr: config.learning_rate, weight_decay: config.weight_decay, ..Default::default() };
    let mut optimizer = AdamW::new(vars.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect(), params)?;
    let layers = || vars.iter().map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone())).collect::<Vec<_>>();

    let (mut steps, mut train_loss) = (0u32, 0f32);
    let mut epoch_order = training.to_vec();
    for epoch in 0..config.epochs {
        if config.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(crate::InferenceError::BudgetExceeded(format!(
                "the time budget ran out after {epoch} of {} epochs; train fewer epochs or raise the budget",
                config.epochs
            ))
            .into());
        }
        if !on_epoch(epoch, config.epochs) {
            return Err(crate::InferenceError::Cancelled(format!("{epoch} of {} epochs", config.epochs)).into());
        }
        epoch_order.shuffle(&mut rng);
        let (mut total, mut batches) = (0f32, 0u32);
        for batch in epoch_order.chunks(BATCH) {
            let (x, t) = gather(features, &y, batch, task, &device)?;
            let loss = loss(task, &forward(&layers(), &x)?, &t)?;
            optimizer.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()?;
            batches += 1;
            steps += 1;
        }
        train_loss = total / batches.max(1) as f32;
    }
    let head = Head { task, labels, scale, layers: layers(), input_dim };
    let measured = if validation.is_empty() { training } else { validation };
    let (x, t) = gather(features, &y, measured, task, &device)?;
    let logits = forward(&head.layers, &x)?;
    let validation_loss = loss(task, &logits, &t)?.to_scalar::<f32>()?;
    let (mut accuracy, mut mae) = (None, None);
    match task {
        Task::Classification => {
            let predicted: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
            let truth: Vec<u32> = t.to_vec1()?;
            let right = predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
            accuracy = Some(right as f32 / truth.len() as f32);
        }
        Task::Regression => {
            let predicted: Vec<f32> = logits.squeeze(1)?.to_vec1()?;
            let truth: Vec<f32> = t.squeeze(1)?.to_vec1()?;
            let err: f32 = predicted.iter().zip(&truth).map(|(p, t)| (p - t).abs() * scale.1).sum();
            mae = Some(err / truth.len() as f32);
        }
    }
    let metrics = Metrics {
        train_examples: training.len() as u32,
        validation_examples: validation.len() as u32,
        steps,
        train_loss,
        validation_loss,
        validation_accuracy: accuracy,
        validation_mae: mae,
        milliseconds: started.elapsed().as_millis() as u64,
    };
    Ok((head, metrics))
}

type Encoded = (Task, Vec<String>, Vec<f32>, (f32, f32));

/// Targets as numbers: class indices (labels sorted) or standardized values.
fn encode_targets(task: Task, targets: &Targets) -> Result<Encoded> {
    match (task, targets) {
        (Task::Classification, Targets::Labels(labels)) => {
            let mut classes: Vec<String> = labels.clone();
            classes.sort();
            classes.dedup();
            if classes.len() < 2 {
                bail!("classification needs at least 2 different labels, got {}", classes.len());
            }
            let index: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
            let y = labels.iter().map(|l| index[l.as_str()] as f32).collect();
            Ok((task, classes, y, (0.0, 1.0)))
        }
        (Task::Regression, Targets::Values(values)) => {
            if values.iter().any(|v| !v.is_finite()) {
                bail!("regression targets must be finite numbers");
            }
            let mean = values.iter().sum::<f32>() / values.len() as f32;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32;
            let std = var.sqrt().max(1e-6);
            Ok((task, Vec::new(), values.iter().map(|v| (v - mean) / std).collect(), (mean, std)))
        }
        (Task::Classification, Targets::Values(_)) => bail!("classification needs text labels, not numbers"),
        (Task::Regression, Targets::Labels(_)) => bail!("regression needs numeric targets, not labels"),
    }
}

fn gather(features: &[Vec<f32>], y: &[f32], rows: &[usize], task: Task, device: &Device) -> Result<(Tensor, Tensor)> {
    let dim = features[0].len();
    let x: Vec<f32> = rows.iter().flat_map(|&i| features[i].iter().copied()).collect();
    let x = Tensor::from_vec(x, (rows.len(), dim), device)?;
    let t: Vec<f32> = rows.iter().map(|&i| y[i]).collect();
    let t = match task {
        Task::Classification => Tensor::from_vec(t, rows.len(), device)?.to_dtype(DType::U32)?,
        Task::Regression => Tensor::from_vec(t, (rows.len(), 1), device)?,
    };
    Ok((x, t))
}

fn forward(layers: &[(Tensor, Tensor)], x: &Tensor) -> Result<Tensor> {
    let mut h = x.clone();
    for (i, (w, b)) in layers.iter().enumerate() {
        h = h.matmul(&w.t()?)?.broadcast_add(b)?;
        if i + 1 < layers.len() {
            h = h.relu()?;
        }
    }
    Ok(h)
}

fn loss(task: Task, output: &Tensor, target: &Tensor) -> Result<Tensor> {
    Ok(match task {
        Task::Classification => candle_nn::loss::cross_entropy(output, target)?,
        Task::Regression => candle_nn::loss::mse(output, target)?,
    })
}

impl Head {
    /// What it predicts.
    pub fn task(&self) -> Task {
        self.task
    }

    /// Its labels (classification), sorted.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The feature width it expects.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Predicts for each feature vector.
    pub fn predict(&self, features: &[Vec<f32>]) -> Result<Vec<Prediction>> {
        if features.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(bad) = features.iter().find(|f| f.len() != self.input_dim) {
            bail!("the head expects {} features per example, got {}", self.input_dim, bad.len());
        }
        let device = self.layers[0].0.device().clone();
        let x: Vec<f32> = features.iter().flatten().copied().collect();
        let x = Tensor::from_vec(x, (features.len(), self.input_dim), &device)?;
        let out = forward(&self.layers, &x)?;
        match self.task {
            Task::Classification => {
                let probs: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&out)?.to_vec2()?;
                Ok(probs
                    .iter()
                    .map(|p| {
                        let (best, score) =
                            p.iter().enumerate().fold((0, f32::MIN), |a, (i, &s)| if s > a.1 { (i, s) } else { a });
                        Prediction { label: self.labels[best].clone(), score }
                    })
                    .collect())
            }
            Task::Regression => {
                let values: Vec<f32> = out.squeeze(1)?.to_vec1()?;
                Ok(values
                    .iter()
                    .map(|v| Prediction { label: String::new(), score: v * self.scale.1 + self.scale.0 })
                    .collect())
            }
        }
    }

    /// The head as a safetensors file; task, labels and scaling travel in its metadata.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let mut meta = HashMap::new();
        meta.insert("continuum.task".to_string(), serde_json::to_string(&self.task)?);
        meta.insert("continuum.labels".to_string(), serde_json::to_string(&self.labels)?);
        meta.insert("continuum.scale".to_string(), serde_json::to_string(&[self.scale.0, self.scale.1])?);
        let tensors: Vec<(String, &Tensor)> = self
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, (w, b))| [(format!("layer{i}.weight"), w), (format!("layer{i}.bias"), b)])
            .collect();
        Ok(safetensors::serialize(tensors, Some(meta))?)
    }

    /// Reads a head written by [`Head::to_safetensors`].
    pub fn from_safetensors(bytes: &[u8]) -> Result<Head> {
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).context("not a safetensors file")?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |k: &str| meta.get(k).with_context(|| format!("the head has no `{k}` metadata"));
        let task: Task = serde_json::from_str(field("continuum.task")?)?;
        let labels: Vec<String> = serde_json::from_str(field("continuum.labels")?)?;
        let scale: [f32; 2] = serde_json::from_str(field("continuum.scale")?)?;
        let tensors = candle_core::safetensors::load_buffer(bytes, &crate::device())?;
        let mut layers = Vec::new();
        while let (Some(w), Some(b)) =
            (tensors.get(&format!("layer{}.weight", layers.len())), tensors.get(&format!("layer{}.bias", layers.len())))
        {
            layers.push((w.clone(), b.clone()));
        }
        let (first, last) = match (layers.first(), layers.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => bail!("the head has no layers"),
        };
        let outputs = last.0.dims2()?.0;
        let expected = if task == Task::Classification { labels.len() } else { 1 };
        if outputs != expected {
            bail!("the head has {outputs} outputs but its metadata implies {expected}");
        }
        let input_dim = first.0.dims2()?.1;
        Ok(Head { task, labels, scale: (scale[0], scale[1]), layers, input_dim })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(task: Task) -> TrainConfig {
        TrainConfig {
            task,
            epochs: 60,
            learning_rate: 0.05,
            weight_decay: 0.0,
            hidden: 0,
            validation_fraction: 0.25,
            seed: 7,
            deadline: None,
        }
    }

    #[test]
    fn a_separable_problem_is_learned_and_survives_a_round_trip() {
        // Two clusters in 4-d.
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for i in 0..40 {
            let s = if i % 2 == 0 { 1.0 } else { -1.0 };
            features.push(vec![s + i as f32 * 0.001, s * 0.5, 0.1, -s]);
            labels.push(if s > 0.0 { "pos".to_string() } else { "neg".to_string() });
        }
        let (head, metrics) =
            train(&config(Task::Classification), &features, &Targets::Labels(labels), &mut |_, _| true).unwrap();
        assert_eq!(metrics.validation_accuracy, Some(1.0), "{metrics:?}");
        assert_eq!(metrics.validation_examples, 10);
        let again = Head::from_safetensors(&head.to_safetensors().unwrap()).unwrap();
        let p = again.predict(&[vec![1.0, 0.5, 0.1, -1.0]]).unwrap();
        assert_eq!(p[0].label, "pos");
        assert!(p[0].score > 0.5);
    }

    #[test]
    fn regression_recovers_a_linear_target_in_original_units() {
        let features: Vec<Vec<f32>> = (0..50).map(|i| vec![i as f32 / 50.0, 1.0]).collect();
        let values: Vec<f32> = (0..50).map(|i| 100.0 + 3.0 * i as f32).collect();
        let mut cfg = config(Task::Regression);
        cfg.epochs = 300;
        let (head, metrics) = train(&cfg, &features, &Targets::Values(values), &mut |_, _| true).unwrap();
        assert!(metrics.validation_mae.unwrap() < 10.0, "{metrics:?}");
        let p = head.predict(&[vec![0.5, 1.0]]).unwrap();
        assert!((p[0].score - 175.0).abs() < 10.0, "{p:?}");
    }

    #[test]
    fn bad_requests_are_named() {
        let f = vec![vec![1.0], vec![2.0]];
        let one_label = Targets::Labels(vec!["a".into(), "a".into()]);
        assert!(train(&config(Task::Classification), &f, &one_label, &mut |_, _| true)
            .unwrap_err()
            .to_string()
            .contains("2 different"));
        let mut cfg = config(Task::Classification);
        cfg.epochs = 0;
        let labels = Targets::Labels(vec!["a".into(), "b".into()]);
        assert!(train(&cfg, &f, &labels, &mut |_, _| true).unwrap_err().to_string().contains("epochs"));
        assert!(Head::from_safetensors(b"junk").is_err());
    }
}
