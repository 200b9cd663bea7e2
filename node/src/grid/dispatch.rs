//! Remote dispatch with quorum (SPEC §8): which peers run a call, what happens when some
//! fail, and how their answers become one result.
//!
//! - `single`: one peer; when it is unreachable or refuses, up to 3 retries (on the next
//!   matching peer) with exponential backoff capped at 5 s — only when the command is
//!   idempotent (as its WIT docs declare, else as its plugin's imports imply: its offer says).
//!   A command that changes state is asked again only of the same peer, under the same
//!   request id, which that peer runs at most once.
//! - `multi`: min 2, max 8 peers and a reducer (default `majority`); fewer than min answers →
//!   `fail`, `degraded` (reduce what came), or `wait=<duration>` (keep asking until then).
//! - `any`: every matching peer; `first-good` (default), `merge-top-k` or `union`; waits at
//!   most p95 of recent latency × 1.5, capped at 5 s.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::jobs::JobEvent;
use continuum_core::runtime::watch::EventSink;
use continuum_core::{Caller, Outcome};

use super::peers::{self, Peer};
use super::reduce::Reducer;
use super::request::unexpected;
use super::route::{self, Candidate, Policy};
use super::wire::{Request, Response};
use super::{request_ids, short, Grid, PeerError};
use crate::market::receipt::{hash_json, Expected, ReceiptKind, SignedReceipt};
use crate::market::terms::{credits, parse_credits, Price};
use crate::market::{self, Accepted};

/// How many times a countersigned receipt is offered to its provider.
const COUNTERSIGN_TRIES: u32 = 6;
/// Most requests one single-quorum call makes (over every candidate and round).
const MAX_ATTEMPTS: usize = 16;

/// Which peers a call may go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One named peer (id, id prefix or name).
    Peer(String),
    /// Any peer offering the command.
    Any,
    /// All peers offering the command.
    All,
}

impl Target {
    /// Parses `--on`: `any`, `all`, or a peer.
    pub fn parse(text: &str) -> Target {
        match text {
            "any" => Target::Any,
            "all" => Target::All,
            peer => Target::Peer(peer.to_string()),
        }
    }
}

/// How many peers must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Quorum {
    /// One peer (the default).
    #[default]
    Single,
    /// Several, reduced into one result.
    Multi,
    /// All that answer within an adaptive bound.
    Any,
}

/// What to do when fewer than `min` peers answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnderMin {
    /// Fail the call.
    Fail,
    /// Reduce what arrived and mark the result degraded.
    Degraded,
    /// Keep asking (failed peers again, and newly offering ones) until this long after the start.
    Wait(Duration),
}

impl UnderMin {
    /// Parses `fail`, `degraded` (or `proceed-degraded`), `wait=5s`.
    pub fn parse(text: &str) -> Result<UnderMin> {
        Ok(match text {
            "fail" => UnderMin::Fail,
            "degraded" | "proceed-degraded" => UnderMin::Degraded,
            t => match t.strip_prefix("wait=") {
                Some(d) => UnderMin::Wait(humantime::parse_duration(d).map_err(|e| anyhow::anyhow!("`{d}`: {e}"))?),
                None => bail!("unknown --if-under-min `{t}`; use fail, degraded, or wait=<duration> (wait=5s)"),
            },
        })
    }
}

/// A remote call as the caller asked for it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GridCall {
    /// The command.
    pub command: String,
    /// Its parameters.
    #[schema(value_type = serde_json::Value)]
    pub params: Value,
    /// `any`, `all`, or a peer.
    #[serde(default = "any")]
    pub on: String,
    /// single, multi or any.
    #[serde(default)]
    pub quorum: Quorum,
    /// Fewest answers (multi: default 2).
    #[serde(default)]
    pub min: Option<usize>,
    /// Most peers asked (multi: default 8).
    #[serde(default)]
    pub max: Option<usize>,
    /// Reducer name or command (multi: majority; any: first-good).
    #[serde(default)]
    pub reduce: Option<String>,
    /// `k` of merge-top-k.
    #[serde(default)]
    pub k: Option<usize>,
    /// fail, degraded, or wait=<duration>.
    #[serde(default)]
    pub if_under_min: Option<String>,
    /// A grant token to present (default: the one stored with the peer).
    #[serde(default)]
    pub grant: Option<String>,
    /// Per-peer time limit in milliseconds (default 30000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// With `on: any|all`, also dispatch to nodes that are not peers (known only from gossiped
    /// offers, which then see the parameters). Off unless asked for in so many words.
    #[serde(default)]
    pub strangers: bool,
    /// How the peers offering the command are ordered: fastest (default), cheapest or least-loaded.
    #[serde(default)]
    pub route: Option<String>,
    /// The most a call may be expected to cost, in credits (`0.5`); dearer peers are skipped.
    #[serde(default)]
    pub max_price: Option<String>,
    /// An id for this call (8–64 letters, digits, `-`, `_`): a peer runs a call at most once per
    /// id, so a call sent again with the same id (a retry, or the same command line run twice)
    /// gets the first answer instead of running again. New and random when absent.
    #[serde(default)]
    pub request_id: Option<String>,
}

fn any() -> String {
    "any".into()
}

/// One peer's part in a call.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// The peer.
    pub peer: String,
    /// `ok`, or how the request failed.
    pub outcome: Outcome,
    /// The error message, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Round-trip time in microseconds.
    pub us: u64,
    /// The receipt the peer issued, countersigned by this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// What it cost, in millicredits (with a countersigned receipt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millicredits: Option<u64>,
    /// Why this node disputed the peer's receipt (and did not countersign it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute: Option<String>,
    /// How the connection went after the request: `direct`, `relay` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A remote call's result: the value, which peers contributed, and every attempt.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GridResult {
    /// The (reduced) result.
    #[schema(value_type = serde_json::Value)]
    pub value: Value,
    /// Peers whose answers were used (and are credited).
    pub contributors: Vec<String>,
    /// The reducer that combined the answers (none for a single answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reducer: Option<String>,
    /// Fewer than `min` answered and the caller accepted that.
    pub degraded: bool,
    /// How the peers were ordered, and why the first was chosen (`on: any|all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Every request made, in order.
    pub attempts: Vec<Attempt>,
}

/// Why a remote call produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GridError {
    /// The request itself is wrong (unknown reducer, bad option).
    #[error("{0}")]
    Invalid(String),
    /// No known peer offers the command.
    #[error("no peer offers `{command}`{hint}")]
    NoPeer {
        /// The command asked for.
        command: String,
        /// What to do about it, appended to the message.
        hint: String,
    },
    /// The command ran and returned its error, or the peer refused (not retried).
    #[error("{error}")]
    Peer {
        /// Why the peer's request failed.
        error: PeerError,
        /// Every request made, in order.
        attempts: Vec<Attempt>,
    },
    /// Not enough peers answered.
    #[error("{message}")]
    Quorum {
        /// What fell short (or why the answers could not be reduced).
        message: String,
        /// Every request made, in order.
        attempts: Vec<Attempt>,
    },
}

impl GridError {
    /// How the call ended.
    pub fn outcome(&self) -> Outcome {
        match self {
            GridError::Invalid(_) => Outcome::InvalidParams,
            GridError::NoPeer { .. } => Outcome::NoPeer,
            GridError::Peer { error, .. } => error.outcome(),
            GridError::Quorum { .. } => Outcome::Quorum,
        }
    }
}

/// `--max-price` in millicredits.
fn max_price(call: &GridCall) -> Result<Option<u64>, GridError> {
    call.max_price
        .as_deref()
        .map(|p| parse_credits(p.trim_end_matches("credits").trim()))
        .transpose()
        .map_err(|e| GridError::Invalid(format!("--max-price: {e:#}")))
}

/// A request the caller got wrong.
fn invalid(e: anyhow::Error) -> GridError {
    GridError::Invalid(format!("{e:#}"))
}

/// Who may run a call, in the order they are asked.
struct Plan {
    candidates: Vec<Peer>,
    idempotent: bool,
    /// Why they are in this order (with `on: any|all`).
    route: Option<String>,
    /// Each candidate's price for the command, as its offer states (by peer id).
    terms: HashMap<String, Price>,
}

impl Grid {
    /// Runs `call` on peers per its quorum, logs it, and returns the result with its
    /// contributors. With `live`, a single-quorum call streams the peer's live events (tokens,
    /// progress, output) there as they arrive.
    pub async fn call(&self, call: &GridCall, live: Option<&EventSink>) -> Result<GridResult, GridError> {
        let started = Instant::now();
        if let Some(id) = call.request_id.as_deref().filter(|id| !request_ids::valid(id)) {
            return Err(GridError::Invalid(format!(
                "request id `{id}`: use 8 to 64 letters, digits, `-` or `_` (or leave it out for a new random one)"
            )));
        }
        // Every request of this call carries one id, so a peer that gets it twice runs it once.
        let mut call = call.clone();
        call.request_id.get_or_insert_with(request_ids::fresh);
        let call = &call;
        let result = self.dispatch(call, live).await;
        let (outcome, peers) = match &result {
            Ok(r) => (Outcome::Ok, r.contributors.clone()),
            Err(e) => (e.outcome(), vec![]),
        };
        let route = result.as_ref().ok().and_then(|r| r.route.clone());
        let payload = json!({
            "quorum": call.quorum, "on": call.on, "contributors": peers, "outcome": outcome,
            "ms": started.elapsed().as_millis() as u64, "route": route,
        });
        let command = call.command.clone();
        let logged = self.host().run(move |host| host.core().log().append("grid.call", &command, &payload)).await;
        if let Err(e) = logged.and_then(|appended| appended) {
            tracing::warn!("cannot log a grid call: {e:#}");
        }
        result
    }

    async fn dispatch(&self, call: &GridCall, live: Option<&EventSink>) -> Result<GridResult, GridError> {
        let timeout = Duration::from_millis(call.timeout_ms.unwrap_or(30_000).clamp(1, 600_000));
        let under_min = UnderMin::parse(call.if_under_min.as_deref().unwrap_or("fail")).map_err(invalid)?;
        let k = call.k.unwrap_or(10);
        match call.quorum {
            Quorum::Single => {
                if call.reduce.is_some() {
                    return Err(GridError::Invalid("--reduce needs --quorum multi or any".into()));
                }
                self.single(call, timeout, live).await
            }
            Quorum::Multi => {
                let reducer = Reducer::parse(call.reduce.as_deref().unwrap_or("majority"), k).map_err(invalid)?;
                let min = call.min.unwrap_or(2).max(1);
                let max = call.max.unwrap_or(8).max(min);
                self.fan_out(call, reducer, min, max, under_min, timeout, None).await
            }
            Quorum::Any => {
                let reducer = Reducer::parse(call.reduce.as_deref().unwrap_or("first-good"), k).map_err(invalid)?;
                if !matches!(reducer, Reducer::FirstGood | Reducer::MergeTopK(_) | Reducer::Union) {
                    return Err(GridError::Invalid(format!(
                        "any-quorum reduces with first-good, merge-top-k or union, not {}",
                        reducer.name()
                    )));
                }
                let bound =
                    self.latency_p95().map_or(Duration::from_secs(5), |p| (p * 3 / 2).max(Duration::from_millis(50)));
                let bound = bound.min(Duration::from_secs(5)).min(timeout);
                let min = call.min.unwrap_or(1).max(1);
                self.fan_out(call, reducer, min, usize::MAX, under_min, bound, Some(bound)).await
            }
        }
    }

    /// The peers that may run `call`, in the order its route policy gives, and whether its
    /// command is idempotent.
    async fn plan(&self, call: &GridCall) -> Result<Plan, GridError> {
        let policy = call.route.as_deref().map(Policy::parse).transpose().map_err(GridError::Invalid)?;
        let max_price = max_price(call)?;
        let known = self.peers().await.map_err(invalid)?;
        let offers = self.offers();
        let offered = |id: &str| {
            offers.iter().find(|k| k.offer.node == id).and_then(|k| {
                let idempotent = k.offer.idempotent(&call.command);
                k.offer.command(&call.command).map(|(_, c)| (idempotent, c.price, k.offer.capacity.clone()))
            })
        };
        let mut terms = HashMap::new();
        let (candidates, idempotent, route) = match Target::parse(&call.on) {
            Target::Peer(key) => {
                let peer = peers::find_in(&known, &key).map_err(invalid)?;
                let offer = offered(&peer.id);
                if let Some((_, price, _)) = offer {
                    if let Some(max) = max_price.filter(|max| price.estimate(0) > *max) {
                        return Err(GridError::Invalid(format!(
                            "{} asks {price} for `{}`, more than --max-price {} credits",
                            short(&peer.id),
                            call.command,
                            credits(max)
                        )));
                    }
                    terms.insert(peer.id.clone(), price);
                }
                (vec![peer], offer.is_some_and(|(i, _, _)| i), None)
            }
            Target::Any | Target::All => {
                // Every peer whose offer has the command; nodes known only through gossip
                // too when the caller said `strangers`.
                let me = self.id();
                let peer_ids: std::collections::HashSet<&str> = known.iter().map(|p| p.id.as_str()).collect();
                let mut idem = true;
                let mut matching = Vec::new();
                for k in offers.iter().filter(|k| k.offer.node != me) {
                    if !call.strangers && !peer_ids.contains(k.offer.node.as_str()) {
                        continue;
                    }
                    let Some((i, price, capacity)) = offered(&k.offer.node) else { continue };
                    let Ok(peer) = self.reach_among(&known, &k.offer.node) else { continue };
                    idem &= i;
                    terms.insert(peer.id.clone(), price);
                    let latency = self.inner.latencies.median_of(&peer.id);
                    matching.push(Candidate { peer, capacity, price, latency });
                }
                if matching.is_empty() {
                    (Vec::new(), false, None)
                } else {
                    let (ranked, reason) = route::rank(policy.unwrap_or_default(), max_price, matching)
                        .map_err(|why| GridError::NoPeer { command: call.command.clone(), hint: format!(": {why}") })?;
                    (ranked.into_iter().map(|c| c.peer).collect(), idem, Some(reason))
                }
            }
        };
        if candidates.is_empty() {
            return Err(GridError::NoPeer {
                command: call.command.clone(),
                hint: if known.is_empty() {
                    "; no peers are known — add one with `continuum peer add <node-id>@<ip:port>`".into()
                } else {
                    format!(" among the {} known peers; `continuum offers` lists what they offer", known.len())
                },
            });
        }
        Ok(Plan { candidates, idempotent, route, terms })
    }

    /// The peer a job of `command` goes to when submitted `on` a peer or `any` (the first that
    /// offers it, as a single-quorum call would choose; nodes known only from gossip when
    /// `strangers`).
    pub async fn job_peer(&self, command: &str, on: &str, strangers: bool) -> Result<Peer, GridError> {
        if on == "all" {
            return Err(GridError::Invalid("a job runs on one peer: name one, or `any`".into()));
        }
        let call = GridCall {
            command: command.to_string(),
            params: Value::Null,
            on: on.to_string(),
            quorum: Quorum::Single,
            min: None,
            max: None,
            reduce: None,
            k: None,
            if_under_min: None,
            grant: None,
            timeout_ms: None,
            strangers,
            route: None,
            max_price: None,
            request_id: None,
        };
        Ok(self.plan(&call).await?.candidates.swap_remove(0))
    }

    /// Asks `peer` to run `call` (whose offer stated `terms`); with `live`, the call's live
    /// events are streamed there. The peer's receipt is checked, countersigned and sent back,
    /// or disputed.
    async fn ask(
        &self,
        peer: &Peer,
        call: &GridCall,
        terms: Option<Price>,
        timeout: Duration,
        live: Option<&EventSink>,
    ) -> (Attempt, Result<Value, PeerError>) {
        let grant = call.grant.clone().or_else(|| peer.grant.clone());
        let request = Request::Call {
            command: call.command.clone(),
            params: call.params.clone(),
            grant,
            deadline_ms: timeout.as_millis() as u64,
            stream: live.is_some(),
            request_id: call.request_id.clone(),
            node_set: self.carried_node_set(),
        };
        let started = Instant::now();
        let sent_ms = continuum_core::now_ms();
        let answer = match live {
            None => self.request(peer, &request, timeout).await,
            Some(sink) => {
                let relay = |event: JobEvent| {
                    if let JobEvent::Live(event) = event {
                        sink(event)
                    }
                };
                self.request_streamed(peer, &request, Some(timeout), relay).await
            }
        };
        let answered_ms = continuum_core::now_ms();
        let (result, receipt) = match answer {
            Ok(Response::Ok { value, receipt, .. }) => (Ok(value), receipt),
            Ok(other) => (Err(unexpected(peer, &other)), None),
            Err(e) => (Err(e), None),
        };
        let mut attempt = Attempt {
            peer: peer.id.clone(),
            outcome: result.as_ref().map_or_else(PeerError::outcome, |_| Outcome::Ok),
            error: result.as_ref().err().map(|e| e.to_string()),
            us: started.elapsed().as_micros() as u64,
            receipt: None,
            millicredits: None,
            dispute: None,
            path: self.path_to(&peer.id).map(String::from),
        };
        if let (Some(signed), Ok(value)) = (receipt, &result) {
            let expected = Expected {
                provider: peer.id.clone(),
                caller: self.id(),
                kind: ReceiptKind::Call,
                command: call.command.clone(),
                input: hash_json(&call.params),
                output: hash_json(value),
                terms,
                max_millicredits: max_price(call).ok().flatten(),
                sent_ms,
                answered_ms,
            };
            match self.settle(peer, signed, expected).await {
                Ok(Accepted::Countersigned(signed)) => {
                    let receipt = signed.verify().ok();
                    attempt.receipt = receipt.as_ref().map(|r| r.id.clone());
                    attempt.millicredits = receipt.map(|r| r.millicredits);
                }
                Ok(Accepted::Disputed(reason)) => attempt.dispute = Some(reason),
                Err(e) => tracing::warn!("cannot record the receipt of {}: {e:#}", short(&peer.id)),
            }
        }
        (attempt, result)
    }

    /// Checks a peer's receipt and records it: countersigned (and sent back to the peer in the
    /// background) or disputed.
    pub(crate) async fn settle(&self, peer: &Peer, signed: SignedReceipt, expected: Expected) -> Result<Accepted> {
        let accepted = self.host().run(move |host| market::accept(host, signed, &expected)).await??;
        if let Accepted::Countersigned(receipt) = &accepted {
            let (grid, peer, request) = (self.clone(), peer.clone(), Request::Countersign { receipt: receipt.clone() });
            // In the background, and again while the peer is busy or away (a replay is harmless).
            tokio::spawn(async move {
                let mut wait = Duration::from_millis(200);
                for attempt in 1..=COUNTERSIGN_TRIES {
                    match grid.request(&peer, &request, Duration::from_secs(10)).await {
                        Ok(_) => return,
                        Err(e) if attempt < COUNTERSIGN_TRIES && (e.retryable() || e.not_run()) => {
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(5));
                        }
                        Err(e) => {
                            tracing::warn!("could not hand {} its countersigned receipt: {e}", short(&peer.id));
                            return;
                        }
                    }
                }
            });
        }
        Ok(accepted)
    }

    async fn single(
        &self,
        call: &GridCall,
        timeout: Duration,
        live: Option<&EventSink>,
    ) -> Result<GridResult, GridError> {
        // Once a peer's live events have reached the caller, a retry would show them twice.
        let relayed = Arc::new(AtomicBool::new(false));
        let live: Option<EventSink> = live.map(|sink| {
            let (sink, relayed) = (sink.clone(), relayed.clone());
            Arc::new(move |event| {
                relayed.store(true, Ordering::Relaxed);
                sink(event)
            }) as EventSink
        });
        let live = live.as_ref();
        let mut attempts = Vec::new();
        let mut backoff = Duration::from_millis(200);
        let mut tries = 0;
        // Peers that failed since the last wait: the next try goes to another one.
        let mut avoid: HashSet<String> = HashSet::new();
        // A peer that may have run a call that changes state: asked again (the request id makes
        // it run once), never another peer.
        let mut pinned: Option<String> = None;
        loop {
            let plan = self.plan(call).await?;
            let peer = match &pinned {
                Some(id) => match plan.candidates.iter().find(|p| p.id == *id) {
                    Some(peer) => peer.clone(),
                    None => {
                        let message = format!(
                            "it stopped offering `{}` while a call that changes state was being asked again; not sent to another peer",
                            call.command
                        );
                        return Err(GridError::Peer {
                            error: PeerError::Unreachable { peer: short(id), message },
                            attempts,
                        });
                    }
                },
                None => plan.candidates.iter().find(|p| !avoid.contains(&p.id)).unwrap_or(&plan.candidates[0]).clone(),
            };
            let terms = plan.terms.get(&peer.id).copied();
            let (attempt, result) = self.ask(&peer, call, terms, timeout, live).await;
            attempts.push(attempt);
            let untried = plan.candidates.iter().any(|p| p.id != peer.id && !avoid.contains(&p.id));
            match result {
                Ok(value) => {
                    return Ok(GridResult {
                        value,
                        contributors: vec![peer.id.clone()],
                        reducer: None,
                        degraded: false,
                        route: plan.route,
                        attempts,
                    })
                }
                // Busy, or never reached: the peer did not run it, so the next may, whatever
                // the command does; once every candidate has refused, wait and go round again.
                Err(e)
                    if e.not_run()
                        && (untried || tries < 3)
                        && attempts.len() < MAX_ATTEMPTS
                        && !relayed.load(Ordering::Relaxed) =>
                {
                    avoid.insert(peer.id.clone());
                    if !untried {
                        tries += 1;
                        avoid.clear();
                        let wait = match &e {
                            PeerError::Busy { retry_after_ms, .. } => Duration::from_millis(*retry_after_ms),
                            _ => backoff,
                        };
                        tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                Err(e) if e.retryable() && plan.idempotent && tries < 3 && !relayed.load(Ordering::Relaxed) => {
                    tries += 1;
                    avoid.insert(peer.id.clone());
                    if !untried {
                        avoid.clear();
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                // Lost on the way: the same peer again, under the same request id.
                Err(e) if lost(&e) && !plan.idempotent && tries < 3 && !relayed.load(Ordering::Relaxed) => {
                    tries += 1;
                    pinned = Some(peer.id.clone());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    let error = match (&error, plan.idempotent) {
                        (e, false) if lost(e) => PeerError::Unreachable {
                            peer: short(&peer.id),
                            message: format!(
                                "{e}; `{}` changes state (not idempotent), so it was asked of this peer only, {} times under request id {}, never of another peer",
                                call.command,
                                tries + 1,
                                call.request_id.as_deref().unwrap_or("-")
                            ),
                        },
                        _ => error,
                    };
                    return Err(GridError::Peer { error, attempts });
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fan_out(
        &self,
        call: &GridCall,
        reducer: Reducer,
        min: usize,
        max: usize,
        under_min: UnderMin,
        timeout: Duration,
        collect_for: Option<Duration>,
    ) -> Result<GridResult, GridError> {
        let started = Instant::now();
        let wait_until = match under_min {
            UnderMin::Wait(d) => Some(started + d),
            _ => None,
        };
        let mut attempts = Vec::new();
        let mut answers: Vec<(String, Value)> = Vec::new();
        let mut route;
        loop {
            let plan = self.plan(call).await?;
            let asked: Vec<Peer> = plan
                .candidates
                .into_iter()
                .filter(|p| !answers.iter().any(|(id, _)| *id == p.id))
                .take(max.saturating_sub(answers.len()))
                .collect();
            route = plan.route.clone();
            let mut set = JoinSet::new();
            for peer in asked {
                let grid = self.clone();
                let call = call.clone();
                let terms = plan.terms.get(&peer.id).copied();
                set.spawn(async move { grid.ask(&peer, &call, terms, timeout, None).await });
            }
            let deadline = collect_for.map(|d| tokio::time::Instant::now() + d);
            loop {
                let next = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, set.join_next()).await {
                        Ok(n) => n,
                        Err(_) => break,
                    },
                    None => set.join_next().await,
                };
                let Some(Ok((attempt, result))) = next else { break };
                let peer = attempt.peer.clone();
                attempts.push(attempt);
                if let Ok(value) = result {
                    answers.push((peer, value));
                    if reducer == Reducer::FirstGood {
                        break;
                    }
                }
            }
            set.abort_all();
            if answers.len() >= min {
                break;
            }
            match (under_min, wait_until) {
                // Waits out the whole bound: the caller asked for that long.
                (UnderMin::Wait(_), Some(until)) if Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(250).min(until.saturating_duration_since(Instant::now())))
                        .await;
                }
                (UnderMin::Degraded, _) if !answers.is_empty() => {
                    let mut result = self.reduce(&reducer, &answers, attempts).await?;
                    result.degraded = true;
                    result.route = route;
                    return Ok(result);
                }
                _ => {
                    let failures: Vec<String> = attempts
                        .iter()
                        .filter_map(|a| a.error.as_ref().map(|e| format!("{}: {e}", short(&a.peer))))
                        .collect();
                    return Err(GridError::Quorum {
                        message: format!(
                            "only {} of the {min} answers needed for `{}` arrived{}{}",
                            answers.len(),
                            call.command,
                            if let UnderMin::Wait(d) = under_min {
                                format!(" within {}", humantime::format_duration(d))
                            } else {
                                String::new()
                            },
                            if failures.is_empty() { String::new() } else { format!(" ({})", failures.join("; ")) }
                        ),
                        attempts,
                    });
                }
            }
        }
        let mut result = self.reduce(&reducer, &answers, attempts).await?;
        result.route = route;
        Ok(result)
    }

    async fn reduce(
        &self,
        reducer: &Reducer,
        answers: &[(String, Value)],
        attempts: Vec<Attempt>,
    ) -> Result<GridResult, GridError> {
        let (value, contributors) = match reducer {
            Reducer::Command(command) => {
                let results: Vec<Value> = answers.iter().map(|(p, v)| json!({ "peer": p, "value": v })).collect();
                let (command, params) = (command.clone(), json!({ "results": results }));
                let report = self.host().call(Caller::owner(), command, params, Default::default()).await;
                let result = report.result.map_err(|e| e.to_string());
                let value = result.map_err(|e| GridError::Quorum {
                    message: format!("the reducer command failed: {e}"),
                    attempts: attempts.clone(),
                })?;
                (value, answers.iter().map(|(p, _)| p.clone()).collect())
            }
            r => r.reduce(answers).map_err(|e| GridError::Quorum {
                message: format!("cannot reduce with {}: {e:#}", r.name()),
                attempts: attempts.clone(),
            })?,
        };
        Ok(GridResult { value, contributors, reducer: Some(reducer.name()), degraded: false, route: None, attempts })
    }
}

/// Whether a request may have reached the peer and its answer been lost on the way back.
fn lost(e: &PeerError) -> bool {
    e.retryable() && matches!(e.outcome(), Outcome::Unreachable | Outcome::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_min_policies_parse() {
        assert_eq!(UnderMin::parse("wait=2s").unwrap(), UnderMin::Wait(Duration::from_secs(2)));
        assert_eq!(UnderMin::parse("proceed-degraded").unwrap(), UnderMin::Degraded);
        assert!(UnderMin::parse("later").unwrap_err().to_string().contains("wait=<duration>"));
        assert_eq!(Target::parse("all"), Target::All);
    }
}
