//! The span processor. At start: static attributes and `${ENV}` / `${ENV:-default}` expansions (computed once, at
//! start-up). At end, before any exporter sees the span: rename rules (regex → template with captures), and
//! redaction to `[REDACTED]` of attributes with sensitive keys (globs), of secret-looking values (bearer tokens,
//! card numbers passing Luhn, e-mail addresses — each switchable), of sensitive query parameters inside URLs, and
//! of literals in SQL text (strings and numbers become `?`). A span with nothing to change gets no edits and costs
//! no allocation.

use ndotel_api::abi_stable::std_types::RStr;
use ndotel_api::{
    AnyValue, BoxError, Edits, KeyValue, KeyValueRef, REDACTED, SpanProcessor, SpanView,
};
use regex::{Captures, Regex, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Attribute-key globs redacted by default.
pub const DEFAULT_REDACT_KEYS: &[&str] = &[
    "*authorization*",
    "*password*",
    "*passwd*",
    "*token*",
    "*secret*",
    "*cookie*",
    "*api_key*",
    "*apikey*",
];

/// Query parameters redacted inside URLs by default (besides those matching `redact_keys`).
pub const DEFAULT_QUERY_PARAMS: &[&str] = &[
    "pwd",
    "pass",
    "key",
    "sig",
    "signature",
    "code",
    "auth",
    "session",
    "sessionid",
    "credential",
];

/// `[distro.otel_custom_distro.span_processor]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorSettings {
    /// Attributes set on every span; values may use `${VAR}` and `${VAR:-default}`.
    pub attributes: BTreeMap<String, String>,
    /// Globs (`*` matches anything, case-insensitive) of attribute keys whose values are redacted; also applied to
    /// query parameter names inside URLs.
    pub redact_keys: Vec<String>,
    /// Further query parameter names (case-insensitive) redacted inside URLs.
    pub redact_query_params: Vec<String>,
    /// Attributes holding URLs or query strings.
    pub url_attributes: Vec<String>,
    /// Redact `Bearer <token>` inside any string value.
    pub redact_bearer_tokens: bool,
    /// Redact card numbers (13–19 digits, spaces or dashes allowed) that pass the Luhn check.
    pub redact_card_numbers: bool,
    /// Redact e-mail addresses.
    pub redact_emails: bool,
    /// Replace string and number literals in SQL text by `?`.
    pub sanitize_sql: bool,
    /// Attributes holding SQL text.
    pub sql_attributes: Vec<String>,
    /// Rename rules, first match wins.
    pub rename: Vec<RenameRule>,
}

/// `[[distro.otel_custom_distro.span_processor.rename]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameRule {
    /// Regex on the span name.
    #[serde(rename = "match")]
    pub pattern: String,
    /// The new name; `$1`, `${name}` insert captures.
    pub replace: String,
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        ProcessorSettings {
            attributes: BTreeMap::from([(
                "deployment.environment.name".to_string(),
                "${DEPLOYMENT_ENVIRONMENT:-development}".to_string(),
            )]),
            redact_keys: strings(DEFAULT_REDACT_KEYS),
            redact_query_params: strings(DEFAULT_QUERY_PARAMS),
            url_attributes: strings(&["url.full", "url.query", "http.url", "http.target"]),
            redact_bearer_tokens: true,
            redact_card_numbers: true,
            redact_emails: true,
            sanitize_sql: true,
            sql_attributes: strings(&["db.query.text", "db.statement"]),
            rename: Vec::new(),
        }
    }
}

/// The span processor.
#[derive(Debug)]
pub struct CustomSpanProcessor {
    attributes: Vec<(String, String)>,
    redact_keys: KeyMatcher,
    query_params: Vec<String>,
    url_attributes: Vec<String>,
    sql_attributes: Vec<String>,
    sanitize_sql: bool,
    secrets: Option<Regex>,
    prefilter: Prefilter,
    rename: Vec<(Regex, String)>,
    /// `key=value` pairs, then `key: value` pairs, in free text.
    text_pairs: [Regex; 2],
}

impl CustomSpanProcessor {
    /// Builds the processor, expanding environment references once and compiling every pattern.
    pub fn new(settings: &ProcessorSettings) -> Result<Self, BoxError> {
        let attributes = settings
            .attributes
            .iter()
            .map(|(k, v)| Ok((k.clone(), expand_env(v, |name| std::env::var(name).ok())?)))
            .collect::<Result<Vec<_>, BoxError>>()?;
        let redact_keys = KeyMatcher::new(&settings.redact_keys)?;
        let mut secret_parts = Vec::new();
        if settings.redact_bearer_tokens {
            secret_parts.push(r"(?P<bearer>(?i:bearer)\s+[A-Za-z0-9\-._~+/]+=*)");
        }
        if settings.redact_emails {
            secret_parts.push(
                r"(?P<email>[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})",
            );
        }
        if settings.redact_card_numbers {
            secret_parts.push(r"(?P<card>\b(?:\d[ \-]?){12,18}\d\b)");
        }
        let secrets = (!secret_parts.is_empty())
            .then(|| Regex::new(&secret_parts.join("|")))
            .transpose()?;
        let rename = settings
            .rename
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Regex::new(&r.pattern)
                    .map(|re| (re, r.replace.clone()))
                    .map_err(|e| format!("span_processor.rename[{i}].match: {e}").into())
            })
            .collect::<Result<Vec<_>, BoxError>>()?;
        Ok(CustomSpanProcessor {
            text_pairs: [
                Regex::new(r"([A-Za-z0-9_.%\-]+)=([^\s&;,'\x22]+)")?,
                Regex::new(r"([A-Za-z0-9_.%\-]+):\s*([^\s&;,'\x22=:]+)")?,
            ],
            attributes,
            redact_keys,
            query_params: settings
                .redact_query_params
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
            url_attributes: settings.url_attributes.clone(),
            sql_attributes: settings.sql_attributes.clone(),
            sanitize_sql: settings.sanitize_sql,
            secrets,
            prefilter: Prefilter {
                bearer: settings.redact_bearer_tokens,
                email: settings.redact_emails,
                card: settings.redact_card_numbers,
            },
            rename,
        })
    }

    /// The value `key: value` should have once redacted, or `None` when it is fine as it is.
    pub fn clean_value<'a>(&self, key: &str, value: &'a str) -> Option<Cow<'a, str>> {
        let mut out = Cow::Borrowed(value);
        if self.sanitize_sql && self.sql_attributes.iter().any(|k| k == key) {
            out = strip_sql_literals(&out).map(Cow::Owned).unwrap_or(out);
        }
        if self.url_attributes.iter().any(|k| k == key) {
            out = self.redact_query(&out).map(Cow::Owned).unwrap_or(out);
        }
        if let Some(cleaned) = self.redact_secrets(&out) {
            out = Cow::Owned(cleaned);
        }
        matches!(out, Cow::Owned(_)).then_some(out)
    }

    fn redact_secrets(&self, value: &str) -> Option<String> {
        let re = self.secrets.as_ref()?;
        if !self.prefilter.might_match(value) || !re.is_match(value) {
            return None;
        }
        let replaced = re.replace_all(value, |c: &Captures<'_>| match c.name("card") {
            Some(m) if !luhn(m.as_str()) => m.as_str().to_string(),
            _ => REDACTED.to_string(),
        });
        (replaced != value).then(|| replaced.into_owned())
    }

    fn sensitive_param(&self, name: &str) -> bool {
        let decoded = name
            .replace("%5F", "_")
            .replace("%5f", "_")
            .to_ascii_lowercase();
        self.query_params.contains(&decoded) || self.redact_keys.is_match(&decoded)
    }

    /// Redacts sensitive parameters of a URL or a bare query string.
    fn redact_query(&self, value: &str) -> Option<String> {
        let (prefix, query_and_fragment) = match value.find('?') {
            Some(i) => (&value[..=i], &value[i + 1..]),
            None if value.contains("://") || value.starts_with('/') => return None,
            None => ("", value),
        };
        let (query, fragment) = match query_and_fragment.find('#') {
            Some(i) => (&query_and_fragment[..i], &query_and_fragment[i..]),
            None => (query_and_fragment, ""),
        };
        let mut changed = false;
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if !v.is_empty() && v != REDACTED && self.sensitive_param(k) => {
                    changed = true;
                    format!("{k}={REDACTED}")
                }
                _ => pair.to_string(),
            })
            .collect();
        changed.then(|| format!("{prefix}{}{fragment}", pairs.join("&")))
    }
}

impl SpanProcessor for CustomSpanProcessor {
    fn start_attributes(&self) -> Vec<KeyValue> {
        self.attributes
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.as_str()))
            .collect()
    }

    fn on_end(&self, span: &SpanView<'_>, edits: &mut Edits<'_>) {
        let name = span.name();
        for (re, template) in &self.rename {
            if re.is_match(name) {
                edits.rename(&re.replace(name, template.as_str()));
                break;
            }
        }
        self.check(span.attributes(), false, |fix| match fix {
            Fix::Redact(key) => edits.redact(key),
            Fix::Set(key, value) => edits.set(key, value.as_str()),
            Fix::SetArray(key, items) => edits.set(key, borrowed(&items).as_slice()),
        });
        for (i, event) in span.events().enumerate() {
            self.check(event.attributes, true, |fix| match fix {
                Fix::Redact(key) => edits.redact_event_attribute(i, key),
                Fix::Set(key, value) => edits.set_event_attribute(i, key, value.as_str()),
                Fix::SetArray(key, items) => {
                    edits.set_event_attribute(i, key, borrowed(&items).as_slice())
                }
            });
        }
        for (i, link) in span.links().enumerate() {
            self.check(link.attributes, false, |fix| match fix {
                Fix::Redact(key) => edits.redact_link_attribute(i, key),
                Fix::Set(key, value) => edits.set_link_attribute(i, key, value.as_str()),
                Fix::SetArray(key, items) => {
                    edits.set_link_attribute(i, key, borrowed(&items).as_slice())
                }
            });
        }
        if let Some(clean) = self.clean_text(span.status_message()) {
            edits.set_status_message(&clean);
        }
    }
}

/// One change to an attribute list.
enum Fix<'a> {
    Redact(&'a str),
    Set(&'a str, String),
    SetArray(&'a str, Vec<String>),
}

fn borrowed(items: &[String]) -> Vec<RStr<'_>> {
    items.iter().map(|s| RStr::from_str(s)).collect()
}

impl CustomSpanProcessor {
    /// Finds what to change in one attribute list (of the span, an event or a link). Free text (event
    /// attributes such as `exception.message`) is also searched for `key=value` pairs with sensitive keys.
    fn check<'a>(
        &self,
        attributes: &'a [KeyValueRef<'a>],
        free_text: bool,
        mut fix: impl FnMut(Fix<'a>),
    ) {
        for kv in attributes {
            let key = kv.key.as_str();
            let value = kv.value.get();
            if self.redact_keys.is_match(key) {
                if value != AnyValue::Str(REDACTED) {
                    fix(Fix::Redact(key));
                }
                continue;
            }
            let clean = |v: &str| {
                let cleaned = self.clean_value(key, v);
                let base = cleaned.as_deref().unwrap_or(v);
                match (free_text.then(|| self.clean_text(base)).flatten(), cleaned) {
                    (Some(text), _) => Some(text),
                    (None, c) => c.map(Cow::into_owned),
                }
            };
            match value {
                AnyValue::Str(v) => {
                    if let Some(clean) = clean(v) {
                        fix(Fix::Set(key, clean));
                    }
                }
                AnyValue::StrArray(items) => {
                    let cleaned: Vec<Option<String>> =
                        items.iter().map(|s| clean(s.as_str())).collect();
                    if cleaned.iter().any(Option::is_some) {
                        let items = items
                            .iter()
                            .zip(cleaned)
                            .map(|(s, c)| c.unwrap_or_else(|| s.to_string()))
                            .collect();
                        fix(Fix::SetArray(key, items));
                    }
                }
                _ => {}
            }
        }
    }

    /// Redacts secrets in free text (a status message, an exception message): secret-looking values, and the
    /// value of every `key=value` pair whose key is sensitive (`password=…`, `token=…`).
    pub fn clean_text(&self, text: &str) -> Option<String> {
        let mut out = self.redact_secrets(text);
        // Most spans have no status message and most text has no pair: skip the regexes without a separator.
        if !text.contains(['=', ':']) {
            return out;
        }
        for (re, separator) in self.text_pairs.iter().zip(["=", ": "]) {
            let base = out.as_deref().unwrap_or(text);
            let mut changed = false;
            let replaced = re.replace_all(base, |c: &Captures<'_>| {
                let (key, value) = (&c[1], &c[2]);
                if value != REDACTED && self.sensitive_param(key) {
                    changed = true;
                    format!("{key}{separator}{REDACTED}")
                } else {
                    c[0].to_string()
                }
            });
            if changed {
                out = Some(replaced.into_owned());
            }
        }
        out
    }
}

/// Cheap byte checks that rule out most values before the secrets regex runs (it is on every span's path).
#[derive(Debug, Clone, Copy)]
struct Prefilter {
    bearer: bool,
    email: bool,
    card: bool,
}

impl Prefilter {
    fn might_match(&self, value: &str) -> bool {
        let b = value.as_bytes();
        let mut digits = 0;
        for (i, &c) in b.iter().enumerate() {
            if c.is_ascii_digit() {
                digits += 1;
                if self.card && digits >= 13 {
                    return true;
                }
            } else if c == b'@' {
                if self.email {
                    return true;
                }
            } else if self.bearer
                && (c | 0x20) == b'b'
                && b[i..].len() >= 6
                && b[i..i + 6].eq_ignore_ascii_case(b"bearer")
            {
                return true;
            }
        }
        false
    }
}

/// Case-insensitive attribute-key globs, matched without a regex for the usual shapes (`*x*`, `x*`, `*x`, `x`):
/// attribute keys are checked on every span, so this is on the hot path.
#[derive(Debug)]
struct KeyMatcher {
    contains: Substrings,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    exact: Vec<String>,
    general: Option<RegexSet>,
}

/// Case-insensitive "contains any of these ASCII needles", bucketed by the needle's first byte: one table lookup
/// per byte of the key, a second-byte check, and only then a comparison. On the short keys of span attributes this
/// beats a general automaton, whose per-call set-up dominates (measured with the `span_cost` benchmark).
#[derive(Debug)]
struct Substrings {
    /// Needles (lower-case) by their first byte, upper- and lower-case first bytes both pointing at the bucket.
    buckets: Vec<Vec<Box<[u8]>>>,
    starts: [bool; 256],
}

impl Substrings {
    fn new(needles: &[String]) -> Self {
        let mut s = Substrings {
            buckets: vec![Vec::new(); 256],
            starts: [false; 256],
        };
        for n in needles.iter().filter(|n| !n.is_empty()) {
            let lower = n.to_ascii_lowercase().into_bytes().into_boxed_slice();
            let first = lower[0];
            for c in [first, first.to_ascii_uppercase()] {
                s.starts[c as usize] = true;
                s.buckets[c as usize].push(lower.clone());
            }
        }
        s
    }

    fn is_match(&self, hay: &[u8]) -> bool {
        (0..hay.len()).any(|i| {
            self.starts[hay[i] as usize]
                && self.buckets[hay[i] as usize].iter().any(|n| {
                    let rest = &hay[i..];
                    rest.len() >= n.len()
                        && (n.len() < 2 || rest[1].to_ascii_lowercase() == n[1])
                        && rest[..n.len()].eq_ignore_ascii_case(n)
                })
        })
    }
}

impl KeyMatcher {
    fn new(globs: &[String]) -> Result<Self, BoxError> {
        let (mut contains, mut prefixes, mut suffixes, mut exact, mut general) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for g in globs {
            let lower = g.to_ascii_lowercase();
            let stars = lower.matches('*').count();
            let inner = lower.trim_matches('*');
            match (stars, lower.starts_with('*'), lower.ends_with('*')) {
                (0, _, _) => exact.push(lower),
                (2, true, true) if !inner.is_empty() && inner.is_ascii() => {
                    contains.push(inner.to_string())
                }
                (1, false, true) => prefixes.push(inner.to_string()),
                (1, true, false) => suffixes.push(inner.to_string()),
                _ => general.push(glob_to_regex(&lower)),
            }
        }
        Ok(KeyMatcher {
            contains: Substrings::new(&contains),
            prefixes,
            suffixes,
            exact,
            general: (!general.is_empty())
                .then(|| RegexSetBuilder::new(general).case_insensitive(true).build())
                .transpose()?,
        })
    }

    fn is_match(&self, key: &str) -> bool {
        let b = key.as_bytes();
        let ci_prefix =
            |p: &String| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p.as_bytes());
        let ci_suffix = |p: &String| {
            b.len() >= p.len() && b[b.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
        };
        self.contains.is_match(b)
            || self.exact.iter().any(|e| key.eq_ignore_ascii_case(e))
            || self.prefixes.iter().any(ci_prefix)
            || self.suffixes.iter().any(ci_suffix)
            || self.general.as_ref().is_some_and(|set| set.is_match(key))
    }
}

/// Replaces string and number literals in SQL text by `?`; `None` when there are none. A single-pass scanner (it
/// runs on every DB span): quoted identifiers (`"…"`, `` `…` ``), identifiers (`t1`) and placeholders (`$1`, `?`,
/// `:name`) are kept; `'…'` strings (with `''` escapes), `x'…'` hex strings and numbers are replaced.
pub fn strip_sql_literals(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    // Fast path: no quote and no digit means no literal.
    if !b.iter().any(|c| *c == b'\'' || c.is_ascii_digit()) {
        return None;
    }
    let mut out = String::with_capacity(sql.len());
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0; // b[copied..i] is pending verbatim text
    let flush = |out: &mut String, from: usize, to: usize| out.push_str(&sql[from..to]);
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'`' => {
                // A quoted identifier: copy through to the closing quote.
                i += 1;
                while i < b.len() && b[i] != c {
                    i += 1;
                }
                i = (i + 1).min(b.len());
            }
            b'\'' => {
                // `x'…'` is a hex string, unless that `x` already belongs to a literal scanned before (`1e-x'1'`).
                let start = if i > copied
                    && (b[i - 1] == b'x' || b[i - 1] == b'X')
                    && (i < 2 || !is_ident(b[i - 2]))
                {
                    i - 1
                } else {
                    i
                };
                i += 1;
                loop {
                    match b.get(i) {
                        None => break,
                        Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                flush(&mut out, copied, start);
                out.push('?');
                copied = i;
                changed = true;
            }
            b'$' | b':'
                if b.get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_') =>
            {
                // A placeholder ($1, :name): keep it whole.
                i += 1;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    // Exponent signs belong to the number: 1e-5.
                    if (b[i] == b'e' || b[i] == b'E') && matches!(b.get(i + 1), Some(b'+' | b'-')) {
                        i += 1;
                    }
                    i += 1;
                }
                flush(&mut out, copied, start);
                out.push('?');
                copied = i;
                changed = true;
            }
            c if is_ident(c) => {
                // An identifier (may contain digits: t1, col_2): keep.
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    flush(&mut out, copied, b.len());
    Some(out)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Whether the digits of `s` (spaces and dashes ignored) pass the Luhn check.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Turns a `*` glob into an anchored regex.
fn glob_to_regex(glob: &str) -> String {
    let parts: Vec<String> = glob.split('*').map(regex::escape).collect();
    format!("^{}$", parts.join(".*"))
}

/// Expands `${VAR}` and `${VAR:-default}`; an unset variable without default is an error naming it.
pub fn expand_env(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, BoxError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in {template:?}"))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (in {template:?}); set it or write ${{{name}:-default}}"
                )
                .into());
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndotel_api::testing::{self, Edit, Target, TestSpan};
    use ndotel_api::{SpanKind, StatusCode, Value};
    use proptest::prelude::*;

    fn processor() -> CustomSpanProcessor {
        CustomSpanProcessor::new(&ProcessorSettings::default()).unwrap()
    }

    /// Runs `on_end` over `attrs` through the testing kit and applies the edits as the host does; returns (name,
    /// attributes).
    fn process(
        p: &CustomSpanProcessor,
        name: &str,
        attrs: &[(String, String)],
    ) -> (String, Vec<(String, String)>) {
        let mut span = TestSpan::new(name).kind(SpanKind::Server);
        for (k, v) in attrs {
            span = span.attribute(k, v.as_str());
        }
        let mut name = name.to_string();
        let mut out = attrs.to_vec();
        for e in testing::process(p, &span) {
            match e {
                Edit::RenameSpan(n) => name = n,
                Edit::Redact {
                    target: Target::Span,
                    key,
                } => out
                    .iter_mut()
                    .filter(|(k, _)| *k == key)
                    .for_each(|kv| kv.1 = REDACTED.into()),
                Edit::Set {
                    target: Target::Span,
                    key,
                    value: Value::Str(v),
                } => out
                    .iter_mut()
                    .filter(|(k, _)| *k == key)
                    .for_each(|a| a.1 = v.clone()),
                other => panic!("unexpected edit {other:?}"),
            }
        }
        (name, out)
    }

    fn one(p: &CustomSpanProcessor, key: &str, value: &str) -> String {
        process(p, "span", &[(key.into(), value.into())]).1[0]
            .1
            .clone()
    }

    #[test]
    fn env_expansion_with_defaults() {
        let lookup = |n: &str| (n == "ENV").then(|| "prod".to_string());
        assert_eq!(
            expand_env("${ENV}-${MISSING:-x}", lookup).unwrap(),
            "prod-x"
        );
        assert_eq!(expand_env("plain", lookup).unwrap(), "plain");
        assert!(
            expand_env("${MISSING}", lookup)
                .unwrap_err()
                .to_string()
                .contains("MISSING")
        );
        assert!(expand_env("${OPEN", lookup).is_err());
    }

    #[test]
    fn sensitive_keys_are_redacted_by_glob() {
        let p = processor();
        assert_eq!(
            one(&p, "http.request.header.Authorization", "Basic abc"),
            REDACTED
        );
        assert_eq!(one(&p, "user.password", "hunter2"), REDACTED);
        assert_eq!(one(&p, "SESSION_COOKIE", "x"), REDACTED);
        assert_eq!(one(&p, "url.path", "/items"), "/items");
    }

    #[test]
    fn key_globs_of_every_shape_match_case_insensitively() {
        let m = KeyMatcher::new(&[
            "*token*".into(),
            "x-api-*".into(),
            "*_secret".into(),
            "Cookie".into(),
            "a*b*c".into(),
        ])
        .unwrap();
        for yes in [
            "Auth.TOKEN.x",
            "X-API-key",
            "client_SECRET",
            "cookie",
            "aXbYc",
        ] {
            assert!(m.is_match(yes), "{yes}");
        }
        for no in ["url.path", "x-apikey", "secret_client", "cookies", "acb"] {
            assert!(!m.is_match(no), "{no}");
        }
    }

    #[test]
    fn secret_looking_values_are_redacted_and_each_class_switches_off() {
        let p = processor();
        assert_eq!(
            one(&p, "note", "sent Bearer eyJhbGci.OiJIUzI1NiJ9.x-y_z= ok"),
            "sent [REDACTED] ok"
        );
        assert_eq!(
            one(&p, "note", "card 4111 1111 1111 1111 used"),
            "card [REDACTED] used"
        );
        assert_eq!(
            one(&p, "note", "order 4111 1111 1111 1112"),
            "order 4111 1111 1111 1112",
            "fails Luhn: kept"
        );
        assert_eq!(
            one(&p, "note", "mail jane.doe+x@example.co.uk now"),
            "mail [REDACTED] now"
        );
        let off = CustomSpanProcessor::new(&ProcessorSettings {
            redact_bearer_tokens: false,
            redact_card_numbers: false,
            redact_emails: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            one(&off, "note", "Bearer abc jane@example.com 4111111111111111"),
            "Bearer abc jane@example.com 4111111111111111"
        );
    }

    #[test]
    fn sensitive_query_parameters_are_redacted_inside_urls() {
        let p = processor();
        assert_eq!(
            one(
                &p,
                "url.full",
                "https://h/items?user=al&password=hunter2&api_key=k1#frag"
            ),
            "https://h/items?user=al&password=[REDACTED]&api_key=[REDACTED]#frag"
        );
        assert_eq!(
            one(&p, "url.query", "Password=x&sig=abc&q=1"),
            "Password=[REDACTED]&sig=[REDACTED]&q=1"
        );
        assert_eq!(
            one(&p, "url.full", "https://h/items?q=1"),
            "https://h/items?q=1"
        );
        assert_eq!(one(&p, "url.full", "https://h/items"), "https://h/items");
    }

    #[test]
    fn sql_literals_become_placeholders() {
        let p = processor();
        assert_eq!(
            one(
                &p,
                "db.query.text",
                "SELECT * FROM t1 WHERE name = 'O''Brien' AND age > 42 AND x = $1 AND \"col 2\" = 3.5e2"
            ),
            "SELECT * FROM t1 WHERE name = ? AND age > ? AND x = $1 AND \"col 2\" = ?"
        );
        assert_eq!(
            one(&p, "db.statement", "INSERT INTO items VALUES (?, ?)"),
            "INSERT INTO items VALUES (?, ?)"
        );
        assert_eq!(
            one(&p, "other", "price = 42"),
            "price = 42",
            "only SQL attributes are stripped"
        );
    }

    #[test]
    fn sql_scanner_edge_cases() {
        assert_eq!(strip_sql_literals("SELECT a FROM t WHERE b = ?"), None);
        assert_eq!(strip_sql_literals("SELECT t1.c2 FROM t1").as_deref(), None);
        assert_eq!(
            strip_sql_literals("x = -1.5e-3 AND y = X'0AFF' AND z = 0x1F").as_deref(),
            Some("x = -? AND y = ? AND z = ?")
        );
        assert_eq!(
            strip_sql_literals("a = :name AND b = $2 AND c = 'it''s' AND d = 'unterminated")
                .as_deref(),
            Some("a = :name AND b = $2 AND c = ? AND d = ?")
        );
        assert_eq!(
            strip_sql_literals("SELECT `col 1`, \"x 2\" FROM t WHERE n = 'é 9'").as_deref(),
            Some("SELECT `col 1`, \"x 2\" FROM t WHERE n = ?")
        );
    }

    #[test]
    fn rename_rules_use_captures_and_the_first_match_wins() {
        let p = CustomSpanProcessor::new(&ProcessorSettings {
            rename: vec![
                RenameRule {
                    pattern: r"^(GET|POST) /items/\d+$".into(),
                    replace: "$1 /items/{id}".into(),
                },
                RenameRule {
                    pattern: r"^GET".into(),
                    replace: "never".into(),
                },
            ],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(process(&p, "GET /items/123", &[]).0, "GET /items/{id}");
        assert_eq!(process(&p, "POST /items/7", &[]).0, "POST /items/{id}");
        assert_eq!(process(&p, "DELETE /items/7", &[]).0, "DELETE /items/7");
        assert!(
            CustomSpanProcessor::new(&ProcessorSettings {
                rename: vec![RenameRule {
                    pattern: "(".into(),
                    replace: "x".into()
                }],
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
            .contains("rename[0]")
        );
    }

    #[test]
    fn clean_spans_get_no_edits() {
        let p = processor();
        let span = TestSpan::new("GET /items")
            .attribute("url.path", "/items")
            .attribute(
                "http.request.header.accept",
                Value::StrArray(vec!["text/html".into()]),
            )
            .event(
                "exception",
                vec![ndotel_api::KeyValue::new(
                    "exception.message",
                    "no such item",
                )],
            )
            .status(StatusCode::Error, "not found");
        assert!(testing::process(&p, &span).is_empty());
    }

    #[test]
    fn secrets_in_events_links_arrays_and_the_status_message_are_redacted() {
        let p = processor();
        let span = TestSpan::new("POST /login")
            .attribute(
                "http.request.header.x-forwarded-auth",
                Value::StrArray(vec!["ok".into(), "Bearer abcdef123456".into()]),
            )
            .event(
                "exception",
                vec![
                    ndotel_api::KeyValue::new(
                        "exception.message",
                        "login failed: password=hunter2 for jane",
                    ),
                    ndotel_api::KeyValue::new("db.password", "hunter2"),
                ],
            )
            .link(
                [3; 16],
                [4; 8],
                vec![ndotel_api::KeyValue::new("peer.token", "abc")],
            )
            .status(
                StatusCode::Error,
                "upstream said token: s3cr3t and Bearer xyz987654",
            );
        let edits = testing::process(&p, &span);
        assert_eq!(
            edits,
            [
                Edit::Set {
                    target: Target::Span,
                    key: "http.request.header.x-forwarded-auth".into(),
                    value: Value::StrArray(vec!["ok".into(), REDACTED.into()]),
                },
                Edit::Set {
                    target: Target::Event(0),
                    key: "exception.message".into(),
                    value: Value::Str(format!("login failed: password={REDACTED} for jane")),
                },
                Edit::Redact {
                    target: Target::Event(0),
                    key: "db.password".into()
                },
                Edit::Redact {
                    target: Target::Link(0),
                    key: "peer.token".into()
                },
                Edit::SetStatusMessage(format!("upstream said token: {REDACTED} and {REDACTED}")),
            ]
        );
    }

    fn luhn_number(prefix: u64) -> String {
        // Append the check digit that makes `prefix` pass Luhn.
        let base = prefix.to_string();
        (0..10)
            .map(|d| format!("{base}{d}"))
            .find(|s| luhn(s))
            .unwrap()
    }

    #[test]
    fn a_hex_prefix_already_inside_a_number_does_not_panic_the_scanner() {
        assert_eq!(strip_sql_literals("1e-x'1'").as_deref(), Some("??"));
    }

    proptest! {
        #[test]
        fn no_planted_secret_survives(
            noise in proptest::collection::vec(("[a-z]{1,8}(\\.[a-z]{1,8}){0,2}", "[ -~]{0,30}"), 0..8),
            token in "[A-Za-z0-9]{12,40}",
            card in 400_000_000_000_000u64..499_999_999_999_999u64,
            user in "[a-z]{3,10}",
            password in "[A-Za-z0-9]{8,20}",
            literal in "[A-Za-z]{6,20}",
            number in 100_000u64..999_999_999u64,
            slot in 0usize..6,
        ) {
            let card = luhn_number(card);
            let planted = [
                ("http.request.header.authorization".to_string(), format!("Bearer {token}")),
                ("message".to_string(), format!("paid with {card} today")),
                ("enduser.contact".to_string(), format!("{user}@example.org")),
                ("url.full".to_string(), format!("https://shop/items?user={user}&password={password}")),
                ("db.query.text".to_string(), format!("SELECT * FROM users WHERE name = '{literal}' AND id = {number}")),
                ("x.api_key".to_string(), token.clone()),
            ];
            let mut attrs: Vec<(String, String)> = noise.into_iter().filter(|(k, _)| !planted.iter().any(|(p, _)| p == k)).collect();
            for (i, kv) in planted.iter().enumerate() {
                attrs.insert((i + slot).min(attrs.len()), kv.clone());
            }
            let (_, out) = process(&processor(), "span", &attrs);
            let all: String = out.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            for secret in [&token, &card, &format!("{user}@example.org"), &password, &literal, &number.to_string()] {
                prop_assert!(!all.contains(secret.as_str()), "{secret} survived in\n{all}");
            }
        }

        #[test]
        fn the_sql_scanner_never_panics(sql in "[-'\"`xXeE0-9a-z$:.+_ \\\\é€]{0,40}") {
            // Any output is fine here; what is checked is that none of these inputs makes the scanner panic.
            let _ = strip_sql_literals(&sql);
        }
    }
}
