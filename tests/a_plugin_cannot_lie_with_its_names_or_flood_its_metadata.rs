//! What a plugin or a file system supplies — file names, distro names, the metadata section — is bounded and
//! escaped: a plugin naming thousands of distros is refused in one line at a cost that does not grow with the square
//! of the count, a name that could print like another (a zero-width character) is refused, and a file name with a
//! newline or a terminal escape is printed escaped by `ndotel list` and in the service's stderr.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_api::meta;
use ndotel_tests::{ndotel, output, setup, so, workload};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A metadata section naming `names` (in the format `export_plugin!` writes).
fn metadata(names: &[String]) -> Vec<u8> {
    let mut out = meta::MAGIC.to_vec();
    let mut record = |tag: u8, text: &str| {
        out.push(tag);
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    };
    record(meta::API_VERSION, ndotel_api::API_VERSION);
    record(meta::PANIC, "unwind");
    for n in names {
        record(meta::DISTRO, n);
        record(meta::DISTRO_VERSION, "0.0.1");
    }
    out.push(0);
    out
}

/// A copy of a real plugin in `dir` as `file`, with its metadata section replaced by one naming `names`.
fn plugin_naming(dir: &Path, file: &str, names: &[String]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let section = dir.join("meta.bin");
    std::fs::write(&section, metadata(names)).unwrap();
    let dest = dir.join(file);
    let out = Command::new("objcopy")
        .arg(format!(
            "--update-section={}={}",
            meta::SECTION,
            section.display()
        ))
        .arg(so("marker_plugin"))
        .arg(&dest)
        .output()
        .expect("objcopy (binutils) rewrites the metadata section");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&section).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    dest
}

fn list(dir: &Path, plugins: &Path) -> (bool, String, String) {
    output(
        ndotel(dir)
            .arg("list")
            .env("OTEL_RUST_DISTRO_PATH", plugins),
    )
}

/// The service under the `sdk` distro with `plugins` as its plugin directory; (success, stdout, stderr).
fn service(dir: &Path, plugins: &Path) -> (bool, String, String) {
    output(
        workload("workload_dynamic", dir)
            .env("OTEL_RUST_DISTRO_PATH", plugins)
            .env("OTEL_RUST_DISTRO", "sdk")
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_METRICS_EXPORTER", "none")
            .env("OTEL_LOGS_EXPORTER", "none"),
    )
}

#[test]
fn a_plugin_naming_thousands_of_distros_is_refused_in_one_line() {
    let tmp = setup();
    let plugins = tmp.path().join("plugins");
    let names: Vec<String> = (0..5000).map(|i| format!("distro_{i}")).collect();
    plugin_naming(&plugins, "libmany.so", &names);
    let (ok, stdout, stderr) = list(tmp.path(), &plugins);
    assert!(ok, "{stderr}");
    let text = format!("{stdout}{stderr}");
    assert!(
        text.contains("names 5000 distros, more than the 256"),
        "{text}"
    );
    assert!(!text.contains("distro_4999"), "none of its names is listed");
    // The service starts as usual: the refused plugin is reported, not fatal, since it is not the one selected.
    let (ok, stdout, stderr) = service(tmp.path(), &plugins);
    assert!(ok && stdout.contains("telemetry: on"), "{stdout}\n{stderr}");
}

#[test]
fn a_metadata_section_past_its_size_bound_is_refused_unread() {
    let tmp = setup();
    let plugins = tmp.path().join("plugins");
    // 300 names of 1 KiB: over the 256 KiB a section may weigh (and over the count bound too, checked after).
    let names: Vec<String> = (0..300)
        .map(|i| format!("d{i}_{}", "x".repeat(1024)))
        .collect();
    plugin_naming(&plugins, "libheavy.so", &names);
    let (ok, stdout, stderr) = list(tmp.path(), &plugins);
    assert!(ok, "{stderr}");
    let text = format!("{stdout}{stderr}");
    assert!(
        text.contains("more than the 262144 an ndotel plugin may carry"),
        "{text}"
    );
}

#[test]
fn a_directory_of_plugins_past_the_bound_refuses_the_rest_and_keeps_the_first() {
    let tmp = setup();
    let plugins = tmp.path().join("plugins");
    // Five plugins of 250 distros: the first four fit in 1024, the fifth does not.
    for p in 0..5 {
        let names: Vec<String> = (0..250).map(|i| format!("p{p}_d{i}")).collect();
        plugin_naming(&plugins, &format!("lib{p}.so"), &names);
    }
    let (ok, stdout, stderr) = list(tmp.path(), &plugins);
    assert!(ok, "{stderr}");
    let text = format!("{stdout}{stderr}");
    assert!(text.contains("p3_d249"), "the first plugins are listed");
    assert!(!text.contains("p4_d0 "), "{text}");
    assert!(text.contains("lib4.so: refused"), "{text}");
}

#[test]
fn a_name_that_prints_like_another_is_refused() {
    let tmp = setup();
    let plugins = tmp.path().join("plugins");
    plugin_naming(
        &plugins,
        "liblookalike.so",
        &[
            "otel_custom\u{200B}_distro".to_string(),
            "\u{43e}tel".to_string(),
        ],
    );
    let (ok, stdout, stderr) = list(tmp.path(), &plugins);
    assert!(ok, "{stderr}");
    let text = format!("{stdout}{stderr}");
    assert!(
        text.contains("otel_custom\\u{200b}_distro"),
        "named escaped: {text}"
    );
    assert!(text.contains("can print like another one"), "{text}");
    assert!(
        !text.contains('\u{200B}') && !text.contains('\u{43e}'),
        "{text}"
    );
}

#[test]
fn a_file_name_with_a_newline_or_an_escape_is_printed_escaped() {
    let tmp = setup();
    let plugins = tmp.path().join("plugins");
    let name = "libx\nndotel: forged line\u{1b}[2J.so";
    plugin_naming(&plugins, name, &["\u{43e}".to_string()]);
    let (_, stdout, stderr) = list(tmp.path(), &plugins);
    for text in [&stdout, &stderr] {
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("ndotel: forged line")),
            "{text}"
        );
    }
    assert!(
        format!("{stdout}{stderr}").contains("libx\\nndotel: forged line\\u{1b}[2J.so"),
        "{stdout}{stderr}"
    );
    // The service's stderr too.
    let (_, _, stderr) = service(tmp.path(), &plugins);
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("ndotel: forged line")),
        "{stderr}"
    );
}
