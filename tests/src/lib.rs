//! Shared helpers for the integration tests: where the built plugins are, a host on a fresh
//! data directory, and the `continuum` binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use continuum::paths::DataDir;
use continuum::{Caller, Host, InstallOptions};
use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The built plugin folder `build/plugins/<name>` (made by `scripts/build-plugins.sh`).
pub fn plugin_dir(name: &str) -> PathBuf {
    let dir = repo().join("build/plugins").join(name);
    assert!(
        dir.join(format!("{name}.wasm")).exists(),
        "{} is missing: run scripts/build-plugins.sh (the README's test command does)",
        dir.display()
    );
    dir
}

/// A host on a new temporary data directory with `config` as its continuum.toml.
pub struct TestHost {
    /// The data directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The host.
    pub host: Host,
}

impl TestHost {
    /// A host with `plugins` installed from `build/plugins`.
    pub fn with(plugins: &[&str]) -> Self {
        Self::with_config(plugins, "")
    }

    /// A host with `plugins` installed and `config` written to continuum.toml first.
    pub fn with_config(plugins: &[&str], config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("continuum.toml"), config).expect("write config");
        let host = Host::open(DataDir::at(dir.path().to_path_buf()).expect("data dir")).expect("open host");
        for p in plugins {
            let d = plugin_dir(p);
            host.install_component(&d.join(format!("{p}.wasm")), &d.join("wit"), &allow_all())
                .unwrap_or_else(|e| panic!("install {p}: {e:#}"));
        }
        TestHost { dir, host }
    }

    /// Calls `name` as the owner; the JSON result or the error's message.
    pub fn call(&self, name: &str, params: Value) -> Result<Value, continuum::CallError> {
        self.host.call(&Caller::owner(), name, &params).result
    }

    /// Runs the `continuum` binary on this data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(self.dir.path(), args)
    }
}

/// Install options approving every host capability the plugin requests.
pub fn allow_all() -> InstallOptions {
    InstallOptions { allow: vec!["all".into()], ..Default::default() }
}

/// The `continuum` binary built beside the test binaries.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe.parent().and_then(Path::parent).expect("target/<profile>").join("continuum");
    assert!(bin.exists(), "{} is missing: build it first (cargo build --release)", bin.display());
    bin
}

/// Runs `continuum --data-dir <dir> <args>`.
pub fn cli(data_dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CONTINUUM_HOME")
        .output()
        .expect("run continuum")
}

/// stdout of a finished command as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The real models fetched by `scripts/fetch-models.sh` (SmolLM2 GGUF, MiniLM folder), or
/// `None` after printing why the caller skips.
pub fn real_models() -> Option<(PathBuf, PathBuf)> {
    let dir = repo().join("build/models");
    let (llm, embed) = (dir.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"), dir.join("minilm"));
    if llm.is_file() && embed.join("model.safetensors").is_file() {
        Some((llm, embed))
    } else {
        eprintln!("skipped: the real models are not in build/models (run scripts/fetch-models.sh)");
        None
    }
}

/// One inference thread: tests run in parallel on few cores.
pub const ONE_THREAD: &str = "[inference]\nthreads = 1\n";
