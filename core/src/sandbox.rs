//! Per-call limits and how a broken limit is reported.
//!
//! Every call runs in a fresh instance under a wall-clock deadline (epoch interruption), a
//! linear-memory cap (a [`wasmtime::ResourceLimiter`]), and a cap on output size (the JSON
//! result and captured stdout/stderr). A broken limit becomes an error naming the limit and
//! how to raise it; the host and other calls carry on.

use std::fmt;

use anyhow::{bail, Result};
use serde::Serialize;

/// How often the engine's epoch advances; deadlines are measured in these ticks.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// The limits of one call. Defaults are documented in `docs/sandbox.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Limits {
    /// Wall-clock deadline per call, in milliseconds.
    pub timeout_ms: u64,
    /// Wall-clock deadline of a call run as a job, in milliseconds.
    pub job_timeout_ms: u64,
    /// Linear-memory cap per instance, in MiB.
    pub memory_mib: u64,
    /// Cap on the JSON result and on captured stdout/stderr, in KiB.
    pub output_kib: u64,
    /// How deep `commands.call` may nest.
    pub max_call_depth: u32,
    /// Most calls into `continuum:host` interfaces (log, store, commands, events) per call.
    pub max_host_calls: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 10_000,
            job_timeout_ms: 3_600_000,
            memory_mib: 256,
            output_kib: 4096,
            max_call_depth: 8,
            max_host_calls: 100_000,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<()> {
        if self.timeout_ms == 0 || self.timeout_ms > 24 * 3600 * 1000 {
            bail!("timeout-ms must be between 1 and 86400000, got {}", self.timeout_ms);
        }
        if self.job_timeout_ms == 0 || self.job_timeout_ms > 7 * 24 * 3600 * 1000 {
            bail!("job-timeout-ms must be between 1 and 604800000 (a week), got {}", self.job_timeout_ms);
        }
        if self.memory_mib == 0 || self.memory_mib > 4096 {
            bail!("memory-mib must be between 1 and 4096 (the 32-bit address space), got {}", self.memory_mib);
        }
        if self.output_kib == 0 || self.output_kib > 1024 * 1024 {
            bail!("output-kib must be between 1 and 1048576, got {}", self.output_kib);
        }
        if self.max_call_depth == 0 || self.max_call_depth > 64 {
            bail!("max-call-depth must be between 1 and 64, got {}", self.max_call_depth);
        }
        if self.max_host_calls == 0 || self.max_host_calls > 1_000_000_000 {
            bail!("max-host-calls must be between 1 and 1000000000, got {}", self.max_host_calls);
        }
        Ok(())
    }

    /// The deadline in epoch ticks (rounded up, at least one).
    pub fn deadline_ticks(&self) -> u64 {
        self.timeout_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize) << 20
    }

    /// The output cap in bytes.
    pub fn output_bytes(&self) -> usize {
        (self.output_kib as usize) << 10
    }

    /// wasmtime's "hostcall fuel": how many bytes of host values one transfer out of the guest
    /// (a result, or the arguments of one host call) may lift. Each lifted list element costs
    /// one `Val`, so a list result whose JSON fits the output cap fits, and a guest cannot make
    /// the host allocate much more than that (a 200 MB `list<u8>` would otherwise be lifted
    /// into gigabytes of values before the output cap is checked). Host-call arguments get at
    /// least room for a full store value.
    pub fn copy_fuel(&self) -> usize {
        let largest = self.output_bytes().max(crate::host_api::store::MAX_VALUE) + (64 << 10);
        largest * std::mem::size_of::<wasmtime::component::Val>()
    }
}

/// A limit that a call broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitHit {
    /// The wall-clock deadline passed.
    Deadline {
        /// The call's time limit, in milliseconds.
        timeout_ms: u64,
    },
    /// The instance asked for more linear memory than the cap.
    Memory {
        /// The memory cap, in MiB.
        cap_mib: u64,
        /// The size the linear memory was asked to grow to, in bytes.
        requested_bytes: usize,
    },
    /// The result or captured output was larger than the cap.
    Output {
        /// The output cap, in KiB.
        cap_kib: u64,
        /// What exceeded it (the result, or stdout/stderr).
        what: &'static str,
    },
    /// The guest tried to hand the host more data in one transfer than [`Limits::copy_fuel`].
    Transfer {
        /// The most bytes one transfer may carry.
        max_bytes: usize,
    },
    /// The instance overflowed its stack (runaway recursion).
    Stack,
    /// The call made more host-interface calls than allowed (a flood of log/store/events).
    HostCalls {
        /// The most host-interface calls one call may make.
        max: u64,
    },
}

/// The trap a host interface raises when a call exceeds its host-call budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("host call limit of {0} exceeded")]
pub struct HostCallLimit(pub u64);

impl LimitHit {
    /// The `continuum.toml` key that raises this limit, if one does.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            LimitHit::Deadline { .. } => Some("timeout-ms"),
            LimitHit::Memory { .. } => Some("memory-mib"),
            LimitHit::Output { .. } | LimitHit::Transfer { .. } => Some("output-kib"),
            LimitHit::Stack => None,
            LimitHit::HostCalls { .. } => Some("max-host-calls"),
        }
    }
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitHit::Deadline { timeout_ms } => write!(f, "deadline of {timeout_ms} ms exceeded"),
            LimitHit::Memory { cap_mib, requested_bytes } => write!(
                f,
                "memory limit of {cap_mib} MiB exceeded (asked for {:.1} MiB)",
                *requested_bytes as f64 / (1 << 20) as f64
            ),
            LimitHit::Output { cap_kib, what } => write!(f, "output limit of {cap_kib} KiB exceeded by {what}"),
            LimitHit::Transfer { max_bytes } => write!(
                f,
                "transfer limit exceeded: the plugin handed the host more than {} MiB of values at once",
                max_bytes >> 20
            ),
            LimitHit::Stack => write!(f, "stack overflow (recursion too deep)"),
            LimitHit::HostCalls { max } => write!(f, "host call limit of {max} calls exceeded"),
        }
    }
}

/// Enforces the memory cap of one store and remembers a refused growth, so that the trap that
/// follows (a guest usually aborts when allocation fails) can be reported as the memory limit.
#[derive(Debug)]
pub struct MemoryGuard {
    cap_bytes: usize,
    refused: Option<usize>,
}

/// Most table elements one instance may have (function tables of large guests).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl MemoryGuard {
    /// A guard that refuses growth beyond `cap_bytes`.
    pub fn new(cap_bytes: usize) -> Self {
        MemoryGuard { cap_bytes, refused: None }
    }

    /// The size of the refused request, if growth was refused.
    pub fn refused(&self) -> Option<usize> {
        self.refused
    }
}

impl wasmtime::ResourceLimiter for MemoryGuard {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Which limit, if any, explains a failed call; `output_full` says whether captured
/// stdout/stderr reached its cap (a guest then sees a closed pipe and usually aborts).
pub fn classify(error: &wasmtime::Error, limits: &Limits, memory: &MemoryGuard, output_full: bool) -> Option<LimitHit> {
    if let Some(requested_bytes) = memory.refused() {
        return Some(LimitHit::Memory { cap_mib: limits.memory_mib, requested_bytes });
    }
    if let Some(HostCallLimit(max)) = error.downcast_ref::<HostCallLimit>() {
        return Some(LimitHit::HostCalls { max: *max });
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => return Some(LimitHit::Deadline { timeout_ms: limits.timeout_ms }),
        Some(wasmtime::Trap::StackOverflow) => return Some(LimitHit::Stack),
        _ => {}
    }
    // wasmtime's lifting code stops with this message when the hostcall fuel runs out.
    if error.chain().any(|e| e.to_string().contains("too much data is being copied between the host and the guest")) {
        return Some(LimitHit::Transfer { max_bytes: limits.copy_fuel() });
    }
    // wasmtime-wasi's capture pipe traps with this message when the guest writes past its cap.
    if output_full || error.chain().any(|e| e.to_string().contains("write beyond capacity of MemoryOutputPipe")) {
        return Some(LimitHit::Output { cap_kib: limits.output_kib, what: "stdout/stderr" });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn guard_refuses_growth_past_the_cap_and_remembers_it() {
        let mut g = MemoryGuard::new(1 << 20);
        assert!(g.memory_growing(0, 1 << 20, None).unwrap());
        assert_eq!(g.refused(), None);
        assert!(!g.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert_eq!(g.refused(), Some(2 << 20));
    }

    #[test]
    fn deadline_rounds_up_to_whole_ticks() {
        let l = Limits { timeout_ms: 7, ..Limits::default() };
        assert_eq!(l.deadline_ticks(), 2);
        assert!(Limits { memory_mib: 5000, ..Limits::default() }.validate().is_err());
    }
}
