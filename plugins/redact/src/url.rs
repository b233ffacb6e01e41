//! URLs, request targets, query strings and host names: parsed (with `url` and `form_urlencoded`), judged on
//! fully decoded names and values, and re-encoded where something was redacted.

use super::Redactor;
use super::text::fully_decode;
use ndotel_api::REDACTED;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use std::borrow::Cow;

/// What the URL crate also escapes in a path, minus the brackets of `[REDACTED]`.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

/// How deep a query hidden in a query value is followed (`q=a%3D1%26password%3Dx`).
const NESTING: usize = 3;

impl Redactor {
    /// A URL attribute: an absolute URL (`https://u:p@h/p?q#f`), a request target (`/p?q#f`) or, for `url.query`
    /// or anything without a path, a bare query string.
    pub(super) fn clean_url(&self, key: &str, value: &str) -> Option<String> {
        // Most URLs carry nothing to judge: no userinfo, query, fragment, parameters or escapes, and nothing a
        // detector would look at. Skip the parse for them (URL attributes are on every HTTP span).
        if !value.contains(['@', '?', '#', ';', '%', '='])
            && !self.scanner.might_match(value.as_bytes())
        {
            return None;
        }
        if key == "url.query" {
            return self.clean_query(value, NESTING);
        }
        if value.starts_with('/') {
            return self.clean_target(value);
        }
        if value.contains("://") {
            return self.clean_absolute(value);
        }
        if key == "url.path" {
            return self.clean_path(value);
        }
        self.clean_query(value, NESTING)
    }

    fn clean_absolute(&self, value: &str) -> Option<String> {
        let Ok(mut url) = url::Url::parse(value) else {
            // Not a URL after all: judge it as text (credentials in it are still found by the text scanner).
            return self.scanner.clean(value, &self.keys);
        };
        let mut changed = false;
        if !url.username().is_empty() || url.password().is_some() {
            // Semantic conventions: `https://REDACTED:REDACTED@host/`.
            let _ = url.set_username("REDACTED");
            let _ = url.set_password(Some("REDACTED"));
            changed = true;
        }
        if let Some(q) = url.query().and_then(|q| self.clean_query(q, NESTING)) {
            url.set_query(Some(&q));
            changed = true;
        }
        if let Some(f) = url.fragment().and_then(|f| self.clean_query(f, NESTING)) {
            url.set_fragment(Some(&f));
            changed = true;
        }
        if let Some(p) = self.clean_path(url.path()) {
            url.set_path(&p);
            changed = true;
        }
        changed.then(|| url.to_string())
    }

    /// `/path;params?query#fragment`, split as RFC 3986 says: the query starts at the first `?`.
    fn clean_target(&self, value: &str) -> Option<String> {
        let (rest, fragment) = split_at(value, '#');
        let (path, query) = split_at(rest, '?');
        let path_c = self.clean_path(path);
        let query_c = query.and_then(|q| self.clean_query(q, NESTING));
        let fragment_c = fragment.and_then(|f| self.clean_query(f, NESTING));
        if path_c.is_none() && query_c.is_none() && fragment_c.is_none() {
            return None;
        }
        let mut out = path_c.unwrap_or_else(|| path.to_string());
        for (sep, orig, cleaned) in [('?', query, query_c), ('#', fragment, fragment_c)] {
            if let Some(orig) = orig {
                out.push(sep);
                out.push_str(cleaned.as_deref().unwrap_or(orig));
            }
        }
        Some(out)
    }

    /// A path: `;name=value` parameters with sensitive names, and secrets anywhere in the decoded path.
    fn clean_path(&self, path: &str) -> Option<String> {
        let cleaned = self.scanner.clean(path, &self.keys)?;
        Some(utf8_percent_encode(&cleaned, PATH).to_string())
    }

    /// A query string (`&` or `;` separated): names and values fully decoded (`+` is a space), values of
    /// sensitive names redacted, other values searched for secrets and for queries nested in them; pairs that
    /// changed are re-encoded, the others kept byte for byte.
    pub(super) fn clean_query(&self, query: &str, depth: usize) -> Option<String> {
        let mut out = String::with_capacity(query.len() + 16);
        let mut changed = false;
        let mut rest = query;
        loop {
            let (piece, sep, tail) = match rest.find(['&', ';']) {
                Some(i) => (&rest[..i], Some(&rest[i..=i]), &rest[i + 1..]),
                None => (rest, None, ""),
            };
            match self.clean_pair(piece, depth) {
                Some(p) => {
                    out.push_str(&p);
                    changed = true;
                }
                None => out.push_str(piece),
            }
            match sep {
                Some(s) => out.push_str(s),
                None => break,
            }
            rest = tail;
        }
        changed.then_some(out)
    }

    fn clean_pair(&self, piece: &str, depth: usize) -> Option<String> {
        if piece.is_empty() {
            return None;
        }
        let (raw_name, raw_value) = split_at(piece, '=');
        let (name, value) = form_urlencoded::parse(piece.as_bytes())
            .next()
            .unwrap_or((Cow::Borrowed(""), Cow::Borrowed("")));
        let name = fully_decode(&name).into_owned();
        let value = fully_decode(&value).into_owned();
        let sensitive = self.params.is_match(name.trim()) || self.keys.is_match(name.trim());
        if sensitive && let Some(v) = raw_value.filter(|v| !v.is_empty()) {
            return (v != REDACTED).then(|| format!("{raw_name}={REDACTED}"));
        }
        let name_c = self.scanner.clean(&name, &self.keys);
        let mut value_c = None;
        if depth > 0 && value.contains('=') {
            value_c = self.clean_query(&value, depth - 1);
        }
        if let Some(text) = self
            .scanner
            .clean(value_c.as_deref().unwrap_or(&value), &self.keys)
        {
            value_c = Some(text);
        }
        if name_c.is_none() && value_c.is_none() {
            return None;
        }
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let name_out = match &name_c {
            Some(n) => keep_brackets(encode(n)),
            None => raw_name.to_string(),
        };
        Some(match (raw_value, value_c) {
            (_, Some(v)) => format!("{name_out}={}", keep_brackets(encode(&v))),
            (Some(v), None) => format!("{name_out}={v}"),
            (None, None) => name_out,
        })
    }

    /// A host name attribute (`server.address`, `Host`): anything up to the last `@` is userinfo.
    pub(super) fn clean_host(&self, value: &str) -> Option<String> {
        let decoded = fully_decode(value);
        let at = decoded.rfind('@')?;
        Some(format!("{REDACTED}@{}", &decoded[at + 1..]))
    }
}

/// `[REDACTED]` as it reads after form encoding, restored.
fn keep_brackets(encoded: String) -> String {
    encoded.replace("%5BREDACTED%5D", REDACTED)
}

fn split_at(s: &str, c: char) -> (&str, Option<&str>) {
    match s.split_once(c) {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}
