//! `continuum jobs …`: the running node's jobs (started with `run --detach`): list them, read
//! one, wait for one, read or follow its output, cancel it. A job id may be shortened to a
//! prefix that names one job.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use super::output;
use super::run::{print_value, LiveDisplay};
use super::{node, prefix, Exit, OutputFormat};
use crate::node::client::NodeClient;
use crate::node::jobs::JobView;
use crate::paths::DataDir;
use crate::runtime::watch::CallEvent;
use crate::terminal::strip_control;
use crate::Outcome;

/// How long `jobs cancel` waits for the job to stop before reporting it still stopping.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// `continuum jobs …`.
#[derive(Debug, Subcommand)]
pub(super) enum JobsCmd {
    /// The jobs you submitted (all of them for the owner), newest first.
    List,
    /// One job: state, progress, and once ended its result or error.
    Status {
        /// The job id (or a prefix naming one job).
        id: String,
    },
    /// Waits for a job to end, showing its progress and generated text on stderr, then prints
    /// its result (exit code as for `run`).
    Wait {
        /// The job id (or a prefix naming one job).
        id: String,
        /// How to print the result (default: pretty on a terminal, json otherwise).
        #[arg(long, value_enum)]
        output: Option<OutputFormat>,
    },
    /// What the job's command wrote to stdout and stderr; with --follow, as it writes it (with
    /// --json, the job once it ended, its output included).
    Logs {
        /// The job id (or a prefix naming one job).
        id: String,
        /// Keep printing until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancels a job: a queued one never runs, a running one stops within a second.
    Cancel {
        /// The job id (or a prefix naming one job).
        id: String,
    },
}

/// Runs a `jobs` subcommand against the node serving `data`.
pub(super) fn run(data: DataDir, cmd: JobsCmd) -> Result<(), Exit> {
    let client = NodeClient::require(data.root())?;
    match cmd {
        JobsCmd::List => {
            let jobs: Vec<JobView> = node::get(&client, "/v1/jobs").map_err(Exit::from_api)?;
            output::emit(&mut std::io::stdout().lock(), &jobs, |out| {
                if jobs.is_empty() {
                    output::note(&mut std::io::stderr(), "no jobs; `continuum run <command> … --detach` starts one")?;
                }
                for job in &jobs {
                    writeln!(out, "{}", summary(job))?;
                }
                Ok(())
            })?;
            Ok(())
        }
        JobsCmd::Status { id } => {
            let job = get(&client, &id)?;
            output::emit(&mut std::io::stdout().lock(), &job, |out| print_status(out, &job))?;
            Ok(())
        }
        JobsCmd::Wait { id, output } => {
            let mut display = LiveDisplay::new();
            let quiet = output::quiet();
            let (job, _) = follow(&client, &resolve(&client, &id)?, |event| {
                if !quiet {
                    display.show(&event)
                }
            })?;
            display.finish();
            ended(&job).and_then(|value| print_value(&value, output))
        }
        JobsCmd::Logs { id, follow: keep } if output::json() => {
            let id = resolve(&client, &id)?;
            let job = if keep { follow(&client, &id, |_| {})?.0 } else { get(&client, &id)? };
            output::print_json(&mut std::io::stdout().lock(), &job)?;
            Ok(())
        }
        JobsCmd::Logs { id, follow: keep } => {
            let id = resolve(&client, &id)?;
            let job = if keep {
                let mut out = std::io::stdout().lock();
                let (job, live) = follow(&client, &id, |event| {
                    if let CallEvent::Output { text, .. } = event {
                        let _ = out.write_all(text.as_bytes());
                        let _ = out.flush();
                    }
                })?;
                // Followed live, the output was printed as it came; a job that had already
                // ended prints it now.
                if !live {
                    let _ = out.write_all(job.output.as_deref().unwrap_or_default().as_bytes());
                }
                job
            } else {
                let job = get(&client, &id)?;
                print!("{}", job.output.as_deref().unwrap_or_default());
                job
            };
            if !job.state.is_final() {
                let _ = output::note(
                    &mut std::io::stderr(),
                    format_args!(
                        "[job {} is {}: its output is kept once it ends; --follow shows it live]",
                        prefix(&job.id, 12),
                        job.state.as_str()
                    ),
                );
            }
            Ok(())
        }
        JobsCmd::Cancel { id } => {
            let id = resolve(&client, &id)?;
            let _: JobView =
                node::send(&client, "DELETE", &format!("/v1/jobs/{id}"), None, &[]).map_err(Exit::from_api)?;
            let until = Instant::now() + CANCEL_WAIT;
            loop {
                let job = get(&client, &id)?;
                if job.state.is_final() || Instant::now() >= until {
                    let mut out = std::io::stdout().lock();
                    output::emit(&mut out, &job, |out| Ok(writeln!(out, "{}", summary(&job))?))?;
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The job `id` names: itself when whole, else the one job whose id starts with it.
fn resolve(client: &NodeClient, id: &str) -> Result<String, Exit> {
    if id.len() == 32 {
        return Ok(id.to_string());
    }
    let jobs: Vec<JobView> = node::get(client, "/v1/jobs").map_err(Exit::from_api)?;
    let matching: Vec<&JobView> = jobs.iter().filter(|j| !id.is_empty() && j.id.starts_with(id)).collect();
    match matching.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Exit::of(Outcome::NotFound, format!("no job `{id}` here; `continuum jobs list` lists yours"))),
        many => Err(Exit::of(Outcome::BadRequest, format!("`{id}` names {} jobs; give more of the id", many.len()))),
    }
}

/// Job `id` (or the one its prefix names).
fn get(client: &NodeClient, id: &str) -> Result<JobView, Exit> {
    let id = resolve(client, id)?;
    node::get(client, &format!("/v1/jobs/{id}")).map_err(Exit::from_api)
}

/// Follows job `id` to its end, handing its live events to `on_event`; the ended job, and
/// whether it was still running when followed.
fn follow(client: &NodeClient, id: &str, mut on_event: impl FnMut(CallEvent)) -> Result<(JobView, bool), Exit> {
    let (mut end, mut live): (Option<Value>, bool) = (None, false);
    client
        .events("GET", &format!("/v1/jobs/{id}/stream"), None, &[], |name, data| {
            match name {
                "end" => end = Some(data),
                "state" => live = true,
                "token" | "progress" | "output" => {
                    if let Ok(event) = serde_json::from_value::<CallEvent>(data) {
                        on_event(event);
                    }
                }
                "lagged" => eprintln!("[{} live events were dropped: this reader fell behind]", data["skipped"]),
                _ => {}
            }
            end.is_none()
        })
        .map_err(Exit::from_api)?;
    match end {
        Some(job) => {
            let job = serde_json::from_value(job).context("the node's job is not what this version expects")?;
            Ok((job, live))
        }
        None => Err(Exit::of(Outcome::Other, "the node ended the stream before the job ended (is it stopping?)")),
    }
}

/// The result of an ended job, or its error as the exit.
fn ended(job: &JobView) -> Result<Value, Exit> {
    match (&job.result, &job.error) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(error)) => Err(Exit::of(error.code, format!("job {}: {}", prefix(&job.id, 12), error.message))),
        (None, None) => {
            Err(Exit::of(Outcome::Other, format!("job {} ended {} without a result", job.id, job.state.as_str())))
        }
    }
}

/// One line per job: id, state, progress, command, where.
fn summary(job: &JobView) -> String {
    let progress = job.progress.as_ref().map(|p| format!(" {:>3.0} %", p.fraction * 100.0)).unwrap_or_default();
    let peer = job.peer.as_deref().map(|p| format!("  on {}", prefix(p, 12))).unwrap_or_default();
    format!("{}  {:<11}{progress}  {}{peer}", job.id, job.state.as_str(), job.command)
}

/// A job, for a person.
fn print_status(out: &mut impl Write, job: &JobView) -> anyhow::Result<()> {
    writeln!(out, "{}", summary(job))?;
    if let Some(p) = &job.progress {
        writeln!(out, "progress: {:.0} % {}", p.fraction * 100.0, strip_control(&p.message))?;
    }
    if let Some(e) = &job.error {
        writeln!(out, "error ({}): {}", e.code, strip_control(&e.message))?;
    }
    if let Some(v) = &job.result {
        writeln!(out, "result: {v}")?;
    }
    Ok(())
}
