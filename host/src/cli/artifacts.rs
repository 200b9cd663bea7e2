//! The signed-artifact side of `continuum plugin …`: packing, verifying, attesting and
//! inspecting alloys, approving an install's capabilities, and printing what was installed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::help;
use super::key::key_store;
use super::output;
use super::plugin::locate;
use crate::access::Access;
use crate::alloy::custody::{short, stage_name, Chain, Entry};
use crate::alloy::manifest::{CaseResult, Manifest};
use crate::alloy::Alloy;
use crate::host_api::NotApproved;
use crate::install::PackInput;
use crate::keys::public_hex;
use crate::reflect::CommandSchema;
use crate::registry::PluginRecord;
use crate::runtime::Host;
use crate::terminal::strip_control;

/// Runs an install with `allow`; if it needs capabilities nobody approved and we are on a
/// terminal, asks the operator and tries once more with their answer.
pub(super) fn with_approval<T>(allow: Vec<String>, mut install: impl FnMut(Vec<String>) -> Result<T>) -> Result<T> {
    use std::io::IsTerminal;
    let err = match install(allow.clone()) {
        Ok(done) => return Ok(done),
        Err(e) => e,
    };
    let Some(needed) = err.downcast_ref::<NotApproved>() else { return Err(err) };
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(err);
    }
    eprint!("plugin `{}` requests {}. Allow? [y/N] ", needed.plugin, needed.missing.join(", "));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        return Err(err);
    }
    let mut allow = allow;
    allow.extend(needed.missing.iter().cloned());
    install(allow)
}

/// `plugin permissions`: each host capability the plugin requests and whether it is approved.
pub(super) fn permissions(host: &Host, out: &mut impl Write, name: &str) -> Result<()> {
    let record = host.plugin(name)?;
    let requested: Vec<(String, bool)> = crate::host_api::requested(&record.imports)
        .into_iter()
        .map(|cap| {
            let approved = record.approved.contains(&cap);
            (cap, approved)
        })
        .collect();
    let doc: Vec<_> =
        requested.iter().map(|(cap, approved)| json!({ "capability": cap, "approved": approved })).collect();
    output::emit(out, &doc, |out| {
        if requested.is_empty() {
            writeln!(out, "{name} requests no host capabilities (WASI only: no files, environment or network)")?;
        }
        for (cap, approved) in &requested {
            writeln!(out, "{cap:<16} {}", if *approved { "approved" } else { "NOT approved" })?;
        }
        Ok(())
    })
}

/// Reports what an install did: the record (with `--json`), or its name, version, signer and
/// commands, every field from the manifest with control characters removed.
pub(super) fn print_installed(out: &mut impl Write, record: &PluginRecord) -> Result<()> {
    let version = record.version.as_deref().map(|v| format!(" {}", strip_control(v))).unwrap_or_default();
    let signer =
        record.signer.as_deref().map(|s| format!(", signed by {}", strip_control(short(s)))).unwrap_or_default();
    let mut text = format!(
        "installed {}{version} ({} commands, sha256 {}{signer})",
        strip_control(&record.name),
        record.commands.len(),
        &record.digest[..12]
    );
    for c in &record.commands {
        text.push_str(&format!("\n  {}", strip_control(&c.name)));
    }
    output::confirm(out, record, text)
}

fn print_chain(host: &Host, out: &mut impl Write, entries: &[Entry]) -> Result<()> {
    writeln!(out, "  chain of custody:")?;
    for (i, e) in entries.iter().enumerate() {
        writeln!(
            out,
            "    {}. {:<9} by {}  at {}  {}",
            i + 1,
            stage_name(e.stage),
            host.signer_label(&e.actor),
            e.at,
            strip_control(&e.statement.to_string())
        )?;
    }
    Ok(())
}

fn print_manifest(host: &Host, out: &mut impl Write, m: &Manifest) -> Result<()> {
    writeln!(out, "  version:   {}", strip_control(&m.identity.version))?;
    writeln!(out, "  author:    {}", host.signer_label(&m.identity.author))?;
    let p = &m.provenance;
    for (label, value) in
        [("source", &p.source_digest), ("commit", &p.commit), ("toolchain", &p.toolchain), ("built by", &p.command)]
    {
        if let Some(v) = value {
            writeln!(out, "  {label:<10} {}", strip_control(v))?;
        }
    }
    writeln!(out, "  proof suite: {} cases", m.proof.cases.len())?;
    Ok(())
}

/// The signed part of an installed plugin, for `plugin inspect`.
pub(super) fn print_provenance(host: &Host, out: &mut impl Write, record: &PluginRecord) -> Result<()> {
    let (Some(manifest), Some(custody)) = (&record.manifest, &record.custody) else {
        writeln!(out, "  signed:    no (development install)")?;
        return Ok(());
    };
    let m: Manifest = serde_json::from_str(manifest).context("stored manifest is corrupt")?;
    print_manifest(host, out, &m)?;
    let entries = Chain::parse(custody).verify(manifest.as_bytes())?;
    print_chain(host, out, &entries)
}

/// `plugin inspect <file.alloy>`: what the artifact says, after checking its integrity. Nothing
/// else of it is checked, so every field is shown with control characters removed.
pub(super) fn inspect_file(host: &Host, path: &Path) -> Result<()> {
    let alloy = Alloy::read(path)?;
    alloy.check_digest()?;
    let entries = alloy.verify_signatures()?;
    let mut out = std::io::stdout().lock();
    if output::json() {
        let manifest: serde_json::Value = serde_json::from_slice(&alloy.manifest_bytes)?;
        let doc = json!({ "manifest": manifest, "custody": entries });
        writeln!(out, "{}", strip_control(&serde_json::to_string_pretty(&doc)?))?;
        return Ok(());
    }
    let m = &alloy.manifest;
    writeln!(out, "{} (from {})", strip_control(&m.identity.name), path.display())?;
    writeln!(out, "  digest:    {}", strip_control(&m.identity.digest))?;
    print_manifest(host, &mut out, m)?;
    print_chain(host, &mut out, &entries)?;
    print_interface(&mut out, &m.interface.capabilities, &m.interface.commands, &m.interface.access)
}

/// A plugin's host capabilities and commands (with signature and access level), for `plugin
/// inspect` of an installed plugin or an alloy file; every name with control characters removed.
pub(super) fn print_interface(
    out: &mut impl Write,
    capabilities: &[String],
    commands: &[CommandSchema],
    access: &BTreeMap<String, Access>,
) -> Result<()> {
    writeln!(out, "  capabilities (imports):")?;
    for c in capabilities {
        writeln!(out, "    {}", strip_control(c))?;
    }
    writeln!(out, "  commands:")?;
    for c in commands {
        let level = crate::access::level(access, &c.name);
        let about = c.description.as_deref().unwrap_or("");
        writeln!(out, "    {:<28} {}", strip_control(&c.name), strip_control(about))?;
        writeln!(
            out,
            "    {:<28} {} [{}]",
            "",
            strip_control(&help::signature(c)),
            serde_json::to_value(level)?.as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

fn print_results(out: &mut impl Write, results: &[CaseResult]) -> Result<()> {
    for r in results {
        let mark = if r.passed { "ok  " } else { "FAIL" };
        let detail = r.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        writeln!(out, "  {mark} {} ({:.1} ms){}", strip_control(&r.name), r.duration_ms, strip_control(&detail))?;
    }
    Ok(())
}

/// `plugin pack`.
pub(super) fn pack(
    host: &Host,
    path: &Path,
    key: &str,
    wit: Option<PathBuf>,
    version: Option<String>,
    output: Option<PathBuf>,
) -> Result<()> {
    let (wasm, wit) = locate(path, wit)?;
    let input = PackInput { version, ..PackInput::for_component(&wasm, wit.as_deref())? };
    let signing = key_store(host.core().data()).load(key)?;
    let alloy = host.pack(&input, &signing)?;
    let id = &alloy.manifest.identity;
    let written = output.unwrap_or_else(|| PathBuf::from(format!("{}-{}.alloy", id.name, id.version)));
    alloy.write(&written)?;
    let packed = json!({
        "name": id.name, "version": id.version, "alloy": written, "author": id.author,
        "proof": alloy.manifest.proof.results,
    });
    let line = format!(
        "packed {} {} → {} ({} proof cases passed, signed by {})",
        id.name,
        id.version,
        written.display(),
        alloy.manifest.proof.results.len(),
        short(&id.author)
    );
    output::confirm(&mut std::io::stdout().lock(), &packed, line)
}

/// `plugin verify`.
pub(super) fn verify(host: &Host, path: &Path) -> Result<()> {
    let alloy = Alloy::read(path)?;
    let verified = host.verify_alloy(&alloy)?;
    let m = &alloy.manifest;
    let doc = json!({
        "name": m.identity.name, "version": m.identity.version, "digest": m.identity.digest,
        "custody": verified.entries, "proof": verified.results, "trusted_as": verified.trusted_as,
    });
    output::emit(&mut std::io::stdout().lock(), &doc, |out| {
        writeln!(
            out,
            "{} {}: digest, signatures and chain of custody ({} entries) verified",
            strip_control(&m.identity.name),
            strip_control(&m.identity.version),
            verified.entries.len()
        )?;
        writeln!(out, "proof suite re-run here:")?;
        print_results(out, &verified.results)?;
        match &verified.trusted_as {
            Some(name) => writeln!(out, "signer: trusted as `{name}`")?,
            None => writeln!(
                out,
                "signer: {} is NOT in the trust store (install would need --allow-untrusted; its proofs ran with \
                 no host capabilities)",
                strip_control(short(&m.identity.author))
            )?,
        }
        Ok(())
    })
}

/// `plugin attest`.
pub(super) fn attest(host: &Host, path: &Path, key: &str, output: Option<PathBuf>) -> Result<()> {
    let signing = key_store(host.core().data()).load(key)?;
    let mut alloy = Alloy::read(path)?;
    let verified = host.attest(&mut alloy, &signing)?;
    if verified.results.iter().any(|r| !r.passed) {
        bail!("a proof case failed; nothing attested");
    }
    let written = output.unwrap_or_else(|| path.to_path_buf());
    alloy.write(&written)?;
    let attester = public_hex(&signing.verifying_key());
    let doc = json!({
        "name": alloy.manifest.identity.name, "attester": attester, "alloy": written,
        "chain_entries": alloy.chain.len(), "proof": verified.results,
    });
    output::emit(&mut std::io::stdout().lock(), &doc, |out| {
        print_results(out, &verified.results)?;
        let line = format!(
            "attested {} as {} → {} ({} chain entries)",
            strip_control(&alloy.manifest.identity.name),
            short(&attester),
            written.display(),
            alloy.chain.len()
        );
        Ok(output::note(out, line)?)
    })
}
