//! The log record processor: drops records below a severity or from listed targets, then applies the span
//! processor's redaction rules ([`redact`](crate::redact), `[distro.otel_custom_distro.span_processor.redact]`)
//! to the body and every attribute, so a secret is redacted the same way whether it was logged or put on a span.

use crate::redact::{RedactSettings, Redactor};
use ndotel_api::{BoxError, LogEdits, LogProcessor, LogView};
use serde::Deserialize;

/// `[distro.otel_custom_distro.log_processor]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogProcessorSettings {
    /// Records below this severity are dropped: `trace` (the default: none dropped), `debug`, `info`, `warn`,
    /// `error`, `fatal`.
    pub min_severity: String,
    /// Records whose target is one of these, or inside one (`sqlx` covers `sqlx::query`), are dropped.
    pub drop_targets: Vec<String>,
}

impl Default for LogProcessorSettings {
    fn default() -> Self {
        LogProcessorSettings {
            min_severity: "trace".into(),
            drop_targets: Vec::new(),
        }
    }
}

/// The lowest severity number of each level name, as the OpenTelemetry specification numbers them.
fn severity_number(name: &str) -> Option<u8> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" | "warning" => 13,
        "error" => 17,
        "fatal" => 21,
        _ => return None,
    })
}

/// The log record processor.
#[derive(Debug)]
pub struct CustomLogProcessor {
    min_severity: u8,
    drop_targets: Vec<String>,
    redactor: Redactor,
}

impl CustomLogProcessor {
    /// Builds the processor; `redact` are the span processor's redaction settings.
    pub fn new(settings: &LogProcessorSettings, redact: &RedactSettings) -> Result<Self, BoxError> {
        let min_severity = severity_number(&settings.min_severity).ok_or_else(|| {
            format!(
                "log_processor.min_severity = {:?} is not a level (trace, debug, info, warn, error, fatal)",
                settings.min_severity
            )
        })?;
        Ok(CustomLogProcessor {
            min_severity,
            drop_targets: settings.drop_targets.clone(),
            redactor: Redactor::new(redact)?,
        })
    }

    fn dropped_target(&self, target: &str) -> bool {
        self.drop_targets.iter().any(|t| {
            target
                .strip_prefix(t.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
    }
}

impl LogProcessor for CustomLogProcessor {
    fn on_emit(&self, record: &LogView<'_>, edits: &mut LogEdits<'_>) {
        let severity = record.severity_number();
        // A record without a severity is kept: nothing says it is below the threshold.
        if (severity != 0 && severity < self.min_severity) || self.dropped_target(record.target()) {
            edits.drop_record();
            return;
        }
        self.redactor.redact_log(record, edits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndotel_api::Value;
    use ndotel_api::testing::{LogEdit, TestLog, process_log};

    fn processor(settings: LogProcessorSettings) -> CustomLogProcessor {
        CustomLogProcessor::new(&settings, &RedactSettings::default()).unwrap()
    }

    #[test]
    fn secrets_in_the_body_and_the_attributes_are_redacted_like_on_spans() {
        let p = processor(Default::default());
        let log = TestLog::new("login failed for bob password=hunter2 card 4111 1111 1111 1111")
            .attribute("password", "hunter2")
            .attribute("user.id", "bob")
            .attribute(
                "note",
                "sent Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            );
        let edits = process_log(&p, &log);
        let body = edits.iter().find_map(|e| match e {
            LogEdit::SetBody(Value::Str(b)) => Some(b.clone()),
            _ => None,
        });
        let body = body.expect("the body is cleaned");
        assert!(
            !body.contains("hunter2") && !body.contains("4111"),
            "{body}"
        );
        assert!(body.starts_with("login failed for bob"), "{body}");
        assert!(
            edits.contains(&LogEdit::Redact("password".into())),
            "{edits:?}"
        );
        assert!(
            edits
                .iter()
                .any(|e| matches!(e, LogEdit::Set { key, value: Value::Str(v) }
                if key == "note" && !v.contains("eyJ"))),
            "{edits:?}"
        );
        assert!(!format!("{edits:?}").contains("user.id"), "{edits:?}");
    }

    #[test]
    fn a_clean_record_gets_no_edits() {
        let p = processor(Default::default());
        let log = TestLog::new("listed 3 items").attribute("items", 3i64);
        assert!(process_log(&p, &log).is_empty());
    }

    #[test]
    fn records_below_the_severity_or_from_dropped_targets_are_dropped() {
        let p = processor(LogProcessorSettings {
            min_severity: "INFO".into(),
            drop_targets: vec!["sqlx".into()],
        });
        let debug = TestLog::new("x").severity(5, "DEBUG");
        assert_eq!(process_log(&p, &debug), [LogEdit::Drop]);
        let warn = TestLog::new("x").severity(13, "WARN");
        assert!(process_log(&p, &warn).is_empty());
        assert_eq!(
            process_log(&p, &TestLog::new("x").target("sqlx::query")),
            [LogEdit::Drop]
        );
        assert!(process_log(&p, &TestLog::new("x").target("sqlxish")).is_empty());
        assert!(process_log(&p, &TestLog::new("x").severity(0, "")).is_empty());
    }

    #[test]
    fn an_unknown_level_name_is_an_error_naming_the_key() {
        let err = CustomLogProcessor::new(
            &LogProcessorSettings {
                min_severity: "loud".into(),
                ..Default::default()
            },
            &RedactSettings::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("log_processor.min_severity"),
            "{err}"
        );
    }
}
