//! The `otlp` exporters of the three signals, configured once. ndotel resolves every `OTEL_EXPORTER_OTLP_*` setting
//! itself from its [`Env`] — per-signal variable over the generic one, an empty variable counting as unset (the
//! specification's rule, which opentelemetry-otlp 0.33 gets wrong for the endpoint), an invalid value warned about
//! and replaced by the default — and hands opentelemetry-otlp explicit values, which take precedence over what that
//! crate would read from the process environment.

#[cfg(not(any(feature = "grpc", feature = "http")))]
compile_error!(
    "ndotel needs at least one OTLP transport: enable the `grpc` or `http` feature (both are default)"
);

use crate::env::Env;
#[cfg(feature = "http")]
use opentelemetry_otlp::WithHttpConfig;
use opentelemetry_otlp::{Compression, WithExportConfig};
#[cfg(feature = "grpc")]
use opentelemetry_otlp::{WithTonicConfig, tonic_types};
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
}

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
        let headers = match lookup(env, signal, "HEADERS") {
            None => Vec::new(),
            Some((var, raw)) => parse_headers(&var, raw, warnings),
        };
        let timeout = match lookup(env, signal, "TIMEOUT") {
            None => Duration::from_secs(10),
            Some((var, raw)) => match raw.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms.min(86_400_000)),
                _ => {
                    warnings.push(format!(
                        "{var}={raw:?} is not a positive number of milliseconds; using 10000"
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
        OtlpConfig {
            protocol,
            endpoint,
            headers,
            timeout,
            compression,
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

    /// A builder of any signal, configured over HTTP.
    #[cfg(feature = "http")]
    fn http<B: WithExportConfig + WithHttpConfig>(&self, builder: B) -> B {
        let mut b = builder
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(self.timeout)
            .with_headers(
                self.headers
                    .iter()
                    .cloned()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e.clone());
        }
        if let Some(c) = self.compression {
            b = b.with_compression(c);
        }
        b
    }

    /// A builder of any signal, configured over gRPC.
    #[cfg(feature = "grpc")]
    fn grpc<B: WithExportConfig + WithTonicConfig>(&self, builder: B) -> B {
        let mut metadata = http::HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                metadata.append(k, v);
            }
        }
        let mut b = builder
            .with_timeout(self.timeout)
            .with_metadata(tonic_types::metadata::MetadataMap::from_headers(metadata));
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e.clone());
        }
        if let Some(c) = self.compression {
            b = b.with_compression(c);
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
            _ => c.http($builder.with_http()$(.$then($arg))?).build(),
            #[cfg(not(feature = "http"))]
            _ => return Err("this build of ndotel has no `http` feature".to_string()),
        }
        .map_err(|e| e.to_string())
    }};
}

impl OtlpConfig {
    /// The OTLP span exporter.
    pub(crate) fn span_exporter(
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

    /// The OTLP log exporter.
    pub(crate) fn log_exporter(
        &self,
        transport: &mut Transport,
    ) -> Result<opentelemetry_otlp::LogExporter, String> {
        exporter!(self, transport, opentelemetry_otlp::LogExporter::builder())
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
        let (c, w) = resolve(&[], Signal::Traces);
        assert_eq!(
            c,
            OtlpConfig {
                protocol: Wire::HttpProtobuf,
                endpoint: None,
                headers: Vec::new(),
                timeout: Duration::from_secs(10),
                compression: None,
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
    }
}
