//! Installing components: bad input is refused with a named reason and leaves the host's
//! state unchanged; a good install is reflected, stored and survives a new process.

use std::path::Path;

use continuum::paths::DataDir;
use continuum::{Host, InstallOptions};
use continuum_tests::{plugin_dir, TestHost};
use serde_json::json;

/// Names of installed plugins and files in the component store: the state a refusal must not touch.
fn state(h: &TestHost) -> (Vec<String>, Vec<String>) {
    let plugins = h.host.plugins().unwrap().into_iter().map(|p| p.name).collect();
    let mut files: Vec<String> = ["components", "compiled"]
        .iter()
        .flat_map(|d| std::fs::read_dir(h.dir.path().join(d)).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    (plugins, files)
}

fn refuse(h: &TestHost, wasm: &Path, wit: &Path, expected: &str) {
    let before = state(h);
    let err = h.host.install_component(wasm, Some(wit), &continuum_tests::allow_all()).expect_err("install must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains(expected), "expected `{expected}` in: {msg}");
    assert_eq!(state(h), before, "a refused install changed the host's state");
}

#[test]
fn bad_components_are_refused_with_a_named_reason() {
    let h = TestHost::with(&["typezoo"]);
    let scratch = tempfile::tempdir().unwrap();
    let text = plugin_dir("text");
    let wit = text.join("wit");
    let write = |name: &str, bytes: &[u8]| {
        let p = scratch.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    refuse(&h, &write("junk.wasm", b"#!/bin/sh\necho hi\n"), &wit, "is not a WebAssembly component");
    // A core module is taken as WASI preview 1 and adapted; this empty one then has no commands.
    refuse(&h, &write("core.wasm", b"\0asm\x01\0\0\0"), &wit, "exports no functions");
    let good = std::fs::read(text.join("text.wasm")).unwrap();
    refuse(&h, &write("half.wasm", &good[..good.len() / 2]), &wit, "the component is truncated or corrupt");
    refuse(&h, &write("empty.wasm", b"\0asm\x0d\0\x01\0"), &wit, "exports no functions");
    refuse(
        &h,
        &text.join("text.wasm"),
        &plugin_dir("json").join("wit"),
        "the WIT source does not describe this component",
    );
    refuse(&h, &text.join("text.wasm"), scratch.path(), "no .wit files");
    let rf = plugin_dir("resourceful");
    refuse(&h, &rf.join("resourceful.wasm"), &rf.join("wit"), "exports resource `counter` in `counters`");
    let st = plugin_dir("streamy");
    refuse(
        &h,
        &st.join("streamy.wasm"),
        &st.join("wit"),
        "futures and streams cannot be command parameters or results",
    );
    let zoo = plugin_dir("typezoo");
    refuse(&h, &zoo.join("typezoo.wasm"), &zoo.join("wit"), "plugin `typezoo` is already installed; pass --replace");

    let bad_wit = scratch.path().join("badwit");
    std::fs::create_dir(&bad_wit).unwrap();
    std::fs::write(bad_wit.join("w.wit"), "package a:b;\nworld w { export f: func() -> nope; }\n").unwrap();
    refuse(&h, &text.join("text.wasm"), &bad_wit, "w.wit");
    let err = h
        .host
        .install_component(
            &text.join("text.wasm"),
            Some(&wit),
            &InstallOptions { name: Some("Bad_Name".into()), ..continuum_tests::allow_all() },
        )
        .unwrap_err();
    assert!(err.to_string().contains("must be kebab-case"), "{err}");
}

#[test]
fn install_replace_and_remove() {
    let h = TestHost::with(&["text"]);
    let record = h.host.plugin("text").unwrap();
    assert_eq!(record.commands.len(), 4);
    assert!(record.imports.iter().any(|i| i.starts_with("continuum:host/log")), "{:?}", record.imports);
    assert!(!record.imports.iter().any(|i| i.starts_with("continuum:host/store")), "unused imports are not requested");
    assert_eq!(
        record.description.as_deref(),
        Some("Text utilities: statistics, case conversion, search and extractive summaries.")
    );

    let d = plugin_dir("text");
    let opts = InstallOptions { replace: true, ..continuum_tests::allow_all() };
    h.host.install_component(&d.join("text.wasm"), Some(&d.join("wit")), &opts).unwrap();
    let alias = InstallOptions { name: Some("words".into()), ..continuum_tests::allow_all() };
    h.host.install_component(&d.join("text.wasm"), Some(&d.join("wit")), &alias).unwrap();
    assert_eq!(h.call("words/convert-case", json!({ "text": "a b", "to": "snake" })).unwrap(), json!("a_b"));

    h.host.remove("text", false).unwrap();
    assert!(h.call("text/stats", json!({ "text": "x" })).is_err());
    // The component is shared with `words`, so it stays until the last user goes.
    assert_eq!(h.call("words/stats", json!({ "text": "x" })).unwrap()["words"], json!(1));
    h.host.remove("words", false).unwrap();
    assert_eq!(std::fs::read_dir(h.dir.path().join("components")).unwrap().count(), 0);
    assert!(h.host.remove("words", false).unwrap_err().to_string().contains("plugin `words` is not installed"));
}

#[test]
fn an_install_survives_a_new_host_and_loads_from_the_aot_cache() {
    let h = TestHost::with(&["text"]);
    let dir = h.dir.path().to_path_buf();
    let compiled: Vec<_> = std::fs::read_dir(dir.join("compiled")).unwrap().collect();
    assert_eq!(compiled.len(), 1);
    let again = Host::open(DataDir::at(dir.clone()).unwrap()).unwrap();
    let t = std::time::Instant::now();
    again.load("text").unwrap();
    assert!(t.elapsed() < std::time::Duration::from_secs(2), "cached load took {:?}", t.elapsed());
    let r = again.call(&continuum::Caller::owner(), "text/convert-case", &json!({ "text": "ab", "to": "upper" }));
    assert_eq!(r.result.unwrap(), json!("AB"));

    // A corrupt cache entry (a new file in its place) is discarded and rebuilt from the
    // component.
    for e in std::fs::read_dir(dir.join("compiled")).unwrap() {
        let path = e.unwrap().path();
        std::fs::write(dir.join("garbage"), b"garbage").unwrap();
        std::fs::rename(dir.join("garbage"), path).unwrap();
    }
    let third = Host::open(DataDir::at(dir).unwrap()).unwrap();
    let r = third.call(&continuum::Caller::owner(), "text/convert-case", &json!({ "text": "ab", "to": "upper" }));
    assert_eq!(r.result.unwrap(), json!("AB"));
}

#[test]
fn unknown_commands_name_what_exists() {
    let h = TestHost::with(&["text"]);
    let e = h.call("text/nope", json!({})).unwrap_err().to_string();
    assert!(e.contains("unknown command `text/nope`; plugin `text` has: text/stats"), "{e}");
    let e = h.call("nothing/here", json!({})).unwrap_err().to_string();
    assert!(e.contains("no plugin `nothing` is installed"), "{e}");
}

#[test]
fn a_bad_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("continuum.toml"), "[limits]\nmemory-mib = 0\n").unwrap();
    let err = Host::open(DataDir::at(dir.path().to_path_buf()).unwrap()).err().unwrap();
    let msg = format!("{err:#}");
    assert!(msg.contains("continuum.toml") && msg.contains("memory-mib must be between 1 and 4096"), "{msg}");
}

/// A precompiled file the host did not create as it is now (copied or restored in place, or
/// from before identities were kept) is hashed, loaded from memory and written anew: a new
/// file of the host's own, 0600, whose identity is recorded, so later loads map only files no
/// other user has opened.
#[test]
fn a_cached_file_of_unknown_identity_is_checked_and_written_anew() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let h = TestHost::with(&["text"]);
    let dir = h.dir.path().to_path_buf();
    let file = std::fs::read_dir(dir.join("compiled")).unwrap().next().unwrap().unwrap().path();
    // The same bytes, as another file (another inode) in its place.
    let copy = dir.join("copy");
    std::fs::copy(&file, &copy).unwrap();
    std::fs::rename(&copy, &file).unwrap();
    let copied = std::fs::metadata(&file).unwrap().ino();

    let again = Host::open(DataDir::at(dir.clone()).unwrap()).unwrap();
    let r = again.call(&continuum::Caller::owner(), "text/convert-case", &json!({ "text": "ab", "to": "upper" }));
    assert_eq!(r.result.unwrap(), json!("AB"), "the copy has the right bytes and loads");
    let rewritten = std::fs::metadata(&file).unwrap();
    assert_ne!(rewritten.ino(), copied, "the file was written anew");
    assert_eq!(rewritten.permissions().mode() & 0o777, 0o600);
    let db = rusqlite::Connection::open(dir.join("continuum.db")).unwrap();
    let fingerprint: String = db.query_row("SELECT fingerprint FROM compiled_files", [], |r| r.get(0)).unwrap();
    assert!(fingerprint.contains(&format!(":{}:", rewritten.ino())), "its identity is recorded: {fingerprint}");
}
