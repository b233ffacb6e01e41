//! `cargo run --release -p ndotel-benches --bin instructions`: the per-span and per-request cost of every variant
//! of `span_loop`, counted in instructions with callgrind — (Ir at 3·N − Ir at N) / 2·N, so start-up cancels out.
//! Unlike wall-clock time on a shared 2-core machine, instruction counts repeat to within a few instructions.
//! Writes the `instructions` section of `benches/results.md`. Needs `valgrind`.

use anyhow::{Context as _, Result, bail};
use ndotel_benches::{replace_section, today};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Instructions per iteration of `span_loop VARIANT SECRET`.
fn per_iteration(variant: &str, secret: &str, n: u64) -> Result<f64> {
    let exe = std::env::current_exe()?
        .parent()
        .context("no directory")?
        .join("span_loop");
    let ir = |count: u64| -> Result<u64> {
        // A cleared environment: the environment's size shifts the heap's start-up layout, which moved glibc's
        // malloc off its fast path for one variant and not another (~250 instructions per span), so a count
        // depended on the shell the bench was started from.
        let out = Command::new("valgrind")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .args([variant, secret, &count.to_string()])
            .output()
            .context("running valgrind (apt-get install valgrind)")?;
        let text = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("span_loop {variant} {secret} {count} failed:\n{text}");
        }
        text.lines()
            .find_map(|l| l.split("Collected : ").nth(1))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no instruction count in:\n{text}"))
    };
    let (a, b) = (ir(n)?, ir(3 * n)?);
    Ok((b as f64 - a as f64) / (2 * n) as f64)
}

fn main() -> Result<()> {
    let mut out = String::new();
    let measure = |variant: &str, secret: &str, n: u64| -> Result<f64> {
        let v = per_iteration(variant, secret, n)?;
        println!("{variant:<22} secret={secret}  {v:>10.0} instructions");
        Ok(v)
    };
    writeln!(out, "# Instructions per span and per request\n")?;
    writeln!(
        out,
        "`cargo run --release -p ndotel-benches --bin instructions` on {}: `span_loop` under callgrind, \
         (Ir at 3·N − Ir at N) / 2·N. One SERVER span with 8 attributes (as `benches/src/lib.rs` makes it), exporters \
         off, so the difference is the distro's work on the request thread: its sampler and its start attributes \
         across the FFI boundary for the reference distro loaded as a `.so` (its processor's edits run on ndotel's \
         batch thread, and only when an exporter is selected: not counted here; see the per-request figures \
         above).\n",
        today()
    )?;
    let bare = measure("bare", "0", 1000)?;
    let rows = [
        ("clean span, ndotel `sdk` distro", "sdk", "0", "≤ 1.1×"),
        (
            "clean span, reference distro `.so`",
            "custom",
            "0",
            "≤ 1.5×",
        ),
        (
            "span with a bearer token to redact, `.so`",
            "custom",
            "1",
            "≤ 2×",
        ),
        (
            "`tracing` span, ndotel `sdk` distro",
            "tracing_sdk",
            "0",
            "≤ 3×",
        ),
        (
            "`tracing` span, reference distro `.so`",
            "tracing_custom",
            "0",
            "≤ 3×",
        ),
        (
            "`tracing` span, `sdk` distro, through `tracing-opentelemetry` instead",
            "tracing_sdk_bridge",
            "0",
            "",
        ),
        (
            "`tracing` span, `.so`, through `tracing-opentelemetry` instead",
            "tracing_custom_bridge",
            "0",
            "",
        ),
    ];
    writeln!(out, "| span | instructions | × bare SDK span | target |")?;
    writeln!(out, "|---|---:|---:|---|")?;
    writeln!(out, "| clean span, bare SDK | {bare:.0} | 1.00× | |")?;
    for (what, variant, secret, target) in rows {
        let v = measure(variant, secret, 1000)?;
        writeln!(out, "| {what} | {v:.0} | {:.2}× | {target} |", v / bare)?;
    }
    let encode = measure("encode", "0", 5120)?;
    writeln!(
        out,
        "\nOTLP encoding by ndotel's encoder, per span of 8 attributes in batches of 512 (batch overhead included): \
         {encode:.0} instructions; target ≤ 1,500."
    )?;
    let off = measure("bare_off", "0", 1000)?;
    let health = measure("custom_health", "0", 1000)?;
    writeln!(
        out,
        "\nA health check dropped by the reference distro's sampler: {health:.0} instructions, {:.2}× the SDK's \
         AlwaysOff sampler ({off:.0}); target ≤ 1.2×.\n",
        health / off
    )?;
    writeln!(
        out,
        "How cost grows (per request, reference distro `.so` beside the bare SDK):\n"
    )?;
    writeln!(out, "| request | bare SDK | `.so` | × | `.so` slope |")?;
    writeln!(out, "|---|---:|---:|---:|---:|")?;
    // `bare_<shape>_<k>` beside `custom_<shape>_<k>`; the slope is the `.so` cost per added unit.
    let mut slope = |label: &str, unit: &str, shape: &str, ks: [usize; 3]| -> Result<()> {
        let mut prev: Option<(usize, f64)> = None;
        for k in ks {
            let n = (1000 / (1 + k as u64)).max(10);
            let b = measure(&format!("bare_{shape}_{k}"), "0", n)?;
            let c = measure(&format!("custom_{shape}_{k}"), "0", n)?;
            let per = prev
                .map(|(pk, pc)| format!("{:.0} per {unit}", (c - pc) / (k - pk) as f64))
                .unwrap_or_default();
            writeln!(
                out,
                "| {label} {k} | {b:.0} | {c:.0} | {:.2}× | {per} |",
                c / b
            )?;
            prev = Some((k, c));
        }
        Ok(())
    };
    slope(
        "SERVER span + children:",
        "child span",
        "children",
        [1, 10, 100],
    )?;
    slope("one span, attributes:", "attribute", "attrs", [8, 32, 128])?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, replace_section(&text, "instructions", &out))?;
    println!(
        "\n{out}\nsection instructions written to {}",
        path.display()
    );
    Ok(())
}
