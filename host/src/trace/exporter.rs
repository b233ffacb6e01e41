//! What becomes of the spans queued for export ([`Delivery`]), the exporters of one pipeline behind one pointer
//! type, and the built-in `file` exporter (OTLP JSON lines).

use crate::export::file::JsonLines;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What happened to the spans queued for export: what is left over at shutdown (still queued or being exported when
/// the deadline passed, dropped by a full queue, or refused by an exporter) is reported, never silently lost.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// Spans handed to the batch queue.
    queued: AtomicU64,
    /// Spans done with: dropped by the distro's edits, or with every export of them finished (well or not).
    settled: AtomicU64,
    /// Span exports that failed (one per span and exporter).
    failed: AtomicU64,
    /// Spans dropped because the batch queue was full.
    full: AtomicU64,
}

impl Delivery {
    pub(crate) fn queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn settled(&self, n: usize) {
        self.settled.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, n: usize) {
        self.failed.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A queued span was dropped because the batch queue was full.
    pub(crate) fn full(&self) {
        self.full.fetch_add(1, Ordering::Relaxed);
    }

    /// Spans dropped because the batch queue was full (counted in [`Delivery::undelivered`] too).
    pub(crate) fn dropped_full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    /// Span exports that did not happen: spans never done with, and failed exports.
    pub(crate) fn undelivered(&self) -> u64 {
        self.queued
            .load(Ordering::Relaxed)
            .saturating_sub(self.settled.load(Ordering::Relaxed))
            + self.failed.load(Ordering::Relaxed)
    }
}

/// A span exporter behind a pointer: the exporters of one pipeline differ in type.
pub(crate) trait AnySpanExporter: Send + Sync + std::fmt::Debug {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> Pin<Box<dyn Future<Output = OTelSdkResult> + Send + '_>>;
    fn force_flush(&self) -> OTelSdkResult;
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult;
    fn set_resource(&mut self, resource: &Resource);
}

impl<E: SpanExporter> AnySpanExporter for E {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> Pin<Box<dyn Future<Output = OTelSdkResult> + Send + '_>> {
        Box::pin(SpanExporter::export(self, batch))
    }

    fn force_flush(&self) -> OTelSdkResult {
        SpanExporter::force_flush(self)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        SpanExporter::shutdown_with_timeout(self, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(self, resource)
    }
}

/// The built-in `file` span exporter: one `ExportTraceServiceRequest` JSON object per line.
#[derive(Debug)]
pub(crate) struct FileSpanExporter {
    out: JsonLines,
    resource: ResourceAttributesWithSchema,
}

impl FileSpanExporter {
    pub(crate) fn new(out: JsonLines) -> Self {
        FileSpanExporter {
            out,
            resource: ResourceAttributesWithSchema::default(),
        }
    }
}

impl SpanExporter for FileSpanExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        ready(self.out.write(&request))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.out.flush()
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.out.flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}
