//! `continuum grant …`: issue, list, revoke and attenuate capability grants.

use std::io::Write;

use anyhow::{Context, Result};

use super::GrantCmd;
use crate::alloy::custody::short;
use crate::keys::{parse_public, KeyStore};
use crate::paths::DataDir;
use crate::runtime::Host;

/// Seconds from now until a duration like `24h` or `7days` has passed.
fn expiry(text: &str) -> Result<i64> {
    let d = humantime::parse_duration(text)
        .with_context(|| format!("`{text}` is not a duration; write e.g. 90s, 30m, 24h, 7days"))?;
    Ok(crate::now_secs() + d.as_secs() as i64)
}

/// Runs a `grant` subcommand.
pub(super) fn run(host: &Host, data: &DataDir, cmd: GrantCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        GrantCmd::Issue { to, caps, expires } => {
            let token = host.issue_grant(&to, &caps, expiry(&expires)?)?;
            writeln!(out, "{token}")?;
        }
        GrantCmd::List { json } => {
            let grants = crate::grants::issued(&host.core().db())?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&grants)?)?;
            } else if grants.is_empty() {
                writeln!(out, "no grants issued; `continuum grant issue --to <key> --cap <command>` issues one")?;
            } else {
                let now = crate::now_secs();
                for g in grants {
                    let state = if g.caps.is_empty() {
                        "revocation"
                    } else if g.superseded {
                        "superseded"
                    } else if g.expires <= now {
                        "expired"
                    } else {
                        "live"
                    };
                    writeln!(
                        out,
                        "{}  to {}  epoch {:<3} {:<10} {}",
                        &g.id[..12],
                        short(&g.grantee),
                        g.epoch,
                        state,
                        g.caps.join(", ")
                    )?;
                }
            }
        }
        GrantCmd::Revoke { grantee } => {
            let epoch = host.revoke_grants(&grantee)?;
            writeln!(out, "revoked every grant to {} (epoch is now {epoch})", short(grantee.trim()))?;
        }
        GrantCmd::Attenuate { token, key, to, caps, expires } => {
            let holder = KeyStore::new(data.root().join("keys")).load(&key)?;
            let grantee = parse_public(&to)?;
            let narrower = crate::grants::attenuate(&token, &holder, &grantee, &caps, expiry(&expires)?)?;
            writeln!(out, "{narrower}")?;
        }
    }
    Ok(())
}
