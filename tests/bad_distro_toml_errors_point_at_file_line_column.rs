//! A broken `distro.toml` gets file:line:column and the offending key, from the CLI as from the library.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel_tests::{ndotel, output, setup};

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let tmp = setup();
    let toml = tmp.path().join("distro.toml");
    std::fs::write(
        &toml,
        "default = \"otel_custom_distro\"\n\n[plugins\ndirs = []\n",
    )
    .unwrap();
    let (ok, _, stderr) = output(ndotel(tmp.path()).arg("check"));
    assert!(!ok);
    assert!(
        stderr.contains(&format!("{}:3:", toml.display())),
        "{stderr}"
    );
}

#[test]
fn an_unknown_key_is_named_with_its_file_and_line() {
    let tmp = setup();
    let toml = tmp.path().join("distro.toml");
    std::fs::write(&toml, "[plugins]\ndirs = []\nfail_fsat = true\n").unwrap();
    let (ok, _, stderr) = output(ndotel(tmp.path()).arg("config"));
    assert!(!ok);
    assert!(
        stderr.contains(&format!("{}:3:1", toml.display())) && stderr.contains("fail_fsat"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_key_in_a_distro_table_is_named_with_its_line() {
    let tmp = setup();
    let toml = tmp.path().join("distro.toml");
    std::fs::write(
        &toml,
        "default = \"otel_custom_distro\"\n[distro.otel_custom_distro.sampler]\nratio = 0.5\ndrop_pahts = []\n",
    )
    .unwrap();
    let (ok, _, stderr) = output(
        ndotel(tmp.path())
            .arg("check")
            .env("OTEL_RUST_DISTRO_PATH", so_dir(tmp.path())),
    );
    assert!(!ok);
    assert!(
        stderr.contains("drop_pahts") && stderr.contains(&format!("{}:4:1", toml.display())),
        "{stderr}"
    );
}

fn so_dir(parent: &std::path::Path) -> std::path::PathBuf {
    ndotel_tests::plugin_dir(parent, "plugins", &["otel_custom_distro"])
}
