//! `continuum commands`: list the commands a caller may call; `commands search`: find them by
//! meaning, here or (`--grid`) among the commands peers offer.

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{output, peer, Exit};
use crate::discovery::{self, Method};
use crate::paths::DataDir;
use crate::runtime::Host;
use crate::Caller;

/// The arguments of `continuum commands` (with `--json`: names, descriptions, schemas).
#[derive(Debug, clap::Args)]
pub(super) struct CommandsArgs {
    /// List for this caller: a public key, or a grant token.
    #[arg(long = "as", value_name = "KEY|TOKEN", global = true)]
    as_caller: Option<String>,
    #[command(subcommand)]
    action: Option<CommandsCmd>,
}

/// `continuum commands …`.
#[derive(Debug, Subcommand)]
pub(super) enum CommandsCmd {
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

/// Runs `commands` or `commands search`.
pub(super) fn run(args: CommandsArgs, data: DataDir) -> Result<(), Exit> {
    let as_caller = args.as_caller.as_deref();
    match args.action {
        None => list(&crate::node::open_host(data)?, as_caller).map_err(Exit::from),
        Some(CommandsCmd::Search { query, grid: true, .. }) => {
            peer::offers(data.root(), Some(&query)).map_err(Exit::from_api)
        }
        Some(CommandsCmd::Search { query, top, .. }) => {
            search(&crate::node::open_host(data)?, as_caller, &query, top).map_err(Exit::from)
        }
    }
}

/// The caller an `--as KEY|TOKEN` flag names; the owner without one.
pub(super) fn caller_from_flag(host: &Host, as_caller: Option<&str>) -> Result<Caller> {
    match as_caller {
        Some(spec) => host.caller_for(spec),
        None => Ok(Caller::owner()),
    }
}

/// `continuum commands`: the commands the caller may call.
fn list(host: &Host, as_caller: Option<&str>) -> Result<()> {
    let caller = caller_from_flag(host, as_caller)?;
    let commands = host.commands_for(&caller)?;
    output::emit(&mut std::io::stdout().lock(), &commands, |out| {
        if as_caller.is_some() {
            let tier = serde_json::to_value(caller.tier())?;
            output::note(
                &mut std::io::stderr(),
                format_args!(
                    "commands {} may call (tier: {}):",
                    crate::alloy::custody::short(&caller.id()),
                    tier.as_str().unwrap_or("")
                ),
            )?;
        }
        if commands.is_empty() && as_caller.is_some() {
            output::note(out, "none")?;
        } else if commands.is_empty() {
            output::note(out, "no commands: install a plugin with `continuum plugin install <dir>`")?;
        }
        for c in &commands {
            let about = c.description.as_deref().and_then(|d| d.lines().next()).unwrap_or("");
            writeln!(out, "{:<28} {about}", c.name)?;
        }
        Ok(())
    })
}

/// `continuum commands search`: the commands the caller may call, ranked by meaning.
fn search(host: &Host, as_caller: Option<&str>, query: &str, top: usize) -> Result<()> {
    let caller = caller_from_flag(host, as_caller)?;
    let (method, matches) = discovery::search(host, &caller, query, top)?;
    let doc = json!({ "ranking": method, "matches": matches });
    output::emit(&mut std::io::stdout().lock(), &doc, |out| {
        let ranking = match &method {
            Method::Embedding { model } => format!("ranked by meaning ({model} embeddings):"),
            Method::Text => "ranked by shared words (no embedding model installed; `continuum model add` one to \
                             search by meaning):"
                .to_string(),
        };
        output::note(&mut std::io::stderr(), ranking)?;
        if matches.is_empty() {
            output::note(out, "no command matches")?;
        }
        for m in &matches {
            writeln!(out, "{:.3}  {:<28} {}", m.score, m.name, m.about)?;
        }
        Ok(())
    })
}
