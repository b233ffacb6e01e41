//! Redaction for ndotel distros: what a distro promises never reaches an exporter, for spans, log records and
//! metric series alike. It depends on `ndotel-api` only, so any distro can use it; the reference distro
//! (`otel_custom_distro`) and the distros `ndotel new` generates do.
//!
//! Names are matched as words without regard to case, separator or Unicode look-alikes ([`keys`]); URLs, queries
//! and hosts are parsed and judged decoded; SQL literals are stripped in the span's dialect ([`sql`]); everything
//! else is searched by the value detectors ([`text`]: key=value and `key: value` pairs, bearer and basic
//! credentials, JWTs, private keys, API key formats, e-mail addresses, card numbers with an issuer prefix). Work is
//! linear in a value's length, and a value longer than `max_value_length` (64 KiB by default) is redacted whole
//! instead of scanned, so no input can make a call slow.
//!
//! Base64 is not decoded in general (any word may be base64 of something): a secret is found in base64 only where a
//! format says it is encoded — a `Basic` credential, a JWT.
//!
//! ```
//! use ndotel_api::{Edits, LogEdits, LogProcessor, LogView, SpanProcessor, SpanView};
//! use ndotel_redact::{RedactSettings, Redactor};
//!
//! /// A processor that redacts spans (and, through them, metric series) and log records.
//! #[derive(Debug)]
//! struct Redacting(Redactor);
//!
//! impl SpanProcessor for Redacting {
//!     fn on_end(&self, span: &SpanView<'_>, edits: &mut Edits<'_>) {
//!         self.0.redact_span(span, edits);
//!     }
//! }
//!
//! impl LogProcessor for Redacting {
//!     fn on_emit(&self, record: &LogView<'_>, edits: &mut LogEdits<'_>) {
//!         self.0.redact_log(record, edits);
//!     }
//! }
//!
//! // The defaults, plus one key of the distro's own: keys are globs over words (`*_pin` matches `card_pin`).
//! let mut settings = RedactSettings::default();
//! settings.keys.push("*_pin".into());
//! let p = Redacting(Redactor::new(&settings).expect("the rules compile"));
//!
//! use ndotel_api::testing::{Edit, LogEdit, Target, TestLog, TestSpan, process, process_log};
//! let span = TestSpan::new("GET /login")
//!     .attribute("url.query", "user=al&password=hunter2")
//!     .attribute("card_pin", "1234");
//! let edits = process(&p, &span);
//! assert!(edits.contains(&Edit::Redact { target: Target::Span, key: "card_pin".into() }));
//! assert!(!format!("{edits:?}").contains("hunter2"));
//! let log = TestLog::new("login failed: password=hunter2");
//! assert!(matches!(&process_log(&p, &log)[..], [LogEdit::SetBody(_)]));
//! ```

pub mod keys;
pub mod sql;
pub mod text;
mod url;

#[cfg(test)]
mod fuzz;

use keys::KeyMatcher;
use ndotel_api::abi_stable::std_types::RStr;
use ndotel_api::{
    AnyValue, BoxError, Edits, KeyValueRef, LogEdits, LogView, REDACTED, SpanView, ValueRef,
};
use serde::Deserialize;
use sql::Dialect;
use text::{Detectors, TextScanner};

/// What is redacted: the keys, the attributes parsed as URLs, hosts and SQL, the detectors, the cap. Deserializes
/// from a distro's settings table (every field optional, unknown fields refused); a list given there replaces the
/// default list, so extend [`RedactSettings::default`] in code to keep the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactSettings {
    /// Globs of attribute keys (and query parameter, header and `key=value` names) whose values are redacted; see
    /// [`keys::DEFAULT_REDACT_KEYS`] for the matching rules.
    pub keys: Vec<String>,
    /// Further query parameter names redacted inside URLs (same matching rules).
    pub query_params: Vec<String>,
    /// Attributes holding URLs, request targets or query strings.
    pub url_attributes: Vec<String>,
    /// Attributes holding host names, where anything before an `@` is a user or password.
    pub host_attributes: Vec<String>,
    /// Attributes holding SQL text, whose literals become `?` (in the dialect of `db.system.name`).
    pub sql_attributes: Vec<String>,
    /// Whether SQL literals are stripped.
    pub sql: bool,
    /// Values longer than this many bytes are redacted whole, not scanned.
    pub max_value_length: usize,
    /// The value detectors.
    pub detectors: Detectors,
}

impl Default for RedactSettings {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        RedactSettings {
            keys: strings(keys::DEFAULT_REDACT_KEYS),
            query_params: strings(keys::DEFAULT_QUERY_PARAMS),
            url_attributes: strings(&[
                "url.full",
                "url.query",
                "url.path",
                "url.fragment",
                "url.original",
                "http.url",
                "http.target",
                "http.request.header.referer",
                "http.response.header.location",
            ]),
            host_attributes: strings(&[
                "server.address",
                "client.address",
                "url.domain",
                "http.host",
                "net.peer.name",
                "net.host.name",
                "http.request.header.host",
                "http.request.header.x-forwarded-host",
            ]),
            sql_attributes: strings(&["db.query.text", "db.statement"]),
            sql: true,
            max_value_length: 64 * 1024,
            detectors: Detectors::default(),
        }
    }
}

/// One change to an attribute list.
#[derive(Debug, PartialEq)]
pub enum Fix<'a> {
    /// Replace the value by `[REDACTED]`.
    Redact(&'a str),
    /// Replace the value by this string.
    Set(&'a str, String),
    /// Replace the string array by this one.
    SetArray(&'a str, Vec<String>),
}

impl Fix<'_> {
    /// Carries the fix out on `sink` (a span's, an event's, a link's or a log record's edits): `redact(sink, key)`,
    /// or `set(sink, key, value)` with the new value.
    pub fn apply<S>(
        self,
        sink: &mut S,
        redact: impl FnOnce(&mut S, &str),
        set: impl for<'v> FnOnce(&mut S, &str, ValueRef<'v>),
    ) {
        match self {
            Fix::Redact(key) => redact(sink, key),
            Fix::Set(key, value) => set(sink, key, value.as_str().into()),
            Fix::SetArray(key, items) => set(sink, key, borrowed(&items).as_slice().into()),
        }
    }
}

/// What an attribute key says about its value, judged once per key.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    /// Redacted whatever it holds.
    Sensitive,
    /// SQL, stripped of literals.
    Sql,
    /// A URL, parsed.
    Url,
    /// A host, userinfo removed, then scanned as text.
    Host,
    /// Scanned as text.
    Text,
}

/// The compiled redaction rules.
#[derive(Debug)]
pub struct Redactor {
    keys: KeyMatcher,
    classes: keys::VerdictCache<Class>,
    params: KeyMatcher,
    scanner: TextScanner,
    url_attributes: Vec<String>,
    host_attributes: Vec<String>,
    sql_attributes: Vec<String>,
    sql: bool,
    /// What the statements seen first became.
    statements: sql::Memo,
    max_len: usize,
}

impl Redactor {
    /// Compiles the rules.
    pub fn new(s: &RedactSettings) -> Result<Self, BoxError> {
        Ok(Redactor {
            keys: KeyMatcher::new(&s.keys).map_err(|e| format!("redact.keys: {e}"))?,
            classes: keys::VerdictCache::new(),
            params: KeyMatcher::new(&s.query_params)
                .map_err(|e| format!("redact.query_params: {e}"))?,
            scanner: TextScanner::new(s.detectors),
            url_attributes: s.url_attributes.clone(),
            host_attributes: s.host_attributes.clone(),
            sql_attributes: s.sql_attributes.clone(),
            sql: s.sql,
            statements: sql::Memo::new(),
            max_len: s.max_value_length,
        })
    }

    /// Whether values under `key` are redacted whatever they hold.
    pub fn is_sensitive_key(&self, key: &str) -> bool {
        self.keys.is_match(key)
    }

    /// The value `key: value` should have once redacted, or `None` when it is fine as it is. `dialect` is the SQL
    /// dialect of the span.
    pub fn clean_value(&self, key: &str, value: &str, dialect: Dialect) -> Option<String> {
        match self.class(key) {
            Class::Sensitive => (value != REDACTED).then(|| REDACTED.to_string()),
            class => self.clean_as(class, key, value, dialect),
        }
    }

    /// The class of `key`: its verdict is remembered, so a span's usual keys cost one lookup each.
    fn class(&self, key: &str) -> Class {
        self.classes.get_or(key, || {
            let is = |list: &[String]| list.iter().any(|k| k == key);
            if self.keys.is_match(key) {
                Class::Sensitive
            } else if is(&self.sql_attributes) {
                Class::Sql
            } else if is(&self.url_attributes) {
                Class::Url
            } else if is(&self.host_attributes) {
                Class::Host
            } else {
                Class::Text
            }
        })
    }

    /// [`Redactor::clean_value`] for a key of a class other than [`Class::Sensitive`].
    fn clean_as(&self, class: Class, key: &str, value: &str, dialect: Dialect) -> Option<String> {
        if value.len() > self.max_len {
            return (value != REDACTED).then(|| REDACTED.to_string());
        }
        match class {
            Class::Sql if self.sql => self.statements.strip(value, dialect),
            Class::Url => self.clean_url(key, value),
            Class::Host => match self.clean_host(value) {
                Some(host) => Some(self.clean_text(&host).unwrap_or(host)),
                None => self.clean_text(value),
            },
            _ => self.clean_text(value),
        }
    }

    /// Free text (a status message, an exception message) with secrets redacted, or `None` when it has none.
    pub fn clean_text(&self, text: &str) -> Option<String> {
        if text.len() > self.max_len {
            return (text != REDACTED).then(|| REDACTED.to_string());
        }
        self.scanner.clean(text, &self.keys)
    }

    /// Finds what to change in one attribute list (of a span, an event, a link or a metric data point).
    pub fn check<'a>(
        &self,
        attributes: &'a [KeyValueRef<'a>],
        dialect: Dialect,
        mut fix: impl FnMut(Fix<'a>),
    ) {
        for kv in attributes {
            let key = kv.key.as_str();
            let value = kv.value.get();
            let class = self.class(key);
            if class == Class::Sensitive {
                if value != AnyValue::Str(REDACTED) {
                    fix(Fix::Redact(key));
                }
                continue;
            }
            match value {
                AnyValue::Str(v) => {
                    if let Some(clean) = self.clean_as(class, key, v, dialect) {
                        fix(Fix::Set(key, clean));
                    }
                }
                AnyValue::StrArray(items) => {
                    let cleaned: Vec<Option<String>> = items
                        .iter()
                        .map(|s| self.clean_as(class, key, s.as_str(), dialect))
                        .collect();
                    // A secret split over repeated values (a header sent twice: `password=`, `hunter2`) is only
                    // visible in them together: when their join still holds one, every value is redacted.
                    let split = items.len() > 1 && {
                        let joined = items
                            .iter()
                            .zip(&cleaned)
                            .map(|(s, c)| c.as_deref().unwrap_or(s.as_str()))
                            .collect::<Vec<_>>()
                            .join(" ");
                        self.clean_as(class, key, &joined, dialect).is_some()
                    };
                    if split {
                        fix(Fix::SetArray(key, vec![REDACTED.to_string(); items.len()]));
                    } else if cleaned.iter().any(Option::is_some) {
                        let items = items
                            .iter()
                            .zip(cleaned)
                            .map(|(s, c)| c.unwrap_or_else(|| s.to_string()))
                            .collect();
                        fix(Fix::SetArray(key, items));
                    }
                }
                // A card number stored as an integer.
                AnyValue::I64(n) if self.scanner.cards() && text::luhn_i64(n) => {
                    fix(Fix::Redact(key))
                }
                AnyValue::I64Array(ns)
                    if self.scanner.cards() && ns.iter().any(|n| text::luhn_i64(*n)) =>
                {
                    fix(Fix::Redact(key))
                }
                // A kind this build cannot read cannot be checked: fail closed.
                AnyValue::Unknown => fix(Fix::Redact(key)),
                _ => {}
            }
        }
    }

    /// Redacts `span` into `edits`: its attributes, its events' and links' attributes and its status message. A
    /// span with nothing to redact gets no edits and costs no allocation. Metric series reach a span processor as
    /// spans too (see `ndotel_api::SpanProcessor::on_end`), so this covers them.
    pub fn redact_span(&self, span: &SpanView<'_>, edits: &mut Edits<'_>) {
        let dialect = Redactor::dialect(span.attributes());
        self.check(span.attributes(), dialect, |fix| {
            fix.apply(&mut *edits, |e, k| e.redact(k), |e, k, v| e.set(k, v))
        });
        for (i, event) in span.events().enumerate() {
            self.check(event.attributes, dialect, |fix| {
                fix.apply(
                    &mut *edits,
                    |e, k| e.redact_event_attribute(i, k),
                    |e, k, v| e.set_event_attribute(i, k, v),
                )
            });
        }
        for (i, link) in span.links().enumerate() {
            self.check(link.attributes, dialect, |fix| {
                fix.apply(
                    &mut *edits,
                    |e, k| e.redact_link_attribute(i, k),
                    |e, k, v| e.set_link_attribute(i, k, v),
                )
            });
        }
        if let Some(clean) = self.clean_text(span.status_message()) {
            edits.set_status_message(&clean);
        }
    }

    /// Redacts `record` into `edits`: its body (a string or strings, scanned as free text; a body this build cannot
    /// read is redacted whole) and every attribute, by the same rules as a span's.
    pub fn redact_log(&self, record: &LogView<'_>, edits: &mut LogEdits<'_>) {
        match record.body().map(|b| b.get()) {
            None => {}
            Some(AnyValue::Str(text)) => {
                if let Some(clean) = self.clean_text(text) {
                    edits.set_body(clean.as_str());
                }
            }
            Some(AnyValue::StrArray(items)) => {
                let cleaned: Vec<Option<String>> =
                    items.iter().map(|s| self.clean_text(s.as_str())).collect();
                if cleaned.iter().any(Option::is_some) {
                    let owned: Vec<String> = items
                        .iter()
                        .zip(cleaned)
                        .map(|(s, c)| c.unwrap_or_else(|| s.to_string()))
                        .collect();
                    edits.set_body(borrowed(&owned).as_slice());
                }
            }
            // A body this build cannot read (a map, bytes) cannot be checked: fail closed.
            Some(AnyValue::Unknown) => edits.redact_body(),
            Some(_) => {}
        }
        let attributes = record.attributes();
        self.check(attributes, Redactor::dialect(attributes), |fix| {
            fix.apply(&mut *edits, |e, k| e.redact(k), |e, k, v| e.set(k, v))
        });
    }

    /// The SQL dialect named by an attribute list (`db.system.name`, or the older `db.system`).
    pub fn dialect(attributes: &[KeyValueRef<'_>]) -> Dialect {
        let system = attributes
            .iter()
            .find(|kv| matches!(kv.key.as_str(), "db.system.name" | "db.system"))
            .and_then(|kv| match kv.value.get() {
                AnyValue::Str(s) => Some(s),
                _ => None,
            });
        Dialect::of(system)
    }
}

impl Default for Redactor {
    /// The default rules ([`RedactSettings::default`]).
    fn default() -> Self {
        #[allow(clippy::expect_used)] // the defaults are fixed, and a test compiles them
        Redactor::new(&RedactSettings::default()).expect("the default redaction rules compile")
    }
}

/// This crate's own sources (`Cargo.toml`, `README.md` and `src/*`), for `ndotel new`, which writes a copy beside a
/// new distro. Not part of the API.
#[doc(hidden)]
pub const SOURCES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../Cargo.toml")),
    ("README.md", include_str!("../README.md")),
    ("src/lib.rs", include_str!("lib.rs")),
    ("src/keys.rs", include_str!("keys.rs")),
    ("src/sql.rs", include_str!("sql.rs")),
    ("src/text.rs", include_str!("text.rs")),
    ("src/url.rs", include_str!("url.rs")),
    ("src/fuzz.rs", include_str!("fuzz.rs")),
];

/// `items` as the API's borrowed strings (what an edit of a string array takes).
pub fn borrowed(items: &[String]) -> Vec<RStr<'_>> {
    items.iter().map(|s| RStr::from_str(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(key: &str, value: &str) -> String {
        Redactor::new(&RedactSettings::default())
            .unwrap()
            .clean_value(key, value, Dialect::Other)
            .unwrap_or_else(|| value.to_string())
    }

    #[test]
    fn queries_are_parsed_then_judged_decoded() {
        for (key, input, want) in [
            (
                "url.query",
                "user=al&password=hunter2",
                "user=al&password=[REDACTED]",
            ),
            // `;` separates too, and a `?` inside a value is data.
            ("url.query", "a=1;pwd=hunter2", "a=1;pwd=[REDACTED]"),
            ("url.query", "q=what?&token=abc", "q=what?&token=[REDACTED]"),
            (
                "http.target",
                "/p?q=a?b&passwd=x#f",
                "/p?q=a?b&passwd=[REDACTED]#f",
            ),
            // Names encoded beyond `%5F`, in upper or lower case, or twice.
            ("url.query", "%70assword=hunter2", "%70assword=[REDACTED]"),
            (
                "url.query",
                "api%5fkey=k&x%2Dapi%2Dkey=k",
                "api%5fkey=[REDACTED]&x%2Dapi%2Dkey=[REDACTED]",
            ),
            ("url.query", "pass%2577ord=x", "pass%2577ord=[REDACTED]"),
            // A secret pair encoded inside another value.
            (
                "url.query",
                "q=password%3Dhunter2",
                "q=password%3D[REDACTED]",
            ),
            (
                "url.query",
                "next=%2Flogin%3Fuser%3Dal%26token%3Dabc",
                "next=%2Flogin%3Fuser%3Dal%26token%3D[REDACTED]",
            ),
            // Spaces as `+` or `%20` in card numbers and credentials.
            ("url.query", "n=4111+1111+1111+1111", "n=[REDACTED]"),
            ("url.query", "n=4111%201111%201111%201111", "n=[REDACTED]"),
            ("url.query", "h=Bearer%20abc123", "h=Bearer+[REDACTED]"),
            ("url.query", "to=jane%40example.com", "to=[REDACTED]"),
            // Fragments carry tokens in the OAuth implicit flow.
            (
                "url.full",
                "https://h/cb#access_token=abc&state=1",
                "https://h/cb#access_token=[REDACTED]&state=1",
            ),
            // Userinfo, as the semantic conventions spell it.
            (
                "url.full",
                "https://al:hunter2@h/x?q=1",
                "https://REDACTED:REDACTED@h/x?q=1",
            ),
            ("url.full", "http://tok3n@h/", "http://REDACTED:REDACTED@h/"),
            // Path parameters and secrets in the path.
            (
                "url.path",
                "/items;jsessionid=abc123",
                "/items;jsessionid=[REDACTED]",
            ),
            ("url.path", "/users/jane%40example.com", "/users/[REDACTED]"),
            // Hosts with userinfo.
            (
                "server.address",
                "al:hunter2@localhost",
                "[REDACTED]@localhost",
            ),
            (
                "server.address",
                "al%3Ahunter2%40localhost",
                "[REDACTED]@localhost",
            ),
            // The same detectors in any other attribute.
            (
                "user_agent.original",
                "curl?password=x",
                "curl?password=[REDACTED]",
            ),
        ] {
            assert_eq!(clean(key, input), want, "{key} = {input}");
        }
    }

    #[test]
    fn clean_urls_are_left_byte_for_byte() {
        for (key, value) in [
            ("url.full", "https://h/items?q=1&page=2#top"),
            ("url.query", "q=a%20b&sort=price"),
            ("url.path", "/items/42"),
            ("http.target", "/items?q=%E2%82%AC"),
            ("server.address", "localhost"),
            ("url.full", "not a url"),
        ] {
            assert_eq!(clean(key, value), value);
        }
    }

    #[test]
    fn sql_is_stripped_in_the_dialect_of_the_span_and_unparseable_sql_is_redacted_whole() {
        let r = Redactor::new(&RedactSettings::default()).unwrap();
        assert_eq!(
            r.clean_value(
                "db.query.text",
                r#"SELECT "a" FROM t WHERE b = 'x'"#,
                Dialect::Postgres
            ),
            Some(r#"SELECT "a" FROM t WHERE b = ?"#.to_string())
        );
        assert_eq!(
            r.clean_value(
                "db.query.text",
                r"SELECT 1 FROM t WHERE b = '\'' OR pw = 'hunter2'",
                Dialect::MySql
            ),
            Some(REDACTED.to_string())
        );
        assert_eq!(
            r.clean_value(
                "db.statement",
                "SELECT a FROM t WHERE pw = ?",
                Dialect::MySql
            ),
            None
        );
    }

    #[test]
    fn a_tab_around_a_separator_hides_nothing_in_queries_headers_or_text() {
        for (key, value) in [
            ("url.query", "q=password:%09hunter2"),
            ("url.full", "https://h/p?note=password%09%3D%09hunter2"),
            ("http.request.header.x-note", "password:\thunter2"),
            ("exception.message", "login failed password\t:\thunter2"),
        ] {
            let out = clean(key, value);
            assert!(
                !text::fully_decode(&out).contains("hunter2"),
                "{key} = {value:?} → {out}"
            );
        }
    }

    #[test]
    fn a_secret_split_over_repeated_values_is_redacted() {
        let r = Redactor::new(&RedactSettings::default()).unwrap();
        let items = [
            ndotel_api::abi_stable::std_types::RStr::from("password="),
            ndotel_api::abi_stable::std_types::RStr::from("hunter2"),
        ];
        let kv = [KeyValueRef::new(
            "http.request.header.x-note",
            AnyValue::StrArray(&items),
        )];
        let mut fixes = Vec::new();
        r.check(&kv, Dialect::Other, |f| fixes.push(f));
        assert_eq!(
            fixes,
            vec![Fix::SetArray(
                "http.request.header.x-note",
                vec![REDACTED.to_string(); 2]
            )]
        );
        let plain = [
            ndotel_api::abi_stable::std_types::RStr::from("text/html"),
            ndotel_api::abi_stable::std_types::RStr::from("q=0.9"),
        ];
        let kv = [KeyValueRef::new(
            "http.request.header.accept",
            AnyValue::StrArray(&plain),
        )];
        r.check(&kv, Dialect::Other, |f| panic!("{f:?}"));
    }

    #[test]
    fn a_value_too_long_to_scan_is_redacted_whole() {
        let r = Redactor::new(&RedactSettings {
            max_value_length: 100,
            ..Default::default()
        })
        .unwrap();
        let long = "a".repeat(101);
        assert_eq!(
            r.clean_value("note", &long, Dialect::Other).as_deref(),
            Some(REDACTED)
        );
        assert_eq!(r.clean_text(&long).as_deref(), Some(REDACTED));
        assert_eq!(
            r.clean_value("note", &"a".repeat(100), Dialect::Other),
            None
        );
    }
}
