//! The host's side of the span views a distro reads: SDK spans and sampling arguments behind the API's
//! `FfiSpan` / `FfiSamplingParams` objects, and the sinks that turn a distro's values back into SDK attributes.
//!
//! Nothing is copied eagerly: each view converts what the distro asks for (attributes, events, links, resource),
//! once, into a per-thread scratch arena that is reset and reused, so after warm-up a span costs no allocation.

use abi_stable::std_types::{ROption, RStr};
use bumpalo::Bump;
use ndotel_api::ffi::{
    FfiAttributes, FfiDroppedCounts, FfiEvent, FfiLink, FfiSamplingParams, FfiSpan, FfiSpanIds,
    FfiTraceId,
};
use ndotel_api::{AnyValue, KeyValueRef, StatusCode, ValueRef};
use opentelemetry::trace::{Link, SpanKind, Status};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use std::cell::{OnceCell, RefCell};
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static SCRATCH: RefCell<Bump> = RefCell::new(Bump::new());
}

/// Runs `f` with this thread's scratch arena, reset first (a fresh one when re-entered or during thread exit).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&Bump) -> R) -> R {
    let mut f = Some(f);
    let reused = SCRATCH.try_with(|cell| {
        cell.try_borrow_mut().ok().map(|mut bump| {
            bump.reset();
            let f = f.take().expect("called once");
            f(&bump)
        })
    });
    match (reused, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&Bump::new()),
        (_, None) => unreachable!("the closure ran but returned nothing"),
    }
}

fn value_ref<'a>(v: &'a Value, bump: &'a Bump) -> ValueRef<'a> {
    match v {
        Value::Bool(b) => (*b).into(),
        Value::I64(i) => (*i).into(),
        Value::F64(f) => (*f).into(),
        Value::String(s) => s.as_str().into(),
        Value::Array(Array::Bool(v)) => v.as_slice().into(),
        Value::Array(Array::I64(v)) => v.as_slice().into(),
        Value::Array(Array::F64(v)) => v.as_slice().into(),
        Value::Array(Array::String(v)) => {
            let items: &[RStr<'a>] =
                bump.alloc_slice_fill_iter(v.iter().map(|s| s.as_str().into()));
            items.into()
        }
        _ => AnyValue::Unknown.into(),
    }
}

/// Borrowed views of `attributes`, in `bump`.
pub(crate) fn attr_refs<'a>(attributes: &'a [KeyValue], bump: &'a Bump) -> &'a [KeyValueRef<'a>] {
    bump.alloc_slice_fill_iter(attributes.iter().map(|kv| KeyValueRef {
        key: kv.key.as_str().into(),
        value: value_ref(&kv.value, bump),
    }))
}

fn links<'a>(links: &'a [Link], bump: &'a Bump) -> &'a [FfiLink<'a>] {
    bump.alloc_slice_fill_iter(links.iter().map(|l| FfiLink {
        trace_id: l.span_context.trace_id().to_bytes(),
        span_id: l.span_context.span_id().to_bytes(),
        flags: l.span_context.is_sampled() as u32 | (l.span_context.is_remote() as u32) << 1,
        attributes: attr_refs(&l.attributes, bump).into(),
    }))
}

pub(crate) fn kind(k: &SpanKind) -> u8 {
    let kind = match k {
        SpanKind::Internal => ndotel_api::SpanKind::Internal,
        SpanKind::Server => ndotel_api::SpanKind::Server,
        SpanKind::Client => ndotel_api::SpanKind::Client,
        SpanKind::Producer => ndotel_api::SpanKind::Producer,
        SpanKind::Consumer => ndotel_api::SpanKind::Consumer,
    };
    kind.code()
}

/// The resource's attributes as a list (what the views of spans and log records show).
pub(crate) fn resource_attributes(resource: &opentelemetry_sdk::Resource) -> Vec<KeyValue> {
    resource
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect()
}

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A finished SDK span as the distro sees it.
pub(crate) struct HostSpan<'a> {
    span: &'a SpanData,
    resource: &'a [KeyValue],
    bump: &'a Bump,
    attributes: OnceCell<&'a [KeyValueRef<'a>]>,
    events: OnceCell<&'a [FfiEvent<'a>]>,
    links: OnceCell<&'a [FfiLink<'a>]>,
    resource_refs: OnceCell<&'a [KeyValueRef<'a>]>,
}

impl<'a> HostSpan<'a> {
    pub(crate) fn new(span: &'a SpanData, resource: &'a [KeyValue], bump: &'a Bump) -> Self {
        HostSpan {
            span,
            resource,
            bump,
            attributes: OnceCell::new(),
            events: OnceCell::new(),
            links: OnceCell::new(),
            resource_refs: OnceCell::new(),
        }
    }
}

impl FfiSpan for HostSpan<'_> {
    fn ids(&self) -> FfiSpanIds {
        let sc = &self.span.span_context;
        FfiSpanIds {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            parent_span_id: self.span.parent_span_id.to_bytes(),
            flags: sc.is_sampled() as u32 | (self.span.parent_span_is_remote as u32) << 1,
        }
    }
    fn name(&self) -> abi_stable::std_types::RStr<'_> {
        self.span.name.as_ref().into()
    }
    fn kind(&self) -> u8 {
        kind(&self.span.span_kind)
    }
    fn start_unix_nanos(&self) -> u64 {
        nanos(self.span.start_time)
    }
    fn end_unix_nanos(&self) -> u64 {
        nanos(self.span.end_time)
    }
    fn attributes(&self) -> abi_stable::std_types::RSlice<'_, KeyValueRef<'_>> {
        (*self
            .attributes
            .get_or_init(|| attr_refs(&self.span.attributes, self.bump)))
        .into()
    }
    fn events(&self) -> abi_stable::std_types::RSlice<'_, FfiEvent<'_>> {
        if self.span.events.is_empty() {
            return abi_stable::std_types::RSlice::EMPTY;
        }
        (*self.events.get_or_init(|| {
            let bump = self.bump;
            bump.alloc_slice_fill_iter(self.span.events.iter().map(|e| FfiEvent {
                name: e.name.as_ref().into(),
                time_unix_nanos: nanos(e.timestamp),
                attributes: attr_refs(&e.attributes, bump).into(),
            }))
        }))
        .into()
    }
    fn links(&self) -> abi_stable::std_types::RSlice<'_, FfiLink<'_>> {
        if self.span.links.is_empty() {
            return abi_stable::std_types::RSlice::EMPTY;
        }
        (*self
            .links
            .get_or_init(|| links(&self.span.links.links, self.bump)))
        .into()
    }
    fn status_code(&self) -> u8 {
        match &self.span.status {
            Status::Unset => StatusCode::Unset,
            Status::Ok => StatusCode::Ok,
            Status::Error { .. } => StatusCode::Error,
        }
        .code()
    }
    fn status_message(&self) -> abi_stable::std_types::RStr<'_> {
        match &self.span.status {
            Status::Error { description } => description.as_ref().into(),
            _ => "".into(),
        }
    }
    fn scope_name(&self) -> abi_stable::std_types::RStr<'_> {
        self.span.instrumentation_scope.name().into()
    }
    fn scope_version(&self) -> abi_stable::std_types::RStr<'_> {
        self.span
            .instrumentation_scope
            .version()
            .unwrap_or("")
            .into()
    }
    fn dropped_counts(&self) -> FfiDroppedCounts {
        FfiDroppedCounts {
            attributes: self.span.dropped_attributes_count,
            events: self.span.events.dropped_count,
            links: self.span.links.dropped_count,
        }
    }
    fn resource(&self) -> abi_stable::std_types::RSlice<'_, KeyValueRef<'_>> {
        (*self
            .resource_refs
            .get_or_init(|| attr_refs(self.resource, self.bump)))
        .into()
    }
}

/// A span about to start, as the distro's sampler sees it.
pub(crate) struct HostParams<'a> {
    pub(crate) trace_id: [u8; 16],
    pub(crate) parent_kind: ndotel_api::ParentKind,
    pub(crate) parent_sampled: bool,
    pub(crate) name: &'a str,
    pub(crate) kind: u8,
    pub(crate) attributes: &'a [KeyValue],
    pub(crate) links: &'a [Link],
    pub(crate) bump: &'a Bump,
    pub(crate) attribute_refs: OnceCell<&'a [KeyValueRef<'a>]>,
    pub(crate) link_refs: OnceCell<&'a [FfiLink<'a>]>,
}

impl FfiSamplingParams for HostParams<'_> {
    fn trace_id(&self) -> FfiTraceId {
        FfiTraceId(self.trace_id)
    }
    fn parent_kind(&self) -> u8 {
        self.parent_kind.code()
    }
    fn parent_sampled(&self) -> bool {
        self.parent_sampled
    }
    fn name(&self) -> abi_stable::std_types::RStr<'_> {
        self.name.into()
    }
    fn kind(&self) -> u8 {
        self.kind
    }
    fn attributes(&self) -> abi_stable::std_types::RSlice<'_, KeyValueRef<'_>> {
        (*self
            .attribute_refs
            .get_or_init(|| attr_refs(self.attributes, self.bump)))
        .into()
    }
    fn links(&self) -> abi_stable::std_types::RSlice<'_, FfiLink<'_>> {
        if self.links.is_empty() {
            return abi_stable::std_types::RSlice::EMPTY;
        }
        (*self.link_refs.get_or_init(|| links(self.links, self.bump))).into()
    }
    fn attribute(&self, key: RStr<'_>) -> ROption<ValueRef<'_>> {
        // Only the value asked for is converted (the whole view, when the distro asked for it, is reused).
        if let Some(refs) = self.attribute_refs.get() {
            return ndotel_api::find_attribute(refs, key.as_str()).into();
        }
        self.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key.as_str())
            .map(|kv| value_ref(&kv.value, self.bump))
            .into()
    }
}

/// An SDK value for a distro's value (`None` for a kind this host does not know).
pub(crate) fn to_otel_value(v: ValueRef<'_>) -> Option<Value> {
    Some(match v.get() {
        AnyValue::Bool(b) => Value::Bool(b),
        AnyValue::I64(i) => Value::I64(i),
        AnyValue::F64(f) => Value::F64(f),
        AnyValue::Str(s) => Value::String(s.to_owned().into()),
        AnyValue::BoolArray(v) => Value::Array(Array::Bool(v.to_vec())),
        AnyValue::I64Array(v) => Value::Array(Array::I64(v.to_vec())),
        AnyValue::F64Array(v) => Value::Array(Array::F64(v.to_vec())),
        AnyValue::StrArray(v) => Value::Array(Array::String(
            v.iter()
                .map(|s| StringValue::from(s.as_str().to_owned()))
                .collect(),
        )),
        _ => return None,
    })
}

/// Collects a distro's owned attributes (resource, start attributes) as SDK attributes.
#[derive(Debug, Default)]
pub(crate) struct Attributes(pub(crate) Vec<KeyValue>);

impl FfiAttributes for Attributes {
    fn push(&mut self, key: abi_stable::std_types::RStr<'_>, value: ValueRef<'_>) {
        if let Some(value) = to_otel_value(value) {
            self.0.push(KeyValue::new(key.as_str().to_owned(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sampler's lookup of one attribute sees what the whole view shows: the first of that name, any kind of
    /// value, before and after the view was made.
    #[test]
    fn one_attribute_looked_up_is_the_views_first_of_that_name() {
        let attributes = [
            KeyValue::new("n", 1),
            KeyValue::new("url.path", "/first"),
            KeyValue::new(
                "list",
                Value::Array(Array::String(vec!["p".into(), "q".into()])),
            ),
            KeyValue::new("url.path", "/second"),
        ];
        let bump = Bump::new();
        let params = HostParams {
            trace_id: [1; 16],
            parent_kind: ndotel_api::ParentKind::None,
            parent_sampled: false,
            name: "GET /x",
            kind: 1,
            attributes: &attributes,
            links: &[],
            bump: &bump,
            attribute_refs: OnceCell::new(),
            link_refs: OnceCell::new(),
        };
        let look = |key: &str| {
            FfiSamplingParams::attribute(&params, key.into())
                .into_option()
                .map(|v| v.get().to_string())
        };
        let lazily = ["url.path", "list", "n", "missing"].map(look);
        assert_eq!(
            params.attribute_refs.get(),
            None,
            "nothing else was converted"
        );
        assert_eq!(lazily[0].as_deref(), Some("/first"));
        assert!(
            lazily[1]
                .as_deref()
                .is_some_and(|l| l.contains('p') && l.contains('q'))
        );
        assert_eq!(lazily[3], None);
        let _ = FfiSamplingParams::attributes(&params);
        assert_eq!(["url.path", "list", "n", "missing"].map(look), lazily);
    }
}
