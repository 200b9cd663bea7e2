//! The ledger: every receipt this node issued or countersigned, one row per receipt id (so a
//! receipt recorded twice is counted once), and what follows from them — balances per peer,
//! and signed statements two peers reconcile line by line.

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use continuum_core::keys::{parse_public, public_hex};
use continuum_core::signing;

use super::receipt::{Receipt, SignedReceipt};

/// The receipts table.
pub const SCHEMA: continuum_core::db::Schema = continuum_core::db::Schema {
    owner: "ledger",
    migrations: &["
CREATE TABLE IF NOT EXISTS receipts (
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    peer         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    command      TEXT NOT NULL,
    millicredits INTEGER NOT NULL,
    state        TEXT NOT NULL,
    reason       TEXT,
    observed_ms  INTEGER,
    at_ms        INTEGER NOT NULL,
    job          TEXT,
    receipt      TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS receipts_by_peer ON receipts (peer, at_ms);
CREATE INDEX IF NOT EXISTS receipts_by_job ON receipts (job) WHERE job IS NOT NULL;
"],
};

/// This node's side of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// This node did the work and signed the receipt (it earns).
    Provider,
    /// This node asked for the work (it spends).
    Caller,
}

/// Where a receipt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Issued by this node; the caller has not countersigned it (yet).
    Issued,
    /// Signed by both sides: it counts.
    Countersigned,
    /// The caller found its figures wrong and did not countersign: it does not count.
    Disputed,
}

fn text<T: Serialize>(value: T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn parse<T: for<'de> Deserialize<'de>>(text: String) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| rusqlite::Error::InvalidColumnType(0, text, rusqlite::types::Type::Text))
}

/// One receipt as this node holds it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// The receipt id.
    pub id: String,
    /// This node's side.
    pub role: Role,
    /// The other side.
    pub peer: String,
    /// Where it stands.
    pub state: State,
    /// Why it was disputed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The caller's measured round trip (on the caller's side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ms: Option<u64>,
    /// When this node recorded it (ms since the epoch).
    pub at_ms: i64,
    /// The receipt as signed.
    pub signed: SignedReceipt,
}

impl Entry {
    /// The receipt it holds (its signatures were checked when it was recorded).
    pub fn receipt(&self) -> Result<Receipt> {
        serde_json::from_str(&self.signed.body).context("a stored receipt is malformed")
    }
}

const COLUMNS: &str = "id, role, peer, state, reason, observed_ms, at_ms, receipt";

fn entry(row: &rusqlite::Row) -> rusqlite::Result<Entry> {
    let signed: String = row.get(7)?;
    Ok(Entry {
        id: row.get(0)?,
        role: parse(row.get(1)?)?,
        peer: row.get(2)?,
        state: parse(row.get(3)?)?,
        reason: row.get(4)?,
        observed_ms: row.get::<_, Option<i64>>(5)?.map(|m| m as u64),
        at_ms: row.get(6)?,
        signed: serde_json::from_str(&signed)
            .map_err(|_| rusqlite::Error::InvalidColumnType(7, "receipt".into(), rusqlite::types::Type::Text))?,
    })
}

/// Records `signed` (verified: `receipt`) on this node's `role` side in `state`; a receipt id
/// already held is left as it is (false), so nothing is counted twice.
pub fn record(
    conn: &Connection,
    signed: &SignedReceipt,
    receipt: &Receipt,
    role: Role,
    state: State,
    reason: Option<&str>,
    observed_ms: Option<u64>,
) -> Result<bool> {
    let peer = match role {
        Role::Provider => &receipt.caller,
        Role::Caller => &receipt.provider,
    };
    let added = conn.execute(
        "INSERT OR IGNORE INTO receipts (id, role, peer, kind, command, millicredits, state, reason, observed_ms, at_ms, receipt, job)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            receipt.id,
            text(role),
            peer,
            receipt.kind.as_str(),
            receipt.command,
            receipt.millicredits as i64,
            text(state),
            reason,
            observed_ms.map(|m| m as i64),
            continuum_core::now_ms(),
            serde_json::to_string(signed)?,
            receipt.job,
        ],
    )?;
    Ok(added == 1)
}

/// Takes the caller's countersignature of a receipt this node issued: true when it was new,
/// false when already held (a replay). Refused when this node issued no such receipt, or
/// issued a different one under that id.
pub fn countersigned(conn: &Connection, signed: &SignedReceipt, receipt: &Receipt) -> Result<bool> {
    let held = get_exact(conn, &receipt.id)?;
    let Some(held) = held.filter(|e| e.role == Role::Provider) else {
        bail!("this node issued no receipt {}", receipt.id);
    };
    if held.signed.body != signed.body {
        bail!("receipt {} differs from the one this node issued", receipt.id);
    }
    if held.state == State::Countersigned {
        return Ok(false);
    }
    let changed = conn.execute(
        "UPDATE receipts SET state = ?2, receipt = ?3 WHERE id = ?1 AND role = 'provider' AND state = 'issued'",
        params![receipt.id, text(State::Countersigned), serde_json::to_string(signed)?],
    )?;
    Ok(changed == 1)
}

/// The receipt `id`, if held.
pub fn get_exact(conn: &Connection, id: &str) -> Result<Option<Entry>> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM receipts WHERE id = ?1"), [id], entry).optional()?)
}

/// The receipt `id`, or the only one starting with it (at least 6 hex digits), if held.
pub fn get(conn: &Connection, id: &str) -> Result<Option<Entry>> {
    let exact = get_exact(conn, id)?;
    if exact.is_some() || id.len() < 6 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(exact);
    }
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM receipts WHERE id LIKE ?1 || '%' LIMIT 2"))?;
    let found: Vec<Entry> = stmt.query_map([id], entry)?.collect::<rusqlite::Result<_>>()?;
    match found.len() {
        1 => Ok(found.into_iter().next()),
        0 => Ok(None),
        _ => bail!("several receipts start with `{id}`; give more of the id"),
    }
}

/// Receipts recorded since `since_ms`, with `peer` if given, oldest first.
pub fn list(conn: &Connection, peer: Option<&str>, since_ms: i64) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM receipts WHERE at_ms >= ?1 AND (?2 IS NULL OR peer = ?2) ORDER BY at_ms, id"
    ))?;
    let rows = stmt.query_map(params![since_ms, peer], entry)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What this node and one peer owe each other, from the receipts both signed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Balance {
    /// The peer.
    pub peer: String,
    /// Millicredits this node earned from the peer (countersigned receipts it issued).
    pub earned: u64,
    /// Millicredits this node spent at the peer (receipts it countersigned).
    pub spent: u64,
    /// Millicredits on receipts issued to the peer and not countersigned yet.
    pub pending: u64,
    /// Receipts disputed with the peer (not counted).
    pub disputed: u64,
}

impl Balance {
    /// Earned minus spent, in millicredits.
    pub fn net(&self) -> i128 {
        self.earned as i128 - self.spent as i128
    }
}

/// The balance with every peer a receipt names, by peer.
pub fn balances(conn: &Connection) -> Result<Vec<Balance>> {
    let mut stmt = conn.prepare(
        "SELECT peer,
                COALESCE(SUM(CASE WHEN role = 'provider' AND state = 'countersigned' THEN millicredits END), 0),
                COALESCE(SUM(CASE WHEN role = 'caller' AND state = 'countersigned' THEN millicredits END), 0),
                COALESCE(SUM(CASE WHEN state = 'issued' THEN millicredits END), 0),
                COUNT(CASE WHEN state = 'disputed' THEN 1 END)
         FROM receipts GROUP BY peer ORDER BY peer",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Balance {
            peer: r.get(0)?,
            earned: r.get::<_, i64>(1)? as u64,
            spent: r.get::<_, i64>(2)? as u64,
            pending: r.get::<_, i64>(3)? as u64,
            disputed: r.get::<_, i64>(4)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What `peer` owes this node, in millicredits: earned from it (countersigned or still
/// awaiting its countersignature) less what this node spent at it.
pub fn owed_by(conn: &Connection, peer: &str) -> Result<i128> {
    let (earned, spent): (i64, i64) = conn.query_row(
        "SELECT COALESCE(SUM(CASE WHEN role = 'provider' AND state != 'disputed' THEN millicredits END), 0),
                COALESCE(SUM(CASE WHEN role = 'caller' AND state = 'countersigned' THEN millicredits END), 0)
         FROM receipts WHERE peer = ?1",
        [peer],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(earned as i128 - spent as i128)
}

/// The receipt this node issued for its job `job`, if any.
pub fn issued_for_job(conn: &Connection, job: &str) -> Result<Option<SignedReceipt>> {
    let text: Option<String> = conn
        .query_row("SELECT receipt FROM receipts WHERE job = ?1 AND role = 'provider' LIMIT 1", [job], |r| r.get(0))
        .optional()?;
    text.map(|t| serde_json::from_str(&t).context("a stored receipt is malformed")).transpose()
}

/// How many purchase receipts this node issued to `peer` that it has not countersigned.
pub fn pending_purchases(conn: &Connection, peer: &str) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM receipts WHERE peer = ?1 AND role = 'provider' AND kind = 'purchase' AND state = 'issued'",
        [peer],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// One receipt in a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// The receipt id.
    pub id: String,
    /// The issuing node's side.
    pub role: Role,
    /// Millicredits.
    pub millicredits: u64,
    /// BLAKE3 (hex) of the receipt's JSON text.
    pub body: String,
}

/// What one node says it and a peer exchanged over a window: every countersigned receipt
/// between them, and the totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The node issuing the statement (its key, hex): it signs it.
    pub node: String,
    /// The peer it is addressed to.
    pub peer: String,
    /// Receipts recorded from this time (ms since the epoch)…
    pub since_ms: i64,
    /// …until this time.
    pub until_ms: i64,
    /// The countersigned receipts, oldest first.
    pub lines: Vec<Line>,
    /// Millicredits the issuing node earned from the peer.
    pub earned: u64,
    /// Millicredits it spent at the peer.
    pub spent: u64,
}

/// A statement as JSON text and the issuing node's signature.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedStatement {
    /// The statement's JSON text.
    pub body: String,
    /// Its signature (hex) under `continuum-credit-statement-v1`.
    pub signature: String,
}

/// The statement of what this node (`key`) and `peer` exchanged since `since_ms`, signed.
pub fn statement(conn: &Connection, key: &SigningKey, peer: &str, since_ms: i64) -> Result<SignedStatement> {
    let until_ms = continuum_core::now_ms();
    let lines: Vec<Line> = list(conn, Some(peer), since_ms)?
        .into_iter()
        .filter(|e| e.state == State::Countersigned)
        .map(|e| Line {
            millicredits: e.receipt().map(|r| r.millicredits).unwrap_or(0),
            body: blake3::hash(e.signed.body.as_bytes()).to_hex().to_string(),
            id: e.id,
            role: e.role,
        })
        .collect();
    let sum = |role: Role| lines.iter().filter(|l| l.role == role).map(|l| l.millicredits).sum();
    let statement = Statement {
        node: public_hex(&key.verifying_key()),
        peer: peer.to_string(),
        since_ms,
        until_ms,
        earned: sum(Role::Provider),
        spent: sum(Role::Caller),
        lines,
    };
    let body = serde_json::to_string(&statement)?;
    let signature = signing::sign(key, signing::STATEMENT, body.as_bytes());
    Ok(SignedStatement { body, signature })
}

/// Compares `peer`'s signed statement addressed to this node (`me`) with this node's own
/// receipts over the same window: every difference, in words (none: the two agree).
pub fn reconcile(conn: &Connection, me: &str, theirs: &SignedStatement) -> Result<Vec<String>> {
    let statement: Statement = serde_json::from_str(&theirs.body).context("malformed statement")?;
    let key = parse_public(&statement.node).context("the statement's node is not a key")?;
    if !signing::verify(&key, signing::STATEMENT, theirs.body.as_bytes(), &theirs.signature) {
        bail!("the statement's signature does not verify: it was forged or altered");
    }
    if statement.peer != me {
        bail!("the statement is addressed to {}, not this node", statement.peer);
    }
    let mine: Vec<Entry> = list(conn, Some(&statement.node), statement.since_ms)?
        .into_iter()
        .filter(|e| e.at_ms <= statement.until_ms)
        .collect();
    let mut differences = Vec::new();
    for line in &statement.lines {
        let mirrored = match line.role {
            Role::Provider => Role::Caller,
            Role::Caller => Role::Provider,
        };
        match get_exact(conn, &line.id)?.filter(|e| e.peer == statement.node) {
            None => differences.push(format!("receipt {} is on their statement but not in this ledger", line.id)),
            Some(e) if e.role != mirrored => {
                differences.push(format!("receipt {}: both sides claim the same role", line.id))
            }
            Some(e) if blake3::hash(e.signed.body.as_bytes()).to_hex().as_str() != line.body => {
                differences.push(format!("receipt {}: their copy differs from this ledger's", line.id))
            }
            Some(e) if e.state != State::Countersigned => differences.push(format!(
                "receipt {}: they count it, this ledger holds it as {}",
                line.id,
                text(e.state)
            )),
            Some(e) if e.receipt()?.millicredits != line.millicredits => differences.push(format!(
                "receipt {}: they count {} millicredits, the receipt says otherwise",
                line.id, line.millicredits
            )),
            Some(_) => {}
        }
    }
    let sum = |role: Role| statement.lines.iter().filter(|l| l.role == role).map(|l| l.millicredits).sum::<u64>();
    if (sum(Role::Provider), sum(Role::Caller)) != (statement.earned, statement.spent) {
        differences.push(format!(
            "their totals (earned {}, spent {}) are not the sums of their own lines",
            statement.earned, statement.spent
        ));
    }
    for e in mine.iter().filter(|e| e.state == State::Countersigned) {
        if !statement.lines.iter().any(|l| l.id == e.id) {
            differences.push(format!("receipt {} is in this ledger but not on their statement", e.id));
        }
    }
    Ok(differences)
}
