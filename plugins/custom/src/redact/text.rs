//! Secrets in free text: value detectors (bearer/basic credentials, JWTs, card numbers passing Luhn in any common
//! separator style, e-mail addresses, private-key blocks, credentials in URLs) and `key=value` / `key: value`
//! pairs whose key is sensitive. Text is judged fully percent-decoded, so an encoded secret is found too.

use super::keys::KeyMatcher;
use ndotel_api::REDACTED;
use regex::Regex;
use serde::Deserialize;
use std::borrow::Cow;
use std::ops::Range;

/// How many times a value is percent-decoded at most (`%2525` is `%25` encoded twice).
const DECODE_ROUNDS: usize = 4;

/// The value detectors, each switchable in `distro.toml` (`[distro.otel_custom_distro.span_processor.detectors]`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Detectors {
    /// `Bearer <token>` → `Bearer [REDACTED]`.
    pub bearer: bool,
    /// `Basic <base64>` → `Basic [REDACTED]`.
    pub basic: bool,
    /// JSON Web Tokens (`eyJ….….…`).
    pub jwt: bool,
    /// 13–19 digits passing the Luhn check, grouped by spaces, dashes, dots, `+` or `_` (`4111 1111 1111 1111`).
    pub card: bool,
    /// E-mail addresses (`jane@example.com`, also `jane%40example.com`).
    pub email: bool,
    /// PEM private-key blocks (`-----BEGIN RSA PRIVATE KEY-----` to its `END` line, or to the end of the text).
    pub private_key: bool,
    /// The user and password in URLs (`https://user:pass@host` → `https://[REDACTED]@host`).
    pub url_credentials: bool,
    /// The value of `key=value`, `key: value` and `"key": "value"` pairs whose key matches `redact_keys`.
    pub key_value_pairs: bool,
}

impl Default for Detectors {
    fn default() -> Self {
        Detectors {
            bearer: true,
            basic: true,
            jwt: true,
            card: true,
            email: true,
            private_key: true,
            url_credentials: true,
            key_value_pairs: true,
        }
    }
}

/// The compiled detectors.
#[derive(Debug)]
pub struct TextScanner {
    on: Detectors,
    patterns: Option<Regex>,
    /// What each byte means to [`TextScanner::might_match`], for the switched-on detectors.
    bytes: [Byte; 256],
}

/// A byte's part in the pre-filter.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Byte {
    /// Nothing.
    Plain,
    /// A digit (counted: 13 or more may be a card number).
    Digit,
    /// Something may follow (`%`, `@`, `=`, `:`).
    Trigger,
    /// Starts a marker (`bearer`, `basic`, `eyJ`, `-----BEGIN`).
    Starts,
}

impl TextScanner {
    /// Compiles the regexes of the switched-on detectors.
    pub fn new(on: Detectors) -> Self {
        let mut parts = Vec::new();
        if on.bearer {
            parts.push(r"(?i:bearer)(?:\s|\+)+(?P<bearer>[A-Za-z0-9\-._~][A-Za-z0-9\-._~+/]*=*)");
        }
        if on.basic {
            parts.push(r"(?i:basic)(?:\s|\+)+(?P<basic>[A-Za-z0-9][A-Za-z0-9+/]{5,}=*)");
        }
        if on.jwt {
            parts.push(r"(?P<jwt>eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)");
        }
        if on.url_credentials {
            parts.push(r"[A-Za-z][A-Za-z0-9+.\-]*://(?P<userinfo>[^/\s@?#]+)@");
        }
        if on.email {
            parts.push(
                r"(?P<email>[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})",
            );
        }
        let patterns = (!parts.is_empty()).then(|| {
            #[allow(clippy::unwrap_used)] // Constant patterns, covered by every test.
            Regex::new(&parts.join("|")).unwrap()
        });
        let mut bytes = [Byte::Plain; 256];
        if on.card {
            bytes[usize::from(b'0')..=usize::from(b'9')].fill(Byte::Digit);
        }
        bytes[usize::from(b'%')] = Byte::Trigger;
        if on.email || on.url_credentials {
            bytes[usize::from(b'@')] = Byte::Trigger;
        }
        if on.key_value_pairs {
            bytes[usize::from(b'=')] = Byte::Trigger;
            bytes[usize::from(b':')] = Byte::Trigger;
        }
        if on.bearer || on.basic {
            bytes[usize::from(b'b')] = Byte::Starts;
            bytes[usize::from(b'B')] = Byte::Starts;
        }
        if on.jwt {
            bytes[usize::from(b'e')] = Byte::Starts;
        }
        if on.private_key {
            bytes[usize::from(b'-')] = Byte::Starts;
        }
        TextScanner {
            on,
            patterns,
            bytes,
        }
    }

    /// Whether card numbers are looked for.
    pub fn cards(&self) -> bool {
        self.on.card
    }

    /// `text` with every secret found replaced by `[REDACTED]`, or `None` when nothing was found. Text holding
    /// percent-encoded bytes is judged (and, when something is found, returned) decoded.
    pub fn clean(&self, text: &str, pair_keys: &KeyMatcher) -> Option<String> {
        if !self.might_match(text.as_bytes()) {
            return None;
        }
        let decoded = fully_decode(text);
        let mut ranges = Vec::new();
        self.find(&decoded, pair_keys, &mut ranges);
        if ranges.is_empty() {
            return None;
        }
        let out = replace_ranges(&decoded, ranges);
        // Already-redacted parts found again (`://[REDACTED]@`) are no change.
        (out != text).then_some(out)
    }

    /// One cheap pass ruling out most values before any regex runs (this is on every span's path).
    pub(super) fn might_match(&self, b: &[u8]) -> bool {
        let mut digits = 0;
        for (i, &c) in b.iter().enumerate() {
            match self.bytes[c as usize] {
                Byte::Plain => {}
                Byte::Digit => {
                    digits += 1;
                    if digits >= 13 {
                        return true;
                    }
                }
                Byte::Trigger => return true,
                Byte::Starts => {
                    let rest = &b[i..];
                    let starts = match c {
                        b'b' | b'B' => {
                            rest.len() >= 5
                                && (rest[..5].eq_ignore_ascii_case(b"basic")
                                    || rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"bearer"))
                        }
                        b'e' => rest.starts_with(b"eyJ"),
                        _ => rest.starts_with(b"-----BEGIN"),
                    };
                    if starts {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Pushes the byte ranges of `text` to redact.
    fn find(&self, text: &str, pair_keys: &KeyMatcher, out: &mut Vec<Range<usize>>) {
        if self.on.private_key {
            private_keys(text, out);
        }
        if let Some(re) = &self.patterns {
            for caps in re.captures_iter(text) {
                let group = ["bearer", "basic", "jwt", "userinfo", "email"]
                    .iter()
                    .find_map(|g| caps.name(g));
                if let Some(m) = group {
                    out.push(m.range());
                }
            }
        }
        if self.on.card {
            cards(text.as_bytes(), out);
        }
        if self.on.key_value_pairs {
            pairs(text, pair_keys, out);
        }
    }
}

/// Percent-decodes `text` until it no longer changes (at most four times).
pub fn fully_decode(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for _ in 0..DECODE_ROUNDS {
        if !out.contains('%') {
            break;
        }
        let next = percent_encoding::percent_decode_str(&out).decode_utf8_lossy();
        if next == out {
            break;
        }
        out = Cow::Owned(next.into_owned());
    }
    out
}

/// `text` with the (possibly overlapping) byte `ranges` replaced by `[REDACTED]`: overlapping or touching ranges
/// become one.
pub fn replace_ranges(text: &str, mut ranges: Vec<Range<usize>>) -> String {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        // Ranges come from byte scans; widen them to character boundaries so no half character survives.
        let r = floor_char(text, r.start)..ceil_char(text, r.end);
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in merged {
        out.push_str(&text[at..r.start]);
        out.push_str(REDACTED);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// PEM private-key blocks: from `-----BEGIN … PRIVATE KEY-----` to the matching `-----END …-----`, or to the end
/// of the text when it is cut off.
fn private_keys(text: &str, out: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(i) = text[from..].find("-----BEGIN ") {
        let start = from + i;
        let header_end = text[start + 11..].find("-----").map(|j| start + 11 + j);
        let Some(header_end) = header_end else { break };
        if !text[start..header_end].contains("PRIVATE KEY") {
            from = header_end;
            continue;
        }
        let end = text[header_end + 5..]
            .find("-----END ")
            .and_then(|j| {
                let e = header_end + 5 + j + 9;
                text[e..].find("-----").map(|k| e + k + 5)
            })
            .unwrap_or(text.len());
        out.push(start..end);
        from = end;
    }
}

/// Card numbers: groups of digits joined by single separators (space, `-`, `.`, `+`, `_`); every run of whole
/// groups holding 13–19 digits that passes Luhn is redacted. A long run of digits with no separator is a card only
/// when it has 13–19 digits itself.
fn cards(b: &[u8], out: &mut Vec<Range<usize>>) {
    let mut i = 0;
    while i < b.len() {
        // Digits glued to letters count too (`card4111…`): an attacker controls what surrounds the number.
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Collect the groups of this run.
        let mut groups: Vec<Range<usize>> = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push(start..j);
            let joined = j + 1 < b.len()
                && matches!(b[j], b' ' | b'-' | b'.' | b'+' | b'_')
                && b[j + 1].is_ascii_digit();
            if !joined {
                break;
            }
            j += 1;
        }
        let run_end = j;
        let mut g = 0;
        while g < groups.len() {
            let mut digits = 0;
            let mut found = None;
            for (h, group) in groups.iter().enumerate().skip(g) {
                digits += group.len();
                if digits > 19 {
                    break;
                }
                if digits >= 13 && luhn_digits(groups[g..=h].iter().flat_map(|r| &b[r.clone()])) {
                    found = Some(h);
                }
            }
            match found {
                Some(h) => {
                    out.push(groups[g].start..groups[h].end);
                    g = h + 1;
                }
                None => g += 1,
            }
        }
        i = run_end.max(i + 1);
    }
}

/// Whether the ASCII digits pass the Luhn check.
fn luhn_digits<'a>(digits: impl DoubleEndedIterator<Item = &'a u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .map(|c| u32::from(c - b'0'))
        .enumerate()
        .map(|(i, d)| match (i % 2 == 1, d * 2) {
            (true, d2) if d2 > 9 => d2 - 9,
            (true, d2) => d2,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether an integer has 13–19 digits and passes the Luhn check (a card number stored as a number).
pub fn luhn_i64(n: i64) -> bool {
    let mut n = n.unsigned_abs();
    if n < 1_000_000_000_000 {
        return false;
    }
    let mut digits = [0u8; 20];
    let mut len = 0;
    while n > 0 {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    digits[..len].reverse();
    luhn_digits(digits[..len].iter())
}

/// Whether the digits of `s` (anything else ignored) are 13–19 and pass the Luhn check.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
    (13..=19).contains(&digits.len()) && luhn_digits(digits.iter())
}

fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t'
            | b'\r'
            | b'\n'
            | b'&'
            | b';'
            | b','
            | b'"'
            | b'\''
            | b')'
            | b']'
            | b'}'
            | b'>'
    )
}

/// Values of `key=value`, `key: value`, `"key": "value"` and `key="value"` pairs whose key is sensitive.
fn pairs(text: &str, keys: &KeyMatcher, out: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    let is_key = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
    for (sep, _) in text.match_indices(['=', ':']) {
        // The key: the name just before the separator, past a closing quote and spaces.
        let mut k_end = sep;
        while k_end > 0 && b[k_end - 1] == b' ' {
            k_end -= 1;
        }
        if k_end > 0 && matches!(b[k_end - 1], b'"' | b'\'') {
            k_end -= 1;
            // JSON quoted inside a string: `\"password\": \"…\"`.
            if k_end > 0 && b[k_end - 1] == b'\\' {
                k_end -= 1;
            }
        }
        let mut k_start = k_end;
        while k_start > 0 && is_key(b[k_start - 1]) {
            k_start -= 1;
        }
        if k_start == k_end || !keys.is_match(&text[k_start..k_end]) {
            continue;
        }
        // The value: past spaces and an opening quote, to the closing quote or the first delimiter.
        let mut v = sep + 1;
        if b[sep] == b':' && b.get(v) == Some(&b'/') {
            continue; // `scheme://`, not a pair
        }
        while v < b.len() && b[v] == b' ' {
            v += 1;
        }
        // A quote, or an escaped quote (`\"`) when the text is itself quoted JSON.
        let escaped = b.get(v) == Some(&b'\\') && matches!(b.get(v + 1), Some(b'"' | b'\''));
        let quote_at = if escaped { v + 1 } else { v };
        let quote = b
            .get(quote_at)
            .copied()
            .filter(|c| matches!(c, b'"' | b'\''));
        let end = match quote {
            Some(q) => {
                let mut e = quote_at + 1;
                while e < b.len() {
                    if escaped && b[e] == b'\\' && b.get(e + 1) == Some(&q) {
                        break;
                    }
                    if !escaped && b[e] == q {
                        break;
                    }
                    e += if b[e] == b'\\' && !escaped { 2 } else { 1 };
                }
                // A closed quote keeps its quotes; an unclosed one goes with the value.
                if e < b.len() {
                    v = quote_at + 1;
                }
                e.min(b.len())
            }
            None => {
                let word_end = |mut e: usize| {
                    while e < b.len() && !is_delimiter(b[e]) {
                        e += 1;
                    }
                    e
                };
                // A value that only starts with `[REDACTED]` is not redacted yet: look past it.
                let e = if text[v..].starts_with(REDACTED) {
                    word_end(v + REDACTED.len())
                } else {
                    word_end(v)
                };
                // `authorization: Bearer abc`: an authentication scheme takes the credential after it along.
                let scheme = &text[v..e];
                if ["bearer", "basic", "digest", "token", "negotiate"]
                    .iter()
                    .any(|s| scheme.eq_ignore_ascii_case(s))
                    && b.get(e) == Some(&b' ')
                {
                    word_end(e + 1)
                } else {
                    e
                }
            }
        };
        if end > v && text[v..end].trim_start_matches(['"', '\'']) != REDACTED {
            out.push(v..end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::DEFAULT_REDACT_KEYS;
    use super::*;

    fn clean(text: &str) -> String {
        let keys = KeyMatcher::new(DEFAULT_REDACT_KEYS).unwrap();
        TextScanner::new(Detectors::default())
            .clean(text, &keys)
            .unwrap_or_else(|| text.to_string())
    }

    #[test]
    fn each_detector_finds_its_class() {
        for (input, want) in [
            ("sent Bearer eyJx.y-z_~+/= ok", "sent Bearer [REDACTED] ok"),
            (
                "authorization: Basic dXNlcjpwYXNz",
                "authorization: [REDACTED]",
            ),
            ("Bearer%20abc123def", "Bearer [REDACTED]"),
            ("Bearer+abc123def", "Bearer+[REDACTED]"),
            (
                "t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x end",
                "t [REDACTED] end",
            ),
            ("card 4111 1111 1111 1111 used", "card [REDACTED] used"),
            ("card 4111-1111-1111-1111", "card [REDACTED]"),
            ("card 4111.1111.1111.1111", "card [REDACTED]"),
            ("card 4111+1111+1111+1111", "card [REDACTED]"),
            ("card 4111%201111%201111%201111", "card [REDACTED]"),
            ("card=4111111111111111&x=1", "card=[REDACTED]&x=1"),
            (
                "pan 4111 1111 1111 1111 1 trailing",
                "pan [REDACTED] 1 trailing",
            ),
            ("mail jane.doe+x@example.co.uk now", "mail [REDACTED] now"),
            ("mail jane%40example.com", "mail [REDACTED]"),
            ("mail jane%2540example.com", "mail [REDACTED]"),
            (
                "k -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- after",
                "k [REDACTED] after",
            ),
            ("cut -----BEGIN PRIVATE KEY-----\nMIIE", "cut [REDACTED]"),
            (
                "see https://al:hunter2@db.internal/x",
                "see https://[REDACTED]@db.internal/x",
            ),
            (
                "login failed: password=hunter2 for jane",
                "login failed: password=[REDACTED] for jane",
            ),
            (
                r#"{"user":"al","password":"hun ter2"}"#,
                r#"{"user":"al","password":"[REDACTED]"}"#,
            ),
            (
                r#"item "{\"password\": \"hun ter2\"}""#,
                r#"item "{\"password\": \"[REDACTED]\"}""#,
            ),
            ("token: s3cr3t and more", "token: [REDACTED] and more"),
            ("api-key = 'abc def'", "api-key = '[REDACTED]'"),
            ("q=password%3Dhunter2", "q=password=[REDACTED]"),
            ("pass%77ord=hunter2", "password=[REDACTED]"),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "GET /items/42",
            "no such item",
            "order 4111 1111 1111 1112",
            "trace 4bf92f3577b34da6a3ce929d0e0e4736",
            "100% done",
            "ratio: 0.5",
            "a basic idea",
            "http://example.com/x",
            "version 1.2.3.4",
            "status code=200",
        ] {
            assert_eq!(clean(text), text, "{text}");
        }
    }

    #[test]
    fn detectors_switch_off_one_by_one() {
        let keys = KeyMatcher::new(DEFAULT_REDACT_KEYS).unwrap();
        let off = TextScanner::new(Detectors {
            bearer: false,
            basic: false,
            jwt: false,
            card: false,
            email: false,
            private_key: false,
            url_credentials: false,
            key_value_pairs: false,
        });
        let text = "Bearer abc Basic dXNlcjpw eyJa.eyJb.c 4111111111111111 a@b.io \
                    -----BEGIN PRIVATE KEY----- x://u:p@h password=x";
        assert_eq!(off.clean(text, &keys), None);
    }

    #[test]
    fn luhn_accepts_valid_numbers_only() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("4111"));
        assert!(luhn_i64(4111111111111111) && luhn_i64(-4111111111111111));
        assert!(!luhn_i64(4111111111111112) && !luhn_i64(0) && !luhn_i64(i64::MIN));
    }
}
