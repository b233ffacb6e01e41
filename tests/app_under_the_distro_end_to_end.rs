//! The example service as a child process under `ndotel run` with the `otel_custom_distro` plugin, exporting
//! through the file exporter, on SQLite and (when `NDOTEL_TEST_MYSQL_URL` is set) on real MariaDB/MySQL.
#![allow(clippy::unwrap_used)] // a test fails loudly

use app::otlp_json::{self, Span};
use app::{client, harness};
use ndotel_tests::{app_under_ndotel, plugin_dir, setup};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const SERVER: i64 = 2;
const CLIENT: i64 = 3;

/// The service under the reference distro, `tracing` spans bridged by `bridge` (`OTEL_RUST_TRACING_BRIDGE`).
fn start(dir: &Path, database_url: &str, bridge: &str) -> harness::Running {
    let plugins = plugin_dir(dir, "plugins", &["otel_custom_distro"]);
    let mut cmd = app_under_ndotel(
        dir,
        &[
            "--distro",
            "otel_custom_distro",
            "--traces-exporter",
            "file",
            "--metrics-exporter",
            "file",
            "--service-name",
            "e2e",
        ],
    );
    cmd.env("OTEL_RUST_DISTRO_PATH", plugins)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "500")
        // The test is about shutdown, not overload: a queue that cannot fill up keeps the SDK from dropping spans.
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "65536")
        .env("DATABASE_URL", database_url)
        .env("OTEL_RUST_TRACING_BRIDGE", bridge);
    harness::start_capturing_stderr(cmd).unwrap()
}

fn traceparent(i: u64) -> (String, String) {
    let trace_id = format!("{:016x}{:016x}", 0xabcdef_u64, i + 1);
    (
        trace_id.clone(),
        format!("00-{trace_id}-00f067aa0ba902b7-01"),
    )
}

/// The checks every database (and either `tracing` bridge) must pass.
fn scenario(database_url: &str, system: &str, bridge: &str) {
    let tmp = setup();
    let app = start(tmp.path(), database_url, bridge);
    let addr = app.addr.clone();
    let get = |path: &str, headers: &[(&str, &str)]| {
        client::request(&addr, "GET", path, headers, None).unwrap()
    };

    assert_eq!(get("/health", &[]).status, 200);
    let created = client::request(
        &addr,
        "POST",
        "/items",
        &[],
        Some(r#"{"name":"lamp","price":19.5}"#),
    )
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let list = get("/items", &[("Authorization", "Bearer e2e-s3cret-token")]);
    assert_eq!(list.status, 200);
    assert!(list.body.contains("lamp"));
    assert_eq!(get("/items?user=bob&password=e2e-hunter2", &[]).status, 200);
    let (trace_id, tp) = traceparent(7);
    assert_eq!(get("/items/1", &[("traceparent", tp.as_str())]).status, 200);
    assert_eq!(get("/items/424242", &[]).status, 404);
    // A rejected item: the app records the message, which quotes the input, as an exception event and as the
    // status message of the SERVER span. The distro must redact the secret in both before export.
    let rejected = client::request(
        &addr,
        "POST",
        "/items",
        &[],
        Some(r#"{"name":"token: e2e-event-s3cret, password=e2e-hunter3","price":-1}"#),
    )
    .unwrap();
    assert_eq!(rejected.status, 422, "{}", rejected.body);
    // A client choosing the host (absolute-form targets) and making up methods: recorded on spans, never as new
    // metric series.
    for i in 1..=30 {
        let target = format!("http://h{i}.attacker.example:{i}/items/424242");
        assert_eq!(get(&target, &[]).status, 404);
        let made_up = client::request(&addr, &format!("M{i:05}"), "/items", &[], None).unwrap();
        assert_eq!(made_up.status, 405);
        let scheme = format!("sch{i}://x/items/424242");
        assert_eq!(get(&scheme, &[]).status, 404);
    }
    std::thread::sleep(Duration::from_millis(800)); // at least one metric collection
    assert!(
        app.terminate().unwrap(),
        "the service exits cleanly on SIGTERM"
    );

    let spans = otlp_json::spans(&tmp.path().join("traces.jsonl")).unwrap();
    // /health: no span at all, and so no child either.
    assert!(
        !spans.iter().any(|s| s.attr("url.path") == Some("/health")),
        "a /health span was exported"
    );
    let health_traces: Vec<&Span> = spans.iter().filter(|s| s.name.contains("health")).collect();
    assert!(health_traces.is_empty(), "{health_traces:?}");

    // GET /items: one trace, a SERVER span with semantic-convention attributes, CLIENT DB span(s) under it.
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.kind == SERVER
                && s.attr("http.route") == Some("/items")
                && s.attr("http.request.method") == Some("GET")
        })
        .collect();
    assert_eq!(servers.len(), 2, "two GET /items requests");
    for server in &servers {
        assert_eq!(server.attr("http.response.status_code"), Some("200"));
        assert!(
            server.attr("server.address").is_some() && server.attr("url.path") == Some("/items")
        );
        assert_eq!(server.attr("url.scheme"), Some("http"), "{server:?}");
        let children: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == server.span_id)
            .collect();
        assert!(!children.is_empty(), "no DB span under {server:?}");
        for c in children {
            assert_eq!(c.kind, CLIENT);
            assert_eq!(c.trace_id, server.trace_id);
            assert_eq!(c.attr("db.system.name"), Some(system));
            assert_eq!(c.attr("db.operation.name"), Some("SELECT"));
            assert_eq!(
                c.attr("db.query.text"),
                Some("SELECT id, name, price FROM items WHERE deleted = ? ORDER BY id LIMIT ?")
            );
        }
    }

    // The incoming traceparent is continued.
    let continued = spans
        .iter()
        .find(|s| s.kind == SERVER && s.trace_id == trace_id)
        .expect("traceparent not continued");
    assert_eq!(continued.parent_span_id, "00f067aa0ba902b7");
    assert!(spans.iter().any(|s| s.kind == CLIENT
        && s.trace_id == trace_id
        && s.parent_span_id == continued.span_id));

    // Nothing secret anywhere in what was exported.
    let exported = std::fs::read_to_string(tmp.path().join("traces.jsonl")).unwrap()
        + &std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
    for secret in [
        "e2e-s3cret-token",
        "e2e-hunter2",
        "'lamp'",
        "e2e-event-s3cret",
        "e2e-hunter3",
    ] {
        assert!(!exported.contains(secret), "{secret} reached the export");
    }
    assert!(exported.contains("password=[REDACTED]"));
    // The rejected item's event and status message are there, redacted rather than dropped.
    let rejected_span = spans
        .iter()
        .find(|s| s.kind == SERVER && s.attr("http.response.status_code") == Some("422"))
        .expect("the rejected POST /items span");
    let raw: Vec<serde_json::Value> = ndotel_tests::read_jsonl(&tmp.path().join("traces.jsonl"));
    let span_json = raw
        .iter()
        .flat_map(|r| r["resourceSpans"].as_array().into_iter().flatten())
        .flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten())
        .flat_map(|s| s["spans"].as_array().into_iter().flatten())
        .find(|s| s["spanId"].as_str() == Some(rejected_span.span_id.as_str()))
        .expect("the rejected span's JSON");
    let event = span_json["events"][0].to_string();
    let status = span_json["status"]["message"].as_str().unwrap_or_default();
    for text in [event.as_str(), status] {
        assert!(
            text.contains("rejected item")
                && text.contains("token: [REDACTED]")
                && text.contains("password=[REDACTED]"),
            "{text}"
        );
    }

    let made_up: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SERVER && s.attr("http.request.method_original").is_some())
        .collect();
    assert_eq!(made_up.len(), 30, "one SERVER span per made-up method");
    for s in &made_up {
        assert_eq!(s.attr("http.request.method"), Some("_OTHER"), "{s:?}");
    }
    assert!(
        spans
            .iter()
            .any(|s| s.attr("server.address") == Some("h7.attacker.example")
                && s.attr("server.port") == Some("7")),
        "the host a client named is on its span"
    );
    let last_metrics = ndotel_tests::read_jsonl(&tmp.path().join("metrics.jsonl"))
        .pop()
        .expect("a metrics export");
    let text = last_metrics.to_string();
    assert!(
        !text.contains("attacker.example") && !text.contains("M00001") && !text.contains("sch1"),
        "a client's host, method or scheme became a metric label"
    );
    let duration_points = last_metrics["resourceMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["scopeMetrics"].as_array().into_iter().flatten())
        .flat_map(|s| s["metrics"].as_array().into_iter().flatten())
        .filter(|m| m["name"] == "http.server.request.duration")
        .flat_map(|m| {
            m["histogram"]["dataPoints"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .count();
    assert!(
        duration_points <= 10,
        "{duration_points} series of http.server.request.duration for 8 kinds of request"
    );

    let metrics = otlp_json::last_metrics(&tmp.path().join("metrics.jsonl")).unwrap();
    for name in [
        "http.server.request.duration",
        "db.client.connection.count",
        "process.cpu.time",
        "process.memory.usage",
    ] {
        assert!(
            metrics.iter().any(|(n, points)| n == name && *points > 0),
            "{name} missing from {metrics:?}"
        );
    }
}

/// SIGTERM during load: every request that got a response has its SERVER span in the file.
fn shutdown_under_load(database_url: &str) {
    let tmp = setup();
    let app = start(tmp.path(), database_url, "ndotel");
    let addr = Arc::new(app.addr.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (trace_id, tp) = traceparent(w * 1_000_000 + i);
                    let path = if i % 3 == 0 { "/slow?ms=150" } else { "/items" };
                    if let Ok(r) =
                        client::request(&addr, "GET", path, &[("traceparent", &tp)], None)
                        && r.status == 200
                    {
                        answered.push(trace_id);
                    }
                    i += 1;
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    let terminated = std::thread::spawn(move || app.terminate());
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let answered: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(terminated.join().unwrap().unwrap(), "clean exit");
    assert!(answered.len() > 10, "the load ran: {}", answered.len());
    let spans = otlp_json::spans(&tmp.path().join("traces.jsonl")).unwrap();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|t| !spans.iter().any(|s| s.kind == SERVER && &s.trace_id == *t))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no SERVER span",
        missing.len(),
        answered.len()
    );
}

/// A SQLite database in a directory of its own, removed when the returned guard is dropped.
fn sqlite_db() -> (tempfile::TempDir, String) {
    let dir = setup();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("app.db").display());
    (dir, url)
}

#[test]
fn sqlite_requests_are_traced_redacted_and_health_checks_dropped() {
    let (_db, url) = sqlite_db();
    scenario(&url, "sqlite", "ndotel");
}

#[test]
fn the_same_spans_come_through_tracing_opentelemetry_as_the_bridge() {
    let (_db, url) = sqlite_db();
    scenario(&url, "sqlite", "tracing-opentelemetry");
}

#[test]
fn sqlite_sigterm_under_load_loses_no_answered_request() {
    let (_db, url) = sqlite_db();
    shutdown_under_load(&url);
}

/// The MariaDB/MySQL URL, or a loud skip message.
fn mysql_url() -> Option<String> {
    match std::env::var("NDOTEL_TEST_MYSQL_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            ndotel_tests::skip_service(
                "NDOTEL_TEST_MYSQL_URL is not set; the MariaDB/MySQL end-to-end tests did not run",
            );
            None
        }
    }
}

#[test]
fn mysql_requests_are_traced_redacted_and_health_checks_dropped() {
    if let Some(url) = mysql_url() {
        scenario(&url, "mysql", "ndotel");
    }
}

#[test]
fn mysql_sigterm_under_load_loses_no_answered_request() {
    if let Some(url) = mysql_url() {
        shutdown_under_load(&url);
    }
}
