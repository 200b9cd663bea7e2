//! Signed alloys: the round trip pack → inspect → verify → install → run, attestations, the
//! chain of custody, and every bad input refused with its own reason before anything changes.

use std::path::{Path, PathBuf};

use continuum::alloy::custody::{Chain, Stage};
use continuum::alloy::manifest::Expect;
use continuum::alloy::proof::PluginSpec;
use continuum::alloy::{Alloy, Reason, Refusal};
use continuum::install::PackInput;
use continuum::keys::public_hex;
use continuum::{AlloyOptions, CallError};
use continuum_tests::{cli, plugin_dir, stderr, stdout, TestHost};
use ed25519_dalek::SigningKey;
use serde_json::json;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn pack_input(plugin: &str, version: Option<&str>) -> PackInput {
    let d = plugin_dir(plugin);
    PackInput {
        wasm: d.join(format!("{plugin}.wasm")),
        wit: Some(d.join("wit")),
        spec: Some(PluginSpec::read(&d.join("plugin.toml")).unwrap()),
        provenance: serde_json::from_str(&std::fs::read_to_string(d.join("provenance.json")).unwrap()).unwrap(),
        version: version.map(String::from),
    }
}

/// A host that trusts `key(1)`, and a folder for artifacts.
fn setup() -> (TestHost, tempfile::TempDir) {
    let h = TestHost::with(&[]);
    let caps: Vec<String> = ["host:log", "host:store", "host:commands", "host:events"].map(String::from).to_vec();
    continuum::trust::add(&h.host.core().db(), &public_hex(&key(1).verifying_key()), "publisher", &caps).unwrap();
    (h, tempfile::tempdir().unwrap())
}

fn packed(h: &TestHost, dir: &Path, plugin: &str, version: Option<&str>) -> (Alloy, PathBuf) {
    let alloy = h.host.pack(&pack_input(plugin, version), &key(1)).unwrap();
    let path = dir.join(format!("{plugin}-{}.alloy", alloy.manifest.identity.version));
    alloy.write(&path).unwrap();
    (alloy, path)
}

/// Edits the manifest and signs the result again with `signer` (a fresh, valid chain).
fn resign(alloy: &Alloy, signer: &SigningKey, edit: impl FnOnce(&mut continuum::alloy::manifest::Manifest)) -> Alloy {
    let mut manifest = alloy.manifest.clone();
    edit(&mut manifest);
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let mut chain = Chain::default();
    chain.append(signer, &manifest_bytes, Stage::Sign, json!({}));
    Alloy { manifest_bytes, manifest, component: alloy.component.clone(), chain }
}

fn write(dir: &Path, name: &str, alloy: &Alloy) -> PathBuf {
    let p = dir.join(name);
    alloy.write(&p).unwrap();
    p
}

/// What must not change when an install is refused.
fn snapshot(h: &TestHost) -> (Vec<(String, Option<String>, String)>, usize) {
    let plugins = h.host.plugins().unwrap().into_iter().map(|p| (p.name, p.version, p.digest)).collect();
    let files = std::fs::read_dir(h.dir.path().join("components")).unwrap().count();
    (plugins, files)
}

/// Installing `path` is refused for `reason`; nothing changes; with `before_compile`, the
/// component was not even compiled.
fn refused(h: &TestHost, path: &Path, options: &AlloyOptions, reason: Reason, before_compile: bool) -> String {
    let before = snapshot(h);
    let compiled = h.host.core().compilations();
    let err = h.host.install_alloy(path, options.clone()).expect_err("must be refused");
    let refusal = err.downcast_ref::<Refusal>().unwrap_or_else(|| panic!("not a refusal: {err:#}"));
    assert_eq!(refusal.reason, reason, "{refusal}");
    assert_eq!(snapshot(h), before, "a refused install changed the host");
    if before_compile {
        assert_eq!(h.host.core().compilations(), compiled, "refused only after compiling: {refusal}");
    }
    refusal.to_string()
}

#[test]
fn round_trip_pack_inspect_verify_install_run() {
    let (h, dir) = setup();
    let (alloy, path) = packed(&h, dir.path(), "kv", None);
    let m = &alloy.manifest;
    assert_eq!((m.identity.name.as_str(), m.identity.version.as_str()), ("kv", "0.1.0"));
    assert_eq!(m.identity.author, public_hex(&key(1).verifying_key()));
    assert_eq!(m.proof.results.len(), 4);
    assert!(m.proof.results.iter().all(|r| r.passed));
    assert!(m.interface.capabilities.contains(&"continuum:host/store@0.1.0".to_string()));
    assert!(m.interface.wit.packages[0].files.contains_key("kv.wit"));
    assert!(m.provenance.source_digest.as_deref().unwrap().starts_with("sha256:"));
    let stages: Vec<Stage> = alloy.chain.verify(&alloy.manifest_bytes).unwrap().iter().map(|e| e.stage).collect();
    assert_eq!(stages, [Stage::Source, Stage::Build, Stage::Sign]);

    // The file reads back byte for byte.
    let read = Alloy::read(&path).unwrap();
    assert_eq!(
        (read.manifest_bytes, read.component, read.chain),
        (alloy.manifest_bytes.clone(), alloy.component.clone(), alloy.chain.clone())
    );

    let verified = h.host.verify_alloy(&alloy).unwrap();
    assert_eq!(verified.trusted_as.as_deref(), Some("publisher"));
    assert_eq!(verified.results.len(), 4);

    let record = h.host.install_alloy(&path, AlloyOptions::default()).unwrap();
    assert_eq!(
        (record.version.as_deref(), record.signer.as_deref()),
        (Some("0.1.0"), Some(m.identity.author.as_str()))
    );
    // The proof suite ran in a scratch store: the installed plugin starts empty.
    assert_eq!(h.call("kv/get", json!({ "key": "counter" })).unwrap(), json!(null));
    assert_eq!(h.call("kv/incr", json!({ "key": "counter" })).unwrap(), json!(1));
    let db = h.host.core().log_db().unwrap();
    let installed = continuum::eventlog::entries(&db, 0, Some("plugin.installed"), 10).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&installed[0].payload).unwrap()["version"], "0.1.0");
    let leftovers: i64 = db.query_row("SELECT count(*) FROM kv WHERE plugin LIKE 'proof:%'", [], |r| r.get(0)).unwrap();
    assert_eq!(leftovers, 0);
}

#[test]
fn a_second_signer_attests_and_the_chain_detects_tampering() {
    let (h, dir) = setup();
    let (mut alloy, _) = packed(&h, dir.path(), "text", None);
    let auditor = key(2);
    let verified = h.host.attest(&mut alloy, &auditor).unwrap();
    assert!(verified.results.iter().all(|r| r.passed));
    let path = write(dir.path(), "attested.alloy", &alloy);
    let reread = Alloy::read(&path).unwrap();
    let entries = h.host.verify_alloy(&reread).unwrap().entries;
    let evaluate = entries.last().unwrap();
    assert_eq!(evaluate.stage, Stage::Evaluate);
    assert_eq!(evaluate.actor, public_hex(&auditor.verifying_key()));
    assert_eq!(evaluate.statement["passed"], 5);
    h.host.install_alloy(&path, AlloyOptions::default()).unwrap();

    let mut removed = reread.clone();
    removed.chain.remove(1);
    assert_eq!(h.host.verify_alloy(&removed).unwrap_err().reason, Reason::BrokenChain);
    let mut reordered = reread.clone();
    reordered.chain.swap(2, 3);
    assert_eq!(h.host.verify_alloy(&reordered).unwrap_err().reason, Reason::BrokenChain);
    let mut edited = reread.clone();
    let line = edited.chain.line(3).replacen("\\\"passed\\\":5", "\\\"passed\\\":6", 1);
    assert_ne!(line, edited.chain.line(3));
    edited.chain.replace(3, line);
    assert_eq!(h.host.verify_alloy(&edited).unwrap_err().reason, Reason::BadSignature);
    let mut dropped_attestation = reread.clone();
    dropped_attestation.chain.remove(3);
    assert!(h.host.verify_alloy(&dropped_attestation).is_ok(), "a shorter chain that ends at a valid entry is valid");
}

#[test]
fn every_bad_artifact_is_refused_with_its_reason() {
    let (h, dir) = setup();
    let d = dir.path();
    let (good, good_path) = packed(&h, d, "text", None);
    let no = AlloyOptions::default();

    let mut component = good.clone();
    let mid = component.component.len() / 2;
    component.component[mid] ^= 0x01;
    let msg = refused(&h, &write(d, "component.alloy", &component), &no, Reason::DigestMismatch, true);
    assert!(msg.contains("component.wasm is sha256:"), "{msg}");

    let mut manifest = good.clone();
    let text = String::from_utf8(manifest.manifest_bytes.clone()).unwrap().replacen("Text utilities", "Text tools", 1);
    manifest.manifest_bytes = text.into_bytes();
    let msg = refused(&h, &write(d, "manifest.alloy", &manifest), &no, Reason::BadSignature, true);
    assert!(msg.contains("altered after it was signed"), "{msg}");

    let stranger = resign(&good, &key(3), |m| m.identity.author = public_hex(&key(3).verifying_key()));
    let msg = refused(&h, &write(d, "stranger.alloy", &stranger), &no, Reason::UntrustedSigner, true);
    assert!(msg.contains("continuum trust add"), "{msg}");

    let wrong_key = resign(&good, &key(3), |_| {});
    let msg = refused(&h, &write(d, "wrongkey.alloy", &wrong_key), &no, Reason::WrongSigner, true);
    assert!(msg.contains("signed by"), "{msg}");

    let bytes = std::fs::read(&good_path).unwrap();
    let truncated = d.join("truncated.alloy");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let msg = refused(&h, &truncated, &no, Reason::Malformed, true);
    assert!(msg.contains("truncated"), "{msg}");
    let junk = d.join("junk.alloy");
    std::fs::write(&junk, b"definitely not a tar file").unwrap();
    refused(&h, &junk, &no, Reason::Malformed, true);

    let oversized = d.join("oversized.alloy");
    std::fs::File::create(&oversized).unwrap().set_len(continuum::alloy::MAX_ALLOY_BYTES + 1).unwrap();
    let msg = refused(&h, &oversized, &no, Reason::TooLarge, true);
    assert!(msg.contains("limited to 300 MiB"), "{msg}");

    let digest = resign(&good, &key(1), |m| m.identity.digest = format!("sha256:{}", "0".repeat(64)));
    refused(&h, &write(d, "digest.alloy", &digest), &no, Reason::DigestMismatch, true);

    let dup = resign(&good, &key(1), |m| {
        let first = m.interface.commands[0].clone();
        m.interface.commands.push(first);
    });
    let msg = refused(&h, &write(d, "dup.alloy", &dup), &no, Reason::DuplicateCommand, true);
    assert!(msg.contains("`text/stats` more than once"), "{msg}");

    let caps = resign(&good, &key(1), |m| m.interface.capabilities.retain(|c| !c.starts_with("continuum:host/log")));
    let msg = refused(&h, &write(d, "caps.alloy", &caps), &no, Reason::CapabilityMismatch, true);
    assert!(msg.contains("continuum:host/log"), "{msg}");

    let iface = resign(&good, &key(1), |m| m.interface.commands[0].description = Some("Does something else.".into()));
    refused(&h, &write(d, "iface.alloy", &iface), &no, Reason::InterfaceMismatch, false);

    let failing = resign(&good, &key(1), |m| m.proof.cases[1].expect = Expect::Output(json!("HELLO-BIG-WORLD")));
    let msg = refused(&h, &write(d, "failing.alloy", &failing), &no, Reason::ProofFailed, false);
    assert!(msg.contains("convert-case makes kebab-case") && msg.contains("\"hello-big-world\""), "{msg}");

    // The good artifact still installs after all of that.
    h.host.install_alloy(&good_path, no.clone()).unwrap();
    refused(&h, &good_path, &no, Reason::AlreadyInstalled, true);
}

#[test]
fn upgrades_move_forward_and_rollbacks_need_an_override() {
    let (h, dir) = setup();
    let (_, v1) = packed(&h, dir.path(), "json", Some("1.0.0"));
    let (_, v2) = packed(&h, dir.path(), "json", Some("1.1.0"));
    let upgrade = AlloyOptions { upgrade: true, ..Default::default() };
    refused(&h, &v2, &upgrade, Reason::NotInstalled, true);
    h.host.install_alloy(&v1, AlloyOptions::default()).unwrap();
    assert_eq!(h.host.install_alloy(&v2, upgrade.clone()).unwrap().version.as_deref(), Some("1.1.0"));
    let msg = refused(&h, &v1, &upgrade, Reason::Rollback, true);
    assert!(msg.contains("1.1.0 is installed") && msg.contains("--allow-downgrade"), "{msg}");
    let back = h.host.install_alloy(&v1, AlloyOptions { allow_downgrade: true, ..upgrade }).unwrap();
    assert_eq!(back.version.as_deref(), Some("1.0.0"));
    assert_eq!(h.call("json/query", json!({ "document": "[7]", "path": "[0]" })).unwrap(), json!("7"));
}

#[test]
fn untrusted_signers_install_only_with_the_override() {
    let h = TestHost::with(&[]);
    let alloy = h.host.pack(&pack_input("text", None), &key(9)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "text.alloy", &alloy);
    refused(&h, &path, &AlloyOptions::default(), Reason::UntrustedSigner, true);
    let err = h.host.install_alloy(&path, AlloyOptions { allow_untrusted: true, ..Default::default() }).unwrap_err();
    let needed =
        err.downcast_ref::<continuum::host_api::NotApproved>().expect("untrusted publishers get no pre-approval");
    assert_eq!(needed.missing, ["host:log"]);
    let options = AlloyOptions { allow_untrusted: true, allow: vec!["host:log".into()], ..Default::default() };
    let record = h.host.install_alloy(&path, options).unwrap();
    assert_eq!(record.signer.unwrap(), public_hex(&key(9).verifying_key()));
    match h.call("text/find", json!({ "text": "a", "pattern": "", "options": [] })) {
        Err(CallError::CommandFailed { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_cli_packs_verifies_attests_installs_and_inspects() {
    let home = tempfile::tempdir().unwrap();
    let d = home.path();
    let run = |args: &[&str]| {
        let out = cli(d, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let publisher = run(&["key", "generate", "publisher"]).trim().to_string();
    assert_eq!(publisher.len(), 64);
    assert!(run(&["key", "list"]).contains("node"));
    assert_eq!(run(&["key", "export", "publisher"]).trim(), publisher);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("keys/publisher.ed25519")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let alloy = d.join("text.alloy");
    let alloy_s = alloy.to_str().unwrap();
    let packed = run(&["plugin", "pack", plugin_dir("text").to_str().unwrap(), "--key", "publisher", "-o", alloy_s]);
    assert!(packed.contains("packed text 0.1.0") && packed.contains("5 proof cases passed"), "{packed}");

    let out = cli(d, &["plugin", "install", alloy_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refused (untrusted-signer)"), "{}", stderr(&out));

    let verify = run(&["plugin", "verify", alloy_s]);
    assert!(verify.contains("verified") && verify.contains("NOT in the trust store"), "{verify}");
    run(&["trust", "add", &publisher, "--name", "first-party", "--approve", "host:log"]);
    assert!(run(&["trust", "list"]).contains("first-party"));
    run(&["key", "generate", "auditor"]);
    let attested = run(&["plugin", "attest", alloy_s, "--key", "auditor"]);
    assert!(attested.contains("4 chain entries"), "{attested}");
    let inspect = run(&["plugin", "inspect", alloy_s]);
    assert!(
        inspect.contains("evaluate")
            && inspect.contains("trusted as `first-party`")
            && inspect.contains("continuum:host/log@0.1.0"),
        "{inspect}"
    );

    assert!(run(&["plugin", "install", alloy_s]).contains("installed text 0.1.0"));
    let inspect = run(&["plugin", "inspect", "text"]);
    assert!(inspect.contains("version:   0.1.0") && inspect.contains("4. evaluate"), "{inspect}");
    assert!(run(&["plugin", "list"]).contains("0.1.0"));
    assert_eq!(run(&["run", "text/convert-case", "--text", "a b", "--to", "upper"]).trim(), "\"A B\"");
    run(&["trust", "remove", "first-party"]);
    assert!(run(&["trust", "list"]).contains("no trusted publishers"));
}

#[test]
fn capabilities_need_approval_and_upgrades_keep_only_what_was_approved() {
    let h = TestHost::with(&[]);
    // A trusted publisher without pre-approvals: trust alone grants no capabilities.
    continuum::trust::add(&h.host.core().db(), &public_hex(&key(1).verifying_key()), "publisher", &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_, v1) = packed(&h, dir.path(), "kv", Some("1.0.0"));
    let (_, v2) = packed(&h, dir.path(), "kv", Some("1.1.0"));
    let err = h.host.install_alloy(&v1, AlloyOptions::default()).unwrap_err();
    let needed = err.downcast_ref::<continuum::host_api::NotApproved>().unwrap();
    assert_eq!(needed.missing, ["host:events", "host:store"]);
    assert!(h.host.plugins().unwrap().is_empty());

    let allow = AlloyOptions { allow: vec!["host:store".into(), "host:events".into()], ..Default::default() };
    h.host.install_alloy(&v1, allow).unwrap();
    assert_eq!(h.call("kv/incr", json!({ "key": "n" })).unwrap(), json!(1));
    // An upgrade keeps earlier approvals…
    let upgrade = AlloyOptions { upgrade: true, ..Default::default() };
    h.host.install_alloy(&v2, upgrade.clone()).unwrap();
    // …but a capability the operator withdrew must be approved again.
    h.host.deny("kv", &["host:events".into()]).unwrap();
    match h.call("kv/put", json!({ "key": "a", "value": { "flag": true } })) {
        Err(CallError::Host { message, .. }) => assert!(message.contains("plugin allow kv host:events"), "{message}"),
        other => panic!("{other:?}"),
    }
    let err = h.host.install_alloy(&v2, upgrade.clone()).unwrap_err();
    assert_eq!(err.downcast_ref::<continuum::host_api::NotApproved>().unwrap().missing, ["host:events"]);
    h.host.allow("kv", &["host:events".into()]).unwrap();
    h.call("kv/put", json!({ "key": "a", "value": { "flag": true } })).unwrap();
    let e = h.host.allow("kv", &["host:commands".into()]).unwrap_err().to_string();
    assert!(e.contains("does not request `host:commands`"), "{e}");
    let e = h.host.allow("kv", &["host:everything".into()]).unwrap_err().to_string();
    assert!(e.contains("unknown capability `host:everything`"), "{e}");
}
