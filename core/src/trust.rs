//! The trust store: publisher keys whose signatures this node accepts without an override.

use anyhow::{bail, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::keys::{parse_public, public_hex};

/// Table of trusted publisher keys.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "trust",
    migrations: &["
CREATE TABLE IF NOT EXISTS trust (
    public_key TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    added_at   INTEGER NOT NULL,
    approves   TEXT NOT NULL
) STRICT;
"],
};

/// A trusted publisher.
#[derive(Debug, Clone, Serialize)]
pub struct Trusted {
    /// The publisher's public key, hex.
    pub public_key: String,
    /// The operator's name for it.
    pub name: String,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: i64,
    /// Host capabilities pre-approved for this publisher's plugins.
    pub approves: Vec<String>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Trusted> {
    let approves: String = r.get(3)?;
    Ok(Trusted {
        public_key: r.get(0)?,
        name: r.get(1)?,
        added_at: r.get(2)?,
        approves: serde_json::from_str(&approves).unwrap_or_default(),
    })
}

/// Trusts `public_key` under `name`, pre-approving host capabilities `approves` for its plugins.
pub fn add(conn: &Connection, public_key: &str, name: &str, approves: &[String]) -> Result<Trusted> {
    if let Some(unknown) = approves.iter().find(|a| !crate::host_api::HOST_CAPABILITIES.contains(&a.as_str())) {
        bail!("unknown capability `{unknown}`; the host offers {}", crate::host_api::HOST_CAPABILITIES.join(", "));
    }
    let key = public_hex(&parse_public(public_key)?);
    if let Some(existing) = find(conn, &key)? {
        bail!("key {} is already trusted as `{}`", &key[..16], existing.name);
    }
    if find(conn, name)?.is_some() {
        bail!("the name `{name}` is already used in the trust store; choose another or remove it first");
    }
    let added_at = crate::now_secs();
    conn.execute(
        "INSERT INTO trust (public_key, name, added_at, approves) VALUES (?1, ?2, ?3, ?4)",
        params![key, name, added_at, serde_json::to_string(approves)?],
    )?;
    Ok(Trusted { public_key: key, name: name.to_string(), added_at, approves: approves.to_vec() })
}

/// The trusted entry whose key or name is `key_or_name`.
pub fn find(conn: &Connection, key_or_name: &str) -> Result<Option<Trusted>> {
    Ok(conn
        .query_row(
            "SELECT public_key, name, added_at, approves FROM trust WHERE public_key = ?1 OR name = ?1",
            [key_or_name.trim()],
            row,
        )
        .optional()?)
}

/// Every trusted key, by name.
pub fn list(conn: &Connection) -> Result<Vec<Trusted>> {
    let mut stmt = conn.prepare("SELECT public_key, name, added_at, approves FROM trust ORDER BY name")?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stops trusting the key with this key or name; returns what was removed.
pub fn remove(conn: &Connection, key_or_name: &str) -> Result<Trusted> {
    let Some(entry) = find(conn, key_or_name)? else {
        bail!("`{key_or_name}` is not in the trust store; see `continuum trust list`");
    };
    conn.execute("DELETE FROM trust WHERE public_key = ?1", [&entry.public_key])?;
    Ok(entry)
}
