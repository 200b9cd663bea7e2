//! `continuum:host/store`: a key-value store private to each plugin, in the host's SQLite
//! database. The plugin's namespace comes from the call, never from the key, so no key can
//! reach another plugin's entries.

use rusqlite::{params, OptionalExtension};

use super::continuum::host::store::{Host, StoreError};
use super::CallState;

/// Table of every plugin's entries (keyed by namespace: [`crate::registry::purge`] deletes one's).
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "store",
    migrations: &["
CREATE TABLE IF NOT EXISTS kv (
    plugin TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (plugin, key)
) STRICT, WITHOUT ROWID;
"],
};

/// Longest key, in bytes.
pub const MAX_KEY: usize = 1024;
/// Largest value, in bytes.
pub const MAX_VALUE: usize = 1 << 20;
/// Most keys one `keys` call returns.
pub const MAX_LIST: u32 = 10_000;

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(StoreError::InvalidKey(format!("keys must be 1 to {MAX_KEY} bytes, got {}", key.len())));
    }
    Ok(())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl Host for CallState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, StoreError>> {
        self.host_call()?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let db = self.call.core.db();
        Ok(db
            .query_row("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2", params![self.call.namespace, key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), StoreError>> {
        self.host_call()?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_VALUE {
            return Ok(Err(StoreError::ValueTooLarge(value.len() as u64)));
        }
        let db = self.call.core.db();
        Ok(db
            .execute(
                "INSERT OR REPLACE INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)",
                params![self.call.namespace, key, value],
            )
            .map(|_| ())
            .map_err(backend))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, StoreError>> {
        self.host_call()?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let db = self.call.core.db();
        Ok(db
            .execute("DELETE FROM kv WHERE plugin = ?1 AND key = ?2", params![self.call.namespace, key])
            .map(|n| n > 0)
            .map_err(backend))
    }

    fn keys(&mut self, prefix: String, limit: u32) -> wasmtime::Result<Result<Vec<String>, StoreError>> {
        self.host_call()?;
        let db = self.call.core.db();
        let result = (|| {
            let mut stmt = db.prepare_cached(
                "SELECT key FROM kv WHERE plugin = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![self.call.namespace, prefix, limit.min(MAX_LIST)], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        })();
        Ok(result.map_err(backend))
    }
}
