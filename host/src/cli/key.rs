//! `continuum key …`: generate, list and export signing keys (kept in the data dir's `keys/`).

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;

use crate::keys::{public_hex, KeyStore};
use crate::paths::DataDir;

/// `continuum key …`.
#[derive(Debug, Subcommand)]
pub(super) enum KeyCmd {
    /// Create a new ed25519 key in the data dir's keys/ (mode 0600) and print its public key.
    Generate {
        /// The key's name.
        name: String,
    },
    /// List keys and their public halves (the `node` key is the node's identity).
    List,
    /// Print a key's public half, e.g. for `continuum trust add` on another node.
    Export {
        /// The key's name.
        name: String,
    },
}

/// The signing keys in a data directory.
pub(super) fn key_store(data: &DataDir) -> KeyStore {
    KeyStore::new(data.root().join("keys"))
}

/// Runs a `key` subcommand.
pub(super) fn run(data: &DataDir, cmd: KeyCmd) -> Result<()> {
    let store = key_store(data);
    let mut out = std::io::stdout().lock();
    match cmd {
        KeyCmd::Generate { name } => {
            let key = store.generate(&name)?;
            writeln!(out, "{}", public_hex(&key.verifying_key()))?;
        }
        KeyCmd::List => {
            store.node()?;
            for k in store.list()? {
                writeln!(out, "{:<20} {}", k.name, k.public)?;
            }
        }
        KeyCmd::Export { name } => {
            let key = if name == crate::keys::NODE_KEY { store.node()? } else { store.load(&name)? };
            writeln!(out, "{}", public_hex(&key.verifying_key()))?;
        }
    }
    Ok(())
}
