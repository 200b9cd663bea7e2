//! The web console (docs/console.md): driven in headless Chromium from Debian's packages by
//! Playwright (`tests/python/console_browser.py`), and its login and session routes attacked
//! over plain HTTP. Screenshots of every page land in `target/console-screenshots/`.

use std::path::{Path, PathBuf};

use continuum_tests::{cli, plugin_dir, python, real_models, repo, stderr, stdout, Publisher, TestNode, ONE_THREAD};
use serde_json::{json, Value};

/// Where the browser test leaves its screenshots.
fn screenshots() -> PathBuf {
    repo().join("target/console-screenshots")
}

/// Runs one phase of the browser driver with `args`; its report.
fn browser(phase: &str, args: Value) -> Value {
    assert!(Path::new("/usr/bin/chromium").exists(), "chromium is missing: scripts/system-deps.sh installs it");
    let out = std::process::Command::new(python())
        .arg(repo().join("tests/python/console_browser.py"))
        .args([phase, &args.to_string()])
        .output()
        .expect("run the browser driver");
    assert!(out.status.success(), "browser phase {phase} failed:\n{}{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("the browser driver printed no JSON ({e}): {}", stdout(&out)));
    assert_eq!(report["page_errors"], json!([]), "the console threw in phase {phase}: {report}");
    report
}

/// A one-time login link from `continuum console`.
fn login_link(node: &TestNode) -> String {
    node.ok(&["console"]).trim().to_string()
}

/// An HTTP answer: status, `Set-Cookie`, body.
struct Answer {
    status: u16,
    cookie: Option<String>,
    body: String,
}

/// One request to the node, with `headers`.
fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let mut response = match method {
        "GET" => headers.iter().fold(agent.get(url), |r, (k, v)| r.header(*k, *v)).call(),
        "DELETE" => headers.iter().fold(agent.delete(url), |r, (k, v)| r.header(*k, *v)).call(),
        _ => headers.iter().fold(agent.post(url), |r, (k, v)| r.header(*k, *v)).send(body),
    }
    .expect("request");
    let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).map(String::from);
    Answer {
        status: response.status().as_u16(),
        cookie,
        body: response.body_mut().read_to_string().unwrap_or_default(),
    }
}

#[test]
fn the_console_runs_commands_from_generated_forms_in_a_real_browser() {
    let models = real_models();
    let node = TestNode::start(|d| {
        std::fs::write(d.join("continuum.toml"), ONE_THREAD).unwrap();
        let mut plugins = vec!["text", "typezoo", "kv"];
        if models.is_some() {
            plugins.push("llm");
        }
        for p in plugins {
            let o = cli(d, &["plugin", "install", plugin_dir(p).to_str().unwrap(), "--allow", "all"]);
            assert!(o.status.success(), "install {p}: {}", stderr(&o));
        }
        if let Some((llm, embed)) = &models {
            for (path, id) in [(llm, "smollm2"), (embed, "minilm")] {
                let o = cli(d, &["model", "add", path.to_str().unwrap(), "--id", id]);
                assert!(o.status.success(), "{}", stderr(&o));
            }
        }
    });
    let shots = screenshots();
    // A screenshot left by an earlier run must not stand in for one this run failed to take.
    let _ = std::fs::remove_dir_all(&shots);
    let grantee = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[33; 32]).verifying_key().to_bytes());
    // A signed alloy to upload, and a copy with one byte of its component changed.
    let publisher = Publisher::new();
    let alloy = publisher.alloy("json");
    let tampered = publisher.dir.path().join("tampered.alloy");
    let mut bytes = std::fs::read(&alloy).unwrap();
    let middle = 512 * 3 + (bytes.len() - 512 * 3) / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&tampered, bytes).unwrap();
    let link = login_link(&node);
    assert!(link.starts_with(&format!("{}/login?code=", node.http)), "{link}");
    let r = browser(
        "owner",
        json!({ "http": node.http, "link": link, "screenshots": shots, "llm": models.is_some(), "grantee": grantee, "alloy": alloy, "tampered": tampered }),
    );
    assert_eq!(r["who"], "owner", "{r}");
    assert_eq!(r["nav"], json!(["Commands", "Jobs", "Event log", "Plugins", "Grid", "Grants", "Usage", "API"]), "{r}");
    // "count words" finds text/stats first (by meaning with the embedding model, else by words).
    assert_eq!(r["search"][0], "text/stats", "{r}");
    let cli_stats: Value =
        serde_json::from_str(&node.ok(&["run", "text/stats", "--text", "Hello world. Hello again!"])).unwrap();
    assert_eq!(r["stats"], cli_stats, "the form's result differs from the CLI's");
    assert_eq!(r["job_result"], cli_stats, "the job's result differs: {r}");
    assert!(r["jobs_listed"].as_u64().unwrap() >= 1, "{r}");

    // The typezoo form: refused before sending, then the same answer as the CLI with its JSON.
    assert!(r["tiny_error"].as_str().unwrap().contains("-128 to 127"), "{r}");
    assert_eq!(r["sent_before_fix"], 0, "an out-of-range value was sent: {r}");
    let sent: Value = serde_json::from_str(r["echo_params"].as_str().unwrap()).unwrap();
    let expected = json!({
        "flag": true, "tiny": -5, "byte": 200, "short": -300, "ushort": 60000, "int": -70000,
        "uint": 4000000000u64, "long": -9007199254740993i64, "ulong": 18446744073709551615u64,
        "single": 1.5, "double": -2.25, "letter": "é", "name": "<img src=x onerror=\"window.__xss=1\">zoo", "data": "aGkA", "tags": ["a", "b"],
        "maybe": 7, "origin": { "x": 1, "y": -2 }, "paint": "green", "mode": ["read", "exec"],
        "form": { "rect": { "x": 3, "y": 4 } }, "pair": ["p", 9], "outcome": { "err": "bad" }
    });
    assert_eq!(sent, expected, "the form built other parameters");
    let cli_echo: Value = serde_json::from_str(&node.ok(&["run", "typezoo/echo", &sent.to_string()])).unwrap();
    let shown: Value = serde_json::from_str(&r["echo"].to_string()).unwrap();
    assert_eq!(shown, cli_echo, "the form's result differs from the CLI's with the same JSON");
    assert!(r["echo_long_text"].as_str().unwrap().contains("-9007199254740993"), "a 64-bit value lost precision: {r}");
    assert_eq!(r["injected"], json!([0, 0]), "markup in a result became an element: {r}");
    // The node's own check, placed at the field it names.
    assert!(r["server_error_field"].as_str().unwrap().contains("expected"), "{r}");
    assert_eq!(r["form_shown_again"], true, "{r}");
    assert!(r["huge_result"].as_str().unwrap().contains("Download the whole result"), "{r}");
    assert!(r["huge_shown"].as_u64().unwrap() <= 200_000, "{r}");
    assert!(r["divide_error"].as_str().unwrap().contains("cannot divide 1 by 0"), "{r}");
    assert!(r["divide_status"].as_str().unwrap().contains("command-error"), "{r}");

    if models.is_some() {
        assert_eq!(r["result_when_first_token"], 0, "the first token came with the result: {r}");
        let text = r["generated"]["text"].as_str().unwrap();
        assert!(!text.is_empty() && r["live_at_end"].as_str().unwrap().contains(text.trim()), "{r}");
        eprintln!(
            "console llm/generate: first token after {:.2} s, whole generation {:.2} s",
            r["first_token_s"].as_f64().unwrap(),
            r["generation_s"].as_f64().unwrap()
        );
    } else {
        eprintln!("no models in build/models: the streamed-generation step was skipped (scripts/fetch-models.sh)");
    }
    // An upload is checked step by step; a changed byte stops it before anything is installed.
    assert_eq!(
        r["install_steps"],
        json!([
            "✓ format",
            "✓ digest",
            "✓ signatures",
            "✓ identity",
            "✓ publisher",
            "✓ version",
            "✓ capabilities",
            "✓ contents",
            "✓ installed"
        ]),
        "{r}"
    );
    let tampered_steps = r["tampered_steps"].as_array().unwrap();
    assert!(tampered_steps.len() < 3 && !tampered_steps.contains(&json!("✓ installed")), "{r}");
    assert!(r["tampered_outcome"].as_str().unwrap().contains("Refused"), "{r}");
    let listed: Value = serde_json::from_str(&node.ok(&["plugin", "list", "--json"])).unwrap();
    assert!(listed.to_string().contains("\"json\""), "the uploaded plugin is not installed: {listed}");
    // Approvals changed in the console are the registry's (withdrawn, then approved again).
    assert_eq!(r["kv_before"], "approved", "{r}");
    let perms: Value = serde_json::from_str(&node.ok(&["plugin", "permissions", "kv", "--json"])).unwrap();
    let store = perms.as_array().unwrap().iter().find(|c| c["capability"] == "host:store");
    assert_eq!(store.map(|c| &c["approved"]), Some(&json!(true)), "{perms}");
    let changes = node.ok(&["events", "tail", "--kind", "plugin.", "-n", "50"]);
    let (denied, allowed) = (changes.find("plugin.denied"), changes.rfind("plugin.allowed"));
    assert!(denied.is_some() && allowed > denied, "the approval changes are not in the log, in order: {changes}");
    // The grant issued in the console is a real grant; the API key made for it was revoked there.
    let as_grantee: Value =
        serde_json::from_str(&node.ok(&["commands", "--as", r["grant_token"].as_str().unwrap(), "--json"])).unwrap();
    let names: Vec<&str> = as_grantee.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"text/stats") && !names.contains(&"typezoo/echo"), "{names:?}");
    assert!(r["api_key"].as_str().unwrap().starts_with("ck_"), "{r}");
    assert!(
        !node.ok(&["apikey", "list"]).contains("from-the-console"),
        "the key revoked in the console is still there"
    );
    // The calls made above are in the usage chart.
    let calls = r["calls_chart"].as_str().unwrap();
    let succeeded: u64 =
        regex::Regex::new(r"succeeded: (\d+)").unwrap().captures(calls).expect(calls)[1].parse().unwrap();
    assert!(succeeded >= 4 && r["chart_bars"].as_u64().unwrap() > 0, "{calls}");
    assert!(r["verify"].as_str().unwrap().starts_with("Verified:"), "{r}");
    assert_eq!(r["filtered_kinds"], json!(["call.completed"]), "{r}");
    let ops: Vec<&str> = r["api_operations"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(ops.contains(&"/v1/commands/text/stats") && ops.contains(&"/v1/console/session"), "{ops:?}");
    assert_eq!(r["phone_overflow"], false, "the catalog is wider than a phone");
    assert_eq!(r["first_tab"], "Skip to the page", "{r}");
    assert_eq!(r["after_logout"], 401, "the session outlived its logout");
    assert!(r["traversal"].as_str().unwrap().starts_with("No such job"), "{r}");
    for page in [
        "commands",
        "command-text-stats",
        "command-typezoo-form",
        "jobs",
        "events",
        "plugins-install",
        "grid",
        "grants",
        "usage",
        "api",
        "login",
    ] {
        assert!(shots.join(format!("{page}.png")).is_file(), "no screenshot of {page}");
    }

    // A used link opens nothing.
    let again = browser("reuse", json!({ "link": link }));
    assert_eq!(again["status"], 401, "{again}");

    // A tampered log shows its first bad entry.
    let db = rusqlite::Connection::open(node.dir.path().join("continuum.db")).unwrap();
    db.execute("UPDATE log SET payload = '{\"caller\":\"mallory\"}' WHERE seq = 3", []).unwrap();
    let t = browser("tampered", json!({ "http": node.http, "link": login_link(&node), "screenshots": shots }));
    assert!(t["verify"].as_str().unwrap().contains("first bad entry is seq 3"), "{t}");
}

#[test]
fn a_granted_caller_sees_only_its_commands_in_the_console() {
    let node = TestNode::start(|d| {
        for p in ["text", "typezoo"] {
            let o = cli(d, &["plugin", "install", plugin_dir(p).to_str().unwrap(), "--allow", "all"]);
            assert!(o.status.success(), "install {p}: {}", stderr(&o));
        }
    });
    let key = ed25519_dalek::SigningKey::from_bytes(&[31; 32]);
    let id = hex::encode(key.verifying_key().to_bytes());
    let token =
        node.ok(&["grant", "issue", "--to", &id, "--cap", "typezoo/divide", "--cap", "text/stats"]).trim().to_string();
    let api_key = node.ok(&["apikey", "create", "--for", &token, "--label", "console"]).trim().to_string();
    let listed: Value = serde_json::from_str(&node.ok(&["commands", "--as", &token, "--json"])).unwrap();
    let mut callable: Vec<String> =
        listed.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    callable.sort();

    let r = browser(
        "client",
        json!({ "http": node.http, "api_key": api_key, "screenshots": screenshots(), "forbidden": "typezoo/echo" }),
    );
    let mut shown: Vec<String> = serde_json::from_value(r["catalog"].clone()).unwrap();
    shown.sort();
    assert_eq!(shown, callable, "listed in the console == callable: {r}");
    assert!(shown.contains(&"typezoo/divide".to_string()) && !shown.contains(&"typezoo/echo".to_string()), "{r}");
    assert_eq!(r["nav"], json!(["Commands", "Jobs", "API"]), "a client sees no owner pages: {r}");
    assert_eq!(r["events_page"], "Not available", "{r}");
    assert!(r["forbidden"].as_str().unwrap().contains("typezoo/echo"), "{r}");
}

#[test]
fn console_sessions_refuse_strangers_replays_forgeries_and_cross_site_requests() {
    let node = TestNode::start(|d| {
        for p in ["text", "http-hello"] {
            let o = cli(d, &["plugin", "install", plugin_dir(p).to_str().unwrap(), "--allow", "all"]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
    });
    let base = &node.http;
    // The page and its files are public and hold no data: no node id, no token.
    for asset in ["/", "/console/app.js", "/console/forms.js", "/console/app.css", "/login"] {
        let a = request("GET", &format!("{base}{asset}"), &[], "");
        assert_eq!(a.status, 200, "{asset}");
        assert!(!a.body.contains(&node.id) && !a.body.contains(&node.token), "{asset} leaks node data");
    }
    assert_eq!(request("GET", &format!("{base}/console/node.token"), &[], "").status, 404);
    // Any other path is the API's, and needs a credential.
    assert_eq!(request("GET", &format!("{base}/node.token"), &[], "").status, 401);
    // A stranger gets nothing behind the page; a forged cookie is no session.
    for path in ["/v1/console/session", "/v1/commands"] {
        assert_eq!(request("GET", &format!("{base}{path}"), &[], "").status, 401, "{path}");
        let forged = request("GET", &format!("{base}{path}"), &[("cookie", "continuum_session=00ff")], "");
        assert_eq!(forged.status, 401, "{path}: {}", forged.body);
    }
    // Only the owner mints login links.
    let stranger = request("POST", &format!("{base}/v1/console/login-links"), &[], "");
    assert_eq!(stranger.status, 401);
    let key = ed25519_dalek::SigningKey::from_bytes(&[32; 32]);
    let token = node
        .ok(&["grant", "issue", "--to", &hex::encode(key.verifying_key().to_bytes()), "--cap", "text/"])
        .trim()
        .to_string();
    let api_key = node.ok(&["apikey", "create", "--for", &token, "--label", "console-attack"]).trim().to_string();
    let bearer = format!("Bearer {api_key}");
    let client = request("POST", &format!("{base}/v1/console/login-links"), &[("authorization", &bearer)], "");
    assert_eq!(client.status, 403, "a client minted an owner login link: {}", client.body);

    // A link works once; the cookie is HttpOnly and SameSite=Strict; the page carries the token.
    let link = login_link(&node);
    let first = request("GET", &link, &[], "");
    assert_eq!(first.status, 200);
    let cookie = first.cookie.expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let page_token = regex::Regex::new(r#"name="continuum-token" content="([0-9a-f]{64})""#).unwrap();
    let csrf = page_token.captures(&first.body).expect("the session's token in the page")[1].to_string();
    assert_eq!(request("GET", &link, &[], "").status, 401, "a login link was replayed");
    assert_eq!(request("GET", &format!("{link}0"), &[], "").status, 401);

    // The cookie alone opens nothing, not even a read: another server on this host name (any
    // port) may be sent the cookie, but never the token, which lives in this origin's storage.
    let url = |path: &str| format!("{base}{path}");
    let params = r#"{"text":"a b"}"#;
    for (method, path) in [("GET", "/v1/console/session"), ("GET", "/v1/commands"), ("POST", "/v1/commands/text/stats")]
    {
        let bare = request(method, &url(path), &[("cookie", &session)], params);
        assert_eq!(bare.status, 403, "{method} {path} with the cookie alone: {}", bare.body);
        let wrong = request(method, &url(path), &[("cookie", &session), ("x-continuum-csrf", "00")], params);
        assert_eq!(wrong.status, 403, "{method} {path} with a wrong token");
        // The token without the cookie is no credential either.
        assert_eq!(request(method, &url(path), &[("x-continuum-csrf", &csrf)], params).status, 401);
    }
    let owner = [("cookie", session.as_str()), ("x-continuum-csrf", csrf.as_str())];
    let info: Value = serde_json::from_str(&request("GET", &url("/v1/console/session"), &owner, "").body).unwrap();
    assert_eq!(info["owner"], true, "{info}");
    assert!(info.get("csrf").is_none(), "the session route hands out the token: {info}");
    let ok = request("POST", &url("/v1/commands/text/stats"), &owner, params);
    assert_eq!(ok.status, 200, "{}", ok.body);

    // A plugin's pages never see or use the session: no cookie reaches it, the session is
    // refused on its routes and on MCP, and its answers are sandboxed into an opaque origin.
    let to_plugin = request("GET", &url("/v1/http/http-hello/headers"), &owner, "");
    assert_eq!(to_plugin.status, 401, "a console session reached a plugin handler: {}", to_plugin.body);
    assert_eq!(request("POST", &url("/mcp"), &owner, "{}").status, 401, "a console session reached MCP");
    let owner_bearer = format!("Bearer {}", node.token);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut answer = agent
        .get(url("/v1/http/http-hello/headers"))
        .header("authorization", &owner_bearer)
        .header("cookie", &session)
        .call()
        .unwrap();
    let policy =
        answer.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let echoed = answer.body_mut().read_to_string().unwrap();
    assert!(policy.starts_with("sandbox") && !policy.contains("allow-same-origin"), "plugin page policy: {policy:?}");
    assert!(
        !echoed.contains(&session[18..]) && !echoed.to_lowercase().contains("cookie"),
        "the cookie reached the plugin: {echoed}"
    );

    // API-key login: from this node's own origin only, with a real key, JSON only.
    let json_type = ("content-type", "application/json");
    let body = json!({ "api_key": api_key }).to_string();
    let port = base.rsplit(':').next().unwrap();
    for origin in [
        "http://evil.example".to_string(),
        format!("http://127.attacker.example:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let cross = request("POST", &url("/console/login"), &[json_type, ("origin", &origin)], &body);
        assert_eq!(cross.status, 403, "a login from {origin}: {}", cross.body);
    }
    let form = request("POST", &url("/console/login"), &[("content-type", "text/plain")], &body);
    assert_eq!(form.status, 400, "a simple (preflight-free) cross-site post could log in: {}", form.body);
    let wrong_key = request("POST", &url("/console/login"), &[json_type], r#"{"api_key":"ck_nope"}"#);
    assert_eq!(wrong_key.status, 401);
    let client_login = request("POST", &url("/console/login"), &[json_type, ("origin", base)], &body);
    assert_eq!(client_login.status, 200, "{}", client_login.body);
    let client_token: Value = serde_json::from_str(&client_login.body).unwrap();
    let client_session = client_login.cookie.unwrap().split(';').next().unwrap().to_string();
    let client_csrf = client_token["token"].as_str().unwrap().to_string();
    let client = [("cookie", client_session.as_str()), ("x-continuum-csrf", client_csrf.as_str())];
    let info: Value = serde_json::from_str(&request("GET", &url("/v1/console/session"), &client, "").body).unwrap();
    assert_eq!(info["owner"], false);
    // The owner's routes stay the owner's, whatever the session: and a stranger's 401.
    let owner_routes = [
        ("GET", "/v1/events"),
        ("GET", "/v1/events/verify"),
        ("GET", "/v1/peers"),
        ("GET", "/v1/usage/series"),
        ("GET", "/v1/grants"),
        ("POST", "/v1/grants"),
        ("POST", "/v1/grants/revoke"),
        ("POST", "/v1/grants/attenuate"),
        ("GET", "/v1/apikeys"),
        ("POST", "/v1/apikeys"),
        ("POST", "/v1/console/login-links"),
        ("GET", "/v1/plugins/installed"),
        ("POST", "/v1/plugins/installed/text/approvals"),
        ("POST", "/v1/plugins/installed"),
    ];
    let grant_body =
        json!({ "to": hex::encode(key.verifying_key().to_bytes()), "caps": ["*"], "grantee": "x", "for": "x",
        "token": token, "key": "node" })
        .to_string();
    for (method, path) in owner_routes {
        let as_client = request(method, &url(path), &[client[0], client[1], json_type], &grant_body);
        assert_eq!(as_client.status, 403, "a client session reached {method} {path}: {}", as_client.body);
        assert_eq!(request(method, &url(path), &[json_type], &grant_body).status, 401, "a stranger reached {path}");
    }
    assert_eq!(request("DELETE", &url("/v1/apikeys/abc"), &client, "").status, 403);
    // Even the owner names a key of the store, never a file of the machine.
    for name in ["/etc/passwd", "../keys/node", ".hidden"] {
        let to = hex::encode(key.verifying_key().to_bytes());
        let attenuate = json!({ "token": token, "key": name, "to": to, "caps": ["text/stats"] });
        let answer =
            request("POST", &url("/v1/grants/attenuate"), &[owner[0], owner[1], json_type], &attenuate.to_string());
        assert!(
            answer.status == 400 && answer.body.contains("not a path"),
            "{name}: {} {}",
            answer.status,
            answer.body
        );
    }
    // Removing the key ends its sessions at once.
    let keys = node.ok(&["apikey", "list"]);
    let key_id =
        keys.lines().find(|l| l.trim_end().ends_with("console-attack")).and_then(|l| l.split_whitespace().next());
    node.ok(&["apikey", "revoke", key_id.expect("the key is listed")]);
    let after = request("GET", &url("/v1/commands"), &client, "");
    assert_eq!(after.status, 401, "a revoked key's session still works: {}", after.body);

    // Stalled login bodies are unauthenticated work: at most 16 from one address at once.
    let addr = base.trim_start_matches("http://").to_string();
    let stalled: Vec<std::net::TcpStream> = (0..16)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            let head = format!("POST /console/login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n{{");
            std::io::Write::write_all(&mut s, head.as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let flooded = request("POST", &url("/console/login"), &[json_type], &body);
    assert_eq!(flooded.status, 503, "a 17th stalled login body was read: {}", flooded.body);
    drop(stalled);

    // A flood of link requests keeps at most 16 waiting: the first ones stop working.
    let links: Vec<String> = (0..20).map(|_| login_link(&node)).collect();
    assert_eq!(request("GET", &links[0], &[], "").status, 401, "links are not bounded");
    assert_eq!(request("GET", links.last().unwrap(), &[], "").status, 200);

    // Logging out ends the session.
    let out = request("POST", &url("/v1/console/logout"), &owner, "");
    assert_eq!(out.status, 204);
    assert_eq!(request("GET", &url("/v1/commands"), &owner, "").status, 401);
}
