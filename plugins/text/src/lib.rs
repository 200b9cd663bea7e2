//! `text`: text statistics, case conversion, search and extractive summaries.

use std::collections::HashMap;

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "continuum-plugins:text/text",
    with: { "continuum:host/log@0.1.0": continuum_sdk::host::log },
});

/// Words too common to carry meaning in a summary score.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "its", "of", "on", "or",
    "that", "the", "this", "to", "was", "were", "will", "with",
];

struct Text;

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-').filter(|w| !w.is_empty())
}

/// Splits text into sentences, each ended by `.`, `!` or `?` followed by whitespace (so
/// `docs/a.md` or `3.14` do not end one), or by the end of the text.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_boundary = chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if matches!(c, '.' | '!' | '?') && at_boundary {
            let end = i + c.len_utf8();
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

impl Guest for Text {
    fn stats(text: String, top: Option<u32>) -> TextStats {
        let mut freq: HashMap<String, u32> = HashMap::new();
        for w in words(&text) {
            *freq.entry(w.to_lowercase()).or_default() += 1;
        }
        let mut top_words: Vec<(String, u32)> = freq.into_iter().collect();
        top_words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top_words.truncate(top.unwrap_or(5) as usize);
        TextStats {
            chars: text.chars().count() as u32,
            words: text.split_whitespace().count() as u32,
            lines: text.lines().count() as u32,
            sentences: sentences(&text).len() as u32,
            top_words,
        }
    }

    fn convert_case(text: String, to: CaseStyle) -> String {
        let parts: Vec<&str> = words(&text).flat_map(|w| w.split('-')).filter(|w| !w.is_empty()).collect();
        match to {
            CaseStyle::Upper => text.to_uppercase(),
            CaseStyle::Lower => text.to_lowercase(),
            CaseStyle::Title => parts.iter().map(|w| capitalize(w)).collect::<Vec<_>>().join(" "),
            CaseStyle::Kebab => parts.iter().map(|w| w.to_lowercase()).collect::<Vec<_>>().join("-"),
            CaseStyle::Snake => parts.iter().map(|w| w.to_lowercase()).collect::<Vec<_>>().join("_"),
            CaseStyle::Camel => {
                parts.iter().enumerate().map(|(i, w)| if i == 0 { w.to_lowercase() } else { capitalize(w) }).collect()
            }
        }
    }

    fn find(text: String, pattern: String, options: MatchOptions) -> Result<Vec<Span>, String> {
        if pattern.is_empty() {
            return Err("pattern is empty; give at least one character to search for".into());
        }
        let fold = |s: &str| -> Vec<char> {
            if options.contains(MatchOptions::IGNORE_CASE) {
                s.chars().flat_map(char::to_lowercase).collect()
            } else {
                s.chars().collect()
            }
        };
        // Lower-casing can change the number of chars; only fold char by char when it is 1:1.
        let hay: Vec<char> = text.chars().collect();
        let hay_folded = fold(&text);
        let hay = if hay_folded.len() == hay.len() { hay_folded } else { hay };
        let needle = fold(&pattern);
        let is_word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
        let mut spans = Vec::new();
        let mut i = 0;
        while i + needle.len() <= hay.len() {
            if hay[i..i + needle.len()] == needle[..] {
                let end = i + needle.len();
                let whole = !is_word(i.checked_sub(1).and_then(|p| hay.get(p))) && !is_word(hay.get(end));
                if !options.contains(MatchOptions::WHOLE_WORD) || whole {
                    spans.push(Span { start: i as u32, end: end as u32 });
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
        continuum_sdk::log::debug(&format!("{} matches", spans.len()));
        Ok(spans)
    }

    fn summarize(request: SummarizeRequest) -> Result<Summary, String> {
        let max_words = request.max_words.unwrap_or(60) as usize;
        if max_words == 0 {
            return Err("max-words must be at least 1".into());
        }
        let all = sentences(&request.text);
        if all.is_empty() {
            return Err("the text has no sentences to summarize".into());
        }
        let mut freq: HashMap<String, f64> = HashMap::new();
        for w in words(&request.text) {
            let w = w.to_lowercase();
            if !STOP_WORDS.contains(&w.as_str()) {
                *freq.entry(w).or_default() += 1.0;
            }
        }
        let mut scored: Vec<(usize, f64)> = all
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let ws: Vec<String> = words(s).map(str::to_lowercase).collect();
                let score: f64 = ws.iter().filter_map(|w| freq.get(w)).sum();
                (i, score / (ws.len().max(1) as f64).sqrt())
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut chosen = Vec::new();
        let mut count = 0;
        for (i, _) in scored {
            let n = all[i].split_whitespace().count();
            if count + n > max_words && !chosen.is_empty() {
                continue;
            }
            if count + n > max_words {
                // Even the best sentence is too long: cut it at the word budget.
                chosen.push((i, all[i].split_whitespace().take(max_words).collect::<Vec<_>>().join(" ")));
                count = max_words;
                break;
            }
            chosen.push((i, all[i].to_string()));
            count += n;
        }
        if request.keep_order.unwrap_or(true) {
            chosen.sort_by_key(|(i, _)| *i);
        }
        Ok(Summary {
            sentences: chosen.len() as u32,
            words: count as u32,
            text: chosen.into_iter().map(|(_, s)| s).collect::<Vec<_>>().join(" "),
        })
    }
}

export!(Text);
