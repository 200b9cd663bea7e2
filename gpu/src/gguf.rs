//! Validates a GGUF file before llama.cpp sees it: llama.cpp aborts the whole process on a
//! malformed model, so every count, length, type and tensor extent is checked here first,
//! against the file's real size, without allocating more than the file holds.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Why a GGUF file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path} is not a usable GGUF model: {reason}")]
pub struct GgufError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What the header says about a valid model.
#[derive(Debug, Clone)]
pub struct GgufSummary {
    /// `general.architecture` (e.g. `llama`).
    pub architecture: String,
    /// `general.name`, when present.
    pub name: Option<String>,
    /// The context length the model was trained with, when present.
    pub context_length: Option<u64>,
    /// How many tensors it holds.
    pub tensors: u64,
    /// Whether it carries a tokenizer vocabulary (needed for text generation).
    pub has_vocabulary: bool,
    /// Whether it carries a chat template.
    pub has_chat_template: bool,
}

/// (elements per block, bytes per block) of each ggml tensor type llama.cpp reads.
fn type_size(ggml_type: u32) -> Option<(u64, u64)> {
    Some(match ggml_type {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        _ => return None,
    })
}

/// Most dimensions a ggml tensor has.
const MAX_DIMS: u32 = 4;
/// Longest key or string value accepted in the header.
const MAX_STRING: u64 = 16 << 20;

struct Reader<R> {
    inner: R,
    /// Bytes consumed so far.
    pos: u64,
    /// The file's size: nothing may claim more.
    len: u64,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, String> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(format!("{what} claims {n} bytes at offset {} but the file has {}", self.pos, self.len));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner.read_exact(&mut buf).map_err(|e| format!("reading {what}: {e}"))?;
        self.pos += n;
        Ok(buf)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let v = self.bytes(N as u64, what)?;
        Ok(v.try_into().unwrap_or([0; N]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.u64(what)?;
        if n > MAX_STRING {
            return Err(format!("{what} is {n} bytes long (at most {MAX_STRING})"));
        }
        String::from_utf8(self.bytes(n, what)?).map_err(|_| format!("{what} is not UTF-8"))
    }
    /// Reads one metadata value of type `ty`, keeping strings and integers, skipping the rest.
    fn value(&mut self, ty: u32, what: &str, depth: u32) -> Result<Meta, String> {
        match ty {
            // u8, i8, bool; u16, i16; f32; f64
            0 | 1 | 7 => self.bytes(1, what).map(|_| Meta::Other),
            2 | 3 => self.bytes(2, what).map(|_| Meta::Other),
            6 => self.bytes(4, what).map(|_| Meta::Other),
            12 => self.bytes(8, what).map(|_| Meta::Other),
            // u32, i32; u64, i64
            4 | 5 => Ok(Meta::Int(self.u32(what)? as u64)),
            10 | 11 => Ok(Meta::Int(self.u64(what)?)),
            8 => Ok(Meta::Str(self.string(what)?)),
            9 if depth > 0 => Err(format!("{what} nests arrays")),
            9 => {
                let elem = self.u32(what)?;
                let count = self.u64(what)?;
                // Every element takes at least one byte, so the count is bounded by the file.
                if count > self.len.saturating_sub(self.pos) {
                    return Err(format!("{what} claims {count} elements, more than the file holds"));
                }
                for _ in 0..count {
                    self.value(elem, what, depth + 1)?;
                }
                Ok(Meta::Array(count))
            }
            other => Err(format!("{what} has unknown value type {other}")),
        }
    }
}

enum Meta {
    Str(String),
    Int(u64),
    Array(u64),
    Other,
}

/// Reads the vocabulary (an array of strings), refusing repeated tokens: llama.cpp asserts
/// that every token maps back to one id. Returns the token count.
fn unique_strings<R: Read>(r: &mut Reader<R>) -> Result<u64, String> {
    let what = "`tokenizer.ggml.tokens`";
    let elem = r.u32(what)?;
    if elem != 8 {
        return Err(format!("{what} must be an array of strings, not of type {elem}"));
    }
    let count = r.u64(what)?;
    if count > r.len.saturating_sub(r.pos) / 8 {
        return Err(format!("{what} claims {count} tokens, more than the file holds"));
    }
    let mut seen = std::collections::HashSet::new();
    for i in 0..count {
        let token = r.string(what)?;
        if !seen.insert(token) {
            return Err(format!("{what} repeats token #{i}; every token must be unique"));
        }
    }
    Ok(count)
}

/// The per-token arrays must match the vocabulary, and special token ids must lie inside it.
fn check_vocabulary(arrays: &HashMap<String, u64>, ints: &HashMap<String, u64>) -> Result<(), String> {
    let Some(&tokens) = arrays.get("tokenizer.ggml.tokens") else { return Ok(()) };
    for key in ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
        if let Some(&n) = arrays.get(key) {
            if n != tokens {
                return Err(format!("`{key}` has {n} entries but the vocabulary has {tokens} tokens"));
            }
        }
    }
    for (key, id) in ints.iter().filter(|(k, _)| k.starts_with("tokenizer.ggml.") && k.ends_with("_token_id")) {
        // -1 (as u32 or u64) means "none" in some converters.
        if *id >= tokens && *id != u64::from(u32::MAX) && *id != u64::MAX {
            return Err(format!("`{key}` is {id}, outside the vocabulary of {tokens} tokens"));
        }
    }
    Ok(())
}

/// Checks `path` as a GGUF model and summarizes it.
pub fn validate(path: &Path) -> Result<GgufSummary, GgufError> {
    let fail = |reason: String| GgufError { path: path.display().to_string(), reason };
    let file = File::open(path).map_err(|e| fail(format!("cannot open it: {e}")))?;
    let len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    let mut r = Reader { inner: BufReader::new(file), pos: 0, len };
    check(&mut r).map_err(fail)
}

fn check<R: Read>(r: &mut Reader<R>) -> Result<GgufSummary, String> {
    if &r.array::<4>("magic")? != b"GGUF" {
        return Err("it does not start with the GGUF magic bytes".into());
    }
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(format!("GGUF version {version} is not supported (2 or 3)"));
    }
    let tensors = r.u64("tensor count")?;
    let kvs = r.u64("metadata count")?;
    if tensors > r.len / 24 || kvs > r.len / 12 {
        return Err(format!("it claims {tensors} tensors and {kvs} metadata entries, more than its size allows"));
    }
    let (mut strings, mut ints, mut arrays) = (HashMap::new(), HashMap::new(), HashMap::new());
    for i in 0..kvs {
        let key = r.string(&format!("metadata key #{i}"))?;
        let ty = r.u32(&format!("type of `{key}`"))?;
        if key == "tokenizer.ggml.tokens" && ty == 9 {
            arrays.insert(key, unique_strings(r)?);
            continue;
        }
        match r.value(ty, &format!("`{key}`"), 0)? {
            Meta::Str(s) => {
                strings.insert(key, s);
            }
            Meta::Int(v) => {
                ints.insert(key, v);
            }
            Meta::Array(n) => {
                arrays.insert(key, n);
            }
            Meta::Other => {}
        }
    }
    let architecture =
        strings.get("general.architecture").cloned().ok_or("it has no `general.architecture` metadata")?;
    check_vocabulary(&arrays, &ints)?;
    let alignment = ints.get("general.alignment").copied().unwrap_or(32);
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(format!("`general.alignment` is {alignment}, not a power of two"));
    }
    let mut extents = Vec::new();
    for i in 0..tensors {
        let name = r.string(&format!("tensor name #{i}"))?;
        let dims = r.u32(&format!("dimension count of `{name}`"))?;
        if dims == 0 || dims > MAX_DIMS {
            return Err(format!("tensor `{name}` has {dims} dimensions (1 to {MAX_DIMS})"));
        }
        let mut shape = Vec::new();
        for _ in 0..dims {
            shape.push(r.u64(&format!("shape of `{name}`"))?);
        }
        let ty = r.u32(&format!("type of `{name}`"))?;
        let offset = r.u64(&format!("offset of `{name}`"))?;
        let (block, bytes) = type_size(ty).ok_or(format!("tensor `{name}` has unknown type {ty}"))?;
        if shape[0] % block != 0 {
            return Err(format!(
                "tensor `{name}`: first dimension {} is not a multiple of its block {block}",
                shape[0]
            ));
        }
        let elements = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let size =
            elements.and_then(|n| (n / block).checked_mul(bytes)).ok_or(format!("tensor `{name}` is too big"))?;
        if offset % alignment != 0 {
            return Err(format!("tensor `{name}` is at offset {offset}, not aligned to {alignment}"));
        }
        extents.push((name, offset, size));
    }
    let data_start = r.pos.div_ceil(alignment) * alignment;
    for (name, offset, size) in &extents {
        let end = data_start.checked_add(*offset).and_then(|s| s.checked_add(*size));
        if end.is_none_or(|e| e > r.len) {
            return Err(format!("tensor `{name}` ({size} bytes at {offset}) runs past the end of the file"));
        }
    }
    extents.sort_by_key(|(_, offset, _)| *offset);
    for pair in extents.windows(2) {
        if pair[0].1 + pair[0].2 > pair[1].1 {
            return Err(format!("tensors `{}` and `{}` overlap", pair[0].0, pair[1].0));
        }
    }
    Ok(GgufSummary {
        context_length: ints.get(&format!("{architecture}.context_length")).copied(),
        name: strings.get("general.name").cloned(),
        tensors,
        has_vocabulary: arrays.get("tokenizer.ggml.tokens").is_some_and(|n| *n > 0),
        has_chat_template: strings.contains_key("tokenizer.chat_template"),
        architecture,
    })
}
