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
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::keys::{parse_public, public_hex};
use crate::runtime::Host;
use crate::Caller;

/// API keys.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,
    key_sha256 TEXT NOT NULL UNIQUE,
    grantee    TEXT NOT NULL,
    grant      TEXT,
    label      TEXT,
    created_at INTEGER NOT NULL
) STRICT;
";

/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "ck_";
/// How far a signed request's date may be from the node's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Header carrying a peer's public key.
pub const KEY_HEADER: &str = "x-continuum-key";
/// Header carrying the signing time (seconds since the epoch).
pub const DATE_HEADER: &str = "x-continuum-date";
/// Header carrying the ed25519 signature (hex).
pub const SIGNATURE_HEADER: &str = "x-continuum-signature";
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
    let (grantee, grant) = if grantee_or_grant.starts_with(crate::grants::PREFIX) {
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
        params![id, sha256(&key), grantee, grant, label, crate::now_secs()],
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

/// The text a peer signs: method, path with query, date, and the body's sha256.
pub fn signing_text(method: &str, path: &str, date: i64, body: &[u8]) -> String {
    format!("continuum-request/1\n{method}\n{path}\n{date}\n{}", hex::encode(Sha256::digest(body)))
}

/// Signs a request as `key`: the headers to send (key, date, signature).
pub fn sign_request(key: &SigningKey, method: &str, path: &str, body: &[u8]) -> [(&'static str, String); 3] {
    let date = crate::now_secs();
    let signature = key.sign(signing_text(method, path, date, body).as_bytes());
    [
        (KEY_HEADER, public_hex(&key.verifying_key())),
        (DATE_HEADER, date.to_string()),
        (SIGNATURE_HEADER, hex::encode(signature.to_bytes())),
    ]
}

/// Verifies a signed request; returns the signer's key (hex).
pub fn verify_request(
    key: &str,
    date: &str,
    signature: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now: i64,
) -> Result<String> {
    let public = parse_public(key).context("x-continuum-key is not a public key")?;
    let date: i64 = date.parse().context("x-continuum-date is not a number of seconds")?;
    if (now - date).abs() > MAX_CLOCK_SKEW_SECS {
        bail!("the request was signed at {date}, more than {MAX_CLOCK_SKEW_SECS} s from this node's clock ({now})");
    }
    let bytes: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("x-continuum-signature is not 64 hex bytes")?;
    public
        .verify(signing_text(method, path, date, body).as_bytes(), &Signature::from_bytes(&bytes))
        .context("the request signature does not match (method, path, date and body are signed)")?;
    Ok(public_hex(&public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_and_tampering_is_caught() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let [(_, k), (_, date), (_, sig)] = sign_request(&key, "POST", "/v1/commands/text/stats", b"{}");
        let now = date.parse().unwrap();
        assert_eq!(verify_request(&k, &date, &sig, "POST", "/v1/commands/text/stats", b"{}", now).unwrap(), k);
        let err = verify_request(&k, &date, &sig, "POST", "/v1/commands/kv/put", b"{}", now).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        assert!(verify_request(&k, &date, &sig, "POST", "/v1/commands/text/stats", b"{\"a\":1}", now).is_err());
        let err = verify_request(&k, &date, &sig, "POST", "/v1/commands/text/stats", b"{}", now + 1000).unwrap_err();
        assert!(err.to_string().contains("from this node's clock"), "{err}");
    }
}
