//! wasm-smith code as a plugin: installed through the development-install pipeline (imports
//! check, reflection, compilation, registration), then called twice with random parameters
//! under tight limits. Each call ends in a result or a named error, never a host error, and
//! two calls (each a fresh instance) end the same way.

#![no_main]

use arbitrary::Unstructured;
use continuum_core::{CallError, Caller, InstallOptions};
use continuum_fuzz::components::generate;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// A random JSON value for a scalar WIT type (sometimes out of range, to reach the checks).
fn scalar(u: &mut Unstructured<'_>, ty: &str) -> arbitrary::Result<Value> {
    if u.ratio(1, 16)? {
        return Ok(Value::from(u.arbitrary::<i64>()?));
    }
    Ok(match ty {
        "bool" => Value::Bool(u.arbitrary()?),
        "s8" => u.arbitrary::<i8>()?.into(),
        "u8" => u.arbitrary::<u8>()?.into(),
        "s16" => u.arbitrary::<i16>()?.into(),
        "u16" => u.arbitrary::<u16>()?.into(),
        "s32" => u.arbitrary::<i32>()?.into(),
        "u32" => u.arbitrary::<u32>()?.into(),
        "s64" => u.arbitrary::<i64>()?.into(),
        "u64" => u.arbitrary::<u64>()?.into(),
        "char" => Value::String(u.arbitrary::<char>()?.to_string()),
        _ => serde_json::Number::from_f64(u.arbitrary::<f32>()?.into()).map_or(Value::Null, Value::Number),
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plugin) = generate(&mut u) else { return };
    let host = continuum_fuzz::host();
    let dir = host.core().data().root().join("smith");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("wit")).unwrap();
    std::fs::write(dir.join("smith.wasm"), &plugin.bytes).unwrap();
    std::fs::write(dir.join("wit/smith.wit"), &plugin.wit).unwrap();
    let options = InstallOptions { replace: true, allow: vec!["all".into()], ..Default::default() };
    if host.install_component(&dir.join("smith.wasm"), Some(&dir.join("wit")), &options).is_err() {
        // Refused (say, a feature this engine does not enable): a clear error is all we ask.
        return;
    }
    let mut params = Map::new();
    for (i, ty) in plugin.params.iter().enumerate() {
        let Ok(v) = scalar(&mut u, ty) else { break };
        params.insert(format!("a{i}"), v);
    }
    let params = Value::Object(params);
    let first = host.call(&Caller::owner(), "smith/run", &params).result;
    if let Err(CallError::Host { message, .. }) = &first {
        panic!("a host error from a generated plugin: {message}\n{}", plugin.wit);
    }
    let second = host.call(&Caller::owner(), "smith/run", &params).result;
    let class = |r: &Result<Value, CallError>| r.as_ref().map(Clone::clone).map_err(|e| e.outcome());
    assert_eq!(class(&first), class(&second), "two fresh instances disagree\n{}", plugin.wit);
    host.remove("smith", true).expect("remove the generated plugin");
});
