//! `continuum nodeset …`: one owner, many nodes. The owner signs a set of its node keys with a
//! key of its own (`sign`); each node joins it (`join`) and then carries it in its offers and
//! calls, so a grant issued to the owner covers every listed node. A provider told of a newer
//! set directly takes it with `import` (offers spread it too). See `docs/grid.md`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::key::key_store;
use super::output;
use crate::keys::{parse_public, public_hex};
use crate::node_set::{self, NodeSet, SignedNodeSet};
use crate::paths::DataDir;
use crate::runtime::Host;

/// `continuum nodeset …`.
#[derive(Debug, Subcommand)]
pub(super) enum NodeSetCmd {
    /// Sign a node set with an owner key of this data dir (`continuum key generate owner`).
    Sign {
        /// The owner key's name.
        #[arg(long)]
        key: String,
        /// A node key (hex) in the set; repeat for each node.
        #[arg(long = "node", value_name = "NODE_ID", required = true)]
        nodes: Vec<String>,
        /// The set's epoch: higher replaces lower everywhere (default: now, in seconds, so a
        /// later set supersedes an earlier one).
        #[arg(long)]
        epoch: Option<u64>,
        /// Write it here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Join a signed set that lists this node: the node carries it from its next offer on.
    Join {
        /// The signed set (JSON, from `nodeset sign`).
        file: PathBuf,
    },
    /// Take a signed set (a newer epoch revokes the nodes it leaves out).
    Import {
        /// The signed set (JSON).
        file: PathBuf,
    },
    /// The node sets this node has seen (the newest of each owner).
    Show,
}

/// Runs a `nodeset` subcommand.
pub(super) fn run(data: &DataDir, open: impl FnOnce() -> Result<Host>, cmd: NodeSetCmd) -> Result<()> {
    match cmd {
        NodeSetCmd::Sign { key, nodes, epoch, output } => {
            let owner = key_store(data).load(&key)?;
            let nodes = nodes
                .iter()
                .map(|n| parse_public(n).map(|k| public_hex(&k)).with_context(|| format!("--node `{n}`")))
                .collect::<Result<Vec<_>>>()?;
            let now = crate::now_secs();
            let set = NodeSet {
                owner: public_hex(&owner.verifying_key()),
                epoch: epoch.unwrap_or(now as u64),
                nodes,
                issued: now,
            };
            let text = serde_json::to_string_pretty(&SignedNodeSet::sign(&set, &owner)?)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?
                }
                None => println!("{text}"),
            }
        }
        NodeSetCmd::Join { file } => {
            let host = open()?;
            let signed = read(&file)?;
            let me = host.node_id();
            let set = node_set::join(&host.core().db(), &signed, &me)?;
            host.core().log().append("nodeset.joined", &set.owner, &serde_json::json!({ "epoch": set.epoch }))?;
            let line =
                format!("joined the node set of owner {} (epoch {}, {} nodes)", set.owner, set.epoch, set.nodes.len());
            output::confirm(&mut std::io::stdout().lock(), &set, line)?;
        }
        NodeSetCmd::Import { file } => {
            let host = open()?;
            let set = node_set::observe(&host.core().db(), &read(&file)?)?;
            host.core().log().append("nodeset.imported", &set.owner, &serde_json::json!({ "epoch": set.epoch }))?;
            let line = format!(
                "holding the node set of owner {} at epoch {} ({} nodes)",
                set.owner,
                set.epoch,
                set.nodes.len()
            );
            output::confirm(&mut std::io::stdout().lock(), &set, line)?;
        }
        NodeSetCmd::Show => {
            let host = open()?;
            let sets = node_set::list(&host.core().db())?;
            let all: Vec<_> = sets
                .iter()
                .map(|(set, joined)| serde_json::json!({ "owner": set.owner, "epoch": set.epoch, "nodes": set.nodes, "joined": joined }))
                .collect();
            output::emit(&mut std::io::stdout().lock(), &all, |out| {
                if sets.is_empty() {
                    output::note(out, "no node sets; an owner makes one with `continuum nodeset sign`")?;
                }
                for (set, joined) in &sets {
                    let mark = if *joined { "  (this node's)" } else { "" };
                    writeln!(out, "owner {}  epoch {}  {} nodes{mark}", set.owner, set.epoch, set.nodes.len())?;
                    for node in &set.nodes {
                        writeln!(out, "  {node}")?;
                    }
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Reads a signed set from `file`.
fn read(file: &std::path::Path) -> Result<SignedNodeSet> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed node set (from `continuum nodeset sign`)", file.display()))
}
