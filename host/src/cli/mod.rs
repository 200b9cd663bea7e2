//! The `continuum` command line: the top-level parser, the dispatch to each command group's
//! file (which owns its arguments and its `run`), logging, and how a failure becomes an exit
//! code.
//!
//! - `plugin …`: `plugin.rs` (signed artifacts in `artifacts.rs`);
//! - `commands [search]`: `commands.rs`; `run`: `run.rs` (in this process, through the running
//!   node, or on peers; `--detach` as a job); `jobs …`: `jobs.rs`;
//! - `model …`: `models.rs`; `events …`, `usage`: `events.rs`; `grant …`: `grant.rs`;
//! - `serve`, `node …`: `node.rs`; `peer …`, `offers`: `peer.rs`; `nodeset …`: `nodeset.rs`;
//!   `relay serve`: `relay.rs`; `apikey …`: `apikey.rs`;
//! - `key …`: `key.rs`; `trust …`: `trust.rs`; `bench …`: `bench.rs` (and `bench_*.rs`).
//!
//! Every command follows the conventions of `output.rs`: `--json`, `-q` and `--color`.

mod apikey;
mod artifacts;
mod bench;
mod bench_inference;
mod bench_languages;
mod bench_node;
mod commands;
mod console;
mod events;
mod grant;
pub(crate) mod help;
mod jobs;
mod key;
mod market;
mod mcp;
mod models;
mod node;
mod nodeset;
mod output;
mod params;
mod peer;
mod plugin;
mod relay;
mod run;
mod trust;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::node::client::ApiFailure;
use crate::paths::DataDir;
use crate::runtime::{CallError, Host};
use crate::Outcome;

/// Continuum: run sandboxed, typed WebAssembly commands.
#[derive(Debug, Parser)]
#[command(name = "continuum", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Top,
}

/// The options of every command, written before or after its name.
#[derive(Debug, clap::Args)]
struct Global {
    /// Data directory (default: $CONTINUUM_HOME, else ~/.local/share/continuum).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// More log output (-v debug, -vv trace); CONTINUUM_LOG takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    output: output::OutputFlags,
}

/// A `continuum run …` line, read without building every other command's parser: clap's
/// whole tree (every subcommand, the global options copied into each) was ≈ 9 % of the CPU
/// of a command-line call (docs/performance.md, "Command-line cold start"). It accepts
/// exactly the `run` lines [`Cli`] accepts, with the same meaning; any other line, or one it
/// refuses (`--help`, a usage error), is left to [`Cli`], which reads or reports it.
#[derive(Debug, Parser)]
#[command(name = "continuum", version, propagate_version = true)]
struct RunLine {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: RunOnly,
}

/// The one command of a [`RunLine`].
#[derive(Debug, Subcommand)]
enum RunOnly {
    /// Run a command (as [`Top::Run`]).
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Install, list, inspect and remove plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCmd),
    /// List the commands you may call (or, with --as, that another caller may call); `search` finds them by meaning.
    Commands(commands::CommandsArgs),
    /// The models behind `continuum:host/inference` and `training`: add, list, remove.
    #[command(subcommand)]
    Model(models::ModelCmd),
    /// The event log: tail, verify, export, import.
    #[command(subcommand)]
    Events(events::EventsCmd),
    /// Metering from the event log: calls, failures, time and bytes per grantee or command.
    Usage(events::UsageArgs),
    /// Capability grants: who may call what, until when.
    #[command(subcommand)]
    Grant(grant::GrantCmd),
    /// Run a command: `continuum run text/stats --text "…"`; `--help` after the name shows its parameters.
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Jobs of the running node (`run --detach`): list, status, wait, logs, cancel.
    #[command(subcommand)]
    Jobs(jobs::JobsCmd),
    /// Benchmarks: `calls` (default) measures call overhead against raw wasmtime, install-to-first-call,
    /// grants and the event log; `inference` measures llama.cpp and candle direct vs through WIT;
    /// `languages` the same command built from Rust, Python and JavaScript; `http` the node's API
    /// under concurrent clients; `grid` remote calls and plugin fetch between nodes.
    Bench(bench::BenchArgs),
    /// Serve MCP over stdin/stdout: every command you (or --as a grantee) may call is a tool.
    Mcp(mcp::McpArgs),
    /// Run this node: the HTTP API (loopback and a unix socket) and the grid endpoint, until stopped.
    Serve(node::ServeArgs),
    /// The running node: info, stop.
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// A one-time login link to the running node's web console, for its owner (see docs/console.md).
    Console,
    /// Grid peers: add, list, remove (needs a running node).
    #[command(subcommand)]
    Peer(peer::PeerCmd),
    /// What peers offer: plugins, commands, terms (`--search` ranks commands by meaning).
    Offers(peer::OffersArgs),
    /// One owner, many nodes: sign, join, import and show node sets (a grant to the owner covers each node).
    #[command(subcommand)]
    Nodeset(nodeset::NodeSetCmd),
    /// Run a relay server for your own peers behind NAT (only the node keys you allow).
    #[command(subcommand)]
    Relay(relay::RelayCmd),
    /// Receipts of remote calls, jobs and purchases, signed by both sides: list, show, verify, export.
    #[command(subcommand)]
    Receipts(market::ReceiptsCmd),
    /// Credits earned and spent per peer (from the receipts); signed statements and reconciling them.
    Credits(market::CreditsArgs),
    /// API keys for HTTP clients, each mapped to a grantee.
    #[command(subcommand)]
    Apikey(apikey::ApiKeyCmd),
    /// Signing keys: generate, list, export a public key.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// The trust store: publisher keys whose alloys install without --allow-untrusted.
    #[command(subcommand)]
    Trust(trust::TrustCmd),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
    /// How it ended, when the failure names an outcome (a call's, or the node's API error's).
    pub outcome: Option<Outcome>,
}

impl Exit {
    /// Whether the failure is only that stdout was closed early (`continuum … | head`),
    /// which is not an error for a command-line tool.
    pub fn is_broken_pipe(&self) -> bool {
        self.code == 0
    }

    /// A failure that ended the way `outcome` names, with that outcome's exit code.
    fn of(outcome: Outcome, message: impl Into<String>) -> Exit {
        Exit { code: outcome.exit_code(), message: message.into(), outcome: Some(outcome) }
    }

    /// The line that reports the failure on stderr: `error: …`, or with `--json` one JSON object
    /// `{"error": {"message", "exit_code", "outcome"}}` (`outcome` when known). Errors quote what
    /// they refuse (names, paths, fields of untrusted artifacts): no control character of the
    /// message may reach the terminal.
    pub fn report(&self) -> String {
        let message = crate::terminal::strip_control(&self.message);
        if !output::json() {
            return format!("error: {message}");
        }
        let mut error = serde_json::json!({ "message": message, "exit_code": self.code });
        if let Some(outcome) = self.outcome {
            error["outcome"] = serde_json::json!(outcome);
        }
        serde_json::json!({ "error": error }).to_string()
    }

    /// A failed request to the running node: the exit code of the outcome its API error names
    /// (as for the same failure in this process); any other error as usual.
    fn from_api(e: anyhow::Error) -> Exit {
        match api_outcome(&e) {
            Some((outcome, message)) => Exit::of(outcome, message),
            None => Exit::from(e),
        }
    }
}

/// How a request to the running node ended and the node's message, when it answered with an
/// API error (whose `code` the client reads as an [`Outcome`]).
fn api_outcome(e: &anyhow::Error) -> Option<(Outcome, &str)> {
    let failure = e.downcast_ref::<ApiFailure>()?;
    Some((failure.code, failure.message.as_str()))
}

impl From<anyhow::Error> for Exit {
    fn from(e: anyhow::Error) -> Self {
        let broken_pipe = e
            .chain()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe));
        Exit { code: if broken_pipe { 0 } else { 1 }, message: format!("{e:#}"), outcome: None }
    }
}

impl From<CallError> for Exit {
    fn from(e: CallError) -> Self {
        Exit::of(e.outcome(), e.to_string())
    }
}

/// The earliest time (ms since the epoch) `--since <duration>` allows: 0 without one.
fn since_ms(since: Option<&str>) -> Result<i64> {
    match since {
        None => Ok(0),
        Some(text) => {
            let d = humantime::parse_duration(text)
                .with_context(|| format!("`{text}` is not a duration; write e.g. 24h, 7days"))?;
            Ok(crate::now_ms() - d.as_millis() as i64)
        }
    }
}

/// At most the first `len` bytes of an id or digest, for a compact column.
fn prefix(id: &str, len: usize) -> &str {
    id.get(..len).unwrap_or(id)
}

/// Logs to stderr at the level `-v` asks for (or CONTINUUM_LOG's filter), coloured if `ansi`.
fn init_tracing(verbose: u8, plugin_logs: bool, ansi: bool) {
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
        .with_ansi(ansi)
        .try_init();
}

/// Parses the command line `words` (clap's own help and usage errors coloured as `--color`
/// says); the output flags written after `run`'s command name are that command's parameters.
fn parse(words: Vec<OsString>) -> Cli {
    parse_run_line(&words).unwrap_or_else(|| parse_whole(words))
}

/// `words` read by the whole parser, [`Cli`]; a usage error (or `--help`) ends the process.
fn parse_whole(words: Vec<OsString>) -> Cli {
    let mut command = Cli::command().color(output::clap_color_of(words.clone()));
    let matches = command.try_get_matches_from_mut(words.clone()).unwrap_or_else(|e| e.exit());
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    if let (Top::Run(args), Some(("run", run))) = (&mut cli.command, matches.subcommand()) {
        run::reclaim_params(Cli::command(), words, run, args, &mut cli.global.output);
    }
    cli
}

/// `words` read as a [`RunLine`]; `None` when it is not one, or not a valid one.
fn parse_run_line(words: &[OsString]) -> Option<Cli> {
    let matches = RunLine::command().try_get_matches_from(words).ok()?;
    let RunLine { mut global, command: RunOnly::Run(mut args) } = RunLine::from_arg_matches(&matches).ok()?;
    let (_, run) = matches.subcommand()?;
    run::reclaim_params(RunLine::command(), words.to_vec(), run, &mut args, &mut global.output);
    Some(Cli { global, command: Top::Run(args) })
}

/// Parses the command line and runs it.
pub fn main() -> Result<(), Exit> {
    let cli = parse(std::env::args_os().collect());
    output::init(cli.global.output.clone());
    // Benchmarks call plugins thousands of times: their log lines would drown the figures.
    init_tracing(cli.global.verbose, !matches!(cli.command, Top::Bench(_)), output::color_stderr());
    let data_dir = cli.global.data_dir.as_deref();
    let data = || DataDir::resolve(data_dir);
    // A command-line process runs one call at a time; `serve` opens its own host below.
    let open = || -> Result<Host> { crate::node::open_host_for(data()?, crate::Calls::OneAtATime) };
    match cli.command {
        Top::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "continuum", &mut std::io::stdout());
            Ok(())
        }
        Top::Plugin(cmd) => plugin::run(&open()?, cmd).map_err(Exit::from_api),
        Top::Commands(args) => commands::run(args, data()?),
        Top::Model(cmd) => models::run(&open()?, cmd).map_err(Exit::from),
        Top::Events(cmd) => events::run(cmd, data()?),
        Top::Usage(args) => events::usage(&open()?, args).map_err(Exit::from),
        Top::Grant(cmd) => grant::run(&open()?, cmd).map_err(Exit::from),
        Top::Run(args) => run::run(args, data_dir),
        Top::Jobs(cmd) => jobs::run(data()?, cmd),
        Top::Bench(args) => bench::run(args).map_err(Exit::from),
        Top::Mcp(args) => mcp::run(args, data()?).map_err(Exit::from),
        Top::Serve(args) => node::serve(crate::node::open_host(data()?)?, args).map_err(Exit::from),
        Top::Node(cmd) => node::run(data()?.root(), cmd).map_err(Exit::from_api),
        Top::Console => console::run(data()?.root()).map_err(Exit::from_api),
        Top::Peer(cmd) => peer::run(data()?.root(), cmd).map_err(Exit::from_api),
        Top::Offers(args) => peer::offers(data()?.root(), args.search.as_deref()).map_err(Exit::from_api),
        Top::Nodeset(cmd) => nodeset::run(&data()?, open, cmd).map_err(Exit::from),
        Top::Relay(cmd) => relay::run(cmd).map_err(Exit::from),
        Top::Receipts(cmd) => market::receipts(&open()?, cmd).map_err(Exit::from),
        Top::Credits(args) => market::credits_cmd(&open()?, args).map_err(Exit::from),
        Top::Apikey(cmd) => apikey::run(&open()?, cmd).map_err(Exit::from),
        Top::Key(cmd) => key::run(&data()?, cmd).map_err(Exit::from),
        Top::Trust(cmd) => trust::run(&open()?, cmd).map_err(Exit::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `line` parsed as the command line.
    pub(super) fn parsed(line: &str) -> Cli {
        parse(line.split_whitespace().map(OsString::from).collect())
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_run_line_means_the_same_to_its_own_parser_and_the_whole_one() {
        let words = |line: &str| line.split_whitespace().map(OsString::from).collect::<Vec<_>>();
        for line in [
            "continuum run text/stats --text hi",
            "continuum -vv --data-dir /d --json run text/stats --text hi",
            "continuum --json run -q --color never text/stats --json --text hi",
            "continuum run --output pretty --as abc --on any --quorum multi --min 2 text/stats {}",
            "continuum run --detach --lease 30s text/stats --help",
            "continuum run --help",
            "continuum run wasi-main -- --verbose -x",
        ] {
            let fast = parse_run_line(&words(line)).unwrap_or_else(|| panic!("`{line}` was not read as a run line"));
            assert_eq!(format!("{fast:?}"), format!("{:?}", parse_whole(words(line))), "{line}");
        }
        // Left to the whole parser: other commands, its own help and version, usage errors.
        for line in [
            "continuum plugin list",
            "continuum --data-dir /d key list",
            "continuum --help",
            "continuum --version",
            "continuum run",
            "continuum run --quorum some text/stats",
            "continuum",
        ] {
            assert!(parse_run_line(&words(line)).is_none(), "`{line}` was read as a run line");
        }
    }

    #[test]
    fn output_flags_are_read_before_and_after_the_subcommand() {
        for line in
            ["continuum --json -q plugin list --color never", "continuum plugin list --json --quiet --color=never"]
        {
            let flags = parsed(line).global.output;
            assert!(flags.json && flags.quiet && flags.color == clap::ColorChoice::Never, "{line}: {flags:?}");
        }
        let flags = parsed("continuum key list").global.output;
        assert!(!flags.json && !flags.quiet && flags.color == clap::ColorChoice::Auto, "{flags:?}");
    }
}
