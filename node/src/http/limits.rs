//! What a request may cost before a handler sees it: its body's size and arrival time, its
//! principal's share of the concurrent request slots, the unauthenticated body reads of each
//! client address, and the `Host` header a TCP request must carry.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use super::error::ApiError;
use super::principal::{Principal, Transport};
use super::App;
use continuum_core::Outcome;

/// How long a client may take to send a request body (after its headers).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Unauthenticated body reads in progress at once, over all clients.
pub const MAX_UNAUTHENTICATED: usize = 64;
/// Unauthenticated body reads in progress at once from one address.
pub const MAX_UNAUTHENTICATED_PER_ADDRESS: usize = 16;
/// Signed-request nonces remembered at once (each for [`crate::auth::MAX_AGE_SECS`]).
pub const MAX_REMEMBERED_NONCES: usize = 1 << 20;
/// How long a request waits for a slot of its principal's budget before it is answered `busy`.
const SLOT_WAIT: Duration = Duration::from_secs(10);

/// Refuses a request whose declared body is over the limit before reading any of it (a client
/// that sent `Expect: 100-continue` then never sends the body).
pub(super) async fn refuse_oversized(
    State(app): State<App>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let declared = header_text(request.headers(), "content-length").and_then(|n| n.parse::<u64>().ok());
    match declared {
        Some(bytes) if bytes > app.max_body as u64 => Err(ApiError::new(
            Outcome::TooLarge,
            format!("the body is {bytes} bytes, over the node's limit of {} (`serve --max-body`)", app.max_body),
        )),
        _ => Ok(next.run(request).await),
    }
}

/// A slot in `principal`'s budget (the owner's slots, or the other callers'), waiting at most
/// `SLOT_WAIT`; none when the node is at its limit.
pub(crate) async fn slot(app: &App, principal: Option<&Principal>) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let slots = match principal {
        Some(Principal::Owner) => &app.owner_slots,
        _ => &app.client_slots,
    };
    tokio::time::timeout(SLOT_WAIT, slots.clone().acquire_owned()).await.ok()?.ok()
}

/// Runs the request in its principal's budget.
pub(super) async fn limit_concurrency(State(app): State<App>, request: Request, next: Next) -> Response {
    match slot(&app, request.extensions().get::<Principal>()).await {
        Some(_permit) => next.run(request).await,
        None => ApiError::busy("the node is at its concurrent request limit; retry shortly").into_response(),
    }
}

/// Refuses a TCP request whose `Host` is not this node's: only `localhost` or an IP literal,
/// with the served port. A page that rebinds its own DNS name to loopback cannot reach the API
/// from a browser, since its requests carry that name.
pub(super) async fn check_host(State(app): State<App>, request: Request, next: Next) -> Result<Response, ApiError> {
    if request.extensions().get::<Transport>() == Some(&Transport::Socket) {
        return Ok(next.run(request).await);
    }
    let host = header_text(request.headers(), "host").unwrap_or("");
    if !host_is_ours(host, app.http_port) {
        return Err(ApiError::new(
            Outcome::WrongHost,
            format!(
                "this node answers only to Host `127.0.0.1:{0}`, `localhost:{0}` or another IP literal with port {0}, not `{1}`",
                app.http_port,
                continuum_core::terminal::strip_control(host)
            ),
        ));
    }
    Ok(next.run(request).await)
}

/// Whether a `Host` header names this node: `localhost` or an IP literal, at `port`.
fn host_is_ours(host: &str, port: u16) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else { return false };
    if authority.port_u16() != Some(port) {
        return false;
    }
    let name = authority.host().trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

/// One unauthenticated body read: holds a slot of the global budget and of its address's.
pub(super) struct UnauthenticatedRead {
    app: App,
    address: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl UnauthenticatedRead {
    /// Takes a slot for `address`, or says why not (never waits: a flood is refused at once).
    pub(super) fn start(app: &App, address: IpAddr) -> Result<UnauthenticatedRead, ApiError> {
        let permit = app
            .unauthenticated
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::busy("too many unauthenticated requests are being read; retry shortly"))?;
        let mut reading = continuum_core::sync::lock(&app.reading);
        let count = reading.entry(address).or_default();
        if *count >= MAX_UNAUTHENTICATED_PER_ADDRESS {
            return Err(ApiError::busy(
                "too many unauthenticated requests from this address are being read; retry shortly",
            ));
        }
        *count += 1;
        Ok(UnauthenticatedRead { app: app.clone(), address, _permit: permit })
    }
}

impl Drop for UnauthenticatedRead {
    fn drop(&mut self) {
        let mut reading = continuum_core::sync::lock(&self.app.reading);
        if let Some(count) = reading.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                reading.remove(&self.address);
            }
        }
    }
}

/// Reads a whole body of at most `limit` bytes within [`BODY_TIMEOUT`].
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::new(Outcome::TooLarge, format!("the body is over {limit} bytes (or was cut off)"))),
        Err(_) => Err(ApiError::new(
            Outcome::Timeout,
            format!("the body did not arrive within {} s of the headers", BODY_TIMEOUT.as_secs()),
        )),
    }
}

/// A header's value, if present and text.
pub(super) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
