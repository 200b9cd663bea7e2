//! Console sessions: one-time login links for the owner, sessions held by a cookie, and the
//! session token every request of a session must also carry in a header.
//!
//! Why both: cookies are not kept apart by port, so any other server on the same host name
//! (another port on 127.0.0.1) may be sent the cookie. The token is handed only to the page
//! that logged in (in the login answer) and kept in that origin's storage, which *is* per port;
//! a cookie without it, or it without the cookie (an injected script cannot read an `HttpOnly`
//! cookie), is refused.
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
/// The header every request of a session carries its token in (also its CSRF defence).
pub const CSRF_HEADER: &str = "x-continuum-csrf";
/// How long a login link may wait before it is used.
pub const LINK_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a session lasts from login (the cookie's `Max-Age` too).
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Login links waiting at once; the oldest is dropped for a new one.
pub const MAX_LINKS: usize = 16;
/// API-key sessions held at once; the oldest of them is dropped for a new one (never an owner's).
pub const MAX_SESSIONS: usize = 1024;
/// Sessions of one login (the owner, or one API key) at once; its own oldest goes first.
pub const MAX_PER_LOGIN: usize = 8;

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
    /// The token its requests must carry in [`CSRF_HEADER`].
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
    /// A request without the session's token.
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
        while links.len() >= MAX_LINKS {
            let Some(first) = links.iter().min_by_key(|(_, until)| **until).map(|(code, _)| code.clone()) else {
                break;
            };
            links.remove(&first);
        }
        links.insert(code.clone(), now + LINK_TTL);
        code
    }

    /// Uses up login `code`: whether it was issued, unused and in time.
    pub fn redeem_link(&self, code: &str) -> bool {
        lock(&self.links).remove(code).is_some_and(|until| until > Instant::now())
    }

    /// Opens a session for `login`: its id (the cookie's value) and the session. A login keeps
    /// at most [`MAX_PER_LOGIN`] sessions, and API-key sessions at most [`MAX_SESSIONS`] in all,
    /// so no client can log the owner (or another client) out by logging in often.
    pub fn open(&self, login: Login) -> (String, Session) {
        let id = random_token();
        let now = Instant::now();
        let session = Session { login, csrf: random_token(), expires: now + SESSION_TTL };
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > now);
        evict_oldest(&mut sessions, MAX_PER_LOGIN, |s| s.login == session.login);
        if session.login != Login::Owner {
            evict_oldest(&mut sessions, MAX_SESSIONS, |s| s.login != Login::Owner);
        }
        sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The session `id` names, for a request presenting `csrf` (which must be its token).
    pub fn check(&self, id: &str, csrf: Option<&str>) -> Result<Session, Refusal> {
        let mut sessions = lock(&self.sessions);
        let session = sessions.get(id).ok_or(Refusal::Unknown)?;
        if session.expires <= Instant::now() {
            sessions.remove(id);
            return Err(Refusal::Expired);
        }
        if !csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), session.csrf.as_bytes())) {
            return Err(Refusal::MissingCsrf);
        }
        Ok(session.clone())
    }

    /// Ends session `id` (logout).
    pub fn close(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }
}

/// Drops the sessions that `counted` selects, soonest to expire first, until fewer than `max`
/// of them are left.
fn evict_oldest(sessions: &mut HashMap<String, Session>, max: usize, counted: impl Fn(&Session) -> bool) {
    let mut mine: Vec<(Instant, String)> =
        sessions.iter().filter(|(_, s)| counted(s)).map(|(id, s)| (s.expires, id.clone())).collect();
    if mine.len() < max {
        return;
    }
    mine.sort();
    for (_, id) in mine.iter().take(mine.len() + 1 - max) {
        sessions.remove(id);
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
    fn a_link_works_once_and_sessions_need_their_token_on_every_request() {
        let s = Sessions::default();
        let code = s.new_link();
        assert!(s.redeem_link(&code));
        assert!(!s.redeem_link(&code), "a link is used up");
        assert!(!s.redeem_link("made-up"));
        let (id, session) = s.open(Login::Owner);
        assert_eq!(s.check(&id, None).unwrap_err(), Refusal::MissingCsrf);
        assert_eq!(s.check(&id, Some("wrong")).unwrap_err(), Refusal::MissingCsrf);
        assert!(s.check(&id, Some(&session.csrf)).is_ok());
        assert_eq!(s.check("made-up", Some(&session.csrf)).unwrap_err(), Refusal::Unknown);
        s.close(&id);
        assert_eq!(s.check(&id, Some(&session.csrf)).unwrap_err(), Refusal::Unknown);
    }

    #[test]
    fn an_expired_session_is_refused_and_forgotten() {
        let s = Sessions::default();
        let (id, session) = s.open(Login::Owner);
        lock(&s.sessions).get_mut(&id).unwrap().expires = Instant::now() - Duration::from_secs(1);
        assert_eq!(s.check(&id, Some(&session.csrf)).unwrap_err(), Refusal::Expired);
        assert_eq!(s.check(&id, Some(&session.csrf)).unwrap_err(), Refusal::Unknown);
    }

    #[test]
    fn links_and_sessions_are_bounded_and_a_client_cannot_log_the_owner_out() {
        let s = Sessions::default();
        let codes: Vec<String> = (0..MAX_LINKS + 4).map(|_| s.new_link()).collect();
        assert!(!s.redeem_link(&codes[0]), "the oldest link was dropped");
        assert!(s.redeem_link(codes.last().unwrap()));
        let (owner, owner_session) = s.open(Login::Owner);
        // One key logging in again and again only replaces its own sessions.
        for _ in 0..MAX_SESSIONS + 10 {
            s.open(Login::ApiKey("k".into()));
        }
        assert_eq!(lock(&s.sessions).len(), 1 + MAX_PER_LOGIN);
        // Many keys fill the key sessions' bound; the owner's session stays.
        for i in 0..MAX_SESSIONS + 10 {
            s.open(Login::ApiKey(format!("k{i}")));
        }
        assert_eq!(lock(&s.sessions).len(), 1 + MAX_SESSIONS);
        assert!(s.check(&owner, Some(&owner_session.csrf)).is_ok(), "a client logged the owner out");
        // The owner's own sessions are bounded too.
        for _ in 0..MAX_PER_LOGIN {
            s.open(Login::Owner);
        }
        assert_eq!(s.check(&owner, Some(&owner_session.csrf)).unwrap_err(), Refusal::Unknown);
    }
}
