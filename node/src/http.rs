//! The node's HTTP API (SPEC §8), versioned under `/v1`, with its OpenAPI document generated
//! from these handlers (`/v1/openapi.json`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::auth;
use crate::grid::dispatch::{GridCall, GridError, GridResult};
use crate::grid::fetch::Fetched;
use crate::grid::offers::PluginOffer;
use crate::grid::peers::Peer;
use crate::grid::{Grid, KnownOffer};
use continuum_core::reflect::CommandSchema;
use continuum_core::runtime::{CallError, Host};
use continuum_core::Caller;

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
    fn caller(&self) -> Caller {
        match self {
            Principal::Owner => Caller::owner(),
            Principal::Caller(c) => c.clone(),
        }
    }

    fn require_owner(&self) -> Result<(), ApiError> {
        match self {
            Principal::Owner => Ok(()),
            Principal::Caller(c) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "denied",
                format!("only the node owner may do this (the caller is {})", crate::grid::short(&c.id())),
            )),
        }
    }
}

/// Shared state of the HTTP API, behind one `Arc`: axum clones it for every middleware and
/// handler of every request.
pub type App = Arc<AppState>;

/// What the HTTP API's handlers share.
pub struct AppState {
    /// The host.
    pub host: Host,
    /// The grid endpoint.
    pub grid: Grid,
    /// The owner token (TCP owner access).
    pub owner_token: Arc<String>,
    /// When the node started.
    pub started: Instant,
    /// The owner's requests handled at once (socket and owner token); more wait, then get 503.
    pub owner_slots: Arc<Semaphore>,
    /// Other callers' requests handled at once: a flood of them never takes the owner's.
    pub client_slots: Arc<Semaphore>,
    /// Signed requests whose bodies are being read before their signature can be checked:
    /// unauthenticated work, bounded apart from both budgets above.
    pub unauthenticated: Arc<Semaphore>,
    /// Unauthenticated body reads in progress per client address.
    pub reading: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    /// Nonces of accepted signed requests (each is accepted once).
    pub replays: auth::ReplayGuard,
    /// Largest request body.
    pub max_body: usize,
    /// Ends the node gracefully.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The HTTP address, as served.
    pub http_addr: String,
    /// The TCP port served, the only one a `Host` header may name.
    pub http_port: u16,
}

impl AppState {
    /// The state of a node serving `http_addr` (port `http_port`): `max_concurrent` requests at
    /// once for the owner and as many for everyone else, bodies up to `max_body` bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: Host,
        grid: Grid,
        owner_token: String,
        max_concurrent: usize,
        max_body: usize,
        shutdown: tokio::sync::watch::Sender<bool>,
        http_addr: String,
        http_port: u16,
    ) -> AppState {
        AppState {
            host,
            grid,
            owner_token: Arc::new(owner_token),
            started: Instant::now(),
            owner_slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            client_slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            unauthenticated: Arc::new(Semaphore::new(MAX_UNAUTHENTICATED)),
            reading: Default::default(),
            replays: auth::ReplayGuard::new(MAX_REMEMBERED_NONCES),
            max_body,
            shutdown,
            http_addr,
            http_port,
        }
    }
}

/// How long a client may take to send a request body (after its headers).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Unauthenticated body reads in progress at once, over all clients.
pub const MAX_UNAUTHENTICATED: usize = 64;
/// Unauthenticated body reads in progress at once from one address.
pub const MAX_UNAUTHENTICATED_PER_ADDRESS: usize = 16;
/// Signed-request nonces remembered at once (each for [`auth::MAX_AGE_SECS`]).
pub const MAX_REMEMBERED_NONCES: usize = 1 << 20;

/// An error answer: `{"error": {"code", "message", "value"?}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A short name (`denied`, `unknown-command`, `invalid-params`, `command-error`, …).
    pub code: String,
    /// For a person: what was wrong and how to fix it.
    pub message: String,
    /// The command's own error value, for `command-error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub value: Option<Value>,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: String) -> Self {
        ApiError { status, body: ErrorBody { error: ErrorDetail { code: code.into(), message, value: None } } }
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "host-error", e.to_string())
    }

    fn bad(e: anyhow::Error) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", format!("{e:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let busy = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = (self.status, Json(self.body)).into_response();
        if busy {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        let status = match &e {
            CallError::UnknownCommand { .. } => StatusCode::NOT_FOUND,
            CallError::InvalidParams { .. } => StatusCode::BAD_REQUEST,
            CallError::Denied { .. } => StatusCode::FORBIDDEN,
            CallError::CommandFailed { .. } | CallError::Limit { .. } | CallError::DepthExceeded { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            CallError::Trapped { .. } => StatusCode::BAD_GATEWAY,
            CallError::Host { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let value = match &e {
            CallError::CommandFailed { error, .. } => Some(error.clone()),
            _ => None,
        };
        ApiError {
            status,
            body: ErrorBody { error: ErrorDetail { code: e.outcome().into(), message: e.to_string(), value } },
        }
    }
}

impl From<GridError> for ApiError {
    fn from(e: GridError) -> Self {
        let status = match &e {
            GridError::Invalid(_) => StatusCode::BAD_REQUEST,
            GridError::NoPeer { .. } => StatusCode::NOT_FOUND,
            GridError::Peer { error, .. } if error.outcome() == "denied" => StatusCode::FORBIDDEN,
            GridError::Peer { error, .. } if matches!(error.outcome(), "unreachable" | "timeout") => {
                StatusCode::GATEWAY_TIMEOUT
            }
            GridError::Peer { .. } | GridError::Quorum { .. } => StatusCode::BAD_GATEWAY,
        };
        let value = match &e {
            GridError::Peer { attempts, .. } | GridError::Quorum { attempts, .. } => {
                serde_json::to_value(attempts).ok()
            }
            _ => None,
        };
        ApiError { status, body: ErrorBody { error: ErrorDetail { code: e.outcome(), message: e.to_string(), value } } }
    }
}

/// The node.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// The node id (its public key, hex).
    pub id: String,
    /// The host version.
    pub version: String,
    /// The HTTP API address.
    pub http: String,
    /// The grid endpoint's UDP addresses.
    pub grid: Vec<String>,
    /// Installed plugins.
    pub plugins: usize,
    /// Known peers.
    pub peers: usize,
    /// Seconds since the node started.
    pub uptime_s: u64,
}

/// A call's result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallResponse {
    /// The command's JSON result.
    #[schema(value_type = serde_json::Value)]
    pub result: Value,
    /// Call time in microseconds.
    pub elapsed_us: u64,
    /// What the plugin wrote to stdout/stderr (control characters stripped), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// Filters for the event list and stream.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventQuery {
    /// Only entries after this sequence number.
    after: Option<u64>,
    /// Only this kind, or a prefix ending in `.`.
    kind: Option<String>,
    /// At most this many (list only; default 100, at most 1000).
    limit: Option<u64>,
}

/// A peer to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPeer {
    /// `<node-id>@<ip:port>`.
    pub address: String,
    /// A nickname.
    #[serde(default)]
    pub name: Option<String>,
    /// A grant token the peer issued to this node.
    #[serde(default)]
    pub grant: Option<String>,
}

/// An offer search.
#[derive(Debug, Deserialize, IntoParams)]
pub struct OfferQuery {
    /// What the command should do, in plain words.
    query: String,
    /// How many matches (default 10).
    top: Option<usize>,
}

/// Ranked commands on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferSearch {
    /// How they were ranked.
    pub ranking: continuum_core::discovery::Method,
    /// Best first.
    pub matches: Vec<crate::grid::search::GridMatch>,
}

/// A plugin to install from a peer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallFrom {
    /// Plugin name or component digest.
    pub plugin: String,
    /// `any`, or a peer.
    #[serde(default = "any_peer")]
    pub from: String,
    /// Host capabilities to approve.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Install even if the signer is not trusted.
    #[serde(default)]
    pub allow_untrusted: bool,
}

fn any_peer() -> String {
    "any".into()
}

/// A log pull.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pull {
    /// The peer.
    pub peer: String,
}

/// What a log pull imported.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Pulled {
    /// The peer's node id.
    pub node: String,
    /// Entries newly stored.
    pub entries: u64,
    /// The local Lamport time after the pull.
    pub lamport: u64,
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Continuum node API",
        version = "1",
        description = "Commands, plugins, events and the grid of one Continuum node."
    ),
    paths(
        node_info,
        openapi,
        list_commands,
        command_schema,
        call_command,
        list_plugins,
        plugin_alloy,
        list_events,
        stream_events,
        list_peers,
        add_peer,
        remove_peer,
        list_offers,
        search_offers,
        grid_call,
        grid_install,
        grid_pull,
        shutdown,
        reload
    ),
    components(schemas(
        NodeInfo,
        CallResponse,
        ErrorBody,
        ErrorDetail,
        CommandSchema,
        PluginOffer,
        Peer,
        AddPeer,
        KnownOffer,
        GridCall,
        GridResult,
        InstallFrom,
        Fetched,
        Pull,
        Pulled,
        OfferSearch,
        crate::grid::search::GridMatch,
        continuum_core::discovery::Method,
        continuum_core::eventlog::chain::Entry
    )),
    modifiers(&CommonErrors)
)]
pub struct ApiDoc;

/// Adds the answers every endpoint can give (authentication, body size, load) to each operation.
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.delete].into_iter().flatten() {
                for (status, description) in [
                    ("401", "Not authenticated: no or a wrong owner token, API key or request signature"),
                    ("408", "The request body did not arrive within 10 s of its headers"),
                    ("413", "The request body is over the node's limit"),
                    ("421", "The Host header does not name this node (localhost or an IP literal, with its port)"),
                    ("503", "The node is at its concurrent request limit, or too many unauthenticated bodies are being read"),
                ] {
                    op.responses.responses.entry(status.to_string()).or_insert_with(|| error(description).into());
                }
            }
        }
    }
}

/// The router, with authentication, body and concurrency limits.
pub fn router(app: App) -> Router<()> {
    Router::new()
        .route("/v1/node", get(node_info))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/commands", get(list_commands))
        .route("/v1/commands/{*name}", get(command_schema).post(call_command))
        .route("/v1/plugins", get(list_plugins))
        .route("/v1/plugins/{digest}/alloy", get(plugin_alloy))
        .route("/v1/events", get(list_events))
        .route("/v1/events/stream", get(stream_events))
        .route("/v1/peers", get(list_peers).post(add_peer))
        .route("/v1/peers/{key}", axum::routing::delete(remove_peer))
        .route("/v1/offers", get(list_offers))
        .route("/v1/offers/search", get(search_offers))
        .route("/v1/grid/call", post(grid_call))
        .route("/v1/grid/install", post(grid_install))
        .route("/v1/grid/events/pull", post(grid_pull))
        .route("/v1/shutdown", post(shutdown))
        .route("/v1/reload", post(reload))
        .layer(middleware::from_fn_with_state(app.clone(), limit_concurrency))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(middleware::from_fn_with_state(app.clone(), check_host))
        .layer(middleware::from_fn_with_state(app.clone(), refuse_oversized))
        .layer(DefaultBodyLimit::max(app.max_body))
        .with_state(app)
}

/// Refuses a request whose declared body is over the limit before reading any of it (a client
/// that sent `Expect: 100-continue` then never sends the body).
async fn refuse_oversized(State(app): State<App>, request: Request, next: Next) -> Result<Response, ApiError> {
    let declared = header_text(request.headers(), "content-length").and_then(|n| n.parse::<u64>().ok());
    match declared {
        Some(bytes) if bytes > app.max_body as u64 => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the body is {bytes} bytes, over the node's limit of {} (`serve --max-body`)", app.max_body),
        )),
        _ => Ok(next.run(request).await),
    }
}

/// A 503 with `Retry-After: 1`.
fn busy(message: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message.into())
}

/// Runs the request in its principal's budget: the owner's slots, or the other callers'.
async fn limit_concurrency(State(app): State<App>, request: Request, next: Next) -> Response {
    let slots = match request.extensions().get::<Principal>() {
        Some(Principal::Owner) => &app.owner_slots,
        _ => &app.client_slots,
    };
    match tokio::time::timeout(Duration::from_secs(10), slots.clone().acquire_owned()).await {
        Ok(Ok(_permit)) => next.run(request).await,
        _ => busy("the node is at its concurrent request limit; retry shortly").into_response(),
    }
}

/// Refuses a TCP request whose `Host` is not this node's: only `localhost` or an IP literal,
/// with the served port. A page that rebinds its own DNS name to loopback cannot reach the API
/// from a browser, since its requests carry that name.
async fn check_host(State(app): State<App>, request: Request, next: Next) -> Result<Response, ApiError> {
    if request.extensions().get::<Transport>() == Some(&Transport::Socket) {
        return Ok(next.run(request).await);
    }
    let host = header_text(request.headers(), "host").unwrap_or("");
    if !host_is_ours(host, app.http_port) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "wrong-host",
            format!(
                "this node answers only to Host `127.0.0.1:{0}`, `localhost:{0}` or another IP literal with port {0}, not `{1}`",
                app.http_port,
                continuum_core::terminal::strip_control(host)
            ),
        ));
    }
    Ok(next.run(request).await)
}

/// Whether a `Host` header names this node: `localhost` or an IP literal, at `port`.
fn host_is_ours(host: &str, port: u16) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else { return false };
    if authority.port_u16() != Some(port) {
        return false;
    }
    let name = authority.host().trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// One unauthenticated body read: holds a slot of the global budget and of its address's.
struct UnauthenticatedRead {
    app: App,
    address: std::net::IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl UnauthenticatedRead {
    /// Takes a slot for `address`, or says why not (never waits: a flood is refused at once).
    fn start(app: &App, address: std::net::IpAddr) -> Result<UnauthenticatedRead, ApiError> {
        let permit = app
            .unauthenticated
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy("too many unauthenticated requests are being read; retry shortly"))?;
        let mut reading = continuum_core::sync::lock(&app.reading);
        let count = reading.entry(address).or_default();
        if *count >= MAX_UNAUTHENTICATED_PER_ADDRESS {
            return Err(busy("too many unauthenticated requests from this address are being read; retry shortly"));
        }
        *count += 1;
        Ok(UnauthenticatedRead { app: app.clone(), address, _permit: permit })
    }
}

impl Drop for UnauthenticatedRead {
    fn drop(&mut self) {
        let mut reading = continuum_core::sync::lock(&self.app.reading);
        if let Some(count) = reading.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                reading.remove(&self.address);
            }
        }
    }
}

/// Reads a whole body of at most `limit` bytes within [`BODY_TIMEOUT`].
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the body is over {limit} bytes (or was cut off)"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the body did not arrive within {} s of the headers", BODY_TIMEOUT.as_secs()),
        )),
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Resolves the principal: socket → owner; bearer owner token → owner; bearer API key →
/// its grantee; signed request → the signing peer (with its grant, if it presents one).
async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Result<Response, ApiError> {
    let transport = request.extensions().get::<Transport>().copied().unwrap_or(Transport::Tcp);
    let credential = if transport == Transport::Socket {
        Credential::Owner
    } else {
        Credential::of(request.headers(), &app.owner_token)
    };
    let (principal, mut request) = match credential {
        Credential::Owner => (Principal::Owner, request),
        Credential::ApiKey(token) => {
            let host = app.host.clone();
            let caller = blocking(&app.host, move || auth::caller_for_api_key(&host, &token))
                .await?
                .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", format!("{e:#}")))?;
            // A client's body is read (within the body timeout) before it takes a call slot,
            // so a stalled upload holds nothing that other callers need.
            let (parts, body) = request.into_parts();
            let bytes = read_body(body, app.max_body).await?;
            (Principal::Caller(caller), Request::from_parts(parts, Body::from(bytes)))
        }
        Credential::UnknownBearer => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the bearer token is neither the owner token nor an API key".into(),
            ))
        }
        Credential::Signed => {
            let address = request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
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
                .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", format!("{e:#}")))?;
            let host = app.host.clone();
            let signer = verified.signer;
            let caller = blocking(&app.host, move || match grant {
                Some(token) => host.caller_presenting(&token, &signer).map_err(anyhow::Error::from),
                None => host.caller_for(&signer),
            })
            .await?
            .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, "denied", format!("grant refused: {e:#}")))?;
            (Principal::Caller(caller), Request::from_parts(parts, Body::from(bytes)))
        }
        Credential::Missing => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send `Authorization: Bearer <owner token or API key>`, or sign the request with your node key (x-continuum-key, x-continuum-date, x-continuum-signature)".into(),
            ))
        }
    };
    // The owner may act as another caller (`continuum run --as`), as on the CLI.
    let acting_as = header_text(request.headers(), "x-continuum-as").map(String::from);
    let principal = match (&principal, acting_as) {
        (Principal::Owner, Some(spec)) => {
            let host = app.host.clone();
            let caller = blocking(&app.host, move || host.caller_for(&spec))
                .await?
                .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, "denied", format!("{e:#}")))?;
            Principal::Caller(caller)
        }
        _ => principal,
    };
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
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
    /// Nothing.
    Missing,
}

impl Credential {
    fn of(headers: &HeaderMap, owner_token: &str) -> Credential {
        let bearer = header_text(headers, "authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
        match bearer {
            Some(token) if constant_time_eq(token.as_bytes(), owner_token.as_bytes()) => Credential::Owner,
            Some(token) if token.starts_with(auth::API_KEY_PREFIX) => Credential::ApiKey(token.to_string()),
            Some(_) => Credential::UnknownBearer,
            None if headers.contains_key(auth::KEY_HEADER) => Credential::Signed,
            None => Credential::Missing,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs blocking host work on the host's call pool.
async fn blocking<T: Send + 'static>(host: &Host, f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    host.offload(f).await.map_err(ApiError::internal)
}

/// The node's id, addresses and counts.
#[utoipa::path(get, path = "/v1/node", responses((status = 200, body = NodeInfo), (status = 401, body = ErrorBody)))]
async fn node_info(State(app): State<App>) -> Result<Json<NodeInfo>, ApiError> {
    let host = app.host.clone();
    let (plugins, peers) = blocking(&app.host, move || -> anyhow::Result<(usize, usize)> {
        Ok((host.plugins()?.len(), crate::grid::peers::list(&host.core().db())?.len()))
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(Json(NodeInfo {
        id: app.grid.id(),
        version: env!("CARGO_PKG_VERSION").into(),
        http: app.http_addr.clone(),
        grid: app.grid.addrs().iter().map(|a| a.to_string()).collect(),
        plugins,
        peers,
        uptime_s: app.started.elapsed().as_secs(),
    }))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The commands the caller may call, with their schemas.
#[utoipa::path(get, path = "/v1/commands", responses((status = 200, body = [CommandSchema]), (status = 401, body = ErrorBody)))]
async fn list_commands(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<CommandSchema>>, ApiError> {
    let host = app.host.clone();
    let commands = blocking(&app.host, move || host.commands_for(&p.caller())).await?.map_err(ApiError::internal)?;
    Ok(Json(commands))
}

/// One command's schema.
#[utoipa::path(get, path = "/v1/commands/{name}", params(("name" = String, Path, description = "plugin/function")),
    responses((status = 200, body = CommandSchema), (status = 404, body = ErrorBody)))]
async fn command_schema(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<CommandSchema>, ApiError> {
    let caller = p.caller();
    // The owner sees every schema, read from the loaded plugins without a trip to the pool;
    // another caller's view is filtered through the registry.
    if caller == Caller::Owner {
        return Ok(Json(app.host.command(&name)?));
    }
    let host = app.host.clone();
    Ok(Json(blocking(&app.host, move || host.command_for(&caller, &name)).await??))
}

/// Calls a command with its JSON parameters as the authenticated caller.
#[utoipa::path(post, path = "/v1/commands/{name}", params(("name" = String, Path, description = "plugin/function")),
    request_body(content = Object, description = "The command's parameters"),
    responses((status = 200, body = CallResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn call_command(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<CallResponse>, ApiError> {
    let params: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid-params", format!("the body is not JSON: {e}"))
        })?
    };
    let report = app.host.call_async(p.caller(), name, params).await;
    let mut output = String::new();
    for bytes in [&report.stdout, &report.stderr] {
        output.push_str(&continuum_core::terminal::strip_control(&String::from_utf8_lossy(bytes)));
    }
    Ok(Json(CallResponse {
        result: report.result?,
        elapsed_us: report.elapsed.as_micros() as u64,
        output: (!output.is_empty()).then_some(output),
    }))
}

/// The plugins this node ships (signed alloys), as in its offer.
#[utoipa::path(get, path = "/v1/plugins", responses((status = 200, body = [PluginOffer])))]
async fn list_plugins(State(app): State<App>) -> Json<Vec<PluginOffer>> {
    let own = app.grid.offers().into_iter().find(|k| k.via == "self");
    Json(own.map(|k| k.offer.plugins).unwrap_or_default())
}

/// A shipped plugin's alloy, by component digest (or a prefix of at least 8 digits).
#[utoipa::path(get, path = "/v1/plugins/{digest}/alloy", params(("digest" = String, Path, description = "component sha256")),
    responses((status = 200, description = "The alloy archive", content_type = "application/x-continuum-alloy"), (status = 404, body = ErrorBody)))]
async fn plugin_alloy(State(app): State<App>, Path(digest): Path<String>) -> Result<Response, ApiError> {
    let host = app.host.clone();
    let digest = digest.trim_start_matches("sha256:").to_string();
    let bytes = blocking(&app.host, move || -> anyhow::Result<Option<Vec<u8>>> {
        let record = host.plugins()?.into_iter().find(|p| digest.len() >= 8 && p.digest.starts_with(&digest));
        match record {
            Some(r) => Ok(host.shipped_alloy(&r)?.map(|a| a.to_bytes()).transpose()?),
            None => Ok(None),
        }
    })
    .await?
    .map_err(ApiError::internal)?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no shipped plugin has that digest; GET /v1/plugins lists them".into(),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/x-continuum-alloy")], bytes).into_response())
}

fn kind_matches(filter: &Option<String>, kind: &str) -> bool {
    match filter {
        None => true,
        Some(f) if f.ends_with('.') => kind.starts_with(f.as_str()),
        Some(f) => kind == f,
    }
}

/// This node's log entries (owner only).
#[utoipa::path(get, path = "/v1/events", params(EventQuery), responses((status = 200, body = [continuum_core::eventlog::chain::Entry]), (status = 403, body = ErrorBody)))]
async fn list_events(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<continuum_core::eventlog::chain::Entry>>, ApiError> {
    p.require_owner()?;
    let host = app.host.clone();
    let limit = q.limit.unwrap_or(100).min(1000);
    let entries = blocking(&app.host, move || {
        continuum_core::eventlog::entries(&host.core().db(), q.after.unwrap_or(0), q.kind.as_deref(), limit)
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(Json(entries))
}

/// New log entries as server-sent events, one `entry` event per entry (owner only).
#[utoipa::path(get, path = "/v1/events/stream", params(EventQuery), responses((status = 200, description = "text/event-stream of entries", content_type = "text/event-stream")))]
async fn stream_events(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EventQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    p.require_owner()?;
    let host = app.host.clone();
    let start = match q.after {
        Some(a) => a,
        None => continuum_core::eventlog::head(&host.core().db()).map_err(ApiError::internal)?.0,
    };
    let stream = futures_util::stream::unfold(
        (host, start, q.kind, std::collections::VecDeque::new()),
        |(host, mut after, kind, mut queue)| async move {
            loop {
                if let Some(entry) = queue.pop_front() {
                    let event = SseEvent::default().event("entry").json_data(&entry).unwrap_or_default();
                    return Some((Ok(event), (host, after, kind, queue)));
                }
                let h = host.clone();
                let k = kind.clone();
                let pool = h.clone();
                match pool
                    .offload(move || {
                        let all = continuum_core::eventlog::entries(&h.core().db(), after, None, 500)?;
                        let last = all.last().map(|e| e.seq);
                        anyhow::Ok((all.into_iter().filter(|e| kind_matches(&k, &e.kind)).collect::<Vec<_>>(), last))
                    })
                    .await
                {
                    Ok(Ok((batch, last))) => {
                        if let Some(l) = last {
                            after = l;
                        }
                        queue.extend(batch);
                        if queue.is_empty() {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    _ => return None,
                }
            }
        },
    );
    // The stream ends when the node shuts down, so graceful shutdown does not wait on it.
    let mut stopping = app.shutdown.subscribe();
    let stream = futures_util::StreamExt::take_until(stream, async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Known peers (owner only).
#[utoipa::path(get, path = "/v1/peers", responses((status = 200, body = [Peer]), (status = 403, body = ErrorBody)))]
async fn list_peers(State(app): State<App>, Extension(p): Extension<Principal>) -> Result<Json<Vec<Peer>>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.peers().map_err(ApiError::internal)?))
}

/// Adds a peer (owner only).
#[utoipa::path(post, path = "/v1/peers", request_body = AddPeer, responses((status = 200, body = Peer), (status = 400, body = ErrorBody)))]
async fn add_peer(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(add): Json<AddPeer>,
) -> Result<Json<Peer>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.add_peer(&add.address, add.name, add.grant).await.map_err(ApiError::bad)?))
}

/// Forgets a peer (owner only).
#[utoipa::path(delete, path = "/v1/peers/{key}", params(("key" = String, Path, description = "id, id prefix or name")),
    responses((status = 200, body = Peer), (status = 400, body = ErrorBody)))]
async fn remove_peer(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(key): Path<String>,
) -> Result<Json<Peer>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.remove_peer(&key).map_err(ApiError::bad)?))
}

/// The offers this node holds (its own and its peers').
#[utoipa::path(get, path = "/v1/offers", responses((status = 200, body = [KnownOffer])))]
async fn list_offers(State(app): State<App>) -> Json<Vec<KnownOffer>> {
    Json(app.grid.offers())
}

/// Commands on offer across the grid, ranked by meaning (or shared words without a model).
#[utoipa::path(get, path = "/v1/offers/search", params(OfferQuery), responses((status = 200, body = OfferSearch)))]
async fn search_offers(State(app): State<App>, Query(q): Query<OfferQuery>) -> Result<Json<OfferSearch>, ApiError> {
    let offers = app.grid.offers();
    let host = app.host.clone();
    let top = q.top.unwrap_or(10);
    let (ranking, matches) =
        blocking(&app.host, move || crate::grid::search::search_offers(&host, &offers, &q.query, top))
            .await?
            .map_err(ApiError::internal)?;
    Ok(Json(OfferSearch { ranking, matches }))
}

/// Runs a command on peers with a quorum (owner only).
#[utoipa::path(post, path = "/v1/grid/call", request_body = GridCall,
    responses((status = 200, body = GridResult), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn grid_call(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(call): Json<GridCall>,
) -> Result<Json<GridResult>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.call(&call).await?))
}

/// Installs a plugin from a peer, verified like a local alloy (owner only).
#[utoipa::path(post, path = "/v1/grid/install", request_body = InstallFrom, responses((status = 200, body = Fetched), (status = 400, body = ErrorBody)))]
async fn grid_install(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(req): Json<InstallFrom>,
) -> Result<Json<Fetched>, ApiError> {
    p.require_owner()?;
    let options = continuum_core::install::AlloyOptions {
        allow: req.allow,
        allow_untrusted: req.allow_untrusted,
        ..Default::default()
    };
    let (_, fetched) = app.grid.install_from(&req.plugin, &req.from, options).await.map_err(ApiError::bad)?;
    Ok(Json(fetched))
}

/// Pulls a peer's new log entries (owner only).
#[utoipa::path(post, path = "/v1/grid/events/pull", request_body = Pull, responses((status = 200, body = Pulled), (status = 400, body = ErrorBody)))]
async fn grid_pull(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(req): Json<Pull>,
) -> Result<Json<Pulled>, ApiError> {
    p.require_owner()?;
    let peer = app.grid.peer(&req.peer).map_err(ApiError::bad)?;
    let imported = app.grid.pull_events(&peer.id).await.map_err(ApiError::bad)?;
    let lamport = continuum_core::eventlog::head(&app.host.core().db()).map_err(ApiError::internal)?.1;
    Ok(Json(match imported {
        Some(i) => Pulled { node: i.node, entries: i.entries, lamport: i.lamport },
        None => Pulled { node: peer.id, entries: 0, lamport },
    }))
}

/// Re-reads the registry and grant state that the CLI changed beside the running node (owner only).
#[utoipa::path(post, path = "/v1/reload", responses((status = 204, description = "Reloaded"), (status = 403, body = ErrorBody)))]
async fn reload(State(app): State<App>, Extension(p): Extension<Principal>) -> Result<StatusCode, ApiError> {
    p.require_owner()?;
    let host = app.host.clone();
    blocking(&app.host, move || host.core().reload().and_then(|()| host.warm())).await?.map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops the node gracefully: in-flight requests finish, then it exits (owner only).
#[utoipa::path(post, path = "/v1/shutdown", responses((status = 202, description = "Shutting down"), (status = 403, body = ErrorBody)))]
async fn shutdown(State(app): State<App>, Extension(p): Extension<Principal>) -> Result<StatusCode, ApiError> {
    p.require_owner()?;
    let _ = app.shutdown.send(true);
    Ok(StatusCode::ACCEPTED)
}
