//! `continuum model …`: add, list and remove the models behind `continuum:host/inference` and
//! `training` (the model catalog).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;

use super::output;
use crate::runtime::Host;

/// `continuum model …`.
#[derive(Debug, Subcommand)]
pub(super) enum ModelCmd {
    /// Add a model from a local path: a .gguf language model, or a folder with an embedding
    /// model (model.safetensors, tokenizer.json, config.json). Validated before it is added.
    Add {
        /// The .gguf file or the embedding model folder.
        path: PathBuf,
        /// The id commands use to name it (default: from the file or folder name).
        #[arg(long)]
        id: Option<String>,
    },
    /// List installed models.
    List,
    /// Remove a model and its files.
    Remove {
        /// The model id.
        id: String,
    },
    /// Load a model and run it once (what `add` runs in a child process first).
    #[command(hide = true)]
    Probe {
        /// The .gguf file or the embedding model folder.
        path: PathBuf,
    },
}

/// A model id derived from a path: `SmolLM2-135M-Instruct.Q4_1.gguf` → `smollm2-135m-instruct.q4_1`.
fn default_id(path: &Path) -> String {
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
            probe_in_child(&path)?;
            let entry = catalog.add(&id, &path)?;
            let line = format!(
                "added {} model `{}` ({}, {}, context {})",
                entry.kind,
                entry.id,
                entry.architecture,
                megabytes(entry.bytes()),
                entry.context_length
            );
            output::confirm(&mut out, &entry, line)?;
        }
        ModelCmd::List => {
            let models = catalog.list()?;
            output::emit(&mut out, &models, |out| {
                if models.is_empty() {
                    output::note(out, "no models; add one with `continuum model add <file.gguf | embedding-folder>`")?;
                }
                for m in &models {
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
                Ok(())
            })?;
        }
        ModelCmd::Probe { path } => continuum_gpu::engines::probe(&path)?,
        ModelCmd::Remove { id } => {
            let entry = catalog.remove(&id)?;
            output::confirm(&mut out, &entry, format_args!("removed model `{}`", entry.id))?;
        }
    }
    Ok(())
}

/// Loads and runs the model in a child `continuum model probe`, so that a model llama.cpp
/// aborts on is refused with a message instead of taking this process (or later a serving
/// node) down.
fn probe_in_child(path: &Path) -> Result<()> {
    let exe = std::env::current_exe()?;
    let output = std::process::Command::new(exe)
        .args(["model", "probe"])
        .arg(path)
        .env("CONTINUUM_LOG", "error")
        .stdin(std::process::Stdio::null())
        .output()?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = crate::terminal::strip_control(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match output.status.code() {
        // The probe returned an error: its message is the reason.
        Some(_) => {
            let message = lines.iter().find_map(|l| l.strip_prefix("error: ")).unwrap_or("the probe failed");
            anyhow::bail!("{message}")
        }
        None => {
            let assert = lines.iter().find(|l| l.contains("GGML_ASSERT") || l.contains("error")).or(lines.last());
            anyhow::bail!(
                "{} is not a usable model: the engine crashed while loading it ({}){}; it was not added",
                path.display(),
                std::os::unix::process::ExitStatusExt::signal(&output.status)
                    .map_or("killed".to_string(), |s| format!("signal {s}")),
                assert.map_or(String::new(), |a| format!(": {a}"))
            )
        }
    }
}
