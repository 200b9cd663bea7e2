//! Every row of the WIT → JSON mapping table, both directions, through the `typezoo` fixture:
//! schemas, values, CLI flags, and the path-precise errors of each row.

use continuum::CallError;
use continuum_tests::{stderr, stdout, TestHost};
use serde_json::{json, Value};

fn zoo() -> TestHost {
    TestHost::with(&["typezoo"])
}

/// One value of every field, at the edges of each type.
fn sample() -> Value {
    json!({
        "flag": true, "tiny": -128, "byte": 255, "short": -32768, "ushort": 65535,
        "int": -2147483648i64, "uint": 4294967295u32, "long": i64::MIN, "ulong": u64::MAX,
        "single": 0.1, "double": 1e300, "letter": "🦀", "name": "héllo\n\"quoted\"",
        "data": "AAEC/w==", "tags": ["a", "b c"], "maybe": 7, "origin": { "x": -1, "y": 2 },
        "paint": "green", "mode": ["read", "exec"], "form": { "rect": { "x": 3, "y": 4 } },
        "pair": ["p", 9], "outcome": { "ok": 5 },
    })
}

fn with(changes: Value) -> Value {
    let mut v = sample();
    for (k, x) in changes.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn every_row_round_trips_exactly() {
    let zoo = zoo();
    let cases = [
        sample(),
        with(
            json!({ "maybe": null, "single": "NaN", "double": "-Infinity", "form": "empty", "outcome": { "err": "bad" } }),
        ),
        with(
            json!({ "single": "Infinity", "double": -0.5, "form": { "circle": 1.5 }, "mode": [], "tags": [], "data": "" }),
        ),
        with(json!({ "single": 3.4028235e38, "double": 5e-324, "letter": "a", "name": "" })),
    ];
    for input in cases {
        let out = zoo.call("typezoo/echo", input.clone()).expect("echo");
        assert_eq!(out, input);
    }
}

#[test]
fn absent_option_fields_are_none_and_flags_come_back_in_declaration_order() {
    let zoo = zoo();
    let mut input = with(json!({ "mode": ["exec", "read"] }));
    input.as_object_mut().unwrap().remove("maybe");
    let out = zoo.call("typezoo/echo", input).unwrap();
    assert_eq!(out["maybe"], Value::Null);
    assert_eq!(out["mode"], json!(["read", "exec"]));
}

#[test]
fn schema_follows_the_mapping_table() {
    let zoo = zoo();
    let echo = zoo.host.command("typezoo/echo").unwrap();
    assert_eq!(echo.description.as_deref(), Some("Returns its input unchanged."));
    let p = &echo.params;
    assert_eq!(p["type"], "object");
    assert_eq!(p["title"], "everything");
    assert_eq!(p["additionalProperties"], false);
    let required: Vec<&str> = p["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(!required.contains(&"maybe") && required.contains(&"flag") && required.len() == 21, "{required:?}");
    let f = &p["properties"];
    assert_eq!(f["flag"], json!({ "type": "boolean", "description": "A boolean." }));
    assert_eq!((f["tiny"]["minimum"].clone(), f["tiny"]["maximum"].clone()), (json!(-128), json!(127)));
    assert_eq!((f["ulong"]["minimum"].clone(), f["ulong"]["maximum"].clone()), (json!(0), json!(u64::MAX)));
    assert_eq!(f["long"]["minimum"], json!(i64::MIN));
    assert_eq!(f["uint"]["type"], "integer");
    assert_eq!(f["single"]["anyOf"], json!([{ "type": "number" }, { "enum": ["NaN", "Infinity", "-Infinity"] }]));
    assert_eq!((f["letter"]["minLength"].clone(), f["letter"]["maxLength"].clone()), (json!(1), json!(1)));
    assert_eq!(f["name"]["type"], "string");
    assert_eq!(f["data"]["contentEncoding"], "base64");
    assert_eq!(f["tags"]["items"], json!({ "type": "string" }));
    assert_eq!(f["maybe"]["anyOf"][1], json!({ "type": "null" }));
    assert_eq!(f["origin"]["required"], json!(["x", "y"]));
    assert_eq!(f["origin"]["properties"]["x"]["description"], "Horizontal position.");
    assert_eq!(f["origin"]["description"], "A nested record.");
    assert_eq!(f["paint"]["enum"], json!(["red", "green", "blue"]));
    assert_eq!(f["paint"]["x-enum-descriptions"]["red"], "Like a tomato.");
    assert_eq!(f["mode"]["uniqueItems"], true);
    assert_eq!(f["mode"]["items"]["enum"], json!(["read", "write", "exec"]));
    let form = f["form"]["oneOf"].as_array().unwrap();
    assert_eq!(form[0]["properties"]["circle"]["format"], "f64");
    assert_eq!(form[0]["required"], json!(["circle"]));
    assert_eq!(form[2], json!({ "const": "empty", "description": "No shape at all." }));
    assert_eq!(f["pair"]["prefixItems"].as_array().unwrap().len(), 2);
    assert_eq!((f["pair"]["minItems"].clone(), f["pair"]["items"].clone()), (json!(2), json!(false)));
    assert_eq!(f["outcome"]["oneOf"][1]["properties"]["err"]["type"], "string");

    let invert = zoo.host.command("typezoo/invert").unwrap();
    assert_eq!(invert.params["properties"]["names"]["additionalProperties"]["format"], "u32");
    assert_eq!(invert.result["items"]["prefixItems"][1]["type"], "string");
    let rgb = zoo.host.command("typezoo/reverse-rgb").unwrap();
    assert_eq!(
        (rgb.params["properties"]["rgb"]["minItems"].clone(), rgb.result["maxItems"].clone()),
        (json!(3), json!(3))
    );

    let divide = zoo.host.command("typezoo/divide").unwrap();
    assert_eq!(divide.result["format"], "s32");
    assert_eq!(divide.error, Some(json!({ "type": "string" })));
    assert_eq!(zoo.host.command("typezoo/nothing").unwrap().result, json!({ "type": "null" }));
}

#[test]
fn maps_and_fixed_length_lists_round_trip() {
    let zoo = zoo();
    assert_eq!(
        zoo.call("typezoo/invert", json!({ "names": { "a": 1, "b": 2 } })).unwrap(),
        json!([[1, "a"], [2, "b"]])
    );
    assert_eq!(zoo.call("typezoo/reverse-rgb", json!({ "rgb": [1, 2, 3] })).unwrap(), json!([3, 2, 1]));
    let e = zoo.call("typezoo/reverse-rgb", json!({ "rgb": [1, 2] })).unwrap_err().to_string();
    assert!(e.contains("params.rgb: expected an array of exactly 3 items, got [1,2]"), "{e}");
    let e = zoo.call("typezoo/invert", json!({ "names": { "a": -1 } })).unwrap_err().to_string();
    assert!(e.contains("params.names.a: expected integer in 0..=4294967295 (u32), got -1"), "{e}");
}

#[test]
fn function_results_map_to_values_and_command_errors() {
    let zoo = zoo();
    assert_eq!(zoo.call("typezoo/divide", json!({ "a": 7, "b": 2 })).unwrap(), json!(3));
    match zoo.call("typezoo/divide", json!({ "a": 1, "b": 0 })) {
        Err(CallError::CommandFailed { error, .. }) => assert_eq!(error, json!("cannot divide 1 by 0")),
        other => panic!("{other:?}"),
    }
    match zoo.call("typezoo/area", json!({ "shape": "empty" })) {
        Err(CallError::CommandFailed { error, .. }) => assert_eq!(error, json!("empty")),
        other => panic!("{other:?}"),
    }
    let area = zoo.call("typezoo/area", json!({ "shape": { "rect": { "x": 2, "y": 3 } } })).unwrap();
    assert_eq!(area, json!(6.0));
    assert_eq!(zoo.call("typezoo/nothing", json!({})).unwrap(), Value::Null);
}

#[test]
fn each_row_refuses_wrong_values_with_a_path() {
    let zoo = zoo();
    let cases: &[(&str, Value, &str)] = &[
        ("flag", json!("yes"), "params.flag: expected true or false, got \"yes\""),
        ("tiny", json!(200), "params.tiny: expected integer in -128..=127 (s8), got 200"),
        ("uint", json!(-1), "params.uint: expected integer in 0..=4294967295 (u32), got -1"),
        ("uint", json!(1.5), "params.uint: expected integer in 0..=4294967295 (u32), got 1.5"),
        ("ulong", json!("1"), "params.ulong: expected integer in 0..=18446744073709551615 (u64)"),
        ("single", json!("fast"), "params.single: expected a number (f32), or \"NaN\""),
        ("letter", json!("ab"), "params.letter: expected a string of exactly one character, got \"ab\""),
        ("name", json!(5), "params.name: expected a string, got 5"),
        ("data", json!("***"), "params.data: expected base64-encoded bytes"),
        ("tags", json!(["a", 1]), "params.tags[1]: expected a string, got 1"),
        ("tags", json!("a"), "params.tags: expected an array, got \"a\""),
        ("maybe", json!(-3), "params.maybe: expected integer in 0..=4294967295 (u32), got -3"),
        ("origin", json!({ "x": 1 }), "params.origin: missing required field `y` (s32)"),
        ("origin", json!({ "x": 1, "y": 2, "z": 3 }), "params.origin: unknown field `z`; expected `x`, `y`"),
        ("paint", json!("purple"), "params.paint: unknown value `purple`; expected one of `red`, `green`, `blue`"),
        ("mode", json!(["read", "read"]), "params.mode[1]: flag `read` given twice"),
        ("mode", json!(["fly"]), "params.mode[0]: unknown flag `fly`"),
        ("form", json!("circle"), "params.form: case `circle` needs a payload (f64)"),
        ("form", json!({ "empty": 1 }), "params.form: case `empty` has no payload; write it as \"empty\""),
        ("form", json!({ "circle": "big" }), "params.form.circle: expected a number (f64)"),
        ("form", json!({ "square": 1 }), "params.form: unknown case `square`"),
        ("pair", json!(["a"]), "params.pair: expected an array of exactly 2 items, got [\"a\"]"),
        ("pair", json!(["a", 300]), "params.pair[1]: expected integer in 0..=255 (u8), got 300"),
        ("outcome", json!({ "ok": "x" }), "params.outcome.ok: expected integer in 0..=4294967295 (u32)"),
    ];
    for (field, bad, expected) in cases {
        match zoo.call("typezoo/echo", with(json!({ *field: bad }))) {
            Err(CallError::InvalidParams { message, .. }) => {
                assert!(message.contains(expected), "{field}: got `{message}`, expected `{expected}`")
            }
            other => panic!("{field}: expected invalid params, got {other:?}"),
        }
    }
    let mut missing = sample();
    missing.as_object_mut().unwrap().remove("name");
    let e = zoo.call("typezoo/echo", missing).unwrap_err().to_string();
    assert!(e.contains("params: missing required field `name` (string)"), "{e}");
    let e = zoo.call("typezoo/echo", with(json!({ "extra": 1 }))).unwrap_err().to_string();
    assert!(e.contains("params: unknown field `extra`"), "{e}");
    let e = zoo.call("typezoo/echo", json!([1])).unwrap_err().to_string();
    assert!(e.contains("params: expected an object, got [1]"), "{e}");
}

#[test]
fn cli_flags_cover_every_row_and_return_json() {
    let zoo = zoo();
    let args = [
        "run",
        "typezoo/echo",
        "--flag",
        "--tiny",
        "-128",
        "--byte",
        "255",
        "--short",
        "-32768",
        "--ushort",
        "65535",
        "--int",
        "-2147483648",
        "--uint",
        "4294967295",
        "--long",
        "-9223372036854775808",
        "--ulong",
        "18446744073709551615",
        "--single",
        "0.1",
        "--double",
        "1e300",
        "--letter",
        "🦀",
        "--name",
        "héllo",
        "--data",
        "AAEC/w==",
        "--tags",
        "a",
        "--tags",
        "b c",
        "--maybe",
        "7",
        "--origin",
        r#"{"x":-1,"y":2}"#,
        "--paint",
        "green",
        "--mode",
        "read",
        "--mode",
        "exec",
        "--form",
        r#"{"rect":{"x":3,"y":4}}"#,
        "--pair",
        r#"["p",9]"#,
        "--outcome",
        r#"{"ok":5}"#,
    ];
    let out = zoo.cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value, with(json!({ "name": "héllo" })));

    let out = zoo.cli(&["run", "typezoo/area", "--shape", "empty"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("typezoo/area returned an error: \"empty\""), "{}", stderr(&out));

    let out = zoo.cli(&["run", "typezoo/invert", "--names", r#"{"x":1}"#]);
    assert_eq!(stdout(&out).trim(), r#"[[1,"x"]]"#);
    let out = zoo.cli(&["run", "typezoo/reverse-rgb", "--rgb", "[1,2,3]"]);
    assert_eq!(stdout(&out).trim(), "[3,2,1]");

    let out = zoo.cli(&["run", "typezoo/divide", "--a", "x", "--b", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--a: expected integer in -2147483648..=2147483647 (s32), got \"x\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_shows_every_field_with_type_and_doc() {
    let zoo = zoo();
    let out = zoo.cli(&["run", "typezoo/echo", "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for line in [
        "Returns its input unchanged.",
        "--flag <bool>",
        "--tiny <s8>",
        "--ulong <u64>",
        "--single <f32>",
        "--letter <char>",
        "--data <bytes (base64)>",
        "--tags <list<string>>",
        "--maybe <u32>",
        "--origin <point>",
        "--paint <color>",
        "--mode <perms>",
        "--form <shape>",
        "--pair <tuple<string, u8>>",
        "--outcome <result<u32, string>>",
        "Unsigned 64-bit.",
        "Like a tomato.",
        "May execute.",
        "{\"circle\": <f64>}",
        "A rectangle's far corner.",
        "Horizontal position.",
    ] {
        assert!(help.contains(line), "help lacks `{line}`:\n{help}");
    }
    let out = zoo.cli(&["run", "typezoo/invert", "--help"]);
    assert!(stdout(&out).contains("--names <map<string, u32>>"), "{}", stdout(&out));
    let out = zoo.cli(&["run", "typezoo/reverse-rgb", "--help"]);
    assert!(stdout(&out).contains("--rgb <list<u8, 3>>"), "{}", stdout(&out));
}
