//! Authoring in every language, as a third party would: `plugin new` → `plugin build` →
//! `plugin pack` (signed, proofs run) → `plugin install` → `run`, for Rust, Python and
//! JavaScript; and the three examples built, installed and run with their reflected schemas
//! checked. Needs the guest toolchains (scripts/authoring-tools.sh, run by the test command).

use std::path::Path;
use std::process::Output;

use continuum_tests::{cli, real_models, repo, stderr, stdout};
use serde_json::{json, Value};

/// `continuum` on `data` in folder `cwd`, with Rust builds sharing one warm target dir.
fn cli_in(data: &Path, cwd: &Path, args: &[&str]) -> Output {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| repo().join("target"), Into::into);
    std::process::Command::new(continuum_tests::binary())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", Path::new(&target).join("authoring"))
        .output()
        .expect("run continuum")
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", stderr(&o), stdout(&o));
    stdout(&o)
}

fn schema_of(data: &Path, command: &str) -> Value {
    let list: Value = serde_json::from_str(&ok(cli(data, &["commands", "--json"]))).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == command)
        .cloned()
        .unwrap_or_else(|| panic!("{command} not listed"))
}

/// Builds, signs and installs the project in `dir`; returns the plugin name.
fn ship(data: &Path, dir: &Path, name: &str) {
    ok(cli_in(data, dir, &["plugin", "build"]));
    let alloy = data.join(format!("{name}.alloy"));
    let out = ok(cli(
        data,
        &["plugin", "pack", dir.join("build").to_str().unwrap(), "--key", "author", "-o", alloy.to_str().unwrap()],
    ));
    assert!(out.contains("proof cases passed"), "{out}");
    ok(cli(data, &["plugin", "install", alloy.to_str().unwrap(), "--allow-untrusted", "--allow", "all"]));
}

#[test]
fn a_new_project_in_each_language_builds_signs_installs_and_runs() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    ok(cli(data.path(), &["key", "generate", "author"]));
    for lang in ["rust", "python", "js"] {
        let name = format!("greeter-{lang}");
        let out = ok(cli_in(data.path(), work.path(), &["plugin", "new", &name, "--lang", lang]));
        assert!(out.contains("continuum plugin build"), "{out}");
        let dir = work.path().join(&name);
        assert!(dir.join("wit/deps/continuum-host/host.wit").is_file());
        ship(data.path(), &dir, &name);
        let command = format!("{name}/greet");
        let loud = ok(cli(data.path(), &["run", &command, "--name", "Ada", "--style", "loud"]));
        assert_eq!(loud.trim(), "\"HELLO, ADA!\"", "{lang}");
        let refused = cli(data.path(), &["run", &command, "--name", " "]);
        assert_eq!(refused.status.code(), Some(3), "{lang}: {}", stderr(&refused));
        assert!(stderr(&refused).contains("name is empty"), "{lang}: {}", stderr(&refused));
        // The schema comes from the WIT types, with the WIT docs, in every language.
        let schema = schema_of(data.path(), &command);
        assert_eq!(schema["params"]["required"], json!(["name"]), "{lang}: {schema}");
        let style = &schema["params"]["properties"]["style"];
        assert!(style.to_string().contains("\"loud\""), "{lang}: {style}");
        assert!(schema["description"].as_str().unwrap().starts_with("Greets `name`"), "{lang}: {schema}");
    }
}

#[test]
fn plugin_new_refuses_bad_names_and_existing_folders() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let bad = cli_in(data.path(), work.path(), &["plugin", "new", "Bad_Name", "--lang", "rust"]);
    assert!(stderr(&bad).contains("kebab-case"), "{}", stderr(&bad));
    ok(cli_in(data.path(), work.path(), &["plugin", "new", "twice", "--lang", "js"]));
    let again = cli_in(data.path(), work.path(), &["plugin", "new", "twice", "--lang", "js"]);
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
}

#[test]
fn a_missing_toolchain_is_named_with_the_command_that_installs_it() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    for (lang, hint) in [
        ("python", "pip install componentize-py==0.25.1"),
        ("js", "npm install -g @bytecodealliance/componentize-js@0.23.0"),
    ] {
        let name = format!("no-tools-{lang}");
        ok(cli_in(data.path(), work.path(), &["plugin", "new", &name, "--lang", lang]));
        let out = std::process::Command::new(continuum_tests::binary())
            .args(["--data-dir", data.path().to_str().unwrap(), "plugin", "build"])
            .current_dir(work.path().join(&name))
            .env("PATH", "/nonexistent")
            // ~/.local/bin (where scripts/authoring-tools.sh links componentize-py) is empty here.
            .env("HOME", work.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(hint), "{lang}: {}", stderr(&out));
    }
}

#[test]
fn the_examples_build_install_and_run_in_three_languages() {
    let data = tempfile::tempdir().unwrap();
    ok(cli(data.path(), &["key", "generate", "author"]));
    let examples = repo().join("examples");
    ship(data.path(), &examples.join("csv-stats-python"), "csv-stats");
    ship(data.path(), &examples.join("markdown-js"), "markdown");
    ship(data.path(), &examples.join("headline-rust"), "headline");

    let csv = "name,age\nAda,36\nAlan,41\nGrace,\n";
    let summary: Value =
        serde_json::from_str(&ok(cli(data.path(), &["run", "csv-stats/summarize", "--csv", csv]))).unwrap();
    assert_eq!(summary["rows"], 3);
    assert_eq!(summary["columns"][1]["missing"], 1);
    assert_eq!(summary["columns"][1]["numeric"]["mean"], 38.5);
    let schema = schema_of(data.path(), "csv-stats/summarize");
    assert_eq!(schema["params"]["properties"]["delimiter"]["anyOf"][0]["format"], "char", "{schema}");
    assert_eq!(schema["result"]["properties"]["columns"]["items"]["title"], "column", "{schema}");
    let ragged = cli(data.path(), &["run", "csv-stats/summarize", "--csv", "a,b\n1\n"]);
    assert!(stderr(&ragged).contains("row 2 has 1 fields"), "{}", stderr(&ragged));

    let html = ok(cli(
        data.path(),
        &["run", "--output", "json", "markdown/to-html", "--markdown", "## Hi *there*\n\n<b>x</b>"],
    ));
    assert_eq!(html.trim(), r#""<h2 id=\"hi-there\">Hi <em>there</em></h2>\n<p>&lt;b&gt;x&lt;/b&gt;</p>""#);
    let outline: Value =
        serde_json::from_str(&ok(cli(data.path(), &["run", "markdown/outline", "--markdown", "# A\n## B"]))).unwrap();
    assert_eq!(outline[1], json!({ "level": 2, "text": "B", "anchor": "b" }));
    assert_eq!(schema_of(data.path(), "markdown/outline")["result"]["items"]["properties"]["level"]["maximum"], 255);

    let Some((llm, _)) = real_models() else { return };
    ok(cli(data.path(), &["model", "add", llm.to_str().unwrap(), "--id", "smollm2"]));
    std::fs::write(data.path().join("continuum.toml"), "[inference]\nthreads = 1\n").unwrap();
    let text = std::fs::read_to_string(examples.join("data/grid.txt")).unwrap();
    let headline: Value =
        serde_json::from_str(&ok(cli(data.path(), &["run", "headline/write", "--text", &text, "--max-words", "8"])))
            .unwrap();
    let words = headline["text"].as_str().unwrap().split_whitespace().count();
    assert!((1..=8).contains(&words), "{headline}");
}

/// The fenced block of `lang` in `doc` whose text starts with `start`.
fn block(doc: &str, lang: &str, start: &str) -> String {
    doc.split(&format!("```{lang}\n"))
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .find(|b| b.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("docs/authoring.md has no {lang} block starting with {start}"))
        .to_string()
}

#[test]
fn the_authoring_guide_works_as_written_in_every_language() {
    let doc = std::fs::read_to_string(repo().join("docs/authoring.md")).unwrap();
    let wit = block(&doc, "wit", "package local:word-tools");
    let proofs = block(&doc, "toml", "[[proof]]");
    let data = tempfile::tempdir().unwrap();
    ok(cli(data.path(), &["key", "generate", "me"]));
    for (lang, file, code) in [
        ("python", "app.py", block(&doc, "python", "import re")),
        ("js", "app.js", block(&doc, "js", "import { write }")),
        ("rust", "src/lib.rs", block(&doc, "rust", "wit_bindgen::generate!")),
    ] {
        let work = tempfile::tempdir().unwrap();
        ok(cli_in(data.path(), work.path(), &["plugin", "new", "word-tools", "--lang", lang]));
        let dir = work.path().join("word-tools");
        std::fs::write(dir.join("wit/word-tools.wit"), &wit).unwrap();
        std::fs::write(dir.join(file), &code).unwrap();
        // The guide replaces the template's proof cases with its own.
        let spec = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
        let head = spec.split("# The proof suite").next().unwrap();
        std::fs::write(dir.join("plugin.toml"), format!("{head}{proofs}")).unwrap();
        ok(cli_in(data.path(), &dir, &["plugin", "build"]));
        let alloy = dir.join("word-tools.alloy");
        ok(cli_in(data.path(), &dir, &["plugin", "pack", "build", "--key", "me", "-o", alloy.to_str().unwrap()]));
        let _ = cli(data.path(), &["plugin", "remove", "word-tools"]);
        ok(cli(
            data.path(),
            &["plugin", "install", alloy.to_str().unwrap(), "--allow", "host:log", "--allow-untrusted"],
        ));
        let out = ok(cli(data.path(), &["run", "word-tools/top-words", "--text", "the cat and the hat", "--top", "1"]));
        assert_eq!(out.trim(), r#"[{"word":"the","times":2}]"#, "{lang}");
    }
}
