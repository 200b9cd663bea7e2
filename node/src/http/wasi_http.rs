//! `/v1/http/<plugin>/…`: a plugin exporting `wasi:http/incoming-handler` answers real HTTP
//! requests. Each request is a call of its `<plugin>/http` command as the authenticated caller,
//! so the same grants, limits and audit apply as to any call; the node's own credentials
//! (`Authorization`, `X-Continuum-*`, the console's cookie) are never passed to the plugin, and
//! a plugin sets no cookie. Its responses carry `Content-Security-Policy: sandbox`, so a page a
//! plugin serves runs in an opaque origin: its scripts cannot use the logged-in console's
//! session on the node's origin.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Extension;
use base64::Engine as _;
use serde_json::{json, Value};

use super::error::ApiError;
use super::principal::Principal;
use super::App;
use continuum_core::runtime::check_plugin_name;
use continuum_core::Outcome;

/// The policy on every plugin response: a document it serves is sandboxed into an opaque origin
/// (scripts and forms may run, but nothing of the node's origin is theirs: no cookie, no storage).
const PLUGIN_PAGE_POLICY: &str = "sandbox allow-scripts allow-forms allow-popups";

/// Headers that belong to this hop or to the node's authentication, not to the plugin.
fn passed_on(name: &HeaderName) -> bool {
    let name = name.as_str();
    !(matches!(name, "authorization" | "cookie" | "set-cookie" | "content-security-policy")
        || name.starts_with("x-continuum-")
        || matches!(name, "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "te" | "trailer" | "host"))
}

/// Serves `/v1/http/{plugin}` and everything under it: the handler sees the rest of the path
/// exactly as sent (still percent-encoded) and the query.
pub(super) async fn serve(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(params): Path<Vec<(String, String)>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let plugin = params.iter().find(|(k, _)| k == "plugin").map(|(_, v)| v.clone()).unwrap_or_default();
    // A plugin name has no `/` or `%`: the raw path starts with the decoded name.
    check_plugin_name(&plugin).map_err(|e| ApiError::new(Outcome::NotFound, format!("{e:#}")))?;
    let rest = uri.path().strip_prefix(&format!("/v1/http/{plugin}")).unwrap_or_default();
    let path = match (rest, uri.query()) {
        ("", Some(q)) => format!("/?{q}"),
        ("", None) => "/".to_string(),
        (rest, Some(q)) => format!("{rest}?{q}"),
        (rest, None) => rest.to_string(),
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| passed_on(n))
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let params = json!({
        "method": method.as_str(),
        "path": path,
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
    });
    let report = app.host.call(p.caller(), format!("{plugin}/http"), params, Default::default()).await;
    response(report.result?)
}

/// The HTTP response a handler's result describes.
fn response(result: Value) -> Result<Response, ApiError> {
    let bad = |what: &str| ApiError::new(Outcome::HostError, format!("the handler's response is malformed: {what}"));
    let status = result.get("status").and_then(Value::as_u64).ok_or_else(|| bad("no status"))?;
    let status = StatusCode::from_u16(status as u16).map_err(|_| bad("status out of range"))?;
    let body = result.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| bad("body not base64"))?;
    let mut response = Response::builder()
        .status(status)
        .header(axum::http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PLUGIN_PAGE_POLICY));
    for pair in result.get("headers").and_then(Value::as_array).into_iter().flatten() {
        let (Some(name), Some(value)) = (pair.get(0).and_then(Value::as_str), pair.get(1).and_then(Value::as_str))
        else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            if passed_on(&name) && name != "content-length" {
                response = response.header(name, value);
            }
        }
    }
    response.body(Body::from(body)).map_err(|e| bad(&e.to_string()))
}
