//! When the selected distro cannot be used, telemetry is off (nothing it would have redacted is exported) unless the
//! operator opts into the plain SDK; a processor that fails drops the span; a sampler or processor that hangs is
//! bypassed by the watchdog while everything else goes on; start-up calls that hang have a deadline; numeric
//! settings never panic; the file exporter leaves only whole lines; the exporter worker never refuses a good call.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{output, plugin_dir, read_jsonl, setup, workload, workload_faults};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The secret the workload puts in an attribute; the reference distro redacts it.
const SECRET: &str = "s3cr3t-t0ken";

/// The workload with plugins from a fresh directory holding `libs`, distro `distro`, the `file` span exporter.
fn workload_with(dir: &Path, libs: &[&str], distro: &str) -> Command {
    let plugins = plugin_dir(dir, "plugins", libs);
    let mut cmd = workload("workload_dynamic", dir);
    cmd.env("OTEL_RUST_DISTRO_PATH", &plugins)
        .env("OTEL_RUST_DISTRO", distro)
        .env("OTEL_TRACES_EXPORTER", "file")
        .env("OTEL_METRICS_EXPORTER", "none");
    cmd
}

fn file_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Span names in an OTLP JSON lines file.
fn span_names(path: &Path) -> Vec<String> {
    read_jsonl(path)
        .iter()
        .flat_map(|r| r["resourceSpans"].as_array().unwrap().clone())
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap().clone())
        .flat_map(|ss| ss["spans"].as_array().unwrap().clone())
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn assert_off_and_nothing_exported(dir: &Path, ok: bool, stdout: &str, stderr: &str) {
    assert!(ok, "the service keeps running: {stderr}");
    assert!(stdout.contains("telemetry: off"), "{stdout}\n{stderr}");
    assert!(stderr.contains("telemetry is OFF"), "{stderr}");
    assert!(
        stderr.contains("OTEL_RUST_DISTRO_FALLBACK=sdk"),
        "says how to opt in: {stderr}"
    );
    let traces = file_text(&dir.join("traces.jsonl"));
    assert!(traces.is_empty(), "nothing may be exported: {traces}");
    assert!(!stderr.contains(SECRET), "{stderr}");
}

#[test]
fn a_distro_whose_init_fails_means_telemetry_off_unless_the_sdk_fallback_is_chosen() {
    let tmp = setup();
    let (ok, stdout, stderr) = output(&mut workload_with(
        tmp.path(),
        &["fixture_faulty"],
        "faulty_init_error",
    ));
    assert!(
        stderr.contains("config.invalid"),
        "the reason is given: {stderr}"
    );
    assert_off_and_nothing_exported(tmp.path(), ok, &stdout, &stderr);

    // The explicit opt-in: the plain SDK, with a warning that nothing is redacted.
    let tmp = setup();
    let (ok, stdout, stderr) = output(
        workload_with(tmp.path(), &["fixture_faulty"], "faulty_init_error")
            .env("OTEL_RUST_DISTRO_FALLBACK", "sdk"),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("distro: sdk"), "{stdout}");
    assert!(stderr.contains("NOT redacted"), "{stderr}");
    assert!(span_names(&tmp.path().join("traces.jsonl")).len() >= 9);
}

#[test]
fn a_refused_plugin_means_telemetry_off_and_no_secret_exported() {
    let tmp = setup();
    let mut cmd = workload_with(tmp.path(), &["otel_custom_distro"], "otel_custom_distro");
    let file = tmp.path().join("plugins/libotel_custom_distro.so");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let (ok, stdout, stderr) = output(&mut cmd);
    assert!(stderr.contains("writable by group or others"), "{stderr}");
    assert_off_and_nothing_exported(tmp.path(), ok, &stdout, &stderr);
}

#[test]
fn two_distros_with_one_name_mean_telemetry_off() {
    let tmp = setup();
    let a = plugin_dir(tmp.path(), "a", &["otel_custom_distro"]);
    let b = plugin_dir(tmp.path(), "b", &["otel_custom_distro"]);
    let mut cmd = workload("workload_dynamic", tmp.path());
    cmd.env(
        "OTEL_RUST_DISTRO_PATH",
        format!("{}:{}", a.display(), b.display()),
    )
    .env("OTEL_RUST_DISTRO", "otel_custom_distro")
    .env("OTEL_TRACES_EXPORTER", "file")
    .env("OTEL_METRICS_EXPORTER", "none");
    let (ok, stdout, stderr) = output(&mut cmd);
    assert!(stderr.contains("registered more than once"), "{stderr}");
    assert_off_and_nothing_exported(tmp.path(), ok, &stdout, &stderr);
}

#[test]
fn a_panicking_processor_drops_the_span_and_its_message_is_withheld() {
    let tmp = setup();
    let (ok, stdout, stderr) = output(&mut workload_with(
        tmp.path(),
        &["fixture_faulty"],
        "faulty_processor_panic",
    ));
    assert!(ok, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("ndotel: span processor of distro faulty_processor_panic failed"))
        .unwrap_or_else(|| panic!("no failure line: {stderr}"));
    assert!(
        line.contains("panicked (at "),
        "the location is given: {line}"
    );
    assert!(
        !stderr.contains("processor exploded"),
        "a panic message may quote span data: it is never printed: {stderr}"
    );
    assert!(line.contains("dropping the span"), "{line}");
    assert!(
        span_names(&tmp.path().join("traces.jsonl")).is_empty(),
        "every span the processor failed on is dropped"
    );
    let faults = workload_faults(&stdout);
    assert!(faults >= 9, "each failure is counted: {stdout}");

    // Pass-through is an explicit choice.
    let tmp = setup();
    let (ok, _, stderr) = output(
        workload_with(tmp.path(), &["fixture_faulty"], "faulty_processor_panic")
            .env("OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR", "pass"),
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("passing spans through unchanged"),
        "{stderr}"
    );
    assert!(span_names(&tmp.path().join("traces.jsonl")).len() >= 9);
}

/// Runs the workload with a span that makes `distro` hang on another thread; returns the exported span names.
fn run_with_a_hang(distro: &str, component: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let tmp = setup();
    let mut cmd = workload_with(tmp.path(), &["fixture_faulty"], distro);
    cmd.env("WORKLOAD_HANG", "1")
        .env("OTEL_RUST_DISTRO_CALL_TIMEOUT", "200");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let (ok, stdout, stderr) = output(&mut cmd);
    assert!(ok, "{distro}: {stderr}");
    assert!(
        stdout.contains("hung components: 1"),
        "{distro}: {stdout}\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("{component} of distro {distro} is stuck")))
        .unwrap_or_else(|| panic!("{distro}: the stuck component is not named: {stderr}"));
    assert!(line.contains("on thread"), "the thread is named: {line}");
    assert!(
        line.contains("for a span of trace "),
        "the trace that triggered it is named: {line}"
    );
    if component == "sampler" {
        assert!(
            !stdout.contains("the hanging span returned"),
            "the hanging call never returned, and the exit did not wait for it: {stdout}"
        );
    } else {
        // The processor runs on the batch thread's worker: ending the span never waits for it.
        assert!(
            stdout.contains("the hanging span returned"),
            "ending a span waited for the processor: {stdout}"
        );
    }
    span_names(&tmp.path().join("traces.jsonl"))
}

#[test]
fn a_hanging_sampler_is_bypassed_and_the_rest_goes_on() {
    // Bypassed, the sampler's fallback is the parent-based always-on decision: every later span is exported.
    let names = run_with_a_hang("faulty_sampler_hang", "sampler", &[]);
    for expected in ["GET /items", "SELECT items", "direct api span"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} is missing: {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n == "GET /hang"), "{names:?}");
}

#[test]
fn a_hanging_processor_is_bypassed_and_fails_closed() {
    // Bypassed, the processor's fallback drops what it would have processed ...
    let names = run_with_a_hang("faulty_processor_hang", "span processor", &[]);
    assert!(names.is_empty(), "{names:?}");
    // ... or passes it through, when the operator chose that.
    let names = run_with_a_hang(
        "faulty_processor_hang",
        "span processor",
        &[("OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR", "pass")],
    );
    for expected in ["GET /items", "SELECT items", "direct api span"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} is missing: {names:?}"
        );
    }
}

#[test]
fn a_distro_whose_resource_hangs_starts_with_telemetry_off_within_the_deadline() {
    let tmp = setup();
    let (ok, stdout, stderr) = output(
        workload_with(tmp.path(), &["fixture_faulty"], "faulty_resource_hang")
            .env("OTEL_RUST_DISTRO_INIT_TIMEOUT", "300"),
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("resource() did not return within 300ms"),
        "{stderr}"
    );
    assert!(stdout.contains("telemetry: off"), "{stdout}");
}

#[test]
fn absurd_numeric_settings_warn_and_never_panic() {
    for (var, value) in [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "18446744073709551615"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "4000000000"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "99999999999999999999"),
        ("OTEL_BSP_SCHEDULE_DELAY", "18446744073709551615"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-5"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "18446744073709551615"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "abc"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "-1"),
    ] {
        let tmp = setup();
        let (ok, stdout, stderr) = output(
            workload("workload_dynamic", tmp.path())
                .env("OTEL_TRACES_EXPORTER", "file")
                .env("OTEL_METRICS_EXPORTER", "none")
                .env("OTEL_LOGS_EXPORTER", "console")
                .env(var, value),
        );
        assert!(ok, "{var}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("warning: {var}=")),
            "{var}={value}: a warning names the variable: {stderr}"
        );
        assert!(stdout.contains("telemetry: on"), "{var}={value}: {stdout}");
        assert!(
            span_names(&tmp.path().join("traces.jsonl")).len() >= 9,
            "{var}={value}: spans still flow"
        );
    }
}

#[test]
fn a_distro_exporter_on_the_worker_loses_no_span_under_many_small_batches() {
    let tmp = setup();
    let (threads, spans) = (8usize, 250usize);
    let (ok, stdout, stderr) = output(
        workload_with(tmp.path(), &["otel_custom_distro"], "otel_custom_distro")
            .env("OTEL_TRACES_EXPORTER", "custom_jsonl")
            .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
            .env("OTEL_BSP_SCHEDULE_DELAY", "1")
            .env("OTEL_BSP_MAX_QUEUE_SIZE", "65536")
            .env("WORKLOAD_THREADS", threads.to_string())
            .env("WORKLOAD_SPANS", spans.to_string()),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("faults: 0"), "{stdout}\n{stderr}");
    let stress = file_text(&tmp.path().join("spans.jsonl"))
        .lines()
        .filter(|l| l.contains("\"stress\""))
        .count();
    assert_eq!(
        stress,
        threads * spans,
        "every span is accounted for: {stderr}"
    );
}

#[test]
fn a_full_disk_leaves_only_whole_lines_and_names_the_file() {
    // RLIMIT_FSIZE makes writes past 20 KiB fail part-way, as a full disk does, without needing a mount.
    let tmp = setup();
    let mut cmd = workload("workload_dynamic", tmp.path());
    cmd.env("OTEL_TRACES_EXPORTER", "file")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "7")
        .env("OTEL_BSP_SCHEDULE_DELAY", "1")
        .env("WORKLOAD_THREADS", "2")
        .env("WORKLOAD_SPANS", "200");
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 20_000,
                rlim_max: 20_000,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let (ok, _, stderr) = output(&mut cmd);
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(tmp.path().join("traces.jsonl")).unwrap();
    assert!(!text.is_empty(), "some records fit");
    assert!(text.len() <= 20_000);
    assert!(text.ends_with('\n'), "the last line is whole");
    // Every line parses (read_jsonl panics on a torn one).
    assert!(!read_jsonl(&tmp.path().join("traces.jsonl")).is_empty());
    assert!(
        stderr.contains("traces.jsonl") && stderr.contains("partial record was removed"),
        "the failed write names the file: {stderr}"
    );
}

/// With a configuration file, its `distribution.ndotel` decides the failure path too: its `fallback: off` beats
/// the environment's `sdk`, and its `fallback: sdk` falls back to the `sdk` distro although the file names another.
#[test]
fn the_configuration_file_decides_what_a_failing_distro_falls_back_to() {
    let file = |fallback: &str| {
        format!(
            "file_format: \"1.1\"\ntracer_provider:\n  processors: [{{batch: {{exporter: {{otlp_file/development: \
             {{output_stream: file://traces.jsonl}}}}}}}}]\ndistribution:\n  ndotel:\n    distro: faulty_init_error\n    \
             fallback: \"{fallback}\"\n"
        )
    };
    let tmp = setup();
    std::fs::write(tmp.path().join("otel.yaml"), file("off")).unwrap();
    let (ok, stdout, stderr) = output(
        workload_with(tmp.path(), &["fixture_faulty"], "faulty_init_error")
            .env("OTEL_CONFIG_FILE", "otel.yaml")
            .env("OTEL_RUST_DISTRO_FALLBACK", "sdk"),
    );
    assert_off_and_nothing_exported(tmp.path(), ok, &stdout, &stderr);

    let tmp = setup();
    std::fs::write(tmp.path().join("otel.yaml"), file("sdk")).unwrap();
    let (ok, stdout, stderr) = output(
        workload_with(tmp.path(), &["fixture_faulty"], "faulty_init_error")
            .env("OTEL_CONFIG_FILE", "otel.yaml"),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("distro: sdk"), "{stdout}\n{stderr}");
    assert!(
        span_names(&tmp.path().join("traces.jsonl")).len() >= 9,
        "{stderr}"
    );
}
