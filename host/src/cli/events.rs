//! `continuum events …`: tail, verify, export, import and (through the running node) pull the
//! event log; `continuum usage`: metering from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};

use super::{node, output, prefix, Exit};
use crate::eventlog::{self, chain::Entry, transfer};
use crate::node::client::NodeClient;
use crate::node::http::{Pull, Pulled};
use crate::node::open_host;
use crate::paths::DataDir;
use crate::runtime::Host;
use crate::terminal::strip_control;

/// `continuum events …`.
#[derive(Debug, Subcommand)]
pub(super) enum EventsCmd {
    /// Show the last entries (`--follow` keeps printing new ones; with --json, one JSON object a
    /// line).
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        /// Only this kind, or a prefix ending in `.` (`call.`).
        #[arg(long)]
        kind: Option<String>,
        /// Keep waiting for new entries.
        #[arg(long)]
        follow: bool,
    },
    /// Recompute the chain and check every checkpoint signature; names the first bad entry.
    Verify,
    /// Write the log (entries after --since) as JSONL.
    Export {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Import another node's export (verified first; Lamport clock merged).
    Import {
        /// The export file.
        file: PathBuf,
    },
    /// Replicate a peer's log: pull its entries after the last one held here (needs a running node).
    Pull {
        /// The peer (id, prefix or name).
        peer: String,
    },
}

/// The arguments of `continuum usage`.
#[derive(Debug, clap::Args)]
pub(super) struct UsageArgs {
    /// Group by `grantee` (default) or `command`.
    #[arg(long, value_enum, default_value = "grantee")]
    by: UsageBy,
    /// Only calls in this window before now (`24h`, `7days`); default: all.
    #[arg(long)]
    since: Option<String>,
}

/// How `continuum usage` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum UsageBy {
    /// By caller (grantee key, or `owner`).
    Grantee,
    /// By command.
    Command,
}

/// One entry of `events tail`: a line of JSON with `--json` (a stream: one document a line).
fn print(out: &mut impl Write, e: &Entry) -> Result<()> {
    if output::json() {
        writeln!(out, "{}", serde_json::to_string(e)?)?;
    } else {
        let payload = strip_control(&e.payload);
        writeln!(out, "{:>6}  L{:<6} {:<18} {:<24} {payload}", e.seq, e.lamport, e.kind, strip_control(&e.subject))?;
    }
    Ok(())
}

/// Runs an `events` subcommand: `pull` through the running node, the others on this data
/// directory's log.
pub(super) fn run(cmd: EventsCmd, data: DataDir) -> Result<(), Exit> {
    match cmd {
        EventsCmd::Pull { peer } => return pull(data.root(), &peer).map_err(Exit::from_api),
        EventsCmd::Tail { lines, kind, follow } => tail(&open_host(data)?, lines, kind.as_deref(), follow),
        EventsCmd::Verify => verify(&open_host(data)?),
        EventsCmd::Export { since, output } => export(&open_host(data)?, since, output),
        EventsCmd::Import { file } => import(&open_host(data)?, &file),
    }
    .map_err(Exit::from)
}

/// `events tail`: the last `lines` entries (of `kind`), then with `follow` new ones as they come.
fn tail(host: &Host, lines: u64, kind: Option<&str>, follow: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let core = host.core();
    let shown = eventlog::tail(&*core.log_db()?, lines, kind)?;
    let mut after = shown.last().map_or(0, |e| e.seq);
    for e in &shown {
        print(&mut out, e)?;
    }
    if shown.is_empty() {
        after = eventlog::head(&*core.log_db()?)?.0;
    }
    // --follow polls for new entries until interrupted.
    if follow {
        loop {
            out.flush()?;
            std::thread::sleep(std::time::Duration::from_millis(200));
            for e in eventlog::entries(&*core.log_db()?, after, kind, 1000)? {
                after = e.seq;
                print(&mut out, &e)?;
            }
        }
    }
    Ok(())
}

/// `events verify`: the chain, its checkpoints and the signed head kept outside the database.
fn verify(host: &Host) -> Result<()> {
    let core = host.core();
    let head = eventlog::head_file::path_for(&core.data().database());
    let v = match eventlog::verify_with_head(&*core.log_db()?, core.log().node(), &head)? {
        Ok(v) => v,
        Err(broken) => bail!("the event log does not verify: {broken}"),
    };
    let node = core.log().node();
    let doc = serde_json::json!({ "node": node, "entries": v.entries, "checkpoints": v.checkpoints });
    output::emit(&mut std::io::stdout().lock(), &doc, |out| {
        let (node, entries, checkpoints) = (&node[..16], v.entries, v.checkpoints);
        Ok(writeln!(out, "log of {node} verified: {entries} entries, {checkpoints} signed checkpoints")?)
    })
}

/// `events export`: the entries after `since` as JSONL, to `output` or stdout.
fn export(host: &Host, since: u64, output: Option<PathBuf>) -> Result<()> {
    let core = host.core();
    let count = match output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
            );
            let n = transfer::export(&*core.log_db()?, core.log().node(), since, u64::MAX, &mut file)?;
            file.flush()?;
            n
        }
        None => transfer::export(&*core.log_db()?, core.log().node(), since, u64::MAX, &mut std::io::stdout().lock())?,
    };
    Ok(output::note(&mut std::io::stderr(), format_args!("exported {count} entries"))?)
}

/// `events import`: another node's export, verified first.
fn import(host: &Host, file: &Path) -> Result<()> {
    let core = host.core();
    let input =
        std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?);
    let done = transfer::import(&mut core.db(), core.log(), input)?;
    let line = format!(
        "imported {} entries from {} ({} already known); Lamport time is now {}",
        done.entries,
        &done.node[..16],
        done.known,
        done.lamport
    );
    output::confirm(&mut std::io::stdout().lock(), &done, line)
}

/// `events pull <peer>`: the peer's new entries, through the running node.
fn pull(root: &Path, peer: &str) -> Result<()> {
    let client = NodeClient::require(root)?;
    let pulled: Pulled = node::post(&client, "/v1/grid/events/pull", &Pull { peer: peer.to_string() })?;
    let line = format!(
        "pulled {} new entries of {}'s log; Lamport time now {}",
        pulled.entries,
        prefix(&pulled.node, 12),
        pulled.lamport
    );
    output::confirm(&mut std::io::stdout().lock(), &pulled, line)
}

/// `continuum usage`.
pub(super) fn usage(host: &Host, args: UsageArgs) -> Result<()> {
    let UsageArgs { by, since } = args;
    let since_ms = super::since_ms(since.as_deref())?;
    let rows = transfer::usage(&*host.core().log_db()?, by == UsageBy::Command, since_ms)?;
    output::emit(&mut std::io::stdout().lock(), &rows, |out| {
        writeln!(
            out,
            "{:<66} {:>8} {:>7} {:>12} {:>12}",
            if by == UsageBy::Command { "command" } else { "grantee" },
            "calls",
            "failed",
            "time (ms)",
            "bytes"
        )?;
        for u in &rows {
            writeln!(out, "{:<66} {:>8} {:>7} {:>12.1} {:>12}", u.key, u.calls, u.failed, u.total_ms, u.bytes)?;
        }
        Ok(())
    })
}
