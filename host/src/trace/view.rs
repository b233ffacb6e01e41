//! Borrowed views of SDK spans and attributes for the FFI boundary: no copies of names or values, and the
//! attribute slice lives on the stack for up to 16 attributes.

use ndotel_api::{KeyValueRef, SpanKind as ApiKind, SpanView, StatusCode, ValueRef};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use smallvec::SmallVec;
use std::time::{SystemTime, UNIX_EPOCH};

/// Attribute views, inline up to 16.
pub(crate) type AttrRefs<'a> = SmallVec<[KeyValueRef<'a>; 16]>;

pub(crate) fn value_ref(v: &Value) -> ValueRef<'_> {
    match v {
        Value::Bool(b) => ValueRef::Bool(*b),
        Value::I64(i) => ValueRef::I64(*i),
        Value::F64(f) => ValueRef::F64(*f),
        Value::String(s) => ValueRef::Str(s.as_str().into()),
        _ => ValueRef::Other,
    }
}

pub(crate) fn attr_refs(attributes: &[KeyValue]) -> AttrRefs<'_> {
    attributes
        .iter()
        .map(|kv| KeyValueRef {
            key: kv.key.as_str().into(),
            value: value_ref(&kv.value),
        })
        .collect()
}

pub(crate) fn kind(k: &SpanKind) -> ApiKind {
    match k {
        SpanKind::Internal => ApiKind::Internal,
        SpanKind::Server => ApiKind::Server,
        SpanKind::Client => ApiKind::Client,
        SpanKind::Producer => ApiKind::Producer,
        SpanKind::Consumer => ApiKind::Consumer,
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The view of `span`, whose attributes were viewed as `attrs`.
pub(crate) fn span_view<'a>(span: &'a SpanData, attrs: &'a [KeyValueRef<'a>]) -> SpanView<'a> {
    let (status, status_message) = match &span.status {
        Status::Unset => (StatusCode::Unset, ""),
        Status::Ok => (StatusCode::Ok, ""),
        Status::Error { description } => (StatusCode::Error, description.as_ref()),
    };
    SpanView {
        trace_id: span.span_context.trace_id().to_bytes(),
        span_id: span.span_context.span_id().to_bytes(),
        parent_span_id: span.parent_span_id.to_bytes(),
        parent_is_remote: span.parent_span_is_remote,
        sampled: span.span_context.is_sampled(),
        name: span.name.as_ref().into(),
        kind: kind(&span.span_kind),
        start_unix_nanos: nanos(span.start_time),
        end_unix_nanos: nanos(span.end_time),
        attributes: attrs.into(),
        status,
        status_message: status_message.into(),
        scope_name: span.instrumentation_scope.name().into(),
        event_count: span.events.len() as u32,
    }
}

/// Converts an owned API attribute into an SDK one.
pub(crate) fn to_otel(kv: &ndotel_api::KeyValue) -> KeyValue {
    let key = kv.key.to_string();
    match &kv.value {
        ndotel_api::Value::Bool(b) => KeyValue::new(key, *b),
        ndotel_api::Value::I64(i) => KeyValue::new(key, *i),
        ndotel_api::Value::F64(f) => KeyValue::new(key, *f),
        ndotel_api::Value::Str(s) => KeyValue::new(key, s.to_string()),
    }
}
