//! The wasmtime engine: its configuration, the epoch ticker behind call deadlines, and the
//! on-disk cache of precompiled components.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::sandbox::EPOCH_TICK;

/// Bytes of each memory and table slot kept resident between instances.
const KEEP_RESIDENT: usize = 4 << 20;

/// Concurrent instances the pooling allocator holds slots for (nested calls count).
const POOL_INSTANCES: u32 = 256;

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

/// The precompiled components of one engine configuration, in one folder.
pub struct CompiledCache {
    dir: PathBuf,
    compat: String,
}

impl CompiledCache {
    /// The cache in `dir` for `engine`'s compatibility hash.
    pub fn new(engine: &Engine, dir: &Path) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompiledCache { dir: dir.to_path_buf(), compat: format!("{:016x}", hasher.finish()) }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.compat))
    }

    /// Maps the precompiled component `digest` from the cache, if it is there and loads.
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: files in the cache were written by `Component::serialize` of this host for
        // this engine configuration (the compatibility hash is in the name), inside the
        // operator's data directory. A file that fails to load is discarded and rebuilt.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("discarding unusable precompiled component {}: {e:#}", path.display());
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes the compilation of `digest` into the cache (atomically: write, then rename).
    pub fn put(&self, digest: &str, component: &Component) -> Result<()> {
        let path = self.path(digest);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, component.serialize()?)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write the precompiled component to {}", path.display()))
    }

    /// Removes the cached compilation of `digest`.
    pub fn evict(&self, digest: &str) {
        let _ = std::fs::remove_file(self.path(digest));
    }
}
