//! The `continuum:host` interfaces through the first-party plugins: the per-plugin store,
//! events, logging and composition (`commands.call`).

use continuum::{CallError, InstallOptions};
use continuum_tests::{plugin_dir, TestHost};
use serde_json::json;

#[test]
fn kv_keeps_typed_values_in_the_plugin_store() {
    let h = TestHost::with(&["kv"]);
    for (key, value) in [
        ("t", json!({ "text": "hi" })),
        ("i", json!({ "integer": -5 })),
        ("n", json!({ "number": 2.5 })),
        ("b", json!({ "binary": "AAE=" })),
        ("f", json!({ "flag": true })),
    ] {
        assert_eq!(h.call("kv/put", json!({ "key": key, "value": value })).unwrap(), json!(null));
        assert_eq!(h.call("kv/get", json!({ "key": key })).unwrap(), value);
    }
    assert_eq!(h.call("kv/get", json!({ "key": "missing" })).unwrap(), json!(null));
    assert_eq!(h.call("kv/incr", json!({ "key": "i", "by": 7 })).unwrap(), json!(2));
    assert_eq!(h.call("kv/incr", json!({ "key": "fresh" })).unwrap(), json!(1));
    match h.call("kv/incr", json!({ "key": "t" })) {
        Err(CallError::CommandFailed { error, .. }) => assert_eq!(error, json!({ "not-an-integer": "t" })),
        other => panic!("{other:?}"),
    }
    h.call("kv/put", json!({ "key": "max", "value": { "integer": i64::MAX } })).unwrap();
    match h.call("kv/incr", json!({ "key": "max" })) {
        Err(CallError::CommandFailed { error, .. }) => assert_eq!(error, json!("overflow")),
        other => panic!("{other:?}"),
    }
    let listed = h.call("kv/list", json!({ "prefix": "f" })).unwrap();
    assert_eq!(
        listed,
        json!([{ "key": "f", "value": { "flag": true } }, { "key": "fresh", "value": { "integer": 1 } }])
    );
    assert_eq!(h.call("kv/list", json!({ "limit": 2 })).unwrap().as_array().unwrap().len(), 2);
    assert_eq!(h.call("kv/delete", json!({ "key": "t" })).unwrap(), json!(true));
    assert_eq!(h.call("kv/delete", json!({ "key": "t" })).unwrap(), json!(false));
    match h.call("kv/put", json!({ "key": "", "value": { "flag": true } })) {
        Err(CallError::CommandFailed { error, .. }) => {
            assert!(error["store"].as_str().unwrap().contains("1 to 1024 bytes"), "{error}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stores_are_private_to_each_plugin() {
    let h = TestHost::with(&["kv"]);
    let d = plugin_dir("kv");
    let other = InstallOptions { name: Some("vault".into()), ..continuum_tests::allow_all() };
    h.host.install_component(&d.join("kv.wasm"), Some(&d.join("wit")), &other).unwrap();
    h.call("kv/put", json!({ "key": "secret", "value": { "text": "kv's" } })).unwrap();
    assert_eq!(h.call("vault/get", json!({ "key": "secret" })).unwrap(), json!(null));
    assert_eq!(h.call("vault/list", json!({})).unwrap(), json!([]));
    h.call("vault/put", json!({ "key": "secret", "value": { "text": "vault's" } })).unwrap();
    assert_eq!(h.call("kv/get", json!({ "key": "secret" })).unwrap(), json!({ "text": "kv's" }));

    // Removing without --purge keeps the store; with it, the store goes too.
    h.host.remove("vault", false).unwrap();
    h.host.install_component(&d.join("kv.wasm"), Some(&d.join("wit")), &other).unwrap();
    assert_eq!(h.call("vault/get", json!({ "key": "secret" })).unwrap(), json!({ "text": "vault's" }));
    h.host.remove("vault", true).unwrap();
    h.host.install_component(&d.join("kv.wasm"), Some(&d.join("wit")), &other).unwrap();
    assert_eq!(h.call("vault/get", json!({ "key": "secret" })).unwrap(), json!(null));
}

#[test]
fn events_are_recorded_under_the_plugin_name() {
    let h = TestHost::with(&["kv"]);
    h.call("kv/put", json!({ "key": "a", "value": { "flag": false } })).unwrap();
    let log = continuum::eventlog::entries(&h.host.core().log_db().unwrap(), 0, Some("kv.put"), 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].kind.as_str(), log[0].subject.as_str()), ("kv.put", "kv/put"));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&log[0].payload).unwrap(), json!({ "key": "a" }));
}

#[test]
fn composition_runs_other_commands_as_the_same_caller() {
    let h = TestHost::with(&["json", "text"]);
    let mapped = h
        .call(
            "json/map",
            json!({ "command": "text/convert-case", "field": "text", "items": ["a b", "c d"], "extra": "{\"to\":\"kebab\"}" }),
        )
        .unwrap();
    assert_eq!(mapped, json!(["\"a-b\"", "\"c-d\""]));
    // Errors of the nested call come back to the composing plugin, which reports them.
    match h.call("json/map", json!({ "command": "text/nope", "field": "text", "items": ["x"] })) {
        Err(CallError::CommandFailed { error, .. }) => {
            let e = error.as_str().unwrap();
            assert!(e.contains("item 0") && e.contains("unknown command `text/nope`"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match h.call(
        "json/map",
        json!({ "command": "text/convert-case", "field": "text", "items": ["x"], "extra": "{\"to\":\"loud\"}" }),
    ) {
        Err(CallError::CommandFailed { error, .. }) => {
            assert!(error.as_str().unwrap().contains("params.to: unknown value `loud`"), "{error}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nesting_is_capped_and_nested_calls_share_the_outer_deadline() {
    let h = TestHost::with_config(
        &["misbehave", "typezoo"],
        "[limits]\nmax-call-depth = 3\n[plugins.misbehave.limits]\ntimeout-ms = 400\n",
    );
    let relay = |cmd: &str, params: serde_json::Value| json!({ "command": cmd, "params": params.to_string() });
    assert_eq!(h.call("misbehave/relay", relay("typezoo/divide", json!({ "a": 8, "b": 2 }))).unwrap(), json!("4"));

    // relay → relay → relay → relay → divide: four levels of nesting, one more than allowed.
    let mut params = relay("typezoo/divide", json!({ "a": 8, "b": 2 }));
    for _ in 0..3 {
        params = relay("misbehave/relay", params);
    }
    match h.call("misbehave/relay", params) {
        Err(CallError::CommandFailed { error, .. }) => {
            assert!(error.as_str().unwrap().contains("limited to 3 levels"), "{error}")
        }
        other => panic!("{other:?}"),
    }

    let t = std::time::Instant::now();
    match h.call("misbehave/relay", relay("misbehave/spin", json!({}))) {
        Err(CallError::CommandFailed { error, .. }) => assert!(error.as_str().unwrap().contains("deadline"), "{error}"),
        Err(CallError::Limit { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < std::time::Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn text_and_json_commands_do_useful_work() {
    let h = TestHost::with(&["json", "text"]);
    let stats = h.call("text/stats", json!({ "text": "The cat. The dog! A bird?\nEnd", "top": 1 })).unwrap();
    assert_eq!(stats, json!({ "chars": 29, "words": 7, "lines": 2, "sentences": 4, "top-words": [["the", 2]] }));
    let spans = h
        .call(
            "text/find",
            json!({ "text": "Cat scatter cat", "pattern": "cat", "options": ["ignore-case", "whole-word"] }),
        )
        .unwrap();
    assert_eq!(spans, json!([{ "start": 0, "end": 3 }, { "start": 12, "end": 15 }]));
    let summary = h
        .call(
            "text/summarize",
            json!({ "text": "Rust is fast. Rust is safe and Rust is fun. Cats sleep.", "max-words": 8 }),
        )
        .unwrap();
    assert_eq!(summary["text"], "Rust is safe and Rust is fun.");
    assert_eq!(
        h.call("json/query", json!({ "document": "{\"a\":[{\"b\":true}]}", "path": "a[0].b" })).unwrap(),
        json!("true")
    );
    assert_eq!(
        h.call("json/query", json!({ "document": "{\"a\":[{\"b\":true}]}", "path": "/a/0" })).unwrap(),
        json!("{\"b\":true}")
    );
    let formatted = h
        .call("json/format", json!({ "document": "{\"b\":1,\"a\":2}", "options": { "indent": 0, "sort-keys": true } }))
        .unwrap();
    assert_eq!(formatted, json!("{\"a\":2,\"b\":1}"));
    match h.call("json/query", json!({ "document": "{", "path": "a" })) {
        Err(CallError::CommandFailed { error, .. }) => assert!(error["invalid-json"].is_string(), "{error}"),
        other => panic!("{other:?}"),
    }
}
