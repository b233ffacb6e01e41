//! The standard `OTEL_*` variables the SDK leaves to the host: exporters (comma lists, built-in and distro names),
//! samplers, `OTEL_SDK_DISABLED`, `OTEL_PROPAGATORS`, service name and resource attributes. Unknown names are errors
//! that list the valid ones.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{ndotel, output, plugin_dir, read_jsonl, setup, workload};
use std::path::Path;
use std::process::Command;

fn run(dir: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let plugins = plugin_dir(dir, "plugins", &["otel_custom_distro"]);
    let mut cmd: Command = workload("workload_dynamic", dir);
    cmd.env("OTEL_RUST_DISTRO_PATH", plugins)
        .env("OTEL_METRICS_EXPORTER", "none");
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

fn exported_spans(dir: &Path) -> usize {
    read_jsonl(&dir.join("traces.jsonl"))
        .iter()
        .flat_map(|r| r["resourceSpans"].as_array().unwrap().clone())
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap().clone())
        .map(|ss| ss["spans"].as_array().unwrap().len())
        .sum()
}

#[test]
fn a_comma_list_of_exporters_feeds_built_in_and_distro_exporters_alike() {
    let tmp = setup();
    let (ok, _, stderr) = run(
        tmp.path(),
        &[
            ("OTEL_RUST_DISTRO", "otel_custom_distro"),
            ("OTEL_TRACES_EXPORTER", "file, custom_jsonl"),
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(exported_spans(tmp.path()), 7);
    assert_eq!(read_jsonl(&tmp.path().join("spans.jsonl")).len(), 7);
}

#[test]
fn sdk_disabled_exports_nothing_and_the_app_runs() {
    let tmp = setup();
    let (ok, stdout, stderr) = run(
        tmp.path(),
        &[
            ("OTEL_RUST_DISTRO", "otel_custom_distro"),
            ("OTEL_TRACES_EXPORTER", "file"),
            ("OTEL_SDK_DISABLED", "true"),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("faults: 0"));
    assert!(
        !tmp.path().join("traces.jsonl").exists(),
        "no exporter may even be built"
    );
}

#[test]
fn built_in_samplers_replace_the_distro_sampler() {
    let tmp = setup();
    let (ok, _, stderr) = run(
        tmp.path(),
        &[
            ("OTEL_RUST_DISTRO", "otel_custom_distro"),
            ("OTEL_TRACES_EXPORTER", "file"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        exported_spans(tmp.path()),
        9,
        "always_on keeps the health check the distro sampler drops"
    );

    let tmp = setup();
    let env = [
        ("OTEL_TRACES_EXPORTER", "file"),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0"),
    ];
    let (ok, _, stderr) = run(tmp.path(), &env);
    assert!(ok, "{stderr}");
    assert_eq!(exported_spans(tmp.path()), 0);
}

#[test]
fn service_name_and_resource_attributes_reach_the_resource() {
    let tmp = setup();
    let env = [
        ("OTEL_RUST_DISTRO", "otel_custom_distro"),
        ("OTEL_TRACES_EXPORTER", "custom_jsonl"),
        ("OTEL_SERVICE_NAME", "checkout"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.region=eu%2Dwest,team=payments",
        ),
    ];
    let (ok, _, stderr) = run(tmp.path(), &env);
    assert!(ok, "{stderr}");
    let spans = read_jsonl(&tmp.path().join("spans.jsonl"));
    let resource = &spans[0]["resource"];
    assert_eq!(resource["service.name"], "checkout");
    assert_eq!(resource["deployment.region"], "eu-west");
    assert_eq!(resource["team"], "payments");
}

#[test]
fn unknown_names_are_errors_that_list_the_valid_ones() {
    let tmp = setup();
    let dir = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let check = |var: &str, value: &str| {
        output(
            ndotel(tmp.path())
                .env("OTEL_RUST_DISTRO_PATH", &dir)
                .env("OTEL_RUST_DISTRO", "otel_custom_distro")
                .env("OTEL_METRICS_EXPORTER", "none")
                .env(var, value)
                .arg("check"),
        )
    };
    let (ok, _, stderr) = check("OTEL_TRACES_SAMPLER", "sometimes");
    assert!(
        !ok && stderr.contains("unknown sampler \"sometimes\"")
            && stderr.contains("parentbased_traceidratio, otel_custom"),
        "{stderr}"
    );
    let (ok, _, stderr) = check("OTEL_METRICS_EXPORTER", "prometheus");
    assert!(
        !ok && stderr.contains("unknown metric exporter \"prometheus\"")
            && stderr.contains("custom_otlp"),
        "{stderr}"
    );
    let (ok, _, stderr) = check("OTEL_PROPAGATORS", "b3");
    assert!(
        !ok && stderr.contains("OTEL_PROPAGATORS=\"b3\"")
            && stderr.contains("tracecontext, baggage"),
        "{stderr}"
    );
    let (ok, _, stderr) = check("OTEL_LOGS_EXPORTER", "syslog");
    assert!(
        !ok && stderr.contains("unknown log exporter \"syslog\""),
        "{stderr}"
    );
    let (ok, _, stderr) = check("OTEL_SDK_DISABLED", "maybe");
    assert!(
        !ok && stderr.contains("OTEL_SDK_DISABLED=\"maybe\" is not valid: expected true or false"),
        "{stderr}"
    );
}
