//! Shared helpers for the integration tests: where the built plugins are, a host on a fresh
//! data directory, and the `continuum` binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use continuum::paths::DataDir;
use continuum::{Caller, Host, InstallOptions};
use serde_json::Value;

pub mod netns;

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
        let host =
            continuum::node::open_host(DataDir::at(dir.path().to_path_buf()).expect("data dir")).expect("open host");
        for p in plugins {
            let d = plugin_dir(p);
            // A plain WASI component carries no wit/: its WIT is decoded from it.
            let wit = d.join("wit");
            host.install_component(&d.join(format!("{p}.wasm")), wit.is_dir().then_some(wit.as_path()), &allow_all())
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

/// The Python of the tools environment scripts/authoring-tools.sh makes (with the `mcp`,
/// `jsonschema` and `openapi-spec-validator` packages the tests drive the node with).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("CONTINUUM_TOOLS_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".local/share/continuum/tools-venv")
    });
    let python = venv.join("bin/python");
    assert!(python.is_file(), "{} is missing: run scripts/authoring-tools.sh", python.display());
    python
}

/// Runs the Python client `tests/python/<script>` with `args`; its JSON report.
pub fn python_client(script: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(python())
        .arg(repo().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("run python");
    assert!(out.status.success(), "{script} failed: {}{}", stdout(&out), stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {}", stdout(&out)))
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

/// A `continuum serve` process on its own data directory, on free loopback ports.
pub struct TestNode {
    /// The data directory (removed on drop).
    pub dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    /// The node id.
    pub id: String,
    /// `<id>@<grid address>` for `continuum peer add`.
    pub address: String,
    /// `http://127.0.0.1:<port>`.
    pub http: String,
    /// The owner token for TCP requests.
    pub token: String,
    /// Environment variables the serving process gets.
    env: Vec<(String, String)>,
    /// The network namespace the node serves in, if not the test's own.
    netns: Option<String>,
    /// The `--grid` bind address.
    grid: String,
    /// Extra `continuum serve` arguments.
    serve_args: Vec<String>,
}

impl TestNode {
    /// Prepares a data directory with `setup` (CLI steps: keys, trust, installs), then serves it.
    pub fn start(setup: impl FnOnce(&Path)) -> TestNode {
        TestNode::start_with_env(Vec::new(), setup)
    }

    /// Like [`TestNode::start`], the serving process getting the environment variables `env`.
    pub fn start_with_env(env: Vec<(String, String)>, setup: impl FnOnce(&Path)) -> TestNode {
        TestNode::launch(env, None, "127.0.0.1:0", &[], setup)
    }

    /// Like [`TestNode::start`], serving inside the network namespace `ns` with its grid bound on
    /// `grid` (e.g. `10.77.0.10:0`) and the extra `continuum serve` arguments `serve_args` (e.g.
    /// `--lan`). Its HTTP port is on the namespace's loopback, out of the test's reach; the CLI
    /// still works (the data directory's unix socket crosses network namespaces).
    pub fn start_in(ns: &netns::Netns, grid: &str, serve_args: &[&str], setup: impl FnOnce(&Path)) -> TestNode {
        TestNode::launch(Vec::new(), Some(ns.name.clone()), grid, serve_args, setup)
    }

    /// Prepares a data directory with `setup` and serves it as the fields say.
    fn launch(
        env: Vec<(String, String)>,
        netns: Option<String>,
        grid: &str,
        serve_args: &[&str],
        setup: impl FnOnce(&Path),
    ) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        setup(dir.path());
        let mut node = TestNode {
            dir,
            child: None,
            id: String::new(),
            address: String::new(),
            http: String::new(),
            token: String::new(),
            env,
            netns,
            grid: grid.to_string(),
            serve_args: serve_args.iter().map(|a| a.to_string()).collect(),
        };
        node.serve();
        node
    }

    /// Kills the node (SIGKILL, as a crash would) and serves its data directory again (in the
    /// same network namespace, on the same grid bind address).
    pub fn restart(&mut self) {
        self.kill();
        self.serve();
    }

    /// Serves the data directory and waits until the node says where it listens.
    fn serve(&mut self) {
        let file = self.dir.path().join("node.json");
        let _ = std::fs::remove_file(&file);
        // `ip netns exec` execs the binary in place: the child is the node itself (kill, pid).
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns.as_str()]).arg(binary());
                c
            }
            None => std::process::Command::new(binary()),
        };
        let child = command
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["serve", "--http", "127.0.0.1:0", "--grid", self.grid.as_str(), "--offer-interval", "1s"])
            .args(&self.serve_args)
            .env_remove("CONTINUUM_HOME")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            // CONTINUUM_TEST_NODE_LOGS=1 shows the nodes' logs (with CONTINUUM_LOG's filter).
            .stderr(match std::env::var_os("CONTINUUM_TEST_NODE_LOGS") {
                Some(_) => std::process::Stdio::inherit(),
                None => std::process::Stdio::null(),
            })
            .spawn()
            .expect("start continuum serve");
        let started = std::time::Instant::now();
        let info: Value = loop {
            if let Some(v) = std::fs::read_to_string(&file).ok().and_then(|t| serde_json::from_str(&t).ok()) {
                break v;
            }
            assert!(started.elapsed().as_secs() < 60, "the node did not start within 60 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        self.token = std::fs::read_to_string(self.dir.path().join("node.token")).expect("owner token");
        self.id = info["id"].as_str().expect("id").to_string();
        let grid: Vec<&str> = info["grid"].as_array().expect("grid").iter().filter_map(Value::as_str).collect();
        self.address = format!("{}@{}", self.id, grid.join(","));
        self.http = info["http"].as_str().expect("http").to_string();
        self.child = Some(child);
    }

    /// Runs the CLI on this node's data directory (it talks to the node over its socket).
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(self.dir.path(), args)
    }

    /// Runs the CLI and returns stdout, failing the test with stderr if it did not succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(o.status.success(), "continuum {args:?} failed: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Kills the node (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the node process to exit by itself (after `node stop`); its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.take().expect("running").wait().expect("wait")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The environment that runs a process with its wall clock `offset` off (libfaketime, e.g.
/// `+2h`), as on a machine whose clock is wrong; its monotonic clock (timers) stays true.
pub fn skewed_clock(offset: &str) -> Vec<(String, String)> {
    let library = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]
        .iter()
        .map(|dir| PathBuf::from(dir).join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime is installed (scripts/system-deps.sh installs it)");
    vec![
        ("LD_PRELOAD".into(), library.display().to_string()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// Polls `check` every 100 ms until it returns true or `secs` pass; whether it did.
pub fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A publisher key and signed alloys of built plugins, made once per test process.
pub struct Publisher {
    /// Its data directory (holds the key).
    pub dir: tempfile::TempDir,
    /// The publisher's public key.
    pub key: String,
}

impl Publisher {
    /// A new publisher key.
    pub fn new() -> Publisher {
        let dir = tempfile::tempdir().expect("temp dir");
        let o = cli(dir.path(), &["key", "generate", "publisher"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let key = stdout(&cli(dir.path(), &["key", "export", "publisher"])).trim().to_string();
        Publisher { dir, key }
    }

    /// Packs `build/plugins/<name>` into a signed alloy; its path.
    pub fn alloy(&self, name: &str) -> PathBuf {
        let out = self.dir.path().join(format!("{name}.alloy"));
        if !out.exists() {
            let dir = plugin_dir(name);
            let o = cli(
                self.dir.path(),
                &["plugin", "pack", dir.to_str().unwrap(), "--key", "publisher", "-o", out.to_str().unwrap()],
            );
            assert!(o.status.success(), "pack {name}: {}", stderr(&o));
        }
        out
    }

    /// Trusts this publisher in `data` (pre-approving what the test plugins use).
    pub fn trust(&self, data: &Path) {
        let o = cli(
            data,
            &["trust", "add", &self.key, "--name", "publisher", "--approve", "host:log,host:store,host:events"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }

    /// Trusts this publisher in `data` and installs its alloys of `plugins` there.
    pub fn install(&self, data: &Path, plugins: &[&str]) {
        self.trust(data);
        for p in plugins {
            let o = cli(data, &["plugin", "install", self.alloy(p).to_str().unwrap()]);
            assert!(o.status.success(), "install {p}: {}", stderr(&o));
        }
    }
}

impl Default for Publisher {
    fn default() -> Self {
        Self::new()
    }
}
