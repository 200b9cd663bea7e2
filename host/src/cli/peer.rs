//! `continuum peer …` (add, list, remove grid peers) and `continuum offers` (what peers offer,
//! or with `--search` their commands ranked by meaning), through the running node.

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{node, prefix};
use crate::grid::discovered::DiscoveredNode;
use crate::grid::peers::{Peer, PeerView};
use crate::grid::KnownOffer;
use crate::node::client::NodeClient;
use crate::node::http::{AcceptPeer, AddPeer, OfferSearch};

/// `continuum peer …`.
#[derive(Debug, Subcommand)]
pub(super) enum PeerCmd {
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
    /// Make a node found on the LAN or introduced by a peer a peer (`peer list` shows them).
    Accept {
        /// Its id, or a prefix of at least 8 digits.
        id: String,
        /// A nickname.
        #[arg(long)]
        name: Option<String>,
    },
    /// List peers, what they offer and how they are reached, and the nodes discovered.
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

/// The arguments of `continuum offers`.
#[derive(Debug, clap::Args)]
pub(super) struct OffersArgs {
    /// Rank offered commands by what they do.
    #[arg(long)]
    pub(super) search: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(super) json: bool,
}

/// Runs a `peer` subcommand through the node serving `root`.
pub(super) fn run(root: &Path, cmd: PeerCmd) -> Result<()> {
    let client = NodeClient::require(root)?;
    match cmd {
        PeerCmd::Add { address, name, grant } => {
            let peer: Peer = node::post(&client, "/v1/peers", &AddPeer { address, name, grant })?;
            println!("added peer {}", peer.id);
        }
        PeerCmd::Accept { id, name } => {
            let peer: Peer = node::post(&client, "/v1/peers/accept", &AcceptPeer { key: id, name })?;
            println!("accepted peer {}", peer.id);
        }
        PeerCmd::List { json } => {
            let peers: Vec<PeerView> = node::get(&client, "/v1/peers")?;
            let offers: Vec<KnownOffer> = node::get(&client, "/v1/offers")?;
            let discovered: Vec<DiscoveredNode> = node::get(&client, "/v1/peers/discovered")?;
            if json {
                let all = json!({ "peers": peers, "discovered": discovered, "offers": offers });
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(());
            }
            if peers.is_empty() {
                println!("no peers; add one with `continuum peer add <node-id>@<ip:port>`");
            }
            for d in &discovered {
                println!(
                    "{}  discovered ({}) at {}; accept with `continuum peer accept {}`",
                    prefix(&d.id, 16),
                    d.source,
                    d.addrs.join(","),
                    prefix(&d.id, 16)
                );
            }
            for view in &peers {
                let p = &view.peer;
                let addrs: Vec<String> = p.addrs.iter().map(ToString::to_string).chain(p.relays.clone()).collect();
                let offered = match offers.iter().find(|k| k.offer.node == p.id) {
                    Some(k) => {
                        let plugins: Vec<&str> = k.offer.plugins.iter().map(|plugin| plugin.name.as_str()).collect();
                        format!("offers: {}", plugins.join(", "))
                    }
                    None => "no offer yet".to_string(),
                };
                println!(
                    "{}  {:<10} {:<22} {:<8} {offered}",
                    prefix(&p.id, 16),
                    p.name.as_deref().unwrap_or("-"),
                    addrs.join(","),
                    view.path.as_deref().unwrap_or("-")
                );
            }
        }
        PeerCmd::Remove { peer } => {
            let removed: Peer = node::send(&client, "DELETE", &format!("/v1/peers/{peer}"), None, &[])?;
            println!("removed peer {}", removed.id);
        }
    }
    Ok(())
}

/// `continuum offers [--search text]` (and `continuum commands search --grid`) through the node
/// serving `root`.
pub(super) fn offers(root: &Path, search: Option<&str>, json: bool) -> Result<()> {
    let client = NodeClient::require(root)?;
    if let Some(query) = search {
        let found: OfferSearch = node::get(&client, &format!("/v1/offers/search?query={}&top=10", url_escape(query)))?;
        if json {
            println!("{}", serde_json::to_string_pretty(&found)?);
            return Ok(());
        }
        for m in &found.matches {
            println!("{:.3}  {:<28} {:<8} {}  {}", m.score, m.name, m.access, prefix(&m.node, 12), m.about);
        }
        return Ok(());
    }
    let offers: Vec<KnownOffer> = node::get(&client, "/v1/offers")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&offers)?);
        return Ok(());
    }
    for k in &offers {
        let c = &k.offer.capacity;
        println!("{} (via {})", k.offer.node, k.via);
        println!(
            "  {} cores, {} MiB, {}; load: {} calls, {} jobs running, {} queued, {}/{} slots free; median call {}",
            c.cores,
            c.memory_mib.map_or("?".to_string(), |m| m.to_string()),
            c.gpu.as_ref().map_or("no GPU".to_string(), |g| g.name.clone()),
            c.load.calls_running,
            c.load.jobs_running,
            c.load.jobs_queued,
            c.load.free_slots,
            c.load.slots,
            c.latency.p50_ms.map_or("-".to_string(), |ms| format!("{ms} ms"))
        );
        if !c.models.is_empty() {
            let models: Vec<String> = c
                .models
                .iter()
                .map(|m| format!("{} ({}{})", m.id, m.kind, if m.loaded { ", loaded" } else { "" }))
                .collect();
            println!("  models: {}", models.join(", "));
        }
        for p in &k.offer.plugins {
            println!(
                "  {:<14} {:<8} {:>2} commands  sha256:{}  {} bytes{}{}",
                p.name,
                p.version,
                p.commands.len(),
                prefix(&p.digest, 12),
                p.size,
                if p.idempotent { "  idempotent" } else { "" },
                match p.fetch_millicredits {
                    0 => String::new(),
                    mc => format!("  fetch {} credits", crate::node::market::terms::credits(mc)),
                }
            );
            for command in p.commands.iter().filter(|c| !c.price.is_free()) {
                println!("    {:<28} {}", command.name, command.price);
            }
        }
    }
    Ok(())
}

/// `text` percent-encoded for a URL query.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
