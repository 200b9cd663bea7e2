//! Alloy artifacts: one `.alloy` file holding a component, its signed manifest and its chain
//! of custody. The format is documented in `docs/alloy.md`.
//!
//! The file is a POSIX tar archive with exactly three regular files, in this order:
//! `alloy.json` (the manifest), `component.wasm`, `custody.jsonl` (the chain of custody), in
//! one canonical byte form, so that one signed artifact has one digest.

pub mod custody;
pub mod manifest;
pub mod proof;

use std::io::Read;
use std::path::Path;

use anyhow::Context;

use custody::Chain;
use manifest::Manifest;

/// Largest `.alloy` file accepted.
pub const MAX_ALLOY_BYTES: u64 = 300 << 20;
/// Largest manifest accepted.
pub const MAX_MANIFEST_BYTES: u64 = 8 << 20;
/// Largest chain of custody accepted.
pub const MAX_CHAIN_BYTES: u64 = 1 << 20;

/// The members of an alloy, in order.
const MEMBERS: [&str; 3] = ["alloy.json", "component.wasm", "custody.jsonl"];
/// The size limit of each member, in [`MEMBERS`] order.
const LIMITS: [u64; 3] = [MAX_MANIFEST_BYTES, MAX_ALLOY_BYTES, MAX_CHAIN_BYTES];
/// A tar block: headers, and the unit members are padded to.
const BLOCK: u64 = 512;
/// The end of a tar archive: two zero blocks.
const END: u64 = 2 * BLOCK;

/// Why an artifact was refused: each check has its own reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The file or one of its parts is over its size limit.
    TooLarge,
    /// Not a well-formed alloy (truncated, wrong members, not in canonical form, invalid JSON,
    /// control characters in the manifest, an invalid name or version).
    Malformed,
    /// The component's sha256 or size differs from the manifest.
    DigestMismatch,
    /// A custody entry's signature does not verify.
    BadSignature,
    /// Custody entries were removed, reordered, replaced, or belong to another manifest.
    BrokenChain,
    /// The `sign` entry is not by the manifest's author.
    WrongSigner,
    /// The signer is not in the trust store.
    UntrustedSigner,
    /// The version is older than (or equal to, with other content) the installed one.
    Rollback,
    /// A plugin of that name is installed (use `plugin upgrade`).
    AlreadyInstalled,
    /// `plugin upgrade` of a plugin that is not installed.
    NotInstalled,
    /// `plugin upgrade` to an alloy signed by another publisher than the installed plugin's
    /// (without `--allow-new-publisher`).
    PublisherChanged,
    /// The manifest lists a command name twice.
    DuplicateCommand,
    /// The manifest's capabilities differ from the component's imports.
    CapabilityMismatch,
    /// The manifest's commands differ from what the component and its WIT reflect to.
    InterfaceMismatch,
    /// A proof case failed on this host.
    ProofFailed,
}

impl Reason {
    /// The reason's stable name.
    pub fn code(self) -> &'static str {
        match self {
            Reason::TooLarge => "too-large",
            Reason::Malformed => "malformed",
            Reason::DigestMismatch => "digest-mismatch",
            Reason::BadSignature => "bad-signature",
            Reason::BrokenChain => "broken-chain",
            Reason::WrongSigner => "wrong-signer",
            Reason::UntrustedSigner => "untrusted-signer",
            Reason::Rollback => "rollback",
            Reason::AlreadyInstalled => "already-installed",
            Reason::NotInstalled => "not-installed",
            Reason::PublisherChanged => "publisher-changed",
            Reason::DuplicateCommand => "duplicate-command",
            Reason::CapabilityMismatch => "capability-mismatch",
            Reason::InterfaceMismatch => "interface-mismatch",
            Reason::ProofFailed => "proof-failed",
        }
    }
}

/// A refused artifact: the reason and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused ({}): {message}", reason.code())]
pub struct Refusal {
    /// Which check failed.
    pub reason: Reason,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl Refusal {
    /// A refusal for `reason`.
    pub fn new(reason: Reason, message: String) -> Self {
        Refusal { reason, message }
    }
}

/// An alloy in memory.
#[derive(Debug, Clone)]
pub struct Alloy {
    /// The manifest's exact bytes (what custody entries sign).
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The component bytes.
    pub component: Vec<u8>,
    /// The chain of custody.
    pub chain: Chain,
}

fn malformed(message: String) -> Refusal {
    Refusal::new(Reason::Malformed, message)
}

/// The next `len` bytes of `reader`; fewer only where it ends first. Grows with the data
/// actually read, not with what a header claims.
fn next(reader: &mut impl Read, len: u64) -> Result<Vec<u8>, Refusal> {
    let mut bytes = Vec::new();
    reader.take(len).read_to_end(&mut bytes).map_err(|e| malformed(format!("cannot read the file: {e}")))?;
    Ok(bytes)
}

/// The zero bytes after a member of `size` bytes, up to the next block.
fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// The one tar header a member may have: ustar, regular file `name` of `size` bytes, mode
/// 0644, owner 0, mtime 0.
fn member_header(name: &str, size: u64) -> std::io::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_path(name)?;
    header.set_cksum();
    Ok(header)
}

/// The name of the first ustar header field in which `header` differs from `canonical`.
fn differing_field(header: &[u8], canonical: &[u8; 512]) -> Option<&'static str> {
    /// Each ustar field's name and where it ends.
    const FIELDS: [(&str, usize); 17] = [
        ("name", 100),
        ("mode", 108),
        ("uid", 116),
        ("gid", 124),
        ("size", 136),
        ("mtime", 148),
        ("checksum", 156),
        ("type", 157),
        ("link name", 257),
        ("magic", 263),
        ("version", 265),
        ("owner name", 297),
        ("group name", 329),
        ("device major", 337),
        ("device minor", 345),
        ("prefix", 500),
        ("padding", 512),
    ];
    let at = header.iter().zip(canonical).position(|(a, b)| a != b)?;
    FIELDS.iter().find(|(_, end)| at < *end).map(|(field, _)| *field)
}

impl Alloy {
    /// Reads an alloy file, enforcing size limits before reading any part.
    pub fn read(path: &Path) -> Result<Alloy, Refusal> {
        let size =
            std::fs::metadata(path).map_err(|e| malformed(format!("cannot read {}: {e}", path.display())))?.len();
        if size > MAX_ALLOY_BYTES {
            return Err(Refusal::new(
                Reason::TooLarge,
                format!(
                    "{} is {} MiB; alloys are limited to {} MiB",
                    path.display(),
                    size >> 20,
                    MAX_ALLOY_BYTES >> 20
                ),
            ));
        }
        let file = std::fs::File::open(path).map_err(|e| malformed(format!("cannot open {}: {e}", path.display())))?;
        Self::from_reader(file)
    }

    /// Parses an alloy from its bytes, which must be the one byte form [`Alloy::to_bytes`]
    /// writes for its content: each member's tar header exactly as written, zero padding, the
    /// two zero blocks that end the archive and nothing after them, and the chain of custody
    /// one `\n`-terminated line per entry. One signed artifact therefore has one digest.
    pub fn from_reader(mut reader: impl Read) -> Result<Alloy, Refusal> {
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(MEMBERS.len());
        for (i, (expected, limit)) in MEMBERS.into_iter().zip(LIMITS).enumerate() {
            let block = next(&mut reader, BLOCK)?;
            if i == 0 && (block.len() as u64) < BLOCK {
                return Err(malformed(format!("not an alloy (tar) file: it is {} bytes long", block.len())));
            }
            if (block.len() as u64) < BLOCK || block.iter().all(|b| *b == 0) {
                return Err(malformed(format!(
                    "the file is truncated: it has {i} of the 3 members ({})",
                    MEMBERS.join(", ")
                )));
            }
            let header = tar::Header::from_byte_slice(&block);
            let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
            if name != expected || header.entry_type() != tar::EntryType::Regular {
                return Err(malformed(format!(
                    "member {} is `{}`, expected the regular file `{expected}`",
                    i + 1,
                    name.escape_debug()
                )));
            }
            let size = header
                .entry_size()
                .map_err(|e| malformed(format!("the tar header of `{expected}` is corrupt: {e}")))?;
            if size > limit {
                return Err(Refusal::new(
                    Reason::TooLarge,
                    format!("`{expected}` is {size} bytes; the limit is {limit}"),
                ));
            }
            let canonical = member_header(expected, size)
                .map_err(|e| malformed(format!("the tar header of `{expected}` is corrupt: {e}")))?;
            if let Some(field) = differing_field(&block, canonical.as_bytes()) {
                return Err(malformed(format!(
                    "the tar header of `{expected}` is not in canonical form (its {field} field differs from the \
                     one `continuum` writes): one signed alloy has one byte form; re-write it with \
                     `continuum plugin pack` or `attest`"
                )));
            }
            let bytes = next(&mut reader, size)?;
            if (bytes.len() as u64) < size {
                return Err(malformed(format!("the file is truncated: `{expected}` is shorter than its header says")));
            }
            let pad = next(&mut reader, padding(size))?;
            if (pad.len() as u64) < padding(size) {
                return Err(malformed(format!("the file is truncated: the padding after `{expected}` is cut short")));
            }
            if pad.iter().any(|b| *b != 0) {
                return Err(malformed(format!(
                    "the padding after `{expected}` is not zero: no signature covers those bytes, so an alloy \
                     must hold none but zeros there"
                )));
            }
            parts.push(bytes);
        }
        let end = next(&mut reader, END + 1)?;
        if end.len() as u64 >= BLOCK && end[..BLOCK as usize].iter().any(|b| *b != 0) {
            let extra = tar::Header::from_byte_slice(&end[..BLOCK as usize]).path_bytes().into_owned();
            return Err(malformed(format!(
                "unexpected extra member `{}`; an alloy holds exactly {}",
                String::from_utf8_lossy(&extra).escape_debug(),
                MEMBERS.join(", ")
            )));
        }
        if end.len() as u64 > END {
            return Err(malformed(
                "there is data after the end of the archive: an alloy ends with the two zero blocks after \
                 `custody.jsonl`, and nothing follows them"
                    .into(),
            ));
        }
        if (end.len() as u64) < END {
            return Err(malformed(
                "the file is truncated: the two zero blocks that end the archive after `custody.jsonl` are missing"
                    .into(),
            ));
        }
        if end.iter().any(|b| *b != 0) {
            return Err(malformed(
                "the archive does not end with two zero blocks after `custody.jsonl`: no signature covers \
                 those bytes, so an alloy must hold none but zeros there"
                    .into(),
            ));
        }
        let [manifest_bytes, component, chain]: [Vec<u8>; 3] =
            parts.try_into().expect("the loop reads exactly one part per member");
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| malformed(format!("`alloy.json` is not a valid manifest: {e}")))?;
        if manifest.format != manifest::FORMAT {
            return Err(malformed(format!(
                "unknown manifest format `{}`; this host reads `{}`",
                manifest.format.escape_debug(),
                manifest::FORMAT
            )));
        }
        let text = String::from_utf8(chain).map_err(|_| malformed("`custody.jsonl` is not UTF-8".into()))?;
        let chain = Chain::parse(&text);
        if chain.text() != text {
            return Err(malformed(
                "`custody.jsonl` is not in canonical form: each entry is one line ending in `\\n` (no `\\r`, \
                 and a `\\n` after the last one too)"
                    .into(),
            ));
        }
        Ok(Alloy { manifest_bytes, manifest, component, chain })
    }

    /// The archive bytes: the one canonical form of this alloy (see [`Alloy::from_reader`]).
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let chain = self.chain.text();
        for (name, bytes) in MEMBERS.iter().zip([&self.manifest_bytes[..], &self.component[..], chain.as_bytes()]) {
            builder.append(&member_header(name, bytes.len() as u64)?, bytes)?;
        }
        Ok(builder.into_inner()?)
    }

    /// Writes the alloy to `path` (temporary file, then rename).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, self.to_bytes()?)
            .and_then(|_| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Checks the component against the manifest's digest and size.
    pub fn check_digest(&self) -> Result<(), Refusal> {
        let actual = format!("sha256:{}", custody::sha256_hex(&self.component));
        let identity = &self.manifest.identity;
        if actual != identity.digest || self.component.len() as u64 != identity.size {
            return Err(Refusal::new(
                Reason::DigestMismatch,
                format!("component.wasm is {actual} ({} bytes) but the manifest says {} ({} bytes): the component or the manifest was altered", self.component.len(), identity.digest.escape_debug(), identity.size),
            ));
        }
        Ok(())
    }

    /// Verifies the chain of custody and that its `sign` entry is by the manifest's author.
    /// Returns the entries.
    pub fn verify_signatures(&self) -> Result<Vec<custody::Entry>, Refusal> {
        let entries = self.chain.verify(&self.manifest_bytes)?;
        let author = &self.manifest.identity.author;
        let sign = entries.iter().find(|e| e.stage == custody::Stage::Sign).expect("verify requires a sign entry");
        if &sign.actor != author {
            return Err(Refusal::new(
                Reason::WrongSigner,
                format!(
                    "the manifest names author {} but it was signed by {}; re-sign it with the author's key",
                    custody::short(author).escape_debug(),
                    custody::short(&sign.actor)
                ),
            ));
        }
        Ok(entries)
    }
}

/// The capabilities a component requests: the names of its top-level instance and function
/// imports (type imports are not capabilities), read from its bytes without compiling it.
pub fn component_imports(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload? {
            wasmparser::Payload::ModuleSection { .. } | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import?;
                    if matches!(
                        import.ty,
                        wasmparser::ComponentTypeRef::Instance(_) | wasmparser::ComponentTypeRef::Func(_)
                    ) {
                        names.push(import.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(names)
}
