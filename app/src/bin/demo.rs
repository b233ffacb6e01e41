//! The README's main job: build everything, put the `otel_custom_distro` plugin into a plugin directory, run the
//! service under `ndotel run` on SQLite, send a few requests (a health check, a bearer token, a password in the
//! query string), print what was exported, stop the service and check that no secret was exported.
//!
//! `cargo run -p app --bin demo` — output goes to `demo-out/` in the working directory.

use anyhow::{Context as _, Result, bail};
use app::{client, harness, otlp_json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Method, path, headers, JSON body.
type Request<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);

const SECRETS: &[&str] = &["s3cr3t-demo-token", "hunter2", "4111-1111-1111-1111"];

/// One span and its children, depth-first.
fn print_tree(spans: &[otlp_json::Span], s: &otlp_json::Span, depth: usize) {
    let kind = match s.kind {
        2 => "SERVER",
        3 => "CLIENT",
        _ => "INTERNAL",
    };
    let indent = "   ".repeat(depth + 1);
    let parent = if depth == 0 && !s.parent_span_id.is_empty() {
        format!(" (continues remote parent {})", s.parent_span_id)
    } else {
        String::new()
    };
    println!(
        "{indent}{kind} {} [trace {}, {}]{parent}",
        s.name,
        &s.trace_id[..12.min(s.trace_id.len())],
        s.service
    );
    for key in [
        "url.path",
        "url.query",
        "http.request.header.authorization",
        "http.response.status_code",
        "db.query.text",
        "url.full",
        "baggage.tenant",
    ] {
        if let Some(v) = s.attr(key) {
            println!("{indent}    {key} = {v}");
        }
    }
    for child in spans.iter().filter(|c| c.parent_span_id == s.span_id) {
        print_tree(spans, child, depth + 1);
    }
}

/// `drop_paths` of the distro's sampler in the demo's `distro.toml`.
fn configured_drop_paths(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let table: toml::Table = text.parse().unwrap_or_default();
    table
        .get("distro")
        .and_then(|d| d.get("otel_custom_distro"))
        .and_then(|d| d.get("sampler"))
        .and_then(|s| s.get("drop_paths"))
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("target dir")?
        .to_path_buf();
    let target = bin_dir.parent().context("target dir")?;
    println!("== building ndotel, the otel_custom_distro plugin and the service");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    // Not `--quiet`: a first build takes minutes, and cargo's progress says what it is doing.
    build.current_dir(&root).args([
        "build",
        "-p",
        "ndotel-cli",
        "-p",
        "otel_custom_distro_so",
        "-p",
        "app",
    ]);
    build.arg("--target-dir").arg(target);
    if bin_dir.ends_with("release") {
        build.arg("--release");
    }
    if !build.status()?.success() {
        bail!("cargo build failed");
    }

    let out = std::env::current_dir()?.join("demo-out");
    let _ = std::fs::remove_dir_all(&out);
    let plugins = out.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    for dir in [&out, &plugins] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let so = plugins.join("libotel_custom_distro.so");
    std::fs::copy(bin_dir.join("libotel_custom_distro.so"), &so)?;
    std::fs::set_permissions(&so, std::fs::Permissions::from_mode(0o755))?;
    // The distro's settings from the repository's distro.toml, without its plugin table: the plugin comes from
    // the plugin directory, as a platform team would ship it.
    let repo_toml = std::fs::read_to_string(root.join("distro.toml"))?;
    let settings = repo_toml
        .find("# ─── Settings of the reference distro")
        .map(|i| &repo_toml[i..])
        .unwrap_or("");
    std::fs::write(out.join("distro.toml"), settings)?;
    println!(
        "== plugin directory {} holds {}",
        plugins.display(),
        so.display()
    );

    // A second instance of the service, which the first calls on `/downstream/items`: one trace crosses both.
    let downstream_out = out.join("downstream");
    std::fs::create_dir_all(&downstream_out)?;
    let service = |name: &str, cwd: &Path| {
        let mut cmd = Command::new(bin_dir.join("ndotel"));
        cmd.args([
            "run",
            "--distro",
            "otel_custom_distro",
            "--traces_exporter",
            "file",
            "--metrics_exporter",
            "file",
            "--logs_exporter",
            "file",
        ])
        .args(["--service_name", name, "--"])
        .arg(bin_dir.join("app"))
        .current_dir(cwd)
        .env("OTEL_RUST_DISTRO_PATH", &plugins)
        .env("OTEL_RUST_DISTRO_CONFIG", out.join("distro.toml"))
        .env("APP_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}?mode=rwc", cwd.join("demo.db").display()),
        );
        cmd
    };
    let downstream = harness::start(service("ndotel-demo-downstream", &downstream_out))
        .map_err(anyhow::Error::msg)?;
    println!(
        "== downstream instance listening on {} (exports to {})",
        downstream.addr,
        downstream_out.display()
    );
    let mut cmd = service("ndotel-demo", &out);
    cmd.env("DOWNSTREAM_URL", format!("http://{}", downstream.addr))
        .env("OTEL_RUST_DISTRO_CONFIG", out.join("distro.toml"))
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        // The service records the Authorization header (opt-in, as the semantic conventions describe), so the check
        // below proves the distro redacted it rather than that nobody recorded it.
        .env(
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
            "authorization",
        );
    println!("== starting: ndotel run --distro otel_custom_distro ... -- app");
    let running = harness::start(cmd).map_err(anyhow::Error::msg)?;
    let addr = running.addr.clone();
    println!("== service listening on {addr}");

    let requests: [Request<'_>; 8] = [
        ("GET", "/health", vec![], None),
        (
            "POST",
            "/items",
            vec![],
            Some(r#"{"name":"teapot","price":12.5}"#),
        ),
        (
            "POST",
            "/items",
            vec![],
            Some(r#"{"name":"kettle","price":30}"#),
        ),
        (
            "GET",
            "/items",
            vec![("Authorization", "Bearer s3cr3t-demo-token")],
            None,
        ),
        (
            "GET",
            "/items?user=alice&password=hunter2&card=4111-1111-1111-1111",
            vec![],
            None,
        ),
        (
            "GET",
            "/items/1",
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            None,
        ),
        ("GET", "/items/999", vec![], None),
        (
            "GET",
            "/downstream/items",
            vec![("baggage", "tenant=acme")],
            None,
        ),
    ];
    for (method, path, headers, body) in &requests {
        let r = client::request(&addr, method, path, headers, *body)?;
        println!(
            "   {method:<4} {path:<40} -> {} {}",
            r.status,
            r.body.chars().take(60).collect::<String>()
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(1500)); // let one metric collection happen
    println!("== stopping the service (SIGTERM)");
    if !running.terminate().map_err(anyhow::Error::msg)?
        || !downstream.terminate().map_err(anyhow::Error::msg)?
    {
        bail!("the service did not exit cleanly");
    }
    let sent: Vec<&str> = requests
        .iter()
        .map(|(_, target, _, _)| target.split('?').next().unwrap_or(target))
        .collect();
    report(&out, &sent)
}

/// What was exported and what the distro did; `sent` are the paths requested.
fn report(out: &Path, sent: &[&str]) -> Result<()> {
    let traces: PathBuf = out.join("traces.jsonl");
    let mut spans = otlp_json::spans(&traces).map_err(anyhow::Error::msg)?;
    let downstream_traces = out.join("downstream").join("traces.jsonl");
    let downstream_spans = otlp_json::spans(&downstream_traces).map_err(anyhow::Error::msg)?;
    println!(
        "== {} + {} spans exported to {} and {} (OTLP JSON lines), as trees across both services",
        spans.len(),
        downstream_spans.len(),
        traces.display(),
        downstream_traces.display()
    );
    spans.extend(downstream_spans);
    // Roots (no parent here: a new trace, or a parent in another process), then each one's children, indented.
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let roots: Vec<&otlp_json::Span> = spans
        .iter()
        .filter(|s| !ids.contains(s.parent_span_id.as_str()))
        .collect();
    for root in roots {
        print_tree(&spans, root, 0);
    }

    println!("== what the distro did");
    // Dropped: requests that reached the service but left no span.
    let drop_paths = configured_drop_paths(&out.join("distro.toml"));
    for path in &drop_paths {
        if sent.contains(&path.as_str()) && !spans.iter().any(|s| s.attr("url.path") == Some(path))
        {
            println!(
                "   dropped   GET {path}: its whole trace (DB children too) — the sampler's drop_paths lists {path}"
            );
        }
    }
    // Redacted: every exported value the distro replaced, with where it sits.
    for s in &spans {
        for (k, v) in &s.attributes {
            if v.contains("[REDACTED]") || v.contains("REDACTED:REDACTED") {
                println!("   redacted  {} · {k} = {v}", s.name);
            }
        }
    }
    println!(
        "   resource  deployment.environment.name and service.version come from the distro's [resource] table"
    );
    println!(
        "== next: `ndotel list` / `ndotel check` / `ndotel config` (in {}), OTEL_TRACES_EXPORTER=console to print \
         spans, OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 to send them to a collector",
        out.display()
    );

    let metrics_path = out.join("metrics.jsonl");
    let metrics = otlp_json::last_metrics(&metrics_path).map_err(anyhow::Error::msg)?;
    println!("== last metric collection in {}", metrics_path.display());
    for (name, points) in &metrics {
        println!("   {name:<40} {points} data point(s)");
    }

    let logs_path = out.join("logs.jsonl");
    let logs = otlp_json::logs(&logs_path).map_err(anyhow::Error::msg)?;
    println!(
        "== {} log records exported to {}, through the distro's log processor",
        logs.len(),
        logs_path.display()
    );
    for l in &logs {
        let span = spans
            .iter()
            .find(|s| !l.span_id.is_empty() && s.span_id == l.span_id);
        let within = span.map_or(String::new(), |s| format!("  (in span {})", s.name));
        println!("   {:<5} {}{within}", l.severity, l.body);
        for (k, v) in &l.attributes {
            if v.contains("[REDACTED]") {
                println!("         {k} = {v}");
            }
        }
    }

    let mut exported = String::new();
    for dir in [out.to_path_buf(), out.join("downstream")] {
        for f in ["traces.jsonl", "metrics.jsonl", "logs.jsonl"] {
            exported.push_str(&std::fs::read_to_string(dir.join(f)).unwrap_or_default());
        }
    }
    let leaked: Vec<&&str> = SECRETS.iter().filter(|s| exported.contains(**s)).collect();
    if spans.iter().any(|s| s.attr("url.path") == Some("/health")) {
        bail!("a /health span was exported");
    }
    if !leaked.is_empty() {
        bail!("secrets reached the export: {leaked:?}");
    }
    if spans.is_empty() || metrics.is_empty() {
        bail!("nothing was exported");
    }
    let crossing = spans.iter().any(|down| {
        down.service == "ndotel-demo-downstream"
            && spans.iter().any(|up| {
                up.service == "ndotel-demo" && up.kind == 3 && up.span_id == down.parent_span_id
            })
    });
    if !crossing {
        bail!("no trace crossed from the service to its downstream instance");
    }
    if !logs
        .iter()
        .any(|l| l.body.starts_with("listing items for query"))
    {
        bail!(
            "the log record quoting the query was not exported: the leak check would prove nothing"
        );
    }
    if !spans
        .iter()
        .any(|s| s.attr("http.request.header.authorization").is_some())
    {
        bail!("the Authorization header was not recorded: the leak check would prove nothing");
    }
    println!(
        "== ok: no /health span, no secret ({}) in the spans, metrics or logs exported",
        SECRETS.join(", ")
    );
    Ok(())
}
