//! The node's ed25519 keys: named signing keys kept in `keys/` in the data directory (one file
//! per key, the 32-byte secret seed in hex, mode 0600). The key named `node` is the node's
//! identity and is created on first use.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ed25519_dalek::{SigningKey, VerifyingKey};

/// The name of the node's identity key.
pub const NODE_KEY: &str = "node";

/// A public key as text: 64 lower-case hex digits.
pub fn public_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Parses a public key from 64 hex digits.
pub fn parse_public(text: &str) -> Result<VerifyingKey> {
    let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32);
    let Some(bytes) = bytes else {
        bail!("`{}` is not a public key: expected 64 hex digits (see `continuum key export <name>`)", text.trim());
    };
    let array: [u8; 32] = bytes.try_into().expect("32 bytes");
    let key = VerifyingKey::from_bytes(&array)
        .map_err(|_| anyhow::anyhow!("`{}` is not a valid ed25519 public key", text.trim()))?;
    // A small-order key can "sign" anything under lax verification: never accept one.
    if key.is_weak() {
        bail!("`{}` is a weak (small-order) ed25519 key and is refused", text.trim());
    }
    Ok(key)
}

/// A named key in the store.
#[derive(Debug, Clone)]
pub struct NamedKey {
    /// The key's name.
    pub name: String,
    /// Its public half, hex.
    pub public: String,
}

/// The key files of one data directory.
pub struct KeyStore {
    dir: PathBuf,
}

fn check_name(name: &str) -> Result<()> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("key name `{name}` must be 1-64 characters of a-z, A-Z, 0-9, `-`, `_`");
    }
    Ok(())
}

fn read_key_file(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    let seed = hex::decode(text.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    let seed = seed.with_context(|| format!("{} is not a key file (expected 64 hex digits)", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

impl KeyStore {
    /// The key store in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        KeyStore { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.ed25519"))
    }

    /// Creates key `name` from fresh OS randomness; refuses to overwrite an existing key.
    pub fn generate(&self, name: &str) -> Result<SigningKey> {
        check_name(name)?;
        let path = self.path(name);
        if path.exists() {
            bail!("key `{name}` already exists ({}); choose another name", path.display());
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no OS randomness for a new key: {e}"))?;
        let key = SigningKey::from_bytes(&seed);
        std::fs::create_dir_all(&self.dir)?;
        write_private(&path, &hex::encode(seed))?;
        Ok(key)
    }

    /// Loads key `spec`: a key name in this store, or a path to a key file. A path must contain
    /// a `/` (`./publisher.ed25519`): a bare name is only ever looked up in the store, so a file
    /// of that name in the working directory cannot stand in for a stored key.
    pub fn load(&self, spec: &str) -> Result<SigningKey> {
        if spec.contains('/') {
            return read_key_file(Path::new(spec));
        }
        check_name(spec)?;
        let path = self.path(spec);
        if !path.exists() {
            bail!("no key named `{spec}`; create it with `continuum key generate {spec}` (see `continuum key list`)");
        }
        read_key_file(&path)
    }

    /// The node's identity key, created on first use.
    pub fn node(&self) -> Result<SigningKey> {
        if self.path(NODE_KEY).exists() {
            self.load(NODE_KEY)
        } else {
            self.generate(NODE_KEY)
        }
    }

    /// Every key in the store, by name.
    pub fn list(&self) -> Result<Vec<NamedKey>> {
        let mut keys = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Ok(keys) };
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".ed25519")) else {
                continue;
            };
            let key = read_key_file(&path)?;
            keys.push(NamedKey { name: name.to_string(), public: public_hex(&key.verifying_key()) });
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }
}

/// Writes a secret file readable only by its owner.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create key file {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_generated_private_listed_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        let k = store.generate("alice").unwrap();
        assert!(store.generate("alice").is_err());
        assert_eq!(store.load("alice").unwrap().to_bytes(), k.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys/alice.ed25519")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let node = store.node().unwrap();
        assert_eq!(store.node().unwrap().to_bytes(), node.to_bytes(), "the node key is stable");
        let names: Vec<String> = store.list().unwrap().into_iter().map(|k| k.name).collect();
        assert_eq!(names, ["alice", "node"]);
        assert!(store.load("bob").unwrap_err().to_string().contains("continuum key generate bob"));
        assert_eq!(parse_public(&public_hex(&k.verifying_key())).unwrap(), k.verifying_key());
        assert!(parse_public("abc").is_err());
    }
}
