//! MCP (the Model Context Protocol): every command a caller may call is a tool, listed with its
//! reflected schemas and called as that caller (listed == callable, the same grants). Served
//! over stdio by `continuum mcp` and over streamable HTTP by the node at `/mcp` (stateless:
//! each request authenticated like any other API request), with the `rmcp` SDK.
//!
//! Tool names: MCP clients accept `[A-Za-z0-9_-]`, 64 at most, so each `/` of a command name
//! becomes `__` (command names are kebab-case, so the mapping is one to one): `text/stats` is
//! `text__stats`; a longer name is shortened with a hash ([`tool_name`]). A result that is a JSON object is the tool's structured content as it is; any
//! other result is wrapped as `{"result": …}`, as MCP wants an object. A failed call is a tool
//! error carrying the node's error body.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Value};

use crate::async_host::AsyncHost;
use crate::client::{ApiFailure, NodeClient};
use crate::http::limits;
use crate::http::{App, Principal};
use continuum_core::reflect::CommandSchema;
use continuum_core::runtime::watch::{CallEvent, Purpose, Watch};
use continuum_core::{CallReport, Caller, Outcome};

/// Longest tool name MCP clients accept.
const MAX_TOOL_NAME: usize = 64;

/// The MCP tool name of command `name`: each `/` becomes `__`; a name past 64 characters keeps
/// its first 55 and ends with `_` and 8 hex digits of the command's BLAKE3 hash.
pub fn tool_name(command: &str) -> String {
    let name = command.replace('/', "__");
    if name.len() <= MAX_TOOL_NAME {
        return name;
    }
    let hash = blake3::hash(command.as_bytes()).to_hex();
    format!("{}_{}", &name[..MAX_TOOL_NAME - 9], &hash[..8])
}

/// Where an MCP server's tools come from and its calls go.
#[derive(Clone)]
pub enum Backend {
    /// This process's host, as one caller (`continuum mcp` with no node running).
    Local {
        /// The host.
        host: AsyncHost,
        /// Who every call runs as.
        caller: Caller,
    },
    /// The running node, through its owner socket, as its owner or `as_caller` (`continuum mcp`
    /// while a node runs: it keeps the one log writer).
    Node {
        /// The node's data directory.
        root: std::path::PathBuf,
        /// A key or grant token to act as (`--as`).
        as_caller: Option<String>,
    },
    /// The node's `/mcp`: each request as the principal its HTTP request authenticated, each
    /// call in that principal's concurrency budget (the middleware's slot ends with the
    /// response's headers, before a streamed tool call runs).
    Http {
        /// The node.
        app: App,
    },
}

/// An MCP server over one [`Backend`].
#[derive(Clone)]
pub struct McpServer {
    backend: Arc<Backend>,
}

/// How one MCP request's calls are made.
enum Route {
    /// On a host as a caller, within the node's slots for that caller when served over HTTP.
    Host(AsyncHost, Caller, Option<(App, Principal)>),
    /// Through the running node.
    Node(std::path::PathBuf, Option<String>),
}

impl McpServer {
    /// A server over `backend`.
    pub fn new(backend: Backend) -> Self {
        McpServer { backend: Arc::new(backend) }
    }

    /// Where this request's calls go: for `/mcp`, as the principal of its HTTP request.
    fn route(&self, ctx: &RequestContext<RoleServer>) -> Result<Route, McpError> {
        match &*self.backend {
            Backend::Local { host, caller } => Ok(Route::Host(host.clone(), caller.clone(), None)),
            Backend::Node { root, as_caller } => Ok(Route::Node(root.clone(), as_caller.clone())),
            Backend::Http { app } => {
                let principal = ctx
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<Principal>())
                    .ok_or_else(|| McpError::invalid_request("the request was not authenticated", None))?;
                Ok(Route::Host(app.host.clone(), principal.caller(), Some((app.clone(), principal.clone()))))
            }
        }
    }

    /// The commands this request's caller may call.
    async fn commands(&self, route: &Route) -> Result<Vec<CommandSchema>, McpError> {
        let internal = |e: anyhow::Error| McpError::internal_error(format!("{e:#}"), None);
        match route {
            Route::Host(host, caller, _) => {
                let caller = caller.clone();
                host.run(move |h| h.commands_for(&caller)).await.map_err(internal)?.map_err(internal)
            }
            Route::Node(root, as_caller) => {
                let list = through_node(root.clone(), as_caller.clone(), |client, headers| {
                    client.send("GET", "/v1/commands", None, headers)
                })
                .await
                .map_err(internal)?;
                serde_json::from_value(list).map_err(|e| internal(e.into()))
            }
        }
    }
}

/// Runs a request to the node at `root` on a thread of its own (the client blocks), with
/// `x-continuum-as` when acting as another caller.
async fn through_node(
    root: std::path::PathBuf,
    as_caller: Option<String>,
    request: impl FnOnce(&NodeClient, &[(&str, &str)]) -> anyhow::Result<Value> + Send + 'static,
) -> anyhow::Result<Value> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let answer = NodeClient::require(&root).and_then(|client| {
            let headers: Vec<(&str, &str)> = as_caller.as_deref().map(|a| ("x-continuum-as", a)).into_iter().collect();
            request(&client, &headers)
        });
        let _ = tx.send(answer);
    });
    rx.await.map_err(|_| anyhow::anyhow!("the node request was lost"))?
}

/// A JSON Schema as an MCP schema object (`{}` for a schema that is not an object).
fn schema_object(schema: &Value) -> JsonObject {
    schema.as_object().cloned().unwrap_or_default()
}

/// Whether a result schema describes a JSON object (used as structured content as it is).
fn is_object_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

/// The tool for command `c`.
fn tool(c: &CommandSchema) -> Tool {
    let output = if is_object_schema(&c.result) {
        c.result.clone()
    } else {
        json!({ "type": "object", "properties": { "result": c.result }, "required": ["result"] })
    };
    let mut tool = Tool::new(tool_name(&c.name), c.description.clone().unwrap_or_default(), schema_object(&c.params))
        .with_raw_output_schema(Arc::new(schema_object(&output)))
        .with_title(c.name.clone());
    if c.description.is_none() {
        tool.description = None;
    }
    tool
}

/// A successful call as a tool result.
fn success(command: &CommandSchema, value: Value) -> CallToolResult {
    let structured = if is_object_schema(&command.result) { value } else { json!({ "result": value }) };
    let mut result = CallToolResult::success(vec![ContentBlock::text(structured.to_string())]);
    result.structured_content = Some(structured);
    result
}

/// A failed call as a tool error: the message as text, the node's error body as structured content.
fn failure(code: Outcome, message: String, value: Option<Value>) -> CallToolResult {
    let mut body = json!({ "code": code, "message": message });
    if let Some(v) = value {
        body["value"] = v;
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(message)]);
    result.structured_content = Some(json!({ "error": body }));
    result
}

/// What a finished call in this process becomes.
fn reported(command: &CommandSchema, report: CallReport) -> CallToolResult {
    match report.result {
        Ok(value) => success(command, value),
        Err(e) => {
            let value = match &e {
                continuum_core::CallError::CommandFailed { error, .. } => Some(error.clone()),
                _ => None,
            };
            failure(e.outcome(), e.to_string(), value)
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("continuum", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Each tool is a sandboxed Continuum command (`plugin__command` for `plugin/command`); \
                 the list holds exactly the commands you may call.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let route = self.route(&ctx)?;
        let commands = self.commands(&route).await?;
        Ok(ListToolsResult::with_all_items(commands.iter().map(tool).collect()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let route = self.route(&ctx)?;
        let commands = self.commands(&route).await?;
        // Only a listed tool can be called: the list is computed for this caller.
        let Some(command) = commands.into_iter().find(|c| tool_name(&c.name) == request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool `{}`: tools/list shows the tools you may call", request.name),
                None,
            ));
        };
        let params = Value::Object(request.arguments.unwrap_or_default());
        let result = match route {
            Route::Host(host, caller, budget) => {
                let _slot = match &budget {
                    Some((app, principal)) => match limits::slot(app, Some(principal)).await {
                        Some(slot) => Some(slot),
                        None => {
                            let busy = "the node is at its concurrent request limit; retry shortly".to_string();
                            return Ok(failure(Outcome::Busy, busy, None).into());
                        }
                    },
                    None => None,
                };
                let watch = progress_watch(&ctx);
                let cancel = watch.clone();
                let call = host.call(caller, command.name.clone(), params, watch);
                tokio::select! {
                    report = call => reported(&command, report),
                    _ = ctx.ct.cancelled() => {
                        cancel.cancel();
                        failure(Outcome::Cancelled, format!("{} was cancelled by the client", command.name), None)
                    }
                }
            }
            Route::Node(root, as_caller) => {
                let path = format!("/v1/commands/{}", command.name);
                let answer = through_node(root, as_caller, move |client, headers| {
                    client.send("POST", &path, Some(&params), headers)
                })
                .await;
                match answer {
                    Ok(response) => success(&command, response.get("result").cloned().unwrap_or(Value::Null)),
                    Err(e) => match e.downcast::<ApiFailure>() {
                        Ok(f) => failure(f.code, f.message, f.value),
                        Err(e) => failure(Outcome::HostError, format!("{e:#}"), None),
                    },
                }
            }
        };
        Ok(result.into())
    }
}

/// A watch for one tool call: its progress goes to the client as `notifications/progress` when
/// the request carries a progress token.
fn progress_watch(ctx: &RequestContext<RoleServer>) -> Arc<Watch> {
    let Some(token) = ctx.meta.get_progress_token() else { return Arc::new(Watch::new(Purpose::Interactive, None)) };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(f32, String)>();
    let peer = ctx.peer.clone();
    tokio::spawn(async move {
        while let Some((fraction, message)) = rx.recv().await {
            let note = ProgressNotificationParam::new(token.clone(), f64::from(fraction) * 100.0)
                .with_total(100.0)
                .with_message(message);
            if peer.notify_progress(note).await.is_err() {
                break;
            }
        }
    });
    Arc::new(Watch::new(
        Purpose::Interactive,
        Some(Arc::new(move |event| {
            if let CallEvent::Progress { fraction, message, .. } = event {
                let _ = tx.send((fraction, message));
            }
        })),
    ))
}

/// The node's `/mcp` service: stateless streamable HTTP (each request authenticated by the
/// node's own middleware, whose Host check also applies).
pub fn http_service(app: App) -> StreamableHttpService<McpServer, NeverSessionManager> {
    let server = McpServer::new(Backend::Http { app });
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(false).disable_allowed_hosts();
    StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), config)
}

/// Serves MCP over this process's stdin and stdout until the client closes them.
pub async fn serve_stdio(backend: Backend) -> anyhow::Result<()> {
    use rmcp::ServiceExt;
    let running = McpServer::new(backend).serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_use_only_characters_mcp_clients_accept() {
        assert_eq!(tool_name("text/stats"), "text__stats");
        assert_eq!(tool_name("wc"), "wc");
        assert_eq!(tool_name("rag/index/add-docs"), "rag__index__add-docs");
        let long = format!("{}/{}", "p".repeat(40), "f".repeat(40));
        let name = tool_name(&long);
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("pppp") && name != tool_name(&format!("{long}x")), "{name}");
    }
}
