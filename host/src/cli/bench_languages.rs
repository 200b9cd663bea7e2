//! `continuum bench languages`: the same command (the `plugin new` greeter) written in Rust,
//! Python and JavaScript, built with each toolchain, then for each: component size, the first
//! install (compiling), a second load in a new host (AOT cache), and instantiate + call p50,
//! alternated in one loop with raw wasmtime instantiating and calling the same compiled
//! component on the same engine: the floor the runtime itself sets for each toolchain's output.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use wasmtime::component::Val;

use super::bench::{measure_pair, micros, RawState};
use super::output;
use crate::authoring::{scaffold, toolchain, Language};
use crate::paths::DataDir;
use crate::runtime::Host;
use crate::Caller;
use crate::InstallOptions;

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the benchmark with `iterations` calls per language.
pub fn run(iterations: u32) -> Result<()> {
    let work = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let params = json!({ "name": "Ada", "style": "loud" });
    let mut rows = Vec::new();
    for lang in [Language::Rust, Language::Python, Language::Js] {
        let name = format!("bench-{}", lang.as_str());
        let dir = scaffold::new_project(work.path(), &name, lang)?;
        let t = Instant::now();
        let built = toolchain::build(&dir)?;
        let build_time = t.elapsed();
        let wasm = built.dir.join(format!("{name}.wasm"));

        let t = Instant::now();
        let host = Host::open(DataDir::at(data.path().to_path_buf())?)?;
        host.install_component(
            &wasm,
            Some(&built.dir.join("wit")),
            &InstallOptions { allow: vec!["all".into()], ..Default::default() },
        )?;
        let compile = t.elapsed();
        drop(host);

        // A new host: the component comes from the AOT cache.
        let host = Host::open(DataDir::at(data.path().to_path_buf())?)?;
        let t = Instant::now();
        let plugin = host.load(&name)?;
        let second_load = t.elapsed();
        drop(plugin);
        host.core().set_audit(false);
        let command = format!("{name}/greet");
        let caller = Caller::owner();
        let ours = || {
            let out = host.call(&caller, &command, &params).result.map_err(|e| anyhow::anyhow!("{e}"))?;
            std::hint::black_box(out);
            Ok(())
        };

        // Raw wasmtime: the component the host compiled, WASI, and the template's one host
        // import (`log.write`) as a no-op.
        let engine = host.core().engine();
        let (component, mut linker) = RawState::linker_for(&host, &name)?;
        linker.instance("continuum:host/log@0.1.0")?.func_new("write", |_, _, _, _| Ok(()))?;
        let pre = linker.instantiate_pre(&component)?;
        let export = component.get_export_index(None, "greet").context("no greet export")?;
        let args = [Val::String("Ada".into()), Val::Option(Some(Box::new(Val::Enum("loud".into()))))];
        let raw = || RawState::call(engine, &pre, export, &args);
        let [(raw_p50, raw_p99), (p50, p99)] = measure_pair(iterations, raw, ours)?;
        rows.push(json!({
            "language": lang.as_str(),
            "component_mb": built.bytes as f64 / 1e6,
            "build_s": build_time.as_secs_f64(),
            "install_compile_ms": millis(compile),
            "second_load_ms": millis(second_load),
            "call_p50_us": micros(p50),
            "call_p99_us": micros(p99),
            "raw_wasmtime_p50_us": micros(raw_p50),
            "raw_wasmtime_p99_us": micros(raw_p99),
        }));
        // A line as each language is done: its builds take a while.
        output::report_line(format_args!(
            "{:<7} component {:>5.1} MB  build {:>5.1} s  install (compile) {:>7.0} ms  second load (AOT cache) {:>6.2} ms  \
             instantiate + call p50 {:>8.1} µs  p99 {:>8.1} µs  (raw wasmtime p50 {:>8.1} µs)",
            lang.as_str(),
            built.bytes as f64 / 1e6,
            build_time.as_secs_f64(),
            millis(compile),
            millis(second_load),
            micros(p50),
            micros(p99),
            micros(raw_p50)
        ));
    }
    let figures = json!({ "command": "greet (plugin new template)", "iterations": iterations, "languages": rows });
    output::emit(&mut std::io::stdout().lock(), &figures, |out| Ok(writeln!(out, "{figures}")?))
}
