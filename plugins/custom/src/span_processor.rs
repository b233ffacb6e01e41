//! The span processor: injects static and `${ENV}`-expanded attributes at span start (expanded once, at start-up)
//! and redacts attributes with sensitive keys before any exporter sees them.

use ndotel_api::{BoxError, Edits, KeyValue, SpanProcessor, SpanView};
use regex::{RegexSet, RegexSetBuilder};
use serde::Deserialize;
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

/// `[distro.otel_custom_distro.span_processor]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorSettings {
    /// Attributes set on every span; values may use `${VAR}` and `${VAR:-default}`.
    pub attributes: BTreeMap<String, String>,
    /// Globs (`*` matches anything, case-insensitive) of attribute keys whose values are redacted.
    pub redact_keys: Vec<String>,
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        ProcessorSettings {
            attributes: BTreeMap::from([(
                "deployment.environment.name".to_string(),
                "${DEPLOYMENT_ENVIRONMENT:-development}".to_string(),
            )]),
            redact_keys: DEFAULT_REDACT_KEYS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The span processor.
#[derive(Debug)]
pub struct CustomSpanProcessor {
    attributes: Vec<(String, String)>,
    redact_keys: RegexSet,
}

impl CustomSpanProcessor {
    /// Builds the processor, expanding environment references once.
    pub fn new(settings: &ProcessorSettings) -> Result<Self, BoxError> {
        let attributes = settings
            .attributes
            .iter()
            .map(|(k, v)| Ok((k.clone(), expand_env(v, |name| std::env::var(name).ok())?)))
            .collect::<Result<Vec<_>, BoxError>>()?;
        let patterns = settings.redact_keys.iter().map(|g| glob_to_regex(g));
        let redact_keys = RegexSetBuilder::new(patterns)
            .case_insensitive(true)
            .build()?;
        Ok(CustomSpanProcessor {
            attributes,
            redact_keys,
        })
    }
}

impl SpanProcessor for CustomSpanProcessor {
    fn start_attributes(&self) -> Vec<KeyValue> {
        self.attributes
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.as_str()))
            .collect()
    }

    fn on_end(&self, span: &SpanView<'_>, edits: &mut Edits) {
        for kv in span.attributes.iter() {
            if self.redact_keys.is_match(kv.key.as_str()) {
                edits.redact(kv.key.as_str());
            }
        }
    }
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
            (None, None) => return Err(format!("environment variable {name} is not set (in {template:?}); set it or write ${{{name}:-default}}").into()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndotel_api::{KeyValueRef, SpanEdit, SpanKind, StatusCode, ValueRef};

    #[test]
    fn env_expansion_with_defaults() {
        let lookup = |n: &str| (n == "ENV").then(|| "prod".to_string());
        assert_eq!(
            expand_env("${ENV}-${MISSING:-x}", lookup).unwrap(),
            "prod-x"
        );
        assert!(
            expand_env("${MISSING}", lookup)
                .unwrap_err()
                .to_string()
                .contains("MISSING")
        );
    }

    #[test]
    fn sensitive_keys_are_redacted_and_clean_spans_get_no_edits() {
        let p = CustomSpanProcessor::new(&ProcessorSettings::default()).unwrap();
        let attrs = [
            KeyValueRef {
                key: "http.request.header.Authorization".into(),
                value: ValueRef::Str("Bearer x".into()),
            },
            KeyValueRef {
                key: "url.path".into(),
                value: ValueRef::Str("/items".into()),
            },
        ];
        let mut span = SpanView {
            trace_id: [1; 16],
            span_id: [1; 8],
            parent_span_id: [0; 8],
            parent_is_remote: false,
            sampled: true,
            name: "GET /items".into(),
            kind: SpanKind::Server,
            start_unix_nanos: 0,
            end_unix_nanos: 1,
            attributes: attrs.as_slice().into(),
            status: StatusCode::Unset,
            status_message: "".into(),
            scope_name: "".into(),
            event_count: 0,
        };
        let mut edits = Edits::new();
        p.on_end(&span, &mut edits);
        assert_eq!(
            edits.as_slice(),
            &[SpanEdit::Redact("http.request.header.Authorization".into())]
        );
        span.attributes = attrs[1..].into();
        let mut edits = Edits::new();
        p.on_end(&span, &mut edits);
        assert!(edits.is_empty());
    }
}
