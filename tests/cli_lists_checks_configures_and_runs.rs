//! The `ndotel` command as users meet it.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{ndotel, output, plugin_dir, setup};
use serde_json::Value;
use std::path::Path;

fn list_json(cmd: &mut std::process::Command) -> Vec<Value> {
    let (ok, stdout, stderr) = output(cmd.args(["list", "--json", "--probe"]));
    assert!(ok, "{stderr}");
    serde_json::from_str::<Vec<Value>>(&stdout).unwrap()
}

#[test]
fn list_finds_a_plugin_dropped_into_a_directory() {
    let tmp = setup();
    let dir = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let rows = list_json(ndotel(tmp.path()).env("OTEL_RUST_DISTRO_PATH", &dir));
    let row = rows
        .iter()
        .find(|r| r["name"] == "otel_custom_distro")
        .expect("listed");
    assert_eq!(row["origin"], "plugin");
    assert_eq!(
        row["path"],
        dir.join("libotel_custom_distro.so").display().to_string()
    );
    assert_eq!(row["status"], "ok");
    assert_eq!(row["version"], "0.1.0");
    assert_eq!(row["components"]["samplers"][0], "otel_custom");
    assert!(row["error"].is_null());

    let (ok, table, _) = output(
        ndotel(tmp.path())
            .env("OTEL_RUST_DISTRO_PATH", &dir)
            .arg("list"),
    );
    assert!(
        ok && table.contains("otel_custom_distro") && table.contains("plugin"),
        "{table}"
    );
}

#[test]
fn list_in_the_repository_root_finds_the_plugin_through_distro_toml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    ndotel_tests::build_artifacts();
    let rows = list_json(&mut ndotel(root));
    let row = rows
        .iter()
        .find(|r| r["name"] == "otel_custom_distro")
        .expect("listed");
    assert_eq!(row["origin"], "plugin");
    assert!(
        row["path"]
            .as_str()
            .unwrap()
            .ends_with("libotel_custom_distro.so")
    );
}

#[test]
fn list_reports_broken_plugins_with_their_error() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "fixture_faulty", "not_a_plugin"],
    );
    let rows = list_json(
        ndotel(tmp.path())
            .env("OTEL_RUST_DISTRO_PATH", &dir)
            .env("OTEL_RUST_DISTRO_INIT_TIMEOUT", "300"),
    );
    let by_name = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap();
    assert_eq!(by_name("faulty_init_panic")["status"], "error");
    let hang = by_name("faulty_init_hang")["error"].as_str().unwrap();
    assert!(hang.contains("init did not return within 300ms"), "{hang}");
    assert!(
        by_name("faulty_init_panic")["error"]
            .as_str()
            .unwrap()
            .contains("init exploded")
    );
    let broken = rows
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("libnot_a_plugin.so"))
        })
        .unwrap();
    assert_eq!(broken["status"], "error");
    assert_eq!(by_name("otel_custom_distro")["status"], "ok");
}

#[test]
fn check_exits_zero_only_when_the_pipeline_works() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "fixture_faulty"],
    );
    let check = |distro: &str, exporter: &str| {
        output(
            ndotel(tmp.path())
                .env("OTEL_RUST_DISTRO_PATH", &dir)
                .env("OTEL_RUST_DISTRO", distro)
                .env("OTEL_TRACES_EXPORTER", exporter)
                .env("OTEL_METRICS_EXPORTER", "none")
                .arg("check"),
        )
    };
    let (ok, stdout, stderr) = check("otel_custom_distro", "file");
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("OtelCustomSampler") && stdout.ends_with("ok\n"),
        "{stdout}"
    );

    assert!(
        stdout.contains("probe span sent to: file → "),
        "check says where the probe span went: {stdout}"
    );
    // Nothing listening at the OTLP endpoint is told apart from a broken pipeline.
    let (ok, stdout, _) = output(
        ndotel(tmp.path())
            .env("OTEL_RUST_DISTRO_PATH", &dir)
            .env("OTEL_RUST_DISTRO", "otel_custom_distro")
            .env("OTEL_METRICS_EXPORTER", "none")
            .env("OTEL_TRACES_EXPORTER", "otlp")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
            .arg("check"),
    );
    assert!(
        !ok && stdout.contains(
            "no OTLP collector answered: otlp → http://127.0.0.1:9/v1/traces (OTLP/HTTP)"
        ),
        "{stdout}"
    );

    let (ok, stdout, _) = check("faulty_sampler_panic", "file");
    assert!(!ok && stdout.contains("sampler failures: 1"), "{stdout}");

    // A name nothing answers to: `check` fails and lists what is valid (`init()` would run without it).
    let (ok, stdout, _) = check("otel_custom_distro", "zipkn");
    assert!(
        !ok && stdout.contains("unknown name: OTEL_TRACES_EXPORTER lists \"zipkn\"")
            && stdout.contains("custom_jsonl"),
        "{stdout}"
    );
    // A name OpenTelemetry specifies but ndotel lacks: a warning, and the rest works.
    let (ok, stdout, stderr) = check("otel_custom_distro", "zipkin,file");
    assert!(
        ok && stderr.contains("ndotel: warning: OTEL_TRACES_EXPORTER lists \"zipkin\"")
            && stdout.contains("span exporters: file\n"),
        "{stdout}{stderr}"
    );

    // An unknown name lists what is available and why each plugin that could have held it did not load.
    let (ok, _, stderr) = check("nope", "file");
    assert!(
        !ok && stderr.contains("otel_custom_distro (plugin")
            && stderr.contains("plugins that did not load: ")
            && stderr.contains("libfixture_faulty.so"),
        "{stderr}"
    );
}

#[test]
fn config_shows_every_setting_with_its_source() {
    let tmp = setup();
    std::fs::write(
        tmp.path().join("distro.toml"),
        "[otel]\nservice_name = \"from-file\"\ntraces_exporter = \"file\"\n\n[distro.sdk]\nnote = 1\n\n\
         [distro.sdk.nested]\n  deep = [\"a\"]\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = output(
        ndotel(tmp.path())
            .env("OTEL_TRACES_EXPORTER", "console")
            .arg("config"),
    );
    assert!(ok, "{stderr}");
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing: {stdout}"))
            .to_string()
    };
    assert!(
        line("OTEL_SERVICE_NAME").contains("from-file")
            && line("OTEL_SERVICE_NAME").contains("file ")
    );
    assert!(
        line("OTEL_TRACES_EXPORTER").contains("console")
            && line("OTEL_TRACES_EXPORTER").contains("env OTEL_TRACES_EXPORTER")
    );
    assert!(
        line("OTEL_PROPAGATORS").contains("tracecontext,baggage")
            && line("OTEL_PROPAGATORS").contains("default")
    );
    // The distro's own table, each key with the line it is on.
    let file = tmp.path().join("distro.toml");
    assert!(
        line("[distro.sdk] note").contains(&format!("{}:6:1", file.display())),
        "{stdout}"
    );
    assert!(
        line("[distro.sdk] nested.deep").contains("[\"a\"]")
            && line("[distro.sdk] nested.deep").contains(&format!("{}:9:3", file.display())),
        "{stdout}"
    );
    // The console exporter is active, not `file`: its path is shown as unused.
    assert!(
        line("OTEL_EXPORTER_FILE_TRACES_PATH")
            .contains("(unused: OTEL_TRACES_EXPORTER has no `file`)"),
        "{stdout}"
    );
}

#[test]
fn run_passes_flags_in_both_spellings_as_the_environment() {
    let tmp = setup();
    let (ok, stdout, stderr) = output(ndotel(tmp.path()).args([
        "run",
        "--traces_exporter",
        "console",
        "--metrics-exporter",
        "none",
        "--service_name",
        "svc",
        "--distro",
        "sdk",
        "--",
        "sh",
        "-c",
        "echo $OTEL_TRACES_EXPORTER $OTEL_METRICS_EXPORTER $OTEL_SERVICE_NAME $OTEL_RUST_DISTRO",
    ]));
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "console none svc sdk");

    let (ok, _, stderr) = output(ndotel(tmp.path()).args(["run", "--", "/nonexistent/app"]));
    assert!(
        !ok && stderr.contains("cannot run /nonexistent/app"),
        "{stderr}"
    );
}

#[test]
fn run_checks_the_selection_before_it_hands_over() {
    let tmp = setup();
    let dir = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    // A typo in --distro: an error naming what is available, and the application never starts.
    let (ok, stdout, stderr) = output(ndotel(tmp.path()).args([
        "run",
        "--distro-path",
        dir.to_str().unwrap(),
        "--distro",
        "otel_custom_distr",
        "--",
        "echo",
        "started",
    ]));
    assert!(
        !ok && !stdout.contains("started")
            && stderr.contains("no distro named \"otel_custom_distr\"")
            && stderr.contains("otel_custom_distro (plugin"),
        "{stdout}{stderr}"
    );
    // An exporter name nothing answers to is caught the same way.
    let (ok, stdout, stderr) = output(ndotel(tmp.path()).args([
        "run",
        "--distro",
        "sdk",
        "--traces-exporter",
        "zipkn",
        "--",
        "echo",
        "started",
    ]));
    assert!(
        !ok && !stdout.contains("started") && stderr.contains("\"zipkn\""),
        "{stderr}"
    );
    // The application after `--` is what `run` needs; without it, a hint instead of clap's complaint — and an
    // option's value is never taken for the application.
    for args in [
        &["run", "echo", "hi"][..],
        &["run", "--distro", "sdk", "echo", "hi"],
        &[
            "run",
            "--distro=sdk",
            "--traces-exporter",
            "none",
            "echo",
            "hi",
        ],
    ] {
        let (ok, _, stderr) = output(ndotel(tmp.path()).args(args));
        assert!(
            !ok && stderr.contains(
                "ndotel: error: put the application after `--`: ndotel run [OPTIONS] -- echo hi\n"
            ),
            "{args:?}: {stderr}"
        );
    }
    // No application at all: clap's own message, never a suggestion to run the distro's name.
    let (ok, _, stderr) = output(ndotel(tmp.path()).args(["run", "--distro", "sdk"]));
    assert!(
        !ok && !stderr.contains("-- sdk") && stderr.contains("<APP>"),
        "{stderr}"
    );
    // A misspelt name gets the nearest valid one, and the flag that set it is named.
    let (ok, _, stderr) = output(ndotel(tmp.path()).args([
        "run",
        "--distro-path",
        dir.to_str().unwrap(),
        "--distro",
        "otel_custon_distro",
        "--",
        "echo",
    ]));
    assert!(
        !ok && stderr.contains("(selected by flag --distro); did you mean \"otel_custom_distro\"?"),
        "{stderr}"
    );
    let (ok, _, stderr) = output(ndotel(tmp.path()).args([
        "run",
        "--distro",
        "sdk",
        "--traces-exporter",
        "consle",
        "--",
        "echo",
    ]));
    assert!(
        !ok && stderr.contains("(flag --traces-exporter)")
            && stderr.contains("did you mean \"console\"?")
            && !stderr.contains("left out"),
        "a fatal error is not worded as a warning: {stderr}"
    );
}

#[test]
fn check_and_config_take_the_selection_as_flags_and_config_speaks_json() {
    let tmp = setup();
    let dir = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let (ok, stdout, stderr) = output(ndotel(tmp.path()).args([
        "config",
        "--json",
        "--distro-path",
        dir.to_str().unwrap(),
        "--distro",
        "otel_custom_distro",
    ]));
    assert!(ok, "{stderr}");
    let config: Value = serde_json::from_str(&stdout).unwrap();
    let row = |name: &str| {
        config["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {config}"))
    };
    assert_eq!(row("OTEL_RUST_DISTRO")["value"], "otel_custom_distro");
    // Set by a flag, and said so (the flag reaches the library as the variable).
    assert_eq!(row("OTEL_RUST_DISTRO")["source"], "flag --distro");
    // The distro's own settings as read: none written in this directory, so its code defaults apply.
    assert!(
        row("[distro.otel_custom_distro]")["source"]
            .as_str()
            .unwrap()
            .contains("every setting of otel_custom_distro is its code default"),
        "{config}"
    );
    assert!(
        row("distro origin")["value"]
            .as_str()
            .unwrap()
            .starts_with("plugin ")
    );
    assert!(
        config["sampler_description"]
            .as_str()
            .unwrap()
            .contains("OtelCustomSampler")
    );
    let (ok, stdout, stderr) = output(
        ndotel(tmp.path())
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "none")
            .args([
                "check",
                "--distro-path",
                dir.to_str().unwrap(),
                "--distro",
                "otel_custom_distro",
            ]),
    );
    assert!(
        ok && stdout.contains("distro: otel_custom_distro"),
        "{stdout}{stderr}"
    );
}

#[test]
fn several_distros_and_no_selection_is_said_out_loud() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "marker_plugin"],
    );
    let (ok, stdout, stderr) = output(
        ndotel(tmp.path())
            .env("OTEL_RUST_DISTRO_PATH", &dir)
            .arg("config"),
    );
    assert!(
        ok && stdout.contains("several distros and none selected")
            && stderr.contains("none is selected: running the built-in `sdk` distro"),
        "{stdout}{stderr}"
    );
}

#[test]
fn version_names_the_opentelemetry_and_api_versions_however_asked() {
    let tmp = setup();
    let (ok, stdout, _) = output(ndotel(tmp.path()).arg("--version"));
    assert!(
        ok && stdout.contains("opentelemetry 0.33")
            && stdout.contains(&format!("ndotel-api {}", ndotel::API_VERSION)),
        "{stdout}"
    );
    let (_, short, _) = output(ndotel(tmp.path()).arg("-V"));
    assert_eq!(short, stdout);
    // clap's errors carry the same prefix as ndotel's own.
    let (ok, _, stderr) = output(ndotel(tmp.path()).arg("bogus"));
    assert!(!ok && stderr.starts_with("ndotel: error:"), "{stderr}");
}

#[test]
fn fail_fast_concerns_the_selected_distro_only() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "not_a_plugin"],
    );
    let check = |fail_fast: &str| {
        output(
            ndotel(tmp.path())
                .env("OTEL_RUST_DISTRO_PATH", &dir)
                .env("OTEL_RUST_DISTRO", "otel_custom_distro")
                .env("OTEL_RUST_DISTRO_FAIL_FAST", fail_fast)
                .env("OTEL_TRACES_EXPORTER", "none")
                .env("OTEL_METRICS_EXPORTER", "none")
                .arg("check"),
        )
    };
    // A broken file beside the selected plugin is reported and skipped, fail-fast or not: anyone who can write
    // the directory could otherwise stop the service.
    for fail_fast in ["false", "true"] {
        let (ok, stdout, stderr) = check(fail_fast);
        assert!(ok, "{fail_fast}: {stdout}{stderr}");
        assert!(
            stderr.contains("ndotel: warning: skipped plugin")
                && stderr.contains("libnot_a_plugin.so"),
            "{stdout}{stderr}"
        );
    }
    let run = |distro: &str| {
        output(
            ndotel_tests::workload("workload_dynamic", tmp.path())
                .env("OTEL_RUST_DISTRO_PATH", &dir)
                .env("OTEL_RUST_DISTRO", distro)
                .env("OTEL_RUST_DISTRO_FAIL_FAST", "true")
                .env("OTEL_TRACES_EXPORTER", "none"),
        )
    };
    let (ok, stdout, stderr) = run("otel_custom_distro");
    assert!(ok && stdout.contains("telemetry: on"), "{stdout}{stderr}");
    // The selected distro unusable: the application's `ndotel::init()` stops start-up.
    std::fs::set_permissions(
        dir.join("libotel_custom_distro.so"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let (ok, _, stderr) = run("otel_custom_distro");
    assert!(
        !ok && stderr.contains("OTEL_RUST_DISTRO_FAIL_FAST is set") && stderr.contains("writable"),
        "{stderr}"
    );
}

#[test]
fn check_and_config_read_an_opentelemetry_configuration_file() {
    let tmp = setup();
    std::fs::write(
        tmp.path().join("bad.yaml"),
        "file_format: \"1.1\"\ntracer_provider:\n  procesors: []\n",
    )
    .unwrap();
    let (ok, _, stderr) = output(ndotel(tmp.path()).args(["check", "--config-file", "bad.yaml"]));
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("bad.yaml:3:3: tracer_provider.procesors: unknown property `procesors`; did you mean \"processors\"?"),
        "{stderr}"
    );
    std::fs::write(
        tmp.path().join("otel.yaml"),
        "file_format: \"1.1\"\ntracer_provider:\n  processors:\n    - batch:\n        exporter:\n          console:\n  sampler:\n    always_off:\nlogger_provider:\n  processors:\n    - batch:\n        exporter:\n          otlp_http:\n            headers_list: \"authorization=${TOKEN}\"\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = output(
        ndotel(tmp.path())
            .env("TOKEN", "Bearer cli-s3cret")
            .env("OTEL_TRACES_SAMPLER", "always_on")
            .args(["config", "--config-file", "otel.yaml", "--json"]),
    );
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("cli-s3cret") && !stderr.contains("cli-s3cret"));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let row = |name: &str| {
        json["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} row: {json}"))
            .clone()
    };
    assert_eq!(row("OTEL_TRACES_SAMPLER")["value"], "always_off");
    assert!(
        row("OTEL_TRACES_SAMPLER")["source"]
            .as_str()
            .unwrap()
            .ends_with("otel.yaml:8 tracer_provider.sampler.always_off"),
        "{json}"
    );
    assert_eq!(
        row("OTEL_EXPORTER_OTLP_LOGS_HEADERS")["value"],
        "authorization=***"
    );
    assert_eq!(
        row("OTEL_CONFIG_FILE")["source"]
            .as_str()
            .unwrap()
            .split(' ')
            .take(2)
            .collect::<Vec<_>>(),
        ["flag", "--config-file"]
    );
    assert!(
        stderr.contains("OTEL_TRACES_SAMPLER is set but has no effect"),
        "{stderr}"
    );
}
