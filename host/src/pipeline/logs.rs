//! The log signal's part of the pipeline: `tracing` events as log records, through the distro's log processor,
//! then one batch processor per log exporter.

use crate::logs::processor::{DistroLogProcessor, LogSlot};
use crate::logs::{FileLogExporter, StderrLog};
use crate::pipeline::ctx::{BuildError, Ctx, open_file, unknown};
use crate::settings::BUILTIN_LOG_EXPORTERS;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogProcessor, SdkLoggerProvider};
use std::sync::Arc;

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
    /// the distro's log processor first; with it goes where that processor is kept, for a reload to swap.
    #[allow(clippy::type_complexity)]
    pub(crate) fn logger_provider(
        &mut self,
        resource: Resource,
    ) -> Result<Option<(SdkLoggerProvider, Option<Arc<LogSlot>>)>, BuildError> {
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
                .distro()
                .and_then(|d| d.log_processor())
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
            (
                usize::try_from(plan.settings.logrecord_attribute_count_limit.value)
                    .unwrap_or(usize::MAX),
                super::limit_of(&plan.settings.logrecord_attribute_value_length_limit),
            ),
        );
        let slot = processor.slot();
        Ok(Some((
            SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_log_processor(processor)
                .build(),
            slot,
        )))
    }
}
