//! Running the service as a child process: wait for its "listening on" line, stop it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running service.
#[derive(Debug)]
pub struct Running {
    /// The child process.
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// Its later stdout lines.
    pub stdout: mpsc::Receiver<String>,
}

/// Starts `cmd` (which must run the service, directly or through `ndotel run`) and waits up to 60 s for its
/// `listening on http://ADDR` line.
pub fn start(mut cmd: Command) -> Result<Running, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the service: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("listening on http://") {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    return Ok(Running {
                        child,
                        addr,
                        stdout: rx,
                    });
                }
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("the service did not start listening ({status})"));
            }
        }
    }
}

/// [`start`], with the service's stderr read line by line and written with `eprintln!` from a thread started here.
/// Under `cargo test` that output is captured with the test's own and shown only when the test fails, so a passing
/// run does not print the service's log lines (its export errors, its redacted requests), which read as failures.
pub fn start_capturing_stderr(mut cmd: Command) -> Result<Running, String> {
    cmd.stderr(Stdio::piped());
    let mut running = start(cmd)?;
    if let Some(err) = running.child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("{line}");
            }
        });
    }
    Ok(running)
}

impl Running {
    /// Sends SIGTERM and waits for the process to exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> Result<bool, String> {
        // SAFETY: kill with a pid we own and a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        if rc != 0 {
            return Err(format!("kill failed: {}", std::io::Error::last_os_error()));
        }
        let status = self.child.wait().map_err(|e| e.to_string())?;
        Ok(status.success())
    }
}
