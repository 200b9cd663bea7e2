//! Capability grants: signed, key-bound, expiring, epoch-revocable tokens that say which
//! commands a caller may run. Format and threat model: `docs/security.md`.
//!
//! A token is `cgt1.` + base64url (no padding) of `{"blocks":[{"payload":"<JSON>","signature":"<hex>"}, …]}`.
//! Block 0 is the grant, signed by the node owner's key; each later block attenuates the one
//! before (fewer capabilities, earlier expiry) and is signed by that block's grantee. Every
//! signature is ed25519 over [`DOMAIN`] followed by the payload's exact bytes.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::alloy::custody::{sha256_hex, short};
use crate::keys::{parse_public, public_hex};

/// Domain separation for grant signatures.
pub const DOMAIN: &[u8] = crate::signing::GRANT;
/// The token prefix (format version).
pub const PREFIX: &str = "cgt1.";
/// Largest token accepted.
pub const MAX_TOKEN: usize = 16 * 1024;
/// Most attenuation steps in one token.
pub const MAX_BLOCKS: usize = 8;
/// Most verified tokens [`Grants`] keeps; past it the oldest is evicted, so a flood of distinct
/// tokens costs each a re-verification, never memory.
pub const VERIFIED_CAPACITY: usize = 4096;

/// Durable epoch watermarks, and the record of grants this node issued.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "grants",
    migrations: &["
CREATE TABLE IF NOT EXISTS grant_epochs (
    grantee TEXT PRIMARY KEY,
    epoch   INTEGER NOT NULL,
    revoked INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS grants_issued (
    id        TEXT PRIMARY KEY,
    grantee   TEXT NOT NULL,
    caps      TEXT NOT NULL,
    issued    INTEGER NOT NULL,
    expires   INTEGER NOT NULL,
    epoch     INTEGER NOT NULL
) STRICT;
"],
};

/// What a block says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Who signed block 0 (the node owner); absent in attenuation blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The key this block grants to (hex).
    pub grantee: String,
    /// Command names or prefixes (`text/summarize`, `kv/`).
    pub caps: Vec<String>,
    /// Seconds since the Unix epoch after which the block is void.
    pub expires: i64,
    /// Block 0: when issued. Later blocks: unused (0).
    #[serde(default)]
    pub issued: i64,
    /// Block 0: the grantee's epoch. Later blocks inherit it.
    #[serde(default)]
    pub epoch: u64,
    /// Block 0: a random id. Later blocks: sha256 of the previous block's payload.
    pub id: String,
    /// Block 0 only: what the grant may spend per period on this node (none: unmetered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// What a grant may spend on the issuing node per period; the node enforces it on every call
/// made with the grant (or a token attenuated from it: they share the one budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Most calls per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
    /// Most credits per period, in thousandths of a credit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millicredits: Option<u64>,
    /// Most generated tokens per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// The period in seconds; periods start at the grant's issue time.
    pub period_secs: u64,
}

impl Budget {
    /// Checks that the budget limits something over a period of at least a second.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.calls.is_some() || self.millicredits.is_some() || self.tokens.is_some(),
            "a budget limits calls, credits or tokens (--budget-calls, --budget-credits, --budget-tokens)"
        );
        anyhow::ensure!(self.period_secs >= 1, "a budget's period is at least one second");
        anyhow::ensure!(self.period_secs <= 100 * 365 * 86_400, "a budget's period is at most 100 years");
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Block {
    payload: String,
    signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Token {
    blocks: Vec<Block>,
}

/// Why a grant was refused, in verification order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Not a token of this format.
    #[error("malformed grant: {0}")]
    Malformed(String),
    /// Block 0 was not issued by this node's owner key.
    #[error("grant issued by {0}, not by this node; only this node's grants are accepted here")]
    WrongIssuer(String),
    /// A signature does not verify.
    #[error("grant signature invalid (block {0}): the token was forged or altered")]
    BadSignature(usize),
    /// An attenuation block widens what the block before it allows.
    #[error("attenuation block {0} grants more than the block before it (capabilities or expiry)")]
    Widened(usize),
    /// The presenting key is not the key the token is bound to.
    #[error("grant is bound to key {bound} but was presented by {presenter}")]
    KeyMismatch {
        /// The key the token is bound to.
        bound: String,
        /// The key that presented the token.
        presenter: String,
    },
    /// Past its expiry.
    #[error("grant expired at {0} (unix seconds)")]
    Expired(i64),
    /// An older epoch than one already seen for this grantee.
    #[error(
        "grant epoch {epoch} is older than epoch {seen} already seen for this grantee (a replayed or superseded grant)"
    )]
    Replayed {
        /// The grant's epoch.
        epoch: u64,
        /// The newest epoch already seen for this grantee.
        seen: u64,
    },
    /// The grantee's grants were revoked.
    #[error("grants to this key were revoked at epoch {0}")]
    Revoked(u64),
    /// A key the token was handed on to (its holder, or a grantee between the root and the
    /// holder) had its grants revoked.
    #[error(
        "grant was handed on to key {key}, whose grants were revoked at epoch {epoch}; a revoked key can \
         use no grant, however it was handed on, until this node's owner issues it a new one"
    )]
    RevokedGrantee {
        /// The revoked key the token was handed on to.
        key: String,
        /// The epoch at which that key's grants were revoked.
        epoch: u64,
    },
    /// The node set a node presented with its owner's grant was refused.
    #[error("node set refused: {0}")]
    NodeSet(String),
    /// A node presented its owner's grant, but the owner's newest node set does not list it.
    #[error(
        "grant is bound to owner {owner}, whose node set (epoch {epoch}) does not list node {node}: it was \
         removed from the set, or never in it"
    )]
    NotInNodeSet {
        /// The node that presented the grant.
        node: String,
        /// The owner the grant is bound to.
        owner: String,
        /// The epoch of the owner's newest set seen here.
        epoch: u64,
    },
}

/// A verified grant: who may call what, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's id (block 0's id).
    pub id: String,
    /// The root grantee (whose epoch governs the token).
    pub root: String,
    /// The key the token is bound to (the last block's grantee).
    pub holder: String,
    /// Effective capabilities (the last block's).
    pub caps: Vec<String>,
    /// Effective expiry (the earliest).
    pub expires: i64,
    /// The root grant's epoch.
    pub epoch: u64,
    /// When the root grant was issued (unix seconds): the budget's periods start there.
    pub issued: i64,
    /// The root grant's budget, shared by every token derived from it.
    pub budget: Option<Budget>,
}

/// Whether capability `cap` confers command `command`: equal, or a prefix ending at a `/`
/// boundary (`text/summarize` confers `text/summarize/stream`, never `text/summarizex`).
pub fn confers(cap: &str, command: &str) -> bool {
    let cap = cap.trim_end_matches('/');
    !cap.is_empty() && (command == cap || command.strip_prefix(cap).is_some_and(|rest| rest.starts_with('/')))
}

fn sign_block(key: &SigningKey, claims: &Claims) -> Block {
    let payload = serde_json::to_string(claims).expect("claims serialize");
    let signature = crate::signing::sign(key, DOMAIN, payload.as_bytes());
    Block { payload, signature }
}

fn encode(token: &Token) -> String {
    let json = serde_json::to_vec(token).expect("tokens serialize");
    format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

fn decode(text: &str) -> Result<Token, GrantError> {
    let text = text.trim();
    if text.len() > MAX_TOKEN {
        return Err(GrantError::Malformed(format!("token is {} bytes; the limit is {MAX_TOKEN}", text.len())));
    }
    let body =
        text.strip_prefix(PREFIX).ok_or_else(|| GrantError::Malformed(format!("tokens start with `{PREFIX}`")))?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|e| GrantError::Malformed(format!("not base64url: {e}")))?;
    let token: Token = serde_json::from_slice(&json).map_err(|e| GrantError::Malformed(e.to_string()))?;
    if token.blocks.is_empty() || token.blocks.len() > MAX_BLOCKS {
        return Err(GrantError::Malformed(format!(
            "a token has 1 to {MAX_BLOCKS} blocks, this one {}",
            token.blocks.len()
        )));
    }
    Ok(token)
}

fn claims(block: &Block, index: usize) -> Result<Claims, GrantError> {
    serde_json::from_str(&block.payload).map_err(|e| GrantError::Malformed(format!("block {index}: {e}")))
}

fn check_signature(block: &Block, key: &VerifyingKey, index: usize) -> Result<(), GrantError> {
    if crate::signing::verify(key, DOMAIN, block.payload.as_bytes(), &block.signature) {
        Ok(())
    } else {
        Err(GrantError::BadSignature(index))
    }
}

/// Issues a grant from `owner` to `grantee` for `caps` until `expires`, at `epoch`.
pub fn issue(owner: &SigningKey, grantee: &VerifyingKey, caps: &[String], expires: i64, epoch: u64) -> String {
    issue_budgeted(owner, grantee, caps, expires, epoch, None)
}

/// Issues a grant as [`issue`] does, spending at most `budget` per period.
pub fn issue_budgeted(
    owner: &SigningKey,
    grantee: &VerifyingKey,
    caps: &[String],
    expires: i64,
    epoch: u64,
    budget: Option<Budget>,
) -> String {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).expect("OS randomness");
    let claims = Claims {
        issuer: Some(public_hex(&owner.verifying_key())),
        grantee: public_hex(grantee),
        caps: caps.to_vec(),
        expires,
        issued: crate::now_secs(),
        epoch,
        id: hex::encode(id),
        budget,
    };
    encode(&Token { blocks: vec![sign_block(owner, &claims)] })
}

/// Derives a narrower token: `holder` (the token's current grantee) hands `caps` (each within
/// the token's) until `expires` (capped at the token's own expiry) to `grantee`.
pub fn attenuate(
    token: &str,
    holder: &SigningKey,
    grantee: &VerifyingKey,
    caps: &[String],
    expires: i64,
) -> Result<String, GrantError> {
    let mut parsed = decode(token)?;
    let last = parsed.blocks.last().expect("non-empty");
    let prev = claims(last, parsed.blocks.len() - 1)?;
    if prev.grantee != public_hex(&holder.verifying_key()) {
        return Err(GrantError::KeyMismatch { bound: prev.grantee, presenter: public_hex(&holder.verifying_key()) });
    }
    if caps.is_empty() || !caps.iter().all(|c| prev.caps.iter().any(|p| confers(p, c.trim_end_matches('/')))) {
        return Err(GrantError::Widened(parsed.blocks.len()));
    }
    let expires = expires.min(prev.expires);
    let claims = Claims {
        issuer: None,
        grantee: public_hex(grantee),
        caps: caps.to_vec(),
        expires,
        issued: 0,
        epoch: 0,
        id: sha256_hex(last.payload.as_bytes()),
        budget: None,
    };
    parsed.blocks.push(sign_block(holder, &claims));
    Ok(encode(&parsed))
}

/// Verifies a token's signatures and structure (not key binding, expiry or epoch): issuer
/// pinned to `owner`, each signature, each attenuation within the block before and granting
/// something.
pub fn verify_signed(token: &str, owner: &VerifyingKey) -> Result<Grant, GrantError> {
    verify_chain(&decode(token)?, owner).map(|chain| Arc::unwrap_or_clone(chain.grant))
}

/// The key `token` claims to be bound to (its last block's grantee), before any signature is
/// checked: only to decide which checks to make, never as a verified fact.
pub fn claimed_holder(token: &str) -> Result<String, GrantError> {
    let parsed = decode(token)?;
    let last = parsed.blocks.len() - 1;
    Ok(claims(&parsed.blocks[last], last)?.grantee)
}

/// What a token whose signatures verified establishes: the [`Grant`], and what the checks made
/// on every presentation need besides.
struct Chain {
    grant: Arc<Grant>,
    /// The grantee of each attenuation block, in order (the holder last; empty without one).
    delegates: Vec<String>,
    /// Whether block 0 grants nothing: a revocation. Only the owner's root block can revoke.
    revocation: bool,
}

fn verify_chain(parsed: &Token, owner: &VerifyingKey) -> Result<Chain, GrantError> {
    let root = claims(&parsed.blocks[0], 0)?;
    let issuer = root.issuer.clone().ok_or_else(|| GrantError::Malformed("block 0 names no issuer".into()))?;
    if issuer != public_hex(owner) {
        return Err(GrantError::WrongIssuer(short(&issuer).to_string()));
    }
    check_signature(&parsed.blocks[0], owner, 0)?;
    let mut prev = root.clone();
    let mut delegates = Vec::with_capacity(parsed.blocks.len() - 1);
    for (i, block) in parsed.blocks.iter().enumerate().skip(1) {
        let signer = parse_public(&prev.grantee).map_err(|e| GrantError::Malformed(e.to_string()))?;
        check_signature(block, &signer, i)?;
        let next = claims(block, i)?;
        if next.budget.is_some() {
            return Err(GrantError::Malformed(format!(
                "attenuation block {i} states a budget; only the owner's grant (block 0) does, and every token \
                 derived from it shares that budget"
            )));
        }
        if next.caps.is_empty() {
            return Err(GrantError::Malformed(format!(
                "attenuation block {i} grants no capabilities; an attenuation names at least one, and only \
                 this node's owner revokes (`continuum grant revoke`)"
            )));
        }
        let narrower = next.caps.iter().all(|c| prev.caps.iter().any(|p| confers(p, c.trim_end_matches('/'))));
        if !narrower || next.expires > prev.expires || next.id != sha256_hex(parsed.blocks[i - 1].payload.as_bytes()) {
            return Err(GrantError::Widened(i));
        }
        delegates.push(next.grantee.clone());
        prev = next;
    }
    let revocation = root.caps.is_empty();
    let grant = Grant {
        id: root.id,
        root: root.grantee,
        holder: prev.grantee,
        caps: prev.caps,
        expires: prev.expires,
        epoch: root.epoch,
        issued: root.issued,
        budget: root.budget,
    };
    Ok(Chain { grant: Arc::new(grant), delegates, revocation })
}

/// Key binding and expiry: a token bound to `holder` and void from `expires` may be presented
/// only by `holder`, and only before then.
fn check_binding_and_expiry(holder: &str, expires: i64, presenter: &str, now: i64) -> Result<(), GrantError> {
    if holder != presenter {
        return Err(GrantError::KeyMismatch { bound: short(holder).into(), presenter: short(presenter).into() });
    }
    if now >= expires {
        return Err(GrantError::Expired(expires));
    }
    Ok(())
}

/// Tokens whose signatures verified, by a keyed 64-bit hash of their text (never the text
/// itself): at most [`VERIFIED_CAPACITY`], the oldest evicted first.
///
/// The hash is SipHash under a key drawn at random for this process, so nobody outside it can
/// aim for a collision; and one would only hand a presenter a chain already verified *for its
/// own key*, since binding, expiry, epoch and revocation are all checked against the cached
/// chain, never the presented text. A cryptographic hash would cost more than the whole cached
/// check: for a 560-byte token, BLAKE3 ≈ 0.75 µs against SipHash ≈ 0.2 µs (2-core dev VM).
#[derive(Default)]
struct VerifiedCache {
    chains: HashMap<u64, Arc<Chain>>,
    /// The keys of `chains`, oldest first.
    order: VecDeque<u64>,
}

impl VerifiedCache {
    fn get(&self, key: u64) -> Option<Arc<Chain>> {
        self.chains.get(&key).cloned()
    }

    fn insert(&mut self, key: u64, chain: Arc<Chain>) {
        if self.chains.insert(key, chain).is_some() {
            return;
        }
        self.order.push_back(key);
        if self.order.len() > VERIFIED_CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.chains.remove(&oldest);
            }
        }
    }
}

/// The node's grant state: the owner key, epoch watermarks (durable, mirrored in memory),
/// and a bounded cache of tokens whose signatures already verified.
pub struct Grants {
    owner: VerifyingKey,
    watermarks: Mutex<HashMap<String, (u64, bool)>>,
    /// Hashes token texts into verification-cache keys (its SipHash key is random).
    token_hasher: RandomState,
    verified: Mutex<VerifiedCache>,
}

impl Grants {
    /// Loads the watermarks from `conn`.
    pub fn load(conn: &Connection, owner: VerifyingKey) -> anyhow::Result<Self> {
        let mut stmt = conn.prepare("SELECT grantee, epoch, revoked FROM grant_epochs")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? != 0))))?;
        let watermarks = rows.collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(Grants {
            owner,
            watermarks: Mutex::new(watermarks),
            token_hasher: RandomState::new(),
            verified: Mutex::new(VerifiedCache::default()),
        })
    }

    /// Re-reads the watermarks from `conn` (another process, such as `continuum grant revoke`
    /// beside a running node, may have raised them).
    pub fn reload(&self, conn: &Connection) -> anyhow::Result<()> {
        let fresh = Self::load(conn, self.owner)?;
        *crate::sync::lock(&self.watermarks) = fresh.watermarks.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(())
    }

    /// The owner key grants are pinned to.
    pub fn owner(&self) -> &VerifyingKey {
        &self.owner
    }

    /// The highest epoch seen for `grantee`, and whether it was a revocation.
    pub fn watermark(&self, grantee: &str) -> Option<(u64, bool)> {
        crate::sync::lock(&self.watermarks).get(grantee).copied()
    }

    /// How many verified tokens the cache holds (at most [`VERIFIED_CAPACITY`]).
    pub fn cached(&self) -> usize {
        crate::sync::lock(&self.verified).chains.len()
    }

    /// Raises `grantee`'s watermark to `epoch` (durably first); `revoked` marks a revocation.
    pub fn raise(&self, conn: &Connection, grantee: &str, epoch: u64, revoked: bool) -> anyhow::Result<()> {
        let mut marks = crate::sync::lock(&self.watermarks);
        if marks.get(grantee).is_some_and(|(e, _)| *e > epoch) {
            return Ok(());
        }
        conn.execute(
            "INSERT INTO grant_epochs (grantee, epoch, revoked) VALUES (?1, ?2, ?3)
             ON CONFLICT(grantee) DO UPDATE SET epoch = excluded.epoch, revoked = excluded.revoked WHERE excluded.epoch >= grant_epochs.epoch",
            params![grantee, epoch as i64, revoked as i64],
        )?;
        marks.insert(grantee.to_string(), (epoch, revoked));
        Ok(())
    }

    /// Full verification for a token presented by `presenter` at `now`: key binding and expiry
    /// as the last block states them (before any signature work, so a token that is not the
    /// presenter's or is past its time costs none and is never cached), then issuer and
    /// signatures (cached by a keyed hash of the token, the cache bounded), binding and expiry
    /// again as signed, the root grantee's epoch, and that no key the token was handed on to
    /// is revoked.
    pub fn verify(&self, conn: &Connection, token: &str, presenter: &str, now: i64) -> Result<Arc<Grant>, GrantError> {
        let key = self.token_hasher.hash_one(token);
        let cached = crate::sync::lock(&self.verified).get(key);
        let chain = match cached {
            Some(chain) => chain,
            None => {
                let parsed = decode(token)?;
                let last = parsed.blocks.len() - 1;
                let claimed = claims(&parsed.blocks[last], last)?;
                check_binding_and_expiry(&claimed.grantee, claimed.expires, presenter, now)?;
                let chain = Arc::new(verify_chain(&parsed, &self.owner)?);
                crate::sync::lock(&self.verified).insert(key, chain.clone());
                chain
            }
        };
        let grant = &chain.grant;
        check_binding_and_expiry(&grant.holder, grant.expires, presenter, now)?;
        match self.watermark(&grant.root) {
            Some((seen, true)) if grant.epoch <= seen => return Err(GrantError::Revoked(seen)),
            Some((seen, false)) if grant.epoch < seen => return Err(GrantError::Replayed { epoch: grant.epoch, seen }),
            Some((seen, _)) if grant.epoch == seen => {}
            _ => {
                // A higher epoch than seen: remember it durably, so older grants stay refused.
                // Whether it revokes is block 0's to say, never an attenuation's.
                self.raise(conn, &grant.root, grant.epoch, chain.revocation)
                    .map_err(|e| GrantError::Malformed(e.to_string()))?;
            }
        }
        if chain.revocation {
            return Err(GrantError::Revoked(grant.epoch));
        }
        // A revoked key can use no grant, whoever handed it on and whenever: neither as the
        // holder nor as a link between the root and the holder.
        if !chain.delegates.is_empty() {
            let marks = crate::sync::lock(&self.watermarks);
            for delegate in &chain.delegates {
                if let Some((epoch, true)) = marks.get(delegate) {
                    return Err(GrantError::RevokedGrantee { key: short(delegate).into(), epoch: *epoch });
                }
            }
        }
        Ok(grant.clone())
    }

    /// Issues a grant to `grantee` (superseding earlier ones: its epoch is one above the
    /// watermark), spending at most `budget` per period, and records it.
    pub fn issue(
        &self,
        conn: &Connection,
        owner: &SigningKey,
        grantee: &VerifyingKey,
        caps: &[String],
        expires: i64,
        budget: Option<Budget>,
    ) -> anyhow::Result<String> {
        let grantee_hex = public_hex(grantee);
        let epoch = self.watermark(&grantee_hex).map_or(1, |(e, _)| e + 1);
        let token = issue_budgeted(owner, grantee, caps, expires, epoch, budget);
        let grant = verify_signed(&token, &self.owner).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.raise(conn, &grantee_hex, epoch, caps.is_empty())?;
        conn.execute(
            "INSERT INTO grants_issued (id, grantee, caps, issued, expires, epoch) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![grant.id, grantee_hex, serde_json::to_string(caps)?, crate::now_secs(), expires, epoch as i64],
        )?;
        Ok(token)
    }

    /// Revokes every grant to `grantee`: a higher epoch with no capabilities.
    pub fn revoke(&self, conn: &Connection, owner: &SigningKey, grantee: &VerifyingKey) -> anyhow::Result<u64> {
        self.issue(conn, owner, grantee, &[], crate::now_secs() + 1, None)?;
        Ok(self.watermark(&public_hex(grantee)).map_or(0, |(e, _)| e))
    }
}

/// One row of `grant list`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedGrant {
    /// Token id.
    pub id: String,
    /// Grantee key.
    pub grantee: String,
    /// Capabilities.
    pub caps: Vec<String>,
    /// Expiry, unix seconds.
    pub expires: i64,
    /// Epoch.
    pub epoch: u64,
    /// Whether a newer epoch (or a revocation) superseded it.
    pub superseded: bool,
}

/// The grants this node issued, newest first.
pub fn issued(conn: &Connection) -> anyhow::Result<Vec<IssuedGrant>> {
    let mut stmt = conn.prepare(
        "SELECT g.id, g.grantee, g.caps, g.expires, g.epoch, COALESCE(e.epoch, 0) FROM grants_issued g
         LEFT JOIN grant_epochs e ON e.grantee = g.grantee ORDER BY g.issued DESC, g.epoch DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        let caps: String = r.get(2)?;
        let epoch = r.get::<_, i64>(4)? as u64;
        Ok(IssuedGrant {
            id: r.get(0)?,
            grantee: r.get(1)?,
            caps: serde_json::from_str(&caps).unwrap_or_default(),
            expires: r.get(3)?,
            epoch,
            superseded: (r.get::<_, i64>(5)? as u64) > epoch,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_matching_respects_path_boundaries() {
        assert!(confers("text/summarize", "text/summarize"));
        assert!(confers("text/summarize", "text/summarize/stream"));
        assert!(!confers("text/summarize", "text/summarizex"));
        assert!(confers("kv/", "kv/get"));
        assert!(confers("kv", "kv/get"));
        assert!(!confers("kv", "kvx/get"));
        assert!(!confers("", "kv/get"));
        assert!(!confers("/", "kv/get"));
    }
}
