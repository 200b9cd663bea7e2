//! Request ids: a provider runs a peer's call at most once per request id, however often the
//! request arrives (a retry after a lost answer, a resend on a fresh connection, a replay).
//! The second arrival gets the first one's answer; one arriving while the first still runs
//! waits for it. Ids are remembered for [`REMEMBER_FOR`] in memory (not across a restart),
//! at most [`MAX_PER_PEER`] per peer and [`MAX_REMEMBERED`] in all.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use continuum_core::sync::lock;
use continuum_core::Outcome;

use super::wire::Response;

/// How long a provider remembers a request id and its answer.
pub const REMEMBER_FOR: Duration = Duration::from_secs(600);
/// Most request ids remembered for one peer: its oldest answered ones are forgotten first, so
/// a peer flooding ids only forgets its own.
pub const MAX_PER_PEER: usize = 1024;
/// Most request ids remembered over all peers.
pub const MAX_REMEMBERED: usize = 16_384;
/// The largest answer kept for a later arrival; a larger one is replaced by a failure saying
/// the call ran (so a retry never runs it twice, and the memory held stays bounded).
pub const MAX_KEPT_ANSWER: usize = 64 << 10;

/// Whether `id` is a request id a peer may send: 8 to 64 letters, digits, `-` or `_`.
pub fn valid(id: &str) -> bool {
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new random request id (128 bits, hex).
pub fn fresh() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex::encode(bytes)
}

/// One remembered request.
struct Entry {
    /// What the request asked (command and parameters, hashed): the id names this request only.
    fingerprint: String,
    /// The answer once given (`None` while the first arrival runs).
    answer: watch::Receiver<Option<Response>>,
    /// When it arrived.
    at: Instant,
}

/// The request ids this node has answered, by (peer, id).
#[derive(Default)]
pub(super) struct RequestIds {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<(String, String), Entry>,
    /// Each peer's ids, oldest first.
    order: HashMap<String, VecDeque<String>>,
}

/// What to do with an arriving request.
pub(super) enum Claim {
    /// Run it; report the answer through the ticket.
    Run(Ticket),
    /// It is running or ran already: this is (or will be) its answer.
    Answered(watch::Receiver<Option<Response>>),
    /// The id was used for a different request.
    Conflict,
}

/// The first arrival's duty to record its answer (forgotten if dropped unanswered).
pub(super) struct Ticket {
    ids: Arc<RequestIds>,
    key: (String, String),
    answer: watch::Sender<Option<Response>>,
    done: bool,
}

impl RequestIds {
    /// Claims request `id` of `peer`, asking what `fingerprint` names.
    pub(super) fn claim(self: &Arc<Self>, peer: &str, id: &str, fingerprint: String) -> Claim {
        let key = (peer.to_string(), id.to_string());
        let mut state = lock(&self.state);
        let now = Instant::now();
        if let Some(entry) = state.entries.get(&key).filter(|e| now.duration_since(e.at) < REMEMBER_FOR) {
            return if entry.fingerprint == fingerprint {
                Claim::Answered(entry.answer.clone())
            } else {
                Claim::Conflict
            };
        }
        state.make_room(peer, now);
        let (answer, receiver) = watch::channel(None);
        // An expired entry under this key is replaced, not listed twice.
        if state.entries.insert(key.clone(), Entry { fingerprint, answer: receiver, at: now }).is_some() {
            if let Some(order) = state.order.get_mut(peer) {
                order.retain(|i| i != id);
            }
        }
        state.order.entry(peer.to_string()).or_default().push_back(id.to_string());
        Claim::Run(Ticket { ids: self.clone(), key, answer, done: false })
    }

    /// Forgets `key` (a request refused before it ran may be sent again and run).
    fn forget(&self, key: &(String, String)) {
        let mut state = lock(&self.state);
        state.entries.remove(key);
        if let Some(order) = state.order.get_mut(&key.0) {
            order.retain(|id| *id != key.1);
        }
    }
}

impl State {
    /// Drops expired ids, then `peer`'s oldest answered ones past its share, then anyone's
    /// oldest answered ones past the total.
    fn make_room(&mut self, peer: &str, now: Instant) {
        let expired = |e: &Entry| now.duration_since(e.at) >= REMEMBER_FOR;
        // A sweep of the whole map only when it is full (not for each id of a peer at its cap).
        if self.entries.len() >= MAX_REMEMBERED {
            self.entries.retain(|_, e| !expired(e));
            let entries = &self.entries;
            self.order.retain(|p, ids| {
                ids.retain(|id| entries.contains_key(&(p.clone(), id.clone())));
                !ids.is_empty()
            });
        }
        self.evict_oldest_of(peer, MAX_PER_PEER - 1);
        while self.entries.len() >= MAX_REMEMBERED {
            let Some(busiest) = self.order.iter().max_by_key(|(_, ids)| ids.len()).map(|(p, _)| p.clone()) else {
                break;
            };
            let keep = self.order[&busiest].len() - 1;
            if !self.evict_oldest_of(&busiest, keep) {
                break;
            }
        }
    }

    /// Forgets `peer`'s oldest answered ids until at most `keep` remain; whether any went.
    fn evict_oldest_of(&mut self, peer: &str, keep: usize) -> bool {
        let Some(ids) = self.order.get_mut(peer) else { return false };
        let mut evicted = false;
        let mut index = 0;
        while ids.len() > keep && index < ids.len() {
            let key = (peer.to_string(), ids[index].clone());
            // One still running keeps its place: its waiters need its answer.
            if self.entries.get(&key).is_some_and(|e| e.answer.borrow().is_some()) {
                self.entries.remove(&key);
                ids.remove(index);
                evicted = true;
            } else {
                index += 1;
            }
        }
        evicted
    }
}

impl Ticket {
    /// Records `answer` for later arrivals of the same id. A refusal before the call ran
    /// (denied, over budget, busy), or a call cancelled or interrupted (its caller went away,
    /// or the node stopped), is not recorded: the same id may be sent again and run.
    pub(super) fn finish(mut self, answer: &Response) {
        self.done = true;
        let rerun = matches!(
            answer,
            Response::Busy { .. }
                | Response::Failed {
                    outcome: Outcome::Denied
                        | Outcome::BudgetExhausted
                        | Outcome::Busy
                        | Outcome::Cancelled
                        | Outcome::Interrupted,
                    ..
                }
        );
        if rerun {
            self.ids.forget(&self.key);
        }
        let _ = self.answer.send(Some(kept(answer)));
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.ids.forget(&self.key);
        }
    }
}

/// What is kept of `answer` for later arrivals: itself, or past [`MAX_KEPT_ANSWER`] a failure
/// saying the call ran.
fn kept(answer: &Response) -> Response {
    let Response::Ok { value, .. } = answer else { return answer.clone() };
    let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if size <= MAX_KEPT_ANSWER {
        return answer.clone();
    }
    Response::Failed {
        outcome: Outcome::Other,
        message: format!(
            "this request id's call already ran; its answer ({size} bytes) was larger than the {MAX_KEPT_ANSWER} bytes kept for repeats — send a new id to run it again"
        ),
    }
}

/// The answer of a request that arrived again: the first arrival's, once it has one.
pub(super) async fn answer_of(mut answer: watch::Receiver<Option<Response>>) -> Response {
    loop {
        if let Some(response) = answer.borrow_and_update().clone() {
            return response;
        }
        if answer.changed().await.is_err() {
            // The first arrival went away without an answer (it did not run the call).
            return Response::Busy {
                message: "an earlier arrival of this request id ended without an answer; send it again".into(),
                retry_after_ms: super::serve::BUSY_RETRY_AFTER.as_millis() as u64,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(n: i64) -> Response {
        Response::Ok { value: serde_json::json!(n), elapsed_us: 1, receipt: None }
    }

    #[tokio::test]
    async fn an_id_runs_once_and_later_arrivals_get_its_answer() {
        let ids = Arc::new(RequestIds::default());
        let Claim::Run(ticket) = ids.claim("p", "request-1", "f".into()) else { panic!("first arrival must run") };
        let Claim::Answered(waiting) = ids.claim("p", "request-1", "f".into()) else { panic!("second must wait") };
        ticket.finish(&ok(7));
        assert_eq!(answer_of(waiting).await, ok(7));
        assert!(matches!(ids.claim("p", "request-1", "other".into()), Claim::Conflict));
        // Another peer's id is its own.
        assert!(matches!(ids.claim("q", "request-1", "f".into()), Claim::Run(_)));
    }

    #[tokio::test]
    async fn a_refusal_is_not_remembered_and_a_flood_only_forgets_the_flooders_ids() {
        let ids = Arc::new(RequestIds::default());
        let Claim::Run(ticket) = ids.claim("p", "request-2", "f".into()) else { panic!() };
        ticket.finish(&Response::Failed { outcome: Outcome::Denied, message: "no grant".into() });
        assert!(matches!(ids.claim("p", "request-2", "f".into()), Claim::Run(_)), "a denied request may run later");

        let Claim::Run(victim) = ids.claim("v", "victim-id", "f".into()) else { panic!() };
        victim.finish(&ok(1));
        for i in 0..MAX_PER_PEER * 3 {
            if let Claim::Run(t) = ids.claim("flooder", &format!("id-{i:08}"), "f".into()) {
                t.finish(&ok(0));
            }
        }
        assert!(lock(&ids.state).order["flooder"].len() <= MAX_PER_PEER);
        assert!(matches!(ids.claim("v", "victim-id", "f".into()), Claim::Answered(_)), "the victim's id was forgotten");
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid(&fresh()));
        assert!(!valid("short") && !valid("has space in it") && !valid(&"x".repeat(65)));
    }
}
