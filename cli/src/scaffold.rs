//! `ndotel new <name>`: a working distro workspace outside this repository — the distro (health-check sampler,
//! span and log processors that redact with `ndotel-redact`, an exporter that needs no collector, with tests), the
//! one-line cdylib, a `distro.toml` whose distro defaults are commented out, and a README — that builds against
//! `ndotel-api` as a path dependency: a copy written beside it (the API this host was built with), or the crate
//! named by `--api-path`; and against a copy of `ndotel-redact` written beside it.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};

/// The template, compiled into the binary.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/distro/workspace.Cargo.toml"),
    ),
    (
        "{{name}}/Cargo.toml",
        include_str!("../templates/distro/distro.Cargo.toml"),
    ),
    (
        "{{name}}/src/lib.rs",
        include_str!("../templates/distro/distro.lib.rs"),
    ),
    (
        "{{name}}_so/Cargo.toml",
        include_str!("../templates/distro/so.Cargo.toml"),
    ),
    (
        "{{name}}_so/src/lib.rs",
        include_str!("../templates/distro/so.lib.rs"),
    ),
    (
        "distro.toml",
        include_str!("../templates/distro/distro.toml"),
    ),
    ("README.md", include_str!("../templates/distro/README.md")),
    (".gitignore", include_str!("../templates/distro/gitignore")),
];

/// The sources of the `ndotel-api` crate this host was built with, written into a new workspace.
const API: &[(&str, &str)] = ndotel_api::SOURCES;

/// The sources of the `ndotel-redact` crate this host was built with, written into every new workspace (its
/// `ndotel-api` dependency pointed at the workspace's).
const REDACT: &[(&str, &str)] = ndotel_redact::SOURCES;

/// `manifest` (the redaction crate's, as this repository or a published package spells it) with its `ndotel-api`
/// dependency pointed at `path`, keeping its version requirement.
fn point_at_api(manifest: &str, path: &str) -> Result<String> {
    let mut table: toml::Table = manifest
        .parse()
        .context("reading the ndotel-redact manifest this ndotel carries")?;
    let api = table
        .get_mut("dependencies")
        .and_then(|d| d.get_mut("ndotel-api"))
        .and_then(toml::Value::as_table_mut)
        .context(
            "the ndotel-redact manifest this ndotel carries has no ndotel-api dependency table",
        )?;
    api.insert("path".into(), toml::Value::String(path.to_string()));
    Ok(table.to_string())
}

/// `my_distro` → `MyDistro`.
fn type_name(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Rust's keywords, strict and reserved in edition 2024: a crate or type of that name does not compile.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "typeof", "unsized", "virtual", "yield", "try", "union",
];

/// Crates the generated workspace uses or Rust provides, and the host's own distro names: a distro of that name
/// would shadow or collide with them.
const TAKEN: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "ndotel",
    "ndotel_api",
    "ndotel_redact",
    "serde",
    "toml",
    "abi_stable",
    "inventory",
    "sdk",
];

fn check_name(name: &str) -> Result<()> {
    if KEYWORDS.contains(&name) || TAKEN.contains(&name) {
        bail!(
            "{name:?} cannot be a distro name: it is a Rust keyword or the name of a crate or distro the generated \
             workspace already uses (it would not compile, or would collide); choose another (for example \
             `acme_distro`)"
        );
    }
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_');
    if !ok {
        bail!(
            "{name:?} is not a usable distro name: use lowercase letters, digits and `_`, starting with a letter \
             (for example `acme_distro`); it becomes the crate name, the library name and OTEL_RUST_DISTRO"
        );
    }
    Ok(())
}

/// Creates `<dir>/<name>`; returns it.
pub(crate) fn new_distro(name: &str, dir: &Path, api_path: Option<&Path>) -> Result<PathBuf> {
    check_name(name)?;
    let root = dir.join(name);
    if root.exists() {
        bail!(
            "{} already exists; choose another name or --dir (nothing was written)",
            root.display()
        );
    }
    let api = match api_path {
        Some(p) => {
            let p =
                std::fs::canonicalize(p).with_context(|| format!("--api-path {}", p.display()))?;
            if !p.join("Cargo.toml").is_file() {
                bail!(
                    "--api-path {}: no Cargo.toml there (point it at the ndotel-api crate, plugins/api)",
                    p.display()
                );
            }
            p.to_str()
                .with_context(|| format!("--api-path {}: not valid UTF-8", p.display()))?
                .to_string()
        }
        None => "vendor/ndotel-api".to_string(),
    };
    // The vendored redaction crate depends on the same ndotel-api as the distro: one package, not two.
    let redact_api = match api_path {
        Some(_) => api.clone(),
        None => "../ndotel-api".to_string(),
    };
    // Written into Cargo.toml as a TOML string, quoted and escaped whatever the path holds.
    let api = toml::Value::String(api).to_string();
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{Type}}", &type_name(name))
            .replace("{{api_path}}", &api)
    };
    let mut files: Vec<(String, String)> = TEMPLATE
        .iter()
        .map(|(path, text)| (fill(path), fill(text)))
        .collect();
    if api_path.is_none() {
        files.extend(
            API.iter()
                .map(|(path, text)| (format!("vendor/ndotel-api/{path}"), text.to_string())),
        );
    }
    for (path, text) in REDACT {
        let text = if *path == "Cargo.toml" {
            point_at_api(text, &redact_api)?
        } else {
            text.to_string()
        };
        files.push((format!("vendor/ndotel-redact/{path}"), text));
    }
    for (path, text) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_types_and_bad_names_are_refused() {
        assert_eq!(type_name("acme_distro_2"), "AcmeDistro2");
        for bad in ["", "Acme", "1abc", "a-b", "a b", "abc_", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("acme_distro").is_ok());
        for taken in [
            "fn",
            "type",
            "self",
            "gen",
            "ndotel_api",
            "serde",
            "sdk",
            "std",
        ] {
            let e = check_name(taken).unwrap_err().to_string();
            assert!(e.contains("Rust keyword"), "{taken}: {e}");
        }
    }

    #[test]
    fn the_readmes_write_a_distro_shows_what_ndotel_new_generates() {
        let readme = include_str!("../../README.md");
        let start = readme.find("## Write a distro\n").unwrap();
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let tmp = tempfile::tempdir().unwrap();
        let root = new_distro("my_distro", tmp.path(), None).unwrap();
        let mut generated = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    generated.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let mut checked = 0;
        let mut blocks = section.split("```").skip(1).step_by(2);
        for block in blocks.by_ref() {
            let (lang, body) = block.split_once('\n').unwrap();
            match lang {
                // Every code block is a verbatim excerpt of a generated file (which a test builds and runs).
                "rust" | "toml" => {
                    assert!(
                        generated.iter().any(|(_, text)| text.contains(body)),
                        "README block not in any file `ndotel new my_distro` writes:\n{body}"
                    );
                    checked += 1;
                }
                // The layout: every path it names exists.
                "text" => {
                    for line in body.lines().skip(1) {
                        let path = line.split_whitespace().next().unwrap();
                        assert!(root.join(path).exists(), "{path} is not generated");
                    }
                    checked += 1;
                }
                _ => {}
            }
        }
        assert!(checked >= 5, "{checked} blocks checked");
    }

    #[test]
    fn the_vendored_crates_carry_every_source_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (dir, sources) in [("plugins/api/src", API), ("plugins/redact/src", REDACT)] {
            let mut on_disk: Vec<String> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| format!("src/{}", e.unwrap().file_name().to_string_lossy()))
                .collect();
            on_disk.sort();
            let mut carried: Vec<String> = sources
                .iter()
                .map(|(p, _)| p.to_string())
                .filter(|p| p.starts_with("src/"))
                .collect();
            carried.sort();
            assert_eq!(carried, on_disk, "{dir}: SOURCES must list every file");
        }
    }

    #[test]
    fn the_vendored_redaction_crate_uses_the_workspaces_api() {
        // However the carried manifest spells the dependency (this repository's inline table, or the table a
        // published package has), the copy points at the workspace's API and keeps the version requirement.
        for manifest in [
            "[package]\nname = \"x\"\n[dependencies]\nndotel-api = { version = \"1.5\", path = \"../api\" }\n",
            "[package]\nname = \"x\"\n[dependencies.ndotel-api]\nversion = \"1.5\"\n",
        ] {
            let out: toml::Table = point_at_api(manifest, "../ndotel-api")
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                out["dependencies"]["ndotel-api"]["path"].as_str(),
                Some("../ndotel-api")
            );
            assert_eq!(
                out["dependencies"]["ndotel-api"]["version"].as_str(),
                Some("1.5")
            );
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = new_distro("acme_distro", tmp.path(), None).unwrap();
        let written: toml::Table = toml::from_str(
            &std::fs::read_to_string(root.join("vendor/ndotel-redact/Cargo.toml")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            written["dependencies"]["ndotel-api"]["path"].as_str(),
            Some("../ndotel-api")
        );
    }

    #[test]
    fn the_api_path_is_quoted_into_the_generated_manifest_whatever_it_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let api = tmp.path().join("a\"b\\c\n[patch]\nx = \"y");
        std::fs::create_dir_all(&api).unwrap();
        std::fs::write(api.join("Cargo.toml"), "").unwrap();
        let root = new_distro("acme_distro", tmp.path(), Some(&api)).unwrap();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let parsed: toml::Table = toml::from_str(&manifest).unwrap();
        assert_eq!(
            parsed["workspace"]["dependencies"]["ndotel-api"]["path"].as_str(),
            std::fs::canonicalize(&api).unwrap().to_str()
        );
        assert!(!parsed.contains_key("patch"), "{manifest}");
    }
}
