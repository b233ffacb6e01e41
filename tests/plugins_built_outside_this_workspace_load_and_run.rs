//! Plugins built the way outside authors build them — their own workspace, Cargo.lock and profile — against the
//! frozen ndotel-api 1.0.0, and with `panic = "abort"`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

use ndotel::{Env, LoadError, Registry};
use ndotel_tests::{
    external_plugin, install_plugin, output, plugin_dir, setup, workload, workload_faults,
};
use std::path::Path;

fn discover(dir: &Path) -> Registry {
    let env = Env::from_pairs([("OTEL_RUST_DISTRO_PATH", dir.to_str().unwrap())], dir);
    Registry::discover(&env, None)
}

#[test]
fn a_plugin_built_against_api_1_0_loads_and_runs_every_component() {
    let tmp = setup();
    let plugins = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    install_plugin(
        &external_plugin("api-1.0-plugin", "frozen_api_plugin"),
        &plugins,
        "frozen_api_plugin",
    );
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    std::fs::write(
        tmp.path().join("distro.toml"),
        "[distro.frozen_1_0]\nout = \"out\"\n",
    )
    .unwrap();

    let mut reg = discover(&plugins);
    // Built before metadata sections: named only once loaded, which happens when nothing else holds the name.
    assert!(!reg.distros().iter().any(|d| d.name == "frozen_1_0"));
    assert_eq!(reg.legacy_plugins().len(), 1);
    reg.load_legacy();
    let d = reg
        .distros()
        .iter()
        .find(|d| d.name == "frozen_1_0")
        .unwrap_or_else(|| panic!("not loaded: {:?}", reg.failures()));
    assert_eq!(d.api_version, "1.0.0");
    // The host's API is newer: each capability 1.0 lacks is named once, for the 1.0 plugin only.
    assert_ne!(ndotel::API_VERSION, "1.0.0");
    let lacking: Vec<&String> = reg
        .warnings()
        .iter()
        .filter(|w| w.contains("predates"))
        .collect();
    assert_eq!(lacking.len(), 4, "{:?}", reg.warnings());
    for (line, capability) in lacking.iter().zip([
        "processor_shutdown",
        "metadata_section",
        "host_env",
        "log_processor",
    ]) {
        assert!(
            line.contains("libfrozen_api_plugin.so")
                && line.contains("ndotel-api 1.0.0")
                && line.contains(capability),
            "{line}"
        );
    }

    let (ok, stdout, stderr) = output(
        workload("workload_dynamic", tmp.path())
            .env("OTEL_RUST_DISTRO_PATH", &plugins)
            .env("OTEL_RUST_DISTRO", "frozen_1_0")
            .env("OTEL_TRACES_EXPORTER", "frozen_spans")
            .env("OTEL_METRICS_EXPORTER", "frozen_metrics")
            .env("OTEL_METRIC_EXPORT_INTERVAL", "100000")
            .env("WORKLOAD_SECRETS", "1"),
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("distro: frozen_1_0"), "{stdout}");
    assert_eq!(
        stderr.matches("predates `processor_shutdown`").count(),
        1,
        "{stderr}"
    );
    assert_eq!(workload_faults(&stdout), 0, "{stderr}");

    let spans = std::fs::read_to_string(tmp.path().join("out/spans.jsonl")).unwrap();
    let lines: Vec<&str> = spans.lines().collect();
    // The sampler ran: the health check and its child are dropped, the rest kept.
    assert!(
        !spans.contains("name=GET /health") && !spans.contains("name=SELECT 1"),
        "{spans}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("name=GET /items"))
            .count(),
        3,
        "{spans}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("name=SELECT items"))
            .count(),
        3,
        "{spans}"
    );
    // The processor ran on every span (start attributes and end edits), and the resource reached the exporter.
    for line in &lines {
        assert!(
            line.contains("frozen.started=true") && line.contains("frozen.processed="),
            "{line}"
        );
        assert!(line.contains("frozen.api=1.0.0"), "{line}");
    }
    // Its edits of the span, an event and the status message were applied before export.
    let login = lines
        .iter()
        .find(|l| l.starts_with("name=POST /login"))
        .expect(&spans);
    assert!(login.contains("user.secret=[REDACTED]"), "{login}");
    assert!(login.contains("session.secret=[REDACTED]"), "{login}");
    assert!(login.contains("status=[REDACTED]"), "{login}");
    // This processor edits only keys containing "secret": the exception message stays as recorded.
    assert!(
        login.contains("exception.message=login failed: password=hunter2"),
        "{login}"
    );
    assert_eq!(spans.matches("hunter2").count(), 1, "{spans}");
    // The metric exporter ran at shutdown.
    let metrics = std::fs::read_to_string(tmp.path().join("out/metrics.txt")).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("metrics export: ") && !l.contains(" 0 bytes")),
        "{metrics}"
    );
}

#[test]
fn a_plugin_built_with_panic_abort_is_refused_with_the_fix() {
    let tmp = setup();
    let plugins = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    install_plugin(
        &external_plugin("panic-abort-plugin", "panic_abort_plugin"),
        &plugins,
        "panic_abort_plugin",
    );
    let reg = discover(&plugins);
    assert!(reg.distros().iter().any(|d| d.name == "otel_custom_distro"));
    assert!(!reg.distros().iter().any(|d| d.name == "panic_abort"));
    let err = reg
        .failures()
        .iter()
        .find(|f| f.path().ends_with("libpanic_abort_plugin.so"))
        .unwrap_or_else(|| panic!("not refused: {:?}", reg.failures()));
    assert!(matches!(err, LoadError::PanicAbort { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        !text.contains('\n') && text.contains("panic = \"unwind\"") && text.contains("Cargo.toml"),
        "{text}"
    );
}

/// A plugin stripped for shipping (`strip`, or `strip = true` in its release profile) keeps what the host reads:
/// the metadata section, found without loading, and the root module, loaded and run.
#[test]
fn a_stripped_plugin_is_found_without_loading_and_runs() {
    let tmp = setup();
    let dir = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let so = dir.join("libotel_custom_distro.so");
    let before = std::fs::metadata(&so).unwrap().len();
    match std::process::Command::new("strip").arg(&so).status() {
        Ok(s) if s.success() => {}
        _ => {
            eprintln!("\n*** SKIPPED: `strip` (binutils) is not installed ***\n");
            return;
        }
    }
    assert!(std::fs::metadata(&so).unwrap().len() < before);
    let reg = discover(&dir);
    let d = reg
        .distros()
        .iter()
        .find(|d| d.name == "otel_custom_distro")
        .unwrap_or_else(|| panic!("not found: {:?}", reg.failures()));
    assert!(!d.is_loaded(), "found from its metadata section");
    let (ok, stdout, stderr) = output(
        workload("workload_dynamic", tmp.path())
            .env("OTEL_RUST_DISTRO_PATH", &dir)
            .env("OTEL_RUST_DISTRO", "otel_custom_distro")
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "none"),
    );
    assert!(
        ok && stdout.contains("telemetry: on") && workload_faults(&stdout) == 0,
        "{stdout}{stderr}"
    );
}
