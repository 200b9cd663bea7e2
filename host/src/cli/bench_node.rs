//! `continuum bench http` and `continuum bench grid`: a running node measured from outside.
//!
//! - http: N concurrent keep-alive clients for D seconds against a `continuum serve` child
//!   process, first on `GET /v1/commands/<name>` (HTTP, authentication and a lookup — the
//!   baseline), then `POST /v1/commands/<name>` (a real sandboxed call); req/s, p50/p99,
//!   errors, and the node's resident memory.
//! - grid: an in-process grid endpoint calling a peer node over loopback QUIC, against the
//!   same command called in-process; then verified plugin-fetch throughput (iroh-blobs).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};

use super::bench::{micros, percentiles};
use super::output;
use super::plugin::locate;
use crate::authoring::{scaffold, toolchain, Language};
use crate::grid::dispatch::GridCall;
use crate::grid::{Grid, GridOptions};
use crate::node::async_host::AsyncHost;
use crate::node::NodeFile;
use crate::paths::DataDir;
use crate::Caller;

const COMMAND: &str = "text/convert-case";
const INPUT: &str = r#"{"text":"hello world","to":"upper"}"#;

/// A `continuum serve` child process, killed on drop.
struct NodeProcess {
    child: Child,
    node: NodeFile,
    token: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProcess {
    fn start(data: &Path) -> Result<NodeProcess> {
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--http", "127.0.0.1:0", "--grid", "127.0.0.1:0", "--max-concurrent", "1024"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start `continuum serve`")?;
        let started = Instant::now();
        loop {
            if let Some(node) = crate::node::client::running(data) {
                let token = std::fs::read_to_string(data.join("node.token"))?;
                return Ok(NodeProcess { child, node, token });
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the node did not start within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn rss_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// A data directory with the `text` plugin installed from `plugin` (a development install).
fn prepared(plugin: &Path) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let host = crate::node::open_host(DataDir::at(dir.path().to_path_buf())?)?;
    let (wasm, wit) = locate(plugin, None)?;
    host.install_component(
        &wasm,
        wit.as_deref(),
        &crate::InstallOptions { allow: vec!["all".into()], ..Default::default() },
    )?;
    Ok(dir)
}

struct Load {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    samples: Vec<Duration>,
}

/// `clients` keep-alive connections sending `method path body` until `seconds` pass.
async fn drive(
    addr: &str,
    token: &str,
    clients: usize,
    seconds: u64,
    method: &'static str,
    path: String,
    body: &'static str,
) -> Result<Load> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let auth = Arc::new(format!("Bearer {token}"));
    for _ in 0..clients {
        let (addr, auth, path) = (addr.to_string(), auth.clone(), path.clone());
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let (mut samples, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < until {
                let request = hyper::Request::builder()
                    .method(method)
                    .uri(&path)
                    .header("host", addr.as_str())
                    .header("authorization", auth.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))?;
                let t = Instant::now();
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        response.into_body().collect().await.is_ok() && ok
                    }
                    Err(_) => false,
                };
                samples.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            anyhow::Ok((samples, errors))
        });
    }
    let mut load = Load { requests: 0, errors: 0, elapsed: Duration::ZERO, samples: Vec::new() };
    while let Some(done) = tasks.join_next().await {
        let (samples, errors) = done??;
        load.requests += samples.len() as u64;
        load.errors += errors;
        load.samples.extend(samples);
    }
    load.elapsed = started.elapsed();
    Ok(load)
}

/// A phase's figures, printed as a line as it ends (with --json, kept for the figures at the end).
fn report(label: &str, load: &mut Load) -> Value {
    let rate = load.requests as f64 / load.elapsed.as_secs_f64();
    let (p50, p99) = percentiles(&mut load.samples);
    output::report_line(format_args!(
        "  {label:<34} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  {:>8} requests  {} errors",
        rate,
        micros(p50),
        micros(p99),
        load.requests,
        load.errors
    ));
    json!({
        "phase": label, "requests_per_s": rate, "p50_us": micros(p50), "p99_us": micros(p99),
        "requests": load.requests, "errors": load.errors,
    })
}

/// `continuum bench http`.
pub(super) fn http(plugin: &Path, clients: usize, seconds: u64) -> Result<()> {
    let dir = prepared(plugin)?;
    let node = NodeProcess::start(dir.path())?;
    let addr = node.node.http.trim_start_matches("http://").to_string();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    output::report_line(format_args!(
        "HTTP API: {clients} concurrent keep-alive clients, {seconds} s per phase, node pid {} on {} ({cores} cores)",
        node.child.id(),
        node.node.http,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (idle_rss, _) = node.rss_mib();
    let mut base =
        runtime.block_on(drive(&addr, &node.token, clients, seconds, "GET", format!("/v1/commands/{COMMAND}"), ""))?;
    let baseline = report(&format!("GET /v1/commands/{COMMAND} (baseline)"), &mut base);
    let mut calls = runtime.block_on(drive(
        &addr,
        &node.token,
        clients,
        seconds,
        "POST",
        format!("/v1/commands/{COMMAND}"),
        INPUT,
    ))?;
    let call = report(&format!("POST /v1/commands/{COMMAND}"), &mut calls);
    let (rss, peak) = node.rss_mib();
    let share = call["requests_per_s"].as_f64().unwrap_or(0.0) / baseline["requests_per_s"].as_f64().unwrap_or(1.0);
    let figures = json!({
        "clients": clients, "seconds_per_phase": seconds, "cores": cores, "phases": [baseline, call],
        "calls_share_of_baseline_rate": share,
        "node_memory_mib": { "idle": idle_rss, "after": rss, "peak": peak },
    });
    output::emit(&mut std::io::stdout().lock(), &figures, |out| {
        writeln!(out, "  calls reach {:.0} % of the baseline's rate", 100.0 * share)?;
        Ok(writeln!(out, "  node memory: {idle_rss:.0} MiB idle, {rss:.0} MiB after, peak {peak:.0} MiB")?)
    })?;
    if calls.errors + base.errors > 0 {
        bail!("{} requests failed", calls.errors + base.errors);
    }
    Ok(())
}

/// `continuum bench grid`.
pub(super) fn grid(plugin: &Path, iterations: u32) -> Result<()> {
    let remote_dir = prepared(plugin)?;
    // The peer ships plugins as alloys: for the fetch test it packs the Python `greet` template
    // (≈ 18 MB: the size a Python or JavaScript plugin has), built here.
    let remote_host = crate::node::open_host(DataDir::at(remote_dir.path().to_path_buf())?)?;
    let key = crate::keys::KeyStore::new(remote_dir.path().join("keys")).generate("bench")?;
    let work = tempfile::tempdir()?;
    let project = scaffold::new_project(work.path(), "shipped", Language::Python)?;
    let built = toolchain::build(&project).context("building the Python template to ship")?;
    let wasm = built.dir.join("shipped.wasm");
    let wit = built.dir.join("wit");
    let packed = remote_host.pack(&crate::install::PackInput::for_component(&wasm, Some(&wit))?, &key)?;
    let alloy_path = remote_dir.path().join("shipped.alloy");
    packed.write(&alloy_path)?;
    let every: Vec<String> = crate::host_api::HOST_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    remote_host.trust_add(&crate::keys::public_hex(&key.verifying_key()), "bench", &every)?;
    remote_host
        .install_alloy(&alloy_path, crate::install::AlloyOptions { allow: vec!["all".into()], ..Default::default() })?;
    let local_dir = prepared(plugin)?;
    let local = crate::node::open_host(DataDir::at(local_dir.path().to_path_buf())?)?;
    // The peer grants the calling node its command, as an operator would.
    let grant = remote_host.issue_grant(&local.node_id(), &[COMMAND.into()], crate::now_secs() + 3600)?;
    drop(remote_host);
    let remote = NodeProcess::start(remote_dir.path())?;
    let params: serde_json::Value = serde_json::from_str(INPUT)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let jobs = crate::node::jobs::Jobs::open(AsyncHost::new(local.clone()), Default::default()).await?;
        let grid = Grid::start(
            local.clone(),
            GridOptions {
                bind: "127.0.0.1:0".parse()?,
                offer_interval: Duration::from_secs(60),
                terms: Default::default(),
                reach: Default::default(),
            },
            jobs,
        )
        .await?;
        grid.add_peer(&remote.node.peer_address(), Some("remote".into()), None).await?;
        let call = GridCall {
            command: COMMAND.into(),
            params: params.clone(),
            on: "remote".into(),
            quorum: Default::default(),
            min: None,
            max: None,
            reduce: None,
            k: None,
            if_under_min: None,
            grant: Some(grant),
            timeout_ms: Some(10_000),
            strangers: false,
            route: None,
            max_price: None,
            request_id: None,
        };
        output::report_line(format_args!(
            "grid: one peer node (pid {}) on loopback QUIC, {iterations} sequential calls each",
            remote.child.id()
        ));
        let (mut here, mut there) = (Vec::new(), Vec::new());
        for i in 0..iterations + iterations / 10 {
            let t = Instant::now();
            local.call(&Caller::owner(), COMMAND, &params).result?;
            let a = t.elapsed();
            let t = Instant::now();
            grid.call(&call, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let b = t.elapsed();
            if i >= iterations / 10 {
                here.push(a);
                there.push(b);
            }
        }
        let (h50, h99) = percentiles(&mut here);
        let (t50, t99) = percentiles(&mut there);
        output::report_line(format_args!(
            "  {COMMAND} in-process (baseline)   p50 {:>7.0} µs  p99 {:>7.0} µs",
            micros(h50),
            micros(h99)
        ));
        output::report_line(format_args!(
            "  {COMMAND} on the peer (grid call)  p50 {:>7.0} µs  p99 {:>7.0} µs",
            micros(t50),
            micros(t99)
        ));
        output::report_line(format_args!(
            "  the network and the peer's dispatch add {:.0} µs at p50",
            micros(t50) - micros(h50)
        ));

        let offers = grid.offers();
        let (node, offer) = offers
            .iter()
            .filter(|k| k.via != "self")
            .flat_map(|k| k.offer.plugins.iter().map(move |p| (k.offer.node.clone(), p.clone())))
            .max_by_key(|(_, p)| p.size)
            .context("the peer offers no plugin")?;
        let rounds = 10;
        let mut taken = Vec::new();
        for _ in 0..rounds {
            let (bytes, took) = grid.fetch_alloy(&node, &offer).await?;
            anyhow::ensure!(bytes.len() as u64 == offer.size, "short fetch");
            taken.push(took);
        }
        let (p50, _) = percentiles(&mut taken);
        let figures = json!({
            "command": COMMAND, "iterations": iterations,
            "in_process_us": { "p50": micros(h50), "p99": micros(h99) },
            "grid_call_us": { "p50": micros(t50), "p99": micros(t99) },
            "fetch": {
                "plugin": offer.name, "bytes": offer.size, "p50_ms": p50.as_secs_f64() * 1e3,
                "mb_per_s": offer.size as f64 / 1e6 / p50.as_secs_f64(),
            },
        });
        output::emit(&mut std::io::stdout().lock(), &figures, |out| {
            Ok(writeln!(
                out,
                "  verified fetch of `{}` ({:.2} MB alloy): p50 {:.1} ms = {:.0} MB/s (BLAKE3-verified while streaming)",
                offer.name,
                offer.size as f64 / 1e6,
                p50.as_secs_f64() * 1e3,
                offer.size as f64 / 1e6 / p50.as_secs_f64()
            )?)
        })?;
        grid.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(())
}
