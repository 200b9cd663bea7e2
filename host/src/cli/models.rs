//! `continuum model …` (the model catalog) and `continuum commands search` (discovery by meaning).

use std::io::Write;

use anyhow::Result;

use super::ModelCmd;
use crate::runtime::Host;
use crate::Caller;

/// A model id derived from a path: `SmolLM2-135M-Instruct.Q4_1.gguf` → `smollm2-135m-instruct.q4_1`.
fn default_id(path: &std::path::Path) -> String {
    let name = if path.is_dir() { path.file_name() } else { path.file_stem() };
    let name = name.map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect()
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Runs a `model` subcommand.
pub(super) fn run(host: &Host, cmd: ModelCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let catalog = host.core().engines().catalog();
    match cmd {
        ModelCmd::Add { path, id } => {
            let id = id.unwrap_or_else(|| default_id(&path));
            let entry = catalog.add(&id, &path)?;
            writeln!(
                out,
                "added {} model `{}` ({}, {}, context {})",
                entry.kind,
                entry.id,
                entry.architecture,
                megabytes(entry.bytes()),
                entry.context_length
            )?;
        }
        ModelCmd::List { json } => {
            let models = catalog.list()?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&models)?)?;
            } else if models.is_empty() {
                writeln!(out, "no models; add one with `continuum model add <file.gguf | embedding-folder>`")?;
            } else {
                for m in models {
                    let shape = match m.kind {
                        continuum_gpu::ModelKind::Llm => format!("context {}", m.context_length),
                        continuum_gpu::ModelKind::Embedding => format!("{} dimensions", m.dimensions),
                    };
                    writeln!(
                        out,
                        "{:<16} {:<10} {:<8} {:>9}  {shape}",
                        m.id,
                        m.kind.to_string(),
                        m.architecture,
                        megabytes(m.bytes())
                    )?;
                }
            }
        }
        ModelCmd::Remove { id } => {
            let entry = catalog.remove(&id)?;
            writeln!(out, "removed model `{}`", entry.id)?;
        }
    }
    Ok(())
}

/// `continuum commands search`: the commands the caller may call, ranked by meaning.
pub(super) fn search(host: &Host, as_caller: Option<&str>, query: &str, top: usize, json: bool) -> Result<()> {
    let caller = match as_caller {
        Some(spec) => host.caller_for(spec)?,
        None => Caller::owner(),
    };
    let (method, matches) = crate::discovery::search(host, &caller, query, top)?;
    let mut out = std::io::stdout().lock();
    if json {
        let doc = serde_json::json!({ "ranking": method, "matches": matches });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    match &method {
        crate::discovery::Method::Embedding { model } => eprintln!("ranked by meaning ({model} embeddings):"),
        crate::discovery::Method::Text => {
            eprintln!("ranked by shared words (no embedding model installed; `continuum model add` one to search by meaning):")
        }
    }
    if matches.is_empty() {
        writeln!(out, "no command matches")?;
    }
    for m in matches {
        writeln!(out, "{:.3}  {:<28} {}", m.score, m.name, m.about)?;
    }
    Ok(())
}
