//! The `otlp` exporters of the three signals, configured once. ndotel resolves every `OTEL_EXPORTER_OTLP_*` setting
//! itself from its [`Env`] — per-signal variable over the generic one, an empty variable counting as unset (the
//! specification's rule, which opentelemetry-otlp 0.33 gets wrong for the endpoint), an invalid value warned about
//! and replaced by the default — and hands opentelemetry-otlp explicit values, which take precedence over what that
//! crate would read from the process environment.

use crate::env::Env;
use opentelemetry_otlp::{
    Compression, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig, tonic_types,
};
use std::collections::HashMap;
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

/// One signal's resolved OTLP settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OtlpConfig {
    pub(crate) protocol: Protocol,
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
            None => Protocol::HttpBinary,
            Some((var, raw)) => match raw.trim().to_ascii_lowercase().as_str() {
                "grpc" => Protocol::Grpc,
                "http/protobuf" => Protocol::HttpBinary,
                other => {
                    warnings.push(format!(
                        "{var}={other:?} is not supported (grpc or http/protobuf); using http/protobuf"
                    ));
                    Protocol::HttpBinary
                }
            },
        };
        let endpoint = match lookup(env, signal, "ENDPOINT") {
            None => None,
            // The per-signal variable is used as it is.
            Some((var, raw)) if var == signal.var("ENDPOINT") => Some(raw.trim().to_string()),
            // The generic one is a base: OTLP/HTTP appends the signal's path to it.
            Some((_, raw)) if protocol != Protocol::Grpc => Some(format!(
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

    /// A builder of any signal, configured over HTTP.
    pub(crate) fn http<B: WithExportConfig + WithHttpConfig>(&self, builder: B) -> B {
        let mut b = builder
            .with_protocol(self.protocol)
            .with_timeout(self.timeout)
            .with_headers(self.headers.iter().cloned().collect::<HashMap<_, _>>());
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e.clone());
        }
        if let Some(c) = self.compression {
            b = b.with_compression(c);
        }
        b
    }

    /// A builder of any signal, configured over gRPC.
    pub(crate) fn grpc<B: WithExportConfig + WithTonicConfig>(&self, builder: B) -> B {
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
            (Protocol::Grpc, Some("http://collector:4317"))
        );
        let (c, w) = resolve(&[], Signal::Traces);
        assert_eq!(
            c,
            OtlpConfig {
                protocol: Protocol::HttpBinary,
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
            (Duration::from_secs(10), None, Protocol::HttpBinary)
        );
        assert_eq!(w.len(), 3, "{w:?}");
    }
}
