//! The metric signal: the adapter that hands a distro's metric exporter each collection as an OTLP protobuf
//! `ExportMetricsServiceRequest`, and the built-in `file` exporter (OTLP JSON lines).

use crate::faults::{Component, Faults};
use crate::file::JsonLines;
use abi_stable::std_types::RResult;
use ndotel_api::FfiMetricExporterBox;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use prost::Message;
use std::future::{Future, ready};
use std::sync::Arc;
use std::time::Duration;

/// A distro's metric exporter as an SDK exporter.
pub(crate) struct PluginMetricExporter {
    inner: FfiMetricExporterBox,
    temporality: Temporality,
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
    pub(crate) fn new(inner: FfiMetricExporterBox, faults: Arc<Faults>) -> Self {
        let temporality = match inner.temporality() {
            ndotel_api::Temporality::Cumulative => Temporality::Cumulative,
            ndotel_api::Temporality::Delta => Temporality::Delta,
        };
        PluginMetricExporter {
            inner,
            temporality,
            faults,
        }
    }

    fn check(&self, r: RResult<(), ndotel_api::FfiError>) -> OTelSdkResult {
        match r {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(e) => {
                self.faults.record_ffi(Component::MetricExporter, &e);
                Err(OTelSdkError::InternalFailure(e.to_string()))
            }
        }
    }
}

impl PushMetricExporter for PluginMetricExporter {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        let bytes = ExportMetricsServiceRequest::from(metrics).encode_to_vec();
        ready(self.check(self.inner.export(bytes.as_slice().into())))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.check(self.inner.force_flush())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.check(self.inner.shutdown())
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}

/// The built-in `file` metric exporter: one `ExportMetricsServiceRequest` JSON object per line.
#[derive(Debug)]
pub(crate) struct FileMetricExporter {
    out: JsonLines,
}

impl FileMetricExporter {
    pub(crate) fn new(out: JsonLines) -> Self {
        FileMetricExporter { out }
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
        Temporality::Cumulative
    }
}
