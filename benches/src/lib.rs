//! Benchmarks of ndotel. `cargo bench -p ndotel-benches` measures the per-span cost of the distro pipeline
//! (bare SDK vs ndotel's `sdk` distro vs `otel_custom_distro` loaded as a `.so`), side by side in one run;
//! `cargo run --release -p ndotel-benches --bin app_throughput` measures the example service's throughput with
//! no telemetry and under the distro, alternating rounds, and writes `benches/results.md`.
//!
//! For an exact, noise-free count, `span_loop` makes N spans through one variant; run it under
//! `valgrind --tool=callgrind` with two values of N and divide the difference in instructions by the difference in
//! spans.

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The attributes of the measured span: a SERVER span with 8 attributes, the last a secret the distro redacts
/// (`secret`) or a harmless one.
pub fn attributes(secret: bool) -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("url.path", "/items/42"),
        KeyValue::new("http.route", "/items/{id}"),
        KeyValue::new("server.address", "localhost"),
        KeyValue::new("server.port", 8080),
        KeyValue::new("user_agent.original", "bench/1.0"),
        KeyValue::new("http.response.status_code", 200),
        if secret {
            KeyValue::new(
                "http.request.header.authorization",
                "Bearer abcdef0123456789",
            )
        } else {
            KeyValue::new("network.protocol.version", "1.1")
        },
    ]
}

/// One span, as an instrumented request makes it.
pub fn one_span(tracer: &opentelemetry_sdk::trace::SdkTracer, attrs: &[KeyValue]) {
    let mut span = tracer
        .span_builder("GET /items/{id}")
        .with_kind(SpanKind::Server)
        .with_attributes(attrs.to_vec())
        .start(tracer);
    span.set_attribute(KeyValue::new("extra", 1));
    span.end();
}

/// The tracer provider ndotel builds for `distro` (plugins from `plugins`), exporters off.
pub fn ndotel_provider(distro: &str, plugins: &std::path::Path) -> SdkTracerProvider {
    let env = ndotel::Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO", distro.to_string()),
            ("OTEL_RUST_DISTRO_PATH", plugins.display().to_string()),
            ("OTEL_TRACES_EXPORTER", "none".into()),
            ("OTEL_METRICS_EXPORTER", "none".into()),
        ],
        plugins,
    );
    let plan = ndotel::Plan::new(&env).expect("plan");
    let pipeline = ndotel::Pipeline::build(&plan, &env).expect("pipeline");
    pipeline.tracer_provider.clone().expect("a tracer provider")
}
