//! Command-line arguments → JSON params, driven by the command's reflected schema.
//!
//! `--field value` per record field (kebab-case, as in WIT), repeated flags for lists,
//! `@path` to read a value from a file (`@@` for a literal leading `@`), bare `--flag` for
//! `true`, or one JSON literal as the whole params.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::reflect::CommandSchema;

/// What a flag's value is read as, from its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bytes,
    Bool,
    Number,
    List,
    Json,
}

/// The schema without its `option` wrapper (`anyOf: [T, null]`).
pub fn unwrap_option(schema: &Value) -> &Value {
    match schema.get("anyOf").and_then(Value::as_array) {
        Some(alts) if alts.len() == 2 && alts[1].get("type") == Some(&Value::from("null")) => &alts[0],
        _ => schema,
    }
}

fn kind(schema: &Value) -> Kind {
    let s = unwrap_option(schema);
    match s.get("type").and_then(Value::as_str) {
        Some("string") if s.get("contentEncoding").is_some() => Kind::Bytes,
        Some("string") => Kind::Text,
        Some("boolean") => Kind::Bool,
        Some("integer") => Kind::Number,
        Some("array") if s.get("prefixItems").is_none() => Kind::List,
        _ if s.get("format").and_then(Value::as_str).is_some_and(|f| f.starts_with('f')) => Kind::Number,
        _ => Kind::Json,
    }
}

/// Reads `@path` values; `@@x` is the literal `@x`.
fn read_value(raw: &str, bytes: bool) -> Result<Value> {
    if let Some(rest) = raw.strip_prefix("@@") {
        return Ok(Value::String(format!("@{rest}")));
    }
    match raw.strip_prefix('@') {
        Some(path) if bytes => {
            let data = std::fs::read(path).with_context(|| format!("cannot read `{path}` (from `@{path}`)"))?;
            Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(data)))
        }
        Some(path) => Ok(Value::String(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read `{path}` as UTF-8 text (from `@{path}`)"))?,
        )),
        None => Ok(Value::String(raw.to_string())),
    }
}

/// Parses one textual value for a field of `schema`.
fn parse_value(raw: &str, schema: &Value) -> Result<Value> {
    let k = kind(schema);
    let text = read_value(raw, k == Kind::Bytes)?;
    let Value::String(s) = &text else { return Ok(text) };
    Ok(match k {
        Kind::Text | Kind::Bytes => text,
        // Anything that is not valid JSON stays a string, and the schema check names the problem.
        Kind::Bool | Kind::Number | Kind::Json | Kind::List => serde_json::from_str(s).unwrap_or(text),
    })
}

/// Builds the params object of `command` from its command-line arguments.
pub fn from_args(command: &CommandSchema, args: &[String]) -> Result<Value> {
    if args.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    if !args[0].starts_with("--") {
        if args.len() > 1 {
            bail!("give either one JSON object as the params or --flags, not both (unexpected `{}`)", args[1]);
        }
        let text = match read_value(&args[0], false)? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        return serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not a JSON object of params; use --flags or valid JSON", args[0]));
    }
    let properties = command.params.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut params = Map::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(flag) = arg.strip_prefix("--") else {
            bail!("unexpected argument `{arg}`; values follow their flag, e.g. --text \"…\"");
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let Some(schema) = properties.get(name) else {
            let known: Vec<String> = properties.keys().map(|k| format!("--{k}")).collect();
            bail!(
                "unknown flag --{name} for {}; it takes {} (see `continuum run {} --help`)",
                command.name,
                if known.is_empty() { "no parameters".to_string() } else { known.join(", ") },
                command.name
            );
        };
        let next_is_value = args.get(i + 1).is_some_and(|a| !a.starts_with("--"));
        let raw = match inline {
            Some(v) => v,
            None if next_is_value => {
                i += 1;
                args[i].clone()
            }
            None if kind(schema) == Kind::Bool => "true".to_string(),
            None => bail!("flag --{name} needs a value"),
        };
        i += 1;
        // A list flag given `@file` holding a JSON array takes the whole array.
        let raw = match raw.strip_prefix('@') {
            Some(path) if kind(schema) == Kind::List && !path.starts_with('@') => match read_value(&raw, false)? {
                Value::String(text) if text.trim_start().starts_with('[') => text,
                _ => raw,
            },
            _ => raw,
        };
        if kind(schema) == Kind::List && !raw.trim_start().starts_with('[') {
            let items = unwrap_option(schema).get("items").cloned().unwrap_or(Value::Null);
            let item = parse_value(&raw, &items)?;
            match params.entry(name.to_string()).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(list) => list.push(item),
                _ => bail!("flag --{name} was given both as a JSON array and as separate values"),
            }
            continue;
        }
        if params.insert(name.to_string(), parse_value(&raw, schema)?).is_some() {
            bail!("flag --{name} was given more than once");
        }
    }
    Ok(Value::Object(params))
}

/// Adds the words given after `--` to `params` as the `args` list a program takes.
pub fn with_passed_through(command: &CommandSchema, mut params: Value, words: Vec<String>) -> Result<Value> {
    if words.is_empty() {
        return Ok(params);
    }
    let takes_args = command.params.pointer("/properties/args/type").and_then(Value::as_str) == Some("array");
    if !takes_args {
        bail!("words after `--` are a program's arguments, but {} takes no `args` list", command.name);
    }
    let Some(object) = params.as_object_mut() else { bail!("params after `--` need an object") };
    match object.entry("args").or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(list) => list.extend(words.into_iter().map(Value::String)),
        _ => bail!("--args must be a list"),
    }
    Ok(params)
}

/// Rewrites a params error path for the command line: `params.max-words: …` → `--max-words: …`.
pub fn flag_error(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("params.") {
        return format!("--{rest}");
    }
    if let Some(rest) = message.strip_prefix("params: missing required field `") {
        if let Some((name, tail)) = rest.split_once('`') {
            return format!("missing required flag --{name}{tail}");
        }
    }
    if let Some(rest) = message.strip_prefix("params: unknown field `") {
        if let Some((name, _)) = rest.split_once('`') {
            return format!("unknown parameter `{name}`");
        }
    }
    message.strip_prefix("params: ").unwrap_or(message).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn command() -> CommandSchema {
        CommandSchema {
            name: "t/c".into(),
            description: None,
            param_style: crate::reflect::ParamStyle::Named,
            params: json!({ "type": "object", "properties": {
                "text": { "type": "string" },
                "n": { "anyOf": [{ "type": "integer", "format": "u32" }, { "type": "null" }] },
                "tags": { "type": "array", "items": { "type": "string" } },
                "on": { "type": "boolean" },
                "data": { "type": "string", "contentEncoding": "base64" },
                "mode": { "oneOf": [{ "const": "fast" }] },
            }}),
            result: json!({}),
            error: None,
        }
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_follow_the_schema() {
        let p = from_args(
            &command(),
            &args(&["--text", "42", "--n=7", "--tags", "a", "--tags", "b", "--on", "--mode", "fast"]),
        )
        .unwrap();
        assert_eq!(p, json!({ "text": "42", "n": 7, "tags": ["a", "b"], "on": true, "mode": "fast" }));
        let p = from_args(&command(), &args(&["--tags", "[\"x\"]", "--text", "@@at"])).unwrap();
        assert_eq!(p, json!({ "tags": ["x"], "text": "@at" }));
    }

    #[test]
    fn files_are_read_as_text_or_base64() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.txt");
        std::fs::write(&f, "hi").unwrap();
        let at = format!("@{}", f.display());
        let p = from_args(&command(), &args(&["--text", &at, "--data", &at])).unwrap();
        assert_eq!(p, json!({ "text": "hi", "data": "aGk=" }));
        // A list flag takes a file's JSON array whole, or a file's text as one item.
        let list = dir.path().join("list.json");
        std::fs::write(&list, r#"["a", "b"]"#).unwrap();
        let p = from_args(&command(), &args(&["--tags", &format!("@{}", list.display())])).unwrap();
        assert_eq!(p.get("tags"), Some(&json!(["a", "b"])));
        let p = from_args(&command(), &args(&["--tags", &at, "--tags", "x"])).unwrap();
        assert_eq!(p.get("tags"), Some(&json!(["hi", "x"])));
    }

    #[test]
    fn bad_flags_are_named() {
        let e = from_args(&command(), &args(&["--nope", "1"])).unwrap_err().to_string();
        assert!(e.contains("unknown flag --nope") && e.contains("--text"), "{e}");
        let e = from_args(&command(), &args(&["--text", "a", "--text", "b"])).unwrap_err().to_string();
        assert!(e.contains("more than once"), "{e}");
        let e = from_args(&command(), &args(&["--n"])).unwrap_err().to_string();
        assert!(e.contains("--n needs a value"), "{e}");
        assert_eq!(flag_error("params.n: expected integer"), "--n: expected integer");
        assert_eq!(
            flag_error("params: missing required field `text` (string)"),
            "missing required flag --text (string)"
        );
    }

    #[test]
    fn one_json_literal_is_the_whole_params() {
        assert_eq!(from_args(&command(), &args(&["{\"text\":\"x\"}"])).unwrap(), json!({ "text": "x" }));
        assert!(from_args(&command(), &args(&["{", "--text"])).is_err());
    }
}
