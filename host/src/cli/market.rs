//! `continuum receipts …` (list, show, verify, export the receipts this node signed) and
//! `continuum credits …` (balances per peer, signed statements, reconciling a peer's), read
//! from this node's ledger (`docs/market.md`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use super::{output, prefix, since_ms};
use crate::node::market::ledger::{self, Entry, SignedStatement};
use crate::node::market::receipt::SignedReceipt;
use crate::node::market::terms::credits;
use crate::runtime::Host;

/// `continuum receipts …`.
#[derive(Debug, Subcommand)]
pub(super) enum ReceiptsCmd {
    /// List receipts (oldest first).
    List {
        /// Only those with this peer (its id).
        #[arg(long)]
        peer: Option<String>,
        /// Only those recorded within this long (`1h`, `7days`).
        #[arg(long)]
        since: Option<String>,
    },
    /// Show one receipt, as signed.
    Show {
        /// Its id (or a prefix of at least 6 digits).
        id: String,
    },
    /// Verify a receipt: its signatures, and whether this node's ledger holds it as it is.
    Verify {
        /// A receipt id held here, or a file holding a receipt (JSON, as `show` prints it).
        receipt: String,
    },
    /// Export receipts as JSON lines (one signed receipt each), for a peer or an auditor.
    Export {
        /// Only those with this peer (its id).
        #[arg(long)]
        peer: Option<String>,
        /// Only those recorded within this long.
        #[arg(long)]
        since: Option<String>,
    },
}

/// `continuum credits …` (without a subcommand: the balances).
#[derive(Debug, clap::Args)]
pub(super) struct CreditsArgs {
    #[command(subcommand)]
    cmd: Option<CreditsCmd>,
}

#[derive(Debug, Subcommand)]
enum CreditsCmd {
    /// A statement of what this node and a peer exchanged, signed by this node.
    Statement {
        /// The peer's id.
        peer: String,
        /// Only receipts recorded within this long (`30days`; default: all).
        #[arg(long)]
        since: Option<String>,
        /// Write it here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Compare a peer's signed statement with this node's ledger, receipt by receipt.
    Reconcile {
        /// The statement file.
        file: PathBuf,
    },
}

fn state(entry: &Entry) -> String {
    serde_json::to_value(entry.state).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// Runs a `receipts` subcommand on `host`'s ledger.
pub(super) fn receipts(host: &Host, cmd: ReceiptsCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ReceiptsCmd::List { peer, since } => {
            let entries = ledger::list(&host.core().db(), peer.as_deref(), since_ms(since.as_deref())?)?;
            output::emit(&mut out, &entries, |out| print_receipts(out, &entries))?;
        }
        ReceiptsCmd::Show { id } => {
            let entry = held(host, &id)?;
            output::emit(&mut out, &entry, |out| {
                output::print_json(out, &entry.signed)?;
                output::print_json(out, &entry.receipt()?)
            })?;
        }
        ReceiptsCmd::Verify { receipt } => {
            let signed = if std::path::Path::new(&receipt).is_file() {
                let text = std::fs::read_to_string(&receipt).with_context(|| format!("cannot read {receipt}"))?;
                let first = serde_json::Deserializer::from_str(&text).into_iter::<SignedReceipt>().next();
                first
                    .context("the file holds no receipt")?
                    .with_context(|| format!("{receipt} is not a signed receipt"))?
            } else {
                held(host, &receipt)?.signed
            };
            let verdict = crate::node::market::verify(host, &signed)?;
            output::emit(&mut out, &verdict, |out| {
                for finding in &verdict.findings {
                    writeln!(out, "{finding}")?;
                }
                if verdict.valid {
                    writeln!(out, "receipt {} verified", verdict.id)?;
                }
                Ok(())
            })?;
            if !verdict.valid {
                bail!("receipt {} does not hold: {}", verdict.id, verdict.findings.last().cloned().unwrap_or_default());
            }
        }
        ReceiptsCmd::Export { peer, since } => {
            for e in ledger::list(&host.core().db(), peer.as_deref(), since_ms(since.as_deref())?)? {
                writeln!(out, "{}", serde_json::to_string(&e.signed)?)?;
            }
        }
    }
    Ok(())
}

/// `receipts list`, for a person: a line per receipt.
fn print_receipts(out: &mut impl Write, entries: &[Entry]) -> Result<()> {
    if entries.is_empty() {
        output::note(out, "no receipts; remote calls, jobs and priced fetches leave them")?;
    }
    for e in entries {
        let r = e.receipt()?;
        let role = if matches!(e.role, ledger::Role::Provider) { "earned" } else { "spent" };
        writeln!(
            out,
            "{}  {:<9} {:<13} {:<8} {:<24} {:>8} credits {role}  peer {}",
            prefix(&e.id, 12),
            r.kind.as_str(),
            state(e),
            format!("{}ms", r.units.ms),
            r.command,
            credits(r.millicredits),
            prefix(&e.peer, 12)
        )?;
    }
    Ok(())
}

/// The receipt `id` in this node's ledger, or an error saying how to find one.
fn held(host: &Host, id: &str) -> Result<Entry> {
    ledger::get(&host.core().db(), id)?
        .with_context(|| format!("no receipt `{id}` in this node's ledger; `continuum receipts list` shows them"))
}

/// Runs `credits` on `host`'s ledger.
pub(super) fn credits_cmd(host: &Host, args: CreditsArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match args.cmd {
        None => {
            let balances = ledger::balances(&host.core().db())?;
            output::emit(&mut out, &balances, |out| {
                if balances.is_empty() {
                    output::note(out, "no credits earned or spent yet")?;
                }
                for b in &balances {
                    let net = b.net();
                    writeln!(
                        out,
                        "{}  earned {:>8}  spent {:>8}  net {}{:>8}  pending {}  disputed {}",
                        prefix(&b.peer, 16),
                        credits(b.earned),
                        credits(b.spent),
                        if net < 0 { "-" } else { "+" },
                        credits(net.unsigned_abs() as u64),
                        credits(b.pending),
                        b.disputed
                    )?;
                }
                Ok(())
            })?;
        }
        Some(CreditsCmd::Statement { peer, since, output }) => {
            let core = host.core();
            let peer = crate::keys::public_hex(&crate::keys::parse_public(&peer).context("the peer's id")?);
            let statement = ledger::statement(&core.db(), core.node_key(), &peer, since_ms(since.as_deref())?)?;
            let text = serde_json::to_string_pretty(&statement)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?
                }
                None => writeln!(out, "{text}")?,
            }
        }
        Some(CreditsCmd::Reconcile { file }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let statement: SignedStatement =
                serde_json::from_str(&text).with_context(|| format!("{} is not a signed statement", file.display()))?;
            let differences = ledger::reconcile(&host.core().db(), &host.node_id(), &statement)?;
            let doc = serde_json::json!({ "agrees": differences.is_empty(), "differences": differences });
            output::emit(&mut out, &doc, |out| {
                for d in &differences {
                    writeln!(out, "{d}")?;
                }
                if differences.is_empty() {
                    writeln!(out, "the statement agrees with this ledger")?;
                }
                Ok(())
            })?;
            if !differences.is_empty() {
                bail!("the statement and this ledger differ in {} places", differences.len());
            }
        }
    }
    Ok(())
}
