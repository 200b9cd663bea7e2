//! The CLI's side of a running node: requests over `<data>/node.sock` (the owner's socket).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;

use super::http::ErrorBody;
use super::NodeFile;
use continuum_core::Outcome;

/// A failed API request: HTTP status, error code and message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    /// HTTP status.
    pub status: u16,
    /// How the request ended (`denied`, `unknown-command`, …); [`Outcome::Other`] when the
    /// node's answer was not an error body.
    pub code: Outcome,
    /// The message.
    pub message: String,
    /// Extra detail (a command's error value, a grid call's attempts).
    pub value: Option<Value>,
}

impl ApiFailure {
    /// The failure an error body describes (the `error` event of a stream, which has no
    /// status of its own: 0).
    pub fn from_error_body(body: Value) -> ApiFailure {
        match serde_json::from_value::<ErrorBody>(body.clone()) {
            Ok(e) => ApiFailure { status: 0, code: e.error.code, message: e.error.message, value: e.error.value },
            Err(_) => {
                ApiFailure { status: 0, code: Outcome::Other, message: format!("the node failed: {body}"), value: None }
            }
        }
    }
}

/// The running node's description, if `<data>/node.json` exists and parses.
pub fn running(root: &Path) -> Option<NodeFile> {
    let text = std::fs::read_to_string(root.join("node.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// A connection to the node serving a data directory.
pub struct NodeClient {
    socket: PathBuf,
    runtime: tokio::runtime::Runtime,
}

impl NodeClient {
    /// The node serving `root`, if one is running and answers on its socket.
    pub fn find(root: &Path) -> Option<NodeClient> {
        let socket = root.join("node.sock");
        if !socket.exists() {
            return None;
        }
        std::os::unix::net::UnixStream::connect(&socket).ok()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        Some(NodeClient { socket, runtime })
    }

    /// Like [`find`](Self::find), but an error saying how to start one.
    pub fn require(root: &Path) -> Result<NodeClient> {
        Self::find(root).with_context(|| {
            format!(
                "no node is running on {}; start one with `continuum serve` (the grid needs a running node)",
                root.display()
            )
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.send("GET", path, None, &[])
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send("POST", path, Some(body), &[])
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<Value> {
        self.send("DELETE", path, None, &[])
    }

    /// Sends a request with extra headers; a non-2xx answer becomes an [`ApiFailure`].
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Result<Value> {
        self.runtime.block_on(async {
            let response = self.request(method, path, body, headers, "application/json").await?;
            let body = response.into_body().collect().await?.to_bytes();
            if body.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(&body).context("the node sent malformed JSON")
        })
    }

    /// Sends a request whose answer is a stream of server-sent events, handing each to
    /// `on_event` (its name and JSON data) as it arrives, until the stream ends or `on_event`
    /// returns false; a non-2xx answer becomes an [`ApiFailure`].
    pub fn events(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        mut on_event: impl FnMut(&str, Value) -> bool,
    ) -> Result<()> {
        self.runtime.block_on(async {
            let mut response = self.request(method, path, body, headers, "text/event-stream").await?;
            let mut pending: Vec<u8> = Vec::new();
            // How much of `pending` is known to hold no block end (a long event is scanned once).
            let mut scanned = 0;
            while let Some(frame) = response.body_mut().frame().await {
                let Ok(data) = frame?.into_data() else { continue };
                pending.extend_from_slice(&data);
                while let Some(at) = pending[scanned..].windows(2).position(|w| w == b"\n\n") {
                    let end = scanned + at;
                    scanned = 0;
                    let block: Vec<u8> = pending.drain(..end + 2).collect();
                    if let Some((name, data)) = parse_event(&String::from_utf8_lossy(&block)) {
                        let data = serde_json::from_str(&data).context("the node sent a malformed event")?;
                        if !on_event(&name, data) {
                            return Ok(());
                        }
                    }
                }
                // A block end may straddle the next piece: rescan its last byte.
                scanned = pending.len().saturating_sub(1);
            }
            Ok(())
        })
    }

    /// Sends a request; its response when the status is 2xx, else the error as an [`ApiFailure`].
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        accept: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("cannot reach the node at {}", self.socket.display()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "continuum")
            .header("content-type", "application/json")
            .header("accept", accept);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = sender.send_request(request.body(Full::new(Bytes::from(bytes)))?).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.into_body().collect().await?.to_bytes();
        let failure = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => ApiFailure {
                status: status.as_u16(),
                code: e.error.code,
                message: e.error.message,
                value: e.error.value,
            },
            Err(_) => ApiFailure {
                status: status.as_u16(),
                code: Outcome::Other,
                message: format!("the node answered {status}: {}", String::from_utf8_lossy(&body)),
                value: None,
            },
        };
        Err(failure.into())
    }
}

/// One server-sent event block's name (default `message`) and data (its `data:` lines joined);
/// `None` for a block without data (a keep-alive comment).
fn parse_event(block: &str) -> Option<(String, String)> {
    let (mut name, mut data) = ("message".to_string(), Vec::new());
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    (!data.is_empty()).then(|| (name, data.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::parse_event;

    #[test]
    fn event_blocks_parse_and_keep_alives_are_skipped() {
        assert_eq!(parse_event("event: token\ndata: {\"a\":1}\n\n"), Some(("token".into(), "{\"a\":1}".into())));
        assert_eq!(parse_event("data: 1\ndata: 2\n"), Some(("message".into(), "1\n2".into())));
        assert_eq!(parse_event(":\n\n"), None);
    }
}
