//! The log signal: `tracing` events as log records, through the distro's log processor, the `file` log exporter,
//! and the stderr sink of the service's own events.

pub(crate) mod processor;

use crate::export::file::JsonLines;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor};
use std::time::Duration;

/// The built-in `file` log exporter: one `ExportLogsServiceRequest` JSON object per line.
#[derive(Debug)]
pub(crate) struct FileLogExporter {
    pub(crate) out: JsonLines,
    pub(crate) resource: ResourceAttributesWithSchema,
}

impl LogExporter for FileLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let request = ExportLogsServiceRequest {
            resource_logs: group_logs_by_resource_and_scope(&batch, &self.resource),
        };
        self.out.write(&request)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.out.flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// ndotel's stderr log of the service's own events when a distro edits log records: each line is written from the
/// record the distro's log processor answered for, so what it redacts or drops never reaches stderr either (the
/// service's console is as much an export as any exporter, once a log shipper reads it).
#[derive(Debug)]
pub(crate) struct StderrLog;

impl LogProcessor for StderrLog {
    fn emit(
        &self,
        record: &mut opentelemetry_sdk::logs::SdkLogRecord,
        _: &opentelemetry::InstrumentationScope,
    ) {
        use std::fmt::Write as _;
        use tracing_subscriber::fmt::time::FormatTime as _;
        let mut line = String::with_capacity(128);
        let _ = tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut line));
        let _ = write!(
            line,
            " {:>5} {}: ",
            record.severity_text().unwrap_or(""),
            record.target().map_or("", |t| t.as_ref())
        );
        if let Some(body) = record.body() {
            let _ = write!(line, "{}", any_text(body));
        }
        for (k, v) in record.attributes_iter() {
            let _ = write!(line, " {k}={}", any_text(v));
        }
        line.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A log value as text, escaped where it could forge a line on a terminal or in a log file.
fn any_text(v: &opentelemetry::logs::AnyValue) -> std::borrow::Cow<'_, str> {
    use opentelemetry::logs::AnyValue;
    let raw = match v {
        // A string that needs no escaping is written as it is, without a copy.
        AnyValue::String(s) => return crate::text::printable(s.as_str()),
        AnyValue::Int(i) => i.to_string(),
        AnyValue::Double(d) => d.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    };
    crate::text::printable(&raw).into_owned().into()
}

/// Whether `target` belongs to a library on the export path (the OpenTelemetry crates, the HTTP and gRPC stacks,
/// ndotel itself): their events are never exported as log records, since exporting them makes more of them —
/// a telemetry loop, as opentelemetry-rust warns.
pub(crate) fn internal_target(target: &str) -> bool {
    // Every `opentelemetry*` crate is matched by prefix below.
    const INTERNAL: &[&str] = &[
        "tracing_opentelemetry",
        "ndotel",
        "hyper",
        "hyper_util",
        "h2",
        "tonic",
        "tower",
        "tower_http",
        "reqwest",
        "rustls",
    ];
    let krate = target.split("::").next().unwrap_or(target);
    INTERNAL.contains(&krate) || krate.starts_with("opentelemetry")
}
