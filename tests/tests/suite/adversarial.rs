//! The adversarial suite: malicious plugins built from source (`tests/adversarial/`) attack a
//! running node (`continuum serve`, one process) over its HTTP API. Each attack must be stopped
//! with an error naming what stopped it, the node must keep answering ordinary calls right
//! after (and during) each attack, and the event log must record every one.

use std::path::Path;
use std::time::{Duration, Instant};

use continuum::paths::DataDir;
use continuum::Host;
use continuum_tests::{allow_all, plugin_dir, stderr, stdout, TestNode};
use serde_json::{json, Value};

/// Tight limits, so each attack hits its limit quickly.
const LIMITS: &str = "
[plugins.misbehave.limits]
timeout-ms = 500
memory-mib = 32
output-kib = 64
max-host-calls = 1000

[plugins.hostile.limits]
timeout-ms = 1000
memory-mib = 64
output-kib = 64
max-host-calls = 1000
";

/// Installs the fixtures on `data`: kv (the victim), misbehave and hostile (the attackers,
/// with everything they ask for approved).
fn prepare(data: &Path) {
    std::fs::write(data.join("continuum.toml"), LIMITS).expect("config");
    let host = Host::open(DataDir::at(data.to_path_buf()).expect("data dir")).expect("host");
    for name in ["kv", "misbehave", "hostile"] {
        let dir = plugin_dir(name);
        host.install_component(&dir.join(format!("{name}.wasm")), Some(&dir.join("wit")), &allow_all())
            .unwrap_or_else(|e| panic!("install {name}: {e:#}"));
    }
}

struct Api {
    base: String,
    agent: ureq::Agent,
    owner: String,
}

impl Api {
    fn new(node: &TestNode) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Api { base: node.http.clone(), agent, owner: format!("Bearer {}", node.token) }
    }

    /// POSTs `params` to command `name` with `headers`; status and JSON body.
    fn call_with(&self, name: &str, params: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.agent.post(&format!("{}/v1/commands/{name}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut response =
            request.header("content-type", "application/json").send(params.to_string()).expect("request");
        let text = response.body_mut().with_config().limit(64 << 20).read_to_string().unwrap_or_default();
        (response.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Calls `name` as the owner.
    fn call(&self, name: &str, params: Value) -> (u16, Value) {
        self.call_with(name, &params, &[("authorization", &self.owner)])
    }

    /// The node still answers an ordinary call, correctly and promptly.
    fn still_serves(&self) {
        let started = Instant::now();
        let (status, body) = self.call("kv/get", json!({ "key": "secret" }));
        assert_eq!((status, &body["result"]), (200, &json!({ "text": "launch code" })), "{body}");
        assert!(started.elapsed() < Duration::from_secs(5), "an ordinary call took {:?}", started.elapsed());
    }

    /// Calls `name` as the owner and expects an error with `code` whose message contains `says`.
    fn contained(&self, name: &str, params: Value, code: &str, says: &str) -> Value {
        let (status, body) = self.call(name, params);
        assert!(status >= 400, "{name} succeeded: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{name}: `{message}` does not say `{says}`");
        self.still_serves();
        body
    }

    /// The failed calls in the node's event log: (command, outcome) of each.
    fn failures(&self) -> Vec<(String, String)> {
        let mut response = self
            .agent
            .get(&format!("{}/v1/events?kind=call.failed&limit=1000", self.base))
            .header("authorization", &self.owner)
            .call()
            .expect("events");
        let entries: Value = serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON");
        entries
            .as_array()
            .expect("a list")
            .iter()
            .map(|e| {
                // The payload is JSON text, as it was hashed into the chain.
                let payload: Value = serde_json::from_str(e["payload"].as_str().unwrap_or("{}")).expect("payload JSON");
                let field = |k: &str| payload[k].as_str().unwrap_or_default().to_string();
                (field("command"), field("outcome"))
            })
            .collect()
    }
}

#[test]
fn every_attack_is_contained_named_and_logged_while_the_node_keeps_serving() {
    let node = TestNode::start(prepare);
    let api = Api::new(&node);
    let (status, _) = api.call("kv/put", json!({ "key": "secret", "value": { "text": "launch code" } }));
    assert_eq!(status, 200);
    api.still_serves();

    // Runaway code and resource bombs: each stopped by the limit it broke, named with its key.
    api.contained("misbehave/spin", json!({}), "deadline", "deadline of 500 ms exceeded");
    api.contained("misbehave/hog", json!({ "mib": 64 }), "memory-limit", "memory limit of 32 MiB exceeded");
    api.contained("misbehave/recurse", json!({ "depth": 100_000_000 }), "stack-overflow", "stack overflow");
    api.contained("misbehave/shout", json!({ "bytes": 200_000 }), "output-limit", "exceeded by the result");
    api.contained("misbehave/chatter", json!({ "bytes": 200_000 }), "output-limit", "exceeded by stdout/stderr");

    // Host-call floods: the log, the event log and the store, each cut off at the cap.
    api.contained("misbehave/flood", json!({ "times": 5000 }), "host-call-limit", "1000 calls");
    api.contained("hostile/spam-events", json!({ "times": 5000 }), "host-call-limit", "1000 calls");
    api.contained("hostile/spam-store", json!({ "times": 5000 }), "host-call-limit", "1000 calls");

    // Huge JSON results: over the output cap; and results so large that lifting them into host
    // values would take gigabytes are stopped while they are copied out of the guest.
    api.contained("hostile/numbers", json!({ "n": 50_000 }), "output-limit", "exceeded by the result");
    api.contained("hostile/numbers", json!({ "n": 5_000_000 }), "transfer-limit", "more than");
    api.contained("hostile/blob", json!({ "n": 40_000_000 }), "transfer-limit", "more than");

    // A slow drip: the deadline ends it, and other calls are answered while it drips.
    std::thread::scope(|s| {
        let drip = s.spawn(|| api.call("hostile/drip", json!({ "lines": 1000, "ms": 20 })));
        std::thread::sleep(Duration::from_millis(200));
        for _ in 0..5 {
            api.still_serves();
        }
        let (status, body) = drip.join().unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("deadline")), "{body}");
    });
    api.still_serves();

    // A composition bomb: the nesting cap stops it eight levels down.
    let bomb = api.contained("hostile/chain", json!({ "depth": 0 }), "command-error", "hostile/chain");
    assert!(
        bomb["error"]["value"].as_str().unwrap_or_default().contains("nested calls are limited to 8 levels"),
        "{bomb}"
    );

    // Store namespaces: no key reaches kv's entries — not by name, path, wildcard or NUL.
    for key in ["secret", "../kv/secret", "kv/secret", "/kv/secret", "kv\u{0}secret", "%", "_ecret"] {
        let (status, body) = api.call("hostile/peek", json!({ "key": key }));
        assert_eq!(status, 200, "{key:?}: {body}");
        assert_eq!(body["result"], Value::Null, "hostile read {key:?}: {body}");
    }
    for prefix in ["", "%", "_", "../", "kv"] {
        // Only hostile's own keys (its store flood left some) may be listed.
        let (_, body) = api.call("hostile/scan", json!({ "prefix": prefix }));
        let keys = body["result"].as_array().expect("a key list");
        assert!(
            keys.iter().all(|k| k.as_str().is_some_and(|k| k.starts_with("spam-"))),
            "hostile listed {prefix:?}: {keys:?}"
        );
    }
    for key in ["secret", "../kv/secret", "kv/secret"] {
        assert_eq!(api.call("hostile/poke", json!({ "key": key, "value": "pwned" })).0, 200);
    }
    api.still_serves();

    // Escalation through composition: a caller granted only `hostile/` cannot reach kv through
    // it, directly or relayed; a grant it forged itself is refused.
    let mallory = ed25519_dalek::SigningKey::from_bytes(&[66; 32]);
    let mallory_id = continuum::keys::public_hex(&mallory.verifying_key());
    let grant = node.ok(&["grant", "issue", "--to", &mallory_id, "--cap", "hostile/"]).trim().to_string();
    let key = node.ok(&["apikey", "create", "--for", &grant, "--label", "mallory"]).trim().to_string();
    let mallory_auth = format!("Bearer {key}");
    let as_mallory = [("authorization", mallory_auth.as_str())];
    let put = json!({ "key": "secret", "value": { "text": "pwned" } });
    let (status, body) = api.call_with("kv/put", &put, &as_mallory);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("denied")), "{body}");
    let relayed = json!({ "command": "kv/put", "params": put.to_string() });
    let (status, body) = api.call_with("hostile/relay", &relayed, &as_mallory);
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["value"].as_str().unwrap_or_default().contains("kv/put"), "{body}");
    let forged = continuum::grants::issue(&mallory, &mallory.verifying_key(), &["kv/".into()], i64::MAX / 2, 1);
    let body = put.to_string();
    let target = continuum::node::auth::RequestToSign {
        node: &node.id,
        method: "POST",
        path: "/v1/commands/kv/put",
        grant: Some(&forged),
        body: body.as_bytes(),
    };
    let signed = continuum::node::auth::sign_request(&mallory, &target);
    let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = api.call_with("kv/put", &put, &headers);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("denied")), "{body}");
    api.still_serves();

    // WASI: no filesystem, no sockets (not even the node's own API on loopback).
    let (status, body) = api.call("hostile/sneak", json!({ "path": "/etc/passwd" }));
    assert_eq!(status, 422, "read a file: {body}");
    let address = node.http.trim_start_matches("http://").to_string();
    let (status, body) = api.call("hostile/dial", json!({ "address": address }));
    assert_eq!(status, 422, "opened a socket: {body}");
    api.still_serves();

    // Terminal escapes: the CLI (over the node's socket) prints none of them.
    let out = node.cli(&["run", "misbehave/noisy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b), "raw ESC reached the terminal: {out:?}");
    assert!(stdout(&out).contains("\\u001b[32m"), "{}", stdout(&out));

    // The event log recorded every attack with the outcome that stopped it.
    let failures = api.failures();
    for (command, outcome) in [
        ("misbehave/spin", "deadline"),
        ("misbehave/hog", "memory-limit"),
        ("misbehave/recurse", "stack-overflow"),
        ("misbehave/shout", "output-limit"),
        ("misbehave/chatter", "output-limit"),
        ("misbehave/flood", "host-call-limit"),
        ("hostile/spam-events", "host-call-limit"),
        ("hostile/spam-store", "host-call-limit"),
        ("hostile/numbers", "output-limit"),
        ("hostile/numbers", "transfer-limit"),
        ("hostile/blob", "transfer-limit"),
        ("hostile/drip", "deadline"),
        ("hostile/chain", "depth-exceeded"),
        ("kv/put", "denied"),
        ("hostile/relay", "command-error"),
        ("hostile/sneak", "command-error"),
        ("hostile/dial", "command-error"),
    ] {
        assert!(
            failures.iter().any(|(c, o)| c == command && o == outcome),
            "the log has no `{outcome}` failure of {command}: {failures:?}"
        );
    }
    // Ungranted imports: a plugin asking for more than is approved is not installed, and once
    // a capability is withdrawn its commands no longer run; both say how to fix it.
    let dir = plugin_dir("hostile");
    let partly =
        node.cli(&["plugin", "install", dir.to_str().unwrap(), "--name", "hostile-2", "--allow", "host:store"]);
    assert!(!partly.status.success());
    assert!(stderr(&partly).contains("host:events") && stderr(&partly).contains("approve"), "{}", stderr(&partly));
    node.ok(&["plugin", "deny", "hostile", "host:events"]);
    let (status, body) = api.call("hostile/peek", json!({ "key": "k" }));
    assert!(status >= 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("host:events") && message.contains("plugin allow"), "{body}");
    api.still_serves();

    let verify = node.cli(&["events", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    // kv's secret survived every attack.
    api.still_serves();
}
