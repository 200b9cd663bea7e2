//! `continuum key …`: generate, list and export signing keys (kept in the data dir's `keys/`).

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use super::output;
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

/// A key as `--json` shows it: its name and public half.
#[derive(Serialize)]
struct KeyView {
    /// The key's name.
    name: String,
    /// Its public half, hex.
    public_key: String,
}

/// Runs a `key` subcommand.
pub(super) fn run(data: &DataDir, cmd: KeyCmd) -> Result<()> {
    let store = key_store(data);
    let mut out = std::io::stdout().lock();
    match cmd {
        KeyCmd::List => {
            store.node()?;
            let keys: Vec<KeyView> =
                store.list()?.into_iter().map(|k| KeyView { name: k.name, public_key: k.public }).collect();
            output::emit(&mut out, &keys, |out| {
                for k in &keys {
                    writeln!(out, "{:<20} {}", k.name, k.public_key)?;
                }
                Ok(())
            })
        }
        KeyCmd::Generate { name } => {
            let key = store.generate(&name)?;
            print_public(&mut out, KeyView { name, public_key: public_hex(&key.verifying_key()) })
        }
        KeyCmd::Export { name } => {
            let key = if name == crate::keys::NODE_KEY { store.node()? } else { store.load(&name)? };
            print_public(&mut out, KeyView { name, public_key: public_hex(&key.verifying_key()) })
        }
    }
}

/// Prints a key's public half (the key with `--json`): what `generate` and `export` exist to
/// print, so `-q` leaves it.
fn print_public(out: &mut impl Write, key: KeyView) -> Result<()> {
    output::emit(out, &key, |out| Ok(writeln!(out, "{}", key.public_key)?))
}
