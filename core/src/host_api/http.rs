//! `wasi:http` for commands: a component exporting `wasi:http/incoming-handler` is a command
//! that takes one HTTP request and returns its response (what the node serves under
//! `/v1/http/<plugin>/…`). Its outgoing requests are refused: a command has no network.
//!
//! The request and response cross the call boundary as JSON ([`HttpRequest`], the response
//! from [`handle`]), so an HTTP handler runs through the same grants, limits and audit as any
//! call, and can be called with `continuum run` too.

use std::future::Future;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::{json, Value};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;
use wasmtime_wasi_http::p2::bindings::sync::Proxy;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::CallState;
use crate::reflect::convert::ConvertError;

/// The per-call `wasi:http` state: its context and the hooks that refuse outgoing requests.
#[derive(Default)]
pub struct HttpState {
    ctx: WasiHttpCtx,
    hooks: NoNetwork,
}

impl HttpState {
    /// The state of a call whose output cap is `output_bytes`.
    pub fn new(output_bytes: usize) -> Self {
        HttpState { ctx: WasiHttpCtx::new(), hooks: NoNetwork { body_chunks: output_bytes.div_ceil(BODY_CHUNK) + 1 } }
    }
}

/// Largest piece of a response body the guest hands over at once.
const BODY_CHUNK: usize = 16 << 10;

/// Refuses every outgoing request: commands have no network. It also sizes the response body's
/// buffer to hold a whole capped body: the body is read only once the guest sets its response,
/// and a guest that writes first must not find the buffer full before the output cap.
#[derive(Default)]
struct NoNetwork {
    body_chunks: usize,
}

/// A future of `wasi:http`'s outgoing-request hook, boxed.
type HookFuture<T> = Box<dyn Future<Output = Result<T, wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for NoNetwork {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: HookFuture<()>,
    ) -> HookFuture<(http::Response<wasmtime_wasi_http::WasiBody>, HookFuture<()>)> {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        self.body_chunks.max(wasmtime_wasi_http::p2::DEFAULT_OUTGOING_BODY_BUFFER_CHUNKS)
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        BODY_CHUNK
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { hooks: &mut self.http.hooks, table: &mut self.table, ctx: &mut self.http.ctx }
    }
}

/// Links `wasi:http` (types, and an outgoing handler that refuses every request).
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)
}

/// One HTTP request, as a handler's params.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpRequest {
    /// The method, `GET` when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// The path and query the handler sees, starting with `/`.
    pub path: String,
    /// Header name and value pairs.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    #[serde(default)]
    pub body: Option<String>,
}

impl HttpRequest {
    /// Reads a handler's params, naming what is wrong.
    pub fn from_params(params: &Value) -> Result<HttpRequest, ConvertError> {
        serde_json::from_value(params.clone()).map_err(|e| ConvertError {
            path: "params".into(),
            message: format!(
                "{e}; an HTTP handler takes {{\"method\", \"path\", \"headers\": [[name, value]], \"body\": base64}}"
            ),
        })
    }

    /// The request as hyper's.
    fn to_hyper(&self) -> Result<hyper::Request<Full<Bytes>>, String> {
        let body = match &self.body {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| format!("params.body: not base64: {e}"))?,
            None => Vec::new(),
        };
        if !self.path.starts_with('/') {
            return Err(format!("params.path: `{}` must start with `/`", self.path));
        }
        let mut request = hyper::Request::builder()
            .method(self.method.as_deref().unwrap_or("GET"))
            .uri(format!("http://localhost{}", self.path));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request.body(Full::new(Bytes::from(body))).map_err(|e| format!("params: not a valid HTTP request: {e}"))
    }
}

/// The schema of a header list: `[name, value]` pairs.
fn header_pairs(description: &str) -> Value {
    let pair = json!({ "type": "array", "prefixItems": [{ "type": "string" }, { "type": "string" }], "minItems": 2, "maxItems": 2 });
    json!({ "type": "array", "items": pair, "description": description })
}

/// The params schema of every HTTP handler.
pub fn params_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "method": { "anyOf": [{ "type": "string" }, { "type": "null" }], "description": "The HTTP method (GET when absent)." },
            "path": { "type": "string", "description": "The path and query, starting with `/`." },
            "headers": header_pairs("Request header name and value pairs."),
            "body": { "anyOf": [{ "type": "string", "contentEncoding": "base64" }, { "type": "null" }], "description": "The request body, base64." }
        },
        "required": ["path"],
        "additionalProperties": false
    })
}

/// The result schema of every HTTP handler.
pub fn result_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "status": { "type": "integer", "minimum": 100, "maximum": 999, "format": "u16" },
            "headers": header_pairs("Response header name and value pairs."),
            "body": { "type": "string", "contentEncoding": "base64", "description": "The response body, base64." }
        },
        "required": ["status", "headers", "body"],
        "additionalProperties": false
    })
}

/// The response body as it is written, kept up to a cap and drained past it (so a guest
/// writing more never blocks on a full channel).
#[derive(Default)]
struct Collected {
    bytes: Vec<u8>,
    overflow: bool,
    error: Option<String>,
}

/// What a handler answered.
pub enum Answer {
    /// Its response, as the result JSON.
    Response(Value),
    /// It failed to answer: no response, or an error code instead of one.
    Failed(String),
    /// Its response body was larger than the output cap.
    TooLarge,
}

/// Runs the handler of `instance`'s `wasi:http/incoming-handler` on `request`, keeping at most
/// `cap` bytes of its response body. The store's resources are dropped after (which ends a
/// response body the guest left unfinished).
pub fn handle(
    store: &mut Store<CallState>,
    instance: &wasmtime::component::Instance,
    request: &HttpRequest,
    cap: usize,
) -> wasmtime::Result<Answer> {
    let request = match request.to_hyper() {
        Ok(r) => r,
        Err(message) => return Ok(Answer::Failed(message)),
    };
    let collected = Arc::new(Mutex::new(Collected::default()));
    let head: Arc<Mutex<Option<Result<http::response::Parts, String>>>> = Arc::default();
    let drain: Arc<Mutex<Option<AbortOnDropJoinHandle<()>>>> = Arc::default();
    let (c, h, d) = (collected.clone(), head.clone(), drain.clone());
    let outparam = store.data_mut().http().new_response_outparam_from_callback(move |response| {
        match response {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                *crate::sync::lock(&h) = Some(Ok(parts));
                // Read the body while the guest writes it, as a task on wasmtime-wasi's runtime
                // (a thread per request cost a spawn and an exit on every call); without a
                // reader the body is dropped (the guest's writes fail) and the call fails.
                *crate::sync::lock(&d) = Some(wasmtime_wasi::runtime::spawn(read_body(body, cap, c.clone())));
            }
            Err(code) => *crate::sync::lock(&h) = Some(Err(format!("the handler answered with error {code:?}"))),
        }
    })?;
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http, request)?;
    let proxy = Proxy::new(&mut *store, instance)?;
    proxy.wasi_http_incoming_handler().call_handle(&mut *store, incoming, outparam)?;
    store.data_mut().table = ResourceTable::new();
    let reader = crate::sync::lock(&drain).take();
    if let Some(reader) = reader {
        futures_executor::block_on(reader);
    }
    let head = crate::sync::lock(&head).take();
    let collected = std::mem::take(&mut *crate::sync::lock(&collected));
    Ok(match head {
        None => Answer::Failed("the handler returned without setting a response".into()),
        Some(Err(message)) => Answer::Failed(message),
        Some(Ok(_)) if collected.overflow => Answer::TooLarge,
        Some(Ok(_)) if collected.error.is_some() => Answer::Failed(collected.error.unwrap_or_default()),
        Some(Ok(parts)) => Answer::Response(json!({
            "status": parts.status.as_u16(),
            "headers": parts.headers.iter().map(|(n, v)| json!([n.as_str(), String::from_utf8_lossy(v.as_bytes())])).collect::<Vec<_>>(),
            "body": base64::engine::general_purpose::STANDARD.encode(&collected.bytes),
        })),
    })
}

/// Reads a response body to its end into `into`, keeping at most `cap` bytes.
async fn read_body(mut body: HyperOutgoingBody, cap: usize, into: Arc<Mutex<Collected>>) {
    while let Some(frame) = body.frame().await {
        let mut collected = crate::sync::lock(&into);
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    if collected.bytes.len() + data.len() > cap {
                        collected.overflow = true;
                    } else if !collected.overflow {
                        collected.bytes.extend_from_slice(&data);
                    }
                }
            }
            Err(code) => {
                collected.error = Some(format!("the response body failed: {code:?}"));
                return;
            }
        }
    }
}
