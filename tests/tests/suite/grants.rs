//! Caller → command: grants verified in order (issuer, signature, key binding, expiry, epoch),
//! access levels, boundary-aware matching, attenuation, composition, and the epoch watermark
//! surviving a restart.

use continuum::access::{check, Access, Caller};
use continuum::alloy::proof::PluginSpec;
use continuum::grants::{self, Grant, GrantError};
use continuum::install::PackInput;
use continuum::keys::public_hex;
use continuum::paths::DataDir;
use continuum::{AlloyOptions, CallError, Host};
use continuum_tests::{cli, plugin_dir, stderr, stdout, TestHost};
use ed25519_dalek::SigningKey;
use serde_json::json;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn hex_of(seed: u8) -> String {
    public_hex(&key(seed).verifying_key())
}

/// A host with text, kv and json installed as signed alloys (so their access levels apply).
fn node() -> TestHost {
    let h = TestHost::with(&[]);
    let caps: Vec<String> = ["host:log", "host:store", "host:commands", "host:events"].map(String::from).to_vec();
    continuum::trust::add(&h.host.core().db(), &hex_of(1), "publisher", &caps).unwrap();
    let dir = h.dir.path().join("alloys");
    std::fs::create_dir_all(&dir).unwrap();
    for p in ["text", "kv", "json"] {
        let d = plugin_dir(p);
        let input = PackInput {
            wasm: d.join(format!("{p}.wasm")),
            wit: Some(d.join("wit")),
            spec: Some(PluginSpec::read(&d.join("plugin.toml")).unwrap()),
            ..Default::default()
        };
        let path = dir.join(format!("{p}.alloy"));
        h.host.pack(&input, &key(1)).unwrap().write(&path).unwrap();
        h.host.install_alloy(&path, AlloyOptions::default()).unwrap();
    }
    h
}

fn refused(h: &TestHost, token: &str, presenter: &str) -> GrantError {
    h.host.caller_presenting(token, presenter).expect_err("must be refused")
}

fn later() -> i64 {
    continuum::now_secs() + 3600
}

#[test]
fn every_bad_grant_is_refused_with_its_reason() {
    let h = node();
    let alice = hex_of(2);
    let token = h.host.issue_grant(&alice, &["kv/".into()], later()).unwrap();
    assert!(h.host.caller_presenting(&token, &alice).is_ok());

    assert!(matches!(refused(&h, "garbage", &alice), GrantError::Malformed(_)));
    assert!(matches!(refused(&h, "cgt1.!!!", &alice), GrantError::Malformed(_)));

    // Forged: the caps inside the signed payload changed.
    let body = token.strip_prefix(grants::PREFIX).unwrap();
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let json = String::from_utf8(engine.decode(body).unwrap()).unwrap();
    let forged = format!("{}{}", grants::PREFIX, engine.encode(json.replace("kv/", "js/")));
    assert_eq!(refused(&h, &forged, &alice), GrantError::BadSignature(0));

    // Issued by someone else's key.
    let foreign = grants::issue(&key(9), &key(2).verifying_key(), &["kv/".into()], later(), 1);
    assert!(matches!(refused(&h, &foreign, &alice), GrantError::WrongIssuer(_)));

    // Presented by a different key than it is bound to.
    assert!(matches!(refused(&h, &token, &hex_of(3)), GrantError::KeyMismatch { .. }));

    // Expired.
    let bob = hex_of(4);
    let expired = h.host.issue_grant(&bob, &["kv/".into()], continuum::now_secs() - 1).unwrap();
    assert!(matches!(refused(&h, &expired, &bob), GrantError::Expired(_)));

    // Replayed: a newer grant to alice supersedes the first.
    let newer = h.host.issue_grant(&alice, &["kv/get".into()], later()).unwrap();
    assert_eq!(refused(&h, &token, &alice), GrantError::Replayed { epoch: 1, seen: 2 });
    assert!(h.host.caller_presenting(&newer, &alice).is_ok());

    // Revoked: a higher epoch with no capabilities.
    h.host.revoke_grants(&alice).unwrap();
    assert_eq!(refused(&h, &newer, &alice), GrantError::Revoked(3));
    // A revoked key is blocked: it may call nothing, not even public commands…
    let blocked = h.host.caller_for(&alice).unwrap();
    assert!(h.host.commands_for(&blocked).unwrap().is_empty());
    match h.host.call(&blocked, "text/stats", &json!({ "text": "x" })).result {
        Err(CallError::Denied { reason, .. }) => assert!(reason.contains("blocked"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // …until the owner grants it again (a higher epoch).
    let fresh = h.host.issue_grant(&alice, &["kv/get".into()], later()).unwrap();
    assert!(h.host.caller_presenting(&fresh, &alice).is_ok());
    assert!(!h.host.commands_for(&h.host.caller_for(&alice).unwrap()).unwrap().is_empty());
}

#[test]
fn matching_is_boundary_aware_and_owner_commands_are_never_conferred() {
    let grant = |caps: &[&str]| Caller::Key {
        key: hex_of(2),
        grant: Some(std::sync::Arc::new(Grant {
            id: "x".into(),
            root: hex_of(2),
            holder: hex_of(2),
            caps: caps.iter().map(|c| c.to_string()).collect(),
            expires: later(),
            epoch: 1,
            issued: 0,
            budget: None,
        })),
    };
    let summarize = grant(&["text/summarize"]);
    assert!(check(&summarize, "text/summarize", Access::Granted).is_ok());
    assert!(check(&summarize, "text/summarize/stream", Access::Granted).is_ok());
    let e = check(&summarize, "text/summarizex", Access::Granted).unwrap_err();
    assert!(e.contains("does not confer `text/summarizex`"), "{e}");
    let e = check(&grant(&["kv/"]), "kv/delete", Access::Owner).unwrap_err();
    assert!(e.contains("owner-only"), "{e}");
    assert!(check(&Caller::Key { key: hex_of(2), grant: None }, "text/stats", Access::Public).is_ok());
    assert!(check(&Caller::Key { key: hex_of(2), grant: None }, "kv/get", Access::Granted).is_err());

    let h = node();
    let token = h.host.issue_grant(&hex_of(2), &["kv/".into()], later()).unwrap();
    let alice = h.host.caller_presenting(&token, &hex_of(2)).unwrap();
    let call = |name: &str, params| h.host.call(&alice, name, &params).result;
    assert_eq!(call("kv/incr", json!({ "key": "n" })).unwrap(), json!(1));
    match call("kv/delete", json!({ "key": "n" })) {
        Err(CallError::Denied { reason, .. }) => assert!(reason.contains("owner-only"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn listed_equals_callable_for_every_caller() {
    let h = node();
    let alice = h.host.issue_grant(&hex_of(2), &["kv/get".into(), "json/map".into()], later()).unwrap();
    let callers = [
        Caller::owner(),
        h.host.caller_for(&hex_of(5)).unwrap(),
        h.host.caller_presenting(&alice, &hex_of(2)).unwrap(),
    ];
    let all: Vec<String> = h.host.commands().unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(all.len(), 12);
    for caller in &callers {
        let listed: Vec<String> = h.host.commands_for(caller).unwrap().into_iter().map(|c| c.name).collect();
        for name in &all {
            // Params that are invalid for every command: a permitted call fails on params, a
            // forbidden one on permission — before anything runs.
            let r = h.host.call(caller, name, &json!({ "not-a-field": 1 })).result;
            let denied = matches!(r, Err(CallError::Denied { .. }));
            assert_eq!(listed.contains(name), !denied, "{caller:?} {name}: {r:?}");
        }
    }
}

#[test]
fn composition_cannot_escalate() {
    let h = node();
    let token = h.host.issue_grant(&hex_of(2), &["json/map".into()], later()).unwrap();
    let alice = h.host.caller_presenting(&token, &hex_of(2)).unwrap();
    // json/map may call public commands for alice…
    let ok = h
        .host
        .call(&alice, "json/map", &json!({ "command": "text/convert-case", "field": "text", "items": ["a b"], "extra": "{\"to\":\"upper\"}" }))
        .result
        .unwrap();
    assert_eq!(ok, json!(["\"A B\""]));
    // …but not kv/get, which alice was not granted, although json/map itself was.
    match h.host.call(&alice, "json/map", &json!({ "command": "kv/get", "field": "key", "items": ["n"] })).result {
        Err(CallError::CommandFailed { error, .. }) => {
            let e = error.as_str().unwrap();
            assert!(
                e.contains("kv/get: permission denied")
                    && !e.contains("needs a grant")
                    && e.contains("does not confer `kv/get`"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The owner, composing the same way, may.
    assert!(h
        .host
        .call(&Caller::owner(), "json/map", &json!({ "command": "kv/get", "field": "key", "items": ["n"] }))
        .result
        .is_ok());
}

#[test]
fn attenuated_tokens_stay_within_the_original() {
    let h = node();
    let (alice, bob) = (key(2), key(3));
    let token = h.host.issue_grant(&hex_of(2), &["kv/".into()], later()).unwrap();
    let narrower =
        grants::attenuate(&token, &alice, &bob.verifying_key(), &["kv/get".into()], later() + 99_999).unwrap();
    let as_bob = h.host.caller_presenting(&narrower, &hex_of(3)).unwrap();
    let Caller::Key { grant: Some(g), .. } = &as_bob else { panic!() };
    assert_eq!(g.caps, ["kv/get"]);
    assert!(g.expires <= later(), "expiry is capped at the original's");
    assert!(h.host.call(&as_bob, "kv/get", &json!({ "key": "x" })).result.is_ok());
    assert!(matches!(
        h.host.call(&as_bob, "kv/put", &json!({ "key": "x", "value": { "flag": true } })).result,
        Err(CallError::Denied { .. })
    ));
    // Only bob may present it; alice cannot widen it, and a stranger cannot attenuate it.
    assert!(matches!(refused(&h, &narrower, &hex_of(2)), GrantError::KeyMismatch { .. }));
    assert!(matches!(
        grants::attenuate(&token, &alice, &bob.verifying_key(), &["json/".into()], later()),
        Err(GrantError::Widened(1))
    ));
    assert!(matches!(
        grants::attenuate(&token, &key(7), &bob.verifying_key(), &["kv/get".into()], later()),
        Err(GrantError::KeyMismatch { .. })
    ));
    // Revoking alice revokes what she handed on.
    h.host.revoke_grants(&hex_of(2)).unwrap();
    assert!(matches!(refused(&h, &narrower, &hex_of(3)), GrantError::Revoked(_)));
}

#[test]
fn the_epoch_watermark_survives_a_restart() {
    let TestHost { dir: home, host } = node();
    let dir = home.path().to_path_buf();
    let alice = hex_of(2);
    let first = host.issue_grant(&alice, &["kv/".into()], later()).unwrap();
    let second = host.issue_grant(&alice, &["kv/".into()], later()).unwrap();
    drop(host);
    // A new host process on the same data dir still refuses the superseded grant…
    let out = cli(&dir, &["run", "--as", &first, "kv/get", "--key", "a"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("older than epoch 2"), "{}", stderr(&out));
    let out = cli(&dir, &["run", "--as", &second, "kv/get", "--key", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // …and a revocation made by one process holds in the next.
    let out = cli(&dir, &["grant", "revoke", &alice]);
    assert!(stdout(&out).contains("epoch is now 3"), "{}", stdout(&out));
    let again = Host::open(DataDir::at(dir.clone()).unwrap()).unwrap();
    assert_eq!(again.caller_presenting(&second, &alice).unwrap_err(), GrantError::Revoked(3));
    let out = cli(&dir, &["commands", "--as", &second]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
}

#[test]
fn the_cli_issues_lists_and_attenuates() {
    let home = tempfile::tempdir().unwrap();
    let d = home.path();
    for p in ["text", "kv"] {
        let out = cli(d, &["plugin", "install", plugin_dir(p).to_str().unwrap(), "--allow", "all"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let run = |args: &[&str]| {
        let out = cli(d, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    let alice = run(&["key", "generate", "alice"]);
    let bob = run(&["key", "generate", "bob"]);
    let token = run(&["grant", "issue", "--to", &alice, "--cap", "kv/", "--expires", "1h"]);
    assert!(token.starts_with("cgt1."));
    let listed = run(&["commands", "--as", &token]);
    assert!(
        listed.contains("kv/incr") && !listed.contains("text/stats"),
        "dev installs default to `granted`: {listed}"
    );
    assert_eq!(run(&["run", "--as", &token, "kv/incr", "--key", "n"]), "1");
    let out = cli(d, &["run", "--as", &token, "text/stats", "--text", "x"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("does not confer `text/stats`"), "{}", stderr(&out));
    let narrower =
        run(&["grant", "attenuate", &token, "--key", "alice", "--to", &bob, "--cap", "kv/get", "--expires", "10m"]);
    assert_eq!(run(&["commands", "--as", &narrower]), run(&["commands", "--as", &narrower]));
    assert!(run(&["commands", "--as", &narrower]).starts_with("kv/get"));
    assert!(run(&["grant", "list"]).contains("live"));
    let out = cli(d, &["grant", "issue", "--to", &alice, "--cap", "kv/", "--expires", "soon"]);
    assert!(stderr(&out).contains("is not a duration"), "{}", stderr(&out));
    let out = cli(d, &["run", "--as", "cgt1.garbage", "kv/get", "--key", "n"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("malformed grant"), "{}", stderr(&out));
}
