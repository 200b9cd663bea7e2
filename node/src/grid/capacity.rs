//! What a node can do and how busy it is, as its offer tells the grid: cores, memory, GPU,
//! the models it holds, its load (calls being served, jobs queued and running, free compute
//! slots) and how long the calls it served recently took.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use continuum_core::Host;

/// A node's capacity and load when its offer was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capacity {
    /// CPU cores.
    pub cores: usize,
    /// Memory in MiB (none where the node cannot tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Memory available now, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_available_mib: Option<u64>,
    /// The GPU models run on; none: they run on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
    /// The models installed here (those loaded in memory marked so).
    #[serde(default)]
    pub models: Vec<ResidentModel>,
    /// How busy it is.
    pub load: Load,
    /// How long the calls it served recently took.
    pub latency: ServedLatency,
}

/// A GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Gpu {
    /// Its name.
    pub name: String,
    /// Its memory in MiB, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
}

/// A model a node holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResidentModel {
    /// Its id.
    pub id: String,
    /// sha256 of its first file.
    pub digest: String,
    /// `llm` or `embedding`.
    pub kind: String,
    /// Whether it is loaded in memory now (a call needs no load time).
    pub loaded: bool,
}

/// How busy a node is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Load {
    /// Peers' calls being answered now.
    pub calls_running: usize,
    /// Jobs waiting for a compute slot.
    pub jobs_queued: usize,
    /// Jobs running.
    pub jobs_running: usize,
    /// Compute slots (jobs that run at once).
    pub slots: usize,
    /// Slots neither a job nor a call holds.
    pub free_slots: usize,
}

impl Load {
    /// Work ahead of a new call per slot: what routing weighs a node's expected wait by.
    pub fn backlog_per_slot(&self) -> f64 {
        (self.calls_running + self.jobs_queued + self.jobs_running) as f64 / self.slots.max(1) as f64
    }
}

/// How long the calls a node served recently took (its own measure).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServedLatency {
    /// Median, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<u64>,
    /// 95th percentile, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<u64>,
    /// How many calls these are of.
    pub samples: usize,
}

/// Counts the peers' calls being answered.
#[derive(Default)]
pub(super) struct CallsRunning(Arc<AtomicUsize>);

/// One call being answered; counted until dropped.
pub(super) struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl CallsRunning {
    /// Counts a call until the guard is dropped.
    pub(super) fn call_started(&self) -> Running {
        self.0.fetch_add(1, Ordering::Relaxed);
        Running(self.0.clone())
    }

    /// How many are being answered.
    pub(super) fn now(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Total and available memory in MiB, from `/proc/meminfo` (none elsewhere).
fn memory() -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else { return (None, None) };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib / 1024)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// What the host holds: cores, memory, GPU and models (blocking: reads the model catalog).
pub(super) fn of_host(host: &Host) -> Capacity {
    let engines = host.core().engines();
    let loaded = engines.loaded();
    let models = engines
        .catalog()
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|m| ResidentModel {
            digest: m.files.first().map(|f| f.sha256.clone()).unwrap_or_default(),
            kind: m.kind.to_string(),
            loaded: loaded.contains(&m.id),
            id: m.id,
        })
        .collect();
    let gpu = engines.gpu_name().map(|name| Gpu { name, memory_mib: None });
    let (memory_mib, memory_available_mib) = memory();
    Capacity {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_mib,
        memory_available_mib,
        gpu,
        models,
        load: Load::default(),
        latency: ServedLatency::default(),
    }
}
