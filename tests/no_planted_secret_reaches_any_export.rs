//! The redaction promise, tried as an attacker would: a table of hostile HTTP requests to the example service
//! under the `otel_custom_distro` plugin (secrets split, encoded, in the query, the path, the Host header, the
//! User-Agent, and in a rejected item's name that the service quotes in an exception event and the status
//! message, or stores in its database), then no planted secret may appear in the file export, in what the rotel
//! collector received over OTLP, in the metrics, or on stderr. And metric series carrying secrets are redacted
//! before any metric exporter sees them.
#![allow(clippy::unwrap_used)] // a test fails loudly

use app::{client, harness};
use ndotel_tests::{
    app_under_ndotel, build_artifacts, output, plugin_dir, read_jsonl, rotel_agent, rotel_log,
    setup, start_rotel, workload,
};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Card numbers (all pass Luhn) planted in different groupings.
const CARDS: [&str; 5] = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "4012888888881881",
    "6011111111111117",
];

/// One hostile request: method, target, extra headers, body.
type Request = (
    &'static str,
    String,
    Vec<(&'static str, String)>,
    Option<String>,
);

/// The hostile requests; every `SECnn` marker is a secret.
fn corpus() -> Vec<Request> {
    let get = |target: &str| ("GET", target.to_string(), Vec::new(), None);
    let reject = |name: &str| {
        let body = serde_json::json!({ "name": name, "price": -1 }).to_string();
        ("POST", "/items".to_string(), Vec::new(), Some(body))
    };
    vec![
        // First, the request that used to switch redaction off for everyone: a 64 KiB User-Agent of `pw=pw=…` (on
        // every SERVER span) made the key=value scanner quadratic, the watchdog bypassed the processor, and every
        // later span was dropped. Every request below must still be exported, redacted.
        (
            "GET",
            "/items".to_string(),
            vec![("User-Agent", "pw=".repeat(21_800))],
            None,
        ),
        // Tabs around separators, newer key names and token formats.
        get("/items?q=password:%09SEC32"),
        (
            "GET",
            "/items".to_string(),
            vec![("User-Agent", "agent password:\tSEC33".to_string())],
            None,
        ),
        get("/items?note=passcode%3DSEC34&k=sk_live_SEC35abcdefghijk"),
        // Query strings split and encoded every which way.
        get("/items?q=a?b&password=SEC01"),
        get("/items?a=1;pwd=SEC02"),
        get("/items?%70assword=SEC03&%61pi%2Dkey=SEC04"),
        get("/items?q=password%3DSEC05"),
        get("/items?q=password%253DSEC06"),
        get("/items?next=%2Flogin%3Fuser%3Dal%26token%3DSEC07"),
        get("/items?h=Bearer%20SEC08tok&auth=Basic+U0VDMDk6eA%3D%3D"),
        get("/items?API_KEY=SEC10&X-Api-Key=SEC11&sessionId=SEC12&access_token=SEC13"),
        get("/items?card=4111+1111+1111+1111&c2=5555%205555%205555%204444&c3=3782.822463.10005"),
        get("/items?to=jane.doe%40example.com&cc=SEC14%2540corp.example"),
        get("/items?jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUMxNSJ9.SEC15sig"),
        // The path: matrix parameters and an address.
        get("/items;jsessionid=SEC16"),
        get("/users/SEC17%40example.com"),
        // Headers the service records.
        (
            "GET",
            "/items".to_string(),
            vec![(
                "User-Agent",
                "curl/8 token=SEC18 Bearer SEC19tok".to_string(),
            )],
            None,
        ),
        (
            "GET",
            "/items".to_string(),
            vec![("Authorization", "Bearer SEC20tok".to_string())],
            None,
        ),
        // Secrets in a rejected item's name: quoted by the service in an exception event and the status message.
        reject("pay 4012 8888 8888 1881 now"),
        reject("mail SEC21@corp.example"),
        reject("Bearer SEC22tok"),
        reject("t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUMyMyJ9.SEC23sig"),
        reject("-----BEGIN RSA PRIVATE KEY-----\nSEC24\n-----END RSA PRIVATE KEY-----"),
        reject(r#"{"password": "SEC25"}"#),
        reject("token: SEC26, api_key=SEC27"),
        reject("https://al:SEC28@db.internal/x"),
        reject("card 6011-1111-1111-1117"),
        // A secret stored in the database and read back.
        (
            "POST",
            "/items".to_string(),
            Vec::new(),
            Some(r#"{"name":"password=SEC29","price":1}"#.to_string()),
        ),
    ]
}

/// A request whose Host header or absolute-form target carries userinfo, written by hand: the client puts the real
/// address in `Host`.
fn raw_request(addr: &str, request_line: &str, host: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{request_line}\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Whether `text` shows any planted secret: a `SECnn` marker, a card number in any grouping, the planted address.
fn leaked(text: &str) -> Vec<String> {
    let mut found: Vec<String> = (1..=35)
        .map(|i| format!("SEC{i:02}"))
        .filter(|m| text.contains(m.as_str()))
        .collect();
    // Cards: look in the text with every separator taken out.
    let squashed: String = text
        .replace("%20", "")
        .chars()
        .filter(|c| !matches!(c, ' ' | '+' | '.' | '-' | '_'))
        .collect();
    found.extend(
        CARDS
            .iter()
            .filter(|c| squashed.contains(*c))
            .map(|c| c.to_string()),
    );
    for address in ["jane.doe@example.com", "jane.doe%40example.com"] {
        if text.contains(address) {
            found.push(address.to_string());
        }
    }
    found
}

#[test]
fn hostile_requests_to_the_service_leak_no_secret_to_any_export() {
    build_artifacts();
    let tmp = setup();
    let collector = rotel_agent().map(|bin| {
        let dir = tmp.path().join("rotel");
        std::fs::create_dir_all(&dir).unwrap();
        let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rotel/capture.py");
        start_rotel(&bin, &dir, Some(&capture))
    });
    let exporters = if collector.is_some() {
        "file,otlp"
    } else {
        "file"
    };
    let plugins = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let stderr = std::fs::File::create(tmp.path().join("stderr.log")).unwrap();
    let mut cmd = app_under_ndotel(
        tmp.path(),
        &[
            "--distro",
            "otel_custom_distro",
            "--traces-exporter",
            exporters,
            "--metrics-exporter",
            exporters,
            "--logs-exporter",
            exporters,
            "--service-name",
            "corpus",
        ],
    );
    cmd.env("OTEL_RUST_DISTRO_PATH", plugins)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "500")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "65536")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .stderr(stderr);
    if let Some(c) = &collector {
        cmd.env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", c.http),
        );
    }
    let app = harness::start(cmd).unwrap();

    let corpus = corpus();
    for (method, target, headers, body) in &corpus {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = client::request(&app.addr, method, target, &headers, body.as_deref()).unwrap();
        assert!(r.status < 500, "{method} {target}: {}", r.status);
    }
    // Userinfo in the Host header and in an absolute-form request target.
    let host_attack = raw_request(&app.addr, "GET /items HTTP/1.1", "al:SEC30@localhost");
    let absolute = raw_request(
        &app.addr,
        &format!("GET http://al:SEC31@{}/items?x=1 HTTP/1.1", app.addr),
        &app.addr,
    );
    for r in [&host_attack, &absolute] {
        assert!(r.starts_with("HTTP/1.1"), "{r}");
    }
    // Let one metric collection happen with every series recorded, then stop (which flushes everything).
    std::thread::sleep(Duration::from_millis(800));
    assert!(app.terminate().unwrap(), "the service exits cleanly");

    let traces = std::fs::read_to_string(tmp.path().join("traces.jsonl")).unwrap();
    let metrics = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
    let logs = std::fs::read_to_string(tmp.path().join("logs.jsonl")).unwrap();
    let stderr = std::fs::read_to_string(tmp.path().join("stderr.log")).unwrap();
    // The requests did arrive and were recorded (a test that sees nothing proves nothing).
    let server_spans = traces.matches("\"kind\":2").count();
    assert!(
        server_spans >= corpus.len(),
        "{server_spans} SERVER spans for {} requests",
        corpus.len()
    );
    assert!(traces.contains("[REDACTED]") && traces.contains("rejected item"));
    assert!(metrics.contains("http.server.request.duration"));
    // The service logs every query string it lists items for (body and attribute), secrets and all.
    let logged = logs.matches("listing items for query").count();
    assert!(
        logged >= 10 && logs.contains("[REDACTED]"),
        "{logged} records: {logs}"
    );
    assert!(stderr.contains("listing items for query"), "{stderr}");
    for (what, text) in [
        ("the file trace export", &traces),
        ("the file metric export", &metrics),
        ("the file log export", &logs),
        ("stderr", &stderr),
    ] {
        let found = leaked(text);
        assert!(found.is_empty(), "{found:?} reached {what}:\n{text}");
    }

    if let Some(c) = &collector {
        // Wait until the collector has every SERVER span the file got.
        let deadline = Instant::now() + Duration::from_secs(30);
        let spans = loop {
            let spans = read_jsonl(&c.out.join("spans.jsonl"));
            if spans.iter().filter(|s| s["kind"] == 2).count() >= server_spans {
                break spans;
            }
            assert!(
                Instant::now() < deadline,
                "rotel got {} of {server_spans} SERVER spans\n{}",
                spans.len(),
                rotel_log(&c.out)
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let received = serde_json::to_string(&spans).unwrap();
        assert!(received.contains("[REDACTED]") && received.contains("rejected item"));
        let metrics = std::fs::read_to_string(c.out.join("metrics.jsonl")).unwrap_or_default();
        assert!(
            metrics.contains("http.server.request.duration") && metrics.contains("\"http.route\""),
            "{metrics}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let logs = loop {
            let records = read_jsonl(&c.out.join("logs.jsonl"));
            let listed = records
                .iter()
                .filter(|l| {
                    l["body"]
                        .as_str()
                        .is_some_and(|b| b.starts_with("listing items"))
                })
                .count();
            if listed >= logged {
                break serde_json::to_string(&records).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "rotel got {listed} of {logged} log records\n{}",
                rotel_log(&c.out)
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        for (what, text) in [
            ("rotel's spans", &received),
            ("rotel's metrics", &metrics),
            ("rotel's logs", &logs),
        ] {
            let found = leaked(text);
            assert!(found.is_empty(), "{found:?} reached {what}:\n{text}");
        }
    }
}

#[test]
fn metric_series_carrying_secrets_are_redacted_before_any_metric_exporter() {
    for bin in ["workload_static", "workload_dynamic"] {
        let tmp = setup();
        let mut cmd = workload(bin, tmp.path());
        if bin == "workload_dynamic" {
            cmd.env(
                "OTEL_RUST_DISTRO_PATH",
                plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]),
            );
        }
        let (ok, stdout, stderr) = output(
            cmd.env("OTEL_RUST_DISTRO", "otel_custom_distro")
                .env("WORKLOAD_SECRETS", "1")
                .env("OTEL_TRACES_EXPORTER", "file")
                .env("OTEL_METRICS_EXPORTER", "file,custom_file")
                .env("OTEL_EXPORTER_FILE_TRACES_PATH", "traces.jsonl")
                .env("OTEL_EXPORTER_FILE_METRICS_PATH", "metrics.jsonl"),
        );
        assert!(
            ok && stdout.contains("telemetry: on") && stdout.contains("faults: 0"),
            "{bin}: {stdout}{stderr}"
        );
        for file in ["metrics.jsonl", "custom-metrics.jsonl", "traces.jsonl"] {
            let text = std::fs::read_to_string(tmp.path().join(file))
                .unwrap_or_else(|e| panic!("{bin}: {file}: {e}\n{stdout}{stderr}"));
            assert!(
                !text.contains("hunter2") && !leaked(&text).iter().any(|c| c == CARDS[0]),
                "{bin}: a secret reached {file}:\n{text}"
            );
        }
        let metrics = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
        // The series are there, redacted, with their clean attributes intact.
        for expected in [
            "workload.logins",
            "workload.sessions",
            "token=[REDACTED]",
            "[REDACTED]@db",
            "/login",
        ] {
            assert!(
                metrics.contains(expected),
                "{bin}: no {expected:?} in\n{metrics}"
            );
        }
    }
}
