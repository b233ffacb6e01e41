//! The OTLP transports for the bytes ndotel encodes itself ([`super::wire`]): gRPC through tonic with a codec that
//! passes the bytes through, and http/protobuf through the blocking HTTP client. Each has what the OTLP settings
//! configure — headers, timeout, gzip, TLS and client certificates — and opentelemetry-otlp's retry policy: up to 3
//! retries of a retryable failure, with exponential backoff from 100 ms to 1.6 s plus up to 100 ms of jitter, a
//! server's throttling delay honoured (up to 10 minutes), all within the export timeout. A partial success is
//! warned about and not retried, as the specification says.

#[cfg(feature = "grpc")]
use super::Wire;
use super::{OtlpConfig, Transport};
use bytes::Bytes;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use std::time::{Duration, Instant};

/// Whether a failed attempt may be made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    No,
    Yes,
    After(Duration),
}

/// A failed attempt: what to say, and whether to try again.
#[derive(Debug)]
struct Failure {
    message: String,
    retry: Retry,
}

const MAX_RETRIES: u32 = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
const MAX_THROTTLE: Duration = Duration::from_secs(600);

/// Up to 100 ms, from the clock's low bits (enough to keep clients from retrying in step).
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Duration::from_millis(u64::from(nanos) % (MAX_JITTER_MS + 1))
}

/// Runs `attempt` (given the time left) until it succeeds, fails for good, runs out of retries or the deadline
/// would pass while waiting: all of it within `timeout`.
fn with_retries<T>(
    timeout: Duration,
    mut attempt: impl FnMut(Duration) -> Result<T, Failure>,
) -> Result<T, String> {
    let start = Instant::now();
    let mut delay = INITIAL_DELAY;
    let mut cap = MAX_DELAY;
    let mut retries = 0;
    loop {
        let left = timeout
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1));
        let failure = match attempt(left) {
            Ok(v) => return Ok(v),
            Err(f) => f,
        };
        if failure.retry == Retry::No || retries >= MAX_RETRIES {
            return Err(failure.message);
        }
        if let Retry::After(server) = failure.retry {
            let server = server.min(MAX_THROTTLE);
            if server > cap {
                cap = MAX_THROTTLE;
            }
            delay = delay.max(server);
        }
        let sleep = (delay + jitter()).min(cap);
        if sleep >= timeout.saturating_sub(start.elapsed()) {
            return Err(format!(
                "{} (no time left within the export timeout for retry {})",
                failure.message,
                retries + 1
            ));
        }
        std::thread::sleep(sleep);
        retries += 1;
        delay = (delay * 2).min(cap);
    }
}

/// A signal's service, as the transports name it.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "grpc"), allow(dead_code))]
pub(crate) struct Service {
    /// The gRPC method.
    pub(crate) grpc_path: &'static str,
}

/// The trace service.
pub(crate) const TRACES: Service = Service {
    grpc_path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
};

/// The logs service.
pub(crate) const LOGS: Service = Service {
    grpc_path: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

/// Sends encoded export requests of one signal; the answer is the response's bytes.
#[derive(Debug)]
pub(crate) enum Sender {
    #[cfg(feature = "grpc")]
    Grpc(grpc::GrpcSender),
    #[cfg(feature = "http")]
    Http(http::HttpSender),
}

impl Sender {
    /// The sender `config` describes (`default_path`: the OTLP/HTTP path of the default endpoint).
    #[cfg_attr(not(feature = "grpc"), allow(unused_variables))]
    #[cfg_attr(not(feature = "http"), allow(unused_variables))]
    pub(crate) fn new(
        config: &OtlpConfig,
        transport: &mut Transport,
        default_path: &str,
    ) -> Result<Sender, String> {
        // The settings fell back to a transport this build has (see `OtlpConfig::resolve`).
        #[cfg(feature = "grpc")]
        if config.protocol == Wire::Grpc || !cfg!(feature = "http") {
            return Ok(Sender::Grpc(grpc::GrpcSender::new(config, transport)?));
        }
        #[cfg(feature = "http")]
        return Ok(Sender::Http(http::HttpSender::new(config, default_path)?));
        #[cfg(not(feature = "http"))]
        Err("this build of ndotel has no OTLP transport".to_string())
    }

    /// Sends `body` (with retries); the response's bytes, or why it failed.
    pub(crate) fn send(&self, service: Service, body: Bytes) -> Result<Bytes, String> {
        match self {
            #[cfg(feature = "grpc")]
            Sender::Grpc(g) => g.send(service, body),
            #[cfg(feature = "http")]
            Sender::Http(h) => {
                let _ = service;
                h.send(body)
            }
        }
    }
}

#[cfg(feature = "grpc")]
mod grpc {
    use super::{Failure, Retry, Service, with_retries};
    use crate::export::otlp::{OtlpConfig, Transport};
    use bytes::{Buf, BufMut, Bytes};
    use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::transport::{Channel, Endpoint};
    use tonic_types::StatusExt;

    /// Passes encoded bytes through, and hands the response's bytes back undecoded.
    #[derive(Debug, Clone, Copy, Default)]
    struct Raw;

    impl Encoder for Raw {
        type Item = Bytes;
        type Error = tonic::Status;
        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            dst.put(item);
            Ok(())
        }
    }

    impl Decoder for Raw {
        type Item = Bytes;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
            Ok(Some(src.copy_to_bytes(src.remaining())))
        }
    }

    impl Codec for Raw {
        type Encode = Bytes;
        type Decode = Bytes;
        type Encoder = Raw;
        type Decoder = Raw;
        fn encoder(&mut self) -> Raw {
            Raw
        }
        fn decoder(&mut self) -> Raw {
            Raw
        }
    }

    pub(crate) struct GrpcSender {
        client: tonic::client::Grpc<Channel>,
        metadata: tonic::metadata::MetadataMap,
        runtime: tokio::runtime::Handle,
        endpoint: String,
        timeout: std::time::Duration,
    }

    impl std::fmt::Debug for GrpcSender {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("GrpcSender")
                .field("endpoint", &self.endpoint)
                .finish_non_exhaustive()
        }
    }

    /// What OTLP says to do after a gRPC status (the specification's retryable codes; throttling from `RetryInfo`).
    fn retry(status: &tonic::Status) -> Retry {
        let delay = status.get_details_retry_info().and_then(|r| r.retry_delay);
        match status.code() {
            tonic::Code::ResourceExhausted => delay.map_or(Retry::No, Retry::After),
            tonic::Code::Unavailable => delay
                .filter(|d| !d.is_zero())
                .map_or(Retry::Yes, Retry::After),
            tonic::Code::Cancelled
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
            | tonic::Code::OutOfRange
            | tonic::Code::DataLoss => Retry::Yes,
            _ => Retry::No,
        }
    }

    impl GrpcSender {
        pub(crate) fn new(config: &OtlpConfig, transport: &mut Transport) -> Result<Self, String> {
            let endpoint = config
                .endpoint
                .clone()
                .unwrap_or_else(|| "http://localhost:4317".to_string());
            let mut e = Endpoint::from_shared(endpoint.clone())
                .map_err(|e| format!("invalid endpoint {endpoint:?}: {e}"))?
                .timeout(config.timeout);
            if config.https() {
                e = e
                    .tls_config(config.tls.tonic())
                    .map_err(|e| format!("cannot use TLS for {endpoint}: {e}"))?;
            }
            let runtime = transport.runtime()?;
            let channel = {
                let _enter = runtime.enter();
                e.connect_lazy()
            };
            let mut client = tonic::client::Grpc::new(channel);
            if config.compression.is_some() {
                client = client
                    .send_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Gzip);
            }
            Ok(GrpcSender {
                client,
                metadata: tonic::metadata::MetadataMap::from_headers(config.header_map()),
                runtime: runtime.handle().clone(),
                endpoint,
                timeout: config.timeout,
            })
        }

        pub(crate) fn send(&self, service: Service, body: Bytes) -> Result<Bytes, String> {
            with_retries(self.timeout, |left| {
                let mut client = self.client.clone();
                let mut request = tonic::Request::new(body.clone());
                *request.metadata_mut() = self.metadata.clone();
                request.set_timeout(left);
                let call = async move {
                    client
                        .ready()
                        .await
                        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                    client
                        .unary(
                            request,
                            http::uri::PathAndQuery::from_static(service.grpc_path),
                            Raw,
                        )
                        .await
                };
                // The runtime may be stopping (a shutdown past its deadline): a panic there is a failed export.
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.runtime.block_on(call)
                }))
                .unwrap_or_else(|_| {
                    Err(tonic::Status::unavailable("the gRPC runtime has stopped"))
                });
                match answer {
                    Ok(response) => Ok(response.into_inner()),
                    Err(status) => Err(Failure {
                        message: format!(
                            "OTLP/gRPC export to {} failed: {}{:?}: {}",
                            self.endpoint,
                            // No connection: worded as opentelemetry-otlp words it, which `ndotel check` tells apart.
                            if status.code() == tonic::Code::Unavailable {
                                "network error: "
                            } else {
                                ""
                            },
                            status.code(),
                            crate::text::printable(status.message())
                        ),
                        retry: retry(&status),
                    }),
                }
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn retryable_codes_follow_the_specification() {
            use tonic::Code::*;
            for code in [
                Unavailable,
                Cancelled,
                DeadlineExceeded,
                Aborted,
                OutOfRange,
                DataLoss,
            ] {
                assert_eq!(retry(&tonic::Status::new(code, "")), Retry::Yes, "{code:?}");
            }
            for code in [
                ResourceExhausted,
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                Internal,
                Unimplemented,
            ] {
                assert_eq!(retry(&tonic::Status::new(code, "")), Retry::No, "{code:?}");
            }
        }
    }
}

#[cfg(feature = "http")]
mod http {
    use super::{Failure, Retry, with_retries};
    use crate::export::otlp::OtlpConfig;
    use bytes::Bytes;
    use std::io::Write as _;
    use std::time::Duration;

    /// The most of a response body read.
    const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

    pub(crate) struct HttpSender {
        client: reqwest::blocking::Client,
        url: String,
        headers: ::http::HeaderMap,
        gzip: bool,
        timeout: Duration,
    }

    impl std::fmt::Debug for HttpSender {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HttpSender")
                .field("url", &self.url)
                .field("gzip", &self.gzip)
                .finish_non_exhaustive()
        }
    }

    /// What OTLP says to do after an HTTP status: retry 429, 502, 503 and 504, honouring `Retry-After` seconds.
    fn retry(status: u16, retry_after: Option<&str>) -> Retry {
        match status {
            429 | 503 => retry_after
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map_or(Retry::Yes, |s| {
                    Retry::After(Duration::from_secs(s.min(600)))
                }),
            502 | 504 => Retry::Yes,
            _ => Retry::No,
        }
    }

    impl HttpSender {
        pub(crate) fn new(config: &OtlpConfig, default_path: &str) -> Result<Self, String> {
            let url = config
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("http://localhost:4318/{default_path}"));
            reqwest::Url::parse(&url).map_err(|e| format!("invalid endpoint {url:?}: {e}"))?;
            let mut headers = config.header_map();
            headers.insert(
                ::http::header::CONTENT_TYPE,
                ::http::HeaderValue::from_static("application/x-protobuf"),
            );
            let gzip = config.compression.is_some();
            if gzip {
                headers.insert(
                    ::http::header::CONTENT_ENCODING,
                    ::http::HeaderValue::from_static("gzip"),
                );
            }
            Ok(HttpSender {
                client: config.http_client()?,
                url,
                headers,
                gzip,
                timeout: config.timeout,
            })
        }

        pub(crate) fn send(&self, body: Bytes) -> Result<Bytes, String> {
            let body = if self.gzip {
                let mut z = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::default(),
                );
                z.write_all(&body)
                    .and_then(|()| z.finish())
                    .map(Bytes::from)
                    .map_err(|e| format!("cannot compress the export request: {e}"))?
            } else {
                body
            };
            with_retries(self.timeout, |left| {
                let mut response = self
                    .client
                    .post(&self.url)
                    .timeout(left)
                    .headers(self.headers.clone())
                    .body(body.clone())
                    .send()
                    .map_err(|e| Failure {
                        message: format!(
                            "OTLP/HTTP export to {} failed: network error: {e}",
                            self.url
                        ),
                        retry: Retry::Yes,
                    })?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(::http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // A response is a few bytes (a partial success at most): a collector cannot make it cost more.
                let mut bytes = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut std::io::Read::take(&mut response, MAX_RESPONSE_BYTES),
                    &mut bytes,
                );
                if status.is_success() {
                    return Ok(Bytes::from(bytes));
                }
                Err(Failure {
                    message: format!(
                        "OTLP/HTTP export to {} failed with status {}: {}",
                        self.url,
                        status.as_u16(),
                        crate::text::printable(&String::from_utf8_lossy(
                            &bytes[..bytes.len().min(512)]
                        ))
                    ),
                    retry: retry(status.as_u16(), retry_after.as_deref()),
                })
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn retryable_statuses_follow_the_specification() {
            assert_eq!(retry(429, None), Retry::Yes);
            assert_eq!(retry(503, Some("7")), Retry::After(Duration::from_secs(7)));
            assert_eq!(
                retry(503, Some("99999")),
                Retry::After(Duration::from_secs(600))
            );
            assert_eq!(retry(502, Some("7")), Retry::Yes);
            assert_eq!(retry(504, None), Retry::Yes);
            for status in [400, 401, 403, 404, 413, 500] {
                assert_eq!(retry(status, None), Retry::No, "{status}");
            }
        }
    }
}

/// A sent request's outcome as the SDK sees it, with a partial success warned about (never retried).
pub(crate) fn outcome(
    sent: Result<Bytes, String>,
    partial: impl FnOnce(&[u8]) -> Option<(i64, String)>,
) -> OTelSdkResult {
    match sent {
        Ok(response) => {
            if let Some((rejected, message)) = partial(&response)
                && (rejected > 0 || !message.is_empty())
            {
                // Reported as opentelemetry-otlp reports it: an internal event, shown (rate-limited) on stderr.
                tracing::warn!(
                    target: "opentelemetry_otlp",
                    name = "OtlpPartialSuccess",
                    rejected,
                    error_message = %crate::text::printable(&message),
                );
            }
            Ok(())
        }
        Err(message) => Err(OTelSdkError::InternalFailure(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `with_retries` over an attempt that always fails with `retry`: the outcome and the number of attempts.
    fn always_failing(timeout: Duration, retry: Retry) -> (Result<(), String>, u32) {
        let mut calls = 0;
        let r = with_retries(timeout, |_| {
            calls += 1;
            Err(Failure {
                message: "failed".into(),
                retry,
            })
        });
        (r, calls)
    }

    #[test]
    fn retries_stop_at_three_at_a_failure_for_good_and_before_the_deadline() {
        let minute = Duration::from_secs(60);
        assert_eq!(
            always_failing(minute, Retry::Yes),
            (Err("failed".into()), 4)
        );
        assert_eq!(always_failing(minute, Retry::No), (Err("failed".into()), 1));
        // A throttle longer than the time left is not waited for.
        let (r, calls) = always_failing(
            Duration::from_secs(1),
            Retry::After(Duration::from_secs(30)),
        );
        assert_eq!(calls, 1);
        assert!(r.unwrap_err().contains("no time left"));
        let mut calls = 0;
        let r = with_retries(minute, |_| {
            calls += 1;
            if calls < 3 {
                Err(Failure {
                    message: "flaky".into(),
                    retry: Retry::Yes,
                })
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r, Ok(3));
    }
}
