//! Two processes of the example service, each under `ndotel run` with the `otel_custom_distro` plugin and its own
//! file exports: the upstream's `/downstream/items` calls the downstream with the instrumented client. One trace
//! spans both (SERVER → CLIENT → SERVER → DB), correctly parented; baggage arrives downstream; a trace the sampler
//! drops upstream leaves nothing in either process; the client's duration histogram is recorded.
#![allow(clippy::unwrap_used)] // a test fails loudly

use app::otlp_json::{self, Span};
use app::{client, harness};
use ndotel_tests::{app_under_ndotel, plugin_dir, setup};
use std::path::Path;

const SERVER: i64 = 2;
const CLIENT: i64 = 3;

fn start(dir: &Path, name: &str, downstream: Option<&str>) -> harness::Running {
    let plugins = plugin_dir(dir, "plugins", &["otel_custom_distro"]);
    let mut cmd = app_under_ndotel(
        dir,
        &[
            "--distro",
            "otel_custom_distro",
            "--traces-exporter",
            "file",
            "--metrics-exporter",
            "file",
            "--logs-exporter",
            "none",
            "--service-name",
            name,
        ],
    );
    cmd.env("OTEL_RUST_DISTRO_PATH", plugins)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "60000");
    if let Some(url) = downstream {
        cmd.env("DOWNSTREAM_URL", url);
    }
    harness::start_capturing_stderr(cmd).unwrap()
}

fn one<'a>(spans: &'a [Span], what: &str, pick: impl Fn(&Span) -> bool) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "{what}: {spans:#?}");
    found[0]
}

#[test]
fn one_trace_spans_both_services_and_the_samplers_decision_crosses_the_hop() {
    let tmp = setup();
    let (up_dir, down_dir) = (tmp.path().join("up"), tmp.path().join("down"));
    for d in [&up_dir, &down_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let down = start(&down_dir, "downstream", None);
    let up = start(&up_dir, "upstream", Some(&format!("http://{}", down.addr)));
    let created = client::request(
        &down.addr,
        "POST",
        "/items",
        &[],
        Some(r#"{"name":"lamp","price":19.5}"#),
    )
    .unwrap();
    assert_eq!(created.status, 201);

    let r = client::request(
        &up.addr,
        "GET",
        "/downstream/items",
        &[("baggage", "tenant=acme,session.token=bag-s3cret")],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("lamp"), "{}", r.body);
    // A trace whose incoming parent is not sampled: the upstream's sampler follows it, and so must the downstream.
    let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let r = client::request(
        &up.addr,
        "GET",
        "/downstream/items",
        &[("traceparent", unsampled)],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    assert!(up.terminate().unwrap() && down.terminate().unwrap());
    let up_spans = otlp_json::spans(&up_dir.join("traces.jsonl")).unwrap();
    let down_spans = otlp_json::spans(&down_dir.join("traces.jsonl")).unwrap();

    let server = one(&up_spans, "the upstream SERVER span", |s| {
        s.kind == SERVER && s.attr("url.path") == Some("/downstream/items")
    });
    let call = one(&up_spans, "the upstream CLIENT span", |s| {
        s.kind == CLIENT && s.attr("http.request.method") == Some("GET")
    });
    assert_eq!(call.trace_id, server.trace_id);
    assert_eq!(call.parent_span_id, server.span_id);
    assert_eq!(call.attr("http.response.status_code"), Some("200"));
    assert!(call.attr("url.full").is_some_and(|u| u.ends_with("/items")));
    let downstream_server = one(
        &down_spans,
        "the downstream SERVER span in the trace",
        |s| s.kind == SERVER && s.trace_id == server.trace_id,
    );
    assert_eq!(
        downstream_server.parent_span_id, call.span_id,
        "parented on the CLIENT span"
    );
    assert_eq!(downstream_server.attr("url.path"), Some("/items"));
    let query = one(&down_spans, "the downstream query in the trace", |s| {
        s.kind == CLIENT && s.trace_id == server.trace_id
    });
    assert_eq!(query.parent_span_id, downstream_server.span_id);
    assert_eq!(query.name, "SELECT items");
    // Baggage arrived downstream (and what it carried was redacted like any attribute).
    assert_eq!(downstream_server.attr("baggage.tenant"), Some("acme"));
    assert_eq!(
        downstream_server.attr("baggage.session.token"),
        Some("[REDACTED]")
    );

    // The unsampled trace left nothing anywhere.
    for (who, spans) in [("upstream", &up_spans), ("downstream", &down_spans)] {
        assert!(
            !spans
                .iter()
                .any(|s| s.trace_id == "0af7651916cd43dd8448eb211c80319c"),
            "{who} exported the unsampled trace"
        );
    }
    // Upstream: the two calls made, and only them: one sampled trace (SERVER, CLIENT).
    assert_eq!(up_spans.len(), 2, "{up_spans:#?}");

    let metrics = std::fs::read_to_string(up_dir.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let histogram = lines
        .iter()
        .flat_map(|l| l["resourceMetrics"].as_array().cloned().unwrap_or_default())
        .flat_map(|rm| rm["scopeMetrics"].as_array().cloned().unwrap_or_default())
        .flat_map(|sm| sm["metrics"].as_array().cloned().unwrap_or_default())
        .find(|m| m["name"] == "http.client.request.duration")
        .unwrap_or_else(|| panic!("no http.client.request.duration in {metrics}"));
    assert_eq!(histogram["unit"], "s");
    let points = histogram["histogram"]["dataPoints"].as_array().unwrap();
    let count: u64 = points
        .iter()
        .map(|p| p["count"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        count, 2,
        "both calls are measured, sampled or not: {histogram}"
    );
    assert_eq!(
        points[0]["explicitBounds"].as_array().unwrap().first(),
        Some(&serde_json::json!(0.005)),
        "the semantic conventions' buckets, in seconds"
    );
}

/// A service with a composite sampler from its `distro.toml`: under the builtin `sdk` distro, roots kept at 50% and
/// children following their parent's threshold; under the reference distro, its own sampler (ratio 0.5) as the
/// composite's only node, stating its ratio as a threshold.
fn start_composite(
    dir: &Path,
    name: &str,
    downstream: Option<&str>,
    reference: bool,
) -> harness::Running {
    let (distro, toml) = if reference {
        (
            "otel_custom_distro",
            "[sampler]\ncomposite = { distro = {} }\n\n[distro.otel_custom_distro.sampler]\nratio = 0.5\n",
        )
    } else {
        (
            "sdk",
            "[sampler]\ncomposite = { parent_threshold = { root = { probability = { ratio = 0.5 } } } }\n",
        )
    };
    std::fs::write(dir.join("distro.toml"), toml).unwrap();
    let plugins = plugin_dir(dir, "plugins", &["otel_custom_distro"]);
    let mut cmd = app_under_ndotel(
        dir,
        &[
            "--distro",
            distro,
            "--traces-exporter",
            "file",
            "--metrics-exporter",
            "none",
            "--logs-exporter",
            "none",
            "--service-name",
            name,
        ],
    );
    cmd.env("OTEL_RUST_DISTRO_PATH", plugins);
    if let Some(url) = downstream {
        cmd.env("DOWNSTREAM_URL", url);
    }
    harness::start_capturing_stderr(cmd).unwrap()
}

#[test]
fn the_threshold_travels_in_tracestate_and_the_callee_keeps_exactly_the_callers_traces() {
    threshold_travels(false);
}

#[test]
fn the_reference_distros_sampler_states_its_ratio_as_a_threshold_the_callee_honours() {
    threshold_travels(true);
}

/// The caller (the reference distro's sampler when `reference`, else the host's) decides at 50%; the callee (the
/// host's parent-threshold sampler) follows.
fn threshold_travels(reference: bool) {
    let tmp = setup();
    let (up_dir, down_dir) = (tmp.path().join("up"), tmp.path().join("down"));
    for d in [&up_dir, &down_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let down = start_composite(&down_dir, "downstream", None, false);
    let up = start_composite(
        &up_dir,
        "upstream",
        Some(&format!("http://{}", down.addr)),
        reference,
    );
    let requests = 24;
    for _ in 0..requests {
        let r = client::request(&up.addr, "GET", "/downstream/items", &[], None).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert!(up.terminate().unwrap() && down.terminate().unwrap());
    let up_spans = otlp_json::spans(&up_dir.join("traces.jsonl")).unwrap();
    let down_spans = otlp_json::spans(&down_dir.join("traces.jsonl")).unwrap();
    let kept: Vec<&Span> = up_spans
        .iter()
        .filter(|s| s.kind == SERVER && s.attr("url.path") == Some("/downstream/items"))
        .collect();
    // Each root is kept with probability 0.5 (about 1 in 8 million runs keeps none or all).
    assert!(
        !kept.is_empty() && kept.len() < requests,
        "{} of {requests} kept",
        kept.len()
    );
    for server in &kept {
        // The threshold of 0.5 is `8`, written on every kept span of the trace, in both processes.
        assert_eq!(server.trace_state, "ot=th:8", "{server:#?}");
        let downstream_server = one(&down_spans, "the callee's SERVER span", |s| {
            s.kind == SERVER && s.trace_id == server.trace_id
        });
        assert_eq!(downstream_server.trace_state, "ot=th:8");
    }
    // The callee kept exactly the caller's traces: none of the dropped ones.
    let mut up_traces: Vec<&str> = kept.iter().map(|s| s.trace_id.as_str()).collect();
    let mut down_traces: Vec<&str> = down_spans
        .iter()
        .filter(|s| s.kind == SERVER)
        .map(|s| s.trace_id.as_str())
        .collect();
    up_traces.sort();
    down_traces.sort();
    assert_eq!(up_traces, down_traces);
}
