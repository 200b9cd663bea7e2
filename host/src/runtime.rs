//! The runtime core: installs plugins, loads them (from the AOT cache when possible) and runs
//! commands, each call in a fresh sandboxed instance.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use rusqlite::Connection;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtx;

use crate::access::{self, Access, Caller};
use crate::alloy::custody::sha256_hex;
use crate::call_pool::CallPool;
use crate::config::Config;
use crate::engine::{self, CompiledCache};
use crate::eventlog::{EventLog, PendingCommit};
use crate::grants::{GrantError, Grants};
use crate::host_api::commands::Nesting;
use crate::host_api::{self, CallContext, CallState, NotApproved};
use crate::keys::{parse_public, public_hex, KeyStore};
use crate::paths::DataDir;
use crate::reflect::wit_source::WitWorld;
use crate::reflect::{self, Command, CommandSchema, Outcome};
use crate::registry::{self, PluginRecord};
use crate::sandbox::{self, LimitHit, Limits, MemoryGuard};

/// Largest component accepted for install.
pub const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// Why a call did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No installed command has this name.
    #[error("unknown command `{name}`; {hint}")]
    UnknownCommand { name: String, hint: String },
    /// The parameters do not fit the command's schema (checked before the plugin runs).
    #[error("{command}: {message}")]
    InvalidParams { command: String, message: String },
    /// The command returned the error case of its result.
    #[error("{command} returned an error: {error}")]
    CommandFailed { command: String, error: Value },
    /// The call broke a sandbox limit and was stopped.
    #[error("{command} was stopped: {limit}{}", fix_hint(.plugin, .limit))]
    Limit { command: String, plugin: String, limit: LimitHit },
    /// The plugin trapped (crashed).
    #[error("{command} trapped: {message}")]
    Trapped { command: String, message: String },
    /// The caller may not call this command (no grant confers it, or it is owner-only).
    #[error("{command}: permission denied: {reason}")]
    Denied { command: String, reason: String },
    /// `commands.call` nested deeper than allowed.
    #[error("{command}: nested calls are limited to {max} levels (max-call-depth)")]
    DepthExceeded { command: String, max: u32 },
    /// The host could not run the call.
    #[error("{command}: {message}")]
    Host { command: String, message: String },
}

fn fix_hint(plugin: &str, limit: &LimitHit) -> String {
    match limit.setting() {
        Some(key) => {
            format!("; if the command needs more, raise it under [plugins.{plugin}.limits] {key} in continuum.toml")
        }
        None => String::new(),
    }
}

impl CallError {
    /// A short name of the outcome, for the audit log.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::UnknownCommand { .. } => "unknown-command",
            CallError::InvalidParams { .. } => "invalid-params",
            CallError::CommandFailed { .. } => "command-error",
            CallError::Limit { limit, .. } => match limit {
                LimitHit::Deadline { .. } => "deadline",
                LimitHit::Memory { .. } => "memory-limit",
                LimitHit::Output { .. } => "output-limit",
                LimitHit::Transfer { .. } => "transfer-limit",
                LimitHit::Stack => "stack-overflow",
                LimitHit::HostCalls { .. } => "host-call-limit",
            },
            CallError::Trapped { .. } => "trap",
            CallError::Denied { .. } => "denied",
            CallError::DepthExceeded { .. } => "depth-exceeded",
            CallError::Host { .. } => "host-error",
        }
    }

    /// The process exit code the CLI uses for this error.
    pub fn exit_code(&self) -> i32 {
        outcome_exit_code(self.outcome())
    }
}

/// The CLI exit code for a call outcome ([`CallError::outcome`], also the HTTP API's error code).
pub fn outcome_exit_code(outcome: &str) -> i32 {
    match outcome {
        "unknown-command" | "invalid-params" => 2,
        "command-error" => 3,
        "deadline" | "memory-limit" | "output-limit" | "transfer-limit" | "stack-overflow" | "host-call-limit"
        | "trap" | "depth-exceeded" => 4,
        "denied" => 5,
        _ => 1,
    }
}

/// The outer deadline of a top-level call; each plugin's own timeout is far shorter.
pub const CALL_TIME_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// Everything a call produced: its result and the plugin's captured stdout/stderr.
#[derive(Debug)]
pub struct CallReport {
    /// The JSON result, or why there is none.
    pub result: Result<Value, CallError>,
    /// What the plugin wrote to stdout (raw; filter before showing on a terminal).
    pub stdout: Vec<u8>,
    /// What the plugin wrote to stderr (raw).
    pub stderr: Vec<u8>,
    /// Wall-clock time of the call.
    pub elapsed: Duration,
}

impl CallReport {
    /// A report of `result` with no output yet and no time taken.
    pub fn of(result: Result<Value, CallError>) -> CallReport {
        CallReport { result, stdout: Vec::new(), stderr: Vec::new(), elapsed: Duration::ZERO }
    }
}

/// What a call's audit entries record of its input (JSON text).
struct InputDigest {
    hash: String,
    bytes: usize,
}

/// A finished call whose audit entry is queued; its result may be released only once that
/// entry has committed (a call that cannot be audited has its result withheld).
#[must_use = "a call's result is released only once its audit entry has committed"]
pub struct AuditedCall {
    command: String,
    report: CallReport,
    /// The audit entry's commit (none when auditing is off, or the call failed before running).
    commit: Option<Result<PendingCommit>>,
}

impl AuditedCall {
    /// Blocks until the audit entry has committed, then gives the report.
    pub fn wait(self) -> CallReport {
        let committed = self.commit.map(|c| c.and_then(PendingCommit::wait));
        Self::released(self.command, self.report, committed)
    }

    /// Awaits the audit entry's commit on the async side, then gives the report.
    pub async fn committed(self) -> CallReport {
        let committed = match self.commit {
            Some(Ok(pending)) => Some(pending.committed().await),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        Self::released(self.command, self.report, committed)
    }

    fn released(command: String, mut report: CallReport, committed: Option<Result<u64>>) -> CallReport {
        if let Some(Err(e)) = committed {
            report.result = Err(CallError::Host {
                command,
                message: format!(
                    "the call ran but its audit entry could not be committed, so its result is withheld: {e:#}"
                ),
            });
        }
        report
    }
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
    /// Access level per command.
    pub access: BTreeMap<String, Access>,
    pre: InstancePre<CallState>,
    commands: HashMap<String, Command>,
}

/// The shared core behind a [`Host`]: engine, database, loaded plugins.
pub struct HostCore {
    engine: Engine,
    data: DataDir,
    config: Config,
    cache: CompiledCache,
    db: Mutex<Connection>,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    compilations: AtomicU64,
    node_key: SigningKey,
    grants: Grants,
    log: EventLog,
    audit: AtomicBool,
    engines: continuum_gpu::Engines,
    token_sink: RwLock<Option<TokenSink>>,
    calls: CallPool,
}

/// Receives each generated piece as it is produced: (command, piece). The CLI shows them live.
pub type TokenSink = Arc<dyn Fn(&str, &continuum_gpu::textstream::Piece) + Send + Sync>;

/// A Continuum host over one data directory.
#[derive(Clone)]
pub struct Host {
    core: Arc<HostCore>,
}

/// Locks `m`, recovering from a panic in another holder (the data stays consistent: every
/// critical section here is a single insert, lookup or SQLite call).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

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
            "{} is a core WebAssembly module, not a component; build for the wasm32-wasip2 target \
             (which emits components) or wrap it with `wasm-tools component new`",
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
    /// Opens the host over `data`: reads `continuum.toml`, opens the database, builds the engine.
    pub fn open(data: DataDir) -> Result<Self> {
        let config = Config::load(&data.config_file())?;
        let engine = engine::build(config.max_memory_mib())?;
        let mut db = crate::db::open(&data.database())?;
        crate::db::migrate(&mut db, &crate::SCHEMAS)?;
        let cache = CompiledCache::new(&engine, &data.compiled());
        let node_key = KeyStore::new(data.root().join("keys")).node()?;
        let grants = Grants::load(&db, node_key.verifying_key())?;
        let log = EventLog::open(&data.database(), node_key.clone(), config.log.durability)?;
        // Models load on first use; opening the host costs nothing for a host that never infers.
        let engines =
            continuum_gpu::Engines::new(continuum_gpu::Catalog::new(data.models()), config.inference.engine_config());
        Ok(Host {
            core: Arc::new(HostCore {
                engine,
                data,
                config,
                cache,
                db: Mutex::new(db),
                loaded: Mutex::new(HashMap::new()),
                compilations: AtomicU64::new(0),
                node_key,
                grants,
                log,
                audit: AtomicBool::new(true),
                engines,
                token_sink: RwLock::new(None),
                calls: CallPool::new(),
            }),
        })
    }

    /// The shared core (for host interfaces and benchmarks).
    pub fn core(&self) -> &Arc<HostCore> {
        &self.core
    }

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
        if !registry::digest_in_use(&db, &record.digest)? {
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

    /// The caller presenting grant `token` with key `presenter` (hex), after full verification:
    /// issuer, signatures, key binding, expiry, epoch.
    pub fn caller_presenting(&self, token: &str, presenter: &str) -> Result<Caller, GrantError> {
        let grant = self.core.grants.verify(&self.core.db(), token, presenter, crate::now_secs())?;
        Ok(Caller::Key { key: presenter.to_string(), grant: Some(grant) })
    }

    /// A caller for `--as`: a grant token (presented by the key it is bound to) or a bare
    /// public key (no grant).
    pub fn caller_for(&self, spec: &str) -> Result<Caller> {
        if spec.starts_with(crate::grants::PREFIX) {
            let holder = crate::grants::verify_signed(spec, self.core.grants.owner())?.holder;
            return Ok(self.caller_presenting(spec, &holder)?);
        }
        let key = public_hex(&parse_public(spec)?);
        if self.core.grants.watermark(&key).is_some_and(|(_, revoked)| revoked) {
            return Ok(Caller::Blocked { key });
        }
        Ok(Caller::Key { key, grant: None })
    }

    /// Issues a grant of `caps` to `grantee` until `expires`, superseding earlier grants to it.
    pub fn issue_grant(&self, grantee: &str, caps: &[String], expires: i64) -> Result<String> {
        if caps.is_empty() {
            anyhow::bail!("a grant needs at least one --cap (to take grants away, use `continuum grant revoke`)");
        }
        let grantee = parse_public(grantee)?;
        let token = self.core.grants.issue(&self.core.db(), &self.core.node_key, &grantee, caps, expires)?;
        let epoch = self.core.grants.watermark(&public_hex(&grantee)).map_or(0, |(e, _)| e);
        let payload = json!({ "grantee": public_hex(&grantee), "caps": caps, "expires": expires, "epoch": epoch });
        self.core.log.append("grant.issued", &public_hex(&grantee), &payload)?;
        Ok(token)
    }

    /// Revokes every grant to `grantee`; returns the new epoch.
    pub fn revoke_grants(&self, grantee: &str) -> Result<u64> {
        let grantee = parse_public(grantee)?;
        let epoch = self.core.grants.revoke(&self.core.db(), &self.core.node_key, &grantee)?;
        self.core.log.append("grant.revoked", &public_hex(&grantee), &json!({ "epoch": epoch }))?;
        Ok(epoch)
    }

    /// Trusts publisher `public_key` as `name`, pre-approving `approves`; logged.
    pub fn trust_add(&self, public_key: &str, name: &str, approves: &[String]) -> Result<crate::trust::Trusted> {
        let t = crate::trust::add(&self.core.db(), public_key, name, approves)?;
        self.core.log.append("trust.added", &t.public_key, &json!({ "name": t.name, "approves": t.approves }))?;
        Ok(t)
    }

    /// Stops trusting a publisher; logged.
    pub fn trust_remove(&self, key_or_name: &str) -> Result<crate::trust::Trusted> {
        let t = crate::trust::remove(&self.core.db(), key_or_name)?;
        self.core.log.append("trust.removed", &t.public_key, &json!({ "name": t.name }))?;
        Ok(t)
    }

    /// The node's identity (grant issuer) public key, hex.
    pub fn node_id(&self) -> String {
        public_hex(&self.core.node_key.verifying_key())
    }

    /// The schema of command `name`.
    pub fn command(&self, name: &str) -> Result<CommandSchema, CallError> {
        self.core.find_schema(name)
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

    /// Calls command `name` with JSON `params` as `caller`.
    pub fn call(&self, caller: &Caller, name: &str, params: &Value) -> CallReport {
        self.core.call_queued(caller, name, params, 0, Instant::now() + CALL_TIME_LIMIT).wait()
    }

    /// Calls like [`Host::call`] from async code: the call runs on the call pool, and its
    /// audit commit is awaited without holding a thread.
    pub async fn call_async(&self, caller: Caller, name: String, params: Value) -> CallReport {
        let (host, command) = (self.clone(), name.clone());
        let deadline = Instant::now() + CALL_TIME_LIMIT;
        let queued = self.offload(move || host.core.call_queued(&caller, &name, &params, 0, deadline)).await;
        match queued {
            Ok(call) => call.committed().await,
            Err(e) => CallReport::of(Err(CallError::Host { command, message: format!("{e:#}") })),
        }
    }

    /// Runs blocking host work (SQLite, a call) for async code on the host's call pool and
    /// awaits its result.
    pub async fn offload<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        self.core.calls.run(work).await
    }
}

impl HostCore {
    /// The node's signing key: its identity in grants, the event log and on the grid.
    pub(crate) fn node_key(&self) -> &SigningKey {
        &self.node_key
    }

    /// The node's grant state: epoch watermarks and the bounded cache of verified tokens.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Sets (or clears) the receiver of generated pieces.
    pub fn set_token_sink(&self, sink: Option<TokenSink>) {
        *self.token_sink.write().unwrap_or_else(|p| p.into_inner()) = sink;
    }

    /// Hands a generated piece to the token sink, if one is set.
    pub fn observe_token(&self, command: &str, piece: &continuum_gpu::textstream::Piece) {
        if let Some(sink) = self.token_sink.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            sink(command, piece);
        }
    }

    /// The resident models.
    pub fn engines(&self) -> &continuum_gpu::Engines {
        &self.engines
    }

    /// The operator's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database connection (one per host; SQLite handles other processes).
    pub fn db(&self) -> MutexGuard<'_, Connection> {
        lock(&self.db)
    }

    /// The node's event log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn load(&self, name: &str) -> Result<Arc<LoadedPlugin>> {
        if let Some(p) = lock(&self.loaded).get(name) {
            return Ok(p.clone());
        }
        let record = registry::get(&self.db(), name)?
            .with_context(|| format!("plugin `{name}` is not installed; see `continuum plugin list`"))?;
        let component = match self.cache.get(&self.engine, &record.digest) {
            Some(c) => c,
            None => {
                let path = self.data.components().join(format!("{}.wasm", record.digest));
                let bytes = std::fs::read(&path).with_context(|| {
                    format!("the component of plugin `{name}` is missing ({}); re-install the plugin", path.display())
                })?;
                if digest(&bytes) != record.digest {
                    bail!("the stored component of plugin `{name}` does not match its digest; re-install the plugin");
                }
                let c = self.compile(&bytes, name)?;
                self.cache.put(&record.digest, &c)?;
                c
            }
        };
        let world: WitWorld = record.wit.resolve(Some(&record.world))?;
        let mut plugin = self.prepare(name, name, &record.digest, &component, &world, &record.approved)?;
        plugin.access = record.access;
        let plugin = Arc::new(plugin);
        lock(&self.loaded).insert(name.to_string(), plugin.clone());
        Ok(plugin)
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
            access: BTreeMap::new(),
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

    fn compile(&self, bytes: &[u8], label: &str) -> Result<Component> {
        self.compilations.fetch_add(1, Ordering::Relaxed);
        engine::compile(&self.engine, bytes, label)
    }

    /// How many components this host has compiled (not loaded from the cache).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// The compiled cache.
    pub fn cache(&self) -> &CompiledCache {
        &self.cache
    }

    /// The data directory.
    pub fn data(&self) -> &DataDir {
        &self.data
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

    /// The error for a command `caller` cannot see: its hint names only the plugin's commands
    /// the caller may call, so "absent" and "not yours" read the same to a stranger.
    fn unknown(&self, caller: &Caller, name: &str) -> CallError {
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

    /// Runs a call nested in another (`commands.call`) where `nesting` places it — how deep, by
    /// when, sharing the budgets of its call tree — and audits it: a `call.invoked` entry
    /// before, a `call.completed` or `call.failed` entry committed before the result is returned
    /// (a result whose audit cannot be committed is withheld).
    pub fn call_nested(self: &Arc<Self>, caller: &Caller, name: &str, params: &Value, nesting: &Nesting) -> CallReport {
        self.call_in(caller, name, params, nesting).wait()
    }

    /// Runs a call tree of its own (`depth` levels down, finishing by `deadline`, with fresh
    /// budgets), audited like [`HostCore::call_nested`], but returns as soon as its audit entry
    /// is queued: the thread is free for the next call while the entry's group commits.
    pub fn call_queued(
        self: &Arc<Self>,
        caller: &Caller,
        name: &str,
        params: &Value,
        depth: u32,
        deadline: Instant,
    ) -> AuditedCall {
        self.call_in(caller, name, params, &Nesting::fresh(depth, deadline))
    }

    /// Runs and audits one call at `nesting`; returns once its audit entry is queued.
    fn call_in(self: &Arc<Self>, caller: &Caller, name: &str, params: &Value, nesting: &Nesting) -> AuditedCall {
        let depth = nesting.depth;
        let started = Instant::now();
        let mut report = CallReport::of(Ok(Value::Null));
        let audit = self.audit.load(Ordering::Relaxed);
        let input = audit.then(|| {
            let text = params.to_string();
            InputDigest { hash: sha256_hex(text.as_bytes()), bytes: text.len() }
        });
        if let Some(input) = &input {
            let invoked = json!({ "caller": caller.id(), "depth": depth, "input-hash": input.hash });
            if let Err(e) = self.log.append_later("call.invoked", name, &invoked) {
                report.result = Err(CallError::Host { command: name.into(), message: format!("{e:#}") });
                return AuditedCall { command: name.into(), report, commit: None };
            }
        }
        report.result = self.run(caller, name, params, nesting, &mut report);
        report.elapsed = started.elapsed();
        let commit = input.map(|input| self.audit(caller, name, depth, &input, &report));
        AuditedCall { command: name.into(), report, commit }
    }

    /// Queues the audit entry of a finished call.
    fn audit(
        &self,
        caller: &Caller,
        name: &str,
        depth: u32,
        input: &InputDigest,
        report: &CallReport,
    ) -> Result<PendingCommit> {
        let (kind, outcome, output) = match &report.result {
            Ok(v) => ("call.completed", "ok".to_string(), v.to_string()),
            Err(CallError::CommandFailed { error, .. }) => ("call.failed", "command-error".into(), error.to_string()),
            Err(e) => ("call.failed", e.outcome().into(), e.to_string()),
        };
        let grant = match caller {
            Caller::Key { grant: Some(g), .. } => Some(g.id.clone()),
            _ => None,
        };
        let plugin = name.split('/').next().unwrap_or(name);
        let digest = crate::runtime::lock(&self.loaded).get(plugin).map(|p| p.digest.clone());
        let payload = json!({
            "caller": caller.id(),
            "grant": grant,
            "command": name,
            "plugin-digest": digest,
            "depth": depth,
            "input-hash": input.hash,
            "input-bytes": input.bytes,
            "output-hash": sha256_hex(output.as_bytes()),
            "output-bytes": output.len(),
            "duration-us": report.elapsed.as_micros() as u64,
            "outcome": outcome,
        });
        self.log.submit(kind, name, &payload)
    }

    /// Turns call auditing off or on (for `continuum bench`, to measure what it costs).
    pub fn set_audit(&self, on: bool) {
        self.audit.store(on, Ordering::Relaxed);
    }

    fn run(
        self: &Arc<Self>,
        caller: &Caller,
        name: &str,
        params: &Value,
        nesting: &Nesting,
        report: &mut CallReport,
    ) -> Result<Value, CallError> {
        access::check_installed(caller).map_err(|reason| CallError::Denied { command: name.into(), reason })?;
        let max_depth = self.config.default_limits().max_call_depth;
        if nesting.depth > max_depth {
            return Err(CallError::DepthExceeded { command: name.into(), max: max_depth });
        }
        let plugin_name = name.split('/').next().unwrap_or(name);
        let plugin = match self.load(plugin_name) {
            Ok(p) => p,
            Err(e) if registry::get(&self.db(), plugin_name).ok().flatten().is_none() => {
                tracing::debug!("{e:#}");
                return Err(self.unknown(caller, name));
            }
            Err(e) => return Err(CallError::Host { command: name.into(), message: format!("{e:#}") }),
        };
        self.execute_in(&plugin, caller, name, params, nesting, report)
    }

    /// Runs command `name` of `plugin` (loaded or not) in a fresh instance, as a call tree of
    /// its own (`depth` levels down, finishing by `deadline`, with fresh budgets).
    #[allow(clippy::too_many_arguments)]
    pub fn execute(
        self: &Arc<Self>,
        plugin: &LoadedPlugin,
        caller: &Caller,
        name: &str,
        params: &Value,
        depth: u32,
        deadline: Instant,
        report: &mut CallReport,
    ) -> Result<Value, CallError> {
        self.execute_in(plugin, caller, name, params, &Nesting::fresh(depth, deadline), report)
    }

    /// Runs command `name` of `plugin` in a fresh instance where `nesting` places it.
    fn execute_in(
        self: &Arc<Self>,
        plugin: &LoadedPlugin,
        caller: &Caller,
        name: &str,
        params: &Value,
        nesting: &Nesting,
        report: &mut CallReport,
    ) -> Result<Value, CallError> {
        let command = plugin.commands.get(name).ok_or_else(|| self.unknown(caller, name))?;
        access::check(caller, name, access::level(&plugin.access, name))
            .map_err(|reason| CallError::Denied { command: name.into(), reason })?;
        let args = command
            .params_to_vals(params)
            .map_err(|e| CallError::InvalidParams { command: name.into(), message: e.to_string() })?;

        // A nested call gets what is left of the outer call's time, if that is less.
        let remaining = nesting.deadline.saturating_duration_since(Instant::now());
        let mut limits = plugin.limits;
        limits.timeout_ms = limits.timeout_ms.min(remaining.as_millis().max(1) as u64);

        let stdout = MemoryOutputPipe::new(limits.output_bytes());
        let stderr = MemoryOutputPipe::new(limits.output_bytes());
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryGuard::new(limits.memory_bytes()),
            host_calls: (0, limits.max_host_calls),
            inference: nesting.inference.clone(),
            call: CallContext {
                core: self.clone(),
                plugin: plugin.name.clone(),
                namespace: plugin.namespace.clone(),
                command: name.to_string(),
                caller: caller.clone(),
                depth: nesting.depth,
                deadline: Instant::now() + Duration::from_millis(limits.timeout_ms),
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_hostcall_fuel(limits.copy_fuel());
        store.set_epoch_deadline(limits.deadline_ticks());
        store.epoch_deadline_trap();

        let mut results = vec![Val::Bool(false); command.result_count()];
        let ran = (|| -> wasmtime::Result<()> {
            let instance = plugin.pre.instantiate(&mut store)?;
            let func = instance
                .get_func(&mut store, command.export)
                .ok_or_else(|| wasmtime::format_err!("export of `{name}` not found in the instance"))?;
            func.call(&mut store, &args, &mut results)
        })();
        report.stdout = stdout.contents().to_vec();
        report.stderr = stderr.contents().to_vec();
        if let Err(e) = ran {
            let (name, plugin_name) = (name.to_string(), plugin.name.clone());
            let output_full = report.stdout.len().max(report.stderr.len()) >= limits.output_bytes();
            return Err(match sandbox::classify(&e, &limits, &store.data().memory, output_full) {
                Some(limit) => CallError::Limit { command: name, plugin: plugin_name, limit },
                None => CallError::Trapped { command: name, message: trap_message(&e, &report.stderr) },
            });
        }
        let outcome =
            command.outcome(&results).map_err(|e| CallError::Host { command: name.into(), message: e.to_string() })?;
        let (Outcome::Ok(value) | Outcome::Err(value)) = &outcome;
        let size = serde_json::to_vec(value).map_or(0, |v| v.len());
        if size > limits.output_bytes() {
            return Err(CallError::Limit {
                command: name.into(),
                plugin: plugin.name.clone(),
                limit: LimitHit::Output { cap_kib: limits.output_kib, what: "the result" },
            });
        }
        match outcome {
            Outcome::Ok(v) => Ok(v),
            Outcome::Err(error) => Err(CallError::CommandFailed { command: name.into(), error }),
        }
    }
}

/// One line describing a trap: wasmtime's reason, plus the guest's last stderr line (a Rust
/// guest prints its panic message there).
fn trap_message(error: &wasmtime::Error, stderr: &[u8]) -> String {
    let reason = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string().lines().next().unwrap_or_default().to_string(),
    };
    let text = crate::terminal::strip_control(&String::from_utf8_lossy(stderr));
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // A Python traceback's cause is its last `SomethingError: …` line (componentize-py then
    // panics with a generic message); otherwise the last line says it (a Rust panic message).
    let python_error = lines.iter().rev().find(|l| {
        l.split_once(": ")
            .is_some_and(|(kind, _)| (kind.ends_with("Error") || kind.ends_with("Exception")) && !kind.contains(' '))
    });
    let last = lines.iter().rev().find(|l| !l.contains("note: run with"));
    match python_error.or(last) {
        Some(line) => format!("{reason} (plugin stderr: {line})"),
        None => reason,
    }
}
