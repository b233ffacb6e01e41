//! Text from plugins (names, versions, descriptions, error messages) made safe to print: a plugin must not be able
//! to forge lines, colours or reordered text in `ndotel list` or in the service's log.

use std::borrow::Cow;

/// Characters that change what a terminal or log viewer shows: control characters (newlines, escape sequences)
/// and Unicode bidirectional formatting characters.
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
        // Default-ignorable characters print as nothing: a name holding one looks like one without it.
        || matches!(c, '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
            | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2065}' | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}' | '\u{fff0}'..='\u{fff8}' | '\u{e0000}'..='\u{e0fff}')
}

/// `; did you mean "x"?` naming the candidate nearest to `input` (a misspelling: a few letters added, missing,
/// changed or swapped, or another case), or nothing when none is near.
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    let lower = input.to_lowercase();
    let budget = (input.chars().count() / 4).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != input)
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("; did you mean {:?}?", printable(c)))
        .unwrap_or_default()
}

/// `name` with everything but printable ASCII escaped (`\u{43e}` for a Cyrillic `о`): how a refused name is shown,
/// so that it cannot pass for the name it imitates.
pub(crate) fn escaped_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
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

/// The longest distro or component name.
pub(crate) const MAX_NAME_LEN: usize = 128;

/// Whether `name` is a valid distro or component name: 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `_`, `-`, `.`.
/// Anything else could print like another name (a zero-width character, a Cyrillic `о`) or forge output.
pub(crate) fn is_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A path as text with every hostile character escaped: file names come from whoever could write the directory.
pub(crate) fn shown(path: &std::path::Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_print_like_another_are_not_names() {
        for good in ["otel_custom_distro", "a", "my-distro.v2"] {
            assert!(is_name(good), "{good}");
        }
        for bad in [
            "",
            "otel_custom\u{200B}_distro",
            "оtel",
            "a b",
            "a\nb",
            "\u{1b}[31m",
            &"x".repeat(129),
        ] {
            assert!(!is_name(bad), "{bad:?}");
        }
        assert_eq!(
            shown(std::path::Path::new("/p/a\nb\u{1b}.so")),
            "/p/a\\nb\\u{1b}.so"
        );
    }

    #[test]
    fn newlines_escapes_and_bidi_overrides_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain ümlaut"), "plain ümlaut");
        assert_eq!(printable("a\nfake line"), "a\\nfake line");
        assert_eq!(printable("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert!(is_clean("otel_custom_distro") && !is_clean("x\r"));
    }
}
