//! Turns the raw byte pieces a model emits into clean text events: whole UTF-8 characters
//! only, `<think>…</think>` reasoning separated from the answer, and stop sequences cut off
//! before they reach the caller. Text that could still become a tag or a stop sequence is held
//! back until the next piece decides it.

/// One piece of decoded output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text of the answer.
    Answer(String),
    /// Text of the model's reasoning (inside `<think>…</think>`), never part of the answer.
    Reasoning(String),
}

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";

/// Streaming decoder for one generation.
#[derive(Debug, Default)]
pub struct TextStream {
    /// Bytes of an incomplete UTF-8 character.
    partial: Vec<u8>,
    /// Decoded text not yet emitted (could start a tag or a stop sequence).
    pending: String,
    /// Whether the decoder is inside `<think>…</think>`.
    in_reasoning: bool,
    /// Stop sequences that end the answer.
    stops: Vec<String>,
    /// Set once a stop sequence matched: nothing more is emitted.
    stopped: bool,
}

impl TextStream {
    /// A decoder that ends the answer at the first of `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        TextStream { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), ..Default::default() }
    }

    /// Whether a stop sequence has matched.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds the bytes of one token; returns what can be emitted now.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        if self.stopped {
            return Vec::new();
        }
        self.partial.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(s) => s.len(),
            // An error with no length is an incomplete character at the end: wait for more.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Invalid bytes: replace them rather than stall the stream.
            Err(_) => {
                let text = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.pending.push_str(&text);
                return self.drain(false);
            }
        };
        let text = std::str::from_utf8(&self.partial[..valid]).unwrap_or_default().to_owned();
        self.partial.drain(..valid);
        self.pending.push_str(&text);
        self.drain(false)
    }

    /// Emits everything still held back (the generation ended).
    pub fn finish(&mut self) -> Vec<Piece> {
        if !self.partial.is_empty() {
            let text = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            self.pending.push_str(&text);
        }
        self.drain(true)
    }

    fn drain(&mut self, at_end: bool) -> Vec<Piece> {
        let mut out = Vec::new();
        while !self.pending.is_empty() && !self.stopped {
            let tag = if self.in_reasoning { THINK_CLOSE } else { THINK_OPEN };
            // The earliest complete marker: the reasoning tag, or (in the answer) a stop sequence.
            let mut found: Option<(usize, usize, bool)> = self.pending.find(tag).map(|i| (i, tag.len(), true));
            if !self.in_reasoning {
                for stop in &self.stops {
                    if let Some(i) = self.pending.find(stop.as_str()) {
                        if found.is_none_or(|(j, _, _)| i < j) {
                            found = Some((i, stop.len(), false));
                        }
                    }
                }
            }
            if let Some((at, len, is_tag)) = found {
                let before: String = self.pending[..at].to_owned();
                self.emit(&mut out, before);
                self.pending.drain(..at + len);
                if is_tag {
                    self.in_reasoning = !self.in_reasoning;
                } else {
                    self.stopped = true;
                    self.pending.clear();
                }
                continue;
            }
            // No complete marker: emit all but a tail that could still grow into one.
            let keep = if at_end { 0 } else { self.held_back_len() };
            let cut = self.pending.len() - keep;
            let text: String = self.pending[..cut].to_owned();
            self.pending.drain(..cut);
            self.emit(&mut out, text);
            break;
        }
        out
    }

    /// Length of the longest suffix of `pending` that is a proper prefix of a marker.
    fn held_back_len(&self) -> usize {
        let tag = if self.in_reasoning { THINK_CLOSE } else { THINK_OPEN };
        let mut markers = vec![tag];
        if !self.in_reasoning {
            markers.extend(self.stops.iter().map(String::as_str));
        }
        let mut keep = 0;
        for marker in markers {
            for (i, _) in self.pending.char_indices() {
                let suffix = &self.pending[i..];
                if suffix.len() < marker.len() && marker.starts_with(suffix) {
                    keep = keep.max(suffix.len());
                    break;
                }
            }
        }
        keep
    }

    fn emit(&self, out: &mut Vec<Piece>, text: String) {
        if text.is_empty() {
            return;
        }
        out.push(if self.in_reasoning { Piece::Reasoning(text) } else { Piece::Answer(text) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&[u8]], stops: &[&str]) -> (String, String) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut stream = TextStream::new(&stops);
        let mut all = Vec::new();
        for p in pieces {
            all.extend(stream.push(p));
        }
        all.extend(stream.finish());
        let (mut answer, mut reasoning) = (String::new(), String::new());
        for piece in all {
            match piece {
                Piece::Answer(t) => answer.push_str(&t),
                Piece::Reasoning(t) => reasoning.push_str(&t),
            }
        }
        (answer, reasoning)
    }

    #[test]
    fn reasoning_is_split_from_the_answer_even_when_tags_span_pieces() {
        let (answer, reasoning) = run(&[b"<thi", b"nk>let me ", b"see</th", b"ink>The answer", b" is 4."], &[]);
        assert_eq!(answer, "The answer is 4.");
        assert_eq!(reasoning, "let me see");
    }

    #[test]
    fn stop_sequences_cut_the_answer_but_not_reasoning() {
        let (answer, reasoning) = run(&[b"<think>a\n\nb</think>", b"one\n", b"\ntwo"], &["\n\n"]);
        assert_eq!(answer, "one");
        assert_eq!(reasoning, "a\n\nb");
    }

    #[test]
    fn split_utf8_characters_are_joined() {
        let euro = "€".as_bytes();
        let (answer, _) = run(&[&euro[..1], &euro[1..], b"!"], &[]);
        assert_eq!(answer, "€!");
    }

    #[test]
    fn a_lone_angle_bracket_is_released_at_the_end() {
        assert_eq!(run(&[b"a <", b"b"], &[]).0, "a <b");
        assert_eq!(run(&[b"x <thi"], &[]).0, "x <thi");
    }
}
