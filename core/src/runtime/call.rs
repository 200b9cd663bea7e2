//! Running a call: the checks before it (installed caller, depth, access, parameters), then a
//! fresh sandboxed instance of the plugin under its limits, and what it returned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmtime::component::{ResourceTable, Val};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{I32Exit, WasiCtx};

use super::live_output::LiveOutput;
use super::outcome::trap_message;
use super::watch::{Cancelled, Purpose, Watch, CANCEL_CHECK};
use super::{AuditedCall, CallError, CallReport, Host, HostCore, LoadedPlugin};
use crate::access::{self, Caller};
use crate::host_api::commands::Nesting;
use crate::host_api::http::{self, Answer, HttpRequest};
use crate::host_api::{CallContext, CallState};
use crate::reflect::convert::ConvertError;
use crate::reflect::program::{exit_code, program_result, ProgramInput};
use crate::reflect::{CommandKind, Outcome};
use crate::registry;
use crate::sandbox::{self, LimitHit, MemoryGuard, EPOCH_TICK};

/// The outer deadline of a top-level call; each plugin's own timeout is far shorter.
pub const CALL_TIME_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

impl Host {
    /// Calls command `name` with JSON `params` as `caller`.
    pub fn call(&self, caller: &Caller, name: &str, params: &Value) -> CallReport {
        self.call_watched(caller, name, params, Arc::default())
    }

    /// Calls like [`Host::call`], with `watch` over the call tree: its events go to the
    /// watch's sink, and cancelling the watch stops it.
    pub fn call_watched(&self, caller: &Caller, name: &str, params: &Value, watch: Arc<Watch>) -> CallReport {
        self.core.call_queued(caller, name, params, 0, Instant::now() + CALL_TIME_LIMIT, watch).wait()
    }

    /// Calls like [`Host::call_watched`] from async code: the call runs on the call pool, and
    /// its audit commit is awaited without holding a thread.
    pub async fn call_async(&self, caller: Caller, name: String, params: Value, watch: Arc<Watch>) -> CallReport {
        let (host, command) = (self.clone(), name.clone());
        let deadline = Instant::now() + CALL_TIME_LIMIT;
        let queued = self.offload(move || host.core.call_queued(&caller, &name, &params, 0, deadline, watch)).await;
        match queued {
            Ok(call) => call.committed().await,
            Err(e) => CallReport::of(Err(CallError::Host { command, message: format!("{e:#}") })),
        }
    }
}

impl HostCore {
    /// Runs a call nested in another (`commands.call`) where `nesting` places it — how deep, by
    /// when, sharing the budgets of its call tree — and audits it: a `call.invoked` entry
    /// before, a `call.completed` or `call.failed` entry committed before the result is returned
    /// (a result whose audit cannot be committed is withheld).
    pub fn call_nested(self: &Arc<Self>, caller: &Caller, name: &str, params: &Value, nesting: &Nesting) -> CallReport {
        self.call_in(caller, name, params, nesting).wait()
    }

    /// Runs a call tree of its own (`depth` levels down, finishing by `deadline`, with fresh
    /// budgets, `watch` over it), audited like [`HostCore::call_nested`], but returns as soon
    /// as its audit entry is queued: the thread is free for the next call while the entry's
    /// group commits.
    pub fn call_queued(
        self: &Arc<Self>,
        caller: &Caller,
        name: &str,
        params: &Value,
        depth: u32,
        deadline: Instant,
        watch: Arc<Watch>,
    ) -> AuditedCall {
        self.call_in(caller, name, params, &Nesting::fresh(depth, deadline, watch))
    }

    /// Runs command `name` as `caller` where `nesting` places it, loading its plugin first.
    pub(super) fn run(
        self: &Arc<Self>,
        caller: &Caller,
        name: &str,
        params: &Value,
        nesting: &Nesting,
        report: &mut CallReport,
    ) -> Result<Value, CallError> {
        access::check_installed(caller).map_err(|reason| CallError::Denied { command: name.into(), reason })?;
        if nesting.watch.is_cancelled() {
            return Err(CallError::Cancelled { command: name.into() });
        }
        let max_depth = self.config.default_limits().max_call_depth;
        if nesting.depth > max_depth {
            return Err(CallError::DepthExceeded { command: name.into(), max: max_depth });
        }
        let plugin_name = name.split('/').next().unwrap_or(name);
        let plugin = match self.load(plugin_name) {
            Ok(p) => p,
            Err(e) if registry::get(&self.db(), plugin_name).ok().flatten().is_none() => {
                tracing::debug!("{e:#}");
                return Err(self.unknown(caller, name));
            }
            Err(e) => return Err(CallError::Host { command: name.into(), message: format!("{e:#}") }),
        };
        self.execute_in(&plugin, caller, name, params, nesting, report)
    }

    /// Runs command `name` of `plugin` (loaded or not) in a fresh instance, as a call tree of
    /// its own (`depth` levels down, finishing by `deadline`, with fresh budgets).
    #[allow(clippy::too_many_arguments)]
    pub fn execute(
        self: &Arc<Self>,
        plugin: &LoadedPlugin,
        caller: &Caller,
        name: &str,
        params: &Value,
        depth: u32,
        deadline: Instant,
        report: &mut CallReport,
    ) -> Result<Value, CallError> {
        self.execute_in(plugin, caller, name, params, &Nesting::fresh(depth, deadline, Arc::default()), report)
    }

    /// Runs command `name` of `plugin` in a fresh instance where `nesting` places it.
    fn execute_in(
        self: &Arc<Self>,
        plugin: &LoadedPlugin,
        caller: &Caller,
        name: &str,
        params: &Value,
        nesting: &Nesting,
        report: &mut CallReport,
    ) -> Result<Value, CallError> {
        let command = plugin.command(name).ok_or_else(|| self.unknown(caller, name))?;
        access::check(caller, name, access::level(&plugin.access, name))
            .map_err(|reason| CallError::Denied { command: name.into(), reason })?;
        let invalid = |e: ConvertError| CallError::InvalidParams { command: name.into(), message: e.to_string() };
        let (mut args, mut program, mut request) = (Vec::new(), None, None);
        match command.kind {
            CommandKind::Function => args = command.params_to_vals(params).map_err(invalid)?,
            CommandKind::Program => program = Some(ProgramInput::from_params(params).map_err(invalid)?),
            CommandKind::Http => request = Some(HttpRequest::from_params(params).map_err(invalid)?),
        }

        // A job gets its plugin's job deadline; a nested call gets what is left of the outer
        // call's time, if that is less.
        let remaining = nesting.deadline.saturating_duration_since(Instant::now());
        let watch = &nesting.watch;
        let mut limits = plugin.limits;
        if watch.purpose() == Purpose::Job {
            limits.timeout_ms = limits.job_timeout_ms;
        }
        limits.timeout_ms = limits.timeout_ms.min(remaining.as_millis().max(1) as u64);

        let stdout = MemoryOutputPipe::new(limits.output_bytes());
        let stderr = MemoryOutputPipe::new(limits.output_bytes());
        let mut wasi = WasiCtx::builder();
        if watch.observed() {
            wasi.stdout(LiveOutput::new(stdout.clone(), watch.clone(), name, "stdout"));
            wasi.stderr(LiveOutput::new(stderr.clone(), watch.clone(), name, "stderr"));
        } else {
            wasi.stdout(stdout.clone()).stderr(stderr.clone());
        }
        if let Some(input) = &program {
            wasi.arg(&plugin.name).args(&input.args);
            wasi.envs(&input.env.iter().flatten().collect::<Vec<_>>());
            wasi.stdin(MemoryInputPipe::new(input.stdin.clone().unwrap_or_default()));
        }
        for dir in &plugin.dirs {
            dir.preopen(&mut wasi).map_err(|e| CallError::Host {
                command: name.into(),
                message: format!("the folder lent to `{}` cannot be opened: {e:#}", plugin.name),
            })?;
        }
        let wasi = wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryGuard::new(limits.memory_bytes()),
            host_calls: (0, limits.max_host_calls),
            inference: nesting.inference.clone(),
            http: http::HttpState::new(limits.output_bytes()),
            call: CallContext {
                core: self.clone(),
                plugin: plugin.name.clone(),
                namespace: plugin.namespace.clone(),
                command: name.to_string(),
                caller: caller.clone(),
                depth: nesting.depth,
                deadline: Instant::now() + Duration::from_millis(limits.timeout_ms),
                models: plugin.models.clone(),
                watch: watch.clone(),
            },
        };
        let ends = state.call.deadline;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_hostcall_fuel(limits.copy_fuel());
        // The guest is interrupted at its deadline, and looks every CANCEL_CHECK on the way
        // whether its call tree was cancelled.
        let check = ticks(CANCEL_CHECK);
        store.set_epoch_deadline(limits.deadline_ticks().min(check));
        let cancel = watch.clone();
        store.epoch_deadline_callback(move |_| {
            if cancel.is_cancelled() {
                return Err(wasmtime::Error::new(Cancelled));
            }
            let left = ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(wasmtime::Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Continue(ticks(left).min(check)))
        });

        let mut results = vec![Val::Bool(false); command.result_count()];
        let ran = (|| -> wasmtime::Result<Option<Answer>> {
            let instance = plugin.pre.instantiate(&mut store)?;
            if let Some(request) = &request {
                return http::handle(&mut store, &instance, request, limits.output_bytes()).map(Some);
            }
            let func = instance
                .get_func(&mut store, command.export)
                .ok_or_else(|| wasmtime::format_err!("export of `{name}` not found in the instance"))?;
            func.call(&mut store, &args, &mut results).map(|()| None)
        })();
        report.stdout = stdout.contents().to_vec();
        report.stderr = stderr.contents().to_vec();
        // A program that calls `exit` ends with that status; what it wrote is its result.
        let exited = match &ran {
            Err(e) if program.is_some() => e.downcast_ref::<I32Exit>().map(|I32Exit(status)| exit_code(*status)),
            _ => None,
        };
        let answer = match ran {
            Ok(answer) => answer,
            Err(_) if exited.is_some() => None,
            Err(_) if watch.is_cancelled() => return Err(CallError::Cancelled { command: name.into() }),
            Err(e) => {
                let (name, plugin_name) = (name.to_string(), plugin.name.clone());
                let output_full = report.stdout.len().max(report.stderr.len()) >= limits.output_bytes();
                return Err(match sandbox::classify(&e, &limits, &store.data().memory, output_full) {
                    Some(limit) => CallError::Limit { command: name, plugin: plugin_name, limit },
                    None => CallError::Trapped { command: name, message: trap_message(&e, &report.stderr) },
                });
            }
        };
        if program.is_some() {
            // A program stopped at the output cap (however it took the closed pipe) has not
            // given its whole output: that is the output limit, never a truncated result.
            if report.stdout.len().max(report.stderr.len()) >= limits.output_bytes() {
                return Err(CallError::Limit {
                    command: name.into(),
                    plugin: plugin.name.clone(),
                    limit: LimitHit::Output { cap_kib: limits.output_kib, what: "stdout/stderr" },
                });
            }
            let code = exited.unwrap_or(if matches!(results.first(), Some(Val::Result(Ok(_)))) { 0 } else { 1 });
            return Ok(program_result(&std::mem::take(&mut report.stdout), &std::mem::take(&mut report.stderr), code));
        }
        match answer {
            Some(Answer::Response(response)) => return Ok(response),
            Some(Answer::TooLarge) => {
                return Err(CallError::Limit {
                    command: name.into(),
                    plugin: plugin.name.clone(),
                    limit: LimitHit::Output { cap_kib: limits.output_kib, what: "the response body" },
                })
            }
            Some(Answer::Failed(message)) => {
                return Err(CallError::CommandFailed { command: name.into(), error: Value::String(message) })
            }
            None => {}
        }
        let outcome =
            command.outcome(&results).map_err(|e| CallError::Host { command: name.into(), message: e.to_string() })?;
        let (Outcome::Ok(value) | Outcome::Err(value)) = &outcome;
        let size = serde_json::to_vec(value).map_or(0, |v| v.len());
        if size > limits.output_bytes() {
            return Err(CallError::Limit {
                command: name.into(),
                plugin: plugin.name.clone(),
                limit: LimitHit::Output { cap_kib: limits.output_kib, what: "the result" },
            });
        }
        match outcome {
            Outcome::Ok(v) => Ok(v),
            // A guest that returns the error a cancelled host function gave it was cancelled.
            Outcome::Err(_) if watch.is_cancelled() => Err(CallError::Cancelled { command: name.into() }),
            Outcome::Err(error) => Err(CallError::CommandFailed { command: name.into(), error }),
        }
    }
}

/// Epoch ticks in `d`, rounded up, at least one.
fn ticks(d: Duration) -> u64 {
    (d.as_micros() as u64).div_ceil(EPOCH_TICK.as_micros() as u64).max(1)
}
