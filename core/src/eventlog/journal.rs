//! The journal in front of the log: where an entry becomes durable on its appender's own
//! thread, before the writer moves it into SQLite.
//!
//! Waiting for a group commit costs a sequential caller two thread hand-offs, a SQLite
//! transaction and a signature — several times a small call. [`super::EventLog::record`]
//! instead copies the entry into this process's journal, a file mapped shared into memory,
//! and returns: the bytes are then in the operating system's page cache, where — as with a WAL
//! commit under `synchronous = NORMAL` — they survive the process being killed at any point
//! (an operating system crash may lose them). The writer still moves every entry into the
//! database in groups (chained, signed, committed) and records in the same transaction the last
//! journal record it applied, so the journal of a process that died is replayed from there by
//! the next process that opens the log.
//!
//! Files: `log.journals/<id>` beside the database, one per open log, [`SIZE`] bytes allocated
//! up front (so a full disk fails the creation, never a write through the mapping), locked
//! (`flock`) by its process while it lives, mode 0600. A record is
//! `length (u32 LE) ‖ crc32 (u32 LE) ‖ body` ([`encode`]), each record's ordinal one more than
//! the one before it. Records are written one after another and start again at the beginning once everything
//! written is in the database; a replay reads from the beginning and stops at the first record
//! that is torn, corrupt, or not the next ordinal (older records past the restart point).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::NewEntry;
use anyhow::{Context, Result};

/// The folder of journals beside the database at `database`.
pub fn dir_for(database: &Path) -> PathBuf {
    database.with_file_name("log.journals")
}

/// Bytes of a journal: room for thousands of entries between two commits of the writer (when it
/// is full, appenders wait for the commit instead).
pub const SIZE: usize = 2 << 20;

/// One journal record: an entry, its place in its process's queue, and when it was queued.
#[derive(Debug)]
pub struct Record {
    /// The entry's position in its process's queue (from 1; the writer applies in this order).
    pub ordinal: u64,
    /// When it was queued (ms since the epoch).
    pub at_ms: i64,
    /// The entry.
    pub entry: NewEntry,
}

/// Encodes a record for the file: its body is the ordinal and time (8 bytes LE each), then
/// kind, subject and payload, each as a u32 LE length and UTF-8 bytes.
pub fn encode(record: &Record) -> Vec<u8> {
    let e = &record.entry;
    let mut bytes = Vec::with_capacity(8 + 16 + 12 + e.kind.len() + e.subject.len() + e.payload.len());
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&record.ordinal.to_le_bytes());
    bytes.extend_from_slice(&record.at_ms.to_le_bytes());
    for field in [&e.kind, &e.subject, &e.payload] {
        bytes.extend_from_slice(&(field.len() as u32).to_le_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    let body_len = (bytes.len() - 8) as u32;
    let crc = crc32fast::hash(&bytes[8..]);
    bytes[..4].copy_from_slice(&body_len.to_le_bytes());
    bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Reads a record's body (see [`encode`]); none if it is malformed.
fn parse(body: &[u8]) -> Option<Record> {
    let mut rest = body;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
        rest = tail;
        Some(head)
    };
    let ordinal = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let at_ms = i64::from_le_bytes(take(8)?.try_into().ok()?);
    let mut text = || -> Option<String> {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        String::from_utf8(take(len)?.to_vec()).ok()
    };
    let entry = NewEntry { kind: text()?, subject: text()?, payload: text()? };
    Some(Record { ordinal, at_ms, entry })
}

/// Decodes the records of a journal file, in order, up to the first torn, corrupt or
/// out-of-sequence one.
fn decode(mut bytes: &[u8]) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    while bytes.len() >= 8 {
        let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(8..8 + len).filter(|b| !b.is_empty()) else { break };
        if crc32fast::hash(body) != crc {
            break;
        }
        let Some(record) = parse(body) else { break };
        if records.last().is_some_and(|last| record.ordinal != last.ordinal + 1) {
            break;
        }
        records.push(record);
        bytes = &bytes[8 + len..];
    }
    records
}

/// This process's journal: the locked file, mapped.
pub struct Journal {
    map: memmap2::MmapMut,
    /// Held for the lock.
    _file: File,
    path: PathBuf,
    name: String,
    /// Where the next record goes.
    offset: usize,
    /// Ordinal of the last record written.
    written: u64,
    /// Ordinal of the last record the writer committed to the database.
    applied: u64,
    /// A record did not fit: none is written until the journal can start again at the
    /// beginning (the ordinals in the file must follow one another).
    full: bool,
}

impl Journal {
    /// Creates, allocates, locks and maps a new journal in `dir`.
    pub fn create(dir: &Path) -> Result<Journal> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        crate::paths::restrict_to_owner(dir)?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no randomness for a journal name: {e}"))?;
        let name = format!("{}-{}", std::process::id(), hex::encode(id));
        let path = dir.join(&name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create the log journal {}", path.display()))?;
        let created = (|| -> Result<memmap2::MmapMut> {
            file.try_lock().context("cannot lock it")?;
            // SAFETY: plain call on an open descriptor.
            let err = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, SIZE as libc::off_t) };
            anyhow::ensure!(err == 0, "cannot allocate it: {}", std::io::Error::from_raw_os_error(err));
            // SAFETY: the file is this process's own (just created, locked, mode 0600), so nothing
            // else changes it under the mapping; its size is fixed at SIZE.
            Ok(unsafe { memmap2::MmapMut::map_mut(&file)? })
        })();
        let map = match created {
            Ok(map) => map,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e.context(format!("the log journal {}", path.display())));
            }
        };
        Ok(Journal { map, _file: file, path, name, offset: 0, written: 0, applied: 0, full: false })
    }

    /// The journal's name (its file name), as the database's mark of applied records knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `record`; once this returns true, it survives the process being killed. False:
    /// the journal is full of records the writer has not committed yet.
    pub fn write(&mut self, record: &Record) -> bool {
        if (self.full || self.offset > 0) && self.written <= self.applied {
            // Everything written is in the database: start again at the beginning.
            self.offset = 0;
            self.full = false;
        }
        let bytes = encode(record);
        let end = self.offset + bytes.len();
        if self.full || end > SIZE {
            self.full = true;
            return false;
        }
        self.map[self.offset..end].copy_from_slice(&bytes);
        self.offset = end;
        self.written = record.ordinal;
        true
    }

    /// Ordinal of the last record written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Notes that the writer committed every record up to `ordinal`.
    pub fn applied(&mut self, ordinal: u64) {
        self.applied = ordinal;
    }

    /// Whether every record written is in the database.
    pub fn settled(&self) -> bool {
        self.written <= self.applied
    }

    /// Removes the file (every record in it is in the database).
    pub fn remove(self) -> Result<()> {
        std::fs::remove_file(&self.path).with_context(|| format!("cannot remove {}", self.path.display()))
    }
}

/// A journal left by a process that is gone: locked now by this one, with its records.
pub struct Orphan {
    /// Held for the lock.
    _file: File,
    path: PathBuf,
    /// Its name.
    pub name: String,
    /// Its records, in order.
    pub records: Vec<Record>,
}

impl Orphan {
    /// Removes the file, once its records are in the database.
    pub fn remove(self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            // Another opener removed it meanwhile (it found it empty, or replayed it first).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            removed => removed.with_context(|| format!("cannot remove the log journal {}", self.path.display())),
        }
    }
}

/// The journals in `dir` whose processes are gone (their lock is free), each locked now.
pub fn orphans(dir: &Path) -> Result<Vec<Orphan>> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut found = Vec::new();
    for item in listing {
        let path = item?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // finished meanwhile
            Err(e) => return Err(e).with_context(|| format!("cannot open the log journal {}", path.display())),
        };
        if file.try_lock().is_err() {
            continue; // its process is alive
        }
        // Another process may have replayed and removed it between our open and our lock.
        if file.metadata()?.nlink() == 0 {
            continue;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).with_context(|| format!("cannot read the log journal {}", path.display()))?;
        found.push(Orphan { _file: file, path, name, records: decode(&bytes) });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ordinal: u64) -> Record {
        Record {
            ordinal,
            at_ms: 1,
            entry: NewEntry { kind: "t.k".into(), subject: "s".into(), payload: format!("{{\"n\":{ordinal}}}") },
        }
    }

    fn ordinals(found: &[Orphan]) -> Vec<u64> {
        found[0].records.iter().map(|r| r.ordinal).collect()
    }

    #[test]
    fn records_read_back_from_a_dead_journal_and_a_torn_tail_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path()).unwrap();
        for n in 1..=3 {
            assert!(journal.write(&record(n)));
        }
        // Locked by its (live) owner: not an orphan.
        assert!(orphans(dir.path()).unwrap().is_empty());
        // Half of a fourth record, as a kill in the middle of the copy leaves it.
        let torn = encode(&record(4));
        let at = journal.offset;
        journal.map[at..at + torn.len() / 2].copy_from_slice(&torn[..torn.len() / 2]);
        drop(journal);
        let found = orphans(dir.path()).unwrap();
        assert_eq!((found.len(), ordinals(&found)), (1, vec![1, 2, 3]));
        found.into_iter().next().unwrap().remove().unwrap();
        assert!(orphans(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_flipped_byte_stops_the_replay_at_that_record() {
        let mut bytes = encode(&record(1));
        let at = bytes.len() + 12;
        bytes.extend_from_slice(&encode(&record(2)));
        bytes.extend_from_slice(&encode(&record(3)));
        bytes[at] ^= 0x20;
        assert_eq!(decode(&bytes).iter().map(|r| r.ordinal).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_full_journal_refuses_until_committed_then_starts_again_and_replays_only_the_new_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path()).unwrap();
        let mut n = 0;
        while journal.write(&record(n + 1)) {
            n += 1;
        }
        assert!(n > 1000, "only {n} records fit");
        // Full: nothing is written, however small, until the writer has committed it all.
        journal.applied(n - 1);
        assert!(!journal.write(&record(n + 1)));
        journal.applied(n);
        assert!(journal.settled());
        assert!(journal.write(&record(n + 1)) && journal.write(&record(n + 2)));
        assert_eq!(journal.offset, 2 * encode(&record(n + 1)).len());
        drop(journal);
        // The older records after the new run are not replayed.
        assert_eq!(ordinals(&orphans(dir.path()).unwrap()), [n + 1, n + 2]);
    }
}
