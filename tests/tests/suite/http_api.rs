//! The node's HTTP API: authentication (owner token, API keys, signed peer requests), limits,
//! server-sent events, the CLI over the local socket, graceful shutdown — and every response
//! checked against the OpenAPI document the node serves.

use std::io::{BufRead, BufReader};

use continuum_tests::{stderr, Publisher, TestNode};
use serde_json::{json, Value};

/// Declares a `bytes`-long body with `Expect: 100-continue` and reads the answer without
/// sending the body: the node must refuse from the declared length alone. (Sending a body over
/// the limit races the node's reset of the connection against reading its answer.)
fn declare_oversized_body(node: &TestNode, path: &str, bytes: usize) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(node.http.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\n\
         content-length: {bytes}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        node.http.trim_start_matches("http://"),
        node.token
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("the node answers without the body");
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

struct Api {
    base: String,
    agent: ureq::Agent,
    doc: Value,
}

impl Api {
    fn new(node: &TestNode) -> Api {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut api = Api { base: node.http.clone(), agent, doc: Value::Null };
        let (status, doc) =
            api.send("GET", "/v1/openapi.json", &[("authorization", &format!("Bearer {}", node.token))], None);
        assert_eq!(status, 200);
        api.doc = doc;
        api
    }

    /// Sends a request; returns status and JSON body (Null when empty or not JSON).
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                r.call()
            }
            (_, body) => {
                let mut r = match method {
                    "POST" => self.agent.post(&url),
                    "DELETE" => return self.delete(&url, headers),
                    m => panic!("method {m}"),
                };
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                r.header("content-type", "application/json").send(body.unwrap_or(b""))
            }
        }
        .expect("request");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn delete(&self, url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut r = self.agent.delete(url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let mut response = r.call().expect("request");
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The response schema the document declares for `method path` and `status`.
    fn schema(&self, method: &str, path: &str, status: u16) -> Value {
        let path = path.split('?').next().unwrap();
        let (template, item) = self.doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(t, item)| {
                let re = format!(
                    "^{}$",
                    regex::escape(t)
                        .replace("\\{name\\}", ".+")
                        .replace("\\{digest\\}", "[^/]+")
                        .replace("\\{key\\}", "[^/]+")
                );
                regex::Regex::new(&re).unwrap().is_match(path) && item.get(method.to_lowercase()).is_some()
            })
            .min_by_key(|(t, _)| t.contains('{'))
            .unwrap_or_else(|| panic!("{method} {path} is not in the OpenAPI document"));
        let response = &item[method.to_lowercase()]["responses"][status.to_string()];
        assert!(!response.is_null(), "{method} {template} does not declare status {status}");
        response["content"]["application/json"]["schema"].clone()
    }

    /// Sends, then validates the JSON body against the declared schema.
    fn checked(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> (u16, Value) {
        let (status, value) = self.send(method, path, headers, body);
        let schema = self.schema(method, path, status);
        if !schema.is_null() {
            let mut root = json!({ "components": self.doc["components"].clone() });
            for (k, v) in schema.as_object().unwrap() {
                root[k] = v.clone();
            }
            let validator = jsonschema::validator_for(&root).expect("a valid schema");
            let errors: Vec<String> =
                validator.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path)).collect();
            assert!(errors.is_empty(), "{method} {path} → {status}: {value} does not match its schema: {errors:?}");
        }
        (status, value)
    }
}

#[test]
fn the_http_api_authenticates_limits_streams_and_matches_its_openapi_document() {
    let publisher = Publisher::new();
    let mut node = TestNode::start(|d| publisher.install(d, &["text", "kv"]));
    let api = Api::new(&node);
    assert_eq!(api.doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    let bearer = format!("Bearer {}", node.token);
    let owner = [("authorization", bearer.as_str())];

    let (s, info) = api.checked("GET", "/v1/node", &owner, None);
    assert_eq!((s, info["id"].as_str()), (200, Some(node.id.as_str())));
    let (s, commands) = api.checked("GET", "/v1/commands", &owner, None);
    assert_eq!(s, 200);
    assert!(commands.as_array().unwrap().iter().any(|c| c["name"] == "kv/put"));
    assert_eq!(api.checked("GET", "/v1/commands/text/stats", &owner, None).0, 200);
    let (s, r) = api.checked("POST", "/v1/commands/text/stats", &owner, Some(br#"{"text": "one two. three"}"#));
    assert_eq!((s, r["result"]["words"].as_u64()), (200, Some(3)));
    let (s, e) = api.checked("POST", "/v1/commands/text/stats", &owner, Some(br#"{"txt": "x"}"#));
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid-params")));
    let (s, e) = api.checked("POST", "/v1/commands/nope/nothing", &owner, Some(b"{}"));
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("unknown-command")));
    let (s, e) =
        api.checked("POST", "/v1/commands/text/find", &owner, Some(br#"{"text": "x", "pattern": "", "options": []}"#));
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("command-error")));
    assert!(e["error"]["value"].is_string(), "{e}");
    let (s, plugins) = api.checked("GET", "/v1/plugins", &owner, None);
    assert_eq!(s, 200);
    let digest = plugins.as_array().unwrap().iter().find(|p| p["name"] == "text").unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = api.send("GET", &format!("/v1/plugins/{digest}/alloy"), &owner, None);
    assert_eq!(s, 200);
    assert_eq!(api.checked("GET", "/v1/plugins/0000000000/alloy", &owner, None).0, 404);
    let (s, events) = api.checked("GET", "/v1/events?limit=5", &owner, None);
    assert_eq!((s, events.as_array().map(Vec::len)), (200, Some(5)));
    assert_eq!(api.checked("GET", "/v1/peers", &owner, None).0, 200);
    assert_eq!(api.checked("GET", "/v1/offers", &owner, None).0, 200);
    let (s, found) = api.checked("GET", "/v1/offers/search?query=count%20words", &owner, None);
    assert_eq!(s, 200);
    assert_eq!(found["matches"][0]["name"], "text/stats", "{found}");
    let (s, e) = api.checked("POST", "/v1/peers", &owner, Some(br#"{"address": "nobody"}"#));
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad-request")));
    assert_eq!(api.checked("GET", "/v1/peers/discovered", &owner, None), (200, serde_json::json!([])));
    let (s, e) = api.checked("POST", "/v1/peers/accept", &owner, Some(br#"{"key": "00000000"}"#));
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad-request")));
    assert!(e["error"]["message"].as_str().unwrap().contains("no discovered node"), "{e}");

    // No credentials, a wrong token, an oversized body.
    let (s, e) = api.checked("GET", "/v1/commands", &[], None);
    assert_eq!((s, e["error"]["code"].as_str()), (401, Some("unauthenticated")));
    assert!(e["error"]["message"].as_str().unwrap().contains("Authorization: Bearer"));
    assert_eq!(api.send("GET", "/v1/commands", &[("authorization", "Bearer wrong")], None).0, 401);
    let (status, e) = declare_oversized_body(&node, "/v1/commands/text/stats", 5 << 20);
    assert_eq!((status, e["error"]["code"].as_str()), (413, Some("too-large")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("--max-body"), "{e}");

    // An API key mapped to a grantee: listed == callable; owner-only endpoints refused.
    let client = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let client_id = hex_key(&client);
    let token = node.ok(&["grant", "issue", "--to", &client_id, "--cap", "kv/get"]).trim().to_string();
    let key = node.ok(&["apikey", "create", "--for", &token, "--label", "test"]).trim().to_string();
    let as_client = format!("Bearer {key}");
    let client_auth = [("authorization", as_client.as_str())];
    let (_, listed) = api.checked("GET", "/v1/commands", &client_auth, None);
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"kv/get") && names.contains(&"text/stats") && !names.contains(&"kv/put"), "{names:?}");
    assert_eq!(api.checked("POST", "/v1/commands/kv/get", &client_auth, Some(br#"{"key": "k"}"#)).0, 200);
    let (s, e) =
        api.checked("POST", "/v1/commands/kv/put", &client_auth, Some(br#"{"key": "k", "value": {"flag": true}}"#));
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("denied")));
    assert_eq!(api.checked("GET", "/v1/events", &client_auth, None).0, 403);
    // Discovered nodes and accepting them are the owner's alone; a stranger is not even asked who it is.
    assert_eq!(api.checked("GET", "/v1/peers/discovered", &client_auth, None).0, 403);
    assert_eq!(api.checked("POST", "/v1/peers/accept", &client_auth, Some(br#"{"key": "00000000"}"#)).0, 403);
    assert_eq!(api.checked("POST", "/v1/peers/accept", &[], Some(br#"{"key": "00000000"}"#)).0, 401);
    // Revoking on the CLI beside the running node takes effect on the node at once.
    node.ok(&["grant", "revoke", &client_id]);
    let (s, e) = api.checked("POST", "/v1/commands/kv/get", &client_auth, Some(br#"{"key": "k"}"#));
    assert!(s == 401 || s == 403, "a revoked grant still works on the running node: {s} {e}");
    assert!(e["error"]["message"].as_str().unwrap_or_default().contains("revoked"), "{e}");

    // A peer's signed request: verified, run as its key; tampering is refused.
    let peer = ed25519_dalek::SigningKey::from_bytes(&[43; 32]);
    let body = br#"{"text": "a b"}"#;
    let target = continuum::node::auth::RequestToSign {
        node: &node.id,
        method: "POST",
        path: "/v1/commands/text/stats",
        grant: None,
        body,
    };
    let signed = continuum::node::auth::sign_request(&peer, &target);
    let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(api.checked("POST", "/v1/commands/text/stats", &headers, Some(body)).0, 200);
    let (s, e) = api.checked("POST", "/v1/commands/text/stats", &headers, Some(br#"{"text": "a b c"}"#));
    assert_eq!((s, e["error"]["code"].as_str()), (401, Some("unauthenticated")));
    let (s, _) = api.checked("POST", "/v1/commands/kv/get", &headers, Some(br#"{"key": "k"}"#));
    assert_eq!(s, 401, "the signature covers the path");

    // Server-sent events: the log as it grows.
    let mut sse = api
        .agent
        .get(&format!("{}/v1/events/stream?after=0&kind=call.", node.http))
        .header("authorization", &bearer)
        .call()
        .expect("stream");
    let mut lines = BufReader::new(sse.body_mut().as_reader()).lines();
    let event = lines.next().unwrap().unwrap();
    assert_eq!(event, "event: entry");
    let data: Value = serde_json::from_str(lines.next().unwrap().unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert!(data["kind"].as_str().unwrap().starts_with("call."), "{data}");

    // The CLI talks to the running node over its socket; the node is the log's one writer.
    let out = node.ok(&["run", "text/stats", "--text", "via the socket"]);
    assert!(out.contains("\"words\":3"), "{out}");
    let denied = node.cli(&["run", "--as", &client_id, "kv/put", r#"{"key": "k", "value": {"flag": true}}"#]);
    assert_eq!(denied.status.code(), Some(5), "{}", stderr(&denied));

    // Graceful shutdown: the node exits by itself and leaves no socket behind.
    node.ok(&["node", "stop"]);
    assert!(node.wait().success());
    assert!(!node.dir.path().join("node.sock").exists());
    let local = node.ok(&["run", "text/stats", "--text", "in process again"]);
    assert!(local.contains("\"words\":3"), "{local}");
}

fn hex_key(key: &ed25519_dalek::SigningKey) -> String {
    key.verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
