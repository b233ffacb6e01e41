//! The built-in `file` exporters write OTLP JSON lines — one complete `Export…ServiceRequest` per line — that the
//! real OTLP decoder (opentelemetry-proto's serde types) reads back.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{output, plugin_dir, setup, workload};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

#[test]
fn traces_and_metrics_files_decode_as_otlp() {
    let tmp = setup();
    let plugins = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let (ok, stdout, stderr) = output(
        workload("workload_dynamic", tmp.path())
            .env("OTEL_RUST_DISTRO_PATH", plugins)
            .env("OTEL_RUST_DISTRO", "otel_custom_distro")
            .env("OTEL_TRACES_EXPORTER", "file")
            .env("OTEL_METRICS_EXPORTER", "file,custom_file")
            .env("OTEL_EXPORTER_FILE_TRACES_PATH", "out/traces.jsonl")
            .env("OTEL_EXPORTER_FILE_METRICS_PATH", "out/metrics.jsonl"),
    );
    assert!(ok, "{stdout}{stderr}");

    let traces = std::fs::read_to_string(tmp.path().join("out/traces.jsonl")).unwrap();
    let mut names = Vec::new();
    for line in traces.lines() {
        let req: ExportTraceServiceRequest = serde_json::from_str(line).unwrap();
        for rs in &req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .unwrap()
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name");
            assert!(service.is_some());
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    assert_eq!(s.trace_id.len(), 16, "hex ids decode to 16 bytes");
                    names.push(s.name.clone());
                }
            }
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "GET /items",
            "GET /items",
            "GET /items",
            "SELECT items",
            "SELECT items",
            "SELECT items",
            "direct api span"
        ]
    );

    // The host's `file` metric exporter and the distro's `custom_file` write the same format.
    for file in ["out/metrics.jsonl", "custom-metrics.jsonl"] {
        let text = std::fs::read_to_string(tmp.path().join(file)).unwrap();
        assert!(text.ends_with('\n'), "{file}: lines are whole");
        let found = text.lines().any(|line| {
            let req: ExportMetricsServiceRequest = serde_json::from_str(line).unwrap();
            req.resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .any(|m| m.name == "workload.requests")
        });
        assert!(found, "{file} lacks workload.requests:\n{text}");
    }
}

/// At shutdown every data point is exported once: the guard does not flush before shutting the meter provider down
/// (which collects and exports itself).
#[test]
fn shutdown_exports_each_metric_once() {
    let tmp = setup();
    let (ok, stdout, stderr) = output(
        workload("workload_static", tmp.path())
            .env("OTEL_RUST_DISTRO", "sdk")
            .env("WORKLOAD_NO_FLUSH", "1")
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "file")
            .env("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
            .env("OTEL_EXPORTER_FILE_METRICS_PATH", "metrics.jsonl"),
    );
    assert!(ok, "{stdout}{stderr}");
    let text = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
    assert_eq!(
        text.matches("workload.requests").count(),
        1,
        "one export at shutdown:\n{text}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes on a redirected stderr: {stderr:?}"
    );
}
