//! `llm`: text generation and chat over the host's `inference` interface. The answer is read
//! from the host's token stream piece by piece; reasoning (`<think>…</think>`) is kept apart.

use continuum_sdk::inference::{
    self, Completion, FinishReason, GenerateRequest, InferenceError, Message as HostMessage, Prompt,
};

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "continuum-plugins:llm/llm",
    with: { "continuum:host/inference@0.1.0": continuum_sdk::host::inference },
});

struct Llm;

fn finish_name(f: FinishReason) -> &'static str {
    match f {
        FinishReason::EndOfText => "end-of-text",
        FinishReason::MaxTokens => "max-tokens",
        FinishReason::StopSequence => "stop-sequence",
        FinishReason::ContextFull => "context-full",
        FinishReason::Cancelled => "cancelled",
    }
}

fn error(e: InferenceError) -> String {
    inference::message(&e).to_string()
}

/// Runs `request`, reading the stream to the end, and names the model that answered.
fn run(request: GenerateRequest) -> Result<Answer, String> {
    let mut streamed = String::new();
    let done: Completion = inference::stream(&request, |chunk| {
        if !chunk.reasoning {
            streamed.push_str(&chunk.text);
        }
    })
    .map_err(error)?;
    debug_assert_eq!(streamed, done.text);
    let model = if request.model.is_empty() {
        inference::models().into_iter().find(|m| m.kind == inference::ModelKind::Llm).map(|m| m.id).unwrap_or_default()
    } else {
        request.model
    };
    Ok(Answer {
        text: done.text.trim().to_string(),
        reasoning: done.reasoning.trim().to_string(),
        finish: finish_name(done.finish).into(),
        prompt_tokens: done.prompt_tokens,
        tokens: done.completion_tokens,
        tokens_per_second: done.tokens_per_second,
        model,
    })
}

fn message(role: &str, content: &str) -> HostMessage {
    HostMessage { role: role.into(), content: content.into() }
}

impl Guest for Llm {
    fn generate(
        prompt: String,
        max_tokens: Option<u32>,
        temperature: Option<f32>,
        top_p: Option<f32>,
        seed: Option<u64>,
        stop: Option<Vec<String>>,
        system: Option<String>,
        raw: Option<bool>,
        model: Option<String>,
    ) -> Result<Answer, String> {
        if prompt.trim().is_empty() {
            return Err("the prompt is empty; give some text to answer".into());
        }
        let prompt = if raw.unwrap_or(false) {
            Prompt::Text(prompt)
        } else {
            let mut messages: Vec<HostMessage> = system.iter().map(|s| message("system", s)).collect();
            messages.push(message("user", &prompt));
            Prompt::Chat(messages)
        };
        let mut request = inference::request(prompt, max_tokens.unwrap_or(128));
        request.temperature = temperature.unwrap_or(0.0);
        request.top_p = top_p.unwrap_or(0.95);
        request.seed = seed.unwrap_or(0);
        request.stop = stop.unwrap_or_default();
        request.model = model.unwrap_or_default();
        run(request)
    }

    fn chat(
        messages: Vec<Message>,
        max_tokens: Option<u32>,
        temperature: Option<f32>,
        seed: Option<u64>,
        model: Option<String>,
    ) -> Result<Answer, String> {
        if messages.is_empty() {
            return Err("a chat needs at least one message".into());
        }
        let messages = messages.iter().map(|m| message(&m.role, &m.content)).collect();
        let mut request = inference::request(Prompt::Chat(messages), max_tokens.unwrap_or(256));
        request.temperature = temperature.unwrap_or(0.0);
        request.top_p = 0.95;
        request.seed = seed.unwrap_or(0);
        request.model = model.unwrap_or_default();
        run(request)
    }

    fn embed(texts: Vec<String>, model: Option<String>) -> Result<Vec<Vec<f32>>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        inference::embed(&model.unwrap_or_default(), &texts).map_err(error)
    }

    fn models() -> Vec<Model> {
        inference::models()
            .into_iter()
            .map(|m| Model {
                kind: match m.kind {
                    inference::ModelKind::Llm => "llm".into(),
                    inference::ModelKind::Embedding => "embedding".into(),
                },
                id: m.id,
                context_length: m.context_length,
                dimensions: m.dimensions,
                size_bytes: m.size_bytes,
                loaded: m.loaded,
            })
            .collect()
    }
}

export!(Llm);
