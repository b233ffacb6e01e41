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
    assert_eq!(lacking.len(), 5, "{:?}", reg.warnings());
    for (line, capability) in lacking.iter().zip([
        "processor_shutdown",
        "metadata_section",
        "host_env",
        "log_processor",
        "setting_error_path",
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

/// ndotel-api 1.0.0 as released (`git show c37cde7:plugins/api/src/<file>`): the frozen copy may not change, or the
/// tests that build against it would prove compatibility with something that was never released.
const RELEASED_1_0: &[(&str, &str)] = &[
    (
        "ffi.rs",
        "efb8ca7281bcdb101058cca49adda489a350be5a36aa3f815834a6c10fc434d9",
    ),
    (
        "guard.rs",
        "ff9d1dc27a1a76940b277ea461ddecefcc7ddb9f8b7c7a14e069127b8f444382",
    ),
    (
        "lib.rs",
        "d5bf7d1157bc1f11151a93b1415eb393b8d16a2cfbb9cc02bb3ecabffb69a611",
    ),
    (
        "testing.rs",
        "60f5863f6a313e0d187e57fa0f071f49e75571d09eade83af05ff0c6a6744e82",
    ),
    (
        "types.rs",
        "6f1e289142d6fce08599ff91c2e5326a15157c1a6d3648e5039fba9cdb481f16",
    ),
    (
        "view.rs",
        "69246442732dcb153565d90906c51a400fb7f0642ce67fa2dcb8bcd1b531ead3",
    ),
];

#[test]
fn the_frozen_api_1_0_is_byte_for_byte_the_release() {
    use sha2::Digest as _;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/api-1.0/src");
    let mut files: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        RELEASED_1_0
            .iter()
            .map(|(f, _)| f.to_string())
            .collect::<Vec<_>>()
    );
    for (file, sha) in RELEASED_1_0 {
        let bytes = std::fs::read(src.join(file)).unwrap();
        let got: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            &got, sha,
            "tests/fixtures/api-1.0/src/{file} is not the 1.0.0 release"
        );
    }
}

#[test]
fn the_source_of_a_1_0_distro_compiles_against_this_api() {
    // The 1.0 plugin's own source, built against this checkout's ndotel-api: a change that breaks a 1.0 author's
    // code (an enum made non-exhaustive, a method removed or changed) fails here; loading the plugin built against
    // 1.0 proves the binary side (above).
    let tmp = setup();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/api-1.0-plugin");
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/api");
    let dir = tmp.path().join("now");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::copy(fixture.join("src/lib.rs"), dir.join("src/lib.rs")).unwrap();
    std::fs::copy(fixture.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"frozen_api_plugin_now\"\nversion = \"1.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [lib]\nname = \"frozen_api_plugin_now\"\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nndotel-api = {{ path = {} }}\n\n[workspace]\n",
            toml_string(&api.canonicalize().unwrap())
        ),
    )
    .unwrap();
    let so = ndotel_tests::build_external(&dir, "frozen_api_plugin_now");
    assert!(so.is_file(), "{}", so.display());
}

/// `path` as a TOML string.
fn toml_string(path: &Path) -> String {
    format!("{:?}", path.to_str().unwrap())
}
