//! The `prometheus` metric exporter: `opentelemetry-prometheus` collects into a Prometheus registry, and a small
//! HTTP/1.1 server of ndotel's serves it at `http://OTEL_EXPORTER_PROMETHEUS_HOST:PORT/metrics` in the text
//! exposition format, as the specification describes the pull exporter. The server runs on its own threads (no
//! async runtime): one accepting, and one per connection, at most [`MAX_THREADS`]. Each head is read within
//! [`READ_TIMEOUT`] and [`MAX_HEAD`] bytes, at most [`MAX_WAITING`] connections wait for theirs (a new one closes
//! the oldest), and at most [`MAX_SCRAPES`] are answered at a time, each within [`WRITE_DEADLINE`]: clients that
//! send nothing, drip, or read slowly cost a thread for a bounded time, never the service, and cannot keep a
//! scraper out for long.

use prometheus::Encoder as _;
use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Scrapes answered at once; more get `503`.
const MAX_SCRAPES: usize = 8;
/// Connections still sending their heads at once; another closes the one that has waited longest.
const MAX_WAITING: usize = 16;
/// Connections handled at once, whatever their stage.
const MAX_THREADS: usize = 64;
/// How long writing one answer may take in all.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);
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
    let answering = Arc::new(AtomicUsize::new(0));
    let live = Arc::new(AtomicUsize::new(0));
    let waiting = Arc::new(Mutex::new(Waiting::default()));
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else {
            // Out of descriptors (EMFILE) fails every accept until some close: wait instead of spinning.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        // Every connection's thread ends within its deadlines, but a flood could still start them faster: past
        // [`MAX_THREADS`] a connection is closed at once.
        let Some(place) = Place::take(&live, MAX_THREADS) else {
            continue;
        };
        let id = admit(&waiting, &stream);
        let (registry, answering, left) = (registry.clone(), answering.clone(), waiting.clone());
        // The place goes with the thread (or with the closure, when no thread starts) and is given back when
        // it ends, a panic included.
        let spawned = std::thread::Builder::new()
            .name("ndotel-scrape".into())
            .spawn(move || {
                let _place = place;
                handle(stream, &registry, &answering, || leave(&left, id));
            });
        if spawned.is_err() {
            leave(&waiting, id);
        }
    }
}

/// One of at most so many places counted in a shared count, given back when dropped (a panic included), so no
/// failure can keep a place taken for good.
struct Place(Arc<AtomicUsize>);

impl Place {
    /// A place of `count`'s, if fewer than `max` are taken.
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Place> {
        if count.fetch_add(1, Ordering::AcqRel) >= max {
            count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Place(count.clone()))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Connections still sending their request heads, oldest first, each with a handle to close it.
#[derive(Default)]
struct Waiting {
    next: u64,
    conns: VecDeque<(u64, TcpStream)>,
}

/// Counts `stream` among the connections sending their heads; when [`MAX_WAITING`] already are, one is closed to
/// make room: the longest-waiting that has sent nothing, else the longest-waiting. A scraper sends its head at
/// once, so clients that connect and send nothing (or drip) cannot keep it out by holding connections open.
fn admit(waiting: &Mutex<Waiting>, stream: &TcpStream) -> u64 {
    let mut w = waiting.lock().unwrap_or_else(|e| e.into_inner());
    if w.conns.len() >= MAX_WAITING {
        // The longest-waiting one that has sent nothing at all, else the longest-waiting: a scraper's head is
        // there as soon as it connects.
        let victim = w.conns.iter().position(|(_, s)| silent(s)).unwrap_or(0);
        if let Some((_, out)) = w.conns.remove(victim) {
            let _ = out.shutdown(std::net::Shutdown::Both);
        }
    }
    let id = w.next;
    w.next += 1;
    if let Ok(handle) = stream.try_clone() {
        w.conns.push_back((id, handle));
    }
    id
}

/// Whether nothing has arrived on `stream` yet (looked at without reading, and without waiting).
fn silent(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd as _;
    let mut byte = [0u8; 1];
    // SAFETY: a descriptor `stream` owns and a buffer of the length given; MSG_PEEK leaves the byte where it is.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

/// `id` has sent its head (or given up): no longer among the waiting.
fn leave(waiting: &Mutex<Waiting>, id: u64) {
    let mut w = waiting.lock().unwrap_or_else(|e| e.into_inner());
    w.conns.retain(|(i, _)| *i != id);
}

/// Answers one request, then closes the connection without losing the answer: what the client sent beyond the
/// head is drained (bounded), since closing with unread data resets the connection and can discard the response.
fn handle(
    mut stream: TcpStream,
    registry: &prometheus::Registry,
    answering: &Arc<AtomicUsize>,
    head_read: impl FnOnce(),
) {
    answer(&mut stream, registry, answering, head_read);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // At most 64 KiB and 100 ms in all: a client still dripping bytes, or holding the connection open, does not
    // keep the thread.
    let deadline = std::time::Instant::now() + Duration::from_millis(100);
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

/// `GET /metrics` (or `/`) gets the exposition, anything else an error status; a request past the [`MAX_SCRAPES`]
/// being answered gets `503`.
fn answer(
    stream: &mut TcpStream,
    registry: &prometheus::Registry,
    answering: &Arc<AtomicUsize>,
    head_read: impl FnOnce(),
) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let head = read_head(stream);
    head_read();
    let Some(head) = head else {
        let _ = respond(stream, "400 Bad Request", "bad request\n");
        return;
    };
    let Some(_place) = Place::take(answering, MAX_SCRAPES) else {
        let _ = respond(
            stream,
            "503 Service Unavailable",
            "too many scrapes at once\n",
        );
        return;
    };
    answer_head(stream, registry, &head);
}

/// The answer to a request whose head is `head`.
fn answer_head(stream: &mut TcpStream, registry: &prometheus::Registry, head: &str) {
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

/// Writes the answer within [`WRITE_DEADLINE`] in all: a client reading slowly does not keep its slot for longer.
fn respond_bytes(stream: &mut TcpStream, status: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let deadline = std::time::Instant::now() + WRITE_DEADLINE;
    for mut part in [head.as_bytes(), body] {
        // One `write` at a time, each with what is left of the deadline: a client that reads a few bytes now and
        // then does not get a fresh timeout with each.
        while !part.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            stream.set_write_timeout(Some(left))?;
            match stream.write(part) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => part = &part[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A place is given back however its holder ends, a panic included: no failure keeps the endpoint full.
    #[test]
    fn a_place_is_given_back_when_its_holder_panics() {
        let count = Arc::new(AtomicUsize::new(0));
        let first = Place::take(&count, 2).expect("a place");
        let held = count.clone();
        let panicked = std::thread::spawn(move || {
            let _place = Place::take(&held, 2).expect("the second place");
            assert!(Place::take(&held, 2).is_none(), "two of two taken");
            panic!("the holder fails");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(
            count.load(Ordering::Acquire),
            1,
            "the panicking holder's place is back"
        );
        drop(first);
        assert_eq!(count.load(Ordering::Acquire), 0);
    }
}
