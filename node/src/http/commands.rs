//! Routes over this node's commands and plugins: listing them, their schemas, calling one, and
//! the plugins it ships (with their alloys).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::convert::Infallible;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::principal::Principal;
use super::stream;
use super::types::CallResponse;
use super::App;
use crate::grid::offers::PluginOffer;
use continuum_core::discovery::{self, Match, Method};
use continuum_core::install::{AlloyOptions, Steps};
use continuum_core::reflect::CommandSchema;
use continuum_core::{CallReport, Caller, Outcome};

/// The commands the caller may call, with their schemas.
#[utoipa::path(get, path = "/v1/commands", responses((status = 200, body = [CommandSchema]), (status = 401, body = ErrorBody)))]
pub(super) async fn list_commands(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<CommandSchema>>, ApiError> {
    Ok(Json(callable(&app, &p).await?))
}

/// The commands `p` may call (listed == callable), read on the call pool.
pub(super) async fn callable(app: &App, p: &Principal) -> Result<Vec<CommandSchema>, ApiError> {
    let caller = p.caller();
    app.host.run(move |host| host.commands_for(&caller)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
}

/// The query of a command search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct SearchQuery {
    /// What the command should do, in words ("count words").
    q: String,
    /// How many matches at most (default 10, at most 100).
    top: Option<usize>,
}

/// Commands ranked by how well they match a query.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandSearch {
    /// How they were ranked: embeddings of an installed model, or shared words.
    pub ranking: Method,
    /// The best matches first; only commands the caller may call.
    pub matches: Vec<Match>,
}

/// The commands the caller may call, ranked by meaning (`continuum commands search`).
#[utoipa::path(get, path = "/v1/search/commands", params(SearchQuery),
    responses((status = 200, body = CommandSearch), (status = 401, body = ErrorBody)))]
pub(super) async fn search_commands(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<CommandSearch>, ApiError> {
    let caller = p.caller();
    let top = q.top.unwrap_or(10).min(100);
    let (ranking, matches) = app
        .host
        .run(move |host| discovery::search(host, &caller, &q.q, top))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(CommandSearch { ranking, matches }))
}

/// One command's schema.
#[utoipa::path(get, path = "/v1/commands/{name}", params(("name" = String, Path, description = "plugin/function")),
    responses((status = 200, body = CommandSchema), (status = 404, body = ErrorBody)))]
pub(super) async fn command_schema(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<CommandSchema>, ApiError> {
    // The owner sees every schema, answered from memory when the plugin is loaded (a trip to
    // the call pool for each lookup cost ~25 % in `bench http`); another caller's view is
    // filtered through the registry on the pool.
    let caller = p.caller();
    if caller == Caller::Owner {
        if let Some(schema) = app.host.loaded_schema(&name) {
            return Ok(Json(schema));
        }
    }
    Ok(Json(app.host.run(move |host| host.command_for(&caller, &name)).await.map_err(ApiError::internal)??))
}

/// Calls a command with its JSON parameters as the authenticated caller. With
/// `Accept: text/event-stream`, the answer is a stream: the call's `token`, `progress` and
/// `output` events as they happen, then `end` (the response) or `error` (the error body); a
/// client that goes away cancels the call.
#[utoipa::path(post, path = "/v1/commands/{name}", params(("name" = String, Path, description = "plugin/function")),
    request_body(content = Object, description = "The command's parameters"),
    responses((status = 200, body = CallResponse, description = "The call's result; with `Accept: text/event-stream`, its events, then `end` with this body"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub(super) async fn call_command(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(Outcome::InvalidParams, format!("the body is not JSON: {e}")))?
    };
    if !stream::wants_events(&headers) {
        let report = app.host.call(p.caller(), name, params, Default::default()).await;
        return Ok(Json(call_response(report)?).into_response());
    }
    let live = stream::LiveCall::new();
    let watch = live.watch();
    let (host, caller, call_watch) = (app.host.clone(), p.caller(), watch.clone());
    let work = async move {
        let report = host.call(caller, name, params, call_watch).await;
        call_response(report)
            .and_then(|r| serde_json::to_value(r).map_err(ApiError::internal))
            .map_err(|e| e.into_body())
    };
    Ok(live.respond(&app, Some(watch), work).into_response())
}

/// The response to a finished call: its result, time and output (control characters stripped).
fn call_response(report: CallReport) -> Result<CallResponse, ApiError> {
    let mut output = String::new();
    for bytes in [&report.stdout, &report.stderr] {
        output.push_str(&continuum_core::terminal::strip_control(&String::from_utf8_lossy(bytes)));
    }
    Ok(CallResponse {
        result: report.result?,
        elapsed_us: report.elapsed.as_micros() as u64,
        output: (!output.is_empty()).then_some(output),
    })
}

/// The plugins this node ships (signed alloys), as in its offer.
#[utoipa::path(get, path = "/v1/plugins", responses((status = 200, body = [PluginOffer])))]
pub(super) async fn list_plugins(State(app): State<App>) -> Json<Vec<PluginOffer>> {
    let own = app.grid.offers().into_iter().find(|k| k.via == "self");
    Json(own.map(|k| k.offer.plugins).unwrap_or_default())
}

/// A shipped plugin's alloy, by component digest (or a prefix of at least 8 digits).
#[utoipa::path(get, path = "/v1/plugins/{digest}/alloy", params(("digest" = String, Path, description = "component sha256")),
    responses((status = 200, description = "The alloy archive", content_type = "application/x-continuum-alloy"), (status = 404, body = ErrorBody)))]
pub(super) async fn plugin_alloy(State(app): State<App>, Path(digest): Path<String>) -> Result<Response, ApiError> {
    let digest = digest.trim_start_matches("sha256:").to_string();
    let bytes = app
        .host
        .run(move |host| -> anyhow::Result<Option<Vec<u8>>> {
            let record = host.plugins()?.into_iter().find(|p| digest.len() >= 8 && p.digest.starts_with(&digest));
            match record {
                Some(r) => Ok(host.shipped_alloy(&r)?.map(|a| a.to_bytes()).transpose()?),
                None => Ok(None),
            }
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(Outcome::NotFound, "no shipped plugin has that digest; GET /v1/plugins lists them")
        })?;
    Ok(([(header::CONTENT_TYPE, "application/x-continuum-alloy")], bytes).into_response())
}

/// A host capability an installed plugin requests, and whether it is approved.
#[derive(Debug, Serialize, ToSchema)]
pub struct Capability {
    /// The capability (`host:store`, `host:inference`, …).
    pub capability: String,
    /// Whether the owner approved it.
    pub approved: bool,
}

/// An installed plugin, as the console's Plugins page shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstalledPlugin {
    /// Its name.
    pub name: String,
    /// Its version (signed alloys).
    pub version: Option<String>,
    /// The component's sha256.
    pub digest: String,
    /// The publisher's key (signed alloys), absent for a development install.
    pub signer: Option<String>,
    /// The publisher as this node knows it: short key and trust-store name, or that it has none.
    pub publisher: Option<String>,
    /// Its chain of custody (signed alloys): who signed what, in order.
    #[schema(value_type = Option<Object>)]
    pub custody: Option<Value>,
    /// Where it came from (a file, a folder, a peer).
    pub source: String,
    /// When it was installed (seconds since the epoch).
    pub installed_at: i64,
    /// Its commands.
    pub commands: Vec<String>,
    /// The host capabilities it requests, each approved or not.
    pub capabilities: Vec<Capability>,
}

/// The installed plugins with publisher, custody and capabilities (owner only).
#[utoipa::path(get, tag = "plugins", path = "/v1/plugins/installed", responses((status = 200, body = [InstalledPlugin]), (status = 403, body = ErrorBody)))]
pub(super) async fn installed_plugins(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<InstalledPlugin>>, ApiError> {
    p.require_owner()?;
    let plugins = app
        .host
        .run(|host| -> anyhow::Result<Vec<InstalledPlugin>> {
            Ok(host.plugins()?.into_iter().map(|r| installed(host, r)).collect())
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(plugins))
}

/// How the console shows installed plugin `r`.
fn installed(host: &continuum_core::runtime::Host, r: continuum_core::registry::PluginRecord) -> InstalledPlugin {
    let capabilities = continuum_core::host_api::requested(&r.imports)
        .into_iter()
        .map(|capability| Capability { approved: r.approved.contains(&capability), capability })
        .collect();
    InstalledPlugin {
        publisher: r.signer.as_deref().map(|s| host.signer_label(s)),
        custody: r.custody.as_deref().and_then(|c| serde_json::from_str(c).ok()),
        commands: r.commands.iter().map(|c| c.name.clone()).collect(),
        capabilities,
        name: r.name,
        version: r.version,
        digest: r.digest,
        signer: r.signer,
        source: r.source,
        installed_at: r.installed_at,
    }
}

/// Capabilities to approve or withdraw.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Approvals {
    /// Capabilities to approve (`all` for every one requested).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Capabilities to withdraw (`all` for every one).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Approves or withdraws an installed plugin's host capabilities (owner only); they take
/// effect at its next call.
#[utoipa::path(post, tag = "plugins", path = "/v1/plugins/installed/{name}/approvals", params(("name" = String, Path, description = "the plugin")),
    request_body = Approvals,
    responses((status = 200, body = InstalledPlugin), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn set_approvals(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    Json(change): Json<Approvals>,
) -> Result<Json<InstalledPlugin>, ApiError> {
    p.require_owner()?;
    let plugin = app
        .host
        .run(move |host| -> anyhow::Result<InstalledPlugin> {
            if !change.allow.is_empty() {
                host.allow(&name, &change.allow)?;
            }
            if !change.deny.is_empty() {
                host.deny(&name, &change.deny)?;
            }
            Ok(installed(host, host.plugin(&name)?))
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(Outcome::BadRequest, format!("{e:#}")))?;
    Ok(Json(plugin))
}

/// How an uploaded alloy may be installed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct UploadOptions {
    /// Install even if its publisher is not in the trust store.
    #[serde(default)]
    allow_untrusted: bool,
    /// Host capabilities to approve, comma-separated (`all`: every one it requests).
    #[serde(default)]
    allow: Option<String>,
}

/// Installs an uploaded `.alloy` (owner only), checked as `continuum plugin install` checks a
/// file. The answer is server-sent events: a `step` (`{step, detail}`) as each check passes,
/// then `end` with the installed plugin, or `error` with the refusal.
#[utoipa::path(post, tag = "plugins", path = "/v1/plugins/installed", params(UploadOptions),
    request_body(content = Vec<u8>, content_type = "application/x-continuum-alloy", description = "The alloy"),
    responses((status = 200, description = "text/event-stream of `step` events, then `end` (InstalledPlugin) or `error`", content_type = "text/event-stream"),
        (status = 403, body = ErrorBody)))]
pub(super) async fn install_upload(
    State(app): State<App>,
    Extension(p): Extension<Principal>,
    Query(q): Query<UploadOptions>,
    body: Bytes,
) -> Result<Response, ApiError> {
    p.require_owner()?;
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel::<SseEvent>();
    let to_client = events.clone();
    let steps = Steps::to(move |step, detail| {
        let _ = to_client.send(
            SseEvent::default().event("step").json_data(json!({ "step": step, "detail": detail })).unwrap_or_default(),
        );
    });
    let options = AlloyOptions {
        allow_untrusted: q.allow_untrusted,
        allow: q
            .allow
            .iter()
            .flat_map(|a| a.split(','))
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        steps,
        ..Default::default()
    };
    let host = app.host.clone();
    tokio::spawn(async move {
        let installing = host.run(move |host| -> anyhow::Result<InstalledPlugin> {
            let record = host.install_alloy_bytes(&body, "an upload to the console", options)?;
            Ok(installed(host, record))
        });
        let event = match installing.await {
            Ok(Ok(plugin)) => SseEvent::default().event("end").json_data(&plugin),
            Ok(Err(e)) | Err(e) => {
                let refusal = ApiError::new(Outcome::BadRequest, format!("{e:#}")).into_body();
                SseEvent::default().event("error").json_data(json!(refusal))
            }
        };
        let _ = events.send(event.unwrap_or_default());
    });
    let stream = futures_util::stream::poll_fn(move |cx| received.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>)));
    // Proof suites can run a while: keep-alives stop idle-timeouts from cutting the stream.
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}
