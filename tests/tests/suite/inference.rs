//! The `inference` and `training` host interfaces through the `llm`, `rag` and `classify`
//! plugins: a tiny generated llama model always; the real SmolLM2 and MiniLM when
//! `scripts/fetch-models.sh` has fetched them (skipped with a printed reason otherwise).

use continuum::{CallError, InstallOptions};
use continuum_tests::{plugin_dir, real_models, stderr, stdout, TestHost, ONE_THREAD};
use serde_json::{json, Value};

fn with_tiny(plugins: &[&str], config: &str) -> TestHost {
    let h = TestHost::with_config(plugins, &format!("{ONE_THREAD}{config}"));
    let model = h.dir.path().join("tiny.gguf");
    continuum_gpu::testmodel::write_tiny_llama(&model, 42).unwrap();
    h.host.core().engines().catalog().add("tiny", &model).unwrap();
    h
}

fn with_real(plugins: &[&str]) -> Option<TestHost> {
    let (llm, embed) = real_models()?;
    let h = TestHost::with_config(plugins, ONE_THREAD);
    let catalog = h.host.core().engines().catalog();
    catalog.add("smollm2", &llm).unwrap();
    catalog.add("minilm", &embed).unwrap();
    Some(h)
}

fn failure(r: Result<Value, CallError>) -> String {
    match r {
        Err(CallError::CommandFailed { error, .. }) => error.as_str().unwrap_or_default().to_string(),
        other => panic!("expected a command error, got {other:?}"),
    }
}

#[test]
fn a_plugin_generates_through_the_host_stream_deterministically() {
    let h = with_tiny(&["llm"], "");
    let params = json!({ "prompt": "hello world", "raw": true, "max-tokens": 10 });
    let first = h.call("llm/generate", params.clone()).unwrap();
    let second = h.call("llm/generate", params).unwrap();
    assert_eq!(first["text"], second["text"], "greedy generation is deterministic");
    assert_eq!(first["model"], "tiny");
    assert!(first["tokens"].as_u64().unwrap() <= 10);
    // Chat goes through the model's template: more prompt tokens than the raw text.
    let chat = h.call("llm/chat", json!({ "messages": [{ "role": "user", "content": "hello world" }] })).unwrap();
    assert!(chat["prompt-tokens"].as_u64() > first["prompt-tokens"].as_u64(), "{chat} vs {first}");
    let models = h.call("llm/models", json!({})).unwrap();
    assert_eq!(models[0]["id"], "tiny");
    assert_eq!(models[0]["loaded"], true);
}

#[test]
fn bad_requests_get_named_errors_and_the_model_stays_loaded() {
    let h = with_tiny(&["llm"], "[plugins.llm.inference]\nmax-tokens-per-call = 200\n");
    let e = failure(h.call("llm/generate", json!({ "prompt": "hi", "model": "nope" })));
    assert!(e.contains("no model `nope`") && e.contains("tiny"), "{e}");
    let e = failure(h.call("llm/generate", json!({ "prompt": "hi", "max-tokens": 0 })));
    assert!(e.contains("max-tokens must be at least 1"), "{e}");
    let e = failure(h.call("llm/generate", json!({ "prompt": "hi", "max-tokens": 100000 })));
    assert!(e.contains("budget") && e.contains("max-tokens-per-call"), "{e}");
    let e = failure(h.call("llm/generate", json!({ "prompt": "hi", "temperature": 9.0 })));
    assert!(e.contains("temperature"), "{e}");
    let e = failure(h.call("llm/generate", json!({ "prompt": "hello world ".repeat(200), "raw": true })));
    assert!(e.contains("context holds 256"), "{e}");
    let e = failure(h.call("llm/embed", json!({ "texts": ["x"], "model": "tiny" })));
    assert!(e.contains("is a llm model") && e.contains("embedding"), "{e}");
    // The budget is per call: the next call starts afresh, and the model is still loaded.
    let ok = h.call("llm/generate", json!({ "prompt": "hi", "raw": true, "max-tokens": 16 })).unwrap();
    assert!(ok["tokens"].as_u64().unwrap() <= 16);
    assert_eq!(h.host.core().engines().loaded(), vec!["tiny".to_string()]);
}

#[test]
fn the_operator_decides_which_models_a_plugin_may_use() {
    let h = with_tiny(&["llm"], "[plugins.llm.inference]\nmodels = [\"other\"]\n");
    let e = failure(h.call("llm/generate", json!({ "prompt": "hi", "model": "tiny" })));
    assert!(e.contains("may not use model `tiny`") && e.contains("[plugins.llm.inference]"), "{e}");
    let e = failure(h.call("llm/generate", json!({ "prompt": "hi" })));
    assert!(e.contains("may use no installed llm model"), "{e}");
    assert_eq!(h.call("llm/models", json!({})).unwrap(), json!([]), "disallowed models are not even listed");
}

#[test]
fn inference_is_a_capability_the_operator_must_approve() {
    let h = TestHost::with_config(&[], ONE_THREAD);
    let d = plugin_dir("llm");
    let err =
        h.host.install_component(&d.join("llm.wasm"), Some(&d.join("wit")), &InstallOptions::default()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("host:inference") && msg.contains("--allow host:inference"), "{msg}");
}

#[test]
fn model_cli_validates_before_adding_and_lists_and_removes() {
    let h = TestHost::with_config(&[], ONE_THREAD);
    let bad = h.dir.path().join("broken.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    let out = h.cli(&["model", "add", bad.to_str().unwrap(), "--id", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a usable GGUF model"), "{}", stderr(&out));
    let tiny = h.dir.path().join("tiny.gguf");
    continuum_gpu::testmodel::write_tiny_llama(&tiny, 1).unwrap();
    let out = h.cli(&["model", "add", tiny.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("added llm model `tiny`"), "{}", stdout(&out));
    let list = h.cli(&["model", "list", "--json"]);
    let models: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(models[0]["id"], "tiny");
    assert_eq!(models[0]["files"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(h.cli(&["model", "remove", "tiny"]).status.success());
    let out = h.cli(&["model", "remove", "tiny"]);
    assert!(stderr(&out).contains("no model `tiny`"), "{}", stderr(&out));
}

#[test]
fn a_model_replaced_under_the_same_id_is_loaded_afresh() {
    // What `model remove` + `model add` beside a running node do: the node's resident copy of
    // the old model must not answer for the new one.
    let h = with_tiny(&["llm"], "");
    let params = json!({ "prompt": "hello world", "raw": true, "max-tokens": 8 });
    let old = h.call("llm/generate", params.clone()).unwrap();
    let catalog = h.host.core().engines().catalog();
    catalog.remove("tiny").unwrap();
    let e = failure(h.call("llm/generate", params.clone()));
    assert!(e.contains("no model"), "{e}");
    let other = h.dir.path().join("other.gguf");
    continuum_gpu::testmodel::write_tiny_llama(&other, 7).unwrap();
    catalog.add("tiny", &other).unwrap();
    let new = h.call("llm/generate", params.clone()).unwrap();

    let fresh = TestHost::with_config(&["llm"], ONE_THREAD);
    fresh.host.core().engines().catalog().add("tiny", &other).unwrap();
    let expected = fresh.call("llm/generate", params).unwrap();
    assert_eq!(new["text"], expected["text"], "the replaced model answers as it does in a fresh host");
    assert_ne!(new["text"], old["text"], "the two random models generate differently (fixed seeds)");
}

#[test]
fn command_search_falls_back_to_words_without_an_embedding_model() {
    let h = TestHost::with_config(&["text", "kv"], ONE_THREAD);
    let out = h.cli(&["commands", "search", "count the words of a text", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["ranking"]["method"], "text");
    assert_eq!(found["matches"][0]["name"], "text/stats", "{found}");
}

#[test]
fn smollm2_answers_through_the_llm_plugin() {
    let Some(h) = with_real(&["llm"]) else { return };
    let answer = h.call("llm/generate", json!({ "prompt": "What is the capital of France?" })).unwrap();
    assert!(answer["text"].as_str().unwrap().contains("Paris"), "{answer}");
    assert_eq!(answer["model"], "smollm2");
    let vectors = h.call("llm/embed", json!({ "texts": ["This is an example sentence"] })).unwrap();
    let first: Vec<f64> = vectors[0].as_array().unwrap()[..4].iter().map(|v| v.as_f64().unwrap()).collect();
    for (got, want) in first.iter().zip([0.0677, 0.0635, 0.0487, 0.0793]) {
        assert!((got - want).abs() < 1e-3, "{first:?}");
    }
}

#[test]
fn rag_indexes_searches_and_answers_from_documents() {
    let Some(h) = with_real(&["rag"]) else { return };
    let docs: Value = serde_json::from_str(
        &std::fs::read_to_string(continuum_tests::repo().join("examples/data/docs.json")).unwrap(),
    )
    .unwrap();
    let indexed = h.call("rag/index", json!({ "documents": docs })).unwrap();
    assert_eq!((indexed["documents"].as_u64(), indexed["dimensions"].as_u64()), (Some(5), Some(384)));
    let hits = h.call("rag/search", json!({ "query": "what stops a plugin that never ends?", "top": 1 })).unwrap();
    assert_eq!(hits[0]["document"], "sandbox", "{hits}");
    let answer = h.call("rag/ask", json!({ "question": "What is inside an alloy?" })).unwrap();
    assert_eq!(answer["sources"][0]["document"], "alloy", "{answer}");
    let text = answer["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains("manifest") || text.contains("custody") || text.contains("archive"), "{answer}");
    assert_eq!(h.call("rag/forget", json!({ "id": "alloy" })).unwrap(), json!(true));
    assert_eq!(h.call("rag/documents", json!({})).unwrap().as_array().unwrap().len(), 4);
}

#[test]
fn classify_trains_and_predicts_with_measured_accuracy() {
    let Some(h) = with_real(&["classify"]) else { return };
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(continuum_tests::repo().join("examples/data").join(f)).unwrap())
            .unwrap()
    };
    let report =
        h.call("classify/train", json!({ "name": "sentiment", "examples": read("sentiment-train.json") })).unwrap();
    assert_eq!(report["labels"], json!(["negative", "positive"]));
    assert!(report["validation-accuracy"].as_f64().unwrap() >= 0.75, "{report}");
    let eval =
        h.call("classify/evaluate", json!({ "name": "sentiment", "examples": read("sentiment-test.json") })).unwrap();
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.8, "{eval}");
    let p = h.call("classify/predict", json!({ "name": "sentiment", "texts": ["What a wonderful day"] })).unwrap();
    assert_eq!(p[0]["label"], "positive");
    let e = failure(h.call(
        "classify/train",
        json!({ "name": "x", "examples": [{ "text": "a", "label": "only" }, { "text": "b", "label": "only" }] }),
    ));
    assert!(e.contains("2 different labels"), "{e}");
    assert_eq!(h.call("classify/classifiers", json!({})).unwrap()[0]["name"], "sentiment");
}

#[test]
fn command_search_ranks_by_meaning_with_an_embedding_model() {
    let Some(h) = with_real(&["text", "kv", "json"]) else { return };
    let out = h.cli(&["commands", "search", "count how many words are in my essay", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["ranking"], json!({ "method": "embedding", "model": "minilm" }));
    assert_eq!(found["matches"][0]["name"], "text/stats", "{found}");
}

#[test]
fn concurrent_generations_wait_their_turn_and_all_finish() {
    let h = with_tiny(&["llm"], "slots = 1\n"); // continues ONE_THREAD's [inference] table
    let params = json!({ "prompt": "the grid", "raw": true, "max-tokens": 20 });
    let expected = h.call("llm/generate", params.clone()).unwrap();
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..4).map(|_| s.spawn(|| h.call("llm/generate", params.clone()))).collect();
        for run in runs {
            assert_eq!(run.join().unwrap().unwrap()["text"], expected["text"]);
        }
    });
}

#[test]
fn a_generation_past_the_call_deadline_is_stopped_with_a_named_error() {
    let Some((llm, _)) = real_models() else { return };
    let h = TestHost::with_config(&["llm"], &format!("{ONE_THREAD}[plugins.llm.limits]\ntimeout-ms = 300\n"));
    h.host.core().engines().catalog().add("smollm2", &llm).unwrap();
    let params =
        json!({ "prompt": "Once upon a time, in a small village by the sea,", "raw": true, "max-tokens": 3000 });
    match h.call("llm/generate", params) {
        Err(CallError::CommandFailed { error, .. }) => {
            assert!(error.as_str().unwrap().contains("time budget ran out"), "{error}")
        }
        Err(CallError::Limit { .. }) => {}
        other => panic!("expected the deadline to stop the generation, got {other:?}"),
    }
    // The model stays loaded and usable (directly: a 300 ms call deadline is at the mercy of
    // the other tests' load).
    assert_eq!(h.host.core().engines().loaded(), vec!["smollm2".to_string()]);
    let request = continuum_gpu::llm::GenerateRequest {
        prompt: continuum_gpu::llm::Prompt::Text("Hi".into()),
        max_tokens: 4,
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        stop: Vec::new(),
        deadline: None,
    };
    let done = h.host.core().engines().generate("smollm2", &request, &mut |_| true).unwrap();
    assert!(done.completion_tokens <= 4);
}

#[test]
fn a_model_the_engine_aborts_on_is_refused_by_a_probe_and_the_host_lives_on() {
    // A structurally valid GGUF that llama.cpp aborts on (zero layers): the validator cannot
    // know every hyperparameter rule, so `model add` loads it in a child process first.
    let h = TestHost::with_config(&[], ONE_THREAD);
    let good = h.dir.path().join("tiny.gguf");
    continuum_gpu::testmodel::write_tiny_llama(&good, 5).unwrap();
    let mut bytes = std::fs::read(&good).unwrap();
    let key = b"llama.block_count";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(&bytes[at..at + 4], &4u32.to_le_bytes(), "a u32 value follows the key");
    bytes[at + 4..at + 8].copy_from_slice(&0u32.to_le_bytes());
    let bad = h.dir.path().join("zero-layers.gguf");
    std::fs::write(&bad, bytes).unwrap();
    assert!(continuum_gpu::gguf::validate(&bad).is_ok(), "the file is structurally valid");

    let out = h.cli(&["model", "add", bad.to_str().unwrap(), "--id", "bad"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("crashed while loading it"), "{}", stderr(&out));
    assert!(stdout(&h.cli(&["model", "list"])).contains("no models"));
    let out = h.cli(&["model", "add", good.to_str().unwrap(), "--id", "good"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
