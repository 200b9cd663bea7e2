//! `continuum serve` (run this node) and `continuum node …` (the running node: info, stop), and
//! how the other commands talk to the running node: typed requests, and telling it to reload.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::output;
use crate::node::client::{running, NodeClient};
use crate::node::http::NodeInfo;
use crate::node::{NodeFile, ServeOptions};
use crate::runtime::Host;

/// `continuum serve` options.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// TCP address of the HTTP API (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7480")]
    http: std::net::SocketAddr,
    /// UDP address of the grid endpoint (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7481")]
    grid: std::net::SocketAddr,
    /// A peer to add at start, `<node-id>@<ip:port>`; repeat for more.
    #[arg(long = "peer", value_name = "ID@ADDR")]
    peers: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    max_body: usize,
    /// Requests handled at once (more wait up to 10 s, then get 503).
    #[arg(long, default_value_t = 256)]
    max_concurrent: usize,
    /// How often to re-announce this node's offer (`10s`, `1m`).
    #[arg(long, default_value = "10s")]
    offer_interval: String,
    /// Find nodes on the LAN by multicast and announce this one (also `[grid] lan = true`);
    /// what is found waits for `continuum peer accept`.
    #[arg(long)]
    lan: bool,
    /// A relay server to stay reachable through (`http://host:port`); repeat for more. Also
    /// `[grid] relays`. None by default: no relay is contacted.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
}

/// `continuum node …`.
#[derive(Debug, Subcommand)]
pub(super) enum NodeCmd {
    /// Show the running node: id, addresses, what to give peers.
    Info,
    /// Stop the running node gracefully.
    Stop,
}

/// Runs the node in this process until it is stopped.
pub(super) fn serve(host: Host, args: ServeArgs) -> Result<()> {
    let offer_interval = humantime::parse_duration(&args.offer_interval)
        .with_context(|| format!("--offer-interval `{}`", args.offer_interval))?;
    let options = ServeOptions {
        http: args.http,
        grid: args.grid,
        peers: args.peers,
        max_body_bytes: args.max_body,
        max_concurrent: args.max_concurrent,
        offer_interval,
        lan: args.lan,
        relays: args.relays,
    };
    crate::node::serve(host, options, |node: &NodeFile| {
        let mut out = std::io::stdout().lock();
        let line = format!(
            "node {} serving {} (socket {})\npeers add it with: continuum peer add {}",
            node.id,
            node.http,
            node.socket.display(),
            node.peer_address()
        );
        let _ = output::confirm(&mut out, node, line);
        let _ = out.flush();
    })
}

/// Runs a `node` subcommand against the node serving `root`.
pub(super) fn run(root: &Path, cmd: NodeCmd) -> Result<()> {
    let client = NodeClient::require(root)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        NodeCmd::Info => {
            let info: NodeInfo = get(&client, "/v1/node")?;
            output::emit(&mut out, &info, |out| {
                output::print_json(out, &info)?;
                // As the node reaches now (a relay connected after start included).
                Ok(writeln!(out, "peer address: {}@{}", info.id, info.grid.join(","))?)
            })?;
        }
        NodeCmd::Stop => {
            let pid = running(root).map(|n| n.pid);
            let _: Value = client.post("/v1/shutdown", &json!({}))?;
            // Wait for it to let go of its socket, so the next command runs in-process.
            for _ in 0..100 {
                if NodeClient::find(root).is_none() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let stopped = json!({ "stopped": true, "pid": pid });
            output::confirm(
                &mut out,
                &stopped,
                format_args!("node stopped{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default()),
            )?;
        }
    }
    Ok(())
}

/// After the CLI changed plugins or grants in the data directory, a node serving it re-reads
/// them: otherwise it would keep running a removed plugin or honour a revoked grant.
pub(super) fn tell_running_node(root: &Path) {
    if let Some(node) = NodeClient::find(root) {
        let reloaded: Result<Value> = node.post("/v1/reload", &Value::Null);
        if let Err(e) = reloaded {
            eprintln!(
                "warning: the node serving {} did not reload ({e:#}); restart it to apply this change",
                root.display()
            );
        }
    }
}

/// `GET path` on the running node, read as that route's response type.
pub(super) fn get<T: DeserializeOwned>(client: &NodeClient, path: &str) -> Result<T> {
    send(client, "GET", path, None, &[])
}

/// `POST path` with `body` (the route's request type) on the running node, read as the route's
/// response type.
pub(super) fn post<T: DeserializeOwned>(client: &NodeClient, path: &str, body: &impl Serialize) -> Result<T> {
    let body = serde_json::to_value(body).context("encoding the request")?;
    send(client, "POST", path, Some(&body), &[])
}

/// A request to the running node, read as that route's response type; a missing field or one
/// of the wrong type is named in the error.
pub(super) fn send<T: DeserializeOwned>(
    client: &NodeClient,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<T> {
    let answer: Value = client.send(method, path, body, headers)?;
    serde_json::from_value(answer)
        .with_context(|| format!("the node's answer to {method} {path} is not what this version expects"))
}
