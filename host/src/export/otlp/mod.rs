//! The `otlp` exporters of the three signals, configured once. ndotel resolves every `OTEL_EXPORTER_OTLP_*` setting
//! itself from its [`Env`] — per-signal variable over the generic one, an empty variable counting as unset (the
//! specification's rule, which opentelemetry-otlp 0.33 gets wrong for the endpoint), an invalid value warned about
//! and replaced by the default — and hands opentelemetry-otlp explicit values, which take precedence over what that
//! crate would read from the process environment.

#[cfg(not(any(feature = "grpc", feature = "http")))]
compile_error!(
    "ndotel needs at least one OTLP transport: enable the `grpc` or `http` feature (both are default)"
);

mod send;
pub(crate) mod wire;

use crate::env::Env;
#[cfg(feature = "http")]
use opentelemetry_otlp::WithHttpConfig;
use opentelemetry_otlp::{Compression, WithExportConfig};
#[cfg(feature = "grpc")]
use opentelemetry_otlp::{WithTonicConfig, tonic_types};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use prost::Message as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A signal, as the OTLP variables and paths name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    fn var(self, setting: &str) -> String {
        let signal = match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        };
        format!("OTEL_EXPORTER_OTLP_{signal}_{setting}")
    }

    /// The path appended to the generic endpoint for OTLP/HTTP.
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "v1/traces",
            Signal::Metrics => "v1/metrics",
            Signal::Logs => "v1/logs",
        }
    }
}

/// The OTLP transport (opentelemetry-otlp's own `Protocol` has only the variants of the features it was built
/// with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Grpc,
    HttpProtobuf,
}

/// One signal's resolved OTLP settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OtlpConfig {
    pub(crate) protocol: Wire,
    /// `None`: opentelemetry-otlp's default for the protocol (`http://localhost:4318/v1/<signal>` or
    /// `http://localhost:4317`).
    pub(crate) endpoint: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) compression: Option<Compression>,
    pub(crate) tls: Tls,
    /// The signal these settings are for.
    pub(crate) signal: Signal,
}

/// The TLS material the `OTEL_EXPORTER_OTLP_*CERTIFICATE` / `*CLIENT_KEY` variables name, read and checked when the
/// settings are resolved. Used for `https` endpoints only.
#[derive(Clone, PartialEq, Default)]
pub(crate) struct Tls {
    /// PEM certificates trusted instead of the system's roots (the specification's `CERTIFICATE`), with the file.
    pub(crate) ca: Option<(Vec<u8>, String)>,
    /// PEM client certificate chain and private key for mutual TLS, with the certificate's file.
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>, String)>,
}

/// Never shows the private key.
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca.as_ref().map(|(_, file)| file))
            .field(
                "client_certificate",
                &self.identity.as_ref().map(|(_, _, file)| file),
            )
            .finish()
    }
}

/// The longest timeout ndotel has (a day): what a timeout of 0, "no limit", is taken as.
const DAY_MS: u64 = 86_400_000;

/// The value of the per-signal variable, else of the generic one, with the variable's name; empty is unset.
fn lookup<'a>(env: &'a Env, signal: Signal, setting: &str) -> Option<(String, &'a str)> {
    let specific = signal.var(setting);
    let generic = format!("OTEL_EXPORTER_OTLP_{setting}");
    [specific, generic].into_iter().find_map(|var| {
        env.get(&var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (var, v))
    })
}

/// `endpoint` with its scheme. A gRPC endpoint written without one (`collector:4317`) is reached over TLS, or in
/// plaintext when `OTEL_EXPORTER_OTLP_{,<SIGNAL>_}INSECURE` is `true`, as the specification says; an HTTP one
/// without a scheme is not a URL: a warning, and the default endpoint.
fn with_scheme(
    env: &Env,
    signal: Signal,
    protocol: Wire,
    endpoint: String,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let lower = endpoint.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(endpoint);
    }
    if protocol != Wire::Grpc {
        warnings.push(format!(
            "the OTLP {} endpoint {:?} has no scheme; write http://… or https://… (using the default endpoint)",
            signal.path(),
            crate::text::printable(&endpoint)
        ));
        return None;
    }
    let insecure = match lookup(env, signal, "INSECURE") {
        None => false,
        Some((var, raw)) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                warnings.push(format!(
                    "{var}={:?} is neither true nor false; using false (TLS)",
                    crate::text::printable(raw)
                ));
                false
            }
        },
    };
    let scheme = if insecure { "http" } else { "https" };
    Some(format!("{scheme}://{endpoint}"))
}

impl OtlpConfig {
    /// Resolves `signal`'s settings; every value replaced by its default is explained in `warnings`.
    pub(crate) fn resolve(env: &Env, signal: Signal, warnings: &mut Vec<String>) -> OtlpConfig {
        let protocol = match lookup(env, signal, "PROTOCOL") {
            None => Wire::HttpProtobuf,
            Some((var, raw)) => match raw.trim().to_ascii_lowercase().as_str() {
                "grpc" => Wire::Grpc,
                "http/protobuf" => Wire::HttpProtobuf,
                other => {
                    warnings.push(format!(
                        "{var}={other:?} is not supported (grpc or http/protobuf); using http/protobuf"
                    ));
                    Wire::HttpProtobuf
                }
            },
        };
        // A transport this build leaves out (cargo features `grpc`, `http`) falls back to the other one.
        let protocol = match protocol {
            Wire::Grpc if !cfg!(feature = "grpc") => {
                warnings.push(
                    "OTLP over gRPC was requested, but this build of ndotel has no `grpc` feature; using http/protobuf"
                        .to_string(),
                );
                Wire::HttpProtobuf
            }
            p if p != Wire::Grpc && !cfg!(feature = "http") => {
                warnings.push(
                    "OTLP over HTTP was requested, but this build of ndotel has no `http` feature; using grpc"
                        .to_string(),
                );
                Wire::Grpc
            }
            p => p,
        };
        let endpoint = match lookup(env, signal, "ENDPOINT") {
            None => None,
            // The per-signal variable is used as it is.
            Some((var, raw)) if var == signal.var("ENDPOINT") => Some(raw.trim().to_string()),
            // The generic one is a base: OTLP/HTTP appends the signal's path to it.
            Some((_, raw)) if protocol != Wire::Grpc => Some(format!(
                "{}/{}",
                raw.trim().trim_end_matches('/'),
                signal.path()
            )),
            Some((_, raw)) => Some(raw.trim().to_string()),
        };
        let endpoint = endpoint.and_then(|e| with_scheme(env, signal, protocol, e, warnings));
        let headers = match lookup(env, signal, "HEADERS") {
            None => Vec::new(),
            Some((var, raw)) => parse_headers(&var, raw, warnings),
        };
        let timeout = match lookup(env, signal, "TIMEOUT") {
            None => Duration::from_secs(10),
            // 0 is no limit (the common configuration specification's Timeout), taken as the longest ndotel has.
            Some((var, raw)) => match raw.trim().parse::<u64>() {
                Ok(0) => Duration::from_millis(DAY_MS),
                Ok(ms) if ms > DAY_MS => {
                    warnings.push(format!(
                        "{var}={raw:?} is longer than a day, the longest timeout ndotel has; using {DAY_MS}"
                    ));
                    Duration::from_millis(DAY_MS)
                }
                Ok(ms) => Duration::from_millis(ms),
                Err(_) => {
                    warnings.push(format!(
                        "{var}={raw:?} is not a number of milliseconds; using 10000"
                    ));
                    Duration::from_secs(10)
                }
            },
        };
        let compression = match lookup(env, signal, "COMPRESSION") {
            None => None,
            Some((var, raw)) => match raw.trim().to_ascii_lowercase().as_str() {
                "gzip" => Some(Compression::Gzip),
                "none" => None,
                other => {
                    warnings.push(format!(
                        "{var}={other:?} is not supported (gzip or none); sending uncompressed"
                    ));
                    None
                }
            },
        };
        let tls = Tls::resolve(env, signal, warnings);
        OtlpConfig {
            signal,
            protocol,
            endpoint,
            headers,
            timeout,
            compression,
            tls,
        }
    }

    /// Where this signal goes, for people: the endpoint (or opentelemetry-otlp's default) and the transport.
    pub(crate) fn describe(&self, signal: Signal) -> String {
        match (self.protocol, &self.endpoint) {
            (Wire::Grpc, Some(e)) => format!("{e} (OTLP/gRPC)"),
            (Wire::Grpc, None) => {
                "http://localhost:4317 (OTLP/gRPC, the default endpoint)".to_string()
            }
            (Wire::HttpProtobuf, Some(e)) => format!("{e} (OTLP/HTTP)"),
            (Wire::HttpProtobuf, None) => format!(
                "http://localhost:4318/{} (OTLP/HTTP, the default endpoint)",
                signal.path()
            ),
        }
    }

    fn https(&self) -> bool {
        self.endpoint.as_deref().is_some_and(|e| {
            e.trim_start()
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        })
    }

    /// The blocking HTTP client, with ndotel's TLS configuration. Built on a thread of its own: reqwest's blocking
    /// client must not be made (or dropped) inside an async runtime, which the service's `main` may be.
    #[cfg(feature = "http")]
    fn http_client(&self) -> Result<reqwest::blocking::Client, String> {
        let tls = self.tls.rustls(self.https())?;
        let timeout = self.timeout;
        std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .tls_backend_preconfigured(tls)
                .build()
        })
        .join()
        .map_err(|_| "building the HTTP client panicked".to_string())?
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
    }

    /// A builder of any signal, configured over HTTP.
    #[cfg(feature = "http")]
    fn http<B: WithExportConfig + WithHttpConfig>(&self, builder: B) -> Result<B, String> {
        let mut b = builder
            .with_http_client(self.http_client()?)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(self.timeout)
            .with_headers(
                self.headers
                    .iter()
                    .cloned()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
        // Always explicit, so that opentelemetry-otlp never reads OTEL_EXPORTER_OTLP_*ENDPOINT itself (with a
        // configuration file those variables have no effect).
        b = b.with_endpoint(
            self.endpoint
                .clone()
                .unwrap_or_else(|| format!("http://localhost:4318/{}", self.signal.path())),
        );
        if let Some(c) = self.compression {
            b = b.with_compression(c);
        }
        Ok(b)
    }

    /// The `OTEL_EXPORTER_OTLP_*HEADERS` as HTTP headers (gRPC metadata); checked when they were resolved.
    fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        map
    }

    /// A builder of any signal, configured over gRPC.
    #[cfg(feature = "grpc")]
    fn grpc<B: WithExportConfig + WithTonicConfig>(&self, builder: B) -> B {
        let mut b = builder.with_timeout(self.timeout).with_metadata(
            tonic_types::metadata::MetadataMap::from_headers(self.header_map()),
        );
        b = b.with_endpoint(
            self.endpoint
                .clone()
                .unwrap_or_else(|| "http://localhost:4317".to_string()),
        );
        if let Some(c) = self.compression {
            b = b.with_compression(c);
        }
        if self.https() {
            b = b.with_tls_config(self.tls.tonic());
        }
        b
    }
}

/// What the gRPC transport needs beyond the configuration: the Tokio runtime tonic runs on, started on first use
/// and kept as long as the pipeline.
#[derive(Debug, Default)]
pub(crate) struct Transport {
    #[cfg(feature = "grpc")]
    runtime: Option<tokio::runtime::Runtime>,
}

impl Transport {
    #[cfg(feature = "grpc")]
    fn runtime(&mut self) -> Result<&tokio::runtime::Runtime, String> {
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("ndotel-otlp")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime for gRPC: {e}"))?;
            self.runtime = Some(rt);
        }
        self.runtime
            .as_ref()
            .ok_or_else(|| "runtime missing".to_string())
    }

    /// Stops the runtime without waiting for its tasks (shutdown has its own deadline).
    pub(crate) fn shutdown(self) {
        #[cfg(feature = "grpc")]
        if let Some(rt) = self.runtime {
            rt.shutdown_background();
        }
    }
}

/// The exporter of one signal over the configured transport.
macro_rules! exporter {
    ($config:expr, $transport:expr, $builder:expr $(, $then:ident($arg:expr))?) => {{
        let c: &OtlpConfig = $config;
        #[allow(unused_variables)] // without the `grpc` feature nothing needs the runtime
        let t: &mut Transport = $transport;
        match c.protocol {
            #[cfg(feature = "grpc")]
            Wire::Grpc => {
                let _enter = t.runtime()?.enter();
                c.grpc($builder.with_tonic()$(.$then($arg))?).build()
            }
            #[cfg(feature = "http")]
            _ => c.http($builder.with_http()$(.$then($arg))?)?.build(),
            #[cfg(not(feature = "http"))]
            _ => return Err("this build of ndotel has no `http` feature".to_string()),
        }
        .map_err(|e| e.to_string())
    }};
}

impl OtlpConfig {
    /// The OTLP span exporter: ndotel's encoder over the configured transport.
    pub(crate) fn span_exporter(&self, transport: &mut Transport) -> Result<Exporter, String> {
        Exporter::new(self, transport, Signal::Traces, send::TRACES)
    }

    /// The OTLP log exporter: ndotel's encoder over the configured transport.
    pub(crate) fn log_exporter(&self, transport: &mut Transport) -> Result<Exporter, String> {
        Exporter::new(self, transport, Signal::Logs, send::LOGS)
    }

    /// opentelemetry-otlp's own span exporter (`OTEL_RUST_OTLP_ENCODER=opentelemetry-otlp`).
    pub(crate) fn otlp_span_exporter(
        &self,
        transport: &mut Transport,
    ) -> Result<opentelemetry_otlp::SpanExporter, String> {
        exporter!(self, transport, opentelemetry_otlp::SpanExporter::builder())
    }

    /// The OTLP metric exporter.
    pub(crate) fn metric_exporter(
        &self,
        transport: &mut Transport,
        temporality: opentelemetry_sdk::metrics::Temporality,
    ) -> Result<opentelemetry_otlp::MetricExporter, String> {
        exporter!(
            self,
            transport,
            opentelemetry_otlp::MetricExporter::builder(),
            with_temporality(temporality)
        )
    }

    /// opentelemetry-otlp's own log exporter (`OTEL_RUST_OTLP_ENCODER=opentelemetry-otlp`).
    pub(crate) fn otlp_log_exporter(
        &self,
        transport: &mut Transport,
    ) -> Result<opentelemetry_otlp::LogExporter, String> {
        exporter!(self, transport, opentelemetry_otlp::LogExporter::builder())
    }
}

/// The largest buffer a request starts with (16 MiB); beyond it, it grows as the encoder writes.
const MAX_FIRST_ALLOCATION: usize = 16 << 20;

/// Bytes per span or log record assumed before the first request measures them: a span of about ten attributes.
/// Without it the first request's buffer would grow from nothing, copying itself a dozen times.
const FIRST_PER_ITEM: usize = 512;

/// ndotel's OTLP exporter of spans or log records: each batch encoded straight from the SDK's data ([`wire`]) and
/// sent over the configured transport ([`send`]).
#[derive(Debug)]
pub(crate) struct Exporter {
    encoder: wire::Encoder,
    sender: send::Sender,
    service: send::Service,
    /// Bytes per span (or log record) of the recent requests (the last one's, or an eighth less than the size
    /// before it when that is more): the next one's buffer is allocated for its number of items at that size, with
    /// room to spare.
    per_item: AtomicUsize,
    shut_down: AtomicBool,
}

impl Exporter {
    fn new(
        config: &OtlpConfig,
        transport: &mut Transport,
        signal: Signal,
        service: send::Service,
    ) -> Result<Self, String> {
        Ok(Exporter {
            encoder: wire::Encoder::default(),
            sender: send::Sender::new(config, transport, signal.path())?,
            service,
            per_item: AtomicUsize::new(FIRST_PER_ITEM),
            shut_down: AtomicBool::new(false),
        })
    }

    /// Encodes `items` spans or log records with `encode`, sends, and reports a partial success that `partial`
    /// reads from the response.
    fn export_with(
        &self,
        items: usize,
        encode: impl FnOnce(&wire::Encoder, &mut Vec<u8>),
        partial: impl FnOnce(&[u8]) -> Option<(i64, String)>,
    ) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        // A quarter more per item than the last request had: the encoder writes in one pass, so a request that
        // outgrows its buffer is copied to a larger one. Capped, so that one batch of huge spans does not make
        // every later buffer huge (the cap is only the first allocation: a larger request still grows).
        let per_item = self.per_item.load(Ordering::Relaxed);
        let estimate = items
            .saturating_mul(per_item + per_item / 4)
            .saturating_add(256);
        let mut buf = Vec::with_capacity(estimate.min(MAX_FIRST_ALLOCATION));
        encode(&self.encoder, &mut buf);
        // The size per item decays slowly rather than following a batch of small items down at once.
        let measured = buf.len().div_ceil(items.max(1));
        self.per_item
            .store(measured.max(per_item - per_item / 8), Ordering::Relaxed);
        send::outcome(self.sender.send(self.service, buf.into()), partial)
    }

    fn shut_down(&self) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        Ok(())
    }
}

impl opentelemetry_sdk::trace::SpanExporter for Exporter {
    fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
        std::future::ready(self.export_with(
            batch.len(),
            |e, buf| e.encode(&batch, buf),
            |response| {
                let p = ExportTraceServiceResponse::decode(response)
                    .ok()?
                    .partial_success?;
                Some((p.rejected_spans, p.error_message))
            },
        ))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.encoder = wire::Encoder::new(resource);
    }
}

impl opentelemetry_sdk::logs::LogExporter for Exporter {
    fn export(
        &self,
        batch: opentelemetry_sdk::logs::LogBatch<'_>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
        std::future::ready(self.export_with(
            batch.iter().count(),
            |e, buf| e.encode_logs(&batch, buf),
            |response| {
                let p = ExportLogsServiceResponse::decode(response)
                    .ok()?
                    .partial_success?;
                Some((p.rejected_log_records, p.error_message))
            },
        ))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.encoder = wire::Encoder::new(resource);
    }
}

/// A PEM file named by a TLS variable, read and checked by `check`; `None` (with a warning saying what is used
/// instead) when it cannot be used.
fn read_pem(
    env: &Env,
    signal: Signal,
    setting: &str,
    check: fn(&[u8]) -> Result<(), String>,
    instead: &str,
    warnings: &mut Vec<String>,
) -> Option<(Vec<u8>, String)> {
    let (var, raw) = lookup(env, signal, setting)?;
    let path = env.cwd().join(raw.trim());
    let read = read_small_file(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|pem| check(&pem).map(|()| pem));
    match read {
        Ok(pem) => Some((pem, path.display().to_string())),
        Err(why) => {
            warnings.push(format!("{var}: {why}; {instead}"));
            None
        }
    }
}

/// The largest PEM file read: certificate chains are a few KiB.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// A regular file of at most [`MAX_PEM_BYTES`] (a device such as `/dev/zero`, or a FIFO, would never end).
fn read_small_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    // Checked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(format!("larger than {MAX_PEM_BYTES} bytes"));
    }
    let mut out = Vec::new();
    std::fs::File::open(path)
        .map_err(|e| e.to_string())?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn check_certificates(pem: &[u8]) -> Result<(), String> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file ({e})"))?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".to_string());
    }
    Ok(())
}

fn check_key(pem: &[u8]) -> Result<(), String> {
    use rustls_pki_types::{PrivateKeyDer, pem::PemObject};
    PrivateKeyDer::from_pem_slice(pem)
        .map(drop)
        .map_err(|e| format!("no PEM private key in it ({e})"))
}

/// The system's root certificates, read once per process (each signal's HTTP exporter needs them).
#[cfg(feature = "http")]
fn native_roots() -> &'static [rustls_pki_types::CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<rustls_pki_types::CertificateDer<'static>>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

impl Tls {
    fn resolve(env: &Env, signal: Signal, warnings: &mut Vec<String>) -> Tls {
        let ca = read_pem(
            env,
            signal,
            "CERTIFICATE",
            check_certificates,
            "trusting the system's root certificates instead",
            warnings,
        );
        let without = "connecting without a client certificate";
        if lookup(env, signal, "CLIENT_CERTIFICATE").is_some()
            != lookup(env, signal, "CLIENT_KEY").is_some()
        {
            warnings.push(format!(
                "mutual TLS needs both {} and {} (or their OTEL_EXPORTER_OTLP_ forms); {without}",
                signal.var("CLIENT_CERTIFICATE"),
                signal.var("CLIENT_KEY"),
            ));
        }
        let cert = read_pem(
            env,
            signal,
            "CLIENT_CERTIFICATE",
            check_certificates,
            without,
            warnings,
        );
        let key = read_pem(env, signal, "CLIENT_KEY", check_key, without, warnings);
        let identity = match (cert, key) {
            (Some((cert, file)), Some((key, key_file))) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    if std::fs::metadata(&key_file)
                        .is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
                    {
                        warnings.push(format!(
                            "the client key {key_file} can be read by other users; `chmod 600` it"
                        ));
                    }
                }
                #[cfg(not(unix))]
                let _ = key_file;
                Some((cert, key, file))
            }
            _ => None,
        };
        Tls { ca, identity }
    }

    /// The rustls configuration of the HTTP transport: the configured certificates, else the system's roots (read
    /// only for an `https` endpoint), and the client identity.
    #[cfg(feature = "http")]
    fn rustls(&self, https: bool) -> Result<rustls::ClientConfig, String> {
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some((pem, _)) => {
                for cert in CertificateDer::pem_slice_iter(pem).flatten() {
                    roots
                        .add(cert)
                        .map_err(|e| format!("cannot trust {}: {e}", self.describe_ca()))?;
                }
            }
            None if https => {
                roots.add_parsable_certificates(native_roots().iter().cloned());
            }
            None => {}
        }
        let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
        match &self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key, file)) => {
                let chain = CertificateDer::pem_slice_iter(cert).flatten().collect();
                let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| e.to_string())?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("cannot use the client certificate {file}: {e}"))
            }
        }
    }

    #[cfg(feature = "http")]
    fn describe_ca(&self) -> &str {
        self.ca.as_ref().map_or("the system's roots", |(_, f)| f)
    }

    /// The TLS configuration of the gRPC transport.
    #[cfg(feature = "grpc")]
    fn tonic(&self) -> tonic_types::transport::ClientTlsConfig {
        use tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some((pem, _)) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key, _)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        config
    }
}

/// `key=value` pairs separated by commas, values percent-decoded (W3C baggage format, as the specification says);
/// a malformed entry is warned about and skipped, the rest kept.
fn parse_headers(var: &str, raw: &str, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in raw.split(',').filter(|e| !e.trim().is_empty()) {
        let parsed = entry.split_once('=').and_then(|(k, v)| {
            let key = k.trim();
            let value = percent_encoding::percent_decode_str(v.trim())
                .decode_utf8()
                .ok()?
                .into_owned();
            (http::HeaderName::from_bytes(key.as_bytes()).is_ok()
                && http::HeaderValue::from_str(&value).is_ok())
            .then(|| (key.to_string(), value))
        });
        match parsed {
            Some(kv) => out.push(kv),
            // The entry may hold a credential: name the variable, not the value.
            None => warnings.push(format!(
                "{var} has an entry that is not a valid `name=value` header; it is skipped"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(pairs: &[(&str, &str)], signal: Signal) -> (OtlpConfig, Vec<String>) {
        let env = Env::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)), "/");
        let mut w = Vec::new();
        (OtlpConfig::resolve(&env, signal, &mut w), w)
    }

    #[test]
    fn the_signal_variable_wins_and_an_empty_one_counts_as_unset() {
        let (c, _) = resolve(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/custom"),
            ],
            Signal::Traces,
        );
        assert_eq!(
            c.endpoint.as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        let (c, _) = resolve(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/custom"),
            ],
            Signal::Metrics,
        );
        assert_eq!(c.endpoint.as_deref(), Some("http://m:9/custom"));
        let (c, _) = resolve(
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "GRPC"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ],
            Signal::Logs,
        );
        assert_eq!(
            (c.protocol, c.endpoint.as_deref()),
            (Wire::Grpc, Some("http://collector:4317"))
        );
        // An endpoint without a scheme: gRPC over TLS unless INSECURE says plaintext (the signal's variable first);
        // HTTP needs a URL.
        let grpc = |vars: &[(&str, &str)]| {
            let mut all = vec![
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ];
            all.extend_from_slice(vars);
            resolve(&all, Signal::Traces)
        };
        for (vars, want, warns) in [
            (&[][..], "https://collector:4317", 0),
            (
                &[("OTEL_EXPORTER_OTLP_INSECURE", "TRUE")][..],
                "http://collector:4317",
                0,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
                    ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "false"),
                ][..],
                "https://collector:4317",
                0,
            ),
            (
                &[("OTEL_EXPORTER_OTLP_INSECURE", "yes")][..],
                "https://collector:4317",
                1,
            ),
        ] {
            let (c, w) = grpc(vars);
            assert_eq!(
                (c.endpoint.as_deref(), w.len()),
                (Some(want), warns),
                "{vars:?} {w:?}"
            );
        }
        let (c, w) = resolve(
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "collector:4318/v1/traces",
            )],
            Signal::Traces,
        );
        assert!(
            c.endpoint.is_none() && w[0].contains("has no scheme"),
            "{w:?}"
        );
        let (c, w) = resolve(&[], Signal::Traces);
        assert_eq!(
            c,
            OtlpConfig {
                signal: Signal::Traces,
                protocol: Wire::HttpProtobuf,
                endpoint: None,
                headers: Vec::new(),
                timeout: Duration::from_secs(10),
                compression: None,
                tls: Tls::default(),
            }
        );
        assert!(w.is_empty());
    }

    #[test]
    fn headers_timeout_and_compression_follow_the_specification() {
        let (c, w) = resolve(
            &[
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "api-key=a%20b, x-team = core ,bad",
                ),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"),
            ],
            Signal::Traces,
        );
        assert_eq!(
            c.headers,
            [
                ("api-key".to_string(), "a b".to_string()),
                ("x-team".to_string(), "core".to_string())
            ]
        );
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.compression, Some(Compression::Gzip));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            !w[0].contains("bad"),
            "a header entry is never quoted: {w:?}"
        );
        let (c, w) = resolve(
            &[
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "-5"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
            Signal::Metrics,
        );
        assert_eq!(
            (c.timeout, c.compression, c.protocol),
            (Duration::from_secs(10), None, Wire::HttpProtobuf)
        );
        assert_eq!(w.len(), 3, "{w:?}");
        // 0 is no limit, taken as a day; longer than a day is said and capped.
        let (c, w) = resolve(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "0")], Signal::Logs);
        assert_eq!((c.timeout, w.len()), (Duration::from_secs(86_400), 0));
        let (c, w) = resolve(
            &[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "172800000")],
            Signal::Traces,
        );
        assert_eq!(c.timeout, Duration::from_secs(86_400));
        assert!(w.len() == 1 && w[0].contains("longer than a day"), "{w:?}");
    }

    #[test]
    fn unusable_tls_files_are_warnings_that_name_the_variable_and_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let garbage = write("garbage.pem", "not a certificate");
        let key = write(
            "client.key",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIUb+V2wnKTUku0kbngvXsK63eN62pj6lZesZxeiHHLQ\n-----END PRIVATE KEY-----\n",
        );
        let (c, w) = resolve(
            &[
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", &garbage),
                ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
            ],
            Signal::Traces,
        );
        assert_eq!(c.tls, Tls::default(), "{w:?}");
        let all = w.join("\n");
        assert!(
            all.contains("OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read /nonexistent/ca.pem"),
            "{all}"
        );
        assert!(
            all.contains("trusting the system's root certificates instead"),
            "{all}"
        );
        assert!(
            all.contains("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: no PEM certificate"),
            "{all}"
        );
        assert!(!all.contains("MC4CAQ"), "the key is never quoted: {all}");
        assert!(
            !all.contains("CLIENT_KEY"),
            "a readable key is not the problem here: {all}"
        );
        assert!(!format!("{c:?}").contains("MC4CAQ"), "nor shown by Debug");
        // A device or a directory is never read (`/dev/zero` would never end).
        let (_, w) = resolve(
            &[
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/dev/zero"),
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/"),
                ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
            ],
            Signal::Traces,
        );
        assert_eq!(
            w.iter()
                .filter(|w| w.contains("not a regular file"))
                .count(),
            2,
            "{w:?}"
        );
        // A key alone: mutual TLS needs both.
        let (c, w) = resolve(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key)], Signal::Logs);
        assert_eq!(c.tls, Tls::default());
        assert!(
            w.iter().any(|w| w.contains("mutual TLS needs both")),
            "{w:?}"
        );
        // Nothing set: no warnings, the system's roots.
        let (c, w) = resolve(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "")], Signal::Metrics);
        assert_eq!((c.tls, w.len()), (Tls::default(), 0));
    }
}
