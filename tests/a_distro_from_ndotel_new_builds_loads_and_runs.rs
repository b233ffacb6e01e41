//! `ndotel new` creates a distro workspace outside this repository that passes its own tests, builds as a plugin
//! against this checkout's `plugins/api`, loads into `ndotel list` and `check`, and runs its components on the
//! example service.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

use app::{client, harness};
use ndotel_tests::{
    app_under_ndotel, build_external, install_plugin, ndotel, output, plugin_dir, profile_dir,
    setup,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn cargo(args: &[&str], manifest: &Path) -> (bool, String) {
    let target = profile_dir().parent().unwrap().join("external");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_generated_distro_builds_passes_its_tests_loads_and_runs_on_the_example_service() {
    let tmp = setup();
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/api");
    let (ok, stdout, stderr) = output(
        ndotel(tmp.path())
            .args(["new", "acme_distro", "--dir"])
            .arg(tmp.path())
            .arg("--api-path")
            .arg(&api),
    );
    assert!(ok, "{stdout}{stderr}");
    let root = tmp.path().join("acme_distro");
    assert!(
        stdout.contains("created") && stdout.contains("OTEL_RUST_DISTRO=acme_distro"),
        "{stdout}"
    );

    // Running it again never overwrites.
    let (again, _, err) = output(ndotel(tmp.path()).args(["new", "acme_distro"]));
    assert!(!again && err.contains("already exists"), "{err}");

    // The generated tests pass (they use ndotel_api::testing, no host).
    let (tested, log) = cargo(&["test", "--quiet"], &root.join("Cargo.toml"));
    assert!(tested, "{log}");
    assert!(log.contains("6 passed"), "{log}");

    let so = build_external(&root.join("acme_distro_so"), "acme_distro");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let plugins = plugin_dir(&work, "plugins", &[]);
    install_plugin(&so, &plugins, "acme_distro");
    std::fs::copy(root.join("distro.toml"), work.join("distro.toml")).unwrap();

    let (ok, stdout, stderr) = output(ndotel(&work).args(["list", "--probe"]));
    let row = stdout
        .lines()
        .find(|l| l.starts_with("acme_distro "))
        .unwrap_or_else(|| panic!("{stdout}{stderr}"));
    assert!(
        ok && row.contains("plugin") && row.contains(" ok "),
        "{row}"
    );
    assert!(
        row.contains("sampler:acme_distro_sampler")
            && row.contains("processor")
            && row.contains("span_exporter:acme_distro_stdout"),
        "{row}"
    );
    assert!(
        !stdout.contains("predates"),
        "built against this API: nothing missing\n{stdout}"
    );

    let (ok, stdout, stderr) = output(
        ndotel(&work)
            .arg("check")
            .env("OTEL_RUST_DISTRO", "acme_distro")
            .env("OTEL_TRACES_EXPORTER", "acme_distro_stdout"),
    );
    assert!(ok, "{stdout}{stderr}");

    // On the example service: the health check is dropped, requests are exported with the secret redacted.
    let mut cmd = app_under_ndotel(
        &work,
        &[
            "--distro",
            "acme_distro",
            "--traces-exporter",
            "acme_distro_stdout",
        ],
    );
    cmd.env("OTEL_METRICS_EXPORTER", "none");
    let mut app = harness::start_capturing_stderr(cmd).unwrap();
    let addr = app.addr.clone();
    assert_eq!(
        client::request(&addr, "GET", "/health", &[], None)
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        client::request(&addr, "GET", "/items", &[], None)
            .unwrap()
            .status,
        200
    );
    // A secret in the query string: redacted as generated, by the library, not just by key.
    assert_eq!(
        client::request(&addr, "GET", "/items?password=hunter2", &[], None)
            .unwrap()
            .status,
        200
    );
    let created = client::request(
        &addr,
        "POST",
        "/items",
        &[],
        Some(r#"{"name":"lamp","price":19.5}"#),
    )
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let lines = std::mem::replace(&mut app.stdout, std::sync::mpsc::channel().1);
    assert!(app.terminate().unwrap(), "clean exit");
    let mut exported = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
        exported.push(line);
    }
    let spans: Vec<&String> = exported
        .iter()
        .filter(|l| l.starts_with("acme_distro: "))
        .collect();
    assert!(
        spans
            .iter()
            .any(|l| l.contains("/items") && l.contains("GET")),
        "{exported:#?}"
    );
    assert!(spans.iter().any(|l| l.contains("INSERT")), "{exported:#?}");
    assert!(
        !spans.iter().any(|l| l.contains("/health")),
        "{exported:#?}"
    );
    assert!(
        spans
            .iter()
            .any(|l| l.contains("password=[REDACTED]") || l.contains("password=%5BREDACTED%5D")),
        "{exported:#?}"
    );
    assert!(
        !exported.iter().any(|l| l.contains("hunter2")),
        "{exported:#?}"
    );
}

#[test]
fn by_default_the_workspace_carries_the_hosts_own_api_and_its_plugin_loads() {
    let tmp = setup();
    let (ok, stdout, stderr) = output(
        ndotel(tmp.path())
            .args(["new", "vendored_distro", "--dir"])
            .arg(tmp.path()),
    );
    assert!(ok, "{stdout}{stderr}");
    let root = tmp.path().join("vendored_distro");
    let manifest = std::fs::read_to_string(root.join("vendor/ndotel-api/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("version = \"{}\"", ndotel::API_VERSION)),
        "{manifest}"
    );
    let so = build_external(&root.join("vendored_distro_so"), "vendored_distro");
    let plugins = plugin_dir(tmp.path(), "plugins", &[]);
    install_plugin(&so, &plugins, "vendored_distro");
    let (ok, stdout, stderr) = output(
        ndotel(tmp.path())
            .args(["list", "--probe"])
            .env("OTEL_RUST_DISTRO_PATH", &plugins),
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("vendored_distro "))
        .unwrap_or_else(|| panic!("{stdout}{stderr}"));
    assert!(ok && row.contains(" ok "), "{row}");
}
