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
        let attributes = attributes?;
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
        Some(fresh)
    }
}

impl LogProcessor for DistroLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        match self.edit(record) {
            Outcome::Drop => {}
            Outcome::Keep => self.forward(record, scope),
            Outcome::Replace(mut fresh) => self.forward(&mut fresh, scope),
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
