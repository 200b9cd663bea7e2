//! The web console's routes: its embedded page and files and the two ways in (served without a
//! credential: they hold no data), and, behind authentication, the session's own routes —
//! who it is, logging out, and the owner's one-time login links (`continuum console`).

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::limits::{header_text, UnauthenticatedRead};
use super::principal::Principal;
use super::App;
use crate::auth;
use crate::console::assets::{self, Asset, CONTENT_SECURITY_POLICY};
use crate::console::session::{Login, Session, COOKIE, LINK_TTL, SESSION_TTL};
use continuum_core::Outcome;

/// The session a request came in with, put beside its [`Principal`] by authentication.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The session id (the cookie's value).
    pub id: String,
    /// Its CSRF token.
    pub csrf: String,
}

/// An embedded file as a response, with the console's security headers.
fn asset_response(asset: Asset) -> Response {
    let mut response = ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response();
    secure(&mut response);
    response
}

/// Adds the console's security headers: its content policy, no sniffing, no framing, no
/// referrer (a login link's code must not leak), no caching of anything personal.
fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The console page (public: it holds no data; it asks the API, which authenticates).
pub(super) async fn page() -> Response {
    asset_response(assets::INDEX)
}

/// One of the console's files (public, like the page).
pub(super) async fn file(Path(name): Path<String>) -> Response {
    match assets::named(&name) {
        Some(asset) => asset_response(asset),
        None => (StatusCode::NOT_FOUND, "no such console file").into_response(),
    }
}

/// The query of a login link.
#[derive(Debug, Deserialize)]
pub(super) struct LinkQuery {
    /// The one-time code `continuum console` printed.
    code: Option<String>,
}

/// `GET /login?code=…`: uses up a one-time login link and opens an owner session (its cookie
/// set), then goes on to the console. Without a code, the console's own login page.
pub(super) async fn login_link(State(app): State<App>, Query(q): Query<LinkQuery>) -> Response {
    let Some(code) = q.code else { return page().await };
    if !app.sessions.redeem_link(&code) {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This login link was already used or has expired (links last 5 minutes and work once). \
             Run `continuum console` for a new one, or log in with an API key at /login.",
        )
            .into_response();
        secure(&mut response);
        return response;
    }
    let (id, session) = app.sessions.open(Login::Owner);
    // A page, not a redirect: the cookie is set on this response either way, and the console
    // then loads by a same-site navigation, which sends a SameSite=Strict cookie.
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url=/\"><title>Continuum</title>\
         <p>Logged in. <a href=\"/\">Open the console</a>.</p>",
    )
        .into_response();
    set_cookie(&mut response, &id, &session);
    secure(&mut response);
    response
}

/// Sets the session cookie: `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's
/// page sends it), for the whole node, as long as the session lasts.
fn set_cookie(response: &mut Response, id: &str, session: &Session) {
    let max_age = session.expires.saturating_duration_since(std::time::Instant::now()).as_secs();
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
}

/// An API key login.
#[derive(Debug, Deserialize, ToSchema)]
pub struct KeyLogin {
    /// The API key (`ck_…`) the owner created with `continuum apikey create`.
    pub api_key: String,
}

/// `POST /console/login` (JSON `{"api_key": …}`): opens a session for an API key's grantee.
/// Only a same-origin page can send it (JSON body, Origin checked), and the key lookups of
/// strangers are bounded like any unauthenticated work.
pub(super) async fn login_key(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    same_origin(&app, &headers)?;
    if !header_text(&headers, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        return Err(ApiError::new(Outcome::BadRequest, "send the API key as JSON: {\"api_key\": \"ck_…\"}"));
    }
    let login: KeyLogin = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(Outcome::BadRequest, format!("the body is not {{\"api_key\": …}}: {e}")))?;
    let address: IpAddr = peer.ip();
    let _reading = UnauthenticatedRead::start(&app, address)?;
    let key = login.api_key.trim().to_string();
    let lookup = key.clone();
    app.host
        .run(move |host| auth::caller_for_api_key(host, &lookup))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(Outcome::Unauthenticated, format!("{e:#}")))?;
    let (id, session) = app.sessions.open(Login::ApiKey(key));
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut response, &id, &session);
    secure(&mut response);
    Ok(response)
}

/// Refuses a request whose `Origin` names another site (a login form posted from elsewhere).
fn same_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    match header_text(headers, "origin") {
        None => Ok(()),
        Some(origin) => {
            let host = origin.strip_prefix("http://").unwrap_or("");
            let port_ok = host.rsplit_once(':').is_some_and(|(_, p)| p == app.http_port.to_string());
            let local = host.starts_with("localhost:") || host.starts_with("127.") || host.starts_with("[::1]:");
            if port_ok && (local || app.http_addr.ends_with(host)) {
                Ok(())
            } else {
                Err(ApiError::new(
                    Outcome::Denied,
                    format!("a console login from another origin ({origin}) is refused"),
                ))
            }
        }
    }
}

/// Who the console is logged in as.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The caller's id (`owner`, or a public key).
    pub caller: String,
    /// Whether it is the node owner (who sees the log, peers, plugins and grants).
    pub owner: bool,
    /// The token to send as `x-continuum-csrf` with every request that changes something;
    /// absent when the request was not made with a session cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// This node's id.
    pub node: String,
}

/// Who the caller is, and the session's CSRF token.
#[utoipa::path(get, path = "/v1/console/session", responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub(super) async fn session_info(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    session: Option<Extension<ConsoleSession>>,
) -> Json<SessionInfo> {
    Json(SessionInfo {
        caller: p.caller().id(),
        owner: matches!(p, Principal::Owner),
        csrf: session.map(|Extension(s)| s.csrf),
        node: app.grid.id(),
    })
}

/// Ends the session the request came with (its cookie cleared).
#[utoipa::path(post, path = "/v1/console/logout", responses((status = 204, description = "Logged out")))]
pub(super) async fn logout(State(app): State<App>, session: Option<Extension<ConsoleSession>>) -> Response {
    if let Some(Extension(s)) = session {
        app.sessions.close(&s.id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A one-time login link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginLink {
    /// Open it in a browser on this machine: it logs in as the owner, once.
    pub url: String,
    /// Seconds it stays usable.
    pub expires_in_s: u64,
    /// Seconds a session opened with it lasts.
    pub session_s: u64,
}

/// A new one-time login link for the owner (owner only): `continuum console` prints it.
#[utoipa::path(post, path = "/v1/console/login-links", responses((status = 200, body = LoginLink), (status = 403, body = ErrorBody)))]
pub(super) async fn login_link_new(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<LoginLink>, ApiError> {
    p.require_owner()?;
    let code = app.sessions.new_link();
    Ok(Json(LoginLink {
        url: format!("{}/login?code={code}", app.http_addr),
        expires_in_s: LINK_TTL.as_secs(),
        session_s: SESSION_TTL.as_secs(),
    }))
}
