//! `json`: query and format JSON documents, and map a command over many inputs.

use serde_json::Value;

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "continuum-plugins:json/json",
    with: {
        "continuum:host/commands@0.1.0": continuum_sdk::host::commands,
        "continuum:host/log@0.1.0": continuum_sdk::host::log,
    },
});

struct Json;

/// One step of a path: an object key or an array index.
enum Step {
    Key(String),
    Index(usize),
}

fn parse_document(document: &str) -> Result<Value, JsonError> {
    serde_json::from_str(document).map_err(|e| JsonError::InvalidJson(e.to_string()))
}

/// Parses `a.b[0].c` or a JSON pointer (`/a/b/0/c`).
fn parse_path(path: &str) -> Result<Vec<Step>, JsonError> {
    if path.is_empty() || path == "." {
        return Ok(Vec::new());
    }
    if let Some(pointer) = path.strip_prefix('/') {
        return Ok(pointer
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .map(|t| match t.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Key(t),
            })
            .collect());
    }
    let mut steps = Vec::new();
    for segment in path.trim_start_matches('.').split('.') {
        let (key, mut rest) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if key.is_empty() && rest.is_empty() {
            return Err(JsonError::InvalidPath(format!("empty step in `{path}`")));
        }
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| JsonError::InvalidPath(format!("unclosed `[` in `{path}`")))?;
            let index = rest[1..close].parse().map_err(|_| {
                JsonError::InvalidPath(format!("`{}` is not an array index in `{path}`", &rest[1..close]))
            })?;
            steps.push(Step::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(JsonError::InvalidPath(format!("expected `[` or `.` after `]` in `{path}`")));
            }
        }
    }
    Ok(steps)
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

impl Guest for Json {
    fn query(document: String, path: String) -> Result<String, JsonError> {
        let mut current = &parse_document(&document)?;
        let mut walked = String::new();
        for step in parse_path(&path)? {
            current = match (&step, current) {
                (Step::Key(k), Value::Object(map)) => map.get(k),
                (Step::Index(i), Value::Array(items)) => items.get(*i),
                (Step::Index(i), Value::Object(map)) => map.get(&i.to_string()),
                _ => None,
            }
            .ok_or_else(|| {
                let at = if walked.is_empty() { "the document root".to_string() } else { format!("`{walked}`") };
                match &step {
                    Step::Key(k) => JsonError::NotFound(format!("no key `{k}` at {at}")),
                    Step::Index(i) => JsonError::NotFound(format!("no index {i} at {at}")),
                }
            })?;
            match step {
                Step::Key(k) => walked.push_str(&format!(".{k}")),
                Step::Index(i) => walked.push_str(&format!("[{i}]")),
            }
        }
        Ok(current.to_string())
    }

    fn format(document: String, options: FormatOptions) -> Result<String, JsonError> {
        let mut value = parse_document(&document)?;
        if options.sort_keys.unwrap_or(false) {
            value = sort_keys(value);
        }
        let indent = options.indent.unwrap_or(2) as usize;
        if indent == 0 {
            return Ok(value.to_string());
        }
        let pad = vec![b' '; indent];
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(&pad);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(&value, &mut ser).map_err(|e| JsonError::InvalidJson(e.to_string()))?;
        Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
    }

    fn map(request: MapRequest) -> Result<Vec<String>, String> {
        let base = match request.extra.as_deref() {
            None => serde_json::Map::new(),
            Some(extra) => match serde_json::from_str(extra) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err("`extra` must be a JSON object of parameters".into()),
                Err(e) => return Err(format!("`extra` is not valid JSON: {e}")),
            },
        };
        continuum_sdk::log::info(&format!("mapping {} over {} items", request.command, request.items.len()));
        request
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let mut params = base.clone();
                params.insert(request.field.clone(), Value::String(item));
                continuum_sdk::commands::call(&request.command, &Value::Object(params))
                    .map(|v| v.to_string())
                    .map_err(|e| format!("item {i}: {}", continuum_sdk::commands::message(&e)))
            })
            .collect()
    }
}

export!(Json);
