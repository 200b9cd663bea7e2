//! Peer exchange: a node that agrees to be shared (`[grid] shareable`, the default; `false`
//! withholds its addresses from its offer too) signs a consent naming its own addresses,
//! carried in its offer; each of its peers may copy that consent into
//! its own offer as an introduction. A node that receives an introduction from one of its peers
//! can then reach the introduced node — so a new node needs one introduction, not one per node.
//!
//! An address reaches other nodes only with its node's signature over it: an introduction
//! without one (an address shared without consent), with an altered address, or expired is
//! refused and the reason logged. Introductions from nodes that are not peers are ignored.
//! Being introduced grants nothing: the introduced node is listed as discovered until the
//! operator accepts it, unless `[grid] accept-introductions = true` makes the peers' word enough.

use std::time::Duration;

use anyhow::{bail, Result};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use continuum_core::keys::{parse_public, public_hex};

use super::discovered::DiscoveredNode;
use super::offers::Offer;
use super::peers::{self, Peer};
use super::{short, Grid};

/// Most introductions one offer carries (more are ignored).
pub const MAX_INTRODUCTIONS: usize = 32;
/// Introductions are accepted as peers automatically only while the node has fewer peers than
/// this; past it they wait as discovered (a peer cannot grow another's peer list without bound).
pub const MAX_AUTO_PEERS: usize = 64;
/// How long a consent holds: it is re-signed with every offer, so a node that withdraws its
/// consent (or moves) stops being introduced within this.
pub const CONSENT_TTL: Duration = Duration::from_secs(600);

/// A node's signed consent to be introduced at `addrs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Introduction {
    /// The node being introduced (its key, hex).
    pub node: String,
    /// Where it can be reached: `ip:port` addresses and relay URLs.
    pub addrs: Vec<String>,
    /// Until when the consent holds (ms since the epoch).
    pub expires_ms: i64,
    /// The node's signature over the three fields above (hex).
    pub signature: String,
}

/// The exact bytes a consent signs.
fn message(node: &str, addrs: &[String], expires_ms: i64) -> Vec<u8> {
    serde_json::to_vec(&(node, addrs, expires_ms)).expect("strings and numbers encode")
}

impl Introduction {
    /// This node's consent (signed with its `key`) to be introduced at `addrs`.
    pub fn consent(key: &SigningKey, addrs: Vec<String>, now_ms: i64) -> Introduction {
        let node = public_hex(&key.verifying_key());
        let expires_ms = now_ms + CONSENT_TTL.as_millis() as i64;
        let signature = continuum_core::signing::sign(
            key,
            continuum_core::signing::INTRODUCTION,
            &message(&node, &addrs, expires_ms),
        );
        Introduction { node, addrs, expires_ms, signature }
    }

    /// Checks that the introduced node itself signed these addresses, and that the consent
    /// still holds at `now_ms`.
    pub fn verify(&self, now_ms: i64) -> Result<()> {
        let key = parse_public(&self.node).map_err(|_| anyhow::anyhow!("the introduced node is not a key"))?;
        let signed = message(&self.node, &self.addrs, self.expires_ms);
        if !continuum_core::signing::verify(&key, continuum_core::signing::INTRODUCTION, &signed, &self.signature) {
            bail!(
                "its addresses are not signed by node {} (an address shared without that node's consent, or altered)",
                short(&self.node)
            );
        }
        if self.expires_ms <= now_ms {
            bail!("node {}'s consent to be introduced expired", short(&self.node));
        }
        if self.expires_ms > now_ms + 2 * CONSENT_TTL.as_millis() as i64 {
            bail!("node {}'s consent claims to hold too far ahead", short(&self.node));
        }
        peers::parse_addrs(self.addrs.iter().map(String::as_str))?;
        Ok(())
    }
}

impl Grid {
    /// The introductions this node's offer carries: the current consents of its peers.
    pub(super) async fn introductions(&self) -> Vec<Introduction> {
        let Ok(known) = self.peers().await else { return Vec::new() };
        let now = continuum_core::now_ms();
        self.offers()
            .into_iter()
            .filter(|k| known.iter().any(|p| p.id == k.offer.node))
            .filter_map(|k| k.offer.consent)
            .filter(|consent| consent.verify(now).is_ok())
            .take(MAX_INTRODUCTIONS)
            .collect()
    }

    /// Takes in the introductions of `offer`, when its node is a peer: each verified one is
    /// listed as discovered, or added as a peer when this node accepts its peers' introductions.
    pub(super) async fn take_introductions(&self, offer: &Offer) {
        if offer.introductions.is_empty() {
            return;
        }
        let Ok(known) = self.peers().await else { return };
        if !known.iter().any(|p| p.id == offer.node) {
            return;
        }
        let now = continuum_core::now_ms();
        for introduction in offer.introductions.iter().take(MAX_INTRODUCTIONS) {
            if introduction.node == self.id() || known.iter().any(|p| p.id == introduction.node) {
                continue;
            }
            if let Err(e) = introduction.verify(now) {
                tracing::warn!("refused {}'s introduction of {}: {e:#}", short(&offer.node), short(&introduction.node));
                continue;
            }
            let source = format!("introduced by {}", offer.node);
            let node = DiscoveredNode {
                id: introduction.node.clone(),
                addrs: introduction.addrs.clone(),
                source: source.clone(),
                seen_ms: now,
            };
            let room = self.peers().await.is_ok_and(|p| p.len() < MAX_AUTO_PEERS);
            if !self.inner.reach.accept_introductions || !room {
                self.note_discovered(node).await;
                continue;
            }
            let Ok((addrs, relays)) = peers::parse_addrs(introduction.addrs.iter().map(String::as_str)) else {
                continue;
            };
            let peer = Peer { id: introduction.node.clone(), name: None, addrs, relays, grant: None };
            if let Err(e) = self.add_known(peer, &source).await {
                tracing::warn!(
                    "cannot add {} as introduced by {}: {e:#}",
                    short(&introduction.node),
                    short(&offer.node)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_introduced_nodes_own_fresh_signature_introduces_it() {
        let key = SigningKey::from_bytes(&[8; 32]);
        let now = 1_000_000;
        let consent = Introduction::consent(&key, vec!["127.0.0.1:7000".into()], now);
        consent.verify(now).unwrap();
        // A peer sharing the address without consent: signed by the peer, not the node.
        let mut unsigned = Introduction::consent(&SigningKey::from_bytes(&[9; 32]), consent.addrs.clone(), now);
        unsigned.node = consent.node.clone();
        assert!(unsigned.verify(now).unwrap_err().to_string().contains("without that node's consent"));
        // An address swapped for another.
        let mut altered = consent.clone();
        altered.addrs = vec!["127.0.0.1:7666".into()];
        assert!(altered.verify(now).unwrap_err().to_string().contains("not signed by node"));
        let later = now + CONSENT_TTL.as_millis() as i64 + 1;
        assert!(consent.verify(later).unwrap_err().to_string().contains("expired"));
    }
}
