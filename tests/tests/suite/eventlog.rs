//! The event log: every call audited, tampering named by sequence number, no acknowledged entry
//! lost to SIGKILL, failed writes leave nothing half-written, export/import with the Lamport merge.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use continuum::eventlog::{self, transfer, EventLog};
use continuum::keys::KeyStore;
use continuum::paths::DataDir;
use continuum::{Caller, Host};
use continuum_tests::{cli, stderr, stdout, TestHost};
use serde_json::{json, Value};

fn entries(h: &Host) -> Vec<eventlog::chain::Entry> {
    eventlog::entries(&h.core().log_db().unwrap(), 0, None, u64::MAX).unwrap()
}

fn verify(h: &Host) -> Result<eventlog::Verified, eventlog::chain::Broken> {
    eventlog::verify(&h.core().log_db().unwrap(), h.core().log().node()).unwrap()
}

#[test]
fn every_call_install_and_grant_is_recorded_and_the_chain_verifies() {
    let h = TestHost::with(&["kv", "typezoo"]);
    h.call("kv/put", json!({ "key": "a", "value": { "flag": true } })).unwrap();
    h.call("typezoo/divide", json!({ "a": 1, "b": 0 })).unwrap_err();
    let grantee = continuum::keys::public_hex(&ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key());
    let token = h.host.issue_grant(&grantee, &["kv/get".into()], continuum::now_secs() + 60).unwrap();
    let caller = h.host.caller_presenting(&token, &grantee).unwrap();
    assert!(h.host.call(&caller, "typezoo/nothing", &json!({})).result.is_err());
    let log = entries(&h.host);
    let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "plugin.installed",
            "plugin.installed",
            "call.invoked",
            "kv.put",
            "call.completed",
            "call.invoked",
            "call.failed",
            "grant.issued",
            "call.invoked",
            "call.failed",
        ]
    );
    let completed: Value = serde_json::from_str(&log[4].payload).unwrap();
    assert_eq!(completed["caller"], "owner");
    assert_eq!(completed["command"], "kv/put");
    assert_eq!(completed["outcome"], "ok");
    assert_eq!(completed["plugin-digest"].as_str().unwrap(), h.host.plugin("kv").unwrap().digest);
    assert_eq!(completed["input-hash"].as_str().unwrap().len(), 64);
    assert!(completed["duration-us"].as_u64().is_some());
    let failed: Value = serde_json::from_str(&log[6].payload).unwrap();
    assert_eq!(failed["outcome"], "command-error");
    let denied: Value = serde_json::from_str(&log[9].payload).unwrap();
    assert_eq!((denied["outcome"].as_str(), denied["grant"].is_string()), (Some("denied"), true));
    // Lamport times increase along the chain.
    assert!(log.windows(2).all(|w| w[1].lamport > w[0].lamport && w[1].prev == w[0].hash));
    assert_eq!(verify(&h.host).unwrap().entries, 10);

    let usage = transfer::usage(&h.host.core().db(), false, 0).unwrap();
    let owner = usage.iter().find(|u| u.key == "owner").unwrap();
    assert_eq!((owner.calls, owner.failed), (2, 1));
}

/// A host with a few entries, and a way to reopen it after editing the database directly.
fn tampered(edit: &str) -> eventlog::chain::Broken {
    let h = TestHost::with(&["typezoo"]);
    for a in 0..3 {
        h.call("typezoo/divide", json!({ "a": a, "b": 1 })).unwrap();
    }
    assert!(verify(&h.host).is_ok());
    h.host.core().log_db().unwrap().execute_batch(edit).unwrap();
    verify(&h.host).unwrap_err()
}

#[test]
fn tampering_names_the_first_bad_entry() {
    let payload = tampered("UPDATE log SET payload = '{\"caller\":\"mallory\"}' WHERE seq = 3");
    assert_eq!(payload.seq, 3);
    assert!(payload.problem.contains("altered"), "{payload}");
    let hash = tampered("UPDATE log SET hash = '00' || substr(hash, 3) WHERE seq = 4");
    assert_eq!(hash.seq, 4);
    let order = tampered("UPDATE log SET seq = 100 WHERE seq = 3; UPDATE log SET seq = 3 WHERE seq = 5; UPDATE log SET seq = 5 WHERE seq = 100;");
    assert_eq!(order.seq, 3);
    let deleted = tampered("DELETE FROM log WHERE seq = 4");
    assert_eq!(deleted.seq, 4);
    assert!(deleted.problem.contains("missing"), "{deleted}");
    let truncated = tampered("DELETE FROM log WHERE seq >= 6");
    assert_eq!(truncated.seq, 6, "{truncated}");
    assert!(truncated.problem.contains("deleted from the end"), "{truncated}");
    // Its first byte changed, whatever it was (a `replace` by `ff` did nothing to a signature starting with it).
    let forged = tampered("UPDATE log_checkpoints SET signature = (CASE WHEN substr(signature, 1, 2) = 'ff' THEN '00' ELSE 'ff' END) || substr(signature, 3) WHERE seq = (SELECT MAX(seq) FROM log_checkpoints)");
    assert!(forged.problem.contains("signature"), "{forged}");
    // The CLI names it too, with a non-zero exit.
    let h = TestHost::with(&["typezoo"]);
    h.call("typezoo/nothing", json!({})).unwrap();
    h.host.core().log_db().unwrap().execute("UPDATE log SET kind = 'x' WHERE seq = 2", []).unwrap();
    let out = h.cli(&["events", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("entry 2:"), "{}", stderr(&out));
}

#[test]
fn sigkill_during_a_write_burst_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_log_burst");
    let mut total_acked = 0;
    for round in 0..10u64 {
        let mut child = Command::new(bin).arg(dir.path()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first, first_acked) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let (mut acked, mut durable) = (Vec::new(), Vec::new());
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let had_both = !acked.is_empty() && !durable.is_empty();
                match line.strip_prefix("durable ") {
                    Some(rest) => durable.push(rest.replacen(' ', ":", 1)),
                    None => acked.extend(line.parse::<u64>().ok()),
                }
                if !had_both && !acked.is_empty() && !durable.is_empty() {
                    let _ = first.send(());
                }
            }
            (acked, durable)
        });
        // Kill mid-burst: once both kinds of acknowledgement have been seen (a loaded machine may
        // take a while to start the writer and commit its first group), then a little later each
        // round.
        let _ = first_acked.recv_timeout(Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20 + round * 23));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (acked, durable) = reader.join().unwrap();
        assert!(!acked.is_empty(), "round {round}: nothing was acknowledged before the kill");
        assert!(!durable.is_empty(), "round {round}: no durable entry was acknowledged before the kill");
        total_acked += acked.len() + durable.len();

        let host = Host::open(DataDir::at(dir.path().to_path_buf()).unwrap()).unwrap();
        let db = host.core().db();
        let v =
            eventlog::verify(&db, host.core().log().node()).unwrap().unwrap_or_else(|b| panic!("round {round}: {b}"));
        let max_acked = *acked.iter().max().unwrap();
        assert!(
            v.entries >= max_acked,
            "round {round}: acknowledged entry {max_acked} is missing ({} stored)",
            v.entries
        );
        let stored: i64 =
            db.query_row("SELECT count(*) FROM log WHERE kind = 'burst.write'", [], |r| r.get(0)).unwrap();
        assert!(stored as u64 >= acked.len() as u64);
        // Entries acknowledged as durable were in the journal only: opening the log replayed them.
        let mut stmt = db
            .prepare("SELECT substr(subject, 8) || ':' || json_extract(payload, '$.n') FROM log WHERE kind = 'burst.durable'")
            .unwrap();
        let replayed: std::collections::HashSet<String> =
            stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        let lost: Vec<&String> = durable.iter().filter(|d| !replayed.contains(*d)).collect();
        assert!(lost.is_empty(), "round {round}: {} durable entries lost, e.g. {:?}", lost.len(), lost.first());
        drop(stmt);
        drop(db);
        drop(host);
        let journals = std::fs::read_dir(dir.path().join("log.journals")).unwrap().count();
        assert_eq!(journals, 0, "round {round}: a closed log leaves no journal behind");
    }
    assert!(total_acked > 100, "only {total_acked} entries were acknowledged in 10 rounds");
}

#[test]
fn a_failing_write_reports_clearly_and_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path().to_path_buf()).unwrap();
    let key = KeyStore::new(data.root().join("keys")).node().unwrap();
    let mut conn = continuum::db::open(&data.database()).unwrap();
    continuum::db::migrate(&mut conn, &continuum::SCHEMAS).unwrap();
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    // The same error a full disk gives: SQLITE_FULL once the file may not grow.
    conn.pragma_update(None, "max_page_count", pages + 4).unwrap();
    let log = EventLog::with_connection(conn, key).unwrap();
    let big = json!({ "blob": "y".repeat(3000) });
    let mut acked = 0;
    let err = loop {
        match log.append("fill", "disk", &big) {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 1000, "the size limit never hit");
    };
    let msg = err.to_string();
    assert!(msg.contains("could not commit") && msg.contains("full"), "{msg}");
    let check = continuum::db::open(&data.database()).unwrap();
    let stored: i64 = check.query_row("SELECT count(*) FROM log", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, acked);
    let v = eventlog::verify(&check, log.node()).unwrap().unwrap();
    assert_eq!(v.entries, acked as u64);
}

#[test]
fn export_and_import_keep_the_remote_chain_and_merge_lamport_time() {
    let a = TestHost::with(&["typezoo"]);
    for i in 0..5 {
        a.call("typezoo/divide", json!({ "a": i, "b": 1 })).unwrap();
    }
    let b = TestHost::with(&[]);
    let export = a.dir.path().join("a.jsonl");
    let out = a.cli(&["events", "export", "-o", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let remote_max = entries(&a.host).last().unwrap().lamport;

    let file = || std::io::BufReader::new(std::fs::File::open(&export).unwrap());
    let done = transfer::import(&mut b.host.core().db(), b.host.core().log(), file()).unwrap();
    assert_eq!(done.entries, remote_max);
    assert!(done.lamport > remote_max, "Lamport time is max(local, remote) + 1");
    assert_eq!(transfer::import(&mut b.host.core().db(), b.host.core().log(), file()).unwrap().known, remote_max);
    // B's own entries after the import keep counting from the merged time.
    let grantee = continuum::keys::public_hex(&ed25519_dalek::SigningKey::from_bytes(&[6; 32]).verifying_key());
    b.host.issue_grant(&grantee, &["x".into()], continuum::now_secs() + 5).unwrap();
    assert!(entries(&b.host).last().unwrap().lamport > done.lamport);
    assert!(verify(&b.host).is_ok());

    // A tampered export is refused, naming the entry; so is a node's own log.
    let text = std::fs::read_to_string(&export).unwrap().replacen("typezoo/divide", "typezoo/DIVIDE", 1);
    let bad = a.dir.path().join("bad.jsonl");
    std::fs::write(&bad, text).unwrap();
    let c = TestHost::with(&[]);
    let err = transfer::import(
        &mut c.host.core().db(),
        c.host.core().log(),
        std::io::BufReader::new(std::fs::File::open(&bad).unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not verify: entry"), "{err}");
    let err = transfer::import(&mut a.host.core().db(), a.host.core().log(), file()).unwrap_err();
    assert!(err.to_string().contains("own log"), "{err}");
}

#[test]
fn the_cli_tails_and_meters() {
    let h = TestHost::with(&["typezoo"]);
    for _ in 0..3 {
        h.host.call(&Caller::owner(), "typezoo/nothing", &json!({})).result.unwrap();
    }
    let out = h.cli(&["events", "tail", "-n", "2", "--kind", "call.", "--json"]);
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["kind"].as_str().unwrap().starts_with("call.")));
    let out = h.cli(&["usage", "--by", "command", "--json"]);
    let rows: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows[0]["key"], "typezoo/nothing");
    assert_eq!(rows[0]["calls"], 3);
    assert!(stdout(&h.cli(&["events", "verify"])).contains("verified"));
    let _ = cli;
}

#[test]
fn the_journal_is_private_and_a_planted_or_torn_one_neither_stops_the_log_nor_replays_past_its_break() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("log.journals");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    {
        let host = Host::open(DataDir::at(dir.path().to_path_buf()).unwrap()).unwrap();
        host.core().log().record("test.durable", "s", &json!({ "n": 1 })).unwrap().wait().unwrap();
        let files: Vec<_> = std::fs::read_dir(&journals).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "one journal per open log");
        assert_eq!((mode(&journals), mode(&files[0])), (0o700, 0o600));
    }
    // Planted while the node is stopped: garbage, and a journal whose records break off (a
    // torn copy, then an out-of-sequence record). Only the whole records in sequence are taken.
    std::fs::write(journals.join("garbage"), b"\x05\x00\x00\x00not a record at all").unwrap();
    let record = |ordinal, n: u32| {
        eventlog::journal::encode(&eventlog::journal::Record {
            ordinal,
            at_ms: 1,
            entry: eventlog::NewEntry {
                kind: "test.planted".into(),
                subject: "s".into(),
                payload: json!({ "n": n }).to_string(),
            },
        })
    };
    let mut planted = [record(7, 1), record(8, 2), record(10, 3)].concat();
    planted.extend_from_slice(&record(9, 4)[..12]);
    std::fs::write(journals.join("planted"), planted).unwrap();
    let host = Host::open(DataDir::at(dir.path().to_path_buf()).unwrap()).unwrap();
    let replayed: Vec<String> =
        entries(&host).into_iter().filter(|e| e.kind == "test.planted").map(|e| e.payload).collect();
    assert_eq!(replayed, [r#"{"n":1}"#, r#"{"n":2}"#]);
    assert_eq!(entries(&host).iter().filter(|e| e.kind == "test.durable").count(), 1, "replayed twice");
    verify(&host).unwrap();
    let left: Vec<_> = std::fs::read_dir(&journals).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "the planted files are gone, the open log's own journal stays: {left:?}");
}

#[test]
fn an_entry_acknowledged_from_the_journal_survives_a_failed_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path().to_path_buf()).unwrap();
    let host = Host::open(data.clone()).unwrap();
    // Another connection holds the write lock past the busy timeout: the writer's commit fails.
    let mut blocker = continuum::db::open(&data.database()).unwrap();
    let lock = blocker.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    let log = host.core().log();
    log.record("test.kept", "s", &json!({ "n": 1 })).unwrap().wait().unwrap();
    let failed = log.append("test.waited", "s", &json!({})).unwrap_err();
    assert!(format!("{failed:#}").contains("could not commit"), "{failed:#}");
    assert!(format!("{failed:#}").contains("will be committed once"), "{failed:#}");
    drop(lock);
    // Both were in the journal: retried once the database is writable again, in order, once each.
    let kinds: Vec<String> = entries(&host).into_iter().map(|e| e.kind).filter(|k| k.starts_with("test.")).collect();
    assert_eq!(kinds, ["test.kept", "test.waited"]);
    verify(&host).unwrap();
}

/// A command-line process keeps no journal (it acknowledges on commit): SIGKILLed the moment its
/// result appears, its audit entry is already in the database.
#[test]
fn a_command_line_run_has_committed_its_audit_when_its_result_appears_and_keeps_no_journal() {
    let TestHost { dir, host } = TestHost::with(&["text"]);
    drop(host);
    for round in 1..=3 {
        let mut run = Command::new(continuum_tests::binary())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["run", "text/stats", "--text", "killed at its result"])
            .env_remove("CONTINUUM_HOME")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(run.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(!first.is_empty(), "round {round}: the run printed no result");
        // Killed as soon as its result is out: nothing it does after printing counts.
        run.kill().unwrap(); // SIGKILL
        run.wait().unwrap();
        // Raw SQLite, not a host: opening the log would replay a journal and hide an entry that
        // was only there.
        let db = rusqlite::Connection::open(dir.path().join("continuum.db")).unwrap();
        let completed: i64 = db
            .query_row("SELECT count(*) FROM log WHERE kind = 'call.completed' AND subject = 'text/stats'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let journals = std::fs::read_dir(dir.path().join("log.journals")).map_or(0, |files| files.count());
        assert_eq!(completed, round, "round {round}: the result was out before its audit entry was committed");
        assert_eq!(journals, 0, "round {round}: the command-line process left a journal");
    }
}

/// A command-line process keeps SQLite's WAL file for the next one (core/src/db.rs) but still
/// checkpoints at exit: its audit entries are in the database file itself, not only in the WAL.
#[test]
fn a_command_line_run_leaves_its_audit_in_the_database_file_and_keeps_an_empty_wal() {
    let TestHost { dir, host } = TestHost::with(&["text"]);
    drop(host);
    let out = cli(dir.path(), &["run", "text/stats", "--text", "audited then checkpointed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let wal = dir.path().join("continuum.db-wal");
    assert!(wal.exists(), "the WAL file was deleted at exit");
    // Truncated once checkpointed: frames left in it stay valid, and the next process would read
    // and checksum every one of them to rebuild its WAL index (core/src/db.rs).
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "the WAL kept its checkpointed frames");
    // Now left on disk between processes: as private as the database (docs/security.md).
    for file in ["continuum.db", "continuum.db-wal"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }
    // The database file alone, without its WAL: what a checkpoint wrote.
    let alone = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("continuum.db"), alone.path().join("continuum.db")).unwrap();
    let db = rusqlite::Connection::open(alone.path().join("continuum.db")).unwrap();
    let completed: i64 = db
        .query_row("SELECT count(*) FROM log WHERE kind = 'call.completed' AND subject = 'text/stats'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(completed, 1, "the call's audit entry is not in the database file");
}
