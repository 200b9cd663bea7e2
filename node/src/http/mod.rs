//! The node's HTTP API (SPEC §8), versioned under `/v1`, with its OpenAPI document generated
//! from these handlers (`/v1/openapi.json`). This module assembles the router and its shared
//! state; each concern lives in its own file:
//! - `error`: the error body and the one mapping from an [`Outcome`] to an HTTP status;
//! - `limits`: body size and arrival time, request slots, per-address budgets, `Host` check;
//! - `principal`: who a request comes from (authentication);
//! - `types`: the API's own request and response bodies;
//! - `stream`: server-sent event streams (a job's events, a call's live events);
//! - `commands`, `events`, `grants`, `grid`, `jobs`, `node_info`: the handlers, by resource;
//! - `console`: the web console's page, files and sessions (see [`crate::console`]).
//!
//! Handlers reach the host only through [`AsyncHost`] (see [`crate::async_host`]).

mod commands;
mod console;
mod error;
mod events;
mod grants;
mod grid;
mod jobs;
pub(crate) mod limits;
mod node_info;
mod principal;
mod stream;
mod typed_api;
mod types;
mod wasi_http;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{any, delete, get, post};
use axum::Router;
use tokio::sync::{watch, Semaphore};
use utoipa::OpenApi;

use crate::async_host::AsyncHost;
use crate::auth::ReplayGuard;
use crate::console::session::Sessions;
use crate::grid::discovered::DiscoveredNode;
use crate::grid::dispatch::{GridCall, GridResult};
use crate::grid::fetch::Fetched;
use crate::grid::offers::PluginOffer;
use crate::grid::peers::{Peer, PeerView};
use crate::grid::search::GridMatch;
use crate::grid::{Grid, KnownOffer};
use crate::jobs::{JobError, JobEvent, JobState, JobView, Progress};
use continuum_core::discovery::Method;
use continuum_core::eventlog::chain::Entry;
use continuum_core::reflect::CommandSchema;
use continuum_core::runtime::watch::CallEvent;
use continuum_core::Outcome;

pub use console::LoginLink;
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use limits::{BODY_TIMEOUT, MAX_REMEMBERED_NONCES, MAX_UNAUTHENTICATED, MAX_UNAUTHENTICATED_PER_ADDRESS};
pub use principal::{Principal, Transport};
pub use types::{
    AcceptPeer, AddPeer, CallResponse, EventQuery, InstallFrom, NodeInfo, OfferQuery, OfferSearch, Pull, Pulled,
    SubmitJob,
};

/// Shared state of the HTTP API, behind one `Arc`: axum clones it for every middleware and
/// handler of every request.
pub type App = Arc<AppState>;

/// What the HTTP API's handlers share.
pub struct AppState {
    /// The host, reached from handlers only on its call pool.
    pub host: AsyncHost,
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
    pub reading: Mutex<HashMap<IpAddr, usize>>,
    /// Nonces of accepted signed requests (each is accepted once).
    pub replays: ReplayGuard,
    /// Largest request body.
    pub max_body: usize,
    /// Ends the node gracefully.
    pub shutdown: watch::Sender<bool>,
    /// The HTTP address, as served.
    pub http_addr: String,
    /// The TCP port served, the only one a `Host` header may name.
    pub http_port: u16,
    /// The web console's login links and sessions.
    pub sessions: Sessions,
}

impl AppState {
    /// The state of a node serving `http_addr` (port `http_port`): `max_concurrent` requests at
    /// once for the owner and as many for everyone else, bodies up to `max_body` bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: AsyncHost,
        grid: Grid,
        owner_token: String,
        max_concurrent: usize,
        max_body: usize,
        shutdown: watch::Sender<bool>,
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
            replays: ReplayGuard::new(MAX_REMEMBERED_NONCES),
            max_body,
            shutdown,
            http_addr,
            http_port,
            sessions: Sessions::default(),
        }
    }
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
        node_info::node_info,
        node_info::openapi,
        commands::list_commands,
        commands::command_schema,
        commands::call_command,
        commands::list_plugins,
        commands::plugin_alloy,
        events::list_events,
        events::stream_events,
        grid::list_peers,
        grid::add_peer,
        grid::list_discovered,
        grid::accept_peer,
        grid::remove_peer,
        grid::list_offers,
        grid::search_offers,
        grid::grid_call,
        grid::grid_install,
        grid::grid_pull,
        jobs::submit_job,
        jobs::list_jobs,
        jobs::get_job,
        jobs::cancel_job,
        jobs::stream_job,
        node_info::shutdown,
        node_info::reload,
        node_info::metrics,
        console::session_info,
        console::logout,
        console::login_link_new,
        commands::search_commands,
        commands::installed_plugins,
        commands::install_upload,
        commands::set_approvals,
        events::verify_events,
        events::usage_series,
        grants::list_grants,
        grants::issue_grant,
        grants::attenuate_grant,
        grants::revoke_grants,
        grants::list_api_keys,
        grants::create_api_key,
        grants::revoke_api_key
    ),
    components(schemas(
        NodeInfo,
        CallResponse,
        ErrorBody,
        ErrorDetail,
        Outcome,
        CommandSchema,
        PluginOffer,
        Peer,
        PeerView,
        crate::grid::relay::RelayState,
        AddPeer,
        AcceptPeer,
        DiscoveredNode,
        KnownOffer,
        GridCall,
        GridResult,
        InstallFrom,
        Fetched,
        Pull,
        Pulled,
        OfferSearch,
        GridMatch,
        Method,
        Entry,
        SubmitJob,
        JobView,
        JobState,
        JobError,
        Progress,
        JobEvent,
        CallEvent,
        console::SessionInfo,
        console::LoginLink,
        console::KeyLoggedIn,
        continuum_core::discovery::Match,
        commands::CommandSearch,
        commands::InstalledPlugin,
        commands::Capability,
        commands::Approvals,
        events::Verification,
        continuum_core::eventlog::transfer::UsageBucket,
        continuum_core::grants::IssuedGrant,
        grants::IssueGrant,
        grants::AttenuateGrant,
        grants::GrantToken,
        grants::RevokeGrants,
        grants::Revoked,
        grants::CreateApiKey,
        grants::NewApiKey,
        crate::auth::ApiKey
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

/// The router, with authentication, body and concurrency limits. The console's page, files
/// and login routes hold no data and are served without a credential (the `Host` check and
/// body limits still apply); every API route authenticates.
pub fn router(app: App) -> Router<()> {
    Router::new()
        .route("/v1/node", get(node_info::node_info))
        .route("/v1/openapi.json", get(node_info::openapi))
        .route("/v1/commands", get(commands::list_commands))
        .route("/v1/commands/{*name}", get(commands::command_schema).post(commands::call_command))
        .route("/v1/plugins", get(commands::list_plugins))
        .route("/v1/plugins/installed", get(commands::installed_plugins).post(commands::install_upload))
        .route("/v1/plugins/{digest}/alloy", get(commands::plugin_alloy))
        .route("/v1/plugins/installed/{name}/approvals", post(commands::set_approvals))
        .route("/v1/events", get(events::list_events))
        .route("/v1/events/stream", get(events::stream_events))
        .route("/v1/peers", get(grid::list_peers).post(grid::add_peer))
        .route("/v1/peers/discovered", get(grid::list_discovered))
        .route("/v1/peers/accept", post(grid::accept_peer))
        .route("/v1/peers/{key}", delete(grid::remove_peer))
        .route("/v1/offers", get(grid::list_offers))
        .route("/v1/offers/search", get(grid::search_offers))
        .route("/v1/grid/call", post(grid::grid_call))
        .route("/v1/grid/install", post(grid::grid_install))
        .route("/v1/grid/events/pull", post(grid::grid_pull))
        .route("/v1/jobs", get(jobs::list_jobs).post(jobs::submit_job))
        .route("/v1/jobs/{id}", get(jobs::get_job).delete(jobs::cancel_job))
        .route("/v1/jobs/{id}/stream", get(jobs::stream_job))
        .route("/v1/http/{plugin}", any(wasi_http::serve))
        .route("/v1/http/{plugin}/{*rest}", any(wasi_http::serve))
        .nest_service("/mcp", crate::mcp::http_service(app.clone()))
        .route("/metrics", get(node_info::metrics))
        .route("/v1/shutdown", post(node_info::shutdown))
        .route("/v1/reload", post(node_info::reload))
        .route("/v1/console/session", get(console::session_info))
        .route("/v1/console/logout", post(console::logout))
        .route("/v1/console/login-links", post(console::login_link_new))
        .route("/v1/search/commands", get(commands::search_commands))
        .route("/v1/events/verify", get(events::verify_events))
        .route("/v1/usage/series", get(events::usage_series))
        .route("/v1/grants", get(grants::list_grants).post(grants::issue_grant))
        .route("/v1/grants/attenuate", post(grants::attenuate_grant))
        .route("/v1/grants/revoke", post(grants::revoke_grants))
        .route("/v1/apikeys", get(grants::list_api_keys).post(grants::create_api_key))
        .route("/v1/apikeys/{id}", delete(grants::revoke_api_key))
        .layer(middleware::from_fn_with_state(app.clone(), limits::limit_concurrency))
        .layer(middleware::from_fn_with_state(app.clone(), principal::authenticate))
        // Added after authentication, so outside it (an unknown path still answers 401).
        .route("/", get(console::page))
        .route("/console/{name}", get(console::file))
        .route("/login", get(console::login_link))
        .route("/console/login", post(console::login_key))
        .layer(middleware::from_fn_with_state(app.clone(), limits::check_host))
        .layer(middleware::from_fn_with_state(app.clone(), limits::refuse_oversized))
        .layer(DefaultBodyLimit::max(app.max_body))
        .with_state(app)
        // Added after the layers, so outside authentication: liveness says nothing else.
        .route("/healthz", get(node_info::healthz))
}
