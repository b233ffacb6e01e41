//! Text from plugins (names, versions, descriptions, error messages) made safe to print: a plugin must not be able
//! to forge lines, colours or reordered text in `ndotel list` or in the service's log.

use std::borrow::Cow;

/// Characters that change what a terminal or log viewer shows: control characters (newlines, escape sequences)
/// and Unicode bidirectional formatting characters.
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// Whether `s` holds nothing [`printable`] would escape.
pub(crate) fn is_clean(s: &str) -> bool {
    !s.chars().any(is_hostile)
}

/// `s` with every hostile character escaped as Rust does (`\n`, `\u{1b}`).
pub(crate) fn printable(s: &str) -> Cow<'_, str> {
    if is_clean(s) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if is_hostile(c) {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_escapes_and_bidi_overrides_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain ümlaut"), "plain ümlaut");
        assert_eq!(printable("a\nfake line"), "a\\nfake line");
        assert_eq!(printable("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert!(is_clean("otel_custom_distro") && !is_clean("x\r"));
    }
}
