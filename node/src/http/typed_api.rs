//! The typed half of the OpenAPI document: one operation per command the caller may call,
//! `POST /v1/commands/<plugin>/<command>`, with that command's request and response schemas
//! (reflected from its WIT when its plugin was loaded). Built for each request from the
//! registry, so an install or removal shows at once, and a grantee's document lists exactly
//! what it may call, like `GET /v1/commands`.

use serde_json::{json, Map, Value};

use crate::mcp::tool_name;
use continuum_core::reflect::CommandSchema;

/// Adds one operation per command in `commands` to the OpenAPI document `doc`.
pub fn add_operations(doc: &mut Value, commands: &[CommandSchema]) {
    let error = json!({ "$ref": "#/components/schemas/ErrorBody" });
    let error_response = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": error } } });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for command in commands {
        let response = json!({
            "type": "object",
            "properties": {
                "result": command.result,
                "elapsed_us": { "type": "integer", "minimum": 0, "description": "Call time in microseconds." },
                "output": { "type": "string", "description": "What the plugin wrote to stdout/stderr, if anything." }
            },
            "required": ["result", "elapsed_us"]
        });
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({ "description": "The call's result", "content": { "application/json": { "schema": response } } }),
        );
        // As `error::status_of` maps each outcome of a local call.
        for (status, description) in [
            ("400", "The body is not JSON, or the parameters do not match the command's schema"),
            ("401", "Not authenticated"),
            ("403", "The caller's grant does not cover this command"),
            ("404", "No such command (or it was removed)"),
            ("409", "The call was cancelled"),
            ("422", "The command returned its error, broke a limit, or nested too deep"),
            ("500", "The host failed"),
            ("502", "The command trapped"),
            ("503", "The node is at its concurrent request limit"),
        ] {
            responses.insert(status.into(), error_response(description));
        }
        let mut operation = json!({
            "operationId": tool_name(&command.name),
            "summary": command.name,
            "tags": ["commands"],
            "requestBody": { "required": true, "content": { "application/json": { "schema": command.params } } },
            "responses": responses,
        });
        if let Some(d) = &command.description {
            operation["description"] = json!(d);
        }
        paths.insert(format!("/v1/commands/{}", command.name), json!({ "post": operation }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use continuum_core::reflect::ParamStyle;

    #[test]
    fn each_command_gets_its_own_typed_operation() {
        let mut doc = json!({ "paths": {} });
        let command = CommandSchema {
            name: "text/stats".into(),
            description: Some("Counts.".into()),
            param_style: ParamStyle::Record,
            params: json!({ "type": "object", "properties": { "text": { "type": "string" } } }),
            result: json!({ "type": "integer" }),
            error: None,
        };
        add_operations(&mut doc, &[command]);
        let op = &doc["paths"]["/v1/commands/text/stats"]["post"];
        assert_eq!(op["operationId"], "text__stats");
        assert_eq!(op["requestBody"]["content"]["application/json"]["schema"]["properties"]["text"]["type"], "string");
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["result"]["type"],
            "integer"
        );
    }
}
