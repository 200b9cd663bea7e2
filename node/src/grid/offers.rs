//! Offers: what a node sells to the grid — its shippable plugins (signed alloys, addressed by
//! BLAKE3 for transfer and by sha256 for the component), their commands with schemas, and the
//! terms (who may call, price, whether a call may be retried). Each offer is signed by the
//! node key, so it can travel through other peers (gossip) without being forged.

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use continuum_core::access::Access;
use continuum_core::keys::{parse_public, public_hex};
use continuum_core::registry::PluginRecord;

use super::capacity::Capacity;
use super::introductions::Introduction;
use crate::market::terms::{Price, Terms};
use continuum_core::node_set::SignedNodeSet;

/// Largest offer accepted (also the gossip message limit).
pub const MAX_OFFER_BYTES: usize = 1 << 20;

/// One command on offer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CommandOffer {
    /// `plugin/function`.
    pub name: String,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of its parameters.
    #[schema(value_type = serde_json::Value)]
    pub params: Value,
    /// JSON Schema of its result.
    #[schema(value_type = serde_json::Value)]
    pub result: Value,
    /// Who may call it: `public`, `granted` (a grant from the offering node) or `owner`.
    #[schema(value_type = String)]
    pub access: Access,
    /// What the node asks for a call (per call, second, 1 000 tokens); absent means free.
    #[serde(default, skip_serializing_if = "Price::is_free")]
    pub price: Price,
    /// Whether a call may be retried on another peer, as the command's WIT docs declare it
    /// (`@idempotent` or `@not-idempotent` on a line of their own); absent, the plugin's
    /// inferred [`PluginOffer::idempotent`] holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
}

/// The idempotency a command's docs declare: a line `@idempotent` or `@not-idempotent`.
pub fn declared_idempotency(docs: Option<&str>) -> Option<bool> {
    docs?.lines().map(str::trim).find_map(|line| match line {
        "@idempotent" => Some(true),
        "@not-idempotent" => Some(false),
        _ => None,
    })
}

/// One plugin on offer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PluginOffer {
    /// Plugin name.
    pub name: String,
    /// Its version (from the alloy).
    pub version: String,
    /// sha256 of the component (what `continuum plugin list` shows).
    pub digest: String,
    /// BLAKE3 of the alloy archive: what a peer fetches and verifies while streaming.
    pub alloy: String,
    /// Size of the alloy archive in bytes.
    pub size: u64,
    /// The alloy's signer (publisher key).
    pub signer: String,
    /// Whether calls can be retried safely: the plugin imports no state-changing host
    /// interface (store, events, training, commands).
    pub idempotent: bool,
    /// What fetching its alloy costs, in millicredits (0: free).
    #[serde(default, skip_serializing_if = "crate::market::terms::is_zero")]
    pub fetch_millicredits: u64,
    /// Its commands.
    pub commands: Vec<CommandOffer>,
}

/// A node's offer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Offer {
    /// The offering node (its key, hex).
    pub node: String,
    /// When it was made (ms since the epoch); a newer offer replaces an older one.
    pub issued_ms: i64,
    /// The node's grid addresses, so nodes that learn of it through gossip can dial it.
    #[serde(default)]
    pub addrs: Vec<String>,
    /// How long the offer holds without being renewed, in ms: past it, nodes drop it.
    #[serde(default)]
    pub ttl_ms: u64,
    /// What the node can do and how busy it is.
    #[serde(default)]
    pub capacity: Capacity,
    /// Shippable plugins.
    pub plugins: Vec<PluginOffer>,
    /// The node's consent to be introduced by its peers (`[grid] shareable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Introduction>,
    /// The consents of the node's peers: nodes it introduces (peer exchange).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introductions: Vec<Introduction>,
    /// The owner's signed node set listing this node, when it joined one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_set: Option<SignedNodeSet>,
}

/// An offer with the node's signature over its exact JSON text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SignedOffer {
    /// The offer's JSON text.
    pub body: String,
    /// ed25519 signature by `offer.node`, hex.
    pub signature: String,
}

/// Whether a plugin with these imports can be retried without side effects.
pub fn idempotent(imports: &[String]) -> bool {
    const EFFECTS: [&str; 4] = ["/store", "/events", "/training", "/commands"];
    !imports.iter().any(|i| EFFECTS.iter().any(|e| i.contains(e)))
}

/// The offer entry for an installed plugin whose alloy has BLAKE3 `hash`, on `terms`.
pub fn plugin_offer(record: &PluginRecord, hash: &str, size: u64, terms: &Terms) -> PluginOffer {
    PluginOffer {
        name: record.name.clone(),
        version: record.version.clone().unwrap_or_default(),
        digest: record.digest.clone(),
        alloy: hash.to_string(),
        size,
        signer: record.signer.clone().unwrap_or_default(),
        idempotent: idempotent(&record.imports),
        fetch_millicredits: terms.alloys.get(&record.name).copied().unwrap_or(0),
        commands: record
            .commands
            .iter()
            .map(|c| CommandOffer {
                name: c.name.clone(),
                description: c.description.clone(),
                params: c.params.clone(),
                result: c.result.clone(),
                access: continuum_core::access::level(&record.access, &c.name),
                price: terms.price_of(&c.name),
                idempotent: declared_idempotency(c.description.as_deref()),
            })
            .collect(),
    }
}

impl SignedOffer {
    /// Signs `offer` with the node key (under [`continuum_core::signing::OFFER`]).
    pub fn sign(offer: &Offer, key: &SigningKey) -> Result<SignedOffer> {
        let body = serde_json::to_string(offer)?;
        let signature = continuum_core::signing::sign(key, continuum_core::signing::OFFER, body.as_bytes());
        Ok(SignedOffer { body, signature })
    }

    /// Checks size, shape and the signature of the node the offer names.
    pub fn verify(&self) -> Result<Offer> {
        if self.body.len() > MAX_OFFER_BYTES {
            bail!("the offer is {} bytes; the limit is {MAX_OFFER_BYTES}", self.body.len());
        }
        let offer: Offer = serde_json::from_str(&self.body).context("malformed offer")?;
        let key = parse_public(&offer.node).context("the offer's node is not a key")?;
        if !continuum_core::signing::verify(&key, continuum_core::signing::OFFER, self.body.as_bytes(), &self.signature)
        {
            bail!("the offer claiming node {} has a bad signature", public_hex(&key));
        }
        Ok(offer)
    }
}

impl Offer {
    /// The plugin offering `command`, with the command.
    pub fn command(&self, command: &str) -> Option<(&PluginOffer, &CommandOffer)> {
        self.plugins.iter().find_map(|p| p.commands.iter().find(|c| c.name == command).map(|c| (p, c)))
    }

    /// Whether a call of `command` may be retried on another peer: as the command declares,
    /// else as its plugin's imports say; false when not offered.
    pub fn idempotent(&self, command: &str) -> bool {
        self.command(command).is_some_and(|(p, c)| c.idempotent.unwrap_or(p.idempotent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(node: &SigningKey) -> Offer {
        Offer {
            node: public_hex(&node.verifying_key()),
            issued_ms: 1,
            addrs: vec![],
            ttl_ms: 1000,
            capacity: Capacity::default(),
            plugins: vec![],
            consent: None,
            introductions: vec![],
            node_set: None,
        }
    }

    #[test]
    fn offers_verify_and_forgeries_are_refused() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let signed = SignedOffer::sign(&offer(&key), &key).unwrap();
        assert_eq!(signed.verify().unwrap(), offer(&key));
        // Someone else signing an offer in this node's name.
        let forged = SignedOffer::sign(&offer(&key), &SigningKey::from_bytes(&[4; 32])).unwrap();
        assert!(forged.verify().unwrap_err().to_string().contains("bad signature"));
        let mut tampered = signed.clone();
        tampered.body = tampered.body.replace("\"issued_ms\":1", "\"issued_ms\":2");
        assert!(tampered.verify().is_err());
    }

    #[test]
    fn a_command_declares_its_idempotency_in_its_docs() {
        assert_eq!(declared_idempotency(Some("Adds one.\n@not-idempotent")), Some(false));
        assert_eq!(declared_idempotency(Some("  @idempotent  \nReads.")), Some(true));
        assert_eq!(declared_idempotency(Some("Mentions @idempotent in a sentence.")), None);
        assert_eq!(declared_idempotency(None), None);
    }

    #[test]
    fn only_plugins_without_state_changing_imports_are_idempotent() {
        assert!(idempotent(&["continuum:host/log@0.1.0".into(), "continuum:host/inference@0.1.0".into()]));
        assert!(!idempotent(&["continuum:host/store@0.1.0".into()]));
    }
}
