//! Metric views declared in `distro.toml` (`[[views]]`) shape what the metric exporter receives: an instrument
//! renamed with an attribute dropped, an instrument dropped, bucket boundaries replaced; a view naming no
//! instrument of the service is named once on stderr; a bad view is an error with file:line.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{output, setup, workload};
use serde_json::Value;

/// Every metric of the last collection in an OTLP JSON lines file, by name.
fn last_metrics(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    last["resourceMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rm| rm["scopeMetrics"].as_array().unwrap().clone())
        .flat_map(|sm| sm["metrics"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn views_rename_drop_attributes_and_instruments_and_an_unmatched_view_is_named_once() {
    let tmp = setup();
    std::fs::write(
        tmp.path().join("distro.toml"),
        r#"
[[views]]
instrument = "workload.requests"
rename = "workload.request.count"
keep_attributes = []

[[views]]
instrument = "workload.sess*"
drop = true

[[views]]
instrument = "no.such.instrument"
"#,
    )
    .unwrap();
    let metrics_path = tmp.path().join("metrics.jsonl");
    let (ok, stdout, stderr) = output(
        workload("workload_static", tmp.path())
            .env("OTEL_RUST_DISTRO", "otel_custom_distro")
            .env("OTEL_RUST_DISTRO_CONFIG", tmp.path().join("distro.toml"))
            .env("WORKLOAD_SECRETS", "1")
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_LOGS_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "file")
            .env("OTEL_EXPORTER_FILE_METRICS_PATH", &metrics_path),
    );
    assert!(ok && stdout.contains("faults: 0"), "{stdout}\n{stderr}");
    let metrics = last_metrics(&metrics_path);
    let names: Vec<&str> = metrics
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"workload.requests"), "{names:?}");
    assert!(!names.contains(&"workload.sessions"), "dropped: {names:?}");
    assert!(names.contains(&"workload.logins"), "untouched: {names:?}");
    let renamed = metrics
        .iter()
        .find(|m| m["name"] == "workload.request.count")
        .unwrap_or_else(|| panic!("{names:?}"));
    let point = &renamed["sum"]["dataPoints"][0];
    assert_eq!(point["asInt"], "3");
    assert!(
        point["attributes"].as_array().is_none_or(|a| a.is_empty()),
        "http.route is dropped: {point}"
    );
    let unmatched: Vec<&str> = stderr.lines().filter(|l| l.contains("[[views]]")).collect();
    assert_eq!(unmatched.len(), 1, "{stderr}");
    assert!(unmatched[0].contains("\"no.such.instrument\""), "{stderr}");
}

#[test]
fn views_say_nothing_when_metrics_are_not_exported() {
    let tmp = setup();
    std::fs::write(
        tmp.path().join("distro.toml"),
        "[[views]]\ninstrument = \"no.such.instrument\"\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = output(
        workload("workload_static", tmp.path())
            .env("OTEL_RUST_DISTRO", "sdk")
            .env("OTEL_RUST_DISTRO_CONFIG", tmp.path().join("distro.toml"))
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_LOGS_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "none"),
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        !stderr.contains("[[views]]"),
        "no meter provider, no view to miss: {stderr}"
    );
}

#[test]
fn a_bad_view_is_an_error_at_its_file_and_line() {
    let tmp = setup();
    std::fs::write(
        tmp.path().join("distro.toml"),
        "[otel]\nservice_name = \"x\"\n\n[[views]]\ninstrument = \"h\"\nbuckets = [1.0, 0.5]\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = output(
        workload("workload_static", tmp.path())
            .env("OTEL_RUST_DISTRO", "sdk")
            .env("OTEL_RUST_DISTRO_CONFIG", tmp.path().join("distro.toml"))
            .env("OTEL_RUST_DISTRO_FAIL_FAST", "true"),
    );
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("distro.toml:4:") && stderr.contains("strictly increasing"),
        "{stderr}"
    );
}
