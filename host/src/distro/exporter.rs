//! A distro's span and metric exporters as the SDK's exporters. Their calls are synchronous across the FFI and run on
//! a worker thread with a deadline; spans cross as views of the SDK's data, metrics as OTLP protobuf bytes.

use super::faults::{Component, Faults};
use super::view::HostSpan;
use super::worker::{Worker, call_component};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RResult;
use ndotel_api::ffi::{FfiMetricExporterBox, FfiSpan_TO, FfiSpanExporterBox, FfiSpanRef};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use prost::Message;
use std::future::{Future, ready};
use std::sync::Arc;
use std::time::Duration;

/// A distro's span exporter, as built (opaque outside this room).
pub(crate) type SpanExporterBox = FfiSpanExporterBox;

/// A distro's metric exporter, as built (opaque outside this room).
pub(crate) type MetricExporterBox = FfiMetricExporterBox;

/// A distro's span exporter as an SDK exporter. Calls run on a worker thread with a deadline
/// (`OTEL_BSP_EXPORT_TIMEOUT`), so a hanging exporter is reported and skipped, never waited for forever.
pub(crate) struct PluginSpanExporter {
    inner: Arc<FfiSpanExporterBox>,
    resource: Arc<Vec<KeyValue>>,
    worker: Worker,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for PluginSpanExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSpanExporter")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl PluginSpanExporter {
    pub(crate) fn new(
        inner: FfiSpanExporterBox,
        faults: Arc<Faults>,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        Ok(PluginSpanExporter {
            inner: Arc::new(inner),
            resource: Arc::new(Vec::new()),
            worker: Worker::new("ndotel-span-export", timeout)?,
            faults,
        })
    }

    fn call(
        &self,
        f: impl FnOnce(&FfiSpanExporterBox) -> RResult<(), ndotel_api::ffi::FfiError> + Send + 'static,
    ) -> OTelSdkResult {
        call_component(
            &self.worker,
            &self.inner,
            &self.faults,
            Component::SpanExporter,
            f,
        )
    }
}

impl SpanExporter for PluginSpanExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let resource = self.resource.clone();
        ready(self.call(move |exporter| {
            // One arena per batch: the exporter may read every part of every span.
            let bump = bumpalo::Bump::new();
            let views: Vec<HostSpan<'_>> = batch
                .iter()
                .map(|s| HostSpan::new(s, &resource, &bump))
                .collect();
            let views: Vec<FfiSpanRef<'_>> = views
                .iter()
                .map(|v| FfiSpan_TO::from_ptr(v, TD_Opaque))
                .collect();
            exporter.export(views.as_slice().into())
        }))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.call(|exporter| exporter.force_flush())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.call(|exporter| exporter.shutdown())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = Arc::new(super::view::resource_attributes(resource));
    }
}

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
