//! The span exporter `custom_jsonl`: one JSON object per finished span, one span per line, written whole (a line
//! is never torn) and flushed after every batch.

use ndotel_api::{BoxError, KeyValueRef, SpanExporter, SpanKind, SpanView, StatusCode, ValueRef};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::fs::{File, OpenOptions};
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
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open span output {}: {e}", path.display()))?;
        Ok(JsonLinesExporter {
            out: Mutex::new(BufWriter::new(file)),
        })
    }
}

fn attributes_json(attributes: &[KeyValueRef<'_>]) -> Value {
    let mut map = Map::new();
    for kv in attributes {
        let v = match kv.value {
            ValueRef::Bool(b) => json!(b),
            ValueRef::I64(i) => json!(i),
            ValueRef::F64(f) => json!(f),
            ValueRef::Str(s) => json!(s.as_str()),
            ValueRef::Other => json!("<array>"),
        };
        map.insert(kv.key.as_str().to_owned(), v);
    }
    Value::Object(map)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON object written for one span.
pub fn span_json(resource: &[KeyValueRef<'_>], span: &SpanView<'_>) -> Value {
    let kind = match span.kind {
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    };
    let status = match span.status {
        StatusCode::Unset => "unset",
        StatusCode::Ok => "ok",
        StatusCode::Error => "error",
    };
    let parent = if span.parent_span_id == [0; 8] {
        Value::Null
    } else {
        json!(hex(&span.parent_span_id))
    };
    json!({
        "trace_id": hex(&span.trace_id),
        "span_id": hex(&span.span_id),
        "parent_span_id": parent,
        "name": span.name.as_str(),
        "kind": kind,
        "start_unix_nanos": span.start_unix_nanos,
        "end_unix_nanos": span.end_unix_nanos,
        "status": status,
        "status_message": span.status_message.as_str(),
        "scope": span.scope_name.as_str(),
        "attributes": attributes_json(span.attributes.as_slice()),
        "resource": attributes_json(resource),
    })
}

impl SpanExporter for JsonLinesExporter {
    fn export(&self, resource: &[KeyValueRef<'_>], spans: &[SpanView<'_>]) -> Result<(), BoxError> {
        let mut buf = Vec::with_capacity(spans.len() * 512);
        for span in spans {
            serde_json::to_writer(&mut buf, &span_json(resource, span))?;
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
