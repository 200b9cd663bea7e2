//! Routes over this node's event log: a page of entries, or new entries as they are committed
//! (server-sent events). Owner only.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::{Extension, Json};
use futures_util::Stream;

use super::error::{ApiError, ErrorBody};
use super::principal::Principal;
use super::types::EventQuery;
use super::App;
use crate::async_host::AsyncHost;
use continuum_core::eventlog::transfer::{self, UsageBucket};
use continuum_core::eventlog::{self, chain::Entry};

/// Entries read from the log per trip to the call pool while streaming.
const STREAM_BATCH: u64 = 500;
/// How long the stream waits before looking for new entries when there were none.
const STREAM_POLL: Duration = Duration::from_millis(200);

/// Whether an entry of `kind` passes `filter`: none, an exact kind, or a prefix ending in `.`.
fn kind_matches(filter: &Option<String>, kind: &str) -> bool {
    match filter {
        None => true,
        Some(f) if f.ends_with('.') => kind.starts_with(f.as_str()),
        Some(f) => kind == f,
    }
}

/// This node's log entries (owner only).
#[utoipa::path(get, path = "/v1/events", params(EventQuery), responses((status = 200, body = [Entry]), (status = 403, body = ErrorBody)))]
pub(super) async fn list_events(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    p.require_owner()?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let entries = app
        .host
        .run(move |host| eventlog::entries(&*host.core().log_db()?, q.after.unwrap_or(0), q.kind.as_deref(), limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(entries))
}

/// Whether the log verifies, and where it first breaks if not.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// The node whose log this is.
    pub node: String,
    /// Whether every entry, checkpoint and the signed head check out.
    pub ok: bool,
    /// Entries checked (when it verifies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// Signed checkpoints checked (when it verifies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<u64>,
    /// The first bad sequence number (when it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Verifies this node's log: the hash chain, every signed checkpoint and the signed head kept
/// outside the database, as `continuum events verify` does (owner only).
#[utoipa::path(get, path = "/v1/events/verify", responses((status = 200, body = Verification), (status = 403, body = ErrorBody)))]
pub(super) async fn verify_events(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Verification>, ApiError> {
    p.require_owner()?;
    let (node, verified) = app
        .host
        .run(|host| -> anyhow::Result<_> {
            let core = host.core();
            let node = core.log().node().to_string();
            let head = eventlog::head_file::path_for(&core.data().database());
            let verified = eventlog::verify_with_head(&*core.log_db()?, &node, &head)?;
            Ok((node, verified))
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let none = Verification { node, ok: false, entries: None, checkpoints: None, first_bad_seq: None, problem: None };
    Ok(Json(match verified {
        Ok(v) => Verification { ok: true, entries: Some(v.entries), checkpoints: Some(v.checkpoints), ..none },
        Err(broken) => Verification { first_bad_seq: Some(broken.seq), problem: Some(broken.problem), ..none },
    }))
}

/// The window of a usage series.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(super) struct SeriesQuery {
    /// How far back, in minutes (default 60, at most 30 days).
    minutes: Option<u32>,
    /// How many buckets (default 30, 1 to 500).
    buckets: Option<usize>,
}

/// Calls, failures, latency and credits over time, from the log (owner only): the console's
/// usage charts.
#[utoipa::path(get, path = "/v1/usage/series", params(SeriesQuery), responses((status = 200, body = [UsageBucket]), (status = 403, body = ErrorBody)))]
pub(super) async fn usage_series(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<Vec<UsageBucket>>, ApiError> {
    p.require_owner()?;
    let minutes = i64::from(q.minutes.unwrap_or(60).clamp(1, 30 * 24 * 60));
    let buckets = q.buckets.unwrap_or(30).clamp(1, 500);
    let bucket_ms = (minutes * 60_000 / buckets as i64).max(1);
    let series = app
        .host
        .run(move |host| {
            let core = host.core();
            let node = core.log().node().to_string();
            transfer::usage_series(&*core.log_db()?, &node, continuum_core::now_ms(), bucket_ms, buckets)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(series))
}

/// New log entries as server-sent events, one `entry` event per entry (owner only).
#[utoipa::path(get, path = "/v1/events/stream", params(EventQuery), responses((status = 200, description = "text/event-stream of entries", content_type = "text/event-stream")))]
pub(super) async fn stream_events(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Query(q): Query<EventQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    p.require_owner()?;
    let start = match q.after {
        Some(a) => a,
        None => {
            app.host
                .run(|host| eventlog::head(&*host.core().log_db()?))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?
                .0
        }
    };
    let stream = futures_util::stream::unfold(
        (app.host.clone(), start, q.kind, VecDeque::new()),
        |(host, mut after, kind, mut queue)| async move {
            loop {
                if let Some(entry) = queue.pop_front() {
                    let event = SseEvent::default().event("entry").json_data(&entry).unwrap_or_default();
                    return Some((Ok(event), (host, after, kind, queue)));
                }
                match next_batch(&host, after, kind.clone()).await {
                    Ok(Ok((batch, last))) => {
                        if let Some(l) = last {
                            after = l;
                        }
                        queue.extend(batch);
                        if queue.is_empty() {
                            tokio::time::sleep(STREAM_POLL).await;
                        }
                    }
                    _ => return None,
                }
            }
        },
    );
    // The stream ends when the node shuts down, so graceful shutdown does not wait on it.
    let mut stopping = app.shutdown.subscribe();
    let stream = futures_util::StreamExt::take_until(stream, async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The next entries after `after` that pass `kind`, and the last sequence number read (the
/// stream moves past entries that `kind` filters out).
async fn next_batch(
    host: &AsyncHost,
    after: u64,
    kind: Option<String>,
) -> anyhow::Result<anyhow::Result<(Vec<Entry>, Option<u64>)>> {
    host.run(move |host| -> anyhow::Result<(Vec<Entry>, Option<u64>)> {
        let all = eventlog::entries(&*host.core().log_db()?, after, None, STREAM_BATCH)?;
        let last = all.last().map(|e| e.seq);
        Ok((all.into_iter().filter(|e| kind_matches(&kind, &e.kind)).collect(), last))
    })
    .await
}
