//! The `continuum` command line.

mod artifacts;
mod bench;
mod bench_inference;
mod bench_languages;
mod bench_node;
mod events;
mod grant;
mod grid;
pub(crate) mod help;
mod models;
mod params;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::paths::DataDir;
use crate::runtime::{CallError, Host};
use crate::terminal::strip_control;
use crate::Caller;
use crate::InstallOptions;

/// Continuum: run sandboxed, typed WebAssembly commands.
#[derive(Debug, Parser)]
#[command(name = "continuum", version, about, propagate_version = true)]
pub struct Cli {
    /// Data directory (default: $CONTINUUM_HOME, else ~/.local/share/continuum).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// More log output (-v debug, -vv trace); CONTINUUM_LOG takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Install, list, inspect and remove plugins.
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// List the commands you may call (or, with --as, that another caller may call); `search` finds them by meaning.
    Commands {
        /// Print JSON (names, descriptions, schemas).
        #[arg(long, global = true)]
        json: bool,
        /// List for this caller: a public key, or a grant token.
        #[arg(long = "as", value_name = "KEY|TOKEN", global = true)]
        as_caller: Option<String>,
        #[command(subcommand)]
        action: Option<CommandsCmd>,
    },
    /// The models behind `continuum:host/inference` and `training`: add, list, remove.
    #[command(subcommand)]
    Model(ModelCmd),
    /// The event log: tail, verify, export, import.
    #[command(subcommand)]
    Events(EventsCmd),
    /// Metering from the event log: calls, failures, time and bytes per grantee or command.
    Usage {
        /// Group by `grantee` (default) or `command`.
        #[arg(long, value_enum, default_value = "grantee")]
        by: UsageBy,
        /// Only calls in this window before now (`24h`, `7days`); default: all.
        #[arg(long)]
        since: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Capability grants: who may call what, until when.
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Run a command: `continuum run text/stats --text "…"`; `--help` after the name shows its parameters.
    #[command(disable_help_flag = true)]
    Run {
        /// How to print the result (default: pretty on a terminal, json otherwise).
        #[arg(long, value_enum)]
        output: Option<OutputFormat>,
        /// Run as this caller: a public key (no grant), or a grant token.
        #[arg(long = "as", value_name = "KEY|TOKEN")]
        as_caller: Option<String>,
        #[command(flatten)]
        remote: grid::RemoteArgs,
        /// The command, `plugin/function`.
        #[arg(allow_hyphen_values = true)]
        command: String,
        /// The command's parameters: --flags from its schema, or one JSON object.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "PARAMS")]
        args: Vec<String>,
    },
    /// Benchmarks: `calls` (default) measures call overhead against raw wasmtime, install-to-first-call,
    /// grants and the event log; `inference` measures llama.cpp and candle direct vs through WIT;
    /// `languages` the same command built from Rust, Python and JavaScript; `http` the node's API
    /// under concurrent clients; `grid` remote calls and plugin fetch between nodes.
    Bench {
        /// Which benchmark.
        #[arg(value_enum, default_value = "calls")]
        suite: BenchSuite,
        /// Folder of the built `text` plugin (its .wasm and wit/).
        #[arg(long, default_value = "build/plugins/text")]
        plugin: PathBuf,
        /// Calls per measurement (calls).
        #[arg(long, default_value_t = 20_000)]
        iterations: u32,
        /// Where scripts/fetch-models.sh put the models (inference).
        #[arg(long, default_value = "build/models")]
        models: PathBuf,
        /// Tokens per generation (inference).
        #[arg(long, default_value_t = 128)]
        tokens: u32,
        /// Alternating rounds of direct and WIT calls (inference).
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// CPU threads per computation (inference; default: the host's).
        #[arg(long, default_value_t = 0)]
        threads: u32,
        /// Concurrent clients (http).
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Seconds per phase (http).
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// Run this node: the HTTP API (loopback and a unix socket) and the grid endpoint, until stopped.
    Serve(grid::ServeArgs),
    /// The running node: info, stop.
    #[command(subcommand)]
    Node(grid::NodeCmd),
    /// Grid peers: add, list, remove (needs a running node).
    #[command(subcommand)]
    Peer(grid::PeerCmd),
    /// What peers offer: plugins, commands, terms (`--search` ranks commands by meaning).
    Offers {
        /// Rank offered commands by what they do.
        #[arg(long)]
        search: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// API keys for HTTP clients, each mapped to a grantee.
    #[command(subcommand)]
    Apikey(grid::ApiKeyCmd),
    /// Signing keys: generate, list, export a public key.
    #[command(subcommand)]
    Key(KeyCmd),
    /// The trust store: publisher keys whose alloys install without --allow-untrusted.
    #[command(subcommand)]
    Trust(TrustCmd),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A benchmark suite.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BenchSuite {
    /// Call overhead, install-to-first-call, grants, the event log.
    Calls,
    /// Generation tok/s and embeddings/s, direct vs through WIT.
    Inference,
    /// The same command in Rust, Python and JavaScript: build, compile, second load, call p50.
    Languages,
    /// The HTTP API under concurrent clients: req/s, p50/p99, errors, memory.
    Http,
    /// Grid call latency over loopback QUIC vs in-process, and verified plugin-fetch throughput.
    Grid,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CommandsCmd {
    /// Find commands by what they do: `continuum commands search "count words in a text"`.
    Search {
        /// What you need, in plain words.
        query: String,
        /// How many to show.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Search the commands peers offer (needs a running node) instead of the local ones.
        #[arg(long)]
        grid: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelCmd {
    /// Add a model from a local path: a .gguf language model, or a folder with an embedding
    /// model (model.safetensors, tokenizer.json, config.json). Validated before it is added.
    Add {
        /// The .gguf file or the embedding model folder.
        path: PathBuf,
        /// The id commands use to name it (default: from the file or folder name).
        #[arg(long)]
        id: Option<String>,
    },
    /// List installed models.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a model and its files.
    Remove {
        /// The model id.
        id: String,
    },
    /// Load a model and run it once (what `add` runs in a child process first).
    #[command(hide = true)]
    Probe {
        /// The .gguf file or the embedding model folder.
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCmd {
    /// Create a new ed25519 key in the data dir's keys/ (mode 0600) and print its public key.
    Generate {
        /// The key's name.
        name: String,
    },
    /// List keys and their public halves (the `node` key is the node's identity).
    List,
    /// Print a key's public half, e.g. for `continuum trust add` on another node.
    Export {
        /// The key's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCmd {
    /// Show the last entries (`--follow` keeps printing new ones).
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u64,
        /// Only this kind, or a prefix ending in `.` (`call.`).
        #[arg(long)]
        kind: Option<String>,
        /// Keep waiting for new entries.
        #[arg(long)]
        follow: bool,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the chain and check every checkpoint signature; names the first bad entry.
    Verify,
    /// Write the log (entries after --since) as JSONL.
    Export {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Import another node's export (verified first; Lamport clock merged).
    Import {
        /// The export file.
        file: PathBuf,
    },
    /// Replicate a peer's log: pull its entries after the last one held here (needs a running node).
    Pull {
        /// The peer (id, prefix or name).
        peer: String,
    },
}

/// How `continuum usage` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum UsageBy {
    /// By caller (grantee key, or `owner`).
    Grantee,
    /// By command.
    Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GrantCmd {
    /// Issue a grant (signed by this node's key) and print its token.
    Issue {
        /// The grantee's public key.
        #[arg(long)]
        to: String,
        /// A command or prefix it may call (`text/summarize`, `kv/`); repeat for more.
        #[arg(long = "cap", required = true)]
        caps: Vec<String>,
        /// How long it lasts (`90s`, `30m`, `24h`, `7days`).
        #[arg(long, default_value = "24h")]
        expires: String,
    },
    /// List the grants this node issued.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every grant to a key (a higher epoch with no capabilities).
    Revoke {
        /// The grantee's public key.
        grantee: String,
    },
    /// As a grantee, derive a narrower, shorter token for someone else.
    Attenuate {
        /// Your token.
        token: String,
        /// Your key (the token's grantee): a key name, or a key file path containing `/` (`./k.ed25519`).
        #[arg(long)]
        key: String,
        /// Who receives the narrower token.
        #[arg(long)]
        to: String,
        /// Capabilities (each within yours); repeat for more.
        #[arg(long = "cap", required = true)]
        caps: Vec<String>,
        /// How long it lasts (capped at your token's expiry).
        #[arg(long, default_value = "1h")]
        expires: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCmd {
    /// Trust a publisher's public key.
    Add {
        /// The public key (64 hex digits).
        public_key: String,
        /// Your name for this publisher.
        #[arg(long)]
        name: String,
        /// Pre-approve a host capability for this publisher's plugins; repeat or comma-separate.
        #[arg(long, value_delimiter = ',', value_name = "CAPABILITY")]
        approve: Vec<String>,
    },
    /// List trusted publishers.
    List,
    /// Stop trusting a publisher (by name or key).
    Remove {
        /// Name or public key.
        key: String,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct AlloyOverrides {
    /// Approve a host capability the plugin requests (host:log, host:store, host:commands,
    /// host:events, or `all`); repeat or comma-separate. On a terminal you are asked instead.
    #[arg(long, value_delimiter = ',', value_name = "CAPABILITY")]
    allow: Vec<String>,
    /// Install even though the signer is not in the trust store.
    #[arg(long)]
    allow_untrusted: bool,
    /// Install even though the version is older than the installed one.
    #[arg(long)]
    allow_downgrade: bool,
}

#[derive(Debug, Subcommand)]
enum PluginCmd {
    /// Create a command project: `continuum plugin new word-count --lang python` (WIT world, source,
    /// proof cases, README) that builds, packs and installs as it is.
    New {
        /// The plugin's name, kebab-case (also its folder, WIT world and command prefix).
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: crate::authoring::Language,
        /// Create it inside this folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a command project into `<project>/build/` (cargo, componentize-py or componentize-js),
    /// ready for `continuum plugin pack <project>/build --key K`.
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Install a signed `.alloy`, or (development) a folder holding `<name>.wasm` and `wit/`, or a .wasm file with --wit;
    /// with --from, a plugin a peer offers (by name or digest).
    Install {
        /// The .alloy file, plugin folder or .wasm file (with --from: the plugin's name or digest).
        path: PathBuf,
        /// Fetch from a peer (id, prefix, name) or `any`; verified exactly like a local alloy.
        #[arg(long, value_name = "PEER|any")]
        from: Option<String>,
        #[command(flatten)]
        overrides: AlloyOverrides,
        /// The WIT folder describing the component (default: `wit/` beside it).
        #[arg(long, value_name = "DIR")]
        wit: Option<PathBuf>,
        /// Install under this name (default: the WIT world's name).
        #[arg(long)]
        name: Option<String>,
        /// The WIT world, when the package has several.
        #[arg(long)]
        world: Option<String>,
        /// Replace an installed plugin of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Upgrade an installed plugin from a newer signed `.alloy`.
    Upgrade {
        /// The .alloy file.
        path: PathBuf,
        #[command(flatten)]
        overrides: AlloyOverrides,
        /// Accept an alloy signed by another publisher than the installed plugin's: the installed
        /// plugin's store is deleted and every capability must be approved again.
        #[arg(long)]
        allow_new_publisher: bool,
    },
    /// Pack a built plugin into a signed `.alloy`: a folder with `<name>.wasm`, `wit/` and `plugin.toml`, or a .wasm with --wit.
    Pack {
        /// The plugin folder or .wasm file.
        path: PathBuf,
        /// The signing key: a name from `continuum key list`, or a key file path containing `/` (`./k.ed25519`).
        #[arg(long)]
        key: String,
        /// The WIT folder (default: `wit/` beside the component).
        #[arg(long, value_name = "DIR")]
        wit: Option<PathBuf>,
        /// The version, when there is no plugin.toml.
        #[arg(long)]
        version: Option<String>,
        /// Where to write the alloy (default: `<name>-<version>.alloy` here).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check an `.alloy`: digest, signatures, chain of custody, interface, and re-run its proof suite here.
    Verify {
        /// The .alloy file.
        path: PathBuf,
    },
    /// Re-run an `.alloy`'s proof suite and append your signed `evaluate` attestation to its chain.
    Attest {
        /// The .alloy file.
        path: PathBuf,
        /// Your signing key: a name, or a key file path containing `/`.
        #[arg(long)]
        key: String,
        /// Where to write the attested alloy (default: in place).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show the host capabilities a plugin requests and which are approved.
    Permissions {
        /// The plugin's name.
        name: String,
    },
    /// Approve host capabilities for an installed plugin (`all` for everything it requests).
    Allow {
        /// The plugin's name.
        name: String,
        /// Capabilities, e.g. host:store.
        #[arg(required = true)]
        capabilities: Vec<String>,
    },
    /// Withdraw host capabilities from an installed plugin (`all` for every one).
    Deny {
        /// The plugin's name.
        name: String,
        /// Capabilities, e.g. host:events.
        #[arg(required = true)]
        capabilities: Vec<String>,
    },
    /// List installed plugins.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin (installed, or an .alloy file): version, signers, chain, capabilities, commands.
    Inspect {
        /// The plugin's name, or an .alloy file.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a plugin.
    Remove {
        /// The plugin's name.
        name: String,
        /// Also delete the plugin's private store.
        #[arg(long)]
        purge: bool,
    },
}

/// How `run` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line of JSON.
    Json,
    /// Indented JSON; a plain string result is printed as text.
    Pretty,
}

/// A failure with the exit code it should end the process with.
#[derive(Debug)]
pub struct Exit {
    /// Process exit code.
    pub code: i32,
    /// The one-line message.
    pub message: String,
}

impl Exit {
    /// Whether the failure is only that stdout was closed early (`continuum … | head`),
    /// which is not an error for a command-line tool.
    pub fn is_broken_pipe(&self) -> bool {
        self.code == 0
    }
}

impl From<anyhow::Error> for Exit {
    fn from(e: anyhow::Error) -> Self {
        let broken_pipe = e
            .chain()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe));
        Exit { code: if broken_pipe { 0 } else { 1 }, message: format!("{e:#}") }
    }
}

fn init_tracing(verbose: u8, plugin_logs: bool) {
    let default = match verbose {
        0 if plugin_logs => "warn,plugin=info",
        0 => "warn",
        1 => "debug,cranelift_codegen=info,wasmtime=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONTINUUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Parses the command line and runs it.
pub fn main() -> Result<(), Exit> {
    let cli = Cli::parse();
    // Benchmarks call plugins thousands of times: their log lines would drown the figures.
    init_tracing(cli.verbose, !matches!(cli.command, Top::Bench { .. }));
    let open = || -> Result<Host> { crate::node::open_host(DataDir::resolve(cli.data_dir.as_deref())?) };
    match cli.command {
        Top::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "continuum", &mut std::io::stdout());
            Ok(())
        }
        Top::Plugin(cmd) => {
            let changes = matches!(
                cmd,
                PluginCmd::Install { .. }
                    | PluginCmd::Upgrade { .. }
                    | PluginCmd::Allow { .. }
                    | PluginCmd::Deny { .. }
                    | PluginCmd::Remove { .. }
            );
            let host = open()?;
            plugin(&host, cmd).map_err(grid::api_exit)?;
            if changes {
                tell_running_node(host.core().data().root());
            }
            Ok(())
        }
        Top::Commands { json, as_caller, action: None } => {
            list_commands(&open()?, json, as_caller.as_deref()).map_err(Exit::from)
        }
        Top::Commands { json, action: Some(CommandsCmd::Search { query, grid: true, .. }), .. } => {
            grid::offers(DataDir::resolve(cli.data_dir.as_deref())?.root(), Some(&query), json).map_err(grid::api_exit)
        }
        Top::Commands { json, as_caller, action: Some(CommandsCmd::Search { query, top, .. }) } => {
            models::search(&open()?, as_caller.as_deref(), &query, top, json).map_err(Exit::from)
        }
        Top::Model(cmd) => models::run(&open()?, cmd).map_err(Exit::from),
        Top::Events(EventsCmd::Pull { peer }) => {
            grid::pull_events(DataDir::resolve(cli.data_dir.as_deref())?.root(), &peer).map_err(grid::api_exit)
        }
        Top::Events(cmd) => events::run(&open()?, cmd).map_err(Exit::from),
        Top::Usage { by, since, json } => events::usage(&open()?, by, since.as_deref(), json).map_err(Exit::from),
        Top::Grant(cmd) => {
            let changes = matches!(cmd, GrantCmd::Issue { .. } | GrantCmd::Revoke { .. });
            let host = open()?;
            grant::run(&host, &DataDir::resolve(cli.data_dir.as_deref())?, cmd)?;
            if changes {
                tell_running_node(host.core().data().root());
            }
            Ok(())
        }
        Top::Run { command, .. } if command == "--help" || command == "-h" => {
            let mut cli = Cli::command();
            let run = cli.find_subcommand_mut("run").expect("run subcommand");
            run.set_bin_name("continuum run");
            run.print_long_help().map_err(anyhow::Error::from)?;
            Ok(())
        }
        Top::Run { output, as_caller, remote, command, args } => {
            let data = DataDir::resolve(cli.data_dir.as_deref())?;
            match crate::node::client::NodeClient::find(data.root()) {
                Some(client) => grid::run(&client, &remote, output, as_caller.as_deref(), &command, &args),
                None if remote.is_remote() => Err(Exit {
                    code: 6,
                    message: "running on peers (--on) needs a running node; start one with `continuum serve`".into(),
                }),
                None => run(&crate::node::open_host(data)?, output, as_caller.as_deref(), &command, &args),
            }
        }
        Top::Serve(args) => grid::serve(open()?, args).map_err(Exit::from),
        Top::Node(cmd) => grid::node(DataDir::resolve(cli.data_dir.as_deref())?.root(), cmd).map_err(grid::api_exit),
        Top::Peer(cmd) => grid::peer(DataDir::resolve(cli.data_dir.as_deref())?.root(), cmd).map_err(grid::api_exit),
        Top::Offers { search, json } => {
            grid::offers(DataDir::resolve(cli.data_dir.as_deref())?.root(), search.as_deref(), json)
                .map_err(grid::api_exit)
        }
        Top::Apikey(cmd) => grid::apikey(&open()?, cmd).map_err(Exit::from),
        Top::Bench { suite: BenchSuite::Calls, plugin, iterations, .. } => {
            bench::run(&plugin, iterations).map_err(Exit::from)
        }
        Top::Bench { suite: BenchSuite::Http, plugin, clients, seconds, .. } => {
            bench_node::http(&plugin, clients, seconds).map_err(Exit::from)
        }
        Top::Bench { suite: BenchSuite::Grid, plugin, iterations, .. } => {
            bench_node::grid(&plugin, iterations.min(5_000)).map_err(Exit::from)
        }
        Top::Bench { suite: BenchSuite::Languages, iterations, .. } => {
            bench_languages::run(iterations.min(2_000)).map_err(Exit::from)
        }
        Top::Bench { suite: BenchSuite::Inference, models, tokens, rounds, threads, .. } => {
            bench_inference::run(&models, Path::new("build/plugins/llm"), tokens, rounds, threads).map_err(Exit::from)
        }
        Top::Key(cmd) => artifacts::key(&DataDir::resolve(cli.data_dir.as_deref())?, cmd).map_err(Exit::from),
        Top::Trust(cmd) => artifacts::trust(&open()?, cmd).map_err(Exit::from),
    }
}

/// After the CLI changed plugins or grants in the data directory, a node serving it re-reads
/// them: otherwise it would keep running a removed plugin or honour a revoked grant.
fn tell_running_node(root: &Path) {
    if let Some(node) = crate::node::client::NodeClient::find(root) {
        if let Err(e) = node.post("/v1/reload", &serde_json::Value::Null) {
            eprintln!(
                "warning: the node serving {} did not reload ({e:#}); restart it to apply this change",
                root.display()
            );
        }
    }
}

/// Finds the component and WIT folder of an install argument.
pub(crate) fn locate(path: &Path, wit: Option<PathBuf>) -> Result<(PathBuf, PathBuf)> {
    if path.is_dir() {
        let wasm: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("wasm"))
            .collect();
        let [wasm] = wasm.as_slice() else {
            bail!(
                "{} must hold exactly one .wasm file (found {}); or pass the .wasm file and --wit",
                path.display(),
                wasm.len()
            );
        };
        return Ok((wasm.clone(), wit.unwrap_or_else(|| path.join("wit"))));
    }
    let wit = match wit {
        Some(w) => w,
        None => {
            let beside = path.parent().unwrap_or(Path::new(".")).join("wit");
            if !beside.is_dir() {
                bail!("no WIT for {}: pass --wit <dir> with the WIT world the component implements", path.display());
            }
            beside
        }
    };
    Ok((path.to_path_buf(), wit))
}

fn plugin(host: &Host, cmd: PluginCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        PluginCmd::Install { path, from: Some(from), overrides, .. } => {
            let what = path.to_string_lossy();
            grid::install_from(host.core().data().root(), &what, &from, &overrides.allow, overrides.allow_untrusted)?;
        }
        PluginCmd::Install { path, overrides, .. } if path.extension().is_some_and(|e| e == "alloy") => {
            let record = artifacts::with_approval(overrides.allow.clone(), |allow| {
                host.install_alloy(&path, overrides.options(allow, false))
            })?;
            artifacts::print_installed(&mut out, &record)?;
        }
        PluginCmd::Upgrade { path, overrides, allow_new_publisher } => {
            let record = artifacts::with_approval(overrides.allow.clone(), |allow| {
                let options = crate::install::AlloyOptions { allow_new_publisher, ..overrides.options(allow, true) };
                host.install_alloy(&path, options)
            })?;
            artifacts::print_installed(&mut out, &record)?;
        }
        PluginCmd::Permissions { name } => artifacts::permissions(host, &mut out, &name)?,
        PluginCmd::Allow { name, capabilities } => {
            let approved = host.allow(&name, &capabilities)?;
            writeln!(
                out,
                "{name} may use: {}",
                if approved.is_empty() { "nothing".into() } else { approved.join(", ") }
            )?;
        }
        PluginCmd::Deny { name, capabilities } => {
            let approved = host.deny(&name, &capabilities)?;
            writeln!(
                out,
                "{name} may use: {}",
                if approved.is_empty() { "nothing".into() } else { approved.join(", ") }
            )?;
        }
        PluginCmd::Pack { path, key, wit, version, output } => {
            artifacts::pack(host, &path, &key, wit, version, output)?
        }
        PluginCmd::Verify { path } => artifacts::verify(host, &path)?,
        PluginCmd::Attest { path, key, output } => artifacts::attest(host, &path, &key, output)?,
        PluginCmd::Inspect { name, json } if name.ends_with(".alloy") => {
            artifacts::inspect_file(host, Path::new(&name), json)?
        }
        PluginCmd::Install { path, wit, name, world, replace, overrides, from: None } => {
            let (wasm, wit) = locate(&path, wit)?;
            let record = artifacts::with_approval(overrides.allow.clone(), |allow| {
                host.install_component(
                    &wasm,
                    &wit,
                    &InstallOptions { name: name.clone(), world: world.clone(), replace, allow },
                )
            })?;
            artifacts::print_installed(&mut out, &record)?;
        }
        PluginCmd::List { json } => {
            let plugins = host.plugins()?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&plugins)?)?;
            } else if plugins.is_empty() {
                writeln!(out, "no plugins installed; `continuum plugin install <dir>` adds one")?;
            } else {
                for p in plugins {
                    let version = p.version.as_deref().unwrap_or("dev");
                    writeln!(
                        out,
                        "{:<16} {:<8} {:>3} commands  {}  {}",
                        p.name,
                        version,
                        p.commands.len(),
                        &p.digest[..12],
                        strip_control(&p.description.unwrap_or_default())
                    )?;
                }
            }
        }
        PluginCmd::Inspect { name, json } => {
            let p = host.plugin(&name)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&p)?)?;
            } else {
                writeln!(
                    out,
                    "{}\n  world:     {}\n  digest:    sha256:{}\n  source:    {}",
                    p.name, p.world, p.digest, p.source
                )?;
                if let Some(d) = &p.description {
                    writeln!(out, "  about:     {}", strip_control(d))?;
                }
                artifacts::print_provenance(host, &mut out, &p)?;
                let approved = if p.approved.is_empty() { "none".to_string() } else { p.approved.join(", ") };
                writeln!(out, "  approved:  {approved}")?;
                writeln!(out, "  capabilities (imports):")?;
                for i in &p.imports {
                    writeln!(out, "    {i}")?;
                }
                writeln!(out, "  commands:")?;
                for c in &p.commands {
                    let access = crate::access::level(&p.access, &c.name);
                    writeln!(out, "    {:<28} {}", c.name, strip_control(c.description.as_deref().unwrap_or("")))?;
                    writeln!(
                        out,
                        "    {:<28} {} [{}]",
                        "",
                        strip_control(&help::signature(c)),
                        serde_json::to_value(access)?.as_str().unwrap_or("")
                    )?;
                }
            }
        }
        PluginCmd::New { name, lang, dir } => {
            let project = crate::authoring::scaffold::new_project(&dir, &name, lang)?;
            writeln!(out, "created {} ({} plugin `{name}`); next:", project.display(), lang.as_str())?;
            writeln!(out, "  cd {} && continuum plugin build", project.display())?;
            writeln!(out, "  continuum plugin pack build --key <your key> -o {name}.alloy")?;
        }
        PluginCmd::Build { dir } => {
            let started = std::time::Instant::now();
            let built = crate::authoring::toolchain::build(&dir)?;
            writeln!(
                out,
                "built {} ({}, {:.1} MB) into {} in {:.1} s; pack it with `continuum plugin pack {} --key <key>`",
                built.name,
                built.lang.as_str(),
                built.bytes as f64 / 1e6,
                built.dir.display(),
                started.elapsed().as_secs_f64(),
                built.dir.display()
            )?;
        }
        PluginCmd::Remove { name, purge } => {
            let r = host.remove(&name, purge)?;
            writeln!(out, "removed {}{}", r.name, if purge { " and its store" } else { "" })?;
        }
    }
    Ok(())
}

/// The caller an `--as KEY|TOKEN` flag names; the owner without one.
pub(crate) fn caller_from_flag(host: &Host, as_caller: Option<&str>) -> Result<Caller> {
    match as_caller {
        Some(spec) => host.caller_for(spec),
        None => Ok(Caller::owner()),
    }
}

fn list_commands(host: &Host, json: bool, as_caller: Option<&str>) -> Result<()> {
    let caller = caller_from_flag(host, as_caller)?;
    let commands = host.commands_for(&caller)?;
    let mut out = std::io::stdout().lock();
    if as_caller.is_some() && !json {
        let tier = serde_json::to_value(caller.tier())?;
        eprintln!(
            "commands {} may call (tier: {}):",
            crate::alloy::custody::short(&caller.id()),
            tier.as_str().unwrap_or("")
        );
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&commands)?)?;
    } else if commands.is_empty() && as_caller.is_some() {
        writeln!(out, "none")?;
    } else if commands.is_empty() {
        writeln!(out, "no commands: install a plugin with `continuum plugin install <dir>`")?;
    } else {
        for c in commands {
            let about = c.description.as_deref().and_then(|d| d.lines().next()).unwrap_or("");
            writeln!(out, "{:<28} {about}", c.name)?;
        }
    }
    Ok(())
}

/// On a terminal, shows generated text on stderr as it is produced (reasoning dimmed), before
/// the result is printed; returns whether anything was shown.
fn stream_tokens_to_terminal(host: &Host) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let shown = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if std::io::stderr().is_terminal() {
        let flag = shown.clone();
        host.core().set_token_sink(Some(std::sync::Arc::new(
            move |_command: &str, piece: &continuum_gpu::textstream::Piece| {
                use continuum_gpu::textstream::Piece;
                let mut err = std::io::stderr().lock();
                let _ = match piece {
                    Piece::Answer(t) => write!(err, "{}", strip_control(t)),
                    Piece::Reasoning(t) => write!(err, "\x1b[2m{}\x1b[0m", strip_control(t)),
                };
                let _ = err.flush();
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            },
        )));
    }
    shown
}

fn run(
    host: &Host,
    output: Option<OutputFormat>,
    as_caller: Option<&str>,
    name: &str,
    args: &[String],
) -> Result<(), Exit> {
    let caller = caller_from_flag(host, as_caller).map_err(|e| Exit { code: 5, message: format!("{e:#}") })?;
    let usage = |e: CallError| Exit { code: e.exit_code(), message: e.to_string() };
    let schema = host.command(name).map_err(usage)?;
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help::render(&schema));
        return Ok(());
    }
    let params = params::from_args(&schema, args).map_err(|e| Exit { code: 2, message: format!("{name}: {e:#}") })?;
    let streamed = stream_tokens_to_terminal(host);
    let report = host.call(&caller, name, &params);
    if streamed.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!();
    }
    // Plugin output goes to stderr, stripped of escape sequences, so stdout holds only the result.
    let mut err = std::io::stderr().lock();
    for (stream, bytes) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        for line in strip_control(&String::from_utf8_lossy(bytes)).lines() {
            let _ = writeln!(err, "[{name} {stream}] {line}");
        }
    }
    let value = report.result.map_err(|e| match e {
        CallError::InvalidParams { command, message } => Exit {
            code: 2,
            message: format!("{command}: {} (see `continuum run {command} --help`)", params::flag_error(&message)),
        },
        e => usage(e),
    })?;
    let format =
        output.unwrap_or(if std::io::stdout().is_terminal() { OutputFormat::Pretty } else { OutputFormat::Json });
    let text = match (format, &value) {
        (OutputFormat::Pretty, Value::String(s)) => strip_control(s),
        (OutputFormat::Pretty, v) => serde_json::to_string_pretty(v).context("printing the result")?,
        (OutputFormat::Json, v) => v.to_string(),
    };
    println!("{text}");
    Ok(())
}
