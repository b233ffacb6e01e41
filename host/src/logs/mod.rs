//! The log signal's part of the pipeline: `tracing` events as log records, one batch processor per log exporter.

use crate::pipeline::{BUILTIN_LOG_EXPORTERS, BuildError, Ctx, unknown};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;

impl Ctx<'_> {
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

    /// The logger provider for `tracing` events, or `None` (`none` is ndotel's default: distros have no log
    /// processor yet, so nothing would redact log records).
    pub(crate) fn logger_provider(
        &mut self,
        resource: Resource,
    ) -> Result<Option<SdkLoggerProvider>, BuildError> {
        let plan = self.plan;
        let mut builder = SdkLoggerProvider::builder().with_resource(resource);
        let mut exporters = 0;
        for name in &plan.settings.logs_exporter.value {
            let comp = |message: String| BuildError::Component {
                what: format!("log exporter {name:?}"),
                message,
            };
            match name.as_str() {
                "none" => continue,
                "console" => {
                    builder = builder.with_log_processor(
                        self.log_batch(opentelemetry_stdout::LogExporter::default()),
                    )
                }
                "otlp" => {
                    let exporter = self.plan.settings.otlp[2]
                        .log_exporter(&mut self.transport)
                        .map_err(comp)?;
                    builder = builder.with_log_processor(self.log_batch(exporter));
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
            exporters += 1;
        }
        Ok((exporters > 0).then(|| builder.build()))
    }
}
