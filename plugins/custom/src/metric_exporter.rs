//! The metric exporter `custom_console`: decodes the OTLP collection the host hands over and prints one readable
//! line per data point.

use ndotel_api::{BoxError, MetricExporter};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use prost::Message;
use std::fmt::Write as _;
use std::io::Write;

/// The exporter.
#[derive(Debug)]
pub struct ConsoleMetricExporter {
    _private: (),
}

impl ConsoleMetricExporter {
    /// Prints to standard output.
    pub fn stdout() -> Self {
        ConsoleMetricExporter { _private: () }
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
                match &m.data {
                    Some(Data::Sum(s)) => s.data_points.iter().for_each(|p| {
                        let _ = writeln!(
                            out,
                            "metric {}{unit} sum {} {}",
                            m.name,
                            attrs_text(&p.attributes),
                            number(&p.value)
                        );
                    }),
                    Some(Data::Gauge(g)) => g.data_points.iter().for_each(|p| {
                        let _ = writeln!(
                            out,
                            "metric {}{unit} gauge {} {}",
                            m.name,
                            attrs_text(&p.attributes),
                            number(&p.value)
                        );
                    }),
                    Some(Data::Histogram(h)) => h.data_points.iter().for_each(|p| {
                        let _ = writeln!(
                            out,
                            "metric {}{unit} histogram {} count={} sum={}",
                            m.name,
                            attrs_text(&p.attributes),
                            p.count,
                            p.sum.unwrap_or_default()
                        );
                    }),
                    _ => {
                        let _ = writeln!(out, "metric {}{unit} (unsupported kind)", m.name);
                    }
                }
            }
        }
    }
    out
}

fn number(v: &Option<number_data_point::Value>) -> String {
    match v {
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        Some(number_data_point::Value::AsDouble(d)) => d.to_string(),
        None => "-".into(),
    }
}

impl MetricExporter for ConsoleMetricExporter {
    fn export(&self, otlp_protobuf: &[u8]) -> Result<(), BoxError> {
        let request = ExportMetricsServiceRequest::decode(otlp_protobuf)?;
        let text = render(&request);
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }
}
