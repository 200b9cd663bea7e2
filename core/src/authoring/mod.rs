//! Authoring commands in any WASM language: `continuum plugin new` scaffolds a project
//! ([`scaffold`]) and `continuum plugin build` turns it into a component ready to pack
//! ([`toolchain`]): cargo for Rust, componentize-py for Python, componentize-js for JavaScript.

pub mod scaffold;
pub mod toolchain;

use std::path::Path;

use anyhow::{bail, Result};

/// A source language with a component toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust through cargo and wit-bindgen (target wasm32-wasip2).
    Rust,
    /// Python through componentize-py.
    Python,
    /// JavaScript through componentize-js.
    Js,
}

impl Language {
    /// The name used in `plugin.toml` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
        }
    }

    /// Parses a `plugin.toml` `[build] lang`.
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "rust" => Language::Rust,
            "python" => Language::Python,
            "js" | "javascript" => Language::Js,
            other => bail!("unknown language `{other}` in plugin.toml [build] lang; use rust, python or js"),
        })
    }

    /// Works out a project's language from its files.
    pub fn detect(dir: &Path) -> Result<Self> {
        let found: Vec<Language> =
            [(Language::Rust, "Cargo.toml"), (Language::Python, "app.py"), (Language::Js, "app.js")]
                .into_iter()
                .filter(|(_, file)| dir.join(file).is_file())
                .map(|(lang, _)| lang)
                .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => bail!(
                "{} holds no Cargo.toml, app.py or app.js; create a project with `continuum plugin new <name> --lang rust|python|js`",
                dir.display()
            ),
            _ => bail!("{} holds sources for several languages; set `lang` under [build] in plugin.toml", dir.display()),
        }
    }
}
