//! The engines on real llama.cpp and candle: a tiny generated llama model always, and the real
//! SmolLM2 / all-MiniLM-L6-v2 when `scripts/fetch-models.sh` has put them in `build/models`
//! (skipped with a printed reason otherwise).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use continuum_gpu::llm::{ChatMessage, FinishReason, GenerateRequest, Prompt};
use continuum_gpu::textstream::Piece;
use continuum_gpu::{Catalog, EngineConfig, Engines, InferenceError, ModelError, ModelKind};

fn engines(dir: &Path) -> Engines {
    Engines::new(Catalog::new(dir.join("models")), EngineConfig { threads: 1, slots: 1, context: 4096 })
}

fn tiny(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.gguf");
    continuum_gpu::testmodel::write_tiny_llama(&path, 42).unwrap();
    path
}

fn request(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: Prompt::Text(prompt.into()),
        max_tokens,
        temperature: 0.0,
        top_p: 1.0,
        seed: 1,
        stop: Vec::new(),
        deadline: None,
    }
}

fn real_models() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/models");
    if dir.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").is_file() && dir.join("minilm/model.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: the real models are not in build/models (run scripts/fetch-models.sh)");
        None
    }
}

#[test]
fn the_tiny_model_generates_deterministically_and_streams_what_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let engines = engines(dir.path());
    engines.catalog().add("tiny", &tiny(dir.path())).unwrap();
    let mut streamed = String::new();
    let first = engines
        .generate("tiny", &request("hello world", 12), &mut |p| {
            if let Piece::Answer(t) = p {
                streamed.push_str(t);
            }
            true
        })
        .unwrap();
    let second = engines.generate("tiny", &request("hello world", 12), &mut |_| true).unwrap();
    assert_eq!(first.answer, second.answer, "greedy decoding is deterministic");
    assert_eq!(first.answer, streamed, "the streamed pieces make up the answer");
    assert!(first.prompt_tokens >= 2);
    assert!(first.completion_tokens <= 12);
    if first.finish == FinishReason::MaxTokens {
        assert_eq!(first.completion_tokens, 12);
    }
    // A different seed at a high temperature is still bounded by max_tokens.
    let mut hot = request("the grid", 5);
    hot.temperature = 1.5;
    hot.seed = 99;
    assert!(engines.generate("tiny", &hot, &mut |_| true).unwrap().completion_tokens <= 5);
    assert_eq!(engines.loaded(), vec!["tiny".to_string()]);
}

#[test]
fn chat_messages_use_the_model_template_and_stopping_early_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let engines = engines(dir.path());
    engines.catalog().add("tiny", &tiny(dir.path())).unwrap();
    let mut chat = request("", 8);
    chat.prompt = Prompt::Chat(vec![ChatMessage { role: "user".into(), content: "hello".into() }]);
    let done = engines.generate("tiny", &chat, &mut |_| true).unwrap();
    assert!(done.prompt_tokens > 5, "the ChatML markers are part of the prompt: {}", done.prompt_tokens);
    let mut pieces = 0;
    let cancelled = engines
        .generate("tiny", &request("hello", 50), &mut |_| {
            pieces += 1;
            false
        })
        .unwrap();
    if cancelled.completion_tokens > 0 && pieces > 0 {
        assert_eq!(cancelled.finish, FinishReason::Cancelled);
    }
}

#[test]
fn bad_requests_get_named_errors_and_the_model_stays_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let engines = engines(dir.path());
    engines.catalog().add("tiny", &tiny(dir.path())).unwrap();
    let err = |r: GenerateRequest| engines.generate("tiny", &r, &mut |_| true).unwrap_err();
    assert!(matches!(err(request("hello", 0)), InferenceError::InvalidRequest(m) if m.contains("max-tokens")));
    let mut hot = request("hello", 1);
    hot.temperature = f32::NAN;
    assert!(matches!(err(hot), InferenceError::InvalidRequest(m) if m.contains("temperature")));
    let long = "hello world ".repeat(300);
    assert!(matches!(err(request(&long, 4)), InferenceError::PromptTooLong { context: 256, .. }));
    let mut late = request("hello", 4);
    late.deadline = Some(Instant::now() - Duration::from_millis(1));
    assert!(matches!(err(late), InferenceError::BudgetExceeded(_)));
    match engines.generate("nope", &request("x", 1), &mut |_| true).unwrap_err() {
        InferenceError::Model(ModelError::Unknown { available, .. }) => assert_eq!(available, vec!["tiny"]),
        other => panic!("{other}"),
    }
    match engines.embed("tiny", &["x".into()], None).unwrap_err() {
        InferenceError::Model(ModelError::WrongKind { wanted: ModelKind::Embedding, .. }) => {}
        other => panic!("{other}"),
    }
    // Still loaded and working after every refusal.
    assert_eq!(engines.generate("tiny", &request("hello", 2), &mut |_| true).unwrap().completion_tokens, 2);
}

#[test]
fn malformed_gguf_files_are_refused_before_llama_cpp_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(tiny(dir.path())).unwrap();
    let catalog = Catalog::new(dir.path().join("models"));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not gguf", b"this is not a model at all".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("header only", good[..64].to_vec()),
        ("huge count", {
            let mut b = good.clone();
            b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        ("bad version", {
            let mut b = good.clone();
            b[4..8].copy_from_slice(&99u32.to_le_bytes());
            b
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(format!("{}.gguf", name.replace(' ', "-")));
        std::fs::write(&path, &bytes).unwrap();
        assert!(continuum_gpu::gguf::validate(&path).is_err(), "{name} passed validation");
        let err = catalog.add("bad", &path).unwrap_err().to_string();
        assert!(err.contains("not a usable GGUF model"), "{name}: {err}");
        assert!(continuum_gpu::llm::Llm::load(&path, 512, 1).is_err(), "{name} loaded");
    }
    assert!(catalog.list().unwrap().is_empty(), "nothing refused was added");
}

#[test]
fn the_catalog_adds_lists_verifies_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::new(dir.path().join("models"));
    let entry = catalog.add("tiny", &tiny(dir.path())).unwrap();
    assert_eq!((entry.kind, entry.architecture.as_str(), entry.context_length), (ModelKind::Llm, "llama", 256));
    assert!(catalog.add("tiny", &tiny(dir.path())).unwrap_err().to_string().contains("already exists"));
    assert!(catalog.add("Bad Id", &tiny(dir.path())).unwrap_err().to_string().contains("must be"));
    catalog.verify(&entry).unwrap();
    std::fs::write(catalog.dir("tiny").join("model.gguf"), b"tampered").unwrap();
    assert!(catalog.verify(&entry).unwrap_err().to_string().contains("changed since it was added"));
    catalog.remove("tiny").unwrap();
    assert!(catalog.list().unwrap().is_empty());
    assert!(matches!(catalog.remove("tiny"), Err(ModelError::Unknown { .. })));
}

#[test]
fn smollm2_answers_a_chat_question() {
    let Some(models) = real_models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let engines = engines(dir.path());
    engines.catalog().add("smollm2", &models.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let mut chat = request("", 24);
    chat.prompt =
        Prompt::Chat(vec![ChatMessage { role: "user".into(), content: "What is the capital of France?".into() }]);
    let done = engines.generate("smollm2", &chat, &mut |_| true).unwrap();
    assert!(done.answer.contains("Paris"), "{:?}", done.answer);
    assert!(!done.answer.contains("<|im_end|>"));
}

#[test]
fn minilm_matches_the_published_reference_embedding() {
    let Some(models) = real_models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let engines = engines(dir.path());
    let entry = engines.catalog().add("minilm", &models.join("minilm")).unwrap();
    assert_eq!((entry.kind, entry.dimensions), (ModelKind::Embedding, 384));
    let texts = vec!["This is an example sentence".to_string(), "Each sentence is converted".to_string()];
    let vectors = engines.embed("minilm", &texts, None).unwrap();
    let reference = [0.0677, 0.0635, 0.0487, 0.0793];
    for (got, want) in vectors[0].iter().zip(reference) {
        assert!((got - want).abs() < 1e-3, "{:?}", &vectors[0][..4]);
    }
    let norm: f32 = vectors[1].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    // Alone or batched, the same text gets the same vector.
    let alone = engines.embed("minilm", &texts[..1], None).unwrap();
    assert!(continuum_gpu::embed::cosine(&alone[0], &vectors[0]) > 0.9999);
}
