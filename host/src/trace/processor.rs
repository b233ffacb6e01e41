//! The distro's span processor in the SDK pipeline: sets the distro's start attributes on every span, applies the
//! distro's edits (rename, set, redact, drop) to every ended span, then hands the span to each exporter's batch
//! processor. Redaction therefore happens before any exporter — built-in or distro — sees a span.
//!
//! Fail closed: a processor that fails on a span (error or panic) costs that span — it is dropped and counted —
//! unless the operator chose pass-through with `OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass`; a call past its deadline
//! costs its span whatever that setting says; while a call is stuck the watchdog bypasses the processor.

use super::view::{HostSpan, resource_attributes, to_otel_value, with_scratch};
use crate::faults::{Component, Faults};
use crate::watchdog::Watched;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr};
use ndotel_api::REDACTED;
use ndotel_api::ValueRef;
use ndotel_api::ffi::{FfiEdits, FfiEdits_TO, FfiSpan_TO, FfiSpanProcessorBox, FfiTarget};
use opentelemetry::trace::{Span as _, Status};
use opentelemetry::{Context, Key, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// The distro's span processor behind its watchdog: what edits a span. Shared by the span pipeline and the metric
/// series redaction ([`crate::metrics::series`]).
pub(crate) struct Editor {
    plugin: FfiSpanProcessorBox,
    watched: Arc<Watched>,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for Editor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Editor").finish_non_exhaustive()
    }
}

impl Editor {
    /// What a span the processor failed on becomes: dropped, or unchanged when the operator chose pass-through.
    fn on_failure(&self, span: SpanData) -> Option<SpanData> {
        self.faults.processor_passes().then_some(span)
    }

    /// Applies the distro's edits; `None` when the span is dropped.
    pub(crate) fn edit(&self, span: SpanData, resource: &[KeyValue]) -> Option<SpanData> {
        if self.watched.bypassed() {
            // Stuck earlier: counted once by the watchdog; every later span takes the fallback.
            return self.on_failure(span);
        }
        let mut edits = SpanEdits::default();
        let result = with_scratch(|bump| {
            let view = HostSpan::new(&span, resource, bump);
            let view = FfiSpan_TO::from_ptr(&view, TD_Opaque);
            let sink = FfiEdits_TO::from_ptr(&mut edits, TD_Opaque);
            let trace = u128::from_be_bytes(span.span_context.trace_id().to_bytes());
            self.watched.call(trace, || self.plugin.on_end(view, sink))
        });
        // An edit that came too late costs its span, even with pass-through: the call is slow on this input, and
        // passing the span unedited would turn slowness into a leak. The watchdog counted it.
        if result.overdue {
            return None;
        }
        if let RResult::RErr(e) = result.value {
            self.faults.record_span_call(Component::SpanProcessor, &e);
            return self.on_failure(span);
        }
        edits.apply(span)
    }

    fn shutdown(&self) {
        if !self.watched.bypassed()
            && let RResult::RErr(e) = self.watched.call(0, || self.plugin.shutdown()).value
        {
            self.faults.record_span_call(Component::SpanProcessor, &e);
        }
    }
}

/// The distro's processor (if any) in front of the exporters' processors.
pub(crate) struct DistroSpanProcessor {
    editor: Option<Arc<Editor>>,
    start_attributes: Vec<KeyValue>,
    resource: Vec<KeyValue>,
    next: Vec<Box<dyn SpanProcessor>>,
    /// Spans handed to the exporters' processors (each gets every one): with the exporters' own counts, what
    /// shutdown did not deliver.
    handed: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for DistroSpanProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistroSpanProcessor")
            .field("has_plugin", &self.editor.is_some())
            .field("start_attributes", &self.start_attributes)
            .field("next", &self.next)
            .finish()
    }
}

impl DistroSpanProcessor {
    /// `start_attributes` were asked of the plugin when it was built (under the start-up deadline).
    pub(crate) fn new(
        plugin: Option<FfiSpanProcessorBox>,
        start_attributes: Vec<KeyValue>,
        next: Vec<Box<dyn SpanProcessor>>,
        faults: Arc<Faults>,
        call_timeout: Duration,
        handed: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let editor = plugin.map(|plugin| {
            let watched = Watched::new(Component::SpanProcessor, call_timeout, faults.clone());
            Arc::new(Editor {
                plugin,
                watched,
                faults,
            })
        });
        DistroSpanProcessor {
            editor,
            start_attributes,
            resource: Vec::new(),
            next,
            handed,
        }
    }

    /// Whether it would do nothing: no distro processor (so no start attributes) and no exporter behind it.
    pub(crate) fn is_idle(&self) -> bool {
        self.editor.is_none() && self.start_attributes.is_empty() && self.next.is_empty()
    }

    /// The distro's editor, for the metric series (`None` without a distro processor).
    pub(crate) fn editor(&self) -> Option<Arc<Editor>> {
        self.editor.clone()
    }

    /// Applies the distro's edits; `None` when the span is dropped.
    fn edit(&self, span: SpanData) -> Option<SpanData> {
        match &self.editor {
            Some(editor) => editor.edit(span, &self.resource),
            None => Some(span),
        }
    }
}

/// Where an edit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Span,
    Event(usize),
    Link(usize),
}

impl From<FfiTarget> for Target {
    fn from(t: FfiTarget) -> Self {
        match t.kind {
            1 => Target::Event(t.index as usize),
            2 => Target::Link(t.index as usize),
            _ => Target::Span,
        }
    }
}

/// One recorded edit, with owned values (the span is borrowed while the distro runs).
#[derive(Debug)]
enum SpanEdit {
    Rename(String),
    Set(Target, KeyValue),
    Redact(Target, String),
    RenameAttribute(Target, String, String),
    Remove(Target, String),
    DropEvent(usize),
    StatusMessage(String),
}

/// The edits a distro's processor made to one span; empty (and allocation-free) for a span left alone.
#[derive(Debug, Default)]
struct SpanEdits {
    drop: bool,
    edits: SmallVec<[SpanEdit; 2]>,
}

impl FfiEdits for SpanEdits {
    fn drop_span(&mut self) {
        self.drop = true;
    }
    fn rename_span(&mut self, name: RStr<'_>) {
        self.edits.push(SpanEdit::Rename(name.to_string()));
    }
    fn set(&mut self, target: FfiTarget, key: RStr<'_>, value: ValueRef<'_>) {
        // A value kind this host does not know (a newer plugin) cannot be represented: the edit is skipped.
        if let Some(value) = to_otel_value(value) {
            let kv = KeyValue::new(key.to_string(), value);
            self.edits.push(SpanEdit::Set(target.into(), kv));
        }
    }
    fn redact(&mut self, target: FfiTarget, key: RStr<'_>) {
        self.edits
            .push(SpanEdit::Redact(target.into(), key.to_string()));
    }
    fn rename_attribute(&mut self, target: FfiTarget, from: RStr<'_>, to: RStr<'_>) {
        self.edits.push(SpanEdit::RenameAttribute(
            target.into(),
            from.to_string(),
            to.to_string(),
        ));
    }
    fn remove_attribute(&mut self, target: FfiTarget, key: RStr<'_>) {
        self.edits
            .push(SpanEdit::Remove(target.into(), key.to_string()));
    }
    fn drop_event(&mut self, index: u32) {
        self.edits.push(SpanEdit::DropEvent(index as usize));
    }
    fn set_status_message(&mut self, message: RStr<'_>) {
        self.edits
            .push(SpanEdit::StatusMessage(message.to_string()));
    }
}

/// The attribute list an edit targets (`None` for an index the span does not have).
fn attributes_of(span: &mut SpanData, target: Target) -> Option<&mut Vec<KeyValue>> {
    match target {
        Target::Span => Some(&mut span.attributes),
        Target::Event(i) => span.events.events.get_mut(i).map(|e| &mut e.attributes),
        Target::Link(i) => span.links.links.get_mut(i).map(|l| &mut l.attributes),
    }
}

impl SpanEdits {
    /// Applies the edits in order; `None` when the span is dropped. Event drops apply last, so every edit's index
    /// means the event the distro saw.
    fn apply(self, mut span: SpanData) -> Option<SpanData> {
        if self.drop {
            return None;
        }
        if self.edits.is_empty() {
            return Some(span);
        }
        let mut dropped_events: SmallVec<[usize; 4]> = SmallVec::new();
        for edit in self.edits {
            match edit {
                SpanEdit::Rename(name) => span.name = Cow::Owned(name),
                SpanEdit::Set(target, kv) => {
                    if let Some(attributes) = attributes_of(&mut span, target) {
                        match attributes.iter_mut().find(|a| a.key == kv.key) {
                            Some(existing) => *existing = kv,
                            None => attributes.push(kv),
                        }
                    }
                }
                SpanEdit::Redact(target, key) => {
                    if let Some(attributes) = attributes_of(&mut span, target) {
                        for a in attributes.iter_mut().filter(|a| a.key.as_str() == key) {
                            a.value = Value::from(REDACTED);
                        }
                    }
                }
                SpanEdit::RenameAttribute(target, from, to) => {
                    if from == to {
                        continue;
                    }
                    if let Some(attributes) = attributes_of(&mut span, target) {
                        let to = Key::from(to);
                        attributes.retain(|a| a.key != to);
                        for a in attributes.iter_mut().filter(|a| a.key.as_str() == from) {
                            a.key = to.clone();
                        }
                    }
                }
                SpanEdit::Remove(target, key) => {
                    if let Some(attributes) = attributes_of(&mut span, target) {
                        attributes.retain(|a| a.key.as_str() != key);
                    }
                }
                SpanEdit::DropEvent(i) => dropped_events.push(i),
                SpanEdit::StatusMessage(message) => {
                    if let Status::Error { description } = &mut span.status {
                        *description = Cow::Owned(message);
                    }
                }
            }
        }
        if !dropped_events.is_empty() {
            dropped_events.sort_unstable();
            dropped_events.dedup();
            for i in dropped_events.into_iter().rev() {
                if i < span.events.events.len() {
                    span.events.events.remove(i);
                    span.events.dropped_count += 1;
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
        if let Some(editor) = &self.editor {
            editor.shutdown();
        }
        combine(self.next.iter().map(|p| p.shutdown_with_timeout(timeout)))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource_attributes(resource);
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{
        Event, Link, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    fn span(status: Status) -> SpanData {
        let event = |name: &'static str, kv: KeyValue| {
            Event::new(name, SystemTime::UNIX_EPOCH, vec![kv], 0)
        };
        let mut events = SpanEvents::default();
        events.events = vec![
            event("a", KeyValue::new("k", "1")),
            event("b", KeyValue::new("k", "2")),
            event("c", KeyValue::new("k", "3")),
        ];
        let mut links = SpanLinks::default();
        links.links = vec![Link::with_context(SpanContext::empty_context())];
        links.links[0].attributes = vec![KeyValue::new("peer.token", "t")];
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: "GET /x".into(),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes: vec![KeyValue::new("a", "1"), KeyValue::new("secret", "s")],
            dropped_attributes_count: 0,
            events,
            links,
            status,
            instrumentation_scope: InstrumentationScope::builder("t").build(),
        }
    }

    fn edits(list: Vec<SpanEdit>) -> SpanEdits {
        SpanEdits {
            drop: false,
            edits: list.into_iter().collect(),
        }
    }

    #[test]
    fn edits_apply_in_order_with_indexes_meaning_what_the_distro_saw() {
        let out = edits(vec![
            SpanEdit::DropEvent(0),
            SpanEdit::Set(Target::Event(1), KeyValue::new("k", "two")),
            SpanEdit::Redact(Target::Link(0), "peer.token".into()),
            SpanEdit::Redact(Target::Span, "secret".into()),
            SpanEdit::RenameAttribute(Target::Span, "a".into(), "a".into()),
            SpanEdit::RenameAttribute(Target::Span, "a".into(), "b".into()),
            SpanEdit::Set(Target::Event(9), KeyValue::new("ignored", "out of range")),
            SpanEdit::StatusMessage("[REDACTED]".into()),
        ])
        .apply(span(Status::error("token=x")))
        .unwrap();
        let names: Vec<&str> = out.events.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(names, ["b", "c"], "event 0 dropped after the other edits");
        assert_eq!(out.events.dropped_count, 1);
        assert_eq!(out.events.events[0].attributes[0].value.as_str(), "two");
        assert_eq!(out.links.links[0].attributes[0].value.as_str(), REDACTED);
        let attrs: Vec<(String, String)> = out
            .attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        assert_eq!(
            attrs,
            [("b".into(), "1".into()), ("secret".into(), REDACTED.into())],
            "renaming to itself keeps the attribute"
        );
        assert_eq!(out.status, Status::error("[REDACTED]"));
        // Only an error status has a message.
        let ok = edits(vec![SpanEdit::StatusMessage("x".into())])
            .apply(span(Status::Ok))
            .unwrap();
        assert_eq!(ok.status, Status::Ok);
        let dropped = SpanEdits {
            drop: true,
            edits: SmallVec::new(),
        };
        assert!(dropped.apply(span(Status::Unset)).is_none());
    }
}
