//! The `continuum/grid/3` protocol (version 3: request ids, node sets; 2: receipts, `busy` with a retry-after, priced offers): one JSON request and one JSON response per QUIC stream.
//!
//! The stream's end delimits each message, and each side reads at most a fixed number of
//! bytes, so a peer cannot make the other buffer without bound. The peer's identity is the
//! key QUIC authenticated (iroh dials by key), never a field of the request.

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::jobs::{JobEvent, JobView};
use crate::market::receipt::SignedReceipt;
use continuum_core::Outcome;

/// The ALPN of the Continuum grid protocol.
pub const ALPN: &[u8] = b"continuum/grid/3";
/// Largest request a node accepts from a peer.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;
/// Largest response a node accepts from a peer (a page of a log export can be long).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// The capability a grant must confer for its holder to pull this node's log. It cannot name
/// a command (plugin names have no `:`), so no command grant confers it by accident.
pub const LOG_PULL: &str = "node:log-pull";
/// Most log entries in one page of an export over the grid.
pub const LOG_PAGE: u64 = 500;

/// What one peer asks another.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Run a command as the calling peer (its key, and the grant it presents).
    Call {
        /// The command, `plugin/function`.
        command: String,
        /// Its JSON parameters.
        params: Value,
        /// A grant token issued by the executing node to the calling node's key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grant: Option<String>,
        /// How long the caller waits, in milliseconds (the executing side stops no later).
        deadline_ms: u64,
        /// Whether to stream the call's live events (tokens, progress, output) as
        /// [`Response::Event`] frames before the answer.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stream: bool,
        /// The caller's id for this request: the provider runs it at most once however often
        /// it arrives (8–64 letters, digits, `-`, `_`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// The signed node set naming the calling node as one of its owner's, when the grant
        /// it presents was issued to that owner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node_set: Option<continuum_core::node_set::SignedNodeSet>,
    },
    /// Run a command as a job of the calling peer, held under a lease it renews.
    Submit {
        /// The command, `plugin/function`.
        command: String,
        /// Its JSON parameters.
        params: Value,
        /// A grant token issued by the executing node to the calling node's key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grant: Option<String>,
        /// The lease in milliseconds: unless renewed within it, the job is cancelled.
        lease_ms: u64,
    },
    /// Act on a job the calling peer submitted.
    Job {
        /// The job's id on the executing node.
        id: String,
        /// What to do.
        action: JobAction,
    },
    /// The node's current signed offer.
    // An empty struct variant, not a unit one: serde ignores unknown fields on unit variants.
    Offer {},
    /// The countersignature of a receipt this node issued to the asking peer (its caller).
    Countersign {
        /// The receipt, signed by both.
        receipt: SignedReceipt,
    },
    /// A receipt for fetching a priced alloy this node offers, before the fetch.
    Purchase {
        /// The plugin.
        plugin: String,
        /// The alloy's BLAKE3 hash, as offered.
        alloy: String,
    },
    /// A page of the node's own log entries after `since`, as an export (JSONL); answered only
    /// to a peer presenting a grant that confers [`LOG_PULL`].
    Events {
        /// Only entries after this sequence number.
        since: u64,
        /// A grant token issued by the exporting node to the asking node's key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grant: Option<String>,
    },
}

/// What a peer asks about a job it submitted.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum JobAction {
    /// The job as it now is.
    Status,
    /// Renew the lease (the heartbeat); answers the job as it now is.
    Renew,
    /// Stop it.
    Cancel,
    /// Its events as [`Response::Event`] frames, then the ended job.
    Follow,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Response {
    /// The call's result.
    Ok {
        /// The JSON result.
        value: Value,
        /// Time the executing node spent, in microseconds.
        elapsed_us: u64,
        /// The provider's receipt for the call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<SignedReceipt>,
    },
    /// The node did not take the request: it answers as much as it takes.
    Busy {
        /// Why, for a person.
        message: String,
        /// When to ask again, in milliseconds.
        retry_after_ms: u64,
    },
    /// A receipt (for a purchase), or an acknowledgement of a countersignature.
    Receipt {
        /// The receipt.
        receipt: SignedReceipt,
    },
    /// The request failed; `outcome` names the kind (`denied`, `unknown-command`, …).
    Failed {
        /// The kind of failure, as in the event log (one a newer peer names reads as `other`).
        outcome: Outcome,
        /// What went wrong, for a person.
        message: String,
    },
    /// A job (submitted, as it now is, or ended: the last frame of a follow).
    Job {
        /// The job, with the executing node's id.
        job: Box<JobView>,
    },
    /// One event of a streamed answer; more frames follow, the last one is not an event.
    Event {
        /// The event.
        event: JobEvent,
    },
    /// A signed offer.
    Offer {
        /// The offer.
        offer: crate::grid::offers::SignedOffer,
    },
    /// A page of a log export.
    Events {
        /// JSONL as written by `continuum events export`.
        export: String,
        /// Whether entries remain after this page (ask again from its last sequence number).
        #[serde(default)]
        more: bool,
    },
}

/// Parses a message of at most `limit` bytes; the error names what was wrong.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize, what: &str) -> Result<T> {
    if bytes.len() > limit {
        anyhow::bail!("the {what} is {} bytes; the limit is {limit}", bytes.len());
    }
    serde_json::from_slice(bytes).with_context(|| format!("malformed {what}"))
}

/// Writes one frame of a streamed answer (a line of JSON), without finishing the stream.
pub async fn send_frame(stream: &mut iroh::endpoint::SendStream, frame: &Response) -> Result<()> {
    let mut bytes = serde_json::to_vec(frame)?;
    bytes.push(b'\n');
    stream.write_all(&bytes).await.context("the peer closed the stream")?;
    Ok(())
}

/// Reads the frames of a streamed answer, each at most [`MAX_RESPONSE_BYTES`], handing
/// events to `on_event`, until the stream ends; the last frame (the answer).
pub async fn receive_frames(
    stream: &mut iroh::endpoint::RecvStream,
    mut on_event: impl FnMut(JobEvent),
) -> Result<Response> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    // How much of the buffer is known to hold no newline (a long frame is scanned once).
    let mut scanned = 0;
    loop {
        while let Some(at) = buffer[scanned..].iter().position(|b| *b == b'\n') {
            let end = scanned + at;
            let frame: Response = decode(&buffer[..end], MAX_RESPONSE_BYTES, "answer frame")?;
            buffer.drain(..=end);
            scanned = 0;
            match frame {
                Response::Event { event } => on_event(event),
                last => return Ok(last),
            }
        }
        scanned = buffer.len();
        if buffer.len() > MAX_RESPONSE_BYTES {
            anyhow::bail!("an answer frame is over {MAX_RESPONSE_BYTES} bytes");
        }
        let Some(n) = stream.read(&mut chunk).await.context("reading a streamed answer")? else {
            // A last frame without its newline (a peer that answered in one message).
            return decode(&buffer, MAX_RESPONSE_BYTES, "answer");
        };
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Writes `message` and finishes the stream.
pub async fn send<T: Serialize>(stream: &mut iroh::endpoint::SendStream, message: &T) -> Result<()> {
    let bytes = serde_json::to_vec(message)?;
    stream.write_all(&bytes).await.context("the peer closed the stream")?;
    stream.finish().context("the peer closed the stream")?;
    Ok(())
}

/// Reads a whole message of at most `limit` bytes.
pub async fn receive<T: DeserializeOwned>(
    stream: &mut iroh::endpoint::RecvStream,
    limit: usize,
    what: &str,
) -> Result<T> {
    let bytes = stream.read_to_end(limit).await.with_context(|| format!("reading the {what} (limit {limit} bytes)"))?;
    decode(&bytes, limit, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let r = Request::Call {
            command: "text/stats".into(),
            params: serde_json::json!({"text": "a"}),
            grant: None,
            deadline_ms: 5,
            stream: false,
            request_id: Some("0123456789abcdef".into()),
            node_set: None,
        };
        let bytes = serde_json::to_vec(&r).unwrap();
        assert_eq!(decode::<Request>(&bytes, 1 << 10, "request").unwrap(), r);
        let err = decode::<Request>(br#"{"op":"offer","extra":1}"#, 1 << 10, "request").unwrap_err();
        assert!(format!("{err:#}").contains("malformed request"), "{err:#}");
        let err = decode::<Request>(&bytes, 8, "request").unwrap_err();
        assert!(err.to_string().contains("limit is 8"), "{err}");
    }

    /// A failure's outcome travels as its kebab-case name, as when it was a string.
    #[test]
    fn failures_carry_the_outcome_by_name() {
        let busy = Response::Failed { outcome: Outcome::Busy, message: "later".into() };
        let text = serde_json::to_string(&busy).unwrap();
        assert_eq!(text, r#"{"status":"failed","outcome":"busy","message":"later"}"#);
        assert_eq!(decode::<Response>(text.as_bytes(), 1 << 10, "answer").unwrap(), busy);
        let newer = br#"{"status":"failed","outcome":"from-the-future","message":"?"}"#;
        let Response::Failed { outcome, .. } = decode::<Response>(newer, 1 << 10, "answer").unwrap() else {
            panic!("not a failure")
        };
        assert_eq!(outcome, Outcome::Other);
    }
}
