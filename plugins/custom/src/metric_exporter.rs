//! The metric exporters. The host hands every collection over as an OTLP `ExportMetricsServiceRequest` in
//! protobuf; from it `custom_console` prints one readable line per data point, `custom_file` appends one complete
//! OTLP/JSON object per line (the "OTLP File exporter" format; a line is written whole or not at all), and
//! `custom_otlp` posts the protobuf as it is to an OTLP/HTTP endpoint.

use ndotel_api::{BoxError, MetricExporter, Temporality};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use prost::Message;
use serde::Deserialize;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// `[distro.otel_custom_distro.metric_exporter]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricExporterSettings {
    /// `cumulative` or `delta`.
    pub temporality: String,
    /// Output of `custom_file`, relative to the `distro.toml` directory.
    pub file_path: PathBuf,
    /// Where `custom_otlp` posts (OTLP/HTTP protobuf, `http://` only); the environment's
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, then `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/metrics`, override it.
    pub otlp_endpoint: String,
    /// Timeout of one post, milliseconds.
    pub otlp_timeout_ms: u64,
}

impl Default for MetricExporterSettings {
    fn default() -> Self {
        MetricExporterSettings {
            temporality: "cumulative".into(),
            file_path: PathBuf::from("custom-metrics.jsonl"),
            otlp_endpoint: "http://127.0.0.1:4318/v1/metrics".into(),
            otlp_timeout_ms: 10_000,
        }
    }
}

impl MetricExporterSettings {
    /// The temporality, validated.
    pub fn temporality(&self) -> Result<Temporality, BoxError> {
        match self.temporality.to_ascii_lowercase().as_str() {
            "cumulative" => Ok(Temporality::Cumulative),
            "delta" => Ok(Temporality::Delta),
            other => Err(format!(
                "metric_exporter.temporality = {other:?}: use \"cumulative\" or \"delta\""
            )
            .into()),
        }
    }
}

fn value_text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs_text(attrs: &[KeyValue]) -> String {
    let parts: Vec<String> = attrs
        .iter()
        .map(|kv| format!("{}={}", kv.key, value_text(&kv.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn number(v: &Option<number_data_point::Value>) -> String {
    match v {
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        Some(number_data_point::Value::AsDouble(d)) => format!("{d:.6}"),
        None => "-".into(),
    }
}

/// Renders a collection as text, one line per data point.
pub fn render(request: &ExportMetricsServiceRequest) -> String {
    let mut out = String::new();
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let unit = if m.unit.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", m.unit)
                };
                let mut line = |kind: &str, attrs: &[KeyValue], value: String| {
                    let _ = writeln!(
                        out,
                        "metric {}{unit} {kind} {} {value}",
                        m.name,
                        attrs_text(attrs)
                    );
                };
                match &m.data {
                    Some(Data::Sum(s)) => s
                        .data_points
                        .iter()
                        .for_each(|p| line("sum", &p.attributes, number(&p.value))),
                    Some(Data::Gauge(g)) => g
                        .data_points
                        .iter()
                        .for_each(|p| line("gauge", &p.attributes, number(&p.value))),
                    Some(Data::Histogram(h)) => h.data_points.iter().for_each(|p| {
                        let sum = p.sum.unwrap_or_default();
                        line(
                            "histogram",
                            &p.attributes,
                            format!("count={} sum={sum:.6}", p.count),
                        )
                    }),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.iter().for_each(|p| {
                        line(
                            "exp_histogram",
                            &p.attributes,
                            format!("count={} sum={:.6}", p.count, p.sum.unwrap_or_default()),
                        )
                    }),
                    _ => line("other", &[], String::new()),
                }
            }
        }
    }
    out
}

/// `custom_console`: readable lines on standard output.
#[derive(Debug)]
pub struct ConsoleMetricExporter {
    temporality: Temporality,
}

impl ConsoleMetricExporter {
    /// Prints to standard output.
    pub fn new(settings: &MetricExporterSettings) -> Result<Self, BoxError> {
        Ok(ConsoleMetricExporter {
            temporality: settings.temporality()?,
        })
    }
}

impl MetricExporter for ConsoleMetricExporter {
    fn temporality(&self) -> Temporality {
        self.temporality
    }
    fn export(&self, otlp_protobuf: &[u8]) -> Result<(), BoxError> {
        let text = render(&ExportMetricsServiceRequest::decode(otlp_protobuf)?);
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }
}

/// `custom_file`: OTLP/JSON lines.
#[derive(Debug)]
pub struct FileMetricExporter {
    temporality: Temporality,
    path: PathBuf,
    file: Mutex<File>,
}

impl FileMetricExporter {
    /// Opens (creates or appends to) the output file.
    pub fn new(settings: &MetricExporterSettings, base_dir: &Path) -> Result<Self, BoxError> {
        let path = base_dir.join(&settings.file_path);
        let file = crate::output::open_append(&path)
            .map_err(|e| format!("cannot open metric output {}: {e}", path.display()))?;
        Ok(FileMetricExporter {
            temporality: settings.temporality()?,
            path,
            file: Mutex::new(file),
        })
    }
}

impl MetricExporter for FileMetricExporter {
    fn temporality(&self) -> Temporality {
        self.temporality
    }
    fn export(&self, otlp_protobuf: &[u8]) -> Result<(), BoxError> {
        let request = ExportMetricsServiceRequest::decode(otlp_protobuf)?;
        let mut line = serde_json::to_vec(&request)?;
        line.push(b'\n');
        let mut file = self.file.lock().map_err(|_| "metric file lock poisoned")?;
        file.write_all(&line)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        file.flush()?;
        Ok(())
    }
}

/// `custom_otlp`: OTLP/HTTP protobuf posts.
#[derive(Debug)]
pub struct OtlpMetricExporter {
    temporality: Temporality,
    endpoint: String,
    agent: ureq::Agent,
}

impl OtlpMetricExporter {
    /// Builds the exporter; the endpoint comes from the environment (`env` looks a variable up; empty is unset)
    /// or the settings.
    pub fn new(
        settings: &MetricExporterSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BoxError> {
        let endpoint = env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            .or_else(|| {
                env("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .map(|base| format!("{}/v1/metrics", base.trim().trim_end_matches('/')))
            })
            .unwrap_or_else(|| settings.otlp_endpoint.clone());
        if !endpoint.starts_with("http://") {
            return Err(format!("custom_otlp endpoint {endpoint:?}: only http:// endpoints are supported; use the host's built-in `otlp` exporter for TLS or gRPC").into());
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(settings.otlp_timeout_ms)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(OtlpMetricExporter {
            temporality: settings.temporality()?,
            endpoint,
            agent,
        })
    }
}

impl MetricExporter for OtlpMetricExporter {
    fn temporality(&self) -> Temporality {
        self.temporality
    }
    fn export(&self, otlp_protobuf: &[u8]) -> Result<(), BoxError> {
        let response = self
            .agent
            .post(&self.endpoint)
            .header("content-type", "application/x-protobuf")
            .send(otlp_protobuf)
            .map_err(|e| format!("POST {}: {e}", self.endpoint))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("POST {}: HTTP {status}", self.endpoint).into());
        }
        Ok(())
    }
}
