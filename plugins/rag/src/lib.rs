//! `rag`: index documents into the plugin's store as embedded passages, search them by cosine
//! similarity, and answer questions with the language model from the best passages.
//!
//! Store layout: `doc/<id>` holds the document's passage count; `passage/<id>/<n>` holds one
//! passage as the little-endian f32 embedding, then the UTF-8 text.

use continuum_sdk::inference::{self, InferenceError, Message, Prompt};
use continuum_sdk::{progress, store};

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "continuum-plugins:rag/rag",
    with: {
        "continuum:host/inference@0.1.0": continuum_sdk::host::inference,
        "continuum:host/store@0.1.0": continuum_sdk::host::store,
        "continuum:host/progress@0.1.0": continuum_sdk::host::progress,
    },
});

struct Rag;

/// Most passages kept in the index (each search reads them all).
const MAX_PASSAGES: u32 = 5_000;

fn store_err(e: store::StoreError) -> String {
    format!("store: {e:?}")
}

fn inference_err(e: InferenceError) -> String {
    inference::message(&e).to_string()
}

/// Splits `text` into passages of about `words` words, breaking at paragraph ends when possible.
fn passages(text: &str, words: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for paragraph in text.split("\n\n") {
        for word in paragraph.split_whitespace() {
            current.push(word);
            if current.len() >= words {
                out.push(current.join(" "));
                current.clear();
            }
        }
        // A paragraph end closes a passage that is already half full.
        if current.len() * 2 >= words {
            out.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        out.push(current.join(" "));
    }
    out
}

/// `text` cut after its last full stop, when it has one (a generation cut short by max-tokens
/// otherwise ends mid-sentence).
fn whole_sentences(text: &str) -> String {
    match text.rfind(['.', '!', '?']) {
        Some(i) => text[..=i].to_string(),
        None => text.to_string(),
    }
}

fn encode(vector: &[f32], text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + vector.len() * 4 + text.len());
    bytes.extend_from_slice(&(vector.len() as u32).to_le_bytes());
    for x in vector {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<(Vec<f32>, String)> {
    let n = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = 4 + n.checked_mul(4)?;
    let vector = bytes.get(4..end)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Some((vector, String::from_utf8_lossy(bytes.get(end..)?).into_owned()))
}

fn forget_document(id: &str) -> Result<bool, String> {
    let existed = store::delete(&format!("doc/{id}")).map_err(store_err)?;
    for key in store::keys(&format!("passage/{id}/"), MAX_PASSAGES).map_err(store_err)? {
        store::delete(&key).map_err(store_err)?;
    }
    Ok(existed)
}

fn search_passages(query: &str, top: u32) -> Result<Vec<Hit>, String> {
    let keys = store::keys("passage/", MAX_PASSAGES).map_err(store_err)?;
    if keys.is_empty() || top == 0 {
        return Ok(Vec::new());
    }
    let q = inference::embed("", &[query.to_string()]).map_err(inference_err)?.remove(0);
    let mut hits = Vec::new();
    for key in keys {
        let Some(bytes) = store::get(&key).map_err(store_err)? else { continue };
        let Some((vector, text)) = decode(&bytes) else { continue };
        let rest = &key["passage/".len()..];
        let (document, n) = rest.split_once('/').unwrap_or((rest, "0"));
        hits.push(Hit {
            document: document.to_string(),
            passage: n.parse().unwrap_or(0),
            score: inference::cosine(&q, &vector),
            text,
        });
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(top as usize);
    Ok(hits)
}

impl Guest for Rag {
    fn index(documents: Vec<Document>, passage_words: Option<u32>) -> Result<Indexed, String> {
        let words = passage_words.unwrap_or(80).clamp(8, 400) as usize;
        for (i, d) in documents.iter().enumerate() {
            if d.id.trim().is_empty() {
                return Err(format!("document {i} has an empty id"));
            }
            if d.id.contains('/') {
                return Err(format!("document {i}: ids may not contain '/' (got {:?})", d.id));
            }
        }
        let (mut passages_stored, mut dimensions) = (0u32, 0u32);
        for (done, d) in documents.iter().enumerate() {
            let _ = progress::report(done as f32 / documents.len() as f32, &format!("indexing `{}`", d.id));
            let parts = passages(&d.text, words);
            let vectors =
                if parts.is_empty() { Vec::new() } else { inference::embed("", &parts).map_err(inference_err)? };
            forget_document(&d.id)?;
            for (n, (text, vector)) in parts.iter().zip(&vectors).enumerate() {
                dimensions = vector.len() as u32;
                store::set(&format!("passage/{}/{n:05}", d.id), encode(vector, text)).map_err(store_err)?;
            }
            store::set(&format!("doc/{}", d.id), parts.len().to_string()).map_err(store_err)?;
            passages_stored += parts.len() as u32;
        }
        let _ = progress::report(1.0, &format!("indexed {} documents", documents.len()));
        Ok(Indexed { documents: documents.len() as u32, passages: passages_stored, dimensions })
    }

    fn search(query: String, top: Option<u32>) -> Result<Vec<Hit>, String> {
        search_passages(&query, top.unwrap_or(3))
    }

    fn ask(question: String, top: Option<u32>, max_tokens: Option<u32>) -> Result<Answer, String> {
        if question.trim().is_empty() {
            return Err("the question is empty".into());
        }
        let sources = search_passages(&question, top.unwrap_or(2))?;
        if sources.is_empty() {
            return Err("nothing is indexed yet; add documents with rag/index first".into());
        }
        let context: Vec<&str> = sources.iter().map(|h| h.text.as_str()).collect();
        // Small models answer best with the text first and one plain instruction.
        let prompt =
            format!("Read this text and answer the question.\n\nText: {}\n\nQuestion: {question}", context.join("\n"));
        let messages = vec![Message { role: "user".into(), content: prompt }];
        let mut request = inference::request(Prompt::Chat(messages), max_tokens.unwrap_or(64));
        request.stop = vec!["\n\n".into()];
        let done = inference::stream(&request, |_| {}).map_err(inference_err)?;
        Ok(Answer { text: whole_sentences(done.text.trim()), sources, tokens: done.completion_tokens })
    }

    fn documents() -> Result<Vec<String>, String> {
        let keys = store::keys("doc/", MAX_PASSAGES).map_err(store_err)?;
        Ok(keys.into_iter().map(|k| k["doc/".len()..].to_string()).collect())
    }

    fn forget(id: String) -> Result<bool, String> {
        forget_document(&id)
    }
}

export!(Rag);
