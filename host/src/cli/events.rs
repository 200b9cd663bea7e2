//! `continuum events …` and `continuum usage`.

use std::io::Write;

use anyhow::{bail, Context, Result};

use super::{EventsCmd, UsageBy};
use crate::eventlog::{self, chain::Entry, transfer};
use crate::runtime::Host;
use crate::terminal::strip_control;

fn print(out: &mut impl Write, e: &Entry, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(e)?)?;
    } else {
        let payload = strip_control(&e.payload);
        writeln!(out, "{:>6}  L{:<6} {:<18} {:<24} {payload}", e.seq, e.lamport, e.kind, strip_control(&e.subject))?;
    }
    Ok(())
}

/// Runs an `events` subcommand.
pub(super) fn run(host: &Host, cmd: EventsCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let core = host.core();
    match cmd {
        EventsCmd::Tail { lines, kind, follow, json } => {
            let shown = eventlog::tail(&core.db(), lines, kind.as_deref())?;
            let mut after = shown.last().map_or(0, |e| e.seq);
            for e in &shown {
                print(&mut out, e, json)?;
            }
            if shown.is_empty() {
                after =
                    core.db().query_row("SELECT COALESCE(MAX(seq), 0) FROM log", [], |r| r.get::<_, i64>(0))? as u64;
            }
            // --follow polls for new entries until interrupted.
            if follow {
                loop {
                    out.flush()?;
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    for e in eventlog::entries(&core.db(), after, kind.as_deref(), 1000)? {
                        after = e.seq;
                        print(&mut out, &e, json)?;
                    }
                }
            }
        }
        EventsCmd::Verify => match {
            // The chain, then the signed head kept outside the database (each takes the
            // connection in turn).
            let chain = eventlog::verify(&core.db(), core.log().node())?;
            let head = eventlog::head_file::path_for(&core.data().database());
            match chain {
                Ok(v) => eventlog::verify_head(&core.db(), core.log().node(), &head)?.map(|()| v),
                Err(broken) => Err(broken),
            }
        } {
            Ok(v) => writeln!(
                out,
                "log of {} verified: {} entries, {} signed checkpoints",
                &core.log().node()[..16],
                v.entries,
                v.checkpoints
            )?,
            Err(broken) => bail!("the event log does not verify: {broken}"),
        },
        EventsCmd::Export { since, output } => {
            let count = match output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(
                        std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
                    );
                    let n = transfer::export(&core.db(), core.log().node(), since, u64::MAX, &mut file)?;
                    file.flush()?;
                    n
                }
                None => transfer::export(&core.db(), core.log().node(), since, u64::MAX, &mut out)?,
            };
            eprintln!("exported {count} entries");
        }
        EventsCmd::Import { file } => {
            let input = std::io::BufReader::new(
                std::fs::File::open(&file).with_context(|| format!("cannot read {}", file.display()))?,
            );
            let done = transfer::import(&mut core.db(), core.log(), input)?;
            writeln!(
                out,
                "imported {} entries from {} ({} already known); Lamport time is now {}",
                done.entries,
                &done.node[..16],
                done.known,
                done.lamport
            )?;
        }
        EventsCmd::Pull { .. } => anyhow::bail!("`events pull` needs a running node; start one with `continuum serve`"),
    }
    Ok(())
}

/// `continuum usage`.
pub(super) fn usage(host: &Host, by: UsageBy, since: Option<&str>, json: bool) -> Result<()> {
    let since_ms = match since {
        Some(text) => {
            let d = humantime::parse_duration(text)
                .with_context(|| format!("`{text}` is not a duration; write e.g. 24h, 7days"))?;
            crate::now_secs() * 1000 - d.as_millis() as i64
        }
        None => 0,
    };
    let rows = transfer::usage(&host.core().db(), by == UsageBy::Command, since_ms)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<66} {:>8} {:>7} {:>12} {:>12}",
        if by == UsageBy::Command { "command" } else { "grantee" },
        "calls",
        "failed",
        "time (ms)",
        "bytes"
    )?;
    for u in rows {
        writeln!(out, "{:<66} {:>8} {:>7} {:>12.1} {:>12}", u.key, u.calls, u.failed, u.total_ms, u.bytes)?;
    }
    Ok(())
}
