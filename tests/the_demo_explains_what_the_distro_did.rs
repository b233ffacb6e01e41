//! The README's main job (`cargo run -p app --bin demo`) passes, and its narration matches the export: every value
//! it says was redacted is in the export as it says, every redacted value in the export is narrated, and the
//! health check it says was dropped left no span.
#![allow(clippy::unwrap_used)] // a test fails loudly

use app::otlp_json;
use ndotel_tests::{build_artifacts, output, profile_dir, setup};

#[test]
fn the_demo_passes_and_narrates_every_decision_in_the_export() {
    build_artifacts();
    let tmp = setup();
    let mut cmd = std::process::Command::new(profile_dir().join("demo"));
    cmd.current_dir(tmp.path()).env(
        "CARGO",
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
    );
    let (ok, stdout, stderr) = output(&mut cmd);
    assert!(
        ok && stdout.contains("== ok: no /health span"),
        "{stdout}{stderr}"
    );
    let spans = otlp_json::spans(&tmp.path().join("demo-out/traces.jsonl")).unwrap();

    let narrated: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("redacted  "))
        .collect();
    let mut in_export = Vec::new();
    for s in &spans {
        for (k, v) in &s.attributes {
            if v.contains("REDACTED") {
                in_export.push(format!("{} · {k} = {v}", s.name));
            }
        }
    }
    assert!(!in_export.is_empty());
    assert_eq!(narrated.len(), in_export.len(), "{stdout}");
    for line in &in_export {
        assert!(
            narrated.contains(&line.as_str()),
            "{line} not narrated:\n{stdout}"
        );
    }
    // The Authorization header was recorded, so its redaction is real.
    assert!(
        in_export
            .iter()
            .any(|l| l.contains("http.request.header.authorization"))
    );
    // The drop it narrates left no span.
    assert!(stdout.contains("dropped   GET /health"), "{stdout}");
    assert!(!spans.iter().any(|s| s.attr("url.path") == Some("/health")));
}
