//! `continuum plugin new`: a command project in Rust, Python or JavaScript — a WIT world with the
//! host interfaces beside it, an example command, a proof suite and a README — that builds,
//! packs and installs as it is.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::Language;
use crate::reflect::wit_source::HOST_WIT;

const WORLD: &str = include_str!("templates/world.wit");
const PLUGIN_TOML: &str = include_str!("templates/plugin.toml");
const README: &str = include_str!("templates/README.md");
const GITIGNORE: &str = include_str!("templates/gitignore");
const RUST_CARGO: &str = include_str!("templates/rust/Cargo.toml");
const RUST_LIB: &str = include_str!("templates/rust/lib.rs");
const PYTHON_APP: &str = include_str!("templates/python/app.py");
const JS_APP: &str = include_str!("templates/js/app.js");
const PYTHON_SDK: &str = include_str!("../../../sdk/python/continuum_sdk.py");
const JS_TYPES: &str = include_str!("../../../sdk/js/continuum-host.d.ts");

/// Checks a plugin name: kebab-case, as WIT names and command names need.
pub fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name.split('-').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        bail!("`{name}` is not a usable plugin name: use kebab-case words starting with a letter, like `word-count`");
    }
    Ok(())
}

fn fill(template: &str, name: &str, lang: Language) -> String {
    let (title, source_note) = match lang {
        Language::Rust => ("Rust", "`src/lib.rs` — the commands (wit-bindgen generates the bindings from wit/)."),
        Language::Python => ("Python", "`app.py` — the commands (componentize-py generates `wit_world` from wit/)."),
        Language::Js => ("JavaScript", "`app.js` — the commands (componentize-js reads wit/)."),
    };
    template
        .replace("{{name}}", name)
        .replace("{{lang}}", lang.as_str())
        .replace("{{lang_title}}", title)
        .replace("{{source_note}}", source_note)
}

/// Creates project `name` in `parent/name`; returns its folder. Refuses to overwrite.
pub fn new_project(parent: &Path, name: &str, lang: Language) -> Result<PathBuf> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists; choose another name or folder", dir.display());
    }
    let mut files: Vec<(&str, String)> = vec![
        ("wit/deps/continuum-host/host.wit", HOST_WIT.to_string()),
        ("plugin.toml", fill(PLUGIN_TOML, name, lang)),
        ("README.md", fill(README, name, lang)),
        (".gitignore", GITIGNORE.to_string()),
    ];
    let world_file = format!("wit/{name}.wit");
    files.push((&world_file, fill(WORLD, name, lang)));
    match lang {
        Language::Rust => {
            files.push(("Cargo.toml", fill(RUST_CARGO, name, lang)));
            files.push(("src/lib.rs", fill(RUST_LIB, name, lang)));
        }
        Language::Python => {
            files.push(("app.py", fill(PYTHON_APP, name, lang)));
            files.push(("continuum_sdk.py", PYTHON_SDK.to_string()));
        }
        Language::Js => {
            files.push(("app.js", fill(JS_APP, name, lang)));
            files.push(("continuum-host.d.ts", JS_TYPES.to_string()));
        }
    }
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir)
}
