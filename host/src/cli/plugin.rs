//! `continuum plugin …`: new, build, install (from a file, a folder, or `--from` a peer),
//! upgrade, pack, verify, attest, permissions, allow, deny, list, inspect, remove.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::{artifacts, node, output, prefix};
use crate::dir_grant::DirGrant;
use crate::grid::fetch::Fetched;
use crate::install::AlloyOptions;
use crate::node::client::NodeClient;
use crate::node::http::InstallFrom;
use crate::runtime::Host;
use crate::terminal::strip_control;
use crate::InstallOptions;

/// The approval flags of `plugin install` and `plugin upgrade`.
#[derive(Debug, clap::Args)]
pub(super) struct AlloyOverrides {
    /// Approve a host capability the plugin requests (host:log, host:store, host:commands,
    /// host:events, or `all`); repeat or comma-separate. On a terminal you are asked instead.
    #[arg(long, value_delimiter = ',', value_name = "CAPABILITY")]
    allow: Vec<String>,
    /// Install even though the signer is not in the trust store.
    #[arg(long)]
    allow_untrusted: bool,
    /// Install even though the version is older than the installed one.
    #[arg(long)]
    allow_downgrade: bool,
    /// Lend the plugin's calls a host folder: `--dir ./data:/data:ro` (HOST:GUEST[:ro]); repeatable.
    /// Without it a command sees no files at all.
    #[arg(long = "dir", value_name = "HOST:GUEST[:ro]", value_parser = parse_dir)]
    dirs: Vec<DirGrant>,
}

/// Parses `--dir HOST:GUEST[:ro]`.
fn parse_dir(spec: &str) -> Result<DirGrant, String> {
    DirGrant::parse(spec).map_err(|e| format!("{e:#}"))
}

impl AlloyOverrides {
    /// The install options these flags ask for, approving `allow`.
    fn options(&self, allow: Vec<String>, upgrade: bool) -> AlloyOptions {
        AlloyOptions {
            allow,
            allow_untrusted: self.allow_untrusted,
            allow_downgrade: self.allow_downgrade,
            upgrade,
            dirs: self.dirs.clone(),
            ..AlloyOptions::default()
        }
    }
}

/// `continuum plugin …`.
#[derive(Debug, Subcommand)]
pub(super) enum PluginCmd {
    /// Create a command project: `continuum plugin new word-count --lang python` (WIT world, source,
    /// proof cases, README) that builds, packs and installs as it is.
    New {
        /// The plugin's name, kebab-case (also its folder, WIT world and command prefix).
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: crate::authoring::Language,
        /// Create it inside this folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a command project into `<project>/build/` (cargo, componentize-py or componentize-js),
    /// ready for `continuum plugin pack <project>/build --key K`.
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Install a signed `.alloy`, or (development) a folder holding `<name>.wasm` and `wit/`, or a
    /// .wasm file: a component, or a WASI preview-1 module (adapted); without WIT it is decoded
    /// from the component (no descriptions: pass --wit to add them); with --from, a plugin a
    /// peer offers (by name or digest).
    Install {
        /// The .alloy file, plugin folder or .wasm file (with --from: the plugin's name or digest).
        path: PathBuf,
        /// Fetch from a peer (id, prefix, name) or `any`; verified exactly like a local alloy.
        #[arg(long, value_name = "PEER|any")]
        from: Option<String>,
        #[command(flatten)]
        overrides: AlloyOverrides,
        /// The WIT folder describing the component (default: `wit/` beside it, else decoded
        /// from the component).
        #[arg(long, value_name = "DIR")]
        wit: Option<PathBuf>,
        /// Install under this name (default: the WIT world's name, or the file's for decoded WIT).
        #[arg(long)]
        name: Option<String>,
        /// The WIT world, when the package has several.
        #[arg(long)]
        world: Option<String>,
        /// Replace an installed plugin of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Upgrade an installed plugin from a newer signed `.alloy`.
    Upgrade {
        /// The .alloy file.
        path: PathBuf,
        #[command(flatten)]
        overrides: AlloyOverrides,
        /// Accept an alloy signed by another publisher than the installed plugin's: the installed
        /// plugin's store is deleted and every capability must be approved again.
        #[arg(long)]
        allow_new_publisher: bool,
    },
    /// Pack a built plugin into a signed `.alloy`: a folder with `<name>.wasm`, `wit/` and `plugin.toml`, or a .wasm with --wit.
    Pack {
        /// The plugin folder or .wasm file.
        path: PathBuf,
        /// The signing key: a name from `continuum key list`, or a key file path containing `/` (`./k.ed25519`).
        #[arg(long)]
        key: String,
        /// The WIT folder (default: `wit/` beside the component, else decoded from it).
        #[arg(long, value_name = "DIR")]
        wit: Option<PathBuf>,
        /// The version, when there is no plugin.toml.
        #[arg(long)]
        version: Option<String>,
        /// Where to write the alloy (default: `<name>-<version>.alloy` here).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check an `.alloy`: digest, signatures, chain of custody, interface, and re-run its proof suite here.
    Verify {
        /// The .alloy file.
        path: PathBuf,
    },
    /// Re-run an `.alloy`'s proof suite and append your signed `evaluate` attestation to its chain.
    Attest {
        /// The .alloy file.
        path: PathBuf,
        /// Your signing key: a name, or a key file path containing `/`.
        #[arg(long)]
        key: String,
        /// Where to write the attested alloy (default: in place).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show the host capabilities a plugin requests and which are approved.
    Permissions {
        /// The plugin's name.
        name: String,
    },
    /// Approve host capabilities for an installed plugin (`all` for everything it requests).
    Allow {
        /// The plugin's name.
        name: String,
        /// Capabilities, e.g. host:store.
        #[arg(required_unless_present = "dirs")]
        capabilities: Vec<String>,
        /// Lend a host folder: `--dir ./data:/data:ro` (HOST:GUEST[:ro]); repeatable.
        #[arg(long = "dir", value_name = "HOST:GUEST[:ro]", value_parser = parse_dir)]
        dirs: Vec<DirGrant>,
    },
    /// Withdraw host capabilities (`all` for every one) or lent folders from an installed plugin.
    Deny {
        /// The plugin's name.
        name: String,
        /// Capabilities, e.g. host:events.
        #[arg(required_unless_present = "dirs")]
        capabilities: Vec<String>,
        /// Withdraw the folder lent at this guest path (`--dir /data`); repeatable.
        #[arg(long = "dir", value_name = "GUEST")]
        dirs: Vec<String>,
    },
    /// List installed plugins.
    List,
    /// Show a plugin (installed, or an .alloy file): version, signers, chain, capabilities, commands.
    Inspect {
        /// The plugin's name, or an .alloy file.
        name: String,
    },
    /// Remove a plugin.
    Remove {
        /// The plugin's name.
        name: String,
        /// Also delete the plugin's private store.
        #[arg(long)]
        purge: bool,
    },
}

/// Finds the component and WIT folder of an install argument.
pub(super) fn locate(path: &Path, wit: Option<PathBuf>) -> Result<(PathBuf, Option<PathBuf>)> {
    // Without a WIT folder, the WIT is decoded from the component (no descriptions).
    let beside = |folder: &Path| Some(folder.join("wit")).filter(|w| w.is_dir());
    if path.is_dir() {
        let wasm: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("wasm"))
            .collect();
        let [wasm] = wasm.as_slice() else {
            bail!(
                "{} must hold exactly one .wasm file (found {}); or pass the .wasm file and --wit",
                path.display(),
                wasm.len()
            );
        };
        return Ok((wasm.clone(), wit.or_else(|| beside(path))));
    }
    Ok((path.to_path_buf(), wit.or_else(|| beside(path.parent().unwrap_or(Path::new("."))))))
}

/// Runs a `plugin` subcommand; after a change to the installed plugins, a node serving the
/// same data directory re-reads them.
pub(super) fn run(host: &Host, cmd: PluginCmd) -> Result<()> {
    let changes = matches!(
        cmd,
        PluginCmd::Install { .. }
            | PluginCmd::Upgrade { .. }
            | PluginCmd::Allow { .. }
            | PluginCmd::Deny { .. }
            | PluginCmd::Remove { .. }
    );
    manage(host, cmd)?;
    if changes {
        node::tell_running_node(host.core().data().root());
    }
    Ok(())
}

/// Runs `cmd` itself (`run` then tells a running node of any change).
fn manage(host: &Host, cmd: PluginCmd) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        PluginCmd::Install { path, from: Some(from), overrides, .. } => {
            if !overrides.dirs.is_empty() {
                bail!(
                    "--dir applies once the plugin is installed: `continuum plugin allow <name> --dir …` after --from"
                );
            }
            let what = path.to_string_lossy();
            install_from(host.core().data().root(), &what, &from, &overrides.allow, overrides.allow_untrusted)?;
        }
        PluginCmd::Install { path, overrides, .. } if path.extension().is_some_and(|e| e == "alloy") => {
            let record = artifacts::with_approval(overrides.allow.clone(), |allow| {
                host.install_alloy(&path, overrides.options(allow, false))
            })?;
            artifacts::print_installed(&mut out, &record)?;
        }
        PluginCmd::Upgrade { path, overrides, allow_new_publisher } => {
            let record = artifacts::with_approval(overrides.allow.clone(), |allow| {
                let options = AlloyOptions { allow_new_publisher, ..overrides.options(allow, true) };
                host.install_alloy(&path, options)
            })?;
            artifacts::print_installed(&mut out, &record)?;
        }
        PluginCmd::Permissions { name } => artifacts::permissions(host, &mut out, &name)?,
        PluginCmd::Allow { name, capabilities, dirs } => {
            let approved = (!capabilities.is_empty()).then(|| host.allow(&name, &capabilities)).transpose()?;
            let dirs = (!dirs.is_empty()).then(|| host.lend_dirs(&name, &dirs)).transpose()?;
            Access { name: &name, approved, dirs }.confirm(&mut out)?;
        }
        PluginCmd::Deny { name, capabilities, dirs } => {
            let approved = (!capabilities.is_empty()).then(|| host.deny(&name, &capabilities)).transpose()?;
            let dirs = (!dirs.is_empty()).then(|| host.withdraw_dirs(&name, &dirs)).transpose()?;
            Access { name: &name, approved, dirs }.confirm(&mut out)?;
        }
        PluginCmd::Pack { path, key, wit, version, output } => {
            artifacts::pack(host, &path, &key, wit, version, output)?
        }
        PluginCmd::Verify { path } => artifacts::verify(host, &path)?,
        PluginCmd::Attest { path, key, output } => artifacts::attest(host, &path, &key, output)?,
        PluginCmd::Inspect { name } if name.ends_with(".alloy") => artifacts::inspect_file(host, Path::new(&name))?,
        PluginCmd::Install { path, wit, name, world, replace, overrides, from: None } => {
            let (wasm, wit) = locate(&path, wit)?;
            let record = artifacts::with_approval(overrides.allow.clone(), |allow| {
                host.install_component(
                    &wasm,
                    wit.as_deref(),
                    &InstallOptions {
                        name: name.clone(),
                        world: world.clone(),
                        replace,
                        allow,
                        dirs: overrides.dirs.clone(),
                    },
                )
            })?;
            artifacts::print_installed(&mut out, &record)?;
        }
        PluginCmd::List => {
            let plugins = host.plugins()?;
            output::emit(&mut out, &plugins, |out| {
                if plugins.is_empty() {
                    output::note(out, "no plugins installed; `continuum plugin install <dir>` adds one")?;
                }
                for p in &plugins {
                    let version = p.version.as_deref().unwrap_or("dev");
                    writeln!(
                        out,
                        "{:<16} {:<8} {:>3} commands  {}  {}",
                        p.name,
                        version,
                        p.commands.len(),
                        &p.digest[..12],
                        strip_control(p.description.as_deref().unwrap_or_default())
                    )?;
                }
                Ok(())
            })?;
        }
        PluginCmd::Inspect { name } => {
            let p = host.plugin(&name)?;
            output::emit(&mut out, &p, |out| {
                writeln!(
                    out,
                    "{}\n  world:     {}\n  digest:    sha256:{}\n  source:    {}",
                    p.name, p.world, p.digest, p.source
                )?;
                if let Some(d) = &p.description {
                    writeln!(out, "  about:     {}", strip_control(d))?;
                }
                artifacts::print_provenance(host, out, &p)?;
                let approved = if p.approved.is_empty() { "none".to_string() } else { p.approved.join(", ") };
                writeln!(out, "  approved:  {approved}")?;
                artifacts::print_interface(out, &p.imports, &p.commands, &p.access)
            })?;
        }
        PluginCmd::New { name, lang, dir } => {
            let project = crate::authoring::scaffold::new_project(&dir, &name, lang)?;
            let created = json!({ "project": project, "name": name, "lang": lang.as_str() });
            let next = format!(
                "created {} ({} plugin `{name}`); next:\n  cd {} && continuum plugin build\n  \
                 continuum plugin pack build --key <your key> -o {name}.alloy",
                project.display(),
                lang.as_str(),
                project.display()
            );
            output::confirm(&mut out, &created, next)?;
        }
        PluginCmd::Build { dir } => {
            let started = std::time::Instant::now();
            let built = crate::authoring::toolchain::build(&dir)?;
            let seconds = started.elapsed().as_secs_f64();
            let record = json!({
                "name": built.name, "lang": built.lang.as_str(), "dir": built.dir, "bytes": built.bytes, "seconds": seconds,
            });
            let line = format!(
                "built {} ({}, {:.1} MB) into {} in {seconds:.1} s; pack it with `continuum plugin pack {} --key <key>`",
                built.name,
                built.lang.as_str(),
                built.bytes as f64 / 1e6,
                built.dir.display(),
                built.dir.display()
            );
            output::confirm(&mut out, &record, line)?;
        }
        PluginCmd::Remove { name, purge } => {
            let r = host.remove(&name, purge)?;
            output::confirm(
                &mut out,
                &r,
                format_args!("removed {}{}", r.name, if purge { " and its store" } else { "" }),
            )?;
        }
    }
    Ok(())
}

/// What `plugin allow` or `plugin deny` changed: the capabilities the plugin may now use, the
/// folders it now sees.
#[derive(Serialize)]
struct Access<'a> {
    /// The plugin.
    name: &'a str,
    /// The capabilities it may use, when they changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    approved: Option<Vec<String>>,
    /// The folders it sees, when they changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    dirs: Option<Vec<DirGrant>>,
}

impl Access<'_> {
    /// Reports the change on `out` (as JSON with `--json`).
    fn confirm(&self, out: &mut impl Write) -> Result<()> {
        let name = self.name;
        let mut lines = Vec::new();
        if let Some(approved) = &self.approved {
            let approved = if approved.is_empty() { "nothing".into() } else { approved.join(", ") };
            lines.push(format!("{name} may use: {approved}"));
        }
        if let Some(dirs) = &self.dirs {
            let dirs = if dirs.is_empty() {
                "no folders".into()
            } else {
                dirs.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
            };
            lines.push(format!("{name} sees: {}", strip_control(&dirs)));
        }
        output::confirm(out, self, lines.join("\n"))
    }
}

/// `continuum plugin install <name|digest> --from <peer|any>` through the node.
fn install_from(root: &Path, what: &str, from: &str, allow: &[String], allow_untrusted: bool) -> Result<()> {
    let client = NodeClient::require(root)?;
    let request =
        InstallFrom { plugin: what.to_string(), from: from.to_string(), allow: allow.to_vec(), allow_untrusted };
    let fetched: Fetched = node::post(&client, "/v1/grid/install", &request)?;
    let line = format!(
        "installed {} {} (sha256:{}) from peer {}: {} bytes in {:.1} ms, verified",
        fetched.name,
        fetched.version,
        prefix(&fetched.digest, 12),
        prefix(&fetched.from, 12),
        fetched.bytes,
        fetched.transfer_us as f64 / 1000.0
    );
    output::confirm(&mut std::io::stdout().lock(), &fetched, line)
}
