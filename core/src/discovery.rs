//! Semantic command discovery: "what do I call to …?" answered by embedding each command's
//! name, description and parameter names (384-d, all-MiniLM-L6-v2 after setup) and ranking by
//! cosine similarity to the query. Embeddings are cached in SQLite by model and text digest.
//! With no embedding model installed, commands are ranked by the words they share with the query.

use anyhow::Result;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::reflect::CommandSchema;
use crate::runtime::Host;
use crate::Caller;

/// Cached description embeddings.
pub const SCHEMA: crate::db::Schema = crate::db::Schema {
    owner: "discovery",
    migrations: &["
CREATE TABLE IF NOT EXISTS command_embeddings (
    model  TEXT NOT NULL,
    digest TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, digest)
) STRICT, WITHOUT ROWID;
"],
};

/// How the ranking was made.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum Method {
    /// Cosine similarity of embeddings from this model.
    Embedding {
        /// The embedding model's id.
        model: String,
    },
    /// Shared words (no embedding model is installed).
    Text,
}

/// One ranked command.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Match {
    /// The command name.
    pub name: String,
    /// Its description's first line.
    pub about: String,
    /// Similarity to the query (cosine, or the share of query words found).
    pub score: f32,
}

/// The text that stands for a command: its name, description and parameter names.
pub fn command_text(c: &CommandSchema) -> String {
    let mut text = c.name.replace(['/', '-'], " ");
    if let Some(d) = &c.description {
        text.push_str(". ");
        text.push_str(d);
    }
    if let Some(props) = c.params.get("properties").and_then(|p| p.as_object()) {
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        if !names.is_empty() {
            text.push_str(" Parameters: ");
            text.push_str(&names.join(", "));
        }
    }
    text
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2).map(str::to_lowercase).collect()
}

/// The share of the query's words found in `text`.
fn text_score(query: &[String], text: &str) -> f32 {
    if query.is_empty() {
        return 0.0;
    }
    let have = words(text);
    query.iter().filter(|q| have.iter().any(|w| w.starts_with(q.as_str()))).count() as f32 / query.len() as f32
}

/// Scores `texts` against `query`: by embedding similarity when a model is installed, else by
/// shared words.
fn scores(host: &Host, texts: &[String], query: &str) -> Result<(Method, Vec<f32>)> {
    let engines = host.core().engines();
    Ok(match engines.resolve("", continuum_gpu::ModelKind::Embedding) {
        Ok(model) => {
            let vectors = cached_embeddings(host, &model.id, texts)?;
            let q = engines.embed(&model.id, &[query.to_string()], None)?.remove(0);
            let scores = vectors.iter().map(|v| continuum_gpu::embed::cosine(&q, v)).collect();
            (Method::Embedding { model: model.id }, scores)
        }
        Err(_) => {
            let q = words(query);
            (Method::Text, texts.iter().map(|t| text_score(&q, t)).collect())
        }
    })
}

/// Keeps the best `top` of `items` by score (dropping zero word-overlap scores).
fn best<T>(method: &Method, items: Vec<T>, scores: Vec<f32>, top: usize, score_of: impl Fn(&mut T, f32)) -> Vec<T> {
    let mut ranked: Vec<(T, f32)> =
        items.into_iter().zip(scores).filter(|(_, s)| *method != Method::Text || *s > 0.0).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(top);
    ranked
        .into_iter()
        .map(|(mut item, s)| {
            score_of(&mut item, s);
            item
        })
        .collect()
}

/// The first line of a description (empty without one).
pub fn first_line(description: &Option<String>) -> String {
    description.as_deref().and_then(|d| d.lines().next()).unwrap_or("").to_string()
}

/// Ranks the commands `caller` may call by similarity to `query`; at most `top` of them.
pub fn search(host: &Host, caller: &Caller, query: &str, top: usize) -> Result<(Method, Vec<Match>)> {
    let commands = host.commands_for(caller)?;
    let texts: Vec<String> = commands.iter().map(command_text).collect();
    let matches = commands
        .iter()
        .map(|c| Match { name: c.name.clone(), about: first_line(&c.description), score: 0.0 })
        .collect();
    rank(host, matches, &texts, query, top, |m, s| m.score = s)
}

/// Ranks `items`, described by `texts` (one each), by similarity to `query`: the best `top`,
/// each given its score with `score_of`.
pub fn rank<T>(
    host: &Host,
    items: Vec<T>,
    texts: &[String],
    query: &str,
    top: usize,
    score_of: impl Fn(&mut T, f32),
) -> Result<(Method, Vec<T>)> {
    let (method, scores) = scores(host, texts, query)?;
    let ranked = best(&method, items, scores, top, score_of);
    Ok((method, ranked))
}

/// Embeddings of `texts` with `model`, computing only those not cached yet.
fn cached_embeddings(host: &Host, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let digests: Vec<String> = texts.iter().map(|t| hex::encode(Sha256::digest(t.as_bytes()))).collect();
    let mut vectors: Vec<Option<Vec<f32>>> = {
        let db = host.core().db();
        let mut stmt = db.prepare("SELECT vector FROM command_embeddings WHERE model = ?1 AND digest = ?2")?;
        digests
            .iter()
            .map(|d| {
                let blob: Option<Vec<u8>> = stmt.query_row(params![model, d], |r| r.get(0)).optional()?;
                Ok(blob.map(|b| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
            })
            .collect::<Result<_>>()?
    };
    let missing: Vec<usize> = (0..texts.len()).filter(|&i| vectors[i].is_none()).collect();
    if !missing.is_empty() {
        let batch: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
        let computed = host.core().engines().embed(model, &batch, None)?;
        let db = host.core().db();
        for (&i, v) in missing.iter().zip(computed) {
            let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            db.execute(
                "INSERT OR REPLACE INTO command_embeddings (model, digest, vector) VALUES (?1, ?2, ?3)",
                params![model, digests[i], blob],
            )?;
            vectors[i] = Some(v);
        }
    }
    Ok(vectors.into_iter().map(Option::unwrap_or_default).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_scores_count_the_query_words_a_command_mentions() {
        let q = words("count the words in text");
        assert!(text_score(&q, "text stats. Counts words, lines and sentences") > 0.5);
        assert_eq!(text_score(&q, "kv put. Stores a value"), 0.0);
        assert_eq!(text_score(&[], "anything"), 0.0);
    }
}
