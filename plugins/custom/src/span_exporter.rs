//! The span exporter `custom_jsonl`: one JSON object per finished span, one span per line, written whole (a line
//! is never torn) and flushed after every batch.

use ndotel_api::{AnyValue, BoxError, KeyValueRef, SpanExporter, SpanKind, SpanView, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `[distro.otel_custom_distro.span_exporter]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExporterSettings {
    /// Output file; relative paths are relative to the `distro.toml` directory. Appended to.
    pub path: PathBuf,
}

impl Default for ExporterSettings {
    fn default() -> Self {
        ExporterSettings {
            path: PathBuf::from("spans.jsonl"),
        }
    }
}

/// The exporter.
#[derive(Debug)]
pub struct JsonLinesExporter {
    out: Mutex<BufWriter<File>>,
}

impl JsonLinesExporter {
    /// Opens (creates or appends to) the output file.
    pub fn new(settings: &ExporterSettings, base_dir: &Path) -> Result<Self, BoxError> {
        let path = base_dir.join(&settings.path);
        let file = crate::output::open_append(&path)
            .map_err(|e| format!("cannot open span output {}: {e}", path.display()))?;
        Ok(JsonLinesExporter {
            out: Mutex::new(BufWriter::new(file)),
        })
    }
}

fn attributes_json(attributes: &[KeyValueRef<'_>]) -> Value {
    let mut map = Map::new();
    for kv in attributes {
        let v = match kv.value.get() {
            AnyValue::Bool(b) => json!(b),
            AnyValue::I64(i) => json!(i),
            AnyValue::F64(f) => json!(f),
            AnyValue::Str(s) => json!(s),
            AnyValue::BoolArray(v) => json!(v),
            AnyValue::I64Array(v) => json!(v),
            AnyValue::F64Array(v) => json!(v),
            AnyValue::StrArray(v) => json!(v.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            _ => json!("<unknown>"),
        };
        map.insert(kv.key.as_str().to_owned(), v);
    }
    Value::Object(map)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON object written for one span.
pub fn span_json(span: &SpanView<'_>) -> Value {
    let kind = match span.kind() {
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    };
    let status = match span.status() {
        StatusCode::Unset => "unset",
        StatusCode::Ok => "ok",
        StatusCode::Error => "error",
    };
    let parent = if span.parent_span_id() == [0; 8] {
        Value::Null
    } else {
        json!(hex(&span.parent_span_id()))
    };
    let events: Vec<Value> = span
        .events()
        .map(|e| {
            json!({
                "name": e.name,
                "time_unix_nanos": e.time_unix_nanos,
                "attributes": attributes_json(e.attributes),
            })
        })
        .collect();
    let links: Vec<Value> = span
        .links()
        .map(|l| {
            json!({
                "trace_id": hex(&l.trace_id),
                "span_id": hex(&l.span_id),
                "attributes": attributes_json(l.attributes),
            })
        })
        .collect();
    json!({
        "trace_id": hex(&span.trace_id()),
        "span_id": hex(&span.span_id()),
        "parent_span_id": parent,
        "name": span.name(),
        "kind": kind,
        "start_unix_nanos": span.start_unix_nanos(),
        "end_unix_nanos": span.end_unix_nanos(),
        "status": status,
        "status_message": span.status_message(),
        "scope": span.scope().0,
        "attributes": attributes_json(span.attributes()),
        "events": events,
        "links": links,
        "resource": attributes_json(span.resource()),
    })
}

impl SpanExporter for JsonLinesExporter {
    fn export(&self, spans: &[SpanView<'_>]) -> Result<(), BoxError> {
        let mut buf = Vec::with_capacity(spans.len() * 512);
        for span in spans {
            serde_json::to_writer(&mut buf, &span_json(span))?;
            buf.push(b'\n');
        }
        let mut out = self.out.lock().map_err(|_| "span output lock poisoned")?;
        out.write_all(&buf)?;
        out.flush()?;
        Ok(())
    }

    fn force_flush(&self) -> Result<(), BoxError> {
        self.out
            .lock()
            .map_err(|_| "span output lock poisoned")?
            .flush()?;
        Ok(())
    }
}
