//! Who is calling the HTTP API:
//! - the local owner: any request on the node's unix socket (mode 0600), or on TCP with the
//!   owner token from `<data>/node.token` (`Authorization: Bearer …`);
//! - a client: an API key (`Authorization: Bearer ck_…`) mapped to a grantee key and the grant
//!   it presents (stored as a sha256, shown once at creation);
//! - a peer: a request signed with its node key (`x-continuum-key`, `x-continuum-date`,
//!   `x-continuum-signature`, optional `x-continuum-grant`).
//!
//! Each resolves to the same [`Caller`] the CLI uses, so grants and access levels apply alike.

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use continuum_core::keys::{parse_public, public_hex};
use continuum_core::runtime::Host;
use continuum_core::Caller;

/// API keys.
pub const SCHEMA: continuum_core::db::Schema = continuum_core::db::Schema {
    owner: "api_keys",
    migrations: &["
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    key_sha256 TEXT NOT NULL UNIQUE,
    grantee    TEXT NOT NULL,
    grant      TEXT,
    label      TEXT,
    created_at INTEGER NOT NULL
) STRICT;
"],
};

/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "ck_";

/// Header carrying a peer's public key.
pub const KEY_HEADER: &str = "x-continuum-key";
/// Header carrying the signing time (seconds since the epoch).
pub const DATE_HEADER: &str = "x-continuum-date";
/// Header carrying the ed25519 signature (hex).
pub const SIGNATURE_HEADER: &str = "x-continuum-signature";
/// Header carrying the request's nonce (hex, fresh per request).
pub const NONCE_HEADER: &str = "x-continuum-nonce";
/// Header carrying a grant token.
pub const GRANT_HEADER: &str = "x-continuum-grant";

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Its id (for revocation).
    pub id: String,
    /// The grantee key calls made with it run as.
    pub grantee: String,
    /// Whether it carries a grant.
    pub granted: bool,
    /// A label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Creation time (seconds since the epoch).
    pub created_at: i64,
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Creates an API key for `grantee` (a key) or for the holder of `grant`; returns (id, key).
pub fn create_api_key(host: &Host, grantee_or_grant: &str, label: Option<&str>) -> Result<(String, String)> {
    let (grantee, grant) = if grantee_or_grant.starts_with(continuum_core::grants::PREFIX) {
        let caller = host.caller_for(grantee_or_grant)?;
        (caller.id(), Some(grantee_or_grant.to_string()))
    } else {
        (public_hex(&parse_public(grantee_or_grant)?), None)
    };
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).context("no randomness for an API key")?;
    let key = format!("{API_KEY_PREFIX}{}", hex::encode(raw));
    let id = sha256(&key)[..12].to_string();
    host.core().db().execute(
        "INSERT INTO api_keys (id, key_sha256, grantee, grant, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, sha256(&key), grantee, grant, label, continuum_core::now_secs()],
    )?;
    host.core().log().append("apikey.created", &grantee, &serde_json::json!({ "id": id, "label": label }))?;
    Ok((id, key))
}

/// Every API key (without the secret).
pub fn api_keys(conn: &Connection) -> Result<Vec<ApiKey>> {
    let mut stmt =
        conn.prepare("SELECT id, grantee, grant IS NOT NULL, label, created_at FROM api_keys ORDER BY created_at")?;
    let rows = stmt.query_map([], |r| {
        Ok(ApiKey { id: r.get(0)?, grantee: r.get(1)?, granted: r.get(2)?, label: r.get(3)?, created_at: r.get(4)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revokes an API key by id.
pub fn revoke_api_key(host: &Host, id: &str) -> Result<()> {
    if host.core().db().execute("DELETE FROM api_keys WHERE id = ?1", params![id])? == 0 {
        bail!("no API key `{id}`; `continuum apikey list` shows them");
    }
    host.core().log().append("apikey.revoked", id, &serde_json::json!({}))?;
    Ok(())
}

/// The caller an API key stands for; its grant is verified on every use (expiry, revocation).
pub fn caller_for_api_key(host: &Host, key: &str) -> Result<Caller> {
    let row: Option<(String, Option<String>)> = host
        .core()
        .db()
        .query_row("SELECT grantee, grant FROM api_keys WHERE key_sha256 = ?1", params![sha256(key)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((grantee, grant)) = row else {
        bail!("unknown API key; the node owner creates one with `continuum apikey create`")
    };
    match grant {
        Some(token) => Ok(host.caller_presenting(&token, &grantee)?),
        None => host.caller_for(&grantee),
    }
}

/// How far in the past a signed request's date may be.
pub const MAX_AGE_SECS: i64 = 300;
/// How far in the future a signed request's date may be (clock skew between machines).
pub const MAX_FUTURE_SECS: i64 = 30;

/// The text a peer signs (under [`continuum_core::signing::REQUEST`]): method, path with query, date,
/// nonce, the node the request is meant for, the grant's sha256 (`-` without one), and the
/// body's sha256. Binding the node and the grant means a request captured on its way to one
/// node cannot be replayed to another, nor with another grant.
pub fn signing_text(request: &RequestToSign<'_>, date: i64, nonce: &str) -> String {
    let grant = request.grant.map_or_else(|| "-".to_string(), sha256);
    format!(
        "{}\n{}\n{date}\n{nonce}\n{}\n{grant}\n{}",
        request.method,
        request.path,
        request.node,
        hex::encode(Sha256::digest(request.body))
    )
}

/// What a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    /// The node the request is sent to (its id, hex).
    pub node: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The path with its query.
    pub path: &'a str,
    /// The grant token sent in `x-continuum-grant`, if any.
    pub grant: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// Signs a request as `key`: the headers to send (key, date, nonce, signature, and the grant
/// when there is one).
pub fn sign_request(key: &SigningKey, request: &RequestToSign<'_>) -> Vec<(&'static str, String)> {
    let date = continuum_core::now_secs();
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).expect("OS randomness");
    let nonce = hex::encode(raw);
    let signature = continuum_core::signing::sign(
        key,
        continuum_core::signing::REQUEST,
        signing_text(request, date, &nonce).as_bytes(),
    );
    let mut headers = vec![
        (KEY_HEADER, public_hex(&key.verifying_key())),
        (DATE_HEADER, date.to_string()),
        (NONCE_HEADER, nonce),
        (SIGNATURE_HEADER, signature),
    ];
    if let Some(grant) = request.grant {
        headers.push((GRANT_HEADER, grant.to_string()));
    }
    headers
}

/// The signature headers of a request, as received.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `x-continuum-key`.
    pub key: &'a str,
    /// `x-continuum-date`.
    pub date: &'a str,
    /// `x-continuum-nonce`.
    pub nonce: &'a str,
    /// `x-continuum-signature`.
    pub signature: &'a str,
}

/// A verified request signature: who signed, and the nonce to remember until `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signer's key, hex.
    pub signer: String,
    /// The request's nonce.
    pub nonce: String,
    /// Until when (unix seconds) the signature could be accepted, so its nonce must be kept.
    pub expires: i64,
}

/// Verifies a signed request at `now`: a key, a date no older than [`MAX_AGE_SECS`] and no
/// later than [`MAX_FUTURE_SECS`], a nonce of 16 to 64 hex digits, and the signature.
pub fn verify_request(signed: &Signed<'_>, request: &RequestToSign<'_>, now: i64) -> Result<Verified> {
    let public = parse_public(signed.key).context("x-continuum-key is not a public key")?;
    let date: i64 = signed.date.parse().context("x-continuum-date is not a number of seconds")?;
    if date < now - MAX_AGE_SECS || date > now + MAX_FUTURE_SECS {
        bail!(
            "the request was signed at {date}; this node ({now}) accepts dates from {MAX_AGE_SECS} s before to {MAX_FUTURE_SECS} s after its clock"
        );
    }
    let nonce = signed.nonce;
    if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("x-continuum-nonce must be 16 to 64 hex digits, fresh for every request");
    }
    if !continuum_core::signing::verify(
        &public,
        continuum_core::signing::REQUEST,
        signing_text(request, date, nonce).as_bytes(),
        signed.signature,
    ) {
        bail!(
            "the request signature does not match (method, path, date, nonce, target node, grant and body are signed)"
        );
    }
    Ok(Verified { signer: public_hex(&public), nonce: nonce.to_string(), expires: date + MAX_AGE_SECS })
}

/// The nonces of signed requests already accepted, each kept until its signature would have
/// expired anyway: a request is accepted once.
pub struct ReplayGuard {
    seen: std::sync::Mutex<std::collections::HashMap<(String, String), i64>>,
    capacity: usize,
}

impl ReplayGuard {
    /// A guard remembering at most `capacity` live nonces.
    pub fn new(capacity: usize) -> Self {
        ReplayGuard { seen: Default::default(), capacity }
    }

    /// Records `verified`'s nonce at `now`; refuses a nonce seen before, and refuses (without
    /// remembering) when `capacity` live nonces are already held.
    pub fn admit(&self, verified: &Verified, now: i64) -> Result<()> {
        let mut seen = continuum_core::sync::lock(&self.seen);
        let key = (verified.signer.clone(), verified.nonce.clone());
        if seen.contains_key(&key) {
            bail!("this signed request was already received (replay): sign each request with a fresh nonce");
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, expires| *expires >= now);
            if seen.len() >= self.capacity {
                bail!("too many signed requests in the last {MAX_AGE_SECS} s; retry later");
            }
        }
        seen.insert(key, verified.expires);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_and_tampering_is_caught() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let request =
            RequestToSign { node: "n1", method: "POST", path: "/v1/commands/text/stats", grant: None, body: b"{}" };
        let headers = sign_request(&key, &request);
        let get = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str()).unwrap();
        let signed = Signed {
            key: get(KEY_HEADER),
            date: get(DATE_HEADER),
            nonce: get(NONCE_HEADER),
            signature: get(SIGNATURE_HEADER),
        };
        let now: i64 = signed.date.parse().unwrap();
        assert_eq!(verify_request(&signed, &request, now).unwrap().signer, signed.key);
        for (what, other) in [
            ("path", RequestToSign { path: "/v1/commands/kv/put", ..request }),
            ("body", RequestToSign { body: b"{\"a\":1}", ..request }),
            ("node", RequestToSign { node: "n2", ..request }),
            ("grant", RequestToSign { grant: Some("cgt1.x"), ..request }),
        ] {
            let err = verify_request(&signed, &other, now).unwrap_err();
            assert!(err.to_string().contains("does not match"), "{what}: {err}");
        }
        let err = verify_request(&signed, &request, now + 1000).unwrap_err();
        assert!(err.to_string().contains("accepts dates"), "{err}");
        assert!(verify_request(&signed, &request, now - MAX_FUTURE_SECS - 1).is_err(), "a date too far ahead");
        let guard = ReplayGuard::new(1);
        let verified = verify_request(&signed, &request, now).unwrap();
        guard.admit(&verified, now).unwrap();
        assert!(guard.admit(&verified, now).unwrap_err().to_string().contains("replay"));
        let other = Verified { nonce: "00".repeat(8), ..verified.clone() };
        assert!(guard.admit(&other, now).unwrap_err().to_string().contains("too many"), "the guard is bounded");
        guard.admit(&other, verified.expires + 1).unwrap();
    }
}
