//! Jobs end to end on real `continuum serve` processes: detached runs followed over the CLI and
//! HTTP (server-sent events parsed), cancel of a spinning guest, progress from
//! `classify/train`, a restart mid-job, grid jobs under leases (followed, cancelled remotely,
//! lost with a killed peer, cancelled by a peer whose submitter stopped renewing), and tokens
//! streamed from a peer to the calling terminal.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use continuum_tests::{cli, eventually, plugin_dir, real_models, stderr, Publisher, TestNode, ONE_THREAD};
use serde_json::{json, Value};

/// A node configuration: one job at a time, a long job deadline for the spinning guest.
const ONE_SLOT: &str = "[jobs]\nmax-running = 1\nmax-queued = 3\n[plugins.misbehave.limits]\njob-timeout-ms = 120000\n";

/// Writes `config` and installs the built plugins `names` with every capability approved.
fn prepare(data: &Path, config: &str, names: &[&str]) {
    std::fs::write(data.join("continuum.toml"), config).expect("config");
    for name in names {
        let dir = plugin_dir(name);
        let o = cli(data, &["plugin", "install", dir.to_str().unwrap(), "--allow", "all"]);
        assert!(o.status.success(), "install {name}: {}", stderr(&o));
    }
}

/// Like [`prepare`], but installs `publisher`'s signed alloys (version 0.1.0 where the plugin
/// names none), which the node ships and offers to the grid, and whose access levels apply.
fn ship(data: &Path, publisher: &Publisher, config: &str, names: &[&str]) {
    std::fs::write(data.join("continuum.toml"), config).expect("config");
    publisher.trust(data);
    for name in names {
        let alloy = publisher.dir.path().join(format!("{name}.alloy"));
        let (dir, out) = (plugin_dir(name), alloy.to_str().unwrap());
        let mut pack = vec!["plugin", "pack", dir.to_str().unwrap(), "--key", "publisher", "-o", out];
        if !dir.join("plugin.toml").exists() {
            pack.extend(["--version", "0.1.0"]);
        }
        let o = cli(publisher.dir.path(), &pack);
        assert!(o.status.success(), "pack {name}: {}", stderr(&o));
        let o = cli(data, &["plugin", "install", out, "--allow", "all"]);
        assert!(o.status.success(), "install {name}: {}", stderr(&o));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// `method path` on `node` with `auth` and a JSON `body`: status, `Location` header, JSON body.
fn request(node: &TestNode, auth: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Option<String>, Value) {
    let url = format!("{}{path}", node.http);
    let bearer = format!("Bearer {auth}");
    let agent = agent();
    let response = match (method, body) {
        ("GET", _) => agent.get(&url).header("authorization", &bearer).call(),
        ("DELETE", _) => agent.delete(&url).header("authorization", &bearer).call(),
        (_, body) => agent
            .post(&url)
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .send(body.unwrap_or(Value::Null).to_string().as_bytes()),
    };
    let mut response = response.expect("request");
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(String::from);
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, location, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Reads the server-sent events of `method path` until `end` or `error`: each event's name, its
/// data and when it arrived.
fn events(node: &TestNode, method: &str, path: &str, body: Option<Value>) -> Vec<(String, Value, Instant)> {
    let url = format!("{}{path}", node.http);
    let bearer = format!("Bearer {}", node.token);
    let agent = agent();
    let response = match body {
        None => agent.get(&url).header("authorization", &bearer).header("accept", "text/event-stream").call(),
        Some(body) => agent
            .post(&url)
            .header("authorization", &bearer)
            .header("accept", "text/event-stream")
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes()),
    }
    .expect("stream");
    assert_eq!(response.status().as_u16(), 200, "{method} {path}");
    read_events(response.into_body().into_reader())
}

/// Server-sent events from `body` until `end` or `error`: each event's name, its data and when
/// it arrived.
fn read_events(body: impl std::io::Read) -> Vec<(String, Value, Instant)> {
    let mut reader = BufReader::new(body);
    let (mut out, mut name, mut line) = (Vec::new(), String::new(), String::new());
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        let text = line.trim_end().to_string();
        line.clear();
        if let Some(n) = text.strip_prefix("event:") {
            name = n.trim().to_string();
        } else if let Some(d) = text.strip_prefix("data:") {
            let done = name == "end" || name == "error";
            out.push((name.clone(), serde_json::from_str(d.trim()).expect("event data is JSON"), Instant::now()));
            if done {
                break;
            }
        }
    }
    out
}

/// Job `id`'s state as the node reports it.
fn state(node: &TestNode, id: &str) -> String {
    let job: Value = serde_json::from_str(&node.ok(&["jobs", "status", id, "--json"])).expect("job JSON");
    job["state"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_detached_job_is_followed_to_completion_over_the_cli_and_http() {
    let node = TestNode::start(|d| prepare(d, "", &["text"]));
    // CLI: the run flags may follow the command's own.
    let id = node.ok(&["run", "text/stats", "--text", "one two three", "--detach"]).trim().to_string();
    assert_eq!(id.len(), 32, "{id}");
    let result: Value = serde_json::from_str(&node.ok(&["jobs", "wait", &id[..8], "--output", "json"])).unwrap();
    assert_eq!(result["words"], 3);
    assert!(node.ok(&["jobs", "list"]).contains(&format!("{id}  succeeded")));

    // HTTP: 202 with the job and its Location; its stream parsed to the end.
    let (status, location, job) = request(
        &node,
        &node.token,
        "POST",
        "/v1/jobs",
        Some(json!({ "command": "text/summarize", "params": { "text": "A cat sat. A dog ran. The end." } })),
    );
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(location.as_deref(), Some(format!("/v1/jobs/{id}").as_str()));
    let stream = events(&node, "GET", &format!("/v1/jobs/{id}/stream"), None);
    let (name, last, _) = stream.last().expect("events");
    assert_eq!(name, "end", "{stream:?}");
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(last["result"].is_object() || last["result"].is_string() || last["result"].is_array(), "{last}");
    let (status, _, again) = request(&node, &node.token, "GET", &format!("/v1/jobs/{id}"), None);
    assert_eq!((status, &again["state"]), (200, &json!("succeeded")));

    // The job's life is in the event log.
    let log = node.ok(&["events", "tail", "-n", "40", "--json"]);
    for kind in ["job.submitted", "job.started", "job.succeeded"] {
        assert!(log.lines().any(|l| l.contains(kind) && l.contains(&id)), "no {kind} for {id}: {log}");
    }

    // Bad input: an unknown command is refused at submission, an unknown job is 404.
    let refused = node.cli(&["run", "nope/nothing", "{}", "--detach"]);
    assert!(!refused.status.success());
    let (status, _, e) = request(&node, &node.token, "POST", "/v1/jobs", Some(json!({ "command": "nope/nothing" })));
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("unknown-command")), "{e}");
    let (status, _, e) = request(&node, &node.token, "GET", "/v1/jobs/0123456789abcdef0123456789abcdef", None);
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("not-found")), "{e}");
    let gone = node.cli(&["jobs", "status", "ffffffff"]);
    assert!(stderr(&gone).contains("no job `ffffffff`"), "{}", stderr(&gone));
}

#[test]
fn cancel_stops_a_spinning_guest_within_a_second_and_frees_its_slot() {
    let node = TestNode::start(|d| prepare(d, ONE_SLOT, &["misbehave", "text"]));
    let spin = node.ok(&["run", "misbehave/spin", "--detach"]).trim().to_string();
    assert!(eventually(20, || state(&node, &spin) == "running"), "the spinning job did not start");
    // The one slot is taken: the next job waits.
    let queued = node.ok(&["run", "text/stats", "--text", "x", "--detach"]).trim().to_string();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(&node, &queued), "queued");

    // A follower that goes away mid-stream leaves the job running.
    let follower = agent()
        .get(&format!("{}/v1/jobs/{spin}/stream", node.http))
        .header("authorization", &format!("Bearer {}", node.token))
        .call()
        .expect("stream");
    let mut first = String::new();
    BufReader::new(follower.into_body().into_reader()).read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "event: state");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(&node, &spin), "running", "a follower leaving stopped the job");

    let started = Instant::now();
    let out = node.ok(&["jobs", "cancel", &spin]);
    let took = started.elapsed();
    assert!(out.contains("cancelled"), "{out}");
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    // Its slot went to the queued job, which runs to the end.
    assert!(eventually(10, || state(&node, &queued) == "succeeded"), "the queued job never ran");

    // Cancelling again, or a finished job, says it has ended (exit 7 as for a cancelled call).
    let again = node.cli(&["jobs", "cancel", &spin]);
    assert_eq!(again.status.code(), Some(7), "{}", stderr(&again));
    assert!(stderr(&again).contains("already ended (cancelled)"), "{}", stderr(&again));
    let (status, _, e) = request(&node, &node.token, "DELETE", &format!("/v1/jobs/{queued}"), None);
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("cancelled")), "{e}");
    // `jobs wait` on the cancelled job ends with the cancel, as its exit code.
    let waited = node.cli(&["jobs", "wait", &spin]);
    assert_eq!(waited.status.code(), Some(7), "{}", stderr(&waited));
    let log = node.ok(&["events", "tail", "-n", "40", "--json"]);
    assert!(log.lines().any(|l| l.contains("job.cancelled") && l.contains(&spin)), "{log}");
    assert!(log.lines().any(|l| l.contains("call.failed") && l.contains("cancelled")), "{log}");
}

#[test]
fn the_queue_is_bounded_and_strangers_see_no_one_elses_jobs() {
    let publisher = Publisher::new();
    let config = "[jobs]\nmax-running = 1\n[plugins.misbehave.limits]\njob-timeout-ms = 120000\n";
    let node = TestNode::start(|d| ship(d, &publisher, config, &["misbehave", "text"]));
    let running = node.ok(&["run", "misbehave/spin", "--detach"]).trim().to_string();
    assert!(eventually(20, || state(&node, &running) == "running"));
    // The default bound: 1000 jobs wait for the one slot; the next is refused busy, naming
    // the setting.
    let spin = json!({ "command": "misbehave/spin" });
    let mut waiting = Vec::new();
    for _ in 0..1000 {
        let (status, _, job) = request(&node, &node.token, "POST", "/v1/jobs", Some(spin.clone()));
        assert_eq!(status, 202, "{job}");
        waiting.push(job["id"].as_str().unwrap().to_string());
    }
    let (status, _, e) = request(&node, &node.token, "POST", "/v1/jobs", Some(spin.clone()));
    assert_eq!((status, e["error"]["code"].as_str()), (503, Some("busy")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("max-queued"), "{e}");

    // A stranger (an API key without a grant) sees none of the owner's jobs: each reads as
    // unknown, and it can neither cancel nor follow one.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let key = node.ok(&["apikey", "create", "--for", &hex::encode(stranger.verifying_key().as_bytes())]);
    let key = key.trim().to_string();
    let (status, _, listed) = request(&node, &key, "GET", "/v1/jobs", None);
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(0)), "{listed}");
    for (method, path) in [
        ("GET", format!("/v1/jobs/{running}")),
        ("DELETE", format!("/v1/jobs/{running}")),
        ("GET", format!("/v1/jobs/{running}/stream")),
    ] {
        let (status, _, e) = request(&node, &key, method, &path, None);
        assert_eq!((status, e["error"]["code"].as_str()), (404, Some("not-found")), "{method} {path}: {e}");
    }
    assert_eq!(state(&node, &running), "running", "a stranger's cancel reached the job");
    // Grid submission is the owner's.
    let (status, _, e) =
        request(&node, &key, "POST", "/v1/jobs", Some(json!({ "command": "text/stats", "on": "any" })));
    assert_eq!((status, e["error"]["code"].as_str()), (403, Some("denied")), "{e}");

    // Cancelled, every one of them ends and the queue takes jobs again.
    for id in waiting.iter().chain([&running]) {
        let (status, _, job) = request(&node, &node.token, "DELETE", &format!("/v1/jobs/{id}"), None);
        assert_eq!(status, 202, "{job}");
    }
    let all_ended = || {
        waiting
            .iter()
            .chain([&running])
            .all(|id| request(&node, &node.token, "GET", &format!("/v1/jobs/{id}"), None).2["state"] == "cancelled")
    };
    assert!(eventually(30, all_ended), "some of the 1001 cancelled jobs did not end");
    // Its own job (a public command) the stranger sees, alone in its list.
    let (status, _, own) =
        request(&node, &key, "POST", "/v1/jobs", Some(json!({ "command": "text/stats", "params": { "text": "x" } })));
    assert_eq!(status, 202, "{own}");
    let own = own["id"].as_str().unwrap().to_string();
    assert!(eventually(10, || state(&node, &own) == "succeeded"));
    let (status, _, listed) = request(&node, &key, "GET", "/v1/jobs", None);
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, vec![own.as_str()]);
    assert_eq!(request(&node, &key, "GET", &format!("/v1/jobs/{own}"), None).0, 200);
}

#[test]
fn a_node_restarted_mid_job_marks_it_interrupted() {
    let mut node = TestNode::start(|d| prepare(d, ONE_SLOT, &["misbehave"]));
    let id = node.ok(&["run", "misbehave/spin", "--detach"]).trim().to_string();
    assert!(eventually(20, || state(&node, &id) == "running"));
    node.restart();
    let job: Value = serde_json::from_str(&node.ok(&["jobs", "status", &id, "--json"])).unwrap();
    assert_eq!(job["state"], "interrupted", "{job}");
    assert_eq!(job["error"]["code"], "interrupted", "{job}");
    let log = node.ok(&["events", "tail", "-n", "20", "--json"]);
    assert!(log.lines().any(|l| l.contains("job.interrupted") && l.contains(&id)), "{log}");
    let waited = node.cli(&["jobs", "wait", &id]);
    assert_eq!(waited.status.code(), Some(7), "{}", stderr(&waited));
}

#[test]
fn progress_events_come_from_classify_train() {
    let Some((_, embed)) = real_models() else { return };
    let node = TestNode::start(|d| {
        prepare(d, ONE_THREAD, &["classify"]);
        let o = cli(d, &["model", "add", embed.to_str().unwrap(), "--id", "minilm"]);
        assert!(o.status.success(), "{}", stderr(&o));
    });
    let examples: Vec<Value> = [("a wonderful day", "good"), ("lovely and bright", "good"), ("great fun", "good")]
        .into_iter()
        .chain([("a terrible day", "bad"), ("awful and grey", "bad"), ("a dreadful mess", "bad")])
        .map(|(text, label)| json!({ "text": text, "label": label }))
        .collect();
    let body = json!({ "command": "classify/train", "params": { "name": "mood", "examples": examples, "epochs": 20 } });
    let (status, _, job) = request(&node, &node.token, "POST", "/v1/jobs", Some(body));
    assert_eq!(status, 202, "{job}");
    let stream = events(&node, "GET", &format!("/v1/jobs/{}/stream", job["id"].as_str().unwrap()), None);
    let progress: Vec<&Value> = stream.iter().filter(|(n, _, _)| n == "progress").map(|(_, d, _)| d).collect();
    // The host reports each epoch; the plugin reports before (possibly before this follower
    // subscribed) and after.
    assert!(progress.iter().any(|p| p["message"].as_str().unwrap().contains("epoch 20 of 20")), "{progress:?}");
    assert!(progress.iter().any(|p| p["message"] == "trained `mood`" && p["fraction"] == 1.0), "{progress:?}");
    let fractions: Vec<f64> = progress.iter().filter_map(|p| p["fraction"].as_f64()).collect();
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {fractions:?}");
    let (name, end, _) = stream.last().unwrap();
    assert_eq!((name.as_str(), &end["state"]), ("end", &json!("succeeded")), "{end}");

    // Cancelled mid-training, the job is cancelled (not failed), stopped between epochs.
    let long =
        json!({ "command": "classify/train", "params": { "name": "long", "examples": examples, "epochs": 10000 } });
    let (_, _, job) = request(&node, &node.token, "POST", "/v1/jobs", Some(long));
    let id = job["id"].as_str().unwrap().to_string();
    let training = || {
        let (_, _, job) = request(&node, &node.token, "GET", &format!("/v1/jobs/{id}"), None);
        job["progress"]["message"].as_str().is_some_and(|m| m.contains("epoch"))
    };
    assert!(eventually(30, training), "the long training never reported an epoch");
    let started = Instant::now();
    node.ok(&["jobs", "cancel", &id]);
    assert_eq!(state(&node, &id), "cancelled");
    assert!(started.elapsed() < Duration::from_secs(2), "cancel took {:?}", started.elapsed());
}

/// Two nodes: `a` calls, `b` ships misbehave and text and grants `a` their commands.
fn grid_pair(b_config: &str) -> (TestNode, TestNode) {
    let publisher = Publisher::new();
    let b = TestNode::start(|d| ship(d, &publisher, b_config, &["misbehave", "text"]));
    let a = TestNode::start(|_| {});
    let token = b.ok(&["grant", "issue", "--to", &a.id, "--cap", "misbehave/", "--cap", "text/"]).trim().to_string();
    a.ok(&["peer", "add", &b.address, "--name", "b", "--grant", &token]);
    (a, b)
}

/// The jobs `node` holds, as JSON.
fn jobs(node: &TestNode) -> Vec<Value> {
    serde_json::from_str(&node.ok(&["jobs", "list", "--json"])).expect("jobs JSON")
}

#[test]
fn a_grid_job_is_followed_and_cancelled_remotely_and_a_killed_peer_shows_lost() {
    let (a, mut b) = grid_pair(ONE_SLOT);
    // Followed to completion: the result comes back through A.
    let id = a.ok(&["run", "--on", "b", "text/stats", "--text", "a b c d", "--detach"]).trim().to_string();
    let result: Value = serde_json::from_str(&a.ok(&["jobs", "wait", &id, "--output", "json"])).unwrap();
    assert_eq!(result["words"], 4);
    let job: Value = serde_json::from_str(&a.ok(&["jobs", "status", &id, "--json"])).unwrap();
    assert_eq!((job["peer"].as_str(), job["state"].as_str()), (Some(b.id.as_str()), Some("succeeded")), "{job}");
    let remote = job["remote_id"].as_str().unwrap().to_string();
    assert_eq!(state(&b, &remote), "succeeded");

    // Cancelled from A: the guest on B stops, and both sides record it.
    let spin = a.ok(&["run", "--on", "b", "misbehave/spin", "--detach", "--lease", "3s"]).trim().to_string();
    let remote_of = |id: &str| -> String {
        let job: Value = serde_json::from_str(&a.ok(&["jobs", "status", id, "--json"])).unwrap();
        job["remote_id"].as_str().unwrap().to_string()
    };
    let spin_there = remote_of(&spin);
    assert!(eventually(20, || state(&b, &spin_there) == "running"), "the job did not start on B");
    assert!(eventually(10, || state(&a, &spin) == "running"), "A did not see the job running");
    let started = Instant::now();
    a.ok(&["jobs", "cancel", &spin]);
    assert!(eventually(5, || state(&b, &spin_there) == "cancelled"), "B's job was not cancelled");
    assert!(eventually(5, || state(&a, &spin) == "cancelled"), "A's record was not cancelled");
    eprintln!("remote cancel reached B's guest and came back in {:?}", started.elapsed());

    // A peer killed mid-job: A marks the job lost once the lease runs out.
    let doomed = a.ok(&["run", "--on", "b", "misbehave/spin", "--detach", "--lease", "2s"]).trim().to_string();
    assert!(eventually(20, || state(&a, &doomed) == "running"));
    b.kill();
    let killed = Instant::now();
    assert!(eventually(15, || state(&a, &doomed) == "lost"), "the job on the killed peer was not marked lost");
    let lost_after = killed.elapsed();
    // Found out once no renewal succeeded for a whole lease (2 s), each renewal waiting at most
    // half of it.
    assert!(lost_after < Duration::from_secs(5), "lost only after {lost_after:?}");
    let job: Value = serde_json::from_str(&a.ok(&["jobs", "status", &doomed, "--json"])).unwrap();
    assert!(job["error"]["message"].as_str().unwrap().contains("lease"), "{job}");
    eprintln!("a killed peer's job was marked lost {lost_after:?} after the kill (lease 2 s)");
    assert!(jobs(&a).iter().any(|j| j["id"] == doomed.as_str() && j["state"] == "lost"));
}

#[test]
fn a_peer_cancels_a_job_whose_submitter_stopped_renewing_its_lease() {
    let (mut a, b) = grid_pair(ONE_SLOT);
    let id = a.ok(&["run", "--on", "b", "misbehave/spin", "--detach", "--lease", "1s"]).trim().to_string();
    let job: Value = serde_json::from_str(&a.ok(&["jobs", "status", &id, "--json"])).unwrap();
    let remote = job["remote_id"].as_str().unwrap().to_string();
    assert!(eventually(20, || state(&b, &remote) == "running"));
    // Renewed while A lives: still running after several leases.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state(&b, &remote), "running", "B cancelled a job whose lease was being renewed");
    a.kill();
    assert!(eventually(10, || state(&b, &remote) == "cancelled"), "B kept running a job nobody renewed");
    let job: Value = serde_json::from_str(&b.ok(&["jobs", "status", &remote, "--json"])).unwrap();
    assert!(job["error"]["message"].as_str().unwrap().contains("did not renew its lease"), "{job}");
    // The caller's key owns it on B: B's owner sees it too, a stranger would not.
    assert_eq!(job["caller"].as_str(), Some(a.id.as_str()));
}

#[test]
fn a_remote_generation_streams_tokens_to_the_calling_terminal_before_it_ends() {
    let Some((llm, _)) = real_models() else { return };
    let publisher = Publisher::new();
    let b = TestNode::start(|d| {
        ship(d, &publisher, ONE_THREAD, &["llm"]);
        let o = cli(d, &["model", "add", llm.to_str().unwrap(), "--id", "smollm2"]);
        assert!(o.status.success(), "{}", stderr(&o));
    });
    let a = TestNode::start(|_| {});
    let token = b.ok(&["grant", "issue", "--to", &a.id, "--cap", "llm/"]).trim().to_string();
    a.ok(&["peer", "add", &b.address, "--name", "b", "--grant", &token]);
    let prompt = "Write a short poem about the sea.";
    // Warm the model on B, so the figures below are of the stream, not of loading.
    b.ok(&["run", "llm/generate", "--prompt", "Hi", "--max-tokens", "2"]);

    let started = Instant::now();
    let mut child = std::process::Command::new(continuum_tests::binary())
        .arg("--data-dir")
        .arg(a.dir.path())
        .args(["run", "--on", "b", "llm/generate", "--prompt", prompt, "--max-tokens", "64", "--stream"])
        .env_remove("CONTINUUM_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("continuum run");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = None;
    let mut byte = [0u8; 1];
    let mut shown = Vec::new();
    while std::io::Read::read(&mut err, &mut byte).unwrap_or(0) == 1 {
        if first.is_none() && !byte[0].is_ascii_whitespace() {
            first = Some(started.elapsed());
        }
        shown.push(byte[0]);
    }
    let status = child.wait().unwrap();
    let total = started.elapsed();
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let shown = String::from_utf8_lossy(&shown).into_owned();
    assert!(status.success(), "{shown}");
    let first = first.expect("nothing was shown on stderr");
    let answer: Value = serde_json::from_str(out.trim()).unwrap_or(Value::String(out.clone()));
    let text = answer["text"].as_str().or(answer.as_str()).unwrap_or_default().to_string();
    assert!(!text.is_empty(), "{out}");
    // The streamed text is the answer, shown before the call ended.
    assert!(shown.contains(text.split_whitespace().next().unwrap()), "stderr: {shown}\nanswer: {text}");
    assert!(first < total, "first token {first:?}, whole call {total:?}");
    eprintln!("remote llm/generate, 64 tokens: first token shown after {first:?}, whole generation {total:?}");
}

/// Back-pressure: a client that reads a streamed call's events slower than the guest writes
/// them makes the node drop events (a `lagged` event says how many), never buffer them without
/// bound, and never lose the answer.
#[test]
fn a_slow_reader_of_a_streamed_call_loses_events_not_the_answer() {
    let config = "[plugins.misbehave.limits]\noutput-kib = 16384\n";
    let node = TestNode::start(|d| prepare(d, config, &["misbehave"]));
    let bytes = 15u64 << 20;
    let url = format!("{}/v1/commands/misbehave/chatter", node.http);
    let response = agent()
        .post(&url)
        .header("authorization", &format!("Bearer {}", node.token))
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .send(json!({ "bytes": bytes }).to_string().as_bytes())
        .expect("stream");
    assert_eq!(response.status().as_u16(), 200);
    // The guest writes 15 360 pieces of 1 KiB while this reader does not read.
    std::thread::sleep(Duration::from_secs(3));
    let (mut outputs, mut skipped, mut end) = (0u64, 0u64, None);
    for (name, data, _) in read_events(response.into_body().into_reader()) {
        match name.as_str() {
            "output" => outputs += 1,
            "lagged" => skipped += data["skipped"].as_u64().unwrap(),
            "end" => end = Some(data),
            other => panic!("unexpected event {other}: {data}"),
        }
    }
    let end = end.expect("no end event");
    assert!(skipped > 0, "nothing was dropped for a reader that did not read ({outputs} output events)");
    assert!(outputs <= 15_360 && outputs + skipped >= 15_000, "{outputs} shown + {skipped} dropped");
    assert_eq!(end["output"].as_str().map(str::len), Some(bytes as usize), "the answer lost output");
    eprintln!("slow reader: {outputs} output events delivered, {skipped} dropped, the answer whole");
}
