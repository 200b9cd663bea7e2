//! Installing plugins, and packing, verifying and attesting signed alloys.
//!
//! An alloy is installed in the order of SPEC §6, refusing at the first failure:
//! size limits, canonical form and parse → digest → signatures and chain → identity (no control
//! characters, a plugin name, a version) → signer trusted → same publisher, not a rollback →
//! capabilities approved → commands and capabilities match the component → proof suite passes
//! here → precompiled and cached → registered → `plugin.installed` event. Nothing is written
//! before the last steps.
//!
//! This module holds the install options, the development install of an unsigned component and
//! capability approval; packing and proof runs are in `pack`, and installing, verifying and
//! attesting signed alloys in `signed`.

mod adapt;
mod pack;
mod signed;

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::json;
use wasmtime::component::Component;

use crate::alloy::custody::short;
use crate::alloy::{component_imports, Reason, Refusal};
use crate::dir_grant::DirGrant;
use crate::host_api::{self, NotApproved, HOST_CAPABILITIES};
use crate::registry::{self, PluginRecord};
use crate::runtime::{check_plugin_name, digest, Host};
use crate::terminal::strip_control;
use crate::trust;

pub use adapt::{component_from, decoded_wit, Built, DECODED_WIT_FILE};
pub use pack::PackInput;
pub use signed::Verified;

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
    /// Host folders lent to the plugin's calls.
    pub dirs: Vec<DirGrant>,
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
    /// Host folders lent to the plugin's calls (on upgrade by the same publisher, added to
    /// those lent before).
    pub dirs: Vec<DirGrant>,
    /// Where each check is reported as it passes.
    pub steps: Steps,
}

/// Where an install reports each of its checks as it passes (`step`, what was found), for a
/// person watching it (the console); nowhere by default.
#[derive(Clone, Default)]
pub struct Steps(Option<std::sync::Arc<StepSink>>);

/// What receives a passed check: its name and what it found.
type StepSink = dyn Fn(&str, String) + Send + Sync;

impl Steps {
    /// Reports each passed check to `sink`.
    pub fn to(sink: impl Fn(&str, String) + Send + Sync + 'static) -> Steps {
        Steps(Some(std::sync::Arc::new(sink)))
    }

    /// Reports that check `step` passed, with what it found.
    pub fn passed(&self, step: &str, detail: impl FnOnce() -> String) {
        if let Some(sink) = &self.0 {
            sink(step, detail());
        }
    }
}

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Steps(reported)" } else { "Steps(none)" })
    }
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
    /// Installs a component (or a WASI preview-1 module, adapted) with the WIT folder that
    /// describes it, or without one its WIT decoded from the component (a development install
    /// of unsigned code). Nothing is changed unless every check passes.
    pub fn install_component(
        &self,
        wasm: &Path,
        wit_dir: Option<&Path>,
        options: &InstallOptions,
    ) -> Result<PluginRecord> {
        let (Built { bytes, wit, default_name }, world) = Built::read(wasm, wit_dir, options.world.as_deref())?;
        let name = options.name.clone().unwrap_or(default_name);
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
            dirs: options.dirs.clone(),
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

    /// The capabilities the trust store pre-approves for publisher `key`.
    fn pre_approved(&self, key: &str) -> Vec<String> {
        trust::find(&self.core().db(), key)
            .ok()
            .flatten()
            .filter(|t| t.public_key == key)
            .map(|t| t.approves)
            .unwrap_or_default()
    }

    /// Approves `caps` for installed plugin `name` (they take effect on its next load); logged.
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
        self.core().log().append(
            "plugin.allowed",
            name,
            &serde_json::json!({ "capabilities": caps, "approved": approved }),
        )?;
        Ok(approved)
    }

    /// Lends installed plugin `name` the folders `dirs` (replacing a lending at the same guest
    /// path); its calls see them from the next load.
    pub fn lend_dirs(&self, name: &str, dirs: &[DirGrant]) -> Result<Vec<DirGrant>> {
        let record = self.plugin(name)?;
        let mut lent: Vec<DirGrant> =
            record.dirs.into_iter().filter(|d| !dirs.iter().any(|n| n.guest == d.guest)).collect();
        lent.extend(dirs.iter().cloned());
        registry::set_dirs(&self.core().db(), name, &lent)?;
        self.core().unload(name);
        Ok(lent)
    }

    /// Withdraws the folders lent to installed plugin `name` at guest paths `guests`.
    pub fn withdraw_dirs(&self, name: &str, guests: &[String]) -> Result<Vec<DirGrant>> {
        let record = self.plugin(name)?;
        if let Some(unknown) = guests.iter().find(|g| !record.dirs.iter().any(|d| &d.guest == *g)) {
            let lent: Vec<&str> = record.dirs.iter().map(|d| d.guest.as_str()).collect();
            bail!(
                "plugin `{name}` has no folder at `{unknown}`; it has {}",
                if lent.is_empty() { "none".into() } else { lent.join(", ") }
            );
        }
        let lent: Vec<DirGrant> = record.dirs.into_iter().filter(|d| !guests.contains(&d.guest)).collect();
        registry::set_dirs(&self.core().db(), name, &lent)?;
        self.core().unload(name);
        Ok(lent)
    }

    /// Withdraws `caps` from installed plugin `name`; its commands that need them stop working.
    /// Logged.
    pub fn deny(&self, name: &str, caps: &[String]) -> Result<Vec<String>> {
        let record = self.plugin(name)?;
        let approved: Vec<String> =
            record.approved.into_iter().filter(|c| !caps.contains(c) && !caps.iter().any(|a| a == "all")).collect();
        registry::set_approved(&self.core().db(), name, &approved)?;
        self.core().unload(name);
        self.core().log().append(
            "plugin.denied",
            name,
            &serde_json::json!({ "capabilities": caps, "approved": approved }),
        )?;
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
}
