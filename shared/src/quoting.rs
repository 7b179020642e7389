//! Showing what a client sent inside a message, and spotting characters that make two different
//! strings look the same.

use std::fmt;

/// Longest stretch of a client's text a message repeats; the rest is cut to `…`.
const MAX_QUOTED_CHARS: usize = 200;

/// `text` in double quotes, as plain text: printable characters as they are, and every control,
/// format (bidirectional, zero-width, soft hyphen) or other invisible character as `<U+XXXX>`, so
/// a message can neither reorder nor hide what it quotes. Long texts are cut short.
pub fn quote(text: &str) -> Shown<'_> {
    Shown { text, quotes: true }
}

/// `text` shown as `quote` shows it, without the quotes: for messages whose wording the original
/// fixed, such as `Connector not found: <id>`.
pub fn shown(text: &str) -> Shown<'_> {
    Shown { text, quotes: false }
}

pub struct Shown<'a> {
    text: &'a str,
    quotes: bool,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = if self.quotes { "\"" } else { "" };
        f.write_str(quote)?;
        for (index, c) in self.text.chars().enumerate() {
            if index == MAX_QUOTED_CHARS {
                f.write_str("…")?;
                break;
            }
            if is_hidden(c) {
                write!(f, "<U+{:04X}>", u32::from(c))?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str(quote)
    }
}

/// Whether `c` is a control character or one that shows nothing or changes how its neighbours
/// show: Unicode's format characters (general category Cf: bidirectional controls, zero-width
/// characters, the soft hyphen, the byte order mark, tags) and the other characters that render
/// as blanks without being white space (the Hangul fillers, the combining grapheme joiner).
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            u32::from(c),
            0x00AD
                | 0x034F
                | 0x0600..=0x0605
                | 0x061C
                | 0x06DD
                | 0x070F
                | 0x0890..=0x0891
                | 0x08E2
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x206F
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF9..=0xFFFB
                | 0x110BD
                | 0x110CD
                | 0x13430..=0x1343F
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0001
                | 0xE0020..=0xE007F
                | 0xE0100..=0xE01EF
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_plain_text_as_it_is() {
        assert_eq!(quote("1.0.0").to_string(), "\"1.0.0\"");
        assert_eq!(quote("a \"b\" \\ é").to_string(), "\"a \"b\" \\ é\"");
    }

    #[test]
    fn shows_control_and_invisible_characters_by_code_point() {
        assert_eq!(quote("1\u{1b}[31m").to_string(), "\"1<U+001B>[31m\"");
        assert_eq!(
            quote("a\u{202e}b\u{200b}\u{feff}\u{ad}\n").to_string(),
            "\"a<U+202E>b<U+200B><U+FEFF><U+00AD><U+000A>\""
        );
        assert_eq!(quote("\u{e0041}").to_string(), "\"<U+E0041>\"");
    }

    #[test]
    fn shows_without_quotes_too() {
        assert_eq!(shown("a\u{202e}b").to_string(), "a<U+202E>b");
    }

    #[test]
    fn cuts_long_texts() {
        let quoted = quote(&"x".repeat(5000)).to_string();
        assert_eq!(quoted.chars().count(), MAX_QUOTED_CHARS + 3);
        assert!(quoted.ends_with("…\""));
    }

    #[test]
    fn hidden_characters() {
        for c in [
            '\u{0}', '\u{7f}', '\u{85}', '\u{200b}', '\u{200f}', '\u{202a}', '\u{2066}', '\u{2069}', '\u{feff}',
            '\u{ad}',
        ] {
            assert!(is_hidden(c), "{:04X}", u32::from(c));
        }
        for c in ['a', 'é', '-', ' ', '日', '\u{2010}'] {
            assert!(!is_hidden(c), "{:04X}", u32::from(c));
        }
    }
}
