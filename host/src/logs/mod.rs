//! The log signal's part of the pipeline: `tracing` events as log records, through the distro's log processor,
//! then one batch processor per log exporter.

mod processor;

use crate::file::JsonLines;
use crate::pipeline::{BUILTIN_LOG_EXPORTERS, BuildError, Ctx, open_file, unknown};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLoggerProvider};
use processor::DistroLogProcessor;
use std::time::Duration;

/// The built-in `file` log exporter: one `ExportLogsServiceRequest` JSON object per line.
#[derive(Debug)]
struct FileLogExporter {
    out: JsonLines,
    resource: ResourceAttributesWithSchema,
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
struct StderrLog;

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

impl Ctx<'_> {
    /// Whether the distro has a log processor: log records, and the service's events on stderr, pass through it.
    pub(crate) fn edits_logs(&self) -> bool {
        self.distro.is_some() && self.plan.distro.components.log_processor
    }

    /// A batch log processor with the validated `OTEL_BLRP_*` settings.
    fn log_batch(
        &self,
        exporter: impl opentelemetry_sdk::logs::LogExporter + 'static,
    ) -> opentelemetry_sdk::logs::BatchLogProcessor {
        let s = &self.plan.settings;
        let config = opentelemetry_sdk::logs::BatchConfigBuilder::default()
            .with_max_queue_size(s.blrp_max_queue_size.value)
            .with_max_export_batch_size(s.blrp_max_export_batch_size.value)
            .with_scheduled_delay(s.blrp_schedule_delay.value)
            .build();
        opentelemetry_sdk::logs::BatchLogProcessor::builder(exporter)
            .with_batch_config(config)
            .build()
    }

    /// The logger provider for `tracing` events, or `None` when no log exporter is selected. Records pass through
    /// the distro's log processor first.
    pub(crate) fn logger_provider(
        &mut self,
        resource: Resource,
    ) -> Result<Option<SdkLoggerProvider>, BuildError> {
        let plan = self.plan;
        let mut next: Vec<Box<dyn LogProcessor>> = Vec::new();
        for name in &plan.settings.logs_exporter.value {
            let comp = |message: String| BuildError::Component {
                what: format!("log exporter {name:?}"),
                message,
            };
            match name.as_str() {
                "none" => continue,
                "console" => next.push(Box::new(
                    self.log_batch(opentelemetry_stdout::LogExporter::default()),
                )),
                "file" => {
                    let out = open_file(&plan.settings.file_logs_path.value).map_err(comp)?;
                    next.push(Box::new(self.log_batch(FileLogExporter {
                        out,
                        resource: ResourceAttributesWithSchema::default(),
                    })));
                }
                "otlp" if plan.settings.otlp_encoder.value == crate::settings::OWN_OTLP_ENCODER => {
                    let exporter = plan.settings.otlp[2]
                        .log_exporter(&mut self.transport)
                        .map_err(comp)?;
                    next.push(Box::new(self.log_batch(exporter)));
                }
                "otlp" => {
                    let exporter = plan.settings.otlp[2]
                        .otlp_log_exporter(&mut self.transport)
                        .map_err(comp)?;
                    next.push(Box::new(self.log_batch(exporter)));
                }
                other => {
                    return Err(unknown(
                        "OTEL_LOGS_EXPORTER",
                        "log exporter",
                        other,
                        BUILTIN_LOG_EXPORTERS,
                        &[],
                    ));
                }
            }
        }
        let edits_logs = self.edits_logs();
        if edits_logs {
            // The service's events reach stderr through the distro's edits too (see `StderrLog`).
            next.push(Box::new(StderrLog));
        }
        if next.is_empty() {
            return Ok(None);
        }
        let plugin = if edits_logs {
            let p = self
                .startup("its log processor", |d| d.log_processor())
                .map_err(|message| BuildError::Component {
                    what: "log processor".into(),
                    message,
                })?;
            Some(p)
        } else {
            None
        };
        let processor = DistroLogProcessor::new(
            plugin,
            next,
            self.faults.clone(),
            plan.settings.call_timeout.value,
        );
        Ok(Some(
            SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_log_processor(processor)
                .build(),
        ))
    }
}
