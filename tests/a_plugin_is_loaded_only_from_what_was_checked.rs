//! Loading is safe against another user on the machine: the trust chain up to `/`, and one open file from which
//! the checks, the hash and the loader all work.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

use ndotel::{Env, Registry};
use ndotel_tests::{install_plugin, plugin_dir, setup, so};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chown(path: &Path, uid: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; -1 keeps the group.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), uid, u32::MAX) }, 0);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn swapping_the_plugin_directory_while_loading_never_runs_the_other_users_code() {
    if !is_root() {
        eprintln!("\n*** SKIPPED: acting as another user needs root ***\n");
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("\n*** SKIPPED: python3 (the other user's swapping loop) is not installed ***\n");
        return;
    }
    let tmp = setup();
    chmod(tmp.path(), 0o755);
    // The other user owns the grandparent, so they can rename what it holds ...
    let grand = tmp.path().join("grand");
    std::fs::create_dir(&grand).unwrap();
    let plugins = plugin_dir(&grand, "plugins", &["otel_custom_distro"]);
    chmod(&plugins, 0o755);
    // ... and keep a directory of their own with a plugin of the same file name whose constructor leaves a marker.
    let evil = grand.join("evil");
    std::fs::create_dir(&evil).unwrap();
    install_plugin(&so("marker_plugin"), &evil, "otel_custom_distro");
    chown(&evil, NOBODY);
    chown(&evil.join("libotel_custom_distro.so"), NOBODY);
    chown(&grand, NOBODY);
    let marker = Path::new(&format!("/tmp/ndotel-marker-{}", std::process::id())).to_path_buf();
    let _ = std::fs::remove_file(&marker);

    // The other user swaps the two directories as fast as they can.
    let swap = "import os,sys\nd=sys.argv[1]\nwhile True:\n  try:\n    os.rename(d+'/plugins',d+'/t'); os.rename(d+'/evil',d+'/plugins'); os.rename(d+'/plugins',d+'/evil'); os.rename(d+'/t',d+'/plugins')\n  except OSError: pass\n";
    let mut attacker = Command::new("python3")
        .args(["-c", swap])
        .arg(&grand)
        .uid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let env = Env::from_pairs(
        [("OTEL_RUST_DISTRO_PATH", plugins.to_str().unwrap())],
        tmp.path(),
    );
    let mut refused = 0;
    for _ in 0..300 {
        let reg = Registry::discover(&env, None);
        // The chain check refuses the foreign-owned grandparent whatever the directory holds at that moment.
        assert!(
            !reg.distros().iter().any(|d| d.name == "marker_distro"),
            "the other user's plugin was loaded"
        );
        refused += reg
            .failures()
            .iter()
            .filter(|f| f.to_string().contains("owned by uid 65534"))
            .count();
    }
    attacker.kill().unwrap();
    attacker.wait().unwrap();
    assert!(
        !marker.exists(),
        "the other user's code ran in this process"
    );
    assert!(refused > 0, "the foreign-owned grandparent was never named");
}

use std::os::unix::process::CommandExt as _;

/// The workload with distro `distro` selected from `plugins`; returns (success, stdout, stderr).
fn run_workload(dir: &Path, plugins: &Path, distro: &str, marker: &Path) -> (bool, String, String) {
    ndotel_tests::output(
        ndotel_tests::workload("workload_dynamic", dir)
            .env("OTEL_RUST_DISTRO_PATH", plugins)
            .env("OTEL_RUST_DISTRO", distro)
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "none")
            .env("NDOTEL_TEST_MARKER", marker),
    )
}

#[test]
fn no_plugin_code_runs_for_listing_or_when_another_distro_is_selected() {
    let tmp = setup();
    let plugins = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "marker_plugin"],
    );
    let marker = tmp.path().join("constructor-ran");

    let (ok, stdout, stderr) = ndotel_tests::output(
        ndotel_tests::ndotel(tmp.path())
            .arg("list")
            .env("OTEL_RUST_DISTRO_PATH", &plugins)
            .env("NDOTEL_TEST_MARKER", &marker),
    );
    assert!(ok, "{stdout}{stderr}");
    // Listed from its metadata alone.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("marker_distro "))
        .expect(&stdout);
    assert!(row.contains("found"), "{row}");
    assert!(
        !marker.exists(),
        "`ndotel list` ran the plugin's constructor"
    );

    let (ok, stdout, stderr) = run_workload(tmp.path(), &plugins, "otel_custom_distro", &marker);
    assert!(ok && stdout.contains("telemetry: on"), "{stdout}{stderr}");
    assert!(
        !marker.exists(),
        "start-up with another distro selected ran the plugin's constructor"
    );

    // The fixture does leave its marker once it is loaded: when selected, and under `list --probe` (in a child).
    let (ok, stdout, stderr) = run_workload(tmp.path(), &plugins, "marker_distro", &marker);
    assert!(
        ok && stdout.contains("distro: marker_distro"),
        "{stdout}{stderr}"
    );
    assert!(
        marker.exists(),
        "the fixture's constructor never runs: this test proves nothing"
    );
}

#[test]
fn a_damaged_full_size_plugin_beside_the_selected_one_harms_nothing() {
    let tmp = setup();
    let plugins = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    // What an interrupted copy leaves: the right size, the headers intact, garbage after the first 64 KiB.
    let mut bytes = std::fs::read(so("fixture_faulty")).unwrap();
    let len = bytes.len();
    for (i, b) in bytes[64 * 1024..len.saturating_sub(64 * 1024)]
        .iter_mut()
        .enumerate()
    {
        *b = (i as u8).wrapping_mul(31) ^ 0xa5;
    }
    let damaged = plugins.join("libfixture_faulty.so");
    std::fs::write(&damaged, &bytes).unwrap();
    chmod(&damaged, 0o755);

    let (ok, stdout, stderr) = ndotel_tests::output(
        ndotel_tests::ndotel(tmp.path())
            .arg("list")
            .env("OTEL_RUST_DISTRO_PATH", &plugins),
    );
    assert!(ok, "`ndotel list` survives and exits 0: {stdout}{stderr}");
    assert!(
        stdout.contains("libfixture_faulty.so"),
        "it is reported: {stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("otel_custom_distro ")),
        "{stdout}"
    );

    let marker = tmp.path().join("unused-marker");
    let (ok, stdout, stderr) = run_workload(tmp.path(), &plugins, "otel_custom_distro", &marker);
    assert!(
        ok && stdout.contains("telemetry: on"),
        "the service starts: {stdout}{stderr}"
    );

    // With a distro of the damaged plugin selected, the service starts on the fallback: telemetry off.
    let (ok, stdout, stderr) = run_workload(tmp.path(), &plugins, "faulty_init_error", &marker);
    assert!(
        ok && stdout.contains("telemetry: off"),
        "the service starts: {stdout}{stderr}"
    );
    assert!(
        stderr.contains("libfixture_faulty.so"),
        "and says which file: {stderr}"
    );
}

#[test]
fn a_selected_distro_that_aborts_on_load_costs_only_the_probe_process() {
    let tmp = setup();
    let plugins = plugin_dir(tmp.path(), "plugins", &["fixture_faulty"]);
    let (ok, stdout, stderr) = ndotel_tests::output(
        ndotel_tests::workload("workload_dynamic", tmp.path())
            .env("OTEL_RUST_DISTRO_PATH", &plugins)
            .env("OTEL_RUST_DISTRO", "faulty_init_abort")
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "none"),
    );
    assert!(ok, "the service lives: {stdout}{stderr}");
    assert!(stdout.contains("telemetry: off"), "fails closed: {stdout}");
    assert!(
        stderr.contains("crashed the probe process with signal 6")
            && stderr.contains("faulty_init_abort"),
        "says why, once: {stderr}"
    );
    assert!(stdout.contains("faults: 0"), "{stdout}");
}

/// Discovers `plugins` (holding the good plugin) plus `extra`; returns the refusal naming `extra`.
fn refusal_beside_the_good_plugin(plugins: &Path, extra: &Path) -> String {
    let env = Env::from_pairs(
        [(
            "OTEL_RUST_DISTRO_PATH",
            format!(
                "{}:{}",
                plugins.display(),
                extra.parent().unwrap().display()
            ),
        )],
        plugins,
    );
    let reg = Registry::discover(&env, None);
    assert!(
        reg.distros().iter().any(|d| d.name == "otel_custom_distro"),
        "the good plugin beside still loads: {:?}",
        reg.failures()
    );
    reg.failures()
        .iter()
        .find(|f| f.path() == extra)
        .unwrap_or_else(|| panic!("{} not refused: {:?}", extra.display(), reg.failures()))
        .to_string()
}

#[test]
fn links_into_writable_places_foreign_links_and_writable_grandparents_are_refused() {
    let tmp = setup();
    let good = plugin_dir(tmp.path(), "good", &["otel_custom_distro"]);

    // A symlink, in a safe directory, to a plugin in a directory everyone can write.
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    install_plugin(&so("marker_plugin"), &open, "marker_plugin");
    let links = plugin_dir(tmp.path(), "links", &[]);
    let link = links.join("libmarker_plugin.so");
    std::os::unix::fs::symlink(open.join("libmarker_plugin.so"), &link).unwrap();
    let err = refusal_beside_the_good_plugin(&good, &link);
    assert!(
        err.contains("/open (the target of") && err.contains("chmod go-w"),
        "{err}"
    );

    // A plugin whose grandparent directory others can write.
    let grand = tmp.path().join("grand");
    std::fs::create_dir(&grand).unwrap();
    chmod(&grand, 0o777);
    let inner = plugin_dir(&grand, "plugins", &["marker_plugin"]);
    let err = refusal_beside_the_good_plugin(&good, &inner.join("libmarker_plugin.so"));
    assert!(
        err.contains("/grand is writable by group or others"),
        "{err}"
    );

    // A symlink owned by another user in a sticky directory (like /tmp), even to a safe target.
    if is_root() {
        let sticky = tmp.path().join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        chmod(&sticky, 0o1777);
        let foreign = sticky.join("libmarker_plugin.so");
        std::os::unix::fs::symlink(inner.join("libmarker_plugin.so"), &foreign).unwrap();
        let c = std::ffi::CString::new(foreign.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; -1 keeps the group.
        assert_eq!(unsafe { libc::lchown(c.as_ptr(), NOBODY, u32::MAX) }, 0);
        chmod(&grand, 0o755);
        let err = refusal_beside_the_good_plugin(&good, &foreign);
        assert!(err.contains("owned by uid 65534"), "{err}");
    } else {
        eprintln!("\n*** SKIPPED (one case): giving a link to another user needs root ***\n");
    }
}
