//! JSON Schema for component types (the mapping table of `docs/wit-json.md`), with names and
//! descriptions taken from the WIT source when the plugin carries it.
//!
//! The walk follows the component's type (the authority on what the plugin accepts) and, in
//! step, the WIT type; where they disagree the WIT does not describe this component and the
//! walk fails, so a plugin cannot ship docs for a signature it does not have.

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};
use wasmtime::component::types::Type;
use wit_parser::{Docs, Resolve, Type as WitType, TypeDefKind};

/// Where a WIT type lives: the resolve that owns its definitions and the type itself.
#[derive(Clone, Copy)]
pub struct WitRef<'a> {
    /// The resolve owning the type's definition.
    pub resolve: &'a Resolve,
    /// The WIT type.
    pub ty: WitType,
}

/// The WIT view of one node: its name and docs (if it is a named definition) and its shape.
struct WitNode<'a> {
    name: Option<&'a str>,
    docs: Option<&'a str>,
    kind: WitKind<'a>,
}

enum WitKind<'a> {
    Primitive(WitType),
    Def(&'a TypeDefKind),
}

fn docs(d: &Docs) -> Option<&str> {
    d.contents.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl<'a> WitRef<'a> {
    /// Follows type aliases to the definition, keeping the first name and docs met.
    fn node(self) -> WitNode<'a> {
        let mut ty = self.ty;
        let (mut name, mut doc) = (None, None);
        loop {
            match ty {
                WitType::Id(id) => {
                    let def = &self.resolve.types[id];
                    name = name.or(def.name.as_deref());
                    doc = doc.or_else(|| docs(&def.docs));
                    match &def.kind {
                        TypeDefKind::Type(inner) => ty = *inner,
                        kind => return WitNode { name, docs: doc, kind: WitKind::Def(kind) },
                    }
                }
                prim => return WitNode { name, docs: doc, kind: WitKind::Primitive(prim) },
            }
        }
    }

    fn with(self, ty: WitType) -> WitRef<'a> {
        WitRef { resolve: self.resolve, ty }
    }
}

/// Range and WIT name of each integer type.
pub fn integer_bounds(ty: &Type) -> Option<(i128, i128, &'static str)> {
    Some(match ty {
        Type::S8 => (i8::MIN.into(), i8::MAX.into(), "s8"),
        Type::U8 => (0, u8::MAX.into(), "u8"),
        Type::S16 => (i16::MIN.into(), i16::MAX.into(), "s16"),
        Type::U16 => (0, u16::MAX.into(), "u16"),
        Type::S32 => (i32::MIN.into(), i32::MAX.into(), "s32"),
        Type::U32 => (0, u32::MAX.into(), "u32"),
        Type::S64 => (i64::MIN.into(), i64::MAX.into(), "s64"),
        Type::U64 => (0, u64::MAX.into(), "u64"),
        _ => return None,
    })
}

fn number(n: i128) -> Value {
    if n < 0 {
        json!(n as i64)
    } else {
        json!(n as u64)
    }
}

/// The strings that stand for non-finite floats, which JSON numbers cannot carry.
pub const NON_FINITE: [&str; 3] = ["NaN", "Infinity", "-Infinity"];

/// Builds the schema of `ty`; `at` names the node for mismatch errors.
pub fn schema(ty: &Type, wit: Option<WitRef<'_>>, at: &str) -> Result<Value> {
    let node = wit.map(WitRef::node);
    let mut out = shape(ty, wit, node.as_ref(), at)?;
    if let (Some(node), Value::Object(map)) = (node, &mut out) {
        if let Some(name) = node.name {
            map.insert("title".into(), json!(name));
        }
        if let Some(d) = node.docs {
            map.entry("description").or_insert(json!(d));
        }
    }
    Ok(out)
}

fn mismatch(at: &str, ty: &Type, node: &WitNode<'_>) -> anyhow::Error {
    let wit = match &node.kind {
        WitKind::Primitive(p) => format!("{p:?}").to_lowercase(),
        WitKind::Def(k) => k.as_str().to_string(),
    };
    anyhow::anyhow!(
        "the WIT source does not describe this component: at {at} the WIT has {wit} but the component has {}",
        type_kind(ty)
    )
}

/// A short name of a component type's kind, for messages.
pub fn type_kind(ty: &Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::S8 | Type::U8 | Type::S16 | Type::U16 | Type::S32 | Type::U32 | Type::S64 | Type::U64 => {
            integer_bounds(ty).map(|b| b.2).unwrap_or("integer")
        }
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::List(_) => "list",
        Type::Map(_) => "map",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Option(_) => "option",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) => "own<resource>",
        Type::Borrow(_) => "borrow<resource>",
        Type::Future(_) => "future",
        Type::Stream(_) => "stream",
        Type::ErrorContext => "error-context",
        Type::FixedLengthList(_) => "fixed-length list",
    }
}

fn primitive_matches(ty: &Type, p: WitType) -> bool {
    matches!(
        (ty, p),
        (Type::Bool, WitType::Bool)
            | (Type::S8, WitType::S8)
            | (Type::U8, WitType::U8)
            | (Type::S16, WitType::S16)
            | (Type::U16, WitType::U16)
            | (Type::S32, WitType::S32)
            | (Type::U32, WitType::U32)
            | (Type::S64, WitType::S64)
            | (Type::U64, WitType::U64)
            | (Type::Float32, WitType::F32)
            | (Type::Float64, WitType::F64)
            | (Type::Char, WitType::Char)
            | (Type::String, WitType::String)
    )
}

/// One case of a variant-like type (variant cases, or `ok`/`err` of a nested result).
struct CaseSchema {
    name: String,
    payload: Option<Value>,
    docs: Option<String>,
}

fn cases_schema(cases: Vec<CaseSchema>) -> Value {
    let alternatives: Vec<Value> = cases
        .into_iter()
        .map(|c| {
            let mut alt = match c.payload {
                None => json!({ "const": c.name }),
                Some(p) => json!({
                    "type": "object",
                    "properties": { c.name.clone(): p },
                    "required": [c.name],
                    "additionalProperties": false,
                }),
            };
            if let Some(d) = c.docs {
                alt["description"] = json!(d);
            }
            alt
        })
        .collect();
    json!({ "oneOf": alternatives })
}

/// A string enum schema, with per-value docs from the WIT when it has any.
fn names_schema<'a>(names: impl Iterator<Item = &'a str>, wit_docs: Option<Vec<(&String, &Docs)>>) -> Value {
    let mut out = json!({ "type": "string", "enum": names.collect::<Vec<_>>() });
    let described: Map<String, Value> = wit_docs
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, d)| docs(d).map(|d| (name.clone(), json!(d))))
        .collect();
    if !described.is_empty() {
        out["x-enum-descriptions"] = Value::Object(described);
    }
    out
}

fn shape(ty: &Type, wit: Option<WitRef<'_>>, node: Option<&WitNode<'_>>, at: &str) -> Result<Value> {
    let kind: Option<&TypeDefKind> = match node.map(|n| &n.kind) {
        Some(WitKind::Def(k)) => Some(*k),
        _ => None,
    };
    let check = |ok: bool| -> Result<()> {
        match node {
            Some(n) if !ok => Err(mismatch(at, ty, n)),
            _ => Ok(()),
        }
    };
    // Where the WIT has no counterpart of this node: fine without WIT, a mismatch with it.
    macro_rules! no_wit {
        () => {{
            check(node.is_none())?;
            None
        }};
        ($none:expr) => {{
            check(node.is_none())?;
            $none
        }};
    }
    Ok(match ty {
        Type::Bool
        | Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64
        | Type::Float32
        | Type::Float64
        | Type::Char
        | Type::String => {
            check(
                matches!(node.map(|n| &n.kind), Some(WitKind::Primitive(p)) if primitive_matches(ty, *p))
                    || node.is_none(),
            )?;
            match ty {
                Type::Bool => json!({ "type": "boolean" }),
                Type::Float32 | Type::Float64 => json!({
                    "anyOf": [{ "type": "number" }, { "enum": NON_FINITE }],
                    "format": if matches!(ty, Type::Float32) { "f32" } else { "f64" },
                }),
                Type::Char => json!({ "type": "string", "minLength": 1, "maxLength": 1, "format": "char" }),
                Type::String => json!({ "type": "string" }),
                _ => {
                    let (min, max, name) = integer_bounds(ty).expect("integer type");
                    json!({ "type": "integer", "minimum": number(min), "maximum": number(max), "format": name })
                }
            }
        }
        Type::List(list) => {
            let inner = match kind {
                Some(TypeDefKind::List(t)) => Some(wit.expect("node implies wit").with(*t)),
                _ => no_wit!(),
            };
            let item = list.ty();
            if matches!(item, Type::U8) {
                json!({ "type": "string", "contentEncoding": "base64" })
            } else {
                json!({ "type": "array", "items": schema(&item, inner, &format!("{at}[]"))? })
            }
        }
        Type::FixedLengthList(list) => {
            let inner = match kind {
                Some(TypeDefKind::FixedLengthList(t, n)) if *n == list.len() => Some(wit.expect("wit").with(*t)),
                _ => no_wit!(),
            };
            let n = list.len();
            json!({ "type": "array", "items": schema(&list.ty(), inner, &format!("{at}[]"))?, "minItems": n, "maxItems": n })
        }
        Type::Map(map) => {
            let (k, v) = match kind {
                Some(TypeDefKind::Map(k, v)) => (Some(wit.expect("wit").with(*k)), Some(wit.expect("wit").with(*v))),
                _ => no_wit!((None, None)),
            };
            let value = schema(&map.value(), v, &format!("{at}{{}}"))?;
            if matches!(map.key(), Type::String) {
                json!({ "type": "object", "additionalProperties": value })
            } else {
                let key = schema(&map.key(), k, &format!("{at}{{key}}"))?;
                json!({
                    "type": "array",
                    "items": { "type": "array", "prefixItems": [key, value], "minItems": 2, "maxItems": 2, "items": false },
                })
            }
        }
        Type::Option(opt) => {
            let inner = match kind {
                Some(TypeDefKind::Option(t)) => Some(wit.expect("wit").with(*t)),
                _ => no_wit!(),
            };
            json!({ "anyOf": [schema(&opt.ty(), inner, at)?, { "type": "null" }] })
        }
        Type::Record(record) => {
            let wit_fields = match kind {
                Some(TypeDefKind::Record(r)) if r.fields.len() == record.fields().len() => Some(&r.fields),
                _ => no_wit!(),
            };
            let mut properties = Map::new();
            let mut required = Vec::new();
            for (i, field) in record.fields().enumerate() {
                let wit_field = wit_fields.map(|f| &f[i]);
                if let Some(wf) = wit_field {
                    if wf.name != field.name {
                        bail!("the WIT source does not describe this component: at {at} the WIT has field `{}` where the component has `{}`", wf.name, field.name);
                    }
                }
                let mut s = schema(
                    &field.ty,
                    wit_field.map(|f| wit.expect("wit").with(f.ty)),
                    &format!("{at}.{}", field.name),
                )?;
                if let Some(d) = wit_field.and_then(|f| docs(&f.docs)) {
                    s["description"] = json!(d);
                }
                if !matches!(field.ty, Type::Option(_)) {
                    required.push(json!(field.name));
                }
                properties.insert(field.name.to_string(), s);
            }
            json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
        }
        Type::Tuple(tuple) => {
            let wit_types = match kind {
                Some(TypeDefKind::Tuple(t)) if t.types.len() == tuple.types().len() => Some(&t.types),
                _ => no_wit!(),
            };
            let items = tuple
                .types()
                .enumerate()
                .map(|(i, t)| schema(&t, wit_types.map(|w| wit.expect("wit").with(w[i])), &format!("{at}.{i}")))
                .collect::<Result<Vec<_>>>()?;
            let n = items.len();
            json!({ "type": "array", "prefixItems": items, "minItems": n, "maxItems": n, "items": false })
        }
        Type::Enum(e) => {
            let wit_docs = match kind {
                Some(TypeDefKind::Enum(w)) if w.cases.len() == e.names().len() => {
                    Some(w.cases.iter().map(|c| (&c.name, &c.docs)).collect())
                }
                _ => no_wit!(),
            };
            names_schema(e.names(), wit_docs)
        }
        Type::Flags(flags) => {
            let wit_docs = match kind {
                Some(TypeDefKind::Flags(w)) if w.flags.len() == flags.names().len() => {
                    Some(w.flags.iter().map(|f| (&f.name, &f.docs)).collect())
                }
                _ => no_wit!(),
            };
            json!({ "type": "array", "items": names_schema(flags.names(), wit_docs), "uniqueItems": true })
        }
        Type::Variant(variant) => {
            let wit_cases = match kind {
                Some(TypeDefKind::Variant(w)) if w.cases.len() == variant.cases().len() => Some(&w.cases),
                _ => no_wit!(),
            };
            let cases = variant
                .cases()
                .enumerate()
                .map(|(i, case)| {
                    let wc = wit_cases.map(|c| &c[i]);
                    let payload = match (&case.ty, wc.and_then(|c| c.ty)) {
                        (Some(t), w) => {
                            Some(schema(t, w.map(|w| wit.expect("wit").with(w)), &format!("{at}.{}", case.name))?)
                        }
                        (None, _) => None,
                    };
                    Ok(CaseSchema {
                        name: case.name.to_string(),
                        payload,
                        docs: wc.and_then(|c| docs(&c.docs)).map(String::from),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            cases_schema(cases)
        }
        Type::Result(result) => {
            let (wok, werr) = match kind {
                Some(TypeDefKind::Result(r)) => (r.ok, r.err),
                _ => no_wit!((None, None)),
            };
            let case = |name: &str, t: Option<Type>, w: Option<WitType>| -> Result<CaseSchema> {
                Ok(CaseSchema {
                    name: name.into(),
                    payload: t
                        .map(|t| schema(&t, w.map(|w| wit.expect("wit").with(w)), &format!("{at}.{name}")))
                        .transpose()?,
                    docs: None,
                })
            };
            cases_schema(vec![case("ok", result.ok(), wok)?, case("err", result.err(), werr)?])
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            bail!("{at} has type {}, which cannot cross a command boundary", type_kind(ty))
        }
    })
}
