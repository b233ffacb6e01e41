//! One distro source, shipped two ways: linked statically (inventory) or loaded from its `.so`, the same workload
//! exports the same spans. Several distros linked into one binary all register.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{output, plugin_dir, read_jsonl, setup, workload};
use serde_json::{Value, json};
use std::path::Path;

/// The spans of the distro's `custom_jsonl` exporter with ids and times replaced by structure (parent name).
fn normalised(dir: &Path) -> Vec<Value> {
    let spans = read_jsonl(&dir.join("spans.jsonl"));
    let name_of = |id: &Value| {
        spans
            .iter()
            .find(|s| &s["span_id"] == id)
            .map(|s| s["name"].clone())
    };
    let mut out: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut resource = s["resource"].clone();
            resource
                .as_object_mut()
                .unwrap()
                .remove("telemetry.sdk.version");
            json!({
                "name": s["name"],
                "kind": s["kind"],
                "parent": name_of(&s["parent_span_id"]),
                "attributes": s["attributes"],
                "resource": resource,
                "status": s["status"],
            })
        })
        .collect();
    out.sort_by_key(|v| v.to_string());
    out
}

fn run(bin: &str, plugins: Option<&Path>, cwd: &Path) {
    let mut cmd = workload(bin, cwd);
    cmd.env("OTEL_RUST_DISTRO", "otel_custom_distro")
        .env("OTEL_TRACES_EXPORTER", "custom_jsonl")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_SERVICE_NAME", "workload");
    if let Some(p) = plugins {
        cmd.env("OTEL_RUST_DISTRO_PATH", p);
    }
    let (ok, stdout, stderr) = output(&mut cmd);
    assert!(ok, "{bin}: {stderr}");
    assert!(
        stdout.contains("distro: otel_custom_distro") && stdout.contains("faults: 0"),
        "{bin}: {stdout} {stderr}"
    );
}

#[test]
fn static_and_plugin_builds_of_one_distro_produce_the_same_spans() {
    let static_dir = setup();
    run("workload_static", None, static_dir.path());
    let dynamic_dir = setup();
    let plugins = plugin_dir(dynamic_dir.path(), "plugins", &["otel_custom_distro"]);
    run("workload_dynamic", Some(&plugins), dynamic_dir.path());

    let (a, b) = (
        normalised(static_dir.path()),
        normalised(dynamic_dir.path()),
    );
    assert_eq!(a, b, "static and plugin builds differ");

    // And what they produce is the distro's doing: health checks gone with their children, secrets redacted,
    // environment attributes injected, DB spans under their request.
    assert_eq!(
        a.len(),
        7,
        "3 requests + 3 queries + 1 API span, no health check: {a:#?}"
    );
    assert!(
        a.iter()
            .all(|s| !s["name"].as_str().unwrap().contains("health") && s["name"] != "SELECT 1")
    );
    let server: Vec<&Value> = a.iter().filter(|s| s["name"] == "GET /items").collect();
    assert_eq!(server.len(), 3);
    for s in &server {
        assert_eq!(s["kind"], "server");
        assert_eq!(
            s["attributes"]["http.request.header.authorization"],
            "[REDACTED]"
        );
        // A process-wide value: on the resource, not repeated on every span.
        assert_eq!(s["resource"]["deployment.environment.name"], "development");
        assert!(
            s["attributes"]["deployment.environment.name"].is_null(),
            "{s}"
        );
        assert_eq!(s["resource"]["service.name"], "workload");
        assert_eq!(s["resource"]["telemetry.distro.name"], "otel_custom_distro");
    }
    let queries: Vec<&Value> = a.iter().filter(|s| s["name"] == "SELECT items").collect();
    assert!(
        queries
            .iter()
            .all(|q| q["parent"] == "GET /items" && q["kind"] == "client"),
        "{queries:#?}"
    );
}

#[test]
fn several_distros_link_statically_into_one_binary() {
    let tmp = setup();
    let (ok, stdout, stderr) = output(workload("workload_static", tmp.path()).arg("--list"));
    assert!(ok, "{stderr}");
    for name in [
        "otel_custom_distro static",
        "faulty_sampler_panic static",
        "faulty_init_error static",
        "sdk builtin",
    ] {
        assert!(
            stdout.lines().any(|l| l == name),
            "missing {name:?} in:\n{stdout}"
        );
    }
}
