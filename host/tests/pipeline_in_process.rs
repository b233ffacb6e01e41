//! The host's own logic in one process, with the SDK's in-memory exporter behind the distro: what a distro's sampler
//! and span processor do to spans, the fail-closed policy when they panic, and the specification's rule that no
//! invalid setting turns telemetry off. The distros are linked in and registered with `inventory`: the reference
//! distro (`otel_custom_distro`) and the failing ones of `tests/fixtures/faulty`.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel::{Component, Env, Pipeline, Plan};
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor, SpanData};

// Linked for their `inventory` registrations.
use fixture_faulty as _;
use otel_custom_distro as _;

/// Builds the pipeline for `pairs` (exporters off) with an in-memory exporter beside them, runs `spans` through
/// it, and returns what the exporter received and the pipeline (for its fault counts).
fn run(pairs: &[(&str, &str)], spans: &[(&str, Vec<KeyValue>)]) -> (Vec<SpanData>, Pipeline) {
    let mut all = vec![
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "none"),
    ];
    all.extend_from_slice(pairs);
    let env = Env::from_pairs(all, "/");
    let plan = Plan::new(&env).unwrap();
    let exporter = InMemorySpanExporter::default();
    let pipeline = Pipeline::build_with(
        &plan,
        &env,
        vec![Box::new(SimpleSpanProcessor::new(exporter.clone()))],
    )
    .unwrap();
    let provider = pipeline.tracer_provider.clone().unwrap();
    let tracer = provider.tracer("in-process");
    for (name, attributes) in spans {
        let mut span = tracer
            .span_builder(name.to_string())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes.clone())
            .start(&tracer);
        span.end();
    }
    provider.force_flush().unwrap();
    (exporter.get_finished_spans().unwrap(), pipeline)
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn request(secret: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new(
            "http.request.header.authorization",
            format!("Bearer {secret}"),
        ),
        KeyValue::new(
            "url.full",
            format!("http://shop.example/items?page=2&api_key={secret}"),
        ),
        KeyValue::new("user.note", format!("password={secret}")),
    ]
}

#[test]
fn the_reference_distro_drops_health_checks_and_redacts_before_any_exporter() {
    let (spans, pipeline) = run(
        &[("OTEL_RUST_DISTRO", "otel_custom_distro")],
        &[
            ("GET /items", request("hunter2-in-process")),
            ("GET /health", vec![]),
        ],
    );
    assert_eq!(spans.len(), 1, "the health check is dropped: {spans:#?}");
    let span = &spans[0];
    assert_eq!(span.name, "GET /items");
    assert_eq!(
        attribute(span, "http.request.header.authorization"),
        Some(&Value::from("[REDACTED]"))
    );
    let url = attribute(span, "url.full").unwrap().as_str();
    assert!(url.contains("page=2"), "{url}");
    assert!(!format!("{spans:?}").contains("hunter2"), "{spans:#?}");
    assert_eq!(pipeline.faults.total(), 0);
}

#[test]
fn the_sdk_distro_leaves_spans_as_the_service_made_them() {
    let (spans, _) = run(
        &[("OTEL_RUST_DISTRO", "sdk")],
        &[("GET /items", request("visible")), ("GET /health", vec![])],
    );
    assert_eq!(spans.len(), 2);
    assert_eq!(
        attribute(&spans[0], "http.request.header.authorization"),
        Some(&Value::from("Bearer visible"))
    );
}

#[test]
fn a_panicking_span_processor_fails_closed_and_is_counted() {
    let spans = [
        ("GET /items", request("never-exported")),
        ("GET /b", vec![]),
    ];
    let (received, pipeline) = run(&[("OTEL_RUST_DISTRO", "faulty_processor_panic")], &spans);
    assert!(received.is_empty(), "{received:#?}");
    assert!(pipeline.faults.count(Component::SpanProcessor) >= 1);
    // `pass` is the operator's explicit choice to export unprocessed spans instead.
    let (received, _) = run(
        &[
            ("OTEL_RUST_DISTRO", "faulty_processor_panic"),
            ("OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR", "pass"),
        ],
        &spans,
    );
    assert_eq!(received.len(), 2);
}

/// A sampler decides only what is kept, not what is shown: when it fails, the parent-based always-on decision is
/// used (the span processor still runs) and the failure is counted.
#[test]
fn a_panicking_sampler_falls_back_to_parent_based_always_on_and_is_counted() {
    let (received, pipeline) = run(
        &[("OTEL_RUST_DISTRO", "faulty_sampler_panic")],
        &[("GET /a", vec![]), ("GET /b", vec![])],
    );
    assert_eq!(received.len(), 2, "{received:#?}");
    assert_eq!(pipeline.faults.count(Component::Sampler), 2);
}

/// The specification: an invalid value is a warning and the default; telemetry stays on.
#[test]
fn no_invalid_value_turns_telemetry_off_in_process() {
    let invalid = [
        ("OTEL_SDK_DISABLED", "1"),
        ("OTEL_TRACES_SAMPLER", "ALWAYS_ON"),
        ("OTEL_TRACES_SAMPLER_ARG", "abc"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-4"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
        ("OTEL_PROPAGATORS", "tracecontext,tracecontext,xray"),
        ("OTEL_RESOURCE_ATTRIBUTES", "a=1,broken"),
        ("OTEL_RUST_DISTRO_CALL_TIMEOUT", "0"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "never"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ("OTEL_RUST_DISTRO", "sdk"),
    ];
    let env = Env::from_pairs(invalid, "/");
    let plan = Plan::new(&env).unwrap();
    assert!(
        plan.settings.warnings.len() >= 7,
        "{:#?}",
        plan.settings.warnings
    );
    let (spans, _) = run(&invalid, &[("GET /items", vec![])]);
    assert_eq!(spans.len(), 1);
}

#[test]
fn otel_sdk_disabled_true_in_any_case_builds_no_provider() {
    let env = Env::from_pairs(
        [("OTEL_SDK_DISABLED", "TRUE"), ("OTEL_RUST_DISTRO", "sdk")],
        "/",
    );
    let plan = Plan::new(&env).unwrap();
    let pipeline = Pipeline::build(&plan, &env).unwrap();
    assert!(pipeline.tracer_provider.is_none());
}
