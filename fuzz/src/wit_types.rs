//! Random WIT types, written out as a world whose one export takes and returns the type, and
//! turned into a real component (wit-component's dummy core module: every body traps), so the
//! host reflects types exactly as it would from a plugin.

use arbitrary::{Result, Unstructured};
use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

/// Deepest nesting of generated types.
const MAX_DEPTH: u32 = 4;

/// A WIT type; named kinds (record, variant, enum, flags) become type definitions.
#[derive(Debug, Clone)]
pub enum Ty {
    /// A scalar, string or char, by its WIT name.
    Prim(&'static str),
    /// `list<T>`.
    List(Box<Ty>),
    /// `option<T>` (never of an option: the host refuses those at install).
    Option(Box<Ty>),
    /// `result<T, E>`, either side optional.
    Result(Option<Box<Ty>>, Option<Box<Ty>>),
    /// `tuple<…>`.
    Tuple(Vec<Ty>),
    /// A record with these field types.
    Record(Vec<Ty>),
    /// A variant with these cases (payload or none).
    Variant(Vec<Option<Ty>>),
    /// An enum with this many cases.
    Enum(usize),
    /// Flags with this many names.
    Flags(usize),
}

const PRIMS: [&str; 13] =
    ["bool", "s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64", "f32", "f64", "char", "string"];

impl Ty {
    /// A random type, at most [`MAX_DEPTH`] deep.
    pub fn arbitrary(u: &mut Unstructured<'_>) -> Result<Ty> {
        Self::at(u, 0)
    }

    fn at(u: &mut Unstructured<'_>, depth: u32) -> Result<Ty> {
        let leaf = depth >= MAX_DEPTH || u.is_empty();
        let pick = if leaf { 0 } else { u.int_in_range(0..=8)? };
        let sub = |u: &mut Unstructured<'_>| Self::at(u, depth + 1).map(Box::new);
        let many = |u: &mut Unstructured<'_>| -> Result<Vec<Ty>> {
            let n = u.int_in_range(1..=4)?;
            (0..n).map(|_| Self::at(u, depth + 1)).collect()
        };
        Ok(match pick {
            0 => Ty::Prim(*u.choose(&PRIMS)?),
            1 => Ty::List(sub(u)?),
            2 => match Self::at(u, depth + 1)? {
                Ty::Option(inner) => Ty::Option(inner),
                t => Ty::Option(Box::new(t)),
            },
            3 => Ty::Result(
                if u.arbitrary()? { Some(sub(u)?) } else { None },
                if u.arbitrary()? { Some(sub(u)?) } else { None },
            ),
            4 => Ty::Tuple(many(u)?),
            5 => Ty::Record(many(u)?),
            6 => {
                let n = u.int_in_range(1..=4)?;
                Ty::Variant(
                    (0..n)
                        .map(|_| if u.arbitrary()? { Ok(Some(Self::at(u, depth + 1)?)) } else { Ok(None) })
                        .collect::<Result<_>>()?,
                )
            }
            7 => Ty::Enum(u.int_in_range(1..=5)?),
            _ => Ty::Flags(u.int_in_range(1..=8)?),
        })
    }

    /// The type as WIT, adding named type definitions to `defs`.
    fn wit(&self, defs: &mut Vec<String>) -> String {
        let name = |defs: &Vec<String>| format!("t{}", defs.len());
        match self {
            Ty::Prim(p) => p.to_string(),
            Ty::List(t) => format!("list<{}>", t.wit(defs)),
            Ty::Option(t) => format!("option<{}>", t.wit(defs)),
            Ty::Result(ok, err) => match (ok, err) {
                (None, None) => "result".into(),
                (Some(t), None) => format!("result<{}>", t.wit(defs)),
                (None, Some(e)) => format!("result<_, {}>", e.wit(defs)),
                (Some(t), Some(e)) => format!("result<{}, {}>", t.wit(defs), e.wit(defs)),
            },
            Ty::Tuple(ts) => format!("tuple<{}>", ts.iter().map(|t| t.wit(defs)).collect::<Vec<_>>().join(", ")),
            Ty::Record(fields) => {
                let body: Vec<String> =
                    fields.iter().enumerate().map(|(i, t)| format!("f{i}: {}", t.wit(defs))).collect();
                let n = name(defs);
                defs.push(format!("record {n} {{ {} }}", body.join(", ")));
                n
            }
            Ty::Variant(cases) => {
                let body: Vec<String> = cases
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match t {
                        Some(t) => format!("c{i}({})", t.wit(defs)),
                        None => format!("c{i}"),
                    })
                    .collect();
                let n = name(defs);
                defs.push(format!("variant {n} {{ {} }}", body.join(", ")));
                n
            }
            Ty::Enum(n_cases) => {
                let n = name(defs);
                defs.push(format!(
                    "enum {n} {{ {} }}",
                    (0..*n_cases).map(|i| format!("e{i}")).collect::<Vec<_>>().join(", ")
                ));
                n
            }
            Ty::Flags(n_flags) => {
                let n = name(defs);
                defs.push(format!(
                    "flags {n} {{ {} }}",
                    (0..*n_flags).map(|i| format!("g{i}")).collect::<Vec<_>>().join(", ")
                ));
                n
            }
        }
    }
}

/// A world `gen` exporting `run: func(value: T) -> T`, as WIT source.
pub fn world_source(ty: &Ty) -> String {
    let mut defs = Vec::new();
    let t = ty.wit(&mut defs);
    let defs: String = defs.iter().map(|d| format!("  {d}\n")).collect();
    format!("package fuzz:gen;\n\nworld gen {{\n{defs}  export run: func(value: {t}) -> {t};\n}}\n")
}

/// A component implementing the world in `source` (each export traps when called).
pub fn component(source: &str) -> anyhow::Result<Vec<u8>> {
    let mut resolve = Resolve::new();
    let package = resolve.push_str("gen.wit", source)?;
    let world = resolve.select_world(&[package], Some("gen"))?;
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;
    ComponentEncoder::default().module(&module)?.validate(true).encode()
}
