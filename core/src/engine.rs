//! The wasmtime engine: its configuration, the epoch ticker behind call deadlines, and the
//! on-disk cache of precompiled components (each file checked against the digest the
//! database keeps for it before it is loaded).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::sandbox::EPOCH_TICK;

/// Bytes of each memory and table slot kept resident between instances.
const KEEP_RESIDENT: usize = 4 << 20;

/// Concurrent instances a serving host's pooling allocator holds slots for (nested calls count).
const POOL_INSTANCES: u32 = 256;

/// Most core instances, memories and tables one component may have (componentize-py/-js
/// guests have many core instances and large tables).
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MEMORIES_PER_COMPONENT: u32 = 16;
const TABLES_PER_COMPONENT: u32 = 32;

/// How many calls the engine runs at once, which sizes its pool of instance slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// A node serving many callers.
    Serving,
    /// One call at a time and its nested calls, this many levels deep: a pool a short-lived
    /// process sets up and tears down in well under a millisecond (a thousand stack slots
    /// cost a command-line call a quarter of its time).
    OneCall {
        /// The deepest nesting a call may reach, plus one.
        levels: u32,
    },
}

/// The BLAKE3 digest of every precompiled file this host wrote, by file name. Kept in the
/// database, not beside the files: precompiled code is loaded as trusted machine code, so a
/// file that is not byte for byte what the host wrote must never load.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "compiled_cache",
    migrations: &[
        "
CREATE TABLE IF NOT EXISTS compiled_files (
    file   TEXT PRIMARY KEY,
    blake3 TEXT NOT NULL
) STRICT;
",
        // The file's identity when its digest last matched: a fast path past hashing it.
        "ALTER TABLE compiled_files ADD COLUMN fingerprint TEXT;",
    ],
};

/// Builds the engine: component model, epoch interruption for deadlines, and a pooling
/// allocator sized for `concurrency`, whose memory slots are `max_memory_mib` large (the
/// largest per-plugin cap).
pub fn build(max_memory_mib: u64, concurrency: Concurrency) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    match concurrency {
        // Most components have a few core instances, memories and tables: the totals are
        // shared among them.
        // A call runs on one fiber stack at a time, so a stack per component instance (the
        // default pool holds 1000, and setting them up is most of a short process's start).
        Concurrency::Serving => pool
            .total_component_instances(POOL_INSTANCES)
            .total_stacks(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4),
        // Every level of one call's nesting may be the largest kind of component.
        Concurrency::OneCall { levels } => pool
            .total_component_instances(levels)
            .total_stacks(levels)
            .total_core_instances(levels * CORE_INSTANCES_PER_COMPONENT)
            .total_memories(levels * MEMORIES_PER_COMPONENT)
            .total_tables(levels * TABLES_PER_COMPONENT),
    };
    pool.max_memory_size((max_memory_mib as usize) << 20)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
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
    /// The host's connection to the data directory's database, which keeps the files' digests
    /// (shared: each connection a process opens parses the whole schema again).
    db: Arc<Mutex<Connection>>,
}

impl CompiledCache {
    /// The cache in `dir`, a data directory's `compiled` folder, for `engine`'s compatibility
    /// hash; the digests of its files are kept in the database `db` is connected to (that data
    /// directory's).
    pub fn new(engine: &Engine, dir: &Path, db: Arc<Mutex<Connection>>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompiledCache { dir: dir.to_path_buf(), compat: format!("{:016x}", hasher.finish()), db }
    }

    fn file_name(&self, digest: &str) -> String {
        format!("{digest}-{}.cwasm", self.compat)
    }

    /// Runs `f` on the connection to the database that keeps the digests (the caller must not
    /// hold it already).
    fn with_db<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&crate::sync::lock(&self.db))
    }

    /// Loads the precompiled component `digest` from the cache if it is there and is byte for
    /// byte the file this host wrote. A file whose identity (device, inode, size, modification
    /// and change times) is the one recorded when this host created it — 0600 in a 0700
    /// folder, so no other user has ever opened it — is mapped directly, and its identity is
    /// checked again once mapped. Any other file (copied, restored, or from before identities
    /// were kept) is read whole, must match the recorded BLAKE3 digest, is loaded from memory,
    /// and is written anew as a file of this host's own. A file that is not the host's, or
    /// does not load, is discarded with a warning; the caller recompiles.
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let name = self.file_name(digest);
        let path = self.dir.join(&name);
        let identity = match std::fs::metadata(&path) {
            Ok(meta) => FileIdentity::of(&meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("cannot read precompiled component {}: {e}; recompiling it", path.display());
                return None;
            }
        };
        let recorded = self.with_db(|db| {
            let query = "SELECT blake3, fingerprint FROM compiled_files WHERE file = ?1";
            Ok(db
                .query_row(query, [name.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))
                .optional()?)
        });
        let loaded = match recorded {
            Ok(Some((_, Some(fingerprint)))) if fingerprint == identity.0 => self.load_mapped(engine, &path, &identity),
            Ok(Some((blake3, _))) => self.load_hashed(engine, &path, &name, &blake3),
            Ok(None) => Err(Discard::NotOurs),
            Err(e) => {
                tracing::warn!(
                    "cannot check precompiled component {} against its digest: {e:#}; recompiling it",
                    path.display()
                );
                return None;
            }
        };
        match loaded {
            Ok(component) => Some(component),
            Err(Discard::NotOurs) => {
                tracing::warn!(
                    "precompiled component {} is not the file this host wrote (its digest does not match the \
                     one recorded in the database: it was changed on disk, or written by an older version); \
                     discarding it and recompiling from the verified component",
                    path.display()
                );
                self.evict(digest);
                None
            }
            Err(Discard::Unusable(e)) => {
                tracing::warn!("discarding unusable precompiled component {}: {e:#}", path.display());
                self.evict(digest);
                None
            }
        }
    }

    /// Maps the file this host created (its identity matched the record), and checks the
    /// identity again once it is mapped, so a file changed meanwhile is not kept either.
    fn load_mapped(&self, engine: &Engine, path: &Path, identity: &FileIdentity) -> Result<Component, Discard> {
        // SAFETY: the file is, by its unchanged identity, the one this host created (0600 in a
        // 0700 folder: no other user can open it, so none can change it while it is mapped)
        // from `Component::serialize` for this engine configuration (the compatibility hash is
        // in the name).
        let component =
            unsafe { Component::deserialize_file(engine, path) }.map_err(|e| Discard::Unusable(e.into()))?;
        match std::fs::metadata(path) {
            Ok(meta) if FileIdentity::of(&meta) == *identity => Ok(component),
            _ => Err(Discard::NotOurs),
        }
    }

    /// Reads and hashes the whole file, loads it from memory if the digest matches, and writes
    /// it anew (a new inode, created 0600) so later loads map a file no other user has opened.
    fn load_hashed(&self, engine: &Engine, path: &Path, name: &str, blake3: &str) -> Result<Component, Discard> {
        let bytes = std::fs::read(path).map_err(|e| Discard::Unusable(e.into()))?;
        if blake3::hash(&bytes).to_hex().as_str() != blake3 {
            return Err(Discard::NotOurs);
        }
        // SAFETY: these bytes are, by their BLAKE3 digest, the ones `Component::serialize` of
        // this host wrote for this engine configuration, deserialized from memory, so the file
        // cannot change under them.
        let component = unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| Discard::Unusable(e.into()))?;
        if let Err(e) = self.write_own(name, blake3, &bytes) {
            tracing::warn!("cannot rewrite precompiled component {}: {e:#}", path.display());
        }
        Ok(component)
    }

    /// Records that the file `name`, whose contents hash to `blake3`, has `identity`.
    fn record_identity(&self, name: &str, blake3: &str, identity: &FileIdentity) {
        let recorded = self.with_db(|db| {
            db.execute(
                "UPDATE compiled_files SET fingerprint = ?3 WHERE file = ?1 AND blake3 = ?2",
                [name, blake3, identity.0.as_str()],
            )?;
            Ok(())
        });
        if let Err(e) = recorded {
            tracing::warn!("cannot record the identity of precompiled component {name}: {e:#}");
        }
    }

    /// Writes the compilation of `digest` into the cache: its digest recorded in the database
    /// first, then the file, atomically and with mode 0600, then the file's identity.
    pub fn put(&self, digest: &str, component: &Component) -> Result<()> {
        let name = self.file_name(digest);
        let bytes = component.serialize()?;
        let hash = blake3::hash(&bytes).to_hex();
        self.with_db(|db| {
            db.execute(
                "INSERT INTO compiled_files (file, blake3, fingerprint) VALUES (?1, ?2, NULL)
                 ON CONFLICT(file) DO UPDATE SET blake3 = excluded.blake3, fingerprint = NULL",
                [name.as_str(), hash.as_str()],
            )?;
            Ok(())
        })
        .context("cannot record the digest of a precompiled component")?;
        self.write_own(&name, hash.as_str(), &bytes)
    }

    /// Writes `bytes` (whose digest is `blake3`) as the file `name`: a new file, 0600 in the
    /// 0700 cache folder, renamed into place; then records its identity as this host's own.
    fn write_own(&self, name: &str, blake3: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        crate::paths::write_private(&path, bytes)?;
        self.record_identity(name, blake3, &FileIdentity::of(&std::fs::metadata(&path)?));
        Ok(())
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

/// What a cached file's identity says: device, inode, size, modification and change times
/// (nanoseconds). Written to a file, it changes; restored, it cannot be made to match again.
#[derive(PartialEq)]
struct FileIdentity(String);

impl FileIdentity {
    /// The identity of the file `meta` describes.
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileIdentity(format!(
            "{}:{}:{}:{}.{}:{}.{}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ))
    }
}

/// Why a cached file is not used.
enum Discard {
    /// It is not what this host wrote.
    NotOurs,
    /// It is, but it does not load (or cannot be read).
    Unusable(anyhow::Error),
}
