//! `kv`: a typed key-value store over the host's per-plugin store.
//!
//! Values are kept as one tag byte followed by the payload, so that `get` returns the same
//! variant that `put` stored.

use continuum_sdk::store;

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "continuum-plugins:kv/kv",
    with: {
        "continuum:host/store@0.1.0": continuum_sdk::host::store,
        "continuum:host/events@0.1.0": continuum_sdk::host::events,
    },
});

struct Kv;

fn encode(value: &Value) -> Vec<u8> {
    let (tag, mut body) = match value {
        Value::Text(s) => (b't', s.as_bytes().to_vec()),
        Value::Integer(i) => (b'i', i.to_le_bytes().to_vec()),
        Value::Number(f) => (b'n', f.to_le_bytes().to_vec()),
        Value::Binary(b) => (b'b', b.clone()),
        Value::Flag(b) => (b'f', vec![u8::from(*b)]),
    };
    body.insert(0, tag);
    body
}

fn decode(key: &str, raw: &[u8]) -> Result<Value, KvError> {
    let corrupt = || KvError::Store(format!("value under `{key}` is not in kv's format"));
    let (tag, body) = raw.split_first().ok_or_else(corrupt)?;
    Ok(match tag {
        b't' => Value::Text(String::from_utf8(body.to_vec()).map_err(|_| corrupt())?),
        b'i' => Value::Integer(i64::from_le_bytes(body.try_into().map_err(|_| corrupt())?)),
        b'n' => Value::Number(f64::from_le_bytes(body.try_into().map_err(|_| corrupt())?)),
        b'b' => Value::Binary(body.to_vec()),
        b'f' => Value::Flag(body.first().copied().unwrap_or(0) != 0),
        _ => return Err(corrupt()),
    })
}

fn store_err(e: store::StoreError) -> KvError {
    KvError::Store(e.to_string())
}

impl Guest for Kv {
    fn put(key: String, value: Value) -> Result<(), KvError> {
        store::set(&key, encode(&value)).map_err(store_err)?;
        continuum_sdk::events::emit("put", &serde_json::json!({ "key": key })).map_err(KvError::Store)
    }

    fn get(key: String) -> Result<Option<Value>, KvError> {
        store::get(&key).map_err(store_err)?.map(|raw| decode(&key, &raw)).transpose()
    }

    fn delete(key: String) -> Result<bool, KvError> {
        store::delete(&key).map_err(store_err)
    }

    fn list(prefix: Option<String>, limit: Option<u32>) -> Result<Vec<Entry>, KvError> {
        let keys = store::keys(prefix.as_deref().unwrap_or(""), limit.unwrap_or(100)).map_err(store_err)?;
        keys.into_iter()
            .filter_map(|key| match store::get(&key) {
                Ok(Some(raw)) => Some(decode(&key, &raw).map(|value| Entry { key, value })),
                Ok(None) => None, // removed between list and get
                Err(e) => Some(Err(store_err(e))),
            })
            .collect()
    }

    fn incr(key: String, by: Option<i64>) -> Result<i64, KvError> {
        let current = match store::get(&key).map_err(store_err)? {
            None => 0,
            Some(raw) => match decode(&key, &raw)? {
                Value::Integer(i) => i,
                _ => return Err(KvError::NotAnInteger(key)),
            },
        };
        let next = current.checked_add(by.unwrap_or(1)).ok_or(KvError::Overflow)?;
        store::set(&key, encode(&Value::Integer(next))).map_err(store_err)?;
        Ok(next)
    }
}

export!(Kv);
