//! Alloy artifacts: one `.alloy` file holding a component, its signed manifest and its chain
//! of custody. The format is documented in `docs/alloy.md`.
//!
//! The file is a POSIX tar archive with exactly three regular files, in this order:
//! `alloy.json` (the manifest), `component.wasm`, `custody.jsonl` (the chain of custody).

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

/// Why an artifact was refused: each check has its own reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The file or one of its parts is over its size limit.
    TooLarge,
    /// Not a well-formed alloy (truncated, wrong members, invalid JSON).
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

    /// Parses an alloy from its bytes.
    pub fn from_reader(reader: impl Read) -> Result<Alloy, Refusal> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| malformed(format!("not an alloy (tar) file: {e}")))?;
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for (i, entry) in entries.enumerate() {
            let mut entry = entry.map_err(|e| malformed(format!("the file is truncated or corrupt: {e}")))?;
            let name = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let Some(expected) = MEMBERS.get(i) else {
                return Err(malformed(format!(
                    "unexpected extra member `{name}`; an alloy holds exactly {}",
                    MEMBERS.join(", ")
                )));
            };
            if name != *expected || entry.header().entry_type() != tar::EntryType::Regular {
                return Err(malformed(format!("member {} is `{name}`, expected the regular file `{expected}`", i + 1)));
            }
            let limit = match i {
                0 => MAX_MANIFEST_BYTES,
                1 => MAX_ALLOY_BYTES,
                _ => MAX_CHAIN_BYTES,
            };
            let size = entry.size();
            if size > limit {
                return Err(Refusal::new(Reason::TooLarge, format!("`{name}` is {size} bytes; the limit is {limit}")));
            }
            // Grow with the data actually read, not with what the header claims.
            let mut bytes = Vec::new();
            (&mut entry)
                .take(size)
                .read_to_end(&mut bytes)
                .map_err(|e| malformed(format!("the file is truncated: `{name}`: {e}")))?;
            if bytes.len() as u64 != size {
                return Err(malformed(format!("the file is truncated: `{name}` is shorter than its header says")));
            }
            parts.push(bytes);
        }
        let [manifest_bytes, component, chain]: [Vec<u8>; 3] = parts.try_into().map_err(|p: Vec<Vec<u8>>| {
            malformed(format!("the file is truncated: it has {} of the 3 members ({})", p.len(), MEMBERS.join(", ")))
        })?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| malformed(format!("`alloy.json` is not a valid manifest: {e}")))?;
        if manifest.format != manifest::FORMAT {
            return Err(malformed(format!(
                "unknown manifest format `{}`; this host reads `{}`",
                manifest.format,
                manifest::FORMAT
            )));
        }
        let chain = String::from_utf8(chain).map_err(|_| malformed("`custody.jsonl` is not UTF-8".into()))?;
        Ok(Alloy { manifest_bytes, manifest, component, chain: Chain::parse(&chain) })
    }

    /// The archive bytes.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let chain = self.chain.text();
        for (name, bytes) in MEMBERS.iter().zip([&self.manifest_bytes[..], &self.component[..], chain.as_bytes()]) {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, bytes)?;
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
                format!("component.wasm is {actual} ({} bytes) but the manifest says {} ({} bytes): the component or the manifest was altered", self.component.len(), identity.digest, identity.size),
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
                    custody::short(author),
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
