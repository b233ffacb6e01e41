//! Before the selected distro's plugin is loaded into the application, it is probe-loaded in a short-lived child
//! process: the application's own executable, re-executed. A constructor of this library (in `plan.rs`; it runs before `main`)
//! recognises the probe child, loads the plugin exactly as the application would, initialises the distro and exits
//! — `main` never runs in the child. A plugin that crashes, aborts or hangs there costs the child, and the
//! application runs with telemetry off instead of dying.
//!
//! The child is recognised by what only its parent can give it: an inherited socket holding a random key, named
//! with the key in `NDOTEL_INTERNAL_PROBE_KEY`. The environment alone never makes a process a probe: a service that
//! inherits the variables runs its `main` as usual (the key is peeked at, never consumed, and must match).
//! The child is bounded whatever the plugin does ([`crate::child`]): its own process group, its output read while it
//! runs and capped, every descendant killed when it ends.

use crate::env::Env;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set in the probe child: the name of the distro to probe.
pub(crate) const PROBE_VAR: &str = "NDOTEL_INTERNAL_PROBE";
/// Set in the probe child: `FD:KEY`, the inherited socket and the key it holds, in hex.
pub(crate) const KEY_VAR: &str = "NDOTEL_INTERNAL_PROBE_KEY";
/// Set in the probe child: how long it may take, in milliseconds (it ends itself and what it started by then).
pub(crate) const DEADLINE_VAR: &str = "NDOTEL_INTERNAL_PROBE_DEADLINE_MS";

/// Whether this process was recognised as a probe child.
pub(crate) static PROBING: AtomicBool = AtomicBool::new(false);

/// Whether the parent gave this process the probe key: the socket named by `key_var` (the value of [`KEY_VAR`],
/// `FD:KEY`) holds exactly the key.
pub(crate) fn verified(key_var: Option<&str>) -> bool {
    let Some((fd, key)) = key_var
        .and_then(|v| v.split_once(':'))
        .and_then(|(fd, key)| Some((fd.parse::<i32>().ok()?, key)))
    else {
        return false;
    };
    let Some(key) = hex_decode(key).filter(|k| k.len() == KEY_LEN) else {
        return false;
    };
    // SAFETY: fstat and recv on a descriptor number that may or may not be open: both only report an error for one
    // that is not; MSG_PEEK leaves any data in place (a socket that is not ours is not disturbed), MSG_DONTWAIT
    // never blocks, and the buffer is ours and as long as we say.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return false;
        }
        let mut buf = [0u8; KEY_LEN + 1];
        let n = libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        );
        n == KEY_LEN as isize && buf[..KEY_LEN] == key[..]
    }
}

const KEY_LEN: usize = 32;

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    s.len().is_multiple_of(2).then_some(())?;
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh random key.
fn random_key() -> std::io::Result<[u8; KEY_LEN]> {
    use std::io::Read as _;
    let mut key = [0u8; KEY_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

/// Whether this process is a probe child.
pub(crate) fn in_probe() -> bool {
    PROBING.load(Ordering::Relaxed)
}

/// Probe-loads distro `name` under `env` in a child process; `Err` says how the child failed.
pub(crate) fn probe(env: &Env, name: &str, deadline: Duration) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable to probe: {e}"))?;
    let key = random_key().map_err(|e| format!("cannot make the probe's key: {e}"))?;
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| format!("cannot make the probe's socket: {e}"))?;
    ours.write_all(&key)
        .map_err(|e| format!("cannot write the probe's key: {e}"))?;
    let fd = theirs.as_raw_fd();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = Command::new(exe);
    cmd.env_clear()
        .envs(env.vars())
        .env(PROBE_VAR, name)
        .env(KEY_VAR, format!("{fd}:{hex}"))
        // The child ends itself (and what it started) a little before the parent would kill it.
        .env(
            DEADLINE_VAR,
            deadline
                .saturating_sub(Duration::from_millis(500))
                .as_millis()
                .to_string(),
        )
        .current_dir(env.cwd());
    // SAFETY: runs in the forked child before exec and only clears close-on-exec on the socket's descriptor (an
    // async-signal-safe fcntl), so that the exec'd probe inherits it.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = crate::child::run_bounded(&mut cmd, deadline)
        .map_err(|e| format!("cannot start the probe process: {e}"))?;
    drop(theirs);
    let Some(status) = out.status else {
        return Err(format!(
            "loading or initialising it did not finish within {deadline:?} in the probe process"
        ));
    };
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
    Err(out
        .last_error_line()
        .unwrap_or_else(|| "the probe process failed".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_alone_never_makes_a_probe() {
        let key: String = "ab".repeat(KEY_LEN);
        for value in [
            None,
            Some("0:00".to_string()),
            Some(format!("1:{key}")),
            Some(format!("99999:{key}")),
            Some("garbage".to_string()),
        ] {
            assert!(!verified(value.as_deref()), "{value:?}");
        }
        // The real thing: a socket holding the key.
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.write_all(&[0xabu8; KEY_LEN]).unwrap();
        let fd = theirs.as_raw_fd();
        assert!(verified(Some(&format!("{fd}:{key}"))));
        // Peeked, not consumed: the check is repeatable and leaves the data.
        assert!(verified(Some(&format!("{fd}:{key}"))));
        // Another key on the same socket is refused.
        assert!(!verified(Some(&format!("{fd}:{}", "cd".repeat(KEY_LEN)))));
    }
}
