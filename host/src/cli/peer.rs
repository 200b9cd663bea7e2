//! `continuum peer …` (add, list, remove grid peers) and `continuum offers` (what peers offer,
//! or with `--search` their commands ranked by meaning), through the running node.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{node, output, prefix};
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
    List,
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
}

/// Runs a `peer` subcommand through the node serving `root`.
pub(super) fn run(root: &Path, cmd: PeerCmd) -> Result<()> {
    let client = NodeClient::require(root)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        PeerCmd::Add { address, name, grant } => {
            let peer: Peer = node::post(&client, "/v1/peers", &AddPeer { address, name, grant })?;
            output::confirm(&mut out, &peer, format_args!("added peer {}", peer.id))
        }
        PeerCmd::Accept { id, name } => {
            let peer: Peer = node::post(&client, "/v1/peers/accept", &AcceptPeer { key: id, name })?;
            output::confirm(&mut out, &peer, format_args!("accepted peer {}", peer.id))
        }
        PeerCmd::List => {
            let peers: Vec<PeerView> = node::get(&client, "/v1/peers")?;
            let offers: Vec<KnownOffer> = node::get(&client, "/v1/offers")?;
            let discovered: Vec<DiscoveredNode> = node::get(&client, "/v1/peers/discovered")?;
            let all = json!({ "peers": peers, "discovered": discovered, "offers": offers });
            output::emit(&mut out, &all, |out| print_peers(out, &peers, &offers, &discovered))
        }
        PeerCmd::Remove { peer } => {
            let removed: Peer = node::send(&client, "DELETE", &format!("/v1/peers/{peer}"), None, &[])?;
            output::confirm(&mut out, &removed, format_args!("removed peer {}", removed.id))
        }
    }
}

/// `peer list`, for a person: the nodes discovered, then each peer, how it is reached and what
/// it offers.
fn print_peers(
    out: &mut impl Write,
    peers: &[PeerView],
    offers: &[KnownOffer],
    discovered: &[DiscoveredNode],
) -> Result<()> {
    if peers.is_empty() {
        output::note(out, "no peers; add one with `continuum peer add <node-id>@<ip:port>`")?;
    }
    for d in discovered {
        writeln!(
            out,
            "{}  discovered ({}) at {}; accept with `continuum peer accept {}`",
            prefix(&d.id, 16),
            d.source,
            d.addrs.join(","),
            prefix(&d.id, 16)
        )?;
    }
    for view in peers {
        let p = &view.peer;
        let addrs: Vec<String> = p.addrs.iter().map(ToString::to_string).chain(p.relays.clone()).collect();
        let offered = match offers.iter().find(|k| k.offer.node == p.id) {
            Some(k) => {
                let plugins: Vec<&str> = k.offer.plugins.iter().map(|plugin| plugin.name.as_str()).collect();
                format!("offers: {}", plugins.join(", "))
            }
            None => "no offer yet".to_string(),
        };
        writeln!(
            out,
            "{}  {:<10} {:<22} {:<8} {offered}",
            prefix(&p.id, 16),
            p.name.as_deref().unwrap_or("-"),
            addrs.join(","),
            view.path.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

/// `continuum offers [--search text]` (and `continuum commands search --grid`) through the node
/// serving `root`.
pub(super) fn offers(root: &Path, search: Option<&str>) -> Result<()> {
    let client = NodeClient::require(root)?;
    let mut out = std::io::stdout().lock();
    if let Some(query) = search {
        let found: OfferSearch = node::get(&client, &format!("/v1/offers/search?query={}&top=10", url_escape(query)))?;
        return output::emit(&mut out, &found, |out| {
            for m in &found.matches {
                writeln!(out, "{:.3}  {:<28} {:<8} {}  {}", m.score, m.name, m.access, prefix(&m.node, 12), m.about)?;
            }
            Ok(())
        });
    }
    let offers: Vec<KnownOffer> = node::get(&client, "/v1/offers")?;
    output::emit(&mut out, &offers, |out| print_offers(out, &offers))
}

/// `offers`, for a person: each node's capacity, load, models, plugins and prices.
fn print_offers(out: &mut impl Write, offers: &[KnownOffer]) -> Result<()> {
    for k in offers {
        let c = &k.offer.capacity;
        writeln!(out, "{} (via {})", k.offer.node, k.via)?;
        writeln!(
            out,
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
        )?;
        if !c.models.is_empty() {
            let models: Vec<String> = c
                .models
                .iter()
                .map(|m| format!("{} ({}{})", m.id, m.kind, if m.loaded { ", loaded" } else { "" }))
                .collect();
            writeln!(out, "  models: {}", models.join(", "))?;
        }
        for p in &k.offer.plugins {
            writeln!(
                out,
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
            )?;
            for command in p.commands.iter().filter(|c| !c.price.is_free()) {
                writeln!(out, "    {:<28} {}", command.name, command.price)?;
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
