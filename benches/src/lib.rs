//! Benchmarks of ndotel, each ratio measured side by side in one run. `cargo bench -p ndotel-benches` gives
//! criterion's wall-clock per-span cost (bare SDK vs ndotel's `sdk` distro vs `otel_custom_distro` loaded as a
//! `.so`); `cargo run --release -p ndotel-benches --bin instructions` counts the instructions of every per-span and
//! per-request case under callgrind (`span_loop` makes N spans through one variant); `cargo run --release -p
//! ndotel-benches --bin app_throughput` measures the example service's throughput, p99 latency and memory with no
//! telemetry and under the distro. The last two write their sections of `benches/results.md`.

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

/// A finished SERVER span with `attrs`, as the batch processor hands it to an exporter.
pub fn span_data(attrs: &[KeyValue]) -> opentelemetry_sdk::trace::SpanData {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let start = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_nanos(1_765_000_000_123_456_789);
    opentelemetry_sdk::trace::SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes([0x5b; 16]),
            SpanId::from_bytes([0x1c; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: "GET /items/{id}".into(),
        start_time: start,
        end_time: start + std::time::Duration::from_micros(850),
        attributes: attrs.to_vec(),
        dropped_attributes_count: 0,
        events: Default::default(),
        links: Default::default(),
        status: opentelemetry::trace::Status::Unset,
        instrumentation_scope: opentelemetry::InstrumentationScope::builder("app").build(),
    }
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

/// `k` attributes: the usual 8, then `app.field.N` strings.
pub fn many_attributes(k: usize, secret: bool) -> Vec<KeyValue> {
    let mut attrs = attributes(secret);
    attrs.truncate(k);
    for i in attrs.len()..k {
        attrs.push(KeyValue::new(
            format!("app.field.{i}"),
            format!("value {i}"),
        ));
    }
    attrs
}

/// One request: a SERVER span named `name` with `attrs`, and `children` INTERNAL child spans with the same
/// attributes, each ended before the parent.
pub fn one_request(
    tracer: &opentelemetry_sdk::trace::SdkTracer,
    name: &'static str,
    attrs: &[KeyValue],
    children: usize,
) {
    use opentelemetry::trace::TraceContextExt as _;
    let mut span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attrs.to_vec())
        .start(tracer);
    span.set_attribute(KeyValue::new("extra", 1));
    if children > 0 {
        let cx = opentelemetry::Context::current_with_span(span);
        for _ in 0..children {
            let mut child = tracer
                .span_builder("SELECT items")
                .with_attributes(attrs.to_vec())
                .start_with_context(tracer, &cx);
            child.end();
        }
        cx.span().end();
    } else {
        span.end();
    }
}

/// One span made the way Rust services are instrumented: `tracing`, with the same 8 fields as [`attributes`],
/// through whatever subscriber is installed.
pub fn one_tracing_span(secret: bool) {
    // The last field is the secret or a harmless one, as in [`attributes`].
    let span = if secret {
        tracing::info_span!(
            "GET /items/{id}",
            otel.kind = "server",
            http.request.method = "GET",
            url.path = "/items/42",
            http.route = "/items/{id}",
            server.address = "localhost",
            server.port = 8080,
            user_agent.original = "bench/1.0",
            http.response.status_code = 200,
            http.request.header.authorization = "Bearer abcdef0123456789",
            extra = tracing::field::Empty,
        )
    } else {
        tracing::info_span!(
            "GET /items/{id}",
            otel.kind = "server",
            http.request.method = "GET",
            url.path = "/items/42",
            http.route = "/items/{id}",
            server.address = "localhost",
            server.port = 8080,
            user_agent.original = "bench/1.0",
            http.response.status_code = 200,
            network.protocol.version = "1.1",
            extra = tracing::field::Empty,
        )
    };
    let _entered = span.enter();
    span.record("extra", 1);
}

/// `text` with the section between `<!-- begin NAME -->` and `<!-- end NAME -->` replaced by `content` (appended when
/// absent), so each bench rewrites its own part of `results.md` and leaves the others.
pub fn replace_section(text: &str, name: &str, content: &str) -> String {
    let (begin, end) = (
        format!("<!-- begin {name} -->"),
        format!("<!-- end {name} -->"),
    );
    let block = format!("{begin}\n{}\n{end}", content.trim());
    match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &text[..b], &text[e + end.len()..]),
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    }
}

/// Today's date (UTC) and the machine's CPU count, for the results' headers.
pub fn today() -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{date}, {cpus} CPUs")
}

/// The tracer provider ndotel builds for `distro` (plugins from `plugins`), exporters off.
pub fn ndotel_provider(distro: &str, plugins: &std::path::Path) -> SdkTracerProvider {
    let env = ndotel::Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO", distro.to_string()),
            ("OTEL_RUST_DISTRO_PATH", plugins.display().to_string()),
            ("OTEL_TRACES_EXPORTER", "none".into()),
            ("OTEL_METRICS_EXPORTER", "none".into()),
            ("OTEL_LOGS_EXPORTER", "none".into()),
        ],
        plugins,
    );
    let plan = ndotel::Plan::new(&env).expect("plan");
    let pipeline = ndotel::Pipeline::build(&plan, &env).expect("pipeline");
    pipeline.tracer_provider.clone().expect("a tracer provider")
}
