//! The metric signal: the built-in `file` exporter (OTLP JSON lines) and the redaction of metric series.

pub(crate) mod series;

use crate::export::file::JsonLines;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use std::future::{Future, ready};
use std::time::Duration;

/// The built-in `file` metric exporter: one `ExportMetricsServiceRequest` JSON object per line.
#[derive(Debug)]
pub(crate) struct FileMetricExporter {
    out: JsonLines,
    temporality: Temporality,
}

impl FileMetricExporter {
    pub(crate) fn new(out: JsonLines, temporality: Temporality) -> Self {
        FileMetricExporter { out, temporality }
    }
}

impl PushMetricExporter for FileMetricExporter {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        ready(self.out.write(&ExportMetricsServiceRequest::from(metrics)))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.out.flush()
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.out.flush()
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}
