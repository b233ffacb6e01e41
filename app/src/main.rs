//! The example service: axum + sqlx, the Rust counterpart of the seed's Flask + MySQL `app.py`.
//!
//! It calls `ndotel::init()` once; everything else is instrumentation libraries and `tracing`:
//! `opentelemetry-instrumentation-tower` makes a SERVER span per request (semantic-convention attributes, incoming
//! `traceparent` continued) and records the `http.server.request.duration` histogram, each query runs in a CLIENT
//! span made with `tracing`, and observable instruments report DB pool and process usage.
//!
//! `APP_ADDR` (default `127.0.0.1:8080`; port 0 picks a free one) and `DATABASE_URL` (default an embedded SQLite
//! file `ndotel-app.db` in the working directory; `mysql://user:pass@host:port/db` for MySQL/MariaDB);
//! `DOWNSTREAM_URL` (`http://host:port`) is the service `GET /downstream/items` calls with an instrumented client.
//! SIGTERM or SIGINT: stop accepting, finish in-flight requests, then flush every finished span and the last metrics.

mod downstream;

use anyhow::{Context as _, Result};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use opentelemetry::KeyValue;
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use std::time::Duration;
use tracing::Instrument as _;

#[derive(Clone)]
struct AppState {
    pool: AnyPool,
    /// `sqlite` or `mysql`, for `db.system.name`.
    system: &'static str,
    /// `DOWNSTREAM_URL`: the service `/downstream/items` calls (another instance of this one, say).
    downstream: Option<String>,
    /// The HTTP client for it.
    client: downstream::Client,
}

#[derive(Debug, Serialize)]
struct Item {
    id: i64,
    name: String,
    price: f64,
}

impl Item {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Item, sqlx::Error> {
        Ok(Item {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            price: r.try_get("price")?,
        })
    }
}

#[derive(Debug, Deserialize)]
struct NewItem {
    name: String,
    price: f64,
}

#[derive(Debug, Deserialize)]
struct SlowParams {
    ms: Option<u64>,
}

/// An error answered as a JSON body with a status; the cause goes to the log and the current span.
struct AppError(StatusCode, String);

impl AppError {
    /// An error the request's SERVER span records: an `exception` event and an error status, both with the
    /// message (which may quote the request: the distro's processor redacts what must not leave the process).
    fn new(status: StatusCode, message: String) -> Self {
        use opentelemetry::trace::{Status, TraceContextExt as _};
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", "AppError"),
                KeyValue::new("exception.message", message.clone()),
            ],
        );
        span.set_status(Status::error(message.clone()));
        AppError(status, message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database error");
        AppError(StatusCode::INTERNAL_SERVER_ERROR, "database error".into())
    }
}

/// The CLIENT span of one query, with the database semantic-convention attributes.
fn db_span(
    state: &AppState,
    operation: &'static str,
    table: &'static str,
    sql: &str,
) -> tracing::Span {
    tracing::info_span!(
        "db query",
        otel.kind = "client",
        otel.name = format!("{operation} {table}"),
        db.system.name = state.system,
        db.operation.name = operation,
        db.collection.name = table,
        db.query.text = sql,
    )
}

async fn health() -> &'static str {
    "ok"
}

async fn list_items(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Item>>, AppError> {
    const SQL: &str = "SELECT id, name, price FROM items WHERE deleted = 0 ORDER BY id LIMIT 100";
    // A log record as services write them, quoting the request: whatever it carries (a password in the query,
    // say) is the distro's log processor's to redact, in the message and in the attribute.
    if let Some(query) = &query {
        tracing::info!(url.query = %query, "listing items for query {query}");
    }
    let rows = sqlx::query(SQL)
        .fetch_all(&state.pool)
        .instrument(db_span(&state, "SELECT", "items", SQL))
        .await?;
    let items = rows
        .iter()
        .map(Item::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(items))
}

async fn get_item(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Item>, AppError> {
    const SQL: &str = "SELECT id, name, price FROM items WHERE id = ? AND deleted = 0";
    let row = sqlx::query(SQL)
        .bind(id)
        .fetch_optional(&state.pool)
        .instrument(db_span(&state, "SELECT", "items", SQL))
        .await?;
    match row {
        Some(r) => Ok(Json(Item::from_row(&r)?)),
        None => Err(AppError::new(
            StatusCode::NOT_FOUND,
            format!("no item {id}"),
        )),
    }
}

async fn create_item(
    State(state): State<AppState>,
    Json(new): Json<NewItem>,
) -> Result<(StatusCode, Json<Item>), AppError> {
    if new.name.trim().is_empty() || !new.price.is_finite() || new.price < 0.0 {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "rejected item {:?} at price {}: name must be non-empty and price >= 0",
                new.name, new.price
            ),
        ));
    }
    // A business operation of the service's own: a span around it (with `tracing`, as for the queries) and a
    // counter of what it did, both through the distro like everything else.
    let span =
        tracing::info_span!("item.create", item.name = %new.name, item.id = tracing::field::Empty);
    let id = insert_item(&state, &new).instrument(span.clone()).await?;
    span.record("item.id", id);
    items_created().add(1, &[KeyValue::new("db.system.name", state.system)]);
    tracing::info!(item.id = id, "created item {id}");
    Ok((
        StatusCode::CREATED,
        Json(Item {
            id,
            name: new.name,
            price: new.price,
        }),
    ))
}

/// The counter of items created (`items.created`), made once.
fn items_created() -> &'static opentelemetry::metrics::Counter<u64> {
    static COUNTER: std::sync::OnceLock<opentelemetry::metrics::Counter<u64>> =
        std::sync::OnceLock::new();
    COUNTER.get_or_init(|| {
        opentelemetry::global::meter("app")
            .u64_counter("items.created")
            .with_description("Items created through POST /items")
            .with_unit("{item}")
            .build()
    })
}

async fn insert_item(state: &AppState, new: &NewItem) -> Result<i64, AppError> {
    // MySQL reports the new id with the result; SQLite (through sqlx's Any driver) needs RETURNING.
    Ok(if state.system == "mysql" {
        const SQL: &str = "INSERT INTO items (name, price, deleted) VALUES (?, ?, 0)";
        let result = sqlx::query(SQL)
            .bind(&new.name)
            .bind(new.price)
            .execute(&state.pool)
            .instrument(db_span(state, "INSERT", "items", SQL))
            .await?;
        result.last_insert_id().unwrap_or_default()
    } else {
        const SQL: &str = "INSERT INTO items (name, price, deleted) VALUES (?, ?, 0) RETURNING id";
        let row = sqlx::query(SQL)
            .bind(&new.name)
            .bind(new.price)
            .fetch_one(&state.pool)
            .instrument(db_span(state, "INSERT", "items", SQL))
            .await?;
        row.try_get("id")?
    })
}

/// `GET /downstream/items`: the items of the service at `DOWNSTREAM_URL`, fetched with the instrumented client
/// (a CLIENT span; `traceparent` and `baggage` sent on, so the callee continues this trace).
async fn downstream_items(State(state): State<AppState>) -> Result<Response, AppError> {
    let Some(base) = &state.downstream else {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "DOWNSTREAM_URL is not set: this route calls another instance of the service".into(),
        ));
    };
    let answer = downstream::get(&state.client, base, "/items", Duration::from_secs(10))
        .await
        .map_err(|e| AppError::new(StatusCode::BAD_GATEWAY, e))?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response())
}

async fn slow(Query(p): Query<SlowParams>) -> String {
    let ms = p.ms.unwrap_or(100).min(60_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms")
}

fn router(state: AppState) -> Result<Router> {
    // No request extractor: what it returns also labels every `http.server.*` metric, and `server.address` comes
    // from the client's `Host`, so each made-up host would be a series of its own for as long as the service runs.
    // It goes on the SERVER span only (`record_request_context`).
    let http = opentelemetry_instrumentation_tower::http::server::LayerBuilder::builder()
        .build()
        .map_err(|e| anyhow::anyhow!("building the HTTP instrumentation: {e:?}"))?;
    Ok(Router::new()
        .route("/health", get(health))
        .route("/items", get(list_items).post(create_item))
        .route("/items/{id}", get(get_item))
        .route("/slow", get(slow))
        .route("/downstream/items", get(downstream_items))
        .with_state(state)
        // Opt-in request header capture (`http.request.header.<name>`), inside the SERVER span.
        .layer(axum::middleware::from_fn(capture_request_headers))
        // The server's address and port, the original method and the baggage that arrived, on the SERVER span.
        .layer(axum::middleware::from_fn(record_request_context))
        // Every route is traced, health checks included: dropping them is the distro sampler's decision.
        // One middleware makes the SERVER span (OpenTelemetry API directly, incoming `traceparent` continued) and
        // records the `http.server.*` metrics; query spans made with `tracing` nest under it. Measured: a third of
        // the per-request cost of `axum-tracing-opentelemetry` + `tracing-opentelemetry` for the same span.
        .layer(http)
        // Outermost: the scheme and authority of origin-form requests, so `url.scheme` says `http`, and a method
        // the semantic conventions do not know as `_OTHER`.
        .layer(axum::middleware::from_fn(absolute_uri)))
}

/// The method a request came with, when it was not one the HTTP semantic conventions know: recorded on the SERVER
/// span as `http.request.method_original`.
#[derive(Clone)]
struct OriginalMethod(axum::http::Method);

/// Whether the HTTP semantic conventions know `method` (anything else is recorded as `_OTHER`).
fn known_method(method: &axum::http::Method) -> bool {
    use axum::http::Method;
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ]
    .contains(method)
}

/// Rewrites an origin-form request target (`/items?q=1`) to its absolute form (`http://host/items?q=1`), as a plain
/// HTTP server sees it: the HTTP instrumentation reads `url.scheme` from the URI. A `Host` that is not a valid
/// authority (or carries userinfo) leaves the request as it came.
///
/// A method the semantic conventions do not know becomes `_OTHER` before the instrumentation sees it (the original
/// goes on the span as `http.request.method_original`): a client making up methods would otherwise make up metric
/// series too. No route answers `_OTHER`, as none answered the made-up method.
async fn absolute_uri(mut req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if !known_method(req.method())
        && let Ok(other) = axum::http::Method::from_bytes(b"_OTHER")
    {
        let original = std::mem::replace(req.method_mut(), other);
        req.extensions_mut().insert(OriginalMethod(original));
    }
    if req.uri().scheme().is_none() {
        let host = req
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
            .filter(|a| !a.as_str().contains('@'));
        if let Some(authority) = host {
            let mut parts = req.uri().clone().into_parts();
            parts.scheme = Some(axum::http::uri::Scheme::HTTP);
            parts.authority = Some(authority);
            if parts.path_and_query.is_none() {
                parts.path_and_query = Some(axum::http::uri::PathAndQuery::from_static("/"));
            }
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    } else if req.uri().scheme() != Some(&axum::http::uri::Scheme::HTTP) {
        // An absolute-form target names its own scheme, but this server speaks plain HTTP whatever it says:
        // `url.scheme` (a metric label) is `http`, never a client's made-up one.
        let mut parts = req.uri().clone().into_parts();
        parts.scheme = Some(axum::http::uri::Scheme::HTTP);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    next.run(req).await
}

/// The request headers named in `OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST` (comma-separated, case
/// insensitive, the variable Python's instrumentations read), recorded on the SERVER span as
/// `http.request.header.<lower-case name>` string arrays, as the semantic conventions describe. Off by default:
/// headers carry credentials, and what is recorded is then the distro's to redact.
async fn capture_request_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use opentelemetry::trace::TraceContextExt as _;
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        std::env::var("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST")
            .unwrap_or_default()
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect()
    });
    if !names.is_empty() {
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        for name in names {
            let values: Vec<opentelemetry::StringValue> = req
                .headers()
                .get_all(name.as_str())
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
                .collect();
            if !values.is_empty() {
                span.set_attribute(KeyValue::new(
                    format!("http.request.header.{name}"),
                    opentelemetry::Value::Array(values.into()),
                ));
            }
        }
    }
    next.run(req).await
}

/// Records on the SERVER span what only the span should carry: `server.address` and `server.port` (from the
/// request, so a client chooses them: never metric labels), the method a request came with when it was recorded as
/// `_OTHER`, and the request's baggage entries (extracted by the global propagator with the trace context) as
/// `baggage.<key>` attributes, so a trace shows what travelled with it. Values pass the distro's redaction like any
/// attribute.
async fn record_request_context(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use opentelemetry::baggage::BaggageExt as _;
    use opentelemetry::trace::TraceContextExt as _;
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    if span.is_recording() {
        for attribute in server_attributes(&req) {
            span.set_attribute(attribute);
        }
        if let Some(OriginalMethod(m)) = req.extensions().get::<OriginalMethod>() {
            span.set_attribute(KeyValue::new(
                "http.request.method_original",
                m.as_str().to_string(),
            ));
        }
    }
    let baggage = cx.baggage();
    if !baggage.is_empty() {
        for (key, (value, _)) in baggage.iter() {
            span.set_attribute(KeyValue::new(
                format!("baggage.{}", key.as_str()),
                value.as_str().to_string(),
            ));
        }
    }
    next.run(req).await
}

/// `server.address` / `server.port` from the `Host` header (the middleware does not set them), parsed as an
/// authority: a `user:password@` in it is never recorded, and a header that is not a host is left out. For the
/// SERVER span only.
fn server_attributes(req: &axum::http::Request<axum::body::Body>) -> Vec<KeyValue> {
    // The URI's authority: parsed from `Host` once by `absolute_uri`, or the absolute-form target's own (which
    // takes precedence over `Host`, RFC 9112). `Host` itself only when `absolute_uri` left it (userinfo in it).
    let authority = req.uri().authority().cloned().or_else(|| {
        req.headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
    });
    let Some(authority) = authority else {
        return Vec::new();
    };
    let mut attrs = vec![KeyValue::new(
        "server.address",
        authority.host().to_string(),
    )];
    attrs.extend(
        authority
            .port_u16()
            .map(|p| KeyValue::new("server.port", i64::from(p))),
    );
    attrs
}

async fn schema(pool: &AnyPool, system: &str) -> Result<()> {
    let ddl = if system == "mysql" {
        "CREATE TABLE IF NOT EXISTS items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, \
         price DOUBLE NOT NULL, deleted INT NOT NULL DEFAULT 0)"
    } else {
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, \
         price REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)"
    };
    sqlx::query(ddl)
        .execute(pool)
        .await
        .context("creating the items table")?;
    Ok(())
}

/// DB pool gauges and process CPU time / memory, read when the metric reader collects.
fn register_metrics(pool: AnyPool) {
    let meter = opentelemetry::global::meter("app");
    meter
        .i64_observable_up_down_counter("db.client.connection.count")
        .with_description("Connections of the pool, by state")
        .with_unit("{connection}")
        .with_callback(move |obs| {
            let idle = pool.num_idle() as i64;
            let used = pool.size() as i64 - idle;
            obs.observe(used, &[KeyValue::new("db.client.connection.state", "used")]);
            obs.observe(idle, &[KeyValue::new("db.client.connection.state", "idle")]);
        })
        .build();
    meter
        .f64_observable_counter("process.cpu.time")
        .with_description("CPU time used by the process")
        .with_unit("s")
        .with_callback(|obs| {
            let (user, system) = cpu_times();
            obs.observe(user, &[KeyValue::new("cpu.mode", "user")]);
            obs.observe(system, &[KeyValue::new("cpu.mode", "system")]);
        })
        .build();
    meter
        .i64_observable_up_down_counter("process.memory.usage")
        .with_description("Resident memory of the process")
        .with_unit("By")
        .with_callback(|obs| obs.observe(resident_bytes(), &[]))
        .build();
}

fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct we pass and has no other preconditions.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

fn resident_bytes() -> i64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i64>().ok())
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// How long in-flight requests may take to finish after SIGTERM (`APP_DRAIN_TIMEOUT`, milliseconds; default 5000).
fn drain_timeout() -> Duration {
    std::env::var("APP_DRAIN_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

fn main() -> Result<()> {
    let telemetry = ndotel::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let served = runtime.block_on(serve(telemetry.distro()));
    // A request stuck forever (inside a hanging distro call, say) must not hold the exit: the runtime's threads get
    // one second, then the process goes on without them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(telemetry); // flushes every finished span and the last metrics, within OTEL_RUST_SHUTDOWN_TIMEOUT
    served?;
    println!("stopped");
    Ok(())
}

async fn serve(distro: &str) -> Result<()> {
    let addr = std::env::var("APP_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite:ndotel-app.db?mode=rwc".into());
    let system = if url.starts_with("mysql:") || url.starts_with("mariadb:") {
        "mysql"
    } else {
        "sqlite"
    };

    install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .with_context(|| format!("connecting to the database ({system}); check DATABASE_URL"))?;
    schema(&pool, system).await?;
    register_metrics(pool.clone());

    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}; set APP_ADDR"))?;
    // Tests and scripts read the actual address from this line.
    println!(
        "listening on http://{} (database: {system}, distro: {distro})",
        listener.local_addr()?
    );
    let app = router(AppState {
        pool: pool.clone(),
        system,
        downstream: std::env::var("DOWNSTREAM_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
        client: downstream::client(),
    })?;
    let (stopping, mut stop_seen) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    });
    let drain = drain_timeout();
    tokio::select! {
        served = server.into_future() => served.context("serving HTTP")?,
        _ = async {
            let _ = stop_seen.wait_for(|stop| *stop).await;
            tokio::time::sleep(drain).await;
        } => eprintln!("app: in-flight requests did not finish within {drain:?} of the stop signal; stopping anyway"),
    }
    if tokio::time::timeout(Duration::from_secs(2), pool.close())
        .await
        .is_err()
    {
        eprintln!("app: database connections still in use after 2s; closing anyway");
    }
    Ok(())
}
