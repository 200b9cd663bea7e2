//! The grid end to end: separate `continuum serve` processes on 127.0.0.1 (no relays, no
//! discovery), talking over iroh.

use std::time::{Duration, Instant};

use continuum_tests::{eventually, stderr, stdout, Publisher, TestNode};
use serde_json::Value;

fn offers(node: &TestNode) -> Value {
    serde_json::from_str(&node.ok(&["offers", "--json"])).expect("offers JSON")
}

fn offered_by(node: &TestNode, other: &TestNode) -> Option<Value> {
    offers(node).as_array()?.iter().find(|k| k["offer"]["node"] == other.id.as_str()).cloned()
}

#[test]
fn offers_gossip_install_from_a_peer_granted_calls_and_log_replication() {
    let publisher = Publisher::new();
    let a = TestNode::start(|d| publisher.install(d, &["text", "kv"]));
    let b = TestNode::start(|d| publisher.trust(d));
    let c = TestNode::start(|d| publisher.trust(d));
    b.ok(&["peer", "add", &a.address, "--name", "a"]);
    c.ok(&["peer", "add", &b.address, "--name", "b"]);

    // C never met A: it learns A's signed offer through gossip, relayed by B.
    assert!(
        eventually(30, || offered_by(&c, &a).is_some_and(|k| k["via"] == "gossip")),
        "C did not learn A's offer through gossip: {}",
        offers(&c)
    );
    let offer = offered_by(&c, &a).unwrap();
    let text = offer["offer"]["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "text").unwrap().clone();
    assert_eq!(text["idempotent"], true);
    assert!(text["commands"].as_array().unwrap().iter().any(|c| c["name"] == "text/stats" && c["access"] == "public"));

    // Install from a peer: fetched by BLAKE3 from A (found through the offer), verified, installed.
    let out = c.ok(&["plugin", "install", "text", "--from", "any"]);
    assert!(out.contains("installed text 0.1.0") && out.contains("verified"), "{out}");
    assert!(c.ok(&["plugin", "list"]).contains(text["digest"].as_str().unwrap().get(..12).unwrap()));
    assert_eq!(c.ok(&["run", "text/convert-case", "--text", "Big Cat", "--to", "kebab"]).trim(), "\"big-cat\"");
    let missing = c.cli(&["plugin", "install", "sha256:00000000deadbeef", "--from", "any"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("no peer offers a plugin"), "{}", stderr(&missing));

    // A remote call to a granted command is refused without a grant, with the fix in the message…
    let refused = b.cli(&["run", "--on", "a", "kv/put", r#"{"key": "k", "value": {"integer": 7}}"#]);
    assert_eq!(refused.status.code(), Some(5), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("needs a grant"), "{}", stderr(&refused));
    // …and runs once A's owner grants it to B's node key (with A's log, for replication below).
    let token = a.ok(&["grant", "issue", "--to", &b.id, "--cap", "kv/", "--cap", "node:log-pull"]).trim().to_string();
    b.ok(&["peer", "add", &a.address, "--grant", &token]);
    let done = b.cli(&["run", "--on", "a", "kv/put", r#"{"key": "k", "value": {"integer": 7}}"#]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(stderr(&done).contains(&format!("[contributors {}]", a.id)), "{}", stderr(&done));
    assert_eq!(a.ok(&["run", "kv/get", "--key", "k"]).trim(), r#"{"integer":7}"#);

    // Both sides logged it: A the call by B's key, B the grid call.
    let a_log = a.ok(&["events", "tail", "-n", "50", "--json"]);
    assert!(a_log.lines().any(|l| l.contains("call.completed") && l.contains(&b.id)), "{a_log}");
    assert!(b.ok(&["events", "tail", "-n", "50", "--json"]).contains("grid.call"));

    // Log replication: B pulls A's log (verified chain, Lamport merge), then only what is new.
    let first = b.ok(&["events", "pull", "a"]);
    assert!(first.starts_with("pulled ") && !first.starts_with("pulled 0 "), "{first}");
    assert!(b.ok(&["events", "pull", "a"]).starts_with("pulled 0 new entries"));
    a.ok(&["run", "kv/get", "--key", "k"]);
    let again = b.ok(&["events", "pull", "a"]);
    assert!(!again.starts_with("pulled 0 "), "{again}");
    b.ok(&["events", "verify"]);
}

#[test]
fn a_grid_call_to_an_unknown_or_offline_peer_fails_fast_with_a_clear_error() {
    let a = TestNode::start(|_| {});
    let unknown = a.cli(&["run", "--on", "nobody", "text/stats", r#"{"text": "x"}"#]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("no peer `nobody`"), "{}", stderr(&unknown));
    let none = a.cli(&["run", "--on", "any", "text/stats", r#"{"text": "x"}"#]);
    assert_eq!(none.status.code(), Some(6), "{}", stderr(&none));
    // A peer that is not running: unreachable within the timeout, not a hang.
    let mut gone = TestNode::start(|_| {});
    let address = gone.address.clone();
    gone.kill();
    a.ok(&["peer", "add", &address, "--name", "gone"]);
    let started = Instant::now();
    let o = a.cli(&["run", "--on", "gone", "--timeout", "2s", "text/stats", r#"{"text": "x"}"#]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    assert!(stderr(&o).contains("did not answer") || stderr(&o).contains("unreachable"), "{}", stderr(&o));
    let bad = a.cli(&["peer", "add", "not-a-peer"]);
    assert!(stderr(&bad).contains("expected <node-id>@<ip:port>"), "{}", stderr(&bad));
}

/// A, and three executors B, C, D holding different values under the same kv keys.
fn quorum_grid(publisher: &Publisher) -> (TestNode, Vec<TestNode>) {
    let a = TestNode::start(|d| publisher.trust(d));
    let values = [("m", 2.0, "w", 1.0), ("m", 2.0, "w", 2.0), ("m", 7.0, "w", 6.0)];
    let mut executors = Vec::new();
    for (mk, mv, wk, wv) in values {
        let n = TestNode::start(|d| publisher.install(d, &["kv"]));
        n.ok(&["run", "kv/put", &format!(r#"{{"key": "{mk}", "value": {{"number": {mv}}}}}"#)]);
        n.ok(&["run", "kv/put", &format!(r#"{{"key": "{wk}", "value": {{"number": {wv}}}}}"#)]);
        let token = n.ok(&["grant", "issue", "--to", &a.id, "--cap", "kv/get"]).trim().to_string();
        a.ok(&["peer", "add", &n.address, "--grant", &token]);
        executors.push(n);
    }
    let ids: Vec<String> = executors.iter().map(|n| n.id.clone()).collect();
    assert!(
        eventually(20, || {
            let o = offers(&a).to_string();
            ids.iter().all(|id| o.contains(id.as_str()))
        }),
        "A did not get every executor's offer"
    );
    (a, executors)
}

fn contributors(o: &std::process::Output) -> Vec<String> {
    let err = stderr(o);
    let line = err.lines().find_map(|l| l.strip_prefix("[contributors ")).unwrap_or_default();
    let mut ids: Vec<String> =
        line.trim_end_matches(']').split(',').filter(|s| !s.is_empty()).map(String::from).collect();
    ids.sort();
    ids
}

#[test]
fn multi_quorum_majority_fedavg_and_a_peer_killed_mid_quorum() {
    let publisher = Publisher::new();
    let (a, mut ex) = quorum_grid(&publisher);
    let get = |key: &str, extra: &[&str]| {
        let mut args = vec!["run", "--on", "all", "--quorum", "multi"];
        args.extend_from_slice(extra);
        let params = format!(r#"{{"key": "{key}"}}"#);
        args.extend_from_slice(&["kv/get", &params]);
        a.cli(&args)
    };

    // Majority: B and C agree on 2, D says 7; only B and C are credited.
    let o = get("m", &["--reduce", "majority"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r#"{"number":2.0}"#);
    let mut agreeing = vec![ex[0].id.clone(), ex[1].id.clone()];
    agreeing.sort();
    assert_eq!(contributors(&o), agreeing);

    // Federated average of 1, 2 and 6.
    let o = get("w", &["--reduce", "fedavg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r#"{"number":3.0}"#);
    assert_eq!(contributors(&o).len(), 3);

    // D hangs (stopped), and is killed while the quorum waits for it.
    let stop = std::process::Command::new("kill").args(["-STOP", &ex[2].pid().to_string()]).status().unwrap();
    assert!(stop.success());
    let started = Instant::now();
    let call = std::thread::scope(|s| {
        let call = s.spawn(|| get("w", &["--reduce", "fedavg", "--min", "3", "--timeout", "3s"]));
        std::thread::sleep(Duration::from_millis(500));
        ex[2].kill();
        call.join().unwrap()
    });
    assert_eq!(call.status.code(), Some(6), "{}", stderr(&call));
    assert!(stderr(&call).contains("only 2 of the 3 answers"), "{}", stderr(&call));
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());

    // degraded: reduce what came, say so, credit only those who answered.
    let o = get("w", &["--reduce", "fedavg", "--min", "3", "--timeout", "2s", "--if-under-min", "degraded"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r#"{"number":1.5}"#);
    assert!(stderr(&o).contains("degraded"), "{}", stderr(&o));
    assert_eq!(contributors(&o).len(), 2);

    // wait=2s: keep asking until the bound, then fail.
    let started = Instant::now();
    let o = get("w", &["--reduce", "fedavg", "--min", "3", "--timeout", "1s", "--if-under-min", "wait=2s"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("within 2s"), "{}", stderr(&o));
    assert!(started.elapsed() >= Duration::from_secs(2) && started.elapsed() < Duration::from_secs(20));

    // The survivors still answer a plain quorum of two.
    let o = get("m", &["--reduce", "majority"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn weighted_average_the_any_quorums_adaptive_wait_and_single_quorum_retries_with_backoff() {
    let publisher = Publisher::new();
    let (a, ex) = quorum_grid(&publisher);
    let run = |extra: &[&str], key: &str| {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        let params = format!(r#"{{"key": "{key}"}}"#);
        args.extend_from_slice(&["kv/get", &params]);
        a.cli(&args)
    };
    // Weighted average of 1, 2 and 6 (no weights in the answers: equal ones).
    let o = run(&["--on", "all", "--quorum", "multi", "--min", "3", "--reduce", "weighted-average"], "w");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r#"{"number":3.0}"#);
    assert_eq!(contributors(&o).len(), 3);

    // A command reducer on the caller: each executor counts one, typezoo/sum-answers adds them.
    for n in &ex {
        let token = n.ok(&["grant", "issue", "--to", &a.id, "--cap", "kv/"]).trim().to_string();
        a.ok(&["peer", "add", &n.address, "--grant", &token]);
    }
    a.ok(&["plugin", "install", continuum_tests::plugin_dir("typezoo").to_str().unwrap()]);
    let quorum = ["--on", "all", "--quorum", "multi", "--min", "3", "--reduce", "typezoo/sum-answers"];
    let o = a.cli(&[&["run"][..], &quorum, &["kv/incr", r#"{"key": "calls"}"#]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "3");
    assert_eq!(contributors(&o).len(), 3);

    // One executor hangs: the any-quorum waits about 1.5 × the p95 of recent calls (at most
    // 5 s), not the 30 s call timeout, and unites what arrived.
    let stop = std::process::Command::new("kill").args(["-STOP", &ex[2].pid().to_string()]).status().unwrap();
    assert!(stop.success());
    let started = Instant::now();
    // (`--min 2 --if-under-min wait=10s`: on a loaded machine a healthy answer may miss the
    // first, tight bound; the call then asks again rather than fail.)
    let o =
        run(&["--on", "all", "--quorum", "any", "--reduce", "union", "--min", "2", "--if-under-min", "wait=10s"], "m");
    let waited = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r#"[{"number":2.0}]"#);
    assert_eq!(contributors(&o).len(), 2, "{}", stderr(&o));
    assert!(waited < Duration::from_secs(15), "the any-quorum waited {waited:?} for a hung peer");

    // A single-quorum call to the hung peer: asked again 3 times with backoff (0.2 + 0.4 +
    // 0.8 s) under one request id (kv imports the store, so only of this peer), then fails.
    let started = Instant::now();
    let o = run(&["--on", &ex[2].id, "--timeout", "1s"], "m");
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(20), "took {took:?}: {}", stderr(&o));
    let _ = std::process::Command::new("kill").args(["-CONT", &ex[2].pid().to_string()]).status();
}
