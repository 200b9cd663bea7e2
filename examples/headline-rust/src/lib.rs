//! `headline`: a headline for a text, written by the host's language model through the
//! `continuum:host/inference` interface (the Rust SDK's `inference` helpers).

use continuum_sdk::inference::{self, Message, Prompt};

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "examples:headline/headline",
    with: { "continuum:host/inference@0.1.0": continuum_sdk::host::inference },
});

struct Plugin;

/// The model's answer as a one-line headline of at most `max_words` words.
fn tidy(answer: &str, max_words: usize) -> String {
    let line = answer.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let line = line.trim_start_matches(['#', '*', ' ']).trim_start_matches("Headline:").trim();
    let words: Vec<&str> = line.split_whitespace().take(max_words).collect();
    words
        .join(" ")
        .trim_matches(|c: char| c == '"' || c == '*' || c == '\'')
        .trim_end_matches(['.', ',', ';', ':'])
        .to_string()
}

impl Guest for Plugin {
    fn write(text: String, max_words: Option<u32>) -> Result<Headline, String> {
        if text.trim().is_empty() {
            return Err("the text is empty; give the text to write a headline for".into());
        }
        let max_words = max_words.unwrap_or(10).clamp(2, 30);
        let prompt = format!("Write a short headline (at most {max_words} words) for this text:\n\n{}", text.trim());
        let mut request = inference::request(Prompt::Chat(vec![Message { role: "user".into(), content: prompt }]), 32);
        request.stop = vec!["\n\n".into()];
        let done = inference::stream(&request, |_| {}).map_err(|e| inference::message(&e).to_string())?;
        let headline = tidy(&done.text, max_words as usize);
        if headline.is_empty() {
            return Err("the model returned no headline; try a longer text".into());
        }
        Ok(Headline { text: headline, tokens: done.completion_tokens, tokens_per_second: done.tokens_per_second })
    }
}

export!(Plugin);
