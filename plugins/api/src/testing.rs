//! A testing kit for distro authors: run a sampler, span processor or span exporter over spans built in a unit
//! test (and a log processor over records, [`process_log`]) and assert on the decisions and edits, without the host. The views your code sees here are the same types,
//! read through the same boundary calls, as under the host.
//!
//! ```
//! use ndotel_api::testing::{self, Edit, Target, TestSpan};
//! use ndotel_api::{Edits, SpanProcessor, SpanView};
//!
//! struct RedactPasswords;
//! impl SpanProcessor for RedactPasswords {
//!     fn on_end(&self, span: &SpanView<'_>, edits: &mut Edits<'_>) {
//!         for (i, event) in span.events().enumerate() {
//!             if event.attribute("password").is_some() {
//!                 edits.redact_event_attribute(i, "password");
//!             }
//!         }
//!     }
//! }
//!
//! let span = TestSpan::new("login").event("attempt", vec![ndotel_api::KeyValue::new("password", "hunter2")]);
//! assert_eq!(
//!     testing::process(&RedactPasswords, &span),
//!     [Edit::Redact { target: Target::Event(0), key: "password".into() }]
//! );
//! assert!(testing::process(&RedactPasswords, &TestSpan::new("other")).is_empty());
//! ```

use crate::ffi::{
    FfiEdits, FfiEdits_TO, FfiEvent, FfiLink, FfiSamplingParams, FfiSamplingParams_TO, FfiSpan,
    FfiSpan_TO, FfiSpanIds, FfiSpanRef, FfiTarget, FfiTraceId,
};
use crate::types::{
    Decision, KeyValue, KeyValueRef, ParentKind, SpanKind, StatusCode, Value, ValueRef,
};
use crate::view::{Edits, SamplingParams, SpanView};
use crate::{BoxError, Sampler, SpanExporter, SpanProcessor};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RSlice, RStr};

/// A span built in a test. Ids are fixed non-zero values unless set; times are 1 s and 2 s after the epoch.
#[derive(Debug, Clone)]
pub struct TestSpan {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The span id.
    pub span_id: [u8; 8],
    /// The parent span id (zero: a root).
    pub parent_span_id: [u8; 8],
    /// Whether the parent is remote.
    pub parent_is_remote: bool,
    /// Whether the span is sampled.
    pub sampled: bool,
    /// The name.
    pub name: String,
    /// The kind.
    pub kind: SpanKind,
    /// Start and end, nanoseconds since the epoch.
    pub times: (u64, u64),
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// Events: name and attributes.
    pub events: Vec<(String, Vec<KeyValue>)>,
    /// Links: trace id, span id and attributes.
    pub links: Vec<([u8; 16], [u8; 8], Vec<KeyValue>)>,
    /// Status code and message.
    pub status: (StatusCode, String),
    /// Instrumentation scope name and version.
    pub scope: (String, String),
    /// Resource attributes.
    pub resource: Vec<KeyValue>,
}

impl TestSpan {
    /// An internal, sampled root span with nothing else.
    pub fn new(name: &str) -> Self {
        TestSpan {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: [0; 8],
            parent_is_remote: false,
            sampled: true,
            name: name.into(),
            kind: SpanKind::Internal,
            times: (1_000_000_000, 2_000_000_000),
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            status: (StatusCode::Unset, String::new()),
            scope: ("test".into(), String::new()),
            resource: Vec::new(),
        }
    }
    /// Sets the kind.
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }
    /// Adds an attribute.
    pub fn attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }
    /// Adds an event.
    pub fn event(mut self, name: &str, attributes: Vec<KeyValue>) -> Self {
        self.events.push((name.into(), attributes));
        self
    }
    /// Adds a link.
    pub fn link(mut self, trace_id: [u8; 16], span_id: [u8; 8], attributes: Vec<KeyValue>) -> Self {
        self.links.push((trace_id, span_id, attributes));
        self
    }
    /// Sets the status.
    pub fn status(mut self, code: StatusCode, message: &str) -> Self {
        self.status = (code, message.into());
        self
    }
    /// Adds a resource attribute.
    pub fn resource_attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.resource.push(KeyValue::new(key, value));
        self
    }
}

/// What an edit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// The span's own attributes.
    Span,
    /// The attributes of event `n`.
    Event(usize),
    /// The attributes of link `n`.
    Link(usize),
}

/// One edit a processor made, as recorded by [`process`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Edit {
    /// [`Edits::drop_span`].
    DropSpan,
    /// [`Edits::rename`].
    RenameSpan(String),
    /// `set` on the span, an event or a link.
    Set {
        /// Where.
        target: Target,
        /// The key.
        key: String,
        /// The value.
        value: Value,
    },
    /// `redact` on the span, an event or a link.
    Redact {
        /// Where.
        target: Target,
        /// The key.
        key: String,
    },
    /// `rename_attribute` on the span, an event or a link.
    RenameAttribute {
        /// Where.
        target: Target,
        /// The old key.
        from: String,
        /// The new key.
        to: String,
    },
    /// [`Edits::remove`].
    Remove {
        /// Where.
        target: Target,
        /// The key.
        key: String,
    },
    /// [`Edits::drop_event`].
    DropEvent(usize),
    /// [`Edits::set_status_message`] (and `redact_status_message`, with [`REDACTED`](crate::REDACTED)).
    SetStatusMessage(String),
}

/// The string arrays of a list of attributes, borrowed (one entry per attribute, empty for other values).
fn str_arrays(attributes: &[KeyValue]) -> Vec<Vec<RStr<'_>>> {
    attributes
        .iter()
        .map(|kv| match &kv.value {
            Value::StrArray(v) => v.iter().map(|s| RStr::from_str(s)).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn refs<'a>(attributes: &'a [KeyValue], arrays: &'a [Vec<RStr<'a>>]) -> Vec<KeyValueRef<'a>> {
    attributes
        .iter()
        .zip(arrays)
        .map(|(kv, array)| KeyValueRef::new(&kv.key, value_ref(&kv.value, array)))
        .collect()
}

/// `value` borrowed (`array`: its strings when it is a string array).
fn value_ref<'a>(value: &'a Value, array: &'a [RStr<'a>]) -> ValueRef<'a> {
    match value {
        Value::Bool(v) => (*v).into(),
        Value::I64(v) => (*v).into(),
        Value::F64(v) => (*v).into(),
        Value::Str(v) => v.as_str().into(),
        Value::BoolArray(v) => v.as_slice().into(),
        Value::I64Array(v) => v.as_slice().into(),
        Value::F64Array(v) => v.as_slice().into(),
        Value::StrArray(_) => array.into(),
    }
}

/// Borrowed storage for one attribute list.
struct Stored<'a> {
    arrays: Vec<Vec<RStr<'a>>>,
    attributes: &'a [KeyValue],
}

impl<'a> Stored<'a> {
    fn new(attributes: &'a [KeyValue]) -> Self {
        Stored {
            arrays: str_arrays(attributes),
            attributes,
        }
    }
    fn refs(&self) -> Vec<KeyValueRef<'_>> {
        refs(self.attributes, &self.arrays)
    }
}

struct View<'a> {
    span: &'a TestSpan,
    attributes: Vec<KeyValueRef<'a>>,
    events: Vec<FfiEvent<'a>>,
    links: Vec<FfiLink<'a>>,
    resource: Vec<KeyValueRef<'a>>,
}

impl FfiSpan for View<'_> {
    fn ids(&self) -> FfiSpanIds {
        FfiSpanIds {
            trace_id: self.span.trace_id,
            span_id: self.span.span_id,
            parent_span_id: self.span.parent_span_id,
            flags: self.span.sampled as u32 | (self.span.parent_is_remote as u32) << 1,
        }
    }
    fn name(&self) -> RStr<'_> {
        self.span.name.as_str().into()
    }
    fn kind(&self) -> u8 {
        self.span.kind.code()
    }
    fn start_unix_nanos(&self) -> u64 {
        self.span.times.0
    }
    fn end_unix_nanos(&self) -> u64 {
        self.span.times.1
    }
    fn attributes(&self) -> RSlice<'_, KeyValueRef<'_>> {
        self.attributes.as_slice().into()
    }
    fn events(&self) -> RSlice<'_, FfiEvent<'_>> {
        self.events.as_slice().into()
    }
    fn links(&self) -> RSlice<'_, FfiLink<'_>> {
        self.links.as_slice().into()
    }
    fn status_code(&self) -> u8 {
        self.span.status.0.code()
    }
    fn status_message(&self) -> RStr<'_> {
        self.span.status.1.as_str().into()
    }
    fn scope_name(&self) -> RStr<'_> {
        self.span.scope.0.as_str().into()
    }
    fn scope_version(&self) -> RStr<'_> {
        self.span.scope.1.as_str().into()
    }
    fn resource(&self) -> RSlice<'_, KeyValueRef<'_>> {
        self.resource.as_slice().into()
    }
}

/// Storage for every attribute list of a span, so that views can borrow it.
struct SpanStore<'a> {
    attributes: Stored<'a>,
    events: Vec<Stored<'a>>,
    links: Vec<Stored<'a>>,
    resource: Stored<'a>,
}

impl<'a> SpanStore<'a> {
    fn new(span: &'a TestSpan) -> Self {
        SpanStore {
            attributes: Stored::new(&span.attributes),
            events: span.events.iter().map(|(_, a)| Stored::new(a)).collect(),
            links: span.links.iter().map(|(_, _, a)| Stored::new(a)).collect(),
            resource: Stored::new(&span.resource),
        }
    }
}

struct RefStore<'a> {
    events: Vec<Vec<KeyValueRef<'a>>>,
    links: Vec<Vec<KeyValueRef<'a>>>,
}

impl<'a> RefStore<'a> {
    fn new(store: &'a SpanStore<'a>) -> Self {
        RefStore {
            events: store.events.iter().map(Stored::refs).collect(),
            links: store.links.iter().map(Stored::refs).collect(),
        }
    }
}

fn view<'a>(span: &'a TestSpan, store: &'a SpanStore<'a>, refs: &'a RefStore<'a>) -> View<'a> {
    View {
        span,
        attributes: store.attributes.refs(),
        events: span
            .events
            .iter()
            .zip(&refs.events)
            .map(|((name, _), attributes)| FfiEvent {
                name: name.as_str().into(),
                time_unix_nanos: span.times.0,
                attributes: attributes.as_slice().into(),
            })
            .collect(),
        links: span
            .links
            .iter()
            .zip(&refs.links)
            .map(|((trace_id, span_id, _), attributes)| FfiLink {
                trace_id: *trace_id,
                span_id: *span_id,
                flags: 1,
                attributes: attributes.as_slice().into(),
            })
            .collect(),
        resource: store.resource.refs(),
    }
}

struct Recorder(Vec<Edit>);

fn target(t: FfiTarget) -> Target {
    match t.kind {
        1 => Target::Event(t.index as usize),
        2 => Target::Link(t.index as usize),
        _ => Target::Span,
    }
}

impl FfiEdits for Recorder {
    fn drop_span(&mut self) {
        self.0.push(Edit::DropSpan);
    }
    fn rename_span(&mut self, name: RStr<'_>) {
        self.0.push(Edit::RenameSpan(name.to_string()));
    }
    fn set(&mut self, t: FfiTarget, key: RStr<'_>, value: ValueRef<'_>) {
        if let Some(value) = Value::from_ref(value) {
            self.0.push(Edit::Set {
                target: target(t),
                key: key.to_string(),
                value,
            });
        }
    }
    fn redact(&mut self, t: FfiTarget, key: RStr<'_>) {
        self.0.push(Edit::Redact {
            target: target(t),
            key: key.to_string(),
        });
    }
    fn rename_attribute(&mut self, t: FfiTarget, from: RStr<'_>, to: RStr<'_>) {
        self.0.push(Edit::RenameAttribute {
            target: target(t),
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    fn remove_attribute(&mut self, t: FfiTarget, key: RStr<'_>) {
        self.0.push(Edit::Remove {
            target: target(t),
            key: key.to_string(),
        });
    }
    fn drop_event(&mut self, index: u32) {
        self.0.push(Edit::DropEvent(index as usize));
    }
    fn set_status_message(&mut self, message: RStr<'_>) {
        self.0.push(Edit::SetStatusMessage(message.to_string()));
    }
}

/// Runs `processor.on_end` over `span` and returns the edits it made, in order (empty: the span is left alone).
/// A panic in the processor propagates, so the test fails.
pub fn process(processor: &dyn SpanProcessor, span: &TestSpan) -> Vec<Edit> {
    let store = SpanStore::new(span);
    let refs = RefStore::new(&store);
    let view = view(span, &store, &refs);
    let ffi = FfiSpan_TO::from_ptr(&view, TD_Opaque);
    let mut recorder = Recorder(Vec::new());
    let mut edits = Edits::from_ffi(FfiEdits_TO::from_ptr(&mut recorder, TD_Opaque));
    processor.on_end(SpanView::from_ffi(&ffi), &mut edits);
    drop(edits);
    recorder.0
}

/// Exports `spans` as one batch through `exporter`.
pub fn export(exporter: &dyn SpanExporter, spans: &[TestSpan]) -> Result<(), BoxError> {
    let stores: Vec<SpanStore<'_>> = spans.iter().map(SpanStore::new).collect();
    let refs: Vec<RefStore<'_>> = stores.iter().map(RefStore::new).collect();
    let views: Vec<View<'_>> = spans
        .iter()
        .zip(&stores)
        .zip(&refs)
        .map(|((span, store), refs)| view(span, store, refs))
        .collect();
    let ffi: Vec<FfiSpanRef<'_>> = views
        .iter()
        .map(|v| FfiSpan_TO::from_ptr(v, TD_Opaque))
        .collect();
    exporter.export(SpanView::slice_from_ffi(&ffi))
}

/// A span about to start, for [`sample`]. A root unless `parent` is set.
#[derive(Debug, Clone)]
pub struct TestParams {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The parent: where, and whether it was sampled.
    pub parent: (ParentKind, bool),
    /// The name.
    pub name: String,
    /// The kind.
    pub kind: SpanKind,
    /// Attributes known at start.
    pub attributes: Vec<KeyValue>,
}

impl TestParams {
    /// A root span of kind internal.
    pub fn new(name: &str) -> Self {
        TestParams {
            trace_id: [1; 16],
            parent: (ParentKind::None, false),
            name: name.into(),
            kind: SpanKind::Internal,
            attributes: Vec::new(),
        }
    }
    /// Sets the kind.
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }
    /// Adds an attribute.
    pub fn attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }
    /// Sets the parent.
    pub fn parent(mut self, kind: ParentKind, sampled: bool) -> Self {
        self.parent = (kind, sampled);
        self
    }
    /// Sets the trace id.
    pub fn trace_id(mut self, trace_id: [u8; 16]) -> Self {
        self.trace_id = trace_id;
        self
    }
}

struct ParamsView<'a> {
    params: &'a TestParams,
    attributes: Vec<KeyValueRef<'a>>,
}

impl FfiSamplingParams for ParamsView<'_> {
    fn trace_id(&self) -> FfiTraceId {
        FfiTraceId(self.params.trace_id)
    }
    fn parent_kind(&self) -> u8 {
        self.params.parent.0.code()
    }
    fn parent_sampled(&self) -> bool {
        self.params.parent.1
    }
    fn name(&self) -> RStr<'_> {
        self.params.name.as_str().into()
    }
    fn kind(&self) -> u8 {
        self.params.kind.code()
    }
    fn attributes(&self) -> RSlice<'_, KeyValueRef<'_>> {
        self.attributes.as_slice().into()
    }
    fn links(&self) -> RSlice<'_, FfiLink<'_>> {
        RSlice::EMPTY
    }
}

/// The decision `sampler` makes for `params`.
pub fn sample(sampler: &dyn Sampler, params: &TestParams) -> Decision {
    let store = Stored::new(&params.attributes);
    let view = ParamsView {
        params,
        attributes: store.refs(),
    };
    let ffi = FfiSamplingParams_TO::from_ptr(&view, TD_Opaque);
    sampler.should_sample(SamplingParams::from_ffi(&ffi))
}

/// Runs `sampler`'s [`Sampler::intent`] (since 1.6) over `params`, as the host's composite
/// sampler would.
pub fn intent(sampler: &dyn Sampler, params: &TestParams) -> crate::sampling::SamplingIntent {
    let store = Stored::new(&params.attributes);
    let view = ParamsView {
        params,
        attributes: store.refs(),
    };
    let ffi = FfiSamplingParams_TO::from_ptr(&view, TD_Opaque);
    sampler.intent(SamplingParams::from_ffi(&ffi))
}

/// A log record built in a test (since 1.4): an INFO record with a string body, no trace context, at 1 s after
/// the epoch.
#[derive(Debug, Clone)]
pub struct TestLog {
    /// Severity number (1–24, 0 unset) and text.
    pub severity: (u8, String),
    /// The body (`None`: no body).
    pub body: Option<Value>,
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// Trace id and span id of the span the record was emitted in.
    pub context: Option<([u8; 16], [u8; 8])>,
    /// The target.
    pub target: String,
    /// Resource attributes.
    pub resource: Vec<KeyValue>,
}

impl TestLog {
    /// An INFO record with this body.
    pub fn new(body: &str) -> Self {
        TestLog {
            severity: (9, "INFO".into()),
            body: Some(Value::from(body)),
            attributes: Vec::new(),
            context: None,
            target: String::new(),
            resource: Vec::new(),
        }
    }
    /// Sets the severity number and text.
    pub fn severity(mut self, number: u8, text: &str) -> Self {
        self.severity = (number, text.into());
        self
    }
    /// Adds an attribute.
    pub fn attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }
    /// Sets the target.
    pub fn target(mut self, target: &str) -> Self {
        self.target = target.into();
        self
    }
    /// Sets the trace context.
    pub fn in_span(mut self, trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        self.context = Some((trace_id, span_id));
        self
    }
}

/// One edit a log processor made, as recorded by [`process_log`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogEdit {
    /// [`LogEdits::drop_record`](crate::LogEdits::drop_record).
    Drop,
    /// `set_body` (and `redact_body`, with [`REDACTED`](crate::REDACTED)).
    SetBody(Value),
    /// `set`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: Value,
    },
    /// `redact`.
    Redact(String),
    /// `remove`.
    Remove(String),
}

struct LogStore<'a> {
    log: &'a TestLog,
    body_array: Vec<RStr<'a>>,
    arrays: Vec<Vec<RStr<'a>>>,
    resource_arrays: Vec<Vec<RStr<'a>>>,
}

struct LogViewImpl<'a> {
    log: &'a TestLog,
    body: Option<ValueRef<'a>>,
    attributes: Vec<KeyValueRef<'a>>,
    resource: Vec<KeyValueRef<'a>>,
}

impl crate::ffi::FfiLogRecord for LogViewImpl<'_> {
    fn severity_number(&self) -> u8 {
        self.log.severity.0
    }
    fn severity_text(&self) -> RStr<'_> {
        RStr::from_str(&self.log.severity.1)
    }
    fn body(&self) -> abi_stable::std_types::ROption<ValueRef<'_>> {
        self.body.into()
    }
    fn attributes(&self) -> RSlice<'_, KeyValueRef<'_>> {
        RSlice::from_slice(&self.attributes)
    }
    fn context(&self) -> crate::ffi::FfiLogContext {
        match self.log.context {
            Some((trace_id, span_id)) => crate::ffi::FfiLogContext {
                trace_id,
                span_id,
                flags: 3,
            },
            None => Default::default(),
        }
    }
    fn target(&self) -> RStr<'_> {
        RStr::from_str(&self.log.target)
    }
    fn event_name(&self) -> RStr<'_> {
        RStr::from_str("")
    }
    fn time_unix_nanos(&self) -> u64 {
        1_000_000_000
    }
    fn resource(&self) -> RSlice<'_, KeyValueRef<'_>> {
        RSlice::from_slice(&self.resource)
    }
}

struct LogRecorder(Vec<LogEdit>);

impl crate::ffi::FfiLogEdits for LogRecorder {
    fn drop_record(&mut self) {
        self.0.push(LogEdit::Drop);
    }
    fn set_body(&mut self, body: ValueRef<'_>) {
        if let Some(v) = Value::from_ref(body) {
            self.0.push(LogEdit::SetBody(v));
        }
    }
    fn set(&mut self, key: RStr<'_>, value: ValueRef<'_>) {
        if let Some(value) = Value::from_ref(value) {
            self.0.push(LogEdit::Set {
                key: key.to_string(),
                value,
            });
        }
    }
    fn redact(&mut self, key: RStr<'_>) {
        self.0.push(LogEdit::Redact(key.to_string()));
    }
    fn remove_attribute(&mut self, key: RStr<'_>) {
        self.0.push(LogEdit::Remove(key.to_string()));
    }
}

/// Runs `processor.on_emit` over `log` and returns the edits it made, in order (empty: the record is left
/// alone). A panic in the processor propagates, so the test fails.
///
/// ```
/// use ndotel_api::testing::{self, LogEdit, TestLog};
/// use ndotel_api::{LogEdits, LogProcessor, LogView};
/// struct RedactTokens;
/// impl LogProcessor for RedactTokens {
///     fn on_emit(&self, record: &LogView<'_>, edits: &mut LogEdits<'_>) {
///         if record.attribute("token").is_some() { edits.redact("token"); }
///     }
/// }
/// let log = TestLog::new("signed in").attribute("token", "abc");
/// assert_eq!(testing::process_log(&RedactTokens, &log), [LogEdit::Redact("token".into())]);
/// ```
pub fn process_log(processor: &dyn crate::LogProcessor, log: &TestLog) -> Vec<LogEdit> {
    let store = LogStore {
        log,
        body_array: match &log.body {
            Some(Value::StrArray(v)) => v.iter().map(|s| RStr::from_str(s)).collect(),
            _ => Vec::new(),
        },
        arrays: str_arrays(&log.attributes),
        resource_arrays: str_arrays(&log.resource),
    };
    let body = log.body.as_ref().map(|b| value_ref(b, &store.body_array));
    let view = LogViewImpl {
        log: store.log,
        body,
        attributes: refs(&log.attributes, &store.arrays),
        resource: refs(&log.resource, &store.resource_arrays),
    };
    let ffi = crate::ffi::FfiLogRecord_TO::from_ptr(&view, TD_Opaque);
    let mut recorder = LogRecorder(Vec::new());
    let mut edits = crate::LogEdits::from_ffi(crate::ffi::FfiLogEdits_TO::from_ptr(
        &mut recorder,
        TD_Opaque,
    ));
    processor.on_emit(crate::LogView::from_ffi(&ffi), &mut edits);
    drop(edits);
    recorder.0
}
