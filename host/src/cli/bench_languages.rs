//! `continuum bench languages`: the same command (the `plugin new` greeter) written in Rust,
//! Python and JavaScript, built with each toolchain, then for each: component size, the first
//! install (compiling), a second load in a new host (AOT cache), and instantiate + call p50.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

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
        let mut samples = Vec::with_capacity(iterations as usize);
        for i in 0..iterations + iterations / 10 {
            let t = Instant::now();
            host.call(&caller, &command, &params).result.map_err(|e| anyhow::anyhow!("{e}"))?;
            if i >= iterations / 10 {
                samples.push(t.elapsed());
            }
        }
        samples.sort();
        let p50 = samples[samples.len() / 2];
        let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
        rows.push(json!({
            "language": lang.as_str(),
            "component_mb": built.bytes as f64 / 1e6,
            "build_s": build_time.as_secs_f64(),
            "install_compile_ms": millis(compile),
            "second_load_ms": millis(second_load),
            "call_p50_us": p50.as_secs_f64() * 1e6,
            "call_p99_us": p99.as_secs_f64() * 1e6,
        }));
        // A line as each language is done: its builds take a while.
        output::report_line(format_args!(
            "{:<7} component {:>5.1} MB  build {:>5.1} s  install (compile) {:>7.0} ms  second load (AOT cache) {:>6.2} ms  \
             instantiate + call p50 {:>8.1} µs  p99 {:>8.1} µs",
            lang.as_str(),
            built.bytes as f64 / 1e6,
            build_time.as_secs_f64(),
            millis(compile),
            millis(second_load),
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        ));
    }
    let figures = json!({ "command": "greet (plugin new template)", "iterations": iterations, "languages": rows });
    output::emit(&mut std::io::stdout().lock(), &figures, |out| Ok(writeln!(out, "{figures}")?))
}
