//! Routes over jobs: submit one (here or on a peer), list them, read one, cancel it, follow
//! its events (server-sent events). A caller sees only the jobs it submitted (the owner sees
//! all); another's job id answers 404, as an unknown one does.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;

use super::error::{ApiError, ErrorBody};
use super::principal::Principal;
use super::stream;
use super::types::SubmitJob;
use super::App;
use crate::grid::{MAX_LEASE, MIN_LEASE};
use crate::jobs::JobView;
use continuum_core::Outcome;

/// Submits a command as a job: here, or with `on` on a peer (owner only). Answers 202 with the
/// job and its `Location`; 503 `busy` when `[jobs] max-queued` jobs already wait.
#[utoipa::path(post, path = "/v1/jobs", request_body = SubmitJob,
    responses((status = 202, body = JobView, headers(("Location" = String, description = "/v1/jobs/{id}"))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(super) async fn submit_job(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Json(submit): Json<SubmitJob>,
) -> Result<Response, ApiError> {
    let jobs = app.grid.jobs();
    let params = submit.params.unwrap_or_else(|| Value::Object(Default::default()));
    let job = match &submit.on {
        None if submit.lease_ms.is_some() || submit.grant.is_some() => {
            return Err(ApiError::new(Outcome::BadRequest, "lease_ms and grant apply to jobs on peers (`on`)"));
        }
        None => jobs.submit(p.caller(), submit.command, params, None).await?,
        Some(on) => {
            p.require_owner()?;
            let peer = app.grid.job_peer(&submit.command, on, submit.strangers).await?;
            let lease = submit.lease_ms.map_or(jobs.default_lease(), Duration::from_millis).clamp(MIN_LEASE, MAX_LEASE);
            jobs.submit_remote(&app.grid, peer, submit.command, params, submit.grant, lease).await?
        }
    };
    let location = format!("/v1/jobs/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job)).into_response())
}

/// The caller's jobs, newest first (every job for the owner).
#[utoipa::path(get, path = "/v1/jobs", responses((status = 200, body = [JobView])))]
pub(super) async fn list_jobs(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    Ok(Json(app.grid.jobs().list(&p.caller()).await?))
}

/// One job: its state, progress, and once ended its result or error and output.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub(super) async fn get_job(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(app.grid.jobs().get(&id, &p.caller()).await?))
}

/// Cancels a job: a queued one never runs, a running one stops within a second (its slot
/// freed); 409 for a job that has already ended.
#[utoipa::path(delete, path = "/v1/jobs/{id}", params(("id" = String, Path, description = "job id")),
    responses((status = 202, body = JobView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn cancel_job(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = app.grid.jobs().cancel(&id, &p.caller()).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A job's events as server-sent events: `state`, `token`, `progress`, `output`, `lagged`
/// (events a slow reader missed), and last `end` with the whole job. A client that goes away
/// leaves the job running.
#[utoipa::path(get, path = "/v1/jobs/{id}/stream", params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "text/event-stream of the job's events", content_type = "text/event-stream"),
        (status = 404, body = ErrorBody)))]
pub(super) async fn stream_job(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let events = app.grid.jobs().follow(&id, &p.caller()).await?;
    Ok(stream::job_events(&app, events).into_response())
}
