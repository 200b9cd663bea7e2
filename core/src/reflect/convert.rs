//! JSON values ↔ component values, following the component's types.
//!
//! Every error names the path of the offending value (`params.items[2].name`) and what was
//! expected, so bad input is refused before the plugin runs.

use base64::Engine as _;
use serde_json::{Map, Number, Value};
use wasmtime::component::types::Type;
use wasmtime::component::Val;

use super::schema::{integer_bounds, type_kind, NON_FINITE};

/// A value that does not fit its type, with the path to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConvertError {
    /// Where the value is, e.g. `params.items[2]`.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

/// Where a value is, for an error message: rendered (`params.items[2].name`) only when an
/// error is made, so converting a valid value formats nothing (a path per field and item was
/// ≈ 4 % of a short call).
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The outermost value: `params`, `result`, `error`.
    Root(&'a str),
    /// A field, map key or case of the value at the parent path: `parent.name`.
    Field(&'a Path<'a>, &'a str),
    /// An item of the list, tuple or pair at the parent path: `parent[i]`.
    Item(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Item(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn err<T>(path: &Path, message: impl Into<String>) -> Result<T, ConvertError> {
    Err(ConvertError { path: path.to_string(), message: message.into() })
}

/// A short rendering of a JSON value for messages.
pub fn preview(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn expected<T>(path: &Path, what: &str, got: &Value) -> Result<T, ConvertError> {
    err(path, format!("expected {what}, got {}", preview(got)))
}

/// Describes the object keys a record accepts, for "unknown field" messages.
fn field_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Converts the fields of a JSON object into values, in the order of `fields`, as for a record:
/// option fields may be absent or null; unknown keys are refused.
pub fn object_to_fields(fields: &[(&str, &Type)], json: &Value, path: &Path) -> Result<Vec<Val>, ConvertError> {
    let Value::Object(map) = json else {
        return expected(path, "an object", json);
    };
    if let Some(unknown) = map.keys().find(|k| !fields.iter().any(|f| f.0 == k.as_str())) {
        let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
        return err(path, format!("unknown field `{unknown}`; expected {}", field_list(&names)));
    }
    fields
        .iter()
        .map(|&(name, ty)| match map.get(name) {
            Some(v) => to_val(ty, v, &Path::Field(path, name)),
            None if matches!(ty, Type::Option(_)) => Ok(Val::Option(None)),
            None => err(path, format!("missing required field `{name}` ({})", type_kind(ty))),
        })
        .collect()
}

fn float(ty: &Type, json: &Value, path: &Path) -> Result<f64, ConvertError> {
    match json {
        Value::Number(n) => n.as_f64().map_or_else(|| expected(path, "a number", json), Ok),
        Value::String(s) if NON_FINITE.contains(&s.as_str()) => Ok(match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            _ => f64::NEG_INFINITY,
        }),
        _ => expected(path, &format!("a number ({}), or \"NaN\", \"Infinity\" or \"-Infinity\"", type_kind(ty)), json),
    }
}

fn integer(ty: &Type, json: &Value, path: &Path) -> Result<Val, ConvertError> {
    let (min, max, name) = integer_bounds(ty).expect("integer type");
    let n: Option<i128> = match json {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    };
    let Some(n) = n.filter(|n| (min..=max).contains(n)) else {
        return expected(path, &format!("integer in {min}..={max} ({name})"), json);
    };
    Ok(match ty {
        Type::S8 => Val::S8(n as i8),
        Type::U8 => Val::U8(n as u8),
        Type::S16 => Val::S16(n as i16),
        Type::U16 => Val::U16(n as u16),
        Type::S32 => Val::S32(n as i32),
        Type::U32 => Val::U32(n as u32),
        Type::S64 => Val::S64(n as i64),
        _ => Val::U64(n as u64),
    })
}

/// Converts one case of a variant-like value: `"name"` for a case without payload, or
/// `{"name": payload}`.
fn case_to_val<'a>(
    cases: &'a [(String, Option<Type>)],
    json: &Value,
    path: &Path,
) -> Result<(&'a str, Option<Val>), ConvertError> {
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    let describe = || {
        cases
            .iter()
            .map(|(n, t)| if t.is_some() { format!("{{\"{n}\": …}}") } else { format!("\"{n}\"") })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (name, payload) = match json {
        Value::String(s) => (s.as_str(), None),
        Value::Object(map) if map.len() == 1 => {
            let (k, v) = map.iter().next().expect("one entry");
            (k.as_str(), Some(v))
        }
        _ => return expected(path, &format!("one of {}", describe()), json),
    };
    let Some((case, ty)) = cases.iter().find(|c| c.0 == name) else {
        return err(path, format!("unknown case `{name}`; expected one of {}", field_list(&names)));
    };
    match (ty, payload) {
        (None, None) => Ok((case, None)),
        (Some(t), Some(v)) => Ok((case, Some(to_val(t, v, &Path::Field(path, name))?))),
        (None, Some(_)) => err(path, format!("case `{name}` has no payload; write it as \"{name}\"")),
        (Some(t), None) => {
            err(path, format!("case `{name}` needs a payload ({}); write it as {{\"{name}\": …}}", type_kind(t)))
        }
    }
}

/// Converts a JSON value into a component value of type `ty`.
pub fn to_val(ty: &Type, json: &Value, path: &Path) -> Result<Val, ConvertError> {
    Ok(match ty {
        Type::Bool => match json {
            Value::Bool(b) => Val::Bool(*b),
            _ => return expected(path, "true or false", json),
        },
        Type::S8 | Type::U8 | Type::S16 | Type::U16 | Type::S32 | Type::U32 | Type::S64 | Type::U64 => {
            integer(ty, json, path)?
        }
        Type::Float32 => Val::Float32(float(ty, json, path)? as f32),
        Type::Float64 => Val::Float64(float(ty, json, path)?),
        Type::Char => match json {
            Value::String(s) if s.chars().count() == 1 => Val::Char(s.chars().next().expect("one char")),
            _ => return expected(path, "a string of exactly one character", json),
        },
        Type::String => match json {
            Value::String(s) => Val::String(s.clone()),
            _ => return expected(path, "a string", json),
        },
        Type::List(list) => match (list.ty(), json) {
            (Type::U8, Value::String(s)) => match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(bytes) => Val::List(bytes.into_iter().map(Val::U8).collect()),
                Err(e) => return err(path, format!("expected base64-encoded bytes: {e}")),
            },
            (Type::U8, _) => return expected(path, "a base64 string (bytes)", json),
            (item, Value::Array(items)) => Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| to_val(&item, v, &Path::Item(path, i)))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return expected(path, "an array", json),
        },
        Type::FixedLengthList(list) => match json {
            Value::Array(items) if items.len() == list.len() as usize => Val::FixedLengthList(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| to_val(&list.ty(), v, &Path::Item(path, i)))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return expected(path, &format!("an array of exactly {} items", list.len()), json),
        },
        Type::Map(map) => match (map.key(), json) {
            (Type::String, Value::Object(entries)) => Val::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((Val::String(k.clone()), to_val(&map.value(), v, &Path::Field(path, k))?)))
                    .collect::<Result<_, _>>()?,
            ),
            (Type::String, _) => return expected(path, "an object", json),
            (key, Value::Array(pairs)) => Val::Map(
                pairs
                    .iter()
                    .enumerate()
                    .map(|(i, pair)| {
                        let at = Path::Item(path, i);
                        match pair {
                            Value::Array(kv) if kv.len() == 2 => Ok((
                                to_val(&key, &kv[0], &Path::Item(&at, 0))?,
                                to_val(&map.value(), &kv[1], &Path::Item(&at, 1))?,
                            )),
                            _ => expected(&at, "a [key, value] pair", pair),
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return expected(path, "an array of [key, value] pairs", json),
        },
        Type::Option(opt) => match json {
            Value::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(to_val(&opt.ty(), v, path)?))),
        },
        Type::Record(record) => {
            let owned: Vec<_> = record.fields().collect();
            let fields: Vec<(&str, &Type)> = owned.iter().map(|f| (f.name, &f.ty)).collect();
            let values = object_to_fields(&fields, json, path)?;
            Val::Record(fields.iter().map(|f| f.0.to_string()).zip(values).collect())
        }
        Type::Tuple(tuple) => {
            let types: Vec<Type> = tuple.types().collect();
            match json {
                Value::Array(items) if items.len() == types.len() => Val::Tuple(
                    types
                        .iter()
                        .zip(items)
                        .enumerate()
                        .map(|(i, (t, v))| to_val(t, v, &Path::Item(path, i)))
                        .collect::<Result<_, _>>()?,
                ),
                _ => return expected(path, &format!("an array of exactly {} items", types.len()), json),
            }
        }
        Type::Enum(e) => match json {
            Value::String(s) if e.names().any(|n| n == s) => Val::Enum(s.clone()),
            Value::String(s) => {
                let names: Vec<&str> = e.names().collect();
                return err(path, format!("unknown value `{s}`; expected one of {}", field_list(&names)));
            }
            _ => return expected(path, &format!("one of {}", field_list(&e.names().collect::<Vec<_>>())), json),
        },
        Type::Flags(flags) => {
            let names: Vec<&str> = flags.names().collect();
            let Value::Array(items) = json else {
                return expected(path, &format!("an array of flags from {}", field_list(&names)), json);
            };
            let mut set: Vec<String> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !names.contains(&s.as_str()) => {
                        return err(
                            &Path::Item(path, i),
                            format!("unknown flag `{s}`; expected one of {}", field_list(&names)),
                        )
                    }
                    Value::String(s) if set.contains(s) => {
                        return err(&Path::Item(path, i), format!("flag `{s}` given twice"))
                    }
                    Value::String(s) => set.push(s.clone()),
                    _ => return expected(&Path::Item(path, i), "a flag name", item),
                }
            }
            Val::Flags(set)
        }
        Type::Variant(variant) => {
            let cases: Vec<(String, Option<Type>)> = variant.cases().map(|c| (c.name.to_string(), c.ty)).collect();
            let (name, payload) = case_to_val(&cases, json, path)?;
            Val::Variant(name.to_string(), payload.map(Box::new))
        }
        Type::Result(result) => {
            let cases = vec![("ok".to_string(), result.ok()), ("err".to_string(), result.err())];
            let (name, payload) = case_to_val(&cases, json, path)?;
            let payload = payload.map(Box::new);
            Val::Result(if name == "ok" { Ok(payload) } else { Err(payload) })
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return err(path, format!("{} values cannot be passed to a command", type_kind(ty)))
        }
    })
}

fn float_json(f: f64, shortest: String) -> Value {
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f.is_infinite() {
        Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        // The shortest decimal that reads back as the same float (f32 `0.1` stays `0.1`), read
        // with std's correctly rounded parser: serde_json's default one can be off by an ulp.
        let exact = shortest.parse::<f64>().unwrap_or(f);
        Number::from_f64(exact).map_or(Value::Null, Value::Number)
    }
}

fn case_json(name: &str, payload: Option<(&Type, &Val)>, path: &Path) -> Result<Value, ConvertError> {
    Ok(match payload {
        None => Value::String(name.to_string()),
        Some((t, v)) => Value::Object(Map::from_iter([(name.to_string(), to_json(t, v, &Path::Field(path, name))?)])),
    })
}

/// Converts a component value of type `ty` into JSON.
pub fn to_json(ty: &Type, val: &Val, path: &Path) -> Result<Value, ConvertError> {
    Ok(match (ty, val) {
        (_, Val::Bool(b)) => Value::Bool(*b),
        (_, Val::S8(n)) => (*n).into(),
        (_, Val::U8(n)) => (*n).into(),
        (_, Val::S16(n)) => (*n).into(),
        (_, Val::U16(n)) => (*n).into(),
        (_, Val::S32(n)) => (*n).into(),
        (_, Val::U32(n)) => (*n).into(),
        (_, Val::S64(n)) => (*n).into(),
        (_, Val::U64(n)) => (*n).into(),
        (_, Val::Float32(f)) => float_json(f64::from(*f), format!("{f:?}")),
        (_, Val::Float64(f)) => float_json(*f, format!("{f:?}")),
        (_, Val::Char(c)) => Value::String(c.to_string()),
        (_, Val::String(s)) => Value::String(s.clone()),
        (Type::List(list), Val::List(items)) if matches!(list.ty(), Type::U8) => {
            let bytes: Vec<u8> = items.iter().map(|v| if let Val::U8(b) = v { *b } else { 0 }).collect();
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        (Type::List(list), Val::List(items)) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_json(&list.ty(), v, &Path::Item(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        (Type::FixedLengthList(list), Val::FixedLengthList(items)) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_json(&list.ty(), v, &Path::Item(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        (Type::Map(map), Val::Map(entries)) if matches!(map.key(), Type::String) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let Val::String(k) = k else { return err(path, "map key is not a string") };
                    Ok((k.clone(), to_json(&map.value(), v, &Path::Field(path, k))?))
                })
                .collect::<Result<_, _>>()?,
        ),
        (Type::Map(map), Val::Map(entries)) => Value::Array(
            entries
                .iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let at = Path::Item(path, i);
                    Ok(Value::Array(vec![
                        to_json(&map.key(), k, &Path::Item(&at, 0))?,
                        to_json(&map.value(), v, &Path::Item(&at, 1))?,
                    ]))
                })
                .collect::<Result<_, _>>()?,
        ),
        (Type::Option(opt), Val::Option(v)) => match v {
            None => Value::Null,
            Some(v) => to_json(&opt.ty(), v, path)?,
        },
        (Type::Record(record), Val::Record(fields)) => Value::Object(
            record
                .fields()
                .zip(fields)
                .map(|(f, (name, v))| Ok((name.clone(), to_json(&f.ty, v, &Path::Field(path, name))?)))
                .collect::<Result<_, _>>()?,
        ),
        (Type::Tuple(tuple), Val::Tuple(items)) => Value::Array(
            tuple
                .types()
                .zip(items)
                .enumerate()
                .map(|(i, (t, v))| to_json(&t, v, &Path::Item(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        (_, Val::Enum(name)) => Value::String(name.clone()),
        (_, Val::Flags(names)) => Value::Array(names.iter().map(|n| Value::String(n.clone())).collect()),
        (Type::Variant(variant), Val::Variant(name, payload)) => {
            let ty = variant.cases().find(|c| c.name == name).and_then(|c| c.ty);
            case_json(name, ty.as_ref().zip(payload.as_deref()), path)?
        }
        (Type::Result(result), Val::Result(r)) => match r {
            Ok(v) => case_json("ok", result.ok().as_ref().zip(v.as_deref()), path)?,
            Err(v) => case_json("err", result.err().as_ref().zip(v.as_deref()), path)?,
        },
        _ => {
            return err(path, format!("the component returned a value that does not match its {} type", type_kind(ty)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_renders_fields_and_items_as_written_in_json() {
        let params = Path::Root("params");
        let items = Path::Field(&params, "items");
        let third = Path::Item(&items, 2);
        assert_eq!(Path::Field(&third, "name").to_string(), "params.items[2].name");
        assert_eq!(Path::Item(&Path::Item(&Path::Field(&params, "pairs"), 0), 1).to_string(), "params.pairs[0][1]");
        let e = err::<()>(&Path::Field(&third, "name"), "expected a string, got 5").unwrap_err();
        assert_eq!(e.to_string(), "params.items[2].name: expected a string, got 5");
    }
}
