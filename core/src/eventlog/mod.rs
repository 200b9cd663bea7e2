//! The event log: append-only, hash-chained, Lamport-ordered, with a signed checkpoint at each
//! group commit, in SQLite.
//!
//! One writer thread owns the log's connection. Appenders queue entries; the writer takes
//! everything queued (up to [`MAX_BATCH`]; a group of only fire-and-forget entries lingers up
//! to [`LINGER`] for more) as one group, chains and inserts it, signs a checkpoint of the new
//! head, and commits — one transaction per group — before answering any appender of that
//! group. So when [`EventLog::append`] returns, the entry is committed. [`EventLog::submit`]
//! queues an entry and hands back its [`PendingCommit`], so a thread need not sit idle while
//! the group commits: the node's HTTP handlers await it on the async side.
//!
//! Durability: the database runs in WAL mode with `synchronous = NORMAL` by default, so a
//! committed entry survives the process being killed (`kill -9`) at any point; an operating
//! system crash or power loss may lose the last groups committed before it (never a torn
//! entry). `[log] durability = "fsync"` in `continuum.toml` syncs every commit to disk
//! (`synchronous = FULL`), surviving power loss at the cost of an fsync per group.

pub mod chain;
pub mod head_file;
pub mod transfer;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use chain::{entry_hash, sign_checkpoint, Broken, ChainCheck, Checkpoint, Entry, GENESIS};
use head_file::HeadFile;

/// The first segments of the kinds the host writes (and will write); a plugin's events, kinded
/// `<plugin>.<kind>`, may not start with one, so nothing a plugin emits reads as the host's.
pub const HOST_KINDS: &[&str] = &[
    "apikey", "bench", "call", "console", "grant", "grid", "job", "log", "node", "offer", "peer", "plugin", "receipt",
    "relay", "trust",
];

/// Whether `kind` belongs to the host's namespace.
pub fn is_host_kind(kind: &str) -> bool {
    HOST_KINDS.contains(&kind.split('.').next().unwrap_or(kind))
}

/// Most entries in one group commit.
pub const MAX_BATCH: usize = 4096;
/// Longest a group of only fire-and-forget entries waits for company before committing.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Tables of the log.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "eventlog",
    migrations: &["
CREATE TABLE IF NOT EXISTS log (
    seq     INTEGER PRIMARY KEY,
    lamport INTEGER NOT NULL,
    node    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS log_kind ON log (kind);
CREATE TABLE IF NOT EXISTS log_checkpoints (
    seq       INTEGER PRIMARY KEY,
    head      TEXT NOT NULL,
    signature TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS remote_log (
    node    TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    lamport INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL,
    PRIMARY KEY (node, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS remote_log_lamport ON remote_log (lamport);
CREATE TABLE IF NOT EXISTS remote_checkpoints (
    node      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    head      TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (node, seq)
) STRICT;
"],
};

/// How hard each group commit is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Survives a killed process (WAL, `synchronous = NORMAL`).
    #[default]
    Process,
    /// Survives power loss too (`synchronous = FULL`: an fsync per group).
    Fsync,
}

/// An entry to append.
#[derive(Debug, Clone, Serialize)]
pub struct NewEntry {
    /// What happened.
    pub kind: String,
    /// What it happened to.
    pub subject: String,
    /// Details, JSON text.
    pub payload: String,
}

struct Request {
    entry: NewEntry,
    /// Where to say the entry's seq once committed (none: fire and forget).
    done: Option<tokio::sync::oneshot::Sender<Result<u64, String>>>,
}

/// An entry queued for the next group commit: wait for it (blocking or async) to learn its
/// seq, or why the group could not commit.
#[must_use = "an entry is committed only when its PendingCommit says so"]
pub struct PendingCommit(tokio::sync::oneshot::Receiver<Result<u64, String>>);

fn commit_outcome(outcome: Result<Result<u64, String>, tokio::sync::oneshot::error::RecvError>) -> Result<u64> {
    outcome.map_err(|_| anyhow::anyhow!("the event log writer has stopped"))?.map_err(anyhow::Error::msg)
}

impl PendingCommit {
    /// Blocks until the entry's group has committed (from any thread: the writer answers
    /// within one group commit).
    pub fn wait(self) -> Result<u64> {
        commit_outcome(futures_executor::block_on(self.0))
    }

    /// Waits on the async side until the entry's group has committed.
    pub async fn committed(self) -> Result<u64> {
        commit_outcome(self.0.await)
    }
}

/// A handle to the node's event log (cheap to clone).
#[derive(Clone)]
pub struct EventLog {
    tx: Arc<Mutex<Sender<Request>>>,
    node: String,
    /// Entries queued and not yet committed (the log's lag).
    pending: Arc<AtomicUsize>,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
}

/// Opens a connection for the log at `path` with the given durability.
fn connect(path: &Path, durability: Durability) -> Result<Connection> {
    let conn = crate::db::open(path)?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    Ok(conn)
}

/// Where the chain ends: the last entry and the Lamport time to continue from (the highest
/// of the local and imported entries).
struct Head {
    seq: u64,
    hash: String,
    lamport: u64,
}

fn read_head(conn: &Connection) -> rusqlite::Result<Head> {
    let (seq, hash, lamport) = conn
        .prepare_cached("SELECT seq, hash, lamport FROM log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?, r.get::<_, i64>(2)? as u64)))
        .optional()?
        .unwrap_or((0, GENESIS.to_string(), 0));
    let remote: i64 =
        conn.prepare_cached("SELECT COALESCE(MAX(lamport), 0) FROM remote_log")?.query_row([], |r| r.get(0))?;
    Ok(Head { seq, hash, lamport: lamport.max(remote as u64) })
}

/// Writes one group in one transaction: entries chained from the stored head, then a
/// checkpoint. The transaction takes the write lock first (`BEGIN IMMEDIATE`) and reads the head
/// inside it, so several processes writing one data directory extend one chain in turn.
fn write_group(
    conn: &mut Connection,
    key: &SigningKey,
    node: &str,
    group: &[Request],
) -> rusqlite::Result<(Vec<u64>, Checkpoint)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut head = read_head(&tx)?;
    let mut seqs = Vec::with_capacity(group.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO log (seq, lamport, node, kind, subject, payload, prev, hash, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let at = crate::now_ms();
        for r in group {
            head.seq += 1;
            head.lamport += 1;
            let e = &r.entry;
            let hash = entry_hash(head.seq, head.lamport, node, &e.kind, &e.subject, &e.payload, &head.hash);
            insert.execute(params![
                head.seq as i64,
                head.lamport as i64,
                node,
                e.kind,
                e.subject,
                e.payload,
                head.hash,
                hash,
                at
            ])?;
            head.hash = hash;
            seqs.push(head.seq);
        }
    }
    let cp = sign_checkpoint(key, node, head.seq, &head.hash);
    tx.prepare_cached("INSERT INTO log_checkpoints (seq, head, signature) VALUES (?1, ?2, ?3)")?.execute(params![
        cp.seq as i64,
        cp.head,
        cp.signature
    ])?;
    tx.commit()?;
    Ok((seqs, cp))
}

fn writer(
    mut conn: Connection,
    key: SigningKey,
    node: String,
    rx: Receiver<Request>,
    mut head: HeadFile,
    pending: Arc<AtomicUsize>,
) {
    loop {
        let first = match rx.recv_timeout(head_file::INTERVAL) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                head.flush();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        let linger_until = std::time::Instant::now() + LINGER;
        while group.len() < MAX_BATCH {
            // Take what is queued; if nobody in the group is waiting yet (only fire-and-forget
            // entries, like a call's `call.invoked`), linger briefly for the entry that will be
            // waited on, so both commit in one group under one signature.
            let next = match rx.try_recv() {
                Ok(r) => Some(r),
                Err(_) if group.iter().all(|r| r.done.is_none()) => {
                    rx.recv_timeout(linger_until.saturating_duration_since(std::time::Instant::now())).ok()
                }
                Err(_) => None,
            };
            match next {
                Some(r) => group.push(r),
                None => break,
            }
        }
        let result = write_group(&mut conn, &key, &node, &group).map_err(|e| {
            format!("the event log could not commit ({e}); nothing of this group was written — check disk space and that the data directory is writable")
        });
        if let Err(e) = &result {
            tracing::error!("{e}");
        }
        pending.fetch_sub(group.len(), Ordering::Relaxed);
        for (i, r) in group.into_iter().enumerate() {
            if let Some(done) = r.done {
                let _ = done.send(result.as_ref().map(|(seqs, _)| seqs[i]).map_err(Clone::clone));
            }
        }
        if let Ok((_, checkpoint)) = result {
            head.committed(checkpoint);
        }
    }
    head.flush();
}

impl EventLog {
    /// Opens the log in `path` (the node database) and starts its writer thread, which keeps
    /// the signed head in [`head_file::path_for`] `path`.
    pub fn open(path: &Path, key: SigningKey, durability: Durability) -> Result<Self> {
        Self::start(connect(path, durability)?, key, HeadFile::new(Some(head_file::path_for(path))))
    }

    /// Starts the log's writer on an open connection (whose pragmas the caller chose), keeping
    /// no signed head file.
    pub fn with_connection(conn: Connection, key: SigningKey) -> Result<Self> {
        Self::start(conn, key, HeadFile::new(None))
    }

    fn start(conn: Connection, key: SigningKey, head: HeadFile) -> Result<Self> {
        let node = crate::keys::public_hex(&key.verifying_key());
        let (tx, rx) = mpsc::channel();
        let writer_node = node.clone();
        let pending = Arc::new(AtomicUsize::new(0));
        let writer_pending = pending.clone();
        std::thread::Builder::new()
            .name("continuum-log".into())
            .spawn(move || writer(conn, key, writer_node, rx, head, writer_pending))
            .context("cannot start the event log writer")?;
        Ok(EventLog { tx: Arc::new(Mutex::new(tx)), node, pending })
    }

    /// This node's id (the log's signer).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Entries queued and not yet committed.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    fn send(&self, entry: NewEntry, done: Option<tokio::sync::oneshot::Sender<Result<u64, String>>>) -> Result<()> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        crate::sync::lock(&self.tx).send(Request { entry, done }).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            anyhow::anyhow!("the event log writer has stopped")
        })
    }

    /// Appends an entry and returns its seq once it is committed.
    pub fn append(&self, kind: &str, subject: &str, payload: &serde_json::Value) -> Result<u64> {
        self.submit(kind, subject, payload)?.wait()
    }

    /// Queues an entry for the next group commit and returns what to wait on.
    pub fn submit(&self, kind: &str, subject: &str, payload: &serde_json::Value) -> Result<PendingCommit> {
        let (done, pending) = tokio::sync::oneshot::channel();
        self.send(NewEntry { kind: kind.into(), subject: subject.into(), payload: payload.to_string() }, Some(done))?;
        Ok(PendingCommit(pending))
    }

    /// Queues an entry without waiting; it commits no later than any entry appended after it.
    pub fn append_later(&self, kind: &str, subject: &str, payload: &serde_json::Value) -> Result<()> {
        self.send(NewEntry { kind: kind.into(), subject: subject.into(), payload: payload.to_string() }, None)
    }
}

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        seq: r.get::<_, i64>(0)? as u64,
        lamport: r.get::<_, i64>(1)? as u64,
        node: r.get(2)?,
        kind: r.get(3)?,
        subject: r.get(4)?,
        payload: r.get(5)?,
        prev: r.get(6)?,
        hash: r.get(7)?,
    })
}

/// The columns of an entry, and the filter on an optional kind (or kind prefix ending in `.`).
const SELECT_ENTRY: &str = "SELECT seq, lamport, node, kind, subject, payload, prev, hash FROM log
     WHERE (?1 IS NULL OR kind = ?1 OR (substr(?1, -1) = '.' AND substr(kind, 1, length(?1)) = ?1))";

/// The log's head: (last sequence number, Lamport time including imported entries).
pub fn head(conn: &Connection) -> Result<(u64, u64)> {
    let h = read_head(conn)?;
    Ok((h.seq, h.lamport))
}

/// Entries of this node's log after `after`, optionally of one kind (or kind prefix ending in
/// `.`), at most `limit`, in order.
pub fn entries(conn: &Connection, after: u64, kind: Option<&str>, limit: u64) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_ENTRY} AND seq > ?2 ORDER BY seq LIMIT ?3"))?;
    let rows = stmt.query_map(params![kind, after as i64, limit.min(i64::MAX as u64) as i64], entry_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The last `n` entries (optionally of one kind), oldest first.
pub fn tail(conn: &Connection, n: u64, kind: Option<&str>) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_ENTRY} ORDER BY seq DESC LIMIT ?2"))?;
    let rows = stmt.query_map(params![kind, n.min(i64::MAX as u64) as i64], entry_row)?;
    let mut last: Vec<Entry> = rows.collect::<rusqlite::Result<_>>()?;
    last.reverse();
    Ok(last)
}

/// The checkpoints of this node's log.
pub fn checkpoints(conn: &Connection) -> Result<Vec<Checkpoint>> {
    let mut stmt = conn.prepare("SELECT seq, head, signature FROM log_checkpoints ORDER BY seq")?;
    let rows = stmt
        .query_map([], |r| Ok(Checkpoint { seq: r.get::<_, i64>(0)? as u64, head: r.get(1)?, signature: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Checks the log in `conn` against the signed head kept in `head_path`: the head must verify
/// as `node`'s and name an entry the log still holds, with that hash. Catches entries cut from
/// the end together with their checkpoints. A missing file is an error when the log is not
/// empty (the writer keeps it from the first commit on).
pub fn verify_head(conn: &Connection, node: &str, head_path: &Path) -> Result<std::result::Result<(), Broken>> {
    let key = crate::keys::parse_public(node)?;
    let (last, _) = head(conn)?;
    let Some(signed) = head_file::read(head_path)? else {
        return Ok(if last == 0 {
            Ok(())
        } else {
            Err(Broken {
                seq: last,
                problem: format!(
                    "the signed head {} is missing (deleted?), so a cut tail cannot be ruled out",
                    head_path.display()
                ),
            })
        });
    };
    if !chain::checkpoint_valid(&key, node, &signed) {
        return Ok(Err(Broken { seq: signed.seq, problem: format!("{} has a bad signature", head_path.display()) }));
    }
    let held: Option<String> =
        conn.query_row("SELECT hash FROM log WHERE seq = ?1", [signed.seq as i64], |r| r.get(0)).optional()?;
    Ok(match held {
        Some(hash) if hash == signed.head => Ok(()),
        Some(_) => Err(Broken {
            seq: signed.seq,
            problem: "the entry differs from the signed head kept outside the database".into(),
        }),
        None => Err(Broken {
            seq: last + 1,
            problem: format!(
                "the log ends at {last} but its signed head ({}) is at {}: entries were cut from the end",
                head_path.display(),
                signed.seq
            ),
        }),
    })
}

/// Verifies the whole record: the chain ([`verify`]), then the signed head kept outside the
/// database at `head_path` ([`verify_head`]); the error names the first bad sequence number.
pub fn verify_with_head(
    conn: &Connection,
    node: &str,
    head_path: &Path,
) -> Result<std::result::Result<Verified, Broken>> {
    Ok(match verify(conn, node)? {
        Ok(verified) => verify_head(conn, node, head_path)?.map(|()| verified),
        Err(broken) => Err(broken),
    })
}

/// Recomputes this node's chain and checks every checkpoint signature; the error names the
/// first bad sequence number.
pub fn verify(conn: &Connection, node: &str) -> Result<std::result::Result<Verified, Broken>> {
    let key = crate::keys::parse_public(node)?;
    let mut check = ChainCheck::new(node, key, checkpoints(conn)?);
    let mut stmt =
        conn.prepare("SELECT seq, lamport, node, kind, subject, payload, prev, hash FROM log ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let Err(broken) = check.next(&entry_row(row)?) {
            return Ok(Err(broken));
        }
    }
    Ok(check.finish().map(|(entries, checkpoints)| Verified { entries, checkpoints }))
}
