//! Selection follows the contract: `OTEL_RUST_DISTRO` > `default` in distro.toml > the only distro > `sdk`; a name
//! that matches nothing lists every available name and origin; two distros with one name is an error naming both.
#![allow(clippy::unwrap_used)] // a test fails loudly

use ndotel::{ConfigFile, Env, Registry, SelectError};
use ndotel_tests::{plugin_dir, setup, so};

#[test]
fn two_distros_with_one_name_is_an_error_naming_both_origins() {
    let tmp = setup();
    let a = plugin_dir(tmp.path(), "a", &["otel_custom_distro"]);
    let b = plugin_dir(tmp.path(), "b", &["otel_custom_distro"]);
    let env = Env::from_pairs(
        [
            (
                "OTEL_RUST_DISTRO_PATH",
                format!("{}:{}", a.display(), b.display()),
            ),
            ("OTEL_RUST_DISTRO", "otel_custom_distro".into()),
        ],
        tmp.path(),
    );
    let reg = Registry::discover(&env, None);
    let err = reg.select(&env, None).unwrap_err();
    assert!(matches!(err, SelectError::Duplicate { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&a.join("libotel_custom_distro.so").display().to_string()),
        "{text}"
    );
    assert!(
        text.contains(&b.join("libotel_custom_distro.so").display().to_string()),
        "{text}"
    );
    assert_eq!(reg.duplicates().len(), 1);
}

#[test]
fn an_unknown_name_lists_every_available_distro_and_its_origin() {
    let tmp = setup();
    let dir = plugin_dir(
        tmp.path(),
        "plugins",
        &["otel_custom_distro", "fixture_faulty"],
    );
    let env = Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO_PATH", dir.to_str().unwrap()),
            ("OTEL_RUST_DISTRO", "otel_custm_distro"),
        ],
        tmp.path(),
    );
    let reg = Registry::discover(&env, None);
    let err = reg.select(&env, None).unwrap_err();
    assert!(matches!(err, SelectError::Unknown { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("\"otel_custm_distro\"") && text.contains("OTEL_RUST_DISTRO"),
        "{text}"
    );
    for name in [
        "sdk (builtin)",
        "otel_custom_distro (plugin",
        "faulty_sampler_panic (plugin",
        "faulty_init_error (plugin",
    ] {
        assert!(text.contains(name), "missing {name}: {text}");
    }
}

#[test]
fn unset_selects_file_default_then_the_only_distro_then_sdk() {
    let tmp = setup();
    let one = plugin_dir(tmp.path(), "one", &["otel_custom_distro"]);
    let env = Env::from_pairs(
        [("OTEL_RUST_DISTRO_PATH", one.to_str().unwrap())],
        tmp.path(),
    );
    let reg = Registry::discover(&env, None);
    assert_eq!(
        reg.select(&env, None).unwrap().name,
        "otel_custom_distro",
        "the only registered distro"
    );

    let two = plugin_dir(tmp.path(), "two", &["otel_custom_distro", "fixture_faulty"]);
    let env = Env::from_pairs(
        [("OTEL_RUST_DISTRO_PATH", two.to_str().unwrap())],
        tmp.path(),
    );
    let reg = Registry::discover(&env, None);
    assert_eq!(
        reg.select(&env, None).unwrap().name,
        "sdk",
        "several and no default: the built-in sdk"
    );

    let toml = tmp.path().join("distro.toml");
    std::fs::write(&toml, "default = \"faulty_sampler_panic\"\n").unwrap();
    let cfg = ConfigFile::load(&toml).unwrap();
    assert_eq!(
        reg.select(&env, Some(&cfg)).unwrap().name,
        "faulty_sampler_panic",
        "the file's default"
    );

    let env = Env::from_pairs(
        [
            ("OTEL_RUST_DISTRO_PATH", two.to_str().unwrap()),
            ("OTEL_RUST_DISTRO", "otel_custom_distro"),
        ],
        tmp.path(),
    );
    assert_eq!(
        reg.select(&env, Some(&cfg)).unwrap().name,
        "otel_custom_distro",
        "the environment wins"
    );
}

#[test]
fn table_paths_are_relative_to_the_distro_toml_that_names_them() {
    let tmp = setup();
    let conf_dir = tmp.path().join("etc");
    plugin_dir(&conf_dir, "lib", &["otel_custom_distro"]);
    std::fs::write(
        conf_dir.join("distro.toml"),
        "[opentelemetry_distro]\notel_custom_distro = \"lib/libotel_custom_distro.so\"\n",
    )
    .unwrap();
    // The working directory is elsewhere: the path must resolve against etc/, not the cwd.
    let env = Env::from_pairs(
        [(
            "OTEL_RUST_DISTRO_CONFIG",
            conf_dir.join("distro.toml").to_str().unwrap(),
        )],
        "/",
    );
    let cfg = ConfigFile::discover(&env).unwrap().unwrap();
    let reg = Registry::discover(&env, Some(&cfg));
    assert!(reg.failures().is_empty(), "{:?}", reg.failures());
    let d = reg.select(&env, Some(&cfg)).unwrap();
    assert_eq!(d.name, "otel_custom_distro");
    assert_eq!(
        d.origin.path().unwrap(),
        conf_dir.join("lib/libotel_custom_distro.so")
    );
}

#[test]
fn a_sha256_pin_that_does_not_match_is_refused() {
    let tmp = setup();
    plugin_dir(tmp.path(), "lib", &["otel_custom_distro"]);
    let toml = tmp.path().join("distro.toml");
    std::fs::write(&toml, "[opentelemetry_distro]\notel_custom_distro = { path = \"lib/libotel_custom_distro.so\", sha256 = \"00FF000000000000000000000000000000000000000000000000000000000000\" }\n").unwrap();
    let cfg = ConfigFile::load(&toml).unwrap();
    let env = Env::from_pairs(Vec::<(String, String)>::new(), tmp.path());
    let reg = Registry::discover(&env, Some(&cfg));
    assert!(
        matches!(reg.failures(), [ndotel::LoadError::Checksum { .. }]),
        "{:?}",
        reg.failures()
    );
    // Either case is accepted; the message shows the pin as written, lower-cased.
    assert!(
        reg.failures()[0]
            .to_string()
            .contains("00ff000000000000000000000000000000000000000000000000000000000000")
    );
    let _ = so("otel_custom_distro");
}

#[test]
fn a_table_name_its_plugin_does_not_hold_is_reported() {
    let tmp = setup();
    plugin_dir(tmp.path(), "lib", &["otel_custom_distro"]);
    let toml = tmp.path().join("distro.toml");
    std::fs::write(
        &toml,
        "[opentelemetry_distro]\nmy_distro = \"lib/libotel_custom_distro.so\"\n",
    )
    .unwrap();
    let cfg = ConfigFile::load(&toml).unwrap();
    let env = Env::from_pairs(Vec::<(String, String)>::new(), tmp.path());
    let reg = Registry::discover(&env, Some(&cfg));
    let warning = reg
        .warnings()
        .iter()
        .find(|w| w.contains("my_distro"))
        .expect("a warning");
    assert!(
        warning.contains("otel_custom_distro"),
        "names what the plugin holds: {warning}"
    );
}
