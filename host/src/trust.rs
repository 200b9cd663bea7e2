//! The trust store: publisher keys whose signatures this node accepts without an override.

use anyhow::{bail, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::keys::{parse_public, public_hex};

/// Table of trusted publisher keys.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS trust (
    public_key TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    added_at   INTEGER NOT NULL
) STRICT;
";

/// A trusted publisher.
#[derive(Debug, Clone, Serialize)]
pub struct Trusted {
    /// The publisher's public key, hex.
    pub public_key: String,
    /// The operator's name for it.
    pub name: String,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: i64,
}

/// Trusts `public_key` under `name`.
pub fn add(conn: &Connection, public_key: &str, name: &str) -> Result<Trusted> {
    let key = public_hex(&parse_public(public_key)?);
    if let Some(existing) = find(conn, &key)? {
        bail!("key {} is already trusted as `{}`", &key[..16], existing.name);
    }
    if find(conn, name)?.is_some() {
        bail!("the name `{name}` is already used in the trust store; choose another or remove it first");
    }
    let added_at = crate::now_secs();
    conn.execute("INSERT INTO trust (public_key, name, added_at) VALUES (?1, ?2, ?3)", params![key, name, added_at])?;
    Ok(Trusted { public_key: key, name: name.to_string(), added_at })
}

/// The trusted entry whose key or name is `key_or_name`.
pub fn find(conn: &Connection, key_or_name: &str) -> Result<Option<Trusted>> {
    Ok(conn
        .query_row(
            "SELECT public_key, name, added_at FROM trust WHERE public_key = ?1 OR name = ?1",
            [key_or_name.trim()],
            |r| Ok(Trusted { public_key: r.get(0)?, name: r.get(1)?, added_at: r.get(2)? }),
        )
        .optional()?)
}

/// Every trusted key, by name.
pub fn list(conn: &Connection) -> Result<Vec<Trusted>> {
    let mut stmt = conn.prepare("SELECT public_key, name, added_at FROM trust ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok(Trusted { public_key: r.get(0)?, name: r.get(1)?, added_at: r.get(2)? }))?;
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
