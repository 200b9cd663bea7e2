//! Node sets: one owner, many nodes. An owner key signs a document listing its node keys under
//! an epoch; a grant issued to the owner then covers each listed node (the node presents the
//! owner's grant and the set that names it). The highest epoch seen of an owner's set is the
//! only one honoured, so signing a new set without a node revokes that node like a grant
//! revocation: once a node has seen the new set, the old one is refused as replayed.

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::keys::{parse_public, public_hex};

/// Node sets seen, one per owner (its highest epoch), and which one this node joined.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "node-sets",
    migrations: &["
CREATE TABLE IF NOT EXISTS node_sets (
    owner     TEXT PRIMARY KEY,
    epoch     INTEGER NOT NULL,
    body      TEXT NOT NULL,
    signature TEXT NOT NULL,
    joined    INTEGER NOT NULL DEFAULT 0,
    seen_at   INTEGER NOT NULL
) STRICT;
"],
};

/// Most nodes one set may list.
pub const MAX_NODES: usize = 256;
/// Largest signed set accepted.
pub const MAX_BYTES: usize = 64 << 10;

/// An owner's list of its nodes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeSet {
    /// The owner's public key (hex): grants issued to it cover the nodes.
    pub owner: String,
    /// Higher replaces lower; a node left out of a higher epoch is revoked.
    pub epoch: u64,
    /// The node keys (hex).
    pub nodes: Vec<String>,
    /// When it was signed (seconds since the epoch).
    pub issued: i64,
}

/// A node set with the owner's signature over its exact JSON text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedNodeSet {
    /// The set's JSON text.
    pub body: String,
    /// ed25519 signature by the owner (hex), under [`crate::signing::NODE_SET`].
    pub signature: String,
}

/// Why a node set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeSetError {
    /// Not a node set, or over the limits.
    #[error("malformed node set: {0}")]
    Malformed(String),
    /// The signature is not the owner's.
    #[error("the node set claiming owner {0} is not signed by that owner's key (forged or altered)")]
    Forged(String),
    /// An older epoch than one already seen.
    #[error("node set epoch {epoch} of owner {owner} is older than epoch {held}, already seen (replayed)")]
    Replayed {
        /// The owner's short id.
        owner: String,
        /// The epoch presented.
        epoch: u64,
        /// The epoch held.
        held: u64,
    },
    /// Two different sets under one epoch.
    #[error(
        "a different node set of owner {0} was already seen under epoch {1}; sign the new one with a higher epoch"
    )]
    Conflicting(String, u64),
}

impl SignedNodeSet {
    /// Signs `set` with `owner`, which must be the key the set names.
    pub fn sign(set: &NodeSet, owner: &SigningKey) -> Result<SignedNodeSet> {
        anyhow::ensure!(
            set.owner == public_hex(&owner.verifying_key()),
            "the set names another owner than the signing key"
        );
        let body = serde_json::to_string(set)?;
        let signature = crate::signing::sign(owner, crate::signing::NODE_SET, body.as_bytes());
        let signed = SignedNodeSet { body, signature };
        signed.verify()?;
        Ok(signed)
    }

    /// Checks size, shape and the owner's signature.
    pub fn verify(&self) -> Result<NodeSet, NodeSetError> {
        if self.body.len() > MAX_BYTES {
            return Err(NodeSetError::Malformed(format!("{} bytes; the limit is {MAX_BYTES}", self.body.len())));
        }
        let set: NodeSet = serde_json::from_str(&self.body).map_err(|e| NodeSetError::Malformed(e.to_string()))?;
        if set.nodes.is_empty() || set.nodes.len() > MAX_NODES {
            return Err(NodeSetError::Malformed(format!("{} nodes; a set lists 1 to {MAX_NODES}", set.nodes.len())));
        }
        for node in &set.nodes {
            parse_public(node).map_err(|_| NodeSetError::Malformed(format!("`{node}` is not a node key")))?;
        }
        let owner = parse_public(&set.owner).map_err(|_| NodeSetError::Malformed("the owner is not a key".into()))?;
        if !crate::signing::verify(&owner, crate::signing::NODE_SET, self.body.as_bytes(), &self.signature) {
            return Err(NodeSetError::Forged(short(&set.owner).into()));
        }
        Ok(set)
    }
}

impl NodeSet {
    /// Whether `node` is listed.
    pub fn lists(&self, node: &str) -> bool {
        self.nodes.iter().any(|n| n == node)
    }
}

fn short(id: &str) -> &str {
    crate::alloy::custody::short(id)
}

/// Verifies `signed` and keeps it when its epoch is the highest seen of its owner; the set.
/// The same set again is accepted; an older epoch, or another set under the held epoch, is
/// refused.
pub fn observe(conn: &Connection, signed: &SignedNodeSet) -> Result<NodeSet, NodeSetError> {
    let set = signed.verify()?;
    let stored = |e: rusqlite::Error| NodeSetError::Malformed(format!("cannot store the node set: {e}"));
    let held: Option<(i64, String)> = conn
        .query_row("SELECT epoch, body FROM node_sets WHERE owner = ?1", params![set.owner], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(stored)?;
    match held {
        Some((epoch, body)) if epoch as u64 == set.epoch && body == signed.body => return Ok(set),
        Some((epoch, _)) if epoch as u64 == set.epoch => {
            return Err(NodeSetError::Conflicting(short(&set.owner).into(), set.epoch))
        }
        Some((epoch, _)) if epoch as u64 > set.epoch => {
            return Err(NodeSetError::Replayed {
                owner: short(&set.owner).into(),
                epoch: set.epoch,
                held: epoch as u64,
            })
        }
        _ => {}
    }
    // Conditional: another process (a CLI import) may have stored a newer epoch meanwhile.
    conn.execute(
        "INSERT INTO node_sets (owner, epoch, body, signature, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (owner) DO UPDATE SET epoch = ?2, body = ?3, signature = ?4, seen_at = ?5
         WHERE excluded.epoch > node_sets.epoch",
        params![set.owner, set.epoch as i64, signed.body, signed.signature, crate::now_secs()],
    )
    .map_err(stored)?;
    Ok(set)
}

/// Like [`observe`], for a set of an owner already held here (a newer epoch arriving in an
/// offer); a set of an owner never seen is not stored (nobody here needs it), and says so.
pub fn refresh(conn: &Connection, signed: &SignedNodeSet) -> Result<Option<NodeSet>, NodeSetError> {
    let set = signed.verify()?;
    let held = conn
        .query_row("SELECT 1 FROM node_sets WHERE owner = ?1", params![set.owner], |_| Ok(()))
        .optional()
        .map_err(|e| NodeSetError::Malformed(format!("cannot read the node sets: {e}")))?;
    if held.is_none() {
        return Ok(None);
    }
    observe(conn, signed).map(Some)
}

/// Whether `node` speaks for `owner`: it is listed in the highest epoch of the owner's set seen.
pub fn speaks_for(conn: &Connection, node: &str, owner: &str) -> Result<Membership> {
    let held = held(conn, owner)?;
    Ok(match held {
        None => Membership::NoSet,
        Some(set) if set.lists(node) => Membership::Member(set.epoch),
        Some(set) => Membership::NotListed(set.epoch),
    })
}

/// A node's standing in an owner's set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Listed in the set of this epoch.
    Member(u64),
    /// Not listed in the set of this epoch (left out, or removed).
    NotListed(u64),
    /// No set of the owner has been seen.
    NoSet,
}

/// The highest set of `owner` seen.
pub fn held(conn: &Connection, owner: &str) -> Result<Option<NodeSet>> {
    let body: Option<String> =
        conn.query_row("SELECT body FROM node_sets WHERE owner = ?1", params![owner], |r| r.get(0)).optional()?;
    body.map(|b| serde_json::from_str(&b).context("a stored node set is corrupt")).transpose()
}

/// Joins `node` to `signed`'s owner: the set is observed and becomes the one this node carries
/// (in its offers and requests) while it lists the node.
pub fn join(conn: &Connection, signed: &SignedNodeSet, node: &str) -> Result<NodeSet> {
    let set = signed.verify()?;
    anyhow::ensure!(
        set.lists(node),
        "this node ({}) is not listed in the set; ask the owner to sign one that lists it",
        short(node)
    );
    let set = observe(conn, signed)?;
    conn.execute("UPDATE node_sets SET joined = (owner = ?1)", params![set.owner])?;
    Ok(set)
}

/// The set this node carries: the highest epoch of the owner it joined, while it lists `node`.
pub fn carried(conn: &Connection, node: &str) -> Result<Option<SignedNodeSet>> {
    let row: Option<(String, String)> = conn
        .query_row("SELECT body, signature FROM node_sets WHERE joined = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row
        .map(|(body, signature)| SignedNodeSet { body, signature })
        .filter(|signed| signed.verify().is_ok_and(|set| set.lists(node))))
}

/// Every set seen: (set, whether this node joined it).
pub fn list(conn: &Connection) -> Result<Vec<(NodeSet, bool)>> {
    let mut stmt = conn.prepare("SELECT body, joined FROM node_sets ORDER BY owner")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0)))?;
    rows.map(|row| {
        let (body, joined) = row?;
        Ok((serde_json::from_str(&body).context("a stored node set is corrupt")?, joined))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn set(owner: &SigningKey, epoch: u64, nodes: &[u8]) -> SignedNodeSet {
        let set = NodeSet {
            owner: public_hex(&owner.verifying_key()),
            epoch,
            nodes: nodes.iter().map(|n| public_hex(&key(*n).verifying_key())).collect(),
            issued: 1,
        };
        SignedNodeSet::sign(&set, owner).unwrap()
    }

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn, &[&SCHEMA]).unwrap();
        conn
    }

    #[test]
    fn forged_replayed_and_conflicting_sets_are_refused_and_removal_revokes() {
        let (owner, conn) = (key(1), db());
        let node = |n: u8| public_hex(&key(n).verifying_key());
        let owner_hex = public_hex(&owner.verifying_key());
        observe(&conn, &set(&owner, 1, &[2, 3])).unwrap();
        assert_eq!(speaks_for(&conn, &node(3), &owner_hex).unwrap(), Membership::Member(1));
        // Someone else signing in the owner's name, or a tampered list.
        let mut forged = set(&key(9), 2, &[2, 3, 9]);
        forged.body = forged.body.replace(&public_hex(&key(9).verifying_key()), &owner_hex);
        assert!(matches!(observe(&conn, &forged), Err(NodeSetError::Forged(_))));
        let mut tampered = set(&owner, 2, &[2]);
        tampered.body = tampered.body.replace(&node(2), &node(9));
        assert!(matches!(observe(&conn, &tampered), Err(NodeSetError::Forged(_))));
        // Epoch 2 drops node 3; epoch 1 presented again is a replay.
        observe(&conn, &set(&owner, 2, &[2])).unwrap();
        assert_eq!(speaks_for(&conn, &node(3), &owner_hex).unwrap(), Membership::NotListed(2));
        assert!(matches!(observe(&conn, &set(&owner, 1, &[2, 3])), Err(NodeSetError::Replayed { held: 2, .. })));
        assert!(matches!(observe(&conn, &set(&owner, 2, &[2, 3])), Err(NodeSetError::Conflicting(..))));
        assert_eq!(speaks_for(&conn, &node(2), &public_hex(&key(7).verifying_key())).unwrap(), Membership::NoSet);
    }

    #[test]
    fn a_node_carries_the_set_it_joined_while_the_set_lists_it() {
        let (owner, conn) = (key(1), db());
        let me = public_hex(&key(2).verifying_key());
        assert!(join(&conn, &set(&owner, 1, &[3]), &me).unwrap_err().to_string().contains("not listed"));
        join(&conn, &set(&owner, 1, &[2, 3]), &me).unwrap();
        assert!(carried(&conn, &me).unwrap().is_some());
        observe(&conn, &set(&owner, 2, &[3])).unwrap();
        assert!(carried(&conn, &me).unwrap().is_none(), "a node removed from the set carries nothing");
    }
}
