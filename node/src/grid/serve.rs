//! Answering peers: the `continuum/grid/3` protocol handler. A request runs as the peer's key
//! (QUIC proved it), within the node's budgets: requests in flight per connection and over all
//! peers (the rest are answered `busy` at once), and log pages per peer per window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use iroh::endpoint::{Connection, SendStream};
use iroh::protocol::{AcceptError, ProtocolHandler};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use continuum_core::runtime::watch::{CallEvent, Purpose, Watch};
use continuum_core::sync::lock;
use continuum_core::{Caller, Outcome};

use super::request_ids::{self, Claim};
use super::wire::{self, JobAction, Request, Response};
use super::Inner;
use crate::jobs::{JobEvent, JobState, JobView, PeerSubmission, LIVE_BUFFER};
use crate::market::budget::{self, Reservation};
use crate::market::ledger;
use crate::market::receipt::{hash_json, ReceiptKind, SignedReceipt};
use crate::market::terms::{credits, Price, Units};
use crate::market::Work;
use continuum_core::node_set::SignedNodeSet;

/// Requests from all peers handled at once; more are answered `busy` at once.
pub const MAX_REQUESTS: usize = 64;
/// Requests from one connection handled at once.
pub const MAX_REQUESTS_PER_PEER: usize = 16;
/// Log pages one peer may ask for per [`LOG_PULL_WINDOW`].
pub const LOG_PULLS_PER_WINDOW: u32 = 20;
/// The window of the log-pull rate limit.
pub const LOG_PULL_WINDOW: Duration = Duration::from_secs(10);
/// Jobs followed at once over all peers, and over one connection: a follow lasts as long as its
/// job, so it holds a place of its own rather than a request slot.
pub const MAX_FOLLOWS: usize = 1024;
/// Jobs followed at once over one connection.
pub const MAX_FOLLOWS_PER_PEER: usize = 256;
/// How long writing one frame, or an answer, may wait for a peer that does not read: past it
/// the stream is dropped (a streamed call is cancelled), and its slot freed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Purchase receipts one peer may hold uncountersigned before it is refused more.
pub const MAX_PENDING_PURCHASES: u64 = 16;
/// When a peer refused as busy is told to ask again.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_millis(200);
/// The shortest lease a peer may ask for a job (shorter ones are lengthened).
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// The longest lease a peer may ask for a job (longer ones are shortened).
pub const MAX_LEASE: Duration = Duration::from_secs(3600);

/// A connection's place and the node's, held while a request is answered.
type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// What answering peers may take of this node.
pub(super) struct Budgets {
    /// Requests being answered, over all peers.
    requests: Arc<Semaphore>,
    /// Jobs being followed, over all peers.
    follows: Arc<Semaphore>,
    /// Log pages served per peer in the current window: (window start, pages).
    log_pulls: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Budgets {
    /// Full budgets: no request in flight, no page served.
    pub(super) fn new() -> Budgets {
        Budgets {
            requests: Arc::new(Semaphore::new(MAX_REQUESTS)),
            follows: Arc::new(Semaphore::new(MAX_FOLLOWS)),
            log_pulls: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more request of a connection whose own budget is `connection`: both
    /// permits, or none when either budget is spent.
    fn admit(&self, connection: &Arc<Semaphore>) -> Option<Permits> {
        connection.clone().try_acquire_owned().ok().zip(self.requests.clone().try_acquire_owned().ok())
    }

    /// A place for one more follow of a connection whose own follow budget is `connection`.
    fn admit_follow(&self, connection: &Arc<Semaphore>) -> Option<Permits> {
        connection.clone().try_acquire_owned().ok().zip(self.follows.clone().try_acquire_owned().ok())
    }

    /// Counts one log page for `peer`; false when it asked for more than its share.
    fn log_pull_allowed(&self, peer: &str) -> bool {
        let mut pulls = lock(&self.log_pulls);
        let now = Instant::now();
        pulls.retain(|_, (start, _)| now.duration_since(*start) < LOG_PULL_WINDOW);
        let (_, count) = pulls.entry(peer.to_string()).or_insert((now, 0));
        *count += 1;
        *count <= LOG_PULLS_PER_WINDOW
    }
}

/// The handler of [`wire::ALPN`] connections.
#[derive(Clone)]
pub(super) struct GridProtocol {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for GridProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GridProtocol")
    }
}

impl ProtocolHandler for GridProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = hex::encode(connection.remote_id().as_bytes());
        let own = Arc::new(Semaphore::new(MAX_REQUESTS_PER_PEER));
        let own_follows = Arc::new(Semaphore::new(MAX_FOLLOWS_PER_PEER));
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            // A flood is answered `busy` at once rather than queued: neither one connection
            // nor all of them together can hold more than their share of the node.
            let Some(permits) = self.inner.budgets.admit(&own) else {
                tokio::spawn(async move {
                    let busy = Response::Busy {
                        message: "the node is answering as many grid requests as it takes; retry shortly".into(),
                        retry_after_ms: BUSY_RETRY_AFTER.as_millis() as u64,
                    };
                    // Take the request off the stream first (briefly), so the peer reads the
                    // answer instead of a reset.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), recv.read_to_end(wire::MAX_REQUEST_BYTES)).await;
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, wire::send(&mut send, &busy)).await;
                });
                continue;
            };
            let (inner, peer, own_follows) = (self.inner.clone(), peer.clone(), own_follows.clone());
            tokio::spawn(async move {
                let mut held = Held { permits: Some(permits), follows: own_follows };
                let response = match wire::receive::<Request>(&mut recv, wire::MAX_REQUEST_BYTES, "request").await {
                    Ok(request) => inner.answer(&peer, request, &mut send, &mut held).await,
                    Err(e) => Response::Failed { outcome: Outcome::BadRequest, message: format!("{e:#}") },
                };
                let _ = tokio::time::timeout(WRITE_TIMEOUT, wire::send(&mut send, &response)).await;
            });
        }
        Ok(())
    }
}

/// What a calling peer presents for its call: a grant, and the node set naming it when the
/// grant was issued to its owner.
struct Presented {
    grant: Option<String>,
    node_set: Option<SignedNodeSet>,
}

/// What a request being answered holds of the node's budgets: its request places (a follow
/// trades them for a follow place), and its connection's follow budget.
struct Held {
    permits: Option<Permits>,
    follows: Arc<Semaphore>,
}

/// Writes one frame, waiting at most [`WRITE_TIMEOUT`] for the peer to read; whether it went.
async fn write_frame(send: &mut SendStream, frame: &Response) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, wire::send_frame(send, frame)).await, Ok(Ok(())))
}

/// The answer to a request the host could not serve.
fn host_error(e: anyhow::Error) -> Response {
    Response::Failed { outcome: Outcome::HostError, message: format!("{e:#}") }
}

impl Inner {
    /// The answer to `peer`'s request; a streamed answer's frames go to `send` first.
    async fn answer(&self, peer: &str, request: Request, send: &mut SendStream, held: &mut Held) -> Response {
        match request {
            Request::Offer {} => match self.offers.own() {
                Some(offer) => Response::Offer { offer },
                None => Response::Failed { outcome: Outcome::HostError, message: "no offer yet".into() },
            },
            Request::Call { command, params, grant, deadline_ms, stream, request_id, node_set } => {
                let presented = Presented { grant, node_set };
                let Some(id) = request_id else {
                    return self.execute(peer, command, params, presented, deadline_ms, stream.then_some(send)).await;
                };
                if !request_ids::valid(&id) {
                    let message = "a request id is 8 to 64 letters, digits, `-` or `_`".to_string();
                    return Response::Failed { outcome: Outcome::BadRequest, message };
                }
                // The id names this command, with these parameters, under this grant.
                let fingerprint = hash_json(&serde_json::json!([command, params, presented.grant]));
                match self.request_ids.claim(peer, &id, fingerprint) {
                    Claim::Run(ticket) => {
                        let streamed = stream.then_some(send);
                        let answer = self.execute(peer, command, params, presented, deadline_ms, streamed).await;
                        ticket.finish(&answer);
                        answer
                    }
                    Claim::Answered(answer) => request_ids::answer_of(answer).await,
                    Claim::Conflict => Response::Failed {
                        outcome: Outcome::BadRequest,
                        message: format!("request id {id} was already used for a different request; use a new id"),
                    },
                }
            }
            Request::Submit { command, params, grant, lease_ms } => {
                self.submit_job(peer, command, params, grant, lease_ms).await
            }
            Request::Job { id, action } => self.job_action(peer, &id, action, send, held).await,
            Request::Events { since, grant } => self.export_events(peer, since, grant).await,
            Request::Countersign { receipt } => self.take_countersignature(peer, receipt).await,
            Request::Purchase { plugin, alloy } => self.sell_alloy(peer, plugin, alloy).await,
        }
    }

    /// The caller a request of `peer` runs as: its key (QUIC proved it), with the grant it
    /// presents checked exactly as for any caller.
    async fn caller(&self, peer: &str, grant: Option<String>) -> Result<Caller, Response> {
        self.caller_presenting(peer, Presented { grant, node_set: None }).await
    }

    /// As [`Inner::caller`], with the node set the peer shows beside its owner's grant.
    async fn caller_presenting(&self, peer: &str, presented: Presented) -> Result<Caller, Response> {
        let peer = peer.to_string();
        let caller = self
            .host
            .run(move |host| match &presented.grant {
                Some(token) => host
                    .caller_presenting_with_set(token, &peer, presented.node_set.as_ref())
                    .map_err(|e| format!("grant refused: {e}")),
                None => host.caller_for(&peer).map_err(|e| format!("{e:#}")),
            })
            .await;
        match caller {
            Ok(Ok(caller)) => Ok(caller),
            Ok(Err(message)) => Err(Response::Failed { outcome: Outcome::Denied, message }),
            Err(e) => Err(host_error(e)),
        }
    }

    /// Runs a call for a peer as [`Inner::caller_presenting`] says; with `stream`, its live
    /// events are written there as frames while it runs (at most [`LIVE_BUFFER`] waiting: a slow
    /// reader loses events, told how many, never the answer; one that stops reading for
    /// [`WRITE_TIMEOUT`], or goes away, cancels the call).
    async fn execute(
        &self,
        peer: &str,
        command: String,
        params: serde_json::Value,
        presented: Presented,
        deadline_ms: u64,
        stream: Option<&mut SendStream>,
    ) -> Response {
        let caller = match self.caller_presenting(peer, presented).await {
            Ok(caller) => caller,
            Err(refused) => return refused,
        };
        let price = self.terms.price_of(&command);
        let reservation = match self.admit_spending(peer, &caller, &command, price).await {
            Ok(reservation) => reservation,
            Err(refused) => return refused,
        };
        let _running = self.calls_running.call_started();
        let started_ms = continuum_core::now_ms();
        let input = hash_json(&params);
        let deadline = Instant::now() + Duration::from_millis(deadline_ms.min(600_000));
        let (events, mut pending) = tokio::sync::mpsc::channel::<CallEvent>(LIVE_BUFFER);
        let dropped = Arc::new(AtomicU64::new(0));
        let watch = match stream {
            Some(_) => {
                let dropped = dropped.clone();
                let sink = Arc::new(move |event: CallEvent| {
                    if events.try_send(event).is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                });
                Arc::new(Watch::new(Purpose::Interactive, Some(sink)))
            }
            None => Arc::default(),
        };
        let abandon = watch.clone();
        let counted = watch.clone();
        let name = command.clone();
        let queued = self.host.run(move |host| host.core().call_queued(&caller, &name, &params, 0, deadline, watch));
        let report = match stream {
            None => queued.await,
            Some(send) => {
                // Frames are written while the call runs, then what is left once it has ended.
                tokio::pin!(queued);
                let mut reading = true;
                let report = loop {
                    tokio::select! {
                        biased;
                        Some(event) = pending.recv(), if reading => {
                            let frame = Response::Event { event: JobEvent::Live(event) };
                            if !write_frame(send, &frame).await {
                                // Nobody reads the stream any more: the call's work would be lost.
                                abandon.cancel();
                                reading = false;
                            }
                        }
                        report = &mut queued => break report,
                    }
                };
                while let Ok(event) = pending.try_recv() {
                    if !reading || !write_frame(send, &Response::Event { event: JobEvent::Live(event) }).await {
                        break;
                    }
                }
                let skipped = dropped.load(Ordering::Relaxed);
                if skipped > 0 {
                    write_frame(send, &Response::Event { event: JobEvent::Lagged(skipped) }).await;
                }
                report
            }
        };
        // The audit commit is awaited here, not on the call pool, which is free for the next call.
        let report = match report {
            Ok(call) => call.committed().await,
            Err(e) => return host_error(e),
        };
        self.served.record(None, report.elapsed);
        let units =
            Units { calls: 1, ms: report.elapsed.as_micros().div_ceil(1000) as u64, tokens: counted.generated() };
        // What it used is spent from the budget whatever the outcome: a call cut short after
        // its tokens were streamed spent them. Only a result is charged (has a receipt).
        if let Some(reservation) = reservation {
            self.settle_budget(reservation, price.charge(&units), units.tokens).await;
        }
        let value = match report.result {
            Ok(value) => value,
            Err(e) => return Response::Failed { outcome: e.outcome(), message: e.to_string() },
        };
        let work =
            Work { kind: ReceiptKind::Call, command, input, output: hash_json(&value), units, started_ms, job: None };
        let receipt = match self.receipt_for(peer, work, price).await {
            Ok(receipt) => Some(receipt),
            Err(e) => {
                // The call ran and its result stands; only its receipt is missing.
                tracing::warn!("cannot issue a receipt for a call of {}: {e:#}", super::short(peer));
                None
            }
        };
        Response::Ok { value, elapsed_us: report.elapsed.as_micros() as u64, receipt }
    }

    /// Whether `caller` (peer `peer`) may spend what `command` costs: within the budget of the
    /// grant that confers it (a call is reserved on it), and, when this node sets a credit limit,
    /// not owing more than it. The refusal is the answer.
    async fn admit_spending(
        &self,
        peer: &str,
        caller: &Caller,
        command: &str,
        price: Price,
    ) -> Result<Option<Reservation>, Response> {
        let refused = |message: String| Response::Failed { outcome: Outcome::BudgetExhausted, message };
        let (peer, command, limit) = (peer.to_string(), command.to_string(), self.terms.credit_limit);
        let grant = match caller {
            Caller::Key { grant: Some(g), .. }
                if g.caps.iter().any(|c| continuum_core::grants::confers(c, &command)) =>
            {
                Some(g.clone())
            }
            _ => None,
        };
        let checked = self
            .host
            .run(move |host| -> Result<Result<Option<Reservation>, String>> {
                let db = host.core().db();
                let cost = price.estimate(0);
                if let (Some(limit), false) = (limit, price.is_free()) {
                    let owed = ledger::owed_by(&db, &peer)?;
                    if owed + cost as i128 > limit as i128 {
                        return Ok(Err(format!(
                            "credit limit: you owe this node {} credits and `{command}` costs {}; its limit is {} credits",
                            credits(owed.max(0) as u64),
                            credits(cost),
                            credits(limit)
                        )));
                    }
                }
                match grant {
                    Some(grant) => budget::reserve(&db, &grant, cost, continuum_core::now_secs()),
                    None => Ok(Ok(None)),
                }
            })
            .await;
        match checked {
            Ok(Ok(Ok(reservation))) => Ok(reservation),
            Ok(Ok(Err(message))) => Err(refused(message)),
            Ok(Err(e)) | Err(e) => Err(host_error(e)),
        }
    }

    /// Issues (signs, records, logs) the receipt for `work` done for `peer` under `price`.
    async fn receipt_for(&self, peer: &str, work: Work, price: Price) -> Result<SignedReceipt> {
        let caller = peer.to_string();
        self.host.run(move |host| crate::market::issue(host, &caller, work, price)).await?
    }

    /// Adds what a call cost (`millicredits` in all, `tokens`) to the budget it was reserved on.
    async fn settle_budget(&self, reservation: Reservation, millicredits: u64, tokens: u64) {
        let settled =
            self.host.run(move |host| budget::settle(&host.core().db(), &reservation, millicredits, tokens)).await;
        if let Err(e) = settled.and_then(|r| r) {
            tracing::warn!("cannot add a call's cost to its budget: {e:#}");
        }
    }

    /// Takes `peer`'s countersignature of a receipt this node issued to it.
    async fn take_countersignature(&self, peer: &str, receipt: SignedReceipt) -> Response {
        let peer = peer.to_string();
        let taken =
            self.host.run(move |host| crate::market::countersigned(host, &peer, &receipt).map(|_| receipt)).await;
        match taken {
            Ok(Ok(receipt)) => Response::Receipt { receipt },
            Ok(Err(e)) => Response::Failed { outcome: Outcome::BadRequest, message: format!("{e:#}") },
            Err(e) => host_error(e),
        }
    }

    /// The receipt for `peer` fetching the alloy `alloy` of `plugin`, which this node offers at
    /// a price; the fetch itself goes over iroh-blobs.
    async fn sell_alloy(&self, peer: &str, plugin: String, alloy: String) -> Response {
        let offered = self
            .offers
            .own()
            .and_then(|o| o.verify().ok())
            .and_then(|offer| offer.plugins.into_iter().find(|p| p.name == plugin && p.alloy == alloy));
        let Some(offered) = offered else {
            let message = format!("this node offers no alloy {alloy} of `{plugin}`; its offer lists what it ships");
            return Response::Failed { outcome: Outcome::NotFound, message };
        };
        if offered.fetch_millicredits == 0 {
            let message = format!("`{plugin}` is free to fetch here: no purchase is needed");
            return Response::Failed { outcome: Outcome::BadRequest, message };
        }
        // Each purchase signs and records a receipt: a peer holding many it never countersigned
        // (bought, never fetched) gets no more until it does.
        let buyer = peer.to_string();
        let pending = self.host.run(move |host| ledger::pending_purchases(&host.core().db(), &buyer)).await;
        match pending {
            Ok(Ok(n)) if n >= MAX_PENDING_PURCHASES => {
                let message = format!(
                    "you hold {n} purchase receipts of this node you never countersigned; fetch and countersign them first"
                );
                return Response::Busy { message, retry_after_ms: 60_000 };
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) | Err(e) => return host_error(e),
        }
        let price = Price { millicredits_per_call: offered.fetch_millicredits, ..Price::default() };
        let work = Work {
            kind: ReceiptKind::Purchase,
            command: plugin,
            input: alloy.clone(),
            output: alloy,
            units: Units { calls: 1, ms: 0, tokens: 0 },
            started_ms: continuum_core::now_ms(),
            job: None,
        };
        match self.receipt_for(peer, work, price).await {
            Ok(receipt) => Response::Receipt { receipt },
            Err(e) => host_error(e),
        }
    }

    /// Submits a job for `peer`, as [`Inner::caller`] says, under a lease of `lease_ms` (at
    /// most [`MAX_LEASE`]) that only `peer` renews.
    async fn submit_job(
        &self,
        peer: &str,
        command: String,
        params: serde_json::Value,
        grant: Option<String>,
        lease_ms: u64,
    ) -> Response {
        let caller = match self.caller(peer, grant).await {
            Ok(caller) => caller,
            Err(refused) => return refused,
        };
        // A job spends its grant's budget like a call: one call and its per-call price when
        // submitted, what it used when it ends.
        let price = self.terms.price_of(&command);
        let reservation = match self.admit_spending(peer, &caller, &command, price).await {
            Ok(reservation) => reservation,
            Err(refused) => return refused,
        };
        let lease = Duration::from_millis(lease_ms).clamp(MIN_LEASE, MAX_LEASE);
        let submission = PeerSubmission { peer: peer.to_string(), lease, price, reservation };
        match self.jobs.submit(caller, command, params, Some(submission)).await {
            Ok(job) => Response::Job { job: Box::new(job) },
            Err(refused) => Response::Failed { outcome: refused.outcome, message: refused.message },
        }
    }

    /// Acts on job `id` for `peer`, which sees only the jobs it submitted (any other id reads
    /// as unknown); a follow writes its events to `send` as frames, holding a follow place
    /// (not a request slot) for as long as the job runs. A peer whose grants were revoked can
    /// no longer renew: its jobs stop when their leases lapse.
    async fn job_action(
        &self,
        peer: &str,
        id: &str,
        action: JobAction,
        send: &mut SendStream,
        held: &mut Held,
    ) -> Response {
        // Its own jobs are the peer's by key: no grant is needed to see or stop them.
        let caller = Caller::Key { key: peer.to_string(), grant: None };
        let done = match action {
            JobAction::Status => self.jobs.get(id, &caller).await,
            JobAction::Renew => match self.caller(peer, None).await {
                Ok(Caller::Blocked { .. }) => {
                    let message = "this node revoked your grants; the job's lease is no longer renewed".to_string();
                    return Response::Failed { outcome: Outcome::Denied, message };
                }
                _ => self.jobs.renew(id, &caller).await,
            },
            JobAction::Cancel => self.jobs.cancel(id, &caller).await,
            JobAction::Follow => {
                let Some(place) = self.budgets.admit_follow(&held.follows) else {
                    let message = format!(
                        "this node follows as many jobs as it takes ({MAX_FOLLOWS_PER_PEER} per connection, \
                         {MAX_FOLLOWS} in all); retry shortly"
                    );
                    return Response::Failed { outcome: Outcome::Busy, message };
                };
                held.permits = Some(place);
                match self.jobs.follow(id, &caller).await {
                    Ok(events) => {
                        tokio::pin!(events);
                        while let Some(event) = events.next().await {
                            if let JobEvent::End(job) = event {
                                return Response::Job { job: Box::new(self.with_receipt(*job).await) };
                            }
                            if !write_frame(send, &Response::Event { event }).await {
                                break;
                            }
                        }
                        self.jobs.get(id, &caller).await
                    }
                    Err(refused) => Err(refused),
                }
            }
        };
        match done {
            Ok(job) => Response::Job { job: Box::new(self.with_receipt(job).await) },
            Err(refused) => Response::Failed { outcome: refused.outcome, message: refused.message },
        }
    }

    /// `job` with the receipt this node issued for it, once it succeeded: its end may be read
    /// by a status request, or by a follow that began after it ended, not only by its last frame.
    async fn with_receipt(&self, mut job: JobView) -> JobView {
        if job.state == JobState::Succeeded && job.receipt.is_none() {
            let id = job.id.clone();
            match self.host.run(move |host| ledger::issued_for_job(&host.core().db(), &id)).await {
                Ok(Ok(receipt)) => job.receipt = receipt,
                Ok(Err(e)) | Err(e) => tracing::warn!("cannot read the receipt of job {}: {e:#}", job.id),
            }
        }
        job
    }

    /// A page of this node's log for `peer`, if its grant confers [`wire::LOG_PULL`].
    async fn export_events(&self, peer: &str, since: u64, grant: Option<String>) -> Response {
        let denied = |message: String| Response::Failed { outcome: Outcome::Denied, message };
        let Some(token) = grant else {
            return denied(format!(
                "pulling this node's log needs a grant conferring `{0}`; its owner can issue one with `continuum grant issue --to {peer} --cap {0}`",
                wire::LOG_PULL
            ));
        };
        let holder = peer.to_string();
        let checked = self.host.run(move |host| host.caller_presenting(&token, &holder)).await;
        match checked {
            Ok(Ok(Caller::Key { grant: Some(g), .. }))
                if g.caps.iter().any(|c| continuum_core::grants::confers(c, wire::LOG_PULL)) => {}
            Ok(Ok(_)) => return denied(format!("the grant presented does not confer `{}`", wire::LOG_PULL)),
            Ok(Err(e)) => return denied(format!("grant refused: {e}")),
            Err(e) => return host_error(e),
        }
        if !self.budgets.log_pull_allowed(peer) {
            return Response::Failed {
                outcome: Outcome::Busy,
                message: format!(
                    "at most {LOG_PULLS_PER_WINDOW} log pages per {} s; retry shortly",
                    LOG_PULL_WINDOW.as_secs()
                ),
            };
        }
        let export = self
            .host
            .run(move |host| -> Result<(String, bool)> {
                let mut out = Vec::new();
                let node = host.core().log().node().to_string();
                let db = host.core().log_db()?;
                let count = continuum_core::eventlog::transfer::export(&db, &node, since, wire::LOG_PAGE, &mut out)?;
                // A page ends at a checkpoint, so it may hold fewer than LOG_PAGE entries with
                // more to come.
                let more = count > 0 && continuum_core::eventlog::head(&db)?.0 > since + count;
                Ok((String::from_utf8(out)?, more))
            })
            .await;
        match export {
            Ok(Ok((export, more))) => Response::Events { export, more },
            Ok(Err(e)) | Err(e) => host_error(e),
        }
    }
}
