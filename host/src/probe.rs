//! Before the selected distro's plugin is loaded into the application, it is probe-loaded in a short-lived child
//! process: the application's own executable, re-executed with `NDOTEL_INTERNAL_PROBE` set. A constructor of this
//! library (it runs before `main`) sees the variable, loads the plugin exactly as the application would, initialises
//! the distro and exits — `main` never runs in the child. A plugin that crashes, aborts or hangs there costs the
//! child, and the application runs with telemetry off instead of dying.

use crate::env::Env;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the probe child: the name of the distro to probe.
const PROBE_VAR: &str = "NDOTEL_INTERNAL_PROBE";

/// Registered in `.init_array`, so it runs in every process that links this library, before `main`.
#[used]
#[unsafe(link_section = ".init_array")]
static PROBE_HOOK: extern "C" fn() = probe_hook;

extern "C" fn probe_hook() {
    if std::env::var_os(PROBE_VAR).is_none() {
        return;
    }
    let code = match std::panic::catch_unwind(run_probe) {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => {
            eprintln!("{message}");
            3
        }
        Err(_) => 4,
    };
    // SAFETY: ends the probe child without running `main` or any exit handler of the application.
    unsafe { libc::_exit(code) }
}

/// In the probe child: what the application would do with the selected distro, up to its `init`.
fn run_probe() -> Result<(), String> {
    let env = Env::from_process();
    let plan = crate::pipeline::Plan::new(&env).map_err(|e| e.to_string())?;
    let config = plan.config.as_ref();
    plan.distro.init(config, &env).map_err(|e| e.to_string())?;
    Ok(())
}

/// Whether this process is a probe child.
pub(crate) fn in_probe() -> bool {
    std::env::var_os(PROBE_VAR).is_some()
}

/// Probe-loads distro `name` under `env` in a child process; `Err` says how the child failed.
pub(crate) fn probe(env: &Env, name: &str, deadline: Duration) -> Result<(), String> {
    // Keeps the constructor linked into every binary that selects a plugin distro.
    std::hint::black_box(&PROBE_HOOK);
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable to probe: {e}"))?;
    let mut child = Command::new(exe)
        .env_clear()
        .envs(env.vars())
        .env(PROBE_VAR, name)
        .current_dir(env.cwd())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the probe process: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "loading or initialising it did not finish within {deadline:?} in the probe process"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("waiting for the probe process: {e}")),
        }
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(signal) = status.signal() {
        return Err(format!(
            "loading or initialising it crashed the probe process with signal {signal} (it would have taken this \
             process down); fix or replace the plugin"
        ));
    }
    if status.success() {
        return Ok(());
    }
    Err(
        crate::text::printable(stderr.lines().last().unwrap_or("the probe process failed"))
            .into_owned(),
    )
}
