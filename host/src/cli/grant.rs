//! `continuum grant …`: issue, list, revoke and attenuate capability grants.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::key::key_store;
use super::node::tell_running_node;
use super::output;
use crate::alloy::custody::short;
use crate::grants::Budget;
use crate::keys::parse_public;
use crate::runtime::Host;

/// `continuum grant …`.
#[derive(Debug, Subcommand)]
pub(super) enum GrantCmd {
    /// Issue a grant (signed by this node's key) and print its token.
    Issue {
        /// The grantee's public key.
        #[arg(long)]
        to: String,
        /// A command or prefix it may call (`text/summarize`, `kv/`); repeat for more.
        #[arg(long = "cap", required = true)]
        caps: Vec<String>,
        /// How long it lasts (`90s`, `30m`, `24h`, `7days`).
        #[arg(long, default_value = "24h")]
        expires: String,
        /// Budget: most calls per period, metered on grid calls it confers.
        #[arg(long)]
        budget_calls: Option<u64>,
        /// Budget: most credits per period (`5`, `0.5`).
        #[arg(long)]
        budget_credits: Option<String>,
        /// Budget: most generated tokens per period.
        #[arg(long)]
        budget_tokens: Option<u64>,
        /// The budget's period (`1h`, `1day`); periods start when the grant is issued.
        #[arg(long, default_value = "1day")]
        budget_period: String,
    },
    /// List the grants this node issued.
    List,
    /// Revoke every grant to a key (a higher epoch with no capabilities).
    Revoke {
        /// The grantee's public key.
        grantee: String,
    },
    /// As a grantee, derive a narrower, shorter token for someone else.
    Attenuate {
        /// Your token.
        token: String,
        /// Your key (the token's grantee): a key name, or a key file path containing `/` (`./k.ed25519`).
        #[arg(long)]
        key: String,
        /// Who receives the narrower token.
        #[arg(long)]
        to: String,
        /// Capabilities (each within yours); repeat for more.
        #[arg(long = "cap", required = true)]
        caps: Vec<String>,
        /// How long it lasts (capped at your token's expiry).
        #[arg(long, default_value = "1h")]
        expires: String,
    },
}

/// Seconds from now until a duration like `24h` or `7days` has passed.
fn expiry(text: &str) -> Result<i64> {
    let d = humantime::parse_duration(text)
        .with_context(|| format!("`{text}` is not a duration; write e.g. 90s, 30m, 24h, 7days"))?;
    Ok(crate::now_secs() + d.as_secs() as i64)
}

/// Runs a `grant` subcommand; after an issue or a revocation, a node serving the same data
/// directory re-reads the grants.
pub(super) fn run(host: &Host, cmd: GrantCmd) -> Result<()> {
    let changes = matches!(cmd, GrantCmd::Issue { .. } | GrantCmd::Revoke { .. });
    manage(host, cmd)?;
    if changes {
        tell_running_node(host.core().data().root());
    }
    Ok(())
}

/// Runs `cmd` itself (`run` then tells a running node of any change).
fn manage(host: &Host, cmd: GrantCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        GrantCmd::Issue { to, caps, expires, budget_calls, budget_credits, budget_tokens, budget_period } => {
            let millicredits = budget_credits
                .map(|c| crate::node::market::terms::parse_credits(&c).context("--budget-credits"))
                .transpose()?;
            let budget = (budget_calls.is_some() || millicredits.is_some() || budget_tokens.is_some())
                .then(|| -> Result<Budget> {
                    let period = humantime::parse_duration(&budget_period)
                        .with_context(|| format!("--budget-period `{budget_period}`"))?;
                    Ok(Budget {
                        calls: budget_calls,
                        millicredits,
                        tokens: budget_tokens,
                        period_secs: period.as_secs(),
                    })
                })
                .transpose()?;
            let expires = expiry(&expires)?;
            let token = host.issue_budgeted_grant(&to, &caps, expires, budget)?;
            let issued = json!({ "token": token, "grantee": to, "caps": caps, "expires": expires, "budget": budget });
            output::emit(&mut out, &issued, |out| Ok(writeln!(out, "{token}")?))?;
        }
        GrantCmd::List => {
            let grants = crate::grants::issued(&host.core().db())?;
            output::emit(&mut out, &grants, |out| {
                if grants.is_empty() {
                    output::note(
                        out,
                        "no grants issued; `continuum grant issue --to <key> --cap <command>` issues one",
                    )?;
                }
                let now = crate::now_secs();
                for g in &grants {
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
                Ok(())
            })?;
        }
        GrantCmd::Revoke { grantee } => {
            let epoch = host.revoke_grants(&grantee)?;
            let revoked = json!({ "grantee": grantee.trim(), "epoch": epoch });
            let line = format!("revoked every grant to {} (epoch is now {epoch})", short(grantee.trim()));
            output::confirm(&mut out, &revoked, line)?;
        }
        GrantCmd::Attenuate { token, key, to, caps, expires } => {
            let holder = key_store(host.core().data()).load(&key)?;
            let grantee = parse_public(&to)?;
            let expires = expiry(&expires)?;
            let narrower = crate::grants::attenuate(&token, &holder, &grantee, &caps, expires)?;
            let attenuated = json!({ "token": narrower, "grantee": to, "caps": caps, "expires": expires });
            output::emit(&mut out, &attenuated, |out| Ok(writeln!(out, "{narrower}")?))?;
        }
    }
    Ok(())
}
