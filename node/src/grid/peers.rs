//! The peers this node knows: their keys, direct addresses and relays, names, and the grants
//! they gave us.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use continuum_core::keys::{parse_public, public_hex};

/// Known peers.
pub const SCHEMA: continuum_core::db::Schema = continuum_core::db::Schema {
    owner: "peers",
    migrations: &[
        "
CREATE TABLE IF NOT EXISTS peers (
    id       TEXT PRIMARY KEY,
    name     TEXT,
    addrs    TEXT NOT NULL,
    grant    TEXT,
    added_at INTEGER NOT NULL
) STRICT;
",
        "
ALTER TABLE peers ADD COLUMN relays TEXT NOT NULL DEFAULT '[]';
",
    ],
};

/// A peer: dialled by key at its direct addresses, and through its relays when it has any.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Peer {
    /// The peer's node key (hex): its identity on the grid.
    pub id: String,
    /// A local nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where to reach it.
    #[schema(value_type = Vec<String>)]
    pub addrs: Vec<SocketAddr>,
    /// Relay servers it can be reached through (`http://…` or `https://…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<String>,
    /// A grant token the peer issued to this node, presented on calls to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

/// A peer as listed: how this node reaches it now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PeerView {
    /// The peer.
    #[serde(flatten)]
    pub peer: Peer,
    /// The open connection's path: `direct`, `relay`, or `unknown`; absent when none is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Parses `<node-id>@<addr>[,<addr>…]`, each address an `ip:port` or a relay URL: the id, the
/// direct addresses and the relays.
pub fn parse_spec(spec: &str) -> Result<(String, Vec<SocketAddr>, Vec<String>)> {
    let Some((id, addrs)) = spec.split_once('@') else {
        bail!("`{spec}` is not a peer address; expected <node-id>@<ip:port> (see `continuum serve` output or `continuum node`)");
    };
    let id = public_hex(&parse_public(id).with_context(|| format!("`{id}` is not a node id (64 hex digits)"))?);
    let (addrs, relays) = parse_addrs(addrs.split(','))?;
    if addrs.is_empty() && relays.is_empty() {
        bail!("`{spec}` gives no address; expected <node-id>@<ip:port>");
    }
    Ok((id, addrs, relays))
}

/// Sorts addresses into direct ones (`ip:port`) and relay URLs (`http://…`, `https://…`).
pub fn parse_addrs<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<(Vec<SocketAddr>, Vec<String>)> {
    let (mut addrs, mut relays) = (Vec::new(), Vec::new());
    for item in items.into_iter().map(str::trim).filter(|a| !a.is_empty()) {
        if item.starts_with("http://") || item.starts_with("https://") {
            relays.push(relay_url(item)?.to_string());
        } else {
            addrs
                .push(item.parse::<SocketAddr>().with_context(|| {
                    format!("`{item}` is not an ip:port address or a relay URL (http://host:port)")
                })?);
        }
    }
    Ok((addrs, relays))
}

/// A relay server's URL, checked.
pub fn relay_url(text: &str) -> Result<iroh::RelayUrl> {
    anyhow::ensure!(
        text.starts_with("http://") || text.starts_with("https://"),
        "`{text}` is not a relay URL; expected http://host:port or https://host"
    );
    text.parse::<iroh::RelayUrl>().with_context(|| format!("`{text}` is not a relay URL"))
}

/// Adds or updates a peer; `grant` and `name` replace earlier values only when given.
pub fn put(conn: &Connection, peer: &Peer) -> Result<()> {
    let addrs = serde_json::to_string(&peer.addrs)?;
    let relays = serde_json::to_string(&peer.relays)?;
    conn.execute(
        "INSERT INTO peers (id, name, addrs, grant, added_at, relays) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET addrs = ?3, relays = ?6, name = COALESCE(?2, name), grant = COALESCE(?4, grant)",
        params![peer.id, peer.name, addrs, peer.grant, continuum_core::now_secs(), relays],
    )?;
    Ok(())
}

/// Every known peer, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<Peer>> {
    let mut stmt = conn.prepare("SELECT id, name, addrs, grant, relays FROM peers ORDER BY added_at, id")?;
    let rows =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get::<_, String>(4)?)))?;
    rows.map(|row| {
        let (id, name, addrs, grant, relays) = row?;
        let corrupt = "a peer's stored addresses are corrupt; re-add it";
        let addrs = serde_json::from_str(&addrs).context(corrupt)?;
        let relays = serde_json::from_str(&relays).context(corrupt)?;
        Ok(Peer { id, name, addrs, relays, grant })
    })
    .collect()
}

/// Finds a known peer by id, id prefix (at least 8 digits) or name.
pub fn find(conn: &Connection, key: &str) -> Result<Peer> {
    find_in(&list(conn)?, key)
}

/// Finds a peer among `peers` by id, id prefix (at least 8 digits) or name.
pub fn find_in(peers: &[Peer], key: &str) -> Result<Peer> {
    let hits: Vec<&Peer> = peers
        .iter()
        .filter(|p| p.id == key || p.name.as_deref() == Some(key) || (key.len() >= 8 && p.id.starts_with(key)))
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no peer `{key}`; add it with `continuum peer add <node-id>@<ip:port>` (known: {})", names(peers)),
        _ => bail!("`{key}` matches {} peers; give more of the id", hits.len()),
    }
}

/// Forgets a peer; whether it was known.
pub fn remove(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM peers WHERE id = ?1", params![id])? > 0)
}

/// The stored grant for peer `id`, if any.
pub fn grant(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT grant FROM peers WHERE id = ?1", params![id], |r| r.get(0)).optional()?.flatten())
}

fn names(peers: &[Peer]) -> String {
    if peers.is_empty() {
        return "none".into();
    }
    peers
        .iter()
        .map(|p| p.name.clone().unwrap_or_else(|| continuum_core::alloy::custody::short(&p.id).to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_specs_parse_or_say_what_is_wrong() {
        let id = "11".repeat(32);
        let key = public_hex(&ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key());
        let (parsed, addrs, relays) =
            parse_spec(&format!("{key}@127.0.0.1:9000,127.0.0.1:9001,http://127.0.0.1:3340")).unwrap();
        assert_eq!((parsed, addrs.len(), relays), (key.clone(), 2, vec!["http://127.0.0.1:3340/".to_string()]));
        assert!(format!("{:#}", parse_spec(&format!("{key}@ftp://x")).unwrap_err()).contains("relay URL"));
        assert!(parse_spec("nobody").unwrap_err().to_string().contains("expected <node-id>@<ip:port>"));
        assert!(format!("{:#}", parse_spec(&format!("{id}@nowhere")).unwrap_err()).contains("not a"));
    }
}
