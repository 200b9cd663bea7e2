//! A tiny llama-architecture GGUF with seeded random weights and a small SentencePiece-style
//! vocabulary (bytes plus a few words), written in a few milliseconds. Tests use it to run the
//! real llama.cpp path without a downloaded model; the same seed gives the same file.

use std::path::Path;

use anyhow::Result;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const EMBED: usize = 64;
const HEADS: usize = 4;
const FEED_FORWARD: usize = 128;
const LAYERS: usize = 2;
const CONTEXT: u32 = 256;
const WORDS: [&str; 16] = [
    "hello", "world", "the", "grid", "runs", "wasm", "commands", "and", "peers", "share", "models", "a", "is", "of",
    "to", "in",
];
/// A ChatML template (llama.cpp recognizes it by its markers).
const CHAT_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + \
    message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}\
    {{ '<|im_start|>assistant\\n' }}{% endif %}";

fn vocabulary() -> (Vec<String>, Vec<f32>, Vec<i32>) {
    // Token types: 1 normal, 2 unknown, 3 control, 6 byte.
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    tokens.push("▁".into());
    types.push(1);
    for c in 'a'..='z' {
        tokens.push(c.to_string());
        types.push(1);
    }
    for w in WORDS {
        tokens.push(format!("▁{w}"));
        types.push(1);
    }
    // Longer pieces score higher, so the tokenizer prefers whole words.
    let scores =
        tokens.iter().zip(&types).map(|(t, ty)| if *ty == 1 { t.chars().count() as f32 } else { 0.0 }).collect();
    (tokens, scores, types)
}

fn random(rng: &mut StdRng, shape: &[usize], scale: f32) -> Result<QTensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
    Ok(QTensor::quantize(&Tensor::from_vec(values, shape, &Device::Cpu)?, GgmlDType::F32)?)
}

fn ones(len: usize) -> Result<QTensor> {
    Ok(QTensor::quantize(&Tensor::ones(len, candle_core::DType::F32, &Device::Cpu)?, GgmlDType::F32)?)
}

/// Writes the tiny model to `path`, its weights drawn from `seed`.
pub fn write_tiny_llama(path: &Path, seed: u64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (tokens, scores, types) = vocabulary();
    let vocab = tokens.len();
    let u32v = |v: u32| Value::U32(v);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("general.name", Value::String("continuum-tiny-test".into())),
        ("llama.context_length", u32v(CONTEXT)),
        ("llama.embedding_length", u32v(EMBED as u32)),
        ("llama.block_count", u32v(LAYERS as u32)),
        ("llama.feed_forward_length", u32v(FEED_FORWARD as u32)),
        ("llama.attention.head_count", u32v(HEADS as u32)),
        ("llama.attention.head_count_kv", u32v(HEADS as u32)),
        ("llama.rope.dimension_count", u32v((EMBED / HEADS) as u32)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(tokens.into_iter().map(Value::String).collect())),
        ("tokenizer.ggml.scores", Value::Array(scores.into_iter().map(Value::F32).collect())),
        ("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.unknown_token_id", u32v(0)),
        ("tokenizer.ggml.bos_token_id", u32v(1)),
        ("tokenizer.ggml.eos_token_id", u32v(2)),
        ("tokenizer.chat_template", Value::String(CHAT_TEMPLATE.into())),
    ];
    // candle shapes are (rows, columns); GGUF stores them reversed, as llama.cpp expects.
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), random(&mut rng, &[vocab, EMBED], 0.5)?),
        ("output_norm.weight".into(), ones(EMBED)?),
        ("output.weight".into(), random(&mut rng, &[vocab, EMBED], 0.5)?),
    ];
    for layer in 0..LAYERS {
        let name = |t: &str| format!("blk.{layer}.{t}.weight");
        tensors.push((name("attn_norm"), ones(EMBED)?));
        for t in ["attn_q", "attn_k", "attn_v", "attn_output"] {
            tensors.push((name(t), random(&mut rng, &[EMBED, EMBED], 0.2)?));
        }
        tensors.push((name("ffn_norm"), ones(EMBED)?));
        tensors.push((name("ffn_gate"), random(&mut rng, &[FEED_FORWARD, EMBED], 0.2)?));
        tensors.push((name("ffn_up"), random(&mut rng, &[FEED_FORWARD, EMBED], 0.2)?));
        tensors.push((name("ffn_down"), random(&mut rng, &[EMBED, FEED_FORWARD], 0.2)?));
    }
    let meta_refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path)?;
    gguf_file::write(&mut file, &meta_refs, &tensor_refs)?;
    Ok(())
}
