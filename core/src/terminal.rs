//! Text from plugins on its way to a terminal: control characters and escape sequences removed.

/// Cuts `text` to at most `max` bytes, on a character boundary; whether anything was cut.
pub fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let cut = (0..=max).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    text.truncate(cut);
    true
}

/// Removes ANSI escape sequences and other control characters, keeping newlines and tabs.
pub fn strip_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                // CSI: ESC [ params... final byte in @..~
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: ESC ] ... terminated by BEL or ESC \
                Some(']') => {
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.peek() == Some(&'\\')) {
                            if c == '\u{1b}' {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                // Any other escape: drop ESC and the next character.
                _ => {
                    chars.next();
                }
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The first control character in `text` other than newline, carriage return and tab (which
/// text files hold): the kind that starts a terminal escape sequence.
pub fn first_control(text: &str) -> Option<char> {
    text.chars().find(|&c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

#[cfg(test)]
mod tests {
    use super::{first_control, strip_control, truncate};

    #[test]
    fn truncation_keeps_whole_characters() {
        let mut text = "aé€".to_string();
        assert!(truncate(&mut text, 4));
        assert_eq!(text, "aé");
        assert!(!truncate(&mut text, 3));
    }

    #[test]
    fn removes_csi_osc_and_bare_controls() {
        assert_eq!(strip_control("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(strip_control("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(strip_control("a\u{1b}]8;;x\u{1b}\\b"), "ab");
        assert_eq!(strip_control("x\u{8}\r\ny\tz\u{9b}"), "x\ny\tz");
        assert_eq!(strip_control("héllo ✓"), "héllo ✓");
    }

    #[test]
    fn finds_the_first_escape_but_not_line_ends() {
        assert_eq!(first_control("a\r\n\tb"), None);
        assert_eq!(first_control("a\u{1b}[31m\u{7}"), Some('\u{1b}'));
        assert_eq!(first_control("x\u{9b}2J"), Some('\u{9b}'));
    }
}
