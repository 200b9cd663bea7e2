//! Console sessions: one-time login links for the owner, sessions held by a cookie, and the
//! CSRF token every state-changing request of a session must carry.
//!
//! A session remembers only what logged in: the owner, or an API key (resolved again at every
//! request, so a removed key or a revoked grant ends its sessions at once). Everything lives in
//! memory: a restarted node forgets its sessions and links, and the browser logs in again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use continuum_core::sync::lock;

/// The session cookie's name.
pub const COOKIE: &str = "continuum_session";
/// The header a session's unsafe requests (POST, DELETE, …) carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-continuum-csrf";
/// How long a login link may wait before it is used.
pub const LINK_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a session lasts from login (the cookie's `Max-Age` too).
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Login links waiting at once; the oldest is dropped for a new one.
pub const MAX_LINKS: usize = 16;
/// Sessions held at once; the oldest is dropped for a new one.
pub const MAX_SESSIONS: usize = 1024;

/// Who a session logged in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The node owner (through a one-time link).
    Owner,
    /// An API key's grantee; the key is looked up at every request.
    ApiKey(String),
}

/// A session as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who logged in.
    pub login: Login,
    /// The token its unsafe requests must echo in [`CSRF_HEADER`].
    pub csrf: String,
    /// When it ends.
    pub expires: Instant,
}

/// Why a session cookie does not authenticate a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such session: never issued, logged out, dropped for newer ones, or the node restarted.
    Unknown,
    /// The session's time is up.
    Expired,
    /// An unsafe request without the session's CSRF token.
    MissingCsrf,
}

impl Refusal {
    /// What to tell the caller.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Unknown => {
                "the console session is not known here (logged out, or the node restarted): log in again"
            }
            Refusal::Expired => "the console session has expired: log in again",
            Refusal::MissingCsrf => {
                "a console request that changes something must carry the session's x-continuum-csrf header"
            }
        }
    }
}

/// The node's login links and sessions.
#[derive(Default)]
pub struct Sessions {
    /// One-time login codes → when they stop working.
    links: Mutex<HashMap<String, Instant>>,
    /// Session ids → sessions.
    sessions: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new one-time login code for the owner, valid for [`LINK_TTL`].
    pub fn new_link(&self) -> String {
        let code = random_token();
        let now = Instant::now();
        let mut links = lock(&self.links);
        links.retain(|_, until| *until > now);
        evict_oldest(&mut links, MAX_LINKS, |until| *until);
        links.insert(code.clone(), now + LINK_TTL);
        code
    }

    /// Uses up login `code`: whether it was issued, unused and in time.
    pub fn redeem_link(&self, code: &str) -> bool {
        lock(&self.links).remove(code).is_some_and(|until| until > Instant::now())
    }

    /// Opens a session for `login`: its id (the cookie's value) and the session.
    pub fn open(&self, login: Login) -> (String, Session) {
        let id = random_token();
        let now = Instant::now();
        let session = Session { login, csrf: random_token(), expires: now + SESSION_TTL };
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > now);
        evict_oldest(&mut sessions, MAX_SESSIONS, |s| s.expires);
        sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The session `id` names, for a request that is `unsafe_method` (which must present the
    /// session's CSRF token as `csrf`).
    pub fn check(&self, id: &str, unsafe_method: bool, csrf: Option<&str>) -> Result<Session, Refusal> {
        let mut sessions = lock(&self.sessions);
        let session = sessions.get(id).ok_or(Refusal::Unknown)?;
        if session.expires <= Instant::now() {
            sessions.remove(id);
            return Err(Refusal::Expired);
        }
        if unsafe_method && !csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), session.csrf.as_bytes())) {
            return Err(Refusal::MissingCsrf);
        }
        Ok(session.clone())
    }

    /// Ends session `id` (logout).
    pub fn close(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// Sessions held now (for tests of the bound).
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops the entries of `map` that end first until there is room for one more under `max`.
fn evict_oldest<V>(map: &mut HashMap<String, V>, max: usize, ends: impl Fn(&V) -> Instant) {
    while map.len() >= max {
        let Some(first) = map.iter().min_by_key(|(_, v)| ends(v)).map(|(k, _)| k.clone()) else { return };
        map.remove(&first);
    }
}

/// 32 random bytes as hex.
fn random_token() -> String {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("OS randomness");
    hex::encode(raw)
}

/// Whether `a` equals `b`, in a time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once_and_sessions_need_their_csrf_token_to_change_things() {
        let s = Sessions::default();
        let code = s.new_link();
        assert!(s.redeem_link(&code));
        assert!(!s.redeem_link(&code), "a link is used up");
        assert!(!s.redeem_link("made-up"));
        let (id, session) = s.open(Login::Owner);
        assert!(s.check(&id, false, None).is_ok());
        assert_eq!(s.check(&id, true, None).unwrap_err(), Refusal::MissingCsrf);
        assert_eq!(s.check(&id, true, Some("wrong")).unwrap_err(), Refusal::MissingCsrf);
        assert!(s.check(&id, true, Some(&session.csrf)).is_ok());
        s.close(&id);
        assert_eq!(s.check(&id, false, None).unwrap_err(), Refusal::Unknown);
    }

    #[test]
    fn links_and_sessions_are_bounded() {
        let s = Sessions::default();
        let codes: Vec<String> = (0..MAX_LINKS + 4).map(|_| s.new_link()).collect();
        assert!(!s.redeem_link(&codes[0]), "the oldest link was dropped");
        assert!(s.redeem_link(codes.last().unwrap()));
        for _ in 0..MAX_SESSIONS + 10 {
            s.open(Login::ApiKey("k".into()));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }
}
