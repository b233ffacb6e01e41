//! The distro's log record processor in the SDK pipeline: every record passes through the distro's edits (set or
//! redact the body, set, redact or remove attributes, drop the record) before it is handed to each log exporter's
//! batch processor, so redaction happens before any exporter sees a record.
//!
//! Fail closed, as for spans: a record the processor failed on (error, panic, or stuck past its deadline, after
//! which the watchdog bypasses it) is dropped and counted, unless `OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass`.

use crate::distro::faults::{Component, Faults};
use crate::distro::watchdog::Watched;
use crate::trace::view::{attr_refs, nanos, resource_attributes, to_otel_value, with_scratch};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr};
use bumpalo::Bump;
use ndotel_api::ffi::{
    FfiLogContext, FfiLogEdits, FfiLogEdits_TO, FfiLogProcessorBox, FfiLogRecord, FfiLogRecord_TO,
};
use ndotel_api::{KeyValueRef, REDACTED, ValueRef};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::{InstrumentationScope, Key, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLogger, SdkLoggerProvider};
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::Duration;

/// A log attribute or body as the distro sees it: scalars and string arrays; maps, lists of other kinds and
/// bytes are shown as an unknown kind.
fn log_value<'a>(v: &'a AnyValue, bump: &'a Bump) -> ValueRef<'a> {
    match v {
        AnyValue::Int(i) => (*i).into(),
        AnyValue::Double(f) => (*f).into(),
        AnyValue::String(s) => s.as_str().into(),
        AnyValue::Boolean(b) => (*b).into(),
        AnyValue::ListAny(items) if items.iter().all(|i| matches!(i, AnyValue::String(_))) => {
            let items: &[RStr<'a>] = bump.alloc_slice_fill_iter(items.iter().map(|i| match i {
                AnyValue::String(s) => RStr::from_str(s.as_str()),
                _ => RStr::from_str(""),
            }));
            items.into()
        }
        _ => ndotel_api::AnyValue::Unknown.into(),
    }
}

/// An attribute value set by the distro, as a log value.
fn to_log_value(v: ValueRef<'_>) -> Option<AnyValue> {
    Some(match to_otel_value(v)? {
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::I64(i) => AnyValue::Int(i),
        Value::F64(f) => AnyValue::Double(f),
        Value::String(s) => AnyValue::String(s),
        Value::Array(a) => AnyValue::ListAny(Box::new(match a {
            opentelemetry::Array::Bool(v) => v.into_iter().map(AnyValue::Boolean).collect(),
            opentelemetry::Array::I64(v) => v.into_iter().map(AnyValue::Int).collect(),
            opentelemetry::Array::F64(v) => v.into_iter().map(AnyValue::Double).collect(),
            opentelemetry::Array::String(v) => v.into_iter().map(AnyValue::String).collect(),
            _ => return None,
        })),
        _ => return None,
    })
}

/// An SDK log record as the distro sees it. The body and attributes are converted up front (a redacting distro
/// reads them all); the resource only if the distro asks for it, as in the span view.
struct HostLog<'a> {
    record: &'a SdkLogRecord,
    body: Option<ValueRef<'a>>,
    attributes: &'a [KeyValueRef<'a>],
    resource: &'a [KeyValue],
    resource_refs: std::cell::OnceCell<&'a [KeyValueRef<'a>]>,
    bump: &'a Bump,
}

impl<'a> HostLog<'a> {
    fn new(record: &'a SdkLogRecord, resource: &'a [KeyValue], bump: &'a Bump) -> Self {
        HostLog {
            record,
            body: record.body().map(|b| log_value(b, bump)),
            attributes: bump.alloc_slice_copy(
                &record
                    .attributes_iter()
                    .map(|(k, v)| KeyValueRef {
                        key: k.as_str().into(),
                        value: log_value(v, bump),
                    })
                    .collect::<SmallVec<[KeyValueRef<'a>; 8]>>(),
            ),
            resource,
            resource_refs: std::cell::OnceCell::new(),
            bump,
        }
    }
}

impl FfiLogRecord for HostLog<'_> {
    fn severity_number(&self) -> u8 {
        self.record.severity_number().map_or(0, |s| s as u8)
    }
    fn severity_text(&self) -> RStr<'_> {
        self.record.severity_text().unwrap_or("").into()
    }
    fn body(&self) -> ROption<ValueRef<'_>> {
        self.body.into()
    }
    fn attributes(&self) -> RSlice<'_, KeyValueRef<'_>> {
        self.attributes.into()
    }
    fn context(&self) -> FfiLogContext {
        match self.record.trace_context() {
            Some(c) => FfiLogContext {
                trace_id: c.trace_id.to_bytes(),
                span_id: c.span_id.to_bytes(),
                flags: 2 | c.trace_flags.is_some_and(|f| f.is_sampled()) as u32,
            },
            None => FfiLogContext::default(),
        }
    }
    fn target(&self) -> RStr<'_> {
        self.record.target().map_or("", |t| t.as_ref()).into()
    }
    fn event_name(&self) -> RStr<'_> {
        self.record.event_name().unwrap_or("").into()
    }
    fn time_unix_nanos(&self) -> u64 {
        self.record
            .timestamp()
            .or(self.record.observed_timestamp())
            .map_or(0, nanos)
    }
    fn resource(&self) -> RSlice<'_, KeyValueRef<'_>> {
        RSlice::from_slice(
            self.resource_refs
                .get_or_init(|| attr_refs(self.resource, self.bump)),
        )
    }
}

/// One recorded edit, with owned values (the record is borrowed while the distro runs).
#[derive(Debug)]
enum LogEdit {
    Body(AnyValue),
    Set(Key, AnyValue),
    Redact(String),
    Remove(String),
}

/// The edits a distro's processor made to one record; empty (and allocation-free) for a record left alone.
#[derive(Debug, Default)]
struct LogEdits {
    drop: bool,
    edits: SmallVec<[LogEdit; 2]>,
}

impl FfiLogEdits for LogEdits {
    fn drop_record(&mut self) {
        self.drop = true;
    }
    fn set_body(&mut self, body: ValueRef<'_>) {
        match to_log_value(body) {
            Some(v) => self.edits.push(LogEdit::Body(v)),
            // A body this host cannot represent must not leave the old one in place.
            None => self.edits.push(LogEdit::Body(AnyValue::from(REDACTED))),
        }
    }
    fn set(&mut self, key: RStr<'_>, value: ValueRef<'_>) {
        match to_log_value(value) {
            Some(v) => self.edits.push(LogEdit::Set(Key::from(key.to_string()), v)),
            None => self.edits.push(LogEdit::Redact(key.to_string())),
        }
    }
    fn redact(&mut self, key: RStr<'_>) {
        self.edits.push(LogEdit::Redact(key.to_string()));
    }
    fn remove_attribute(&mut self, key: RStr<'_>) {
        self.edits.push(LogEdit::Remove(key.to_string()));
    }
}

/// What becomes of a record once the distro has seen it.
enum Outcome {
    /// No exporter sees it (dropped by the distro, or the distro failed on it).
    Drop,
    /// The exporters get it as it is (or with its body replaced in place).
    Keep,
    /// The exporters get this record instead, written afresh with the edited attributes.
    Replace(Box<SdkLogRecord>),
}

/// The distro's log processor behind its watchdog.
pub(crate) struct LogEditor {
    plugin: FfiLogProcessorBox,
    watched: Arc<Watched>,
    faults: Arc<Faults>,
    /// Its own failures (errors, panics, late answers): what a reload's health window judges it by.
    failures: std::sync::atomic::AtomicU64,
}

impl LogEditor {
    /// `plugin` under the watchdog entry `watched` (a reload's new log processor shares the old one's).
    pub(crate) fn new(
        plugin: FfiLogProcessorBox,
        watched: Arc<Watched>,
        faults: Arc<Faults>,
    ) -> Arc<Self> {
        Arc::new(LogEditor {
            plugin,
            watched,
            faults,
            failures: Default::default(),
        })
    }

    /// Its own failures so far.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Its watchdog entry.
    pub(crate) fn watched(&self) -> Arc<Watched> {
        self.watched.clone()
    }
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
        plugin: Option<FfiLogProcessorBox>,
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
        let editor = &*slot.load();
        let on_failure = if editor.faults.processor_passes() {
            Outcome::Keep
        } else {
            Outcome::Drop
        };
        if editor.watched.bypassed() {
            return on_failure;
        }
        let mut edits = LogEdits::default();
        let result = with_scratch(|bump| {
            let view = HostLog::new(record, &self.resource, bump);
            let view = FfiLogRecord_TO::from_ptr(&view, TD_Opaque);
            let sink = FfiLogEdits_TO::from_ptr(&mut edits, TD_Opaque);
            let trace = record
                .trace_context()
                .map_or(0, |cx| u128::from_be_bytes(cx.trace_id.to_bytes()));
            editor
                .watched
                .call_gated(trace, || editor.plugin.on_emit(view, sink))
        });
        // No place for this thread in distro code (other calls hang): the fallback, as for a failed call.
        let Some(result) = result else {
            return on_failure;
        };
        // Too late costs the record whatever the pass-through setting says (see the span processor).
        if result.overdue {
            editor
                .failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Outcome::Drop;
        }
        if let RResult::RErr(e) = result.value {
            editor
                .failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            editor.faults.record_span_call(Component::LogProcessor, &e);
            return on_failure;
        }
        if edits.drop {
            return Outcome::Drop;
        }
        match self.apply(record, edits.edits) {
            Some(fresh) => Outcome::Replace(Box::new(fresh)),
            None => Outcome::Keep,
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
        if let Some(slot) = &self.editor
            && let editor = slot.load()
            && !editor.watched.bypassed()
            && let RResult::RErr(e) = editor.watched.call(0, || editor.plugin.shutdown()).value
        {
            editor.faults.record_span_call(Component::LogProcessor, &e);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_shows_the_record_and_its_resource() {
        let logger = SdkLoggerProvider::builder().build().logger("t");
        let mut record = logger.create_log_record();
        record.set_body(AnyValue::from("hello"));
        record.add_attribute("k", "v");
        let resource = [KeyValue::new("service.name", "svc")];
        let bump = Bump::new();
        let view = HostLog::new(&record, &resource, &bump);
        assert_eq!(
            view.body.map(|b| b.get()),
            Some(ndotel_api::AnyValue::Str("hello"))
        );
        assert_eq!(view.attributes().len(), 1);
        let shown = view.resource();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].key.as_str(), "service.name");
        assert_eq!(shown[0].value.get(), ndotel_api::AnyValue::Str("svc"));
        // Asked twice, converted once.
        assert_eq!(view.resource().as_ptr(), shown.as_ptr());
    }
}
