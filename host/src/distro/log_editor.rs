//! The distro's log processor behind its watchdog: the host's view of a record the distro reads, the edits it
//! answers with (owned, in the SDK's types), and what becomes of the record when the call fails.

use super::faults::{Component, Faults};
use super::view::{attr_refs, nanos, to_otel_value, with_scratch};
use super::watchdog::Watched;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr};
use bumpalo::Bump;
use ndotel_api::ffi::{
    FfiLogContext, FfiLogEdits, FfiLogEdits_TO, FfiLogProcessorBox, FfiLogRecord, FfiLogRecord_TO,
};
use ndotel_api::{KeyValueRef, REDACTED, ValueRef};
use opentelemetry::logs::AnyValue;
use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::logs::SdkLogRecord;
use smallvec::SmallVec;
use std::sync::Arc;

/// A distro's log processor, as built (opaque outside this room).
pub(crate) type LogProcessorBox = FfiLogProcessorBox;

/// What the distro's log processor made of a record.
pub(crate) enum LogVerdict {
    /// No exporter sees it (dropped by the distro, or the distro failed on it and pass-through is off).
    Drop,
    /// Unchanged (the distro left it alone, or failed on it with pass-through on).
    Keep,
    /// These edits, in order.
    Edit(SmallVec<[LogEdit; 2]>),
}

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
pub(crate) enum LogEdit {
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
            Some(v) => self
                .edits
                .push(LogEdit::Set(Key::from(key.as_str().to_owned()), v)),
            None => self.edits.push(LogEdit::Redact(key.as_str().to_owned())),
        }
    }
    fn redact(&mut self, key: RStr<'_>) {
        self.edits.push(LogEdit::Redact(key.as_str().to_owned()));
    }
    fn remove_attribute(&mut self, key: RStr<'_>) {
        self.edits.push(LogEdit::Remove(key.as_str().to_owned()));
    }
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

    /// Shows `record` (with the pipeline's `resource`) to the distro's log processor under the watchdog; what to do
    /// with it. Fail closed: a call that failed, panicked or had no place drops the record unless pass-through is
    /// on, and one that answered too late drops it regardless.
    pub(crate) fn edit(&self, record: &SdkLogRecord, resource: &[KeyValue]) -> LogVerdict {
        let on_failure = if self.faults.processor_passes() {
            LogVerdict::Keep
        } else {
            LogVerdict::Drop
        };
        if self.watched.bypassed() {
            return on_failure;
        }
        let mut edits = LogEdits::default();
        let result = with_scratch(|bump| {
            let view = HostLog::new(record, resource, bump);
            let view = FfiLogRecord_TO::from_ptr(&view, TD_Opaque);
            let sink = FfiLogEdits_TO::from_ptr(&mut edits, TD_Opaque);
            let trace = record
                .trace_context()
                .map_or(0, |cx| u128::from_be_bytes(cx.trace_id.to_bytes()));
            self.watched
                .call_gated(trace, || self.plugin.on_emit(view, sink))
        });
        // No place for this thread in distro code (other calls hang): the fallback, as for a failed call.
        let Some(result) = result else {
            return on_failure;
        };
        // Too late costs the record whatever the pass-through setting says (see the span processor).
        if result.overdue {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return LogVerdict::Drop;
        }
        if let RResult::RErr(e) = result.value {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.faults.record_span_call(Component::LogProcessor, &e);
            return on_failure;
        }
        if edits.drop {
            return LogVerdict::Drop;
        }
        if edits.edits.is_empty() {
            return LogVerdict::Keep;
        }
        LogVerdict::Edit(edits.edits)
    }

    /// Tells the distro's log processor the pipeline shuts down.
    pub(crate) fn shutdown(&self) {
        if !self.watched.bypassed()
            && let RResult::RErr(e) = self.watched.call(0, || self.plugin.shutdown()).value
        {
            self.faults.record_span_call(Component::LogProcessor, &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry_sdk::logs::SdkLoggerProvider;

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
