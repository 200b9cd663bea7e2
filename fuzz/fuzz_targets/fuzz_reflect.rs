//! Random WIT types (as real components) through reflection, and values through the JSON
//! conversion: a random value of the type converts to JSON that the reflected schema accepts
//! and back to the same value; arbitrary JSON is refused with a path or round-trips stably.

#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arbitrary::Unstructured;
use continuum_core::reflect::convert::{to_json, to_val, Path};
use continuum_core::reflect::{reflect, Command, ParamStyle};
use continuum_fuzz::values::{has_non_finite, val};
use continuum_fuzz::wit_types::{component, world_source, Ty};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use wasmtime::component::Component;

/// A reflected command and a validator for its params schema.
type Reflected = (Command, Arc<jsonschema::Validator>);

/// Reflected commands by WIT source, so a type is compiled (and its schema's validator built)
/// once per process: building a jsonschema validator retains a few MB of memory each time.
static REFLECTED: Mutex<Option<HashMap<String, Reflected>>> = Mutex::new(None);

fn reflected(source: &str) -> Reflected {
    let mut cache = REFLECTED.lock().unwrap();
    let cache = cache.get_or_insert_with(HashMap::new);
    if cache.len() > 1024 {
        cache.clear();
    }
    cache
        .entry(source.to_string())
        .or_insert_with(|| {
            let bytes = component(source).unwrap_or_else(|e| panic!("generated WIT did not encode: {e:#}\n{source}"));
            let engine = continuum_fuzz::host().core().engine();
            let component = Component::new(engine, &bytes).expect("a valid component compiles");
            let mut commands = reflect(engine, &component, "gen", None)
                .unwrap_or_else(|e| panic!("reflection refused a valid command type: {e:#}\n{source}"));
            let command = commands.remove(0);
            let validator =
                jsonschema::validator_for(&command.schema.params).expect("the reflected schema is valid JSON Schema");
            (command, Arc::new(validator))
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(ty) = Ty::arbitrary(&mut u) else { return };
    let source = world_source(&ty);
    let (command, schema) = reflected(&source);
    let ty = &command.params[0].1;
    // One record parameter is the params object itself; otherwise params are keyed by name.
    let params_of = |j: &Value| match command.schema.param_style {
        ParamStyle::Record => j.clone(),
        ParamStyle::Named => json!({ "value": j }),
    };

    // A value of the type: to JSON, accepted by the schema, back to the same value.
    if let Ok(value) = val(&mut u, ty) {
        if !has_non_finite(&value) {
            let j = to_json(ty, &value, &Path::Root("value"))
                .unwrap_or_else(|e| panic!("to_json failed: {e}\n{source}\n{value:?}"));
            let params = params_of(&j);
            assert!(schema.is_valid(&params), "the schema {} refuses {params} of\n{source}", command.schema.params);
            let back = to_val(ty, &j, &Path::Root("value"))
                .unwrap_or_else(|e| panic!("{j} did not convert back: {e}\n{source}"));
            assert_eq!(back, value, "{j} round-tripped to another value\n{source}");
            assert_eq!(command.params_to_vals(&params).expect("params convert"), vec![value]);
        }
    }

    // Whatever JSON the rest is: refused with a path, or converted and stable from there on.
    if let Ok(j) = serde_json::from_slice::<Value>(u.take_rest()) {
        match to_val(ty, &j, &Path::Root("value")) {
            Ok(v) => {
                assert!(
                    schema.is_valid(&params_of(&j)),
                    "accepted {j}, which the schema {} refuses\n{source}",
                    command.schema.params
                );
                let again = to_json(ty, &v, &Path::Root("value")).expect("an accepted value converts back");
                assert_eq!(to_val(ty, &again, &Path::Root("value")).expect("stable"), v);
            }
            Err(e) => assert!(e.path.starts_with("value"), "error without a path: {e}"),
        }
    }
});
