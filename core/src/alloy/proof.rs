//! The proof suite: cases kept beside a plugin's source in `plugin.toml`, recorded in the
//! manifest, and re-run by anyone ("run their proof on my hardware").
//!
//! ```toml
//! [plugin]
//! version = "0.1.0"
//!
//! [build]
//! command = "cargo build --release --target wasm32-wasip2 -p text"
//!
//! [[proof]]
//! name = "counts words"
//! command = "text/stats"
//! input = '{"text": "one two"}'
//! expect-output = '{"chars":7,"words":2,"lines":1,"sentences":1,"top-words":[["one",1],["two",1]]}'
//! max-ms = 1000
//! ```
//!
//! `[access]` sets who may call each command: `"text/stats" = "public"` (any caller),
//! `"kv/put" = "owner"` (never granted to others); unlisted commands need a grant.
//!
//! Each case names exactly one of `expect-output` (JSON equal), `expect-error` (the command's
//! error value, JSON equal) or `expect-contains` (a substring of the result's JSON text).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use super::manifest::{CaseResult, Expect, ProofCase};

/// `plugin.toml`: what a plugin folder says about itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// Identity.
    pub plugin: PluginMeta,
    /// How it is built.
    #[serde(default)]
    pub build: Option<BuildMeta>,
    /// Proof cases.
    #[serde(default)]
    pub proof: Vec<ProofSpec>,
    /// Access level per command: `"text/stats" = "public"`; unlisted commands are `granted`.
    #[serde(default)]
    pub access: std::collections::BTreeMap<String, crate::access::Access>,
}

/// `[plugin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginMeta {
    /// Semantic version.
    pub version: String,
    /// Overrides the WIT world's doc comment as the description.
    #[serde(default)]
    pub description: Option<String>,
}

/// `[build]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildMeta {
    /// The command that builds the component.
    pub command: String,
    /// The source language (`rust`, `python`, `js`), for `continuum plugin build`.
    #[serde(default)]
    pub lang: Option<String>,
}

/// One `[[proof]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProofSpec {
    /// What the case shows.
    pub name: String,
    /// The command to call.
    pub command: String,
    /// Params as JSON text.
    pub input: String,
    /// Expected result as JSON text.
    pub expect_output: Option<String>,
    /// Expected error value as JSON text.
    pub expect_error: Option<String>,
    /// Text the result's JSON must contain.
    pub expect_contains: Option<String>,
    /// The call must finish within this many milliseconds.
    pub max_ms: Option<u64>,
}

impl PluginSpec {
    /// Reads and checks `plugin.toml`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let spec: PluginSpec = toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
        semver::Version::parse(&spec.plugin.version).with_context(|| {
            format!("{}: version `{}` is not a semantic version (like 1.2.3)", path.display(), spec.plugin.version)
        })?;
        spec.cases().with_context(|| format!("in {}", path.display()))?;
        Ok(spec)
    }

    /// The proof cases, with their JSON parsed.
    pub fn cases(&self) -> Result<Vec<ProofCase>> {
        self.proof
            .iter()
            .map(|p| {
                let json = |what: &str, text: &str| -> Result<Value> {
                    serde_json::from_str(text).with_context(|| format!("proof `{}`: {what} is not valid JSON", p.name))
                };
                let expect = match (&p.expect_output, &p.expect_error, &p.expect_contains) {
                    (Some(o), None, None) => Expect::Output(json("expect-output", o)?),
                    (None, Some(e), None) => Expect::Error(json("expect-error", e)?),
                    (None, None, Some(c)) => Expect::Contains(c.clone()),
                    _ => bail!(
                        "proof `{}` must have exactly one of expect-output, expect-error, expect-contains",
                        p.name
                    ),
                };
                Ok(ProofCase {
                    name: p.name.clone(),
                    command: p.command.clone(),
                    input: json("input", &p.input)?,
                    expect,
                    max_ms: p.max_ms,
                })
            })
            .collect()
    }
}

/// Judges one case from what the call returned and how long it took.
pub fn judge(case: &ProofCase, outcome: &Result<Value, crate::CallError>, duration_ms: f64) -> CaseResult {
    let detail = match (&case.expect, outcome) {
        (Expect::Output(want), Ok(got)) if want == got => None,
        (Expect::Output(want), Ok(got)) => Some(format!("expected {want}, got {got}")),
        (Expect::Error(want), Err(crate::CallError::CommandFailed { error, .. })) if want == error => None,
        (Expect::Error(want), Err(crate::CallError::CommandFailed { error, .. })) => {
            Some(format!("expected error {want}, got error {error}"))
        }
        (Expect::Error(want), Ok(got)) => Some(format!("expected error {want}, got result {got}")),
        (Expect::Contains(text), Ok(got)) if got.to_string().contains(text.as_str()) => None,
        (Expect::Contains(text), Ok(got)) => Some(format!("expected a result containing `{text}`, got {got}")),
        (_, Err(e)) => Some(format!("the call failed: {e}")),
    };
    let detail = detail.or_else(|| {
        case.max_ms
            .filter(|max| duration_ms > *max as f64)
            .map(|max| format!("took {duration_ms:.1} ms, over its {max} ms threshold"))
    });
    CaseResult { name: case.name.clone(), passed: detail.is_none(), duration_ms, detail }
}
