//! Shared parts of the fuzz targets: one host per fuzzing process on a temporary data
//! directory, and generators driven by the fuzzer's bytes (WIT types, values of a reflected
//! type, scalar-signature components from wasm-smith).
//!
//! Each target lives in `fuzz_targets/`; `scripts/fuzz.sh` builds them (with coverage
//! instrumentation on Continuum's own crates) and runs the smoke or the long campaign.

pub mod components;
pub mod values;
pub mod wit_types;

use std::sync::OnceLock;

use continuum_core::paths::DataDir;
use continuum_core::Host;

/// Limits for fuzzed plugins: short, so a generated infinite loop costs little.
pub const LIMITS: &str = "[limits]\ntimeout-ms = 50\nmemory-mib = 16\noutput-kib = 64\nmax-host-calls = 1000\n";

/// A host on a temporary data directory (kept for the life of the process), with `config` as
/// its `continuum.toml`.
pub fn host_with(config: &str) -> Host {
    let dir = tempfile::Builder::new().prefix("continuum-fuzz-").tempdir().expect("temp dir").keep();
    std::fs::write(dir.join("continuum.toml"), config).expect("write continuum.toml");
    continuum_node::open_host(DataDir::at(dir).expect("data dir")).expect("open host")
}

/// The process's host with the fuzzing limits.
pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| host_with(LIMITS))
}
