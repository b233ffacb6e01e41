//! What a distro sees of a log record ([`LogView`], borrowed from the host's record) and how it changes one
//! ([`LogEdits`]). Since 1.4.

use crate::ffi::{FfiLogEditsMut, FfiLogRecordRef};
use crate::types::{KeyValueRef, ValueRef, find_attribute};
use abi_stable::std_types::RStr;
use std::fmt;

/// A borrowed view of a log record on its way to the exporters: severity, body, attributes, trace context,
/// where it came from and the resource.
#[repr(transparent)]
pub struct LogView<'a>(FfiLogRecordRef<'a>);

impl<'a> LogView<'a> {
    /// Views the host's record object (used by the host and the testing kit).
    #[doc(hidden)]
    pub fn from_ffi<'r>(record: &'r FfiLogRecordRef<'a>) -> &'r LogView<'a> {
        // SAFETY: LogView is a repr(transparent) wrapper around FfiLogRecordRef.
        unsafe { &*(record as *const FfiLogRecordRef<'a>).cast::<LogView<'a>>() }
    }

    /// The severity number as the OpenTelemetry specification numbers them: 1–4 TRACE, 5–8 DEBUG, 9–12 INFO,
    /// 13–16 WARN, 17–20 ERROR, 21–24 FATAL; 0 when the record has none.
    pub fn severity_number(&self) -> u8 {
        self.0.severity_number()
    }
    /// The severity as the source wrote it (`INFO`, `warning`, …; empty when unset).
    pub fn severity_text(&self) -> &str {
        self.0.severity_text().as_str()
    }
    /// The body (the message); `None` when the record has none, or a body this API cannot show (a map or a list).
    pub fn body(&self) -> Option<ValueRef<'_>> {
        self.0.body().into_option()
    }
    /// The body when it is a string.
    pub fn body_str(&self) -> Option<&str> {
        self.body().and_then(|b| b.as_str())
    }
    /// The attributes.
    pub fn attributes(&self) -> &[KeyValueRef<'_>] {
        self.0.attributes().as_slice()
    }
    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<ValueRef<'_>> {
        find_attribute(self.attributes(), key)
    }
    /// The trace and span the record was emitted in, if any.
    pub fn trace_context(&self) -> Option<([u8; 16], [u8; 8])> {
        let c = self.0.context();
        (c.flags & 2 != 0).then_some((c.trace_id, c.span_id))
    }
    /// Whether the span the record was emitted in is sampled (false without a trace context).
    pub fn sampled(&self) -> bool {
        self.0.context().flags & 3 == 3
    }
    /// Where the record came from: the `tracing` target or logger name (empty when unknown).
    pub fn target(&self) -> &str {
        self.0.target().as_str()
    }
    /// The event name (empty when unset).
    pub fn event_name(&self) -> &str {
        self.0.event_name().as_str()
    }
    /// When the event happened, in nanoseconds since the Unix epoch (0 when unknown).
    pub fn time_unix_nanos(&self) -> u64 {
        self.0.time_unix_nanos()
    }
    /// The resource attributes of the process.
    pub fn resource(&self) -> &[KeyValueRef<'_>] {
        self.0.resource().as_slice()
    }
}

impl fmt::Debug for LogView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogView")
            .field("severity_number", &self.severity_number())
            .field("target", &self.target())
            .field("attributes", &self.attributes().len())
            .finish_non_exhaustive()
    }
}

/// The edits a log processor makes to one record, applied by the host before any exporter sees it. A record left
/// alone costs no allocation.
pub struct LogEdits<'a>(FfiLogEditsMut<'a>);

impl<'a> LogEdits<'a> {
    /// Wraps the host's edit sink.
    #[doc(hidden)]
    pub fn from_ffi(edits: FfiLogEditsMut<'a>) -> Self {
        LogEdits(edits)
    }
    /// Drops the record: no exporter sees it.
    pub fn drop_record(&mut self) {
        self.0.drop_record();
    }
    /// Replaces the body.
    pub fn set_body<'v>(&mut self, body: impl Into<ValueRef<'v>>) {
        self.0.set_body(body.into());
    }
    /// Replaces the body with [`REDACTED`](crate::REDACTED).
    pub fn redact_body(&mut self) {
        self.0.set_body(ValueRef::from(crate::REDACTED));
    }
    /// Sets attribute `key` (replacing it when present).
    pub fn set<'v>(&mut self, key: &str, value: impl Into<ValueRef<'v>>) {
        self.0.set(RStr::from_str(key), value.into());
    }
    /// Replaces the value of attribute `key` with [`REDACTED`](crate::REDACTED).
    pub fn redact(&mut self, key: &str) {
        self.0.redact(RStr::from_str(key));
    }
    /// Removes attribute `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.remove_attribute(RStr::from_str(key));
    }
}

impl fmt::Debug for LogEdits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogEdits").finish_non_exhaustive()
    }
}
