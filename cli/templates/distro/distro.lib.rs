//! `{{name}}`: an ndotel distro. Selected with `OTEL_RUST_DISTRO={{name}}`, configured by the `[distro.{{name}}]`
//! table of `distro.toml`.
//!
//! Safe as generated: the span processor and the log processor redact with `ndotel-redact` — sensitive keys as
//! words, URLs and queries parsed and judged decoded, SQL literals, headers, credentials and tokens in free text —
//! so nothing this distro exports or logs carries a password, a token or a card number that the library detects.

use ndotel_api::{
    BoxError, Components, Decision, Distro, DistroConfig, Edits, KeyValue, LogEdits, LogProcessor,
    LogView, ParentKind, Sampler, SamplingParams, SpanExporter, SpanProcessor, SpanView,
};
use ndotel_redact::{RedactSettings, Redactor};
use serde::Deserialize;
use std::io::Write as _;
use std::sync::Arc;

/// The settings of `[distro.{{name}}]`. Every key is optional: a key written in `distro.toml` replaces the default
/// below (a list replaces the whole list); a misspelled key is an error naming it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Root spans for these paths are dropped, with their whole trace.
    pub drop_paths: Vec<String>,
    /// The `deployment.environment.name` resource attribute.
    pub environment: String,
    /// What is redacted (`[distro.{{name}}.redact]`): see `ndotel_redact::RedactSettings`.
    pub redact: RedactSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            drop_paths: vec!["/health".into(), "/healthz".into(), "/ready".into()],
            environment: "dev".into(),
            redact: RedactSettings::default(),
        }
    }
}

/// The distro.
#[derive(Debug)]
pub struct {{Type}} {
    settings: Settings,
    /// The redaction rules, compiled once, shared by the span and the log processor.
    redactor: Arc<Redactor>,
}

impl Distro for {{Type}} {
    const NAME: &'static str = "{{name}}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "drops health checks, redacts secrets in spans, metrics and logs";

    fn init(config: &DistroConfig) -> Result<Self, BoxError> {
        let settings: Settings = config.deserialize()?;
        let redactor = Arc::new(Redactor::new(&settings.redact)?);
        Ok({{Type}} { settings, redactor })
    }

    fn components() -> Components<Self> {
        Components::new()
            .sampler("{{name}}_sampler", |d: &Self| {
                Ok::<_, BoxError>(HealthCheckSampler {
                    drop_paths: d.settings.drop_paths.clone(),
                })
            })
            .span_processor(|d: &Self| Ok::<_, BoxError>(Redacting(d.redactor.clone())))
            .log_processor(|d: &Self| Ok::<_, BoxError>(Redacting(d.redactor.clone())))
            .span_exporter("{{name}}_stdout", |_: &Self| Ok::<_, BoxError>(StdoutExporter))
    }

    fn resource(&self) -> Vec<KeyValue> {
        vec![KeyValue::new(
            "deployment.environment.name",
            self.settings.environment.clone(),
        )]
    }
}

/// Drops root spans for health-check paths (their children follow), keeps every other root, and lets children
/// follow their parent so that a trace is kept or dropped whole.
#[derive(Debug)]
pub struct HealthCheckSampler {
    drop_paths: Vec<String>,
}

impl Sampler for HealthCheckSampler {
    fn should_sample(&self, params: &SamplingParams<'_>) -> Decision {
        if params.parent() != ParentKind::None {
            return Decision::FollowParent;
        }
        let path = params
            .attribute("url.path")
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| params.name().rsplit(' ').next().unwrap_or_default());
        if self.drop_paths.iter().any(|p| p == path) {
            Decision::Drop
        } else {
            Decision::RecordAndSample
        }
    }

    fn description(&self) -> String {
        format!("HealthCheckSampler{{drop_paths={:?}}}", self.drop_paths)
    }

    /// Every child follows its parent (above), so the host decides children without calling the sampler.
    fn children_follow_parent(&self) -> bool {
        true
    }
}

/// Redacts every span (its attributes, events, links and status message; metric series reach it as spans too)
/// and every log record (its body and attributes). Add your own edits before or after the redaction.
#[derive(Debug)]
pub struct Redacting(Arc<Redactor>);

impl SpanProcessor for Redacting {
    fn on_end(&self, span: &SpanView<'_>, edits: &mut Edits<'_>) {
        self.0.redact_span(span, edits);
    }
}

impl LogProcessor for Redacting {
    fn on_emit(&self, record: &LogView<'_>, edits: &mut LogEdits<'_>) {
        self.0.redact_log(record, edits);
    }
}

/// An exporter that needs no collector, for a first run: one line per span on standard output (after the
/// redaction). Replace it with yours, or use the host's `otlp` exporter.
#[derive(Debug)]
pub struct StdoutExporter;

impl SpanExporter for StdoutExporter {
    fn export(&self, spans: &[SpanView<'_>]) -> Result<(), BoxError> {
        let mut out = std::io::stdout().lock();
        for span in spans {
            let attributes: Vec<String> = span
                .attributes()
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            writeln!(out, "{{name}}: {} [{}]", span.name(), attributes.join(" "))?;
        }
        out.flush()?;
        Ok(())
    }
}

ndotel_api::register_distro!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use ndotel_api::testing::{self, Edit, LogEdit, Target, TestLog, TestParams, TestSpan};
    use ndotel_api::{SpanKind, Value, toml};

    fn distro() -> {{Type}} {
        {{Type}}::init(&DistroConfig::new(toml::Table::new(), ".")).unwrap()
    }

    #[test]
    fn health_checks_are_dropped_and_children_follow_their_parent() {
        let d = distro();
        let sampler = {{Type}}::components().build_sampler(&d, "{{name}}_sampler").unwrap();
        let health = TestParams::new("GET /health").kind(SpanKind::Server);
        assert_eq!(testing::sample(sampler.as_ref(), &health), Decision::Drop);
        let items = TestParams::new("GET").attribute("url.path", "/items");
        assert_eq!(testing::sample(sampler.as_ref(), &items), Decision::RecordAndSample);
        let child = TestParams::new("SELECT").parent(ParentKind::Local, false);
        assert_eq!(testing::sample(sampler.as_ref(), &child), Decision::FollowParent);
    }

    #[test]
    fn a_secret_in_the_query_a_header_or_an_event_never_leaves_the_span() {
        let d = distro();
        let processor = {{Type}}::components().build_span_processor(&d).unwrap();
        let span = TestSpan::new("POST /login")
            .attribute("url.query", "user=al&password=hunter2")
            .attribute("http.request.header.authorization", "Bearer abc123")
            .attribute("url.path", "/login")
            .event("login failed", vec![KeyValue::new("user.password", "hunter2")]);
        let edits = testing::process(processor.as_ref(), &span);
        assert!(
            edits.contains(&Edit::Set {
                target: Target::Span,
                key: "url.query".into(),
                value: Value::Str("user=al&password=[REDACTED]".into()),
            }),
            "{edits:?}"
        );
        assert!(
            edits.contains(&Edit::Redact {
                target: Target::Span,
                key: "http.request.header.authorization".into(),
            }),
            "{edits:?}"
        );
        assert!(
            edits.contains(&Edit::Redact { target: Target::Event(0), key: "user.password".into() }),
            "{edits:?}"
        );
        assert!(!format!("{edits:?}").contains("hunter2") && !format!("{edits:?}").contains("abc123"));
        let clean = TestSpan::new("GET /items").attribute("url.path", "/items");
        assert!(testing::process(processor.as_ref(), &clean).is_empty());
    }

    #[test]
    fn a_secret_in_a_log_body_is_redacted() {
        let d = distro();
        let processor = {{Type}}::components().build_log_processor(&d).unwrap();
        let log = TestLog::new("login failed for al password=hunter2");
        let edits = testing::process_log(processor.as_ref(), &log);
        assert_eq!(
            edits,
            [LogEdit::SetBody(Value::Str("login failed for al password=[REDACTED]".into()))]
        );
        assert!(testing::process_log(processor.as_ref(), &TestLog::new("listed 3 items")).is_empty());
    }

    #[test]
    fn the_exporter_writes_a_batch() {
        let d = distro();
        let exporter = {{Type}}::components().build_span_exporter(&d, "{{name}}_stdout").unwrap();
        testing::export(exporter.as_ref(), &[TestSpan::new("a"), TestSpan::new("b")]).unwrap();
    }

    #[test]
    fn a_misspelled_setting_is_an_error_naming_it() {
        let table = "drop_path = [\"/x\"]".parse().unwrap();
        let err = {{Type}}::init(&DistroConfig::new(table, ".")).unwrap_err();
        assert!(err.to_string().contains("drop_path"), "{err}");
    }

    #[test]
    fn the_generated_distro_toml_only_comments_the_defaults() {
        // Every line of [distro.{{name}}] in the generated distro.toml is a comment, so the code's defaults apply;
        // uncommented, each line must still be a valid setting.
        let text = include_str!("../../distro.toml");
        let own = text.split("[distro.{{name}}]").nth(1).unwrap_or_default();
        let uncommented: String = own
            .lines()
            .filter_map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let table: toml::Table = uncommented.parse().unwrap();
        assert!(!table.is_empty());
        {{Type}}::init(&DistroConfig::new(table, ".")).unwrap();
    }
}
