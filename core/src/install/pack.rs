//! Packing a component into a signed alloy, running a proof suite on this host, and rebuilding
//! the alloy an installed plugin shipped in.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use serde_json::json;
use wasmtime::component::Component;

use crate::alloy::custody::{Chain, Stage};
use crate::alloy::manifest::{CaseResult, Identity, Interface, Manifest, ProofCase, ProofSuite, Provenance, FORMAT};
use crate::alloy::proof::{judge, PluginSpec};
use crate::alloy::Alloy;
use crate::host_api;
use crate::keys::public_hex;
use crate::reflect::wit_source::WitWorld;
use crate::registry::{self, PluginRecord};
use crate::runtime::{check_plugin_name, digest, CallReport, Host};
use crate::Caller;

use super::{capabilities, Built};

/// What `plugin pack` packs.
#[derive(Debug, Clone, Default)]
pub struct PackInput {
    /// The component.
    pub wasm: PathBuf,
    /// Its WIT folder (none: decoded from the component).
    pub wit: Option<PathBuf>,
    /// `plugin.toml`: version, build command, proof cases.
    pub spec: Option<PluginSpec>,
    /// Provenance recorded by the build (`provenance.json`), if any.
    pub provenance: Provenance,
    /// Version when there is no `plugin.toml`.
    pub version: Option<String>,
}

impl PackInput {
    /// The pack input for a built component: `plugin.toml` and `provenance.json` are read from
    /// beside it when present.
    pub fn for_component(wasm: &Path, wit: Option<&Path>) -> Result<PackInput> {
        let folder = wasm.parent().unwrap_or(Path::new("."));
        let spec_path = folder.join("plugin.toml");
        let spec = if spec_path.exists() { Some(PluginSpec::read(&spec_path)?) } else { None };
        let provenance_path = folder.join("provenance.json");
        let provenance: Provenance = if provenance_path.exists() {
            serde_json::from_str(&std::fs::read_to_string(&provenance_path)?)
                .with_context(|| format!("invalid {}", provenance_path.display()))?
        } else {
            Provenance::default()
        };
        Ok(PackInput { wasm: wasm.to_path_buf(), wit: wit.map(Path::to_path_buf), spec, provenance, version: None })
    }
}

impl Host {
    /// The signed alloy a plugin was installed from, rebuilt byte for byte from what the
    /// registry kept (manifest, component, chain of custody); none for a development install.
    pub fn shipped_alloy(&self, record: &PluginRecord) -> Result<Option<Alloy>> {
        let (Some(manifest), Some(custody)) = (&record.manifest, &record.custody) else { return Ok(None) };
        let path = self.core().data().components().join(format!("{}.wasm", record.digest));
        let component = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest_bytes = manifest.as_bytes().to_vec();
        let parsed = serde_json::from_slice(&manifest_bytes).context("the stored manifest is corrupt")?;
        Ok(Some(Alloy {
            manifest_bytes,
            manifest: parsed,
            component,
            chain: crate::alloy::custody::Chain::parse(custody),
        }))
    }

    /// Runs proof `cases` against `component` as [`Caller::Proof`]: it may call only the
    /// component's own commands (nested calls to installed plugins are refused, and audited),
    /// linked with only the `approved` host capabilities (the others trap), in a scratch
    /// namespace whose every row is deleted after, so a proof never reads or changes what an
    /// installed plugin owns.
    pub(super) fn run_proofs(
        &self,
        name: &str,
        digest: &str,
        component: &Component,
        world: &WitWorld,
        cases: &[ProofCase],
        approved: &[String],
    ) -> Result<Vec<CaseResult>> {
        let core: &Arc<_> = self.core();
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
        let namespace = format!("proof:{name}:{}", hex::encode(nonce));
        let plugin = core.prepare_confined(name, &namespace, digest, component, world, approved)?;
        let caller = Caller::Proof { plugin: name.to_string() };
        let results = cases
            .iter()
            .map(|case| {
                let mut report = CallReport::of(Ok(serde_json::Value::Null));
                let started = Instant::now();
                let deadline = started + crate::runtime::CALL_TIME_LIMIT;
                let outcome = core.execute(&plugin, &caller, &case.command, &case.input, 0, deadline, &mut report);
                judge(case, &outcome, started.elapsed().as_secs_f64() * 1e3)
            })
            .collect();
        registry::purge(&core.db(), &namespace)?;
        Ok(results)
    }

    /// Packs a component into an alloy signed by `key`: reflects it, runs its proof suite
    /// (refusing to pack if a case fails), and starts the chain of custody.
    pub fn pack(&self, input: &PackInput, key: &SigningKey) -> Result<Alloy> {
        let (Built { bytes, wit, default_name: name }, world) = Built::read(&input.wasm, input.wit.as_deref(), None)?;
        check_plugin_name(&name)?;
        let version = match (&input.spec, &input.version) {
            (_, Some(v)) => v.clone(),
            (Some(spec), None) => spec.plugin.version.clone(),
            (None, None) => bail!(
                "no version: add a plugin.toml with [plugin] version = \"…\" beside the component, or pass --version"
            ),
        };
        semver::Version::parse(&version)
            .with_context(|| format!("version `{version}` is not a semantic version (like 1.2.3)"))?;
        let imports = capabilities(&bytes)?;
        let digest = digest(&bytes);
        let component = self.core().component(&digest, &bytes, &name)?;
        let plugin = self.core().prepare(&name, &name, &digest, &component, &world, &host_api::requested(&imports))?;
        let cases = input.spec.as_ref().map(PluginSpec::cases).transpose()?.unwrap_or_default();
        // The publisher runs its own code here: its proofs get every capability it requests.
        let results = self.run_proofs(&name, &digest, &component, &world, &cases, &host_api::requested(&imports))?;
        if let Some(failed) = results.iter().find(|r| !r.passed) {
            bail!(
                "proof `{}` failed: {}; fix the plugin or the case before packing",
                failed.name,
                failed.detail.as_deref().unwrap_or("")
            );
        }
        let access = input.spec.as_ref().map(|s| s.access.clone()).unwrap_or_default();
        if let Some(unknown) = access.keys().find(|c| !plugin.schemas().iter().any(|s| &s.name == *c)) {
            bail!("[access] names `{unknown}`, which is not a command of `{name}`");
        }
        let mut provenance = input.provenance.clone();
        if provenance.command.is_none() {
            provenance.command = input.spec.as_ref().and_then(|s| s.build.as_ref()).map(|b| b.command.clone());
        }
        let description = input
            .spec
            .as_ref()
            .and_then(|s| s.plugin.description.clone())
            .or_else(|| world.docs().map(|d| d.trim().to_string()));
        let manifest = Manifest {
            format: FORMAT.into(),
            identity: Identity {
                name: name.clone(),
                version: version.clone(),
                description,
                author: public_hex(&key.verifying_key()),
                digest: format!("sha256:{digest}"),
                size: bytes.len() as u64,
            },
            interface: Interface {
                world: world.name().to_string(),
                wit,
                commands: plugin.schemas(),
                capabilities: imports,
                access,
            },
            provenance: provenance.clone(),
            proof: ProofSuite { cases, results },
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
        let mut chain = Chain::default();
        if provenance.source_digest.is_some() || provenance.commit.is_some() {
            chain.append(key, &manifest_bytes, Stage::Source, json!({
                "source-digest": provenance.source_digest, "repository": provenance.repository, "commit": provenance.commit,
            }));
        }
        chain.append(key, &manifest_bytes, Stage::Build, json!({
            "toolchain": provenance.toolchain, "command": provenance.command, "component": format!("sha256:{digest}"),
        }));
        chain.append(
            key,
            &manifest_bytes,
            Stage::Sign,
            json!({ "name": name, "version": version, "digest": format!("sha256:{digest}") }),
        );
        Ok(Alloy { manifest_bytes, manifest, component: bytes, chain })
    }
}
