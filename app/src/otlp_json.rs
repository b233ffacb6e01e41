//! Reading the OTLP JSON lines the `file` exporters write, flattened for assertions and display.

use serde_json::Value;
use std::path::Path;

/// One exported span, flattened.
#[derive(Debug, Clone)]
pub struct Span {
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id (empty for roots).
    pub parent_span_id: String,
    /// The name.
    pub name: String,
    /// OTLP kind number (2 = server, 3 = client).
    pub kind: i64,
    /// Attributes as `(key, value as text)`.
    pub attributes: Vec<(String, String)>,
    /// `service.name` of the resource that exported it.
    pub service: String,
    /// The W3C `tracestate` it carried (empty when none).
    pub trace_state: String,
}

impl Span {
    /// The text of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every JSON line of `path` (missing file: none). A line that does not parse is an error.
pub fn lines(path: &Path) -> Result<Vec<Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => return Ok(Vec::new()),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| format!("{}: bad JSON line: {e}", path.display()))
        })
        .collect()
}

/// The text of an OTLP `AnyValue`.
pub fn any_value(v: &Value) -> String {
    for k in ["stringValue", "intValue", "doubleValue", "boolValue"] {
        if let Some(x) = v.get(k) {
            return x
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| x.to_string());
        }
    }
    v.to_string()
}

fn attrs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap_or("").to_string(),
                        any_value(&kv["value"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every span of an OTLP traces JSON lines file.
pub fn spans(path: &Path) -> Result<Vec<Span>, String> {
    let mut out = Vec::new();
    for line in lines(path)? {
        for rs in line["resourceSpans"].as_array().into_iter().flatten() {
            let service = attrs(&rs["resource"]["attributes"])
                .into_iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v)
                .unwrap_or_default();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    out.push(Span {
                        trace_id: s["traceId"].as_str().unwrap_or("").to_string(),
                        span_id: s["spanId"].as_str().unwrap_or("").to_string(),
                        parent_span_id: s["parentSpanId"].as_str().unwrap_or("").to_string(),
                        name: s["name"].as_str().unwrap_or("").to_string(),
                        kind: s["kind"].as_i64().unwrap_or(0),
                        attributes: attrs(&s["attributes"]),
                        service: service.clone(),
                        trace_state: s["traceState"].as_str().unwrap_or("").to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `(metric name, data point count)` of the last collection in an OTLP metrics JSON lines file.
pub fn last_metrics(path: &Path) -> Result<Vec<(String, usize)>, String> {
    let all = lines(path)?;
    let Some(last) = all.last() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for rm in last["resourceMetrics"].as_array().into_iter().flatten() {
        for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
            for m in sm["metrics"].as_array().into_iter().flatten() {
                let points = ["sum", "gauge", "histogram", "exponentialHistogram"]
                    .iter()
                    .filter_map(|k| m[*k]["dataPoints"].as_array())
                    .map(|a| a.len())
                    .sum();
                out.push((m["name"].as_str().unwrap_or("").to_string(), points));
            }
        }
    }
    Ok(out)
}

/// One exported log record, flattened.
#[derive(Debug, Clone)]
pub struct Log {
    /// The severity text (`INFO`, …).
    pub severity: String,
    /// The body as text.
    pub body: String,
    /// Hex trace id (empty outside a span).
    pub trace_id: String,
    /// Hex span id (empty outside a span).
    pub span_id: String,
    /// Attributes as `(key, value as text)`.
    pub attributes: Vec<(String, String)>,
}

/// Every log record of an OTLP logs JSON lines file.
pub fn logs(path: &Path) -> Result<Vec<Log>, String> {
    let mut out = Vec::new();
    for line in lines(path)? {
        for rl in line["resourceLogs"].as_array().into_iter().flatten() {
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                for l in sl["logRecords"].as_array().into_iter().flatten() {
                    out.push(Log {
                        severity: l["severityText"].as_str().unwrap_or("").to_string(),
                        body: any_value(&l["body"]),
                        trace_id: l["traceId"].as_str().unwrap_or("").to_string(),
                        span_id: l["spanId"].as_str().unwrap_or("").to_string(),
                        attributes: attrs(&l["attributes"]),
                    });
                }
            }
        }
    }
    Ok(out)
}
