//! Routes over the node itself: what it is (id, addresses, counts), its OpenAPI document, and
//! the owner's controls — reload what the CLI changed, shut down.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;
use utoipa::OpenApi;

use super::error::{ApiError, ErrorBody};
use super::principal::Principal;
use super::types::NodeInfo;
use super::{ApiDoc, App};

/// The node's id, addresses and counts.
#[utoipa::path(get, path = "/v1/node", responses((status = 200, body = NodeInfo), (status = 401, body = ErrorBody)))]
pub(super) async fn node_info(State(app): State<App>) -> Result<Json<NodeInfo>, ApiError> {
    let (plugins, peers) = app
        .host
        .run(|host| -> anyhow::Result<(usize, usize)> {
            Ok((host.plugins()?.len(), crate::grid::peers::list(&host.core().db())?.len()))
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(NodeInfo {
        id: app.grid.id(),
        version: env!("CARGO_PKG_VERSION").into(),
        http: app.http_addr.clone(),
        grid: app.grid.reachable_at(),
        relays: crate::grid::relay::status(&app.grid),
        plugins,
        peers,
        uptime_s: app.started.elapsed().as_secs(),
    }))
}

/// This document, with one typed operation per command the caller may call
/// (`POST /v1/commands/<plugin>/<command>`).
#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(super) async fn openapi(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let commands = super::commands::callable(&app, &p).await?;
    let mut doc = serde_json::to_value(ApiDoc::openapi()).map_err(ApiError::internal)?;
    super::typed_api::add_operations(&mut doc, &commands);
    Ok(Json(doc))
}

/// Re-reads the registry and grant state that the CLI changed beside the running node (owner only).
#[utoipa::path(post, path = "/v1/reload", responses((status = 204, description = "Reloaded"), (status = 403, body = ErrorBody)))]
pub(super) async fn reload(State(app): State<App>, Extension(p): Extension<Principal>) -> Result<StatusCode, ApiError> {
    p.require_owner()?;
    app.host
        .run(|host| host.core().reload().and_then(|()| host.warm()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops the node gracefully: in-flight requests finish, then it exits (owner only).
#[utoipa::path(post, path = "/v1/shutdown", responses((status = 202, description = "Shutting down"), (status = 403, body = ErrorBody)))]
pub(super) async fn shutdown(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<StatusCode, ApiError> {
    p.require_owner()?;
    let _ = app.shutdown.send(true);
    Ok(StatusCode::ACCEPTED)
}

/// Liveness for a supervisor: `ok` whenever the node answers; no authentication, no details.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// The node's counters in Prometheus' text format (owner only): calls by command and outcome,
/// call latency histograms, jobs waiting and running, the event log's uncommitted entries.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text", content_type = "text/plain"), (status = 403, body = ErrorBody)))]
pub(super) async fn metrics(State(app): State<App>, Extension(p): Extension<Principal>) -> Result<Response, ApiError> {
    p.require_owner()?;
    let mut out = app
        .host
        .run(|host| {
            let mut out = String::new();
            host.core().metrics().render(&mut out);
            let lag = host.core().log_lag();
            out.push_str("# HELP continuum_log_pending_entries Event log entries queued and not yet committed.\n");
            out.push_str("# TYPE continuum_log_pending_entries gauge\n");
            out.push_str(&format!("continuum_log_pending_entries {lag}\n"));
            out
        })
        .await
        .map_err(ApiError::internal)?;
    let (queued, running) = app.grid.jobs().depth();
    out.push_str("# HELP continuum_jobs Jobs by state: waiting for a compute slot, or holding one.\n");
    out.push_str("# TYPE continuum_jobs gauge\n");
    out.push_str(&format!(
        "continuum_jobs{{state=\"queued\"}} {queued}\ncontinuum_jobs{{state=\"running\"}} {running}\n"
    ));
    out.push_str(
        "# HELP continuum_uptime_seconds Seconds since the node started.\n# TYPE continuum_uptime_seconds gauge\n",
    );
    out.push_str(&format!("continuum_uptime_seconds {}\n", app.started.elapsed().as_secs()));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
