//! `continuum:host/store`: a key-value store private to each plugin, in the host's SQLite
//! database. The plugin's namespace comes from the call, never from the key, so no key can
//! reach another plugin's entries.

use rusqlite::{params, Connection, OptionalExtension};
use wasmtime::component::{HasData, Linker};

use super::continuum::host::store::{Host, StoreError};
use super::{CallState, Metered, Trappable};
use crate::runtime::HostCore;

/// Table of every plugin's entries (keyed by namespace: [`purge`] deletes one's).
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

/// Deletes every entry of `namespace` (its part of [`crate::registry::purge`]).
pub fn purge(conn: &Connection, namespace: &str) -> anyhow::Result<()> {
    conn.execute("DELETE FROM kv WHERE plugin = ?1", [namespace])?;
    Ok(())
}

/// What `continuum:host/store` sees of a call: the host's database and the namespace whose
/// entries the call reads and writes.
pub struct StoreHost<'a> {
    /// The host, for its database.
    core: &'a HostCore,
    /// Whose entries the call uses.
    namespace: &'a str,
}

/// The [`HasData`] marker of this interface's view ([`StoreHost`], behind the host-call
/// budget): the `D` of the generated `add_to_linker`.
pub struct HasStoreHost;

impl HasData for HasStoreHost {
    type Data<'a> = Metered<'a, StoreHost<'a>>;
}

/// Links `continuum:host/store`, each of its calls served by the call's [`StoreHost`].
pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    super::continuum::host::store::add_to_linker::<_, HasStoreHost>(linker, project)
}

/// The call's view for this interface, behind the store's host-call budget.
fn project(state: &mut CallState) -> Metered<'_, StoreHost<'_>> {
    let call = &state.call;
    Metered::new(&mut state.host_calls, StoreHost { core: &call.core, namespace: &call.namespace })
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(StoreError::InvalidKey(format!("keys must be 1 to {MAX_KEY} bytes, got {}", key.len())));
    }
    Ok(())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl StoreHost<'_> {
    /// The namespace's keys that start with `prefix`, in byte order, at most `limit` (capped).
    fn list_keys(&self, prefix: &str, limit: u32) -> rusqlite::Result<Vec<String>> {
        let db = self.core.db();
        let mut stmt = db.prepare_cached(
            "SELECT key FROM kv WHERE plugin = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![self.namespace, prefix, limit.min(MAX_LIST)], |r| r.get(0))?;
        rows.collect()
    }
}

impl Host for Metered<'_, StoreHost<'_>> {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Trappable<StoreError>> {
        let store = self.enter()?;
        check_key(&key)?;
        let db = store.core.db();
        let value = db
            .query_row("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2", params![store.namespace, key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)?;
        Ok(value)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Trappable<StoreError>> {
        let store = self.enter()?;
        check_key(&key)?;
        if value.len() > MAX_VALUE {
            return Err(StoreError::ValueTooLarge(value.len() as u64).into());
        }
        let db = store.core.db();
        db.execute(
            "INSERT OR REPLACE INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)",
            params![store.namespace, key, value],
        )
        .map_err(backend)?;
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<bool, Trappable<StoreError>> {
        let store = self.enter()?;
        check_key(&key)?;
        let db = store.core.db();
        let deleted = db
            .execute("DELETE FROM kv WHERE plugin = ?1 AND key = ?2", params![store.namespace, key])
            .map_err(backend)?;
        Ok(deleted > 0)
    }

    fn keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, Trappable<StoreError>> {
        let keys = self.enter()?.list_keys(&prefix, limit).map_err(backend)?;
        Ok(keys)
    }

    fn convert_store_error(&mut self, error: Trappable<StoreError>) -> wasmtime::Result<StoreError> {
        error.into_wit()
    }
}
