//! Text generation with llama.cpp (llama-cpp-2): a GGUF model loaded once and shared, a
//! fresh context per request, sampling with temperature / top-p / seed, the model's own chat
//! template for chat messages, stop sequences, and reasoning split from the answer.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;

use crate::textstream::{Piece, TextStream};
use crate::InferenceError;

/// The process-wide llama.cpp backend (it may be initialized only once).
fn backend() -> Result<&'static LlamaBackend, InferenceError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut b| {
                    // llama.cpp logs every tensor to stderr by default; our errors say what matters.
                    b.void_logs();
                    b
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| InferenceError::Backend(format!("llama.cpp backend failed to start: {e}")))
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

/// What to continue from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Raw text, continued as is.
    Text(String),
    /// A conversation, formatted with the model's chat template.
    Chat(Vec<ChatMessage>),
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Most tokens to generate (at least 1).
    pub max_tokens: u32,
    /// Sampling temperature; 0 picks the most likely token every time (greedy).
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this (0 < p ≤ 1).
    pub top_p: f32,
    /// Seed for sampling; the same seed and request give the same text.
    pub seed: u64,
    /// The answer ends before the first of these.
    pub stop: Vec<String>,
    /// When to give up (the caller's time budget).
    pub deadline: Option<Instant>,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model emitted its end-of-text token.
    EndOfText,
    /// `max_tokens` were generated.
    MaxTokens,
    /// A stop sequence was produced (and removed from the answer).
    StopSequence,
    /// The context window filled up.
    ContextFull,
    /// The consumer stopped reading.
    Cancelled,
}

/// The outcome of a generation.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The answer text (reasoning excluded).
    pub answer: String,
    /// The reasoning (`<think>…</think>`), if the model produced any.
    pub reasoning: String,
    /// Why it ended.
    pub finish: FinishReason,
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Time spent reading the prompt.
    pub prompt_time: Duration,
    /// Time spent generating.
    pub generation_time: Duration,
}

impl Completion {
    /// Generated tokens per second (prompt excluded).
    pub fn tokens_per_second(&self) -> f64 {
        self.completion_tokens as f64 / self.generation_time.as_secs_f64().max(1e-9)
    }
}

/// A loaded GGUF model.
pub struct Llm {
    model: LlamaModel,
    /// llama.cpp mutates the model while creating a context, so contexts are made one at a time.
    context_lock: Mutex<()>,
    context_length: u32,
    threads: i32,
}

/// Tokens per decode batch while reading the prompt.
const PROMPT_BATCH: usize = 512;

impl Llm {
    /// Loads a GGUF file (validated first: llama.cpp aborts on a malformed one), keeping at most
    /// `context` tokens per request and using `threads` CPU threads.
    pub fn load(path: &Path, context: u32, threads: u32) -> Result<Llm, InferenceError> {
        let summary = crate::gguf::validate(path).map_err(|e| InferenceError::InvalidModel(e.to_string()))?;
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(if cfg!(feature = "cuda") { 999 } else { 0 });
        let model = LlamaModel::load_from_file(backend, path, &params)
            .map_err(|e| InferenceError::InvalidModel(format!("llama.cpp could not load {}: {e}", path.display())))?;
        let trained = summary.context_length.unwrap_or(u64::from(model.n_ctx_train())) as u32;
        let context_length = context.min(trained.max(1));
        Ok(Llm { model, context_lock: Mutex::new(()), context_length, threads: threads.max(1) as i32 })
    }

    /// The most tokens (prompt plus output) one request can hold.
    pub fn context_length(&self) -> u32 {
        self.context_length
    }

    /// The prompt as llama.cpp tokens.
    fn tokenize(&self, prompt: &Prompt) -> Result<Vec<llama_cpp_2::token::LlamaToken>, InferenceError> {
        let vocab = self.model.vocab();
        match prompt {
            Prompt::Text(text) => Ok(vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), false)),
            Prompt::Chat(messages) => {
                if messages.is_empty() {
                    return Err(InferenceError::InvalidRequest("chat needs at least one message".into()));
                }
                let template = self.model.chat_template(None).map_err(|_| {
                    InferenceError::InvalidRequest(
                        "this model has no chat template; send a text prompt instead of chat messages".into(),
                    )
                })?;
                let chat = messages
                    .iter()
                    .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| InferenceError::InvalidRequest(format!("a chat message is invalid: {e}")))?;
                let text = self
                    .model
                    .apply_chat_template(&template, &chat, true)
                    .map_err(|e| InferenceError::InvalidRequest(format!("the chat template failed: {e}")))?;
                Ok(vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), true))
            }
        }
    }

    /// Generates for `request`, handing each decoded piece to `on_piece` as it is produced;
    /// `on_piece` returns false to stop early.
    pub fn generate(
        &self,
        request: &GenerateRequest,
        on_piece: &mut dyn FnMut(&Piece) -> bool,
    ) -> Result<Completion, InferenceError> {
        if request.max_tokens == 0 {
            return Err(InferenceError::InvalidRequest("max-tokens must be at least 1".into()));
        }
        if !(request.temperature.is_finite() && (0.0..=5.0).contains(&request.temperature)) {
            return Err(InferenceError::InvalidRequest(format!(
                "temperature must be 0 (greedy) to 5, got {}",
                request.temperature
            )));
        }
        if !(request.top_p > 0.0 && request.top_p <= 1.0) {
            return Err(InferenceError::InvalidRequest(format!("top-p must be in (0, 1], got {}", request.top_p)));
        }
        let backend = backend()?;
        let tokens = self.tokenize(&request.prompt)?;
        let n_ctx = self.context_length;
        if tokens.is_empty() {
            return Err(InferenceError::InvalidRequest("the prompt is empty".into()));
        }
        if tokens.len() as u32 >= n_ctx {
            return Err(InferenceError::PromptTooLong { tokens: tokens.len() as u32, context: n_ctx });
        }
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(PROMPT_BATCH as u32)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let mut ctx = {
            let _guard = self.context_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.model.new_context(backend, params).map_err(|e| InferenceError::Backend(e.to_string()))?
        };
        let backend_err = |e: &dyn std::fmt::Display| InferenceError::Backend(e.to_string());
        let check_deadline = || match request.deadline {
            Some(d) if Instant::now() >= d => Err(InferenceError::BudgetExceeded("the time budget ran out".into())),
            _ => Ok(()),
        };

        let started = Instant::now();
        let mut batch = LlamaBatch::new(PROMPT_BATCH, 1);
        let mut pos = 0i32;
        let chunks = tokens.chunks(PROMPT_BATCH).count();
        for (n, chunk) in tokens.chunks(PROMPT_BATCH).enumerate() {
            check_deadline()?;
            batch.clear();
            for (i, &token) in chunk.iter().enumerate() {
                let last = n + 1 == chunks && i + 1 == chunk.len();
                batch.add(token, pos, &[0], last).map_err(|e| backend_err(&e))?;
                pos += 1;
            }
            ctx.decode(&mut batch).map_err(|e| backend_err(&e))?;
        }
        let prompt_time = started.elapsed();

        let mut sampler = if request.temperature == 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::top_p(request.top_p, 1),
                LlamaSampler::temp(request.temperature),
                LlamaSampler::dist(request.seed as u32),
            ])
        };
        let vocab = self.model.vocab();
        let mut stream = TextStream::new(&request.stop);
        let (mut answer, mut reasoning) = (String::new(), String::new());
        let mut deliver = |pieces: Vec<Piece>, answer: &mut String, reasoning: &mut String| -> bool {
            for piece in pieces {
                match &piece {
                    Piece::Answer(t) => answer.push_str(t),
                    Piece::Reasoning(t) => reasoning.push_str(t),
                }
                if !on_piece(&piece) {
                    return false;
                }
            }
            true
        };
        let generating = Instant::now();
        let mut generated = 0u32;
        let finish = loop {
            if generated >= request.max_tokens {
                break FinishReason::MaxTokens;
            }
            if pos as u32 >= n_ctx {
                break FinishReason::ContextFull;
            }
            check_deadline()?;
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break FinishReason::EndOfText;
            }
            generated += 1;
            let bytes = vocab.token_to_piece(token, true, None);
            if !deliver(stream.push(&bytes), &mut answer, &mut reasoning) {
                break FinishReason::Cancelled;
            }
            if stream.stopped() {
                break FinishReason::StopSequence;
            }
            batch.clear();
            batch.add(token, pos, &[0], true).map_err(|e| backend_err(&e))?;
            pos += 1;
            ctx.decode(&mut batch).map_err(|e| backend_err(&e))?;
        };
        if finish != FinishReason::Cancelled {
            deliver(stream.finish(), &mut answer, &mut reasoning);
        }
        Ok(Completion {
            answer,
            reasoning,
            finish,
            prompt_tokens: tokens.len() as u32,
            completion_tokens: generated,
            prompt_time,
            generation_time: generating.elapsed(),
        })
    }
}
