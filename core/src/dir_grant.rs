//! Host folders an operator lends one plugin (`--dir host:guest[:ro]`): the only files any
//! command sees. Nothing is preopened unless listed here for that plugin.

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// One host folder, visible to a plugin's calls at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DirGrant {
    /// The folder on the host, absolute and resolved (no symlinks) when granted.
    pub host: PathBuf,
    /// Where the guest sees it, an absolute guest path such as `/data`.
    pub guest: String,
    /// Whether the guest may only read it.
    pub read_only: bool,
}

impl DirGrant {
    /// Parses `host:guest[:ro|:rw]`, resolving the host folder (it must exist).
    pub fn parse(spec: &str) -> Result<DirGrant> {
        let usage = "expected --dir HOST:GUEST[:ro], e.g. --dir ./data:/data:ro";
        let mut parts: Vec<&str> = spec.split(':').collect();
        let read_only = match parts.last() {
            Some(&"ro") if parts.len() == 3 => true,
            Some(&"rw") if parts.len() == 3 => false,
            _ if parts.len() == 2 => false,
            _ => bail!("`{spec}`: {usage}"),
        };
        parts.truncate(2);
        let (host, guest) = (parts[0], parts[1]);
        if host.is_empty()
            || !guest.starts_with('/')
            || guest.contains(['\0', '\\'])
            || guest.split('/').any(|s| s == "..")
        {
            bail!("`{spec}`: {usage} (the guest path is absolute, without `..`)");
        }
        let host = std::fs::canonicalize(host).with_context(|| format!("`{spec}`: cannot find folder `{host}`"))?;
        if !host.is_dir() {
            bail!("`{spec}`: `{}` is not a folder", host.display());
        }
        let guest = match guest.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        Ok(DirGrant { host, guest: guest.to_string(), read_only })
    }
}

impl DirGrant {
    /// Preopens the folder for one call. It must still resolve to the very path it was lent
    /// as: a lent folder (or a folder above it) replaced by a symlink since — say by another
    /// plugin with a read-write folder around it — would point the guest elsewhere.
    pub fn preopen(&self, wasi: &mut WasiCtxBuilder) -> Result<()> {
        let now = std::fs::canonicalize(&self.host).with_context(|| format!("{} is gone", self.host.display()))?;
        if now != self.host {
            bail!(
                "{} now resolves to {}; lend the folder again if that is intended",
                self.host.display(),
                now.display()
            );
        }
        let perms = if self.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
        wasi.preopened_dir(&self.host, &self.guest, perms).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        Ok(())
    }
}

impl fmt::Display for DirGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host.display(), self.guest, if self.read_only { "ro" } else { "rw" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_parsed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display().to_string();
        let g = DirGrant::parse(&format!("{host}:/data:ro")).unwrap();
        assert_eq!((g.guest.as_str(), g.read_only), ("/data", true));
        assert!(!DirGrant::parse(&format!("{host}:/data/")).unwrap().read_only);
        for bad in
            [format!("{host}:data"), format!("{host}:/a/../b"), format!("{host}:/d:x"), "/nonexistent-x:/d".into()]
        {
            assert!(DirGrant::parse(&bad).is_err(), "{bad}");
        }
    }
}
