//! Where Continuum keeps its files: the data directory and the layout inside it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Environment variable that overrides the data directory.
pub const HOME_ENV: &str = "CONTINUUM_HOME";

/// The files and folders inside one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Resolves the data directory: `explicit` (from `--data-dir`), else `$CONTINUUM_HOME`,
    /// else the platform's data directory (`~/.local/share/continuum` on Linux), and creates it.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        let root = match explicit {
            Some(p) => p.to_path_buf(),
            None => match std::env::var_os(HOME_ENV) {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => directories::ProjectDirs::from("", "", "continuum")
                    .context("cannot find a home directory for the data dir; pass --data-dir or set CONTINUUM_HOME")?
                    .data_dir()
                    .to_path_buf(),
            },
        };
        Self::at(root)
    }

    /// Uses `root` as the data directory, creating it and its subfolders.
    pub fn at(root: PathBuf) -> Result<Self> {
        let dir = DataDir { root };
        for sub in [dir.components(), dir.compiled()] {
            std::fs::create_dir_all(&sub).with_context(|| format!("cannot create data directory {}", sub.display()))?;
        }
        Ok(dir)
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database: registry, plugin stores, events.
    pub fn database(&self) -> PathBuf {
        self.root.join("continuum.db")
    }

    /// The operator's configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("continuum.toml")
    }

    /// Installed component bytes, one file per digest.
    pub fn components(&self) -> PathBuf {
        self.root.join("components")
    }

    /// Precompiled (AOT) components, keyed by digest and engine compatibility hash.
    pub fn compiled(&self) -> PathBuf {
        self.root.join("compiled")
    }

    /// The model catalog (`continuum model add`), one folder per model.
    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }
}
