//! Routes over the grid: this node's peers, the offers it knows (and a search through them),
//! and what it asks of peers — a quorum call, a plugin install, a log pull.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::error::{ApiError, ErrorBody};
use super::principal::Principal;
use super::stream;
use super::types::{AcceptPeer, AddPeer, InstallFrom, OfferQuery, OfferSearch, Pull, Pulled};
use super::App;
use crate::grid::discovered::DiscoveredNode;
use crate::grid::dispatch::{GridCall, GridResult};
use crate::grid::fetch::Fetched;
use crate::grid::peers::{Peer, PeerView};
use crate::grid::KnownOffer;
use continuum_core::eventlog;
use continuum_core::install::AlloyOptions;

/// Known peers (owner only).
#[utoipa::path(get, path = "/v1/peers", responses((status = 200, body = [PeerView]), (status = 403, body = ErrorBody)))]
pub(super) async fn list_peers(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<PeerView>>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.peer_views().await.map_err(ApiError::internal)?))
}

/// Adds a peer (owner only).
#[utoipa::path(post, path = "/v1/peers", request_body = AddPeer, responses((status = 200, body = Peer), (status = 400, body = ErrorBody)))]
pub(super) async fn add_peer(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(add): Json<AddPeer>,
) -> Result<Json<Peer>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.add_peer(&add.address, add.name, add.grant).await.map_err(ApiError::bad)?))
}

/// The nodes heard of on the LAN or introduced by peers, not accepted (owner only).
#[utoipa::path(get, path = "/v1/peers/discovered", responses((status = 200, body = [DiscoveredNode]), (status = 403, body = ErrorBody)))]
pub(super) async fn list_discovered(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<DiscoveredNode>>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.discovered().await.map_err(ApiError::internal)?))
}

/// Makes a discovered node a peer (owner only): discovery alone never does.
#[utoipa::path(post, path = "/v1/peers/accept", request_body = AcceptPeer,
    responses((status = 200, body = Peer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn accept_peer(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(accept): Json<AcceptPeer>,
) -> Result<Json<Peer>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.accept_discovered(&accept.key, accept.name).await.map_err(ApiError::bad)?))
}

/// Forgets a peer (owner only).
#[utoipa::path(delete, path = "/v1/peers/{key}", params(("key" = String, Path, description = "id, id prefix or name")),
    responses((status = 200, body = Peer), (status = 400, body = ErrorBody)))]
pub(super) async fn remove_peer(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(key): Path<String>,
) -> Result<Json<Peer>, ApiError> {
    p.require_owner()?;
    Ok(Json(app.grid.remove_peer(&key).await.map_err(ApiError::bad)?))
}

/// The offers this node holds (its own and its peers').
#[utoipa::path(get, path = "/v1/offers", responses((status = 200, body = [KnownOffer])))]
pub(super) async fn list_offers(State(app): State<App>) -> Json<Vec<KnownOffer>> {
    Json(app.grid.offers())
}

/// Commands on offer across the grid, ranked by meaning (or shared words without a model).
#[utoipa::path(get, path = "/v1/offers/search", params(OfferQuery), responses((status = 200, body = OfferSearch)))]
pub(super) async fn search_offers(
    State(app): State<App>,
    Query(q): Query<OfferQuery>,
) -> Result<Json<OfferSearch>, ApiError> {
    let offers = app.grid.offers();
    let top = q.top.unwrap_or(10);
    let (ranking, matches) = app
        .host
        .run(move |host| crate::grid::search::search_offers(host, &offers, &q.query, top))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(OfferSearch { ranking, matches }))
}

/// Runs a command on peers with a quorum (owner only). With `Accept: text/event-stream`, a
/// single-quorum call streams the peer's live events (`token`, `progress`, `output`) as they
/// arrive over the grid, then `end` (the result) or `error`.
#[utoipa::path(post, path = "/v1/grid/call", request_body = GridCall,
    responses((status = 200, body = GridResult), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub(super) async fn grid_call(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Json(call): Json<GridCall>,
) -> Result<Response, ApiError> {
    p.require_owner()?;
    if !stream::wants_events(&headers) {
        return Ok(Json(app.grid.call(&call, None).await?).into_response());
    }
    let live = stream::LiveCall::new();
    let (grid, sink) = (app.grid.clone(), live.sink().clone());
    let work = async move {
        let result = grid.call(&call, Some(&sink)).await.map_err(|e| ApiError::from(e).into_body())?;
        serde_json::to_value(result).map_err(|e| ApiError::internal(e).into_body())
    };
    Ok(live.respond(&app, None, work).into_response())
}

/// Installs a plugin from a peer, verified like a local alloy (owner only).
#[utoipa::path(post, path = "/v1/grid/install", request_body = InstallFrom, responses((status = 200, body = Fetched), (status = 400, body = ErrorBody)))]
pub(super) async fn grid_install(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(req): Json<InstallFrom>,
) -> Result<Json<Fetched>, ApiError> {
    p.require_owner()?;
    let options = AlloyOptions { allow: req.allow, allow_untrusted: req.allow_untrusted, ..Default::default() };
    let (_, fetched) = app.grid.install_from(&req.plugin, &req.from, options).await.map_err(ApiError::bad)?;
    Ok(Json(fetched))
}

/// Pulls a peer's new log entries (owner only).
#[utoipa::path(post, path = "/v1/grid/events/pull", request_body = Pull, responses((status = 200, body = Pulled), (status = 400, body = ErrorBody)))]
pub(super) async fn grid_pull(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(req): Json<Pull>,
) -> Result<Json<Pulled>, ApiError> {
    p.require_owner()?;
    let peer = app.grid.peer(&req.peer).await.map_err(ApiError::bad)?;
    let imported = app.grid.pull_events(&peer.id).await.map_err(ApiError::bad)?;
    Ok(Json(match imported {
        Some(i) => Pulled { node: i.node, entries: i.entries, lamport: i.lamport },
        None => {
            let (_, lamport) = app
                .host
                .run(|host| eventlog::head(&*host.core().log_db()?))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            Pulled { node: peer.id, entries: 0, lamport }
        }
    }))
}
