//! The distro's log record processor in the SDK pipeline: every record passes through the distro's edits (set or
//! redact the body, set, redact or remove attributes, drop the record) before it is handed to each log exporter's
//! batch processor, so redaction happens before any exporter sees a record.
//!
//! Fail closed, as for spans: a record the processor failed on (error, panic, or stuck past its deadline, after
//! which the watchdog bypasses it) is dropped and counted, unless `OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass`.

use crate::distro::faults::{Component, Faults};
use crate::distro::log_editor::{LogEdit, LogEditor, LogProcessorBox, LogVerdict};
use crate::distro::view::resource_attributes;
use crate::distro::watchdog::Watched;
use ndotel_api::REDACTED;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::{InstrumentationScope, Key, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLogger, SdkLoggerProvider};
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::Duration;

/// What becomes of a record once the distro has seen it.
enum Outcome {
    /// No exporter sees it (dropped by the distro, or the distro failed on it).
    Drop,
    /// The exporters get it as it is (or with its body replaced in place).
    Keep,
    /// The exporters get this record instead, written afresh with the edited attributes.
    Replace(Box<SdkLogRecord>),
}

/// Where the distro's log processor in use is kept: a reload of the distro's settings swaps a new one in; each
/// record is edited by the one it loads.
pub(crate) type LogSlot = arc_swap::ArcSwap<LogEditor>;

/// The distro's log processor (if any) in front of the log exporters' processors.
pub(crate) struct DistroLogProcessor {
    editor: Option<Arc<LogSlot>>,
    resource: Vec<KeyValue>,
    next: Vec<Box<dyn LogProcessor>>,
    /// Makes the fresh records an attribute edit is written into (the SDK's records cannot drop an attribute),
    /// from a provider with no processors of its own.
    records: SdkLogger,
    /// Attributes kept per record, and characters kept of each string value
    /// (`OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT`, `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`): applied after the
    /// distro's edits.
    limits: (usize, Option<usize>),
}

impl std::fmt::Debug for DistroLogProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistroLogProcessor")
            .field("has_plugin", &self.editor.is_some())
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl DistroLogProcessor {
    pub(crate) fn new(
        plugin: Option<LogProcessorBox>,
        next: Vec<Box<dyn LogProcessor>>,
        faults: Arc<Faults>,
        call_timeout: Duration,
        limits: (usize, Option<usize>),
    ) -> Self {
        let editor = plugin.map(|plugin| {
            let watched = Watched::new(Component::LogProcessor, call_timeout, faults.clone());
            Arc::new(LogSlot::new(LogEditor::new(plugin, watched, faults)))
        });
        DistroLogProcessor {
            editor,
            resource: Vec::new(),
            next,
            records: SdkLoggerProvider::builder().build().logger("ndotel"),
            limits,
        }
    }

    /// Where its log processor is kept, for a reload to swap (`None` without a distro log processor).
    pub(crate) fn slot(&self) -> Option<Arc<LogSlot>> {
        self.editor.clone()
    }

    /// What the exporters get.
    fn edit(&self, record: &mut SdkLogRecord) -> Outcome {
        let Some(slot) = &self.editor else {
            return Outcome::Keep;
        };
        match slot.load().edit(record, &self.resource) {
            LogVerdict::Drop => Outcome::Drop,
            LogVerdict::Keep => Outcome::Keep,
            LogVerdict::Edit(edits) => match self.apply(record, edits) {
                Some(fresh) => Outcome::Replace(Box::new(fresh)),
                None => Outcome::Keep,
            },
        }
    }

    /// Hands `record` to every exporter's processor.
    fn forward(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        for p in &self.next {
            p.emit(record, scope);
        }
    }

    /// Applies the edits: the body in place, attributes by writing the record afresh (`Some`).
    fn apply(
        &self,
        record: &mut SdkLogRecord,
        edits: SmallVec<[LogEdit; 2]>,
    ) -> Option<SdkLogRecord> {
        let mut attributes: Option<Vec<(Key, AnyValue)>> = None;
        for edit in edits {
            let attrs = || {
                record
                    .attributes_iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            };
            match edit {
                LogEdit::Body(body) => record.set_body(body),
                LogEdit::Set(key, value) => {
                    let list = attributes.get_or_insert_with(attrs);
                    match list.iter_mut().find(|(k, _)| *k == key) {
                        Some(existing) => existing.1 = value,
                        None => list.push((key, value)),
                    }
                }
                LogEdit::Redact(key) => {
                    for (_, v) in attributes
                        .get_or_insert_with(attrs)
                        .iter_mut()
                        .filter(|(k, _)| k.as_str() == key)
                    {
                        *v = AnyValue::from(REDACTED);
                    }
                }
                LogEdit::Remove(key) => attributes
                    .get_or_insert_with(attrs)
                    .retain(|(k, _)| k.as_str() != key),
            }
        }
        Some(self.rebuild(record, attributes?))
    }

    /// `record` written afresh with `attributes` (the SDK's records cannot drop an attribute).
    fn rebuild(&self, record: &SdkLogRecord, attributes: Vec<(Key, AnyValue)>) -> SdkLogRecord {
        let mut fresh = self.records.create_log_record();
        if let Some(name) = record.event_name() {
            fresh.set_event_name(name);
        }
        if let Some(target) = record.target() {
            fresh.set_target(target.clone());
        }
        if let Some(t) = record.timestamp() {
            fresh.set_timestamp(t);
        }
        if let Some(t) = record.observed_timestamp() {
            fresh.set_observed_timestamp(t);
        }
        if let Some(text) = record.severity_text() {
            fresh.set_severity_text(text);
        }
        if let Some(n) = record.severity_number() {
            fresh.set_severity_number(n);
        }
        if let Some(body) = record.body() {
            fresh.set_body(body.clone());
        }
        if let Some(c) = record.trace_context() {
            fresh.set_trace_context(c.trace_id, c.span_id, c.trace_flags);
        }
        fresh.add_attributes(attributes);
        fresh
    }

    /// `record` rewritten within the attribute limits, when it is over them.
    fn limited(&self, record: &SdkLogRecord) -> Option<SdkLogRecord> {
        let (count, length) = self.limits;
        let over_count = record.attributes_iter().nth(count).is_some();
        let over_length =
            length.is_some_and(|l| record.attributes_iter().any(|(_, v)| too_long(v, l)));
        if !over_count && !over_length {
            return None;
        }
        let attributes = record
            .attributes_iter()
            .take(count)
            .map(|(k, v)| {
                let mut v = v.clone();
                if let Some(l) = length {
                    truncate(&mut v, l);
                }
                (k.clone(), v)
            })
            .collect();
        Some(self.rebuild(record, attributes))
    }

    /// Hands `record` to every exporter's processor, within the attribute limits.
    fn forward_limited(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        match self.limited(record) {
            Some(mut within) => self.forward(&mut within, scope),
            None => self.forward(record, scope),
        }
    }
}

/// Whether a string in `v` (an array's or a map's included) is longer than `limit` characters.
fn too_long(v: &AnyValue, limit: usize) -> bool {
    match v {
        AnyValue::String(s) => s.as_str().chars().nth(limit).is_some(),
        AnyValue::ListAny(list) => list.iter().any(|v| too_long(v, limit)),
        AnyValue::Map(map) => map.values().any(|v| too_long(v, limit)),
        _ => false,
    }
}

/// Cuts every string in `v` (an array's or a map's included) to `limit` characters.
fn truncate(v: &mut AnyValue, limit: usize) {
    match v {
        AnyValue::String(s) => {
            if let Some(cut) = crate::trace::processor::cut(s.as_str(), limit) {
                *s = cut.into();
            }
        }
        AnyValue::ListAny(list) => list.iter_mut().for_each(|v| truncate(v, limit)),
        AnyValue::Map(map) => map.values_mut().for_each(|v| truncate(v, limit)),
        _ => {}
    }
}

impl LogProcessor for DistroLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        match self.edit(record) {
            Outcome::Drop => {}
            Outcome::Keep => self.forward_limited(record, scope),
            Outcome::Replace(mut fresh) => self.forward_limited(&mut fresh, scope),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        crate::trace::processor::combine(self.next.iter().map(|p| p.force_flush()))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if let Some(slot) = &self.editor {
            slot.load().shutdown();
        }
        crate::trace::processor::combine(self.next.iter().map(|p| p.shutdown_with_timeout(timeout)))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource_attributes(resource);
        for p in &mut self.next {
            p.set_resource(resource);
        }
    }
}
