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

#[test]
fn a_wrong_value_deep_in_a_distro_table_is_named_with_its_key_path_and_line() {
    // The distro says which key (ndotel-api 1.7, `SettingError`), not the text of serde's message: a wrong type, and
    // an unknown key in the second of an array of tables, each point at their own line.
    let cases = [
        (
            "[distro.otel_custom_distro.sampler]\nratio = \"half\"\n",
            2,
            "sampler.ratio",
        ),
        (
            "[distro.otel_custom_distro]\nresource = { a = \"b\" }\n\
             [[distro.otel_custom_distro.span_processor.rename]]\nmatch = \"a\"\nreplace = \"b\"\n\
             [[distro.otel_custom_distro.span_processor.rename]]\nmatch = \"c\"\nreplcae = \"d\"\n",
            8,
            "span_processor.rename.1.replcae",
        ),
        (
            "[distro.otel_custom_distro]\nsampler = { ratio = 0.5, rules = [{ when = 3 }] }\n",
            2,
            "sampler.rules.0",
        ),
    ];
    for (text, line, key) in cases {
        let tmp = setup();
        let toml = tmp.path().join("distro.toml");
        std::fs::write(&toml, format!("default = \"otel_custom_distro\"\n{text}")).unwrap();
        let (ok, _, stderr) = output(
            ndotel(tmp.path())
                .arg("check")
                .env("OTEL_RUST_DISTRO_PATH", so_dir(tmp.path())),
        );
        assert!(!ok, "{text}");
        assert!(
            stderr.contains(&format!("{}:{}:", toml.display(), line + 1))
                && stderr.contains(&format!("at `{key}"))
                && stderr.contains("table [distro.otel_custom_distro]"),
            "{text}\n{stderr}"
        );
    }
}

fn so_dir(parent: &std::path::Path) -> std::path::PathBuf {
    ndotel_tests::plugin_dir(parent, "plugins", &["otel_custom_distro"])
}

#[test]
fn a_misspelled_pin_key_is_an_error_naming_it_never_an_unpinned_plugin() {
    for key in ["sha", "sha_256", "checksum", "SHA256"] {
        let tmp = setup();
        let toml = tmp.path().join("distro.toml");
        std::fs::write(
            &toml,
            format!("[opentelemetry_distro]\nmine = {{ path = \"x.so\", {key} = \"00\" }}\n"),
        )
        .unwrap();
        let (ok, _, stderr) = output(ndotel(tmp.path()).arg("list"));
        assert!(!ok, "{key}: {stderr}");
        assert!(
            stderr.contains(&format!("unknown field `{key}`"))
                && stderr.contains(&format!("{}:2:", toml.display())),
            "{key}: {stderr}"
        );
    }
    // A pin that is not 64 hex digits is refused too.
    let tmp = setup();
    std::fs::write(
        tmp.path().join("distro.toml"),
        "[opentelemetry_distro]\nmine = { path = \"x.so\", sha256 = \"abc\" }\n",
    )
    .unwrap();
    let (ok, _, stderr) = output(ndotel(tmp.path()).arg("list"));
    assert!(!ok && stderr.contains("64 hex digits"), "{stderr}");
}

#[test]
fn a_distro_toml_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = setup();
    let toml = tmp.path().join("distro.toml");
    std::fs::write(&toml, "[plugins]\ndirs = []\n").unwrap();
    std::fs::set_permissions(&toml, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (ok, _, stderr) = output(ndotel(tmp.path()).arg("config"));
    assert!(!ok);
    assert!(
        stderr.contains("writable by group or others") && stderr.contains("chmod go-w"),
        "{stderr}"
    );
}

#[test]
fn a_device_or_fifo_as_the_configuration_is_an_error_not_a_hang() {
    let tmp = setup();
    let fifo = tmp.path().join("fifo.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path and mode.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for path in [std::path::Path::new("/dev/zero"), fifo.as_path()] {
        let (ok, _, stderr) = output(
            ndotel(tmp.path())
                .arg("config")
                .env("OTEL_RUST_DISTRO_CONFIG", path),
        );
        assert!(!ok, "{}: {stderr}", path.display());
        assert!(
            stderr.contains("not a regular file"),
            "{}: {stderr}",
            path.display()
        );
    }
}

#[test]
fn a_configuration_over_the_size_limit_is_an_error() {
    let tmp = setup();
    let big = tmp.path().join("big.toml");
    let mut text = String::from("# padding\n");
    while (text.len() as u64) <= ndotel::MAX_CONFIG_BYTES {
        text.push_str(
            "# ........................................................................\n",
        );
    }
    std::fs::write(&big, text).unwrap();
    let (ok, _, stderr) = output(
        ndotel(tmp.path())
            .arg("config")
            .env("OTEL_RUST_DISTRO_CONFIG", &big),
    );
    assert!(!ok);
    assert!(stderr.contains("more than the limit"), "{stderr}");
}

#[test]
fn a_bad_composite_sampler_is_named_with_its_line_and_a_good_one_is_described_with_its_thresholds()
{
    let tmp = setup();
    let toml = tmp.path().join("distro.toml");
    for (text, line, says) in [
        // A ratio out of range, deep in the tree: the path to it is named.
        (
            "[otel]\nservice_name = \"x\"\n\n[sampler]\ncomposite = { parent_threshold = { root = { probability = { ratio = 1.5 } } } }\n",
            4,
            "composite.parent_threshold.root: probability: ratio 1.5 is not between 0 and 1",
        ),
        // An unknown sampler name: serde lists the valid ones.
        (
            "[sampler]\ncomposite = { sometimes = {} }\n",
            2,
            "always_on",
        ),
        (
            "[sampler]\ncomposite = { rate_limiting = { spans_per_second = 0 } }\n",
            1,
            "spans_per_second 0 must be a positive number",
        ),
    ] {
        std::fs::write(&toml, text).unwrap();
        let (ok, _, stderr) = output(ndotel(tmp.path()).arg("config"));
        assert!(!ok, "{text}");
        assert!(
            stderr.contains(&format!("{}:{line}:", toml.display())) && stderr.contains(says),
            "{text}\n{stderr}"
        );
    }
    std::fs::write(
        &toml,
        "[sampler]\ncomposite = { parent_threshold = { root = { rule_based = { rules = [\n  \
         { span_kinds = [\"server\"], attribute_values = { key = \"url.path\", values = [\"/health\"] }, sampler = { always_off = {} } },\n  \
         { sampler = { probability = { ratio = 0.1 } } },\n] } } } }\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = output(ndotel(tmp.path()).arg("config"));
    assert!(ok, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("OTEL_TRACES_SAMPLER "))
        .unwrap();
    assert!(
        line.contains("composite") && line.contains("distro.toml"),
        "{line}"
    );
    assert!(
        stdout.contains(
            "sampler description: Composite{ParentThreshold{root=RuleBased[span_kinds=[Server] & url.path in \
             [\"/health\"] → AlwaysOff; any → Probability{ratio=0.1, th=e666, effective=0.100006103515625}]}}"
        ),
        "{stdout}"
    );
}
