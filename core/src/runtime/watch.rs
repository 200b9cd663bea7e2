//! What whoever started a call tree sees and does while it runs: its live events (tokens,
//! progress, output) and a cancel switch. One [`Watch`] is shared by the top-level call and
//! every call nested in it, so cancelling a job stops the command it called too.
//!
//! Events go to a sink the starter provides (a job's bounded stream, the CLI's terminal); a
//! call without a sink drops them. Cancel is checked by the running guest's epoch callback
//! (every [`CANCEL_CHECK`]), by a generation being read, and between training epochs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often a running guest checks whether its call tree was cancelled.
pub const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// One thing a running call tree reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CallEvent {
    /// A piece of generated text (whole characters).
    Token {
        /// The command generating it.
        command: String,
        /// The text.
        text: String,
        /// Whether it is the model's reasoning rather than its answer.
        reasoning: bool,
    },
    /// How far the work has come (`continuum:host/progress`, or training's epochs).
    Progress {
        /// The command reporting.
        command: String,
        /// Share of the work done, 0 to 1.
        fraction: f32,
        /// What it is doing, for a person.
        message: String,
    },
    /// Some of what a command wrote to stdout or stderr (control characters stripped).
    Output {
        /// The command writing it.
        command: String,
        /// `stdout` or `stderr`.
        stream: String,
        /// The text.
        text: String,
    },
}

/// Receives a call tree's events as they happen; it must not block for long (it runs on the
/// thread of the guest that produced the event).
pub type EventSink = Arc<dyn Fn(CallEvent) + Send + Sync>;

/// Whether a call tree runs for a waiting caller or as a job: a job gets its plugin's job
/// deadline (`job-timeout-ms`) instead of the interactive one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A caller waits for the answer.
    Interactive,
    /// A job: the caller holds a handle and comes back for the result.
    Job,
}

/// The live side of one call tree: where its events go, and whether it was cancelled.
pub struct Watch {
    cancelled: AtomicBool,
    /// Pieces of text generated in the call tree (one per model token, but where a character
    /// spans tokens): what a market receipt counts as tokens.
    generated: AtomicU64,
    sink: Option<EventSink>,
    purpose: Purpose,
}

impl Default for Watch {
    fn default() -> Self {
        Watch::new(Purpose::Interactive, None)
    }
}

impl Watch {
    /// A watch for a call tree run for `purpose`, whose events go to `sink` (dropped if none).
    pub fn new(purpose: Purpose, sink: Option<EventSink>) -> Watch {
        Watch { cancelled: AtomicBool::new(false), generated: AtomicU64::new(0), sink, purpose }
    }

    /// Asks the call tree to stop: its guests trap at their next check, its generations end.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Watch::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// What the call tree runs for.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Counts one piece of generated text.
    pub fn count_generated(&self) {
        self.generated.fetch_add(1, Ordering::Relaxed);
    }

    /// How many pieces of text the call tree generated so far.
    pub fn generated(&self) -> u64 {
        self.generated.load(Ordering::Relaxed)
    }

    /// Whether anyone receives events (so a call can skip preparing them).
    pub fn observed(&self) -> bool {
        self.sink.is_some()
    }

    /// Hands `event` to the sink, if there is one.
    pub fn emit(&self, event: CallEvent) {
        if let Some(sink) = &self.sink {
            sink(event);
        }
    }
}

/// The trap a guest is stopped with when its call tree is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the call was cancelled")]
pub struct Cancelled;
