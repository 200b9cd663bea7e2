//! Attacks: grants (see mod.rs) — tokens (revocation through attenuation, the verification
//! cache), the data directory's files, and inference budgets shared down nested calls.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use continuum::alloy::custody::sha256_hex;
use continuum::grants::{self, Claims, GrantError, VERIFIED_CAPACITY};
use continuum::keys::{public_hex, KeyStore};
use continuum::CallError;
use continuum_tests::{binary, cli, plugin_dir, stderr, stdout, TestHost, ONE_THREAD};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

fn later() -> i64 {
    continuum::now_secs() + 3600
}

/// `token` with one more block, signed by `holder`, that hands `to` no capabilities at all:
/// what `grant attenuate` refuses to make, built by hand as an attacker would.
fn attenuated_to_nothing(token: &str, holder: &SigningKey, to: &str, expires: i64) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let body = b64.decode(token.strip_prefix(grants::PREFIX).expect("a cgt1 token")).unwrap();
    let mut parsed: Value = serde_json::from_slice(&body).unwrap();
    let blocks = parsed["blocks"].as_array_mut().unwrap();
    let previous = blocks.last().unwrap()["payload"].as_str().unwrap().to_string();
    let claims = Claims {
        issuer: None,
        grantee: to.to_string(),
        caps: vec![],
        expires,
        issued: 0,
        epoch: 0,
        id: sha256_hex(previous.as_bytes()),
        budget: None,
    };
    let payload = serde_json::to_string(&claims).unwrap();
    let signature = holder.sign(&[grants::DOMAIN, payload.as_bytes()].concat());
    let signature: String = signature.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    blocks.push(json!({ "payload": payload, "signature": signature }));
    format!("{}{}", grants::PREFIX, b64.encode(serde_json::to_vec(&parsed).unwrap()))
}

/// Finding 5: a revoked key kept working with a token another grantee attenuated to it (even
/// one attenuated after the revocation), and an attenuation block granting nothing was read
/// as a revocation of the root grantee (or accepted as a grant).
#[test]
fn a_revoked_key_cannot_use_a_token_attenuated_to_it() {
    let home = tempfile::tempdir().unwrap();
    let d = home.path();
    let out = cli(d, &["plugin", "install", plugin_dir("kv").to_str().unwrap(), "--allow", "all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = |args: &[&str]| {
        let out = cli(d, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    let refused = |token: &str| {
        let out = cli(d, &["run", "--as", token, "kv/get", "--key", "n"]);
        assert_eq!(out.status.code(), Some(5), "must be refused: {}{}", stdout(&out), stderr(&out));
        stderr(&out)
    };
    let alice = run(&["key", "generate", "alice"]);
    let mallory = run(&["key", "generate", "mallory"]);
    let carol = run(&["key", "generate", "carol"]);
    let token = run(&["grant", "issue", "--to", &alice, "--cap", "kv/", "--expires", "1h"]);

    // Revoked after the hand-over: the token mallory already held stops working.
    let before = run(&["grant", "attenuate", &token, "--key", "alice", "--to", &mallory, "--cap", "kv/get"]);
    run(&["run", "--as", &before, "kv/get", "--key", "n"]);
    run(&["grant", "revoke", &mallory]);
    let e = refused(&before);
    assert!(e.contains("revoked") && e.contains(&mallory[..16]), "{e}");

    // Revoked before it: a token alice mints for mallory afterwards is refused too…
    let after = run(&["grant", "attenuate", &token, "--key", "alice", "--to", &mallory, "--cap", "kv/get"]);
    assert!(refused(&after).contains("revoked"));
    // …and so is one mallory passes on to carol (a revoked key anywhere in the chain)…
    let through = run(&["grant", "attenuate", &after, "--key", "mallory", "--to", &carol, "--cap", "kv/get"]);
    let e = refused(&through);
    assert!(e.contains("revoked") && e.contains(&mallory[..16]), "{e}");
    // …while alice's own grant is untouched.
    run(&["run", "--as", &token, "kv/get", "--key", "n"]);

    // Only the owner's root block can revoke. A grant this host has not seen yet (issued by
    // another process, say) survives an attenuation block that grants nothing, and that block
    // is refused, not taken for a grant.
    let h = TestHost::with(&[]);
    let owner = KeyStore::new(h.dir.path().join("keys")).node().unwrap();
    let (alice, bob) = (SigningKey::from_bytes(&[2; 32]), SigningKey::from_bytes(&[3; 32]));
    let (alice_hex, bob_hex) = (public_hex(&alice.verifying_key()), public_hex(&bob.verifying_key()));
    let expires = later();
    let unseen = grants::issue(&owner, &alice.verifying_key(), &["kv/".into()], expires, 1);
    let nothing = attenuated_to_nothing(&unseen, &alice, &bob_hex, expires);
    match h.host.caller_presenting(&nothing, &bob_hex) {
        Err(GrantError::Malformed(m)) => assert!(m.contains("grants no capabilities"), "{m}"),
        other => panic!("an attenuation granting nothing must be refused as malformed: {other:?}"),
    }
    assert!(h.host.caller_presenting(&unseen, &alice_hex).is_ok(), "alice's grant is not revoked by it");
}

/// Finding 7: 12 000 refused distinct attenuations grew the node from 51 to 388 MiB: each was
/// verified and cached (whole token text as the key, no bound) before the key-binding check.
/// A refused token must cost no cache entry, and accepted ones at most a fixed number.
#[test]
fn distinct_tokens_cannot_grow_the_grant_cache() {
    let h = TestHost::with(&[]);
    let alice = SigningKey::from_bytes(&[2; 32]);
    let alice_hex = public_hex(&alice.verifying_key());
    let stranger = SigningKey::from_bytes(&[9; 32]).verifying_key();
    // Far enough ahead that each of the distinct expiries below is still in the future.
    let expires = continuum::now_secs() + 86_400;
    let token = h.host.issue_grant(&alice_hex, &["kv/".into()], expires).unwrap();
    let state = h.host.core().grants();

    // Alice presents 12 000 distinct tokens bound to someone else: every one refused.
    for i in 0..12_000 {
        let other = grants::attenuate(&token, &alice, &stranger, &["kv/get".into()], expires - i).unwrap();
        let refused = h.host.caller_presenting(&other, &alice_hex);
        assert!(matches!(refused, Err(GrantError::KeyMismatch { .. })), "{refused:?}");
    }
    assert_eq!(state.cached(), 0, "refused tokens must leave nothing in the verification cache");

    // Distinct tokens that do verify fill the cache only up to its capacity.
    for i in 0..(VERIFIED_CAPACITY as i64 + 500) {
        let own = grants::attenuate(&token, &alice, &alice.verifying_key(), &["kv/get".into()], expires - i).unwrap();
        let accepted = h.host.caller_presenting(&own, &alice_hex);
        assert!(accepted.is_ok(), "{accepted:?}");
    }
    assert_eq!(state.cached(), VERIFIED_CAPACITY);
    assert!(h.host.caller_presenting(&token, &alice_hex).is_ok(), "an evicted token verifies again");
}

/// Runs `continuum --data-dir <data> <args>` under umask 002, which leaves new files
/// group-writable unless the host sets their modes itself.
fn with_umask_002(data: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .args(["-c", "umask 002 && exec \"$@\"", "sh"])
        .arg(binary())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("CONTINUUM_HOME")
        .output()
        .expect("run continuum under sh")
}

/// Fails unless group and others have no permission on `path`.
fn assert_private(path: &Path) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "{} is mode {mode:03o}: open to other users", path.display());
}

/// Finding 9: the data dir and `continuum.db` were world-readable (another local user read a
/// plugin's store), and under umask 002 `compiled/*.cwasm` were group-writable and loaded
/// unchecked (a swapped file ran).
#[test]
fn local_users_can_neither_read_the_data_dir_nor_swap_compiled_code() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    // A data dir and database open to everyone, as earlier versions left them.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("continuum.db"), b"").unwrap();
    std::fs::set_permissions(data.join("continuum.db"), Permissions::from_mode(0o644)).unwrap();
    for p in ["text", "kv"] {
        let out = with_umask_002(&data, &["plugin", "install", plugin_dir(p).to_str().unwrap(), "--allow", "all"]);
        assert!(out.status.success(), "install {p}: {}", stderr(&out));
    }
    let files =
        |sub: &str| -> Vec<PathBuf> { std::fs::read_dir(data.join(sub)).unwrap().map(|e| e.unwrap().path()).collect() };
    assert_private(&data);
    assert_private(&data.join("continuum.db"));
    for sub in ["components", "compiled"] {
        assert_private(&data.join(sub));
        for file in files(sub) {
            assert_private(&file);
        }
    }

    // Someone able to write the cache swaps text's precompiled code for kv's.
    let compiled_of = |plugin: &str| -> PathBuf {
        let wasm = std::fs::read(plugin_dir(plugin).join(format!("{plugin}.wasm"))).unwrap();
        let stored = files("components").into_iter().find(|f| std::fs::read(f).unwrap() == wasm).unwrap();
        let digest = stored.file_stem().unwrap().to_string_lossy().into_owned();
        let found =
            files("compiled").into_iter().find(|f| f.file_name().unwrap().to_string_lossy().starts_with(&digest));
        found.unwrap_or_else(|| panic!("no precompiled file for {plugin}"))
    };
    let (text, kv) = (compiled_of("text"), compiled_of("kv"));
    let written = std::fs::metadata(&text).unwrap().modified().unwrap();
    std::fs::copy(&kv, &text).unwrap();
    // A careful attacker sets the modification time back; the change time still moves.
    std::fs::File::options().write(true).open(&text).unwrap().set_modified(written).unwrap();
    let out = with_umask_002(&data, &["run", "text/convert-case", "--text", "a b", "--to", "upper"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "\"A B\"", "text ran its own code");
    assert!(stderr(&out).contains("is not the file this host wrote"), "the swap is reported: {}", stderr(&out));
    assert_ne!(std::fs::read(&text).unwrap(), std::fs::read(&kv).unwrap(), "text's precompiled file was rebuilt");
    assert_private(&text);
    let again = with_umask_002(&data, &["run", "text/convert-case", "--text", "a b", "--to", "upper"]);
    let rebuilt_loads = again.status.success() && !stderr(&again).contains("is not the file this host wrote");
    assert!(rebuilt_loads, "the rebuilt file loads: {}", stderr(&again));
}

/// Finding 16: each nested `commands.call` got a fresh inference token budget, so a command
/// could generate without bound by calling a generating command again and again (here
/// `json/map` over `llm/generate`). One budget per top-level call, shared down the nesting.
#[test]
fn nested_calls_share_the_top_level_calls_inference_budget() {
    let h = TestHost::with_config(&["json", "llm"], &format!("{ONE_THREAD}max-tokens-per-call = 8\n"));
    let model = h.dir.path().join("tiny.gguf");
    continuum_gpu::testmodel::write_tiny_llama(&model, 42).unwrap();
    h.host.core().engines().catalog().add("tiny", &model).unwrap();
    // Each top-level call has a budget of 8 tokens of its own…
    for _ in 0..2 {
        h.call("llm/generate", json!({ "prompt": "a", "raw": true, "max-tokens": 8 })).unwrap();
    }
    // …which three generations nested in one call cannot each have again.
    let extra = json!({ "raw": true, "max-tokens": 8 }).to_string();
    let params = json!({ "command": "llm/generate", "field": "prompt", "items": ["a", "b", "c"], "extra": extra });
    match h.call("json/map", params) {
        Err(CallError::CommandFailed { error, .. }) => {
            let e = error.as_str().unwrap_or_default();
            assert!(e.starts_with("item 1:") && e.contains("budget"), "{e}");
        }
        other => panic!("three nested generations of 8 tokens must not fit one budget of 8: {other:?}"),
    }
}
