//! `continuum:host/inference`: text generation (streamed through a `generation` resource) and
//! embeddings on the resident models. Policy lives here: which models the calling plugin may
//! use (`[plugins.X.inference] models`), and the token and time budgets of each top-level
//! call, shared by every call nested in it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use continuum_gpu::llm::{
    ChatMessage, Completion, FinishReason as GpuFinish, GenerateRequest as GpuRequest, Prompt as GpuPrompt,
};
use continuum_gpu::textstream::Piece;
use continuum_gpu::{ModelEntry, ModelError, ModelKind as GpuKind};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::continuum::host::inference::{
    Chunk, Completion as WitCompletion, FinishReason, GenerateRequest, Host, HostGeneration, InferenceError, ModelInfo,
    ModelKind, Prompt,
};
use super::{CallContext, CallState, Metered, Trappable};
use crate::config::ModelPolicy;
use crate::runtime::watch::{CallEvent, Cancelled, Watch, CANCEL_CHECK};

/// What one call tree — a top-level call and every call nested in it through
/// `commands.call` — has spent on inference so far. The tree shares it, so a command cannot
/// buy a fresh budget by calling another (or itself).
#[derive(Debug)]
pub struct Usage {
    /// Tokens reserved by `generate` requests.
    tokens: AtomicU32,
    /// When the top-level call started (every time budget in the tree runs from here).
    started: Instant,
}

impl Default for Usage {
    fn default() -> Self {
        Usage { tokens: AtomicU32::new(0), started: Instant::now() }
    }
}

impl Usage {
    /// Reserves `tokens` if the tree's total stays within `max`; otherwise the tokens left.
    fn reserve(&self, tokens: u32, max: u32) -> Result<(), u32> {
        self.tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |spent| {
                spent.checked_add(tokens).filter(|total| *total <= max)
            })
            .map(|_| ())
            .map_err(|spent| max.saturating_sub(spent))
    }

    /// Gives back `tokens` reserved for a generation that never started.
    fn release(&self, tokens: u32) {
        self.tokens.fetch_sub(tokens, Ordering::Relaxed);
    }
}

enum Event {
    Piece(Piece),
    Done(Result<Completion, continuum_gpu::InferenceError>),
}

/// A generation running on a worker thread, read by the plugin through the resource.
pub struct Generation {
    events: Receiver<Event>,
    cancel: Arc<AtomicBool>,
    outcome: Option<Result<Completion, InferenceError>>,
    deadline: Instant,
    /// The call tree's watch: cancelling it ends the generation.
    watch: Arc<Watch>,
}

/// The engines' error as the WIT variant.
pub fn to_wit(e: continuum_gpu::InferenceError) -> InferenceError {
    use continuum_gpu::InferenceError as E;
    let text = e.to_string();
    match e {
        E::Model(ModelError::Unknown { .. } | ModelError::WrongKind { .. }) => InferenceError::UnknownModel(text),
        E::InvalidRequest(_) => InferenceError::InvalidRequest(text),
        E::PromptTooLong { .. } => InferenceError::PromptTooLong(text),
        E::BudgetExceeded(_) => InferenceError::BudgetExceeded(text),
        E::Model(ModelError::Unusable { .. }) | E::InvalidModel(_) | E::Backend(_) | E::Cancelled(_) => {
            InferenceError::Backend(text)
        }
    }
}

/// What `continuum:host/inference` sees of a call: the call (its plugin, its deadline), what
/// its tree has spent, and the generations it reads.
pub struct InferenceHost<'a> {
    /// The call.
    call: &'a CallContext,
    /// What the call's tree has spent on inference.
    usage: &'a Usage,
    /// The store's resource table, where the call's generations are.
    generations: &'a mut ResourceTable,
}

/// The [`HasData`] marker of this interface's view ([`InferenceHost`], behind the host-call
/// budget): the `D` of the generated `add_to_linker`.
pub struct HasInferenceHost;

impl HasData for HasInferenceHost {
    type Data<'a> = Metered<'a, InferenceHost<'a>>;
}

/// Links `continuum:host/inference`, each of its calls served by the call's [`InferenceHost`].
pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    super::continuum::host::inference::add_to_linker::<_, HasInferenceHost>(linker, project)
}

/// The call's view for this interface, behind the store's host-call budget.
fn project(state: &mut CallState) -> Metered<'_, InferenceHost<'_>> {
    Metered::new(
        &mut state.host_calls,
        InferenceHost { call: &state.call, usage: &state.inference, generations: &mut state.table },
    )
}

/// What a call may do with the resident models: which its plugin may use (its policy, resolved
/// once when the plugin was loaded) and until when. Inference and training both go through it.
pub struct ModelAccess<'a> {
    /// The call.
    call: &'a CallContext,
    /// What the call's tree has spent on inference.
    usage: &'a Usage,
    /// The model policy of the call's plugin.
    policy: &'a ModelPolicy,
}

impl<'a> ModelAccess<'a> {
    /// The access of `call`, whose tree has spent `usage`.
    pub fn new(call: &'a CallContext, usage: &'a Usage) -> Self {
        ModelAccess { call, usage, policy: &call.models }
    }

    /// When this call's inference must end: its own deadline or the time budget, if sooner
    /// (the budget runs from the start of the top-level call, shared down the nesting).
    pub fn deadline(&self) -> Instant {
        self.call.deadline.min(self.usage.started + Duration::from_secs(self.policy.max_seconds_per_call))
    }

    /// Resolves model `id` of `kind` for the calling plugin: the model must exist and be allowed.
    /// An empty id picks the first model of that kind the plugin may use.
    pub fn allowed_model(&self, id: &str, kind: GpuKind) -> Result<ModelEntry, InferenceError> {
        let (policy, plugin) = (&self.policy, &self.call.plugin);
        let engines = self.call.core.engines();
        let entry = if id.is_empty() && policy.models.is_some() {
            let all = engines.catalog().list().map_err(|e| InferenceError::Backend(e.to_string()))?;
            all.into_iter().find(|m| m.kind == kind && policy.allows(&m.id)).ok_or_else(|| {
                InferenceError::ModelNotAllowed(format!(
                    "plugin `{plugin}` may use no installed {kind} model; allow one in continuum.toml under \
                     [plugins.{plugin}.inference] models"
                ))
            })?
        } else {
            engines.resolve(id, kind).map_err(|e| to_wit(e.into()))?
        };
        if !policy.allows(&entry.id) {
            return Err(InferenceError::ModelNotAllowed(format!(
                "plugin `{plugin}` may not use model `{}`; add it to [plugins.{plugin}.inference] models in \
                 continuum.toml",
                entry.id
            )));
        }
        Ok(entry)
    }

    /// Reserves the request's tokens from the tree's budget and starts generating.
    fn start_generation(&self, request: GenerateRequest) -> Result<Generation, InferenceError> {
        let entry = self.allowed_model(&request.model, GpuKind::Llm)?;
        let tokens = request.max_tokens;
        self.usage.reserve(tokens, self.policy.max_tokens_per_call).map_err(|left| {
            InferenceError::BudgetExceeded(format!(
                "max-tokens {tokens} is more than the {left} tokens left of the budget of {} that this call \
                 shares with the calls it nests and the call that nests it (raise max-tokens-per-call under \
                 [inference] or [plugins.{}.inference] in continuum.toml)",
                self.policy.max_tokens_per_call, self.call.plugin
            ))
        })?;
        let started = self.launch(entry, request);
        if started.is_err() {
            // A generation that never started costs nothing.
            self.usage.release(tokens);
        }
        started
    }

    /// Loads the model of `entry` (or finds it loaded) and starts generating on a worker thread.
    fn launch(&self, entry: ModelEntry, request: GenerateRequest) -> Result<Generation, InferenceError> {
        let deadline = self.deadline();
        let gpu_request = GpuRequest {
            prompt: match request.prompt {
                Prompt::Text(t) => GpuPrompt::Text(t),
                Prompt::Chat(messages) => GpuPrompt::Chat(
                    messages.into_iter().map(|m| ChatMessage { role: m.role, content: m.content }).collect(),
                ),
            },
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            top_p: request.top_p,
            seed: request.seed,
            stop: request.stop,
            deadline: Some(deadline),
        };
        let engines = self.call.core.clone();
        engines.engines().llm(&entry.id).map_err(to_wit)?;
        let (tx, rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        std::thread::Builder::new()
            .name(format!("generate-{}", entry.id))
            .spawn(move || {
                let result = engines.engines().generate(&entry.id, &gpu_request, &mut |piece| {
                    !stop.load(Ordering::Relaxed) && tx.send(Event::Piece(piece.clone())).is_ok()
                });
                let _ = tx.send(Event::Done(result));
            })
            .map_err(|e| InferenceError::Backend(format!("cannot start a generation thread: {e}")))?;
        Ok(Generation { events: rx, cancel, outcome: None, deadline, watch: self.call.watch.clone() })
    }
}

impl Generation {
    /// The next event, waiting at most until the deadline, and looking every
    /// [`CANCEL_CHECK`] whether the call tree was cancelled.
    fn recv(&mut self) -> Option<Piece> {
        if self.outcome.is_some() {
            return None;
        }
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left.min(CANCEL_CHECK)) {
                Ok(Event::Piece(p)) => return Some(p),
                Ok(Event::Done(result)) => self.outcome = Some(result.map_err(to_wit)),
                Err(RecvTimeoutError::Timeout) if self.watch.is_cancelled() => {
                    self.cancel.store(true, Ordering::Relaxed);
                    self.outcome = Some(Err(InferenceError::Backend(Cancelled.to_string())));
                }
                Err(RecvTimeoutError::Timeout) if left > CANCEL_CHECK => continue,
                Err(RecvTimeoutError::Timeout) => {
                    self.cancel.store(true, Ordering::Relaxed);
                    self.outcome = Some(Err(InferenceError::BudgetExceeded(
                        "the call's time budget ran out while generating".into(),
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.outcome = Some(Err(InferenceError::Backend("the generation stopped unexpectedly".into())));
                }
            }
            return None;
        }
    }
}

fn finish_reason(f: GpuFinish) -> FinishReason {
    match f {
        GpuFinish::EndOfText => FinishReason::EndOfText,
        GpuFinish::MaxTokens => FinishReason::MaxTokens,
        GpuFinish::StopSequence => FinishReason::StopSequence,
        GpuFinish::ContextFull => FinishReason::ContextFull,
        GpuFinish::Cancelled => FinishReason::Cancelled,
    }
}

impl InferenceHost<'_> {
    /// The generation's next piece, also reported to the call tree's watch.
    fn pull(&mut self, generation: &Resource<Generation>) -> wasmtime::Result<Option<Piece>> {
        let piece = self.generations.get_mut(generation)?.recv();
        if piece.is_some() {
            self.call.watch.count_generated();
        }
        if let (Some(p), true) = (&piece, self.call.watch.observed()) {
            let (text, reasoning) = match p {
                Piece::Answer(t) => (t.clone(), false),
                Piece::Reasoning(t) => (t.clone(), true),
            };
            self.call.watch.emit(CallEvent::Token { command: self.call.command.clone(), text, reasoning });
        }
        Ok(piece)
    }
}

impl HostGeneration for Metered<'_, InferenceHost<'_>> {
    fn next(&mut self, generation: Resource<Generation>) -> Result<Option<Chunk>, Trappable<InferenceError>> {
        let host = self.enter()?;
        match host.pull(&generation)? {
            Some(Piece::Answer(text)) => Ok(Some(Chunk { text, reasoning: false })),
            Some(Piece::Reasoning(text)) => Ok(Some(Chunk { text, reasoning: true })),
            None => match &host.generations.get(&generation)?.outcome {
                Some(Err(e)) => Err(e.clone().into()),
                _ => Ok(None),
            },
        }
    }

    fn finish(&mut self, generation: Resource<Generation>) -> Result<WitCompletion, Trappable<InferenceError>> {
        let host = self.enter()?;
        while host.pull(&generation)?.is_some() {}
        let c = match host.generations.get(&generation)?.outcome.clone() {
            Some(outcome) => outcome?,
            None => return Err(InferenceError::Backend("the generation ended without a result".into()).into()),
        };
        Ok(WitCompletion {
            tokens_per_second: c.tokens_per_second() as f32,
            text: c.answer,
            reasoning: c.reasoning,
            finish: finish_reason(c.finish),
            prompt_tokens: c.prompt_tokens,
            completion_tokens: c.completion_tokens,
        })
    }

    fn drop(&mut self, generation: Resource<Generation>) -> wasmtime::Result<()> {
        let generation = self.for_destructor().generations.delete(generation)?;
        generation.cancel.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Host for Metered<'_, InferenceHost<'_>> {
    fn generate(&mut self, request: GenerateRequest) -> Result<Resource<Generation>, Trappable<InferenceError>> {
        let host = self.enter()?;
        let generation = ModelAccess::new(host.call, host.usage).start_generation(request)?;
        Ok(host.generations.push(generation)?)
    }

    fn embed(&mut self, model: String, texts: Vec<String>) -> Result<Vec<Vec<f32>>, Trappable<InferenceError>> {
        let host = self.enter()?;
        let access = ModelAccess::new(host.call, host.usage);
        let entry = access.allowed_model(&model, GpuKind::Embedding)?;
        let deadline = access.deadline();
        Ok(host.call.core.engines().embed(&entry.id, &texts, Some(deadline)).map_err(to_wit)?)
    }

    fn models(&mut self) -> wasmtime::Result<Vec<ModelInfo>> {
        let host = self.enter()?;
        let access = ModelAccess::new(host.call, host.usage);
        let engines = host.call.core.engines();
        let loaded = engines.loaded();
        let all = engines.catalog().list().unwrap_or_default();
        Ok(all
            .into_iter()
            .filter(|m| access.policy.allows(&m.id))
            .map(|m| ModelInfo {
                kind: match m.kind {
                    GpuKind::Llm => ModelKind::Llm,
                    GpuKind::Embedding => ModelKind::Embedding,
                },
                context_length: m.context_length.min(u32::MAX as u64) as u32,
                dimensions: m.dimensions as u32,
                size_bytes: m.bytes(),
                loaded: loaded.contains(&m.id),
                id: m.id,
            })
            .collect())
    }

    fn convert_inference_error(&mut self, error: Trappable<InferenceError>) -> wasmtime::Result<InferenceError> {
        error.into_wit()
    }
}
