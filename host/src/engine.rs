//! The wasmtime engine: its configuration, the epoch ticker behind call deadlines, and the
//! on-disk cache of precompiled components (each file checked against the digest the
//! database keeps for it before it is loaded).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::sandbox::EPOCH_TICK;

/// Bytes of each memory and table slot kept resident between instances.
const KEEP_RESIDENT: usize = 4 << 20;

/// Concurrent instances the pooling allocator holds slots for (nested calls count).
const POOL_INSTANCES: u32 = 256;

/// The BLAKE3 digest of every precompiled file this host wrote, by file name. Kept in the
/// database, not beside the files: precompiled code is loaded as trusted machine code, so a
/// file that is not byte for byte what the host wrote must never load.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS compiled_files (
    file   TEXT PRIMARY KEY,
    blake3 TEXT NOT NULL
) STRICT;
";

/// Builds the engine: component model, epoch interruption for deadlines, and a pooling
/// allocator whose memory slots are `max_memory_mib` large (the largest per-plugin cap).
pub fn build(max_memory_mib: u64) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .max_memory_size((max_memory_mib as usize) << 20)
        // Guests built by componentize-py/-js have many core instances and large tables.
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(32)
        .table_elements(20_000)
        .max_core_instance_size(1 << 20)
        .max_component_instance_size(1 << 20)
        // Reset a reused slot by rewriting only its dirty pages (PAGEMAP_SCAN, Linux ≥ 6.7)
        // instead of madvise + page faults: most of a fresh instance's cost otherwise.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        // Newer WIT types of the mapping table: map<K, V> and list<T, N>.
        .wasm_component_model_map(true)
        .wasm_component_model_fixed_length_lists(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine =
        Engine::new(&config).map_err(|e| anyhow::Error::from(e).context("cannot configure the WebAssembly engine"))?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Compiles component bytes, showing a spinner on a terminal (quiet when stderr is piped).
pub fn compile(engine: &Engine, bytes: &[u8], label: &str) -> Result<Component> {
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_message(format!("compiling {label} ({:.1} MB)", bytes.len() as f64 / 1e6));
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let started = Instant::now();
    let result = Component::new(engine, bytes);
    spinner.finish_and_clear();
    tracing::debug!("compiled {label} in {:?}", started.elapsed());
    result.map_err(|e| {
        let e = anyhow::Error::from(e);
        if format!("{e:#}").contains("requires the component model async feature") {
            // Async types only appear in async interfaces, which commands cannot have.
            anyhow::anyhow!(
                "the component uses async types (stream, future or async functions); futures and streams \
                 cannot be command parameters or results — export synchronous functions over plain data"
            )
        } else {
            anyhow::anyhow!("the component failed to validate or compile: {e:#}")
        }
    })
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("continuum-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawning the epoch thread");
}

/// The precompiled components of one engine configuration, in one folder. Each file is
/// written 0600 whatever the umask, and its BLAKE3 digest is recorded in the data directory's
/// database ([`SCHEMA`]); a file whose digest does not match the record (changed on disk, or
/// written before digests were kept) is discarded with a warning, and the caller recompiles
/// from the verified component.
pub struct CompiledCache {
    dir: PathBuf,
    compat: String,
    /// The database that keeps the files' digests: the data directory's.
    database: PathBuf,
    /// A connection to it, opened on first use.
    db: Mutex<Option<Connection>>,
}

impl CompiledCache {
    /// The cache in `dir`, a data directory's `compiled` folder, for `engine`'s compatibility
    /// hash; the digests of its files are kept in that data directory's database.
    pub fn new(engine: &Engine, dir: &Path) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompiledCache {
            dir: dir.to_path_buf(),
            compat: format!("{:016x}", hasher.finish()),
            database: dir.parent().unwrap_or(dir).join(crate::paths::DATABASE),
            db: Mutex::new(None),
        }
    }

    fn file_name(&self, digest: &str) -> String {
        format!("{digest}-{}.cwasm", self.compat)
    }

    /// Runs `f` on the connection to the database that keeps the digests.
    fn with_db<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut slot = crate::runtime::lock(&self.db);
        let conn = match slot.take() {
            Some(conn) => conn,
            None => crate::db::open(&self.database)?,
        };
        f(slot.insert(conn))
    }

    /// Loads the precompiled component `digest` from the cache if it is there and is byte for
    /// byte the file this host wrote (its digest matches the database's record). A file that
    /// is not, or does not load, is discarded with a warning; the caller then recompiles.
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let name = self.file_name(digest);
        let path = self.dir.join(&name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("cannot read precompiled component {}: {e}; recompiling it", path.display());
                return None;
            }
        };
        let recorded = self.with_db(|db| {
            let query = "SELECT blake3 FROM compiled_files WHERE file = ?1";
            Ok(db.query_row(query, [name.as_str()], |r| r.get::<_, String>(0)).optional()?)
        });
        match recorded {
            Ok(Some(recorded)) if recorded.as_str() == blake3::hash(&bytes).to_hex().as_str() => {}
            Ok(_) => {
                tracing::warn!(
                    "precompiled component {} is not the file this host wrote (its digest does not match the \
                     one recorded in the database: it was changed on disk, or written by an older version); \
                     discarding it and recompiling from the verified component",
                    path.display()
                );
                self.evict(digest);
                return None;
            }
            Err(e) => {
                tracing::warn!(
                    "cannot check precompiled component {} against its digest: {e:#}; recompiling it",
                    path.display()
                );
                return None;
            }
        }
        // SAFETY: these bytes are, by their BLAKE3 digest, the ones `Component::serialize` of
        // this host wrote for this engine configuration (the compatibility hash is in the
        // name), and they are deserialized from memory, so the file cannot change under them.
        // A file that fails to load is discarded and rebuilt.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("discarding unusable precompiled component {}: {e:#}", path.display());
                self.evict(digest);
                None
            }
        }
    }

    /// Writes the compilation of `digest` into the cache: its digest recorded in the database
    /// first, then the file, atomically and with mode 0600.
    pub fn put(&self, digest: &str, component: &Component) -> Result<()> {
        let name = self.file_name(digest);
        let bytes = component.serialize()?;
        let hash = blake3::hash(&bytes).to_hex();
        self.with_db(|db| {
            db.execute(
                "INSERT INTO compiled_files (file, blake3) VALUES (?1, ?2)
                 ON CONFLICT(file) DO UPDATE SET blake3 = excluded.blake3",
                [name.as_str(), hash.as_str()],
            )?;
            Ok(())
        })
        .context("cannot record the digest of a precompiled component")?;
        crate::paths::write_private(&self.dir.join(&name), &bytes)
    }

    /// Removes the cached compilation of `digest` and its recorded digest.
    pub fn evict(&self, digest: &str) {
        let name = self.file_name(digest);
        let _ = std::fs::remove_file(self.dir.join(&name));
        let _ = self.with_db(|db| {
            db.execute("DELETE FROM compiled_files WHERE file = ?1", [name.as_str()])?;
            Ok(())
        });
    }
}
