//! The property suite of every parser and detector: hostile strings never make one panic, and a secret planted the
//! way an attacker would (encoded, split, quoted, escaped) never comes out. CI runs the default case count; a long
//! run is `PROPTEST_CASES=200000 cargo test --release -p ndotel-redact fuzz`.

use super::keys::{DEFAULT_REDACT_KEYS, KeyMatcher};
use super::sql::{self, Dialect};
use super::text::fully_decode;
use super::{RedactSettings, Redactor};
use proptest::prelude::*;

/// Strings made of what breaks scanners: quotes, backslashes, percent signs and escapes, separators, comment
/// openers, `@`, digits, multibyte UTF-8 — short, and now and then very long.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("`".to_string()),
        Just("\\".to_string()),
        Just("$$".to_string()),
        Just("$t$".to_string()),
        Just("--".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("#".to_string()),
        Just("%".to_string()),
        Just("%2".to_string()),
        Just("%25".to_string()),
        Just("%3D".to_string()),
        Just("%40".to_string()),
        Just("?".to_string()),
        Just("&".to_string()),
        Just(";".to_string()),
        Just("=".to_string()),
        Just(":".to_string()),
        Just("@".to_string()),
        Just("://".to_string()),
        Just("Bearer ".to_string()),
        Just("eyJ".to_string()),
        Just("-----BEGIN PRIVATE KEY-----".to_string()),
        Just("[REDACTED]".to_string()),
        "[0-9]{1,20}",
        "[ .+_-]",
        "[a-zA-Z]{1,8}",
        "[é€😀\u{0}\u{7f}]",
    ];
    prop_oneof![
        20 => proptest::collection::vec(piece.clone(), 0..40).prop_map(|p| p.concat()),
        1 => (proptest::collection::vec(piece, 1..8), 1000usize..5000)
            .prop_map(|(p, n)| p.concat().repeat(n / 8 + 1)),
    ]
}

fn redactor() -> Redactor {
    Redactor::new(&RedactSettings::default()).expect("default settings compile")
}

const DIALECTS: [Dialect; 4] = [
    Dialect::MySql,
    Dialect::Postgres,
    Dialect::Sqlite,
    Dialect::Other,
];
const KEYS: [&str; 9] = [
    "url.full",
    "url.query",
    "url.path",
    "http.target",
    "server.address",
    "db.query.text",
    "exception.message",
    "user_agent.original",
    "http.request.header.referer",
];

/// Percent-encodes each byte of `s` whose `mask` bit is set, in upper or lower case hex.
fn encode_some(s: &str, mask: u64, lower: bool) -> String {
    s.bytes()
        .enumerate()
        .map(|(i, b)| {
            if mask >> (i % 64) & 1 == 1 {
                if lower {
                    format!("%{b:02x}")
                } else {
                    format!("%{b:02X}")
                }
            } else {
                (b as char).to_string()
            }
        })
        .collect()
}

/// A number of `prefix`'s digits and one more that passes Luhn.
fn luhn_number(prefix: u64) -> String {
    let base = prefix.to_string();
    (0..10)
        .map(|d| format!("{base}{d}"))
        .find(|s| super::text::luhn(s))
        .expect("one of ten check digits passes")
}

/// Whether `secret` is visible in `out`, as is or once decoded.
fn leaks(out: &str, secret: &str) -> bool {
    out.contains(secret) || fully_decode(out).contains(secret)
}

proptest! {
    #[test]
    fn no_input_makes_a_parser_or_detector_panic(s in hostile(), k in 0usize..KEYS.len(), d in 0usize..4) {
        let r = redactor();
        let _ = r.clean_value(KEYS[k], &s, DIALECTS[d]);
        let _ = r.clean_text(&s);
        let _ = sql::strip(&s, DIALECTS[d]);
        let _ = KeyMatcher::new(DEFAULT_REDACT_KEYS).expect("defaults compile").is_match(&s);
        let _ = r.clean_query(&s, 3);
        let _ = r.clean_host(&s);
    }

    #[test]
    fn a_sensitive_query_parameter_never_leaks_however_it_is_encoded(
        name in prop::sample::select(vec!["password", "passwd", "pwd", "pass", "token", "access_token",
            "api_key", "api-key", "apiKey", "X-Api-Key", "secret", "client_secret", "session", "sig", "auth", "key",
            "code", "jsessionid"]),
        secret in "[A-Za-z0-9]{12,24}",
        mask in any::<u64>(),
        lower in any::<bool>(),
        twice in any::<bool>(),
        encode_value in any::<bool>(),
        sep in prop::sample::select(vec!["&", ";"]),
        noise in "[a-z]{1,6}=[a-z0-9?/]{0,8}",
        shape in 0usize..4,
    ) {
        let mut n = encode_some(name, mask, lower);
        if twice {
            n = n.replace('%', "%25");
        }
        let v = if encode_value { encode_some(&secret, mask.rotate_left(7), lower) } else { secret.clone() };
        let query = format!("{noise}{sep}{n}={v}{sep}{noise}");
        let (key, value) = match shape {
            0 => ("url.query", query),
            1 => ("url.full", format!("https://shop.example/p?{query}")),
            2 => ("http.target", format!("/p?{query}")),
            _ => ("url.query", format!("next={}", encode_some(&query, u64::MAX, lower))),
        };
        let out = redactor().clean_value(key, &value, Dialect::Other).unwrap_or(value.clone());
        prop_assert!(!leaks(&out, &secret), "{key} = {value} → {out}");
    }

    #[test]
    fn a_secret_value_never_leaks_from_any_attribute(
        kind in 0usize..9,
        token in "[A-Za-z0-9]{12,30}",
        card in 400_000_000_000_000u64..499_999_999_999_999u64,
        sep in prop::sample::select(vec!["", " ", "-", ".", "+", "%20", "_"]),
        at in prop::sample::select(vec!["@", "%40", "%2540"]),
        space in prop::sample::select(vec![" ", "+", "%20", "  "]),
        before in "[a-z ]{0,10}",
        after in "[a-z ]{0,10}",
        k in 0usize..KEYS.len(),
    ) {
        let card = luhn_number(card);
        let (planted, secret) = match kind {
            0 => (format!("Bearer{space}{token}"), token.clone()),
            1 => {
                use base64::Engine as _;
                let credential = base64::engine::general_purpose::STANDARD.encode(format!("al:{token}"));
                (format!("basic{space}{credential}"), credential)
            }
            2 => {
                let grouped = card.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect::<Vec<_>>().join(sep);
                (grouped, card.clone())
            }
            3 => (format!("{token}{at}example.com"), token.clone()),
            4 => (format!("eyJ{token}.eyJ{token}.{token}"), token.clone()),
            5 => (format!("-----BEGIN EC PRIVATE KEY-----\n{token}\n-----END EC PRIVATE KEY-----"), token.clone()),
            // Pairs in text: plain, JSON, and JSON quoted inside a quoted string (a `{:?}` of a request body).
            6 => (format!("api_key={token}"), token.clone()),
            7 => (format!(r#"{{"passwd": "{token}"}}"#), token.clone()),
            _ => (format!(r#""{{\"secret\":\"{token}\"}}""#), token.clone()),
        };
        let key = KEYS[k];
        if key == "db.query.text" {
            return Ok(()); // SQL text: see the SQL property below.
        }
        let value = match key {
            "url.full" => format!("https://h/p?q={before}{planted}{after}"),
            "http.target" | "url.path" => format!("/p/{before}{planted}{after}"),
            _ => format!("{before}{planted}{after}"),
        };
        let out = redactor().clean_value(key, &value, Dialect::Other).unwrap_or(value.clone());
        // Card digits must not survive in any grouping.
        let digits: String = out.chars().filter(char::is_ascii_digit).collect();
        let leaked = if kind == 2 { digits.contains(&secret) } else { leaks(&out, &secret) };
        prop_assert!(!leaked, "{key} = {value:?} → {out:?}");
    }

    #[test]
    fn a_literal_in_sql_never_leaks_in_its_dialect(
        secret in "[A-Za-z0-9]{12,24}",
        noise in proptest::collection::vec(prop::sample::select(vec!["'", "\"", "\\", "$", "-", "/", "*", "#", "x", " ", "é", "`"]), 0..12),
        style in 0usize..5,
    ) {
        let noise: String = noise.concat();
        let text = format!("{noise}{secret}{noise}");
        // The literal as a driver or a careless app would write it for that server.
        let (dialect, literal) = match style {
            0 => (Dialect::MySql, format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))),
            1 => (Dialect::MySql, format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))),
            2 => (Dialect::Postgres, format!("'{}'", text.replace('\'', "''"))),
            3 => (Dialect::Postgres, if text.contains("$$") { format!("'{}'", text.replace('\'', "''")) } else { format!("$${text}$$") }),
            _ => (Dialect::Sqlite, format!("'{}'", text.replace('\'', "''"))),
        };
        let stmt = format!("SELECT * FROM users WHERE name = {literal} AND id = 7");
        let out = redactor().clean_value("db.query.text", &stmt, dialect).unwrap_or(stmt.clone());
        prop_assert!(!out.contains(&secret), "{dialect:?}: {stmt} → {out}");
    }

    /// The other direction: what only looks like a secret comes out byte for byte — timestamps and ids of 13 to 19
    /// digits (a tenth of them pass Luhn), counts under keys that name a secret's kind, words after `Basic`.
    #[test]
    fn data_that_only_looks_like_a_secret_is_never_destroyed(
        epoch_ms in 1_000_000_000_000u64..1_999_999_999_999u64,
        scale in prop::sample::select(vec![1u64, 1_000, 1_000_000]),
        snowflake in 1_000_000_000_000_000_000u64..1_999_999_999_999_999_999u64,
        word in prop::sample::select(vec!["planZ12", "plan", "idea", "tier", "plus", "Auth", "Info", "usage", "mode2"]),
        count in 0u32..100_000,
        subject in prop::sample::select(vec!["tokens", "token", "password", "session", "key", "secret"]),
        describing in prop::sample::select(vec!["used", "count", "length", "total", "limit", "type"]),
        k in 0usize..KEYS.len(),
    ) {
        let key = KEYS[k];
        if key == "db.query.text" {
            return Ok(());
        }
        let ts = epoch_ms.saturating_mul(scale);
        for value in [
            format!("at {ts} id {snowflake}"),
            format!("{subject}_{describing}={count}"),
            format!("search Basic {word}"),
        ] {
            let out = redactor().clean_value(key, &value, Dialect::Other);
            prop_assert!(out.is_none() || out.as_deref() == Some(value.as_str()), "{key} = {value:?} → {out:?}");
        }
    }
}
