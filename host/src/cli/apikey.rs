//! `continuum apikey …`: create, list and revoke the API keys HTTP clients present, each mapped
//! to a grantee key or a grant.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{output, prefix};
use crate::node::auth;
use crate::runtime::Host;

/// `continuum apikey …`.
#[derive(Debug, Subcommand)]
pub(super) enum ApiKeyCmd {
    /// Create an API key for HTTP clients, calling as a grantee key or as the holder of a grant.
    Create {
        /// A grant token (the key calls with it), or a bare public key (public commands only).
        #[arg(long = "for", value_name = "TOKEN|KEY")]
        grantee: String,
        /// A label.
        #[arg(long)]
        label: Option<String>,
    },
    /// List API keys (never the keys themselves).
    List,
    /// Revoke an API key by id.
    Revoke {
        /// The key's id.
        id: String,
    },
}

/// Runs an `apikey` subcommand on this data directory.
pub(super) fn run(host: &Host, cmd: ApiKeyCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ApiKeyCmd::Create { grantee, label } => {
            let (id, key) = auth::create_api_key(host, &grantee, label.as_deref())?;
            output::emit(&mut out, &json!({ "id": id, "key": key, "label": label }), |out| {
                output::note(
                    &mut std::io::stderr(),
                    format_args!(
                        "API key {id} created; it is shown only now. Clients send `Authorization: Bearer <key>`:"
                    ),
                )?;
                Ok(writeln!(out, "{key}")?)
            })
        }
        ApiKeyCmd::List => {
            let keys = auth::api_keys(&host.core().db())?;
            output::emit(&mut out, &keys, |out| {
                for k in &keys {
                    writeln!(
                        out,
                        "{}  {}  {}  {}",
                        k.id,
                        prefix(&k.grantee, 16),
                        if k.granted { "granted" } else { "no grant" },
                        k.label.as_deref().unwrap_or_default()
                    )?;
                }
                Ok(())
            })
        }
        ApiKeyCmd::Revoke { id } => {
            auth::revoke_api_key(host, &id)?;
            output::confirm(&mut out, &json!({ "revoked": id }), format_args!("revoked API key {id}"))
        }
    }
}
