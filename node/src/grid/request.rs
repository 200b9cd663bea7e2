//! Asking a peer: one request per QUIC stream, on a cached connection that is replaced once
//! when it turns out dead, within a time limit; and why a request failed ([`PeerError`]).

use std::time::{Duration, Instant};

use anyhow::Result;
use iroh::endpoint::Connection;

use continuum_core::sync::lock;
use continuum_core::Outcome;

use super::peers::Peer;
use super::wire::{self, Request, Response};
use super::{endpoint_addr, short, Grid};
use crate::jobs::JobEvent;

/// Why a request to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached (offline, wrong address, closed).
    #[error("peer {peer} is unreachable: {message}")]
    Unreachable {
        /// The peer's short id.
        peer: String,
        /// Why it could not be reached.
        message: String,
    },
    /// No connection to the peer could be made: the request was never sent, so another peer
    /// may take it whatever the command does.
    #[error("peer {peer} is unreachable: {message}")]
    Offline {
        /// The peer's short id.
        peer: String,
        /// Why it could not be reached.
        message: String,
    },
    /// The peer is answering as much as it takes and did not run the request; it may after
    /// `retry_after_ms`, and another peer may at once.
    #[error("peer {peer} is busy: {message}")]
    Busy {
        /// The peer's short id.
        peer: String,
        /// The peer's message.
        message: String,
        /// When the peer suggests asking again, in milliseconds.
        retry_after_ms: u64,
    },
    /// The peer did not answer in time.
    #[error("peer {peer} did not answer within {ms} ms")]
    Timeout {
        /// The peer's short id.
        peer: String,
        /// The time limit, in milliseconds.
        ms: u64,
    },
    /// The peer answered, but with something that is not a valid answer.
    #[error("peer {peer} sent a malformed answer: {message}")]
    Malformed {
        /// The peer's short id.
        peer: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// The peer refused or failed the request; `outcome` as in its event log.
    #[error("peer {peer}: {message}")]
    Failed {
        /// The peer's short id.
        peer: String,
        /// How the request ended, as the peer reported it.
        outcome: Outcome,
        /// The peer's error message.
        message: String,
    },
}

impl PeerError {
    /// How the request ended (`unreachable`, `timeout`, `denied`, …).
    pub fn outcome(&self) -> Outcome {
        match self {
            PeerError::Unreachable { .. } | PeerError::Offline { .. } => Outcome::Unreachable,
            PeerError::Busy { .. } => Outcome::Busy,
            PeerError::Timeout { .. } => Outcome::Timeout,
            PeerError::Malformed { .. } => Outcome::Malformed,
            PeerError::Failed { outcome, .. } => *outcome,
        }
    }

    /// Whether the peer certainly did not run the request (it was never sent, or refused as
    /// busy): another peer may take it even when the command changes state.
    pub fn not_run(&self) -> bool {
        matches!(self, PeerError::Offline { .. } | PeerError::Busy { .. })
    }

    /// Whether trying again (on this or another peer) could help.
    pub fn retryable(&self) -> bool {
        matches!(
            self.outcome(),
            Outcome::Unreachable
                | Outcome::Timeout
                | Outcome::Denied
                | Outcome::UnknownCommand
                | Outcome::HostError
                | Outcome::Malformed
        )
    }
}

impl Grid {
    /// Sends one request to `peer` and waits at most `timeout` for the answer. A cached
    /// connection that turns out dead is replaced once.
    pub async fn request(&self, peer: &Peer, request: &Request, timeout: Duration) -> Result<Response, PeerError> {
        let started = Instant::now();
        let name = short(&peer.id);
        let attempt = async {
            let mut last: Option<anyhow::Error> = None;
            for fresh in [false, true] {
                let conn = match (self.connection(peer, fresh, connect_within(Some(timeout))).await, &last) {
                    (Ok(conn), _) => conn,
                    // The first exchange may have sent the request before it failed: the peer
                    // may have run it, so this is no longer "never sent".
                    (Err(e), Some(before)) => {
                        let message = format!("{before:#}; reconnecting: {e}");
                        return Err(PeerError::Unreachable { peer: name.clone(), message });
                    }
                    (Err(e), None) => return Err(e),
                };
                match exchange(&conn, request).await {
                    Ok(response) => return Ok(response),
                    Err(e) => {
                        lock(&self.inner.connections).remove(&peer.id);
                        last = Some(e);
                    }
                }
            }
            let e = last.expect("two attempts were made");
            Err(PeerError::Unreachable { peer: name.clone(), message: format!("{e:#}") })
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(PeerError::Timeout { peer: name.clone(), ms: timeout.as_millis() as u64 }),
        };
        if result.is_ok() {
            self.inner.latencies.record(Some(&peer.id), started.elapsed());
        }
        failed(name, result?)
    }

    /// Sends one request whose answer is streamed: its events go to `on_event` as they come,
    /// and the last frame is the answer. `timeout` bounds the whole exchange (none: as long as
    /// the stream lasts). A cached connection that turns out dead is replaced once, before any
    /// event has arrived.
    pub async fn request_streamed(
        &self,
        peer: &Peer,
        request: &Request,
        timeout: Option<Duration>,
        mut on_event: impl FnMut(JobEvent) + Send,
    ) -> Result<Response, PeerError> {
        let name = short(&peer.id);
        let attempt = async {
            let mut streams = None;
            for fresh in [false, true] {
                let conn = self.connection(peer, fresh, connect_within(timeout)).await?;
                match conn.open_bi().await {
                    Ok(pair) => {
                        streams = Some(pair);
                        break;
                    }
                    Err(_) => {
                        lock(&self.inner.connections).remove(&peer.id);
                    }
                }
            }
            let unreachable =
                |e: anyhow::Error| PeerError::Unreachable { peer: name.clone(), message: format!("{e:#}") };
            let (mut send, mut recv) =
                streams.ok_or_else(|| unreachable(anyhow::anyhow!("no stream could be opened")))?;
            wire::send(&mut send, request).await.map_err(unreachable)?;
            wire::receive_frames(&mut recv, &mut on_event).await.map_err(unreachable)
        };
        let result = match timeout {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| Err(PeerError::Timeout { peer: name.clone(), ms: limit.as_millis() as u64 })),
            None => attempt.await,
        };
        failed(name, result?)
    }

    /// The open connection to `peer`, or a new one when there is none or `fresh` is asked for,
    /// made within `within` (past it the peer is offline: nothing was sent).
    async fn connection(&self, peer: &Peer, fresh: bool, within: Duration) -> Result<Connection, PeerError> {
        if !fresh {
            if let Some(c) = lock(&self.inner.connections).get(&peer.id).filter(|c| c.close_reason().is_none()) {
                return Ok(c.clone());
            }
        }
        let addr =
            endpoint_addr(peer).map_err(|e| PeerError::Offline { peer: short(&peer.id), message: e.to_string() })?;
        let offline = |message: String| PeerError::Offline { peer: short(&peer.id), message };
        let conn = tokio::time::timeout(within, self.inner.endpoint.connect(addr, wire::ALPN))
            .await
            .map_err(|_| offline(format!("no connection within {} ms", within.as_millis())))?
            .map_err(|e| offline(e.to_string()))?;
        lock(&self.inner.connections).insert(peer.id.clone(), conn.clone());
        Ok(conn)
    }
}

/// How long making a connection may take within a request's time limit: half of it, at most
/// [`MAX_CONNECT`], so that a peer that vanished leaves time to ask another.
fn connect_within(timeout: Option<Duration>) -> Duration {
    timeout.map_or(MAX_CONNECT, |t| (t / 2).min(MAX_CONNECT))
}

/// The longest a connection to a peer may take to set up.
const MAX_CONNECT: Duration = Duration::from_secs(5);

/// A peer's refusal as the error it is; any other answer as it is.
fn failed(peer: String, response: Response) -> Result<Response, PeerError> {
    match response {
        Response::Failed { outcome, message } => Err(PeerError::Failed { peer, outcome, message }),
        Response::Busy { message, retry_after_ms } => Err(PeerError::Busy { peer, message, retry_after_ms }),
        r => Ok(r),
    }
}

/// One request and its answer, on a stream of their own.
async fn exchange(conn: &Connection, request: &Request) -> Result<Response> {
    let (mut send, mut recv) = conn.open_bi().await?;
    wire::send(&mut send, request).await?;
    wire::receive(&mut recv, wire::MAX_RESPONSE_BYTES, "answer").await
}

/// The error for an answer of the wrong kind (an offer where a call's result was expected).
pub(super) fn unexpected(peer: &Peer, response: &Response) -> PeerError {
    let kind = serde_json::to_value(response).ok().and_then(|v| v["status"].as_str().map(String::from));
    PeerError::Malformed { peer: short(&peer.id), message: format!("unexpected `{}` answer", kind.unwrap_or_default()) }
}
