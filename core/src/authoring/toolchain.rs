//! `continuum plugin build`: builds a command project into `<project>/build/` — the component
//! `<name>.wasm`, its `wit/`, `plugin.toml` and a `provenance.json` — ready for
//! `continuum plugin pack <project>/build --key K`. A missing toolchain is named with the exact
//! command that installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::Language;
use crate::alloy::proof::PluginSpec;
use crate::reflect::wit_source::WitSource;

/// The componentize-py release the authoring kit is tested with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The componentize-js release the authoring kit is tested with.
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// What a build produced.
#[derive(Debug)]
pub struct Built {
    /// The plugin's name (its WIT world).
    pub name: String,
    /// The language it was built from.
    pub lang: Language,
    /// The folder ready for `plugin pack`.
    pub dir: PathBuf,
    /// Size of the component in bytes.
    pub bytes: u64,
}

/// Finds `tool` on PATH, else in `extra` folders.
fn find_tool(tool: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    which::which(tool).ok().or_else(|| extra.iter().map(|d| d.join(tool)).find(|p| p.is_file()))
}

fn run(mut command: Command, what: &str) -> Result<std::process::Output> {
    let shown = format!("{command:?}");
    let output = command.output().with_context(|| format!("cannot start {what}: {shown}"))?;
    if !output.status.success() {
        // Diagnostics are on stderr (cargo's stdout is its JSON messages); some tools use stdout.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let text = if stderr.trim().is_empty() { &stdout } else { &stderr };
        let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(25)..].join("\n");
        bail!("{what} failed ({}):\n{tail}", output.status);
    }
    Ok(output)
}

/// Builds the project in `dir`.
pub fn build(dir: &Path) -> Result<Built> {
    let dir = dir.canonicalize().with_context(|| format!("{} does not exist", dir.display()))?;
    let spec = PluginSpec::read(&dir.join("plugin.toml"))?;
    let lang = match spec.build.as_ref().and_then(|b| b.lang.as_deref()) {
        Some(l) => Language::parse(l)?,
        None => Language::detect(&dir)?,
    };
    let wit_dir = dir.join("wit");
    let world = WitSource::read_dir(&wit_dir)?.resolve(None).context("in the project's wit/")?;
    let name = world.name().to_string();
    let out = dir.join("build");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    let wasm = out.join(format!("{name}.wasm"));
    let command = match lang {
        Language::Rust => build_rust(&dir, &wasm)?,
        Language::Python => build_python(&dir, &name, &wasm)?,
        Language::Js => build_js(&dir, &name, &wasm)?,
    };
    copy_dir(&wit_dir, &out.join("wit"))?;
    std::fs::copy(dir.join("plugin.toml"), out.join("plugin.toml"))?;
    let provenance = serde_json::json!({
        "source-digest": format!("sha256:{}", source_digest(&dir)?),
        "commit": null,
        "toolchain": toolchain_version(lang),
        "command": command,
    });
    std::fs::write(out.join("provenance.json"), serde_json::to_string_pretty(&provenance)?)?;
    let bytes = std::fs::metadata(&wasm)?.len();
    Ok(Built { name, lang, dir: out, bytes })
}

fn build_rust(dir: &Path, wasm: &Path) -> Result<String> {
    let Some(cargo) = find_tool("cargo", &[]) else {
        bail!("cargo is not installed; install Rust from https://rustup.rs, then `rustup target add wasm32-wasip2`");
    };
    if let Some(rustup) = find_tool("rustup", &[]) {
        let installed = Command::new(rustup).args(["target", "list", "--installed"]).output()?;
        if !String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") {
            bail!("the Rust target wasm32-wasip2 is not installed; run `rustup target add wasm32-wasip2`");
        }
    }
    let args = ["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics"];
    let mut command = Command::new(cargo);
    command.args(args).current_dir(dir);
    let output = run(command, "cargo build")?;
    // The component is the cdylib artifact of this project's own package.
    let manifest = dir.join("Cargo.toml");
    let built = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm; the package needs `crate-type = [\"cdylib\"]` under [lib]")?;
    std::fs::copy(&built, wasm).with_context(|| format!("cannot copy {}", built.display()))?;
    Ok(format!("cargo {}", args.join(" ")))
}

fn build_python(dir: &Path, world: &str, wasm: &Path) -> Result<String> {
    if !dir.join("app.py").is_file() {
        bail!("{} has no app.py (the module componentize-py builds)", dir.display());
    }
    // scripts/authoring-tools.sh links it into ~/.local/bin, which may not be on PATH.
    let user_bin: Vec<PathBuf> =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/bin")).into_iter().collect();
    let Some(tool) = find_tool("componentize-py", &user_bin) else {
        bail!(
            "componentize-py is not installed; run scripts/authoring-tools.sh, or `pip install {COMPONENTIZE_PY}` \
             in a virtual environment"
        );
    };
    let out = wasm.to_string_lossy().into_owned();
    let args = ["-d", "wit", "-w", world, "componentize", "app", "-o", &out];
    let mut command = Command::new(tool);
    command.args(args).current_dir(dir);
    run(command, "componentize-py")?;
    Ok(format!("componentize-py -d wit -w {world} componentize app -o build/{world}.wasm"))
}

fn build_js(dir: &Path, world: &str, wasm: &Path) -> Result<String> {
    if !dir.join("app.js").is_file() {
        bail!("{} has no app.js (the module componentize-js builds)", dir.display());
    }
    let Some(tool) = find_tool("componentize-js", &[dir.join("node_modules/.bin")]) else {
        bail!(
            "componentize-js is not installed; run `npm install -g {COMPONENTIZE_JS}` \
             (or `npm install {COMPONENTIZE_JS}` in the project)"
        );
    };
    let out = wasm.to_string_lossy().into_owned();
    // The host offers no wasi:http, so the http and fetch-event features are left out.
    let args = ["app.js", "--wit", "wit", "--world-name", world, "-o", &out, "-d", "http", "fetch-event"];
    let mut command = Command::new(tool);
    command.args(args).current_dir(dir);
    run(command, "componentize-js")?;
    Ok(format!("componentize-js app.js --wit wit --world-name {world} -o build/{world}.wasm -d http fetch-event"))
}

fn toolchain_version(lang: Language) -> String {
    let (tool, arg) = match lang {
        Language::Rust => ("rustc", "--version"),
        Language::Python => ("componentize-py", "--version"),
        Language::Js => return COMPONENTIZE_JS.to_string(),
    };
    Command::new(tool)
        .arg(arg)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| tool.to_string())
}

/// Folders that hold build output or fetched dependencies, not source.
const NOT_SOURCE: [&str; 5] = ["build", "target", "node_modules", ".git", "__pycache__"];

/// A digest over the project's source files: each relative path and its contents, sorted.
fn source_digest(dir: &Path) -> Result<String> {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                if !NOT_SOURCE.contains(&name.as_ref()) {
                    walk(root, &path, files)?;
                }
            } else if path.is_file() && !name.ends_with(".alloy") {
                files.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(f.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(dir.join(&f))?);
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}
