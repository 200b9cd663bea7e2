//! The models directory: each model is a folder `<models>/<id>/` holding its files and a
//! `model.toml` (kind, files with their sha256, where it came from). Files are validated
//! before they are copied in, so a model in the catalog is one the engines can load.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::gguf;

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A GGUF language model for llama.cpp (text generation).
    Llm,
    /// A BERT sentence-embedding model in safetensors (candle).
    Embedding,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Llm => "llm",
            ModelKind::Embedding => "embedding",
        })
    }
}

/// One file of a model and its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelFile {
    /// File name inside the model's folder.
    pub name: String,
    /// Hex sha256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A model in the catalog (`model.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The id commands use to name it.
    pub id: String,
    /// What it is for.
    pub kind: ModelKind,
    /// Architecture (`llama`, `bert`, …).
    pub architecture: String,
    /// Context length for an LLM; maximum sequence length for an embedding model.
    pub context_length: u64,
    /// Output dimensions of an embedding model (0 for an LLM).
    pub dimensions: u64,
    /// Where it was added from.
    pub source: String,
    /// Its files.
    pub files: Vec<ModelFile>,
}

impl ModelEntry {
    /// Total size of its files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// The files an embedding model folder must hold.
pub const EMBEDDING_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];
/// The file name of an LLM inside its folder.
pub const LLM_FILE: &str = "model.gguf";

/// The models directory.
#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
}

impl Catalog {
    /// The catalog kept under `root` (created on first add).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Catalog { root: root.into() }
    }

    /// The folder of model `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Every model, sorted by id. Folders without a readable `model.toml` are skipped with a warning.
    pub fn list(&self) -> anyhow::Result<Vec<ModelEntry>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => anyhow::bail!("cannot read the models directory {}: {e}", self.root.display()),
        };
        for entry in entries.flatten() {
            let manifest = entry.path().join("model.toml");
            match fs::read_to_string(&manifest).map_err(anyhow::Error::from).and_then(|t| Ok(toml::from_str(&t)?)) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!("skipping {}: {e}", manifest.display()),
            }
        }
        out.sort_by(|a: &ModelEntry, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Model `id`, or an error naming the models that exist.
    pub fn get(&self, id: &str) -> Result<ModelEntry, crate::ModelError> {
        let all = self.list().map_err(|e| crate::ModelError::Unusable { id: id.into(), reason: e.to_string() })?;
        all.iter().find(|m| m.id == id).cloned().ok_or_else(|| crate::ModelError::Unknown {
            id: id.into(),
            available: all.iter().map(|m| m.id.clone()).collect(),
        })
    }

    /// The first model of `kind` (ids sorted), for requests that name none.
    pub fn default_of(&self, kind: ModelKind) -> Option<ModelEntry> {
        self.list().ok()?.into_iter().find(|m| m.kind == kind)
    }

    /// Validates `source` (a `.gguf` file, or a folder with [`EMBEDDING_FILES`]), copies it in
    /// as model `id` and records its digests. Refuses an id that exists.
    pub fn add(&self, id: &str, source: &Path) -> anyhow::Result<ModelEntry> {
        check_id(id)?;
        let dir = self.dir(id);
        if dir.join("model.toml").exists() {
            anyhow::bail!("model `{id}` already exists; remove it first with `continuum model remove {id}`");
        }
        let (kind, architecture, context_length, dimensions, sources) = inspect(source)?;
        let staging = self.root.join(format!(".adding-{id}"));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging)?;
        let mut files = Vec::new();
        for (name, from) in sources {
            let to = staging.join(&name);
            // A hard link is instant for 100 MB models; copy across file systems.
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to).map_err(|e| anyhow::anyhow!("cannot copy {}: {e}", from.display()))?;
            }
            let (sha256, bytes) = digest(&to)?;
            files.push(ModelFile { name, sha256, bytes });
        }
        let entry = ModelEntry {
            id: id.into(),
            kind,
            architecture,
            context_length,
            dimensions,
            source: source.display().to_string(),
            files,
        };
        fs::write(staging.join("model.toml"), toml::to_string_pretty(&entry)?)?;
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&staging, &dir)?;
        Ok(entry)
    }

    /// Removes model `id` and its files.
    pub fn remove(&self, id: &str) -> Result<ModelEntry, crate::ModelError> {
        let entry = self.get(id)?;
        fs::remove_dir_all(self.dir(id))
            .map_err(|e| crate::ModelError::Unusable { id: id.into(), reason: format!("cannot remove it: {e}") })?;
        Ok(entry)
    }

    /// Checks that model `id`'s files still match the digests recorded when it was added.
    pub fn verify(&self, entry: &ModelEntry) -> Result<(), crate::ModelError> {
        for file in &entry.files {
            let path = self.dir(&entry.id).join(&file.name);
            let (sha256, _) = digest(&path)
                .map_err(|e| crate::ModelError::Unusable { id: entry.id.clone(), reason: e.to_string() })?;
            if sha256 != file.sha256 {
                return Err(crate::ModelError::Unusable {
                    id: entry.id.clone(),
                    reason: format!(
                        "{} changed since it was added (sha256 {sha256}, expected {})",
                        file.name, file.sha256
                    ),
                });
            }
        }
        Ok(())
    }
}

fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        && !id.starts_with('.');
    anyhow::ensure!(ok, "model id `{id}` must be 1-64 characters of a-z, 0-9, `-`, `_` or `.`, not starting with `.`");
    Ok(())
}

type Inspected = (ModelKind, String, u64, u64, Vec<(String, PathBuf)>);

/// Works out what `source` is and validates it without loading it into an engine.
fn inspect(source: &Path) -> anyhow::Result<Inspected> {
    if source.is_file() {
        let summary = gguf::validate(source)?;
        anyhow::ensure!(
            summary.has_vocabulary,
            "{} has no tokenizer vocabulary (`tokenizer.ggml.tokens`), so it cannot generate text",
            source.display()
        );
        let ctx = summary.context_length.unwrap_or(2048);
        return Ok((ModelKind::Llm, summary.architecture, ctx, 0, vec![(LLM_FILE.into(), source.to_path_buf())]));
    }
    if source.is_dir() {
        let missing: Vec<&str> = EMBEDDING_FILES.iter().copied().filter(|f| !source.join(f).is_file()).collect();
        anyhow::ensure!(
            missing.is_empty(),
            "{} is a folder but lacks {} (an embedding model needs {})",
            source.display(),
            missing.join(", "),
            EMBEDDING_FILES.join(", ")
        );
        let (config, dims, ctx) = crate::embed::check_files(source)?;
        let files = EMBEDDING_FILES.iter().map(|f| (f.to_string(), source.join(f))).collect();
        return Ok((ModelKind::Embedding, config, ctx, dims, files));
    }
    anyhow::bail!("{} does not exist (give a .gguf file or an embedding model folder)", source.display())
}

/// Hex sha256 and size of a file.
pub fn digest(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), total))
}
