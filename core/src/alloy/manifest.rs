//! The alloy manifest (`alloy.json`): identity, interface, provenance and proof suite.
//! Its exact bytes are what the chain of custody signs; it is never re-serialized.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::access::Access;

use crate::reflect::wit_source::WitSource;
use crate::reflect::CommandSchema;

/// The format tag every manifest carries.
pub const FORMAT: &str = "continuum-alloy/1";

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// What the plugin is and who published it.
    pub identity: Identity,
    /// Its WIT, commands and requested capabilities.
    pub interface: Interface,
    /// Where it came from and how it was built.
    pub provenance: Provenance,
    /// Cases anyone can re-run, and the publisher's results.
    pub proof: ProofSuite,
}

/// Identity of the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Identity {
    /// Plugin name: the first segment of its command names.
    pub name: String,
    /// Semantic version; installs refuse to go backwards.
    pub version: String,
    /// One-paragraph description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The publisher's ed25519 public key (hex); the `sign` entry must be by this key.
    pub author: String,
    /// `sha256:<hex>` of `component.wasm`.
    pub digest: String,
    /// Size of `component.wasm` in bytes.
    pub size: u64,
}

/// The plugin's interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Interface {
    /// The WIT world the component implements.
    pub world: String,
    /// The WIT source (for names and docs).
    pub wit: WitSource,
    /// Reflected commands with their JSON Schemas.
    pub commands: Vec<CommandSchema>,
    /// The component's imports: the capabilities it requests.
    pub capabilities: Vec<String>,
    /// Access level per command (`owner`, `granted`, `public`); unlisted commands are `granted`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub access: BTreeMap<String, Access>,
}

/// How the component was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Provenance {
    /// `sha256:<hex>` over the plugin's source files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
    /// Source repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Commit the component was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Toolchain used (e.g. `rustc 1.95.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolchain: Option<String>,
    /// The build command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// The proof suite.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProofSuite {
    /// The cases.
    pub cases: Vec<ProofCase>,
    /// The publisher's results, in case order.
    pub results: Vec<CaseResult>,
}

/// One proof case: a call and what it must produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProofCase {
    /// What the case shows.
    pub name: String,
    /// The command to call.
    pub command: String,
    /// Its params.
    pub input: Value,
    /// What it must produce.
    pub expect: Expect,
    /// Optional measurement threshold: the call must finish within this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
}

/// The assertion of a proof case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Expect {
    /// The result equals this JSON value.
    Output(Value),
    /// The command returns its error case, equal to this JSON value.
    Error(Value),
    /// The result, as JSON text, contains this string.
    Contains(String),
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// How long the call took.
    pub duration_ms: f64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where the manifest's text first holds a control character of the kind that starts a
/// terminal escape sequence ([`crate::terminal::first_control`]), keys included: the field as a
/// JSON pointer (e.g. `/identity/name`), and the character. Manifests are shown on terminals,
/// so a manifest holding one is refused.
pub fn control_character(manifest: &Value) -> Option<(String, char)> {
    fn walk(value: &Value, at: &str) -> Option<(String, char)> {
        match value {
            Value::String(text) => crate::terminal::first_control(text).map(|c| (at.to_string(), c)),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| walk(item, &format!("{at}/{i}"))),
            Value::Object(fields) => fields.iter().find_map(|(key, item)| {
                let at = format!("{at}/{}", key.escape_debug());
                crate::terminal::first_control(key).map(|c| (at.clone(), c)).or_else(|| walk(item, &at))
            }),
            _ => None,
        }
    }
    walk(manifest, "")
}
