//! `continuum run <command> --help`: the reflected schema rendered for people.

use std::fmt::Write as _;

use serde_json::Value;

use super::params::unwrap_option;
use crate::reflect::CommandSchema;

/// A short WIT-like label for a schema: `u32`, `list<string>`, `case-style`, `base64`.
pub fn type_label(schema: &Value) -> String {
    let inner = unwrap_option(schema);
    let optional = !std::ptr::eq(inner, schema);
    let label = if let Some(title) = inner.get("title").and_then(Value::as_str) {
        title.to_string()
    } else if let Some(format) = inner.get("format").and_then(Value::as_str) {
        format.to_string()
    } else if inner.get("contentEncoding").is_some() {
        "bytes (base64)".to_string()
    } else {
        match inner.get("type").and_then(Value::as_str) {
            Some("boolean") => "bool".into(),
            Some("string") => "string".into(),
            Some("null") => "nothing".into(),
            Some("array") => match (inner.get("prefixItems"), inner.get("items")) {
                (Some(Value::Array(items)), _) => {
                    format!("tuple<{}>", items.iter().map(type_label).collect::<Vec<_>>().join(", "))
                }
                (_, Some(items)) if inner.get("uniqueItems").is_some() && items.get("enum").is_some() => "flags".into(),
                (_, Some(items)) => match inner.get("minItems") {
                    Some(n) => format!("list<{}, {n}>", type_label(items)),
                    None => format!("list<{}>", type_label(items)),
                },
                _ => "list".into(),
            },
            Some("object") => match inner.get("additionalProperties") {
                Some(v @ Value::Object(_)) => format!("map<string, {}>", type_label(v)),
                _ => "record".into(),
            },
            _ if inner.get("oneOf").is_some() => match cases(inner).as_deref() {
                Some([ok, err]) if ok.name == "ok" && err.name == "err" => format!(
                    "result<{}, {}>",
                    ok.payload.as_deref().unwrap_or("_"),
                    err.payload.as_deref().unwrap_or("_")
                ),
                _ => "variant".into(),
            },
            _ => "value".into(),
        }
    };
    if optional {
        format!("option<{label}>")
    } else {
        label
    }
}

/// The allowed values of an enum or flags schema, with their docs.
struct Choices<'a> {
    names: Vec<String>,
    docs: Option<&'a serde_json::Map<String, Value>>,
}

fn choices(schema: &Value) -> Option<Choices<'_>> {
    let inner = unwrap_option(schema);
    let holder = if inner.get("uniqueItems").is_some() { inner.get("items")? } else { inner };
    let names = holder.get("enum")?.as_array()?.iter().filter_map(|v| v.as_str().map(String::from)).collect();
    Some(Choices { names, docs: holder.get("x-enum-descriptions").and_then(Value::as_object) })
}

/// One case of a variant schema.
struct Case {
    name: String,
    payload: Option<String>,
    doc: Option<String>,
}

fn cases(schema: &Value) -> Option<Vec<Case>> {
    let alts = unwrap_option(schema).get("oneOf")?.as_array()?;
    Some(
        alts.iter()
            .filter_map(|alt| {
                let doc = alt.get("description").and_then(Value::as_str).map(String::from);
                if let Some(c) = alt.get("const").and_then(Value::as_str) {
                    return Some(Case { name: c.to_string(), payload: None, doc });
                }
                let (name, payload) = alt.get("properties")?.as_object()?.iter().next()?;
                Some(Case { name: name.clone(), payload: Some(type_label(payload)), doc })
            })
            .collect(),
    )
}

fn describe_values(out: &mut String, schema: &Value, indent: &str) {
    if let Some(choices) = choices(schema) {
        for n in choices.names {
            let doc = choices.docs.and_then(|d| d.get(&n)).and_then(Value::as_str).unwrap_or("");
            let _ = writeln!(out, "{indent}{n:<14} {doc}");
        }
    } else if let Some(cases) = cases(schema) {
        for case in cases {
            let name = &case.name;
            let shape = match case.payload {
                Some(p) => format!("{{\"{name}\": <{p}>}}"),
                None => format!("\"{name}\""),
            };
            let _ = writeln!(out, "{indent}{shape:<24} {}", case.doc.unwrap_or_default());
        }
    }
}

fn describe_record(out: &mut String, schema: &Value, indent: &str) {
    let inner = unwrap_option(schema);
    let Some(props) = inner.get("properties").and_then(Value::as_object) else { return };
    for (name, field) in props {
        let doc = field.get("description").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(out, "{indent}{name}: {} — {doc}", type_label(field));
    }
}

/// One line describing a command's signature: `(text: string, top: option<u32>) -> text-stats`.
pub fn signature(command: &CommandSchema) -> String {
    let params = command
        .params
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter().map(|(name, schema)| format!("{name}: {}", type_label(schema))).collect::<Vec<_>>().join(", ")
        })
        .unwrap_or_default();
    let error = command.error.as_ref().map(|e| format!(" ! {}", type_label(e))).unwrap_or_default();
    format!("({params}) -> {}{error}", type_label(&command.result))
}

/// Renders the help page of `command`.
pub fn render(command: &CommandSchema) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", command.name);
    if let Some(d) = &command.description {
        let _ = writeln!(out, "\n{d}");
    }
    let name = &command.name;
    let _ = writeln!(
        out,
        "\nUsage: continuum run {name} [--flag <value>]...\n       continuum run {name} '<params as JSON>'"
    );
    let props = command.params.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = command
        .params
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match props {
        Some(props) if !props.is_empty() => {
            let _ = writeln!(out, "\nParameters:");
            for (field, schema) in props {
                let label = type_label(unwrap_option(schema));
                let flag = format!("--{field} <{label}>");
                let req = if required.contains(&field.as_str()) { "(required) " } else { "" };
                let doc = schema.get("description").and_then(Value::as_str).unwrap_or("");
                let _ = writeln!(out, "  {flag:<34} {req}{doc}");
                describe_values(&mut out, schema, "      ");
                if unwrap_option(schema).get("properties").is_some() {
                    describe_record(&mut out, schema, "      ");
                }
            }
        }
        _ => {
            let _ = writeln!(out, "\nParameters: none");
        }
    }
    let _ = writeln!(out, "\nReturns: {}", type_label(&command.result));
    if let Some(d) = command.result.get("description").and_then(Value::as_str) {
        let _ = writeln!(out, "  {d}");
    }
    describe_record(&mut out, &command.result, "  ");
    describe_values(&mut out, &command.result, "  ");
    if let Some(err) = &command.error {
        let _ = writeln!(out, "\nErrors: {}", type_label(err));
        describe_values(&mut out, err, "  ");
    }
    let _ = writeln!(
        out,
        "\nValues: `@file` reads a value from a file (`@@` for a literal @); repeat a list flag for each item;\n\
         records, tuples and variants take JSON (a variant case without payload is just its name)."
    );
    out
}
