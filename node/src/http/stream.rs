//! Server-sent event streams: a job's events, and a call's live events followed by its answer
//! (`POST /v1/commands/{name}` and `POST /v1/grid/call` when the client accepts
//! `text/event-stream`). Each is bounded: a call's events wait in a channel of
//! [`LIVE_BUFFER`] and a client that reads slower loses events (a `lagged` event says how
//! many), never the answer; a job's followers read its bounded broadcast the same way.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error::ErrorBody;
use super::App;
use crate::jobs::{JobEvent, LIVE_BUFFER};
use continuum_core::runtime::watch::{CallEvent, EventSink, Purpose, Watch};

/// Whether the client asked for server-sent events (`Accept: text/event-stream`).
pub(super) fn wants_events(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")))
}

/// `events` as server-sent events, ending when the node shuts down.
fn respond<S>(app: &App, events: S) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>>
where
    S: Stream<Item = SseEvent> + Send + 'static,
{
    let mut stopping = app.shutdown.subscribe();
    let events = events.map(Ok).take_until(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// A job event as a server-sent event (its name, its data).
fn job_event(event: &JobEvent) -> SseEvent {
    SseEvent::default().event(event.name()).json_data(event.data()).unwrap_or_default()
}

/// A job's events as server-sent events: `state`, `token`, `progress`, `output`, `lagged`, and
/// last `end` with the whole job.
pub(super) fn job_events(
    app: &App,
    events: impl Stream<Item = JobEvent> + Send + 'static,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    respond(app, events.map(|e| job_event(&e)))
}

/// What a streamed call sends: a live event, or its answer (the last).
enum Frame {
    Live(JobEvent),
    End(Result<Value, ErrorBody>),
}

/// A call whose live events are streamed to the client: its event sink (for the watch of a
/// local call, or a grid call's relay) and the stream's receiving end.
pub(super) struct LiveCall {
    sink: EventSink,
    frames: mpsc::Receiver<Frame>,
    sender: mpsc::Sender<Frame>,
    dropped: Arc<AtomicU64>,
}

impl LiveCall {
    /// A call to stream, with nothing sent yet.
    pub(super) fn new() -> LiveCall {
        let (sender, frames) = mpsc::channel(LIVE_BUFFER);
        let dropped = Arc::new(AtomicU64::new(0));
        let (to_client, missed) = (sender.clone(), dropped.clone());
        let sink: EventSink = Arc::new(move |event: CallEvent| {
            // Never waits: the guest runs on, and a client too slow to keep up loses events.
            if to_client.try_send(Frame::Live(JobEvent::Live(event))).is_err() {
                missed.fetch_add(1, Ordering::Relaxed);
            }
        });
        LiveCall { sink, frames, sender, dropped }
    }

    /// Where the call's live events go.
    pub(super) fn sink(&self) -> &EventSink {
        &self.sink
    }

    /// A watch over a local call whose events go to this stream.
    pub(super) fn watch(&self) -> Arc<Watch> {
        Arc::new(Watch::new(Purpose::Interactive, Some(self.sink.clone())))
    }

    /// Runs `work` (the call) and streams its events, then `end` with its answer or `error`
    /// with its error body. A client that goes away cancels `watch` (a local call stops).
    pub(super) fn respond(
        self,
        app: &App,
        watch: Option<Arc<Watch>>,
        work: impl Future<Output = Result<Value, ErrorBody>> + Send + 'static,
    ) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
        let LiveCall { sink, frames, sender, dropped } = self;
        drop(sink);
        let task = tokio::spawn(async move {
            let end = work.await;
            let missed = dropped.load(Ordering::Relaxed);
            if missed > 0 {
                let _ = sender.send(Frame::Live(JobEvent::Lagged(missed))).await;
            }
            let _ = sender.send(Frame::End(end)).await;
        });
        let guard = Abandon { watch, task: Some(task) };
        let events = futures_util::stream::unfold((frames, guard), |(mut frames, mut guard)| async move {
            let event = match frames.recv().await? {
                Frame::Live(event) => job_event(&event),
                Frame::End(end) => {
                    guard.task = None;
                    guard.watch = None;
                    match end {
                        Ok(value) => SseEvent::default().event("end").json_data(value).unwrap_or_default(),
                        Err(error) => SseEvent::default().event("error").json_data(json!(error)).unwrap_or_default(),
                    }
                }
            };
            Some((event, (frames, guard)))
        });
        respond(app, events)
    }
}

/// Stops a streamed call whose client went away before its end.
struct Abandon {
    watch: Option<Arc<Watch>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(watch) = &self.watch {
            watch.cancel();
        }
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
