//! Nodes this node has heard of but not accepted: found on the LAN by multicast, or introduced
//! by a peer (peer exchange). Being discovered grants nothing and sends a discovered node
//! nothing but a request for its offer when a policy needs it: it becomes a peer only when the
//! operator accepts it (`continuum peer accept`), when the node's policy accepts introductions
//! from its peers (`[grid] accept-introductions`), or when its offer proves it one of an owner's
//! nodes that the operator trusts (`[grid] accept-nodes-of`, [`Grid::note_discovered`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use continuum_core::sync::lock;

use super::peers::{self, Peer};
use super::{short, Grid};

/// Most discovered nodes held; the longest unseen is forgotten first.
pub const MAX_DISCOVERED: usize = 256;

/// A node heard of, not (yet) a peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct DiscoveredNode {
    /// Its node key (hex).
    pub id: String,
    /// Where it said it can be reached: `ip:port` addresses and relay URLs.
    pub addrs: Vec<String>,
    /// `lan` (multicast on this segment) or `introduced by <peer id>`.
    pub source: String,
    /// When it was last heard of (ms since the epoch).
    pub seen_ms: i64,
}

/// The discovered nodes, by id.
#[derive(Default)]
pub(super) struct Discovered {
    nodes: Mutex<BTreeMap<String, DiscoveredNode>>,
}

impl Discovered {
    /// Notes `node` (again); whether it was new. When full, the node heard of longest ago goes.
    pub(super) fn note(&self, node: DiscoveredNode) -> bool {
        let mut nodes = lock(&self.nodes);
        let new = !nodes.contains_key(&node.id);
        if new && nodes.len() >= MAX_DISCOVERED {
            if let Some(oldest) = nodes.values().min_by_key(|n| n.seen_ms).map(|n| n.id.clone()) {
                nodes.remove(&oldest);
            }
        }
        nodes.insert(node.id.clone(), node);
        new
    }

    /// Every discovered node, by id.
    pub(super) fn list(&self) -> Vec<DiscoveredNode> {
        lock(&self.nodes).values().cloned().collect()
    }

    /// The discovered node `key` names (id, or a prefix of at least 8 digits).
    pub(super) fn find(&self, key: &str) -> Result<DiscoveredNode> {
        let nodes = lock(&self.nodes);
        let hits: Vec<&DiscoveredNode> =
            nodes.values().filter(|n| n.id == key || (key.len() >= 8 && n.id.starts_with(key))).collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => bail!(
                "no discovered node `{key}`; `continuum peer list` shows the discovered ones (turn on LAN discovery with `[grid] lan = true` or `serve --lan`)"
            ),
            _ => bail!("`{key}` matches {} discovered nodes; give more of the id", hits.len()),
        }
    }

    /// Forgets node `id` (it became a peer).
    pub(super) fn forget(&self, id: &str) {
        lock(&self.nodes).remove(id);
    }

    /// Forgets node `id` if it was heard of from `source` (it stopped announcing there).
    pub(super) fn forget_from(&self, id: &str, source: &str) {
        let mut nodes = lock(&self.nodes);
        if nodes.get(id).is_some_and(|n| n.source == source) {
            nodes.remove(id);
        }
    }
}

impl Grid {
    /// Notes a discovered node; a new one whose offer carries a node set of a trusted owner
    /// (`[grid] accept-nodes-of`) listing it becomes a peer at once.
    pub(super) async fn note_discovered(&self, node: DiscoveredNode) {
        if !self.inner.discovered.note(node.clone()) || self.inner.reach.accept_nodes_of.is_empty() {
            return;
        }
        if !self.peers().await.is_ok_and(|p| p.len() < super::introductions::MAX_AUTO_PEERS) {
            return;
        }
        let Ok((addrs, relays)) = peers::parse_addrs(node.addrs.iter().map(String::as_str)) else { return };
        let peer = Peer { id: node.id.clone(), name: None, addrs, relays, grant: None };
        // Asking for its offer tells it nothing but this node's key.
        let owner = match self.pull_offer(&peer).await {
            Ok(offer) => offer
                .node_set
                .and_then(|signed| signed.verify().ok())
                .filter(|set| set.lists(&node.id) && self.inner.reach.accept_nodes_of.contains(&set.owner)),
            Err(e) => {
                tracing::debug!("no offer from discovered node {}: {e}", short(&node.id));
                None
            }
        };
        if let Some(set) = owner {
            let source = format!("{}, node set of {}", node.source, set.owner);
            if let Err(e) = self.add_known(peer, &source).await {
                tracing::warn!("cannot add {} ({source}): {e:#}", short(&node.id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: usize, seen_ms: i64) -> DiscoveredNode {
        DiscoveredNode { id: format!("{i:064x}"), addrs: vec![], source: "lan".into(), seen_ms }
    }

    /// A segment full of announcers cannot grow the list past its cap.
    #[test]
    fn the_discovered_list_is_bounded_and_forgets_the_longest_unseen() {
        let discovered = Discovered::default();
        for i in 0..MAX_DISCOVERED + 10 {
            discovered.note(node(i, i as i64));
        }
        let held = discovered.list();
        assert_eq!(held.len(), MAX_DISCOVERED);
        assert!(!held.iter().any(|n| n.seen_ms < 10), "the oldest ten should have gone");
        assert!(discovered.find(&format!("{:064x}", 300)).is_err());
        assert!(discovered.find(&format!("{:064x}", MAX_DISCOVERED + 9)).is_ok());
    }
}
