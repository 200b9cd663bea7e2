//! The web console's routes: its embedded page and files and the two ways in (served without a
//! credential: they hold no data), and, behind authentication, the session's own routes —
//! who it is, logging out, and the owner's one-time login links (`continuum console`).

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::limits::{header_text, read_body, UnauthenticatedRead};
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
    // The console page itself, carrying the session's token for its script to keep (in this
    // origin's storage): the cookie alone opens nothing.
    let page = assets::INDEX.body.replace(
        r#"<meta name="continuum-token" content="">"#,
        &format!(r#"<meta name="continuum-token" content="{}">"#, session.csrf),
    );
    let mut response = ([(header::CONTENT_TYPE, assets::INDEX.content_type)], page).into_response();
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

/// What an API-key login answers: the session's token, which every request of the session
/// must carry in `x-continuum-csrf` beside the cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyLoggedIn {
    /// The session's token.
    pub token: String,
}

/// `POST /console/login` (JSON `{"api_key": …}`): opens a session for an API key's grantee.
/// Only a page of this node's own origin can send it (JSON body, so a preflight; `Origin`
/// must be this node), and the body is read as unauthenticated work: bounded in size, time and
/// number at once, like a signed request's.
pub(super) async fn login_key(State(app): State<App>, request: Request) -> Result<Response, ApiError> {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    same_origin(headers)?;
    if !header_text(headers, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        return Err(ApiError::new(Outcome::BadRequest, "send the API key as JSON: {\"api_key\": \"ck_…\"}"));
    }
    // Over the owner's socket there is no address: count it as loopback.
    let address = peer.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let _reading = UnauthenticatedRead::start(&app, address)?;
    let body = read_body(body, MAX_LOGIN_BODY).await?;
    let login: KeyLogin = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(Outcome::BadRequest, format!("the body is not {{\"api_key\": …}}: {e}")))?;
    let key = login.api_key.trim().to_string();
    let lookup = key.clone();
    app.host
        .run(move |host| auth::caller_for_api_key(host, &lookup))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(Outcome::Unauthenticated, format!("{e:#}")))?;
    let (id, session) = app.sessions.open(Login::ApiKey(key));
    let mut response = Json(KeyLoggedIn { token: session.csrf.clone() }).into_response();
    set_cookie(&mut response, &id, &session);
    secure(&mut response);
    Ok(response)
}

/// The largest API-key login body.
const MAX_LOGIN_BODY: usize = 4096;

/// Refuses a request whose `Origin` is not exactly this node as the request names it (`Host`,
/// already checked to be this node): a login posted from another site or port.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = header_text(headers, "origin") else { return Ok(()) };
    let host = header_text(headers, "host").unwrap_or_default();
    if origin == format!("http://{host}") {
        Ok(())
    } else {
        Err(ApiError::new(Outcome::Denied, format!("a console login from another origin ({origin}) is refused")))
    }
}

/// Who the console is logged in as.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The caller's id (`owner`, or a public key).
    pub caller: String,
    /// Whether it is the node owner (who sees the log, peers, plugins and grants).
    pub owner: bool,
    /// This node's id.
    pub node: String,
}

/// Who the caller is.
#[utoipa::path(get, path = "/v1/console/session", responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub(super) async fn session_info(State(app): State<App>, Extension(p): Extension<Principal>) -> Json<SessionInfo> {
    Json(SessionInfo { caller: p.caller().id(), owner: matches!(p, Principal::Owner), node: app.grid.id() })
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
