//! The example service's throughput with no telemetry and under distros, measured side by side in one run:
//! variants alternate round by round (so drift on this noisy machine hits them all alike), each round a `wrk` run
//! against `GET /items` (HTTP + one SQLite query + JSON), with its p99 latency and the service's peak RSS; then one
//! long run each of the baseline and the most exporting variant for memory. Writes its section of
//! `benches/results.md`.
//!
//! `cargo run --release -p ndotel-benches --bin app_throughput [-- --rounds N --seconds S --soak S]` (needs `wrk`).

use anyhow::{Context as _, Result, bail};
use app::{client, harness};
use ndotel_benches::{replace_section, today};
use ndotel_tests::{
    Collector, build_artifacts, plugin_dir, profile_dir, rotel_agent, setup, start_rotel,
};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

struct Variant {
    name: &'static str,
    what: &'static str,
    env: Vec<(&'static str, String)>,
}

fn variants(collector: Option<&Collector>) -> Vec<Variant> {
    let custom = |exporter: &str| {
        vec![
            ("OTEL_RUST_DISTRO", "otel_custom_distro".to_string()),
            ("OTEL_TRACES_EXPORTER", exporter.to_string()),
        ]
    };
    let mut v = vec![
        Variant {
            name: "baseline",
            what: "no telemetry (OTEL_SDK_DISABLED=true)",
            env: vec![("OTEL_SDK_DISABLED", "true".into())],
        },
        Variant {
            name: "sdk_none",
            what: "ndotel built-in `sdk` distro, spans made but not exported",
            env: vec![
                ("OTEL_RUST_DISTRO", "sdk".into()),
                ("OTEL_TRACES_EXPORTER", "none".into()),
            ],
        },
        Variant {
            name: "custom_none",
            what: "otel_custom_distro from its .so (sampler, processor), spans not exported",
            env: custom("none"),
        },
        Variant {
            name: "custom_file",
            what: "otel_custom_distro from its .so, OTLP/JSON file exporter",
            env: custom("file"),
        },
    ];
    if let Some(c) = collector {
        let otlp = [
            ("OTEL_TRACES_EXPORTER", "otlp".to_string()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", c.grpc),
            ),
        ];
        // The setup a team writes by hand: the plain SDK, `tracing-opentelemetry`, opentelemetry-otlp's exporter
        // behind the SDK's batch processor.
        let mut env = vec![
            ("OTEL_RUST_DISTRO", "sdk".to_string()),
            ("OTEL_RUST_TRACING_BRIDGE", "tracing-opentelemetry".into()),
            ("OTEL_RUST_OTLP_ENCODER", "opentelemetry-otlp".into()),
            ("OTEL_RUST_SPAN_QUEUE", "sdk".into()),
        ];
        env.extend(otlp.clone());
        v.push(Variant {
            name: "by_hand_otlp",
            what: "by hand: `sdk` distro, `tracing-opentelemetry`, the SDK's batch processor, opentelemetry-otlp's \
                   exporter, OTLP/gRPC to rotel",
            env,
        });
        let mut env = custom("otlp");
        env.extend(otlp);
        v.push(Variant {
            name: "custom_otlp",
            what: "otel_custom_distro from its .so, OTLP/gRPC to a rotel collector on the same machine",
            env,
        });
    }
    v
}

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One round's measurements.
#[derive(Debug, Clone, Copy)]
struct Round {
    rps: f64,
    /// wrk's 99th percentile latency, in ms.
    p99_ms: f64,
    /// The service's peak resident set (VmHWM), in MiB.
    rss_mib: f64,
}

/// wrk's latency percentile line (`     99%    1.23ms`) in ms.
fn percentile_ms(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    let v = line.split_whitespace().nth(1)?;
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

/// The peak resident set of process `pid`, in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn run_round(v: &Variant, dir: &Path, plugins: &Path, seconds: u32) -> Result<Round> {
    let mut cmd = Command::new(profile_dir().join("app"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir)
        .env("OTEL_RUST_DISTRO_PATH", plugins)
        .env("OTEL_METRICS_EXPORTER", "none")
        // The measured request writes no log record; off, so no variant retries exports to a missing collector.
        .env("OTEL_LOGS_EXPORTER", "none")
        .env("APP_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}?mode=rwc", dir.join("bench.db").display()),
        );
    for (k, val) in &v.env {
        cmd.env(k, val);
    }
    let app = harness::start(cmd).map_err(anyhow::Error::msg)?;
    for i in 0..5 {
        let body = format!(r#"{{"name":"item-{i}","price":{i}.5}}"#);
        client::request(&app.addr, "POST", "/items", &[], Some(&body))?;
    }
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{seconds}s"), "--latency"])
        .arg(format!("http://{}/items", app.addr))
        .output()
        .context("running wrk (install it: apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rss_mib = peak_rss_mib(app.child.id()).context("reading the service's VmHWM")?;
    if !app.terminate().map_err(anyhow::Error::msg)? {
        bail!("{}: the service did not exit cleanly", v.name);
    }
    if text.contains("Non-2xx") {
        bail!("{}: errors during the run:\n{text}", v.name);
    }
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|r| r.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let p99_ms =
        percentile_ms(&text, "99%").with_context(|| format!("no 99% in wrk output:\n{text}"))?;
    Ok(Round {
        rps,
        p99_ms,
        rss_mib,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let rounds = arg("--rounds", 5);
    let seconds = arg("--seconds", 5);
    let soak = arg("--soak", 60);
    build_artifacts();
    let tmp = setup();
    let plugins = plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let collector = rotel_agent().map(|bin| {
        let dir = tmp.path().join("rotel");
        std::fs::create_dir_all(&dir).map(|_| start_rotel(&bin, &dir, None))
    });
    let collector = collector.transpose()?;
    let variants = variants(collector.as_ref());
    let mut results: Vec<Vec<Round>> = vec![Vec::new(); variants.len()];
    for round in 1..=rounds {
        for (i, v) in variants.iter().enumerate() {
            let dir = tmp.path().join(format!("{}-{round}", v.name));
            std::fs::create_dir_all(&dir)?;
            let r = run_round(v, &dir, &plugins, seconds)?;
            println!(
                "round {round} {:<12} {:>8.0} req/s  p99 {:>6.2} ms  peak RSS {:>6.1} MiB",
                v.name, r.rps, r.p99_ms, r.rss_mib
            );
            results[i].push(r);
        }
    }
    let col =
        |i: usize, f: fn(&Round) -> f64| median(&mut results[i].iter().map(f).collect::<Vec<_>>());
    let base_rss = col(0, |r| r.rss_mib);
    let mut table = String::new();
    writeln!(
        table,
        "# Example service throughput, tail latency and memory under ndotel\n"
    )?;
    writeln!(
        table,
        "`cargo run --release -p ndotel-benches --bin app_throughput -- --rounds {rounds} --seconds {seconds} --soak {soak}` on {}: \
         `wrk -t1 -c16 --latency` on `GET /items` (HTTP + one SQLite query + JSON), {rounds} alternating rounds of \
         {seconds} s per variant on one 2-core machine (the service, wrk and the collector share it); req/s and p99 \
         are medians over the rounds, and each ratio is the median of the round-by-round ratios to the no-telemetry \
         baseline run just before (so drift between rounds cancels). Peak RSS is the service's VmHWM \
         at the end of a round. Targets: throughput ≥ 0.90× exporting and ≥ 0.95× not exporting, p99 ≤ 1.5×, peak \
         RSS within 10 MiB. The Python stack (opentelemetry-instrument + Flask, OTLP) measured 0.495× throughput and \
         p99 ×4.7 here.\n",
        today()
    )?;
    writeln!(
        table,
        "| variant | what | req/s | × | p99 ms | × | peak RSS MiB | Δ MiB | rounds (req/s) |"
    )?;
    writeln!(table, "|---|---|---:|---:|---:|---:|---:|---:|---|")?;
    for (i, v) in variants.iter().enumerate() {
        let (rps, rss) = (col(i, |r| r.rps), col(i, |r| r.rss_mib));
        // Ratios per round (each variant against the baseline run just before it), then their median: the
        // machine's drift between rounds cancels out.
        let per_round = |f: fn(&Round) -> f64| {
            let mut r: Vec<f64> = results[i]
                .iter()
                .zip(&results[0])
                .map(|(v, b)| f(v) / f(b))
                .collect();
            median(&mut r)
        };
        let p99 = col(i, |r| r.p99_ms);
        let all: Vec<String> = results[i].iter().map(|r| format!("{:.0}", r.rps)).collect();
        writeln!(
            table,
            "| {} | {} | {rps:.0} | {:.3}× | {p99:.2} | {:.2}× | {rss:.1} | {:+.1} | {} |",
            v.name,
            v.what,
            per_round(|r| r.rps),
            per_round(|r| r.p99_ms),
            rss - base_rss,
            all.join(", ")
        )?;
    }
    // Memory under a long load: the baseline and the last (most exporting) variant, one run each.
    if soak > 0 {
        let last = variants.len() - 1;
        let mut peak = Vec::new();
        for i in [0, last] {
            let v = &variants[i];
            let dir = tmp.path().join(format!("{}-soak", v.name));
            std::fs::create_dir_all(&dir)?;
            let r = run_round(v, &dir, &plugins, soak)?;
            println!(
                "soak {:<12} {:>8.0} req/s  peak RSS {:>6.1} MiB",
                v.name, r.rps, r.rss_mib
            );
            peak.push((v.name, r.rss_mib));
        }
        writeln!(
            table,
            "\nUnder one {soak} s load each: peak RSS {:.1} MiB for {}, {:.1} MiB for {} ({:+.1} MiB; target within \
             10 MiB).",
            peak[0].1,
            peak[0].0,
            peak[1].1,
            peak[1].0,
            peak[1].1 - peak[0].1
        )?;
    }
    println!("\n{table}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text = replace_section(&text, "app_throughput", &table);
    std::fs::write(&path, text)?;
    println!("section app_throughput written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use ndotel_benches::replace_section;

    #[test]
    fn a_section_is_replaced_and_the_rest_kept() {
        let text = "# Mine\nkeep\n<!-- begin a -->\nold\n<!-- end a -->\ntail\n";
        assert_eq!(
            replace_section(text, "a", "new\n"),
            "# Mine\nkeep\n<!-- begin a -->\nnew\n<!-- end a -->\ntail\n"
        );
        assert_eq!(
            replace_section("# Mine\n", "b", "x"),
            "# Mine\n\n<!-- begin b -->\nx\n<!-- end b -->\n"
        );
    }
}
