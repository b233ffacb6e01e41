//! `otel_custom_distro`: the reference ndotel distro, the Rust counterpart of the seed's Python `ndotel` distro.
//!
//! One file per component, as in the seed: [`sampler`] drops health-check traffic (whole traces) and samples the
//! rest by ratio, parent-based; [`span_processor`] injects environment attributes and redacts secrets ([`redact`]) before export;
//! [`log_processor`] applies the same redaction to log records and drops them by severity or target;
//! [`span_exporter`] writes finished spans as JSON lines; [`metric_exporter`] prints metrics for humans, writes
//! them as OTLP JSON lines or posts them over OTLP/HTTP.
//! Everything is configured from the `[distro.otel_custom_distro]` table of `distro.toml`; unknown keys are errors.
//!
//! This crate is an rlib that registers the distro with `inventory`; the `otel_custom_distro_so` crate beside it
//! ships the same distro as a `.so` plugin.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod log_processor;
pub mod metric_exporter;
mod output;
pub use ndotel_redact as redact;
pub mod sampler;
pub mod span_exporter;
pub mod span_processor;

use ndotel_api::{BoxError, Components, Distro, DistroConfig, KeyValue};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The settings of `[distro.otel_custom_distro]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Resource attributes (`deployment.environment.name` and the like describe the process, not each span);
    /// values may use `${VAR}` and `${VAR:-default}`, expanded once at start-up. `OTEL_RESOURCE_ATTRIBUTES` and
    /// `OTEL_SERVICE_NAME` override them.
    pub resource: BTreeMap<String, String>,
    /// Sampler settings.
    pub sampler: sampler::SamplerSettings,
    /// Span processor settings.
    pub span_processor: span_processor::ProcessorSettings,
    /// Log record processor settings (its redaction is the span processor's).
    pub log_processor: log_processor::LogProcessorSettings,
    /// Span exporter settings.
    pub span_exporter: span_exporter::ExporterSettings,
    /// Metric exporter settings.
    pub metric_exporter: metric_exporter::MetricExporterSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            resource: BTreeMap::from([(
                "deployment.environment.name".to_string(),
                "${DEPLOYMENT_ENVIRONMENT:-development}".to_string(),
            )]),
            sampler: Default::default(),
            span_processor: Default::default(),
            log_processor: Default::default(),
            span_exporter: Default::default(),
            metric_exporter: Default::default(),
        }
    }
}

/// The distro.
#[derive(Debug)]
pub struct CustomDistro {
    settings: Settings,
    config: DistroConfig,
    /// `resource`, expanded.
    resource: Vec<(String, String)>,
}

impl Distro for CustomDistro {
    const NAME: &'static str = "otel_custom_distro";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "drops health checks, samples by ratio, injects environment attributes, redacts secrets";

    fn init(config: &DistroConfig) -> Result<Self, BoxError> {
        let settings: Settings = config.deserialize()?;
        // Validate everything now, so a bad regex or ratio is an init error, not a surprise at first use.
        sampler::CustomSampler::new(&settings.sampler)?;
        span_processor::CustomSpanProcessor::new(&settings.span_processor, |n| config.env_var(n))?;
        log_processor::CustomLogProcessor::new(
            &settings.log_processor,
            &settings.span_processor.redact,
        )?;
        settings.metric_exporter.temporality()?;
        let resource = settings
            .resource
            .iter()
            .map(|(k, v)| {
                span_processor::expand_env(v, |n| config.env_var(n))
                    .map(|v| (k.clone(), v))
                    .map_err(|e| format!("resource.{k}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CustomDistro {
            settings,
            config: config.clone(),
            resource,
        })
    }

    fn components() -> Components<Self> {
        Self::offered()
    }

    fn resource(&self) -> Vec<KeyValue> {
        let mut out = vec![
            KeyValue::new("telemetry.distro.name", Self::NAME),
            KeyValue::new("telemetry.distro.version", Self::VERSION),
        ];
        out.extend(
            self.resource
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.as_str())),
        );
        out
    }
}

impl CustomDistro {
    /// Every component, named once: `ndotel list` shows these names and the host builds them by name.
    fn offered() -> Components<Self> {
        Components::new()
            .sampler("otel_custom", |d: &Self| {
                sampler::CustomSampler::new(&d.settings.sampler)
            })
            .span_processor(|d: &Self| {
                span_processor::CustomSpanProcessor::new(&d.settings.span_processor, |n| {
                    d.config.env_var(n)
                })
            })
            .log_processor(|d: &Self| {
                log_processor::CustomLogProcessor::new(
                    &d.settings.log_processor,
                    &d.settings.span_processor.redact,
                )
            })
            .span_exporter("custom_jsonl", |d: &Self| {
                span_exporter::JsonLinesExporter::new(
                    &d.settings.span_exporter,
                    d.config.base_dir(),
                )
            })
            .metric_exporter("custom_console", |d: &Self| {
                metric_exporter::ConsoleMetricExporter::new(&d.settings.metric_exporter)
            })
            .metric_exporter("custom_file", |d: &Self| {
                metric_exporter::FileMetricExporter::new(
                    &d.settings.metric_exporter,
                    d.config.base_dir(),
                )
            })
            .metric_exporter("custom_otlp", |d: &Self| {
                metric_exporter::OtlpMetricExporter::new(&d.settings.metric_exporter, |n| {
                    d.config.env_var(n)
                })
            })
    }
}

ndotel_api::register_distro!(CustomDistro);
