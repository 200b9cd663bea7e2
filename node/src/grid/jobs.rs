//! Asking a peer about jobs: submitting one under a lease, acting on it (status, renew,
//! cancel) and following its events. The answering side is in `serve.rs`.

use std::time::Duration;

use serde_json::Value;

use super::peers::Peer;
use super::request::unexpected;
use super::wire::{JobAction, Request, Response};
use super::{Grid, PeerError};
use crate::jobs::{JobEvent, JobView};

/// How long a submission or an action on a job may take.
const JOB_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Grid {
    /// Submits `command` with `params` to `peer` as a job under `lease`, presenting `grant`;
    /// the job as the peer holds it.
    pub async fn submit_job(
        &self,
        peer: &Peer,
        command: &str,
        params: Value,
        grant: Option<String>,
        lease: Duration,
    ) -> Result<JobView, PeerError> {
        let request =
            Request::Submit { command: command.to_string(), params, grant, lease_ms: lease.as_millis() as u64 };
        match self.request(peer, &request, JOB_REQUEST_TIMEOUT).await? {
            Response::Job { job } => Ok(*job),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Asks `peer` to `action` its job `id` (not [`JobAction::Follow`]: see
    /// [`Grid::follow_job`]), waiting at most `patience`; the job as it now is.
    pub async fn job_action(
        &self,
        peer: &Peer,
        id: &str,
        action: JobAction,
        patience: Duration,
    ) -> Result<JobView, PeerError> {
        let request = Request::Job { id: id.to_string(), action };
        match self.request(peer, &request, patience.min(JOB_REQUEST_TIMEOUT)).await? {
            Response::Job { job } => Ok(*job),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Follows job `id` on `peer`: its events go to `on_event` as they come; the job once it
    /// has ended.
    pub async fn follow_job(
        &self,
        peer: &Peer,
        id: &str,
        on_event: impl FnMut(JobEvent) + Send,
    ) -> Result<JobView, PeerError> {
        let request = Request::Job { id: id.to_string(), action: JobAction::Follow };
        match self.request_streamed(peer, &request, None, on_event).await? {
            Response::Job { job } => Ok(*job),
            other => Err(unexpected(peer, &other)),
        }
    }
}
