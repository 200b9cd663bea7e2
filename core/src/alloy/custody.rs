//! The chain of custody (`custody.jsonl`): one signed entry per line, each holding the hash of
//! the line before it (the first holds the manifest's hash), so that removing, reordering or
//! editing an entry is detected.
//!
//! A line is `{"entry":"<entry JSON text>","signature":"<hex>"}`; the signature is ed25519 over
//! [`DOMAIN`] followed by the exact bytes of the entry text.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Reason, Refusal};
use crate::keys::{parse_public, public_hex};

/// Domain separation for custody signatures.
pub const DOMAIN: &[u8] = crate::signing::CUSTODY;

/// The stages of custody, in the order they may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The source the component was built from.
    Source,
    /// The build that produced the component.
    Build,
    /// The publisher's signature over the manifest.
    Sign,
    /// An auditor re-ran the proof suite.
    Evaluate,
    /// Delivery to a peer.
    Deliver,
}

/// One custody entry (the signed text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Which stage this records.
    pub stage: Stage,
    /// The signer's public key, hex.
    pub actor: String,
    /// When, in seconds since the Unix epoch.
    pub at: i64,
    /// sha256 (hex) of the manifest bytes.
    pub manifest: String,
    /// sha256 (hex) of the previous line, or of the manifest for the first entry.
    pub prev: String,
    /// What the actor states (stage-specific).
    pub statement: Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    entry: String,
    signature: String,
}

/// sha256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    digest_hex(&Sha256::digest(bytes).into())
}

/// A 32-byte digest as lower-case hex (`hex::encode` goes char by char: this is on every
/// call's path, several times).
pub fn digest_hex(digest: &[u8; 32]) -> String {
    let mut text = vec![0u8; 64];
    hex::encode_to_slice(digest, &mut text).expect("64 bytes hold 32 in hex");
    String::from_utf8(text).expect("hex is ASCII")
}

/// A chain of custody: its lines exactly as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    lines: Vec<String>,
}

impl Chain {
    /// Splits stored chain text into lines (empty lines are refused on verify).
    pub fn parse(text: &str) -> Self {
        Chain { lines: text.lines().map(String::from).collect() }
    }

    /// The chain as stored: one line per entry, each ending in a newline.
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Appends an entry for `stage`, signed by `key`, linked to the last line (or the manifest).
    pub fn append(&mut self, key: &SigningKey, manifest_bytes: &[u8], stage: Stage, statement: Value) {
        let manifest = sha256_hex(manifest_bytes);
        let prev = self.lines.last().map_or_else(|| manifest.clone(), |l| sha256_hex(l.as_bytes()));
        let entry =
            Entry { stage, actor: public_hex(&key.verifying_key()), at: crate::now_secs(), manifest, prev, statement };
        let entry = serde_json::to_string(&entry).expect("entries serialize");
        let signature = crate::signing::sign(key, DOMAIN, entry.as_bytes());
        let line = Line { entry, signature };
        self.lines.push(serde_json::to_string(&line).expect("lines serialize"));
    }

    /// Checks every line against `manifest_bytes`: well-formed, signed by its actor, linked to
    /// the line before, stages in order with exactly one `sign`. Returns the entries.
    pub fn verify(&self, manifest_bytes: &[u8]) -> Result<Vec<Entry>, Refusal> {
        let manifest = sha256_hex(manifest_bytes);
        let mut prev = manifest.clone();
        let mut entries: Vec<Entry> = Vec::new();
        for (i, raw) in self.lines.iter().enumerate() {
            let n = i + 1;
            let line: Line = serde_json::from_str(raw).map_err(|e| {
                Refusal::new(Reason::Malformed, format!("custody entry {n} is not a custody line: {e}"))
            })?;
            // The last line's framing is covered by no hash: it must be the one form `append` writes.
            let canonical = serde_json::to_string(&line).ok().as_deref() == Some(raw.as_str())
                && !line.signature.bytes().any(|b| b.is_ascii_uppercase());
            if !canonical {
                return Err(Refusal::new(
                    Reason::Malformed,
                    format!(
                        "custody entry {n} is not in canonical form (compact JSON `{{\"entry\":…,\"signature\":…}}`, \
                         lower-case hex, as `continuum` writes it): one signed alloy has one byte form"
                    ),
                ));
            }
            let entry: Entry = serde_json::from_str(&line.entry)
                .map_err(|e| Refusal::new(Reason::Malformed, format!("custody entry {n} is not an entry: {e}")))?;
            let actor = parse_public(&entry.actor).map_err(|e| {
                Refusal::new(Reason::BadSignature, format!("custody entry {n} ({:?}): {e}", entry.stage))
            })?;
            if !crate::signing::verify(&actor, DOMAIN, line.entry.as_bytes(), &line.signature) {
                return Err(Refusal::new(
                    Reason::BadSignature,
                    format!(
                        "custody entry {n} ({}) does not carry a valid signature by {}",
                        stage_name(entry.stage),
                        short(&entry.actor)
                    ),
                ));
            }
            if entry.manifest != manifest {
                return Err(if i == 0 {
                    Refusal::new(
                        Reason::BadSignature,
                        "the manifest was altered after it was signed: no signature covers its bytes".into(),
                    )
                } else {
                    Refusal::new(Reason::BrokenChain, format!("custody entry {n} was signed for a different artifact"))
                });
            }
            if entry.prev != prev {
                return Err(Refusal::new(
                    Reason::BrokenChain,
                    format!("custody entry {n} does not follow the entry before it (an entry was removed, reordered or replaced)"),
                ));
            }
            if let Some(last) = entries.last() {
                if entry.stage < last.stage || (entry.stage == Stage::Sign && last.stage == Stage::Sign) {
                    return Err(Refusal::new(
                        Reason::BrokenChain,
                        format!("custody entry {n} ({}) comes after {}: stages must run source → build → sign → evaluate → deliver", stage_name(entry.stage), stage_name(last.stage)),
                    ));
                }
            }
            prev = sha256_hex(raw.as_bytes());
            entries.push(entry);
        }
        if !entries.iter().any(|e| e.stage == Stage::Sign) {
            return Err(Refusal::new(Reason::BrokenChain, "the chain of custody has no `sign` entry".into()));
        }
        Ok(entries)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the chain has no entries.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Removes entry `index` (tests and tamper tooling use this to show it is detected).
    pub fn remove(&mut self, index: usize) -> String {
        self.lines.remove(index)
    }

    /// Swaps two entries (to show reordering is detected).
    pub fn swap(&mut self, a: usize, b: usize) {
        self.lines.swap(a, b)
    }

    /// Replaces the text of entry `index` (to show editing is detected).
    pub fn replace(&mut self, index: usize, line: String) {
        self.lines[index] = line;
    }

    /// The raw text of entry `index`.
    pub fn line(&self, index: usize) -> &str {
        &self.lines[index]
    }
}

/// The stage's name as written in the chain.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Source => "source",
        Stage::Build => "build",
        Stage::Sign => "sign",
        Stage::Evaluate => "evaluate",
        Stage::Deliver => "deliver",
    }
}

/// The first 16 characters of a key, for messages (cut on a character boundary: the text may
/// come from an attacker and need not be hex).
pub fn short(key: &str) -> &str {
    key.char_indices().nth(16).map_or(key, |(end, _)| &key[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn chain(manifest: &[u8]) -> Chain {
        let mut c = Chain::default();
        c.append(&key(1), manifest, Stage::Build, json!({ "command": "cargo build" }));
        c.append(&key(1), manifest, Stage::Sign, json!({}));
        c.append(&key(2), manifest, Stage::Evaluate, json!({ "passed": 3 }));
        c
    }

    #[test]
    fn a_well_formed_chain_verifies_and_round_trips() {
        let c = chain(b"manifest");
        let entries = c.verify(b"manifest").unwrap();
        assert_eq!(entries.iter().map(|e| e.stage).collect::<Vec<_>>(), [Stage::Build, Stage::Sign, Stage::Evaluate]);
        assert_eq!(Chain::parse(&c.text()), c);
    }

    #[test]
    fn removing_reordering_or_editing_an_entry_is_detected() {
        let m = b"manifest";
        let mut removed = chain(m);
        removed.remove(1);
        assert_eq!(removed.verify(m).unwrap_err().reason, Reason::BrokenChain);
        let mut swapped = chain(m);
        swapped.swap(1, 2);
        assert_eq!(swapped.verify(m).unwrap_err().reason, Reason::BrokenChain);
        let mut edited = chain(m);
        let line = edited.line(2).replace("\\\"passed\\\":3", "\\\"passed\\\":4");
        assert_ne!(line, edited.line(2));
        edited.replace(2, line);
        assert_eq!(edited.verify(m).unwrap_err().reason, Reason::BadSignature);
        assert_eq!(chain(m).verify(b"other manifest").unwrap_err().reason, Reason::BadSignature);
        let mut unsigned = Chain::default();
        unsigned.append(&key(1), m, Stage::Build, json!({}));
        assert!(unsigned.verify(m).unwrap_err().message.contains("no `sign` entry"));
        assert_eq!(Chain::parse("not json\n").verify(m).unwrap_err().reason, Reason::Malformed);
    }
}
