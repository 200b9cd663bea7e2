//! Caller → command: who a call runs for, each command's access level, and the decision.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::grants::{confers, Grant};

/// Who a call runs for. Nested calls (`commands.call`) keep the original caller, so
/// composing commands can never reach one the caller could not call directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The node's local owner (CLI, local socket): may call everything.
    Owner,
    /// A key whose grants were revoked: it may call nothing until granted again.
    Blocked {
        /// The caller's public key, hex.
        key: String,
    },
    /// A remote key, with the verified grant it presented, if any.
    Key {
        /// The caller's public key, hex.
        key: String,
        /// Its verified grant.
        grant: Option<Arc<Grant>>,
    },
    /// A proof case run by `plugin verify`, `attest`, `pack` or an install: it may call the
    /// commands of the plugin under test (run in a scratch store) and nothing else; its nested
    /// calls are refused, since they would reach installed plugins and their data.
    Proof {
        /// The plugin under test.
        plugin: String,
    },
}

/// Trust tiers, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// A key whose grants were revoked: nothing.
    Blocked,
    /// A proof run: the commands of the plugin under test, nothing installed.
    Proof,
    /// A known key without a grant: public commands only.
    Provisional,
    /// A key presenting a valid grant: public commands and what the grant confers.
    Trusted,
    /// The local owner: everything.
    Owner,
}

impl Caller {
    /// The local owner.
    pub fn owner() -> Self {
        Caller::Owner
    }

    /// A stable id for logs and events: `owner`, the caller's key, or `proof:<plugin>`.
    pub fn id(&self) -> String {
        match self {
            Caller::Owner => "owner".into(),
            Caller::Blocked { key } | Caller::Key { key, .. } => key.clone(),
            Caller::Proof { plugin } => format!("proof:{plugin}"),
        }
    }

    /// The caller's tier.
    pub fn tier(&self) -> Tier {
        match self {
            Caller::Owner => Tier::Owner,
            Caller::Blocked { .. } => Tier::Blocked,
            Caller::Proof { .. } => Tier::Proof,
            Caller::Key { grant: Some(_), .. } => Tier::Trusted,
            Caller::Key { grant: None, .. } => Tier::Provisional,
        }
    }
}

/// Who may call a command; set per command in the plugin's manifest (`[access]` in
/// `plugin.toml`), `granted` when unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Only the local owner; never conferred to a remote caller, whatever a grant says.
    Owner,
    /// The owner, and callers whose grant confers the command.
    #[default]
    Granted,
    /// Any caller that is not blocked.
    Public,
}

/// The access level of `command` in a plugin's access map.
pub fn level(access: &BTreeMap<String, Access>, command: &str) -> Access {
    access.get(command).copied().unwrap_or_default()
}

/// Decides whether `caller` may call `command` at `access`; the error says why not.
pub fn check(caller: &Caller, command: &str, access: Access) -> Result<(), String> {
    match (caller, access) {
        (Caller::Owner, _) => Ok(()),
        (Caller::Proof { plugin }, _) if command.split('/').next() == Some(plugin.as_str()) => Ok(()),
        (Caller::Proof { plugin }, _) => {
            Err(format!("a proof run of `{plugin}` may call only `{plugin}`'s own commands, not `{command}`"))
        }
        (Caller::Blocked { key }, _) => Err(format!(
            "the caller {} is blocked: its grants were revoked (a new grant unblocks it)",
            crate::alloy::custody::short(key)
        )),
        (Caller::Key { .. }, Access::Owner) => {
            Err(format!("`{command}` is owner-only and is never granted to other callers"))
        }
        (Caller::Key { .. }, Access::Public) => Ok(()),
        (Caller::Key { grant: Some(g), .. }, Access::Granted) if g.caps.iter().any(|c| confers(c, command)) => Ok(()),
        (Caller::Key { grant: Some(g), .. }, Access::Granted) => {
            Err(format!("the caller's grant ({}) does not confer `{command}`", g.caps.join(", ")))
        }
        (Caller::Key { key, grant: None }, Access::Granted) => Err(format!(
            "`{command}` needs a grant; the node owner can issue one with `continuum grant issue --to {key} --cap {command}`"
        )),
    }
}

/// Decides whether `caller` may call commands of installed plugins, as every top-level and
/// nested call does (a proof case alone runs its plugin under test directly). A proof run may
/// not: a call it nests through `host:commands` would reach installed plugins and their data.
pub fn check_installed(caller: &Caller) -> Result<(), String> {
    match caller {
        Caller::Proof { plugin } => Err(format!(
            "a proof run of `{plugin}` may not call installed plugins: proofs run only the plugin under test, in a scratch store"
        )),
        Caller::Owner | Caller::Blocked { .. } | Caller::Key { .. } => Ok(()),
    }
}
