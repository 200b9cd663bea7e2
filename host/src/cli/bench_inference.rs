//! `continuum bench inference`: llama.cpp and candle called directly vs through the WIT host
//! interface from the `llm` plugin, in one run, on the same resident models and threads.
//!
//! Generation: the same raw prompt and greedy settings both ways, so both produce the same
//! tokens; throughput is generated tokens over the caller's wall time (prompt reading, and for
//! the plugin the instance, the stream resource and JSON, included). Rounds alternate the two
//! paths so machine noise hits them alike. Embeddings: the same batch of sentences, texts/s.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::output;
use crate::paths::DataDir;
use crate::runtime::Host;
use crate::Caller;
use crate::InstallOptions;

const PROMPT: &str = "Once upon a time, in a small village by the sea, there lived";
const SENTENCES: [&str; 8] = [
    "The grid shares commands between peers.",
    "A sandboxed plugin cannot read files.",
    "Embeddings map sentences to vectors.",
    "The host keeps models resident in memory.",
    "Signed artifacts carry a chain of custody.",
    "Owners grant capabilities to other keys.",
    "Every call is recorded in the event log.",
    "Small models run well on a laptop.",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the benchmark with the models in `models` (from scripts/fetch-models.sh) and the
/// built `llm` plugin in `plugin_dir`; `threads` per computation (0: the host's default).
pub fn run(models: &Path, plugin_dir: &Path, tokens: u32, rounds: u32, threads: u32) -> Result<()> {
    let gguf = models.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let minilm = models.join("minilm");
    anyhow::ensure!(gguf.is_file(), "{} not found; run scripts/fetch-models.sh first", gguf.display());
    let scratch = tempfile::tempdir()?;
    if threads > 0 {
        std::fs::write(scratch.path().join("continuum.toml"), format!("[inference]\nthreads = {threads}\n"))?;
    }
    let host = Host::open(DataDir::at(scratch.path().to_path_buf())?)?;
    let engines = host.core().engines();
    engines.catalog().add("smollm2", &gguf)?;
    engines.catalog().add("minilm", &minilm)?;
    let wasm = plugin_dir.join("llm.wasm");
    anyhow::ensure!(wasm.exists(), "{} not found; run scripts/build-plugins.sh first", wasm.display());
    host.install_component(
        &wasm,
        Some(&plugin_dir.join("wit")),
        &InstallOptions { allow: vec!["all".into()], ..Default::default() },
    )?;
    host.core().set_audit(false);
    let caller = Caller::owner();

    let request = continuum_gpu::llm::GenerateRequest {
        prompt: continuum_gpu::llm::Prompt::Text(PROMPT.into()),
        max_tokens: tokens,
        temperature: 0.0,
        top_p: 0.95,
        seed: 0,
        stop: Vec::new(),
        deadline: None,
    };
    let params = json!({ "prompt": PROMPT, "raw": true, "max-tokens": tokens, "model": "smollm2" });
    let direct = || -> Result<(u32, f64)> {
        let t = Instant::now();
        let done = engines.generate("smollm2", &request, &mut |_| true)?;
        Ok((done.completion_tokens, t.elapsed().as_secs_f64()))
    };
    let through_wit = || -> Result<(u32, f64)> {
        let t = Instant::now();
        let answer = host.call(&caller, "llm/generate", &params).result.map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = answer.get("tokens").and_then(Value::as_u64).context("no `tokens` count in the answer")? as u32;
        Ok((n, t.elapsed().as_secs_f64()))
    };
    // Warm-up: load the model, compile and cache the plugin.
    direct()?;
    through_wit()?;
    let (mut direct_rates, mut wit_rates, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (n, s) = direct()?;
        direct_rates.push(n as f64 / s);
        let (m, w) = through_wit()?;
        wit_rates.push(m as f64 / w);
        counts.push((n, m));
    }
    anyhow::ensure!(counts.iter().all(|(a, b)| a == b), "the two paths generated different token counts: {counts:?}");
    let (direct_tps, wit_tps) = (median(direct_rates), median(wit_rates));

    let texts: Vec<String> = (0..8).flat_map(|_| SENTENCES.iter().map(|s| s.to_string())).collect();
    let embed_params = json!({ "texts": texts, "model": "minilm" });
    let embed_direct = || -> Result<f64> {
        let t = Instant::now();
        std::hint::black_box(engines.embed("minilm", &texts, None)?);
        Ok(texts.len() as f64 / t.elapsed().as_secs_f64())
    };
    let embed_wit = || -> Result<f64> {
        let t = Instant::now();
        std::hint::black_box(
            host.call(&caller, "llm/embed", &embed_params).result.map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        Ok(texts.len() as f64 / t.elapsed().as_secs_f64())
    };
    embed_direct()?;
    embed_wit()?;
    let (mut ed, mut ew) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ed.push(embed_direct()?);
        ew.push(embed_wit()?);
    }
    let (embed_direct_rate, embed_wit_rate) = (median(ed), median(ew));
    let config = engines.config();

    let figures = json!({
        "threads": config.threads,
        "generated_tokens": counts[0].0,
        "rounds": rounds,
        "generate_tok_per_s": { "direct": direct_tps, "wit": wit_tps, "ratio": wit_tps / direct_tps },
        "embed_texts_per_s": { "direct": embed_direct_rate, "wit": embed_wit_rate, "ratio": embed_wit_rate / embed_direct_rate },
        "device": if cfg!(feature = "cuda") { "cuda" } else { "cpu" },
    });
    output::emit(&mut std::io::stdout().lock(), &figures, |out| {
        writeln!(
            out,
            "benchmark: SmolLM2-135M-Instruct Q4_1, {} generated tokens, greedy, {} threads, {rounds} alternating rounds",
            counts[0].0,
            config.threads
        )?;
        writeln!(out, "  llama-cpp-2 direct                      {direct_tps:>8.1} tok/s")?;
        writeln!(out, "  through WIT (llm plugin → inference)    {wit_tps:>8.1} tok/s")?;
        writeln!(out, "  ratio (WIT / direct)                    {:>8.1} %", wit_tps / direct_tps * 100.0)?;
        writeln!(out, "benchmark: all-MiniLM-L6-v2, batches of {} sentences", texts.len())?;
        writeln!(out, "  candle direct                           {embed_direct_rate:>8.1} texts/s")?;
        writeln!(out, "  through WIT (llm/embed)                 {embed_wit_rate:>8.1} texts/s")?;
        writeln!(
            out,
            "  ratio (WIT / direct)                    {:>8.1} %",
            embed_wit_rate / embed_direct_rate * 100.0
        )?;
        writeln!(out, "{figures}")?;
        Ok(())
    })
}
