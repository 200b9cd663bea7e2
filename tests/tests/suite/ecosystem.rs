//! Open to the ecosystem: plain WASI programs (a Rust `fn main` with no WIT, a preview-1
//! module, a C program built with clang and wasi-libc) as commands; a `wasi:http` handler
//! served by the node; every command an MCP tool (the official Python SDK as the client, over
//! stdio and HTTP); and one typed OpenAPI operation per command (validated, and a client built
//! from it calls `text/stats`).

use continuum::dir_grant::DirGrant;
use continuum::sandbox::LimitHit;
use continuum::CallError;
use continuum_tests::{plugin_dir, python_client, stderr, stdout, Publisher, TestHost, TestNode};
use serde_json::{json, Value};

fn program(h: &TestHost, name: &str, params: Value) -> Value {
    h.call(name, params).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn plain_wasi_programs_run_as_commands_with_only_what_they_are_given() {
    let h = TestHost::with(&["wasi-main", "wasi-main-p1"]);
    for name in ["wasi-main", "wasi-main-p1"] {
        // No WIT was given: the schema is the program's, and the decoded WIT names its world.
        let schema = h.host.command(name).unwrap();
        assert_eq!(schema.params["properties"]["args"]["type"], "array", "{name}");
        let record = h.host.plugin(name).unwrap();
        let wit: String = record.wit.packages[0].files.values().cloned().collect();
        assert!(wit.contains(&format!("world {name}")) && wit.contains("wasi:cli/run"), "{wit}");

        let r = program(&h, name, json!({ "args": ["echo", "a", "b"], "stdin": "hi", "env": { "GREETING": "hey" } }));
        let out = r["stdout"].as_str().unwrap();
        assert!(out.contains(&format!("argv: {name} echo a b")) && out.contains("greeting: hey"), "{r}");
        assert!(out.contains("env count: 1") && out.ends_with("HI"), "the host's environment leaked in: {r}");
        assert_eq!((r["stderr"].as_str(), r["exit-code"].as_u64()), (Some("to stderr\n"), Some(0)));

        // A failing exit is reported, not raised: WASI 0.2's `exit` carries success or failure.
        let r = program(&h, name, json!({ "args": ["exit", "5"] }));
        assert_eq!((r["exit-code"].as_u64(), r["stderr"].as_str()), (Some(1), Some("exiting\n")), "{r}");
        let r = program(&h, name, json!({ "args": ["binary"] }));
        assert_eq!((r["stdout"].as_str(), r["stdout-base64"].as_bool()), (Some("//4AQQ=="), Some(true)), "{r}");
        // No files unless lent: the host's /etc does not exist for it.
        let r = program(&h, name, json!({ "args": ["read", "/etc/hostname"] }));
        assert!(r["exit-code"].as_u64() != Some(0) && r["stderr"].as_str().unwrap().contains("cannot read"), "{r}");
        // Writing without end stops at the output cap with the limit named.
        match h.call(name, json!({ "args": ["flood"] })) {
            Err(CallError::Limit { limit: LimitHit::Output { .. }, .. }) => {}
            other => panic!("{name}: a flood of stdout gave {other:?}"),
        }
        match h.call(name, json!({ "args": ["panic"] })) {
            Err(CallError::Trapped { message, .. }) => assert!(message.contains("the program panicked"), "{message}"),
            other => panic!("{name}: a panic gave {other:?}"),
        }
        match h.call(name, json!({ "argz": [] })) {
            Err(CallError::InvalidParams { message, .. }) => assert!(message.contains("argz"), "{message}"),
            other => panic!("{name}: unknown params gave {other:?}"),
        }
    }

    // A lent folder: read-only, then read-write.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "lent file\n").unwrap();
    let spec = |mode: &str| DirGrant::parse(&format!("{}:/data:{mode}", data.path().display())).unwrap();
    h.host.lend_dirs("wasi-main", &[spec("ro")]).unwrap();
    let r = program(&h, "wasi-main", json!({ "args": ["read", "/data/in.txt"] }));
    assert_eq!(r["stdout"], "lent file\n", "{r}");
    let r = program(&h, "wasi-main", json!({ "args": ["write", "/data/out.txt"] }));
    assert_ne!(r["exit-code"], 0, "a read-only folder was written: {r}");
    assert!(!data.path().join("out.txt").exists());
    // The other plugin was lent nothing.
    let r = program(&h, "wasi-main-p1", json!({ "args": ["read", "/data/in.txt"] }));
    assert_ne!(r["exit-code"], 0, "{r}");
    h.host.lend_dirs("wasi-main", &[spec("rw")]).unwrap();
    let r = program(&h, "wasi-main", json!({ "args": ["write", "/data/out.txt"] }));
    assert_eq!(r["exit-code"], 0, "{r}");
    assert_eq!(std::fs::read_to_string(data.path().join("out.txt")).unwrap(), "written by the guest");
    // A lent folder replaced by a symlink since (to the host's /etc) is refused, not followed.
    let sub = data.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    h.host.lend_dirs("wasi-main", &[DirGrant::parse(&format!("{}:/sub:ro", sub.display())).unwrap()]).unwrap();
    std::fs::remove_dir(&sub).unwrap();
    std::os::unix::fs::symlink("/etc", &sub).unwrap();
    match h.call("wasi-main", json!({ "args": ["read", "/sub/hostname"] })) {
        Err(CallError::Host { message, .. }) => assert!(message.contains("now resolves to /etc"), "{message}"),
        other => panic!("a lent folder swapped for a symlink was followed: {other:?}"),
    }
    h.host.withdraw_dirs("wasi-main", &["/sub".into()]).unwrap();
    h.host.withdraw_dirs("wasi-main", &["/data".into()]).unwrap();
    let r = program(&h, "wasi-main", json!({ "args": ["read", "/data/in.txt"] }));
    assert_ne!(r["exit-code"], 0, "a withdrawn folder is still lent: {r}");
}

#[test]
fn what_cannot_be_a_command_is_refused_by_name() {
    let h = TestHost::with(&[]);
    let dir = tempfile::tempdir().unwrap();
    // A core module importing `env.f`: not WASI preview 1, so the adapter cannot provide it.
    let module = dir.path().join("foreign.wasm");
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.extend([0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
    bytes.extend([0x02, 0x09, 0x01, 0x03, b'e', b'n', b'v', 0x01, b'f', 0x00, 0x00]);
    std::fs::write(&module, bytes).unwrap();
    let e = format!("{:#}", h.host.install_component(&module, None, &continuum_tests::allow_all()).unwrap_err());
    assert!(e.contains("env.f") && e.contains("preview 1"), "{e}");
    // A component that exports nothing.
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    let e = format!("{:#}", h.host.install_component(&empty, None, &continuum_tests::allow_all()).unwrap_err());
    assert!(e.contains("exports no functions") && e.contains("wasi:cli/run"), "{e}");
    // Not WebAssembly at all.
    let text = dir.path().join("text.wasm");
    std::fs::write(&text, b"hello").unwrap();
    let e = format!("{:#}", h.host.install_component(&text, None, &continuum_tests::allow_all()).unwrap_err());
    assert!(e.contains("not a WebAssembly component"), "{e}");
    assert!(h.host.plugins().unwrap().is_empty(), "a refused install left a plugin behind");
}

#[test]
fn the_c_example_is_packed_signed_installed_and_run() {
    let h = TestHost::with(&[]);
    let publisher = Publisher::new();
    publisher.install(h.dir.path(), &["wc"]);
    let record = h.host.plugin("wc").unwrap();
    assert!(record.signer.is_some() && record.version.as_deref() == Some("0.1.0"), "{record:?}");
    let o = h.cli(&["run", "wc", "--stdin", "one two\nthree\n"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["stdout"], "2 3 14\n", "{r}");
    // Files named after `--`, through a lent folder only.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("a.txt"), "x y z\n").unwrap();
    let o = h.cli(&["run", "wc", "--", "/data/a.txt"]);
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["exit-code"], 1, "an unlent file was read: {r}");
    let lend = format!("{}:/data:ro", data.path().display());
    let o = h.cli(&["plugin", "allow", "wc", "--dir", &lend]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = h.cli(&["run", "wc", "--", "/data/a.txt"]);
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["stdout"], "1 3 6 /data/a.txt\n", "{r}");
}

/// A request to the node: status and body text.
fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = match method {
        "GET" => {
            let mut r = agent.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        _ => {
            let mut r = agent.post(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(body)
        }
    }
    .expect("request");
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default())
}

/// A key and an API key for a grantee that may call only `caps`.
fn narrow_client(node: &TestNode, seed: u8, caps: &[&str]) -> (String, String) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let id = hex::encode(key.verifying_key().to_bytes());
    let mut args = vec!["grant", "issue", "--to", &id];
    for cap in caps {
        args.extend(["--cap", cap]);
    }
    let token = node.ok(&args).trim().to_string();
    let api_key = node.ok(&["apikey", "create", "--for", &token, "--label", "narrow"]).trim().to_string();
    (token, api_key)
}

#[test]
fn a_wasi_http_handler_is_served_by_the_node_like_any_call() {
    let node = TestNode::start(|d| {
        let o = continuum_tests::cli(d, &["plugin", "install", plugin_dir("http-hello").to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    });
    let owner = format!("Bearer {}", node.token);
    let auth = [("authorization", owner.as_str()), ("x-custom", "1"), ("x-continuum-date", "2026-01-01")];
    let (s, body) = request("POST", &format!("{}/v1/http/http-hello/echo?x=1", node.http), &auth, b"hi");
    assert_eq!((s, body.as_str()), (200, "Method::Post /echo?x=1 hi"));
    // The plugin sees the request's headers, never the node's credentials.
    let (s, body) = request("GET", &format!("{}/v1/http/http-hello/headers", node.http), &auth, b"");
    assert!(s == 200 && body.contains("x-custom") && !body.contains("authorization"), "{s} {body}");
    assert!(!body.contains("x-continuum"), "the node's own headers reached the plugin: {body}");
    // The path arrives as sent, escapes and all; an escaped `/` cannot name another command.
    let (s, body) = request("GET", &format!("{}/v1/http/http-hello/a%20b%3Fc?d=%20", node.http), &auth, b"");
    assert_eq!((s, body.as_str()), (200, "Method::Get /a%20b%3Fc?d=%20 "));
    let (s, _) = request("GET", &format!("{}/v1/http/http-hello%2Fx/", node.http), &auth, b"");
    assert_eq!(s, 404);
    // No network: an outgoing request is refused inside the guest.
    let (s, body) = request("GET", &format!("{}/v1/http/http-hello/outbound", node.http), &auth, b"");
    assert!(s == 502 && body.contains("HttpRequestDenied"), "{s} {body}");
    // A body written before the response is set is held (up to the output cap), not a hang;
    // a body past the cap fails the call with the limit named.
    let (s, body) = request("GET", &format!("{}/v1/http/http-hello/early", node.http), &auth, b"");
    assert_eq!((s, body.len()), (200, 64 * 4096 + "Method::Get /early ".len()));
    let (s, body) = request("GET", &format!("{}/v1/http/http-hello/huge", node.http), &auth, b"");
    assert!(s == 422 && body.contains("output-limit"), "{s} {body}");
    // Strangers and grantees without the command get nothing from it.
    let (s, _) = request("GET", &format!("{}/v1/http/http-hello/", node.http), &[], b"");
    assert_eq!(s, 401);
    let (_, api_key) = narrow_client(&node, 7, &["text/stats"]);
    let narrow = format!("Bearer {api_key}");
    let (s, body) = request("GET", &format!("{}/v1/http/http-hello/", node.http), &[("authorization", &narrow)], b"");
    assert!(s == 403 || s == 404, "a grantee reached a handler it has no grant for: {s} {body}");
    let (s, _) = request("GET", &format!("{}/v1/http/no-such-plugin/", node.http), &auth, b"");
    assert_eq!(s, 404);
    // Audited like any call.
    let log = node.ok(&["events", "tail", "--kind", "call.completed"]);
    assert!(log.matches("http-hello/http").count() >= 3, "{log}");

    // Operators: liveness without credentials or details; counters for the owner only, where
    // a caller's made-up command names never become labels.
    let (s, body) = request("GET", &format!("{}/healthz", node.http), &[], b"");
    assert_eq!((s, body.as_str()), (200, "ok\n"));
    assert_eq!(request("GET", &format!("{}/metrics", node.http), &[], b"").0, 401);
    assert_eq!(request("GET", &format!("{}/metrics", node.http), &[("authorization", &narrow)], b"").0, 403);
    let made_up = format!("{}/v1/commands/made-up-{}/x", node.http, "z".repeat(20));
    assert_eq!(request("POST", &made_up, &auth, b"{}").0, 404);
    let (s, metrics) = request("GET", &format!("{}/metrics", node.http), &auth, b"");
    assert_eq!(s, 200, "{metrics}");
    let ok_calls = metrics
        .lines()
        .find(|l| l.starts_with("continuum_calls_total{command=\"http-hello/http\",outcome=\"ok\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no count of the handler's calls in {metrics}"));
    assert!(ok_calls >= 5, "{metrics}");
    assert!(metrics.contains("outcome=\"output-limit\"") && metrics.contains("command=\"(other)\""), "{metrics}");
    assert!(!metrics.contains("made-up") && metrics.contains("continuum_jobs{state=\"queued\"} 0"), "{metrics}");
    assert!(metrics.contains("continuum_call_duration_seconds_count{command=\"http-hello/http\"}"), "{metrics}");
}

/// Tool names as MCP shows them: `plugin/command` → `plugin__command`.
fn tool_names(commands: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        commands.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().replace('/', "__")).collect();
    names.sort();
    names
}

#[test]
fn mcp_clients_list_and_call_exactly_the_tools_their_grant_allows() {
    let publisher = Publisher::new();
    let node = TestNode::start(|d| {
        publisher.install(d, &["text", "kv"]);
        let o = continuum_tests::cli(d, &["plugin", "install", plugin_dir("wasi-main").to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    });
    let mcp = format!("{}/mcp", node.http);
    let calls = json!([
        ["text__stats", { "text": "hi there" }],
        ["text__stats", { "text": 5 }],
        ["wasi-main", { "args": ["echo"] }],
        ["no__such-tool", {}]
    ])
    .to_string();
    let owner = python_client("mcp_client.py", &["http", &mcp, &node.token, "--", &calls]);
    let tools: Vec<String> = serde_json::from_value(owner["tools"].clone()).unwrap();
    assert!(tools.contains(&"text__stats".into()) && tools.contains(&"wasi-main".into()), "{tools:?}");
    let results = owner["calls"].as_array().unwrap();
    assert_eq!(results[0]["structured"]["words"], 2, "{}", results[0]);
    assert_eq!(results[1]["is_error"], true, "{}", results[1]);
    assert_eq!(results[1]["structured"]["error"]["code"], "invalid-params", "{}", results[1]);
    assert!(results[2]["structured"]["stdout"].as_str().unwrap().contains("argv: wasi-main echo"), "{}", results[2]);
    assert!(results[3]["protocol_error"].as_str().unwrap().contains("unknown tool"), "{}", results[3]);
    let schema = &owner["schemas"]["text__stats"]["input"];
    assert_eq!(schema["properties"]["text"]["type"], "string", "input schemas come from reflection: {schema}");

    // A narrow grant: the tools are exactly what GET /v1/commands lists for it, and the rest
    // cannot be called.
    let (token, api_key) = narrow_client(&node, 9, &["kv/get"]);
    let narrow_calls =
        json!([["text__stats", { "text": "a b c" }], ["kv__put", { "key": "k", "value": { "flag": true } }], ["wasi-main", {}]])
            .to_string();
    let narrow = python_client("mcp_client.py", &["http", &mcp, &api_key, "--", &narrow_calls]);
    let (_, listed) =
        request("GET", &format!("{}/v1/commands", node.http), &[("authorization", &format!("Bearer {api_key}"))], b"");
    let expected = tool_names(&serde_json::from_str(&listed).unwrap());
    let narrow_tools: Vec<String> = serde_json::from_value(narrow["tools"].clone()).unwrap();
    assert_eq!(narrow_tools, expected);
    assert!(narrow_tools.contains(&"kv__get".into()) && !narrow_tools.contains(&"kv__put".into()), "{narrow_tools:?}");
    assert!(!narrow_tools.contains(&"wasi-main".into()), "{narrow_tools:?}");
    let results = narrow["calls"].as_array().unwrap();
    assert_eq!(results[0]["structured"]["words"], 3, "{}", results[0]);
    assert!(results[1]["protocol_error"].as_str().unwrap().contains("unknown tool"), "{}", results[1]);
    assert!(results[2]["protocol_error"].as_str().unwrap().contains("unknown tool"), "{}", results[2]);

    // Over stdio through the running node: as the owner, and `--as` the grantee.
    let binary = continuum_tests::binary();
    let (bin, data) = (binary.to_str().unwrap(), node.dir.path().to_str().unwrap());
    let stdio = python_client("mcp_client.py", &["stdio", bin, "--data-dir", data, "mcp", "--", &calls]);
    assert_eq!(stdio["tools"], owner["tools"]);
    assert_eq!(stdio["calls"][0]["structured"]["words"], 2, "{}", stdio["calls"][0]);
    let as_grantee = ["stdio", bin, "--data-dir", data, "mcp", "--as", &token, "--", &narrow_calls];
    let stdio_narrow = python_client("mcp_client.py", &as_grantee);
    assert_eq!(stdio_narrow["tools"], narrow["tools"]);
    assert!(stdio_narrow["calls"][2]["protocol_error"].as_str().unwrap().contains("unknown tool"));

    // Malformed JSON-RPC is answered with an error; the node carries on.
    let owner_auth = format!("Bearer {}", node.token);
    let headers = [
        ("authorization", owner_auth.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    let (s, body) = request("POST", &mcp, &headers, b"{not json");
    assert!((400..500).contains(&s) || body.contains("-32700"), "{s} {body}");
    let (s, _) = request("POST", &mcp, &headers[1..], br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(s, 401, "an unauthenticated MCP request was served");
    assert_eq!(python_client("mcp_client.py", &["http", &mcp, &node.token, "--", "[]"])["tools"], owner["tools"]);
}

#[test]
fn mcp_over_stdio_runs_in_process_without_a_node() {
    let h = TestHost::with(&["wasi-main"]);
    let binary = continuum_tests::binary();
    let calls = json!([["wasi-main", { "args": ["echo"], "stdin": "quiet" }]]).to_string();
    let data = h.dir.path().to_str().unwrap();
    let r =
        python_client("mcp_client.py", &["stdio", binary.to_str().unwrap(), "--data-dir", data, "mcp", "--", &calls]);
    assert_eq!(r["tools"], json!(["wasi-main"]));
    assert!(r["calls"][0]["structured"]["stdout"].as_str().unwrap().ends_with("QUIET"), "{r}");
}

#[test]
fn the_openapi_document_has_one_typed_operation_per_command_and_drives_a_client() {
    let publisher = Publisher::new();
    let node = TestNode::start(|d| {
        publisher.install(d, &["text"]);
        let o = continuum_tests::cli(d, &["plugin", "install", plugin_dir("wasi-main").to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    });
    let args = json!({ "text": "Hello world. Hello again!" }).to_string();
    let r = python_client("openapi_client.py", &[&node.http, &node.token, "text__stats", &args]);
    assert_eq!(r["valid"], true, "{r}");
    assert_eq!(r["operations"], r["commands"], "one operation per command: {r}");
    assert!(r["commands"].as_array().unwrap().contains(&json!("wasi-main")), "{r}");
    assert_eq!(r["result"]["words"], 4, "{r}");
    assert!(r["refused"].as_str().unwrap().contains("text"), "the client sent what the schema forbids: {r}");
    // A grantee's document lists its own commands only.
    let (_, api_key) = narrow_client(&node, 11, &["text/stats"]);
    let r = python_client("openapi_client.py", &[&node.http, &api_key, "text__stats", &args]);
    assert_eq!(r["operations"], r["commands"], "{r}");
    assert!(!r["operations"].as_array().unwrap().contains(&json!("wasi-main")), "{r}");
    // A plugin installed while the node runs shows at once.
    let o = node.cli(&["plugin", "install", plugin_dir("wasi-main-p1").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = python_client("openapi_client.py", &[&node.http, &node.token, "text__stats", &args]);
    assert!(r["operations"].as_array().unwrap().contains(&json!("wasi-main-p1")), "{r}");
}
