//! `continuum trust …`: add, list and remove the publisher keys whose alloys install without
//! `--allow-untrusted`.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;

use super::output;
use crate::alloy::custody::short;
use crate::runtime::Host;

/// `continuum trust …`.
#[derive(Debug, Subcommand)]
pub(super) enum TrustCmd {
    /// Trust a publisher's public key.
    Add {
        /// The public key (64 hex digits).
        public_key: String,
        /// Your name for this publisher.
        #[arg(long)]
        name: String,
        /// Pre-approve a host capability for this publisher's plugins; repeat or comma-separate.
        #[arg(long, value_delimiter = ',', value_name = "CAPABILITY")]
        approve: Vec<String>,
    },
    /// List trusted publishers.
    List,
    /// Stop trusting a publisher (by name or key).
    Remove {
        /// Name or public key.
        key: String,
    },
}

/// Runs a `trust` subcommand.
pub(super) fn run(host: &Host, cmd: TrustCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        TrustCmd::Add { public_key, name, approve } => {
            let t = host.trust_add(&public_key, &name, &approve)?;
            let pre = if t.approves.is_empty() {
                String::new()
            } else {
                format!(", pre-approving {}", t.approves.join(", "))
            };
            output::confirm(&mut out, &t, format_args!("trusted {} as `{}`{pre}", short(&t.public_key), t.name))
        }
        TrustCmd::List => {
            let all = crate::trust::list(&host.core().db())?;
            output::emit(&mut out, &all, |out| {
                if all.is_empty() {
                    output::note(
                        out,
                        "no trusted publishers; `continuum trust add <public key> --name <name>` adds one",
                    )?;
                }
                for t in &all {
                    writeln!(out, "{:<20} {}  {}", t.name, t.public_key, t.approves.join(","))?;
                }
                Ok(())
            })
        }
        TrustCmd::Remove { key } => {
            let t = host.trust_remove(&key)?;
            output::confirm(&mut out, &t, format_args!("no longer trusting `{}` ({})", t.name, short(&t.public_key)))
        }
    }
}
