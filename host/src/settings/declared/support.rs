//! Which properties of the configuration schema ndotel honours: the one list the translation follows, the warnings
//! for the rest come from, and `host/CONFIGURATION.md`'s support table is generated from (a test fails when they
//! differ, or when an entry names a property the schema lacks).

use super::schema::SCHEMA_VALUE;
use super::yaml::escape;
use serde_json::Value;

/// The schema's root type.
pub(crate) const ROOT: &str = "OpenTelemetryConfiguration";

/// The properties ndotel honours, by schema type, each with a note where the behaviour needs one. Every other
/// property of the schema is "not implemented": a warning names it when a file sets it.
pub(crate) const SUPPORTED: &[(&str, &str, &str)] = &[
    (
        ROOT,
        "file_format",
        "1.x; another major is an error, a newer minor a warning",
    ),
    (ROOT, "disabled", ""),
    (ROOT, "logger_provider", "omitted: no logs exported"),
    (ROOT, "meter_provider", "omitted: no metrics exported"),
    (ROOT, "propagator", "omitted: no propagator"),
    (ROOT, "tracer_provider", "omitted: no spans exported"),
    (ROOT, "resource", ""),
    (ROOT, "attribute_limits", ""),
    (
        "AttributeLimits",
        "attribute_count_limit",
        "spans, events, links and log records",
    ),
    (
        "AttributeLimits",
        "attribute_value_length_limit",
        "spans, events, links and log records; cut after the distro's edits",
    ),
    ("TracerProvider", "limits", ""),
    ("SpanLimits", "attribute_count_limit", ""),
    ("SpanLimits", "attribute_value_length_limit", ""),
    ("SpanLimits", "event_count_limit", ""),
    ("SpanLimits", "link_count_limit", ""),
    ("SpanLimits", "event_attribute_count_limit", ""),
    ("SpanLimits", "link_attribute_count_limit", ""),
    (
        ROOT,
        "distribution",
        "`distribution.ndotel`: the distro and ndotel's own settings",
    ),
    (
        "Resource",
        "attributes",
        "typed as `type` says; a value not of its type is a warning",
    ),
    ("Resource", "attributes_list", ""),
    ("Resource", "schema_url", ""),
    ("Resource", "detection/development", ""),
    ("ExperimentalResourceDetection", "detectors", ""),
    (
        "ExperimentalResourceDetector",
        "service",
        "service.name from OTEL_SERVICE_NAME",
    ),
    (
        "ExperimentalResourceDetector",
        "host",
        "host.name, host.arch",
    ),
    (
        "ExperimentalResourceDetector",
        "process",
        "process.pid, process.executable.name and .path (not the command line)",
    ),
    (
        "ExperimentalResourceDetector",
        "container",
        "container.id, from the cgroup or the mounts",
    ),
    ("AttributeNameValue", "name", ""),
    ("AttributeNameValue", "value", ""),
    ("AttributeNameValue", "type", ""),
    ("NameStringValuePair", "name", ""),
    ("NameStringValuePair", "value", ""),
    ("Propagator", "composite", ""),
    ("Propagator", "composite_list", ""),
    ("TextMapPropagator", "tracecontext", ""),
    ("TextMapPropagator", "baggage", ""),
    (
        "TracerProvider",
        "processors",
        "a distro's span processor always runs first",
    ),
    (
        "TracerProvider",
        "sampler",
        "a key the schema does not define names a distro's sampler",
    ),
    ("TracerProvider", "id_generator", ""),
    ("IdGenerator", "random", ""),
    ("SpanProcessor", "batch", ""),
    (
        "SpanProcessor",
        "simple",
        "exported through ndotel's batch worker (a warning says so)",
    ),
    ("BatchSpanProcessor", "schedule_delay", ""),
    ("BatchSpanProcessor", "export_timeout", ""),
    ("BatchSpanProcessor", "max_queue_size", ""),
    ("BatchSpanProcessor", "max_export_batch_size", ""),
    ("BatchSpanProcessor", "exporter", ""),
    ("SimpleSpanProcessor", "exporter", ""),
    (
        "SpanExporter",
        "otlp_http",
        "a key the schema does not define names a distro's exporter",
    ),
    ("SpanExporter", "otlp_grpc", ""),
    ("SpanExporter", "otlp_file/development", ""),
    ("SpanExporter", "console", ""),
    ("OtlpHttpExporter", "endpoint", ""),
    ("OtlpHttpExporter", "tls", ""),
    ("OtlpHttpExporter", "headers", ""),
    ("OtlpHttpExporter", "headers_list", ""),
    ("OtlpHttpExporter", "compression", ""),
    ("OtlpHttpExporter", "timeout", ""),
    (
        "OtlpHttpExporter",
        "encoding",
        "protobuf (json: a warning, protobuf used)",
    ),
    ("OtlpGrpcExporter", "endpoint", ""),
    ("OtlpGrpcExporter", "tls", ""),
    ("OtlpGrpcExporter", "headers", ""),
    ("OtlpGrpcExporter", "headers_list", ""),
    ("OtlpGrpcExporter", "compression", ""),
    ("OtlpGrpcExporter", "timeout", ""),
    ("HttpTls", "ca_file", ""),
    ("HttpTls", "key_file", ""),
    ("HttpTls", "cert_file", ""),
    ("GrpcTls", "ca_file", ""),
    ("GrpcTls", "key_file", ""),
    ("GrpcTls", "cert_file", ""),
    (
        "GrpcTls",
        "insecure",
        "for an endpoint without a scheme: `true` plaintext, else TLS",
    ),
    (
        "ExperimentalOtlpFileExporter",
        "output_stream",
        "`stdout` or `file:///path`",
    ),
    ("Sampler", "always_off", ""),
    ("Sampler", "always_on", ""),
    ("Sampler", "composite/development", ""),
    ("Sampler", "parent_based", ""),
    (
        "Sampler",
        "probability/development",
        "a consistent probability sampler",
    ),
    ("Sampler", "trace_id_ratio_based", ""),
    (
        "ParentBasedSampler",
        "root",
        "always_on, always_off or trace_id_ratio_based",
    ),
    (
        "ParentBasedSampler",
        "remote_parent_sampled",
        "always_on only (a warning otherwise)",
    ),
    (
        "ParentBasedSampler",
        "remote_parent_not_sampled",
        "always_off only (a warning otherwise)",
    ),
    (
        "ParentBasedSampler",
        "local_parent_sampled",
        "always_on only (a warning otherwise)",
    ),
    (
        "ParentBasedSampler",
        "local_parent_not_sampled",
        "always_off only (a warning otherwise)",
    ),
    ("TraceIdRatioBasedSampler", "ratio", ""),
    ("ExperimentalProbabilitySampler", "ratio", ""),
    ("ExperimentalComposableSampler", "always_off", ""),
    ("ExperimentalComposableSampler", "always_on", ""),
    ("ExperimentalComposableSampler", "parent_threshold", ""),
    ("ExperimentalComposableSampler", "probability", ""),
    ("ExperimentalComposableSampler", "rule_based", ""),
    ("ExperimentalComposableProbabilitySampler", "ratio", ""),
    ("ExperimentalComposableParentThresholdSampler", "root", ""),
    ("ExperimentalComposableRuleBasedSampler", "rules", ""),
    (
        "ExperimentalComposableRuleBasedSamplerRule",
        "attribute_values",
        "",
    ),
    (
        "ExperimentalComposableRuleBasedSamplerRule",
        "attribute_patterns",
        "",
    ),
    (
        "ExperimentalComposableRuleBasedSamplerRule",
        "span_kinds",
        "",
    ),
    ("ExperimentalComposableRuleBasedSamplerRule", "parent", ""),
    ("ExperimentalComposableRuleBasedSamplerRule", "sampler", ""),
    (
        "ExperimentalComposableRuleBasedSamplerRuleAttributePatterns",
        "key",
        "",
    ),
    (
        "ExperimentalComposableRuleBasedSamplerRuleAttributePatterns",
        "included",
        "",
    ),
    (
        "ExperimentalComposableRuleBasedSamplerRuleAttributePatterns",
        "excluded",
        "",
    ),
    (
        "ExperimentalComposableRuleBasedSamplerRuleAttributeValues",
        "key",
        "",
    ),
    (
        "ExperimentalComposableRuleBasedSamplerRuleAttributeValues",
        "values",
        "",
    ),
    ("MeterProvider", "readers", ""),
    ("MeterProvider", "views", ""),
    ("MetricReader", "periodic", ""),
    ("MetricReader", "pull", ""),
    ("PeriodicMetricReader", "interval", ""),
    ("PeriodicMetricReader", "timeout", ""),
    ("PeriodicMetricReader", "exporter", ""),
    ("PullMetricReader", "exporter", ""),
    (
        "PeriodicMetricReader",
        "cardinality_limits",
        "the meter provider's: the first reader's apply to every reader",
    ),
    (
        "PullMetricReader",
        "cardinality_limits",
        "the meter provider's: the first reader's apply to every reader",
    ),
    ("CardinalityLimits", "default", ""),
    ("CardinalityLimits", "counter", ""),
    ("CardinalityLimits", "gauge", ""),
    ("CardinalityLimits", "histogram", ""),
    ("CardinalityLimits", "observable_counter", ""),
    ("CardinalityLimits", "observable_gauge", ""),
    ("CardinalityLimits", "observable_up_down_counter", ""),
    ("CardinalityLimits", "up_down_counter", ""),
    ("PullMetricExporter", "prometheus/development", ""),
    ("ExperimentalPrometheusMetricExporter", "host", ""),
    ("ExperimentalPrometheusMetricExporter", "port", ""),
    ("PushMetricExporter", "otlp_http", ""),
    ("PushMetricExporter", "otlp_grpc", ""),
    ("PushMetricExporter", "otlp_file/development", ""),
    ("PushMetricExporter", "console", ""),
    ("OtlpHttpMetricExporter", "endpoint", ""),
    ("OtlpHttpMetricExporter", "tls", ""),
    ("OtlpHttpMetricExporter", "headers", ""),
    ("OtlpHttpMetricExporter", "headers_list", ""),
    ("OtlpHttpMetricExporter", "compression", ""),
    ("OtlpHttpMetricExporter", "timeout", ""),
    (
        "OtlpHttpMetricExporter",
        "encoding",
        "protobuf (json: a warning, protobuf used)",
    ),
    (
        "OtlpHttpMetricExporter",
        "temporality_preference",
        "one for all metric exporters",
    ),
    ("OtlpGrpcMetricExporter", "endpoint", ""),
    ("OtlpGrpcMetricExporter", "tls", ""),
    ("OtlpGrpcMetricExporter", "headers", ""),
    ("OtlpGrpcMetricExporter", "headers_list", ""),
    ("OtlpGrpcMetricExporter", "compression", ""),
    ("OtlpGrpcMetricExporter", "timeout", ""),
    (
        "OtlpGrpcMetricExporter",
        "temporality_preference",
        "one for all metric exporters",
    ),
    (
        "ExperimentalOtlpFileMetricExporter",
        "output_stream",
        "`stdout` or `file:///path`",
    ),
    (
        "ExperimentalOtlpFileMetricExporter",
        "temporality_preference",
        "one for all metric exporters",
    ),
    (
        "ConsoleMetricExporter",
        "temporality_preference",
        "one for all metric exporters",
    ),
    (
        "View",
        "selector",
        "a view whose selector ndotel cannot match is left out, with a warning",
    ),
    ("View", "stream", ""),
    ("ViewSelector", "instrument_name", "`*` wildcards"),
    ("ViewSelector", "meter_name", ""),
    ("ViewStream", "name", ""),
    ("ViewStream", "description", ""),
    ("ViewStream", "aggregation", ""),
    ("ViewStream", "aggregation_cardinality_limit", ""),
    ("ViewStream", "attribute_keys", ""),
    ("IncludeExclude", "included", ""),
    ("Aggregation", "default", ""),
    ("Aggregation", "drop", ""),
    ("Aggregation", "explicit_bucket_histogram", ""),
    ("ExplicitBucketHistogramAggregation", "boundaries", ""),
    ("ExplicitBucketHistogramAggregation", "record_min_max", ""),
    (
        "Aggregation",
        "sum",
        "an instrument that cannot take it (a gauge) keeps its default",
    ),
    (
        "Aggregation",
        "last_value",
        "an instrument that cannot take it (not a gauge) keeps its default",
    ),
    ("Aggregation", "base2_exponential_bucket_histogram", ""),
    (
        "Base2ExponentialBucketHistogramAggregation",
        "max_scale",
        "",
    ),
    ("Base2ExponentialBucketHistogramAggregation", "max_size", ""),
    (
        "Base2ExponentialBucketHistogramAggregation",
        "record_min_max",
        "",
    ),
    (
        "LoggerProvider",
        "processors",
        "a distro's log processor always runs first",
    ),
    ("LoggerProvider", "limits", ""),
    ("LogRecordLimits", "attribute_count_limit", ""),
    ("LogRecordLimits", "attribute_value_length_limit", ""),
    ("LogRecordProcessor", "batch", ""),
    (
        "LogRecordProcessor",
        "simple",
        "exported through ndotel's batch worker (a warning says so)",
    ),
    ("BatchLogRecordProcessor", "schedule_delay", ""),
    ("BatchLogRecordProcessor", "max_queue_size", ""),
    ("BatchLogRecordProcessor", "max_export_batch_size", ""),
    ("BatchLogRecordProcessor", "exporter", ""),
    ("SimpleLogRecordProcessor", "exporter", ""),
    ("LogRecordExporter", "otlp_http", ""),
    ("LogRecordExporter", "otlp_grpc", ""),
    ("LogRecordExporter", "otlp_file/development", ""),
    ("LogRecordExporter", "console", ""),
];

/// The number of properties Java's SDK supports, as the schema's language status says (the comparison the docs
/// print).
pub const JAVA_SUPPORTED: usize = 99;

fn supported(ty: &str, prop: &str) -> bool {
    SUPPORTED.iter().any(|(t, p, _)| *t == ty && *p == prop)
}

fn definition(ty: &str) -> &'static Value {
    if ty == ROOT {
        &SCHEMA_VALUE
    } else {
        &SCHEMA_VALUE["$defs"][ty]
    }
}

/// The type a property's schema refers to, directly or as its items'.
fn referred(prop: &Value) -> Option<(&str, bool)> {
    fn name(v: &Value) -> Option<&str> {
        v.get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
    }
    name(prop)
        .map(|n| (n, false))
        .or_else(|| prop.get("items").and_then(name).map(|n| (n, true)))
}

/// Whether a property's value may be an object (a null one then stands for an object with its defaults).
fn object_typed(prop: &Value) -> bool {
    let has_object = |v: &Value| match v.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => false,
    };
    has_object(prop) || referred(prop).is_some_and(|(t, items)| !items && has_object(definition(t)))
}

/// Every property `model` sets that ndotel does not honour: its JSON pointer and a warning.
pub(crate) fn unsupported(model: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(model, ROOT, "", &mut out);
    out
}

fn walk(v: &Value, ty: &str, pointer: &str, out: &mut Vec<(String, String)>) {
    let Some(obj) = v.as_object() else { return };
    let props = definition(ty).get("properties");
    for (k, child) in obj {
        let p = format!("{pointer}/{}", escape(k));
        // A key the schema does not define is an extension (a distro's component): the translation reads it.
        let Some(prop) = props.and_then(|ps| ps.get(k)) else {
            continue;
        };
        // A null scalar is an absent one; a null object (`always_on:`) is one with its defaults.
        if child.is_null() && !object_typed(prop) {
            continue;
        }
        if !supported(ty, k) {
            out.push((
                p,
                format!("ndotel does not implement `{k}` ({ty}); it has no effect"),
            ));
            continue;
        }
        match referred(prop) {
            Some((t, false)) => walk(child, t, &p, out),
            Some((t, true)) => {
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    walk(item, t, &format!("{p}/{i}"), out);
                }
            }
            None => {}
        }
    }
}

/// Every (type, property) of the schema reachable from the root, in a stable order.
pub(crate) fn properties() -> Vec<(String, String)> {
    let mut types = vec![ROOT.to_string()];
    let mut i = 0;
    let mut out = Vec::new();
    while i < types.len() {
        let ty = types[i].clone();
        i += 1;
        let Some(props) = definition(&ty).get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (k, prop) in props {
            out.push((ty.clone(), k.clone()));
            if let Some((t, _)) = referred(prop)
                && !types.iter().any(|x| x == t)
            {
                types.push(t.to_string());
            }
        }
    }
    out
}

/// The support table of the docs, in the form of the schema's per-language status.
pub fn support_table() -> String {
    let all = properties();
    let count = all.iter().filter(|(t, p)| supported(t, p)).count();
    let mut out = format!(
        "ndotel supports {count} of the {} properties of the configuration schema (file_format {}.{}); \
         Java supports {JAVA_SUPPORTED}.\n\n| Type | Property | Status | Notes |\n|---|---|---|---|\n",
        all.len(),
        super::FILE_FORMAT_MAJOR,
        super::FILE_FORMAT_MINOR
    );
    for (ty, prop) in &all {
        let (status, note) = match SUPPORTED.iter().find(|(t, p, _)| t == ty && p == prop) {
            Some((_, _, note)) => ("supported", *note),
            None => ("not implemented", ""),
        };
        out.push_str(&format!("| {ty} | `{prop}` | {status} | {note} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_entry_names_a_property_of_the_schema() {
        let all = properties();
        for (t, p, _) in SUPPORTED {
            assert!(
                all.iter().any(|(at, ap)| at == t && ap == p),
                "{t}.{p} is not in the schema"
            );
        }
    }

    #[test]
    fn the_bundled_schema_is_the_releases() {
        let release = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/otel-config/v1.1.0/opentelemetry_configuration.json"
        );
        assert_eq!(
            super::super::schema::SCHEMA,
            std::fs::read_to_string(release).unwrap()
        );
    }

    /// `host/CONFIGURATION.md` holds the table; `NDOTEL_BLESS=1` rewrites it.
    #[test]
    fn the_support_table_of_the_docs_is_generated_from_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/CONFIGURATION.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let (head, _) = doc
            .split_once("<!-- support table -->")
            .unwrap_or((doc.as_str(), ""));
        let want = format!("{head}<!-- support table -->\n{}", support_table());
        if std::env::var("NDOTEL_BLESS").is_ok() {
            std::fs::write(path, &want).unwrap();
            return;
        }
        assert!(
            doc == want,
            "CONFIGURATION.md is stale: run NDOTEL_BLESS=1 cargo test -p ndotel --lib declared"
        );
    }
}
