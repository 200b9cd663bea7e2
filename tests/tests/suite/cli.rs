//! The `continuum` binary end to end: install, list, inspect, commands, run, remove, exit
//! codes, completions, and two processes sharing one data directory.

use continuum_tests::{binary, cli, plugin_dir, stderr, stdout};
use serde_json::Value;

fn install(dir: &std::path::Path, plugin: &str) {
    let out = cli(dir, &["plugin", "install", plugin_dir(plugin).to_str().unwrap(), "--allow", "all"]);
    assert!(out.status.success(), "install {plugin}: {}", stderr(&out));
}

#[test]
fn install_list_inspect_run_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = cli(d, &["plugin", "list"]);
    assert!(stdout(&out).contains("no plugins installed"));

    let out = cli(d, &["plugin", "install", plugin_dir("text").to_str().unwrap(), "--allow", "host:log"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("installed text (4 commands"), "{}", stdout(&out));
    // A .wasm file with an explicit --wit works too.
    // Capabilities must be approved: kv's imports of host:store and host:events are refused until allowed.
    let kv = plugin_dir("kv");
    let (kv_wasm, kv_wit) = (kv.join("kv.wasm"), kv.join("wit"));
    let install_kv = |extra: &[&str]| {
        let mut args = vec!["plugin", "install", kv_wasm.to_str().unwrap(), "--wit", kv_wit.to_str().unwrap()];
        args.extend_from_slice(extra);
        cli(d, &args)
    };
    let out = install_kv(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("plugin `kv` needs host:events, host:store which are not approved"), "{err}");
    assert!(err.contains("--allow host:events --allow host:store"), "{err}");
    let out = install_kv(&["--allow", "host:store,host:events"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let permissions = stdout(&cli(d, &["plugin", "permissions", "kv"]));
    assert!(permissions.contains("host:store") && permissions.contains("approved"), "{permissions}");
    // Denying a capability stops the commands that need it, with the fix in the message.
    assert!(stdout(&cli(d, &["plugin", "deny", "kv", "host:events"])).contains("kv may use: host:store"));
    let out = cli(d, &["run", "kv/put", "--key", "k", "--value", r#"{"flag":true}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`continuum plugin allow kv host:events`"), "{}", stderr(&out));
    assert!(stdout(&cli(d, &["plugin", "permissions", "kv"])).contains("NOT approved"));
    cli(d, &["plugin", "allow", "kv", "host:events"]);

    let list = stdout(&cli(d, &["plugin", "list"]));
    assert!(list.contains("text") && list.contains("kv"), "{list}");
    let inspect: Value = serde_json::from_str(&stdout(&cli(d, &["plugin", "inspect", "text", "--json"]))).unwrap();
    assert_eq!(inspect["name"], "text");
    assert_eq!(inspect["digest"].as_str().unwrap().len(), 64);
    let human = stdout(&cli(d, &["plugin", "inspect", "kv"]));
    assert!(human.contains("continuum:host/store@0.1.0") && human.contains("kv/incr"), "{human}");
    assert!(human.contains("(key: string, by: option<s64>) -> s64 ! kv-error [granted]"), "{human}");

    let commands: Value = serde_json::from_str(&stdout(&cli(d, &["commands", "--json"]))).unwrap();
    let names: Vec<&str> = commands.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(commands[0]["params"]["type"] == "object");
    assert!(stdout(&cli(d, &["commands"])).contains("text/summarize"));

    let file = d.join("doc.txt");
    std::fs::write(&file, "One two three. Four five!").unwrap();
    let at = format!("@{}", file.display());
    let out = cli(d, &["run", "text/stats", "--text", &at]);
    let stats: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((stats["words"].clone(), stats["sentences"].clone()), (Value::from(5), Value::from(2)));
    let out = cli(d, &["run", "--output", "pretty", "text/convert-case", r#"{"text":"a b","to":"title"}"#]);
    assert_eq!(stdout(&out), "A B\n");
    let out = cli(d, &["run", "--output", "json", "text/convert-case", "--text", "a b", "--to", "title"]);
    assert_eq!(stdout(&out), "\"A B\"\n");

    let out = cli(d, &["run", "kv/put", "--key", "k", "--value", r#"{"text":"v"}"#]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(d, &["plugin", "remove", "kv", "--purge"]);
    assert!(stdout(&out).contains("removed kv and its store"));
    let out = cli(d, &["run", "kv/get", "--key", "k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no plugin `kv` is installed"), "{}", stderr(&out));
}

#[test]
fn errors_are_one_line_with_an_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install(d, "text");
    let cases: &[(&[&str], i32, &str)] = &[
        (&["run", "text/nope"], 2, "unknown command `text/nope`"),
        (&["run", "text/stats", "--txt", "a"], 2, "unknown flag --txt for text/stats; it takes --text, --top"),
        (&["run", "text/stats"], 2, "missing required flag --text (string)"),
        (
            &["run", "text/stats", "--text", "a", "--top", "many"],
            2,
            "--top: expected integer in 0..=4294967295 (u32), got \"many\"",
        ),
        (&["run", "text/stats", "--text"], 2, "flag --text needs a value"),
        (&["run", "text/stats", "{not json"], 2, "is not a JSON object of params"),
        (&["run", "text/stats", "[1]"], 2, "text/stats: expected an object, got [1]"),
        (&["run", "text/stats", "--text", "@/nonexistent/file"], 2, "cannot read `/nonexistent/file`"),
        (
            &["run", "text/find", "--text", "a", "--pattern", "", "--options", "[]"],
            3,
            "text/find returned an error: \"pattern is empty",
        ),
        (&["plugin", "install", "/nonexistent"], 1, "cannot read /nonexistent"),
        (&["plugin", "remove", "ghost"], 1, "plugin `ghost` is not installed"),
    ];
    for (args, code, message) in cases {
        let out = cli(d, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: expected `{message}` in {err}");
        assert_eq!(err.trim().lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    }
}

#[test]
fn help_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install(d, "text");
    let help = stdout(&cli(d, &["run", "text/summarize", "--help"]));
    for line in [
        "Summarizes a text",
        "--text <string>",
        "(required) The text to summarize.",
        "--max-words <u32>",
        "Returns: summary",
        "Errors: string",
    ] {
        assert!(help.contains(line), "missing `{line}` in:\n{help}");
    }
    assert!(stdout(&cli(d, &["run", "--help"])).contains("Usage: continuum run"));
    let bash = stdout(&cli(d, &["completions", "bash"]));
    assert!(bash.contains("continuum") && bash.contains("plugin"), "{bash}");
}

#[test]
fn the_data_dir_comes_from_continuum_home() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(binary())
        .args(["plugin", "install", plugin_dir("text").to_str().unwrap(), "--allow", "all"])
        .env("CONTINUUM_HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("continuum.db").exists());
}

#[test]
fn two_processes_share_one_data_dir_safely() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    install(d, "kv");
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let d = d.to_path_buf();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let key = format!("w{w}-{i}");
                    let out = cli(&d, &["run", "kv/put", "--key", &key, "--value", r#"{"integer":1}"#]);
                    assert!(out.status.success(), "{key}: {}", stderr(&out));
                }
            })
        })
        .collect();
    // Meanwhile, a third process installs another plugin.
    install(d, "text");
    for w in writers {
        w.join().unwrap();
    }
    let listed: Value = serde_json::from_str(&stdout(&cli(d, &["run", "kv/list", "--limit", "1000"]))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 30);
    assert!(stdout(&cli(d, &["plugin", "list"])).contains("text"));
    // Both processes extended one chain of the event log.
    let verified = stdout(&cli(d, &["events", "verify"]));
    assert!(verified.contains("verified"), "{verified}");
}

#[test]
fn the_readme_example_builds_installs_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "hello");
    let out = cli(dir.path(), &["run", "hello/greet", "--name", "Ada", "--loud"]);
    assert_eq!(stdout(&out).trim(), "\"HELLO, ADA!\"", "{}", stderr(&out));
    let help = stdout(&cli(dir.path(), &["run", "hello/greet", "--help"]));
    assert!(help.contains("--loud <bool>") && help.contains("Shout it (default false)."), "{help}");
}

#[test]
fn the_readme_shows_the_example_source_as_it_is() {
    let readme = std::fs::read_to_string(continuum_tests::repo().join("README.md")).unwrap();
    let block = |fence: &str| -> String {
        let start = readme.find(fence).unwrap() + fence.len();
        let body = &readme[start..][..readme[start..].find("```").unwrap()];
        body.lines()
            .filter(|l| !l.starts_with("// examples/"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .trim_start()
            .to_string()
    };
    let example = continuum_tests::repo().join("examples/hello-rust");
    assert_eq!(block("```rust\n"), std::fs::read_to_string(example.join("src/lib.rs")).unwrap());
    assert_eq!(block("```wit\n"), std::fs::read_to_string(example.join("wit/hello.wit")).unwrap());
}
