//! The distro's span processor in the SDK pipeline: sets the distro's start attributes on every span, applies the
//! distro's edits (rename, set, redact, drop) to every ended span, then hands the span to each exporter's batch
//! processor. Redaction therefore happens before any exporter — built-in or distro — sees a span.
//!
//! Fail closed: a processor that fails on a span (error, panic, or stuck past its deadline, after which the
//! watchdog bypasses it) costs that span — it is dropped and counted — unless the operator chose pass-through with
//! `OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass`.

use super::view::{attr_refs, span_view, to_otel};
use crate::faults::{Component, Faults};
use crate::watchdog::Watched;
use abi_stable::std_types::RResult;
use ndotel_api::{FfiSpanProcessorBox, REDACTED, SpanEdit};
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// The distro's processor (if any) in front of the exporters' processors.
pub(crate) struct DistroSpanProcessor {
    plugin: Option<(FfiSpanProcessorBox, Arc<Watched>)>,
    start_attributes: Vec<KeyValue>,
    next: Vec<Box<dyn SpanProcessor>>,
    faults: Arc<Faults>,
    /// Spans handed to the exporters' processors (each gets every one): with the exporters' own counts, what
    /// shutdown did not deliver.
    handed: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for DistroSpanProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistroSpanProcessor")
            .field("has_plugin", &self.plugin.is_some())
            .field("start_attributes", &self.start_attributes)
            .field("next", &self.next)
            .finish()
    }
}

impl DistroSpanProcessor {
    /// `start_attributes` were asked of the plugin when it was built (under the start-up deadline).
    pub(crate) fn new(
        plugin: Option<FfiSpanProcessorBox>,
        start_attributes: Vec<ndotel_api::KeyValue>,
        next: Vec<Box<dyn SpanProcessor>>,
        faults: Arc<Faults>,
        call_timeout: Duration,
        handed: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let plugin = plugin.map(|p| {
            let watched = Watched::new(Component::SpanProcessor, call_timeout, faults.clone());
            (p, watched)
        });
        DistroSpanProcessor {
            plugin,
            start_attributes: start_attributes.iter().map(to_otel).collect(),
            next,
            faults,
            handed,
        }
    }

    /// What a span the processor failed on becomes: dropped, or unchanged when the operator chose pass-through.
    fn on_failure(&self, span: SpanData) -> Option<SpanData> {
        self.faults.processor_passes().then_some(span)
    }

    /// Applies the distro's edits; `None` when the span is dropped.
    fn edit(&self, mut span: SpanData) -> Option<SpanData> {
        let Some((plugin, watched)) = &self.plugin else {
            return Some(span);
        };
        if watched.bypassed() {
            // Stuck earlier: counted once by the watchdog; every later span takes the fallback.
            return self.on_failure(span);
        }
        let result = {
            let attrs = attr_refs(&span.attributes);
            let view = span_view(&span, &attrs);
            watched.call(|| plugin.on_end(&view))
        };
        let edits = match result {
            RResult::ROk(edits) => edits,
            RResult::RErr(e) => {
                self.faults.record_span_call(Component::SpanProcessor, &e);
                return self.on_failure(span);
            }
        };
        for edit in edits.as_slice() {
            match edit {
                SpanEdit::Drop => return None,
                SpanEdit::Rename(name) => span.name = Cow::Owned(name.to_string()),
                SpanEdit::Set(kv) => {
                    let kv = to_otel(kv);
                    match span.attributes.iter_mut().find(|a| a.key == kv.key) {
                        Some(existing) => *existing = kv,
                        None => span.attributes.push(kv),
                    }
                }
                SpanEdit::Redact(key) => {
                    for a in span
                        .attributes
                        .iter_mut()
                        .filter(|a| a.key.as_str() == key.as_str())
                    {
                        a.value = REDACTED.into();
                    }
                }
            }
        }
        Some(span)
    }
}

impl SpanProcessor for DistroSpanProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        for kv in &self.start_attributes {
            span.set_attribute(kv.clone());
        }
        for p in &self.next {
            p.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        let Some(span) = self.edit(span) else { return };
        if let Some((last, rest)) = self.next.split_last() {
            self.handed
                .fetch_add(self.next.len() as u64, std::sync::atomic::Ordering::Relaxed);
            for p in rest {
                p.on_end(span.clone());
            }
            last.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        combine(self.next.iter().map(|p| p.force_flush()))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        combine(self.next.iter().map(|p| p.shutdown_with_timeout(timeout)))
    }

    fn set_resource(&mut self, resource: &Resource) {
        for p in &mut self.next {
            p.set_resource(resource);
        }
    }
}

/// Runs every operation, keeping the first error.
pub(crate) fn combine(results: impl Iterator<Item = OTelSdkResult>) -> OTelSdkResult {
    let mut first: Option<OTelSdkError> = None;
    for r in results {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}
