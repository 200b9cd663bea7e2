//! The node and the grid, on top of `continuum-core`.
//!
//! `continuum serve`: one process owning the host core (models stay resident, the log has one
//! writer), serving the HTTP API ([`http`]) on loopback TCP and on a unix socket in the data
//! directory, and the grid endpoint ([`crate::grid`]).
//!
//! While it runs, `<data>/node.json` says where (pid, addresses, id) and `<data>/node.token`
//! holds the owner token for TCP; the CLI finds the node through [`client`].

pub mod async_host;
pub mod auth;
pub mod client;
pub mod console;
pub mod grid;
pub mod http;
pub mod jobs;
pub mod market;
pub mod mcp;
pub mod socket;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::async_host::AsyncHost;
use crate::grid::{Grid, GridOptions};
use continuum_core::runtime::Host;

/// The node's, the grid's and the jobs' tables, migrated by [`open_host`].
pub const SCHEMAS: [&continuum_core::db::Schema; 5] =
    [&grid::peers::SCHEMA, &auth::SCHEMA, &jobs::store::SCHEMA, &market::ledger::SCHEMA, &market::budget::SCHEMA];

/// Opens the host over `data` with the node's tables (peers, API keys) migrated too: how the
/// node and the command line open a data directory.
pub fn open_host(data: continuum_core::paths::DataDir) -> Result<Host> {
    open_host_for(data, continuum_core::Calls::Many)
}

/// Opens the host over `data` for the calls `calls` says it will run, with the node's tables.
pub fn open_host_for(data: continuum_core::paths::DataDir, calls: continuum_core::Calls) -> Result<Host> {
    let host = Host::open_for(data, calls)?;
    continuum_core::db::migrate(&mut host.core().db(), &SCHEMAS)?;
    Ok(host)
}

/// How `continuum serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// TCP address of the HTTP API.
    pub http: SocketAddr,
    /// UDP address of the grid endpoint.
    pub grid: SocketAddr,
    /// Peers to add at start (`<node-id>@<ip:port>`).
    pub peers: Vec<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Requests handled at once.
    pub max_concurrent: usize,
    /// How often the node re-announces its offer.
    pub offer_interval: Duration,
    /// Turn LAN discovery on (also `[grid] lan`).
    pub lan: bool,
    /// Relays beside those of `[grid] relays`.
    pub relays: Vec<String>,
}

/// Where a running node is: `<data>/node.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeFile {
    /// The node id.
    pub id: String,
    /// Its process id.
    pub pid: u32,
    /// `http://ip:port` of the API.
    pub http: String,
    /// The grid endpoint's addresses.
    pub grid: Vec<String>,
    /// The unix socket.
    pub socket: PathBuf,
}

impl NodeFile {
    /// `<id>@<grid address>`: what a peer passes to `continuum peer add`.
    pub fn peer_address(&self) -> String {
        format!("{}@{}", self.id, self.grid.join(","))
    }
}

/// Runs the node until SIGINT, SIGTERM or `POST /v1/shutdown`; `ready` is told where it
/// listens once everything is bound.
pub fn serve(host: Host, options: ServeOptions, ready: impl FnOnce(&NodeFile)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("continuum-node")
        .build()
        .context("cannot start the node's runtime")?;
    // What the async half needs of the host's memory is read here, so that it reaches the
    // host only through an `AsyncHost`.
    let start = Start {
        root: host.core().data().root().to_path_buf(),
        terms: market::terms::Terms::from_config(&host.core().config().grid)?,
        reach: grid::Reach::from_config(&host.core().config().grid, options.lan, &options.relays)?,
        jobs_config: host.core().config().jobs.clone(),
        grid_host: host.clone(),
        host: AsyncHost::new(host),
    };
    runtime.block_on(run(start, options, ready))
}

/// How long in-flight requests may take to finish once the node is stopping.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What [`run`] starts from: the host, as async code holds it, and what it needs of its memory.
struct Start {
    /// The host, for the HTTP API and the serve lifecycle.
    host: AsyncHost,
    /// The host, for [`Grid::start`] (the grid keeps its own).
    grid_host: Host,
    /// The data directory's root.
    root: PathBuf,
    /// What the node asks (prices, credit limit).
    terms: market::terms::Terms,
    /// How the grid meets other nodes.
    reach: grid::Reach,
    /// How many jobs the node holds and runs.
    jobs_config: continuum_core::config::JobsSection,
}

/// The serve lifecycle: binds the grid, the TCP listener and the owner socket, serves until
/// asked to stop, then cleans up.
async fn run(start: Start, options: ServeOptions, ready: impl FnOnce(&NodeFile)) -> Result<()> {
    let Start { host, grid_host, root, terms, reach, jobs_config } = start;
    let socket = root.join("node.sock");
    if socket.exists() {
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            let pid = client::running(&root).map(|n| n.pid.to_string()).unwrap_or_else(|| "?".into());
            bail!("a node is already running on {} (pid {pid}); stop it first (`continuum node stop`)", root.display());
        }
        std::fs::remove_file(&socket)
            .with_context(|| format!("cannot remove the stale socket {}", socket.display()))?;
    }
    // Jobs left running by the last run are marked interrupted before anything else starts.
    let jobs = jobs::Jobs::open(host.clone(), jobs_config).await?;
    let grid_options = GridOptions { bind: options.grid, offer_interval: options.offer_interval, terms, reach };
    let grid = Grid::start(grid_host, grid_options, jobs).await?;
    for spec in &options.peers {
        grid.add_peer(spec, None, None).await.with_context(|| format!("--peer {spec}"))?;
    }
    let tcp = tokio::net::TcpListener::bind(options.http).await.with_context(|| {
        format!("cannot listen on {} (is another node using it? pick one with --http)", options.http)
    })?;
    let unix = socket::OwnerSocket::bind(&socket)?;
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).context("no randomness for the owner token")?;
    let owner_token = hex::encode(raw);
    continuum_core::paths::write_private(&root.join("node.token"), owner_token.as_bytes())?;
    let http_addr = format!("http://{}", tcp.local_addr()?);
    let (shutdown, mut stop) = tokio::sync::watch::channel(false);
    let http_port = tcp.local_addr()?.port();
    let app = Arc::new(http::AppState::new(
        host.clone(),
        grid.clone(),
        owner_token,
        options.max_concurrent,
        options.max_body_bytes,
        shutdown.clone(),
        http_addr.clone(),
        http_port,
    ));
    let node = NodeFile {
        id: grid.id(),
        pid: std::process::id(),
        http: http_addr,
        grid: grid.reachable_at(),
        socket: socket.clone(),
    };
    continuum_core::paths::write_private(&root.join("node.json"), serde_json::to_string_pretty(&node)?.as_bytes())?;
    append_log(&host, "node.started", &node.id, serde_json::json!({ "http": node.http, "grid": node.grid })).await?;
    // Plugins load in the background: the node answers at once, and calls made meanwhile
    // load what they need themselves.
    let warming = host.clone();
    tokio::spawn(async move {
        match warming.run(|host| host.warm()).await {
            Ok(Ok(n)) => tracing::debug!("{n} plugins loaded"),
            Ok(Err(e)) | Err(e) => tracing::warn!("plugins were not preloaded (calls load them): {e:#}"),
        }
    });
    let signals = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        let _ = signals.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tcp_app = http::router(app.clone()).layer(axum::Extension(http::Transport::Tcp));
    let unix_app = http::router(app).layer(axum::Extension(http::Transport::Socket));
    ready(&node);
    let tcp_server = axum::serve(tcp, tcp_app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stopped(stop.clone()));
    let unix_server = axum::serve(unix, unix_app).with_graceful_shutdown(stopped(stop.clone()));
    let servers = async { tokio::join!(async { tcp_server.await }, async { unix_server.await }) };
    // In-flight requests get a grace period; a client that keeps a connection open longer
    // (say, a stalled upload) does not keep the node from stopping.
    let mut deadline = stop.clone();
    let grace = async move {
        let _ = deadline.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let (a, b) = tokio::select! {
        done = servers => done,
        () = grace => {
            tracing::warn!("connections still open {} s after shutdown began; closing them", SHUTDOWN_GRACE.as_secs());
            (Ok(()), Ok(()))
        }
    };
    let _ = stop.wait_for(|s| *s).await;
    grid.shutdown().await;
    for file in ["node.json", "node.token", "node.sock"] {
        let _ = std::fs::remove_file(root.join(file));
    }
    append_log(&host, "node.stopped", &node.id, serde_json::json!({})).await?;
    a.context("the HTTP server failed")?;
    b.context("the socket server failed")?;
    Ok(())
}

/// Appends a `kind` entry about `subject` to the host's log, committed on the call pool.
async fn append_log(host: &AsyncHost, kind: &'static str, subject: &str, data: serde_json::Value) -> Result<()> {
    let subject = subject.to_string();
    host.run(move |host| host.core().log().append(kind, &subject, &data)).await?.map(|_| ())
}
