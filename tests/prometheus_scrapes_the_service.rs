//! `OTEL_METRICS_EXPORTER=prometheus`: the example service under the `.so` distro serves `/metrics`; `promtool`
//! parses the exposition; a real Prometheus server (Debian's package) scrapes the service and answers a query for
//! its request-duration histogram; hostile requests to the endpoint get error statuses and leave it serving; a
//! port already in use is one clear start-up error and the service runs on.
#![allow(clippy::unwrap_used)] // a test fails loudly

use app::{client, harness};
use ndotel_tests::{app_under_ndotel, free_port, plugin_dir, setup, skip_service};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip_service(&format!("{name} not found (apt-get install prometheus)"));
    }
    found
}

fn start(dir: &Path, metrics_port: u16, stderr: &Path) -> harness::Running {
    let plugins = plugin_dir(dir, "plugins", &["otel_custom_distro"]);
    let mut cmd = app_under_ndotel(
        dir,
        &[
            "--distro",
            "otel_custom_distro",
            "--traces-exporter",
            "none",
            "--logs-exporter",
            "none",
            "--metrics-exporter",
            "prometheus",
            "--service-name",
            "scraped",
        ],
    );
    cmd.env("OTEL_RUST_DISTRO_PATH", plugins)
        .env("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
        .env("OTEL_EXPORTER_PROMETHEUS_PORT", metrics_port.to_string())
        .stderr(std::fs::File::create(stderr).unwrap());
    harness::start(cmd).unwrap()
}

/// Sends `raw` to `addr` and returns what came back (the endpoint closes the connection after answering).
fn raw(addr: &str, raw: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(raw);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A Prometheus server scraping `target` every second; killed on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_the_service_and_promtool_accepts_the_exposition() {
    let (Some(promtool), Some(prometheus)) = (tool("promtool"), tool("prometheus")) else {
        return;
    };
    let tmp = setup();
    let metrics_port = free_port();
    let app = start(tmp.path(), metrics_port, &tmp.path().join("stderr.log"));
    for path in [
        "/items",
        "/items?user=al&password=prom-s3cret",
        "/items/404",
    ] {
        client::request(&app.addr, "GET", path, &[], None).unwrap();
    }
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let scrape = client::request(&metrics_addr, "GET", "/metrics", &[], None).unwrap();
    assert_eq!(scrape.status, 200);
    let body = scrape.body;
    assert!(
        body.contains("http_server_request_duration_seconds_bucket{")
            && body.contains("http_route=\"/items\""),
        "{body}"
    );
    assert!(!body.contains("prom-s3cret"), "{body}");

    // promtool parses it (exit 1 is a parse error); its only lint is about a name the semantic conventions chose.
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(matches!(out.status.code(), Some(0 | 3)), "{said}");
    for line in said.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.starts_with("db_client_connection_count "), "{said}");
    }

    // Hostile requests: each gets an error status, and the endpoint serves the next scrape.
    assert!(raw(&metrics_addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    assert!(raw(&metrics_addr, b"GET /../etc/passwd HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(raw(&metrics_addr, &[b'A'; 20_000]).starts_with("HTTP/1.1 400"));
    assert!(raw(&metrics_addr, b"\xff\xfe\r\n\r\n").starts_with("HTTP/1.1 400"));
    // Clients dripping their heads a byte at a time, for ever, one per scrape slot: each is turned away (one
    // deadline for the whole head, and for the drain after the answer), and a scrape is served while they still
    // drip.
    let drips: Vec<_> = (0..8)
        .map(|_| {
            let drip = std::net::TcpStream::connect(&metrics_addr).unwrap();
            let mut writer = drip.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = writer.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ");
                while writer.write_all(b"a").is_ok() {
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
            drip
        })
        .collect();
    let mut turned_away = 0;
    for drip in &drips {
        drip.set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut answer = String::new();
        let read = (&*drip).read_to_string(&mut answer);
        // 400 from a slot whose head deadline passed; 503 (or a reset: that answer does not read the request) when
        // every slot was still busy, draining the hostile requests above. Never a read that times out.
        match read {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            _ if answer.starts_with("HTTP/1.1 503") => {}
            _ => {
                assert!(answer.starts_with("HTTP/1.1 400"), "{read:?} {answer:?}");
                turned_away += 1;
            }
        }
    }
    assert!(turned_away > 0, "no dripping client got a scrape slot");
    // Until the drains end, a scrape may meet a full house (503, or a reset: the busy answer does not read the
    // request).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = client::request(&metrics_addr, "GET", "/metrics", &[], None).map(|r| r.status);
        if matches!(status, Ok(200)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dripping clients kept every slot: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for drip in drips {
        let _ = drip.shutdown(std::net::Shutdown::Both);
    }
    let again = client::request(&metrics_addr, "GET", "/metrics", &[], None).unwrap();
    assert_eq!(again.status, 200);
    // Many more clients that connect and send nothing than there are places: a scrape is still answered at once
    // (each new connection closes the one that has waited longest), not after their heads' deadline.
    let idle: Vec<_> = (0..40)
        .map(|_| std::net::TcpStream::connect(&metrics_addr).unwrap())
        .collect();
    let amid = client::request(&metrics_addr, "GET", "/metrics", &[], None).unwrap();
    assert_eq!(amid.status, 200, "idle connections kept the scraper out");
    drop(idle);

    // A second instance asking for the same port: one clear error, and the service runs anyway.
    let second_dir = tmp.path().join("second");
    std::fs::create_dir_all(&second_dir).unwrap();
    let second_err = second_dir.join("stderr.log");
    let second = start(&second_dir, metrics_port, &second_err);
    assert_eq!(
        client::request(&second.addr, "GET", "/items", &[], None)
            .unwrap()
            .status,
        200
    );
    assert!(second.terminate().unwrap());
    let err = std::fs::read_to_string(&second_err).unwrap();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("Prometheus")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(&format!("127.0.0.1:{metrics_port}"))
            && lines[0].contains("OTEL_EXPORTER_PROMETHEUS_PORT"),
        "{err}"
    );

    // A real Prometheus server scrapes the service and answers a query for the histogram.
    let web_port = free_port();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: scraped\n    static_configs:\n      \
             - targets: ['{metrics_addr}']\n"
        ),
    )
    .unwrap();
    let _server = Server(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let web = format!("127.0.0.1:{web_port}");
    let query = "/api/v1/query?query=http_server_request_duration_seconds_count%7Bhttp_route%3D%22%2Fitems%22%7D";
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = client::request(&web, "GET", query, &[], None).ok();
        if let Some(a) = &answer
            && a.status == 200
            && a.body.contains("\"result\":[{")
        {
            assert!(a.body.contains("\"job\":\"scraped\""), "{}", a.body);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had the histogram: {answer:?}\n{}",
            std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(app.terminate().unwrap());
}
