//! The metric signal: the adapter that hands a distro's metric exporter each collection as an OTLP protobuf
//! `ExportMetricsServiceRequest`, the built-in `file` exporter (OTLP JSON lines) and the `prometheus` endpoint.

pub(crate) mod series;

use crate::distro::faults::{Component, Faults};
use crate::distro::worker::{Worker, call_component};
use crate::export::file::JsonLines;
use abi_stable::std_types::RResult;
use ndotel_api::ffi::FfiMetricExporterBox;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use prost::Message;
use std::future::{Future, ready};
use std::sync::Arc;
use std::time::Duration;

/// A distro's metric exporter as an SDK exporter. Calls run on a worker thread with a deadline
/// (`OTEL_METRIC_EXPORT_TIMEOUT`), so a hanging exporter is reported and skipped, never waited for forever.
pub(crate) struct PluginMetricExporter {
    inner: Arc<FfiMetricExporterBox>,
    temporality: Temporality,
    worker: Worker,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for PluginMetricExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginMetricExporter")
            .field("temporality", &self.temporality)
            .finish_non_exhaustive()
    }
}

impl PluginMetricExporter {
    pub(crate) fn new(
        inner: FfiMetricExporterBox,
        faults: Arc<Faults>,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let temporality = match ndotel_api::Temporality::from_code_or_default(inner.temporality()) {
            ndotel_api::Temporality::Cumulative => Temporality::Cumulative,
            ndotel_api::Temporality::Delta => Temporality::Delta,
        };
        Ok(PluginMetricExporter {
            inner: Arc::new(inner),
            temporality,
            worker: Worker::new("ndotel-metric-export", timeout)?,
            faults,
        })
    }

    fn call(
        &self,
        f: impl FnOnce(&FfiMetricExporterBox) -> RResult<(), ndotel_api::ffi::FfiError> + Send + 'static,
    ) -> OTelSdkResult {
        call_component(
            &self.worker,
            &self.inner,
            &self.faults,
            Component::MetricExporter,
            f,
        )
    }
}

impl PushMetricExporter for PluginMetricExporter {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        let bytes = ExportMetricsServiceRequest::from(metrics).encode_to_vec();
        ready(self.call(move |exporter| exporter.export(bytes.as_slice().into())))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.call(|exporter| exporter.force_flush())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.call(|exporter| exporter.shutdown())
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}

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
