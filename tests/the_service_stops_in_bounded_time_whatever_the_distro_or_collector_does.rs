//! The example service under a distro whose processor hangs on some requests, and against a collector that accepts
//! connections but never answers: every other request is answered, the stuck component is named, and SIGTERM ends
//! the service in bounded time, saying what was not delivered.
#![allow(clippy::unwrap_used)] // a test fails loudly

use app::{client, harness};
use ndotel_tests::{plugin_dir, setup};
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The app binary with a clean environment, its stderr piped.
fn app(dir: &Path) -> Command {
    ndotel_tests::app_direct(dir)
}

/// The app under `distro` of the faulty fixture plugin, with a 200 ms call deadline, a 1 s drain and a file export.
fn under_faulty(dir: &Path, distro: &str) -> Command {
    let plugins = plugin_dir(dir, "plugins", &["fixture_faulty"]);
    let mut cmd = app(dir);
    cmd.env("OTEL_RUST_DISTRO_PATH", &plugins)
        .env("OTEL_RUST_DISTRO", distro)
        .env("OTEL_RUST_DISTRO_CALL_TIMEOUT", "200")
        .env("OTEL_TRACES_EXPORTER", "file")
        .env("APP_DRAIN_TIMEOUT", "1000");
    cmd
}

/// Starts the service and collects its stderr on a thread; returns the service and the collector of stderr.
fn start(cmd: Command) -> (harness::Running, std::thread::JoinHandle<String>) {
    let mut running = harness::start(cmd).unwrap();
    let mut err = running.child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    (running, reader)
}

/// SIGTERM; returns whether it exited successfully and how long that took.
fn stop(running: harness::Running) -> (bool, Duration) {
    let started = Instant::now();
    let ok = running.terminate().unwrap();
    (ok, started.elapsed())
}

/// The service under the `sdk` distro exporting OTLP to a collector that never answers, with `env`: answers
/// `requests` requests (each must succeed), then SIGTERM; returns whether it exited well, how long that took, and
/// its stderr.
fn against_a_silent_collector(
    dir: &Path,
    requests: usize,
    env: &[(&str, &str)],
) -> (bool, Duration, String) {
    let port = never_answering_collector();
    let mut cmd = app(dir);
    cmd.env("OTEL_RUST_DISTRO", "sdk")
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .envs(env.iter().copied());
    let (running, stderr) = start(cmd);
    for _ in 0..requests {
        let r = client::request(&running.addr, "GET", "/items", &[], None).unwrap();
        assert_eq!(r.status, 200);
    }
    let (ok, took) = stop(running);
    (ok, took, stderr.join().unwrap())
}

/// A "collector" that accepts connections and never answers; returns its port.
fn never_answering_collector() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    port
}

#[test]
fn a_request_stuck_in_the_distro_does_not_stop_the_others_nor_the_exit() {
    let tmp = setup();
    let mut cmd = under_faulty(tmp.path(), "faulty_processor_hang");
    cmd.env("OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR", "pass");
    let (running, stderr) = start(cmd);
    let addr = running.addr.clone();
    // The processor hangs on the span of this request (its url.path says "hang"); nobody waits for the answer.
    let stuck_addr = addr.clone();
    std::thread::spawn(move || client::request(&stuck_addr, "GET", "/hang", &[], None));
    // Every other request is answered. The first ones may race the stuck one; keep asking until the watchdog has
    // had its chance, then require answers.
    let mut answered = 0;
    for _ in 0..20 {
        let r = client::request(&addr, "GET", "/items", &[], None).unwrap();
        assert_eq!(r.status, 200);
        answered += 1;
    }
    assert_eq!(answered, 20);
    let (ok, took) = stop(running);
    let stderr = stderr.join().unwrap();
    assert!(ok, "the service exits cleanly: {stderr}");
    assert!(
        took < Duration::from_secs(60),
        "SIGTERM took {took:?}: {stderr}"
    );
    assert!(
        stderr.contains("span processor of distro faulty_processor_hang is stuck"),
        "the stuck component is named: {stderr}"
    );
    let traces = std::fs::read_to_string(tmp.path().join("traces.jsonl")).unwrap_or_default();
    assert!(
        traces.contains("/items"),
        "spans of the other requests are exported (pass-through chosen)"
    );
}

#[test]
fn more_sampler_calls_hanging_at_once_than_runtime_workers_leave_the_service_answering_and_stoppable()
 {
    let tmp = setup();
    let (running, stderr) = start(under_faulty(tmp.path(), "faulty_sampler_hang"));
    let addr = running.addr.clone();
    // Tokio's default runtime has one worker per core: two more hanging requests than that, all at once. The
    // sampler never returns for a span whose url.path says "hang".
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hanging = workers + 2;
    let (answered_tx, answered_rx) = std::sync::mpsc::channel();
    for _ in 0..hanging {
        let (addr, answered) = (addr.clone(), answered_tx.clone());
        std::thread::spawn(move || {
            if client::request(&addr, "GET", "/hang", &[], None).is_ok() {
                let _ = answered.send(());
            }
        });
    }
    // At most one fewer than the workers are held by the sampler; every other hanging request is answered (its
    // span decided by the fallback). Wait for those answers: events, with a generous deadline.
    let held = workers.saturating_sub(1).max(1);
    for n in 0..hanging - held {
        answered_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("only {n} of the hanging requests were answered"));
    }
    for _ in 0..20 {
        let r = client::request(&addr, "GET", "/items", &[], None).unwrap();
        assert_eq!(r.status, 200);
    }
    let (ok, took) = stop(running);
    let stderr = stderr.join().unwrap();
    assert!(ok, "the service exits cleanly: {stderr}");
    // Bounded: the drain (1 s), the runtime's second, the shutdown budget, and slack for a busy machine.
    assert!(
        took < Duration::from_secs(60),
        "SIGTERM took {took:?}: {stderr}"
    );
    assert!(
        stderr.contains("sampler of distro faulty_sampler_hang was not called"),
        "the calls that found no room are reported: {stderr}"
    );
    let traces = std::fs::read_to_string(tmp.path().join("traces.jsonl")).unwrap_or_default();
    assert!(traces.contains("/items"), "the other requests are traced");
}

#[test]
fn sigterm_against_a_collector_that_never_answers_ends_in_bounded_time_and_says_what_was_lost() {
    let tmp = setup();
    let (ok, took, stderr) =
        against_a_silent_collector(tmp.path(), 5, &[("OTEL_RUST_SHUTDOWN_TIMEOUT", "2000")]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("shutdown did not return within 2s"),
        "the deadline is reported: {stderr}"
    );
    assert!(
        stderr.contains("were not delivered"),
        "what was lost is said: {stderr}"
    );
    // Bounded: 2 s of shutdown budget plus start-up slack on a busy machine — not the 25 s of before.
    assert!(took < Duration::from_secs(20), "SIGTERM took {took:?}");
}

/// A collector that never answers holds the batch thread, so the span queue fills: the spans past it are dropped,
/// said once when it starts and counted at shutdown, with the setting to raise; the service answers throughout.
#[test]
fn a_full_span_queue_drops_spans_and_says_so_once_and_in_total() {
    let tmp = setup();
    // Each request ends at least two spans; the queue holds two of them, the one in flight included.
    let (ok, _, stderr) = against_a_silent_collector(
        tmp.path(),
        10,
        &[
            // The export in flight stays stuck for the whole test, however slow the machine.
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "600000"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "2"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1"),
            ("OTEL_RUST_SHUTDOWN_TIMEOUT", "1000"),
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        stderr.matches("the span queue is full (2 spans)").count(),
        1,
        "said once: {stderr}"
    );
    let total = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("ndotel: ")?
                .strip_suffix(
                    " span(s) were dropped because the span queue was full; raise \
                     OTEL_BSP_MAX_QUEUE_SIZE or lower OTEL_BSP_SCHEDULE_DELAY",
                )?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("the total is said: {stderr}"));
    assert!(total >= 18, "{total} dropped: {stderr}");
}

/// With no collector at the endpoint, the OpenTelemetry libraries' export errors are not repeated on every attempt:
/// each is shown at most once a minute, after the one start-up line that says where spans go.
#[test]
fn a_missing_collector_is_reported_without_repeating_itself() {
    use std::io::Read as _;
    let tmp = ndotel_tests::setup();
    ndotel_tests::build_artifacts();
    let stderr_path = tmp.path().join("stderr.log");
    let mut cmd = std::process::Command::new(ndotel_tests::profile_dir().join("app"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(tmp.path())
        .env("OTEL_RUST_DISTRO", "sdk")
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_METRICS_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "50")
        .env("APP_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}?mode=rwc", tmp.path().join("app.db").display()),
        )
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    let app = app::harness::start(cmd).unwrap();
    // Wait for the first failure (an event), then for about 20 more collection intervals. The assertion is an upper
    // bound, so a slow machine (fewer attempts) cannot make it fail; without the de-duplication a normal one shows
    // a line per attempt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut text = String::new();
        std::fs::File::open(&stderr_path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        if text.contains("ExportError") || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(20 * 50));
    assert!(app.terminate().unwrap());
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        text.contains("ndotel: distro sdk; spans: otlp → http://127.0.0.1:9/v1/traces"),
        "{text}"
    );
    let errors = text.lines().filter(|l| l.contains("ExportError")).count();
    assert!(
        (1..=4).contains(&errors),
        "{errors} export error lines:\n{text}"
    );
}
