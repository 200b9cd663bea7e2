//! Installing plugins, and packing, verifying and attesting signed alloys.
//!
//! An alloy is installed in the order of SPEC §6, refusing at the first failure:
//! size limits, canonical form and parse → digest → signatures and chain → identity (no control
//! characters, a plugin name, a version) → signer trusted → same publisher, not a rollback →
//! capabilities approved → commands and capabilities match the component → proof suite passes
//! here → precompiled and cached → registered → `plugin.installed` event. Nothing is written
//! before the last steps.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use serde_json::json;
use wasmtime::component::Component;

use crate::alloy::custody::{sha256_hex, short, Chain, Entry, Stage};
use crate::alloy::manifest::{
    control_character, CaseResult, Identity, Interface, Manifest, ProofCase, ProofSuite, Provenance, FORMAT,
};
use crate::alloy::proof::{judge, PluginSpec};
use crate::alloy::{component_imports, Alloy, Reason, Refusal};
use crate::host_api::{self, NotApproved, HOST_CAPABILITIES};
use crate::keys::public_hex;
use crate::reflect::wit_source::{WitSource, WitWorld};
use crate::registry::{self, PluginRecord};
use crate::runtime::{check_component_bytes, check_plugin_name, digest, CallReport, Host};
use crate::terminal::strip_control;
use crate::{trust, Caller};

/// What `plugin install` takes besides a development component and its WIT.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Install under this name instead of the world's name.
    pub name: Option<String>,
    /// The world to use when the WIT package has several.
    pub world: Option<String>,
    /// Replace an installed plugin of the same name.
    pub replace: bool,
    /// Host capabilities the operator approves (`all`: everything the plugin requests).
    pub allow: Vec<String>,
}

/// Overrides for installing an alloy.
#[derive(Debug, Clone, Default)]
pub struct AlloyOptions {
    /// Host capabilities the operator approves (`all`: everything the plugin requests).
    pub allow: Vec<String>,
    /// Install even if the signer is not in the trust store.
    pub allow_untrusted: bool,
    /// Install even if the version is older than the installed one.
    pub allow_downgrade: bool,
    /// Replace an installed plugin (`plugin upgrade`); without it an installed name is refused.
    pub upgrade: bool,
    /// Upgrade to an alloy signed by another publisher than the installed plugin's: its store is
    /// deleted and no earlier approval carries over.
    pub allow_new_publisher: bool,
}

/// What `plugin pack` packs.
#[derive(Debug, Clone, Default)]
pub struct PackInput {
    /// The component.
    pub wasm: PathBuf,
    /// Its WIT folder.
    pub wit: PathBuf,
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
    pub fn for_component(wasm: &Path, wit: &Path) -> Result<PackInput> {
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
        Ok(PackInput { wasm: wasm.to_path_buf(), wit: wit.to_path_buf(), spec, provenance, version: None })
    }
}

/// What verifying an alloy found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The chain of custody's entries, verified.
    pub entries: Vec<Entry>,
    /// The trust-store name of the signer, if trusted.
    pub trusted_as: Option<String>,
    /// The proof suite's results on this host.
    pub results: Vec<CaseResult>,
}

/// A component checked against its manifest, compiled, reflected and proven.
struct Proven {
    component: Component,
    results: Vec<CaseResult>,
    /// The component's imports, sorted (equal to the manifest's capabilities).
    imports: Vec<String>,
}

fn refuse<T>(reason: Reason, message: String) -> Result<T, Refusal> {
    Err(Refusal::new(reason, message))
}

/// Decides which of the capabilities a plugin requests are approved: by `allow` (`all` means
/// every requested host capability), or by `also` (its publisher's pre-approval and, on
/// upgrade, what was approved before). Anything left over refuses the install.
fn approve(name: &str, imports: &[String], allow: &[String], also: &[String]) -> Result<Vec<String>> {
    if let Some(unknown) = allow.iter().find(|a| *a != "all" && !HOST_CAPABILITIES.contains(&a.as_str())) {
        bail!("unknown capability `{unknown}`; the host offers {} (or `all`)", HOST_CAPABILITIES.join(", "));
    }
    let requested = host_api::requested(imports);
    if let Some(foreign) = requested.iter().find(|c| !HOST_CAPABILITIES.contains(&c.as_str())) {
        bail!("plugin `{name}` imports `{foreign}`, which this host does not provide; a command may import only WASI 0.2 and continuum:host interfaces");
    }
    let all = allow.iter().any(|a| a == "all");
    let (approved, missing): (Vec<String>, Vec<String>) =
        requested.into_iter().partition(|c| all || allow.contains(c) || also.contains(c));
    if !missing.is_empty() {
        return Err(NotApproved { plugin: name.to_string(), missing, installed: false }.into());
    }
    Ok(approved)
}

/// The capability names a component requests: its imports, read from the bytes.
fn capabilities(bytes: &[u8]) -> Result<Vec<String>, Refusal> {
    let mut caps = component_imports(bytes)
        .map_err(|e| Refusal::new(Reason::Malformed, format!("the component is truncated or corrupt: {e}")))?;
    caps.sort();
    Ok(caps)
}

impl Host {
    /// Installs a component with the WIT folder that describes it (a development install of
    /// an unsigned component). Nothing is changed unless every check passes.
    pub fn install_component(&self, wasm: &Path, wit_dir: &Path, options: &InstallOptions) -> Result<PluginRecord> {
        let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
        check_component_bytes(&bytes, wasm)?;
        let wit = WitSource::read_dir(wit_dir)?;
        let world = wit.resolve(options.world.as_deref())?;
        let name = options.name.clone().unwrap_or_else(|| world.name().to_string());
        check_plugin_name(&name)?;
        if !options.replace && registry::get(&self.core().db(), &name)?.is_some() {
            bail!("plugin `{name}` is already installed; pass --replace to replace it, or `continuum plugin remove {name}` first");
        }
        let imports = capabilities(&bytes)?;
        let approved = approve(&name, &imports, &options.allow, &[])?;
        let digest = digest(&bytes);
        let component = self.core().component(&digest, &bytes, &name)?;
        let plugin = self.core().prepare(&name, &name, &digest, &component, &world, &approved)?;
        let record = PluginRecord {
            name: name.clone(),
            digest,
            description: world.docs().map(|d| d.trim().to_string()),
            world: world.name().to_string(),
            wit,
            commands: plugin.schemas(),
            imports,
            source: wasm.display().to_string(),
            installed_at: crate::now_secs(),
            version: None,
            signer: None,
            manifest: None,
            custody: None,
            approved,
            access: Default::default(),
        };
        self.register(&record, &bytes, &component, false)?;
        Ok(record)
    }

    /// The last steps of every install: store the component, cache its compilation, record
    /// the plugin (with `purge_store`, deleting everything the name owned before, in the same
    /// transaction), and log `plugin.installed`.
    fn register(&self, record: &PluginRecord, bytes: &[u8], component: &Component, purge_store: bool) -> Result<()> {
        let core = self.core();
        let stored = core.data().components().join(format!("{}.wasm", record.digest));
        if !stored.exists() {
            crate::paths::write_private(&stored, bytes)?;
        }
        core.cache().put(&record.digest, component)?;
        let payload = json!({
            "name": record.name, "version": record.version, "digest": record.digest, "signer": record.signer,
            "purged-store": purge_store,
        });
        {
            let mut db = core.db();
            let tx = db.transaction()?;
            if purge_store {
                registry::purge(&tx, &record.name)?;
            }
            registry::put(&tx, record)?;
            tx.commit()?;
        }
        core.unload(&record.name);
        core.log().append("plugin.installed", &record.name, &payload)?;
        Ok(())
    }

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
    fn run_proofs(
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
        let bytes = std::fs::read(&input.wasm).with_context(|| format!("cannot read {}", input.wasm.display()))?;
        check_component_bytes(&bytes, &input.wasm)?;
        let wit = WitSource::read_dir(&input.wit)?;
        let world = wit.resolve(None)?;
        let name = world.name().to_string();
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
                world: name.clone(),
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

    /// Digest, then signatures and chain.
    fn verify_integrity(&self, alloy: &Alloy) -> Result<Vec<Entry>, Refusal> {
        alloy.check_digest()?;
        alloy.verify_signatures()
    }

    /// Commands and capabilities match the component, then it compiles, reflects to exactly
    /// the manifest's commands, and passes its proof suite here, run with only the `approved`
    /// host capabilities.
    fn verify_contents(&self, alloy: &Alloy, approved: &[String]) -> Result<Proven, Refusal> {
        let m = &alloy.manifest;
        let mut seen = HashSet::new();
        if let Some(dup) = m.interface.commands.iter().find(|c| !seen.insert(c.name.as_str())) {
            return refuse(
                Reason::DuplicateCommand,
                format!("the manifest lists command `{}` more than once", dup.name),
            );
        }
        let mut declared = m.interface.capabilities.clone();
        declared.sort();
        let actual = capabilities(&alloy.component)?;
        if declared != actual {
            let extra: Vec<_> = actual.iter().filter(|c| !declared.contains(c)).collect();
            let missing: Vec<_> = declared.iter().filter(|c| !actual.contains(c)).collect();
            return refuse(
                Reason::CapabilityMismatch,
                format!("the manifest's capabilities differ from the component's imports (imported but not declared: {extra:?}; declared but not imported: {missing:?})"),
            );
        }
        let interface = |e: anyhow::Error| Refusal::new(Reason::InterfaceMismatch, format!("{e:#}"));
        let world = m.interface.wit.resolve(Some(&m.interface.world)).map_err(interface)?;
        if world.name() != m.identity.name {
            return refuse(
                Reason::InterfaceMismatch,
                format!("the WIT world is `{}` but the plugin is named `{}`", world.name(), m.identity.name),
            );
        }
        let digest = sha256_hex(&alloy.component);
        let component = self
            .core()
            .component(&digest, &alloy.component, &m.identity.name)
            .map_err(|e| Refusal::new(Reason::Malformed, format!("{e:#}")))?;
        let plugin = self
            .core()
            .prepare(&m.identity.name, &m.identity.name, &digest, &component, &world, &host_api::requested(&actual))
            .map_err(interface)?;
        if let Some(unknown) = m.interface.access.keys().find(|c| !m.interface.commands.iter().any(|s| &s.name == *c)) {
            return refuse(
                Reason::InterfaceMismatch,
                format!("the access list names `{unknown}`, which is not one of the plugin's commands"),
            );
        }
        if plugin.schemas() != m.interface.commands {
            return refuse(
                Reason::InterfaceMismatch,
                "the manifest's commands and schemas differ from what the component and its WIT reflect to".into(),
            );
        }
        let results = self
            .run_proofs(&m.identity.name, &digest, &component, &world, &m.proof.cases, approved)
            .map_err(|e| Refusal::new(Reason::ProofFailed, format!("{e:#}")))?;
        if let Some(failed) = results.iter().find(|r| !r.passed) {
            return refuse(
                Reason::ProofFailed,
                format!("proof case `{}` failed on this host: {}", failed.name, failed.detail.as_deref().unwrap_or("")),
            );
        }
        Ok(Proven { component, results, imports: actual })
    }

    /// Verifies an alloy completely (digest, signatures, chain, identity, contents, proof suite)
    /// without installing it; says whether its signer is trusted. The proofs run with only the
    /// capabilities the trust store pre-approves for the signer: none for one not in it.
    pub fn verify_alloy(&self, alloy: &Alloy) -> Result<Verified, Refusal> {
        let entries = self.verify_integrity(alloy)?;
        check_identity(alloy)?;
        let author = &alloy.manifest.identity.author;
        let proven = self.verify_contents(alloy, &self.pre_approved(author))?;
        Ok(Verified { entries, trusted_as: self.trusted_name(author), results: proven.results })
    }

    /// Verifies `alloy`, re-running its proof suite, and appends an `evaluate` entry signed
    /// by `key` recording the results.
    pub fn attest(&self, alloy: &mut Alloy, key: &SigningKey) -> Result<Verified, Refusal> {
        let verified = self.verify_alloy(alloy)?;
        let passed = verified.results.iter().filter(|r| r.passed).count();
        let statement = json!({
            "passed": passed,
            "failed": verified.results.len() - passed,
            "cases": verified.results.iter().map(|r| json!({ "name": r.name, "passed": r.passed, "duration-ms": r.duration_ms })).collect::<Vec<_>>(),
            "host": { "continuum": env!("CARGO_PKG_VERSION"), "os": std::env::consts::OS, "arch": std::env::consts::ARCH },
        });
        alloy.chain.append(key, &alloy.manifest_bytes, Stage::Evaluate, statement);
        Ok(verified)
    }

    /// The capabilities the trust store pre-approves for publisher `key`.
    fn pre_approved(&self, key: &str) -> Vec<String> {
        trust::find(&self.core().db(), key)
            .ok()
            .flatten()
            .filter(|t| t.public_key == key)
            .map(|t| t.approves)
            .unwrap_or_default()
    }

    /// Approves `caps` for installed plugin `name` (they take effect on its next load).
    pub fn allow(&self, name: &str, caps: &[String]) -> Result<Vec<String>> {
        let record = self.plugin(name)?;
        let mut approved =
            approve(name, &record.imports, caps, &record.approved).or_else(|e| match e.downcast::<NotApproved>() {
                // Approving some of what is requested is fine; the rest stays unapproved.
                Ok(partial) => Ok(host_api::requested(&record.imports)
                    .into_iter()
                    .filter(|c| !partial.missing.contains(c))
                    .collect()),
                Err(e) => Err(e),
            })?;
        if let Some(unrequested) =
            caps.iter().find(|c| *c != "all" && !host_api::requested(&record.imports).contains(c))
        {
            bail!(
                "plugin `{name}` does not request `{unrequested}`; it requests {}",
                host_api::requested(&record.imports).join(", ")
            );
        }
        approved.sort();
        registry::set_approved(&self.core().db(), name, &approved)?;
        self.core().unload(name);
        Ok(approved)
    }

    /// Withdraws `caps` from installed plugin `name`; its commands that need them stop working.
    pub fn deny(&self, name: &str, caps: &[String]) -> Result<Vec<String>> {
        let record = self.plugin(name)?;
        let approved: Vec<String> =
            record.approved.into_iter().filter(|c| !caps.contains(c) && !caps.iter().any(|a| a == "all")).collect();
        registry::set_approved(&self.core().db(), name, &approved)?;
        self.core().unload(name);
        Ok(approved)
    }

    fn trusted_name(&self, key: &str) -> Option<String> {
        trust::find(&self.core().db(), key).ok().flatten().filter(|t| t.public_key == key).map(|t| t.name)
    }

    /// A signer for messages: its short key, and its trust-store name or that it has none.
    pub fn signer_label(&self, key: &str) -> String {
        let key_text = strip_control(short(key));
        match self.trusted_name(key) {
            Some(name) => format!("{key_text} (trusted as `{name}`)"),
            None => format!("{key_text} (not in the trust store)"),
        }
    }

    /// Installs (or, with `options.upgrade`, upgrades to) the alloy at `path`, checking it in
    /// SPEC §6's order. A refusal is an error that downcasts to [`Refusal`].
    pub fn install_alloy(&self, path: &Path, options: AlloyOptions) -> Result<PluginRecord> {
        let alloy = Alloy::read(path)?;
        self.verify_integrity(&alloy)?;
        let version = check_identity(&alloy)?;
        let m = &alloy.manifest;
        let author = &m.identity.author;
        let name = &m.identity.name;
        if self.trusted_name(author).is_none() && !options.allow_untrusted {
            return Err(Refusal::new(
                Reason::UntrustedSigner,
                format!(
                    "`{name}` is signed by {} which is not in the trust store; `continuum trust add {author} --name <publisher>` if you trust it, or pass --allow-untrusted",
                    short(author)
                ),
            )
            .into());
        }
        let installed = registry::get(&self.core().db(), name)?;
        // Another publisher's alloy never inherits the installed plugin's approvals or store.
        let new_publisher = installed.as_ref().is_some_and(|old| old.signer.as_deref() != Some(author.as_str()));
        match (&installed, options.upgrade) {
            (Some(_), false) => {
                return Err(Refusal::new(
                    Reason::AlreadyInstalled,
                    format!("plugin `{name}` is already installed; use `continuum plugin upgrade {}`", path.display()),
                )
                .into())
            }
            (None, true) => {
                return Err(Refusal::new(
                    Reason::NotInstalled,
                    format!("plugin `{name}` is not installed; use `continuum plugin install`"),
                )
                .into())
            }
            (Some(old), true) => {
                if new_publisher && !options.allow_new_publisher {
                    let installed_from = match &old.signer {
                        Some(signer) => format!("was published by {}", self.signer_label(signer)),
                        None => "is a development install (unsigned)".into(),
                    };
                    return Err(Refusal::new(
                        Reason::PublisherChanged,
                        format!(
                            "plugin `{name}` {installed_from}, but this alloy is signed by {}: another publisher. \
                             Pass --allow-new-publisher to replace it anyway: the installed plugin's store is then \
                             deleted and every capability must be approved again",
                            self.signer_label(author)
                        ),
                    )
                    .into());
                }
                let old_version = old.version.as_deref().and_then(|v| semver::Version::parse(v).ok());
                let same_content = old.digest == sha256_hex(&alloy.component);
                let backwards = match &old_version {
                    Some(v) => version < *v || (version == *v && !same_content),
                    None => false,
                };
                if backwards && !options.allow_downgrade {
                    return Err(Refusal::new(
                        Reason::Rollback,
                        format!(
                            "plugin `{name}` {} is installed; {} {} would go backwards — pass --allow-downgrade to do it anyway",
                            old.version.as_deref().unwrap_or("?"),
                            if version == *old_version.as_ref().expect("backwards implies a version") { "a different build of" } else { "version" },
                            m.identity.version
                        ),
                    )
                    .into());
                }
            }
            (None, false) => {}
        }
        let mut also = self.pre_approved(author);
        if !new_publisher {
            also.extend(installed.iter().flat_map(|old| old.approved.iter().cloned()));
        }
        let approved = approve(name, &m.interface.capabilities, &options.allow, &also)?;
        let proven = self.verify_contents(&alloy, &approved)?;
        let record = PluginRecord {
            name: name.clone(),
            digest: sha256_hex(&alloy.component),
            description: m.identity.description.clone(),
            world: m.interface.world.clone(),
            wit: m.interface.wit.clone(),
            commands: m.interface.commands.clone(),
            imports: proven.imports,
            source: path.display().to_string(),
            installed_at: crate::now_secs(),
            version: Some(m.identity.version.clone()),
            signer: Some(author.clone()),
            manifest: Some(String::from_utf8_lossy(&alloy.manifest_bytes).into_owned()),
            custody: Some(alloy.chain.text()),
            approved,
            access: m.interface.access.clone(),
        };
        self.register(&record, &alloy.component, &proven.component, new_publisher)?;
        Ok(record)
    }
}

/// Checks what an alloy's manifest says about itself before any of it is shown or used: no
/// control characters in any of its text (terminal escape sequences), a valid plugin name, a
/// semantic version. Returns the version.
fn check_identity(alloy: &Alloy) -> Result<semver::Version, Refusal> {
    let manifest: serde_json::Value = serde_json::from_slice(&alloy.manifest_bytes)
        .map_err(|e| Refusal::new(Reason::Malformed, format!("`alloy.json` is not valid JSON: {e}")))?;
    if let Some((field, c)) = control_character(&manifest) {
        return refuse(
            Reason::Malformed,
            format!(
                "the manifest's `{field}` holds the control character U+{:04X}: control characters (which start \
                 terminal escape sequences) are refused in manifests; re-pack it without them",
                c as u32
            ),
        );
    }
    let id = &alloy.manifest.identity;
    check_plugin_name(&id.name)
        .map_err(|e| Refusal::new(Reason::Malformed, format!("the manifest's name is not a plugin name: {e}")))?;
    semver::Version::parse(&id.version).map_err(|e| {
        Refusal::new(Reason::Malformed, format!("version `{}` is not a semantic version (like 1.2.3): {e}", id.version))
    })
}
