//! `continuum bench [calls|inference|languages|http|grid]`: the arguments and the dispatch to
//! each suite (`bench_inference.rs`, `bench_languages.rs`, `bench_node.rs`), and the `calls`
//! suite itself: the host's overhead, measured against raw wasmtime in the same run.
//!
//! Both call paths are timed alternately in one loop, so machine noise hits them alike.
//!
//! 1. raw wasmtime: the same engine and component, `InstancePre::instantiate` + a dynamic
//!    `Func::call` with ready-made values, per call;
//! 2. the full reflected call: JSON text in → schema check → values → fresh sandboxed instance
//!    with limits and captured stdio → values → JSON text out;
//! 3. install-to-first-call with an empty AOT cache (compile) and with the cache (mmap);
//! 4. grant verification cold (signatures) and cached, and what the cached check adds to a call;
//! 5. the event log: durable entries/s with group commit, verified entries/s, and the audit's
//!    cost on a call's p50.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde_json::json;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, ResourceTable, Val};
use wasmtime::Store;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{bench_inference, bench_languages, bench_node, output};
use crate::paths::DataDir;
use crate::runtime::Host;
use crate::Caller;
use crate::InstallOptions;

/// The arguments of `continuum bench`.
#[derive(Debug, clap::Args)]
pub(super) struct BenchArgs {
    /// Which benchmark.
    #[arg(value_enum, default_value = "calls")]
    suite: BenchSuite,
    /// Folder of the built `text` plugin (its .wasm and wit/).
    #[arg(long, default_value = "build/plugins/text")]
    plugin: PathBuf,
    /// Calls per measurement (calls).
    #[arg(long, default_value_t = 20_000)]
    iterations: u32,
    /// Where scripts/fetch-models.sh put the models (inference).
    #[arg(long, default_value = "build/models")]
    models: PathBuf,
    /// Tokens per generation (inference).
    #[arg(long, default_value_t = 128)]
    tokens: u32,
    /// Alternating rounds of direct and WIT calls (inference).
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// CPU threads per computation (inference; default: the host's).
    #[arg(long, default_value_t = 0)]
    threads: u32,
    /// Concurrent clients (http).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds per phase (http).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
}

/// A benchmark suite.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BenchSuite {
    /// Call overhead, install-to-first-call, grants, the event log.
    Calls,
    /// Generation tok/s and embeddings/s, direct vs through WIT.
    Inference,
    /// The same command in Rust, Python and JavaScript: build, compile, second load, call p50.
    Languages,
    /// The HTTP API under concurrent clients: req/s, p50/p99, errors, memory.
    Http,
    /// Grid call latency over loopback QUIC vs in-process, and verified plugin-fetch throughput.
    Grid,
}

/// Runs the benchmark suite `args` names.
pub(super) fn run(args: BenchArgs) -> Result<()> {
    match args.suite {
        BenchSuite::Calls => calls(&args.plugin, args.iterations),
        BenchSuite::Http => bench_node::http(&args.plugin, args.clients, args.seconds),
        BenchSuite::Grid => bench_node::grid(&args.plugin, args.iterations.min(5_000)),
        BenchSuite::Languages => bench_languages::run(args.iterations.min(2_000)),
        BenchSuite::Inference => {
            bench_inference::run(&args.models, Path::new("build/plugins/llm"), args.tokens, args.rounds, args.threads)
        }
    }
}

const COMMAND: &str = "text/convert-case";
const INPUT: &str = r#"{"text":"hello world","to":"upper"}"#;

/// A raw wasmtime store's data: WASI and nothing of the host.
pub(super) struct RawState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl RawState {
    /// A store with an empty WASI context, as `wasmtime run` gives a component.
    fn store(engine: &wasmtime::Engine) -> Store<RawState> {
        let mut store = Store::new(engine, RawState { wasi: WasiCtx::builder().build(), table: ResourceTable::new() });
        // The shared engine has epoch interruption on; a raw store still needs a deadline.
        store.set_epoch_deadline(1 << 20);
        store
    }

    /// One raw call: a fresh store and instance of `pre`, then its `export` called with `args`.
    pub(super) fn call(
        engine: &wasmtime::Engine,
        pre: &InstancePre<RawState>,
        export: ComponentExportIndex,
        args: &[Val],
    ) -> Result<()> {
        let mut store = RawState::store(engine);
        let instance = pre.instantiate(&mut store)?;
        let func = instance.get_func(&mut store, export).context("the export is not a function")?;
        let mut results = [Val::Bool(false)];
        func.call(&mut store, args, &mut results)?;
        std::hint::black_box(&results);
        Ok(())
    }

    /// The component the host compiled for installed `plugin` (from its AOT cache), and a
    /// linker on the host's engine with WASI only: the caller adds any other import.
    pub(super) fn linker_for(host: &Host, plugin: &str) -> Result<(Component, Linker<RawState>)> {
        let core = host.core();
        let digest = host.plugin(plugin)?.digest;
        let component =
            core.cache().get(core.engine(), &digest).context("the precompiled component is missing from the cache")?;
        let mut linker = Linker::new(core.engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Ok((component, linker))
    }
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// p50 and p99 of `samples` (sorted in place).
pub(super) fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

/// `d` in microseconds, for the figures.
pub(super) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The (p50, p99) of `f`.
fn measure_one(iterations: u32, mut f: impl FnMut() -> Result<()>) -> Result<(Duration, Duration)> {
    for _ in 0..iterations / 10 {
        f()?;
    }
    let mut samples = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    Ok(percentiles(&mut samples))
}

/// Times `a` and `b` alternately, so both see the same machine conditions; returns the
/// (p50, p99) of each.
pub(super) fn measure_pair(
    iterations: u32,
    mut a: impl FnMut() -> Result<()>,
    mut b: impl FnMut() -> Result<()>,
) -> Result<[(Duration, Duration); 2]> {
    for _ in 0..iterations / 10 {
        a()?; // warm-up
        b()?;
    }
    let mut samples = [Vec::with_capacity(iterations as usize), Vec::with_capacity(iterations as usize)];
    for _ in 0..iterations {
        let t = Instant::now();
        a()?;
        samples[0].push(t.elapsed());
        let t = Instant::now();
        b()?;
        samples[1].push(t.elapsed());
    }
    let [sa, sb] = &mut samples;
    Ok([percentiles(sa), percentiles(sb)])
}

/// `bench calls`: runs the benchmark on the built `text` plugin in `plugin_dir` and prints the
/// figures.
fn calls(plugin_dir: &Path, iterations: u32) -> Result<()> {
    let wasm = plugin_dir.join("text.wasm");
    let wit = plugin_dir.join("wit");
    anyhow::ensure!(wasm.exists(), "{} not found; build the plugins first (scripts/build-plugins.sh)", wasm.display());
    let scratch = tempfile::tempdir()?;

    // Install-to-first-call, cold: empty data dir, so the component is compiled.
    let t = Instant::now();
    let host = Host::open(DataDir::at(scratch.path().to_path_buf())?)?;
    host.install_component(&wasm, Some(&wit), &InstallOptions { allow: vec!["all".into()], ..Default::default() })?;
    let first = host.call(&Caller::owner(), COMMAND, &serde_json::from_str(INPUT)?);
    first.result.context("first call failed")?;
    let cold = t.elapsed();
    drop(host);

    // Warm: a new host on the same data dir loads the precompiled component from the cache.
    let t = Instant::now();
    let host = Host::open(DataDir::at(scratch.path().to_path_buf())?)?;
    let loaded_at = Instant::now();
    let plugin = host.load("text")?;
    let load_only = loaded_at.elapsed();
    host.call(&Caller::owner(), COMMAND, &serde_json::from_str(INPUT)?).result.context("cached call failed")?;
    let warm = t.elapsed();
    drop(plugin);

    // Raw wasmtime on the same engine and component.
    let core = host.core();
    let engine = core.engine();
    let (component, mut linker) = RawState::linker_for(&host, "text")?;
    linker.define_unknown_imports_as_traps(&component)?;
    let pre = linker.instantiate_pre(&component)?;
    let export = component.get_export_index(None, "convert-case").context("no convert-case export")?;
    let args = [Val::String("hello world".into()), Val::Enum("upper".into())];
    let caller = Caller::owner();
    // The reflection/sandbox overhead is measured without the audit entry; section 5 measures
    // what the audit adds.
    core.set_audit(false);
    let raw = || RawState::call(engine, &pre, export, &args);
    let reflected = || {
        let params: serde_json::Value = serde_json::from_str(INPUT)?;
        let report = host.call(&caller, COMMAND, &params);
        let out = report.result.map_err(|e| anyhow::anyhow!("{e}"))?.to_string();
        std::hint::black_box(out);
        Ok(())
    };
    let [(raw_p50, raw_p99), (ours_p50, ours_p99)] = measure_pair(iterations, raw, reflected)?;

    // Grants: full signature verification (cold) vs the cached check, and what the cached
    // check adds to a reflected call (owner call vs verify-then-call as a grantee).
    let grantee = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let grantee_hex = crate::keys::public_hex(&grantee);
    let token = host.issue_grant(&grantee_hex, &["text/".into()], crate::now_secs() + 3600)?;
    let owner_key = crate::keys::parse_public(&host.node_id())?;
    let (cold_p50, _) = measure_one(iterations, || {
        std::hint::black_box(crate::grants::verify_signed(&token, &owner_key)?);
        Ok(())
    })?;
    let (cached_p50, _) = measure_one(iterations, || {
        std::hint::black_box(host.caller_presenting(&token, &grantee_hex)?);
        Ok(())
    })?;
    let owner_call = || {
        let report = host.call(&caller, COMMAND, &serde_json::from_str(INPUT)?);
        std::hint::black_box(report.result.map_err(|e| anyhow::anyhow!("{e}"))?);
        Ok(())
    };
    let granted_call = || {
        let as_grantee = host.caller_presenting(&token, &grantee_hex)?;
        let report = host.call(&as_grantee, COMMAND, &serde_json::from_str(INPUT)?);
        std::hint::black_box(report.result.map_err(|e| anyhow::anyhow!("{e}"))?);
        Ok(())
    };
    let [(owner_p50, _), (granted_p50, _)] = measure_pair(iterations, owner_call, granted_call)?;

    // The event log: durable throughput with group commit, verification speed, and the audit's
    // cost on a call (calls with auditing on vs off, alternated).
    let log = core.log();
    let appenders = 64;
    let per = (iterations / 10).max(200) as usize;
    // 64 threads, each appending and waiting for its own entry: until it is durable (in the
    // journal; then until all of them are in the database too), and until it is committed.
    let concurrently = |append: &(dyn Fn(usize, usize) -> Result<()> + Sync)| -> Result<f64> {
        let t = Instant::now();
        std::thread::scope(|s| -> Result<()> {
            let handles: Vec<_> =
                (0..appenders).map(|i| s.spawn(move || (0..per).try_for_each(|n| append(i, n)))).collect();
            for h in handles {
                h.join().map_err(|_| anyhow::anyhow!("appender panicked"))??;
            }
            Ok(())
        })?;
        Ok((appenders * per) as f64 / t.elapsed().as_secs_f64())
    };
    let t = Instant::now();
    let durable_rate =
        concurrently(&|i, n| log.record("bench.append", "bench", &json!({ "writer": i, "n": n }))?.wait())?;
    log.settle()?;
    let durable_committed_rate = (appenders * per) as f64 / t.elapsed().as_secs_f64();
    let waited_rate =
        concurrently(&|i, n| log.append("bench.append", "bench", &json!({ "writer": i, "n": n })).map(drop))?;
    let pipelined = iterations as usize * 10;
    let t = Instant::now();
    for n in 0..pipelined {
        log.append_later("bench.append", "bench", &json!({ "n": n }))?;
    }
    log.append("bench.append", "bench", &json!({ "last": true }))?;
    let pipelined_rate = (pipelined + 1) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let verified = crate::eventlog::verify(&*core.log_db()?, log.node())?.map_err(|b| anyhow::anyhow!("{b}"))?;
    let verify_rate = verified.entries as f64 / t.elapsed().as_secs_f64();
    let audited = || {
        core.set_audit(true);
        let report = host.call(&caller, COMMAND, &serde_json::from_str(INPUT)?);
        std::hint::black_box(report.result.map_err(|e| anyhow::anyhow!("{e}"))?);
        Ok(())
    };
    let unaudited = || {
        core.set_audit(false);
        let report = host.call(&caller, COMMAND, &serde_json::from_str(INPUT)?);
        std::hint::black_box(report.result.map_err(|e| anyhow::anyhow!("{e}"))?);
        Ok(())
    };
    let [(audited_p50, _), (unaudited_p50, _)] = measure_pair(iterations / 4, audited, unaudited)?;
    // The target: an audited call against raw wasmtime, alternated in one loop.
    let [(raw_again_p50, _), (audited_again_p50, audited_p99)] = measure_pair(iterations, raw, audited)?;
    core.set_audit(true);

    let figures = json!({
        "note": "reflected_call_us and grant figures are without the audit entry; log.call_p50_us_audited includes it",
        "command": COMMAND,
        "iterations": iterations,
        "raw_wasmtime_us": { "p50": micros(raw_p50), "p99": micros(raw_p99) },
        "reflected_call_us": { "p50": micros(ours_p50), "p99": micros(ours_p99) },
        "ratio_p50": micros(ours_p50) / micros(raw_p50),
        "install_to_first_call_ms": { "compile": cold.as_secs_f64() * 1e3, "aot_cache": warm.as_secs_f64() * 1e3 },
        "cached_load_ms": load_only.as_secs_f64() * 1e3,
        "grant_verify_us": { "cold_p50": micros(cold_p50), "cached_p50": micros(cached_p50) },
        "call_p50_us": { "owner": micros(owner_p50), "with_cached_grant": micros(granted_p50) },
        "log": {
            "durable_entries_per_s_64_appenders": durable_rate,
            "durable_and_committed_entries_per_s_64_appenders": durable_committed_rate,
            "committed_entries_per_s_64_waiting_appenders": waited_rate,
            "durable_entries_per_s_pipelined": pipelined_rate,
            "verified_entries_per_s": verify_rate,
            "call_p50_us_audited": micros(audited_p50),
            "call_p50_us_unaudited": micros(unaudited_p50),
        },
        "audited_vs_raw": {
            "raw_p50_us": micros(raw_again_p50),
            "audited_p50_us": micros(audited_again_p50),
            "audited_p99_us": micros(audited_p99),
            "ratio_p50": micros(audited_again_p50) / micros(raw_again_p50),
        },
    });
    output::emit(&mut std::io::stdout().lock(), &figures, |out| {
        writeln!(out, "benchmark: {COMMAND} {INPUT} ({iterations} calls each)")?;
        writeln!(
            out,
            "  raw wasmtime (instantiate + dynamic call)   p50 {:>8.2} µs   p99 {:>8.2} µs",
            micros(raw_p50),
            micros(raw_p99)
        )?;
        writeln!(
            out,
            "  reflected call, no audit (JSON → JSON)      p50 {:>8.2} µs   p99 {:>8.2} µs",
            micros(ours_p50),
            micros(ours_p99)
        )?;
        writeln!(out, "  ratio (reflected / raw, p50)                {:>8.2}×", micros(ours_p50) / micros(raw_p50))?;
        writeln!(out, "  install → first call, compiling             {:>8.1} ms", cold.as_secs_f64() * 1e3)?;
        writeln!(
            out,
            "  open → first call, AOT cache                {:>8.1} ms (load {:.2} ms)",
            warm.as_secs_f64() * 1e3,
            load_only.as_secs_f64() * 1e3
        )?;
        writeln!(out, "  grant verification, cold (signatures)       p50 {:>8.2} µs", micros(cold_p50))?;
        writeln!(out, "  grant verification, cached                  p50 {:>8.2} µs", micros(cached_p50))?;
        writeln!(
            out,
            "  call as owner / as grantee (cached grant)   p50 {:>8.2} µs / {:.2} µs (+{:.2} µs)",
            micros(owner_p50),
            micros(granted_p50),
            micros(granted_p50) - micros(owner_p50)
        )?;
        writeln!(out, "  event log, durable entries/s (64 appenders each waiting) {durable_rate:>10.0} (all committed: {durable_committed_rate:.0})")?;
        writeln!(out, "  event log, committed entries/s (64 appenders each waiting) {waited_rate:>8.0}")?;
        writeln!(out, "  event log, durable entries/s (pipelined, one wait)        {pipelined_rate:>10.0}")?;
        writeln!(
            out,
            "  event log, verified entries/s                            {verify_rate:>10.0} ({} entries)",
            verified.entries
        )?;
        writeln!(
            out,
            "  call audited / unaudited                    p50 {:>8.2} µs / {:.2} µs (+{:.2} µs)",
            micros(audited_p50),
            micros(unaudited_p50),
            micros(audited_p50) - micros(unaudited_p50)
        )?;
        writeln!(
            out,
            "  raw wasmtime / audited call, alternated     p50 {:>8.2} µs / {:.2} µs ({:.2}×)",
            micros(raw_again_p50),
            micros(audited_again_p50),
            micros(audited_again_p50) / micros(raw_again_p50)
        )?;
        writeln!(out, "{figures}")?;
        Ok(())
    })
}
