//! The command line's conventions, the same for every command: `--json` (one JSON document on
//! stdout, before or after the subcommand; a failure as one JSON line on stderr), `-q` (no
//! confirmations or hints, the data still printed) and `--color` / `NO_COLOR`.

use std::path::Path;
use std::process::Output;

use continuum_tests::{binary, cli, plugin_dir, stderr, stdout, TestHost, TestNode};
use serde_json::Value;

/// Runs `continuum --data-dir <dir> <args>` with `env` added (and no NO_COLOR of its own).
fn cli_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    std::process::Command::new(binary())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("CONTINUUM_HOME")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .output()
        .expect("run continuum")
}

/// The one JSON document `args` printed on stdout, failing the test if it failed or printed
/// anything else.
fn json_of(dir: &Path, args: &[&str]) -> Value {
    let out = cli(dir, args);
    assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{args:?} printed no single JSON document ({e}):\n{}", stdout(&out)))
}

/// A 64-digit hex public key.
fn is_key(v: &Value) -> bool {
    v.as_str().is_some_and(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn every_printing_command_prints_one_json_document_with_json() {
    let h = TestHost::with(&["text"]);
    let d = h.dir.path();

    let generated = json_of(d, &["--json", "key", "generate", "publisher"]);
    assert_eq!(generated["name"], "publisher");
    assert!(is_key(&generated["public_key"]), "{generated}");
    let key = generated["public_key"].as_str().unwrap().to_string();
    assert_eq!(json_of(d, &["key", "export", "publisher", "--json"]), generated);
    let keys = json_of(d, &["key", "list", "--json"]);
    assert!(keys.as_array().unwrap().iter().any(|k| k == &generated), "{keys}");

    let trusted = json_of(d, &["trust", "add", &key, "--name", "pub", "--approve", "host:log", "--json"]);
    assert_eq!((trusted["name"].as_str(), trusted["public_key"].as_str()), (Some("pub"), Some(key.as_str())));
    assert_eq!(trusted["approves"], serde_json::json!(["host:log"]));
    assert_eq!(json_of(d, &["--json", "trust", "list"])[0]["name"], "pub");
    assert_eq!(json_of(d, &["trust", "remove", "pub", "--json"])["public_key"], key.as_str());
    assert_eq!(json_of(d, &["trust", "list", "--json"]), serde_json::json!([]));

    assert_eq!(json_of(d, &["plugin", "list", "--json"])[0]["name"], "text");
    assert_eq!(json_of(d, &["--json", "plugin", "list"])[0]["name"], "text");
    assert_eq!(json_of(d, &["--json", "plugin", "inspect", "text"])["name"], "text");
    assert!(json_of(d, &["plugin", "permissions", "text", "--json"]).is_array());
    let denied = json_of(d, &["plugin", "deny", "text", "all", "--json"]);
    assert_eq!((denied["name"].as_str(), denied["approved"].clone()), (Some("text"), serde_json::json!([])));
    let allowed = json_of(d, &["--json", "plugin", "allow", "text", "all"]);
    assert_eq!(allowed["approved"], serde_json::json!(["host:log"]), "{allowed}");
    let commands = json_of(d, &["commands", "--json"]);
    assert!(commands.as_array().unwrap().iter().any(|c| c["name"] == "text/stats"), "{commands}");
    let found = json_of(d, &["--json", "commands", "search", "count the words"]);
    assert!(found["matches"].is_array(), "{found}");
    assert!(json_of(d, &["--json", "run", "text/stats", "--help"])["params"]["properties"]["text"].is_object());

    let issued = json_of(d, &["grant", "issue", "--to", &key, "--cap", "text/", "--json"]);
    assert!(issued["token"].is_string() && issued["grantee"] == key.as_str(), "{issued}");
    assert_eq!(json_of(d, &["--json", "grant", "list"])[0]["grantee"], key.as_str());
    let revoked = json_of(d, &["grant", "revoke", &key, "--json"]);
    assert_eq!(revoked["epoch"], 2, "{revoked}");

    let created = json_of(d, &["apikey", "create", "--for", &key, "--label", "ci", "--json"]);
    let id = created["id"].as_str().expect("the key's id").to_string();
    assert!(created["key"].is_string(), "{created}");
    assert_eq!(json_of(d, &["--json", "apikey", "list"])[0]["id"], id.as_str());
    assert_eq!(json_of(d, &["apikey", "revoke", &id, "--json"])["revoked"], id.as_str());

    let verified = json_of(d, &["events", "verify", "--json"]);
    assert!(verified["entries"].as_u64().unwrap() > 0 && is_key(&verified["node"]), "{verified}");
    assert!(json_of(d, &["usage", "--json"]).is_array());
    assert!(json_of(d, &["--json", "usage", "--by", "command"]).is_array());
    assert_eq!(json_of(d, &["model", "list", "--json"]), serde_json::json!([]));
    assert_eq!(json_of(d, &["nodeset", "show", "--json"]), serde_json::json!([]));
    assert_eq!(json_of(d, &["receipts", "list", "--json"]), serde_json::json!([]));
    assert_eq!(json_of(d, &["credits", "--json"]), serde_json::json!([]));

    // Global before `run`: the result as one line of JSON, as `--output json` prints it.
    let out = cli(d, &["--json", "run", "text/stats", "--text", "a b"]);
    assert_eq!(stdout(&out).lines().count(), 1, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(serde_json::from_str::<Value>(&stdout(&out)).unwrap()["words"], 2);
    assert_eq!(json_of(d, &["plugin", "remove", "text", "--json"])["name"], "text");
}

#[test]
fn the_running_node_answers_in_json() {
    let mut node = TestNode::start(|d| {
        let o = cli(d, &["plugin", "install", plugin_dir("text").to_str().unwrap(), "--allow", "all"]);
        assert!(o.status.success(), "{}", stderr(&o));
    });
    let d = node.dir.path().to_path_buf();
    let info = json_of(&d, &["node", "info", "--json"]);
    assert_eq!(info["id"], node.id.as_str());
    // Without --json, the same document and the address peers add.
    let human = stdout(&node.cli(&["node", "info"]));
    assert!(human.contains("peer address: ") && human.contains(&node.id), "{human}");
    let peers = json_of(&d, &["--json", "peer", "list"]);
    assert!(peers["peers"].is_array() && peers["offers"].is_array(), "{peers}");
    assert!(json_of(&d, &["offers", "--json"]).is_array());
    assert_eq!(json_of(&d, &["jobs", "list", "--json"]), serde_json::json!([]));
    let stopped = json_of(&d, &["node", "stop", "--json"]);
    assert_eq!(stopped["stopped"], true, "{stopped}");
    assert!(node.wait().success());
}

#[test]
fn a_failure_with_json_is_one_json_line_on_stderr() {
    let h = TestHost::with(&["text"]);
    let d = h.dir.path();
    let cases: &[(&[&str], i32, Option<&str>, &str)] = &[
        (&["--json", "run", "text/nope"], 2, Some("unknown-command"), "unknown command `text/nope`"),
        (&["run", "--json", "text/stats", "--top", "x", "--text", "a"], 2, Some("invalid-params"), "--top"),
        (&["plugin", "remove", "gh\x1b[31most", "--json"], 1, None, "plugin `ghost` is not installed"),
        (&["trust", "remove", "nobody", "--json"], 1, None, "nobody"),
    ];
    for (args, code, outcome, message) in cases {
        let out = cli(d, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        let report: Value = serde_json::from_str(&err).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {err}"));
        let error = &report["error"];
        assert_eq!(error["exit_code"], *code, "{err}");
        assert_eq!(error["outcome"].as_str(), *outcome, "{err}");
        assert!(error["message"].as_str().unwrap().contains(message), "{args:?}: {err}");
        // Control characters are removed from the message, not merely escaped.
        assert!(!err.contains('\x1b') && !err.contains("\\u001b"), "{err}");

        // The same failure without --json: `error: …`.
        let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        let out = cli(d, &plain);
        assert_eq!(out.status.code(), Some(*code), "{plain:?}");
        assert!(stderr(&out).starts_with("error: ") && stderr(&out).contains(message), "{}", stderr(&out));
    }
    // After the command's name, `--json` is the command's parameter, not `continuum`'s flag.
    let out = cli(d, &["run", "text/stats", "--json", "--text", "a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error: text/stats: unknown flag --json for text/stats"), "{}", stderr(&out));
}

#[test]
fn quiet_drops_confirmations_and_hints_but_not_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(stdout(&cli(d, &["plugin", "list"])).contains("no plugins installed"));
    let out = cli(d, &["plugin", "list", "-q"]);
    assert!(out.status.success() && stdout(&out).is_empty(), "{}", stdout(&out));

    let out = cli(d, &["-q", "key", "generate", "publisher"]);
    let key = stdout(&out).trim().to_string();
    assert!(is_key(&Value::from(key.clone())), "key generate -q must print the key: {key:?}");
    let out = cli(d, &["trust", "add", &key, "--name", "pub"]);
    assert!(stdout(&out).contains("trusted"), "{}", stdout(&out));
    let out = cli(d, &["trust", "remove", "pub", "--quiet"]);
    assert!(out.status.success() && stdout(&out).is_empty(), "{}", stdout(&out));
    let out = cli(d, &["trust", "add", &key, "--name", "pub", "-q"]);
    assert!(out.status.success() && stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(stdout(&cli(d, &["-q", "trust", "list"])).contains(&key));

    let out = cli(d, &["-q", "plugin", "install", plugin_dir("text").to_str().unwrap(), "--allow", "all"]);
    assert!(out.status.success() && stdout(&out).is_empty(), "{}{}", stdout(&out), stderr(&out));
    let out = cli(d, &["-q", "grant", "issue", "--to", &key, "--cap", "text/"]);
    assert!(!stdout(&out).trim().is_empty(), "grant issue -q must print the token");
    // --json is data: -q leaves it.
    assert_eq!(json_of(d, &["-q", "--json", "trust", "list"])[0]["name"], "pub");
}

#[test]
fn colour_follows_color_and_no_color() {
    let h = TestHost::with(&["text"]);
    let d = h.dir.path();
    // -v logs at debug level on stderr; stderr is a pipe here, so `auto` is no colour.
    let logged = |env: &[(&str, &str)], color: &[&str]| {
        let mut args = color.to_vec();
        args.extend(["-v", "run", "text/stats", "--text", "hi"]);
        let out = cli_env(d, env, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("DEBUG"), "{args:?} logged nothing at debug level: {err}");
        err.contains('\x1b')
    };
    assert!(!logged(&[], &[]));
    assert!(!logged(&[("NO_COLOR", "1")], &[]));
    assert!(!logged(&[("NO_COLOR", "1")], &["--color", "auto"]));
    assert!(!logged(&[], &["--color", "never"]));
    assert!(logged(&[], &["--color", "always"]));
    assert!(logged(&[("NO_COLOR", "1")], &["--color=always"]));
    // An empty NO_COLOR is not set.
    assert!(logged(&[("NO_COLOR", "")], &["--color", "always"]));

    // clap's own help page follows --color too.
    let help = |color: &str| stdout(&cli_env(d, &[], &["--color", color, "plugin", "--help"]));
    assert!(help("always").contains('\x1b'));
    assert!(!help("never").contains('\x1b') && help("never").contains("Usage"));
}
