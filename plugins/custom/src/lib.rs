//! `otel_custom_distro`: the reference ndotel distro, the Rust counterpart of the seed's Python `ndotel` distro.
//!
//! One file per component, as in the seed: [`sampler`] drops health-check traffic (whole traces) and samples the
//! rest by ratio, parent-based; [`span_processor`] injects environment attributes and redacts secrets before export;
//! [`span_exporter`] writes finished spans as JSON lines; [`metric_exporter`] prints metrics for humans, writes
//! them as OTLP JSON lines or posts them over OTLP/HTTP.
//! Everything is configured from the `[distro.otel_custom_distro]` table of `distro.toml`; unknown keys are errors.
//!
//! This crate is an rlib that registers the distro with `inventory`; the `otel_custom_distro_so` crate beside it
//! ships the same distro as a `.so` plugin.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod metric_exporter;
pub mod sampler;
pub mod span_exporter;
pub mod span_processor;

use ndotel_api::{
    BoxError, ComponentNames, Distro, DistroConfig, KeyValue, MetricExporter, Sampler,
    SpanExporter, SpanProcessor,
};
use serde::Deserialize;

/// The settings of `[distro.otel_custom_distro]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Sampler settings.
    pub sampler: sampler::SamplerSettings,
    /// Span processor settings.
    pub span_processor: span_processor::ProcessorSettings,
    /// Span exporter settings.
    pub span_exporter: span_exporter::ExporterSettings,
    /// Metric exporter settings.
    pub metric_exporter: metric_exporter::MetricExporterSettings,
}

/// The distro.
#[derive(Debug)]
pub struct CustomDistro {
    settings: Settings,
    config: DistroConfig,
}

impl Distro for CustomDistro {
    const NAME: &'static str = "otel_custom_distro";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "drops health checks, samples by ratio, injects environment attributes, redacts secrets";
    const COMPONENTS: ComponentNames = ComponentNames {
        samplers: &["otel_custom"],
        span_processor: true,
        span_exporters: &["custom_jsonl"],
        metric_exporters: &["custom_console", "custom_file", "custom_otlp"],
    };

    fn init(config: &DistroConfig) -> Result<Self, BoxError> {
        let settings: Settings = config.deserialize()?;
        // Validate everything now, so a bad regex or ratio is an init error, not a surprise at first use.
        sampler::CustomSampler::new(&settings.sampler)?;
        span_processor::CustomSpanProcessor::new(&settings.span_processor)?;
        settings.metric_exporter.temporality()?;
        Ok(CustomDistro {
            settings,
            config: config.clone(),
        })
    }

    fn resource(&self) -> Vec<KeyValue> {
        vec![
            KeyValue::new("telemetry.distro.name", Self::NAME),
            KeyValue::new("telemetry.distro.version", Self::VERSION),
        ]
    }

    fn sampler(&self, _name: &str) -> Result<Box<dyn Sampler>, BoxError> {
        Ok(Box::new(sampler::CustomSampler::new(
            &self.settings.sampler,
        )?))
    }

    fn span_processor(&self) -> Result<Box<dyn SpanProcessor>, BoxError> {
        Ok(Box::new(span_processor::CustomSpanProcessor::new(
            &self.settings.span_processor,
        )?))
    }

    fn span_exporter(&self, _name: &str) -> Result<Box<dyn SpanExporter>, BoxError> {
        Ok(Box::new(span_exporter::JsonLinesExporter::new(
            &self.settings.span_exporter,
            self.config.base_dir(),
        )?))
    }

    fn metric_exporter(&self, name: &str) -> Result<Box<dyn MetricExporter>, BoxError> {
        let s = &self.settings.metric_exporter;
        Ok(match name {
            "custom_file" => Box::new(metric_exporter::FileMetricExporter::new(
                s,
                self.config.base_dir(),
            )?),
            "custom_otlp" => Box::new(metric_exporter::OtlpMetricExporter::new(s)?),
            _ => Box::new(metric_exporter::ConsoleMetricExporter::new(s)?),
        })
    }
}

ndotel_api::register_distro!(CustomDistro);
