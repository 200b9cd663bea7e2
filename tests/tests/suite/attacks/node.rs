//! Attacks on the node's HTTP API and its local files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use continuum::node::auth::{sign_request, RequestToSign};
use continuum_tests::{binary, eventually, plugin_dir, stderr, stdout, Publisher, TestNode};
use ed25519_dalek::SigningKey;
use serde_json::Value;

/// Sends one raw HTTP/1.1 request on a fresh connection; the status and the body as JSON.
fn raw(node: &TestNode, head: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(node.http.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

/// `method path` with `headers` and `body`, `Host` set to the node's own address.
fn send(node: &TestNode, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
    let host = node.http.trim_start_matches("http://");
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    raw(node, &head, body)
}

/// A request signed by `key` for `node`.
fn signed(
    node: &TestNode,
    key: &SigningKey,
    method: &str,
    path: &str,
    grant: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let target = RequestToSign { node: &node.id, method, path, grant, body };
    send(node, method, path, &sign_request(key, &target), body)
}

fn owner(node: &TestNode) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {}", node.token))]
}

/// Finding 3: 300 connections send the headers of a signed upload and never its body. Before,
/// each held one of the node's request slots while its body was awaited, without a timeout, and
/// the owner got 503 on TCP and on the socket. Now such reads are unauthenticated work with
/// their own small budget (per address too) and a body timeout; the owner's budget is apart.
#[test]
fn stalled_signed_uploads_do_not_lock_the_owner_out() {
    let node = TestNode::start(|_| {});
    let addr = node.http.trim_start_matches("http://").to_string();
    let key = hex::encode(SigningKey::from_bytes(&[7; 32]).verifying_key().as_bytes());
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let Ok(mut s) = TcpStream::connect(&addr) else { continue };
        let head = format!(
            "POST /v1/commands/text/stats HTTP/1.1\r\nhost: {addr}\r\nx-continuum-key: {key}\r\nx-continuum-date: 0\r\n\
             x-continuum-signature: 00\r\ncontent-length: 100000\r\n\r\n{{"
        );
        let _ = s.write_all(head.as_bytes());
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (status, info) = send(&node, "GET", "/v1/node", &owner(&node), b"");
    assert_eq!(status, 200, "the owner on TCP was refused while uploads stalled: {info}");
    let socket = node.cli(&["node", "info"]);
    assert!(socket.status.success(), "the owner on the socket was refused: {}", stderr(&socket));
    assert!(started.elapsed() < Duration::from_secs(5), "the owner waited {:?}", started.elapsed());
    // The stalled uploads themselves are cut off by the body timeout, or refused as a flood.
    let mut refused = 0;
    for s in stalled.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut answer = [0u8; 64];
        let n = s.read(&mut answer).unwrap_or(0);
        let text = String::from_utf8_lossy(&answer[..n]);
        if text.contains(" 408 ") || text.contains(" 503 ") {
            refused += 1;
        }
    }
    assert_eq!(refused, stalled.len(), "every stalled upload is answered 408 or 503");
}

/// Finding 8: a signed request ran every time it was sent (five `kv/incr` from one
/// signature), a date 290 s ahead was accepted, and neither the target node nor the grant was
/// signed. Now each nonce is accepted once, at most 30 s of future skew, node and grant signed.
#[test]
fn signed_requests_cannot_be_replayed_redirected_or_predated() {
    let node = TestNode::start(|_| {});
    let peer = SigningKey::from_bytes(&[44; 32]);
    let body = br#"{"text": "a b"}"#;
    let path = "/v1/commands/text/stats";
    let target = RequestToSign { node: &node.id, method: "POST", path, grant: None, body };
    let headers = sign_request(&peer, &target);
    // The node has no `text` plugin: a 404 means the signature was accepted and the call ran.
    assert_eq!(send(&node, "POST", path, &headers, body).0, 404);
    let (status, e) = send(&node, "POST", path, &headers, body);
    assert_eq!(status, 401, "a replayed signature was accepted: {e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("replay"), "{e}");
    // Signed for another node: refused here.
    let elsewhere = RequestToSign { node: &"ab".repeat(32), ..target };
    assert_eq!(send(&node, "POST", path, &sign_request(&peer, &elsewhere), body).0, 401);
    // A grant header that the signature does not cover: refused.
    let mut with_grant = sign_request(&peer, &target);
    with_grant.push(("x-continuum-grant", "cgt1.e30".into()));
    assert_eq!(send(&node, "POST", path, &with_grant, body).0, 401);
    // Dated 290 s ahead (a signature that would stay replayable for ten minutes): refused.
    let mut ahead = sign_request(&peer, &target);
    for (name, value) in ahead.iter_mut() {
        if *name == "x-continuum-date" {
            *value = (continuum::now_secs() + 290).to_string();
        }
    }
    let (status, e) = send(&node, "POST", path, &ahead, body);
    assert_eq!(status, 401, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("accepts dates"), "{e}");
}

/// Finding 20: the API answered any `Host`, so a web page whose DNS name was rebound to
/// 127.0.0.1 could talk to it from a browser. Now only `localhost` or an IP literal with the
/// served port is answered.
#[test]
fn a_rebound_dns_name_is_not_answered() {
    let node = TestNode::start(|_| {});
    let port = node.http.rsplit(':').next().unwrap().to_string();
    let head = |host: &str| {
        format!(
            "GET /v1/node HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n",
            node.token
        )
    };
    let (status, e) = raw(&node, &head(&format!("attacker.example:{port}")), b"");
    assert_eq!(status, 421, "a foreign Host was answered: {e}");
    assert_eq!(e["error"]["code"], "wrong-host");
    assert_eq!(raw(&node, &head(&format!("localhost:{port}")), b"").0, 200);
    assert_eq!(raw(&node, &head(&format!("127.0.0.1:{port}")), b"").0, 200);
    assert_eq!(raw(&node, "GET /v1/node HTTP/1.1\r\nconnection: close\r\n\r\n", b"").0, 421, "no Host at all");
    // Every route needs a credential, the OpenAPI document included.
    assert_eq!(send(&node, "GET", "/v1/openapi.json", &[], b"").0, 401);
}

/// Finding 14: any signed key read the schema of any command, owner-only ones included, and
/// the unknown-command hint listed a plugin's commands. Now a stranger gets the same 404 for a
/// command it may not call as for one that does not exist.
#[test]
fn a_stranger_learns_nothing_about_commands_it_may_not_call() {
    let publisher = Publisher::new();
    let node = TestNode::start(|d| publisher.install(d, &["kv"]));
    let stranger = SigningKey::from_bytes(&[45; 32]);
    let (status, own) = send(&node, "GET", "/v1/commands/kv/delete", &owner(&node), b"");
    assert_eq!(status, 200, "the owner reads it: {own}");
    let absent = signed(&node, &stranger, "GET", "/v1/commands/kv/nothing", None, b"");
    let hidden = signed(&node, &stranger, "GET", "/v1/commands/kv/delete", None, b"");
    assert_eq!(absent.0, 404);
    assert_eq!(hidden.0, 404, "a stranger read an owner-only schema: {}", hidden.1);
    let message =
        |v: &Value| v["error"]["message"].as_str().unwrap().replace("kv/nothing", "X").replace("kv/delete", "X");
    assert_eq!(message(&absent.1), message(&hidden.1), "absent and hidden must read the same");
    let (_, called) = signed(&node, &stranger, "POST", "/v1/commands/kv/nothing", None, b"{}");
    let hint = called["error"]["message"].as_str().unwrap();
    assert!(!hint.contains("kv/delete") && !hint.contains("kv/get"), "the hint lists commands: {hint}");
}

/// Finding 15: a grant whose issuer is multibyte text made the node slice it mid-character
/// (a panic, answered 500). Now it is refused as any foreign grant is.
#[test]
fn a_multibyte_grant_issuer_is_refused_cleanly() {
    let node = TestNode::start(|_| {});
    let stranger = SigningKey::from_bytes(&[46; 32]);
    let payload = serde_json::json!({
        "issuer": format!("a{}", "é".repeat(20)), "grantee": hex::encode(stranger.verifying_key().as_bytes()),
        "caps": ["text/"], "expires": i64::MAX / 2, "issued": 0, "epoch": 1, "id": "x",
    })
    .to_string();
    let token = serde_json::json!({ "blocks": [{ "payload": payload, "signature": "00".repeat(64) }] });
    let token = format!("cgt1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string()));
    let (status, e) = signed(&node, &stranger, "POST", "/v1/commands/text/stats", Some(&token), b"{}");
    assert_eq!(status, 403, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("not by this node"), "{e}");
    assert_eq!(send(&node, "GET", "/v1/node", &owner(&node), b"").0, 200, "the node still serves");
}

/// A `continuum serve` started under a permissive umask on a data directory it creates.
struct LooseNode {
    child: Child,
    data: PathBuf,
}

impl Drop for LooseNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_under_umask(data: &Path, umask: &str) -> LooseNode {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(binary())
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--http", "127.0.0.1:0", "--grid", "127.0.0.1:0"])
        .env_remove("CONTINUUM_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start continuum serve");
    let node = LooseNode { child, data: data.to_path_buf() };
    assert!(eventually(60, || node.data.join("node.json").exists()), "the node did not start");
    node
}

/// Runs `sh -c script` as uid 65534 in root's group (another local user sharing a group).
fn as_group_member(script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=0", "--clear-groups", "--", "sh", "-c", script])
        .output()
        .expect("setpriv (util-linux)")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Finding 9: the data directory and `continuum.db` were world-readable, and under umask 002
/// the owner socket was group-writable (a group member got owner access). Now the directory
/// is 0700, the database 0600, the socket 0600 with a peer-uid check.
#[test]
fn another_local_user_reaches_neither_the_socket_nor_the_database() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = parent.path().join("data");
    let node = serve_under_umask(&data, "002");
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("continuum.db")), 0o600, "the database");
    assert_eq!(mode(&data.join("node.sock")), 0o600, "the owner socket");
    let db = data.join("continuum.db");
    let read = as_group_member(&format!("cat '{}' >/dev/null", db.display()));
    assert!(!read.status.success(), "another user read the database");
    let connect = as_group_member(&format!(
        "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{}')\"",
        data.join("node.sock").display()
    ));
    assert!(!connect.status.success(), "another user connected to the owner socket: {}", stdout(&connect));
    drop(node);
}

/// Finding 18: `--key NAME` loaded `./NAME` from the working directory before the key store,
/// so a file planted there signed in the owner's name. Now a bare name is a store name only.
#[test]
fn a_bare_key_name_never_loads_a_file_from_the_working_directory() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("publisher"), hex::encode([9u8; 32])).unwrap();
    let out = cwd.path().join("text.alloy");
    let text = plugin_dir("text");
    let o = Command::new(binary())
        .current_dir(cwd.path())
        .arg("--data-dir")
        .arg(data.path())
        .args(["plugin", "pack", text.to_str().unwrap(), "--key", "publisher", "-o", out.to_str().unwrap()])
        .env_remove("CONTINUUM_HOME")
        .output()
        .unwrap();
    assert!(!o.status.success(), "packed with a key file planted in the working directory");
    assert!(stderr(&o).contains("no key named `publisher`"), "{}", stderr(&o));
    assert!(!out.exists());
}
