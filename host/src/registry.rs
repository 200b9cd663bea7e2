//! The registry of installed plugins (SQLite table `plugins`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::access::Access;
use crate::reflect::wit_source::WitSource;
use crate::reflect::CommandSchema;

/// Table of installed plugins.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "registry",
    migrations: &["
CREATE TABLE IF NOT EXISTS plugins (
    name         TEXT PRIMARY KEY,
    digest       TEXT NOT NULL,
    description  TEXT,
    world        TEXT NOT NULL,
    wit          TEXT NOT NULL,
    commands     TEXT NOT NULL,
    imports      TEXT NOT NULL,
    source       TEXT NOT NULL,
    installed_at INTEGER NOT NULL,
    version      TEXT,
    signer       TEXT,
    manifest     TEXT,
    custody      TEXT,
    approved     TEXT NOT NULL,
    access       TEXT NOT NULL
) STRICT;
"],
};

/// One installed plugin as recorded in the registry.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRecord {
    /// The plugin's name: the first segment of its command names.
    pub name: String,
    /// sha256 of the component bytes, hex.
    pub digest: String,
    /// The world's doc comment.
    pub description: Option<String>,
    /// The WIT world the plugin implements.
    pub world: String,
    /// The WIT source carried with the plugin.
    #[serde(skip)]
    pub wit: WitSource,
    /// Reflected commands.
    pub commands: Vec<CommandSchema>,
    /// The component's imports (its requested capabilities).
    pub imports: Vec<String>,
    /// Where it was installed from.
    pub source: String,
    /// Install time, seconds since the Unix epoch.
    pub installed_at: i64,
    /// Version from the alloy manifest (none for a development install).
    pub version: Option<String>,
    /// Public key (hex) that signed the alloy (none for a development install).
    pub signer: Option<String>,
    /// The alloy manifest's exact text.
    #[serde(skip)]
    pub manifest: Option<String>,
    /// The chain of custody as installed.
    #[serde(skip)]
    pub custody: Option<String>,
    /// The host capabilities the operator approved (only these are linked).
    pub approved: Vec<String>,
    /// Access level per command (unlisted: `granted`).
    pub access: BTreeMap<String, Access>,
}

type Row = (PluginRecord, [String; 5]);

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        PluginRecord {
            name: row.get(0)?,
            digest: row.get(1)?,
            description: row.get(2)?,
            world: row.get(3)?,
            wit: WitSource::default(),
            commands: Vec::new(),
            imports: Vec::new(),
            source: row.get(7)?,
            installed_at: row.get(8)?,
            version: row.get(9)?,
            signer: row.get(10)?,
            manifest: row.get(11)?,
            custody: row.get(12)?,
            approved: Vec::new(),
            access: BTreeMap::new(),
        },
        [row.get(4)?, row.get(5)?, row.get(6)?, row.get(13)?, row.get(14)?],
    ))
}

fn decode((mut rec, [wit, commands, imports, approved, access]): Row) -> Result<PluginRecord> {
    let ctx = || format!("registry entry of plugin `{}` is corrupt; remove and re-install it", rec.name);
    rec.wit = serde_json::from_str(&wit).with_context(ctx)?;
    rec.commands = serde_json::from_str(&commands).with_context(ctx)?;
    rec.imports = serde_json::from_str(&imports).with_context(ctx)?;
    rec.approved = serde_json::from_str(&approved).with_context(ctx)?;
    rec.access = serde_json::from_str(&access).with_context(ctx)?;
    Ok(rec)
}

const COLUMNS: &str =
    "name, digest, description, world, wit, commands, imports, source, installed_at, version, signer, manifest, custody, approved, access";

/// Records `plugin`, replacing any earlier install of the same name.
pub fn put(conn: &Connection, plugin: &PluginRecord) -> Result<()> {
    conn.execute(
        &format!("INSERT OR REPLACE INTO plugins ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
        params![
            plugin.name,
            plugin.digest,
            plugin.description,
            plugin.world,
            serde_json::to_string(&plugin.wit)?,
            serde_json::to_string(&plugin.commands)?,
            serde_json::to_string(&plugin.imports)?,
            plugin.source,
            plugin.installed_at,
            plugin.version,
            plugin.signer,
            plugin.manifest,
            plugin.custody,
            serde_json::to_string(&plugin.approved)?,
            serde_json::to_string(&plugin.access)?,
        ],
    )?;
    Ok(())
}

/// The plugin called `name`, if installed.
pub fn get(conn: &Connection, name: &str) -> Result<Option<PluginRecord>> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM plugins WHERE name = ?1"), [name], from_row)
        .optional()?
        .map(decode)
        .transpose()
}

/// Every installed plugin, by name.
pub fn list(conn: &Connection) -> Result<Vec<PluginRecord>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM plugins ORDER BY name"))?;
    let rows = stmt.query_map([], from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(decode).collect()
}

/// Removes plugin `name`; returns whether it was installed.
pub fn remove(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM plugins WHERE name = ?1", [name])? > 0)
}

/// Whether any installed plugin still uses the component with `digest`.
pub fn digest_in_use(conn: &Connection, digest: &str) -> Result<bool> {
    Ok(conn.query_row("SELECT EXISTS(SELECT 1 FROM plugins WHERE digest = ?1)", [digest], |r| r.get(0))?)
}

/// The tables whose rows belong to one plugin namespace (column `plugin`): its store entries
/// and its trained heads. A plugin's name is its namespace; a proof run's is a scratch one.
pub const OWNED_TABLES: [&str; 2] = ["kv", "heads"];

/// Deletes everything namespace `plugin` owns: its rows in every table of [`OWNED_TABLES`]
/// (`plugin remove --purge`, the end of a proof run, a change of publisher).
pub fn purge(conn: &Connection, plugin: &str) -> Result<()> {
    for table in OWNED_TABLES {
        conn.execute(&format!("DELETE FROM {table} WHERE plugin = ?1"), [plugin])?;
    }
    Ok(())
}

/// Replaces the approved capabilities of plugin `name`; returns whether it is installed.
pub fn set_approved(conn: &Connection, name: &str, approved: &[String]) -> Result<bool> {
    Ok(conn
        .execute("UPDATE plugins SET approved = ?2 WHERE name = ?1", params![name, serde_json::to_string(approved)?])?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::OWNED_TABLES;

    /// A table added later with a `plugin` column fails this until [`super::purge`] covers it.
    #[test]
    fn every_table_keyed_by_plugin_is_purged() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("continuum.db")).unwrap();
        crate::db::migrate(&mut conn, &crate::SCHEMAS).unwrap();
        let mut tables = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").unwrap();
        let names: Vec<String> = tables.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
        for table in names {
            let keyed: bool = conn
                .query_row("SELECT EXISTS(SELECT 1 FROM pragma_table_info(?1) WHERE name = 'plugin')", [&table], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(keyed, OWNED_TABLES.contains(&table.as_str()), "table `{table}`: add it to OWNED_TABLES");
        }
    }
}
