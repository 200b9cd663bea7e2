//! Who a request comes from: the listener it arrived on ([`Transport`]) and the credential it
//! presents, resolved by the `authenticate` middleware into a [`Principal`] that handlers
//! read (the rules themselves are in [`crate::auth`]).

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;

use super::console::ConsoleSession;
use super::error::ApiError;
use super::limits::{header_text, read_body, UnauthenticatedRead};
use super::App;
use crate::auth;
use crate::console::session::{constant_time_eq, Login, Refusal, COOKIE, CSRF_HEADER};
use continuum_core::{Caller, Outcome};

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The node's unix socket (only the owner can open it).
    Socket,
    /// TCP.
    Tcp,
}

/// Who is calling, after authentication.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The local owner.
    Owner,
    /// A client (API key) or a peer (signed request).
    Caller(Caller),
}

impl Principal {
    /// The caller that commands run as.
    pub fn caller(&self) -> Caller {
        match self {
            Principal::Owner => Caller::owner(),
            Principal::Caller(c) => c.clone(),
        }
    }

    /// Refuses (403 `denied`) anyone but the node owner.
    pub(super) fn require_owner(&self) -> Result<(), ApiError> {
        match self {
            Principal::Owner => Ok(()),
            Principal::Caller(c) => Err(ApiError::new(
                Outcome::Denied,
                format!("only the node owner may do this (the caller is {})", crate::grid::short(&c.id())),
            )),
        }
    }
}

/// Resolves the principal: socket → owner; bearer owner token → owner; bearer API key →
/// its grantee; signed request → the signing peer (with its grant, if it presents one);
/// console session cookie with its token → who logged in.
pub(super) async fn authenticate(
    State(app): State<App>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let transport = request.extensions().get::<Transport>().copied().unwrap_or(Transport::Tcp);
    let credential = if transport == Transport::Socket {
        Credential::Owner
    } else {
        Credential::of(request.headers(), &app.owner_token)
    };
    let (principal, mut request) = match credential {
        Credential::Owner => (Principal::Owner, request),
        Credential::ApiKey(token) => api_key_principal(&app, token, request).await?,
        Credential::Session(id) => {
            // A plugin's own pages and MCP clients are not the console: a session never reaches them.
            let path = request.uri().path();
            if path.starts_with("/v1/http/") || path == "/v1/http" || path.starts_with("/mcp") {
                return Err(ApiError::new(
                    Outcome::Unauthenticated,
                    "a console session does not reach plugin HTTP handlers or MCP: send a bearer token",
                ));
            }
            let csrf = header_text(request.headers(), CSRF_HEADER);
            let session = app.sessions.check(&id, csrf).map_err(|refusal| {
                let outcome = if refusal == Refusal::MissingCsrf { Outcome::Denied } else { Outcome::Unauthenticated };
                ApiError::new(outcome, refusal.message())
            })?;
            request.extensions_mut().insert(ConsoleSession { id });
            match session.login {
                Login::Owner => (Principal::Owner, request),
                Login::ApiKey(token) => api_key_principal(&app, token, request).await?,
            }
        }
        Credential::UnknownBearer => {
            return Err(ApiError::new(
                Outcome::Unauthenticated,
                "the bearer token is neither the owner token nor an API key",
            ))
        }
        Credential::Signed => {
            let address = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
            let reading = UnauthenticatedRead::start(&app, address)?;
            let (parts, body) = request.into_parts();
            let bytes = read_body(body, app.max_body).await?;
            drop(reading);
            let headers = &parts.headers;
            let path = parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str());
            let grant = header_text(headers, auth::GRANT_HEADER).map(String::from);
            let node = app.grid.id();
            let signed = auth::Signed {
                key: header_text(headers, auth::KEY_HEADER).unwrap_or(""),
                date: header_text(headers, auth::DATE_HEADER).unwrap_or(""),
                nonce: header_text(headers, auth::NONCE_HEADER).unwrap_or(""),
                signature: header_text(headers, auth::SIGNATURE_HEADER).unwrap_or(""),
            };
            let target = auth::RequestToSign {
                node: &node,
                method: parts.method.as_str(),
                path,
                grant: grant.as_deref(),
                body: &bytes,
            };
            let now = continuum_core::now_secs();
            let verified = auth::verify_request(&signed, &target, now)
                .and_then(|v| app.replays.admit(&v, now).map(|()| v))
                .map_err(|e| ApiError::new(Outcome::Unauthenticated, format!("{e:#}")))?;
            let signer = verified.signer;
            let caller = app
                .host
                .run(move |host| match grant {
                    Some(token) => host.caller_presenting(&token, &signer).map_err(anyhow::Error::from),
                    None => host.caller_for(&signer),
                })
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| ApiError::new(Outcome::Denied, format!("grant refused: {e:#}")))?;
            (Principal::Caller(caller), Request::from_parts(parts, Body::from(bytes)))
        }
        Credential::Missing => {
            return Err(ApiError::new(
                Outcome::Unauthenticated,
                "send `Authorization: Bearer <owner token or API key>`, or sign the request with your node key (x-continuum-key, x-continuum-date, x-continuum-signature)",
            ))
        }
    };
    // The owner may act as another caller (`continuum run --as`), as on the CLI.
    let acting_as = header_text(request.headers(), "x-continuum-as").map(String::from);
    let principal = match (&principal, acting_as) {
        (Principal::Owner, Some(spec)) => {
            let caller = app
                .host
                .run(move |host| host.caller_for(&spec))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| ApiError::new(Outcome::Denied, format!("{e:#}")))?;
            Principal::Caller(caller)
        }
        _ => principal,
    };
    // A grant's budget is metered where receipts are kept: on grid calls. Over HTTP it would
    // be spent unmetered, so a budgeted grant is no credential here.
    if let Principal::Caller(Caller::Key { grant: Some(grant), .. }) = &principal {
        if grant.budget.is_some() {
            return Err(ApiError::new(
                Outcome::Denied,
                "this grant carries a budget, which this node meters on grid calls only: present it from a node \
                 (`continuum peer add <node> --grant <token>`), or ask the owner for a grant without one",
            ));
        }
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// The principal of API key `token` (its grantee, with the grant it maps to), and `request`
/// with its body read: a client's body is read (within the body timeout) before it takes a
/// call slot, so a stalled upload holds nothing that other callers need.
async fn api_key_principal(app: &App, token: String, request: Request) -> Result<(Principal, Request), ApiError> {
    let caller = app
        .host
        .run(move |host| auth::caller_for_api_key(host, &token))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(Outcome::Unauthenticated, format!("{e:#}")))?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, app.max_body).await?;
    Ok((Principal::Caller(caller), Request::from_parts(parts, Body::from(bytes))))
}

/// What a TCP request presents to authenticate (read without copying its headers).
enum Credential {
    /// The owner token (or the owner's socket).
    Owner,
    /// An API key, to look up.
    ApiKey(String),
    /// A bearer token that is neither.
    UnknownBearer,
    /// A signed request (x-continuum-key and its signature headers).
    Signed,
    /// A console session's cookie (its id).
    Session(String),
    /// Nothing.
    Missing,
}

impl Credential {
    /// What `headers` present, the owner token being `owner_token`.
    fn of(headers: &HeaderMap, owner_token: &str) -> Credential {
        let bearer = header_text(headers, "authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
        match bearer {
            Some(token) if constant_time_eq(token.as_bytes(), owner_token.as_bytes()) => Credential::Owner,
            Some(token) if token.starts_with(auth::API_KEY_PREFIX) => Credential::ApiKey(token.to_string()),
            Some(_) => Credential::UnknownBearer,
            None if headers.contains_key(auth::KEY_HEADER) => Credential::Signed,
            None => match session_cookie(headers) {
                Some(id) => Credential::Session(id.to_string()),
                None => Credential::Missing,
            },
        }
    }
}

/// The console session id in the request's cookies, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|id| !id.is_empty())
}
