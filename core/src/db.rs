//! The host's SQLite database: one file in the data directory, shared safely by several
//! `continuum` processes (WAL journal, busy timeout, every write in a transaction), readable
//! by its owner only. Each module owns its tables and their versioned steps ([`Schema`]).

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of WAL kept when it restarts: above the ≈ 4.1 MB of a 1 000-page autocheckpoint.
const WAL_SIZE_LIMIT: i64 = 8 << 20;

/// The tables one module owns, as the ordered steps that built them: step *n* runs once, on
/// a database at version *n − 1* of that owner. A step is never edited once released; a change
/// is a new step. The first step of each owner is written `IF NOT EXISTS`: data directories
/// from before versioning already hold those tables, unrecorded.
pub struct Schema {
    /// The owning module, the key of its version in `schema_versions`.
    pub owner: &'static str,
    /// The steps, oldest first (SQL batches).
    pub migrations: &'static [&'static str],
}

/// The version of every owner's tables.
const VERSIONS: &str = "
CREATE TABLE IF NOT EXISTS schema_versions (
    owner   TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) STRICT;
";

/// Opens (creating if needed) the database at `path`; [`migrate`] brings tables up to date.
pub fn open(path: &Path) -> Result<Connection> {
    make_private(path)?;
    let conn = Connection::open(path).with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL").context("cannot switch the database to WAL mode")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    persist_wal(&conn)?;
    // With any size limit set, the last connection to close truncates the kept WAL to zero
    // once its frames are all in the database. Without one, those frames stayed valid, and every
    // new process rebuilt its WAL index by reading and checksumming all of them (up to the
    // 1 000 pages of an autocheckpoint), then checkpointed them all again at its close. The
    // limit itself sits above that autocheckpoint size, so a running node never trims its WAL
    // between checkpoints; a WAL grown past it (a checkpoint held back by readers) is trimmed
    // back when it restarts.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Ok(conn)
}

/// Keeps the `-wal` file when the last connection closes (it is still checkpointed into the
/// database then). Otherwise every command-line process created it anew, which SQLite follows
/// with a sync of the data directory, and deleted it on exit (≈ 0.5 ms of each `continuum run`).
fn persist_wal(conn: &Connection) -> Result<()> {
    let mut on: std::ffi::c_int = 1;
    // SAFETY: the handle is `conn`'s open connection, and SQLITE_FCNTL_PERSIST_WAL reads and
    // writes the one int it is given.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        )
    };
    anyhow::ensure!(rc == rusqlite::ffi::SQLITE_OK, "cannot keep the database's WAL file (SQLite error {rc})");
    Ok(())
}

/// Runs, in one transaction, every step of `schemas` the database has not run yet. A database
/// written by a newer version (an owner past its last step here) is refused, not guessed at.
pub fn migrate(conn: &mut Connection, schemas: &[&Schema]) -> Result<()> {
    // The common case, every owner current, is read without taking the write lock.
    if up_to_date(conn, schemas)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(VERSIONS)?;
    for schema in schemas {
        let version: i64 = tx
            .query_row("SELECT version FROM schema_versions WHERE owner = ?1", [schema.owner], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let known = schema.migrations.len() as i64;
        anyhow::ensure!(
            version <= known,
            "the tables of `{}` are at version {version}, newer than this continuum knows ({known}): \
             the data directory was written by a newer version; upgrade continuum to open it",
            schema.owner
        );
        for (step, sql) in schema.migrations.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)
                .with_context(|| format!("cannot upgrade the tables of `{}` to version {}", schema.owner, step + 1))?;
        }
        if version < known {
            tx.execute(
                "INSERT INTO schema_versions (owner, version) VALUES (?1, ?2)
                 ON CONFLICT(owner) DO UPDATE SET version = excluded.version",
                rusqlite::params![schema.owner, known],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Whether every owner of `schemas` is at its last step.
fn up_to_date(conn: &Connection, schemas: &[&Schema]) -> Result<bool> {
    let recorded: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions')",
        [],
        |r| r.get(0),
    )?;
    if !recorded {
        return Ok(false);
    }
    let mut version = conn.prepare("SELECT version FROM schema_versions WHERE owner = ?1")?;
    for schema in schemas {
        let current: Option<i64> = version.query_row([schema.owner], |r| r.get(0)).optional()?;
        if current != Some(schema.migrations.len() as i64) {
            return Ok(false);
        }
    }
    Ok(true)
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
