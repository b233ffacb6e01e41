//! Shared helpers of the integration tests: building the plugin fixtures and the `ndotel` binary once, temporary
//! directories with safe permissions, child processes with a clean environment, and the common workload.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // test support: failing loudly is the point

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;

/// `target/<profile>` of this build, found from the running executable (`target/<profile>/deps/test-…` or
/// `target/<profile>/workload_…`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the `ndotel` binary and every plugin fixture (cdylibs, which `cargo test` does not build) into this
/// build's target directory, once per test process.
pub fn build_artifacts() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile = profile_dir();
        let target = profile.parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "--target-dir"])
            .arg(target);
        if profile.ends_with("release") {
            cmd.arg("--release");
        }
        for p in [
            "ndotel-cli",
            "app",
            "otel_custom_distro_so",
            "fixture_faulty_so",
            "fixture_not_a_plugin",
            "fixture_old_api_plugin",
            "fixture_marker_plugin",
        ] {
            cmd.args(["-p", p]);
        }
        let status = cmd.status().expect("running cargo build for the fixtures");
        assert!(status.success(), "building the plugin fixtures failed");
    });
}

/// The built `.so` of library `name` (`lib<name>.so`).
pub fn so(name: &str) -> PathBuf {
    build_artifacts();
    profile_dir().join(format!("lib{name}.so"))
}

/// Builds the cdylib crate at `tests/fixtures/<fixture>` the way an outside author would — its own workspace, its
/// own Cargo.lock, its own profile — into `target/external`, once per test process and fixture; returns
/// `lib<lib>.so`.
pub fn external_plugin(fixture: &str, lib: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_build_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    build_external(&workspace_root().join("tests/fixtures").join(fixture), lib)
}

/// Builds the standalone cdylib crate in `dir` into `target/external`; returns `lib<lib>.so`.
pub fn build_external(dir: &Path, lib: &str) -> PathBuf {
    let target = profile_dir().parent().unwrap().join("external");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("running cargo build for an external plugin");
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug").join(format!("lib{lib}.so"))
}

/// Copies `so` into `dir` (mode 0755) as `lib<name>.so`; returns the copy.
pub fn install_plugin(so: &Path, dir: &Path, name: &str) -> PathBuf {
    let dest = dir.join(format!("lib{name}.so"));
    std::fs::copy(so, &dest).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    dest
}

/// A fresh temporary directory, mode 0700 (plugins are refused from directories others can write).
pub fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Creates `parent/name` (mode 0700) holding copies of the given plugin libraries; returns it.
pub fn plugin_dir(parent: &Path, name: &str, libs: &[&str]) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for lib in libs {
        install_plugin(&so(lib), &dir, lib);
    }
    dir
}

/// A command for `ndotel` (built by [`build_artifacts`]) with an empty environment but `PATH`, run in `cwd`.
pub fn ndotel(cwd: &Path) -> Command {
    build_artifacts();
    clean(Command::new(profile_dir().join("ndotel")), cwd)
}

/// `ndotel run FLAGS -- app` in `dir` (see [`ndotel()`]): the example service under ndotel, listening on a free port
/// (`APP_ADDR`), with a SQLite database in `dir` (`DATABASE_URL`, which the caller may set again).
pub fn app_under_ndotel(dir: &Path, flags: &[&str]) -> Command {
    let mut cmd = ndotel(dir);
    cmd.arg("run")
        .args(flags)
        .arg("--")
        .arg(profile_dir().join("app"))
        .env("APP_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}?mode=rwc", dir.join("app.db").display()),
        );
    cmd
}

/// The example service's binary run directly (no `ndotel run`) in `dir`, with a clean environment but `PATH`: its
/// SQLite file in `dir`, a free port, metrics off, its stderr piped.
pub fn app_direct(dir: &Path) -> Command {
    build_artifacts();
    let mut cmd = clean(Command::new(profile_dir().join("app")), dir);
    cmd.env("APP_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}?mode=rwc", dir.join("app.db").display()),
        )
        .env("OTEL_METRICS_EXPORTER", "none")
        .stderr(std::process::Stdio::piped());
    cmd
}

/// A command for one of this package's workload binaries with an empty environment but `PATH`, run in `cwd`.
pub fn workload(bin: &str, cwd: &Path) -> Command {
    clean(Command::new(profile_dir().join(bin)), cwd)
}

fn clean(mut cmd: Command, cwd: &Path) -> Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(cwd);
    cmd
}

/// Runs `cmd`, returning (success, stdout, stderr).
pub fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The component failures the workload counted (its `faults: N` line).
pub fn workload_faults(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("faults: "))
        .unwrap_or_else(|| panic!("no faults line in: {stdout}"))
        .parse()
        .unwrap()
}

/// Every JSON line of `path`.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("bad JSON line in {}: {e}: {l}", path.display()))
        })
        .collect()
}

/// The workload both workload binaries run: `--list` prints the registry; otherwise a few HTTP-like traces
/// (one a health check), made with `tracing` and with the OpenTelemetry API, then a clean shutdown. Prints the
/// distro in use and the number of component failures.
pub fn workload_main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        let env = ndotel::Env::from_process();
        for d in ndotel::Registry::discover(&env, None).distros() {
            println!("{} {}", d.name, d.origin);
        }
        return ExitCode::SUCCESS;
    }
    let guard = ndotel::init();
    println!("distro: {}", guard.distro());
    println!("telemetry: {}", if guard.enabled() { "on" } else { "off" });
    // WORKLOAD_HANG: one span whose attribute says "hang", on a thread of its own that is never waited for (the
    // faulty distros hang on it); the rest of the workload must go on.
    if std::env::var_os("WORKLOAD_HANG").is_some() {
        std::thread::spawn(|| {
            tracing::info_span!("GET /hang", otel.kind = "server", url.path = "/hang")
                .in_scope(|| {});
            println!("the hanging span returned");
        });
        // Go on once the watchdog has found the hang (an event, with a generous deadline), so what follows runs
        // against the bypassed component.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while guard.faults().hung() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        println!("hung components: {}", guard.faults().hung());
    }
    // WORKLOAD_THREADS x WORKLOAD_SPANS: a stress of many spans from several threads.
    let stress = |var: &str| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let (threads, spans) = (stress("WORKLOAD_THREADS"), stress("WORKLOAD_SPANS"));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..spans {
                    tracing::info_span!("stress", thread = t, i = i).in_scope(|| {});
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for i in 0..3 {
        let server = tracing::info_span!(
            "GET /items",
            otel.kind = "server",
            url.path = "/items",
            http.request.method = "GET",
            http.request.header.authorization = "Bearer s3cr3t-t0ken",
            item = i
        );
        server.in_scope(|| {
            tracing::info_span!(
                "SELECT items",
                otel.kind = "client",
                db.system.name = "sqlite"
            )
            .in_scope(|| {});
        });
    }
    tracing::info_span!("GET /health", otel.kind = "server", url.path = "/health").in_scope(|| {
        tracing::info_span!("SELECT 1", otel.kind = "client").in_scope(|| {});
    });
    // WORKLOAD_SECRETS: a failed login whose secret sits in an attribute, in an event and in the status message.
    if std::env::var_os("WORKLOAD_SECRETS").is_some() {
        use opentelemetry::trace::{Status, TraceContextExt as _, Tracer as _};
        opentelemetry::global::tracer("workload").in_span("POST /login", |cx| {
            let span = cx.span();
            span.set_attribute(opentelemetry::KeyValue::new("user.secret", "hunter2"));
            span.add_event(
                "exception",
                vec![
                    opentelemetry::KeyValue::new(
                        "exception.message",
                        "login failed: password=hunter2",
                    ),
                    opentelemetry::KeyValue::new("session.secret", "hunter2"),
                ],
            );
            span.set_status(Status::error("database said: password=hunter2 is wrong"));
        });
        // The same secret in metric attributes: a counter and an observable gauge, whose series must pass the
        // distro's redaction before any metric exporter sees them.
        let meter = opentelemetry::global::meter("workload");
        let secret_attributes = [
            opentelemetry::KeyValue::new("user.password", "hunter2"),
            opentelemetry::KeyValue::new("url.query", "user=al&token=hunter2"),
            opentelemetry::KeyValue::new("server.address", "al:hunter2@db"),
            opentelemetry::KeyValue::new("http.route", "/login"),
        ];
        meter
            .u64_counter("workload.logins")
            .build()
            .add(1, &secret_attributes);
        let _gauge = meter
            .i64_observable_gauge("workload.sessions")
            .with_callback(|obs| {
                obs.observe(
                    2,
                    &[opentelemetry::KeyValue::new(
                        "note",
                        "paid with 4111 1111 1111 1111",
                    )],
                )
            })
            .build();
    }
    let requests = opentelemetry::global::meter("workload")
        .u64_counter("workload.requests")
        .build();
    requests.add(3, &[opentelemetry::KeyValue::new("http.route", "/items")]);
    use opentelemetry::trace::Tracer as _;
    opentelemetry::global::tracer("workload").in_span("direct api span", |_| {});
    tracing::info!(orders = 3, "workload done");
    // WORKLOAD_NO_FLUSH: leave everything to the guard's shutdown, as a service that just exits does.
    if std::env::var_os("WORKLOAD_NO_FLUSH").is_none() {
        guard.flush();
    }
    let faults = guard.faults().total();
    drop(guard);
    println!("faults: {faults}");
    ExitCode::SUCCESS
}

/// A test that cannot run here says so loudly — or, under `NDOTEL_REQUIRE_SERVICES` (set by `.ci/run`, which
/// installs every service), fails: in CI a missing service is a failure, never a quiet skip.
pub fn skip_service(reason: &str) {
    if std::env::var_os("NDOTEL_REQUIRE_SERVICES").is_some() {
        panic!("NDOTEL_REQUIRE_SERVICES is set but {reason}");
    }
    eprintln!("\n*** SKIPPED: {reason} ***\n");
}

/// The rotel-agent OTLP collector binary: `NDOTEL_TEST_ROTEL`, else the one pip installed, else a loud skip
/// message and `None`.
pub fn rotel_agent() -> Option<PathBuf> {
    let from_env = std::env::var("NDOTEL_TEST_ROTEL").ok().map(PathBuf::from);
    let from_pip = || {
        let out = Command::new("python3")
            .args(["-c", "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    };
    let found = from_env.or_else(from_pip).filter(|p| p.is_file());
    if found.is_none() {
        skip_service(
            "rotel-agent not found (pip install --pre rotel==0.0.1a15 rotel-sdk==0.0.1a9, or set NDOTEL_TEST_ROTEL)",
        );
    }
    found
}

/// A running rotel collector; killed on drop.
#[derive(Debug)]
pub struct Collector {
    child: std::process::Child,
    /// OTLP/gRPC port.
    pub grpc: u16,
    /// OTLP/HTTP port.
    pub http: u16,
    /// Its directory (pid and log files, and what a capture hook writes).
    pub out: PathBuf,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// rotel's log file in `dir`.
pub fn rotel_log(dir: &Path) -> String {
    ["rotel.log", "rotel.err"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts rotel on free ports with the blackhole exporter, with `capture` (a Python processor hook) on traces,
/// metrics and logs if given, and waits until both endpoints accept connections.
pub fn start_rotel(bin: &Path, dir: &Path, capture: Option<&Path>) -> Collector {
    use std::time::{Duration, Instant};
    let (grpc, http) = (free_port(), free_port());
    let mut cmd = Command::new(bin);
    cmd.arg("start")
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
        .args(["--exporter", "blackhole"])
        .arg("--pid-file")
        .arg(dir.join("rotel.pid"))
        .arg("--log-file")
        .arg(dir.join("rotel.log"))
        .env("NDOTEL_ROTEL_OUT", dir)
        .current_dir(dir)
        // Its console lines go to a file beside its log, not into a passing test's output.
        .stdout(std::fs::File::create(dir.join("rotel.out")).unwrap())
        .stderr(std::fs::File::create(dir.join("rotel.err")).unwrap());
    if let Some(hook) = capture {
        for signal in ["trace", "metrics", "logs"] {
            cmd.arg(format!("--otlp-with-{signal}-processor")).arg(hook);
        }
    }
    let mut c = Collector {
        child: cmd.spawn().unwrap(),
        grpc,
        http,
        out: dir.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
    while !up(grpc) || !up(http) {
        // A hook with a syntax error makes rotel exit 0 at once: check it is alive.
        assert!(
            c.child.try_wait().unwrap().is_none(),
            "rotel exited: {}",
            rotel_log(dir)
        );
        assert!(
            Instant::now() < deadline,
            "rotel did not start listening: {}",
            rotel_log(dir)
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    c
}
