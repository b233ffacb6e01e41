//! `span_loop VARIANT SECRET N`: N spans through one variant of the per-span benchmark (`bare`, `sdk` or `custom`,
//! the reference distro loaded as a `.so`; SECRET 0 or 1), for counting instructions under callgrind. Variants
//! `metric_bare` and `metric_custom` record N histogram measurements with the same attributes instead, through a
//! bare SDK meter or through ndotel's global meter with the reference distro (whose processor judges each series
//! once).

use ndotel_benches::{attributes, ndotel_provider};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, variant, secret, n] = args.as_slice() else {
        eprintln!("usage: span_loop bare|sdk|custom 0|1 N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N");
    let tmp = ndotel_tests::setup();
    let plugins = ndotel_tests::plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    if let Some(meter) = variant.strip_prefix("metric_") {
        let attrs = attributes(secret == "1");
        let (_guard, _bare, meter) = if meter == "bare" {
            let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
                .with_reader(
                    opentelemetry_sdk::metrics::PeriodicReader::builder(
                        opentelemetry_stdout::MetricExporter::default(),
                    )
                    .with_interval(std::time::Duration::from_secs(3600))
                    .build(),
                )
                .build();
            let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "bench");
            (None, Some(provider), meter)
        } else {
            let env = ndotel::Env::from_pairs(
                [
                    ("OTEL_RUST_DISTRO", "otel_custom_distro".to_string()),
                    ("OTEL_RUST_DISTRO_PATH", plugins.display().to_string()),
                    ("OTEL_TRACES_EXPORTER", "none".into()),
                    ("OTEL_METRICS_EXPORTER", "file".into()),
                    ("OTEL_EXPORTER_FILE_METRICS_PATH", "/dev/null".into()),
                    ("OTEL_METRIC_EXPORT_INTERVAL", "3600000".into()),
                ],
                &plugins,
            );
            let guard = ndotel::try_init_with(&env).expect("ndotel");
            (Some(guard), None, opentelemetry::global::meter("bench"))
        };
        let histogram = meter.f64_histogram("bench.duration").build();
        for i in 0..n {
            histogram.record(i as f64, &attrs);
        }
        return;
    }
    // `bare|sdk|custom` with an optional suffix: `_health` (a span the health rule drops; `bare_off` is the SDK's
    // AlwaysOff), `_children_K` (a request: one SERVER span and K children), `_attrs_K` (one span, K attributes).
    // `tracing_sdk|tracing_custom`: the span made with `tracing` through ndotel's installed subscriber (`_bridge`
    // appended: with `tracing-opentelemetry` as the bridge).
    if let Some(distro) = variant.strip_prefix("tracing_") {
        // `_bridge`: through `tracing-opentelemetry` instead of ndotel's own layer.
        let (distro, bridge) = match distro.strip_suffix("_bridge") {
            Some(d) => (d, "tracing-opentelemetry"),
            None => (distro, "ndotel"),
        };
        let distro = if distro == "sdk" {
            "sdk"
        } else {
            "otel_custom_distro"
        };
        let env = ndotel::Env::from_pairs(
            [
                ("OTEL_RUST_DISTRO", distro.to_string()),
                ("OTEL_RUST_DISTRO_PATH", plugins.display().to_string()),
                ("OTEL_TRACES_EXPORTER", "none".into()),
                ("OTEL_METRICS_EXPORTER", "none".into()),
                ("OTEL_LOGS_EXPORTER", "none".into()),
                ("OTEL_RUST_TRACING_BRIDGE", bridge.into()),
            ],
            &plugins,
        );
        let _guard = ndotel::try_init_with(&env).expect("ndotel");
        for _ in 0..n {
            ndotel_benches::one_tracing_span(secret == "1");
        }
        return;
    }
    // `encode`: N spans (8 attributes, as `one_span` makes them) through ndotel's OTLP encoder, in batches of 512 as
    // the batch processor hands them over: what encoding costs per span, batch overhead included.
    if variant == "encode" {
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("bench")
            .build();
        let encoder = ndotel::bench::SpanEncoder::new(&resource);
        let batch = vec![ndotel_benches::span_data(&attributes(secret == "1")); 512];
        let mut buf = Vec::new();
        for _ in 0..n.div_ceil(batch.len()) {
            encoder.encode(&batch, &mut buf);
            std::hint::black_box(&buf);
        }
        return;
    }
    let (base, rest) = variant.split_once('_').unwrap_or((variant.as_str(), ""));
    let provider = match base {
        "bare" => SdkTracerProvider::builder()
            .with_sampler(if rest == "off" {
                Sampler::AlwaysOff
            } else {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
            })
            .build(),
        "sdk" => ndotel_provider("sdk", &plugins),
        _ => ndotel_provider("otel_custom_distro", &plugins),
    };
    let tracer = provider.tracer("bench");
    let mut attrs = attributes(secret == "1");
    let count = |p: &str| {
        rest.strip_prefix(p)
            .map(|k| k.parse::<usize>().expect("a count"))
    };
    if let Some(k) = count("attrs_") {
        attrs = ndotel_benches::many_attributes(k, secret == "1");
    }
    let name = if rest == "health" || rest == "off" {
        "GET /health"
    } else {
        "GET /items/{id}"
    };
    let children = count("children_").unwrap_or(0);
    for _ in 0..n {
        ndotel_benches::one_request(&tracer, name, &attrs, children);
    }
}
