//! The probe child that runs a plugin's code before the service (or `ndotel check`, `ndotel list --probe`) loads
//! it is bounded whatever that code does: a daemon it leaves behind (out of the process group, holding the probe's
//! stderr) neither holds start-up nor survives the probe; a flood of output neither deadlocks the pipe nor gets a
//! working plugin refused; and the environment variables that mark a probe do nothing in a service that inherits
//! them.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{ndotel, plugin_dir, setup, workload};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with its output going to files (a daemon that keeps them open cannot hold the test), waiting at most
/// a generous deadline; returns (success, stdout, stderr).
fn run_to_files(cmd: &mut Command, dir: &Path) -> (bool, String, String) {
    let (out, err) = (dir.join("stdout.txt"), dir.join("stderr.txt"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "still running after 240 s: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.success(),
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&err).unwrap(),
    )
}

/// The daemons the fixture recorded, as (file name, pid).
fn daemons(dir: &Path) -> Vec<(String, libc::pid_t)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let pid = std::fs::read_to_string(e.path())
                .ok()?
                .trim()
                .parse()
                .ok()?;
            name.starts_with("daemon.").then_some((name, pid))
        })
        .collect()
}

/// Whether `pid` runs (is neither gone nor a zombie).
fn alive(pid: libc::pid_t) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    !matches!(state, None | Some("Z"))
}

/// Waits (an event, generous deadline) until none of `pids` runs; panics naming the survivors.
fn wait_dead(pids: &[(String, libc::pid_t)]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while pids.iter().any(|(_, p)| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "survived: {:?}",
            pids.iter().filter(|(_, p)| alive(*p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills what the service itself started (its own business, but a test leaves nothing running).
struct KillOnDrop(PathBuf);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (_, pid) in daemons(&self.0) {
            // SAFETY (test): signals a process the fixture started and recorded.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn with_plugin(cmd: &mut Command, dir: &Path, distro: &str) {
    let plugins = plugin_dir(dir, "plugins", &["fixture_faulty"]);
    let daemons = dir.join("daemons");
    std::fs::create_dir_all(&daemons).unwrap();
    cmd.env("OTEL_RUST_DISTRO_PATH", &plugins)
        .env("OTEL_RUST_DISTRO", distro)
        .env("FIXTURE_DAEMON_DIR", &daemons)
        .env("OTEL_TRACES_EXPORTER", "none")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_LOGS_EXPORTER", "none");
}

#[test]
fn a_daemon_left_by_the_probe_neither_holds_start_up_nor_survives_it() {
    let tmp = setup();
    let _cleanup = KillOnDrop(tmp.path().join("daemons"));
    let mut cmd = workload("workload_dynamic", tmp.path());
    with_plugin(&mut cmd, tmp.path(), "faulty_init_daemon");
    let (ok, stdout, stderr) = run_to_files(&mut cmd, tmp.path());
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("telemetry: on"),
        "the plugin works: {stdout}\n{stderr}"
    );
    let all = daemons(&tmp.path().join("daemons"));
    let probes: Vec<_> = all
        .iter()
        .filter(|(n, _)| n.starts_with("daemon.probe."))
        .cloned()
        .collect();
    assert_eq!(
        probes.len(),
        1,
        "the probe ran the plugin's init once: {all:?}"
    );
    assert!(
        all.iter().any(|(n, _)| n.starts_with("daemon.app.")),
        "the service ran it too: {all:?}"
    );
    wait_dead(&probes);
}

#[test]
fn check_and_list_probe_leave_nothing_behind() {
    for args in [&["check"][..], &["list", "--probe"][..]] {
        let tmp = setup();
        let _cleanup = KillOnDrop(tmp.path().join("daemons"));
        let mut cmd = ndotel(tmp.path());
        cmd.args(args);
        with_plugin(&mut cmd, tmp.path(), "faulty_init_daemon");
        let (_, stdout, stderr) = run_to_files(&mut cmd, tmp.path());
        assert!(
            stdout.contains("faulty_init_daemon"),
            "{args:?}: {stdout}\n{stderr}"
        );
        let all = daemons(&tmp.path().join("daemons"));
        assert!(
            !all.is_empty(),
            "{args:?}: the plugin's init ran: {stdout}\n{stderr}"
        );
        wait_dead(&all);
    }
}

#[test]
fn a_flood_of_output_in_the_probe_neither_deadlocks_it_nor_refuses_the_plugin() {
    let tmp = setup();
    let mut cmd = workload("workload_dynamic", tmp.path());
    with_plugin(&mut cmd, tmp.path(), "faulty_init_flood");
    let (ok, stdout, stderr) = run_to_files(&mut cmd, tmp.path());
    assert!(ok, "{}", &stderr[stderr.len().saturating_sub(2000)..]);
    assert!(stdout.contains("telemetry: on"), "{stdout}");
    assert!(stdout.contains("distro: faulty_init_flood"), "{stdout}");
}

#[test]
fn the_probe_variables_inherited_by_a_service_do_nothing() {
    let tmp = setup();
    let mut cmd = workload("workload_dynamic", tmp.path());
    with_plugin(&mut cmd, tmp.path(), "faulty_init_flood");
    cmd.env("NDOTEL_INTERNAL_PROBE", "faulty_init_flood").env(
        "NDOTEL_INTERNAL_PROBE_KEY",
        format!("0:{}", "00".repeat(32)),
    );
    let (ok, stdout, stderr) = run_to_files(&mut cmd, tmp.path());
    assert!(ok, "{}", &stderr[stderr.len().saturating_sub(2000)..]);
    assert!(stdout.contains("telemetry: on"), "main ran: {stdout}");
    assert!(
        stderr.contains("was not started as a probe"),
        "said so once"
    );
    // `ndotel list` with the same environment lists without loading any plugin in itself.
    let mut list = ndotel(tmp.path());
    list.arg("list");
    with_plugin(&mut list, tmp.path(), "faulty_init_flood");
    list.env("NDOTEL_INTERNAL_PROBE", "faulty_init_flood");
    let (ok, stdout, _) = run_to_files(&mut list, tmp.path());
    assert!(ok && stdout.contains("faulty_init_flood"), "{stdout}");
    assert!(
        !stdout.contains("xxxxxxxx"),
        "no plugin code ran in `ndotel list`"
    );
}
