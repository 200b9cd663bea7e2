//! The WIT source that travels with a plugin, parsed with `wit-parser` for names and docs.
//!
//! Components keep types but not documentation, so the plugin's WIT files are carried beside
//! the component (stored in the registry, later in the alloy manifest) and parsed again here.
//! The `continuum:host` package is built into the host, so a plugin's WIT folder only needs
//! its own package (and any other dependencies under `deps/`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use wit_parser::{Function, PackageName, Resolve, SourceMap, UnresolvedPackageGroup, WorldId, WorldItem};

/// The `continuum:host` WIT package, as shipped with this host.
pub const HOST_WIT: &str = include_str!("../../../wit/host.wit");

/// Largest WIT source accepted with a plugin, all files together.
const MAX_WIT_BYTES: usize = 1 << 20;

/// The `.wit` files of one package, by file name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitPackageFiles {
    /// File name → contents.
    pub files: BTreeMap<String, String>,
}

/// A plugin's WIT: its own package first, then its dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitSource {
    /// The plugin's package, then each package from `deps/`.
    pub packages: Vec<WitPackageFiles>,
}

fn read_package(dir: &Path, total: &mut usize) -> Result<WitPackageFiles> {
    let mut files = BTreeMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read WIT folder {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wit") || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        *total += text.len();
        if *total > MAX_WIT_BYTES {
            bail!("WIT source in {} is larger than {} KiB", dir.display(), MAX_WIT_BYTES >> 10);
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        files.insert(name, text);
    }
    Ok(WitPackageFiles { files })
}

impl WitSource {
    /// Reads a WIT folder: its `*.wit` files, and each package under `deps/`.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        let mut total = 0;
        let main = read_package(dir, &mut total)?;
        if main.files.is_empty() {
            bail!("no .wit files in {}; pass the folder that holds the plugin's world", dir.display());
        }
        let mut packages = vec![main];
        let deps = dir.join("deps");
        if deps.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&deps)?.collect::<std::io::Result<_>>()?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = entry.path();
                if path.is_dir() {
                    packages.push(read_package(&path, &mut total)?);
                } else if path.extension().and_then(|e| e.to_str()) == Some("wit") {
                    let text = std::fs::read_to_string(&path)?;
                    total += text.len();
                    let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
                    packages.push(WitPackageFiles { files: BTreeMap::from([(name, text)]) });
                }
            }
        }
        Ok(WitSource { packages })
    }

    /// Parses and resolves the source and selects its world: `world` if given, else the only
    /// world of the plugin's package.
    pub fn resolve(&self, world: Option<&str>) -> Result<WitWorld> {
        let parse = |pkg: &WitPackageFiles| -> Result<UnresolvedPackageGroup> {
            let mut map = SourceMap::default();
            for (name, text) in &pkg.files {
                map.push(Path::new(name), text);
            }
            map.parse().map_err(|(map, e)| anyhow::anyhow!("{}", e.render(&map)))
        };
        let (main, deps) = self.packages.split_first().context("the plugin carries no WIT source")?;
        let main = parse(main).context("invalid WIT in the plugin's package")?;
        let mut deps = deps.iter().map(parse).collect::<Result<Vec<_>>>().context("invalid WIT in deps/")?;
        // The built-in host package is parsed only for a plugin that uses it and does not carry
        // its own copy: a plain WASI program never pays for it.
        let packages =
            || std::iter::once(&main).chain(&deps).flat_map(|group| std::iter::once(&group.main).chain(&group.nested));
        let carried = packages().any(|p| is_host_package(&p.name));
        if !carried && packages().any(|p| p.foreign_deps.keys().any(is_host_package)) {
            deps.push(parse(&WitPackageFiles {
                files: BTreeMap::from([("continuum-host.wit".into(), HOST_WIT.into())]),
            })?);
        }
        let mut resolve = Resolve::new();
        let pkg = resolve
            .push_groups(main, deps)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("cannot resolve the plugin's WIT")?;
        let world = match world {
            Some(w) => resolve.select_world(&[pkg], Some(w))?,
            None => {
                let worlds = &resolve.packages[pkg].worlds;
                match worlds.len() {
                    1 => *worlds.values().next().expect("one world"),
                    0 => bail!("the plugin's WIT package declares no world; declare one that exports its commands"),
                    _ => bail!(
                        "the plugin's WIT package declares {} worlds ({}); choose one with --world",
                        worlds.len(),
                        worlds.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                }
            }
        };
        Ok(WitWorld { resolve, world })
    }
}

/// Whether `name` is the `continuum:host` package (any version).
fn is_host_package(name: &PackageName) -> bool {
    name.namespace == "continuum" && name.name == "host"
}

/// A resolved WIT world: where names and docs of a plugin's commands come from.
pub struct WitWorld {
    /// All packages, resolved.
    pub resolve: Resolve,
    /// The plugin's world.
    pub world: WorldId,
}

impl WitWorld {
    /// The world's name, which is the plugin's default name.
    pub fn name(&self) -> &str {
        &self.resolve.worlds[self.world].name
    }

    /// The world's doc comment.
    pub fn docs(&self) -> Option<&str> {
        self.resolve.worlds[self.world].docs.contents.as_deref()
    }

    /// The exported function `func`, at the top level (`interface` = None) or inside the
    /// exported interface whose component export name is `interface`.
    pub fn export_function(&self, interface: Option<&str>, func: &str) -> Option<&Function> {
        let world = &self.resolve.worlds[self.world];
        world.exports.iter().find_map(|(key, item)| match (interface, item) {
            (None, WorldItem::Function(f)) if f.name == func => Some(f),
            (Some(iface), WorldItem::Interface { id, .. }) if self.resolve.name_world_key(key) == iface => {
                self.resolve.interfaces[*id].functions.get(func)
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> WitSource {
        WitSource { packages: vec![WitPackageFiles { files: BTreeMap::from([("a.wit".into(), text.into())]) }] }
    }

    #[test]
    fn finds_docs_and_resolves_the_builtin_host_package() {
        let w = source(
            "package t:p;\n/// World docs.\nworld p {\n import continuum:host/log@0.1.0;\n /// Says hi.\n export hi: func(name: string) -> string;\n}\n",
        )
        .resolve(None)
        .unwrap();
        assert_eq!(w.name(), "p");
        assert_eq!(w.docs(), Some("World docs."));
        assert_eq!(w.export_function(None, "hi").unwrap().docs.contents.as_deref(), Some("Says hi."));
        assert!(w.export_function(None, "nope").is_none());
    }

    #[test]
    fn several_worlds_need_a_choice() {
        let err = source("package t:p;\nworld a {}\nworld b {}\n").resolve(None).err().unwrap();
        assert!(err.to_string().contains("choose one with --world"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let err = source("package t:p;\nworld a { export f: func(x: nope) }\n").resolve(None).err().unwrap();
        let msg = format!("{err:#}");
        assert!(msg.contains("a.wit"), "{msg}");
    }
}
