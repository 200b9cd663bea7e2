//! The registry of installed plugins (SQLite table `plugins`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::access::Access;
use crate::dir_grant::DirGrant;
use crate::reflect::wit_source::WitSource;
use crate::reflect::CommandSchema;

/// Table of installed plugins.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "registry",
    migrations: &[
        "
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
",
        "
ALTER TABLE plugins ADD COLUMN dirs TEXT NOT NULL DEFAULT '[]';
",
    ],
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
    /// Host folders the operator lent it (`--dir`).
    pub dirs: Vec<DirGrant>,
}

type Row = (PluginRecord, [String; 6]);

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
            dirs: Vec::new(),
        },
        [row.get(4)?, row.get(5)?, row.get(6)?, row.get(13)?, row.get(14)?, row.get(15)?],
    ))
}

fn decode((mut rec, [wit, commands, imports, approved, access, dirs]): Row) -> Result<PluginRecord> {
    let ctx = || format!("registry entry of plugin `{}` is corrupt; remove and re-install it", rec.name);
    rec.wit = serde_json::from_str(&wit).with_context(ctx)?;
    rec.commands = serde_json::from_str(&commands).with_context(ctx)?;
    rec.imports = serde_json::from_str(&imports).with_context(ctx)?;
    rec.approved = serde_json::from_str(&approved).with_context(ctx)?;
    rec.access = serde_json::from_str(&access).with_context(ctx)?;
    rec.dirs = serde_json::from_str(&dirs).with_context(ctx)?;
    Ok(rec)
}

const COLUMNS: &str =
    "name, digest, description, world, wit, commands, imports, source, installed_at, version, signer, manifest, custody, approved, access, dirs";

/// Records `plugin`, replacing any earlier install of the same name.
pub fn put(conn: &Connection, plugin: &PluginRecord) -> Result<()> {
    conn.execute(
        &format!("INSERT OR REPLACE INTO plugins ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
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
            serde_json::to_string(&plugin.dirs)?,
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

/// Deletes everything namespace `plugin` owns, through the owner of each table keyed by
/// namespace: its store entries and its trained heads (`plugin remove --purge`, the end of a
/// proof run, a change of publisher). A plugin's name is its namespace; a proof run's is a
/// scratch one.
pub fn purge(conn: &Connection, plugin: &str) -> Result<()> {
    crate::host_api::store::purge(conn, plugin)?;
    crate::host_api::training::purge(conn, plugin)
}

/// Replaces the folders lent to plugin `name`; returns whether it is installed.
pub fn set_dirs(conn: &Connection, name: &str, dirs: &[DirGrant]) -> Result<bool> {
    Ok(conn.execute("UPDATE plugins SET dirs = ?2 WHERE name = ?1", params![name, serde_json::to_string(dirs)?])? > 0)
}

/// Replaces the approved capabilities of plugin `name`; returns whether it is installed.
pub fn set_approved(conn: &Connection, name: &str, approved: &[String]) -> Result<bool> {
    Ok(conn
        .execute("UPDATE plugins SET approved = ?2 WHERE name = ?1", params![name, serde_json::to_string(approved)?])?
        > 0)
}

#[cfg(test)]
mod tests {
    use rusqlite::types::Value;
    use rusqlite::Connection;

    /// The namespace whose rows the test plants and purges.
    const DOOMED: &str = "doomed";

    /// A value of a column declared `declared` (STRICT types), `DOOMED` in column `plugin`.
    fn sample(column: &str, declared: &str) -> Value {
        let declared = declared.to_ascii_uppercase();
        if column == "plugin" {
            Value::Text(DOOMED.into())
        } else if declared.contains("INT") {
            Value::Integer(0)
        } else if declared.contains("REAL") {
            Value::Real(0.0)
        } else if declared.contains("BLOB") {
            Value::Blob(Vec::new())
        } else {
            Value::Text(String::new())
        }
    }

    /// Adds a row of namespace `DOOMED` to `table`.
    fn plant(conn: &Connection, table: &str) {
        let mut info = conn.prepare("SELECT name, type FROM pragma_table_info(?1)").unwrap();
        let columns: Vec<(String, String)> =
            info.query_map([table], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
        let names: Vec<String> = columns.iter().map(|(name, _)| format!("\"{name}\"")).collect();
        let slots: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let values = columns.iter().map(|(name, declared)| sample(name, declared));
        conn.execute(
            &format!("INSERT INTO \"{table}\" ({}) VALUES ({})", names.join(", "), slots.join(", ")),
            rusqlite::params_from_iter(values),
        )
        .unwrap_or_else(|e| panic!("cannot add a row to `{table}` ({e}): give `sample` a value for its columns"));
    }

    /// A table added later with a `plugin` column fails this until [`super::purge`] empties it
    /// (through the table's owner).
    #[test]
    fn every_table_keyed_by_plugin_is_purged() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("continuum.db")).unwrap();
        crate::db::migrate(&mut conn, &crate::SCHEMAS).unwrap();
        let mut tables = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").unwrap();
        let names: Vec<String> = tables.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
        let mut keyed = Vec::new();
        for table in names {
            let has_plugin: bool = conn
                .query_row("SELECT EXISTS(SELECT 1 FROM pragma_table_info(?1) WHERE name = 'plugin')", [&table], |r| {
                    r.get(0)
                })
                .unwrap();
            if has_plugin {
                plant(&conn, &table);
                keyed.push(table);
            }
        }
        assert!(!keyed.is_empty(), "no table is keyed by plugin: the test checks nothing");
        super::purge(&conn, DOOMED).unwrap();
        for table in keyed {
            let left: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM \"{table}\" WHERE plugin = ?1"), [DOOMED], |r| r.get(0))
                .unwrap();
            assert_eq!(
                left, 0,
                "table `{table}` keeps a purged namespace's rows: give its owner a `purge` called by `registry::purge`"
            );
        }
    }
}
