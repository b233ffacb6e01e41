//! The span processor. At start: static attributes and `${ENV}` / `${ENV:-default}` expansions (computed once, at
//! start-up). At end, before any exporter sees the span: rename rules (regex → template with captures), then
//! [`redact`](crate::redact) over every attribute of the span, its events and its links, and over its status
//! message. A span with nothing to change gets no edits and costs no allocation.

use crate::redact::{RedactSettings, Redactor};
use ndotel_api::{BoxError, Edits, KeyValue, SpanProcessor, SpanView};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[distro.otel_custom_distro.span_processor]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorSettings {
    /// Attributes set on every span (none by default: what describes the process belongs on the distro's
    /// `resource`); values may use `${VAR}` and `${VAR:-default}`.
    pub attributes: BTreeMap<String, String>,
    /// What is redacted (`[distro.otel_custom_distro.span_processor.redact]`).
    pub redact: RedactSettings,
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

/// The span processor.
#[derive(Debug)]
pub struct CustomSpanProcessor {
    attributes: Vec<(String, String)>,
    redactor: Redactor,
    rename: Vec<(Regex, String)>,
}

impl CustomSpanProcessor {
    /// Builds the processor, expanding environment references once (`env` looks a variable up) and compiling every
    /// pattern.
    pub fn new(
        settings: &ProcessorSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BoxError> {
        let attributes = settings
            .attributes
            .iter()
            .map(|(k, v)| Ok((k.clone(), expand_env(v, &env)?)))
            .collect::<Result<Vec<_>, BoxError>>()?;
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
            attributes,
            redactor: Redactor::new(&settings.redact)?,
            rename,
        })
    }

    /// The redaction rules.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
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
        self.redactor.redact_span(span, edits);
    }
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
    use crate::redact::text::Detectors;
    use ndotel_api::testing::{self, Edit, Target, TestSpan};
    use ndotel_api::{REDACTED, SpanKind, StatusCode, Value};

    fn processor() -> CustomSpanProcessor {
        CustomSpanProcessor::new(&ProcessorSettings::default(), |_| None).unwrap()
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
    fn secret_looking_values_are_redacted_and_each_class_switches_off() {
        let p = processor();
        assert_eq!(
            one(&p, "note", "sent Bearer eyJhbGci.OiJIUzI1NiJ9.x-y_z= ok"),
            "sent Bearer [REDACTED] ok"
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
        let mut settings = ProcessorSettings::default();
        settings.redact.detectors = Detectors {
            bearer: false,
            card: false,
            email: false,
            ..Detectors::default()
        };
        let off = CustomSpanProcessor::new(&settings, |_| None).unwrap();
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
            "SELECT * FROM t1 WHERE name = ? AND age > ? AND x = $1 AND ? = ?",
            "no db.system.name: double quotes may be strings"
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
    fn rename_rules_use_captures_and_the_first_match_wins() {
        let p = CustomSpanProcessor::new(
            &ProcessorSettings {
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
            },
            |_| None,
        )
        .unwrap();
        assert_eq!(process(&p, "GET /items/123", &[]).0, "GET /items/{id}");
        assert_eq!(process(&p, "POST /items/7", &[]).0, "POST /items/{id}");
        assert_eq!(process(&p, "DELETE /items/7", &[]).0, "DELETE /items/7");
        assert!(
            CustomSpanProcessor::new(
                &ProcessorSettings {
                    rename: vec![RenameRule {
                        pattern: "(".into(),
                        replace: "x".into()
                    }],
                    ..Default::default()
                },
                |_| None
            )
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
                "http.request.header.x-debug",
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
                    key: "http.request.header.x-debug".into(),
                    value: Value::StrArray(vec!["ok".into(), format!("Bearer {REDACTED}")]),
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
                Edit::SetStatusMessage(format!(
                    "upstream said token: {REDACTED} and Bearer {REDACTED}"
                )),
            ]
        );
    }
}
