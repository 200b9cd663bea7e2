//! How entries are hashed and checkpoints signed, and how a chain is verified.
//!
//! An entry's hash is sha256 over its fields in order — seq, lamport, node, kind, subject,
//! payload, prev — each as an 8-byte little-endian length followed by its bytes (numbers in
//! decimal), so no two different entries share an encoding. A checkpoint signs
//! `continuum-log-checkpoint-v1\0` ‖ node ‖ seq (8 bytes LE) ‖ head hash (32 bytes) with the
//! node's key.

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One log entry as stored and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the node's log, from 1, without gaps.
    pub seq: u64,
    /// Lamport time.
    pub lamport: u64,
    /// The writing node's id (public key hex).
    pub node: String,
    /// What happened (`call.completed`, `plugin.installed`, `kv.put`, …).
    pub kind: String,
    /// What it happened to (a command, a plugin, a key).
    pub subject: String,
    /// Details, JSON text.
    pub payload: String,
    /// The previous entry's hash ([`GENESIS`] for seq 1).
    pub prev: String,
    /// This entry's hash.
    pub hash: String,
}

/// A signed statement that the log had `seq` entries ending in `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last entry covered.
    pub seq: u64,
    /// Its hash.
    pub head: String,
    /// ed25519 signature by the node, hex.
    pub signature: String,
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The hash of an entry's fields.
pub fn entry_hash(seq: u64, lamport: u64, node: &str, kind: &str, subject: &str, payload: &str, prev: &str) -> String {
    let mut h = Sha256::new();
    field(&mut h, seq.to_string().as_bytes());
    field(&mut h, lamport.to_string().as_bytes());
    for f in [node, kind, subject, payload, prev] {
        field(&mut h, f.as_bytes());
    }
    crate::alloy::custody::digest_hex(&h.finalize().into())
}

fn checkpoint_message(node: &str, seq: u64, head: &str) -> Vec<u8> {
    let mut m = node.as_bytes().to_vec();
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(&hex::decode(head).unwrap_or_default());
    m
}

/// Signs a checkpoint of `node`'s log at `seq` / `head`.
pub fn sign_checkpoint(key: &SigningKey, node: &str, seq: u64, head: &str) -> Checkpoint {
    let signature = crate::signing::sign(key, crate::signing::CHECKPOINT, &checkpoint_message(node, seq, head));
    Checkpoint { seq, head: head.to_string(), signature }
}

/// Whether `cp` is a valid checkpoint of `node`'s log by `key`.
pub fn checkpoint_valid(key: &VerifyingKey, node: &str, cp: &Checkpoint) -> bool {
    crate::signing::verify(key, crate::signing::CHECKPOINT, &checkpoint_message(node, cp.seq, &cp.head), &cp.signature)
}

/// The first problem found in a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq}: {problem}")]
pub struct Broken {
    /// The first bad sequence number.
    pub seq: u64,
    /// What is wrong with it.
    pub problem: String,
}

/// Walks a chain in order: contiguous sequence numbers, each `prev` the previous hash, each
/// hash recomputed, and each signed checkpoint against the entry it covers. Memory stays
/// constant however long the log is.
pub struct ChainCheck {
    node: String,
    key: VerifyingKey,
    expected_seq: u64,
    prev: String,
    checkpoints: std::collections::VecDeque<Checkpoint>,
    checked_checkpoints: u64,
    last_checkpointed: u64,
    /// Checkpoints whose heads matched, waiting for their signatures to be checked in bulk.
    signed: Vec<Checkpoint>,
}

impl ChainCheck {
    /// A check of `node`'s chain (signed by `key`) from its first entry, with its checkpoints.
    pub fn new(node: &str, key: VerifyingKey, mut checkpoints: Vec<Checkpoint>) -> Self {
        checkpoints.sort_by_key(|c| c.seq);
        ChainCheck {
            node: node.to_string(),
            key,
            expected_seq: 1,
            prev: GENESIS.to_string(),
            checkpoints: checkpoints.into(),
            checked_checkpoints: 0,
            last_checkpointed: 0,
            signed: Vec::new(),
        }
    }

    /// A check that continues a chain after entry `first_seq - 1`, whose hash was `prev`.
    pub fn resume(node: &str, key: VerifyingKey, checkpoints: Vec<Checkpoint>, first_seq: u64, prev: &str) -> Self {
        let mut check = Self::new(node, key, checkpoints);
        check.expected_seq = first_seq;
        check.prev = prev.to_string();
        check.last_checkpointed = first_seq - 1;
        check
    }

    /// Checks the next entry, and any checkpoint that covers it.
    pub fn next(&mut self, e: &Entry) -> Result<(), Broken> {
        let bad = |problem: String| Err(Broken { seq: self.expected_seq, problem });
        if e.seq != self.expected_seq {
            return bad(format!("missing (the next stored entry is {}): an entry was deleted or reordered", e.seq));
        }
        if e.node != self.node {
            return bad(format!("written by node {} in the log of {}", e.node, self.node));
        }
        if e.prev != self.prev {
            return bad("does not link to the entry before it (prev hash differs)".into());
        }
        let hash = entry_hash(e.seq, e.lamport, &e.node, &e.kind, &e.subject, &e.payload, &e.prev);
        if hash != e.hash {
            return bad("its contents do not match its hash (the entry was altered)".into());
        }
        while self.checkpoints.front().is_some_and(|c| c.seq == e.seq) {
            let cp = self.checkpoints.pop_front().expect("front exists");
            if cp.head != e.hash {
                return bad("the signed checkpoint names a different head hash".into());
            }
            self.signed.push(cp);
            self.checked_checkpoints += 1;
            self.last_checkpointed = e.seq;
        }
        if let Some(cp) = self.checkpoints.front().filter(|c| c.seq < e.seq) {
            return Err(Broken { seq: cp.seq, problem: "a checkpoint covers an entry that is not in the log".into() });
        }
        self.prev = e.hash.clone();
        self.expected_seq += 1;
        Ok(())
    }

    /// Finishes the walk: every checkpoint must have been matched and carry a valid signature,
    /// and the last entry must be covered by one (so every entry is under a signature).
    pub fn finish(self) -> Result<(u64, u64), Broken> {
        if let Some(seq) = first_bad_signature(&self.key, &self.node, &self.signed) {
            return Err(Broken { seq, problem: "the checkpoint's signature is invalid".into() });
        }
        if let Some(cp) = self.checkpoints.back() {
            return Err(Broken {
                seq: self.expected_seq,
                problem: format!(
                    "missing: entries were deleted from the end (a signed checkpoint covers entry {})",
                    cp.seq
                ),
            });
        }
        let count = self.expected_seq - 1;
        if count > self.last_checkpointed {
            return Err(Broken {
                seq: self.last_checkpointed + 1,
                problem: "not covered by any signed checkpoint (entries were added outside the log writer)".into(),
            });
        }
        Ok((count, self.checked_checkpoints))
    }
}

/// The seq of the first checkpoint in `cps` whose signature is invalid, if any. Signatures are
/// checked in batches (ed25519 batch verification) spread over the available cores; a failing
/// batch is re-checked one by one to name the first bad checkpoint.
fn first_bad_signature(key: &VerifyingKey, node: &str, cps: &[Checkpoint]) -> Option<u64> {
    const BATCH: usize = 256;
    let check_chunk = |chunk: &[Checkpoint]| -> Option<u64> {
        let parsed: Option<Vec<(Vec<u8>, Signature)>> = chunk
            .iter()
            .map(|c| {
                let sig = hex::decode(&c.signature).ok().and_then(|b| <[u8; 64]>::try_from(b).ok())?;
                let message = [crate::signing::CHECKPOINT, &checkpoint_message(node, c.seq, &c.head)].concat();
                Some((message, Signature::from_bytes(&sig)))
            })
            .collect();
        let batch_ok = parsed.is_some_and(|p| {
            let messages: Vec<&[u8]> = p.iter().map(|(m, _)| m.as_slice()).collect();
            let signatures: Vec<Signature> = p.iter().map(|(_, s)| *s).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &vec![*key; p.len()]).is_ok()
        });
        if batch_ok {
            return None;
        }
        chunk.iter().find(|c| !checkpoint_valid(key, node, c)).map(|c| c.seq)
    };
    let threads = crate::cores();
    let per_thread = cps.len().div_ceil(threads).max(BATCH);
    std::thread::scope(|s| {
        let handles: Vec<_> =
            cps.chunks(per_thread).map(|part| s.spawn(move || part.chunks(BATCH).find_map(check_chunk))).collect();
        handles.into_iter().filter_map(|h| h.join().ok().flatten()).min()
    })
}
