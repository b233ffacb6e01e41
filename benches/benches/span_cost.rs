//! Per-span cost: the same span (a SERVER span with 8 attributes, one of them a secret the distro redacts) made
//! with the OpenTelemetry API on a bare SDK provider, through ndotel's built-in `sdk` distro, and through
//! `otel_custom_distro` loaded from its `.so` (sampler and span processor across the FFI boundary). Exporters are
//! off in every variant, so the difference is the distro's own work. Ratios are printed at the end.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use ndotel_benches::{attributes, ndotel_provider, one_span};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::hint::black_box;
use std::time::Duration;

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

/// One sampling decision: the SDK's `TraceIdRatioBased` (and parent-based) beside ndotel's consistent samplers at
/// the same ratio, for a root span and for a child of a remote parent that carries `ot=th:…`.
fn sampling(c: &mut Criterion) {
    use ndotel::consistent::{Composite, ParentThreshold, Probability};
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_sdk::trace::ShouldSample;
    let attrs = [
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("url.path", "/items"),
    ];
    let parent = Context::new().with_remote_span_context(SpanContext::new(
        // Its randomness (the 7 rightmost bytes, f8eb…) is above th e666: a parent rightly sampled at 10%.
        TraceId::from(0x0af7_6519_16cd_43dd_84f8_eb21_1c80_319c_u128),
        SpanId::from(0xb7ad_6b71_6920_3331_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("ot", "th:e666")]).unwrap(),
    ));
    let variants: Vec<(&str, Box<dyn ShouldSample>)> = vec![
        (
            "sdk_traceidratio",
            Box::new(Sampler::TraceIdRatioBased(0.1)),
        ),
        (
            "sdk_parentbased_traceidratio",
            Box::new(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                0.1,
            )))),
        ),
        (
            "consistent_probability",
            Box::new(Composite::new(Box::new(Probability::new(0.1).unwrap()))),
        ),
        (
            "consistent_parent_threshold",
            Box::new(Composite::new(Box::new(ParentThreshold::new(Box::new(
                Probability::new(0.1).unwrap(),
            ))))),
        ),
    ];
    let mut group = c.benchmark_group("sampling");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, sampler) in &variants {
        let mut id = 1u128;
        group.bench_function(format!("{name}/root"), |b| {
            b.iter(|| {
                id = id
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
                    .wrapping_add(1);
                sampler.should_sample(
                    black_box(None),
                    TraceId::from(id),
                    "GET /items",
                    &SpanKind::Server,
                    black_box(&attrs),
                    &[],
                )
            })
        });
        group.bench_function(format!("{name}/child_of_remote"), |b| {
            b.iter(|| {
                sampler.should_sample(
                    black_box(Some(&parent)),
                    TraceId::from(0x0af7_6519_16cd_43dd_84f8_eb21_1c80_319c_u128),
                    "SELECT items",
                    &SpanKind::Client,
                    black_box(&attrs),
                    &[],
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, sampling);
criterion_main!(benches);
