//! The host's SQLite database: one file in the data directory, shared safely by several
//! `continuum` processes (WAL journal, busy timeout, every write in a transaction).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::Connection;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
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
    conn.execute_batch(crate::grid::peers::SCHEMA)?;
    conn.execute_batch(crate::node::auth::SCHEMA)?;
    Ok(conn)
}
