//! The example service under the reference distro `.so`, configured only by the repository's `otel.yaml` (the
//! OpenTelemetry configuration file): what the README shows.
#![allow(clippy::unwrap_used)] // a test fails loudly

use app::otlp_json;
use app::{client, harness};
use ndotel_tests::{app_under_ndotel, plugin_dir, setup};
use std::path::Path;

#[test]
fn the_repositorys_otel_yaml_drives_the_example_service_under_the_reference_distro() {
    let tmp = setup();
    let dir = tmp.path();
    let plugins = plugin_dir(dir, "plugins", &["otel_custom_distro"]);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../otel.yaml"),
        dir.join("otel.yaml"),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.join("stderr.txt")).unwrap();
    let mut cmd = app_under_ndotel(dir, &["--config-file", "otel.yaml"]);
    cmd.env("OTEL_RUST_DISTRO_PATH", &plugins)
        .env("SERVICE_NAME", "configured-by-yaml")
        .env("APP_TIER", "edge")
        .env("METRIC_INTERVAL", "300")
        // Not referenced by the file: no effect.
        .env("OTEL_TRACES_EXPORTER", "console")
        .env("OTEL_SERVICE_NAME", "from-the-environment")
        .stderr(stderr);
    let app = harness::start(cmd).unwrap();
    let get = |path: &str| client::request(&app.addr, "GET", path, &[], None).unwrap();
    assert_eq!(get("/health").status, 200);
    assert_eq!(get("/items?user=bob&password=yaml-hunter2").status, 200);
    assert!(
        app.terminate().unwrap(),
        "the service exits cleanly on SIGTERM"
    );

    let spans = otlp_json::spans(&dir.join("traces.jsonl")).unwrap();
    let server = spans
        .iter()
        .find(|s| s.attr("http.route") == Some("/items"))
        .unwrap_or_else(|| panic!("no /items span in {spans:?}"));
    // The resource and the distro's settings come from the file (and the variables it references).
    assert_eq!(server.service, "configured-by-yaml");
    assert_eq!(server.attr("app.tier"), Some("edge"), "{server:?}");
    // The reference distro ran: /health dropped, the password redacted.
    assert!(!spans.iter().any(|s| s.attr("url.path") == Some("/health")));
    let all = std::fs::read_to_string(dir.join("traces.jsonl")).unwrap();
    assert!(!all.contains("yaml-hunter2"), "a secret was exported");
    assert!(all.contains("[REDACTED]"));
    // Metrics went where the file says too.
    assert!(
        !otlp_json::last_metrics(&dir.join("metrics.jsonl"))
            .unwrap()
            .is_empty()
    );
    let stderr = std::fs::read_to_string(dir.join("stderr.txt")).unwrap();
    assert!(
        stderr.contains("OTEL_SERVICE_NAME, OTEL_TRACES_EXPORTER are set but have no effect"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("\"traceId\""),
        "spans went to the console: {stderr}"
    );
}
