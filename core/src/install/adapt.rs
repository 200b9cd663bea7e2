//! What any WASI toolchain emits, made installable: a WASI preview-1 core module becomes a
//! component with the official preview-1 adapter (the one wasmtime ships), and a component that
//! comes without WIT has its WIT decoded from its own types.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, DecodedWasm, WitPrinter};

use crate::reflect::wit_source::{WitPackageFiles, WitSource, WitWorld};
use crate::runtime::{check_component_bytes, MAX_COMPONENT_BYTES};

/// The file name decoded WIT is kept under.
pub const DECODED_WIT_FILE: &str = "decoded.wit";

/// The component in `bytes` read from `path`: a component as it is, a preview-1 core module
/// wrapped with the adapter (the command adapter when it has `_start`, the reactor one
/// otherwise), anything else refused with what it is.
pub fn component_from(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if bytes.len() > MAX_COMPONENT_BYTES || !wasmparser::Parser::is_core_wasm(&bytes) {
        check_component_bytes(&bytes, path)?;
        return Ok(bytes);
    }
    let imports_wasi_p1 = module_imports(&bytes, path)?;
    if !imports_wasi_p1.is_empty() {
        bail!(
            "{} is a core module importing {} — not WASI preview 1, which is all the adapter provides; \
             build it for wasm32-wasip1 (or wasm32-wasip2) without other host imports",
            path.display(),
            imports_wasi_p1.join(", ")
        );
    }
    let adapter =
        if has_start(&bytes) { WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER } else { WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER };
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&bytes)
        .and_then(|e| e.adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter))
        .and_then(|mut e| e.encode())
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| {
            format!(
                "{} is a WASI preview-1 module the preview-1 adapter cannot wrap; build it for wasm32-wasip2 instead",
                path.display()
            )
        })?;
    check_component_bytes(&component, path)?;
    Ok(component)
}

/// The imports of a core module outside `wasi_snapshot_preview1`, as `module.name`.
fn module_imports(bytes: &[u8], path: &Path) -> Result<Vec<String>> {
    let mut foreign = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.with_context(|| format!("{} is a truncated or corrupt module", path.display()))?;
        if let wasmparser::Payload::ImportSection(section) = payload {
            for import in section.into_imports() {
                let import = import.with_context(|| format!("{} has a corrupt import section", path.display()))?;
                if import.module != WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME {
                    foreign.push(format!("{}.{}", import.module, import.name));
                }
            }
        }
    }
    Ok(foreign)
}

/// Whether a core module exports `_start` (a command, not a reactor).
fn has_start(bytes: &[u8]) -> bool {
    wasmparser::Parser::new(0).parse_all(bytes).flatten().any(|payload| match payload {
        wasmparser::Payload::ExportSection(section) => section.into_iter().flatten().any(|e| e.name == "_start"),
        _ => false,
    })
}

/// The WIT of a component, decoded from its types, its world named `world_name`: one file
/// holding the world's package with every package it uses nested in it. Types and names survive;
/// docs only where the toolchain embedded them, so `--wit` is how to add descriptions.
pub fn decoded_wit(component: &[u8], world_name: &str) -> Result<WitSource> {
    let (mut resolve, world) = match wit_component::decode(component).context("cannot decode the component's types")? {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => bail!("this is a WIT package, not a component with code"),
    };
    // Decoding names the world `root`; a plugin's world carries the plugin's name (the printer
    // reads it from the package's index of worlds).
    let main = resolve.worlds[world].package.context("the decoded world has no package")?;
    let old = std::mem::replace(&mut resolve.worlds[world].name, world_name.to_string());
    let worlds = &mut resolve.packages[main].worlds;
    worlds.shift_remove(&old);
    worlds.insert(world_name.to_string(), world);
    let nested: Vec<_> = resolve.packages.iter().map(|(id, _)| id).filter(|id| *id != main).collect();
    let mut printer = WitPrinter::default();
    printer.print(&resolve, main, &nested).context("cannot print the decoded WIT")?;
    let files = BTreeMap::from([(DECODED_WIT_FILE.to_string(), printer.output.to_string())]);
    Ok(WitSource { packages: vec![WitPackageFiles { files }] })
}

/// A built plugin read from disk: its component (adapted when it was a preview-1 module) and
/// its WIT (from a folder, or decoded from the component).
pub struct Built {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// Its WIT source.
    pub wit: WitSource,
    /// The name it installs under unless told otherwise: the WIT world's (decoded WIT's world
    /// is named after the file).
    pub default_name: String,
}

impl Built {
    /// Reads `wasm` and the WIT folder `wit` (decoded from the component without one); `world`
    /// picks one of several worlds.
    pub fn read(wasm: &Path, wit: Option<&Path>, world: Option<&str>) -> Result<(Built, WitWorld)> {
        let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
        let bytes = component_from(bytes, wasm)?;
        let wit = match wit {
            Some(dir) => WitSource::read_dir(dir)?,
            None => {
                let stem =
                    wasm.file_stem().unwrap_or_default().to_string_lossy().to_ascii_lowercase().replace('_', "-");
                decoded_wit(&bytes, &stem)
                    .with_context(|| format!("{}: pass --wit <dir> to describe it", wasm.display()))?
            }
        };
        let resolved = wit.resolve(world)?;
        let default_name = resolved.name().to_string();
        Ok((Built { bytes, wit, default_name }, resolved))
    }
}
