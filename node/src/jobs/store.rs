//! The `jobs` table: one row per job, written at each change of state, so a restarted node
//! knows every job it held (those it was running come back `interrupted`, never lost).

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{JobError, JobState, JobView};
use continuum_core::Outcome;

/// The jobs this node holds, and the jobs it follows on peers.
pub const SCHEMA: continuum_core::db::Schema = continuum_core::db::Schema {
    owner: "jobs",
    migrations: &["
CREATE TABLE IF NOT EXISTS jobs (
    id           TEXT PRIMARY KEY,
    command      TEXT NOT NULL,
    caller       TEXT NOT NULL,
    peer         TEXT,
    remote_id    TEXT,
    state        TEXT NOT NULL,
    submitted_ms INTEGER NOT NULL,
    started_ms   INTEGER,
    finished_ms  INTEGER,
    result       TEXT,
    error        TEXT,
    output       TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS jobs_by_caller ON jobs (caller, submitted_ms);
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs (finished_ms);
"],
};

/// Most jobs one list returns (newest first).
pub const LIST_LIMIT: u32 = 500;

const COLUMNS: &str =
    "id, command, caller, peer, remote_id, state, submitted_ms, started_ms, finished_ms, result, error, output";

/// A job as a row reads.
fn view(row: &Row) -> rusqlite::Result<JobView> {
    let state: String = row.get(5)?;
    let json = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
        Ok(row.get::<_, Option<String>>(i)?.and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(JobView {
        id: row.get(0)?,
        command: row.get(1)?,
        caller: row.get(2)?,
        peer: row.get(3)?,
        remote_id: row.get(4)?,
        state: serde_json::from_value(serde_json::Value::String(state)).unwrap_or(JobState::Failed),
        submitted_ms: row.get(6)?,
        started_ms: row.get(7)?,
        finished_ms: row.get(8)?,
        result: json(9)?,
        error: json(10)?.and_then(|e| serde_json::from_value(e).ok()),
        output: row.get(11)?,
        progress: None,
        lease_ms: None,
        receipt: None,
    })
}

/// Writes `job` as it now is (insert or replace).
pub fn put(conn: &Connection, job: &JobView) -> Result<()> {
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    let error = job.error.as_ref().map(serde_json::to_string).transpose()?;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO jobs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(params![
        job.id,
        job.command,
        job.caller,
        job.peer,
        job.remote_id,
        job.state.as_str(),
        job.submitted_ms,
        job.started_ms,
        job.finished_ms,
        json(&job.result),
        error,
        job.output,
    ])?;
    Ok(())
}

/// Job `id`, if this node holds it.
pub fn get(conn: &Connection, id: &str) -> Result<Option<JobView>> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), [id], view).optional()?)
}

/// The newest jobs of `caller` (every caller's when `None`), newest first.
pub fn list(conn: &Connection, caller: Option<&str>) -> Result<Vec<JobView>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE ?1 IS NULL OR caller = ?1 ORDER BY submitted_ms DESC, id LIMIT {LIST_LIMIT}"
    ))?;
    let rows = stmt.query_map([caller], view)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks every job that was queued or running when the node stopped `interrupted`; the ids.
pub fn interrupt_unfinished(conn: &Connection) -> Result<Vec<String>> {
    let error = serde_json::to_string(&JobError {
        code: Outcome::Interrupted,
        message: "the node stopped while this job was queued or running; submit it again".into(),
        value: None,
    })?;
    let mut stmt = conn.prepare("SELECT id FROM jobs WHERE state IN ('queued', 'running')")?;
    let ids: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    conn.execute(
        "UPDATE jobs SET state = 'interrupted', finished_ms = ?1, error = ?2 WHERE state IN ('queued', 'running')",
        params![continuum_core::now_ms(), error],
    )?;
    Ok(ids)
}

/// Forgets jobs that finished before `before_ms`; how many.
pub fn expire(conn: &Connection, before_ms: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM jobs WHERE finished_ms IS NOT NULL AND finished_ms < ?1", [before_ms])?)
}
