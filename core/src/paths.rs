//! Where Continuum keeps its files: the data directory and the layout inside it. The data
//! directory holds keys, plugin stores and compiled code, so it is its owner's alone: it and
//! its folders are 0700, and the files written through [`write_private`] 0600, whatever the
//! umask.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Environment variable that overrides the data directory.
pub const HOME_ENV: &str = "CONTINUUM_HOME";

/// The database's file name in the data directory.
pub const DATABASE: &str = "continuum.db";

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

    /// Uses `root` as the data directory, creating it and its subfolders with mode 0700. One
    /// that already exists with permissions for group or others is restricted to its owner,
    /// with a warning, rather than refused: another local user must not read its stores or
    /// change its compiled code.
    pub fn at(root: PathBuf) -> Result<Self> {
        let dir = DataDir { root };
        for sub in [dir.root.clone(), dir.components(), dir.compiled()] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&sub)
                .with_context(|| format!("cannot create data directory {}", sub.display()))?;
            restrict_to_owner(&sub)?;
        }
        Ok(dir)
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database: registry, plugin stores, events.
    pub fn database(&self) -> PathBuf {
        self.root.join(DATABASE)
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

/// Takes every permission of group and others away from `path`, if it exists and has any,
/// with a warning that names what it was; fails, saying how to fix it, if that is not allowed.
pub fn restrict_to_owner(path: &Path) -> Result<()> {
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read the permissions of {}", path.display())),
    };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)).with_context(|| {
        format!(
            "{} is open to other users (mode {:03o}) and cannot be restricted to its owner; \
             run `chmod go-rwx {}` as its owner",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })?;
    tracing::warn!(
        "{} was open to other users (mode {:03o}); restricted it to its owner (mode {:03o})",
        path.display(),
        mode & 0o777,
        mode & 0o700
    );
    Ok(())
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, then renamed over it),
/// readable and writable by the owner only (mode 0600) whatever the umask.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // tempfile creates its files with mode 0600; the umask can only take bits away.
    let written = tempfile::NamedTempFile::new_in(dir)
        .and_then(|mut file| file.write_all(bytes).map(|()| file))
        .and_then(|file| file.persist(path).map_err(|e| e.error));
    written.map(drop).with_context(|| format!("cannot write {}", path.display()))
}
