//! Traces, metrics and logs reach a real OTLP collector — rotel, from PyPI — over gRPC and over HTTP/protobuf, from the
//! host's built-in `otlp` exporters and from the distro's `custom_otlp` metric exporter. rotel's Python processor
//! hook (`fixtures/rotel/capture.py`) writes what it received; the test asserts on span names, resource,
//! redaction and the absence of health checks.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{
    Collector, output, plugin_dir, read_jsonl, rotel_agent, rotel_log as log, setup, start_rotel,
    workload,
};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits until `file` in the collector's output satisfies `done`.
fn wait_for(c: &Collector, file: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = read_jsonl(&c.out.join(file));
        if done(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{file} never got what was expected: {records:#?}\n{}",
            log(&c.out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_workload(dir: &Path, env: &[(&str, String)]) {
    let plugins = plugin_dir(dir, "plugins", &["otel_custom_distro"]);
    let mut cmd = workload("workload_dynamic", dir);
    cmd.env("OTEL_RUST_DISTRO_PATH", plugins)
        .env("OTEL_RUST_DISTRO", "otel_custom_distro")
        .env("OTEL_SERVICE_NAME", "rotel-e2e")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (ok, stdout, stderr) = output(&mut cmd);
    assert!(ok && stdout.contains("faults: 0"), "{stdout}\n{stderr}");
}

fn capture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rotel/capture.py")
}

fn assert_received_spans(c: &Collector) {
    let spans = wait_for(c, "spans.jsonl", |s| {
        s.iter().filter(|s| s["name"] == "SELECT items").count() >= 3
    });
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "GET /items").count(),
        3,
        "{names:?}"
    );
    assert!(names.contains(&"direct api span"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("health") || *n == "SELECT 1"),
        "health checks must not arrive: {names:?}"
    );
    for s in spans.iter().filter(|s| s["name"] == "GET /items") {
        assert_eq!(
            s["attributes"]["http.request.header.authorization"], "[REDACTED]",
            "{s}"
        );
        assert_eq!(s["resource"]["deployment.environment.name"], "development");
        assert_eq!(s["resource"]["service.name"], "rotel-e2e");
        assert_eq!(s["resource"]["telemetry.distro.name"], "otel_custom_distro");
    }
    let everything = std::fs::read_to_string(c.out.join("spans.jsonl")).unwrap();
    assert!(
        !everything.contains("s3cr3t-t0ken"),
        "the bearer token reached the collector"
    );
}

fn assert_received_metric(c: &Collector) {
    let metrics = wait_for(c, "metrics.jsonl", |m| {
        m.iter().any(|m| m["name"] == "workload.requests")
    });
    let m = metrics
        .iter()
        .find(|m| m["name"] == "workload.requests")
        .unwrap();
    assert_eq!(m["resource"]["service.name"], "rotel-e2e");
}

fn assert_received_log(c: &Collector) {
    let logs = wait_for(c, "logs.jsonl", |l| {
        l.iter().any(|l| l["body"] == "workload done")
    });
    let l = logs.iter().find(|l| l["body"] == "workload done").unwrap();
    assert_eq!(l["severity"], "INFO");
    assert_eq!(l["attributes"]["orders"], 3);
    assert_eq!(l["resource"]["service.name"], "rotel-e2e");
}

/// All three signals through the host's built-in `otlp` exporters with `protocol`, to the collector's `port`.
fn all_signals_reach_rotel(protocol: &str, port: fn(&Collector) -> u16, extra: &[(&str, &str)]) {
    let Some(bin) = rotel_agent() else { return };
    let tmp = setup();
    let c = start_rotel(&bin, tmp.path(), Some(&capture()));
    let mut env = vec![("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string())];
    env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}", port(&c)),
    ));
    for signal in [
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_LOGS_EXPORTER",
    ] {
        env.push((signal, "otlp".into()));
    }
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    run_workload(tmp.path(), &env);
    assert_received_spans(&c);
    assert_received_metric(&c);
    assert_received_log(&c);
}

#[test]
fn traces_metrics_and_logs_reach_rotel_over_grpc() {
    all_signals_reach_rotel("grpc", |c| c.grpc, &[]);
}

#[test]
fn traces_metrics_and_logs_reach_rotel_over_http_protobuf() {
    all_signals_reach_rotel("http/protobuf", |c| c.http, &[]);
}

/// The setup a team writes by hand (opentelemetry-otlp's own span exporter behind the SDK's batch processor), kept
/// for comparison.
#[test]
fn opentelemetry_otlps_own_span_exporter_reaches_rotel_on_request() {
    let choice = [
        ("OTEL_RUST_OTLP_ENCODER", "opentelemetry-otlp"),
        ("OTEL_RUST_SPAN_QUEUE", "sdk"),
    ];
    all_signals_reach_rotel("grpc", |c| c.grpc, &choice);
    all_signals_reach_rotel("http/protobuf", |c| c.http, &choice);
}

/// The specification's rules that opentelemetry-otlp alone gets wrong or ignores: an empty per-signal variable is
/// unset (the generic endpoint still applies), `gzip` compression, headers and timeouts from the environment.
const SPEC_CASES: &[(&str, &str)] = &[
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", " "),
    ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", ""),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=ndotel,x-note=a%20b"),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "15000"),
];

#[test]
fn gzip_headers_and_empty_signal_variables_work_over_grpc() {
    all_signals_reach_rotel("grpc", |c| c.grpc, SPEC_CASES);
}

#[test]
fn gzip_headers_and_empty_signal_variables_work_over_http_protobuf() {
    all_signals_reach_rotel("http/protobuf", |c| c.http, SPEC_CASES);
}

/// Telemetry about telemetry never loops: with every library's debug events enabled, the events of the HTTP and
/// gRPC stacks and of the OpenTelemetry crates (each export makes some) are not exported as log records — only the
/// service's own are.
#[test]
fn the_export_paths_own_debug_events_are_never_exported_as_logs() {
    for (protocol, port) in [
        ("grpc", (|c| c.grpc) as fn(&Collector) -> u16),
        ("http/protobuf", |c| c.http),
    ] {
        let Some(bin) = rotel_agent() else { return };
        let tmp = setup();
        let c = start_rotel(&bin, tmp.path(), Some(&capture()));
        let mut env = vec![
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", port(&c)),
            ),
            ("OTEL_RUST_TRACING_FILTER", "debug".to_string()),
            ("OTEL_BLRP_SCHEDULE_DELAY", "50".to_string()),
        ];
        for signal in [
            "OTEL_TRACES_EXPORTER",
            "OTEL_METRICS_EXPORTER",
            "OTEL_LOGS_EXPORTER",
        ] {
            env.push((signal, "otlp".into()));
        }
        run_workload(tmp.path(), &env);
        assert_received_spans(&c);
        let logs = wait_for(&c, "logs.jsonl", |l| {
            l.iter().any(|l| l["body"] == "workload done")
        });
        let scopes: Vec<&str> = logs
            .iter()
            .map(|l| l["scope"].as_str().unwrap_or(""))
            .collect();
        for scope in &scopes {
            let krate = scope.split("::").next().unwrap_or(scope);
            assert!(
                !krate.starts_with("opentelemetry")
                    && ![
                        "hyper",
                        "hyper_util",
                        "h2",
                        "tonic",
                        "tower",
                        "reqwest",
                        "rustls",
                        "ndotel",
                        "tracing_opentelemetry"
                    ]
                    .contains(&krate),
                "{protocol}: an export-path event was exported as a log record: {scope} in {scopes:?}"
            );
        }
    }
}

#[test]
fn the_distros_own_otlp_metric_exporter_reaches_rotel() {
    let Some(bin) = rotel_agent() else { return };
    let tmp = setup();
    let c = start_rotel(&bin, tmp.path(), Some(&capture()));
    run_workload(
        tmp.path(),
        &[
            ("OTEL_TRACES_EXPORTER", "none".into()),
            ("OTEL_METRICS_EXPORTER", "custom_otlp".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", c.http),
            ),
        ],
    );
    assert_received_metric(&c);
}

/// PEM files made with the `openssl` command: a CA, a server certificate for `localhost`/127.0.0.1 and a client
/// certificate (CN `ndotel-test-client`), all signed by the CA; keys `chmod 600`.
fn make_certificates(dir: &Path) {
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .args(["-ec", script])
            .current_dir(dir)
            .output()
            .expect("the openssl command is needed (apt-get install openssl)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(r#"
        key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }
        key ca.key; key server.key; key client.key
        openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=ndotel-test-ca
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
        printf 'extendedKeyUsage=clientAuth\n' > client.ext
        for who in server client; do
          openssl req -new -key "$who.key" -out "$who.csr" -subj "/CN=ndotel-test-$who"
          openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile "$who.ext" -out "$who.pem" 2>/dev/null
        done
    "#);
}

/// A TLS proxy (`fixtures/tls/proxy.py`) that requires a client certificate, in front of `c`; returns its port.
struct Proxy(std::process::Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tls_proxy(c: &Collector, dir: &Path) -> (Proxy, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/proxy.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(dir)
        .args([c.grpc.to_string(), c.http.to_string()])
        .args(["server.pem", "server.key", "ca.pem"].map(|f| dir.join(f)))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(port) = std::fs::read_to_string(dir.join("port")) {
            return (Proxy(child), port.trim().parse().unwrap());
        }
        assert!(child.try_wait().unwrap().is_none(), "the TLS proxy exited");
        assert!(Instant::now() < deadline, "the TLS proxy never listened");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Traces go to an `https` endpoint through a proxy that demands a client certificate. With the CA and the client
/// certificate from `OTEL_EXPORTER_OTLP_{CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY}` they arrive; without the client
/// certificate, or without the CA (the system's roots do not know it), the handshake fails and nothing arrives, and
/// the service still runs to completion.
fn tls(protocol: &str, alpn: &str) {
    let Some(bin) = rotel_agent() else { return };
    let tmp = setup();
    make_certificates(tmp.path());
    let c = start_rotel(&bin, tmp.path(), Some(&capture()));
    let (_proxy, port) = start_tls_proxy(&c, tmp.path());
    let file = |f: &str| tmp.path().join(f).display().to_string();
    let base = |signal_vars: bool| {
        let endpoint = if signal_vars && protocol != "grpc" {
            format!("https://localhost:{port}/v1/traces")
        } else {
            format!("https://localhost:{port}")
        };
        vec![
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
            (
                if signal_vars {
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
                } else {
                    "OTEL_EXPORTER_OTLP_ENDPOINT"
                },
                endpoint,
            ),
            ("OTEL_TRACES_EXPORTER", "otlp".into()),
            ("OTEL_METRICS_EXPORTER", "none".into()),
            ("OTEL_LOGS_EXPORTER", "none".into()),
            // A refused export gives up sooner (the outcome does not depend on it).
            ("OTEL_RUST_SHUTDOWN_TIMEOUT", "2000".into()),
            (
                if signal_vars {
                    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
                } else {
                    "OTEL_EXPORTER_OTLP_CERTIFICATE"
                },
                file("ca.pem"),
            ),
        ]
    };
    let tls_log = || std::fs::read_to_string(tmp.path().join("tls.log")).unwrap_or_default();
    // The proxy logs a refused handshake after the exporter may already have given up: wait for the line.
    let wait_for_refusal = |why: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !tls_log().contains(why) {
            assert!(
                Instant::now() < deadline,
                "no {why:?} in the TLS log:\n{}",
                tls_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // No client certificate: refused by the proxy.
    run_workload(tmp.path(), &base(false));
    wait_for_refusal("PEER_DID_NOT_RETURN_A_CERTIFICATE");
    // The CA not given: the exporter does not trust the proxy (the proxy sees the exporter's alert).
    let mut no_ca = base(false);
    no_ca.pop();
    no_ca.push(("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", file("client.pem")));
    no_ca.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", file("client.key")));
    run_workload(tmp.path(), &no_ca);
    wait_for_refusal("UNKNOWN_CA");
    assert!(!tls_log().contains("accepted"), "{}", tls_log());
    assert!(
        read_jsonl(&c.out.join("spans.jsonl")).is_empty(),
        "nothing may arrive over a refused handshake"
    );
    // Everything given, per signal: the spans arrive over mutual TLS.
    let mut full = base(true);
    full.push((
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
        file("client.pem"),
    ));
    full.push(("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", file("client.key")));
    run_workload(tmp.path(), &full);
    assert_received_spans(&c);
    assert!(
        tls_log().contains(&format!("accepted ndotel-test-client {alpn}")),
        "{}",
        tls_log()
    );
}

#[test]
fn mutual_tls_with_the_specifications_certificate_variables_over_grpc() {
    tls("grpc", "h2");
}

#[test]
fn mutual_tls_with_the_specifications_certificate_variables_over_http_protobuf() {
    tls("http/protobuf", "-");
}
