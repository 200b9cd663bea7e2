//! Routes over who may call what (owner only): the grants this node issued — issue, attenuate
//! one it holds, revoke — and the API keys HTTP clients call with. The same operations as
//! `continuum grant …` and `continuum apikey …`, for the console.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::principal::Principal;
use super::App;
use crate::auth::{self, ApiKey};
use continuum_core::grants::IssuedGrant;
use continuum_core::keys::{parse_public, KeyStore};
use continuum_core::Outcome;

/// A grant to issue.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IssueGrant {
    /// The grantee's public key (64 hex digits).
    pub to: String,
    /// What it may call: `plugin/command`, `plugin/` or `*`.
    pub caps: Vec<String>,
    /// How long it lasts (`24h`, `7days`; default 30 days).
    #[serde(default)]
    pub expires: Option<String>,
}

/// A grant this node holds, narrowed for another key.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AttenuateGrant {
    /// The grant token held.
    pub token: String,
    /// The name of the holder's key in this node's key store (`node` for the node's own).
    pub key: String,
    /// The new grantee's public key.
    pub to: String,
    /// The narrower capabilities (within the token's).
    pub caps: Vec<String>,
    /// How long it lasts (`1h`; default 30 days, never past the token's own expiry).
    #[serde(default)]
    pub expires: Option<String>,
}

/// A grant token, with its terms.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantToken {
    /// The token (`cgt1…`): give it to the grantee.
    pub token: String,
    /// The grantee's key.
    pub grantee: String,
    /// What it may call.
    pub caps: Vec<String>,
    /// Expiry, unix seconds.
    pub expires: i64,
}

/// Whose grants to revoke.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeGrants {
    /// The grantee's public key.
    pub grantee: String,
}

/// A revocation: the grantee's new epoch (earlier grants to it no longer verify).
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// The grantee's key.
    pub grantee: String,
    /// Its epoch now.
    pub epoch: u64,
}

/// An API key to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApiKey {
    /// A grant token (the key calls with it), or a bare public key (public commands only).
    #[serde(rename = "for")]
    pub grantee: String,
    /// A label.
    #[serde(default)]
    pub label: Option<String>,
}

/// A new API key: shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiKey {
    /// Its id (for listing and revoking).
    pub id: String,
    /// The key clients send as `Authorization: Bearer <key>`.
    pub key: String,
}

/// The longest a grant issued here may last.
const MAX_GRANT_SECS: u64 = 10 * 366 * 24 * 3600;

/// The expiry (unix seconds) of a `duration` from now (at most 10 years), 30 days without one.
fn expiry(duration: Option<&str>) -> Result<i64, ApiError> {
    let d = match duration {
        None => std::time::Duration::from_secs(30 * 24 * 3600),
        Some(text) => humantime::parse_duration(text).map_err(|_| {
            ApiError::new(Outcome::BadRequest, format!("`{text}` is not a duration; write e.g. 90s, 30m, 24h, 7days"))
        })?,
    };
    if d.as_secs() > MAX_GRANT_SECS {
        return Err(ApiError::new(Outcome::BadRequest, "a grant lasts at most 10 years"));
    }
    Ok(continuum_core::now_secs() + d.as_secs() as i64)
}

/// A refusal of bad input (a key, capability or token that does not parse).
fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(Outcome::BadRequest, format!("{e:#}"))
}

/// The grants this node issued, newest first (owner only).
#[utoipa::path(get, path = "/v1/grants", responses((status = 200, body = [IssuedGrant]), (status = 403, body = ErrorBody)))]
pub(super) async fn list_grants(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<IssuedGrant>>, ApiError> {
    p.require_owner()?;
    let grants =
        app.host.run(|host| continuum_core::grants::issued(&host.core().db())).await.map_err(ApiError::internal)?;
    Ok(Json(grants.map_err(ApiError::internal)?))
}

/// Issues a grant, superseding earlier ones to the same grantee (owner only).
#[utoipa::path(post, path = "/v1/grants", request_body = IssueGrant,
    responses((status = 200, body = GrantToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn issue_grant(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(req): Json<IssueGrant>,
) -> Result<Json<GrantToken>, ApiError> {
    p.require_owner()?;
    let expires = expiry(req.expires.as_deref())?;
    let (to, caps) = (req.to.trim().to_string(), req.caps.clone());
    let token = app
        .host
        .run(move |host| host.issue_grant(&to, &caps, expires))
        .await
        .map_err(ApiError::internal)?
        .map_err(bad)?;
    Ok(Json(GrantToken { token, grantee: req.to.trim().to_string(), caps: req.caps, expires }))
}

/// Narrows a grant this node holds for another key (owner only): signed with `key` from the
/// node's key store, which must be the token's holder.
#[utoipa::path(post, path = "/v1/grants/attenuate", request_body = AttenuateGrant,
    responses((status = 200, body = GrantToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn attenuate_grant(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(req): Json<AttenuateGrant>,
) -> Result<Json<GrantToken>, ApiError> {
    p.require_owner()?;
    // A name in the key store, never a path (the store would read any file it names).
    if req.key.is_empty() || req.key.contains(['/', '\\']) || req.key.starts_with('.') {
        return Err(ApiError::new(
            Outcome::BadRequest,
            "`key` names a key in this node's key store (`continuum key list`), not a path",
        ));
    }
    let expires = expiry(req.expires.as_deref())?;
    let grantee = parse_public(req.to.trim()).map_err(bad)?;
    let (token, key, caps) = (req.token.trim().to_string(), req.key.clone(), req.caps.clone());
    let narrower = app
        .host
        .run(move |host| -> anyhow::Result<String> {
            let holder = KeyStore::new(host.core().data().root().join("keys")).load(&key)?;
            Ok(continuum_core::grants::attenuate(&token, &holder, &grantee, &caps, expires)?)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(bad)?;
    Ok(Json(GrantToken { token: narrower, grantee: req.to.trim().to_string(), caps: req.caps, expires }))
}

/// Revokes every grant to a grantee (owner only).
#[utoipa::path(post, path = "/v1/grants/revoke", request_body = RevokeGrants,
    responses((status = 200, body = Revoked), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn revoke_grants(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(req): Json<RevokeGrants>,
) -> Result<Json<Revoked>, ApiError> {
    p.require_owner()?;
    let grantee = req.grantee.trim().to_string();
    let target = grantee.clone();
    let epoch =
        app.host.run(move |host| host.revoke_grants(&target)).await.map_err(ApiError::internal)?.map_err(bad)?;
    Ok(Json(Revoked { grantee, epoch }))
}

/// The API keys (never the keys themselves; owner only).
#[utoipa::path(get, path = "/v1/apikeys", responses((status = 200, body = [ApiKey]), (status = 403, body = ErrorBody)))]
pub(super) async fn list_api_keys(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    p.require_owner()?;
    let keys = app.host.run(|host| auth::api_keys(&host.core().db())).await.map_err(ApiError::internal)?;
    Ok(Json(keys.map_err(ApiError::internal)?))
}

/// Creates an API key for a grant's holder or a bare key (owner only).
#[utoipa::path(post, path = "/v1/apikeys", request_body = CreateApiKey,
    responses((status = 200, body = NewApiKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn create_api_key(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(req): Json<CreateApiKey>,
) -> Result<Json<NewApiKey>, ApiError> {
    p.require_owner()?;
    let (id, key) = app
        .host
        .run(move |host| auth::create_api_key(host, req.grantee.trim(), req.label.as_deref()))
        .await
        .map_err(ApiError::internal)?
        .map_err(bad)?;
    Ok(Json(NewApiKey { id, key }))
}

/// Revokes an API key by id (owner only): its console sessions end with it.
#[utoipa::path(delete, path = "/v1/apikeys/{id}", params(("id" = String, Path, description = "the key's id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn revoke_api_key(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    p.require_owner()?;
    app.host
        .run(move |host| auth::revoke_api_key(host, &id))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(Outcome::NotFound, format!("{e:#}")))?;
    Ok(StatusCode::NO_CONTENT)
}
