//! `{{name}}`: an ndotel distro. Selected with `OTEL_RUST_DISTRO={{name}}`, configured by the `[distro.{{name}}]`
//! table of `distro.toml`.

use ndotel_api::{
    BoxError, Components, Decision, Distro, DistroConfig, Edits, KeyValue, ParentKind, Sampler,
    SamplingParams, SpanExporter, SpanProcessor, SpanView,
};
use serde::Deserialize;
use std::io::Write as _;

/// The settings of `[distro.{{name}}]`; a misspelled key is an error naming it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Root spans for these paths are dropped, with their whole trace.
    pub drop_paths: Vec<String>,
    /// Attributes whose key contains one of these (any case) are redacted.
    pub redact_keys: Vec<String>,
    /// The `deployment.environment.name` resource attribute.
    pub environment: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            drop_paths: vec!["/health".into(), "/healthz".into(), "/ready".into()],
            redact_keys: ["password", "token", "secret", "authorization", "cookie"]
                .map(String::from)
                .to_vec(),
            environment: "dev".into(),
        }
    }
}

/// The distro.
#[derive(Debug)]
pub struct {{Type}} {
    settings: Settings,
}

impl Distro for {{Type}} {
    const NAME: &'static str = "{{name}}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "drops health checks, redacts sensitive attributes";

    fn init(config: &DistroConfig) -> Result<Self, BoxError> {
        Ok({{Type}} {
            settings: config.deserialize()?,
        })
    }

    fn components() -> Components<Self> {
        Components::new()
            .sampler("{{name}}_sampler", |d: &Self| {
                Ok::<_, BoxError>(HealthCheckSampler {
                    drop_paths: d.settings.drop_paths.clone(),
                })
            })
            .span_processor(|d: &Self| {
                Ok::<_, BoxError>(Redactor {
                    keys: d.settings.redact_keys.iter().map(|k| k.to_lowercase()).collect(),
                })
            })
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
}

/// Redacts attributes with sensitive keys on the span, its events and its links.
#[derive(Debug)]
pub struct Redactor {
    keys: Vec<String>,
}

impl Redactor {
    fn sensitive(&self, key: &str) -> bool {
        let key = key.to_lowercase();
        self.keys.iter().any(|k| key.contains(k.as_str()))
    }
}

impl SpanProcessor for Redactor {
    fn on_end(&self, span: &SpanView<'_>, edits: &mut Edits<'_>) {
        for kv in span.attributes() {
            if self.sensitive(kv.key.as_str()) {
                edits.redact(kv.key.as_str());
            }
        }
        for (i, event) in span.events().enumerate() {
            for kv in event.attributes {
                if self.sensitive(kv.key.as_str()) {
                    edits.redact_event_attribute(i, kv.key.as_str());
                }
            }
        }
        for (i, link) in span.links().enumerate() {
            for kv in link.attributes {
                if self.sensitive(kv.key.as_str()) {
                    edits.redact_link_attribute(i, kv.key.as_str());
                }
            }
        }
    }
}

/// A stub exporter: one line per span on standard output. Replace it with yours (or use the host's `otlp`).
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
    use ndotel_api::testing::{self, Edit, Target, TestParams, TestSpan};
    use ndotel_api::SpanKind;

    fn distro() -> {{Type}} {
        {{Type}} {
            settings: Settings::default(),
        }
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
    fn sensitive_attributes_are_redacted_on_the_span_and_its_events() {
        let d = distro();
        let processor = {{Type}}::components().build_span_processor(&d).unwrap();
        let span = TestSpan::new("POST /login")
            .attribute("http.request.header.authorization", "Bearer abc")
            .attribute("url.path", "/login")
            .event("login failed", vec![KeyValue::new("user.password", "hunter2")]);
        assert_eq!(
            testing::process(processor.as_ref(), &span),
            [
                Edit::Redact { target: Target::Span, key: "http.request.header.authorization".into() },
                Edit::Redact { target: Target::Event(0), key: "user.password".into() },
            ]
        );
        let clean = TestSpan::new("GET /items").attribute("url.path", "/items");
        assert!(testing::process(processor.as_ref(), &clean).is_empty());
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
}
