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

criterion_group!(benches, bench);
criterion_main!(benches);
