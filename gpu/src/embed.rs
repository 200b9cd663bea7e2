//! Sentence embeddings with candle: a BERT model (all-MiniLM-L6-v2 and its kin) loaded from
//! `model.safetensors` + `tokenizer.json` + `config.json`; mean pooling over the attention
//! mask, L2-normalized. Texts are batched by length so padding stays small.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// Texts per forward pass.
const BATCH: usize = 32;
/// Longest input in tokens (sentence-transformers' setting for MiniLM); longer texts are truncated.
pub const MAX_TOKENS: usize = 256;

/// A loaded embedding model.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dimensions: usize,
    device: Device,
}

/// Validates an embedding model folder without loading the weights into a model: the
/// safetensors header, the config and the tokenizer. Returns (architecture, dimensions, max tokens).
pub fn check_files(dir: &Path) -> Result<(String, u64, u64)> {
    let weights = std::fs::read(dir.join("model.safetensors")).context("reading model.safetensors")?;
    let tensors = safetensors::SafeTensors::deserialize(&weights)
        .map_err(|e| anyhow::anyhow!("model.safetensors is not a valid safetensors file: {e}"))?;
    let config = read_config(dir)?;
    let has = |suffix: &str| tensors.names().iter().any(|n| n.ends_with(suffix));
    anyhow::ensure!(
        has("embeddings.word_embeddings.weight"),
        "model.safetensors has no BERT word embeddings (is it a BERT sentence-embedding model?)"
    );
    Tokenizer::from_file(dir.join("tokenizer.json"))
        .map_err(|e| anyhow::anyhow!("tokenizer.json cannot be read: {e}"))?;
    Ok(("bert".into(), config.hidden_size as u64, MAX_TOKENS.min(config.max_position_embeddings) as u64))
}

fn read_config(dir: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(dir.join("config.json")).context("reading config.json")?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("config.json is not a BERT config: {e}"))
}

impl Embedder {
    /// Loads the model in `dir` on the CPU (or the first CUDA device with the `cuda` feature).
    pub fn load(dir: &Path) -> Result<Self> {
        let device = crate::device();
        let config = read_config(dir)?;
        let weights = std::fs::read(dir.join("model.safetensors")).context("reading model.safetensors")?;
        safetensors::SafeTensors::deserialize(&weights)
            .map_err(|e| anyhow::anyhow!("model.safetensors is not a valid safetensors file: {e}"))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config).context("loading the BERT weights")?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| anyhow::anyhow!("tokenizer.json cannot be read: {e}"))?;
        // The file's fixed padding would pad every batch to 128 tokens: pad to the longest instead.
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..Default::default()
            }))
            .map_err(anyhow::Error::msg)?;
        Ok(Embedder { model, tokenizer, dimensions: config.hidden_size, device })
    }

    /// Length of each embedding.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Embeds `texts` (in order): one L2-normalized vector each.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
            for (vector, &i) in self.embed_batch(&batch)?.into_iter().zip(chunk) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(anyhow::Error::msg)?;
        let ids: Vec<Tensor> =
            encodings.iter().map(|e| Tensor::new(e.get_ids(), &self.device)).collect::<candle_core::Result<_>>()?;
        let masks: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), &self.device))
            .collect::<candle_core::Result<_>>()?;
        let ids = Tensor::stack(&ids, 0)?;
        let mask = Tensor::stack(&masks, 0)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?;
        // Mean over the real tokens only.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f32::MAX as f64)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX as f64)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2()?)
    }
}

/// Cosine similarity of two vectors (dot product over the norms; 0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
