//! Jobs: any command run in the background under a handle. A job is submitted (`queued`),
//! waits for one of the node's compute slots (`running`), and ends `succeeded`, `failed` or
//! `cancelled`; a node restarted meanwhile marks it `interrupted`, and a job followed on a peer
//! that stops answering for longer than its lease ends `lost`. Every change of state is written
//! to the `jobs` table ([`store`]) and to the event log (`job.<state>`); results are kept for
//! `[jobs] keep-results-secs`.
//!
//! While a job runs, its live events (tokens, progress, output) go to a bounded broadcast:
//! any number of followers read it, and one that falls behind is told how many events it
//! missed (`lagged`) rather than making the node buffer for it. The final event carries the
//! whole result, so a follower never misses that.
//!
//! Who sees a job: the caller who submitted it, and the owner. Anyone else is told there is no
//! such job, as for an id that never existed. Jobs held on a peer are in [`remote`].

mod remote;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{broadcast, Notify, Semaphore};
use utoipa::ToSchema;

use crate::async_host::AsyncHost;
use crate::market::budget::{self, Reservation};
use crate::market::receipt::{hash_json, ReceiptKind, SignedReceipt};
use crate::market::terms::{Price, Units};
use crate::market::{self, Work};
use continuum_core::config::JobsSection;
use continuum_core::runtime::watch::{CallEvent, Purpose, Watch};
use continuum_core::sync::lock;
use continuum_core::terminal::strip_control;
use continuum_core::{CallError, Caller, Outcome};

/// Live events waiting for their reader: a job's followers share a ring of this many (one that
/// falls behind by more is told how many it missed), and a streamed call's events wait in a
/// channel of this many (more are dropped and counted).
pub const LIVE_BUFFER: usize = 256;
/// Bytes of parameters all waiting jobs may hold together; past it, submissions get `busy`.
pub const MAX_QUEUED_BYTES: usize = 256 << 20;
/// How often leases and retention are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Waiting for a compute slot.
    Queued,
    /// Running.
    Running,
    /// Ended with its result.
    Succeeded,
    /// Ended with an error (the command's own, or a broken limit).
    Failed,
    /// Stopped by a cancel (or, on the node running it, by its submitter's lapsed lease).
    Cancelled,
    /// The node stopped while it was queued or running.
    Interrupted,
    /// The peer running it stopped answering for longer than its lease.
    Lost,
}

impl JobState {
    /// Its name, as stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
            JobState::Lost => "lost",
        }
    }

    /// Whether the job has ended (its state will not change again).
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// Why a job has no result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// How it ended (`command-error`, `deadline`, `cancelled`, `interrupted`, `lost`, …).
    pub code: Outcome,
    /// What went wrong, for a person.
    pub message: String,
    /// The command's own error value, when it returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
}

impl JobError {
    /// The error of a call that did not produce a result.
    fn of(e: &CallError) -> JobError {
        let value = match e {
            CallError::CommandFailed { error, .. } => Some(error.clone()),
            _ => None,
        };
        JobError { code: e.outcome(), message: e.to_string(), value }
    }
}

/// How far a running job has come, as it last reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Share of the work done, 0 to 1.
    pub fraction: f32,
    /// What it is doing.
    pub message: String,
}

/// A job as its caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// Its id (32 hex digits).
    pub id: String,
    /// The command, `plugin/function`.
    pub command: String,
    /// Who submitted it (`owner`, or a key).
    pub caller: String,
    /// The peer running it, for a job submitted to the grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Its id on that peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// Where it is in its life.
    pub state: JobState,
    /// When it was submitted (ms since the epoch).
    pub submitted_ms: i64,
    /// When it started running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    /// Its last progress report, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Its result, once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why it has no result, once it ended otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// What the command wrote to stdout and stderr (control characters stripped), once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The lease, for a grid job: its submitter renews it at least this often, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    /// For a grid job that succeeded, the receipt this node issued its submitter (given with
    /// the job's end, not kept with the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedReceipt>,
}

/// One event of a job, as followers receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", content = "data", rename_all = "kebab-case")]
pub enum JobEvent {
    /// The job moved to a new state (running, say).
    State(JobState),
    /// A token, a progress report or output of the running command.
    Live(CallEvent),
    /// The follower fell behind and missed this many live events.
    Lagged(u64),
    /// The job ended: the last event, with the whole job (result or error).
    End(Box<JobView>),
}

impl JobEvent {
    /// The name of this event in a server-sent event stream.
    pub fn name(&self) -> &'static str {
        match self {
            JobEvent::State(_) => "state",
            JobEvent::Live(CallEvent::Token { .. }) => "token",
            JobEvent::Live(CallEvent::Progress { .. }) => "progress",
            JobEvent::Live(CallEvent::Output { .. }) => "output",
            JobEvent::Lagged(_) => "lagged",
            JobEvent::End(_) => "end",
        }
    }

    /// The event's data in a server-sent event stream (the job for `end`).
    pub fn data(&self) -> Value {
        match self {
            JobEvent::State(state) => json!({ "state": state }),
            JobEvent::Live(event) => serde_json::to_value(event).unwrap_or_default(),
            JobEvent::Lagged(skipped) => json!({ "skipped": skipped }),
            JobEvent::End(job) => serde_json::to_value(job).unwrap_or_default(),
        }
    }
}

/// A request about jobs that is refused: how (an outcome for the HTTP status or the wire) and
/// why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// How it was refused (`not-found`, `busy`, `bad-request`, …).
    pub outcome: Outcome,
    /// Why, and what to do.
    pub message: String,
}

impl Refused {
    fn new(outcome: Outcome, message: impl Into<String>) -> Refused {
        Refused { outcome, message: message.into() }
    }

    fn host(e: anyhow::Error) -> Refused {
        Refused::new(Outcome::HostError, format!("{e:#}"))
    }

    fn unknown(id: &str) -> Refused {
        Refused::new(Outcome::NotFound, format!("no job `{id}` here; `continuum jobs list` lists yours"))
    }
}

/// The lease of a job submitted by a peer: renewed by its holder, or the job is cancelled.
struct Lease {
    /// The peer that holds it.
    holder: String,
    /// How long a renewal lasts.
    ttl: Duration,
    /// When it lapses unless renewed.
    expires: Instant,
}

/// A job a peer submits: who holds its lease, for how long, and what it is charged.
#[derive(Debug, Clone)]
pub struct PeerSubmission {
    /// The submitting peer (its key), which renews the lease and gets the receipt.
    pub peer: String,
    /// How long a renewal lasts.
    pub lease: Duration,
    /// The price the receipt charges (this node's terms for the command).
    pub price: Price,
    /// What it reserved of its grant's budget, settled when it ends.
    pub reservation: Option<Reservation>,
}

/// A job that has not ended: its view, its events and how to stop it.
struct LiveJob {
    view: Mutex<JobView>,
    /// The last progress report (also shown in the view).
    progress: Arc<Mutex<Option<Progress>>>,
    /// The command's call tree: cancelling it stops the guest.
    watch: Arc<Watch>,
    events: broadcast::Sender<JobEvent>,
    /// Wakes a queued job so that it ends without running, or a followed remote job.
    wake: Notify,
    /// Why it was stopped, when not by its submitter's cancel.
    stop_reason: Mutex<Option<String>>,
    lease: Mutex<Option<Lease>>,
}

impl LiveJob {
    /// A live job for `view`, its events on a fresh bounded channel.
    fn new(view: JobView) -> Arc<LiveJob> {
        let (events, _) = broadcast::channel(LIVE_BUFFER);
        let progress: Arc<Mutex<Option<Progress>>> = Arc::default();
        let (sink_events, sink_progress) = (events.clone(), progress.clone());
        let sink = Arc::new(move |event: CallEvent| {
            if let CallEvent::Progress { fraction, message, .. } = &event {
                *lock(&sink_progress) = Some(Progress { fraction: *fraction, message: message.clone() });
            }
            // No follower is not an error: the event is simply not seen.
            let _ = sink_events.send(JobEvent::Live(event));
        });
        Arc::new(LiveJob {
            view: Mutex::new(view),
            progress,
            watch: Arc::new(Watch::new(Purpose::Job, Some(sink))),
            events,
            wake: Notify::new(),
            stop_reason: Mutex::new(None),
            lease: Mutex::new(None),
        })
    }

    /// The view now, with the last progress report.
    fn snapshot(&self) -> JobView {
        let mut view = lock(&self.view).clone();
        view.progress = lock(&self.progress).clone();
        view
    }

    /// Stops the job: a queued one never runs, a running one's guest traps at its next check,
    /// and one followed on a peer is cancelled there.
    fn stop(&self, reason: Option<String>) {
        if let Some(reason) = reason {
            lock(&self.stop_reason).get_or_insert(reason);
        }
        self.watch.cancel();
        self.wake.notify_one();
    }
}

/// The jobs of one node.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    host: AsyncHost,
    config: JobsSection,
    /// Compute slots: jobs running at once.
    slots: Arc<Semaphore>,
    /// Jobs waiting for a slot: the owner's, and everyone else's (a flood of others' jobs never
    /// takes the owner's place).
    queued: [AtomicUsize; 2],
    /// Bytes of parameters the waiting jobs hold.
    queued_bytes: AtomicUsize,
    live: Mutex<HashMap<String, Arc<LiveJob>>>,
}

/// A job's place in the queue, given back when dropped: when the job gets a slot or ends, and
/// on every way a submission can fail (an error, a dropped request).
struct Queued {
    inner: Arc<Inner>,
    /// Which budget it counts against (0: the owner's, 1: everyone else's).
    budget: usize,
    bytes: usize,
}

impl Queued {
    /// A place for a job of `caller` whose parameters are `bytes` long, if the queue has one.
    fn take(inner: &Arc<Inner>, caller: &Caller, bytes: usize) -> Result<Queued, Refused> {
        let budget = usize::from(*caller != Caller::Owner);
        let max = inner.config.max_queued;
        let place = Queued { inner: inner.clone(), budget, bytes };
        // Counted first, so that the drop of a refused place gives back exactly what it took.
        let waiting = inner.queued[budget].fetch_add(1, Ordering::SeqCst);
        let held = inner.queued_bytes.fetch_add(bytes, Ordering::SeqCst);
        if waiting >= max {
            return Err(Refused::new(
                Outcome::Busy,
                format!(
                    "{max} jobs are already waiting for a compute slot ([jobs] max-queued); retry when some have run"
                ),
            ));
        }
        if held + bytes > MAX_QUEUED_BYTES {
            return Err(Refused::new(
                Outcome::Busy,
                format!("waiting jobs already hold {} MiB of parameters; retry when some have run", held >> 20),
            ));
        }
        Ok(place)
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.inner.queued[self.budget].fetch_sub(1, Ordering::SeqCst);
        self.inner.queued_bytes.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// Whether `caller` may see `job`: its submitter and the owner may.
fn visible(job: &JobView, caller: &Caller) -> bool {
    *caller == Caller::Owner || job.caller == caller.id()
}

/// A new job id: 128 random bits, hex.
fn new_id() -> Result<String, Refused> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw)
        .map_err(|e| Refused::new(Outcome::HostError, format!("no randomness for a job id: {e}")))?;
    Ok(hex::encode(raw))
}

impl Jobs {
    /// The jobs of the node whose host is `host`: jobs it held when it last stopped are marked
    /// `interrupted` (and logged), and a task starts that expires old results and lapsed
    /// leases.
    pub async fn open(host: AsyncHost, config: JobsSection) -> anyhow::Result<Jobs> {
        host.run(|host| -> anyhow::Result<()> {
            let ids = store::interrupt_unfinished(&host.core().db())?;
            for id in ids {
                host.core().log().append("job.interrupted", &id, &json!({ "reason": "the node restarted" }))?;
            }
            Ok(())
        })
        .await??;
        let jobs = Jobs {
            inner: Arc::new(Inner {
                host,
                slots: Arc::new(Semaphore::new(config.running())),
                config,
                queued: Default::default(),
                queued_bytes: AtomicUsize::new(0),
                live: Mutex::new(HashMap::new()),
            }),
        };
        let weak = Arc::downgrade(&jobs.inner);
        tokio::spawn(async move {
            let mut last_expiry = Instant::now();
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(inner) = weak.upgrade() else { return };
                inner.stop_lapsed_leases();
                if last_expiry.elapsed() >= Duration::from_secs(60) {
                    last_expiry = Instant::now();
                    let keep = inner.config.keep_results_secs.saturating_mul(1000) as i64;
                    let _ =
                        inner.host.run(move |h| store::expire(&h.core().db(), continuum_core::now_ms() - keep)).await;
                }
            }
        });
        Ok(jobs)
    }

    /// How many jobs wait for a compute slot, and how many hold one.
    pub fn depth(&self) -> (usize, usize) {
        let queued = self.inner.queued.iter().map(|q| q.load(Ordering::Relaxed)).sum();
        (queued, self.inner.config.running().saturating_sub(self.inner.slots.available_permits()))
    }

    /// Compute slots: how many jobs run at once.
    pub fn slots(&self) -> usize {
        self.inner.config.running()
    }

    /// The default lease of a grid job.
    pub fn default_lease(&self) -> Duration {
        Duration::from_secs(self.inner.config.lease_secs)
    }

    /// Submits command `name` with `params` as a job of `caller`; `peer` when a peer submits
    /// it (under a lease, for a receipt). Refused `busy` when `[jobs] max-queued` jobs of the
    /// owner (or as many of everyone else) already wait, or their parameters hold
    /// [`MAX_QUEUED_BYTES`].
    pub async fn submit(
        &self,
        caller: Caller,
        command: String,
        params: Value,
        peer: Option<PeerSubmission>,
    ) -> Result<JobView, Refused> {
        let inner = &self.inner;
        let place = Queued::take(inner, &caller, serde_json::to_vec(&params).map_or(0, |p| p.len()))?;
        // Refuse at once what could never run: an unknown command, or one the caller may not call.
        let (check_caller, check_name) = (caller.clone(), command.clone());
        let known = inner.host.run(move |host| host.command_for(&check_caller, &check_name).map(|_| ())).await;
        match known {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Refused::new(e.outcome(), e.to_string())),
            Err(e) => return Err(Refused::host(e)),
        }
        let view = JobView {
            id: new_id()?,
            command,
            caller: caller.id(),
            peer: None,
            remote_id: None,
            state: JobState::Queued,
            submitted_ms: continuum_core::now_ms(),
            started_ms: None,
            finished_ms: None,
            progress: None,
            result: None,
            error: None,
            output: None,
            lease_ms: peer.as_ref().map(|p| p.lease.as_millis() as u64),
            receipt: None,
        };
        let job = LiveJob::new(view.clone());
        if let Some(submission) = &peer {
            let (holder, ttl) = (submission.peer.clone(), submission.lease);
            *lock(&job.lease) = Some(Lease { holder, ttl, expires: Instant::now() + ttl });
        }
        // Recorded and started on a task of its own: a submitter that goes away meanwhile
        // cannot leave a job recorded but never run.
        let inner = inner.clone();
        let started = tokio::spawn(async move {
            inner.record(&view, "job.submitted", json!({ "command": view.command, "caller": view.caller })).await?;
            lock(&inner.live).insert(view.id.clone(), job.clone());
            tokio::spawn(inner.clone().run_local(job, caller, params, place, peer));
            Ok(view)
        });
        started.await.map_err(|e| Refused::new(Outcome::HostError, format!("the job could not start: {e}")))?
    }

    /// Job `id` as `caller` may see it.
    pub async fn get(&self, id: &str, caller: &Caller) -> Result<JobView, Refused> {
        let live = lock(&self.inner.live).get(id).map(|j| j.snapshot());
        let view = match live {
            Some(view) => Some(view),
            None => {
                let id = id.to_string();
                self.inner
                    .host
                    .run(move |h| store::get(&h.core().db(), &id))
                    .await
                    .map_err(Refused::host)?
                    .map_err(Refused::host)?
            }
        };
        view.filter(|v| visible(v, caller)).ok_or_else(|| Refused::unknown(id))
    }

    /// The jobs `caller` may see, newest first (at most [`store::LIST_LIMIT`]).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<JobView>, Refused> {
        let own = (*caller != Caller::Owner).then(|| caller.id());
        let mut jobs = self
            .inner
            .host
            .run(move |h| store::list(&h.core().db(), own.as_deref()))
            .await
            .map_err(Refused::host)?
            .map_err(Refused::host)?;
        let live = lock(&self.inner.live);
        for job in &mut jobs {
            if let Some(l) = live.get(&job.id) {
                *job = l.snapshot();
            }
        }
        Ok(jobs)
    }

    /// Asks job `id` to stop: a queued job never runs, a running one stops within a second.
    /// Refused (`conflict`) for a job that has already ended.
    pub async fn cancel(&self, id: &str, caller: &Caller) -> Result<JobView, Refused> {
        let live = lock(&self.inner.live).get(id).cloned();
        match live {
            Some(job) if visible(&lock(&job.view), caller) => {
                job.stop(None);
                Ok(job.snapshot())
            }
            _ => {
                let job = self.get(id, caller).await?;
                Err(Refused::new(
                    Outcome::Cancelled,
                    format!("job `{id}` has already ended ({}); there is nothing to cancel", job.state.as_str()),
                ))
            }
        }
    }

    /// Renews the lease of job `id` for its holder `caller`; the job as it now is.
    pub async fn renew(&self, id: &str, caller: &Caller) -> Result<JobView, Refused> {
        let live = lock(&self.inner.live).get(id).cloned();
        if let Some(job) = live.filter(|j| visible(&lock(&j.view), caller)) {
            if let Some(lease) = lock(&job.lease).as_mut() {
                lease.expires = Instant::now() + lease.ttl;
            }
            return Ok(job.snapshot());
        }
        self.get(id, caller).await
    }

    /// Follows job `id`: its events from now on, ending with [`JobEvent::End`] (at once for a
    /// job that has ended).
    pub async fn follow(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<impl Stream<Item = JobEvent> + Send + 'static, Refused> {
        // Subscribing and reading the state under the map's lock: a job ends (its last event
        // sent, then removed) under that lock too, so a live subscriber always sees `end`.
        let subscribed = {
            let live = lock(&self.inner.live);
            live.get(id).filter(|j| visible(&lock(&j.view), caller)).map(|j| (j.snapshot(), j.events.subscribe()))
        };
        // A follower starts from the state and the last progress report.
        let (first, receiver) = match subscribed {
            Some((view, rx)) => {
                let progress = view.progress.map(|p| {
                    let command = view.command.clone();
                    JobEvent::Live(CallEvent::Progress { command, fraction: p.fraction, message: p.message })
                });
                ([Some(JobEvent::State(view.state)), progress], Some(rx))
            }
            None => ([Some(JobEvent::End(Box::new(self.get(id, caller).await?))), None], None),
        };
        Ok(follow_stream(first.into_iter().flatten().collect(), receiver))
    }
}

/// `first`, then what `receiver` delivers until the job's end (a lag becomes a `lagged` event).
fn follow_stream(
    first: Vec<JobEvent>,
    receiver: Option<broadcast::Receiver<JobEvent>>,
) -> impl Stream<Item = JobEvent> + Send + 'static {
    let done = receiver.is_none();
    let first: std::collections::VecDeque<JobEvent> = first.into();
    futures_util::stream::unfold((first, receiver, done), |(mut first, mut receiver, done)| async move {
        if let Some(event) = first.pop_front() {
            return Some((event, (first, receiver, done)));
        }
        if done {
            return None;
        }
        let rx = receiver.as_mut()?;
        match rx.recv().await {
            Ok(event) => {
                let end = matches!(event, JobEvent::End(_));
                Some((event, (first, receiver, end)))
            }
            Err(broadcast::error::RecvError::Lagged(n)) => Some((JobEvent::Lagged(n), (first, receiver, false))),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

impl Inner {
    /// Writes `view` to the jobs table and appends a `kind` entry about it to the log.
    async fn record(&self, view: &JobView, kind: &'static str, data: Value) -> Result<(), Refused> {
        let view = view.clone();
        self.host
            .run(move |host| -> anyhow::Result<()> {
                store::put(&host.core().db(), &view)?;
                host.core().log().append(kind, &view.id, &data)?;
                Ok(())
            })
            .await
            .map_err(Refused::host)?
            .map_err(Refused::host)
    }

    /// Runs a local job: waits for a slot (or a cancel) holding its `place` in the queue, runs
    /// the command under the job's watch, and records how it ended.
    async fn run_local(
        self: Arc<Self>,
        job: Arc<LiveJob>,
        caller: Caller,
        params: Value,
        place: Queued,
        peer: Option<PeerSubmission>,
    ) {
        let slot = tokio::select! {
            biased;
            () = job.wake.notified() => None,
            slot = self.slots.clone().acquire_owned() => slot.ok(),
        };
        drop(place);
        let command = lock(&job.view).command.clone();
        let Some(_slot) = slot.filter(|_| !job.watch.is_cancelled()) else {
            let cancelled = CallError::Cancelled { command };
            self.finish(&job, Err(JobError::of(&cancelled)), None).await;
            return;
        };
        let running = {
            let mut view = lock(&job.view);
            view.state = JobState::Running;
            view.started_ms = Some(continuum_core::now_ms());
            view.clone()
        };
        let _ = job.events.send(JobEvent::State(JobState::Running));
        if let Err(e) = self.record(&running, "job.started", json!({ "command": command })).await {
            tracing::warn!("job {} started but could not be recorded: {e}", running.id);
        }
        let input = hash_json(&params);
        let report = self.host.call(caller, command.clone(), params, job.watch.clone()).await;
        let mut output = String::new();
        for bytes in [&report.stdout, &report.stderr] {
            output.push_str(&strip_control(&String::from_utf8_lossy(bytes)));
        }
        let units =
            Units { calls: 1, ms: report.elapsed.as_micros().div_ceil(1000) as u64, tokens: job.watch.generated() };
        if let Some((reservation, price)) = peer.as_ref().and_then(|p| Some((p.reservation.clone()?, p.price))) {
            let settled = self
                .host
                .run(move |host| budget::settle(&host.core().db(), &reservation, price.charge(&units), units.tokens))
                .await;
            if let Err(e) = settled.and_then(|r| r) {
                tracing::warn!("job {}: cannot add its cost to its budget: {e:#}", running.id);
            }
        }
        if let (Some(peer), Ok(value)) = (peer, &report.result) {
            let work = Work {
                kind: ReceiptKind::Job,
                command,
                input,
                output: hash_json(value),
                units,
                started_ms: running.started_ms.unwrap_or_else(continuum_core::now_ms),
                job: Some(running.id.clone()),
            };
            let issued = self.host.run(move |host| market::issue(host, &peer.peer, work, peer.price)).await;
            match issued {
                Ok(Ok(receipt)) => lock(&job.view).receipt = Some(receipt),
                Ok(Err(e)) | Err(e) => tracing::warn!("job {} succeeded but its receipt failed: {e:#}", running.id),
            }
        }
        let result = report.result.map_err(|e| JobError::of(&e));
        self.finish(&job, result, (!output.is_empty()).then_some(output)).await;
    }

    /// Records how `job` ended, sends its last event and forgets it (its slot, if it held one,
    /// is freed by the caller).
    async fn finish(&self, job: &Arc<LiveJob>, result: Result<Value, JobError>, output: Option<String>) {
        let reason = lock(&job.stop_reason).clone();
        let ended = {
            let mut view = lock(&job.view);
            view.progress = lock(&job.progress).clone();
            view.finished_ms = Some(continuum_core::now_ms());
            view.output = output;
            match result {
                Ok(value) => {
                    view.state = JobState::Succeeded;
                    view.result = Some(value);
                }
                Err(mut error) => {
                    view.state = match error.code {
                        Outcome::Cancelled => JobState::Cancelled,
                        Outcome::Lost => JobState::Lost,
                        _ => JobState::Failed,
                    };
                    if let (JobState::Cancelled, Some(reason)) = (view.state, reason) {
                        error.message = format!("{}: {reason}", error.message);
                    }
                    view.error = Some(error);
                }
            }
            view.clone()
        };
        let kind = match ended.state {
            JobState::Succeeded => "job.succeeded",
            JobState::Cancelled => "job.cancelled",
            JobState::Lost => "job.lost",
            _ => "job.failed",
        };
        let outcome = ended.error.as_ref().map_or(Outcome::Ok, |e| e.code);
        if let Err(e) = self.record(&ended, kind, json!({ "command": ended.command, "outcome": outcome })).await {
            tracing::error!("job {} ended but could not be recorded: {e}", ended.id);
        }
        let mut live = lock(&self.live);
        let _ = job.events.send(JobEvent::End(Box::new(ended.clone())));
        live.remove(&ended.id);
    }

    /// Stops the jobs whose submitting peer let their lease lapse.
    fn stop_lapsed_leases(&self) {
        let now = Instant::now();
        let live: Vec<Arc<LiveJob>> = lock(&self.live).values().cloned().collect();
        for job in live {
            let lapsed = lock(&job.lease).as_ref().filter(|l| l.expires <= now).map(|l| (l.holder.clone(), l.ttl));
            if let Some((holder, ttl)) = lapsed {
                *lock(&job.lease) = None;
                job.stop(Some(format!(
                    "its submitter {} did not renew its lease of {} ms",
                    crate::grid::short(&holder),
                    ttl.as_millis()
                )));
            }
        }
    }
}
