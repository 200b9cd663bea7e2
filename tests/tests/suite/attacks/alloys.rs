//! Attacks: alloys (see mod.rs). Untrusted artifacts: proof runs that reach the owner's data, an
//! upgrade from another publisher, escape sequences on the terminal, training heads left behind,
//! and one signed artifact in many byte forms.

use std::path::Path;
use std::process::Output;

use continuum::alloy::custody::{Chain, Stage};
use continuum::alloy::manifest::{Expect, Manifest, ProofCase};
use continuum::alloy::Alloy;
use continuum::install::PackInput;
use continuum_tests::{cli, plugin_dir, real_models, stderr, stdout, Publisher, TestHost};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

/// The output of a command that must have succeeded.
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    stdout(o)
}

/// `kv/get` of `key` through the CLI on `h`'s data directory.
fn kv_get(h: &TestHost, key: &str) -> Value {
    serde_json::from_str(&ok(&h.cli(&["run", "--output", "json", "kv/get", "--key", key]))).unwrap()
}

/// The installed plugin `name` as `plugin list --json` shows it.
fn listed(h: &TestHost, name: &str) -> Value {
    let all: Vec<Value> = serde_json::from_str(&ok(&h.cli(&["plugin", "list", "--json"]))).unwrap();
    all.into_iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("`{name}` is not installed"))
}

/// `build/plugins/<plugin>` packed and signed by a stranger (a key no test host trusts), its
/// manifest then edited by `edit` and signed again: what an attacker can hand anyone.
fn strangers_alloy(plugin: &str, edit: impl FnOnce(&mut Manifest)) -> Alloy {
    let stranger = SigningKey::from_bytes(&[0x5a; 32]);
    let workshop = TestHost::with(&[]);
    let dir = plugin_dir(plugin);
    let built = PackInput::for_component(&dir.join(format!("{plugin}.wasm")), Some(&dir.join("wit"))).unwrap();
    let packed = workshop.host.pack(&PackInput { version: Some("0.1.0".into()), ..built }, &stranger).unwrap();
    let mut manifest = packed.manifest.clone();
    edit(&mut manifest);
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let mut chain = Chain::default();
    chain.append(&stranger, &manifest_bytes, Stage::Sign, json!({ "name": manifest.identity.name }));
    Alloy { manifest_bytes, manifest, component: packed.component, chain }
}

/// A proof case calling `command` with `input` that passes whenever the call returns a result.
fn case(name: &str, command: &str, input: Value) -> ProofCase {
    ProofCase {
        name: name.into(),
        command: command.into(),
        input,
        expect: Expect::Contains(String::new()),
        max_ms: None,
    }
}

/// Sets the checksum of the tar header `header` (512 bytes) after an edit.
fn fix_checksum(header: &mut [u8]) {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Where each of the three members' data starts in the alloy `bytes`, and its size.
fn members(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 0;
    (0..3)
        .map(|_| {
            let field = std::str::from_utf8(&bytes[at + 124..at + 136]).unwrap();
            let size = usize::from_str_radix(field.trim_matches(['\0', ' ']), 8).unwrap();
            let data = at + 512;
            at = data + size.div_ceil(512) * 512;
            (data, size)
        })
        .collect()
}

/// Finding 1: verifying, attesting or installing a stranger's alloy ran its proof cases as the
/// owner with every capability they asked for; a proof relaying `kv/delete` and `kv/put` through
/// `host:commands` rewrote the owner's data while `verify` printed "ok".
#[test]
fn verifying_a_strangers_alloy_cannot_touch_the_owners_data() {
    let h = TestHost::with(&["kv"]);
    ok(&h.cli(&["run", "kv/put", "--key", "secret", "--value", r#"{"text":"the owner's"}"#]));
    let owners = json!({ "text": "the owner's" });
    let relay = |command: &str, params: Value| json!({ "command": command, "params": params.to_string() });
    let cases = vec![
        case("relays a delete", "hostile/relay", relay("kv/delete", json!({ "key": "secret" }))),
        case(
            "relays a put",
            "hostile/relay",
            relay("kv/put", json!({ "key": "secret", "value": { "text": "rewritten by a stranger" } })),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.alloy");
    strangers_alloy("hostile", move |m| m.proof.cases = cases).write(&path).unwrap();
    let path = path.to_str().unwrap();

    // Untrusted: its proofs get no host capability at all, so the relay cannot even be made.
    let verify = h.cli(&["plugin", "verify", path]);
    assert_eq!(
        kv_get(&h, "secret"),
        owners,
        "verify let a stranger's proof change the owner's data: {}",
        stdout(&verify)
    );
    assert!(!verify.status.success(), "{}", stdout(&verify));
    assert!(stderr(&verify).contains("host:commands is not approved"), "{}", stderr(&verify));

    ok(&h.cli(&["key", "generate", "auditor"]));
    let attested = dir.path().join("attested.alloy");
    let attest = h.cli(&["plugin", "attest", path, "--key", "auditor", "-o", attested.to_str().unwrap()]);
    assert_eq!(kv_get(&h, "secret"), owners, "attest let a stranger's proof change the owner's data");
    assert!(!attest.status.success() && !attested.exists(), "{}", stdout(&attest));

    // Every capability approved: `host:commands` is linked, but the proof runs as a caller that
    // reaches nothing installed, and its refused nested calls are audited.
    let install = h.cli(&["plugin", "install", path, "--allow-untrusted", "--allow", "all"]);
    assert_eq!(kv_get(&h, "secret"), owners, "install let a stranger's proof change the owner's data");
    assert!(!install.status.success(), "{}", stdout(&install));
    assert!(stderr(&install).contains("permission denied"), "{}", stderr(&install));
    let db = h.host.core().log_db().unwrap();
    let denied: Vec<String> = continuum::eventlog::entries(&db, 0, Some("call.failed"), 1000)
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str::<Value>(&e.payload).unwrap())
        .filter(|p| p["caller"] == "proof:hostile" && p["outcome"] == "denied")
        .map(|p| p["command"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(denied, ["kv/delete", "kv/put"]);
}

/// Finding 6: `plugin upgrade` accepted a different publisher's alloy of the same name and
/// carried the old approvals and store over: a stranger's `kv` 0.2.0, installed with only
/// `--allow-untrusted`, inherited `host:store` and read the first publisher's data.
#[test]
fn a_new_publisher_cannot_take_over_an_installed_plugin_and_its_store() {
    let h = TestHost::with(&[]);
    let first = Publisher::new();
    first.install(h.dir.path(), &["kv"]);
    ok(&h.cli(&["run", "kv/put", "--key", "secret", "--value", r#"{"text":"the first publisher's"}"#]));
    let data = json!({ "text": "the first publisher's" });

    let stranger = Publisher::new();
    let v2 = stranger.dir.path().join("kv-0.2.0.alloy");
    let v2 = v2.to_str().unwrap();
    let kv = plugin_dir("kv");
    ok(&cli(
        stranger.dir.path(),
        &["plugin", "pack", kv.to_str().unwrap(), "--key", "publisher", "--version", "0.2.0", "-o", v2],
    ));
    let upgrade = |flags: &[&str]| h.cli(&[&["plugin", "upgrade", v2, "--allow-untrusted"][..], flags].concat());

    let refused = upgrade(&[]);
    assert!(!refused.status.success(), "another publisher's upgrade went through: {}", stdout(&refused));
    let e = stderr(&refused);
    assert!(e.contains("publisher-changed") && e.contains("--allow-new-publisher"), "{e}");
    assert!(e.contains(&first.key[..16]) && e.contains(&stranger.key[..16]), "the refusal names both signers: {e}");
    assert_eq!(kv_get(&h, "secret"), data);
    let kv = listed(&h, "kv");
    assert_eq!((kv["version"].as_str(), kv["signer"].as_str()), (Some("0.1.0"), Some(first.key.as_str())));

    // Asked for explicitly, the change still needs every capability approved afresh…
    let unapproved = upgrade(&["--allow-new-publisher"]);
    assert!(!unapproved.status.success(), "the old approvals carried over: {}", stdout(&unapproved));
    assert!(stderr(&unapproved).contains("host:store"), "{}", stderr(&unapproved));
    assert_eq!(kv_get(&h, "secret"), data);

    // …and the new publisher's plugin starts from an empty store.
    ok(&upgrade(&["--allow-new-publisher", "--allow", "all"]));
    let kv = listed(&h, "kv");
    assert_eq!((kv["version"].as_str(), kv["signer"].as_str()), (Some("0.2.0"), Some(stranger.key.as_str())));
    assert_eq!(kv["approved"], json!(["host:events", "host:store"]));
    assert_eq!(kv_get(&h, "secret"), Value::Null, "the new publisher read the first publisher's data");
}

/// Finding 11: escape sequences in an untrusted alloy's name and manifest fields, and in its tar
/// member names, reached the terminal raw in `install`, `verify` and `inspect`.
#[test]
fn escape_sequences_in_an_alloy_never_reach_the_terminal() {
    const ESCAPES: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m";
    let h = TestHost::with(&[]);
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("named.alloy");
    strangers_alloy("text", |m| {
        m.identity.name = format!("text{ESCAPES}");
        m.identity.description = Some(format!("Text utilities{ESCAPES}"));
        m.provenance.commit = Some(format!("abc{ESCAPES}"));
        m.interface.commands[0].description = Some(format!("Counts{ESCAPES}"));
    })
    .write(&named)
    .unwrap();
    let mut bytes = strangers_alloy("text", |_| {}).to_bytes().unwrap();
    let renamed = format!("alloy.json{}", &ESCAPES[..10]);
    bytes[..100].fill(0);
    bytes[..renamed.len()].copy_from_slice(renamed.as_bytes());
    fix_checksum(&mut bytes[..512]);
    let member = dir.path().join("member.alloy");
    std::fs::write(&member, bytes).unwrap();

    let clean = |args: &[&str], path: &Path| {
        let out = h.cli(&[args, &[path.to_str().unwrap()][..]].concat());
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let shown = String::from_utf8_lossy(text);
            assert!(
                !shown.contains(['\u{1b}', '\u{7}', '\u{9b}']),
                "{args:?} wrote an escape sequence to {stream}: {shown:?}"
            );
        }
        out
    };
    let refusing: [&[&str]; 3] =
        [&["plugin", "verify"], &["plugin", "install"], &["plugin", "install", "--allow-untrusted"]];
    for refusing in refusing {
        let out = clean(refusing, &named);
        assert!(!out.status.success(), "{refusing:?}: {}", stdout(&out));
        assert!(stderr(&out).contains("control character"), "{refusing:?}: {}", stderr(&out));
        let out = clean(refusing, &member);
        assert!(!out.status.success() && stderr(&out).contains("member 1 is"), "{refusing:?}: {}", stderr(&out));
    }
    assert!(stdout(&clean(&["plugin", "inspect"], &named)).contains("Counts"));
    assert!(stdout(&clean(&["plugin", "inspect", "--json"], &named)).contains("Text utilities"));
    clean(&["plugin", "inspect"], &member);
}

/// Finding 19: proof runs left the training heads they trained behind, and `plugin remove
/// --purge` left a plugin's heads too: only its store entries were deleted.
#[test]
fn purging_a_plugin_or_a_proof_run_leaves_no_training_heads() {
    let h = TestHost::with_config(&["classify"], continuum_tests::ONE_THREAD);
    let count = |sql: &str| -> i64 { h.host.core().db().query_row(sql, [], |r| r.get(0)).unwrap() };
    {
        let db = h.host.core().db();
        db.execute("INSERT INTO heads VALUES ('classify', 'sentiment', 'minilm', '{}', x'00', 0)", []).unwrap();
        db.execute("INSERT INTO kv VALUES ('classify', 'note', x'00')", []).unwrap();
    }
    ok(&h.cli(&["plugin", "remove", "classify", "--purge"]));
    assert_eq!(count("SELECT count(*) FROM heads WHERE plugin = 'classify'"), 0, "--purge left the plugin's heads");
    assert_eq!(count("SELECT count(*) FROM kv WHERE plugin = 'classify'"), 0);

    // A proof that trains a head: packing runs it, and so does verifying.
    let Some((_, embed)) = real_models() else { return };
    h.host.core().engines().catalog().add("minilm", &embed).unwrap();
    let project = tempfile::tempdir().unwrap();
    for file in ["classify.wasm", "plugin.toml", "provenance.json"] {
        std::fs::copy(plugin_dir("classify").join(file), project.path().join(file)).unwrap();
    }
    std::fs::create_dir(project.path().join("wit")).unwrap();
    for wit in std::fs::read_dir(plugin_dir("classify").join("wit")).unwrap() {
        let wit = wit.unwrap().path();
        std::fs::copy(&wit, project.path().join("wit").join(wit.file_name().unwrap())).unwrap();
    }
    let examples: Vec<Value> = [("a wonderful day", "good"), ("lovely and bright", "good"), ("great fun", "good")]
        .into_iter()
        .chain([("a terrible day", "bad"), ("awful and grey", "bad"), ("a dreadful mess", "bad")])
        .map(|(text, label)| json!({ "text": text, "label": label }))
        .collect();
    let input = json!({ "name": "scratch", "examples": examples, "epochs": 5 });
    let spec = std::fs::read_to_string(project.path().join("plugin.toml")).unwrap();
    let proof = format!(
        "\n[[proof]]\nname = \"trains a classifier\"\ncommand = \"classify/train\"\ninput = '{input}'\nexpect-contains = \"scratch\"\n"
    );
    std::fs::write(project.path().join("plugin.toml"), spec + &proof).unwrap();
    let publisher = ok(&h.cli(&["key", "generate", "publisher"])).trim().to_string();
    let alloy = project.path().join("classify.alloy");
    let alloy = alloy.to_str().unwrap();
    ok(&h.cli(&["plugin", "pack", project.path().to_str().unwrap(), "--key", "publisher", "-o", alloy]));
    assert_eq!(count("SELECT count(*) FROM heads WHERE plugin LIKE 'proof:%'"), 0, "packing left the proof's head");
    ok(&h.cli(&["trust", "add", &publisher, "--name", "publisher", "--approve", "host:training"]));
    ok(&h.cli(&["plugin", "verify", alloy]));
    assert_eq!(count("SELECT count(*) FROM heads WHERE plugin LIKE 'proof:%'"), 0, "verifying left the proof's head");
}

/// Also (canonical container): no signature covers an alloy's tar framing (header fields,
/// padding, what follows the end of the archive) or the framing of its last custody line, so
/// one signed artifact existed as many files with as many digests.
#[test]
fn a_signed_alloy_has_one_byte_form() {
    let h = TestHost::with(&[]);
    let original = std::fs::read(Publisher::new().alloy("text")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let verify = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        h.cli(&["plugin", "verify", path.to_str().unwrap()])
    };
    ok(&verify("original.alloy", &original));

    let (data, size) = *members(&original).iter().find(|(_, size)| size % 512 != 0).expect("a member with padding");
    let mut padded = original.clone();
    padded[data + size] = b'!';
    let mut dated = original.clone();
    dated[136..148].copy_from_slice(b"00000000001\0");
    fix_checksum(&mut dated[..512]);
    let line_with = |edit: &dyn Fn(&str, &str) -> String| {
        let mut alloy = Alloy::from_reader(&original[..]).unwrap();
        let last = alloy.chain.len() - 1;
        let line: Value = serde_json::from_str(alloy.chain.line(last)).unwrap();
        let entry = serde_json::to_string(line["entry"].as_str().unwrap()).unwrap();
        alloy.chain.replace(last, edit(&entry, line["signature"].as_str().unwrap()));
        alloy.to_bytes().unwrap()
    };
    let variants = [
        ("non-zero padding", padded, "padding"),
        ("text after the end", [&original[..], &b"more"[..]].concat(), "after the end"),
        ("another zero block", [&original[..], &[0u8; 512][..]].concat(), "after the end"),
        ("another mtime", dated, "mtime"),
        ("a spaced custody line", line_with(&|e, s| format!(r#"{{"entry": {e}, "signature": "{s}"}}"#)), "canonical"),
        (
            "an upper-case signature",
            line_with(&|e, s| format!(r#"{{"entry":{e},"signature":"{}"}}"#, s.to_uppercase())),
            "canonical",
        ),
    ];
    for (what, bytes, why) in variants {
        assert_ne!(bytes, original);
        let out = verify(&format!("{what}.alloy"), &bytes);
        assert!(!out.status.success(), "the same signed alloy with {what} verified: {}", stdout(&out));
        assert!(stderr(&out).contains("malformed") && stderr(&out).contains(why), "{what}: {}", stderr(&out));
    }
}
