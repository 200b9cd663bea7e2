//! The signed head kept outside the database: `log.head` beside `continuum.db` holds the
//! latest checkpoint (seq, head hash, signature) this node wrote. Deleting rows from the end
//! of the log together with their checkpoints leaves a chain that verifies on its own; the
//! file still names the later head, so `events verify` sees the cut.
//!
//! The writer thread refreshes the file at most every [`INTERVAL`] (written to a temporary
//! name, then renamed over the old one, so it is never torn), after answering the group's
//! appenders: commits never wait for it. What it cannot see is documented in
//! `docs/eventlog.md`: a cut of entries committed within the last interval, or the file
//! replaced together with the database by someone holding the node's key.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::chain::Checkpoint;

/// Longest the file lags behind the last commit while the writer is busy.
pub const INTERVAL: Duration = Duration::from_millis(50);
/// The file's name, in the database's folder.
pub const FILE_NAME: &str = "log.head";

/// Where the signed head of the log in `database` is kept.
pub fn path_for(database: &Path) -> PathBuf {
    database.with_file_name(FILE_NAME)
}

/// Reads the signed head, if the file exists.
pub fn read(path: &Path) -> Result<Option<Checkpoint>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Replaces the file with `checkpoint`, unless it already names a later one (another process
/// on the same data directory may have written it).
fn write(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    if read(path).ok().flatten().is_some_and(|held| held.seq > checkpoint.seq) {
        return Ok(());
    }
    crate::paths::write_private(path, serde_json::to_string(checkpoint)?.as_bytes())
}

/// The writer's side: the latest checkpoint not yet written, and when the file was last written.
pub struct HeadFile {
    path: Option<PathBuf>,
    pending: Option<Checkpoint>,
    written: Instant,
}

impl HeadFile {
    /// Keeps the signed head at `path` (none: not kept, for logs without a data directory).
    pub fn new(path: Option<PathBuf>) -> HeadFile {
        HeadFile { path, pending: None, written: Instant::now() - INTERVAL }
    }

    /// Notes a newly committed checkpoint; writes it at once if the file is older than [`INTERVAL`].
    pub fn committed(&mut self, checkpoint: Checkpoint) {
        self.pending = Some(checkpoint);
        if self.written.elapsed() >= INTERVAL {
            self.flush();
        }
    }

    /// Writes the pending checkpoint, if any (a failure is logged: the log itself is committed).
    pub fn flush(&mut self) {
        if let (Some(path), Some(cp)) = (&self.path, self.pending.take()) {
            if let Err(e) = write(path, &cp) {
                tracing::warn!("cannot write the log's signed head {}: {e:#}", path.display());
            }
            self.written = Instant::now();
        }
    }
}
