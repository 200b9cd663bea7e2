//! `continuum serve`, `node`, `peer`, `offers`, `apikey`, and the CLI paths that go through a
//! running node: `run` (local or `--on` peers), `plugin install --from`, `events pull`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::{help, params, Exit, OutputFormat};
use crate::node::client::{ApiFailure, NodeClient};
use crate::node::{NodeFile, ServeOptions};
use crate::reflect::CommandSchema;
use crate::runtime::Host;
use crate::terminal::strip_control;

/// `continuum serve` options.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
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
}

/// Remote-dispatch flags of `continuum run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RemoteArgs {
    /// Run on peers: a peer (id, prefix or name), `any`, or `all`.
    #[arg(long)]
    on: Option<String>,
    /// single (default), multi, or any.
    #[arg(long, value_parser = ["single", "multi", "any"])]
    quorum: Option<String>,
    /// Fewest answers (multi: 2).
    #[arg(long)]
    min: Option<usize>,
    /// Most peers asked (multi: 8).
    #[arg(long)]
    max: Option<usize>,
    /// majority, union, fedavg, weighted-average, best-of-n, first-good, merge-top-k, or a command.
    #[arg(long)]
    reduce: Option<String>,
    /// How many items merge-top-k keeps.
    #[arg(long)]
    k: Option<usize>,
    /// When fewer than --min answer: fail (default), degraded, or wait=<duration>.
    #[arg(long)]
    if_under_min: Option<String>,
    /// A grant token to present (default: the one stored with the peer).
    #[arg(long)]
    grant: Option<String>,
    /// Per-peer time limit (`30s`).
    #[arg(long)]
    timeout: Option<String>,
    /// With `--on any|all`: also run on nodes that are not peers, known only from offers
    /// relayed by gossip (they see the parameters). Off by default.
    #[arg(long)]
    strangers: bool,
}

impl RemoteArgs {
    /// Whether the call goes to peers.
    pub(crate) fn is_remote(&self) -> bool {
        self.on.is_some()
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCmd {
    /// Show the running node: id, addresses, what to give peers.
    Info,
    /// Stop the running node gracefully.
    Stop,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PeerCmd {
    /// Add (or update) a peer: `continuum peer add <node-id>@<ip:port>`.
    Add {
        /// `<node-id>@<ip:port>` (from the peer's `continuum node info`).
        address: String,
        /// A nickname.
        #[arg(long)]
        name: Option<String>,
        /// A grant token the peer issued to this node, presented on calls to it.
        #[arg(long)]
        grant: Option<String>,
    },
    /// List peers and what they offer.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a peer.
    Remove {
        /// Id, id prefix or name.
        peer: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCmd {
    /// Create an API key for HTTP clients, calling as a grantee key or as the holder of a grant.
    Create {
        /// A grant token (the key calls with it), or a bare public key (public commands only).
        #[arg(long = "for", value_name = "TOKEN|KEY")]
        grantee: String,
        /// A label.
        #[arg(long)]
        label: Option<String>,
    },
    /// List API keys (never the keys themselves).
    List,
    /// Revoke an API key by id.
    Revoke {
        /// The key's id.
        id: String,
    },
}

/// The exit code for an API error code (the same as for a local call's outcome).
fn exit_code(code: &str) -> i32 {
    match code {
        "bad-request" => 2,
        "unauthenticated" => 5,
        "no-peer" | "unreachable" | "timeout" | "quorum" => 6,
        outcome => crate::runtime::outcome_exit_code(outcome),
    }
}

/// An error from the node as an exit code and message.
pub(crate) fn api_exit(e: anyhow::Error) -> Exit {
    match e.downcast_ref::<ApiFailure>() {
        Some(f) => Exit { code: exit_code(&f.code), message: f.message.clone() },
        None => Exit::from(e),
    }
}

/// Runs the node in this process until it is stopped.
pub(crate) fn serve(host: Host, args: ServeArgs) -> Result<()> {
    let offer_interval = humantime::parse_duration(&args.offer_interval)
        .with_context(|| format!("--offer-interval `{}`", args.offer_interval))?;
    let options = ServeOptions {
        http: args.http,
        grid: args.grid,
        peers: args.peers,
        max_body_bytes: args.max_body,
        max_concurrent: args.max_concurrent,
        offer_interval,
    };
    crate::node::serve(host, options, |node: &NodeFile| {
        println!("node {} serving {} (socket {})", node.id, node.http, node.socket.display());
        println!("peers add it with: continuum peer add {}", node.peer_address());
        let _ = std::io::stdout().flush();
    })
}

pub(crate) fn node(root: &Path, cmd: NodeCmd) -> Result<()> {
    let client = NodeClient::require(root)?;
    match cmd {
        NodeCmd::Info => {
            let info = client.get("/v1/node")?;
            let file = crate::node::client::running(root).context("the node's node.json is missing")?;
            println!("{}", serde_json::to_string_pretty(&info)?);
            println!("peer address: {}", file.peer_address());
        }
        NodeCmd::Stop => {
            let pid = crate::node::client::running(root).map(|n| n.pid);
            client.post("/v1/shutdown", &json!({}))?;
            // Wait for it to let go of its socket, so the next command runs in-process.
            for _ in 0..100 {
                if NodeClient::find(root).is_none() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            println!("node stopped{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default());
        }
    }
    Ok(())
}

pub(crate) fn peer(root: &Path, cmd: PeerCmd) -> Result<()> {
    let client = NodeClient::require(root)?;
    match cmd {
        PeerCmd::Add { address, name, grant } => {
            let peer = client.post("/v1/peers", &json!({ "address": address, "name": name, "grant": grant }))?;
            println!("added peer {}", peer["id"].as_str().unwrap_or(""));
        }
        PeerCmd::List { json } => {
            let peers = client.get("/v1/peers")?;
            let offers = client.get("/v1/offers")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({ "peers": peers, "offers": offers }))?);
                return Ok(());
            }
            let empty = vec![];
            let peers = peers.as_array().unwrap_or(&empty);
            if peers.is_empty() {
                println!("no peers; add one with `continuum peer add <node-id>@<ip:port>`");
            }
            for p in peers {
                let id = p["id"].as_str().unwrap_or("");
                let offer = offers.as_array().and_then(|o| o.iter().find(|k| k["offer"]["node"] == id));
                let plugins: Vec<String> = offer
                    .and_then(|k| k["offer"]["plugins"].as_array())
                    .map(|ps| ps.iter().filter_map(|p| p["name"].as_str().map(String::from)).collect())
                    .unwrap_or_default();
                let addrs: Vec<&str> =
                    p["addrs"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                println!(
                    "{}  {:<10} {:<22} {}",
                    &id[..16.min(id.len())],
                    p["name"].as_str().unwrap_or("-"),
                    addrs.join(","),
                    if offer.is_none() {
                        "no offer yet".to_string()
                    } else {
                        format!("offers: {}", plugins.join(", "))
                    }
                );
            }
        }
        PeerCmd::Remove { peer } => {
            let removed = client.delete(&format!("/v1/peers/{peer}"))?;
            println!("removed peer {}", removed["id"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// `continuum offers [--search text]`.
pub(crate) fn offers(root: &Path, search: Option<&str>, json: bool) -> Result<()> {
    let client = NodeClient::require(root)?;
    if let Some(query) = search {
        let path = format!("/v1/offers/search?query={}&top=10", url_escape(query));
        let found = client.get(&path)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&found)?);
            return Ok(());
        }
        for m in found["matches"].as_array().into_iter().flatten() {
            let node = m["node"].as_str().unwrap_or("");
            println!(
                "{:.3}  {:<28} {:<8} {}  {}",
                m["score"].as_f64().unwrap_or(0.0),
                m["name"].as_str().unwrap_or(""),
                m["access"].as_str().unwrap_or(""),
                &node[..12.min(node.len())],
                m["about"].as_str().unwrap_or("")
            );
        }
        return Ok(());
    }
    let offers = client.get("/v1/offers")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&offers)?);
        return Ok(());
    }
    for k in offers.as_array().into_iter().flatten() {
        let node = k["offer"]["node"].as_str().unwrap_or("");
        println!("{} (via {})", node, k["via"].as_str().unwrap_or(""));
        for p in k["offer"]["plugins"].as_array().into_iter().flatten() {
            let commands = p["commands"].as_array().map_or(0, Vec::len);
            println!(
                "  {:<14} {:<8} {:>2} commands  sha256:{}  {} bytes{}",
                p["name"].as_str().unwrap_or(""),
                p["version"].as_str().unwrap_or(""),
                commands,
                &p["digest"].as_str().unwrap_or("")[..12],
                p["size"],
                if p["idempotent"] == true { "  idempotent" } else { "" }
            );
        }
    }
    Ok(())
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn apikey(host: &Host, cmd: ApiKeyCmd) -> Result<()> {
    match cmd {
        ApiKeyCmd::Create { grantee, label } => {
            let (id, key) = crate::node::auth::create_api_key(host, &grantee, label.as_deref())?;
            eprintln!("API key {id} created; it is shown only now. Clients send `Authorization: Bearer <key>`:");
            println!("{key}");
        }
        ApiKeyCmd::List => {
            for k in crate::node::auth::api_keys(&host.core().db())? {
                println!(
                    "{}  {}  {}  {}",
                    k.id,
                    &k.grantee[..16.min(k.grantee.len())],
                    if k.granted { "granted" } else { "no grant" },
                    k.label.unwrap_or_default()
                );
            }
        }
        ApiKeyCmd::Revoke { id } => {
            crate::node::auth::revoke_api_key(host, &id)?;
            println!("revoked API key {id}");
        }
    }
    Ok(())
}

/// `continuum plugin install <name|digest> --from <peer|any>` through the node.
pub(crate) fn install_from(root: &Path, what: &str, from: &str, allow: &[String], allow_untrusted: bool) -> Result<()> {
    let client = NodeClient::require(root)?;
    let fetched = client.post(
        "/v1/grid/install",
        &json!({ "plugin": what, "from": from, "allow": allow, "allow_untrusted": allow_untrusted }),
    )?;
    println!(
        "installed {} {} (sha256:{}) from peer {}: {} bytes in {:.1} ms, verified",
        fetched["name"].as_str().unwrap_or(""),
        fetched["version"].as_str().unwrap_or(""),
        &fetched["digest"].as_str().unwrap_or("")[..12],
        &fetched["from"].as_str().unwrap_or("")[..12],
        fetched["bytes"],
        fetched["transfer_us"].as_f64().unwrap_or(0.0) / 1000.0
    );
    Ok(())
}

/// `continuum events pull <peer>` through the node.
pub(crate) fn pull_events(root: &Path, peer: &str) -> Result<()> {
    let client = NodeClient::require(root)?;
    let pulled = client.post("/v1/grid/events/pull", &json!({ "peer": peer }))?;
    println!(
        "pulled {} new entries of {}'s log; Lamport time now {}",
        pulled["entries"],
        &pulled["node"].as_str().unwrap_or("")[..12],
        pulled["lamport"]
    );
    Ok(())
}

fn print_value(value: &Value, output: Option<OutputFormat>) -> Result<()> {
    let format =
        output.unwrap_or(if std::io::stdout().is_terminal() { OutputFormat::Pretty } else { OutputFormat::Json });
    let text = match (format, value) {
        (OutputFormat::Pretty, Value::String(s)) => strip_control(s),
        (OutputFormat::Pretty, v) => serde_json::to_string_pretty(v)?,
        (OutputFormat::Json, v) => v.to_string(),
    };
    println!("{text}");
    Ok(())
}

/// `continuum run` through the running node: on this node, or with `--on` on peers.
pub(crate) fn run(
    client: &NodeClient,
    remote: &RemoteArgs,
    output: Option<OutputFormat>,
    as_caller: Option<&str>,
    name: &str,
    args: &[String],
) -> Result<(), Exit> {
    let params = if remote.is_remote() {
        // The command may not exist here: its schema comes from the offers.
        let offers = client.get("/v1/offers").map_err(api_exit)?;
        let schema = offers
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|k| k["offer"]["plugins"].as_array().into_iter().flatten())
            .flat_map(|p| p["commands"].as_array().into_iter().flatten())
            .find(|c| c["name"] == name)
            .map(|c| CommandSchema {
                name: name.to_string(),
                description: c["description"].as_str().map(String::from),
                param_style: crate::reflect::ParamStyle::Named,
                params: c["params"].clone(),
                result: c["result"].clone(),
                error: None,
            });
        match (schema, args) {
            (Some(schema), args) => parse_params(&schema, name, args)?,
            (None, [one]) if one.trim_start().starts_with('{') => {
                serde_json::from_str(one).map_err(|e| Exit { code: 2, message: format!("{name}: {e}") })?
            }
            (None, _) => {
                return Err(Exit {
                    code: 6,
                    message: format!("no peer offers `{name}` (`continuum offers` lists what peers offer); pass the parameters as one JSON object to try anyway"),
                })
            }
        }
    } else {
        let schema: CommandSchema =
            serde_json::from_value(client.get(&format!("/v1/commands/{name}")).map_err(api_exit)?)
                .map_err(|e| Exit::from(anyhow::Error::from(e)))?;
        parse_params(&schema, name, args)?
    };
    if let Some(on) = &remote.on {
        let timeout = remote
            .timeout
            .as_deref()
            .map(humantime::parse_duration)
            .transpose()
            .map_err(|e| Exit { code: 2, message: format!("--timeout: {e}") })?;
        let call = json!({
            "command": name, "params": params, "on": on, "quorum": remote.quorum.as_deref().unwrap_or("single"),
            "min": remote.min, "max": remote.max, "reduce": remote.reduce, "k": remote.k,
            "if_under_min": remote.if_under_min, "grant": remote.grant,
            "timeout_ms": timeout.map(|t| t.as_millis() as u64), "strangers": remote.strangers,
        });
        let result = client.post("/v1/grid/call", &call).map_err(api_exit)?;
        let contributors: Vec<&str> =
            result["contributors"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        eprintln!(
            "[from {}{}{}]",
            contributors.iter().map(|c| &c[..12.min(c.len())]).collect::<Vec<_>>().join(", "),
            result["reducer"].as_str().map(|r| format!(" by {r}")).unwrap_or_default(),
            if result["degraded"] == true { ", degraded: fewer than --min answered" } else { "" }
        );
        eprintln!("[contributors {}]", contributors.join(","));
        return print_value(&result["value"], output).map_err(Exit::from);
    }
    let headers: Vec<(&str, &str)> = as_caller.map(|a| ("x-continuum-as", a)).into_iter().collect();
    let response =
        client.send("POST", &format!("/v1/commands/{name}"), Some(&params), &headers).map_err(|e| match e
            .downcast_ref::<ApiFailure>()
        {
            Some(f) if f.code == "invalid-params" => Exit {
                code: 2,
                message: format!("{} (see `continuum run {name} --help`)", params::flag_error(&f.message)),
            },
            _ => api_exit(e),
        })?;
    if let Some(out) = response["output"].as_str() {
        for line in out.lines() {
            eprintln!("[{name}] {line}");
        }
    }
    print_value(&response["result"], output).map_err(Exit::from)
}

fn parse_params(schema: &CommandSchema, name: &str, args: &[String]) -> Result<Value, Exit> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help::render(schema));
        std::process::exit(0);
    }
    params::from_args(schema, args).map_err(|e| Exit { code: 2, message: format!("{name}: {e:#}") })
}
