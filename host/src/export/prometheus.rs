//! The `prometheus` metric exporter: `opentelemetry-prometheus` collects into a Prometheus registry, and a small
//! HTTP/1.1 server of ndotel's serves it at `http://OTEL_EXPORTER_PROMETHEUS_HOST:PORT/metrics` in the text
//! exposition format, as the specification describes the pull exporter. The server runs on its own threads (no
//! async runtime): one accepting, and one per scrape, at most [`MAX_SCRAPES`] at a time. Each request's head is
//! read within [`READ_TIMEOUT`] and [`MAX_HEAD`] bytes, so a client that sends nothing or too much costs a thread
//! for a bounded time, never the service.

use prometheus::Encoder as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Scrapes served at once; more get `503`.
const MAX_SCRAPES: usize = 8;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// The running endpoint; stops accepting when dropped.
#[derive(Debug)]
pub(crate) struct Endpoint {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Endpoint {
    /// Where it listens.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// The reader to add to the meter provider and its endpoint, listening on `host:port`; an error names the address
/// and the setting to change.
pub(crate) fn start(
    host: &str,
    port: u16,
) -> Result<(opentelemetry_prometheus::PrometheusExporter, Endpoint), String> {
    let listener = TcpListener::bind((host, port)).map_err(|e| {
        format!(
            "cannot serve Prometheus metrics on {host}:{port}: {e} (set OTEL_EXPORTER_PROMETHEUS_HOST / \
             OTEL_EXPORTER_PROMETHEUS_PORT)"
        )
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| format!("building the Prometheus exporter: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    std::thread::Builder::new()
        .name("ndotel-prometheus".into())
        .spawn(move || serve(listener, registry, stopping))
        .map_err(|e| format!("starting the Prometheus endpoint's thread: {e}"))?;
    Ok((reader, Endpoint { addr, stop }))
}

fn serve(listener: TcpListener, registry: prometheus::Registry, stop: Arc<AtomicBool>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut stream) = stream else {
            // Out of descriptors (EMFILE) fails every accept until some close: wait instead of spinning.
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_SCRAPES {
            busy.fetch_sub(1, Ordering::AcqRel);
            let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
            let _ = respond(
                &mut stream,
                "503 Service Unavailable",
                "too many scrapes at once\n",
            );
            continue;
        }
        let (registry, done) = (registry.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("ndotel-scrape".into())
            .spawn(move || {
                handle(stream, &registry);
                done.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Answers one request, then closes the connection without losing the answer: what the client sent beyond the
/// head is drained (bounded), since closing with unread data resets the connection and can discard the response.
fn handle(mut stream: TcpStream, registry: &prometheus::Registry) {
    answer(&mut stream, registry);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // At most 64 KiB and one second in all: a client still dripping bytes does not keep the slot.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// `GET /metrics` (or `/`) gets the exposition, anything else an error status.
fn answer(stream: &mut TcpStream, registry: &prometheus::Registry) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let Some(head) = read_head(stream) else {
        let _ = respond(stream, "400 Bad Request", "bad request\n");
        return;
    };
    let mut parts = head.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let _ = match (method, path) {
        ("GET", "/metrics" | "/") => {
            let mut body = Vec::new();
            match prometheus::TextEncoder::new().encode(&registry.gather(), &mut body) {
                Ok(()) => respond_bytes(stream, "200 OK", &body),
                Err(e) => respond(stream, "500 Internal Server Error", &format!("{e}\n")),
            }
        }
        ("GET", _) => respond(stream, "404 Not Found", "metrics are at /metrics\n"),
        _ => respond(stream, "405 Method Not Allowed", "GET /metrics\n"),
    };
}

/// The request line, once the whole head has arrived (`None`: too long, too slow, or not HTTP).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    // One deadline for the whole head, not per read: a client dripping a byte at a time must not keep a scrape
    // slot for longer than a client that sends nothing.
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let mut scanned = 0;
    loop {
        // Only what arrived since the last look (and the 3 bytes before it) can complete the blank line.
        if head[scanned..].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        scanned = head.len().saturating_sub(3);
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).ok()?;
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return None;
        }
    }
    let line = head.split(|b| *b == b'\r').next()?;
    String::from_utf8(line.to_vec()).ok()
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    respond_bytes(stream, status, body.as_bytes())
}

fn respond_bytes(stream: &mut TcpStream, status: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}
