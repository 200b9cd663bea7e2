//! The operator's configuration: `continuum.toml` in the data directory.
//!
//! ```toml
//! [limits]            # defaults for every plugin
//! timeout-ms = 10000
//! job-timeout-ms = 3600000  # a call run as a job (`run --detach`, POST /v1/jobs)
//! memory-mib = 256
//! output-kib = 4096
//!
//! [plugins.text.limits]   # overrides for one plugin
//! timeout-ms = 2000
//!
//! [inference]         # the resident models (see docs/inference.md)
//! threads = 2                 # CPU threads per computation
//! max-tokens-per-call = 4096  # tokens one top-level call (and every call nested in it) may generate
//!
//! [jobs]              # background runs (see docs/jobs.md)
//! max-queued = 1000           # waiting jobs at most; more are refused `busy`
//! keep-results-secs = 86400   # how long finished jobs stay
//!
//! [plugins.llm.inference]     # per-plugin policy
//! models = ["smollm2"]        # the models it may use (default: all)
//! max-tokens-per-call = 512
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::sandbox::Limits;

/// Limits as written in the file: every field optional, so a plugin section overrides only
/// what it names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsOverride {
    /// Wall-clock deadline per call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Wall-clock deadline of a call run as a job, in milliseconds.
    pub job_timeout_ms: Option<u64>,
    /// Linear-memory cap per instance, in MiB.
    pub memory_mib: Option<u64>,
    /// Cap on a call's JSON result and on captured stdout/stderr, in KiB.
    pub output_kib: Option<u64>,
    /// How deep `commands.call` may nest.
    pub max_call_depth: Option<u32>,
    /// Most host-interface calls per call.
    pub max_host_calls: Option<u64>,
}

impl LimitsOverride {
    fn apply(&self, mut base: Limits) -> Limits {
        if let Some(v) = self.timeout_ms {
            base.timeout_ms = v;
        }
        if let Some(v) = self.job_timeout_ms {
            base.job_timeout_ms = v;
        }
        if let Some(v) = self.memory_mib {
            base.memory_mib = v;
        }
        if let Some(v) = self.output_kib {
            base.output_kib = v;
        }
        if let Some(v) = self.max_call_depth {
            base.max_call_depth = v;
        }
        if let Some(v) = self.max_host_calls {
            base.max_host_calls = v;
        }
        base
    }
}

/// Settings for one plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// Limit overrides for this plugin.
    #[serde(default)]
    pub limits: LimitsOverride,
    /// Which models it may use and its budgets.
    #[serde(default)]
    pub inference: PluginInference,
}

/// `[plugins.X.inference]`: one plugin's model policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginInference {
    /// The model ids it may use; absent means every installed model.
    pub models: Option<Vec<String>>,
    /// Tokens one top-level call, with the calls nested in it, may generate when this plugin
    /// asks, overriding `[inference]`.
    pub max_tokens_per_call: Option<u32>,
    /// Seconds from the start of the top-level call within which this plugin may use inference
    /// and training, overriding `[inference]`.
    pub max_seconds_per_call: Option<u64>,
}

/// `[inference]`: the engines and the default per-call budgets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct InferenceSection {
    /// CPU threads per computation (default: the cores, at most 8).
    pub threads: Option<u32>,
    /// Computations at once (default: cores / threads).
    pub slots: Option<u32>,
    /// Context window per generation, in tokens (capped by the model's).
    pub context: u32,
    /// Tokens one top-level call, with every call nested in it, may generate in all.
    pub max_tokens_per_call: u32,
    /// Seconds from the start of the top-level call within which its tree may use inference
    /// and training (within each call's own deadline).
    pub max_seconds_per_call: u64,
}

impl Default for InferenceSection {
    fn default() -> Self {
        InferenceSection {
            threads: None,
            slots: None,
            context: 4096,
            max_tokens_per_call: 4096,
            max_seconds_per_call: 300,
        }
    }
}

/// The model policy of one plugin, resolved from both sections.
#[derive(Debug, Clone)]
pub struct ModelPolicy {
    /// The model ids it may use; `None` for all.
    pub models: Option<Vec<String>>,
    /// Tokens one call tree may generate (see [`InferenceSection::max_tokens_per_call`]).
    pub max_tokens_per_call: u32,
    /// Seconds one call tree may spend in inference (see [`InferenceSection::max_seconds_per_call`]).
    pub max_seconds_per_call: u64,
}

impl ModelPolicy {
    /// Whether model `id` is allowed.
    pub fn allows(&self, id: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.iter().any(|x| x == id))
    }
}

impl InferenceSection {
    /// The engine settings this section asks for.
    pub fn engine_config(&self) -> continuum_gpu::EngineConfig {
        let cores = crate::cores() as u32;
        let auto = continuum_gpu::EngineConfig::for_cores(cores);
        let threads = self.threads.unwrap_or(auto.threads).max(1);
        continuum_gpu::EngineConfig {
            threads,
            slots: self.slots.unwrap_or((cores / threads).max(1)).max(1),
            context: self.context,
        }
    }

    fn validate(&self) -> Result<()> {
        anyhow::ensure!((64..=131_072).contains(&self.context), "context must be 64 to 131072 tokens");
        anyhow::ensure!(self.max_tokens_per_call >= 1, "max-tokens-per-call must be at least 1");
        anyhow::ensure!(self.max_seconds_per_call >= 1, "max-seconds-per-call must be at least 1");
        anyhow::ensure!(self.threads.is_none_or(|t| (1..=256).contains(&t)), "threads must be 1 to 256");
        Ok(())
    }
}

/// `[log]`: the event log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `process` (default: survives a killed process) or `fsync` (survives power loss).
    #[serde(default)]
    pub durability: crate::eventlog::Durability,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The event log.
    #[serde(default)]
    pub log: LogSection,
    /// Default limits for every plugin.
    #[serde(default)]
    pub limits: LimitsOverride,
    /// Per-plugin sections, keyed by plugin name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSection>,
    /// The inference engines and budgets.
    #[serde(default)]
    pub inference: InferenceSection,
    /// What this node offers the grid.
    #[serde(default)]
    pub grid: GridSection,
    /// Jobs: commands run in the background under a handle.
    #[serde(default)]
    pub jobs: JobsSection,
}

/// `[jobs]`: how many jobs a node holds and runs, and for how long it keeps their results.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct JobsSection {
    /// Jobs waiting for a compute slot at most; past it, a submission is refused `busy`.
    pub max_queued: usize,
    /// Jobs running at once (compute slots; default: the cores).
    pub max_running: Option<usize>,
    /// How long a finished job's result is kept, in seconds.
    pub keep_results_secs: u64,
    /// The lease a grid job gets unless its submitter asks for another, in seconds: a job whose
    /// submitting peer stops renewing it for this long is cancelled.
    pub lease_secs: u64,
}

impl Default for JobsSection {
    fn default() -> Self {
        JobsSection { max_queued: 1000, max_running: None, keep_results_secs: 24 * 3600, lease_secs: 30 }
    }
}

impl JobsSection {
    /// Jobs running at once.
    pub fn running(&self) -> usize {
        self.max_running.unwrap_or_else(crate::cores).max(1)
    }

    fn validate(&self) -> Result<()> {
        anyhow::ensure!((1..=100_000).contains(&self.max_queued), "max-queued must be 1 to 100000");
        anyhow::ensure!(self.max_running.is_none_or(|r| (1..=1024).contains(&r)), "max-running must be 1 to 1024");
        anyhow::ensure!(self.keep_results_secs >= 1, "keep-results-secs must be at least 1");
        anyhow::ensure!((1..=3600).contains(&self.lease_secs), "lease-secs must be 1 to 3600");
        Ok(())
    }
}

/// `[grid]`: terms of this node's offer (read by the node's market, `docs/market.md`), and how
/// it meets other nodes (`docs/grid.md`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GridSection {
    /// Price by command (`"text/summarize" = "2 credits"`, `"0.5 credits/s"`,
    /// `"1 credit/call + 3 credits/1k-tokens"`); unlisted commands are free.
    #[serde(default)]
    pub prices: BTreeMap<String, String>,
    /// Price per fetch of a plugin's alloy (`text = "5 credits"`); unlisted alloys are free.
    #[serde(default)]
    pub alloy_prices: BTreeMap<String, String>,
    /// The most credits a caller may owe this node before its priced calls are refused
    /// (`"10 credits"`); unset, nobody is refused for lack of credits.
    #[serde(default)]
    pub credit_limit: Option<String>,
    /// Announce this node and list the nodes heard on the LAN by multicast (`docs/grid.md`).
    #[serde(default)]
    pub lan: bool,
    /// Relay servers (`http://host:port`, `https://host`) to stay reachable through behind NAT;
    /// none by default, and then no relay is ever contacted.
    #[serde(default)]
    pub relays: Vec<String>,
    /// Whether this node's addresses may travel beyond the peers it was given: in its offer
    /// (which gossip spreads) and in its peers' introductions (peer exchange). Unset means yes;
    /// `false` keeps them to the nodes it added or that added it.
    #[serde(default)]
    pub shareable: Option<bool>,
    /// Add the nodes peers introduce as peers at once (else they wait as discovered).
    #[serde(default)]
    pub accept_introductions: bool,
    /// Owner keys whose node sets are trusted: a node found on the LAN (or introduced) whose
    /// offer carries a set of one of these owners that lists it becomes a peer without asking.
    #[serde(default)]
    pub accept_nodes_of: Vec<String>,
}

impl Config {
    /// Reads `path`; a missing file means all defaults.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::parse(&text).with_context(|| format!("invalid configuration in {}", path.display()))
    }

    /// Parses the TOML text of a configuration file.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text)?;
        config.default_limits().validate().context("in [limits]")?;
        config.inference.validate().context("in [inference]")?;
        config.jobs.validate().context("in [jobs]")?;
        for (name, section) in &config.plugins {
            section
                .limits
                .apply(config.default_limits())
                .validate()
                .with_context(|| format!("in [plugins.{name}.limits]"))?;
        }
        Ok(config)
    }

    /// The limits every plugin gets unless its own section overrides them.
    pub fn default_limits(&self) -> Limits {
        self.limits.apply(Limits::default())
    }

    /// The effective limits of plugin `name`.
    pub fn limits_for(&self, name: &str) -> Limits {
        let base = self.default_limits();
        match self.plugins.get(name) {
            Some(section) => section.limits.apply(base),
            None => base,
        }
    }

    /// The model policy of plugin `name`.
    pub fn model_policy(&self, name: &str) -> ModelPolicy {
        let own = self.plugins.get(name).map(|p| p.inference.clone()).unwrap_or_default();
        ModelPolicy {
            models: own.models,
            max_tokens_per_call: own.max_tokens_per_call.unwrap_or(self.inference.max_tokens_per_call),
            max_seconds_per_call: own.max_seconds_per_call.unwrap_or(self.inference.max_seconds_per_call),
        }
    }

    /// The largest memory cap of any plugin: the engine's pooling allocator is sized to it.
    pub fn max_memory_mib(&self) -> u64 {
        self.plugins
            .keys()
            .map(|name| self.limits_for(name).memory_mib)
            .chain([self.default_limits().memory_mib])
            .max()
            .unwrap_or(Limits::default().memory_mib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_section_overrides_only_what_it_names() {
        let c = Config::parse("[limits]\ntimeout-ms = 500\n[plugins.text.limits]\nmemory-mib = 64\n").unwrap();
        let text = c.limits_for("text");
        assert_eq!((text.timeout_ms, text.memory_mib), (500, 64));
        assert_eq!(c.limits_for("kv").memory_mib, Limits::default().memory_mib);
        assert_eq!(c.max_memory_mib(), Limits::default().memory_mib.max(64));
    }

    #[test]
    fn unknown_keys_and_zero_limits_are_refused() {
        let err = Config::parse("[limits]\ntimeout = 5\n").unwrap_err();
        assert!(format!("{err:#}").contains("unknown field `timeout`"), "{err:#}");
        let err = Config::parse("[plugins.kv.limits]\nmemory-mib = 0\n").unwrap_err();
        assert!(format!("{err:#}").contains("plugins.kv.limits"), "{err:#}");
    }
}
