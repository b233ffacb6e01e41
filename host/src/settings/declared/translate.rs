//! What a validated configuration file means for ndotel: values of the standard settings (keyed by their
//! environment variable, each with its origin), metric views, the composite sampler and the distro's settings.
//! What ndotel cannot honour is found by [`super::support::unsupported`] and said as a warning naming its path.

use crate::consistent::ComposableConfig;
use crate::settings::config::ViewConfig;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The file, translated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Translated {
    /// Standard (and `OTEL_RUST_*`) settings by variable: value and origin (`file:line path`).
    pub(crate) vars: BTreeMap<String, (String, String)>,
    /// `meter_provider.views`, in order.
    pub(crate) views: Vec<ViewConfig>,
    /// `tracer_provider.sampler` when it is a composite (or `probability/development`) sampler.
    pub(crate) composite: Option<ComposableConfig>,
    /// `distribution.ndotel.settings`: the named distro's settings.
    pub(crate) distro_settings: Option<(String, toml::Table)>,
    /// What ndotel cannot honour, and where.
    pub(crate) warnings: Vec<String>,
    /// Resource attributes of a type other than string, typed (their text is in `OTEL_RESOURCE_ATTRIBUTES` too, for
    /// `ndotel config`; the resource is built with these values).
    pub(crate) typed_resource: Vec<opentelemetry::KeyValue>,
    /// The first reader's `cardinality_limits` (ndotel's limits are the meter provider's).
    pub(crate) cardinality_limits: Option<crate::settings::config::CardinalityLimits>,
    /// `resource.schema_url`.
    pub(crate) resource_schema_url: Option<String>,
    /// Variables the file reads besides its `${…}` references (the `service` detector reads `OTEL_SERVICE_NAME`).
    pub(crate) referenced: std::collections::BTreeSet<String>,
}

/// A problem that makes the file unusable: the JSON pointer of the node and what is wrong.
type Problem = (String, String);

struct T<'a> {
    origin: &'a dyn Fn(&str) -> String,
    var: &'a dyn Fn(&str) -> Option<String>,
    out: Translated,
}

impl T<'_> {
    fn set(&mut self, var: &str, value: impl Into<String>, pointer: &str) {
        let value = value.into();
        if let Some((old, origin)) = self.out.vars.get(var)
            && *old != value
        {
            let w = format!(
                "{}: ignored: {origin} already sets what this would ({var}); ndotel has one value for it",
                (self.origin)(pointer)
            );
            self.out.warnings.push(w);
            return;
        }
        let origin = (self.origin)(pointer);
        self.out.vars.insert(var.to_string(), (value, origin));
    }

    /// `var` set to `value` because the file leaves `key` out ("if omitted, a noop … is used").
    fn omitted(&mut self, var: &str, value: &str, key: &str) {
        let origin = (self.origin)("");
        let origin = origin
            .strip_suffix(" (the document)")
            .map(|file| format!("{file} (no `{key}`)"))
            .unwrap_or(origin);
        self.out
            .vars
            .insert(var.to_string(), (value.to_string(), origin));
    }

    fn warn(&mut self, pointer: &str, message: impl std::fmt::Display) {
        let w = format!("{}: {message}", (self.origin)(pointer));
        self.out.warnings.push(w);
    }
}

/// Translates `model` (validated); `origin` names where a pointer's node is, `var` reads the environment (for the
/// `service` resource detector).
pub(crate) fn translate(
    model: &Value,
    origin: &dyn Fn(&str) -> String,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Translated, Problem> {
    let mut t = T {
        origin,
        var,
        out: Translated::default(),
    };
    for (pointer, message) in super::support::unsupported(model) {
        t.warn(&pointer, message);
    }
    limits(
        &mut t,
        model.get("attribute_limits"),
        "/attribute_limits",
        &[
            ("attribute_count_limit", "OTEL_ATTRIBUTE_COUNT_LIMIT"),
            (
                "attribute_value_length_limit",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ),
        ],
    );
    if let Some(d) = model.get("disabled").and_then(Value::as_bool) {
        t.set("OTEL_SDK_DISABLED", d.to_string(), "/disabled");
    }
    resource(&mut t, model.get("resource"));
    propagators(&mut t, model.get("propagator"));
    traces(&mut t, model.get("tracer_provider"))?;
    metrics(&mut t, model.get("meter_provider"))?;
    logs(&mut t, model.get("logger_provider"))?;
    unknown_root_keys(&mut t, model)?;
    distribution(&mut t, model.get("distribution"))?;
    Ok(t.out)
}

/// An object's entries (none for null or another type).
fn entries(v: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    v.and_then(Value::as_object).into_iter().flatten()
}

/// The only entry of a one-key object (a `Sampler`, an exporter, a processor).
fn only(v: &Value) -> Option<(&str, &Value)> {
    v.as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.as_str(), v))
}

fn key(k: &str) -> String {
    super::yaml::escape(k)
}

/// Percent-encodes what the `key=value,…` lists of the environment would otherwise split on.
fn encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b',')
        .add(b'=')
        .add(b'%')
        .add(b' ')
        .add(b'"');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn resource(t: &mut T, r: Option<&Value>) {
    let Some(r) = r else { return };
    t.out.resource_schema_url = r
        .get("schema_url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    let mut pairs: Vec<String> = Vec::new();
    let mut pointer = "/resource".to_string();
    if let Some(list) = r.get("attributes_list").and_then(Value::as_str) {
        for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
            match pair.split_once('=') {
                Some((k, _)) if !k.trim().is_empty() => pairs.push(pair.to_string()),
                // Not repeated: it may hold a value meant to stay private.
                _ => t.warn(
                    "/resource/attributes_list",
                    "an entry that is not `key=value` is left out; the other attributes stay",
                ),
            }
        }
        pointer = "/resource/attributes_list".into();
    }
    let mut named_service = pairs.iter().any(|p| {
        p.split('=')
            .next()
            .is_some_and(|k| k.trim() == "service.name")
    });
    for (i, a) in r
        .get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = format!("/resource/attributes/{i}");
        let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
        let value = match a.get("value") {
            Some(Value::Null) | None => continue,
            Some(v) => v,
        };
        let ty = a.get("type").and_then(Value::as_str).unwrap_or("string");
        // Its text (for `OTEL_RESOURCE_ATTRIBUTES`) and, when its type is not a string, its typed value.
        let (text, typed) = match typed_attribute(ty, value) {
            Some(typed) => {
                let text = match &typed {
                    opentelemetry::Value::Array(opentelemetry::Array::String(items)) => items
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                (text, (ty != "string").then_some(typed))
            }
            // The schema says a value must match its type (a string when none is given): one that does not is set as
            // its text when no type was given, and left out when the type it was given is another.
            None if a.get("type").is_some_and(|t| !t.is_null()) => {
                t.warn(
                    &p,
                    format!("`{name}`'s value is not of its type `{ty}`; left out"),
                );
                continue;
            }
            None => {
                let text = match value {
                    Value::Array(items) => items
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                t.warn(
                    &p,
                    format!(
                        "`{name}` has no `type`, so it is a string, and its value is not one: set to \"{text}\" \
                         (give it its `type`, e.g. `type: int`)"
                    ),
                );
                (text, None)
            }
        };
        if name.contains([',', '=', '%']) {
            t.warn(
                &p,
                "a resource attribute name with `,`, `=` or `%` cannot be set by ndotel; left out",
            );
            continue;
        }
        // The last entry of a name wins, as in `OTEL_RESOURCE_ATTRIBUTES`, whose keys are trimmed.
        let key = name.trim();
        t.out.typed_resource.retain(|kv| kv.key.as_str() != key);
        if let Some(typed) = typed {
            t.out
                .typed_resource
                .push(opentelemetry::KeyValue::new(key.to_string(), typed));
        }
        named_service |= name == "service.name";
        pairs.push(format!("{name}={}", encode(&text)));
        pointer = "/resource/attributes".into();
    }
    // The `service` detector reads OTEL_SERVICE_NAME; attributes the file names take precedence.
    let mut detected: Vec<String> = Vec::new();
    let detectors = r
        .pointer("/detection~1development/detectors")
        .and_then(Value::as_array);
    for (i, d) in detectors.into_iter().flatten().enumerate() {
        match only(d).map(|(kind, _)| kind) {
            Some("host") => detected.extend(host_attributes()),
            Some("process") => detected.extend(process_attributes()),
            Some("container") => detected.extend(container_attributes()),
            _ => {}
        }
        if let Some((kind, _)) = only(d)
            && !matches!(kind, "service" | "host" | "process" | "container")
        {
            t.warn(
                &format!(
                    "/resource/detection~1development/detectors/{i}/{}",
                    key(kind)
                ),
                format!("`{kind}` is not a resource detector ndotel has; it has no effect"),
            );
        }
        if d.get("service").is_some() {
            t.out.referenced.insert("OTEL_SERVICE_NAME".into());
        }
        if d.get("service").is_some()
            && !named_service
            && let Some(name) = (t.var)("OTEL_SERVICE_NAME")
            && !name.trim().is_empty()
        {
            t.set(
                "OTEL_SERVICE_NAME",
                name,
                &format!("/resource/detection~1development/detectors/{i}/service"),
            );
        }
    }
    // What the detectors found, under what the file names (the last of a key wins).
    let pairs: Vec<String> = detected.into_iter().chain(pairs).collect();
    if !pairs.is_empty() {
        t.set("OTEL_RESOURCE_ATTRIBUTES", pairs.join(","), &pointer);
    }
}

/// `value` as an attribute of schema type `ty` (`string`, `bool`, `int`, `double` and their `_array`s), when it is
/// one: an integer written as a float with no fraction (`1.0`) is an integer, any number a double.
fn typed_attribute(ty: &str, value: &Value) -> Option<opentelemetry::Value> {
    use opentelemetry::{Array, StringValue, Value as V};
    fn int(v: &Value) -> Option<i64> {
        v.as_i64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        })
    }
    let items = || value.as_array().filter(|a| !a.is_empty());
    Some(match ty {
        "string" => V::from(value.as_str()?.to_string()),
        "bool" => V::Bool(value.as_bool()?),
        "int" => V::I64(int(value)?),
        "double" => V::F64(value.as_f64()?),
        "string_array" => V::Array(Array::String(
            items()?
                .iter()
                .map(|v| v.as_str().map(|s| StringValue::from(s.to_string())))
                .collect::<Option<_>>()?,
        )),
        "bool_array" => V::Array(Array::Bool(
            items()?.iter().map(Value::as_bool).collect::<Option<_>>()?,
        )),
        "int_array" => V::Array(Array::I64(items()?.iter().map(int).collect::<Option<_>>()?)),
        "double_array" => V::Array(Array::F64(
            items()?.iter().map(Value::as_f64).collect::<Option<_>>()?,
        )),
        _ => return None,
    })
}

/// The `host` detector's attributes: `host.name` and `host.arch` (as the semantic conventions spell it).
fn host_attributes() -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..end])
            && !name.is_empty()
        {
            out.push(format!("host.name={}", encode(name)));
        }
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm32",
        "powerpc64" => "ppc64",
        other => other,
    };
    out.push(format!("host.arch={arch}"));
    out
}

/// The `process` detector's attributes: `process.pid`, `process.executable.name` and `process.executable.path`
/// (never the command line: it may hold secrets).
fn process_attributes() -> Vec<String> {
    let mut out = vec![format!("process.pid={}", std::process::id())];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(name) = exe.file_name().and_then(|n| n.to_str()) {
            out.push(format!("process.executable.name={}", encode(name)));
        }
        if let Some(path) = exe.to_str() {
            out.push(format!("process.executable.path={}", encode(path)));
        }
    }
    out
}

/// The `container` detector's attribute: `container.id`, the 64-hex-digit id the container runtime put in this
/// process's cgroup path (cgroup v1) or in its mounts (cgroup v2); none outside a container.
fn container_attributes() -> Vec<String> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    container_id(&read("/proc/self/cgroup"))
        .or_else(|| container_id(&read("/proc/self/mountinfo")))
        .map(|id| vec![format!("container.id={id}")])
        .unwrap_or_default()
}

/// The first run of exactly 64 hexadecimal digits that stands as a path segment (or ends one, as in
/// `docker-<id>.scope`), in `text`.
pub(crate) fn container_id(text: &str) -> Option<String> {
    text.split(['/', '\n', ' ', '-', '.', ':'])
        .find(|seg| seg.len() == 64 && seg.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
}

fn propagators(t: &mut T, p: Option<&Value>) {
    let Some(p) = p else {
        // "If omitted, a noop propagator is used."
        t.omitted("OTEL_PROPAGATORS", "none", "propagator");
        return;
    };
    let mut names: Vec<String> = Vec::new();
    for item in p
        .get("composite")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some((name, _)) = only(item) {
            names.push(name.to_string());
        }
    }
    if let Some(list) = p.get("composite_list").and_then(Value::as_str) {
        names.extend(crate::settings::list(list));
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let value = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    };
    t.set("OTEL_PROPAGATORS", value, "/propagator");
}

/// One signal's settings in variable names.
#[derive(Clone, Copy)]
struct Signal {
    /// `TRACES`, `METRICS`, `LOGS`.
    name: &'static str,
    /// `OTEL_TRACES_EXPORTER` …
    exporters: &'static str,
    /// The variable of the file exporter's path.
    file_path: &'static str,
}

const TRACES: Signal = Signal {
    name: "TRACES",
    exporters: "OTEL_TRACES_EXPORTER",
    file_path: "OTEL_EXPORTER_FILE_TRACES_PATH",
};
const METRICS: Signal = Signal {
    name: "METRICS",
    exporters: "OTEL_METRICS_EXPORTER",
    file_path: "OTEL_EXPORTER_FILE_METRICS_PATH",
};
const LOGS: Signal = Signal {
    name: "LOGS",
    exporters: "OTEL_LOGS_EXPORTER",
    file_path: "OTEL_EXPORTER_FILE_LOGS_PATH",
};

/// Translates one exporter (`{ otlp_http: {…} }`) at `pointer`, named by [`exporter_name`]; `file` is where an
/// `otlp_file/development` one writes, as [`file_output`] found it.
fn exporter(t: &mut T, s: Signal, e: &Value, pointer: &str, file: Option<String>) {
    let Some((kind, cfg)) = only(e) else {
        return;
    };
    let p = format!("{pointer}/{}", key(kind));
    let temporality = |t: &mut T, cfg: &Value| {
        if let Some(v) = cfg.get("temporality_preference").and_then(Value::as_str) {
            // The schema's `low_memory` is the environment's `lowmemory`.
            t.set(
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                v.replace('_', ""),
                &format!("{p}/temporality_preference"),
            );
        }
    };
    match kind {
        "otlp_http" | "otlp_grpc" => {
            let protocol = match (kind, cfg.get("encoding").and_then(Value::as_str)) {
                ("otlp_grpc", _) => "grpc",
                (_, Some("json")) => "http/json",
                _ => "http/protobuf",
            };
            let otlp = |setting: &str| format!("OTEL_EXPORTER_OTLP_{}_{setting}", s.name);
            t.set(&otlp("PROTOCOL"), protocol, &p);
            if let Some(v) = cfg.get("endpoint").and_then(Value::as_str) {
                t.set(&otlp("ENDPOINT"), v, &format!("{p}/endpoint"));
            }
            if let Some(v) = cfg.get("compression").and_then(Value::as_str) {
                t.set(&otlp("COMPRESSION"), v, &format!("{p}/compression"));
            }
            if let Some(v) = cfg.get("timeout").and_then(uint) {
                // 0, "no limit" in the schema, is read as the environment's 0: no limit too.
                t.set(&otlp("TIMEOUT"), v.to_string(), &format!("{p}/timeout"));
            }
            temporality(t, cfg);
            for (field, setting) in [
                ("ca_file", "CERTIFICATE"),
                ("cert_file", "CLIENT_CERTIFICATE"),
                ("key_file", "CLIENT_KEY"),
            ] {
                if let Some(v) = cfg
                    .pointer(&format!("/tls/{field}"))
                    .and_then(Value::as_str)
                {
                    t.set(&otlp(setting), v, &format!("{p}/tls/{field}"));
                }
            }
            if kind == "otlp_grpc"
                && let Some(v) = cfg.pointer("/tls/insecure").and_then(Value::as_bool)
            {
                t.set(
                    &otlp("INSECURE"),
                    v.to_string(),
                    &format!("{p}/tls/insecure"),
                );
            }
            if let Some(headers) = headers(t, cfg, &p) {
                let at = if cfg.get("headers").is_some() {
                    "headers"
                } else {
                    "headers_list"
                };
                t.set(&otlp("HEADERS"), headers, &format!("{p}/{at}"));
            }
        }
        "console" => temporality(t, cfg),
        "otlp_file/development" => {
            if let Some(path) = file {
                t.set(s.file_path, path, &format!("{p}/output_stream"));
            }
            temporality(t, cfg);
        }
        // A distro's exporter, by name: its settings are the distro's.
        _ => {
            if cfg.as_object().is_some_and(|m| !m.is_empty()) {
                t.warn(
                    &p,
                    "a distro's exporter takes its settings from the distro (distribution.ndotel.settings); these \
                     properties have no effect",
                );
            }
        }
    }
}

/// `headers` over `headers_list`, as `OTEL_EXPORTER_OTLP_HEADERS` writes them. A `headers` entry whose value is
/// null is ignored (as the schema says); a `headers_list` entry without `=` is left out with a warning that does not
/// repeat it (it may be a token).
fn headers(t: &mut T, cfg: &Value, p: &str) -> Option<String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(list) = cfg.get("headers_list").and_then(Value::as_str) {
        for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    pairs.push((k.trim().to_string(), v.trim().to_string()));
                }
                _ => t.warn(
                    &format!("{p}/headers_list"),
                    "an entry without `name=` is left out (not repeated here: it may be a secret)",
                ),
            }
        }
    }
    for h in cfg
        .get("headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = h.get("name").and_then(Value::as_str).unwrap_or_default();
        let Some(value) = h.get("value").and_then(Value::as_str) else {
            continue;
        };
        pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        pairs.push((name.to_string(), encode(value)));
    }
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The name an exporter (`{ otlp_http: {…} }`) has in the signal's exporter list (a key the schema does not define
/// names a distro's exporter), or the problem: a built-in name of the environment (`otlp`, `file`) written where the
/// schema has its own (`otlp_http`, `otlp_file/development`) would otherwise drop its settings without a word.
fn exporter_name(e: &Value, pointer: &str) -> Result<Option<String>, Problem> {
    let Some((kind, _)) = only(e) else {
        return Ok(None);
    };
    Ok(Some(match kind {
        "otlp_http" | "otlp_grpc" => "otlp".into(),
        "console" => "console".into(),
        "otlp_file/development" => "file".into(),
        "otlp" | "file" | "none" | "prometheus" | "zipkin" | "jaeger" | "logging" | "otlp_file" => {
            return Err((
                format!("{pointer}/{}", key(kind)),
                format!(
                    "`{kind}` is the environment's name, not an exporter of the configuration schema: write \
                     otlp_http, otlp_grpc, otlp_file/development or console (or a distro's exporter by name)"
                ),
            ));
        }
        other => other.to_string(),
    }))
}

/// Where an `otlp_file/development` exporter writes (`stdout` or `file:///path`), or `None` (with a warning) when
/// its `output_stream` is neither: the exporter is then left out, and its processor or reader with it.
fn file_output(t: &mut T, e: &Value, pointer: &str) -> Option<Option<String>> {
    let Some(("otlp_file/development", cfg)) = only(e) else {
        return Some(None);
    };
    let stream = cfg
        .get("output_stream")
        .and_then(Value::as_str)
        .unwrap_or("stdout");
    if stream == "stdout" {
        return Some(Some("/dev/stdout".to_string()));
    }
    if let Some(path) = stream.strip_prefix("file://") {
        return Some(Some(path.to_string()));
    }
    t.warn(
        &format!("{pointer}/otlp_file~1development/output_stream"),
        format!(
            "output_stream {stream:?} is neither `stdout` nor `file:///path`; this exporter is left out, with the \
             settings of its processor or reader"
        ),
    );
    None
}

/// A processor's kind that is neither `batch` nor `simple`: a misspelling is an error; another name is left out
/// with a warning (a distro's own processor always runs, named or not).
fn other_processor(t: &mut T, kind: &str, p: &str) -> Result<(), Problem> {
    let hint = crate::text::did_you_mean(kind, ["batch", "simple"]);
    if !hint.is_empty() {
        return Err((p.to_string(), format!("unknown processor `{kind}`{hint}")));
    }
    t.warn(
        p,
        format!(
            "`{kind}` is not a processor ndotel has (batch, simple); it is left out (a distro's own processor \
             always runs)"
        ),
    );
    Ok(())
}

/// The processors of a tracer or logger provider: their exporters, and the batch settings (one set per signal). A
/// processor whose exporter is left out (a second one of a kind) contributes nothing, its settings included.
fn processors(
    t: &mut T,
    s: Signal,
    provider: &str,
    list: Option<&Value>,
    batch_prefix: &str,
) -> Result<(), Problem> {
    let mut names: Vec<String> = Vec::new();
    for (i, proc_) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some((kind, cfg)) = only(proc_) else {
            continue;
        };
        let p = format!("/{provider}/processors/{i}/{}", key(kind));
        if !matches!(kind, "batch" | "simple") {
            other_processor(t, kind, &p)?;
            continue;
        }
        let ep = format!("{p}/exporter");
        let Some(e) = cfg.get("exporter") else {
            continue;
        };
        let Some(name) = exporter_name(e, &ep)? else {
            continue;
        };
        if names.contains(&name) {
            t.warn(
                &ep,
                format!(
                    "a second `{name}` exporter for {}: ndotel sends a signal to one destination of each kind; this \
                     processor is left out, with all its settings",
                    s.name.to_lowercase()
                ),
            );
            continue;
        }
        let Some(file) = file_output(t, e, &ep) else {
            continue;
        };
        if kind == "simple" {
            t.warn(
                &p,
                "ndotel exports through its batch processor, off the application's threads: this exporter is \
                 used there, with the batch settings",
            );
        }
        for (field, setting, tracer_only) in [
            ("schedule_delay", "SCHEDULE_DELAY", false),
            ("export_timeout", "EXPORT_TIMEOUT", true),
            ("max_queue_size", "MAX_QUEUE_SIZE", false),
            ("max_export_batch_size", "MAX_EXPORT_BATCH_SIZE", false),
        ] {
            if tracer_only && s.name != "TRACES" {
                continue;
            }
            if let Some(v) = cfg.get(field).and_then(uint) {
                t.set(
                    &format!("{batch_prefix}_{setting}"),
                    v.to_string(),
                    &format!("{p}/{field}"),
                );
            }
        }
        exporter(t, s, e, &ep, file);
        names.push(name);
    }
    let value = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    };
    t.set(s.exporters, value, &format!("/{provider}/processors"));
    Ok(())
}

/// A non-negative integer, also when written as a float with no fraction (`512.0`, `1e3`); saturating.
fn uint(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        let f = v.as_f64()?;
        // `as` saturates: 1e30 is u64::MAX, which the settings then clamp.
        (f >= 0.0 && f.fract() == 0.0).then_some(f as u64)
    })
}

/// Each integer of the limits object `limits` (at `pointer`) as its variable: `(property, variable)`.
fn limits(t: &mut T, limits: Option<&Value>, pointer: &str, fields: &[(&str, &str)]) {
    for (field, var) in fields {
        if let Some(v) = limits.and_then(|l| l.get(*field)).and_then(uint) {
            t.set(var, v.to_string(), &format!("{pointer}/{field}"));
        }
    }
}

fn traces(t: &mut T, tp: Option<&Value>) -> Result<(), Problem> {
    let Some(tp) = tp else {
        // "If omitted, a noop tracer provider is used."
        t.omitted(TRACES.exporters, "none", "tracer_provider");
        return Ok(());
    };
    processors(
        t,
        TRACES,
        "tracer_provider",
        tp.get("processors"),
        "OTEL_BSP",
    )?;
    limits(
        t,
        tp.get("limits"),
        "/tracer_provider/limits",
        &[
            ("attribute_count_limit", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"),
            (
                "attribute_value_length_limit",
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ),
            ("event_count_limit", "OTEL_SPAN_EVENT_COUNT_LIMIT"),
            ("link_count_limit", "OTEL_SPAN_LINK_COUNT_LIMIT"),
            (
                "event_attribute_count_limit",
                "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
            ),
            (
                "link_attribute_count_limit",
                "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
            ),
        ],
    );
    let Some((kind, cfg)) = tp.get("sampler").and_then(only) else {
        return Ok(());
    };
    let p = format!("/tracer_provider/sampler/{}", key(kind));
    let ratio = |cfg: &Value| cfg.get("ratio").and_then(Value::as_f64).unwrap_or(1.0);
    match kind {
        "always_on" | "always_off" => t.set("OTEL_TRACES_SAMPLER", kind, &p),
        "trace_id_ratio_based" => {
            t.set("OTEL_TRACES_SAMPLER", "traceidratio", &p);
            t.set("OTEL_TRACES_SAMPLER_ARG", ratio(cfg).to_string(), &p);
        }
        "parent_based" => {
            parent_children(t, cfg, &p);
            parent_based(t, cfg, &p);
        }
        "probability/development" => {
            t.out.composite = Some(ComposableConfig::Probability(
                crate::consistent::ProbabilityConfig {
                    ratio: Some(ratio(cfg)),
                    precision: None,
                },
            ));
            t.set("OTEL_TRACES_SAMPLER", "composite", &p);
        }
        "composite/development" => {
            let config: ComposableConfig = serde_json::from_value(composable(cfg.clone()))
                .map_err(|e| (p.clone(), format!("{e}")))?;
            config.build().map_err(|e| (p.clone(), e.to_string()))?;
            t.out.composite = Some(config);
            t.set("OTEL_TRACES_SAMPLER", "composite", &p);
        }
        "jaeger_remote/development" => {}
        "traceidratio"
        | "parentbased_always_on"
        | "parentbased_always_off"
        | "parentbased_traceidratio"
        | "composite"
        | "jaeger_remote"
        | "parentbased_jaeger_remote"
        | "xray" => {
            return Err((
                p,
                format!(
                    "`{kind}` is the environment's name, not a sampler of the configuration schema: write always_on, \
                     always_off, trace_id_ratio_based, parent_based, probability/development or \
                     composite/development (or a distro's sampler by name)"
                ),
            ));
        }
        // A distro's sampler, by name: its settings are the distro's.
        other => {
            if cfg.as_object().is_some_and(|m| !m.is_empty()) {
                t.warn(
                    &p,
                    "a distro's sampler takes its settings from the distro (distribution.ndotel.settings); these \
                     properties have no effect",
                );
            }
            t.set("OTEL_TRACES_SAMPLER", other, &p);
        }
    }
    Ok(())
}

/// `parent_based`'s root, as the SDK's parent-based samplers take it.
fn parent_based(t: &mut T, cfg: &Value, p: &str) {
    let ratio = |cfg: &Value| cfg.get("ratio").and_then(Value::as_f64).unwrap_or(1.0);
    match cfg.get("root").and_then(only) {
        None => t.set("OTEL_TRACES_SAMPLER", "parentbased_always_on", p),
        Some((root @ ("always_on" | "always_off"), _)) => {
            t.set(
                "OTEL_TRACES_SAMPLER",
                format!("parentbased_{root}"),
                &format!("{p}/root"),
            );
        }
        Some(("trace_id_ratio_based", r)) => {
            t.set(
                "OTEL_TRACES_SAMPLER",
                "parentbased_traceidratio",
                &format!("{p}/root"),
            );
            t.set(
                "OTEL_TRACES_SAMPLER_ARG",
                ratio(r).to_string(),
                &format!("{p}/root"),
            );
        }
        Some((other, _)) => {
            t.warn(
                &format!("{p}/root/{}", key(other)),
                "ndotel's parent_based sampler takes always_on, always_off or trace_id_ratio_based as its \
                 root (a composite/development sampler with parent_threshold does the rest); using always_on",
            );
            t.set("OTEL_TRACES_SAMPLER", "parentbased_always_on", p);
        }
    }
}

/// The children of `parent_based` other than `root`: ndotel's follow the parent, so only their defaults apply.
fn parent_children(t: &mut T, cfg: &Value, p: &str) {
    for (child, default) in [
        ("remote_parent_sampled", "always_on"),
        ("remote_parent_not_sampled", "always_off"),
        ("local_parent_sampled", "always_on"),
        ("local_parent_not_sampled", "always_off"),
    ] {
        if let Some((kind, _)) = cfg.get(child).and_then(only)
            && kind != default
        {
            t.warn(
                &format!("{p}/{child}"),
                format!(
                    "ndotel's parent_based sampler follows the parent ({child}: {default}); `{kind}` has no \
                     effect (a composite/development sampler with rule_based on `parent` can do it)"
                ),
            );
        }
    }
}

/// A composable sampler as YAML writes it (`always_on:` is null, `ratio:` may be null) as ndotel's configuration
/// reads it (`{}` for a sampler without settings, absent for a null setting).
fn composable(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| match v {
                    Value::Null
                        if matches!(
                            k.as_str(),
                            "always_on" | "always_off" | "probability" | "rule_based" | "distro"
                        ) =>
                    {
                        Some((k, Value::Object(Map::new())))
                    }
                    Value::Null => None,
                    v => Some((k, composable(v))),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(composable).collect()),
        v => v,
    }
}

fn metrics(t: &mut T, mp: Option<&Value>) -> Result<(), Problem> {
    let Some(mp) = mp else {
        // "If omitted, a noop meter provider is used."
        t.omitted(METRICS.exporters, "none", "meter_provider");
        return Ok(());
    };
    let mut names: Vec<String> = Vec::new();
    for (i, reader) in mp
        .get("readers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some((kind, cfg)) = only(reader) else {
            continue;
        };
        let p = format!("/meter_provider/readers/{i}/{kind}");
        let (name, e) = match kind {
            "periodic" => {
                let ep = format!("{p}/exporter");
                match cfg.get("exporter") {
                    Some(e) => (exporter_name(e, &ep)?, Some((e, ep))),
                    None => (None, None),
                }
            }
            "pull" => match cfg.pointer("/exporter/prometheus~1development") {
                Some(_) => (Some("prometheus".to_string()), None),
                // A distro's pull exporter: ndotel's readers are push readers.
                None => {
                    t.warn(
                        &format!("{p}/exporter"),
                        "ndotel's only pull exporter is prometheus/development; left out",
                    );
                    (None, None)
                }
            },
            _ => (None, None),
        };
        let Some(name) = name else {
            continue;
        };
        if names.contains(&name) {
            t.warn(
                &p,
                format!(
                    "a second `{name}` metric exporter: ndotel has one of each kind; this reader is left out, with \
                     all its settings"
                ),
            );
            continue;
        }
        if let Some(limits) = cfg.get("cardinality_limits").and_then(Value::as_object) {
            let max = crate::settings::config::MAX_CARDINALITY_LIMIT;
            if limits.values().filter_map(uint).any(|n| n > max as u64) {
                t.warn(
                    &format!("{p}/cardinality_limits"),
                    format!(
                        "a cardinality limit above {max} is taken as {max}: the SDK sets aside room for that many \
                         series of each instrument when it is created"
                    ),
                );
            }
            let to_usize =
                |v: &Value| uint(v).map(|n| usize::try_from(n.min(max as u64)).unwrap_or(max));
            let parsed = crate::settings::config::CardinalityLimits {
                default: limits.get("default").and_then(to_usize),
                by_kind: crate::settings::config::CardinalityLimits::KINDS
                    .iter()
                    .filter_map(|k| Some((k.to_string(), to_usize(limits.get(*k)?)?)))
                    .collect(),
            };
            match &t.out.cardinality_limits {
                Some(first) if *first != parsed => t.warn(
                    &format!("{p}/cardinality_limits"),
                    "ndotel's cardinality limits are the meter provider's, not each reader's: the first reader's \
                     apply to every reader, and these are left out",
                ),
                Some(_) => {}
                None => t.out.cardinality_limits = Some(parsed),
            }
        }
        if kind == "pull" {
            let e = format!("{p}/exporter/prometheus~1development");
            let prom = cfg
                .pointer("/exporter/prometheus~1development")
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(v) = prom.get("host").and_then(Value::as_str) {
                t.set("OTEL_EXPORTER_PROMETHEUS_HOST", v, &format!("{e}/host"));
            }
            if let Some(v) = prom.get("port").and_then(uint) {
                t.set(
                    "OTEL_EXPORTER_PROMETHEUS_PORT",
                    v.to_string(),
                    &format!("{e}/port"),
                );
            }
            names.push(name);
            continue;
        }
        let file = match &e {
            Some((e, ep)) => match file_output(t, e, ep) {
                Some(file) => file,
                None => continue,
            },
            None => None,
        };
        for (field, var) in [
            ("interval", "OTEL_METRIC_EXPORT_INTERVAL"),
            ("timeout", "OTEL_METRIC_EXPORT_TIMEOUT"),
        ] {
            if let Some(v) = cfg.get(field).and_then(uint) {
                t.set(var, v.to_string(), &format!("{p}/{field}"));
            }
        }
        if let Some((e, ep)) = e {
            exporter(t, METRICS, e, &ep, file);
            names.push(name);
        }
    }
    let value = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    };
    t.set(METRICS.exporters, value, "/meter_provider/readers");
    for (i, v) in mp
        .get("views")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = format!("/meter_provider/views/{i}");
        if let Some(view) = view(t, v, &p) {
            if let Some(problem) = view.problem() {
                return Err((p, problem));
            }
            t.out.views.push(view);
        }
    }
    Ok(())
}

/// One view, or `None` (with a warning) when its selector uses a criterion ndotel cannot match on: a view that
/// matched more instruments than written could drop or rename the wrong ones.
fn view(t: &mut T, v: &Value, p: &str) -> Option<ViewConfig> {
    let selector = v.get("selector").cloned().unwrap_or(Value::Null);
    for unsupported in [
        "instrument_type",
        "unit",
        "meter_version",
        "meter_schema_url",
    ] {
        if selector.get(unsupported).is_some_and(|v| !v.is_null()) {
            t.warn(
                &format!("{p}/selector/{unsupported}"),
                format!("ndotel cannot select instruments by `{unsupported}`: this view is left out rather than applied to more instruments than it names"),
            );
            return None;
        }
    }
    let stream = v.get("stream").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let aggregation = stream.get("aggregation").and_then(only);
    Some(ViewConfig {
        instrument: text(&selector, "instrument_name").unwrap_or_else(|| "*".into()),
        meter: text(&selector, "meter_name"),
        rename: text(&stream, "name"),
        description: text(&stream, "description"),
        keep_attributes: stream
            .pointer("/attribute_keys/included")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            }),
        buckets: match aggregation {
            Some(("explicit_bucket_histogram", h)) => h
                .get("boundaries")
                .and_then(Value::as_array)
                .map(|b| b.iter().filter_map(Value::as_f64).collect()),
            _ => None,
        },
        drop: matches!(aggregation, Some(("drop", _))),
        aggregation: match aggregation {
            Some(("drop" | "default", _)) | None => None,
            Some((name, _)) => Some(name.to_string()),
        },
        record_min_max: aggregation.and_then(|(_, a)| a.get("record_min_max")?.as_bool()),
        max_size: aggregation
            .and_then(|(_, a)| uint(a.get("max_size")?))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        max_scale: aggregation
            .and_then(|(_, a)| a.get("max_scale")?.as_i64())
            .map(|n| i8::try_from(n).unwrap_or(i8::MAX)),
        cardinality_limit: stream
            .get("aggregation_cardinality_limit")
            .and_then(uint)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

fn logs(t: &mut T, lp: Option<&Value>) -> Result<(), Problem> {
    let Some(lp) = lp else {
        // "If omitted, a noop logger provider is used."
        t.omitted(LOGS.exporters, "none", "logger_provider");
        return Ok(());
    };
    limits(
        t,
        lp.get("limits"),
        "/logger_provider/limits",
        &[
            (
                "attribute_count_limit",
                "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
            ),
            (
                "attribute_value_length_limit",
                "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ),
        ],
    );
    processors(
        t,
        LOGS,
        "logger_provider",
        lp.get("processors"),
        "OTEL_BLRP",
    )
}

/// Keys at the top the schema does not define: a misspelling of one it does is an error (a misspelled provider
/// would otherwise read as an omitted one: no telemetry, without a word); another is a warning.
fn unknown_root_keys(t: &mut T, model: &Value) -> Result<(), Problem> {
    let known: Vec<&str> = super::schema::SCHEMA_VALUE["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for k in entries(Some(model)).map(|(k, _)| k) {
        if known.contains(&k.as_str()) {
            continue;
        }
        let p = format!("/{}", key(k));
        let hint = crate::text::did_you_mean(k, known.iter().copied());
        if !hint.is_empty() {
            return Err((p, format!("unknown property `{k}`{hint}")));
        }
        t.warn(
            &p,
            format!("`{k}` is not a property of the configuration schema; ignored"),
        );
    }
    Ok(())
}

/// `distribution.ndotel`: the distro and ndotel's own settings. Another distribution's section is for that
/// distribution (a warning says it has no effect here).
fn distribution(t: &mut T, d: Option<&Value>) -> Result<(), Problem> {
    const KEYS: &[(&str, &str)] = &[
        ("distro", "OTEL_RUST_DISTRO"),
        ("fallback", "OTEL_RUST_DISTRO_FALLBACK"),
        ("on_processor_error", "OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR"),
        ("call_timeout", "OTEL_RUST_DISTRO_CALL_TIMEOUT"),
        ("fail_fast", "OTEL_RUST_DISTRO_FAIL_FAST"),
    ];
    for (name, section) in entries(d) {
        let p = format!("/distribution/{}", key(name));
        if name != "ndotel" {
            t.warn(
                &p,
                "a section for another distribution; ndotel reads `distribution.ndotel`",
            );
            continue;
        }
        for (k, v) in entries(Some(section)) {
            let kp = format!("{p}/{}", key(k));
            if k == "settings" {
                continue;
            }
            let Some((_, var)) = KEYS.iter().find(|(name, _)| name == k) else {
                let known = KEYS.iter().map(|(k, _)| *k).chain(["settings"]);
                return Err((
                    kp,
                    format!(
                        "unknown property `{k}`{}; distribution.ndotel takes {}",
                        crate::text::did_you_mean(k, known.clone()),
                        known.collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Bool(_) | Value::Number(_) => v.to_string(),
                Value::Null => continue,
                _ => return Err((kp, "expected a string, number or Boolean".into())),
            };
            t.set(var, value, &kp);
        }
        if let Some(settings) = section.get("settings").filter(|s| !s.is_null()) {
            let kp = format!("{p}/settings");
            let Some(distro) = section.get("distro").and_then(Value::as_str) else {
                return Err((
                    kp,
                    "`settings` are a distro's: name it with distribution.ndotel.distro".into(),
                ));
            };
            let table = toml::Table::try_from(settings).map_err(|e| {
                (
                    kp.clone(),
                    format!("a distro's settings must be a mapping without null values ({e})"),
                )
            })?;
            t.out.distro_settings = Some((distro.to_string(), table));
        }
    }
    Ok(())
}
