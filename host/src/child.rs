//! Child processes that run plugin code (the probe before loading, `ndotel list --probe`, `ndotel check`), bounded
//! whatever the plugin does there:
//! - the child runs in a process group of its own, killed when the child ends or its deadline passes, so nothing it
//!   started in that group survives; the child itself becomes a *subreaper* ([`become_reaper`]) and kills every
//!   descendant before it exits ([`kill_descendants`]), so even a daemon that left the group with `setsid` ends;
//! - its output is read while it runs, on threads of their own, keeping the first [`OUTPUT_CAP`] bytes of each
//!   stream and discarding the rest, so a flood never fills the pipe and stalls it;
//! - after the child has ended, the output is waited for a bounded grace only: a process that escaped every kill and
//!   still holds the pipe does not hold the caller.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How much of each output stream of a child is kept.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// How long the output of a child that has ended is waited for.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// What a bounded child did.
#[derive(Debug)]
pub struct Finished {
    /// How it ended; `None` when it was killed at its deadline.
    pub status: Option<ExitStatus>,
    /// The first [`OUTPUT_CAP`] bytes of its standard output.
    pub stdout: Vec<u8>,
    /// The first [`OUTPUT_CAP`] bytes of its standard error.
    pub stderr: Vec<u8>,
}

impl Finished {
    /// The last non-empty line of its standard error, made printable (control characters and terminal escapes
    /// escaped), or `None`.
    pub fn last_error_line(&self) -> Option<String> {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| crate::text::printable(l).into_owned())
    }
}

/// `text` with control characters (line breaks too), terminal escapes and invisible characters escaped: for one
/// field that a plugin or a file name supplied.
pub fn printable(text: &str) -> String {
    crate::text::printable(text).into_owned()
}

/// `bytes` (a child's output) as text with every line made printable: control characters and terminal escapes are
/// escaped, the line breaks kept.
pub fn printable_lines(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split_inclusive('\n')
        .map(|line| {
            let (text, end) = line.strip_suffix('\n').map_or((line, ""), |t| (t, "\n"));
            format!("{}{end}", crate::text::printable(text))
        })
        .collect()
}

/// Reads `stream` to its end on a thread of its own, keeping the first [`OUTPUT_CAP`] bytes.
fn drain(stream: Option<impl std::io::Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::sync_channel(1);
    if let Some(mut stream) = stream {
        // Without a thread the output is lost; the child is still bounded by its deadline.
        let _ = std::thread::Builder::new()
            .name("ndotel-child-output".into())
            .spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = OUTPUT_CAP.saturating_sub(kept.len());
                            kept.extend_from_slice(&buf[..n.min(room)]);
                        }
                    }
                }
                let _ = tx.send(kept);
            });
    }
    rx
}

/// Runs `cmd` (stdin closed, stdout and stderr captured) in a process group of its own for at most `deadline`.
pub fn run_bounded(cmd: &mut Command, deadline: Duration) -> std::io::Result<Finished> {
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let group = child.id() as libc::pid_t;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => {
                kill_group(group);
                let _ = child.wait();
                return Err(e);
            }
        }
    };
    // Whatever it started in its group goes with it, whether it ended or not.
    kill_group(group);
    if status.is_none() {
        let _ = child.wait();
    }
    let until = Instant::now() + OUTPUT_GRACE;
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(until.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    };
    Ok(Finished {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

fn kill_group(group: libc::pid_t) {
    // SAFETY: signals the process group this module created for the child (its id is the child's pid); a group
    // that no longer exists makes `killpg` fail with ESRCH, which is fine.
    unsafe {
        libc::killpg(group, libc::SIGKILL);
    }
}

/// Makes this process the reaper of every orphan among its descendants (Linux `PR_SET_CHILD_SUBREAPER`), so that
/// [`kill_descendants`] reaches daemons that double-forked or left the process group. Called first thing in a child
/// that is about to run plugin code.
pub fn become_reaper() {
    // SAFETY: a plain prctl on this process; failure (another OS) only makes `kill_descendants` reach less.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Kills every child of this process, and the orphans that are then handed to it as their reaper, until none is
/// left (bounded rounds, so a fork bomb cannot keep it here; the parent's group kill stays behind it).
pub fn kill_descendants() {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    for _ in 0..256 {
        let children = children_of(me);
        if children.is_empty() {
            return;
        }
        for pid in children {
            // SAFETY: signals and reaps a process whose parent is this process (read from /proc just now); a pid
            // that has already ended makes both fail harmlessly, and only our own children can be waited for.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// The processes whose parent is `parent`, read from `/proc`.
fn children_of(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                // The command name (in parentheses) may hold spaces: the fields after it are fixed.
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<libc::pid_t>().ok()
                })
                == Some(parent)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_output_is_capped_and_never_stalls_the_child() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "head -c 1000000 /dev/zero | tr '\\0' x >&2; echo done",
        ]);
        let out = run_bounded(&mut cmd, Duration::from_secs(120)).unwrap();
        assert!(out.status.is_some_and(|s| s.success()), "{out:?}");
        assert_eq!(out.stderr.len(), OUTPUT_CAP);
        assert_eq!(out.stdout, b"done\n");
    }

    #[test]
    fn a_daemon_left_holding_the_output_neither_holds_the_caller_nor_survives() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("daemon.pid");
        let mut cmd = Command::new("sh");
        // The daemon keeps stderr open and lives for an hour; the child exits at once.
        cmd.arg("-c").arg(format!(
            "sleep 3600 & echo $! > {}; echo started >&2",
            pid_file.display()
        ));
        let out = run_bounded(&mut cmd, Duration::from_secs(120)).unwrap();
        assert!(out.status.is_some_and(|s| s.success()));
        assert_eq!(out.last_error_line().as_deref(), Some("started"));
        let pid: libc::pid_t = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed with its group: gone, or a zombie waiting for its reaper.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = state
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            if matches!(state, None | Some("Z")) {
                break;
            }
            assert!(Instant::now() < deadline, "the daemon survived: {state:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_child_past_its_deadline_is_killed() {
        let mut cmd = Command::new("sleep");
        cmd.arg("3600");
        let out = run_bounded(&mut cmd, Duration::from_millis(100)).unwrap();
        assert!(out.status.is_none());
    }
}
