//! The FFI-safe value types: borrowed views of spans and attributes, owned attributes, decisions, edits and errors.
//! Everything here is `#[repr(C)]` or `#[repr(u8)]` and checked for layout when a plugin loads.

use abi_stable::StableAbi;
use abi_stable::std_types::{RSlice, RStr, RString, RVec};
use std::fmt;

/// A borrowed attribute value. Values the boundary cannot borrow (arrays) arrive as [`ValueRef::Other`].
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// A string.
    Str(RStr<'a>),
    /// A value of another type (an array), not visible through the boundary.
    Other,
}

impl<'a> ValueRef<'a> {
    /// The string, when this is a string value.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            ValueRef::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }
}

impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::Bool(v) => write!(f, "{v}"),
            ValueRef::I64(v) => write!(f, "{v}"),
            ValueRef::F64(v) => write!(f, "{v}"),
            ValueRef::Str(v) => f.write_str(v.as_str()),
            ValueRef::Other => f.write_str("<array>"),
        }
    }
}

/// A borrowed attribute.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct KeyValueRef<'a> {
    /// The attribute key.
    pub key: RStr<'a>,
    /// The attribute value.
    pub value: ValueRef<'a>,
}

/// Finds the value of `key` among borrowed attributes.
///
/// ```
/// use ndotel_api::{find_attribute, KeyValueRef, ValueRef};
/// let attrs = [KeyValueRef { key: "url.path".into(), value: ValueRef::Str("/health".into()) }];
/// assert_eq!(find_attribute(&attrs, "url.path").and_then(|v| v.as_str()), Some("/health"));
/// ```
pub fn find_attribute<'a>(attributes: &[KeyValueRef<'a>], key: &str) -> Option<ValueRef<'a>> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value)
}

/// An owned attribute value, for the few places where a result needs owned data.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// A string.
    Str(RString),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s.into())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}

/// An owned attribute.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// The attribute key.
    pub key: RString,
    /// The attribute value.
    pub value: Value,
}

impl KeyValue {
    /// Builds an attribute.
    ///
    /// ```
    /// let kv = ndotel_api::KeyValue::new("deployment.environment.name", "prod");
    /// assert_eq!(kv.key.as_str(), "deployment.environment.name");
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> Self {
        KeyValue {
            key: key.into().into(),
            value: value.into(),
        }
    }
}

/// The span kind, as in the OpenTelemetry specification.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// An internal operation.
    Internal,
    /// The server side of a request.
    Server,
    /// The client side of a request.
    Client,
    /// A message producer.
    Producer,
    /// A message consumer.
    Consumer,
}

/// Where the parent of a span to be sampled is.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentKind {
    /// The span is a root.
    None,
    /// The parent span lives in this process.
    Local,
    /// The parent span came from another process (e.g. `traceparent`).
    Remote,
}

/// What a sampler sees of a span about to start.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct SamplingParams<'a> {
    /// The trace id (big-endian bytes).
    pub trace_id: [u8; 16],
    /// Whether there is a parent, and where.
    pub parent: ParentKind,
    /// Whether the parent was sampled (false for roots).
    pub parent_sampled: bool,
    /// The span name.
    pub name: RStr<'a>,
    /// The span kind.
    pub kind: SpanKind,
    /// The attributes known at start.
    pub attributes: RSlice<'a, KeyValueRef<'a>>,
}

/// A sampling decision.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not recorded, not exported; children inherit the decision through parent-based sampling.
    Drop,
    /// Recorded (processors see it) but not exported.
    RecordOnly,
    /// Recorded and exported.
    RecordAndSample,
}

/// The status of a finished span.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    /// Not set.
    Unset,
    /// Explicitly OK.
    Ok,
    /// An error.
    Error,
}

/// A borrowed view of a finished span.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct SpanView<'a> {
    /// The trace id (big-endian bytes).
    pub trace_id: [u8; 16],
    /// The span id.
    pub span_id: [u8; 8],
    /// The parent span id (all zero for a root).
    pub parent_span_id: [u8; 8],
    /// Whether the parent came from another process.
    pub parent_is_remote: bool,
    /// Whether the span is sampled.
    pub sampled: bool,
    /// The span name.
    pub name: RStr<'a>,
    /// The span kind.
    pub kind: SpanKind,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// The attributes.
    pub attributes: RSlice<'a, KeyValueRef<'a>>,
    /// The status code.
    pub status: StatusCode,
    /// The status description (empty unless the status is an error).
    pub status_message: RStr<'a>,
    /// The instrumentation scope name.
    pub scope_name: RStr<'a>,
    /// How many events the span holds.
    pub event_count: u32,
}

impl<'a> SpanView<'a> {
    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<ValueRef<'a>> {
        find_attribute(self.attributes.as_slice(), key)
    }
}

/// One change a span processor asks the host to make to a finished span.
#[repr(C, u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub enum SpanEdit {
    /// Drop the span: no exporter sees it.
    Drop,
    /// Rename the span.
    Rename(RString),
    /// Set (add or replace) an attribute.
    Set(KeyValue),
    /// Replace the value of the attribute with this key by the string `[REDACTED]`.
    Redact(RString),
}

/// The replacement the host writes for a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// The edits a span processor makes to one span. Empty (and allocation-free) for a span left alone.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq)]
pub struct Edits(pub RVec<SpanEdit>);

impl Edits {
    /// No edits.
    pub fn new() -> Self {
        Edits(RVec::new())
    }
    /// Drop the span.
    pub fn drop_span(&mut self) {
        self.0.push(SpanEdit::Drop);
    }
    /// Rename the span.
    pub fn rename(&mut self, name: impl Into<String>) {
        self.0.push(SpanEdit::Rename(name.into().into()));
    }
    /// Set an attribute.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.0.push(SpanEdit::Set(KeyValue::new(key, value)));
    }
    /// Redact the value of an attribute.
    pub fn redact(&mut self, key: &str) {
        self.0.push(SpanEdit::Redact(key.into()));
    }
    /// Whether nothing is to change.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The edits, in order.
    pub fn as_slice(&self) -> &[SpanEdit] {
        self.0.as_slice()
    }
}

/// The aggregation temporality a metric exporter wants.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// Totals since start.
    Cumulative,
    /// Changes since the previous export.
    Delta,
}

/// Why a call into a plugin failed.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The component returned an error.
    Failed,
    /// The component panicked; the panic was caught at the boundary.
    Panicked,
}

/// The one flat error value that crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct FfiError {
    /// Failure or caught panic.
    pub kind: ErrorKind,
    /// What went wrong, for humans.
    pub message: RString,
}

impl FfiError {
    /// A plain failure.
    pub fn failed(message: impl fmt::Display) -> Self {
        FfiError {
            kind: ErrorKind::Failed,
            message: message.to_string().into(),
        }
    }
}

impl fmt::Display for FfiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Failed => f.write_str(&self.message),
            ErrorKind::Panicked => write!(f, "panicked: {}", self.message),
        }
    }
}

impl std::error::Error for FfiError {}
