//! Per-span cost: the same span (a SERVER span with 8 attributes, one of them a secret the distro redacts) made
//! with the OpenTelemetry API on a bare SDK provider, through ndotel's built-in `sdk` distro, and through
//! `otel_custom_distro` loaded from its `.so` (sampler and span processor across the FFI boundary). Exporters are
//! off in every variant, so the difference is the distro's own work. Ratios are printed at the end.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::hint::black_box;
use std::time::Duration;

fn attributes(secret: bool) -> Vec<KeyValue> {
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

fn one_span(tracer: &opentelemetry_sdk::trace::SdkTracer, attrs: &[KeyValue]) {
    let mut span = tracer
        .span_builder("GET /items/{id}")
        .with_kind(SpanKind::Server)
        .with_attributes(attrs.to_vec())
        .start(tracer);
    span.set_attribute(KeyValue::new("extra", 1));
    span.end();
}

fn ndotel_provider(distro: &str, plugins: &std::path::Path) -> SdkTracerProvider {
    let env = ndotel::Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO", distro.to_string()),
            ("OTEL_RUST_DISTRO_PATH", plugins.display().to_string()),
            ("OTEL_TRACES_EXPORTER", "none".into()),
            ("OTEL_METRICS_EXPORTER", "none".into()),
        ],
        plugins,
    );
    let plan = ndotel::Plan::new(&env).unwrap();
    let pipeline = ndotel::Pipeline::build(&plan, &env).unwrap();
    pipeline.tracer_provider.clone().unwrap()
}

fn bench(c: &mut Criterion) {
    let tmp = ndotel_tests::setup();
    let plugins = ndotel_tests::plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let variants = [
        (
            "bare_sdk",
            SdkTracerProvider::builder()
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
                .build(),
        ),
        ("ndotel_sdk_distro", ndotel_provider("sdk", &plugins)),
        (
            "custom_distro_so",
            ndotel_provider("otel_custom_distro", &plugins),
        ),
    ];
    let mut group = c.benchmark_group("span");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for secret in [false, true] {
        let attrs = attributes(secret);
        for (name, provider) in &variants {
            let tracer = provider.tracer("bench");
            let id = format!("{name}/{}", if secret { "with_secret" } else { "clean" });
            group.bench_function(id, |b| {
                b.iter(|| one_span(black_box(&tracer), black_box(&attrs)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
