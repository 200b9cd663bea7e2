//! The call pool: the threads on which async code (the node's HTTP and grid handlers) runs
//! calls and other blocking work.
//!
//! tokio's blocking pool hands each task to an idle thread, waking it — with 64 clients that
//! is a futex wake and two context switches per request, a third of a node's CPU when
//! measured (`continuum bench http`). This pool keeps about one *runnable* thread per core: a
//! thread that finishes a job takes the next queued one without sleeping, so under load jobs
//! run back to back. A job that runs longer than [`LONG_JOB`] stops counting against that
//! limit, and another thread is started for the queue behind it, so one slow command never
//! holds up the others (threads beyond the core count leave after [`KEEP_ALIVE`] idle).

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

/// How long a job may run before the pool stops counting its thread as available.
pub const LONG_JOB: Duration = Duration::from_millis(5);
/// How long a thread beyond the core count waits for work before it leaves.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// Most threads the pool runs at once (jobs beyond wait in the queue).
pub const MAX_THREADS: usize = 512;

type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Wake-ups sent to idle threads and not yet taken (so a burst wakes each thread once).
    woken: usize,
    /// The monitor waits for a backlog (rather than checking one every [`LONG_JOB`]).
    monitor_asleep: bool,
    /// The monitor thread runs (it starts with the first worker).
    monitor_started: bool,
    /// Threads alive.
    threads: usize,
    /// Threads started but not yet looking for work (they will take a job soon).
    starting: usize,
    /// When each busy thread started its job, by thread number.
    busy_since: HashMap<u64, Instant>,
    /// The number the next thread gets (its name, its key in `busy_since`).
    next_thread: u64,
    stopping: bool,
}

impl State {
    /// Threads that will take a queued job soon: idle and starting ones, and those whose job
    /// is short so far.
    fn available(&self, now: Instant) -> usize {
        self.idle
            + self.starting
            + self.busy_since.values().filter(|&&since| now.duration_since(since) < LONG_JOB).count()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued (for idle threads) or the pool stops.
    work: Condvar,
    /// Signalled when a job is queued while no thread is idle (for the monitor).
    backlog: Condvar,
    cores: usize,
}

/// A pool of threads for blocking work, sized to the machine and growing past slow jobs.
pub struct CallPool {
    shared: Arc<Shared>,
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    crate::sync::lock(&shared.state)
}

impl Default for CallPool {
    fn default() -> Self {
        Self::new()
    }
}

impl CallPool {
    /// A pool with one available thread per core; its threads start on first use.
    pub fn new() -> CallPool {
        let cores = crate::cores();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                woken: 0,
                monitor_asleep: false,
                monitor_started: false,
                threads: 0,
                starting: 0,
                busy_since: HashMap::new(),
                next_thread: 0,
                stopping: false,
            }),
            work: Condvar::new(),
            backlog: Condvar::new(),
            cores,
        });
        CallPool { shared }
    }

    /// Runs `f` on a pool thread and waits (async) for its result; a panic in `f` becomes an
    /// error and leaves the pool running.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(f)));
        }))?;
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(anyhow!("the host failed while handling this request (a bug — please report it): {what}"))
            }
            Err(_) => Err(anyhow!("the call pool stopped before the job ran")),
        }
    }

    fn submit(&self, job: Job) -> Result<()> {
        let shared = &self.shared;
        let mut state = lock(shared);
        if state.stopping {
            return Err(anyhow!("the call pool has stopped"));
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            if state.woken < state.idle {
                state.woken += 1;
                shared.work.notify_one();
            }
        } else if state.available(Instant::now()) < shared.cores {
            spawn_thread(shared.clone(), &mut state);
        } else if state.monitor_asleep {
            shared.backlog.notify_one();
        }
        Ok(())
    }
}

impl Drop for CallPool {
    fn drop(&mut self) {
        lock(&self.shared).stopping = true;
        self.shared.work.notify_all();
        self.shared.backlog.notify_all();
    }
}

/// Starts a thread if the pool is under its thread limit (and the monitor with the first).
fn spawn_thread(shared: Arc<Shared>, state: &mut State) {
    if state.threads >= MAX_THREADS {
        return;
    }
    if !state.monitor_started {
        // Without a monitor, a job queued behind jobs that all turn out slow would wait for
        // one of them to finish.
        let monitor = shared.clone();
        state.monitor_started =
            std::thread::Builder::new().name("continuum-calls-monitor".into()).spawn(move || watch(&monitor)).is_ok();
    }
    let number = state.next_thread;
    let name = format!("continuum-calls-{number}");
    let worker = shared.clone();
    if std::thread::Builder::new().name(name).spawn(move || work(&worker, number)).is_ok() {
        state.next_thread += 1;
        state.threads += 1;
        state.starting += 1;
    }
}

/// A pool thread: takes queued jobs until the pool stops, or it has idled for
/// [`KEEP_ALIVE`] while more threads than cores are alive.
fn work(shared: &Shared, number: u64) {
    let mut state = lock(shared);
    state.starting -= 1;
    loop {
        if let Some(job) = state.queue.pop_front() {
            state.busy_since.insert(number, Instant::now());
            drop(state);
            job();
            state = lock(shared);
            state.busy_since.remove(&number);
            continue;
        }
        if state.stopping {
            break;
        }
        state.idle += 1;
        let (guard, waited) =
            shared.work.wait_timeout(state, KEEP_ALIVE).unwrap_or_else(|poisoned| poisoned.into_inner());
        state = guard;
        state.idle -= 1;
        state.woken = state.woken.saturating_sub(1);
        if waited.timed_out() && state.queue.is_empty() && state.threads > shared.cores {
            break;
        }
    }
    state.threads -= 1;
}

/// While jobs are queued with no idle thread, checks every [`LONG_JOB`] whether the busy
/// threads have all turned slow, and starts another thread if so.
fn watch(shared: &Arc<Shared>) {
    let mut state = lock(shared);
    while !state.stopping {
        if state.queue.is_empty() || state.idle > 0 {
            state.monitor_asleep = true;
            state = shared.backlog.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
            state.monitor_asleep = false;
            continue;
        }
        let (guard, _) = shared.backlog.wait_timeout(state, LONG_JOB).unwrap_or_else(|poisoned| poisoned.into_inner());
        state = guard;
        if !state.queue.is_empty() && state.idle == 0 && state.available(Instant::now()) < shared.cores {
            spawn_thread(shared.clone(), &mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_jobs_and_reports_a_panic_as_an_error() {
        let pool = CallPool::new();
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
        let err = pool.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(format!("{err}").contains("boom"), "{err}");
        assert_eq!(pool.run(|| "still running").await.unwrap(), "still running");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_quick_jobs_runs_on_about_one_thread_per_core() {
        let pool = Arc::new(CallPool::new());
        let jobs: Vec<_> = (0..64u64)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(move || i * 2).await })
            })
            .collect();
        let mut sum = 0;
        for job in jobs {
            sum += job.await.unwrap().unwrap();
        }
        assert_eq!(sum, 64 * 63);
        // Threads still starting count as available, so a burst does not start one per job
        // (a few more than the cores only if some jobs were descheduled past LONG_JOB).
        let threads = lock(&pool.shared).threads;
        assert!(threads <= pool.shared.cores + 8, "{threads} threads for 64 quick jobs");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_jobs_do_not_hold_up_the_queue() {
        let pool = Arc::new(CallPool::new());
        let cores = pool.shared.cores;
        // Occupy every core's thread with a job that takes 2 s…
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let mut slow = Vec::new();
        for _ in 0..cores {
            let (pool, gate) = (pool.clone(), gate.clone());
            slow.push(tokio::spawn(async move {
                pool.run(move || {
                    let _ = crate::sync::lock(&gate).recv_timeout(Duration::from_secs(2));
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // …then a quick job is answered long before they finish.
        let started = Instant::now();
        pool.run(|| ()).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "a quick job waited {:?}", started.elapsed());
        for _ in 0..cores {
            let _ = release.send(());
        }
        for s in slow {
            s.await.unwrap().unwrap();
        }
    }
}
