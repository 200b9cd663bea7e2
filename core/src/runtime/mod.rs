//! The runtime core: loads plugins (from the AOT cache when possible) and runs their commands,
//! each call in a fresh sandboxed instance. A [`Host`] is a handle on the [`HostCore`] of one
//! data directory; what it does is split by concern:
//!
//! - `load`: installed plugins made runnable (cache or compile, reflect, link), and the checks
//!   a component and a plugin name pass before install;
//! - `catalog`: the installed plugins and their commands as a caller sees them, and removal;
//! - `call`: running one call in a fresh instance under the plugin's limits;
//! - `audit`: the event-log entries of a call, and releasing its result once they commit;
//! - `outcome`: what a call produced ([`CallReport`]) or why it failed ([`CallError`]);
//! - [`watch`]: a call tree's live events and cancel switch (`live_output` reports its
//!   stdout/stderr as written).

mod audit;
mod call;
mod catalog;
mod live_output;
mod load;
pub mod metrics;
mod outcome;
pub mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use ed25519_dalek::SigningKey;
use rusqlite::Connection;
use wasmtime::Engine;

pub use audit::AuditedCall;
pub use call::CALL_TIME_LIMIT;
pub use load::{check_component_bytes, check_plugin_name, digest, LoadedPlugin, MAX_COMPONENT_BYTES};
pub use outcome::{CallError, CallReport, Outcome};

use crate::call_pool::CallPool;
use crate::config::Config;
use crate::engine::{self, CompiledCache};
use crate::eventlog::{Acknowledge, EventLog};
use crate::grants::Grants;
use crate::keys::{public_hex, KeyStore};
use crate::paths::DataDir;
use crate::sync::lock;

/// The shared core behind a [`Host`]: engine, database, loaded plugins.
pub struct HostCore {
    engine: Engine,
    data: DataDir,
    config: Config,
    cache: CompiledCache,
    db: Arc<Mutex<Connection>>,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    compilations: AtomicU64,
    node_key: SigningKey,
    grants: Grants,
    log: EventLog,
    audit: AtomicBool,
    engines: continuum_gpu::Engines,
    calls: CallPool,
    metrics: metrics::CallMetrics,
}

/// The calls a host will run, which sizes its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// Many at once: a node, a benchmark, a test host.
    Many,
    /// One at a time (with its nested calls): a command-line process.
    OneAtATime,
}

/// A Continuum host over one data directory.
#[derive(Clone)]
pub struct Host {
    core: Arc<HostCore>,
}

impl Host {
    /// Opens the host over `data` to serve many callers: reads `continuum.toml`, opens the
    /// database, builds the engine.
    pub fn open(data: DataDir) -> Result<Self> {
        Self::open_for(data, Calls::Many)
    }

    /// Opens the host over `data` for the calls `calls` says it will run.
    pub fn open_for(data: DataDir, calls: Calls) -> Result<Self> {
        let config = Config::load(&data.config_file())?;
        let concurrency = match calls {
            Calls::Many => engine::Concurrency::Serving,
            Calls::OneAtATime => engine::Concurrency::OneCall { levels: config.default_limits().max_call_depth + 1 },
        };
        let acknowledge = match calls {
            Calls::Many => Acknowledge::FromJournal,
            Calls::OneAtATime => Acknowledge::OnCommit,
        };
        // The engine is built on a second thread while this one opens the database and the
        // log: they share nothing, and a command-line process waits for both before its call.
        let (engine, opened) = std::thread::scope(|scope| {
            let engine = scope.spawn(|| engine::build(config.max_memory_mib(), concurrency));
            let opened = (|| -> Result<_> {
                let node_key = KeyStore::new(data.root().join("keys")).node()?;
                let mut db = crate::db::open(&data.database())?;
                crate::db::migrate(&mut db, &crate::SCHEMAS)?;
                let grants = Grants::load(&db, node_key.verifying_key())?;
                let log = EventLog::open(&data.database(), node_key.clone(), config.log.durability, acknowledge)?;
                Ok((node_key, db, grants, log))
            })();
            (engine.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), opened)
        });
        let (engine, (node_key, db, grants, log)) = (engine?, opened?);
        let db = Arc::new(Mutex::new(db));
        let cache = CompiledCache::new(&engine, &data.compiled(), db.clone());
        // Models load on first use; opening the host costs nothing for a host that never infers.
        let engines =
            continuum_gpu::Engines::new(continuum_gpu::Catalog::new(data.models()), config.inference.engine_config());
        Ok(Host {
            core: Arc::new(HostCore {
                engine,
                data,
                config,
                cache,
                db,
                loaded: Mutex::new(HashMap::new()),
                compilations: AtomicU64::new(0),
                node_key,
                grants,
                log,
                audit: AtomicBool::new(true),
                engines,
                calls: CallPool::new(),
                metrics: Default::default(),
            }),
        })
    }

    /// The shared core (for host interfaces and benchmarks).
    pub fn core(&self) -> &Arc<HostCore> {
        &self.core
    }

    /// The node's identity (grant issuer) public key, hex.
    pub fn node_id(&self) -> String {
        public_hex(&self.core.node_key.verifying_key())
    }

    /// Runs blocking host work (SQLite, a call) for async code on the host's call pool and
    /// awaits its result.
    pub async fn offload<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        self.core.calls.run(work).await
    }
}

impl HostCore {
    /// The node's signing key: its identity in grants, the event log and on the grid.
    pub fn node_key(&self) -> &SigningKey {
        &self.node_key
    }

    /// The node's grant state: epoch watermarks and the bounded cache of verified tokens.
    pub fn grants(&self) -> &Grants {
        &self.grants
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

    /// The database once every log entry this host queued is committed: what a reader of the
    /// event log takes, to see every entry acknowledged so far (an audited call is acknowledged
    /// once its entry is in the journal, before the writer moves it into the database).
    pub fn log_db(&self) -> Result<MutexGuard<'_, Connection>> {
        self.log.settle()?;
        Ok(self.db())
    }

    /// The node's event log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled cache.
    pub fn cache(&self) -> &CompiledCache {
        &self.cache
    }

    /// The data directory.
    pub fn data(&self) -> &DataDir {
        &self.data
    }
}
