//! Plain WASI programs as commands: a component exporting `wasi:cli/run` (what every toolchain
//! emits for a `main`) becomes one command named after its plugin. Its parameters are the
//! process's inputs (arguments, stdin, environment) and its result the process's outputs
//! (stdout, stderr, exit code), so the same JSON Schema machinery describes it.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::convert::ConvertError;

/// The export a program is found by, without its version: `wasi:cli/run@0.2.x`.
const CLI_RUN: &str = "wasi:cli/run@0.2.";

/// The export of a `wasi:http` handler, without its version.
const HTTP_HANDLER: &str = "wasi:http/incoming-handler@0.2.";

/// Whether an exported instance is `wasi:cli/run` (a program's entry point).
pub fn is_cli_run(export: &str) -> bool {
    export.starts_with(CLI_RUN)
}

/// Whether an exported instance is `wasi:http/incoming-handler` (an HTTP handler).
pub fn is_http_handler(export: &str) -> bool {
    export.starts_with(HTTP_HANDLER)
}

/// Longest argument list a program call may pass (Linux's own limit is about this).
const MAX_ARGS: usize = 4096;

/// What a program is started with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProgramInput {
    /// Arguments after the program's name (`argv[1..]`).
    #[serde(default)]
    pub args: Vec<String>,
    /// What the program reads from stdin (nothing when absent).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Its whole environment: the host's is never passed on.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
}

impl ProgramInput {
    /// Reads a program's params, naming the field that is wrong.
    pub fn from_params(params: &Value) -> Result<ProgramInput, ConvertError> {
        let bad = |message: String| ConvertError { path: "params".into(), message };
        if !params.is_object() {
            return Err(bad(format!(
                "expected an object with `args`, `stdin` and `env`, got {}",
                super::convert::preview(params)
            )));
        }
        let input: ProgramInput = serde_json::from_value(params.clone()).map_err(|e| {
            bad(format!(
                "{e}; a program takes {{\"args\": [string], \"stdin\": string|null, \"env\": {{string: string}}|null}}"
            ))
        })?;
        if input.args.len() > MAX_ARGS {
            return Err(ConvertError {
                path: "params.args".into(),
                message: format!("{} arguments; at most {MAX_ARGS}", input.args.len()),
            });
        }
        if let Some((key, _)) = input.env.iter().flatten().find(|(k, _)| k.is_empty() || k.contains(['=', '\0'])) {
            return Err(ConvertError {
                path: format!("params.env.{key}"),
                message: "an environment variable's name must be non-empty, without `=` or NUL".into(),
            });
        }
        Ok(input)
    }
}

/// The JSON of one captured stream: text when it is UTF-8, base64 otherwise.
fn stream(bytes: &[u8]) -> (Value, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (json!(text), false),
        Err(_) => (json!(base64::engine::general_purpose::STANDARD.encode(bytes)), true),
    }
}

/// A program's result: its output streams and exit code.
pub fn program_result(stdout: &[u8], stderr: &[u8], exit_code: u8) -> Value {
    let (out, out_b64) = stream(stdout);
    let (err, err_b64) = stream(stderr);
    json!({
        "stdout": out,
        "stderr": err,
        "exit-code": exit_code,
        "stdout-base64": out_b64,
        "stderr-base64": err_b64,
    })
}

/// The exit code a program's `run` result or `exit` call stands for, as a process reports it
/// (the low eight bits).
pub fn exit_code(status: i32) -> u8 {
    (status & 0xff) as u8
}

/// The params schema of every program.
pub fn params_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "args": {
                "type": "array", "items": { "type": "string" },
                "description": "Arguments after the program's name (argv[1..]); on the command line `--args a --args b`, or everything after `--`."
            },
            "stdin": {
                "anyOf": [{ "type": "string" }, { "type": "null" }],
                "description": "Text the program reads from stdin (`--stdin @file` reads a file); empty when absent."
            },
            "env": {
                "anyOf": [{ "type": "object", "additionalProperties": { "type": "string" } }, { "type": "null" }],
                "description": "The program's whole environment (the host's own is never passed on)."
            }
        },
        "additionalProperties": false
    })
}

/// The result schema of every program.
pub fn result_schema() -> Value {
    let text = |what: &str| json!({ "type": "string", "description": format!("What the program wrote to {what}: text, or base64 when `{what}-base64` is set.") });
    json!({
        "type": "object",
        "properties": {
            "stdout": text("stdout"),
            "stderr": text("stderr"),
            "exit-code": { "type": "integer", "minimum": 0, "maximum": 255, "format": "u8", "description": "The exit code: 0 for success." },
            "stdout-base64": { "type": "boolean", "description": "stdout was not UTF-8 and is base64." },
            "stderr-base64": { "type": "boolean", "description": "stderr was not UTF-8 and is base64." }
        },
        "required": ["stdout", "stderr", "exit-code", "stdout-base64", "stderr-base64"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_by_name() {
        let input = ProgramInput::from_params(&json!({ "args": ["a"], "env": { "K": "v" } })).unwrap();
        assert_eq!(input.args, ["a"]);
        assert!(input.stdin.is_none());
        let e = ProgramInput::from_params(&json!({ "argz": [] })).unwrap_err();
        assert!(e.to_string().contains("argz"), "{e}");
        let e = ProgramInput::from_params(&json!({ "env": { "A=B": "c" } })).unwrap_err();
        assert!(e.to_string().contains("params.env.A=B"), "{e}");
        assert!(ProgramInput::from_params(&json!([1])).is_err());
    }

    #[test]
    fn output_that_is_not_utf8_comes_back_as_base64() {
        let r = program_result(b"hi", &[0xff, 0xfe], 3);
        assert_eq!(r["stdout"], "hi");
        assert_eq!(r["stderr"], "//4=");
        assert_eq!(r["stderr-base64"], true);
        assert_eq!(r["exit-code"], 3);
        assert_eq!(exit_code(-1), 255);
    }
}
