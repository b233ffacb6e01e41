//! The distro's span processor in the SDK pipeline: sets the distro's start attributes on every span, applies the
//! distro's edits (rename, set, redact, drop) to every ended span, then hands the span to each exporter's batch
//! processor. Redaction therefore happens before any exporter — built-in or distro — sees a span.

use super::view::{attr_refs, span_view, to_otel};
use crate::faults::{Component, Faults};
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
    plugin: Option<FfiSpanProcessorBox>,
    start_attributes: Vec<KeyValue>,
    next: Vec<Box<dyn SpanProcessor>>,
    faults: Arc<Faults>,
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
    pub(crate) fn new(
        plugin: Option<FfiSpanProcessorBox>,
        next: Vec<Box<dyn SpanProcessor>>,
        faults: Arc<Faults>,
    ) -> Self {
        let start_attributes = match plugin.as_ref().map(|p| p.start_attributes()) {
            Some(RResult::ROk(attrs)) => attrs.iter().map(to_otel).collect(),
            Some(RResult::RErr(e)) => {
                faults.record(Component::SpanProcessor, &e);
                Vec::new()
            }
            None => Vec::new(),
        };
        DistroSpanProcessor {
            plugin,
            start_attributes,
            next,
            faults,
        }
    }

    /// Applies the distro's edits; `None` when the span is dropped.
    fn edit(&self, mut span: SpanData) -> Option<SpanData> {
        let Some(plugin) = &self.plugin else {
            return Some(span);
        };
        let result = {
            let attrs = attr_refs(&span.attributes);
            let view = span_view(&span, &attrs);
            plugin.on_end(&view)
        };
        let edits = match result {
            RResult::ROk(edits) => edits,
            RResult::RErr(e) => {
                self.faults.record(Component::SpanProcessor, &e);
                return Some(span);
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
