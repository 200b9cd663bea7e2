//! The installed plugins and their commands, as a caller sees them: listing and looking up
//! (a command the caller may not call reads as one that does not exist), and removing a plugin.

use anyhow::{Context, Result};
use serde_json::json;

use super::{CallError, Host, HostCore};
use crate::access::{self, Caller};
use crate::reflect::CommandSchema;
use crate::registry::{self, PluginRecord};
use crate::sync::lock;

impl Host {
    /// Removes plugin `name`; with `purge`, also everything it owns ([`registry::purge`]: its
    /// store entries and training heads). Returns the removed record.
    pub fn remove(&self, name: &str, purge: bool) -> Result<PluginRecord> {
        let core = &self.core;
        let mut db = core.db();
        let record = registry::get(&db, name)?
            .with_context(|| format!("plugin `{name}` is not installed; see `continuum plugin list`"))?;
        let tx = db.transaction()?;
        registry::remove(&tx, name)?;
        if purge {
            registry::purge(&tx, name)?;
        }
        tx.commit()?;
        let in_use = registry::digest_in_use(&db, &record.digest)?;
        drop(db); // the cache records its files in the same connection
        if !in_use {
            let _ = std::fs::remove_file(core.data.components().join(format!("{}.wasm", record.digest)));
            core.cache.evict(&record.digest);
        }
        lock(&core.loaded).remove(name);
        core.log.append("plugin.removed", name, &json!({ "digest": record.digest, "purged-store": purge }))?;
        Ok(record)
    }

    /// Every installed plugin.
    pub fn plugins(&self) -> Result<Vec<PluginRecord>> {
        registry::list(&self.core.db())
    }

    /// Installed plugin `name`.
    pub fn plugin(&self, name: &str) -> Result<PluginRecord> {
        registry::get(&self.core.db(), name)?
            .with_context(|| format!("plugin `{name}` is not installed; see `continuum plugin list`"))
    }

    /// Every command of every installed plugin (from the registry; nothing is compiled).
    pub fn commands(&self) -> Result<Vec<CommandSchema>> {
        self.commands_for(&Caller::Owner)
    }

    /// The commands `caller` may call — exactly those, so listed equals callable.
    pub fn commands_for(&self, caller: &Caller) -> Result<Vec<CommandSchema>> {
        Ok(self
            .plugins()?
            .into_iter()
            .flat_map(|p| {
                let access = p.access;
                p.commands
                    .into_iter()
                    .filter(move |c| access::check(caller, &c.name, access::level(&access, &c.name)).is_ok())
            })
            .collect())
    }

    /// The schema of command `name`.
    pub fn command(&self, name: &str) -> Result<CommandSchema, CallError> {
        self.core.find_schema(name)
    }

    /// The schema of command `name` if its plugin is loaded: from memory only, never blocking
    /// (async callers use it before falling back to [`Host::command`] on the call pool).
    pub fn loaded_schema(&self, name: &str) -> Option<CommandSchema> {
        let plugin = name.split('/').next().unwrap_or(name);
        let loaded = lock(&self.core.loaded).get(plugin).cloned()?;
        loaded.command(name).map(|c| c.schema.clone())
    }

    /// The schema of command `name` as `caller` sees it: a command the caller may not call is
    /// answered exactly as one that does not exist.
    pub fn command_for(&self, caller: &Caller, name: &str) -> Result<CommandSchema, CallError> {
        if *caller == Caller::Owner {
            return self.command(name);
        }
        let visible = self
            .commands_for(caller)
            .map_err(|e| CallError::Host { command: name.into(), message: format!("{e:#}") })?;
        visible.into_iter().find(|c| c.name == name).ok_or_else(|| self.core.unknown(caller, name))
    }
}

impl HostCore {
    /// The error for a command `caller` cannot see: its hint names only the plugin's commands
    /// the caller may call, so "absent" and "not yours" read the same to a stranger.
    pub(super) fn unknown(&self, caller: &Caller, name: &str) -> CallError {
        let plugin = name.split('/').next().unwrap_or(name);
        let visible: Vec<String> = match registry::get(&self.db(), plugin) {
            Ok(Some(p)) => p
                .commands
                .iter()
                .filter(|c| access::check(caller, &c.name, access::level(&p.access, &c.name)).is_ok())
                .map(|c| c.name.clone())
                .collect(),
            _ => vec![],
        };
        let hint = if visible.is_empty() {
            format!("no plugin `{plugin}` is installed; `continuum commands` lists what is")
        } else {
            format!("plugin `{plugin}` has: {}", visible.join(", "))
        };
        CallError::UnknownCommand { name: name.to_string(), hint }
    }

    /// The schema of command `name`, from its loaded plugin or else from the registry.
    fn find_schema(&self, name: &str) -> Result<CommandSchema, CallError> {
        let plugin = name.split('/').next().unwrap_or(name);
        // A loaded plugin's schemas are the ones its record holds, reflected the same way.
        if let Some(loaded) = lock(&self.loaded).get(plugin) {
            return loaded.command(name).map(|c| c.schema.clone()).ok_or_else(|| self.unknown(&Caller::Owner, name));
        }
        let record = registry::get(&self.db(), plugin)
            .map_err(|e| CallError::Host { command: name.into(), message: format!("{e:#}") })?;
        record
            .and_then(|r| r.commands.into_iter().find(|c| c.name == name))
            .ok_or_else(|| self.unknown(&Caller::Owner, name))
    }
}
