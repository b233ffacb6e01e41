//! ndotel's OTLP encoder: spans and log records go from the SDK's data straight to the protobuf bytes of an
//! `ExportTraceServiceRequest` or `ExportLogsServiceRequest`, in one pass: a message's length is written in front of
//! its body once the body is written (room for it is left, and the body moves in the rare case the length needs
//! another count of bytes), and an attribute of the usual shape goes out in a few writes. The buffer is reused from
//! one request to the next. No intermediate opentelemetry-proto structs and
//! no hashing: a pipeline has one resource, encoded once, and the items of a batch are grouped by scope in order of
//! first appearance, as opentelemetry-proto's `group_spans_by_resource_and_scope` does.
//!
//! The bytes are the ones prost writes for opentelemetry-proto's transform of the same batch: fields in tag order,
//! proto3 defaults left out, every `Some` message written even when empty, every length the shortest varint. The
//! property tests below check that both decode to equal requests, and are equal bytes, for random batches.

use opentelemetry::Key;
use opentelemetry::logs::AnyValue as LogValue;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogBatch, SdkLogRecord};
use opentelemetry_sdk::trace::SpanData;
use std::time::{SystemTime, UNIX_EPOCH};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(buf, u64::from(field << 3 | wire));
}

/// The size of a length-delimited field whose body is `len` bytes.
fn len_field(field: u32, len: usize) -> usize {
    key_len(field) + varint_len(len as u64) + len
}

fn put_len(buf: &mut Vec<u8>, field: u32, len: usize) {
    put_key(buf, field, LEN);
    put_varint(buf, len as u64);
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if field < 16 && bytes.len() < 0x80 {
        // The common case in one write: a one-byte key and a one-byte length.
        buf.extend_from_slice(&[(field << 3 | LEN) as u8, bytes.len() as u8]);
    } else {
        put_len(buf, field, bytes.len());
    }
    buf.extend_from_slice(bytes);
}

/// Writes length-delimited field `field` whose body `body` writes, in one pass: `room` bytes are left for the
/// length (what it usually takes), the body is written after them, and the length goes in front once known; a body
/// whose length needs another count of bytes is moved (the bytes are prost's: the shortest varint).
fn put_message(buf: &mut Vec<u8>, field: u32, room: usize, body: impl FnOnce(&mut Vec<u8>)) {
    put_key(buf, field, LEN);
    let at = buf.len();
    buf.extend_from_slice(&[0; 5][..room]);
    body(buf);
    let len = buf.len() - at - room;
    let need = varint_len(len as u64);
    if need != room {
        move_body(buf, at, room, need);
    }
    let mut v = len as u64;
    for slot in &mut buf[at..at + need] {
        *slot = (v as u8) | 0x80;
        v >>= 7;
    }
    buf[at + need - 1] &= 0x7f;
}

/// Moves the body after the `room` bytes left at `at` for its length to follow `need` bytes there instead.
#[cold]
fn move_body(buf: &mut Vec<u8>, at: usize, room: usize, need: usize) {
    let (start, end, to) = (at + room, buf.len(), at + need);
    if to > start {
        buf.resize(end + (to - start), 0);
        buf.copy_within(start..end, to);
    } else {
        buf.copy_within(start..end, to);
        buf.truncate(end - (start - to));
    }
}

/// A proto3 string or bytes field: left out when empty.
fn opt_bytes_len(field: u32, bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        len_field(field, bytes.len())
    }
}

fn put_opt_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes(buf, field, bytes);
    }
}

/// A proto3 `uint32`/enum field: left out when zero.
fn opt_varint_len(field: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        key_len(field) + varint_len(v)
    }
}

fn put_opt_varint(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(buf, field, VARINT);
        put_varint(buf, v);
    }
}

fn put_opt_fixed64(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(buf, field, FIXED64);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_opt_fixed32(buf: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        put_key(buf, field, FIXED32);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// common.v1.AnyValue: a oneof, so even an empty string or array is written.

fn any_value_len(v: &Value) -> usize {
    match v {
        Value::Bool(_) => 2,
        Value::I64(i) => 1 + varint_len(*i as u64),
        Value::F64(_) => 9,
        Value::String(s) => len_field(1, s.as_str().len()),
        Value::Array(a) => len_field(5, array_len(a)),
        other => len_field(1, other.as_str().len()),
    }
}

// The scalar members of AnyValue's oneof, shared by the trace and the logs APIs' values.

fn put_bool_value(buf: &mut Vec<u8>, b: bool) {
    put_key(buf, 2, VARINT);
    buf.push(u8::from(b));
}

fn put_int_value(buf: &mut Vec<u8>, i: i64) {
    put_key(buf, 3, VARINT);
    put_varint(buf, i as u64);
}

fn put_double_value(buf: &mut Vec<u8>, f: f64) {
    put_key(buf, 4, FIXED64);
    buf.extend_from_slice(&f.to_le_bytes());
}

fn put_any_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => put_bool_value(buf, *b),
        Value::I64(i) => put_int_value(buf, *i),
        Value::F64(f) => put_double_value(buf, *f),
        Value::String(s) => put_bytes(buf, 1, s.as_str().as_bytes()),
        Value::Array(a) => {
            put_len(buf, 5, array_len(a));
            put_array(buf, a);
        }
        other => put_bytes(buf, 1, other.as_str().as_bytes()),
    }
}

/// Each element of an array, as the `Value` opentelemetry-proto turns it into.
fn each_element(a: &Array, mut f: impl FnMut(&Value)) {
    match a {
        Array::Bool(v) => v.iter().for_each(|b| f(&Value::Bool(*b))),
        Array::I64(v) => v.iter().for_each(|i| f(&Value::I64(*i))),
        Array::F64(v) => v.iter().for_each(|x| f(&Value::F64(*x))),
        Array::String(v) => v.iter().for_each(|s| f(&Value::String(s.clone()))),
        other => f(&Value::String(other.to_string().into())),
    }
}

/// The body of an `ArrayValue`: `repeated AnyValue values = 1`.
fn array_len(a: &Array) -> usize {
    let mut n = 0;
    each_element(a, |v| n += len_field(1, any_value_len(v)));
    n
}

fn put_array(buf: &mut Vec<u8>, a: &Array) {
    each_element(a, |v| {
        put_len(buf, 1, any_value_len(v));
        put_any_value(buf, v);
    });
}

// common.v1.KeyValue: key = 1, value = 2 (always present).

fn key_value_len(kv: &KeyValue) -> usize {
    opt_bytes_len(1, kv.key.as_str().as_bytes()) + len_field(2, any_value_len(&kv.value))
}

fn attributes_len(field: u32, attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| len_field(field, key_value_len(kv)))
        .sum()
}

/// A `KeyValue` whose value is a short string or a scalar, with a short key, as prost writes it in three writes (the
/// shape of nearly every attribute); `false` when it is not one.
fn put_small_key_value(buf: &mut Vec<u8>, field: u32, key: &[u8], value: &Value) -> bool {
    // The `value` field's key and length, then AnyValue's own field: its key and a length or the scalar.
    let mut head = [0u8; 13];
    head[0] = 2 << 3 | LEN as u8;
    let (n, body): (usize, &[u8]) = match value {
        Value::String(s) if s.as_str().len() < 0x80 => {
            head[2] = 1 << 3 | LEN as u8;
            head[3] = s.as_str().len() as u8;
            (4, s.as_str().as_bytes())
        }
        Value::I64(i) => {
            head[2] = 3 << 3 | VARINT as u8;
            let mut v = *i as u64;
            let mut n = 3;
            while v >= 0x80 {
                head[n] = (v as u8) | 0x80;
                v >>= 7;
                n += 1;
            }
            head[n] = v as u8;
            (n + 1, &[])
        }
        Value::Bool(b) => {
            head[2] = 2 << 3 | VARINT as u8;
            head[3] = u8::from(*b);
            (4, &[])
        }
        Value::F64(f) => {
            head[2] = 4 << 3 | FIXED64 as u8;
            head[3..11].copy_from_slice(&f.to_le_bytes());
            (11, &[])
        }
        _ => return false,
    };
    let any_value = n - 2 + body.len();
    head[1] = any_value as u8;
    let kv_len = 2 + key.len() + 2 + any_value;
    if field >= 16 || key.is_empty() || key.len() >= 0x80 || kv_len >= 0x80 {
        return false;
    }
    let header = [
        (field << 3 | LEN) as u8,
        kv_len as u8,
        1 << 3 | LEN as u8,
        key.len() as u8,
    ];
    let total = 2 + kv_len;
    if total <= RECORD && key.len() <= 32 && body.len() <= 32 {
        // Assembled on the stack with fixed-size copies and appended as one fixed-size block, cut to its length:
        // four appends of variable length would cost two calls to `memcpy` and four capacity checks.
        let mut record = [0u8; RECORD + 32];
        record[..4].copy_from_slice(&header);
        copy_short(&mut record, 4, key);
        let at = 4 + key.len();
        record[at..at + head.len()].copy_from_slice(&head);
        copy_short(&mut record, at + n, body);
        let end = buf.len() + total;
        buf.extend_from_slice(&record[..RECORD]);
        buf.truncate(end);
        return true;
    }
    buf.extend_from_slice(&header);
    buf.extend_from_slice(key);
    buf.extend_from_slice(&head[..n]);
    buf.extend_from_slice(body);
    true
}

/// The longest attribute [`put_small_key_value`] assembles on the stack, in bytes.
const RECORD: usize = 64;

/// Copies `src` (at most 32 bytes) into `dst` at `at` with two overlapping fixed-size copies, which the compiler
/// inlines; a copy of variable length is a call to `memcpy`, costlier than the copy itself at these lengths.
#[inline(always)]
fn copy_short(dst: &mut [u8], at: usize, src: &[u8]) {
    let n = src.len();
    let to = &mut dst[at..at + n];
    if n >= 16 {
        to[..16].copy_from_slice(&src[..16]);
        to[n - 16..].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        to[..8].copy_from_slice(&src[..8]);
        to[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        to[..4].copy_from_slice(&src[..4]);
        to[n - 4..].copy_from_slice(&src[n - 4..]);
    } else if n > 0 {
        // One, two or three bytes (a loop here would become a call to `memcpy`).
        to[0] = src[0];
        to[n / 2] = src[n / 2];
        to[n - 1] = src[n - 1];
    }
}

fn put_attributes(buf: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        let key = kv.key.as_str().as_bytes();
        if put_small_key_value(buf, field, key, &kv.value) {
            continue;
        }
        let value = any_value_len(&kv.value);
        put_len(buf, field, opt_bytes_len(1, key) + len_field(2, value));
        put_opt_bytes(buf, 1, key);
        put_len(buf, 2, value);
        put_any_value(buf, &kv.value);
    }
}

/// The flags of a span or link: the W3C trace flags, and whether the (parent) context is remote.
fn flags(trace_flags: u8, remote: bool) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    u32::from(trace_flags) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

fn kind(k: &SpanKind) -> u64 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// A span's or link's trace state, as its W3C header (left out when empty).
fn put_trace_state(buf: &mut Vec<u8>, field: u32, state: &opentelemetry::trace::TraceState) {
    // The usual empty state writes nothing: no header is built for it.
    if *state == opentelemetry::trace::TraceState::NONE {
        return;
    }
    let header = state.header();
    put_opt_bytes(buf, field, header.as_bytes());
}

fn status_len(status: &Status) -> usize {
    match status {
        Status::Unset => 0,
        Status::Ok => opt_varint_len(3, 1),
        Status::Error { description } => {
            opt_bytes_len(2, description.as_bytes()) + opt_varint_len(3, 2)
        }
    }
}

fn put_status(buf: &mut Vec<u8>, status: &Status) {
    put_len(buf, 15, status_len(status));
    match status {
        Status::Unset => {}
        Status::Ok => put_opt_varint(buf, 3, 1),
        Status::Error { description } => {
            put_opt_bytes(buf, 2, description.as_bytes());
            put_opt_varint(buf, 3, 2);
        }
    }
}

fn put_span(buf: &mut Vec<u8>, s: &SpanData) {
    // The ids in one write: `trace_id = 1`, `span_id = 2`.
    let mut ids = [0u8; 28];
    ids[..2].copy_from_slice(&[1 << 3 | LEN as u8, 16]);
    ids[2..18].copy_from_slice(&s.span_context.trace_id().to_bytes());
    ids[18..20].copy_from_slice(&[2 << 3 | LEN as u8, 8]);
    ids[20..].copy_from_slice(&s.span_context.span_id().to_bytes());
    buf.extend_from_slice(&ids);
    put_trace_state(buf, 3, s.span_context.trace_state());
    if s.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        put_bytes(buf, 4, &s.parent_span_id.to_bytes());
    }
    put_opt_bytes(buf, 5, s.name.as_bytes());
    let (start, end) = (nanos(s.start_time), nanos(s.end_time));
    if start != 0 && end != 0 {
        // The kind (never 0, one byte) and both times in one write.
        let mut times = [0u8; 20];
        times[..3].copy_from_slice(&[
            6 << 3 | VARINT as u8,
            kind(&s.span_kind) as u8,
            7 << 3 | FIXED64 as u8,
        ]);
        times[3..11].copy_from_slice(&start.to_le_bytes());
        times[11] = 8 << 3 | FIXED64 as u8;
        times[12..].copy_from_slice(&end.to_le_bytes());
        buf.extend_from_slice(&times);
    } else {
        put_opt_varint(buf, 6, kind(&s.span_kind));
        put_opt_fixed64(buf, 7, start);
        put_opt_fixed64(buf, 8, end);
    }
    put_attributes(buf, 9, &s.attributes);
    put_opt_varint(buf, 10, u64::from(s.dropped_attributes_count));
    for e in s.events.iter() {
        put_message(buf, 11, 1, |buf| {
            put_opt_fixed64(buf, 1, nanos(e.timestamp));
            put_opt_bytes(buf, 2, e.name.as_bytes());
            put_attributes(buf, 3, &e.attributes);
            put_opt_varint(buf, 4, u64::from(e.dropped_attributes_count));
        });
    }
    put_opt_varint(buf, 12, u64::from(s.events.dropped_count));
    for l in s.links.iter() {
        put_message(buf, 13, 1, |buf| {
            put_bytes(buf, 1, &l.span_context.trace_id().to_bytes());
            put_bytes(buf, 2, &l.span_context.span_id().to_bytes());
            put_trace_state(buf, 3, l.span_context.trace_state());
            put_attributes(buf, 4, &l.attributes);
            put_opt_varint(buf, 5, u64::from(l.dropped_attributes_count));
            put_opt_fixed32(
                buf,
                6,
                flags(
                    l.span_context.trace_flags().to_u8(),
                    l.span_context.is_remote(),
                ),
            );
        });
    }
    put_opt_varint(buf, 14, u64::from(s.links.dropped_count));
    put_status(buf, &s.status);
    // Field 16 last: prost writes fields in tag order.
    put_opt_fixed32(
        buf,
        16,
        flags(
            s.span_context.trace_flags().to_u8(),
            s.parent_span_is_remote,
        ),
    );
}

/// Encodes export requests for one pipeline's resource.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// The `Resource` message's body.
    resource: Vec<u8>,
    schema_url: String,
}

/// The items of a batch that share a scope, in batch order, and the name the scope is exported under.
struct Group<'a, T> {
    name: &'a str,
    scope: &'a InstrumentationScope,
    attributes: Vec<KeyValue>,
    items: Vec<T>,
}

/// Attributes equal as `InstrumentationScope`'s equality has them: in any order (tried in order first).
/// Whether two strings are equal, found without comparing bytes when they are the same string (a scope's name is
/// usually one static string, shared by every span of the scope).
fn same_str(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

fn same_attributes(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    if a.attributes().eq(b.attributes()) {
        return true;
    }
    fn sorted(s: &InstrumentationScope) -> Vec<&KeyValue> {
        let mut v: Vec<&KeyValue> = s.attributes().collect();
        v.sort_unstable_by(|x, y| x.key.cmp(&y.key));
        v
    }
    a.attributes().count() == b.attributes().count() && sorted(a) == sorted(b)
}

impl<'a, T> Group<'a, T> {
    fn holds(&self, name: &str, scope: &InstrumentationScope) -> bool {
        same_str(self.name, name)
            && self.scope.version() == scope.version()
            && self.scope.schema_url() == scope.schema_url()
            && same_attributes(self.scope, scope)
    }

    /// Groups `items` (each with the name its scope is exported under) by scope, in order of first appearance, as
    /// opentelemetry-proto does; the last group found is tried first.
    fn all(items: impl Iterator<Item = (&'a str, &'a InstrumentationScope, T)>) -> Vec<Self> {
        let mut groups: Vec<Self> = Vec::new();
        let mut last = 0;
        for (name, scope, item) in items {
            let found = if groups.get(last).is_some_and(|g| g.holds(name, scope)) {
                Some(last)
            } else {
                groups.iter().position(|g| g.holds(name, scope))
            };
            last = match found {
                Some(g) => {
                    groups[g].items.push(item);
                    g
                }
                None => {
                    groups.push(Group {
                        name,
                        scope,
                        attributes: scope.attributes().cloned().collect(),
                        items: vec![item],
                    });
                    groups.len() - 1
                }
            };
        }
        groups
    }

    /// The `InstrumentationScope` message's body (name 1, version 2, attributes 3).
    fn scope_len(&self) -> usize {
        opt_bytes_len(1, self.name.as_bytes())
            + opt_bytes_len(2, self.scope.version().unwrap_or_default().as_bytes())
            + attributes_len(3, &self.attributes)
    }

    fn schema_url(&self) -> &'a [u8] {
        self.scope.schema_url().unwrap_or_default().as_bytes()
    }
}

impl Encoder {
    pub(crate) fn new(resource: &Resource) -> Self {
        let attributes: Vec<KeyValue> = resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        let mut body = Vec::with_capacity(attributes_len(1, &attributes));
        put_attributes(&mut body, 1, &attributes);
        Encoder {
            resource: body,
            schema_url: resource.schema_url().unwrap_or_default().to_string(),
        }
    }

    /// Writes the request for `spans` into `buf` (cleared first): an `ExportTraceServiceRequest`.
    pub(crate) fn encode(&self, spans: &[SpanData], buf: &mut Vec<u8>) {
        let groups = Group::all(spans.iter().enumerate().map(|(i, s)| {
            let scope = &s.instrumentation_scope;
            (scope.name(), scope, i)
        }));
        self.put_request(buf, &groups, |buf, &i| put_span(buf, &spans[i]));
    }

    /// Writes the request for `batch` into `buf` (cleared first): an `ExportLogsServiceRequest`. A record's target,
    /// when it has one, stands for its scope's name, as opentelemetry-proto has it.
    pub(crate) fn encode_logs(&self, batch: &LogBatch<'_>, buf: &mut Vec<u8>) {
        let groups = Group::all(batch.iter().map(|(record, scope)| {
            let name = record.target().map_or(scope.name(), |t| t.as_ref());
            (name, scope, record)
        }));
        self.put_request(buf, &groups, |buf, r| put_log_record(buf, r));
    }

    /// The request's one resource-level message (field 1: `ResourceSpans` or `ResourceLogs`, whose fields are
    /// numbered alike): the resource, a scope-level message per group (field 2: the scope, then the items as
    /// field 2, then the scope's schema URL), the resource's schema URL.
    fn put_request<T>(
        &self,
        buf: &mut Vec<u8>,
        groups: &[Group<'_, T>],
        put_item: impl Fn(&mut Vec<u8>, &T),
    ) {
        buf.clear();
        // Room for the lengths they usually need: a request of up to 2 MiB, an item of up to 16 KiB.
        put_message(buf, 1, 3, |buf| {
            put_bytes(buf, 1, &self.resource);
            for g in groups {
                put_message(buf, 2, 3, |buf| {
                    put_len(buf, 1, g.scope_len());
                    put_opt_bytes(buf, 1, g.name.as_bytes());
                    put_opt_bytes(buf, 2, g.scope.version().unwrap_or_default().as_bytes());
                    put_attributes(buf, 3, &g.attributes);
                    for item in &g.items {
                        put_message(buf, 2, 2, |buf| put_item(buf, item));
                    }
                    put_opt_bytes(buf, 3, g.schema_url());
                });
            }
            put_opt_bytes(buf, 3, self.schema_url.as_bytes());
        });
    }
}

// Log records: logs.v1, with the body and attributes in the logs API's own `AnyValue` (maps and bytes included).

fn log_value_len(v: &LogValue) -> usize {
    match v {
        LogValue::Int(i) => 1 + varint_len(*i as u64),
        LogValue::Double(_) => 9,
        LogValue::String(s) => len_field(1, s.as_str().len()),
        LogValue::Boolean(_) => 2,
        LogValue::Bytes(b) => len_field(7, b.len()),
        LogValue::ListAny(list) => {
            len_field(5, list.iter().map(|v| len_field(1, log_value_len(v))).sum())
        }
        LogValue::Map(map) => len_field(
            6,
            map.iter()
                .map(|(k, v)| len_field(1, log_key_value_len(k, v)))
                .sum(),
        ),
        other => len_field(1, format!("{other:?}").len()),
    }
}

fn put_log_value(buf: &mut Vec<u8>, v: &LogValue) {
    match v {
        LogValue::Int(i) => put_int_value(buf, *i),
        LogValue::Double(f) => put_double_value(buf, *f),
        LogValue::String(s) => put_bytes(buf, 1, s.as_str().as_bytes()),
        LogValue::Boolean(b) => put_bool_value(buf, *b),
        LogValue::Bytes(b) => put_bytes(buf, 7, b),
        LogValue::ListAny(list) => {
            put_len(
                buf,
                5,
                list.iter().map(|v| len_field(1, log_value_len(v))).sum(),
            );
            for v in list.iter() {
                put_len(buf, 1, log_value_len(v));
                put_log_value(buf, v);
            }
        }
        LogValue::Map(map) => {
            put_len(
                buf,
                6,
                map.iter()
                    .map(|(k, v)| len_field(1, log_key_value_len(k, v)))
                    .sum(),
            );
            for (k, v) in map.iter() {
                put_len(buf, 1, log_key_value_len(k, v));
                put_log_key_value(buf, k, v);
            }
        }
        other => put_bytes(buf, 1, format!("{other:?}").as_bytes()),
    }
}

fn log_key_value_len(k: &Key, v: &LogValue) -> usize {
    opt_bytes_len(1, k.as_str().as_bytes()) + len_field(2, log_value_len(v))
}

fn put_log_key_value(buf: &mut Vec<u8>, k: &Key, v: &LogValue) {
    put_opt_bytes(buf, 1, k.as_str().as_bytes());
    put_len(buf, 2, log_value_len(v));
    put_log_value(buf, v);
}

/// A trace id and span id.
type Ids = ([u8; 16], [u8; 8]);

/// A log record's trace context as OTLP writes it: flags, trace id, span id (all empty without one).
fn log_context(r: &SdkLogRecord) -> (u32, Option<Ids>) {
    match r.trace_context() {
        Some(c) => (
            c.trace_flags.map_or(0, |f| u32::from(f.to_u8())),
            Some((c.trace_id.to_bytes(), c.span_id.to_bytes())),
        ),
        None => (0, None),
    }
}

fn put_log_record(buf: &mut Vec<u8>, r: &SdkLogRecord) {
    let (flags, ids) = log_context(r);
    put_opt_fixed64(buf, 1, r.timestamp().map_or(0, nanos));
    put_opt_varint(buf, 2, r.severity_number().map_or(0, |s| s as u64));
    put_opt_bytes(buf, 3, r.severity_text().unwrap_or_default().as_bytes());
    if let Some(body) = r.body() {
        put_len(buf, 5, log_value_len(body));
        put_log_value(buf, body);
    }
    for (k, v) in r.attributes_iter() {
        put_len(buf, 6, log_key_value_len(k, v));
        put_log_key_value(buf, k, v);
    }
    put_opt_fixed32(buf, 8, flags);
    if let Some((t, s)) = ids {
        put_bytes(buf, 9, &t);
        put_bytes(buf, 10, &s);
    }
    put_opt_fixed64(buf, 11, r.observed_timestamp().map_or(0, nanos));
    put_opt_bytes(buf, 12, r.event_name().unwrap_or_default().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::StringValue;
    use opentelemetry::trace::{Event, Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use proptest::prelude::*;
    use prost::Message;
    use std::time::Duration;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z.]{1,12}",
            // Around the lengths the encoder copies in fixed-size pieces (up to 32 bytes, a record up to 64).
            "[a-z._]{13,70}",
            any::<String>().prop_map(|s| s.chars().take(40).collect()),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        // Finite floats: NaN never equals itself, in either decoding.
        let float = -1e300f64..1e300;
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            (-2i64..200).prop_map(Value::I64),
            float.clone().prop_map(Value::F64),
            text().prop_map(Value::from),
            prop::collection::vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(v.into())),
            prop::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(v.into())),
            prop::collection::vec(float, 0..4).prop_map(|v| Value::Array(v.into())),
            prop::collection::vec(text(), 0..4).prop_map(|v| Value::Array(
                v.into_iter()
                    .map(StringValue::from)
                    .collect::<Vec<_>>()
                    .into()
            )),
        ]
    }

    fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
        prop::collection::vec(
            (text(), value()).prop_map(|(k, v)| KeyValue::new(k, v)),
            0..6,
        )
    }

    fn time() -> impl Strategy<Value = SystemTime> {
        prop_oneof![
            Just(UNIX_EPOCH),
            (0u64..4_000_000_000_000_000_000).prop_map(|n| UNIX_EPOCH + Duration::from_nanos(n)),
        ]
    }

    fn trace_state() -> impl Strategy<Value = TraceState> {
        prop_oneof![
            Just(TraceState::default()),
            // A state made from no entries: no header either.
            Just(TraceState::from_key_value(Vec::<(String, String)>::new()).unwrap_or_default()),
            ("[a-z]{1,8}", "[a-z0-9]{1,8}").prop_map(|(k, v)| {
                TraceState::from_key_value([(k, v), ("ot".to_string(), "th:8".to_string())])
                    .unwrap_or_default()
            }),
        ]
    }

    fn context() -> impl Strategy<Value = SpanContext> {
        (
            any::<u128>(),
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
            trace_state(),
        )
            .prop_map(|(t, s, sampled, remote, state)| {
                let flags = if sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                };
                SpanContext::new(TraceId::from(t), SpanId::from(s), flags, remote, state)
            })
    }

    fn status() -> impl Strategy<Value = Status> {
        prop_oneof![
            Just(Status::Unset),
            Just(Status::Ok),
            text().prop_map(Status::error),
        ]
    }

    fn scopes() -> Vec<InstrumentationScope> {
        vec![
            InstrumentationScope::builder("app").build(),
            InstrumentationScope::builder("db")
                .with_version("1.2.3")
                .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
                .with_attributes([KeyValue::new("pool", 4), KeyValue::new("", "")])
                .build(),
            InstrumentationScope::builder("").build(),
        ]
    }

    prop_compose! {
        fn span()(
            context in context(),
            parent in prop_oneof![Just(0u64), any::<u64>()],
            parent_remote in any::<bool>(),
            kind in 0..5usize,
            name in text(),
            (start, end) in (time(), time()),
            attributes in attributes(),
            dropped in prop_oneof![Just(0u32), any::<u32>()],
            events in prop::collection::vec((time(), text(), attributes(), any::<u32>()), 0..3),
            dropped_events in prop_oneof![Just(0u32), any::<u32>()],
            links in prop::collection::vec((context(), attributes(), any::<u32>()), 0..3),
            dropped_links in prop_oneof![Just(0u32), any::<u32>()],
            status in status(),
            scope in 0..3usize,
        ) -> SpanData {
            let mut span_events = SpanEvents::default();
            span_events.events = events
                .into_iter()
                .map(|(t, n, a, d)| Event::new(n, t, a, d))
                .collect();
            span_events.dropped_count = dropped_events;
            let mut span_links = SpanLinks::default();
            span_links.links = links
                .into_iter()
                .map(|(c, a, d)| {
                    let mut l = Link::new(c, a, 0);
                    l.dropped_attributes_count = d;
                    l
                })
                .collect();
            span_links.dropped_count = dropped_links;
            SpanData {
                span_context: context,
                parent_span_id: SpanId::from(parent),
                parent_span_is_remote: parent_remote,
                span_kind: [
                    SpanKind::Internal,
                    SpanKind::Server,
                    SpanKind::Client,
                    SpanKind::Producer,
                    SpanKind::Consumer,
                ][kind].clone(),
                name: name.into(),
                start_time: start,
                end_time: end,
                attributes,
                dropped_attributes_count: dropped,
                events: span_events,
                links: span_links,
                status,
                instrumentation_scope: scopes()[scope].clone(),
            }
        }
    }

    fn resource() -> impl Strategy<Value = Resource> {
        (
            attributes(),
            prop_oneof![
                Just(None),
                Just(Some("https://opentelemetry.io/schemas/1.30.0"))
            ],
        )
            .prop_map(|(attributes, schema)| match schema {
                Some(url) => Resource::builder_empty()
                    .with_schema_url(attributes, url)
                    .build(),
                None => Resource::builder_empty()
                    .with_attributes(attributes)
                    .build(),
            })
    }

    fn reference(batch: Vec<SpanData>, resource: &Resource) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &resource.into()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_bytes_decode_to_what_opentelemetry_proto_makes_of_the_same_batch(
            batch in prop::collection::vec(span(), 0..8),
            resource in resource(),
        ) {
            let mut buf = Vec::new();
            Encoder::new(&resource).encode(&batch, &mut buf);
            let expected = reference(batch, &resource);
            let decoded = ExportTraceServiceRequest::decode(buf.as_slice())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&decoded, &expected);
            // Field for field as prost writes them, too.
            prop_assert_eq!(buf, expected.encode_to_vec());
        }
    }

    /// Lengths that need more bytes than the room left for them (an event of 128 bytes and more, a span of 16 KiB and
    /// more, a request of 2 MiB and more) and fewer (a span under 128 bytes): the same bytes as prost's.
    #[test]
    fn a_body_longer_or_shorter_than_its_room_is_moved_to_prosts_bytes() {
        let span = |value_len: usize, event_len: usize| {
            let mut events = SpanEvents::default();
            if event_len > 0 {
                events.events.push(Event::new(
                    "e",
                    UNIX_EPOCH + Duration::from_secs(1),
                    vec![KeyValue::new("k", "x".repeat(event_len))],
                    0,
                ));
            }
            SpanData {
                span_context: SpanContext::new(
                    TraceId::from(7u128),
                    SpanId::from(9u64),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::default(),
                ),
                parent_span_id: SpanId::INVALID,
                parent_span_is_remote: false,
                span_kind: SpanKind::Internal,
                name: "".into(),
                start_time: UNIX_EPOCH,
                end_time: UNIX_EPOCH,
                attributes: if value_len > 0 {
                    vec![KeyValue::new("v", "y".repeat(value_len))]
                } else {
                    Vec::new()
                },
                dropped_attributes_count: 0,
                events,
                links: SpanLinks::default(),
                status: Status::Unset,
                instrumentation_scope: InstrumentationScope::builder("s").build(),
            }
        };
        let resource = Resource::builder_empty().build();
        // Every body length around the edges of one, two and three bytes of length.
        let edges = (100..140)
            .chain(16_330..16_400)
            .chain((2_097_000..2_097_160).step_by(3));
        let batches = edges
            .flat_map(|n| [vec![span(0, n)], vec![span(n, 0)]])
            .chain([
                vec![span(0, 0)],
                vec![span(0, 200), span(10, 20_000)],
                vec![span(3 << 20, 0)],
            ]);
        for batch in batches {
            let mut buf = Vec::new();
            Encoder::new(&resource).encode(&batch, &mut buf);
            assert_eq!(buf, reference(batch, &resource).encode_to_vec());
        }
    }

    mod logs {
        use super::*;
        use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
        use opentelemetry_sdk::error::OTelSdkResult;
        use opentelemetry_sdk::logs::{LogProcessor, SdkLoggerProvider};
        use std::sync::{Arc, Mutex};

        type Kept = Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>;

        #[derive(Debug, Default)]
        struct Keep(Kept);
        impl LogProcessor for Keep {
            fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
                if let Ok(mut kept) = self.0.lock() {
                    kept.push((record.clone(), scope.clone()));
                }
            }
            fn force_flush(&self) -> OTelSdkResult {
                Ok(())
            }
            fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
                Ok(())
            }
        }

        fn log_value() -> impl Strategy<Value = LogValue> {
            let leaf = prop_oneof![
                any::<i64>().prop_map(LogValue::Int),
                (-1e300f64..1e300).prop_map(LogValue::Double),
                text().prop_map(|s| LogValue::String(s.into())),
                any::<bool>().prop_map(LogValue::Boolean),
                prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| LogValue::Bytes(Box::new(b))),
            ];
            leaf.prop_recursive(2, 12, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| LogValue::ListAny(Box::new(v))),
                    prop::collection::hash_map(text(), inner, 0..4).prop_map(|m| {
                        LogValue::Map(Box::new(
                            m.into_iter().map(|(k, v)| (Key::new(k), v)).collect(),
                        ))
                    }),
                ]
            })
        }

        /// What a record is made of; `&'static` texts come from fixed lists, as the logs API wants them.
        #[derive(Debug, Clone)]
        struct Spec {
            scope: usize,
            target: Option<String>,
            event: Option<usize>,
            time: Option<SystemTime>,
            observed: SystemTime,
            severity: Option<(usize, usize)>,
            body: Option<LogValue>,
            attributes: Vec<(String, LogValue)>,
            context: Option<(u128, u64, Option<bool>)>,
        }

        const EVENTS: [&str; 2] = ["", "user.login"];
        const TEXTS: [&str; 3] = ["", "INFO", "ERROR"];
        const SEVERITIES: [Severity; 4] = [
            Severity::Trace,
            Severity::Info,
            Severity::Warn4,
            Severity::Fatal4,
        ];

        prop_compose! {
            fn spec()(
                scope in 0..3usize,
                target in prop_oneof![
                    Just(None),
                    text().prop_map(Some),
                    Just(Some("app::db".to_string()))
                ],
                event in prop_oneof![Just(None), (0..2usize).prop_map(Some)],
                time in prop_oneof![Just(None), time().prop_map(Some)],
                observed in time(),
                severity in prop_oneof![Just(None), (0..4usize, 0..3usize).prop_map(Some)],
                body in prop_oneof![Just(None), log_value().prop_map(Some)],
                attributes in prop::collection::vec((text(), log_value()), 0..4),
                context in prop_oneof![
                    Just(None),
                    (
                        any::<u128>(),
                        any::<u64>(),
                        prop_oneof![Just(None), any::<bool>().prop_map(Some)]
                    )
                        .prop_map(Some)
                ],
            ) -> Spec {
                Spec { scope, target, event, time, observed, severity, body, attributes, context }
            }
        }

        fn records(specs: &[Spec]) -> Vec<(SdkLogRecord, InstrumentationScope)> {
            let kept = Kept::default();
            let provider = SdkLoggerProvider::builder()
                .with_log_processor(Keep(kept.clone()))
                .build();
            for spec in specs {
                let logger = provider.logger_with_scope(scopes()[spec.scope].clone());
                let mut r = logger.create_log_record();
                if let Some(t) = &spec.target {
                    r.set_target(t.clone());
                }
                if let Some(e) = spec.event {
                    r.set_event_name(EVENTS[e]);
                }
                if let Some(t) = spec.time {
                    r.set_timestamp(t);
                }
                r.set_observed_timestamp(spec.observed);
                if let Some((n, t)) = spec.severity {
                    r.set_severity_number(SEVERITIES[n]);
                    r.set_severity_text(TEXTS[t]);
                }
                if let Some(b) = &spec.body {
                    r.set_body(b.clone());
                }
                for (k, v) in &spec.attributes {
                    r.add_attribute(k.clone(), v.clone());
                }
                if let Some((t, s, flags)) = spec.context {
                    let flags = flags.map(|f| {
                        if f {
                            TraceFlags::SAMPLED
                        } else {
                            TraceFlags::default()
                        }
                    });
                    r.set_trace_context(TraceId::from(t), SpanId::from(s), flags);
                }
                logger.emit(r);
            }
            kept.lock().map(|k| k.clone()).unwrap_or_default()
        }

        /// The scopes in a stable order: opentelemetry-proto groups log records through a `HashMap`.
        fn sorted(mut request: ExportLogsServiceRequest) -> ExportLogsServiceRequest {
            for rl in &mut request.resource_logs {
                rl.scope_logs
                    .sort_by_key(|s| format!("{:?}{}", s.scope, s.schema_url));
            }
            request
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn log_bytes_decode_to_what_opentelemetry_proto_makes_of_the_same_batch(
                specs in prop::collection::vec(spec(), 0..8),
                resource in resource(),
            ) {
                let records = records(&specs);
                let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                    records.iter().map(|(r, s)| (r, s)).collect();
                let batch = LogBatch::new(&refs);
                let mut buf = Vec::new();
                Encoder::new(&resource).encode_logs(&batch, &mut buf);
                let expected = ExportLogsServiceRequest {
                    resource_logs: group_logs_by_resource_and_scope(&batch, &(&resource).into()),
                };
                let decoded = ExportLogsServiceRequest::decode(buf.as_slice())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(sorted(decoded), sorted(expected));
            }
        }
    }

    #[test]
    fn varint_lengths_match_their_encoding() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
            (-1i64) as u64,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
        }
    }
}
