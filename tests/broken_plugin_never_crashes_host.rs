//! Every kind of bad plugin gets a clear error naming the file, the host keeps going, and the good plugin beside
//! the bad ones still loads. Run-time panics inside a distro's components fall back and are counted.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel::{Env, LoadError, Registry};
use ndotel_tests::{output, plugin_dir, read_jsonl, setup, so, workload, workload_faults};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Discovers plugins in `dir` only (no distro.toml), as the host would with `OTEL_RUST_DISTRO_PATH=dir`.
fn discover(dir: &Path) -> Registry {
    let env = Env::from_pairs([("OTEL_RUST_DISTRO_PATH", dir.to_str().unwrap())], dir);
    Registry::discover(&env, None)
}

fn failure<'a>(reg: &'a Registry, file: &str) -> &'a LoadError {
    reg.failures()
        .iter()
        .find(|f| f.path().file_name().unwrap() == file)
        .unwrap_or_else(|| panic!("no failure for {file}: {:?}", reg.failures()))
}

/// Runs the workload with distro `distro` of the faulty plugin (in a fresh plugin directory under `dir`), the given
/// span exporters and extra variables; returns (success, stdout, stderr).
fn run_faulty(
    dir: &Path,
    distro: &str,
    exporters: &str,
    extra: &[(&str, &str)],
) -> (bool, String, String) {
    let plugins = plugin_dir(dir, "plugins", &["fixture_faulty"]);
    let mut cmd = workload("workload_dynamic", dir);
    cmd.env("OTEL_RUST_DISTRO_PATH", &plugins)
        .env("OTEL_RUST_DISTRO", distro)
        .env("OTEL_TRACES_EXPORTER", exporters)
        .env("OTEL_METRICS_EXPORTER", "none");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

fn good_plugin_still_loads(reg: &Registry) {
    let d = reg
        .distros()
        .iter()
        .find(|d| d.name == "otel_custom_distro")
        .expect("the good plugin is missing");
    assert_eq!(d.origin.kind(), "plugin");
}

#[test]
fn files_that_are_not_libraries_are_reported_and_skipped() {
    let tmp = setup();
    let dir = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let real = std::fs::read(so("otel_custom_distro")).unwrap();
    std::fs::write(
        dir.join("random.so"),
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(dir.join("empty.so"), b"").unwrap();
    std::fs::write(dir.join("truncated.so"), &real[..real.len() / 3]).unwrap();
    std::fs::write(dir.join("header-only.so"), &real[..100_000]).unwrap();

    let reg = discover(&dir);
    good_plugin_still_loads(&reg);
    for file in ["random.so", "empty.so", "truncated.so", "header-only.so"] {
        let err = failure(&reg, file);
        assert!(matches!(err, LoadError::Open { .. }), "{file}: {err:?}");
        assert!(
            err.to_string().contains(file),
            "the message names the file: {err}"
        );
    }
    assert!(failure(&reg, "empty.so").to_string().contains("too short"));
    assert!(
        failure(&reg, "truncated.so")
            .to_string()
            .contains("truncated")
    );
}

#[test]
fn a_shared_library_without_root_module_is_not_a_plugin() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "not_a_plugin"],
    );
    let marker = std::path::PathBuf::from(format!(
        "/tmp/ndotel-not-a-plugin-ran-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&marker);
    let reg = discover(&dir);
    good_plugin_still_loads(&reg);
    let err = failure(&reg, "libnot_a_plugin.so");
    assert!(matches!(err, LoadError::NotAPlugin { .. }), "{err:?}");
    assert!(
        !marker.exists(),
        "refused without being loaded: its constructor ran"
    );
    assert!(
        err.to_string().contains("export_plugin!"),
        "says how to fix it: {err}"
    );
}

#[test]
fn a_plugin_built_against_an_incompatible_api_gets_a_one_line_reason() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "old_api_plugin"],
    );
    let mut reg = discover(&dir);
    // It has no metadata section, so it is only loaded (and its version checked) when nothing else holds the
    // selected name.
    assert_eq!(reg.legacy_plugins().len(), 1);
    reg.load_legacy();
    good_plugin_still_loads(&reg);
    let err = failure(&reg, "libold_api_plugin.so");
    assert!(matches!(err, LoadError::Incompatible { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        !text.contains('\n') && text.len() < 400,
        "one short line, not abi_stable's report: {text}"
    );
    assert!(
        text.contains("incompatible ndotel-api") && text.contains("rebuild"),
        "{text}"
    );
}

#[test]
fn plugins_writable_by_others_are_refused() {
    let tmp = setup();
    let good = plugin_dir(tmp.path(), "good", &["otel_custom_distro"]);
    let dir = plugin_dir(tmp.path(), "plugins", &["fixture_faulty"]);
    let file = dir.join("libfixture_faulty.so");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o777)).unwrap();
    let env = Env::from_pairs(
        [(
            "OTEL_RUST_DISTRO_PATH",
            format!("{}:{}", good.display(), dir.display()),
        )],
        tmp.path(),
    );
    let reg = Registry::discover(&env, None);
    good_plugin_still_loads(&reg);
    let err = failure(&reg, "libfixture_faulty.so");
    assert!(matches!(err, LoadError::Refused { .. }), "{err:?}");
    assert!(
        err.to_string().contains("writable by group or others")
            && err.to_string().contains("chmod go-w")
    );

    // A group-writable directory taints every file in it.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    let reg = Registry::discover(&env, None);
    let err = failure(&reg, "libfixture_faulty.so");
    assert!(
        err.to_string()
            .contains(&format!("directory {}", dir.display())),
        "{err}"
    );
}

#[test]
fn init_errors_and_init_panics_are_reported_with_the_distro_and_origin() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "fixture_faulty"],
    );
    let env = Env::from_pairs(
        [("OTEL_RUST_DISTRO_PATH", dir.to_str().unwrap())],
        tmp.path(),
    );
    let mut reg = Registry::discover(&env, None);
    good_plugin_still_loads(&reg);
    // Only the selected distro's plugin is loaded; here every distro of the faulty plugin is tried.
    reg.load_selected("faulty_init_error").unwrap();
    reg.load_selected("otel_custom_distro").unwrap();
    let find = |name: &str| reg.distros().iter().find(|d| d.name == name).unwrap();

    let err = find("faulty_init_error").init(None, &env).unwrap_err();
    assert!(err.to_string().contains("faulty_init_error"), "{err}");
    assert!(err.to_string().contains("libfixture_faulty.so"), "{err}");
    assert!(err.message.contains("config.invalid"), "{err}");

    let err = find("faulty_init_panic").init(None, &env).unwrap_err();
    assert!(err.message.contains("panicked: init exploded"), "{err}");

    // The host lives on: the good distro still initialises after the panic.
    assert!(
        find("otel_custom_distro")
            .init(None, &env)
            .unwrap()
            .is_some()
    );
}

#[test]
fn selecting_a_distro_whose_init_panics_keeps_the_app_running_with_telemetry_off() {
    let tmp = setup();
    let (ok, stdout, stderr) = run_faulty(tmp.path(), "faulty_init_panic", "file", &[]);
    assert!(ok, "the app must keep running: {stderr}");
    assert!(
        stderr.contains("init exploded") && stderr.contains("telemetry is OFF"),
        "{stderr}"
    );
    assert!(stdout.contains("telemetry: off"), "{stdout}");
    assert!(
        read_jsonl(&tmp.path().join("traces.jsonl")).is_empty(),
        "fail closed: nothing is exported without the distro"
    );
}

#[test]
fn a_panicking_sampler_falls_back_and_spans_keep_flowing() {
    let tmp = setup();
    let (ok, stdout, stderr) = run_faulty(tmp.path(), "faulty_sampler_panic", "file", &[]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ndotel: sampler of distro"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one log line, further failures counted: {stderr}"
    );
    assert!(lines[0].contains("panicked (at "), "{stderr}");
    assert!(
        !stderr.contains("sampler exploded"),
        "a panic message may quote span data: {stderr}"
    );
    let faults = workload_faults(&stdout);
    assert!(
        faults >= 9,
        "every sampler call failed and was counted: {stdout}"
    );
    let exported = read_jsonl(&tmp.path().join("traces.jsonl"));
    let spans: usize = exported
        .iter()
        .flat_map(|r| r["resourceSpans"].as_array().unwrap())
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
        .map(|ss| ss["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        spans, 9,
        "all 9 spans are exported with the parent-based always-on fallback"
    );
}

#[test]
fn panicking_processor_and_exporter_never_take_the_app_down() {
    for (distro, exporter) in [
        ("faulty_processor_panic", "file"),
        ("faulty_exporter_panic", "panicking,file"),
    ] {
        let tmp = setup();
        // A failing processor drops its spans by default (fail closed); pass-through keeps them flowing here.
        let (ok, stdout, stderr) = run_faulty(
            tmp.path(),
            distro,
            exporter,
            &[("OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR", "pass")],
        );
        assert!(ok, "{distro}: {stderr}");
        assert!(
            stderr.contains(&format!("of distro {distro} failed: panicked")),
            "{distro}: the failure is reported: {stderr}"
        );
        assert!(
            !stdout.contains("faults: 0"),
            "{distro}: failures are counted: {stdout}"
        );
        assert!(
            !read_jsonl(&tmp.path().join("traces.jsonl")).is_empty(),
            "{distro}: the file exporter still got spans"
        );
    }
}

#[test]
fn a_hanging_exporter_neither_blocks_the_app_nor_the_other_exporters() {
    let tmp = setup();
    ndotel_tests::build_artifacts(); // not part of what is timed
    let started = std::time::Instant::now();
    let (ok, stdout, stderr) = run_faulty(
        tmp.path(),
        "faulty_exporter_hang",
        "hanging,file",
        &[("OTEL_BSP_EXPORT_TIMEOUT", "1000")],
    );
    let took = started.elapsed();
    assert!(ok, "{stdout}{stderr}");
    assert!(
        // The exporter never returns: finishing at all shows it was not waited for (generous for busy machines).
        took < std::time::Duration::from_secs(30),
        "shutdown waited {took:?} for the hung exporter"
    );
    assert!(
        stderr.contains("span exporter of distro faulty_exporter_hang failed: timed out"),
        "the hang is reported: {stderr}"
    );
    assert!(
        !read_jsonl(&tmp.path().join("traces.jsonl")).is_empty(),
        "the file exporter still got its spans"
    );
}

#[test]
fn plugins_owned_by_another_user_are_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("\n*** SKIPPED: changing a file's owner needs root ***\n");
        return;
    }
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "fixture_faulty"],
    );
    let file = dir.join("libfixture_faulty.so");
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    let reg = discover(&dir);
    good_plugin_still_loads(&reg);
    let err = failure(&reg, "libfixture_faulty.so");
    assert!(
        matches!(err, LoadError::Refused { .. }) && err.to_string().contains("owned by uid 65534"),
        "{err}"
    );
}

#[test]
fn a_distro_whose_init_hangs_does_not_hang_start_up() {
    let tmp = setup();
    ndotel_tests::build_artifacts(); // not part of what is timed
    let started = std::time::Instant::now();
    let (ok, stdout, stderr) = run_faulty(
        tmp.path(),
        "faulty_init_hang",
        "file",
        &[("OTEL_RUST_DISTRO_INIT_TIMEOUT", "500")],
    );
    assert!(ok, "{stderr}");
    assert!(
        // Init never returns: starting at all shows it was not waited for (generous for busy machines).
        started.elapsed() < std::time::Duration::from_secs(30),
        "start-up waited {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("init did not return within 500ms") && stderr.contains("telemetry is OFF"),
        "{stderr}"
    );
    assert!(stdout.contains("telemetry: off"), "{stdout}");
    assert!(read_jsonl(&tmp.path().join("traces.jsonl")).is_empty());
}

#[test]
fn names_with_control_characters_are_refused_and_never_printed_raw() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "fixture_faulty"],
    );
    let (ok, stdout, stderr) = ndotel_tests::output(
        ndotel_tests::ndotel(tmp.path())
            .arg("list")
            .env("OTEL_RUST_DISTRO_PATH", &dir),
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(
        !stdout.lines().any(|l| l.starts_with("faulty_forged")),
        "a forged line:\n{stdout}"
    );
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout}"
    );
    assert!(
        stdout.contains("can print like another one") && stdout.contains("faulty_hostile\\u{a}"),
        "{stdout}"
    );
    // The plugin's other distros and the good plugin are unaffected.
    assert!(
        stdout.lines().any(|l| l.starts_with("faulty_init_error ")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("otel_custom_distro ")),
        "{stdout}"
    );
}

#[test]
fn check_reports_a_distro_whose_init_aborts_without_dying_itself() {
    let tmp = setup();
    let dir = plugin_dir(tmp.path(), "plugins", &["fixture_faulty"]);
    let (ok, stdout, stderr) = ndotel_tests::output(
        ndotel_tests::ndotel(tmp.path())
            .arg("check")
            .env("OTEL_RUST_DISTRO_PATH", &dir)
            .env("OTEL_RUST_DISTRO", "faulty_init_abort"),
    );
    assert!(!ok, "{stdout}{stderr}");
    // Caught by the probe process before the check loads it (or, failing that, by the check's own child).
    assert!(
        stderr.contains("crashed the probe process with signal 6")
            || stderr.contains("crashed the check process with signal 6"),
        "reported, not died of: {stderr}"
    );
}
