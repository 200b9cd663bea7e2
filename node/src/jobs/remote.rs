//! Jobs held on a peer: submitted over the grid, recorded here under an id of this node's,
//! followed (their events relayed to local followers), their lease renewed by heartbeat, and
//! cancelled there on request. A peer that cannot be reached for longer than the lease has
//! lost the job: it is recorded `lost` here (and the peer, no longer renewed, cancels it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{new_id, Inner, JobError, JobEvent, JobState, JobView, Jobs, LiveJob, Refused};
use crate::grid::peers::Peer;
use crate::grid::wire::JobAction;
use crate::grid::{short, Grid, PeerError};
use crate::market::receipt::{hash_json, Expected, ReceiptKind, SignedReceipt};
use crate::market::terms::Price;
use crate::market::Accepted;
use continuum_core::sync::lock;
use continuum_core::{Caller, Outcome};

/// How long to wait before following a job again after its stream broke.
const REFOLLOW_AFTER: Duration = Duration::from_millis(300);

/// What went to the peer with a job: the hash of its parameters, when, and the terms its
/// offer stated then.
struct Sent {
    input: String,
    at_ms: i64,
    terms: Option<Price>,
}

/// Checks the receipt `peer` issued for a job of `command` that returned `value`, and
/// countersigns it or records the dispute.
async fn settle_job_receipt(
    grid: &Grid,
    peer: &Peer,
    command: &str,
    signed: SignedReceipt,
    sent: &Sent,
    value: &Value,
) {
    let expected = Expected {
        provider: peer.id.clone(),
        caller: grid.id(),
        kind: ReceiptKind::Job,
        command: command.to_string(),
        input: sent.input.clone(),
        output: hash_json(value),
        terms: sent.terms,
        max_millicredits: None,
        sent_ms: sent.at_ms,
        answered_ms: continuum_core::now_ms(),
    };
    match grid.settle(peer, signed, expected).await {
        Ok(Accepted::Countersigned(_)) => {}
        Ok(Accepted::Disputed(reason)) => {
            tracing::warn!("the receipt of a job on {} is disputed: {reason}", short(&peer.id))
        }
        Err(e) => tracing::warn!("cannot record the receipt of a job on {}: {e:#}", short(&peer.id)),
    }
}

/// A peer's refusal as a job refusal, keeping how it was refused.
fn refused(e: PeerError) -> Refused {
    Refused::new(e.outcome(), e.to_string())
}

impl Jobs {
    /// Submits command `command` to `peer` as a job of this node's owner, with `lease`; the
    /// job is recorded here and followed until it ends.
    pub async fn submit_remote(
        &self,
        grid: &Grid,
        peer: Peer,
        command: String,
        params: Value,
        grant: Option<String>,
        lease: Duration,
    ) -> Result<JobView, Refused> {
        let grant = grant.or_else(|| peer.grant.clone());
        let terms = grid
            .offers()
            .into_iter()
            .find(|k| k.offer.node == peer.id)
            .and_then(|k| k.offer.command(&command).map(|(_, c)| c.price));
        let sent = Sent { input: hash_json(&params), at_ms: continuum_core::now_ms(), terms };
        let remote = grid.submit_job(&peer, &command, params, grant, lease).await.map_err(refused)?;
        let view = JobView {
            id: new_id()?,
            command,
            caller: Caller::Owner.id(),
            peer: Some(peer.id.clone()),
            remote_id: Some(remote.id.clone()),
            state: remote.state,
            submitted_ms: continuum_core::now_ms(),
            started_ms: remote.started_ms,
            finished_ms: None,
            progress: None,
            result: None,
            error: None,
            output: None,
            lease_ms: Some(lease.as_millis() as u64),
            receipt: None,
        };
        let job = LiveJob::new(view.clone());
        let data = json!({ "command": view.command, "caller": view.caller, "peer": peer.id, "remote-id": remote.id });
        self.inner.record(&view, "job.submitted", data).await?;
        lock(&self.inner.live).insert(view.id.clone(), job.clone());
        tokio::spawn(self.inner.clone().follow_remote(grid.clone(), peer, remote.id, job, lease, sent));
        Ok(view)
    }
}

impl Inner {
    /// Follows a job on `peer` until it ends there, is cancelled here, or is lost; the
    /// receipt of a job that succeeded is checked against what was `sent` and received.
    async fn follow_remote(
        self: Arc<Self>,
        grid: Grid,
        peer: Peer,
        remote: String,
        job: Arc<LiveJob>,
        lease: Duration,
        sent: Sent,
    ) {
        // A renewal that takes longer than half the lease counts as failed: a peer that died
        // without closing its connection is found out within the lease, not a QUIC timeout.
        let patience = (lease / 2).max(Duration::from_millis(500));
        let mut last_contact = Instant::now();
        let mut heartbeat = tokio::time::interval(lease / 3);
        heartbeat.tick().await;
        let ended: Result<JobView, JobError> = loop {
            let relay = job.clone();
            let follow = grid.follow_job(&peer, &remote, move |event| match event {
                JobEvent::State(state) => {
                    let mut view = lock(&relay.view);
                    view.state = state;
                    if state == JobState::Running {
                        view.started_ms.get_or_insert_with(continuum_core::now_ms);
                    }
                    let _ = relay.events.send(JobEvent::State(state));
                }
                JobEvent::Live(live) => relay.watch.emit(live),
                JobEvent::Lagged(n) => {
                    let _ = relay.events.send(JobEvent::Lagged(n));
                }
                JobEvent::End(_) => {}
            });
            tokio::pin!(follow);
            // Renew the lease while following; a cancel here is sent to the peer.
            let outcome = loop {
                tokio::select! {
                    followed = &mut follow => break followed,
                    () = job.wake.notified() => {
                        if let Err(e) = grid.job_action(&peer, &remote, JobAction::Cancel, patience).await {
                            // The peer cancels it itself once the lease, no longer renewed, lapses.
                            break Err(e);
                        }
                    }
                    _ = heartbeat.tick() => {
                        let renewed = grid.job_action(&peer, &remote, JobAction::Renew, patience).await;
                        if let Err(e) = &renewed {
                            tracing::debug!("job {remote}: renewal failed, last contact {:?} ago: {e}", last_contact.elapsed());
                        }
                        match renewed {
                            Ok(_) => last_contact = Instant::now(),
                            Err(e) if last_contact.elapsed() >= lease => break Err(e),
                            Err(_) => {}
                        }
                    }
                }
            };
            match outcome {
                Ok(view) => break Ok(view),
                Err(e) if job.watch.is_cancelled() => {
                    break Err(JobError {
                        code: Outcome::Cancelled,
                        message: format!(
                            "cancelled here; peer {} could not be told ({e}) and cancels it once its lease lapses",
                            short(&peer.id)
                        ),
                        value: None,
                    })
                }
                Err(e) if last_contact.elapsed() >= lease => {
                    break Err(JobError {
                        code: Outcome::Lost,
                        message: format!(
                            "peer {} stopped answering for longer than the job's lease of {} ms: {e}",
                            short(&peer.id),
                            lease.as_millis()
                        ),
                        value: None,
                    })
                }
                Err(_) => {
                    if grid.job_action(&peer, &remote, JobAction::Renew, patience).await.is_ok() {
                        last_contact = Instant::now();
                    }
                    tokio::time::sleep(REFOLLOW_AFTER).await;
                }
            }
        };
        tracing::debug!("job {remote} on {} ended: {:?}", short(&peer.id), ended.as_ref().map(|v| v.state));
        match ended {
            Ok(mut view) => {
                {
                    let mut local = lock(&job.view);
                    local.started_ms = view.started_ms.or(local.started_ms);
                }
                if let (Some(signed), Some(value)) = (view.receipt.take(), &view.result) {
                    settle_job_receipt(&grid, &peer, &view.command, signed, &sent, value).await;
                }
                let result = match (view.state, view.result, view.error) {
                    (JobState::Succeeded, Some(value), _) => Ok(value),
                    (_, _, Some(error)) => Err(error),
                    (state, _, None) => Err(JobError {
                        code: Outcome::Malformed,
                        message: format!("peer {} ended the job {} without a result", short(&peer.id), state.as_str()),
                        value: None,
                    }),
                };
                self.finish(&job, result, view.output).await;
            }
            Err(error) => self.finish(&job, Err(error), None).await,
        }
    }
}
