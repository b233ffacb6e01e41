//! Secrets in free text: value detectors (bearer/basic credentials, JWTs, card numbers passing Luhn in any common
//! separator style, e-mail addresses, private-key blocks, credentials in URLs) and `key=value` / `key: value`
//! pairs whose key is sensitive. Text is judged fully percent-decoded, so an encoded secret is found too.
//!
//! Every detector is linear in the text it is given: each byte is looked at a bounded number of times, whatever the
//! text holds (the regexes are the `regex` crate's, which guarantees linear time; the hand-written scanners count
//! their steps in tests, and a property test doubles hostile inputs and checks the count at most doubles). How much
//! of one value is scanned at all is capped by the redactor (`max_value_length`): a longer value is redacted whole.
//!
//! Base64 is not decoded and searched: a secret under a sensitive key is redacted by its key whatever its encoding,
//! and a `Basic` credential is recognised by decoding it (base64 of `user:password`), but an arbitrary base64 blob in
//! free text is data, not a secret, to these detectors.

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
    /// API keys in well-known formats: Stripe `sk_live_…`/`rk_live_…`, GitHub `ghp_…`/`github_pat_…`, GitLab
    /// `glpat-…`, Slack `xoxb-…`, AWS access key ids `AKIA…`, Google API keys `AIza…`.
    pub api_tokens: bool,
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
            api_tokens: true,
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
        if on.api_tokens {
            parts.push(
                r"(?P<token>(?-u:\b)(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{20,}|xox[abposr]-[A-Za-z0-9\-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{35}))",
            );
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
            // The lead byte of the fullwidth `＝` and `：`.
            bytes[0xEF] = Byte::Trigger;
        }
        if on.api_tokens {
            for c in [b's', b'r', b'g', b'x', b'A'] {
                bytes[usize::from(c)] = Byte::Starts;
            }
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
        work(b.len());
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
                        b'-' => rest.starts_with(b"-----BEGIN"),
                        _ => {
                            self.on.api_tokens
                                && [
                                    &b"sk_"[..],
                                    b"rk_",
                                    b"gh",
                                    b"glpat-",
                                    b"xox",
                                    b"AKIA",
                                    b"AIza",
                                ]
                                .iter()
                                .any(|p| rest.starts_with(p))
                        }
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
                if let Some(m) = caps.name("basic") {
                    // `Basic` is also an English word (`Basic planZ12`): only base64 of `user:password` is a
                    // credential.
                    if is_basic_credential(m.as_str()) {
                        out.push(m.range());
                    }
                    continue;
                }
                let group = ["bearer", "jwt", "token", "userinfo", "email"]
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
/// groups holding 13–19 digits that passes Luhn and has a card issuer's prefix and length ([`issued`]) is
/// redacted. Epoch timestamps (`17…`, 13 to 19 digits) and snowflake-style ids pass Luhn one time in ten, but
/// carry no issuer prefix, so they are kept. A long run of digits with no separator is a card only
/// when it has 13–19 digits itself.
fn cards(b: &[u8], out: &mut Vec<Range<usize>>) {
    let mut i = 0;
    while i < b.len() {
        work(1);
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
                if digits >= 13 {
                    let run = || groups[g..=h].iter().flat_map(|r| &b[r.clone()]);
                    work(digits);
                    if issued(run(), digits) && luhn_digits(run()) {
                        found = Some(h);
                    }
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

/// Whether `digits` (ASCII digits, `len` of them) start the way a card issuer's numbers of that length do: Visa
/// (4: 13, 16, 19), Mastercard (51–55, 2221–2720: 16), American Express (34, 37: 15), Diners Club (300–305, 36,
/// 38, 39: 14–19), JCB (3528–3589: 16–19), Discover, UnionPay, RuPay and Maestro (6: 16–19; 50, 56–59: 12–19) and
/// UATP (1: 15).
fn issued<'a>(mut digits: impl Iterator<Item = &'a u8>, len: usize) -> bool {
    let mut prefix = 0u32;
    for _ in 0..4 {
        prefix = prefix * 10 + digits.next().map_or(0, |d| u32::from(d - b'0'));
    }
    let (p1, p2, p3) = (prefix / 1000, prefix / 100, prefix / 10);
    let between = |lo: usize, hi: usize| (lo..=hi).contains(&len);
    match p1 {
        4 => matches!(len, 13 | 16 | 19),
        5 if (51..=55).contains(&p2) => len == 16,
        5 => (p2 == 50 || (56..=59).contains(&p2)) && between(12, 19),
        2 => (2221..=2720).contains(&prefix) && len == 16,
        3 => {
            ((p2 == 34 || p2 == 37) && len == 15)
                || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && between(14, 19))
                || ((3528..=3589).contains(&prefix) && between(16, 19))
        }
        6 => between(16, 19),
        1 => len == 15,
        _ => false,
    }
}

/// Whether an integer is a card number ([`luhn`]'s rules) stored as a number.
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
    issued(digits[..len].iter(), len) && luhn_digits(digits[..len].iter())
}

/// Whether the digits of `s` (anything else ignored) are 13–19, start as a card issuer's do and pass the Luhn check.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
    (13..=19).contains(&digits.len())
        && issued(digits.iter(), digits.len())
        && luhn_digits(digits.iter())
}

/// Whether `candidate` is base64 (padded or not, standard or URL-safe) of text holding a `:` — `user:password`.
/// Characters glued after the credential (`…cGFzcwx`) do not hide it: the longest whole-quantum prefix is decoded too.
fn is_basic_credential(candidate: &str) -> bool {
    use base64::Engine as _;
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let trimmed = candidate.trim_end_matches('=');
    let whole = &trimmed[..trimmed.len() - trimmed.len() % 4];
    [
        GeneralPurpose::new(&STANDARD, config),
        GeneralPurpose::new(&URL_SAFE, config),
    ]
    .iter()
    .any(|engine| {
        [trimmed, whole]
            .iter()
            .any(|t| engine.decode(t).is_ok_and(|raw| is_user_password(&raw)))
    })
}

/// Whether decoded bytes read as `user:password`: they start with UTF-8 text without control characters, holding
/// a `:`, over at least half their length (characters glued after a credential decode to garbage at its end).
fn is_user_password(raw: &[u8]) -> bool {
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&raw[..e.valid_up_to()]).unwrap_or_default(),
    };
    let text = text.find(char::is_control).map_or(text, |at| &text[..at]);
    text.contains(':') && text.len() * 2 >= raw.len()
}

// Counts steps of the hand-written scanners (in tests only), so a test can check the work is linear.
#[cfg(test)]
thread_local! {
    pub(super) static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline(always)]
fn work(_steps: usize) {
    #[cfg(test)]
    WORK.with(|w| w.set(w.get() + _steps as u64));
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

/// Space around a separator: any Unicode white space (a tab, a no-break space, an ideographic space) and the
/// default-ignorable characters that render as nothing.
fn is_space(c: char) -> bool {
    c.is_whitespace() || super::keys::is_default_ignorable(c)
}

/// A character of a key: a letter or digit of any script (keys are compared after Unicode normalisation, so a
/// fullwidth `ｐａｓｓｗｏｒｄ` is `password`), `_`, `-`, `.`, and the invisible characters normalisation removes.
fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.') || super::keys::is_default_ignorable(c)
}

/// `=` and `:`, also in their fullwidth forms.
fn is_separator(c: char) -> bool {
    matches!(c, '=' | ':' | '\u{FF1D}' | '\u{FF1A}')
}

/// The start of the run of `keep` characters that ends at `end`, looking no further back than `floor`.
fn run_back(text: &str, floor: usize, end: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut start = end;
    for (i, c) in text[floor..end].char_indices().rev() {
        work(1);
        if !keep(c) {
            break;
        }
        start = floor + i;
    }
    start
}

/// The end of the run of `keep` characters that starts at `start`.
fn run_forward(text: &str, start: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut end = start;
    for c in text[start..].chars() {
        work(1);
        if !keep(c) {
            break;
        }
        end += c.len_utf8();
    }
    end
}

/// Values of `key=value`, `key: value`, `"key": "value"` and `key="value"` pairs whose key is sensitive, with any
/// white space around the separator.
///
/// Linear: a key is looked for between this separator and the previous one only, and once a value is redacted the
/// separators inside it are not looked at again (`pw=pw=pw=…` redacts one value, not one per `=`).
fn pairs(text: &str, keys: &KeyMatcher, out: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    // Where the previous separator ended (keys are looked for after it) and where the last redacted value ended.
    let mut floor = 0;
    let mut resume = 0;
    for (sep, sep_str) in text.match_indices(is_separator) {
        work(1);
        let after = sep + sep_str.len();
        let key_floor = std::mem::replace(&mut floor, after);
        if sep < resume {
            continue;
        }
        // The key: the name just before the separator, past spaces and a closing quote.
        let mut k_end = run_back(text, key_floor, sep, is_space);
        if k_end > key_floor && matches!(b[k_end - 1], b'"' | b'\'') {
            k_end -= 1;
            // JSON quoted inside a string: `\"password\": \"…\"`.
            if k_end > key_floor && b[k_end - 1] == b'\\' {
                k_end -= 1;
            }
        }
        let k_start = run_back(text, key_floor, k_end, is_key_char);
        if k_start == k_end || !keys.is_match(&text[k_start..k_end]) {
            continue;
        }
        if sep_str == ":" && b.get(after) == Some(&b'/') {
            continue; // `scheme://`, not a pair
        }
        // The value: past spaces and an opening quote, to the closing quote or the first delimiter.
        let mut v = run_forward(text, after, is_space);
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
                    work(1);
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
                        work(1);
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
                    && matches!(b.get(e), Some(b' ' | b'\t'))
                {
                    word_end(run_forward(text, e, is_space))
                } else {
                    e
                }
            }
        };
        resume = end;
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
            api_tokens: false,
        });
        let text = "Bearer abc Basic dXNlcjpw eyJa.eyJb.c 4111111111111111 a@b.io \
                    -----BEGIN PRIVATE KEY----- x://u:p@h password=x";
        assert_eq!(off.clean(text, &keys), None);
    }

    #[test]
    fn white_space_and_invisible_characters_around_separators_do_not_hide_a_pair() {
        for (input, want) in [
            ("password:\thunter2", "password:\t[REDACTED]"),
            ("password\t=\thunter2 x", "password\t=\t[REDACTED] x"),
            (
                "password\u{00A0}:\u{3000}hunter2",
                "password\u{00A0}:\u{3000}[REDACTED]",
            ),
            ("pass\u{200B}word=hunter2", "pass\u{200B}word=[REDACTED]"),
            ("ｐａｓｓｗｏｒｄ=hunter2", "ｐａｓｓｗｏｒｄ=[REDACTED]"),
            ("password＝hunter2", "password＝[REDACTED]"),
            ("passcode=1234567", "passcode=[REDACTED]"),
            (
                "authorization:\tBearer\tabc123",
                "authorization:\t[REDACTED]",
            ),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    #[test]
    fn api_keys_in_well_known_formats_are_found() {
        for (input, secret) in [
            (
                "charge with sk_live_4eC39HqLyjWDarjtT1zdp7dc ok",
                "4eC39HqLyjWDarjtT1zdp7dc",
            ),
            (
                "gh ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "abcdefghijklmnopqrstuvwxyz0123456789",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE.", "IOSFODNN7EXAMPLE"),
            (
                "slack xoxb-123456789012-abcdefghij",
                "123456789012-abcdefghij",
            ),
        ] {
            assert!(!clean(input).contains(secret), "{input}");
        }
    }

    #[test]
    fn numbers_and_words_that_only_look_like_secrets_are_kept() {
        for text in [
            // Epoch timestamps (ms, µs, ns) and snowflake ids that pass Luhn, with no card issuer prefix.
            "at 1733500000007",
            "t=1733500000000004 ns=1733500000000000006",
            "id 1541815603606036489",
            "search Basic planZ12",
            "tokens_used=4242",
            "password_length: 12",
        ] {
            assert!(!luhn("1733500000007") || !text.contains("1733500000007"));
            assert_eq!(clean(text), text, "{text}");
        }
        // A Basic credential is base64 of `user:password`.
        assert_eq!(clean("auth Basic dXNlcjpwYXNz"), "auth Basic [REDACTED]");
        // Cards of every common issuer are still found.
        for card in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
        ] {
            assert_eq!(clean(&format!("n {card}")), "n [REDACTED]", "{card}");
            assert!(luhn(card), "{card}");
        }
    }

    /// The scanner's counted steps for `text`.
    fn steps(text: &str) -> u64 {
        let keys = KeyMatcher::new(DEFAULT_REDACT_KEYS).unwrap();
        let scanner = TextScanner::new(Detectors::default());
        WORK.with(|w| w.set(0));
        let _ = scanner.clean(text, &keys);
        WORK.with(|w| w.get())
    }

    proptest::proptest! {
        /// Doubling a hostile input at most doubles the work (plus a constant): no input is super-linear.
        #[test]
        fn the_work_is_linear_in_the_input(
            unit in proptest::sample::select(vec![
                "pw=", "pw:", "password=\"", "password: '", "pw=\\\"", "a=", "=", ": ", "pw \t=", "\u{3000}=",
                "password=Bearer ", "1 ", "4111-", "-----BEGIN ", "-----BEGIN PRIVATE KEY-----", "Basic aaaaaa",
                "ｐｗ＝", "pass\u{200B}word:", "x@", "%3D", "sk_live_",
            ]),
            tail in "[a-z=:\" ]{0,4}",
            n in 256usize..1024,
        ) {
            let small = format!("{}{tail}", unit.repeat(n));
            let large = format!("{}{tail}", unit.repeat(2 * n));
            let (a, b) = (steps(&small), steps(&large));
            proptest::prop_assert!(b <= 2 * a + 4096, "{unit:?} x{n}: {a} steps, doubled: {b}");
        }
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
