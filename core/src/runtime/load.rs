//! Loading plugins: an installed plugin's component (from the AOT cache when it has it,
//! compiled otherwise) reflected into commands and linked into an instance template, kept
//! loaded until an install, removal or reload; and the checks a component and a plugin name
//! pass before install.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};

use super::{Host, HostCore};
use crate::access::Access;
use crate::config::ModelPolicy;
use crate::dir_grant::DirGrant;
use crate::engine;
use crate::host_api::{self, CallState, NotApproved};
use crate::reflect::wit_source::WitWorld;
use crate::reflect::{self, Command, CommandSchema};
use crate::registry;
use crate::sandbox::Limits;
use crate::sync::lock;

/// Largest component accepted for install.
pub const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// sha256 of `bytes`, as lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks that `bytes` are a component, naming what they are otherwise and how to fix it.
pub fn check_component_bytes(bytes: &[u8], path: &Path) -> Result<()> {
    if bytes.len() > MAX_COMPONENT_BYTES {
        bail!(
            "{} is {} MiB; components are limited to {} MiB",
            path.display(),
            bytes.len() >> 20,
            MAX_COMPONENT_BYTES >> 20
        );
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        bail!(
            "{} is a core WebAssembly module, not a component; `plugin install` and `plugin pack` adapt a \
             WASI preview-1 module from its .wasm file, or build for the wasm32-wasip2 target (which emits components)",
            path.display()
        );
    }
    if !wasmparser::Parser::is_component(bytes) {
        bail!(
            "{} is not a WebAssembly component (no component header); pass the .wasm file your build produced",
            path.display()
        );
    }
    Ok(())
}

/// Checks a plugin name: lower-case kebab-case, as WIT names are.
pub fn check_plugin_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.split('-').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !ok {
        bail!("plugin name `{name}` must be kebab-case (a-z, 0-9, single hyphens), starting with a letter");
    }
    Ok(())
}

/// A plugin ready to run: its instance template and reflected commands.
pub struct LoadedPlugin {
    /// The plugin's name.
    pub name: String,
    /// Whose store and events its calls use: the name, or a scratch namespace for proof runs.
    pub namespace: String,
    /// Component digest.
    pub digest: String,
    /// The limits its calls run under.
    pub limits: Limits,
    /// The models its calls may use and their budgets, resolved once at load.
    pub models: Arc<ModelPolicy>,
    /// Access level per command.
    pub access: BTreeMap<String, Access>,
    /// Host folders its calls see (`--dir`).
    pub dirs: Vec<DirGrant>,
    /// The linked component, instantiated afresh for each call.
    pub(super) pre: InstancePre<CallState>,
    /// Its commands by name (`plugin/function`).
    commands: HashMap<String, Command>,
}

impl LoadedPlugin {
    /// The reflected command `name` (`plugin/function`).
    pub fn command(&self, name: &str) -> Option<&Command> {
        self.commands.get(name)
    }

    /// The schemas of its commands, in export order.
    pub fn schemas(&self) -> Vec<CommandSchema> {
        let mut commands: Vec<&Command> = self.commands.values().collect();
        commands.sort_by_key(|c| c.order);
        commands.into_iter().map(|c| c.schema.clone()).collect()
    }
}

impl Host {
    /// Loads plugin `name` (compiling it if the cache lacks it) and returns it.
    pub fn load(&self, name: &str) -> Result<Arc<LoadedPlugin>> {
        self.core.load(name)
    }

    /// Loads every installed plugin, so first calls and schema lookups skip that (what a
    /// node does when it starts or reloads); a plugin that cannot load is reported and skipped,
    /// and its calls say why. Returns how many loaded.
    pub fn warm(&self) -> Result<usize> {
        let mut loaded = 0;
        for record in self.plugins()? {
            match self.core.load(&record.name) {
                Ok(_) => loaded += 1,
                Err(e) => tracing::warn!("plugin `{}` did not load: {e:#}", record.name),
            }
        }
        Ok(loaded)
    }
}

impl HostCore {
    /// Plugin `name`, loaded from the registry unless it is loaded already.
    pub(super) fn load(&self, name: &str) -> Result<Arc<LoadedPlugin>> {
        if let Some(p) = lock(&self.loaded).get(name) {
            return Ok(p.clone());
        }
        let record = registry::get(&self.db(), name)?
            .with_context(|| format!("plugin `{name}` is not installed; see `continuum plugin list`"))?;
        // The plugin's WIT is parsed on a second thread while its component loads: they share
        // nothing, and a command-line process waits for both before its one call.
        let (component, world) = std::thread::scope(|scope| {
            let world = scope.spawn(|| record.wit.resolve(Some(&record.world)));
            let component = self.component_of(name, &record);
            (component, world.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        let (component, world): (Component, WitWorld) = (component?, world?);
        let mut plugin = self.prepare(name, name, &record.digest, &component, &world, &record.approved)?;
        plugin.access = record.access;
        plugin.dirs = record.dirs;
        let plugin = Arc::new(plugin);
        lock(&self.loaded).insert(name.to_string(), plugin.clone());
        Ok(plugin)
    }

    /// The compiled component of installed plugin `name`: from the AOT cache, or compiled from
    /// the stored component (checked against its digest) and cached.
    fn component_of(&self, name: &str, record: &registry::PluginRecord) -> Result<Component> {
        if let Some(c) = self.cache.get(&self.engine, &record.digest) {
            return Ok(c);
        }
        let path = self.data.components().join(format!("{}.wasm", record.digest));
        let bytes = std::fs::read(&path).with_context(|| {
            format!("the component of plugin `{name}` is missing ({}); re-install the plugin", path.display())
        })?;
        if digest(&bytes) != record.digest {
            bail!("the stored component of plugin `{name}` does not match its digest; re-install the plugin");
        }
        let c = self.compile(&bytes, name)?;
        self.cache.put(&record.digest, &c)?;
        Ok(c)
    }

    /// Reflects `component` (described by `world`) into a runnable plugin named `name` whose
    /// calls use the store and events of `namespace`, linked with only the `approved` host
    /// interfaces; refuses if it requests capabilities outside `approved`.
    pub fn prepare(
        &self,
        name: &str,
        namespace: &str,
        digest: &str,
        component: &Component,
        world: &WitWorld,
        approved: &[String],
    ) -> Result<LoadedPlugin> {
        let imports: Vec<String> =
            component.component_type().imports(&self.engine).map(|(n, _)| n.to_string()).collect();
        let missing: Vec<String> =
            host_api::requested(&imports).into_iter().filter(|c| !approved.contains(c)).collect();
        if !missing.is_empty() {
            return Err(NotApproved { plugin: name.to_string(), missing, installed: true }.into());
        }
        self.prepare_confined(name, namespace, digest, component, world, approved)
    }

    /// Like [`HostCore::prepare`], for a proof run: instead of refusing, the host interfaces it
    /// requests outside `approved` are linked so that any use of them fails with an error naming
    /// the capability ([`host_api::add_unapproved_to_linker`]).
    pub fn prepare_confined(
        &self,
        name: &str,
        namespace: &str,
        digest: &str,
        component: &Component,
        world: &WitWorld,
        approved: &[String],
    ) -> Result<LoadedPlugin> {
        let commands = reflect::reflect(&self.engine, component, name, Some(world))?
            .into_iter()
            .map(|c| (c.schema.name.clone(), c))
            .collect();
        let mut linker = Linker::new(&self.engine);
        host_api::add_to_linker(&mut linker, approved)?;
        host_api::add_unapproved_to_linker(&mut linker, &self.engine, component, approved)?;
        let pre = linker.instantiate_pre(component).map_err(|e| {
            anyhow::anyhow!("the component needs imports this host does not provide: {e:#}; a command may import only WASI 0.2 and continuum:host interfaces")
        })?;
        Ok(LoadedPlugin {
            name: name.to_string(),
            namespace: namespace.to_string(),
            digest: digest.to_string(),
            limits: self.config.limits_for(name),
            models: Arc::new(self.config.model_policy(name)),
            access: BTreeMap::new(),
            dirs: Vec::new(),
            pre,
            commands,
        })
    }

    /// The component `digest`, compiled from `bytes` unless the cache has it (the caller
    /// decides whether to cache a new compilation).
    pub fn component(&self, digest: &str, bytes: &[u8], label: &str) -> Result<Component> {
        match self.cache.get(&self.engine, digest) {
            Some(c) => Ok(c),
            None => self.compile(bytes, label),
        }
    }

    /// Compiles `bytes` (named `label` in errors), counting the compilation.
    fn compile(&self, bytes: &[u8], label: &str) -> Result<Component> {
        self.compilations.fetch_add(1, Ordering::Relaxed);
        engine::compile(&self.engine, bytes, label)
    }

    /// How many components this host has compiled (not loaded from the cache).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// Forgets the loaded copy of plugin `name` (after an install or removal).
    pub fn unload(&self, name: &str) {
        lock(&self.loaded).remove(name);
    }

    /// Picks up what another process changed in the data directory (plugins installed, removed
    /// or re-approved; grants revoked): re-reads the grant watermarks and forgets every loaded
    /// plugin, so the next call loads the registry's current version (from the AOT cache).
    pub fn reload(&self) -> Result<()> {
        self.grants.reload(&self.db())?;
        lock(&self.loaded).clear();
        Ok(())
    }
}
