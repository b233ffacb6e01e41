//! Calling another service with an instrumented HTTP client: a CLIENT span with the semantic-convention
//! attributes, the trace context and baggage injected into the request headers with the global propagator (so the
//! callee continues the trace, and the sampler's decision travels with it), and the
//! `http.client.request.duration` histogram.

use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use std::sync::OnceLock;
use std::time::Instant;

/// The semantic conventions' bucket boundaries for HTTP durations, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

fn duration_histogram() -> &'static opentelemetry::metrics::Histogram<f64> {
    static H: OnceLock<opentelemetry::metrics::Histogram<f64>> = OnceLock::new();
    H.get_or_init(|| {
        opentelemetry::global::meter("app")
            .f64_histogram("http.client.request.duration")
            .with_description("Duration of HTTP client requests")
            .with_unit("s")
            .with_boundaries(DURATION_BUCKETS.to_vec())
            .build()
    })
}

/// The client: plain HTTP/1.1 with a connection pool.
pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<bytes::Bytes>,
>;

/// A new client.
pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// Writes the propagator's fields into request headers.
struct HeaderInjector<'a>(&'a mut axum::http::HeaderMap);

impl opentelemetry::propagation::Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            axum::http::header::HeaderName::from_bytes(key.as_bytes()),
            axum::http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Why a call failed.
enum CallError {
    /// No answer within the deadline.
    Timeout(std::time::Duration),
    /// The connection or the exchange failed.
    Request(String),
}

impl CallError {
    /// The `error.type` attribute's value.
    fn kind(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::Request(_) => "request",
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout(d) => write!(f, "no answer within {d:?}"),
            CallError::Request(m) => f.write_str(m),
        }
    }
}

/// What a downstream call answered.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: String,
}

/// `GET {base}{path}` inside a CLIENT span, child of the current context, within `timeout`.
pub async fn get(
    client: &Client,
    base: &str,
    path: &str,
    timeout: std::time::Duration,
) -> Result<Answer, String> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| format!("bad downstream URL {url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("downstream URL {url:?}: only http:// is supported"));
    }
    // What both the span and the duration histogram record.
    let mut attributes = vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("server.address", uri.host().unwrap_or_default().to_string()),
        KeyValue::new("server.port", i64::from(uri.port_u16().unwrap_or(80))),
    ];
    let tracer = opentelemetry::global::tracer("app");
    let span = tracer
        .span_builder("GET")
        .with_kind(SpanKind::Client)
        .with_attributes(
            attributes
                .iter()
                .cloned()
                .chain([KeyValue::new("url.full", url.clone())]),
        )
        .start_with_context(&tracer, &Context::current());
    let cx = Context::current_with_span(span);
    let mut request = axum::http::Request::get(uri)
        .body(http_body_util::Empty::new())
        .map_err(|e| format!("building the request to {url}: {e}"))?;
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(request.headers_mut()))
    });
    let started = Instant::now();
    let call = async {
        use http_body_util::BodyExt as _;
        let response = client
            .request(request)
            .await
            .map_err(|e| CallError::Request(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CallError::Request(e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    let result = match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(CallError::Timeout(timeout)),
    };
    // The outcome, on the span and on the measurement; an error also sets the span's status.
    let (outcome, error) = match &result {
        Ok(answer) => {
            let mut outcome = vec![KeyValue::new(
                "http.response.status_code",
                i64::from(answer.status),
            )];
            let failed = answer.status >= 400;
            if failed {
                outcome.push(KeyValue::new("error.type", answer.status.to_string()));
            }
            (outcome, failed.then(String::new))
        }
        Err(e) => (
            vec![KeyValue::new("error.type", e.kind())],
            Some(e.to_string()),
        ),
    };
    let span = cx.span();
    for kv in &outcome {
        span.set_attribute(kv.clone());
    }
    if let Some(message) = error {
        span.set_status(Status::error(message));
    }
    attributes.extend(outcome);
    duration_histogram().record(started.elapsed().as_secs_f64(), &attributes);
    span.end();
    result.map_err(|e| format!("calling {url}: {e}"))
}
