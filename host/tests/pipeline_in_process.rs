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

/// Builds the pipeline for `pairs` (exporters off) with an in-memory exporter beside them.
fn build(pairs: &[(&str, &str)]) -> (Pipeline, InMemorySpanExporter) {
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
    (pipeline, exporter)
}

/// [`build`], then runs `spans` through it; returns what the exporter received and the pipeline (for its fault
/// counts).
fn run(pairs: &[(&str, &str)], spans: &[(&str, Vec<KeyValue>)]) -> (Vec<SpanData>, Pipeline) {
    let (pipeline, exporter) = build(pairs);
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
fn otel_sdk_disabled_true_in_any_case_builds_no_provider_but_still_propagates() {
    let env = Env::from_pairs(
        [("OTEL_SDK_DISABLED", "TRUE"), ("OTEL_RUST_DISTRO", "sdk")],
        "/",
    );
    let plan = Plan::new(&env).unwrap();
    let pipeline = Pipeline::build(&plan, &env).unwrap();
    assert!(pipeline.tracer_provider.is_none());
    assert!(pipeline.meter_provider.is_none());
    // "Has no effect on propagators configured through the OTEL_PROPAGATORS variable": the caller's context and
    // baggage are still passed on.
    use opentelemetry::propagation::TextMapPropagator as _;
    let propagator = pipeline.propagator.expect("the propagators are built");
    let incoming: std::collections::HashMap<String, String> = [
        (
            "traceparent".to_string(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string(),
        ),
        ("baggage".to_string(), "tenant=acme".to_string()),
    ]
    .into();
    let cx = propagator.extract(&incoming);
    let mut outgoing = std::collections::HashMap::new();
    propagator.inject_context(&cx, &mut outgoing);
    for (key, value) in &incoming {
        assert_eq!(outgoing.get(key), Some(value), "{outgoing:?}");
    }
}

/// Builds the pipeline for `pairs` with the `file` log exporter writing into a temporary directory, emits
/// `records` (body, attributes, severity) through the OpenTelemetry logs API, shuts down, and returns the exported
/// records (OTLP JSON) and the pipeline's fault counts.
/// A log record to emit: body, attributes, severity.
type Record<'a> = (
    &'a str,
    Vec<(&'a str, &'a str)>,
    opentelemetry::logs::Severity,
);

fn run_logs(pairs: &[(&str, &str)], records: &[Record<'_>]) -> (Vec<serde_json::Value>, u64) {
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.jsonl");
    let path_str = path.to_str().unwrap().to_string();
    let mut all = vec![
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "file"),
        ("OTEL_EXPORTER_FILE_LOGS_PATH", path_str.as_str()),
    ];
    all.extend_from_slice(pairs);
    let env = Env::from_pairs(all, "/");
    let plan = Plan::new(&env).unwrap();
    let pipeline = Pipeline::build(&plan, &env).unwrap();
    let provider = pipeline.logger_provider.clone().unwrap();
    let logger = provider.logger("in-process");
    for (body, attributes, severity) in records {
        let mut record = logger.create_log_record();
        record.set_body(body.to_string().into());
        record.set_severity_number(*severity);
        for (k, v) in attributes {
            record.add_attribute(k.to_string(), v.to_string());
        }
        logger.emit(record);
    }
    provider.shutdown().unwrap();
    let faults = pipeline.faults.count(Component::LogProcessor);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let records = text
        .lines()
        .flat_map(|line| {
            let request: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut out = Vec::new();
            for rl in request["resourceLogs"].as_array().unwrap() {
                for sl in rl["scopeLogs"].as_array().unwrap() {
                    out.extend(sl["logRecords"].as_array().unwrap().iter().cloned());
                }
            }
            out
        })
        .collect();
    (records, faults)
}

#[test]
fn the_reference_distro_redacts_log_bodies_and_attributes_before_the_log_exporter() {
    use opentelemetry::logs::Severity;
    let (records, faults) = run_logs(
        &[("OTEL_RUST_DISTRO", "otel_custom_distro")],
        &[
            (
                "login for bob with password=hunter2-in-log failed",
                vec![
                    ("api_key", "hunter2-attr"),
                    ("user.note", "token=hunter2-note"),
                ],
                Severity::Warn,
            ),
            ("listed 3 items", vec![("items", "3")], Severity::Info),
        ],
    );
    assert_eq!(faults, 0);
    assert_eq!(records.len(), 2, "{records:#?}");
    let text = serde_json::to_string(&records).unwrap();
    assert!(
        !text.contains("hunter2"),
        "a secret reached the log export: {text}"
    );
    assert_eq!(
        records[0]["body"]["stringValue"],
        "login for bob with password=[REDACTED] failed"
    );
    assert_eq!(records[0]["severityNumber"], 13);
    assert_eq!(records[1]["body"]["stringValue"], "listed 3 items");
}

#[test]
fn a_panicking_log_processor_fails_closed_and_is_counted() {
    use opentelemetry::logs::Severity;
    // (Under `pass` the record reaches ndotel's stderr log too, unedited, as the operator chose.)
    let records = [(
        "a record the failing processor drops",
        vec![],
        Severity::Error,
    )];
    let (exported, faults) = run_logs(&[("OTEL_RUST_DISTRO", "faulty_processor_panic")], &records);
    assert!(exported.is_empty(), "{exported:#?}");
    assert_eq!(faults, 1);
    let (exported, _) = run_logs(
        &[
            ("OTEL_RUST_DISTRO", "faulty_processor_panic"),
            ("OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR", "pass"),
        ],
        &records,
    );
    assert_eq!(exported.len(), 1);
}

#[test]
fn a_hanging_log_processor_is_bypassed_and_later_records_fail_closed() {
    use opentelemetry::logs::Severity;
    let (exported, faults) = run_logs(
        &[
            ("OTEL_RUST_DISTRO", "faulty_processor_hang"),
            ("OTEL_RUST_DISTRO_CALL_TIMEOUT", "200"),
        ],
        &[("fine", vec![], Severity::Info)],
    );
    assert_eq!(
        (exported.len(), faults),
        (1, 0),
        "a record it returns on is exported"
    );
    // The hanging call is made on a thread of its own, so the test's thread goes on once the watchdog trips.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.jsonl");
    let env = Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO", "faulty_processor_hang"),
            ("OTEL_RUST_DISTRO_CALL_TIMEOUT", "200"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "file"),
            ("OTEL_EXPORTER_FILE_LOGS_PATH", path.to_str().unwrap()),
        ],
        "/",
    );
    let plan = Plan::new(&env).unwrap();
    let pipeline = Pipeline::build(&plan, &env).unwrap();
    let provider = pipeline.logger_provider.clone().unwrap();
    let emit = |body: &'static str| {
        let provider = provider.clone();
        std::thread::spawn(move || {
            use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
            let logger = provider.logger("in-process");
            let mut record = logger.create_log_record();
            record.set_body(body.into());
            logger.emit(record);
        })
    };
    let _stuck = emit("please hang");
    // Wait for the watchdog to report the stuck call (an event, not a sleep of a guessed length).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while pipeline.faults.hung() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watchdog never reported the stuck call"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    emit("after the hang: password=later-secret")
        .join()
        .unwrap();
    provider.force_flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(!text.contains("later-secret"), "{text}");
    assert!(pipeline.faults.count(Component::LogProcessor) >= 1);
}

#[test]
fn a_slow_call_on_the_batch_thread_costs_at_most_its_own_span_and_never_switches_the_processor_off()
{
    let (pipeline, exporter) = build(&[
        ("OTEL_RUST_DISTRO", "faulty_processor_slow"),
        ("OTEL_RUST_DISTRO_CALL_TIMEOUT", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    let provider = pipeline.tracer_provider.clone().unwrap();
    let end_span = |name: &'static str, value: &'static str| {
        let tracer = provider.tracer("in-process");
        tracer
            .span_builder(name)
            .with_attributes([
                KeyValue::new("user_agent.original", value),
                KeyValue::new("secret", "s3cr3t"),
            ])
            .start(&tracer)
            .end();
    };
    // The hostile input (a value the processor is slow on, past 5× its deadline) among ordinary spans of the same
    // batch. Ending a span only queues it: the request thread never waits for the distro.
    end_span("GET /neighbour", "curl");
    end_span("GET /slow", "slow slow slow");
    end_span("GET /neighbour", "curl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while pipeline.faults.hung() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watchdog never saw the slow call"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // While the batch thread is held, spans are still ended and queued.
    end_span("GET /meanwhile", "curl");
    fixture_faulty::release_slow_calls();
    // Once the slow call has returned (an event: a span ended after it comes out edited), the processor is in
    // service again and edits every span.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        end_span("GET /after", "curl");
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        if spans.iter().any(|s| s.name == "GET /after") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the processor never came back: {spans:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for _ in 0..5 {
        end_span("GET /final", "curl");
    }
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let finals = spans.iter().filter(|s| s.name == "GET /final").count();
    assert_eq!(finals, 5, "every span after the slow call is exported");
    // Whatever was exported — the stuck batch is dropped whole if the batch thread gave up on it, its neighbours
    // edited if the call returned first — was edited: never a span unredacted.
    for span in &spans {
        assert_eq!(attribute(span, "secret"), Some(&Value::from("[REDACTED]")));
    }
    assert!(pipeline.faults.count(Component::SpanProcessor) >= 1);
}

#[test]
fn views_set_histogram_buckets_and_cap_series_for_their_meter_only() {
    use opentelemetry::metrics::MeterProvider as _;
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("distro.toml");
    std::fs::write(
        &toml,
        "[[views]]\ninstrument = \"job.*\"\nmeter = \"jobs\"\nbuckets = [1.0, 10.0]\ncardinality_limit = 2\n\
         description = \"Time per job\"\n",
    )
    .unwrap();
    let metrics = dir.path().join("metrics.jsonl");
    let env = Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO", "sdk"),
            ("OTEL_RUST_DISTRO_CONFIG", toml.to_str().unwrap()),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "file"),
            ("OTEL_EXPORTER_FILE_METRICS_PATH", metrics.to_str().unwrap()),
        ],
        "/",
    );
    let plan = Plan::new(&env).unwrap();
    let pipeline = Pipeline::build(&plan, &env).unwrap();
    let mp = pipeline.meter_provider.clone().unwrap();
    let jobs = mp.meter("jobs").f64_histogram("job.duration").build();
    for i in 0..5 {
        jobs.record(5.0, &[KeyValue::new("job", i as i64)]);
    }
    mp.meter("other")
        .f64_histogram("job.duration")
        .build()
        .record(5.0, &[]);
    mp.shutdown().unwrap();
    let text = std::fs::read_to_string(&metrics).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let metric = |scope: &str| -> serde_json::Value {
        last["resourceMetrics"][0]["scopeMetrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|sm| sm["scope"]["name"] == scope)
            .unwrap_or_else(|| panic!("no scope {scope}: {last}"))["metrics"][0]
            .clone()
    };
    let points = |scope: &str| {
        metric(scope)["histogram"]["dataPoints"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(metric("jobs")["description"], "Time per job");
    let jobs = points("jobs");
    // Five series against a limit of 2: at most two kept, the rest folded into the overflow series, nothing lost.
    let overflow = |p: &serde_json::Value| p["attributes"][0]["key"] == "otel.metric.overflow";
    assert!(jobs.iter().any(overflow), "{jobs:#?}");
    assert!(
        jobs.iter().filter(|p| !overflow(p)).count() <= 2,
        "{jobs:#?}"
    );
    let recorded: u64 = jobs
        .iter()
        .map(|p| p["count"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(recorded, 5);
    for p in &jobs {
        assert_eq!(p["explicitBounds"], serde_json::json!([1.0, 10.0]));
    }
    let other = points("other");
    assert_ne!(
        other[0]["explicitBounds"],
        serde_json::json!([1.0, 10.0]),
        "another meter's instrument keeps the default buckets"
    );
}

/// `lowmemory`, as the OTLP exporter specification defines it: delta for counters and histograms, cumulative for
/// up-down counters and the asynchronous counters.
#[test]
fn lowmemory_temporality_is_delta_for_counters_and_cumulative_for_up_down_and_asynchronous_counters()
 {
    use opentelemetry::metrics::MeterProvider as _;
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.jsonl");
    let env = Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO", "sdk"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "file"),
            ("OTEL_EXPORTER_FILE_METRICS_PATH", metrics.to_str().unwrap()),
            (
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                "LowMemory",
            ),
        ],
        "/",
    );
    let plan = Plan::new(&env).unwrap();
    assert!(
        plan.settings.warnings.is_empty(),
        "{:?}",
        plan.settings.warnings
    );
    let pipeline = Pipeline::build(&plan, &env).unwrap();
    let mp = pipeline.meter_provider.clone().unwrap();
    let meter = mp.meter("temporality");
    meter.u64_counter("c").build().add(1, &[]);
    meter.f64_histogram("h").build().record(1.0, &[]);
    meter.i64_up_down_counter("ud").build().add(1, &[]);
    let _oc = meter
        .u64_observable_counter("oc")
        .with_callback(|o| o.observe(1, &[]))
        .build();
    let _oud = meter
        .i64_observable_up_down_counter("oud")
        .with_callback(|o| o.observe(1, &[]))
        .build();
    mp.shutdown().unwrap();
    let text = std::fs::read_to_string(&metrics).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let temporality = |name: &str| {
        let m = last["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {last}"))
            .clone();
        let data = m.get("sum").or_else(|| m.get("histogram")).unwrap().clone();
        data["aggregationTemporality"].as_i64().unwrap()
    };
    const DELTA: i64 = 1;
    const CUMULATIVE: i64 = 2;
    assert_eq!(temporality("c"), DELTA);
    assert_eq!(temporality("h"), DELTA);
    assert_eq!(temporality("ud"), CUMULATIVE);
    assert_eq!(temporality("oc"), CUMULATIVE);
    assert_eq!(temporality("oud"), CUMULATIVE);
}

/// `OTEL_*_ATTRIBUTE_VALUE_LENGTH_LIMIT`: every string value of a span, its events and links, and each string of an
/// array, cut to the limit in characters — after the distro's edits, so a redaction sees the whole value.
#[test]
fn attribute_values_are_cut_to_the_length_limit_after_the_distros_redaction() {
    use opentelemetry::trace::{Link, SpanContext, TraceFlags, TraceState};
    use opentelemetry::{Array, StringValue};
    let (pipeline, exporter) = build(&[
        ("OTEL_RUST_DISTRO", "otel_custom_distro"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8"),
    ]);
    let provider = pipeline.tracer_provider.clone().unwrap();
    let tracer = provider.tracer("in-process");
    let linked = SpanContext::new(
        opentelemetry::trace::TraceId::from(7),
        opentelemetry::trace::SpanId::from(9),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let mut span = tracer
        .span_builder("GET /items")
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("user.note", "token=hunter2-note"),
            KeyValue::new("greek", "αβγδεζηθικλ"),
            KeyValue::new(
                "list",
                Value::Array(Array::String(vec![
                    StringValue::from("0123456789"),
                    StringValue::from("ok"),
                ])),
            ),
            KeyValue::new("count", 1_234_567_890_123_i64),
        ])
        .with_links(vec![Link::new(
            linked,
            vec![KeyValue::new("link.note", "abcdefghijkl")],
            0,
        )])
        .start(&tracer);
    span.add_event("e", vec![KeyValue::new("detail", "0123456789abc")]);
    span.end();
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    // Redacted first ("token=[REDACTED]"), then cut: a cut first would have kept "token=hu".
    assert_eq!(attribute(s, "user.note").unwrap().as_str(), "token=[R");
    assert_eq!(attribute(s, "greek").unwrap().as_str(), "αβγδεζηθ");
    assert_eq!(
        attribute(s, "list"),
        Some(&Value::Array(Array::String(vec![
            StringValue::from("01234567"),
            StringValue::from("ok"),
        ])))
    );
    assert_eq!(attribute(s, "count"), Some(&Value::I64(1_234_567_890_123)));
    assert_eq!(s.events.events[0].attributes[0].value.as_str(), "01234567");
    assert_eq!(s.links.links[0].attributes[0].value.as_str(), "abcdefgh");
}

/// `OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT` and `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` for log records: the attributes
/// past the count are dropped, the strings cut, the body left whole.
#[test]
fn log_records_keep_their_attribute_limits() {
    use opentelemetry::logs::Severity;
    let (records, _) = run_logs(
        &[
            ("OTEL_RUST_DISTRO", "sdk"),
            ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "2"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3"),
        ],
        &[
            (
                "a body longer than the limit",
                vec![("a", "12345"), ("b", "xy"), ("c", "zzz")],
                Severity::Info,
            ),
            ("within", vec![("k", "v")], Severity::Info),
        ],
    );
    assert_eq!(records.len(), 2, "{records:#?}");
    let attributes = |r: &serde_json::Value| -> Vec<(String, String)> {
        r["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                (
                    kv["key"].as_str().unwrap().to_string(),
                    kv["value"]["stringValue"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        attributes(&records[0]),
        [("a".into(), "123".into()), ("b".into(), "xy".into())]
    );
    assert_eq!(
        records[0]["body"]["stringValue"],
        "a body longer than the limit"
    );
    assert_eq!(attributes(&records[1]), [("k".into(), "v".into())]);
}
