//! Installing a signed alloy in SPEC §6's order, and verifying and attesting one without
//! installing it.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;
use ed25519_dalek::SigningKey;
use serde_json::json;
use wasmtime::component::Component;

use crate::alloy::custody::{sha256_hex, short, Entry, Stage};
use crate::alloy::manifest::{control_character, CaseResult};
use crate::alloy::{Alloy, Reason, Refusal};
use crate::dir_grant::DirGrant;
use crate::host_api;
use crate::registry::{self, PluginRecord};
use crate::runtime::{check_plugin_name, Host};

use super::{approve, capabilities, AlloyOptions};

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

impl Host {
    /// Installs (or, with `options.upgrade`, upgrades to) the alloy at `path`, checking it in
    /// SPEC §6's order. A refusal is an error that downcasts to [`Refusal`].
    pub fn install_alloy(&self, path: &Path, options: AlloyOptions) -> Result<PluginRecord> {
        let alloy = Alloy::read(path)?;
        self.install_read_alloy(alloy, &path.display().to_string(), options)
    }

    /// Installs an alloy received as `bytes` (an upload), recorded as coming from `source`,
    /// checked as [`Host::install_alloy`] checks a file.
    pub fn install_alloy_bytes(&self, bytes: &[u8], source: &str, options: AlloyOptions) -> Result<PluginRecord> {
        let alloy = Alloy::from_reader(bytes)?;
        self.install_read_alloy(alloy, source, options)
    }

    /// The checks and the registration of an alloy already read (its members within their
    /// limits), reporting each check to `options.steps` as it passes.
    fn install_read_alloy(&self, alloy: Alloy, source: &str, options: AlloyOptions) -> Result<PluginRecord> {
        let steps = &options.steps;
        steps.passed("format", || {
            format!("an alloy of {} component bytes, members within their limits", alloy.component.len())
        });
        alloy.check_digest()?;
        steps.passed("digest", || format!("the component's sha256 is {}", sha256_hex(&alloy.component)));
        let chain = alloy.verify_signatures()?;
        steps.passed("signatures", || format!("{} signatures in the chain of custody verify", chain.len()));
        let version = check_identity(&alloy)?;
        let m = &alloy.manifest;
        let author = &m.identity.author;
        let name = &m.identity.name;
        steps.passed("identity", || format!("{name} {version}, by {}", short(author)));
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
                    format!("plugin `{name}` is already installed; use `continuum plugin upgrade {source}`"),
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
        steps.passed("publisher", || self.signer_label(author));
        steps.passed("version", || match &installed {
            Some(old) => format!("replaces {}", old.version.as_deref().unwrap_or("a development install")),
            None => "a new plugin here".into(),
        });
        let mut also = self.pre_approved(author);
        if !new_publisher {
            also.extend(installed.iter().flat_map(|old| old.approved.iter().cloned()));
        }
        let approved = approve(name, &m.interface.capabilities, &options.allow, &also)?;
        steps.passed("capabilities", || {
            if approved.is_empty() {
                "none requested".into()
            } else {
                format!("approved: {}", approved.join(", "))
            }
        });
        let proven = self.verify_contents(&alloy, &approved)?;
        steps.passed("contents", || {
            format!(
                "the component reflects to its {} commands and passes its {} proof cases here",
                m.interface.commands.len(),
                proven.results.len()
            )
        });
        let record = PluginRecord {
            name: name.clone(),
            digest: sha256_hex(&alloy.component),
            description: m.identity.description.clone(),
            world: m.interface.world.clone(),
            wit: m.interface.wit.clone(),
            commands: m.interface.commands.clone(),
            imports: proven.imports,
            source: source.to_string(),
            installed_at: crate::now_secs(),
            version: Some(m.identity.version.clone()),
            signer: Some(author.clone()),
            manifest: Some(String::from_utf8_lossy(&alloy.manifest_bytes).into_owned()),
            custody: Some(alloy.chain.text()),
            approved,
            access: m.interface.access.clone(),
            dirs: lent_dirs(&options.dirs, installed.as_ref().filter(|_| !new_publisher)),
        };
        self.register(&record, &alloy.component, &proven.component, new_publisher)?;
        steps.passed("installed", || format!("{} is installed", record.name));
        Ok(record)
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

/// The folders an installed alloy's calls may use: those given now, and on an upgrade by the
/// same publisher those lent before (a guest path given now replaces the old lending).
fn lent_dirs(given: &[DirGrant], before: Option<&PluginRecord>) -> Vec<DirGrant> {
    let mut dirs = given.to_vec();
    for old in before.map(|r| r.dirs.as_slice()).unwrap_or_default() {
        if !dirs.iter().any(|d| d.guest == old.guest) {
            dirs.push(old.clone());
        }
    }
    dirs
}
