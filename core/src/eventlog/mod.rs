//! The event log: append-only, hash-chained, Lamport-ordered, with a signed checkpoint at each
//! group commit, in SQLite.
//!
//! One writer thread owns the log's connection. Appenders queue entries; the writer takes
//! everything queued (up to [`MAX_BATCH`]; a group nobody waits on lingers up to [`LINGER`] for
//! more: the signing window) as one group, chains and inserts it, signs a checkpoint of the new
//! head, and commits — one transaction per group — before answering any appender of that
//! group. So when [`EventLog::append`] returns, the entry is committed. Every entry is also
//! copied into this process's journal ([`journal`]) on the appender's thread:
//! [`EventLog::record`] returns once that is done (the entry is durable; a call's audit entry is
//! written so), and the next process to open the log replays a dead process's journal.
//! Readers settle first ([`EventLog::settle`]) to see every acknowledged entry.
//!
//! Durability: the database runs in WAL mode with `synchronous = NORMAL` by default, so a
//! committed entry survives the process being killed (`kill -9`) at any point; an operating
//! system crash or power loss may lose the last groups committed before it (never a torn
//! entry). `[log] durability = "fsync"` in `continuum.toml` syncs every commit to disk
//! (`synchronous = FULL`), surviving power loss at the cost of an fsync per group.

pub mod chain;
pub mod head_file;
pub mod journal;
pub mod transfer;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use chain::{entry_hash, sign_checkpoint, Broken, ChainCheck, Checkpoint, Entry, GENESIS};
use head_file::HeadFile;
use journal::Journal;

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

/// What an appender whose entry is in the journal hears when its group's commit fails.
const RETRIED: &str = " — the entry is in the journal and will be committed once the database takes it";

/// The pause before retrying a group of journaled entries whose commit failed, times the
/// failures in a row (at most 50: 5 s).
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Longest [`EventLog::settle`] waits for the writer.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Tables of the log.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "eventlog",
    migrations: &[
        "
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
",
        // Per journal (journal.rs), the last record committed to `log`: a replay starts after it.
        "
CREATE TABLE IF NOT EXISTS log_journals (
    journal TEXT PRIMARY KEY,
    applied INTEGER NOT NULL
) STRICT;
",
    ],
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

/// How an audited entry ([`EventLog::record`]) becomes durable before its group commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledge {
    /// Copied into this process's journal ([`journal`]), replayed by the next opener if the
    /// process dies: what a process serving many calls uses (with `durability = "process"`).
    FromJournal,
    /// By waiting for its group's commit: what a one-call process uses, whose entries are
    /// committed before it exits anyway and for which creating and faulting in a journal file
    /// costs more than that wait.
    OnCommit,
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

/// How the writer answers an appender: the entry's seq, or why its group did not commit.
type Answer = tokio::sync::oneshot::Sender<Result<u64, String>>;

struct Request {
    entry: NewEntry,
    /// Its place in this process's queue (and journal).
    ordinal: u64,
    /// When it was queued (ms since the epoch).
    at_ms: i64,
    /// Where to say the entry's seq once committed (none: fire and forget, or already durable
    /// in the journal).
    done: Option<Answer>,
}

/// The writer's answer to one appender.
type Commit = tokio::sync::oneshot::Receiver<Result<u64, String>>;

/// When an appender is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// Once its group is committed to the database, with its seq.
    Commit,
    /// Once it is durable: written to the journal, or (without one) committed.
    Durable,
    /// Never: fire and forget.
    Later,
}

/// An entry on its way into the log: wait for it (blocking or async) until it is durable, or
/// to learn why it could not be made so.
#[must_use = "an entry is durable only when its PendingCommit says so"]
pub struct PendingCommit(Option<Commit>);

fn commit_outcome(outcome: Result<Result<u64, String>, tokio::sync::oneshot::error::RecvError>) -> Result<u64> {
    outcome.map_err(|_| anyhow::anyhow!("the event log writer has stopped"))?.map_err(anyhow::Error::msg)
}

impl PendingCommit {
    /// Blocks until the entry is durable (at once when it was written to the journal; else
    /// within one group commit).
    pub fn wait(self) -> Result<()> {
        match self.0 {
            Some(commit) => commit_outcome(futures_executor::block_on(commit)).map(drop),
            None => Ok(()),
        }
    }

    /// Waits on the async side until the entry is durable.
    pub async fn committed(self) -> Result<()> {
        match self.0 {
            Some(commit) => commit_outcome(commit.await).map(drop),
            None => Ok(()),
        }
    }
}

/// A handle to the node's event log (cheap to clone). The last handle dropped stops the
/// writer once it has committed everything queued.
#[derive(Clone)]
pub struct EventLog {
    shared: Arc<Shared>,
}

/// What the writer is doing, so appenders wake it only when it needs to be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriterState {
    /// Writing a group: it takes the queue when done, no wake needed.
    Busy,
    /// Waiting for an entry: the next one wakes it.
    Idle,
    /// Holding a group of entries nobody waits on, for company: only an entry with a waiter
    /// (or the log closing) wakes it early.
    Lingering,
}

/// The appenders' side of the log: the queue to the writer, in the order of the journal.
struct Front {
    /// Entries queued for the writer, in ordinal order.
    queue: VecDeque<Request>,
    /// Queued entries with an appender waiting for their commit.
    waiters: usize,
    /// False once the last handle is dropped: the writer commits the queue and stops.
    open: bool,
    writer: WriterState,
    /// The last ordinal handed out.
    ordinal: u64,
    /// The last ordinal the writer has dealt with (committed, or answered with its failure).
    settled: u64,
    /// The last ordinal answered with a failure while entries before it wait to be retried:
    /// settled once they are committed.
    failed: u64,
    /// This process's journal (none: a log without a data directory, `durability = "fsync"`,
    /// or a journal that could not be created).
    journal: Option<Journal>,
}

/// The front, the writer's wake-up, and its signal that it has dealt with more of the queue.
struct Queue {
    front: Mutex<Front>,
    work: std::sync::Condvar,
    settled: std::sync::Condvar,
}

struct Shared {
    queue: Arc<Queue>,
    node: String,
    /// Entries queued and not yet committed (the log's lag).
    pending: Arc<AtomicUsize>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        crate::sync::lock(&self.queue.front).open = false;
        self.queue.work.notify_all();
        if let Some(writer) = crate::sync::lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
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
/// checkpoint, then (for a group from a journal) the mark of the last journal record applied.
/// The transaction takes the write lock first (`BEGIN IMMEDIATE`) and reads the head inside
/// it, so several processes writing one data directory extend one chain in turn.
fn write_group(
    conn: &mut Connection,
    key: &SigningKey,
    node: &str,
    group: &[Request],
    journal: Option<&str>,
) -> rusqlite::Result<(Vec<u64>, Checkpoint)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut head = read_head(&tx)?;
    let mut seqs = Vec::with_capacity(group.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO log (seq, lamport, node, kind, subject, payload, prev, hash, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
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
                r.at_ms
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
    if let (Some(journal), Some(last)) = (journal, group.last()) {
        tx.prepare_cached(
            "INSERT INTO log_journals (journal, applied) VALUES (?1, ?2)
             ON CONFLICT (journal) DO UPDATE SET applied = excluded.applied",
        )?
        .execute(params![journal, last.ordinal as i64])?;
    }
    tx.commit()?;
    Ok((seqs, cp))
}

/// Moves what the journals of dead processes hold, past each one's mark, into the log (in
/// groups of at most [`MAX_BATCH`]), then removes them.
fn replay_orphans(conn: &mut Connection, key: &SigningKey, node: &str, dir: &Path) -> Result<()> {
    for orphan in journal::orphans(dir)? {
        let applied: i64 = conn
            .query_row("SELECT applied FROM log_journals WHERE journal = ?1", [&orphan.name], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let group: Vec<Request> = orphan
            .records
            .iter()
            .filter(|r| r.ordinal > applied as u64)
            .map(|r| Request { entry: r.entry.clone(), ordinal: r.ordinal, at_ms: r.at_ms, done: None })
            .collect();
        for chunk in group.chunks(MAX_BATCH) {
            write_group(conn, key, node, chunk, Some(&orphan.name))
                .with_context(|| format!("cannot replay the log journal {}", orphan.name))?;
        }
        if !group.is_empty() {
            tracing::info!("replayed {} event log entries from the journal {}", group.len(), orphan.name);
        }
        // Removed before its mark: a crash in between leaves a mark without a file (harmless),
        // never a file without its mark (which would be replayed twice).
        let name = orphan.name.clone();
        orphan.remove()?;
        conn.execute("DELETE FROM log_journals WHERE journal = ?1", [&name])?;
    }
    Ok(())
}

/// The next group to write: waits for an entry, then (if nobody waits on any) lingers up to
/// [`LINGER`] for more; none once the log is closed and its queue empty.
fn next_group(queue: &Queue, head: &mut HeadFile) -> Option<Vec<Request>> {
    let wait = |front, timeout| queue.work.wait_timeout(front, timeout).unwrap_or_else(|p| p.into_inner()).0;
    let mut front = crate::sync::lock(&queue.front);
    while front.queue.is_empty() {
        if !front.open {
            return None;
        }
        front.writer = WriterState::Idle;
        front = wait(front, head_file::INTERVAL);
        if front.queue.is_empty() {
            drop(front);
            head.flush();
            front = crate::sync::lock(&queue.front);
        }
    }
    // Fire-and-forget entries, and entries already durable in the journal: linger so a run of
    // calls commits in one group under one signature.
    let linger_until = std::time::Instant::now() + LINGER;
    front.writer = WriterState::Lingering;
    while front.waiters == 0 && front.open && front.queue.len() < MAX_BATCH {
        let left = linger_until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        front = wait(front, left);
    }
    front.writer = WriterState::Busy;
    let take = front.queue.len().min(MAX_BATCH);
    let group: Vec<Request> = front.queue.drain(..take).collect();
    front.waiters -= group.iter().filter(|r| r.done.is_some()).count();
    Some(group)
}

fn writer(
    mut conn: Connection,
    key: SigningKey,
    node: String,
    mut head: HeadFile,
    queue: Arc<Queue>,
    pending: Arc<AtomicUsize>,
) {
    let journal = crate::sync::lock(&queue.front).journal.as_ref().map(|j| j.name().to_string());
    let mut failures: u32 = 0;
    while let Some(group) = next_group(&queue, &mut head) {
        let result = write_group(&mut conn, &key, &node, &group, journal.as_deref()).map_err(|e| {
            format!("the event log could not commit ({e}); nothing of this group was written — check disk space and that the data directory is writable")
        });
        let last = group.last().map_or(0, |r| r.ordinal);
        match result {
            Ok((seqs, checkpoint)) => {
                failures = 0;
                {
                    let mut front = crate::sync::lock(&queue.front);
                    front.settled = last.max(front.failed);
                    if let Some(journal) = front.journal.as_mut() {
                        journal.applied(last);
                    }
                }
                queue.settled.notify_all();
                pending.fetch_sub(group.len(), Ordering::Relaxed);
                for (r, seq) in group.into_iter().zip(seqs) {
                    if let Some(done) = r.done {
                        let _ = done.send(Ok(seq));
                    }
                }
                head.committed(checkpoint);
            }
            Err(e) => {
                tracing::error!("{e}");
                // Entries in the journal are as good as logged (a replay would bring them back):
                // they go back to the front of the queue and are retried, with a growing pause.
                // Their waiters, and those of entries not in the journal (which are dropped),
                // hear of the failure now; the results of calls waiting on it are withheld.
                let mut front = crate::sync::lock(&queue.front);
                let written = front.journal.as_ref().map_or(0, Journal::written);
                let (retry, dropped): (Vec<Request>, Vec<Request>) =
                    group.into_iter().partition(|r| r.ordinal <= written);
                if !front.open && !retry.is_empty() {
                    // Closed: commit nothing after them; the journal keeps them for the next opener.
                    drop(front);
                    head.flush();
                    return;
                }
                if retry.is_empty() {
                    front.settled = front.settled.max(last);
                } else {
                    front.failed = front.failed.max(last);
                }
                let retried = retry.len();
                let mut answers = Vec::new();
                // Last first, so they keep their order at the front.
                for mut r in retry.into_iter().rev() {
                    answers.extend(r.done.take().map(|done| (done, RETRIED)));
                    front.queue.push_front(r);
                }
                drop(front);
                queue.settled.notify_all();
                pending.fetch_sub(dropped.len(), Ordering::Relaxed);
                answers.extend(dropped.into_iter().filter_map(|r| r.done).map(|done| (done, "")));
                for (done, note) in answers {
                    let _ = done.send(Err(format!("{e}{note}")));
                }
                if retried > 0 {
                    failures += 1;
                    std::thread::sleep(RETRY_PAUSE.saturating_mul(failures.min(50)));
                }
            }
        }
    }
    head.flush();
    // Everything is in the database: the journal and its mark go (in that order, as in
    // `replay_orphans`). A journal with records the database lacks stays for the next opener.
    let finished = crate::sync::lock(&queue.front).journal.take_if(|j| j.settled());
    if let Some(finished) = finished {
        let name = finished.name().to_string();
        // A journal that stays keeps its mark, so a replay skips what it has committed.
        let removed = finished.remove();
        if let Err(e) = removed.and_then(|()| {
            conn.execute("DELETE FROM log_journals WHERE journal = ?1", [&name]).map(drop).map_err(Into::into)
        }) {
            tracing::warn!("cannot finish the log journal {name}: {e:#}");
        }
    }
}

impl EventLog {
    /// Opens the log in `path` (the node database): replays the journals of processes that
    /// died, then starts the writer, which keeps the signed head in [`head_file::path_for`]
    /// `path`. With `durability = "process"` and [`Acknowledge::FromJournal`], appenders get a
    /// journal beside the database.
    pub fn open(path: &Path, key: SigningKey, durability: Durability, acknowledge: Acknowledge) -> Result<Self> {
        let mut conn = connect(path, durability)?;
        let node = crate::keys::public_hex(&key.verifying_key());
        let dir = journal::dir_for(path);
        replay_orphans(&mut conn, &key, &node, &dir)?;
        let journal = match (durability, acknowledge) {
            (Durability::Process, Acknowledge::FromJournal) => Journal::create(&dir)
                .map_err(|e| tracing::warn!("{e:#}; appenders will wait for each group commit instead"))
                .ok(),
            // Every durable entry waits for its group's commit instead (synced, with `fsync`).
            _ => None,
        };
        Self::start(conn, key, HeadFile::new(Some(head_file::path_for(path))), journal)
    }

    /// Starts the log's writer on an open connection (whose pragmas the caller chose), keeping
    /// no signed head file and no journal.
    pub fn with_connection(conn: Connection, key: SigningKey) -> Result<Self> {
        Self::start(conn, key, HeadFile::new(None), None)
    }

    fn start(conn: Connection, key: SigningKey, head: HeadFile, journal: Option<Journal>) -> Result<Self> {
        let node = crate::keys::public_hex(&key.verifying_key());
        let front = Front {
            queue: VecDeque::new(),
            waiters: 0,
            open: true,
            writer: WriterState::Busy,
            ordinal: 0,
            settled: 0,
            failed: 0,
            journal,
        };
        let queue = Arc::new(Queue { front: Mutex::new(front), work: Default::default(), settled: Default::default() });
        let pending = Arc::new(AtomicUsize::new(0));
        let (writer_node, writer_queue, writer_pending) = (node.clone(), queue.clone(), pending.clone());
        let writer = std::thread::Builder::new()
            .name("continuum-log".into())
            .spawn(move || writer(conn, key, writer_node, head, writer_queue, writer_pending))
            .context("cannot start the event log writer")?;
        Ok(EventLog { shared: Arc::new(Shared { queue, node, pending, writer: Mutex::new(Some(writer)) }) })
    }

    /// This node's id (the log's signer).
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// Entries queued and not yet committed.
    pub fn pending(&self) -> usize {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// Queues an entry, acknowledged as `ack` says; gives the commit to wait on, if any.
    fn send(&self, kind: &str, subject: &str, payload: String, ack: Ack) -> Result<Option<Commit>> {
        let entry = NewEntry { kind: kind.into(), subject: subject.into(), payload };
        let mut front = crate::sync::lock(&self.shared.queue.front);
        anyhow::ensure!(front.open, "the event log writer has stopped");
        front.ordinal += 1;
        let record = journal::Record { ordinal: front.ordinal, at_ms: crate::now_ms(), entry };
        // Every entry goes into the journal (the ordinals there must follow one another); it is
        // what an appender waiting only for durability waits for.
        let journaled = front.journal.as_mut().is_some_and(|journal| journal.write(&record));
        let (done, commit) = match ack {
            Ack::Commit => Some(tokio::sync::oneshot::channel()),
            Ack::Durable if !journaled => Some(tokio::sync::oneshot::channel()),
            _ => None,
        }
        .unzip();
        self.shared.pending.fetch_add(1, Ordering::Relaxed);
        // Wake the writer only when it waits for work, or lingers and this entry has a waiter:
        // a run of entries nobody waits on costs the appenders no wake-ups.
        let wake = match front.writer {
            WriterState::Idle => true,
            WriterState::Lingering => done.is_some(),
            WriterState::Busy => false,
        };
        front.waiters += usize::from(done.is_some());
        front.queue.push_back(Request { entry: record.entry, ordinal: record.ordinal, at_ms: record.at_ms, done });
        if wake {
            // Marked busy here, so the entries after this one do not wake it again.
            front.writer = WriterState::Busy;
            self.shared.queue.work.notify_one();
        }
        Ok(commit)
    }

    /// Appends an entry and returns its seq once it is committed to the database. An error
    /// says why its group did not commit; if the entry had reached the journal, the error says
    /// so and the entry is still committed later.
    pub fn append(&self, kind: &str, subject: &str, payload: &serde_json::Value) -> Result<u64> {
        let commit = self.send(kind, subject, payload.to_string(), Ack::Commit)?.expect("a commit to wait on");
        commit_outcome(futures_executor::block_on(commit))
    }

    /// Queues an entry and hands back what to wait on until it is durable: written to this
    /// process's journal at once (so the wait is over), or, without a journal, committed with
    /// its group.
    pub fn record(&self, kind: &str, subject: &str, payload: &impl Serialize) -> Result<PendingCommit> {
        self.send(kind, subject, serde_json::to_string(payload)?, Ack::Durable).map(PendingCommit)
    }

    /// Waits until every entry queued so far is in the database (or its group failed): what a
    /// reader of the log does first, to see what this process has acknowledged.
    pub fn settle(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + SETTLE_LIMIT;
        let mut front = crate::sync::lock(&self.shared.queue.front);
        let target = front.ordinal;
        while front.settled < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            anyhow::ensure!(
                !left.is_zero(),
                "the event log writer has not committed the queued entries in {} s (is the disk stalled?)",
                SETTLE_LIMIT.as_secs()
            );
            front = self.shared.queue.settled.wait_timeout(front, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        Ok(())
    }

    /// Queues an entry without waiting; it is committed no later than any entry appended after
    /// it.
    pub fn append_later(&self, kind: &str, subject: &str, payload: &impl Serialize) -> Result<()> {
        self.send(kind, subject, serde_json::to_string(payload)?, Ack::Later).map(drop)
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
