//! Live reconfiguration of the example service's sampler: `SIGHUP` swaps in the `[sampler]` tree of an edited
//! `distro.toml` without a restart; a bad file is refused with its line, and the running tree stays; with
//! `OTEL_RUST_DISTRO_RELOAD=watch` the edit alone is enough. Requests carry known trace ids, so what each
//! generation kept is counted exactly.
#![allow(clippy::unwrap_used)] // a test fails loudly

use app::otlp_json;
use app::{client, harness};
use ndotel_tests::setup;
use std::io::BufRead as _;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The service under the builtin `sdk` distro in `dir` (whose `distro.toml` it reads), its stderr lines on a
/// channel.
fn start(dir: &Path, extra: &[(&str, &str)]) -> (harness::Running, mpsc::Receiver<String>) {
    start_with(dir, extra, false)
}

/// [`start`]; with `default_sighup`, the service starts with SIGHUP's default action whatever the test runner's.
fn start_with(
    dir: &Path,
    extra: &[(&str, &str)],
    default_sighup: bool,
) -> (harness::Running, mpsc::Receiver<String>) {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = ndotel_tests::app_direct(dir);
    cmd.env("OTEL_RUST_DISTRO", "sdk")
        .env("OTEL_TRACES_EXPORTER", "file")
        .env("OTEL_LOGS_EXPORTER", "none");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    if default_sighup {
        // SAFETY: only signal(2), async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
                Ok(())
            });
        }
    }
    let mut running = harness::start(cmd).unwrap();
    let err = running.child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (running, rx)
}

/// Waits (generous deadline) for the stderr line saying a reload happened; returns it.
fn reload_line(lines: &mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no reload line within 60 s"));
        if line.starts_with("ndotel: reload of ") {
            return line;
        }
    }
}

/// One request per trace id, each as the child of a sampled remote parent in that trace.
fn requests(addr: &str, traces: &[&str]) {
    for t in traces {
        let parent = format!("00-{t}-b7ad6b7169203331-01");
        let r = client::request(addr, "GET", "/items", &[("traceparent", &parent)], None).unwrap();
        assert_eq!(r.status, 200);
    }
}

fn hup(running: &harness::Running) {
    // SAFETY: kill with a pid we own and a valid signal number.
    assert_eq!(
        unsafe { libc::kill(running.child.id() as libc::pid_t, libc::SIGHUP) },
        0
    );
}

/// One request, answered 200.
fn get_ok(addr: &str, path: &str) {
    let r = client::request(addr, "GET", path, &[], None).unwrap();
    assert_eq!(r.status, 200);
}

/// Waits (generous deadline) until `needle` was exported to `traces`.
fn exported_text(traces: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(traces)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(Instant::now() < deadline, "{needle} was never exported");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The trace ids of the exported SERVER spans.
fn exported(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = otlp_json::spans(&dir.join("traces.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == 2)
        .map(|s| s.trace_id)
        .collect();
    ids.sort();
    ids
}

/// The trace ids of `groups`, sorted (as [`exported`] gives them).
fn sorted(groups: &[&[&str]]) -> Vec<String> {
    let mut ids: Vec<String> = groups
        .iter()
        .flat_map(|g| g.iter().map(|s| s.to_string()))
        .collect();
    ids.sort();
    ids
}

const OFF: [&str; 2] = [
    "0a000000000000000000000000000001",
    "0a000000000000000000000000000002",
];
const ON: [&str; 3] = [
    "0b000000000000000000000000000001",
    "0b000000000000000000000000000002",
    "0b000000000000000000000000000003",
];
const AFTER_REFUSED: [&str; 2] = [
    "0c000000000000000000000000000001",
    "0c000000000000000000000000000002",
];

#[test]
fn sighup_swaps_the_sampler_and_a_bad_file_is_refused_with_its_line() {
    let tmp = setup();
    let toml = tmp.path().join("distro.toml");
    let status = tmp.path().join("reload-status.json");
    std::fs::write(&toml, "[sampler]\ncomposite = { always_off = {} }\n").unwrap();
    let (running, lines) = start(
        tmp.path(),
        &[("OTEL_RUST_DISTRO_RELOAD_STATUS", status.to_str().unwrap())],
    );
    requests(&running.addr, &OFF);

    std::fs::write(
        &toml,
        "[otel]\nservice_name = \"renamed\"\n\n[sampler]\ncomposite = { always_on = {} }\n",
    )
    .unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(
        line.contains("applied, generation 1")
            && line.contains("sampler: Composite{AlwaysOn}")
            && line.contains("NOT applied until a restart: [otel]"),
        "{line}"
    );
    requests(&running.addr, &ON);

    std::fs::write(
        &toml,
        "[sampler]\ncomposite = { probability = { ratio = 2.0 } }\n",
    )
    .unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(
        line.contains("refused, generation 1")
            && line.contains(&format!("{}:1:1", toml.display()))
            && line.contains("ratio 2 is not between 0 and 1"),
        "{line}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status).unwrap()).unwrap();
    assert_eq!(state["outcome"], "refused");
    assert_eq!(state["generation"], 1);
    assert_eq!(state["sha256"].as_str().unwrap().len(), 64);
    // `ndotel check --pid` shows the same, and fails for a refused reload.
    let (ok, stdout, stderr) = ndotel_tests::output(ndotel_tests::ndotel(tmp.path()).args([
        "check",
        "--pid",
        &running.child.id().to_string(),
    ]));
    assert!(
        !ok && stdout.contains(&format!(
            "process {}: last reload of {}",
            running.child.id(),
            toml.display()
        )) && stdout.contains("refused, generation 1")
            && stdout.contains("ratio 2 is not between 0 and 1"),
        "{stdout}{stderr}"
    );
    requests(&running.addr, &AFTER_REFUSED);

    assert!(running.terminate().unwrap());
    // Generation 0 kept nothing; generation 1 kept every request, before and after the refused reload.
    assert_eq!(exported(tmp.path()), sorted(&[&ON, &AFTER_REFUSED]));
}

#[test]
fn with_watch_an_edit_alone_is_applied() {
    let tmp = setup();
    let toml = tmp.path().join("distro.toml");
    std::fs::write(&toml, "[sampler]\ncomposite = { always_off = {} }\n").unwrap();
    let (running, lines) = start(tmp.path(), &[("OTEL_RUST_DISTRO_RELOAD", "watch")]);
    requests(&running.addr, &OFF);
    std::fs::write(&toml, "[sampler]\ncomposite = { always_on = {} }\n").unwrap();
    let line = reload_line(&lines);
    assert!(line.contains("applied, generation 1"), "{line}");
    requests(&running.addr, &ON);
    // Without a status file, `ndotel check --pid` says how to get one.
    let (ok, stdout, stderr) = ndotel_tests::output(ndotel_tests::ndotel(tmp.path()).args([
        "check",
        "--pid",
        &running.child.id().to_string(),
    ]));
    assert!(
        !ok && stderr.contains("OTEL_RUST_DISTRO_RELOAD_STATUS=<file>"),
        "{stdout}{stderr}"
    );
    assert!(running.terminate().unwrap());
    assert_eq!(exported(tmp.path()), sorted(&[&ON]));
}

#[test]
fn a_reloaded_tree_that_fails_is_rolled_back_within_its_health_window() {
    let tmp = setup();
    let plugins = ndotel_tests::plugin_dir(tmp.path(), "plugins", &["fixture_faulty"]);
    let toml = tmp.path().join("distro.toml");
    // The distro's sampler (which panics on every span) is built at start-up, used by no span yet.
    std::fs::write(
        &toml,
        "[sampler]\ncomposite = { rule_based = { rules = [\n  { span_names = [\"never *\"], sampler = { distro = {} } },\n  \
         { sampler = { always_on = {} } },\n] } }\n",
    )
    .unwrap();
    let (running, lines) = start(
        tmp.path(),
        &[
            ("OTEL_RUST_DISTRO_PATH", plugins.to_str().unwrap()),
            ("OTEL_RUST_DISTRO", "faulty_sampler_panic"),
            ("OTEL_RUST_DISTRO_RELOAD_HEALTH_WINDOW", "600000"),
            ("OTEL_METRICS_EXPORTER", "file"),
        ],
    );
    std::fs::write(&toml, "[sampler]\ncomposite = { distro = {} }\n").unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(line.contains("applied, generation 1"), "{line}");
    // Every span now fails in the distro's sampler: keep asking until the rollback is said (an event), each
    // request a fresh trace.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rolled_back = loop {
        assert!(Instant::now() < deadline, "never rolled back");
        requests(&running.addr, &["0d000000000000000000000000000001"]);
        if let Ok(line) = lines.try_recv()
            && line.starts_with("ndotel: reload of ")
        {
            break line;
        }
    };
    assert!(
        rolled_back.contains("rolled back, generation 2")
            && rolled_back.contains("the sampler or the distro's processor failed")
            && rolled_back.contains("RuleBased["),
        "{rolled_back}"
    );
    // The file that failed is refused as such until it changes (it is not what runs).
    hup(&running);
    let line = reload_line(&lines);
    assert!(
        line.contains("refused, generation 2") && line.contains("rolled back"),
        "{line}"
    );
    assert!(running.terminate().unwrap());
    // The reloads are counted by outcome.
    let metrics = std::fs::read_to_string(tmp.path().join("metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("ndotel.reload") && metrics.contains("rolled back"),
        "{metrics}"
    );
}

#[test]
fn with_reload_off_sighup_keeps_its_default_action() {
    use std::os::unix::process::ExitStatusExt as _;
    let tmp = setup();
    std::fs::write(
        tmp.path().join("distro.toml"),
        "[sampler]\ncomposite = { always_on = {} }\n",
    )
    .unwrap();
    let (mut running, _lines) = start_with(
        tmp.path(),
        &[("OTEL_RUST_DISTRO_RELOAD", "off")],
        // The test runner may itself run with SIGHUP ignored (`nohup`), which a child inherits: the service
        // starts with the default action, as a service normally does.
        true,
    );
    hup(&running);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = running.child.kill();
            panic!("SIGHUP did not end the service within 60 s: ndotel took it with reload off");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc::SIGHUP), "{status:?}");
}

/// The OpenTelemetry configuration file's `composite/development` sampler, swapped by `SIGHUP` the same way: the
/// file's other changes are named as needing a restart, a bad file is refused at its line.
#[test]
fn sighup_swaps_the_configuration_files_composite_sampler() {
    let tmp = setup();
    let yaml = tmp.path().join("otel.yaml");
    let file = |sampler: &str, delay: u32| {
        format!(
            "file_format: \"1.1\"\npropagator:\n  composite: [{{tracecontext: }}]\ntracer_provider:\n  processors:\n    - batch:\n        schedule_delay: {delay}\n        \
             exporter:\n          otlp_file/development:\n            output_stream: file://traces.jsonl\n  sampler:\n    \
             composite/development:\n      {sampler}\n"
        )
    };
    std::fs::write(&yaml, file("always_off:", 100)).unwrap();
    let (running, lines) = start(tmp.path(), &[("OTEL_CONFIG_FILE", "otel.yaml")]);
    requests(&running.addr, &OFF);

    std::fs::write(&yaml, file("always_on:", 200)).unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(
        line.contains("applied, generation 1")
            && line.contains("sampler: Composite{AlwaysOn}")
            && line.contains("NOT applied until a restart: OTEL_BSP_SCHEDULE_DELAY"),
        "{line}"
    );
    requests(&running.addr, &ON);

    std::fs::write(&yaml, file("probability: {ratio: 2}", 200)).unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(
        line.contains("refused, generation 1") && line.contains(&format!("{}:13:", yaml.display())),
        "{line}"
    );
    requests(&running.addr, &AFTER_REFUSED);
    assert!(running.terminate().unwrap());
    assert_eq!(exported(tmp.path()), sorted(&[&ON, &AFTER_REFUSED]));
}

/// With a configuration file, the distro's settings (`distribution.ndotel.settings`) reload the same way: a new
/// redaction key applies to the running service on `SIGHUP`, with no composite sampler in the file.
#[test]
fn sighup_applies_the_configuration_files_new_distro_settings() {
    let tmp = setup();
    let plugins = ndotel_tests::plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let yaml = tmp.path().join("otel.yaml");
    let file = |keys: &str| {
        format!(
            "file_format: \"1.1\"\ntracer_provider:\n  processors:\n    - batch:\n        schedule_delay: 100\n        \
             exporter:\n          otlp_file/development:\n            output_stream: file://traces.jsonl\n\
             distribution:\n  ndotel:\n    distro: otel_custom_distro\n    settings:\n      span_processor:\n        \
             redact:\n          keys: [{keys}]\n"
        )
    };
    std::fs::write(&yaml, file("\"*password*\"")).unwrap();
    let (running, lines) = start(
        tmp.path(),
        &[
            ("OTEL_CONFIG_FILE", "otel.yaml"),
            ("OTEL_RUST_DISTRO_PATH", plugins.to_str().unwrap()),
        ],
    );
    let get = |path: &str| get_ok(&running.addr, path);
    get("/items?flavor=vanilla-before");
    let traces = tmp.path().join("traces.jsonl");
    exported_text(&traces, "vanilla-before");
    std::fs::write(&yaml, file("\"*password*\", \"flavor\"")).unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(
        line.contains("applied, generation 1")
            && line.contains("distro otel_custom_distro (generation 1): its span processor")
            && !line.contains("NOT applied"),
        "{line}"
    );
    get("/items?flavor=vanilla-after");
    assert!(running.terminate().unwrap());
    let all = std::fs::read_to_string(&traces).unwrap();
    assert!(!all.contains("vanilla-after"), "{all}");
    assert!(all.contains("flavor=[REDACTED]"), "{all}");
}

/// The reference distro's own settings — here a redaction rule — change on the running service with `SIGHUP`:
/// its processor is rebuilt from a fresh `init` (probed in a child first) and swapped in between batches; a table
/// its `init` refuses leaves the running rules untouched. Each batch is edited under one generation of the rules.
#[test]
fn sighup_applies_the_reference_distros_new_redaction_rule_to_the_running_service() {
    let tmp = setup();
    let plugins = ndotel_tests::plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let toml = tmp.path().join("distro.toml");
    let table = |keys: &str, extra: &str| {
        format!("[distro.otel_custom_distro.span_processor.redact]\nkeys = [{keys}]\n{extra}")
    };
    std::fs::write(&toml, table("\"*password*\"", "")).unwrap();
    let (running, lines) = start(
        tmp.path(),
        &[
            ("OTEL_RUST_DISTRO_PATH", plugins.to_str().unwrap()),
            ("OTEL_RUST_DISTRO", "otel_custom_distro"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    );
    let get = |path: &str| get_ok(&running.addr, path);
    get("/items?flavor=vanilla-before");
    // Spans still queued at a reload are edited under the new rules (a batch is edited under one generation):
    // wait until this one was exported under the old ones.
    let traces = tmp.path().join("traces.jsonl");
    exported_text(&traces, "vanilla-before");

    std::fs::write(&toml, table("\"*password*\", \"flavor\"", "")).unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(
        line.contains("applied")
            && line.contains(
                "distro otel_custom_distro (generation 1): its span processor, sampler, log processor rebuilt"
            ),
        "{line}"
    );
    get("/items?flavor=vanilla-after");
    // The log processor is rebuilt with the same rules: the service's log line quoting the query (on stderr,
    // through the distro's log processor) is redacted too.
    let deadline = Instant::now() + Duration::from_secs(60);
    let logged = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap();
        if line.contains("listing items for query") {
            break line;
        }
    };
    assert!(
        logged.contains("flavor=[REDACTED]") && !logged.contains("vanilla-after"),
        "{logged}"
    );

    // A table the distro's `init` refuses: refused, the rules of the last reload keep running.
    std::fs::write(
        &toml,
        table("\"*password*\", \"flavor\"", "not_a_setting = 1\n"),
    )
    .unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(
        line.contains("refused")
            && line.contains("not_a_setting")
            && line.contains(&format!("{}:3:1", toml.display())),
        "{line}"
    );
    get("/items?flavor=vanilla-still");
    assert!(running.terminate().unwrap());

    let spans = otlp_json::spans(&tmp.path().join("traces.jsonl")).unwrap();
    let query = |needle: &str| {
        spans
            .iter()
            .filter_map(|s| s.attr("url.query"))
            .any(|q| q.contains(needle))
    };
    assert!(
        query("flavor=vanilla-before"),
        "before the reload the value is kept: {spans:?}"
    );
    let all = std::fs::read_to_string(tmp.path().join("traces.jsonl")).unwrap();
    assert!(
        !all.contains("vanilla-after") && !all.contains("vanilla-still"),
        "{all}"
    );
    assert!(query("flavor=[REDACTED]"), "{spans:?}");
}

/// Reloads alternating two rule sets of the reference distro — its sampler's drop paths and its processor's
/// redaction keys — while requests keep coming. Every request is accounted for exactly (exported, or dropped by
/// the rule of the generation that decided it; none is unsampled at ratio 1), each span is decided and edited under
/// one generation (`ndotel.distro.generation`, kept by `OTEL_RUST_DISTRO_RELOAD_GENERATION_ATTRIBUTE`): its rules are
/// the ones its redaction and its being exported show, and the planted password never leaves the process.
#[test]
fn reloads_under_load_lose_nothing_and_never_mix_two_rule_sets_in_a_span() {
    const RELOADS: usize = 1000;
    let tmp = setup();
    let plugins = ndotel_tests::plugin_dir(tmp.path(), "plugins", &["otel_custom_distro"]);
    let toml = tmp.path().join("distro.toml");
    // Rule set A (odd generations): `/items/7` dropped, `flavor` and `color` redacted. Rule set B (even ones,
    // start-up's included): both kept.
    let rules = |a: bool| {
        let (drop, keys) = if a {
            (
                r#""/health", "/items/7""#,
                r#""*password*", "flavor", "color""#,
            )
        } else {
            (r#""/health""#, r#""*password*""#)
        };
        format!(
            "[distro.otel_custom_distro.sampler]\ndrop_paths = [{drop}]\n\n\
             [distro.otel_custom_distro.span_processor.redact]\nkeys = [{keys}]\n"
        )
    };
    std::fs::write(&toml, rules(false)).unwrap();
    let (running, lines) = start(
        tmp.path(),
        &[
            ("OTEL_RUST_DISTRO_PATH", plugins.to_str().unwrap()),
            ("OTEL_RUST_DISTRO", "otel_custom_distro"),
            ("OTEL_TRACES_SAMPLER", "otel_custom"),
            ("OTEL_RUST_DISTRO_RELOAD_GENERATION_ATTRIBUTE", "true"),
            // A generous deadline: a sampler call past it takes the fallback (roots kept), not the rules.
            ("OTEL_RUST_DISTRO_CALL_TIMEOUT", "30000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "65536"),
        ],
    );
    let get = |addr: &str, path: &str, n: &str| {
        let target = format!("{path}?n={n}&flavor=f{n}&color=c{n}&password=s3cr3t-{n}");
        let r = client::request(addr, "GET", &target, &[], None).unwrap();
        assert!(r.status == 200 || r.status == 404, "{target}: {}", r.status);
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (addr, stop) = (running.addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                get(&addr, "/items", &format!("load{sent}"));
                get(&addr, "/items/7", &format!("load{sent}"));
                sent += 1;
            }
            sent
        })
    };
    // Besides the load, one request of each path after each reload, decided under that reload's generation.
    for i in 0..RELOADS {
        std::fs::write(&toml, rules(i % 2 == 0)).unwrap();
        hup(&running);
        let line = reload_line(&lines);
        assert!(
            line.contains(&format!("applied, generation {}:", i + 1)),
            "{line}"
        );
        get(&running.addr, "/items", &format!("own{i}"));
        get(&running.addr, "/items/7", &format!("own{i}"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = load.join().unwrap();
    assert!(running.terminate().unwrap());

    let text = std::fs::read_to_string(tmp.path().join("traces.jsonl")).unwrap();
    assert!(!text.contains("s3cr3t"), "a planted password was exported");
    let spans = otlp_json::spans(&tmp.path().join("traces.jsonl")).unwrap();
    let servers: Vec<&otlp_json::Span> = spans.iter().filter(|s| s.kind == 2).collect();
    let mut ids: Vec<(&str, &str)> = Vec::new();
    let (mut items, mut item7, mut own7) = (0u64, 0u64, 0u64);
    for s in &servers {
        let generation: u64 = s
            .attr("ndotel.distro.generation")
            .unwrap_or_else(|| panic!("no generation on {s:?}"))
            .parse()
            .unwrap();
        let a = generation % 2 == 1;
        let query = s.attr("url.query").unwrap();
        let n = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("n="))
            .unwrap();
        ids.push((s.attr("url.path").unwrap(), n));
        // Edited under the rules of its generation: both redacted under A, neither under B.
        let redacted = (
            query.contains("flavor=[REDACTED]"),
            query.contains("color=[REDACTED]"),
        );
        assert_eq!(redacted, (a, a), "generation {generation}: {query}");
        match s.attr("url.path") {
            Some("/items") => items += 1,
            Some("/items/7") => {
                // Decided under its generation's rules: A drops it.
                assert!(!a, "generation {generation} exported {query}");
                item7 += 1;
                if let Some(i) = n.strip_prefix("own") {
                    // This reload's own request went out under this reload's generation.
                    let i: u64 = i.parse().unwrap();
                    assert_eq!(generation, i + 1, "{query}");
                    own7 += 1;
                }
            }
            other => panic!("an unexpected span: {other:?}"),
        }
    }
    let total = sent + RELOADS as u64;
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "nothing exported twice");
    assert_eq!(items, total, "every /items request's span, exactly once");
    // Each reload's own `/items/7` request: exported under B (odd reload indexes), dropped by rule under A.
    assert_eq!(own7, RELOADS as u64 / 2);
    assert!(item7 <= total && item7 >= own7, "{item7} of {total}");
    // Nothing of a dropped trace is exported: every child span's trace has its SERVER span.
    let kept: std::collections::HashSet<&str> =
        servers.iter().map(|s| s.trace_id.as_str()).collect();
    for s in spans.iter().filter(|s| s.kind != 2) {
        assert!(kept.contains(s.trace_id.as_str()), "{s:?}");
    }
    eprintln!(
        "{RELOADS} reloads; {total} requests per path: {items} /items exported, {item7} /items/7 exported, {} \
         dropped by rule",
        total - item7
    );
}

/// A reload to a distro whose `init` fails, panics, hangs or aborts is refused (its probe child takes the blow),
/// naming the cause, and the running processor keeps editing; a reloaded processor that starts failing (panics on
/// every span) or gets stuck is rolled back within the health window, the status file saying why, and the
/// processor before it edits again.
#[test]
fn a_reloaded_processor_that_fails_is_rolled_back_and_a_failing_init_is_refused() {
    let tmp = setup();
    let plugins = ndotel_tests::plugin_dir(tmp.path(), "plugins", &["fixture_faulty"]);
    let toml = tmp.path().join("distro.toml");
    let status = tmp.path().join("reload-status.json");
    let release = tmp.path().join("release");
    let table = |mode: &str, label: &str| {
        format!("[distro.faulty_reloadable]\nmode = \"{mode}\"\nlabel = \"{label}\"\n")
    };
    std::fs::write(&toml, table("ok", "first")).unwrap();
    let (running, lines) = start(
        tmp.path(),
        &[
            ("OTEL_RUST_DISTRO_PATH", plugins.to_str().unwrap()),
            ("OTEL_RUST_DISTRO", "faulty_reloadable"),
            ("OTEL_RUST_DISTRO_RELOAD_HEALTH_WINDOW", "600000"),
            ("OTEL_RUST_DISTRO_RELOAD_STATUS", status.to_str().unwrap()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("FIXTURE_RELEASE_FILE", release.to_str().unwrap()),
        ],
    );
    let traces = tmp.path().join("traces.jsonl");
    // Sends requests until a span labelled `label` is exported (an event, generous deadline).
    let exported_with = |label: &str| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "no span labelled {label}");
            let r = client::request(&running.addr, "GET", "/items", &[], None).unwrap();
            assert_eq!(r.status, 200);
            let spans = otlp_json::spans(&traces).unwrap();
            if spans.iter().any(|s| s.attr("fixture.mode") == Some(label)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    exported_with("first");

    for (mode, cause) in [
        ("init_error", "refused by this distro"),
        ("init_panic", "init exploded on reload"),
        ("init_hang", "10s"),
        ("init_abort", "crashed the probe process with signal 6"),
    ] {
        std::fs::write(&toml, table(mode, "never")).unwrap();
        hup(&running);
        let line = reload_line(&lines);
        assert!(
            line.contains("refused, generation 0") && line.contains(cause),
            "{mode}: {line}"
        );
    }
    std::fs::write(&toml, table("ok", "second")).unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(line.contains("applied, generation 1"), "{line}");
    exported_with("second");

    // A processor that panics on every span: rolled back once it failed 10 times.
    std::fs::write(&toml, table("panic", "")).unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(line.contains("applied, generation 2"), "{line}");
    let rolled_back = |lines: &mpsc::Receiver<String>| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "never rolled back");
            let r = client::request(&running.addr, "GET", "/items", &[], None).unwrap();
            assert_eq!(r.status, 200);
            while let Ok(line) = lines.try_recv() {
                if line.starts_with("ndotel: reload of ") {
                    return line;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let line = rolled_back(&lines);
    assert!(
        line.contains("rolled back, generation 3")
            && line.contains("the sampler or the distro's processor failed"),
        "{line}"
    );
    let json = std::fs::read_to_string(&status).unwrap();
    assert!(
        json.contains("\"outcome\":\"rolled back\"") && json.contains("\"generation\":3"),
        "{json}"
    );
    exported_with("second");

    // A processor that gets stuck: rolled back as stuck; once its call returns, the one before edits again.
    std::fs::write(&toml, table("hang", "")).unwrap();
    hup(&running);
    let line = reload_line(&lines);
    assert!(line.contains("applied, generation 4"), "{line}");
    let line = rolled_back(&lines);
    assert!(
        line.contains("rolled back, generation 5") && line.contains("stuck"),
        "{line}"
    );
    std::fs::write(&release, "").unwrap();
    exported_with("second");
    assert!(running.terminate().unwrap());
}
