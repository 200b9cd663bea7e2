//! `continuum run <command> [params]`: the one path for a call. Without a running node the
//! command runs in this process; with one, through it (models stay resident, the log has one
//! writer); with `--on`, on peers through it. All three read the parameters by the command's
//! schema, print the result and map how the call ended to an exit code the same way.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, ColorChoice, Command, CommandFactory};
use serde_json::{json, Value};

use super::commands::caller_from_flag;
use super::output::{self, OutputFlags};
use super::{api_outcome, help, node, params, prefix, Cli, Exit, OutputFormat};
use crate::grid::dispatch::GridResult;
use crate::grid::KnownOffer;
use crate::node::client::NodeClient;
use crate::node::http::{CallResponse, SubmitJob};
use crate::node::jobs::JobView;
use crate::paths::DataDir;
use crate::reflect::{CommandSchema, ParamStyle};
use crate::runtime::watch::{CallEvent, Purpose, Watch};
use crate::runtime::{CallError, Host};
use crate::sync::lock;
use crate::terminal::strip_control;
use crate::{Caller, Outcome};

/// The arguments of `continuum run`.
#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    /// How to print the result (default: json with --json, else pretty on a terminal, json
    /// otherwise).
    #[arg(long, value_enum)]
    output: Option<OutputFormat>,
    /// Run as this caller: a public key (no grant), or a grant token.
    #[arg(long = "as", value_name = "KEY|TOKEN")]
    as_caller: Option<String>,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Run it as a job of the running node (on a peer with --on) and print the job's id;
    /// follow it with `continuum jobs wait|logs|status`.
    #[arg(long)]
    detach: bool,
    /// With --detach --on: the job's lease on the peer (`30s`); it is cancelled there if this
    /// node stops renewing it for that long.
    #[arg(long, value_name = "DURATION", requires = "detach")]
    lease: Option<String>,
    /// Show live events (generated text, progress) on stderr as they come, even when stderr is
    /// not a terminal (on a terminal they always are).
    #[arg(long)]
    stream: bool,
    /// The command, `plugin/function`.
    #[arg(allow_hyphen_values = true)]
    command: String,
    /// The command's parameters: --flags from its schema, or one JSON object.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "PARAMS")]
    args: Vec<String>,
}

/// Remote-dispatch flags of `continuum run`.
#[derive(Debug, clap::Args)]
struct RemoteArgs {
    /// Run on peers: a peer (id, prefix or name), `any`, or `all`.
    #[arg(long)]
    on: Option<String>,
    /// single (default), multi, or any.
    #[arg(long, value_parser = ["single", "multi", "any"])]
    quorum: Option<String>,
    /// Fewest answers (multi: 2).
    #[arg(long)]
    min: Option<usize>,
    /// Most peers asked (multi: 8).
    #[arg(long)]
    max: Option<usize>,
    /// majority, union, fedavg, weighted-average, best-of-n, first-good, merge-top-k, or a command.
    #[arg(long)]
    reduce: Option<String>,
    /// How many items merge-top-k keeps.
    #[arg(long)]
    k: Option<usize>,
    /// When fewer than --min answer: fail (default), degraded, or wait=<duration>.
    #[arg(long)]
    if_under_min: Option<String>,
    /// A grant token to present (default: the one stored with the peer).
    #[arg(long)]
    grant: Option<String>,
    /// Per-peer time limit (`30s`).
    #[arg(long)]
    timeout: Option<String>,
    /// With `--on any|all`: also run on nodes that are not peers, known only from offers
    /// relayed by gossip (they see the parameters). Off by default.
    #[arg(long)]
    strangers: bool,
    /// With `--on any|all`: which peer first — fastest (expected completion time, the
    /// default), cheapest, or least-loaded.
    #[arg(long, value_parser = ["fastest", "cheapest", "least-loaded"])]
    route: Option<String>,
    /// Skip peers expected to charge more than this many credits for the call (`0.5`).
    #[arg(long)]
    max_price: Option<String>,
    /// An id for the call (8–64 letters, digits, `-`, `_`): a peer runs it once per id, so
    /// running the same line again with the same id returns the first answer.
    #[arg(long)]
    request_id: Option<String>,
}

/// Where a call runs.
enum Route {
    /// No node is running: this process opens the data directory and runs the command as this
    /// caller.
    InProcess(Host, Caller),
    /// Through the running node, as its owner or as `--as`.
    Node(NodeClient),
    /// Through the running node on peers: `--on` (a peer, `any` or `all`).
    Peers(NodeClient, String),
}

impl Route {
    /// Where `continuum run` sends the call: through the node serving `data` if one runs,
    /// otherwise in this process (where `--on` cannot be served).
    fn choose(data: DataDir, args: &RunArgs) -> Result<Route, Exit> {
        match (NodeClient::find(data.root()), &args.remote.on) {
            (Some(client), Some(on)) => Ok(Route::Peers(client, on.clone())),
            (Some(client), None) => Ok(Route::Node(client)),
            (None, Some(_)) => Err(Exit::of(
                Outcome::NoPeer,
                "running on peers (--on) needs a running node; start one with `continuum serve`",
            )),
            (None, None) => {
                let host = crate::node::open_host_for(data, crate::Calls::OneAtATime)?;
                let caller = caller_from_flag(&host, args.as_caller.as_deref())
                    .map_err(|e| Exit::of(Outcome::Unauthenticated, format!("{e:#}")))?;
                Ok(Route::InProcess(host, caller))
            }
        }
    }

    /// The command's schema; on peers, from their offers (the command may not be installed
    /// here), and `None` when no offer describes it.
    fn schema(&self, name: &str) -> Result<Option<CommandSchema>, Exit> {
        match self {
            Route::InProcess(host, _) => Ok(Some(host.command(name)?)),
            Route::Node(client) => node::get(client, &format!("/v1/commands/{name}")).map(Some).map_err(Exit::from_api),
            Route::Peers(client, _) => offered_schema(client, name),
        }
    }

    /// Makes the call and returns its result; what the plugin printed, and which peers
    /// answered, go to stderr.
    fn call(&self, args: &RunArgs, params: &Value) -> Result<Value, Exit> {
        let name = args.command.as_str();
        let live = args.stream || (std::io::stderr().is_terminal() && !output::quiet());
        match self {
            Route::InProcess(host, caller) => call_in_process(host, caller, name, params, live),
            Route::Node(client) => call_through_node(client, args.as_caller.as_deref(), name, params, live),
            Route::Peers(client, on) => call_on_peers(client, &args.remote, on, name, params, live),
        }
    }

    /// Submits the call as a job of the running node (on a peer with `--on`); the job.
    fn detach(&self, args: &RunArgs, params: &Value) -> Result<JobView, Exit> {
        let lease = args
            .lease
            .as_deref()
            .map(humantime::parse_duration)
            .transpose()
            .map_err(|e| Exit::of(Outcome::BadRequest, format!("--lease: {e}")))?;
        let (client, on) = match self {
            Route::InProcess(..) => {
                return Err(Exit::of(
                    Outcome::BadRequest,
                    "--detach runs the command as a job of the running node; start one with `continuum serve`",
                ))
            }
            Route::Node(client) => (client, None),
            Route::Peers(client, on) => (client, Some(on.clone())),
        };
        if lease.is_some() && on.is_none() {
            return Err(Exit::of(Outcome::BadRequest, "--lease applies to jobs on peers (--on)"));
        }
        let remote = &args.remote;
        if remote.quorum.as_deref().is_some_and(|q| q != "single") || remote.if_under_min.is_some() {
            return Err(Exit::of(
                Outcome::BadRequest,
                "a job runs on one peer: --quorum multi|any and --if-under-min apply to calls, not with --detach",
            ));
        }
        let submit = SubmitJob {
            command: args.command.clone(),
            params: Some(params.clone()),
            grant: args.remote.grant.clone().filter(|_| on.is_some()),
            strangers: args.remote.strangers,
            lease_ms: lease.map(|l| l.as_millis() as u64),
            on,
        };
        let headers: Vec<(&str, &str)> = args.as_caller.as_deref().map(|a| ("x-continuum-as", a)).into_iter().collect();
        let body = serde_json::to_value(&submit).context("encoding the job")?;
        node::send(client, "POST", "/v1/jobs", Some(&body), &headers).map_err(Exit::from_api)
    }
}

/// Takes the words after `--` (`continuum run wc -- a.txt b.txt`): a program's arguments, never
/// read as flags. clap drops the `--` itself, so the words are counted on the raw command line.
fn take_passed_through(args: &mut RunArgs) -> Vec<String> {
    let count = std::env::args_os().skip_while(|a| a != "--").skip(1).count().min(args.args.len());
    args.args.split_off(args.args.len() - count)
}

/// Moves `--detach`, `--stream` and `--lease <duration>` written among the command's
/// parameters (`continuum run text/stats --text hi --detach`) to `run`'s own flags: they are
/// `run`'s, whatever the command takes.
fn take_run_flags(args: &mut RunArgs) -> Result<(), Exit> {
    let mut rest = Vec::with_capacity(args.args.len());
    let mut words = std::mem::take(&mut args.args).into_iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--detach" => args.detach = true,
            "--stream" => args.stream = true,
            "--lease" => {
                let value =
                    words.next().ok_or_else(|| Exit::of(Outcome::BadRequest, "--lease needs a duration (30s)"))?;
                args.lease = Some(value);
            }
            w if w.starts_with("--lease=") => args.lease = Some(w["--lease=".len()..].to_string()),
            _ => rest.push(word),
        }
    }
    args.args = rest;
    if args.lease.is_some() && !args.detach {
        return Err(Exit::of(Outcome::BadRequest, "--lease applies to jobs: add --detach"));
    }
    Ok(())
}

/// Gives the command back the output flags written after its name (`continuum run text/stats
/// --json …`): clap reads a flag it knows there, before the first parameter, but what follows
/// the command name is the command's (it may take a `json` parameter). Written before `run`
/// (`continuum --json run …`) or between `run` and the name, they are `continuum`'s.
pub(super) fn reclaim_params(
    parser: Command,
    words: Vec<OsString>,
    matches: &ArgMatches,
    args: &mut RunArgs,
    flags: &mut OutputFlags,
) {
    let (Some(name_at), Some(before_run)) = (matches.index_of("command"), written_before_run(parser, words)) else {
        return;
    };
    // Not written before `run`, a flag was read by `run`'s parser, whose indices are `matches`'.
    let after_name = |id: &str| {
        before_run.value_source(id) != Some(ValueSource::CommandLine)
            && matches.value_source(id) == Some(ValueSource::CommandLine)
            && matches.index_of(id).is_some_and(|i| i > name_at)
    };
    let mut reclaimed = Vec::new();
    if after_name("json") {
        flags.json = false;
        reclaimed.push("--json".to_string());
    }
    if after_name("quiet") {
        flags.quiet = false;
        reclaimed.push("--quiet".to_string());
    }
    if after_name("color") {
        let color = std::mem::replace(&mut flags.color, ColorChoice::Auto);
        reclaimed.extend(["--color".to_string(), color.to_string()]);
    }
    args.args.splice(0..0, reclaimed);
}

/// The command line `words` parsed again by `parser` (the one that read it), with the output
/// flags read only before the subcommand and `run`'s words left unread: which of them were
/// written before `run`.
fn written_before_run(parser: Command, words: Vec<OsString>) -> Option<ArgMatches> {
    let mut cli = parser;
    for id in ["json", "quiet", "color"] {
        cli = cli.mut_arg(id, |arg| arg.global(false));
    }
    let rest = Arg::new("rest").num_args(0..).trailing_var_arg(true).allow_hyphen_values(true);
    let cli = cli.mut_subcommand("run", |_| Command::new("run").disable_help_flag(true).arg(rest));
    cli.try_get_matches_from(words).ok()
}

/// Runs `continuum run`: `--help` as the command prints this page; `--help` among the
/// parameters prints the command's (its schema with `--json`).
pub(super) fn run(mut args: RunArgs, data_dir: Option<&Path>) -> Result<(), Exit> {
    let passed_through = take_passed_through(&mut args);
    take_run_flags(&mut args)?;
    if args.command == "--help" || args.command == "-h" {
        let mut cli = Cli::command().color(output::clap_color());
        let run = cli.find_subcommand_mut("run").expect("run subcommand");
        run.set_bin_name("continuum run");
        run.print_long_help().map_err(anyhow::Error::from)?;
        return Ok(());
    }
    let name = args.command.as_str();
    let route = Route::choose(DataDir::resolve(data_dir)?, &args)?;
    let params = match route.schema(name)? {
        Some(schema) if args.args.iter().any(|a| a == "--help" || a == "-h") => {
            let mut out = std::io::stdout().lock();
            output::emit(&mut out, &schema, |out| Ok(write!(out, "{}", help::render(&schema))?))?;
            return Ok(());
        }
        Some(schema) => params::from_args(&schema, &args.args)
            .and_then(|p| params::with_passed_through(&schema, p, passed_through))
            .map_err(|e| Exit::of(Outcome::InvalidParams, format!("{name}: {e:#}")))?,
        None => unoffered_params(name, &args.args)?,
    };
    if args.detach {
        let job = route.detach(&args, &params)?;
        match output_format(args.output) {
            Some(OutputFormat::Json) => println!("{}", serde_json::to_string(&job).context("printing the job")?),
            _ => println!("{}", job.id),
        }
        return Ok(());
    }
    let value = route.call(&args, &params)?;
    print_value(&value, args.output)
}

/// The schema a peer's offer gives for `name`, if any offer has it.
fn offered_schema(client: &NodeClient, name: &str) -> Result<Option<CommandSchema>, Exit> {
    let offers: Vec<KnownOffer> = node::get(client, "/v1/offers").map_err(Exit::from_api)?;
    let offered = offers.iter().flat_map(|k| &k.offer.plugins).flat_map(|p| &p.commands).find(|c| c.name == name);
    Ok(offered.map(|c| CommandSchema {
        name: name.to_string(),
        description: c.description.clone(),
        param_style: ParamStyle::Named,
        params: c.params.clone(),
        result: c.result.clone(),
        error: None,
    }))
}

/// The parameters of a command no offer describes: one JSON object, sent as it is.
fn unoffered_params(name: &str, args: &[String]) -> Result<Value, Exit> {
    match args {
        [one] if one.trim_start().starts_with('{') => {
            serde_json::from_str(one).map_err(|e| Exit::of(Outcome::InvalidParams, format!("{name}: {e}")))
        }
        _ => Err(Exit::of(
            Outcome::NoPeer,
            format!("no peer offers `{name}` (`continuum offers` lists what peers offer); pass the parameters as one JSON object to try anyway"),
        )),
    }
}

/// Parameters the command refused (`problem`), pointing at its help page.
fn invalid_params(name: &str, problem: &str) -> Exit {
    Exit::of(Outcome::InvalidParams, format!("{problem} (see `continuum run {name} --help`)"))
}

/// A watch that, when `live`, shows the call's live events on `display` as they come.
fn terminal_watch(live: bool, display: Arc<Mutex<LiveDisplay>>) -> Arc<Watch> {
    if !live {
        return Arc::default();
    }
    let sink = move |event: CallEvent| lock(&display).show(&event);
    Arc::new(Watch::new(Purpose::Interactive, Some(Arc::new(sink))))
}

/// Shows a call's live events on stderr before its result is printed: generated text as it
/// comes (reasoning dimmed); progress on one line rewritten in place on a terminal, otherwise a
/// line per tenth of the work. Output is shown with the result instead.
#[derive(Default)]
pub(super) struct LiveDisplay {
    /// Whether stderr is a terminal.
    terminal: bool,
    /// Whether to colour (dim the reasoning).
    color: bool,
    /// The tenth of the work last reported (off a terminal).
    tenth: Option<u32>,
    /// What the last, unfinished line holds.
    line: OpenLine,
}

/// The last line a [`LiveDisplay`] wrote, while it is unfinished.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum OpenLine {
    /// None: the next write starts a line.
    #[default]
    Closed,
    /// Generated text.
    Text,
    /// A progress report rewritten in place (on a terminal).
    Progress,
}

impl LiveDisplay {
    /// A display on this process's stderr.
    pub(super) fn new() -> LiveDisplay {
        LiveDisplay {
            terminal: std::io::stderr().is_terminal(),
            color: output::color_stderr(),
            ..LiveDisplay::default()
        }
    }

    /// Shows one live event.
    pub(super) fn show(&mut self, event: &CallEvent) {
        let mut err = std::io::stderr().lock();
        match event {
            CallEvent::Token { text, reasoning, .. } => {
                if self.line == OpenLine::Progress {
                    let _ = writeln!(err);
                }
                let _ = match *reasoning && self.color {
                    false => write!(err, "{}", strip_control(text)),
                    true => write!(err, "\x1b[2m{}\x1b[0m", strip_control(text)),
                };
                self.line = OpenLine::Text;
            }
            CallEvent::Progress { fraction, message, .. } => {
                let report = format!("[{:>3.0} %] {}", fraction * 100.0, strip_control(message));
                let tenth = (fraction * 10.0) as u32;
                let newline = if self.line == OpenLine::Text { "\n" } else { "" };
                if self.terminal {
                    let _ = write!(err, "{newline}\r\x1b[2K{report}");
                    self.line = OpenLine::Progress;
                } else if self.tenth != Some(tenth) {
                    let _ = writeln!(err, "{newline}{report}");
                    (self.line, self.tenth) = (OpenLine::Closed, Some(tenth));
                }
            }
            CallEvent::Output { .. } => return,
        }
        let _ = err.flush();
    }

    /// Ends the last line shown, if it is unfinished.
    pub(super) fn finish(&mut self) {
        if std::mem::take(&mut self.line) != OpenLine::Closed {
            eprintln!();
        }
    }
}

/// The call in this process; the plugin's output goes to stderr, stripped of escape sequences,
/// so stdout holds only the result.
fn call_in_process(host: &Host, caller: &Caller, name: &str, params: &Value, live: bool) -> Result<Value, Exit> {
    let display = Arc::new(Mutex::new(LiveDisplay::new()));
    let report = host.call_watched(caller, name, params, terminal_watch(live, display.clone()));
    lock(&display).finish();
    let mut err = std::io::stderr().lock();
    for (stream, bytes) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        for line in strip_control(&String::from_utf8_lossy(bytes)).lines() {
            let _ = writeln!(err, "[{name} {stream}] {line}");
        }
    }
    report.result.map_err(|e| match e {
        CallError::InvalidParams { command, message } => {
            invalid_params(&command, &format!("{command}: {}", params::flag_error(&message)))
        }
        e => Exit::from(e),
    })
}

/// The call through the running node, as `as_caller` if given; the node sends the plugin's
/// output (already stripped) with the result. When `live`, the node streams the call's events
/// and they are shown as they come.
fn call_through_node(
    client: &NodeClient,
    as_caller: Option<&str>,
    name: &str,
    params: &Value,
    live: bool,
) -> Result<Value, Exit> {
    let headers: Vec<(&str, &str)> = as_caller.map(|a| ("x-continuum-as", a)).into_iter().collect();
    let path = format!("/v1/commands/{name}");
    let answer = if live {
        streamed(client, &path, params, &headers)
    } else {
        node::send(client, "POST", &path, Some(params), &headers)
    };
    let response: CallResponse = answer.map_err(|e| match api_outcome(&e) {
        Some((Outcome::InvalidParams, message)) => invalid_params(name, &params::flag_error(message)),
        _ => Exit::from_api(e),
    })?;
    for line in response.output.iter().flat_map(|output| output.lines()) {
        eprintln!("[{name}] {line}");
    }
    Ok(response.result)
}

/// `POST path` with `body` asking for server-sent events: live events are shown on stderr as
/// they come; the `end` event's data is the answer, an `error` event's the failure.
fn streamed<T: serde::de::DeserializeOwned>(
    client: &NodeClient,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> anyhow::Result<T> {
    let mut display = LiveDisplay::new();
    let mut end = None;
    client.events("POST", path, Some(body), headers, |name, data| {
        match name {
            "end" => end = Some(Ok(data)),
            "error" => end = Some(Err(data)),
            "lagged" => eprintln!("[{} live events were dropped: this terminal read too slowly]", data["skipped"]),
            _ => {
                if let Ok(event) = serde_json::from_value::<CallEvent>(data) {
                    display.show(&event);
                }
            }
        }
        end.is_none()
    })?;
    display.finish();
    match end {
        Some(Ok(data)) => serde_json::from_value(data).context("the node's answer is not what this version expects"),
        Some(Err(error)) => Err(crate::node::client::ApiFailure::from_error_body(error).into()),
        None => anyhow::bail!("the node ended the stream before the answer (is it stopping?)"),
    }
}

/// The call on peers through the running node, with the quorum flags; which peers contributed
/// goes to stderr. When `live`, a single peer's live events are shown as they arrive.
fn call_on_peers(
    client: &NodeClient,
    remote: &RemoteArgs,
    on: &str,
    name: &str,
    params: &Value,
    live: bool,
) -> Result<Value, Exit> {
    let timeout = remote
        .timeout
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
        .map_err(|e| Exit::of(Outcome::BadRequest, format!("--timeout: {e}")))?;
    let call = json!({
        "command": name, "params": params, "on": on, "quorum": remote.quorum.as_deref().unwrap_or("single"),
        "min": remote.min, "max": remote.max, "reduce": remote.reduce, "k": remote.k,
        "if_under_min": remote.if_under_min, "grant": remote.grant,
        "timeout_ms": timeout.map(|t| t.as_millis() as u64), "strangers": remote.strangers,
        "route": remote.route, "max_price": remote.max_price, "request_id": remote.request_id,
    });
    let result: GridResult =
        if live { streamed(client, "/v1/grid/call", &call, &[]) } else { node::post(client, "/v1/grid/call", &call) }
            .map_err(Exit::from_api)?;
    let mut notes = vec![
        format!(
            "[from {}{}{}]",
            result.contributors.iter().map(|c| prefix(c, 12)).collect::<Vec<_>>().join(", "),
            result.reducer.as_deref().map(|r| format!(" by {r}")).unwrap_or_default(),
            if result.degraded { ", degraded: fewer than --min answered" } else { "" }
        ),
        format!("[contributors {}]", result.contributors.join(",")),
    ];
    notes.extend(result.route.as_ref().map(|route| format!("[route {route}]")));
    notes.extend(result.attempts.iter().filter_map(|attempt| match (&attempt.receipt, &attempt.dispute) {
        (Some(id), _) => Some(format!(
            "[receipt {id} from {}: {} credits]",
            prefix(&attempt.peer, 12),
            crate::node::market::terms::credits(attempt.millicredits.unwrap_or(0))
        )),
        (None, Some(why)) => Some(format!("[receipt from {} not countersigned: {why}]", prefix(&attempt.peer, 12))),
        (None, None) => None,
    }));
    let mut err = std::io::stderr().lock();
    for line in notes {
        let _ = output::note(&mut err, line);
    }
    Ok(result.value)
}

/// The format `--output` names, else json with `--json`; `None` leaves it to the caller.
fn output_format(output: Option<OutputFormat>) -> Option<OutputFormat> {
    output.or(output::json().then_some(OutputFormat::Json))
}

/// Prints a call's result on stdout as `--output` says; by default one line of JSON with
/// `--json` or off a terminal, else pretty (a string result as plain text).
pub(super) fn print_value(value: &Value, output: Option<OutputFormat>) -> Result<(), Exit> {
    let format = output_format(output).unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Pretty
    } else {
        OutputFormat::Json
    });
    let text = match (format, value) {
        (OutputFormat::Pretty, Value::String(s)) => strip_control(s),
        (OutputFormat::Pretty, v) => serde_json::to_string_pretty(v).context("printing the result")?,
        (OutputFormat::Json, v) => v.to_string(),
    };
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::parsed;
    use super::super::Top;

    /// The output flags and `run`'s parameters of `line`.
    fn run_of(line: &str) -> (bool, bool, String, Vec<String>) {
        let cli = parsed(line);
        let Top::Run(args) = cli.command else { panic!("{line} is not a run") };
        (cli.global.output.json, cli.global.output.quiet, cli.global.output.color.to_string(), args.args)
    }

    #[test]
    fn output_flags_after_the_command_name_are_its_parameters() {
        let params = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            run_of("continuum --json run text/stats --text hi"),
            (true, false, "auto".into(), params(&["--text", "hi"]))
        );
        assert_eq!(
            run_of("continuum run --json -q text/stats --text hi"),
            (true, true, "auto".into(), params(&["--text", "hi"]))
        );
        assert_eq!(
            run_of("continuum --data-dir run run text/stats --json --quiet --color never --text hi"),
            (false, false, "auto".into(), params(&["--json", "--quiet", "--color", "never", "--text", "hi"]))
        );
        // Given both before `run` and after the name, the flag is `continuum`'s.
        assert_eq!(
            run_of("continuum -q run text/stats -q --text hi"),
            (false, true, "auto".into(), params(&["--text", "hi"]))
        );
        // Once the parameters began, everything is theirs.
        assert_eq!(
            run_of("continuum run text/stats --text hi --json"),
            (false, false, "auto".into(), params(&["--text", "hi", "--json"]))
        );
    }
}
