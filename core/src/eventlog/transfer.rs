//! Export and import of logs (JSONL), and metering read from the log.
//!
//! An export is one JSON object per line: a header `{"format":"continuum-log/1","node":…}`,
//! then `{"entry":{…}}` lines in sequence order, each followed by the `{"checkpoint":{…}}`
//! that covers it, if any. An import verifies the other node's chain and checkpoint
//! signatures (its node id is its public key), stores its entries as they are (their own
//! chain, Lamport times and signatures), and records a `log.imported` entry here, whose
//! Lamport time is max(local, remote) + 1.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::chain::{ChainCheck, Checkpoint, Entry, GENESIS};
use super::{checkpoints, entries, EventLog};

/// The export format tag.
pub const FORMAT: &str = "continuum-log/1";
/// Longest line accepted on import.
const MAX_LINE: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    node: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
enum Line {
    Entry(Entry),
    Checkpoint(Checkpoint),
}

/// Writes this node's entries after `since` (and their checkpoints) as JSONL, ending at a
/// checkpoint so the page verifies on its own: at most `limit` entries, unless the first group
/// after `since` alone is larger (then that group); returns how many.
pub fn export(conn: &Connection, node: &str, since: u64, limit: u64, out: &mut impl Write) -> Result<u64> {
    writeln!(out, "{}", serde_json::to_string(&Header { format: FORMAT.into(), node: node.into() })?)?;
    let cps: BTreeMap<u64, Checkpoint> = checkpoints(conn)?.into_iter().map(|c| (c.seq, c)).collect();
    let within = cps.range(since.saturating_add(1)..=since.saturating_add(limit)).next_back();
    let Some(end) = within.or_else(|| cps.range(since.saturating_add(1)..).next()).map(|(seq, _)| *seq) else {
        return Ok(0);
    };
    let mut after = since;
    let mut count = 0;
    while after < end {
        let batch = entries(conn, after, None, (end - after).min(10_000))?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in batch {
            let seq = e.seq;
            writeln!(out, "{}", serde_json::to_string(&Line::Entry(e))?)?;
            if let Some(cp) = cps.get(&seq) {
                writeln!(out, "{}", serde_json::to_string(&Line::Checkpoint(cp.clone()))?)?;
            }
            count += 1;
        }
    }
    Ok(count)
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// The other node.
    pub node: String,
    /// Entries newly stored.
    pub entries: u64,
    /// Entries already present.
    pub known: u64,
    /// The local Lamport time after the import.
    pub lamport: u64,
}

/// The highest sequence number of `node`'s log held here (0 if none).
pub fn replicated_up_to(conn: &Connection, node: &str) -> Result<u64> {
    let seq: i64 =
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM remote_log WHERE node = ?1", [node], |r| r.get(0))?;
    Ok(seq as u64)
}

/// Imports another node's export after verifying it; refuses this node's own log, a broken
/// chain, a bad checkpoint signature, or a fork of entries already imported.
pub fn import(conn: &mut Connection, log: &EventLog, input: impl BufRead) -> Result<Imported> {
    let mut lines = input.lines();
    let header = lines.next().context("the file is empty; expected a continuum log export")??;
    let header: Header = serde_json::from_str(&header).context("line 1 is not a continuum log export header")?;
    if header.format != FORMAT {
        bail!("unknown log format `{}`; this host reads `{FORMAT}`", header.format);
    }
    if header.node == log.node() {
        bail!("this is this node's own log; import logs of other nodes");
    }
    let key = crate::keys::parse_public(&header.node).context("the header's node is not a public key")?;
    let (mut es, mut cps) = (Vec::new(), Vec::new());
    for (i, line) in lines.enumerate() {
        let line = line?;
        if line.len() > MAX_LINE {
            bail!("line {} is longer than {MAX_LINE} bytes", i + 2);
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line).with_context(|| format!("line {} is not a log line", i + 2))? {
            Line::Entry(e) => es.push(e),
            Line::Checkpoint(c) => cps.push(c),
        }
    }
    let Some(first) = es.first() else { bail!("the export holds no entries") };
    // Continue the chain stored from earlier imports (or start it).
    let stored_prev: Option<String> = if first.seq == 1 {
        Some(GENESIS.to_string())
    } else {
        conn.query_row(
            "SELECT hash FROM remote_log WHERE node = ?1 AND seq = ?2",
            params![header.node, first.seq as i64 - 1],
            |r| r.get(0),
        )
        .optional()?
    };
    let Some(prev) = stored_prev else {
        bail!(
            "the export starts at entry {} but entries before it from this node were never imported; export from 0",
            first.seq
        );
    };
    let mut check = ChainCheck::resume(&header.node, key, cps.clone(), first.seq, &prev);
    for e in &es {
        check.next(e).map_err(|b| anyhow::anyhow!("the export does not verify: {b}"))?;
    }
    check.finish().map_err(|b| anyhow::anyhow!("the export does not verify: {b}"))?;

    let tx = conn.transaction()?;
    let (mut added, mut known) = (0, 0);
    let mut max_lamport = 0;
    for e in &es {
        max_lamport = max_lamport.max(e.lamport);
        let existing: Option<String> = tx
            .query_row("SELECT hash FROM remote_log WHERE node = ?1 AND seq = ?2", params![e.node, e.seq as i64], |r| {
                r.get(0)
            })
            .optional()?;
        match existing {
            Some(h) if h == e.hash => known += 1,
            Some(_) => bail!(
                "entry {} of node {} differs from the one imported before: the node's log forked",
                e.seq,
                &e.node[..16]
            ),
            None => {
                tx.execute(
                    "INSERT INTO remote_log (node, seq, lamport, kind, subject, payload, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![e.node, e.seq as i64, e.lamport as i64, e.kind, e.subject, e.payload, e.prev, e.hash],
                )?;
                added += 1;
            }
        }
    }
    for c in &cps {
        tx.execute(
            "INSERT OR IGNORE INTO remote_checkpoints (node, seq, head, signature) VALUES (?1, ?2, ?3, ?4)",
            params![header.node, c.seq as i64, c.head, c.signature],
        )?;
    }
    tx.commit()?;
    let payload = serde_json::json!({ "node": header.node, "entries": added, "remote-lamport": max_lamport });
    let seq = log.append("log.imported", &header.node, &payload)?;
    let lamport: i64 = conn.query_row("SELECT lamport FROM log WHERE seq = ?1", [seq as i64], |r| r.get(0))?;
    Ok(Imported { node: header.node, entries: added, known, lamport: lamport as u64 })
}

/// One row of `continuum usage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// The grantee or command.
    pub key: String,
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub failed: u64,
    /// Total wall-clock time, milliseconds.
    pub total_ms: f64,
    /// Total bytes of input and output.
    pub bytes: u64,
}

/// One time bucket of [`usage_series`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageBucket {
    /// The bucket's start, ms since the epoch.
    pub start_ms: i64,
    /// Calls that ended in it.
    pub calls: u64,
    /// Those that failed.
    pub failed: u64,
    /// Their mean wall-clock time, milliseconds (0 without calls).
    pub mean_ms: f64,
    /// The slowest, milliseconds.
    pub max_ms: f64,
    /// Credits earned (receipts countersigned where this node provided), millicredits.
    pub earned_millicredits: u64,
    /// Credits spent (receipts this node countersigned as the caller), millicredits.
    pub spent_millicredits: u64,
}

/// Calls, failures, latency and credits per `bucket_ms` over the `buckets` buckets ending now,
/// read from the log of `node` (receipts name it as provider or caller).
pub fn usage_series(
    conn: &Connection,
    node: &str,
    now_ms: i64,
    bucket_ms: i64,
    buckets: usize,
) -> Result<Vec<UsageBucket>> {
    let bucket_ms = bucket_ms.max(1);
    let start = now_ms - bucket_ms * buckets as i64;
    let mut series: Vec<UsageBucket> =
        (0..buckets).map(|i| UsageBucket { start_ms: start + bucket_ms * i as i64, ..Default::default() }).collect();
    let mut stmt = conn.prepare(
        "SELECT kind, subject, payload, at_ms FROM log
         WHERE kind IN ('call.completed', 'call.failed', 'receipt.countersigned') AND at_ms >= ?1",
    )?;
    let mut rows = stmt.query([start])?;
    while let Some(row) = rows.next()? {
        let (kind, subject, payload, at): (String, String, String, i64) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        let Some(b) = series.get_mut(((at - start) / bucket_ms) as usize) else { continue };
        let p: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        if kind == "receipt.countersigned" {
            let credits = p["millicredits"].as_u64().unwrap_or(0);
            if p["provider"].as_str() == Some(node) {
                b.earned_millicredits += credits;
            } else if p["caller"].as_str() == Some(node) {
                b.spent_millicredits += credits;
            }
            continue;
        }
        if !is_call_audit(&subject, &p) {
            continue;
        }
        let ms = p["duration-us"].as_f64().unwrap_or(0.0) / 1e3;
        b.mean_ms = (b.mean_ms * b.calls as f64 + ms) / (b.calls + 1) as f64;
        b.max_ms = b.max_ms.max(ms);
        b.calls += 1;
        b.failed += u64::from(kind == "call.failed");
    }
    Ok(series)
}

/// Whether a `call.*` entry has the shape the host's call audit writes: about the command it
/// names, with a caller, an outcome, sizes and a duration.
fn is_call_audit(subject: &str, p: &serde_json::Value) -> bool {
    p["command"].as_str() == Some(subject)
        && p["caller"].is_string()
        && p["outcome"].is_string()
        && p["duration-us"].is_u64()
        && p["input-bytes"].is_u64()
        && p["output-bytes"].is_u64()
}

/// Metering read from the log's call entries since `since_ms`, grouped by caller or command.
pub fn usage(conn: &Connection, by_command: bool, since_ms: i64) -> Result<Vec<Usage>> {
    let mut stmt = conn.prepare(
        "SELECT kind, subject, payload FROM log WHERE kind IN ('call.completed', 'call.failed') AND at_ms >= ?1",
    )?;
    let mut rows = stmt.query([since_ms])?;
    let mut by: BTreeMap<String, Usage> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let kind: String = row.get(0)?;
        let subject: String = row.get(1)?;
        let payload: String = row.get(2)?;
        let p: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        // Only entries of the shape the host writes are billed (plugins cannot write `call.*`
        // kinds, and this keeps it so should one ever get there).
        if !is_call_audit(&subject, &p) {
            continue;
        }
        let key = if by_command { &p["command"] } else { &p["caller"] };
        let key = key.as_str().unwrap_or("?").to_string();
        let u = by.entry(key.clone()).or_insert_with(|| Usage { key, ..Default::default() });
        u.calls += 1;
        u.failed += u64::from(kind == "call.failed");
        u.total_ms += p["duration-us"].as_f64().unwrap_or(0.0) / 1e3;
        u.bytes += p["input-bytes"].as_u64().unwrap_or(0) + p["output-bytes"].as_u64().unwrap_or(0);
    }
    Ok(by.into_values().collect())
}
