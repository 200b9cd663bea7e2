//! Data directories written by earlier versions open and upgrade in place: every table's
//! owner runs the steps it has not run yet, and nothing stored before is lost.

use std::path::Path;

use continuum_tests::{cli, repo, stderr, stdout};

/// Copies the fixture `name` (a data directory written by an earlier `main`) into a new
/// temporary folder.
fn fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("tests/fixtures").join(name), dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs the CLI on `data` and returns its stdout, failing the test on an error.
fn ok(data: &Path, args: &[&str]) -> String {
    let out = cli(data, args);
    assert!(out.status.success(), "continuum {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The fixture was written by commit bf1e6a3 (tables created `IF NOT EXISTS`, no versions):
/// a dev-installed `kv` with two entries, a trusted publisher, a grant, an API key and the
/// signed log of all that (see tests/fixtures/README.md).
#[test]
fn a_data_directory_from_before_versioned_schemas_opens_with_everything_in_it() {
    let data = fixture("datadir-bf1e6a3");
    let data = data.path();
    assert!(ok(data, &["plugin", "list"]).contains("kv "), "the plugin is still installed");
    assert_eq!(ok(data, &["run", "kv/get", "--key", "greeting"]).trim(), r#"{"text":"hello, old schema"}"#);
    assert_eq!(ok(data, &["run", "kv/get", "--key", "visits"]).trim(), r#"{"integer":3}"#);
    assert!(ok(data, &["trust", "list"]).contains("publisher"), "the trusted publisher is kept");
    assert!(ok(data, &["grant", "list"]).contains("kv/get"), "the issued grant is kept");
    assert!(ok(data, &["apikey", "list"]).contains("old client"), "the API key is kept");
    let verified = ok(data, &["events", "verify"]);
    assert!(verified.contains("verified"), "the old log and the new entries verify as one chain: {verified}");

    // Every owner is recorded at its last step; the cache's second step added a column.
    let db = rusqlite::Connection::open(data.join("continuum.db")).unwrap();
    let cache: i64 =
        db.query_row("SELECT version FROM schema_versions WHERE owner = 'compiled_cache'", [], |r| r.get(0)).unwrap();
    assert_eq!(cache, 2);
    let owners: i64 = db.query_row("SELECT count(*) FROM schema_versions", [], |r| r.get(0)).unwrap();
    assert!(owners >= 10, "every owner is versioned, {owners} are");
    db.query_row("SELECT fingerprint FROM compiled_files LIMIT 1", [], |r| r.get::<_, Option<String>>(0)).unwrap();
}

/// A data directory written by a newer version is refused with a clear error, never guessed at.
#[test]
fn a_data_directory_from_a_newer_version_is_refused_by_name() {
    let data = fixture("datadir-bf1e6a3");
    let data = data.path();
    ok(data, &["plugin", "list"]);
    let db = rusqlite::Connection::open(data.join("continuum.db")).unwrap();
    db.execute("UPDATE schema_versions SET version = 99 WHERE owner = 'registry'", []).unwrap();
    drop(db);
    let out = cli(data, &["plugin", "list"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("tables of `registry` are at version 99") && e.contains("upgrade continuum"), "{e}");
}
