//! The standard `OTEL_*` variables the SDK leaves to the host: exporters (comma lists, built-in and distro names),
//! samplers, `OTEL_SDK_DISABLED`, `OTEL_PROPAGATORS`, service name and resource attributes — each as the
//! specification's `sdk-environment-variables` page says (checked against the Python SDK's behaviour): empty is
//! unset, enums are case-insensitive, lists are deduplicated, an invalid value is a warning and the default, and
//! only a name nothing answers to fails `ndotel check` / `config` (while `init()` runs without it).
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

/// `ndotel config` for one environment: (exit status, `SETTING -> VALUE SOURCE` rows, stderr).
fn config(
    dir: &Path,
    plugins: &Path,
    env: &[(&str, &str)],
) -> (bool, Vec<(String, String)>, String) {
    let mut cmd = ndotel(dir);
    cmd.env("OTEL_RUST_DISTRO_PATH", plugins)
        .env("OTEL_RUST_DISTRO", "otel_custom_distro")
        .arg("config");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (ok, stdout, stderr) = output(&mut cmd);
    // Columns start where the header's do.
    let header = stdout.lines().next().unwrap_or_default();
    let (value_at, source_at) = (
        header.find("VALUE").unwrap_or(0),
        header.find("SOURCE").unwrap_or(0),
    );
    let rows = stdout
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("OTEL_") && l.len() > source_at)
        .map(|l| {
            let name = l[..value_at].trim().to_string();
            let value = l[value_at..source_at].trim_end();
            (name, format!("{value} {}", &l[source_at..]))
        })
        .collect();
    (ok, rows, stderr)
}

/// Environment, setting, expected value, expected source (a substring), a warning expected, `config` succeeds.
type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    bool,
);

#[test]
fn the_environment_is_read_as_the_specification_says() {
    let tmp = setup();
    let plugins = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    #[rustfmt::skip]
    let table: &[Case] = &[
        (&[("OTEL_TRACES_SAMPLER", "ALWAYS_OFF")], "OTEL_TRACES_SAMPLER", "always_off", "env", None, true),
        (&[("OTEL_TRACES_SAMPLER", " parentbased_TraceIdRatio ")], "OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "env", None, true),
        (&[("OTEL_TRACES_SAMPLER", "xray")], "OTEL_TRACES_SAMPLER", "otel_custom", "distro", Some("not supported by ndotel"), true),
        (&[("OTEL_TRACES_SAMPLER", "sometimes")], "OTEL_TRACES_SAMPLER", "otel_custom", "distro", Some("parentbased_traceidratio, composite, otel_custom"), false),
        (&[("OTEL_TRACES_SAMPLER", "")], "OTEL_TRACES_SAMPLER", "otel_custom", "distro", None, true),
        (&[("OTEL_SDK_DISABLED", "TRUE")], "OTEL_SDK_DISABLED", "true", "env", None, true),
        (&[("OTEL_SDK_DISABLED", "1")], "OTEL_SDK_DISABLED", "false", "default", Some("OTEL_SDK_DISABLED=\"1\" is invalid"), true),
        (&[("OTEL_SDK_DISABLED", "maybe")], "OTEL_SDK_DISABLED", "false", "default", Some("expected true or false"), true),
        (&[("OTEL_BSP_MAX_QUEUE_SIZE", "-5")], "OTEL_BSP_MAX_QUEUE_SIZE", "2048", "default", Some("OTEL_BSP_MAX_QUEUE_SIZE"), true),
        (&[("OTEL_BSP_SCHEDULE_DELAY", "soon")], "OTEL_BSP_SCHEDULE_DELAY", "5000", "default", Some("OTEL_BSP_SCHEDULE_DELAY"), true),
        (&[("OTEL_METRIC_EXPORT_INTERVAL", "")], "OTEL_METRIC_EXPORT_INTERVAL", "60000", "default", None, true),
        (&[("OTEL_PROPAGATORS", "tracecontext, TraceContext,baggage")], "OTEL_PROPAGATORS", "tracecontext,baggage", "env", None, true),
        (&[("OTEL_PROPAGATORS", "b3,baggage")], "OTEL_PROPAGATORS", "baggage", "env", Some("\"b3\""), true),
        (&[("OTEL_PROPAGATORS", "carrier-pigeon")], "OTEL_PROPAGATORS", "tracecontext,baggage", "default", Some("do not know"), false),
        (&[("OTEL_METRICS_EXPORTER", "Prometheus")], "OTEL_METRICS_EXPORTER", "prometheus", "env", None, true),
        (&[("OTEL_EXPORTER_PROMETHEUS_PORT", "http")], "OTEL_EXPORTER_PROMETHEUS_PORT", "9464", "default", Some("OTEL_EXPORTER_PROMETHEUS_PORT"), true),
        (&[("OTEL_EXPORTER_PROMETHEUS_PORT", "99999")], "OTEL_EXPORTER_PROMETHEUS_PORT", "65535", "env", Some("maximum"), true),
        (&[("OTEL_LOGS_EXPORTER", "syslog")], "OTEL_LOGS_EXPORTER", "otlp", "default", Some("\"syslog\""), false),
        (&[("OTEL_TRACES_EXPORTER", "file,FILE,custom_jsonl")], "OTEL_TRACES_EXPORTER", "file,custom_jsonl", "env", None, true),
        (&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,team=a")], "OTEL_SERVICE_NAME", "from-attributes", "env OTEL_RESOURCE_ATTRIBUTES", None, true),
        (&[("OTEL_SERVICE_NAME", ""), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=x,service.name=y")], "OTEL_SERVICE_NAME", "y", "env OTEL_RESOURCE_ATTRIBUTES", None, true),
        (&[("OTEL_SERVICE_NAME", "checkout"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=x")], "OTEL_SERVICE_NAME", "checkout", "env OTEL_SERVICE_NAME", None, true),
        (&[], "OTEL_SERVICE_NAME", "unknown_service:ndotel", "default", None, true),
        (&[("OTEL_RESOURCE_ATTRIBUTES", "a=1,broken")], "OTEL_RESOURCE_ATTRIBUTES", "", "default", Some("OTEL_RESOURCE_ATTRIBUTES"), true),
        (&[("OTEL_RUST_TRACING_FILTER", "info,[[bad")], "OTEL_RUST_TRACING_FILTER", "info,otel::tracing=trace", "default", Some("OTEL_RUST_TRACING_FILTER"), true),
        (&[("OTEL_RUST_TRACING_FILTER", "warn,app=debug")], "OTEL_RUST_TRACING_FILTER", "warn,app=debug", "env", None, true),
        (&[("OTEL_RUST_TRACING_CONTEXT_ACTIVATION", "False")], "OTEL_RUST_TRACING_CONTEXT_ACTIVATION", "false", "env", None, true),
        (&[("OTEL_RUST_TRACING_CONTEXT_ACTIVATION", "no")], "OTEL_RUST_TRACING_CONTEXT_ACTIVATION", "true", "default", Some("expected true or false"), true),
    ];
    for (env, setting, value, source, warning, succeeds) in table {
        let (ok, rows, stderr) = config(tmp.path(), &plugins, env);
        let row = rows
            .iter()
            .find(|(n, _)| n == setting)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{env:?}: no {setting} row in {rows:?}"));
        let shown = row.split_whitespace().next().unwrap_or("");
        let shown = if row.starts_with(' ') { "" } else { shown };
        assert_eq!(shown, *value, "{env:?}: {setting} row {row:?}\n{stderr}");
        assert!(row.contains(source), "{env:?}: {setting} source in {row:?}");
        match warning {
            // An unknown name is an error for `ndotel config` (and a warning in a service, which runs without it).
            Some(w) => assert!(
                stderr.contains(if *succeeds {
                    "ndotel: warning:"
                } else {
                    "ndotel: error:"
                }) && stderr.contains(w),
                "{env:?}: {stderr}"
            ),
            None => assert!(!stderr.contains("warning:"), "{env:?}: unexpected {stderr}"),
        }
        assert_eq!(ok, *succeeds, "{env:?}: config exit status\n{stderr}");
    }
    // The ratio samplers' argument: invalid is a warning and 1.0.
    let mut cmd = ndotel(tmp.path());
    let (ok, stdout, stderr) = output(
        cmd.env("OTEL_RUST_DISTRO_PATH", &plugins)
            .env("OTEL_RUST_DISTRO", "otel_custom_distro")
            .env("OTEL_TRACES_SAMPLER", "traceidratio")
            .env("OTEL_TRACES_SAMPLER_ARG", "abc")
            .arg("config"),
    );
    assert!(
        ok && stdout.contains("TraceIdRatioBased(1.0)")
            && stderr.contains("OTEL_TRACES_SAMPLER_ARG=\"abc\""),
        "{stdout}{stderr}"
    );
}

#[test]
fn no_invalid_value_turns_telemetry_off() {
    let tmp = setup();
    let env = [
        ("OTEL_RUST_DISTRO", "otel_custom_distro"),
        ("OTEL_TRACES_EXPORTER", "file,zipkn"),
        ("OTEL_SDK_DISABLED", "maybe"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "abc"),
        ("OTEL_PROPAGATORS", "b3,tracecontext,tracecontext"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
        ("OTEL_RESOURCE_ATTRIBUTES", "=broken"),
    ];
    let (ok, stdout, stderr) = run(tmp.path(), &env);
    assert!(ok && stdout.contains("telemetry: on"), "{stdout}{stderr}");
    assert!(exported_spans(tmp.path()) > 0, "{stderr}");
    // One warning per value, and no contradictory fallback story.
    assert!(
        !stderr.contains("telemetry is OFF") && !stderr.contains("distro instead"),
        "{stderr}"
    );
    for var in [
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_EXPORTER",
        "OTEL_PROPAGATORS",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_RESOURCE_ATTRIBUTES",
    ] {
        assert!(
            stderr.contains(&format!("ndotel: warning: {var}")),
            "no warning for {var}:\n{stderr}"
        );
    }
    // Without a service name the resource says `unknown_service:<executable>`, as the semantic conventions say.
    let traces = std::fs::read_to_string(tmp.path().join("traces.jsonl")).unwrap();
    assert!(
        traces.contains("unknown_service:workload_dynamic"),
        "{traces}"
    );
}

/// `try_init_with` an explicit environment reaches the distro too: the reference distro expands
/// `${DEPLOYMENT_ENVIRONMENT:-development}` from the host's environment, not the process's.
#[test]
fn the_distro_reads_the_environment_the_host_was_given() {
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use otel_custom_distro as _;
    let tmp = setup();
    let out = tmp.path().join("traces.jsonl");
    assert!(std::env::var_os("DEPLOYMENT_ENVIRONMENT").is_none());
    let env = ndotel::Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO", "otel_custom_distro".to_string()),
            ("DEPLOYMENT_ENVIRONMENT", "from-the-host-env".to_string()),
            ("OTEL_TRACES_EXPORTER", "file".to_string()),
            ("OTEL_METRICS_EXPORTER", "none".to_string()),
            ("OTEL_EXPORTER_FILE_TRACES_PATH", out.display().to_string()),
        ],
        tmp.path(),
    );
    let plan = ndotel::Plan::new(&env).unwrap();
    let pipeline = ndotel::Pipeline::build(&plan, &env).unwrap();
    let tp = pipeline.tracer_provider.clone().unwrap();
    tp.tracer("test").in_span("GET /items", |_| {});
    tp.force_flush().unwrap();
    let traces = std::fs::read_to_string(&out).unwrap();
    assert!(traces.contains("from-the-host-env"), "{traces}");
}
