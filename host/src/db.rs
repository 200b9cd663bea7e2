//! The host's SQLite database: one file in the data directory, shared safely by several
//! `continuum` processes (WAL journal, busy timeout, every write in a transaction), readable
//! by its owner only.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::Connection;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    make_private(path)?;
    let conn = Connection::open(path).with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL").context("cannot switch the database to WAL mode")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(crate::registry::SCHEMA)?;
    conn.execute_batch(crate::host_api::store::SCHEMA)?;
    conn.execute_batch(crate::host_api::training::SCHEMA)?;
    conn.execute_batch(crate::discovery::SCHEMA)?;
    conn.execute_batch(crate::eventlog::SCHEMA)?;
    conn.execute_batch(crate::trust::SCHEMA)?;
    conn.execute_batch(crate::grants::SCHEMA)?;
    conn.execute_batch(crate::engine::SCHEMA)?;
    conn.execute_batch(crate::grid::peers::SCHEMA)?;
    conn.execute_batch(crate::node::auth::SCHEMA)?;
    Ok(conn)
}

/// Creates the database file, if missing, with mode 0600 whatever the umask (empty: SQLite
/// takes that for a new database), and restricts an existing one and its `-wal` and `-shm`
/// files to their owner. SQLite creates `-wal` and `-shm` with the database file's own mode,
/// so they are 0600 too.
fn make_private(path: &Path) -> Result<()> {
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create database {}", path.display())),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        crate::paths::restrict_to_owner(Path::new(&file))?;
    }
    Ok(())
}
