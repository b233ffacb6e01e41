//! The host's rooms import one way only: a test reads every module's `crate::` and `super::` paths (outside
//! comments and test modules) and fails on a circle, or on a room importing one it must not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`pipeline::trace`) → the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).unwrap().with_extension("");
                let name = rel
                    .to_string_lossy()
                    .trim_end_matches("/mod")
                    .replace('/', "::");
                if name != "lib" && !name.ends_with("tests") {
                    sources.insert(name, std::fs::read_to_string(&path).unwrap());
                }
            }
        }
    }
    let names: BTreeSet<String> = sources.keys().cloned().collect();
    let resolve = |path: &str| {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|k| parts[..k].join("::"))
            .find(|c| names.contains(c))
    };
    sources
        .iter()
        .map(|(name, text)| {
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut deps = BTreeSet::new();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let path: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    deps.extend(resolve(path.trim_end_matches(':')));
                }
                for (i, _) in line.match_indices("super::") {
                    let rest: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let parent = name.rsplit_once("::").map_or("", |(p, _)| p);
                    let grand = parent.rsplit_once("::").map_or("", |(g, _)| g);
                    let path = if grand.is_empty() {
                        rest
                    } else {
                        format!("{grand}::{rest}")
                    };
                    deps.extend(resolve(&path));
                }
            }
            deps.remove(name);
            (name.clone(), deps)
        })
        .collect()
}

/// A circle through `from`, if any.
fn circle(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut path = vec![from.to_string()];
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        target: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let last = path.last().cloned().unwrap_or_default();
        for next in g.get(&last).into_iter().flatten() {
            if next == target {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, target, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(g, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_module_of_the_host_imports_one_that_imports_it_back() {
    let g = graph();
    assert!(g.len() > 30, "the scan found too few modules: {g:?}");
    for name in g.keys() {
        if let Some(c) = circle(&g, name) {
            panic!("an import circle: {} -> {name}", c.join(" -> "));
        }
    }
}

#[test]
fn each_room_imports_only_the_rooms_below_it() {
    let room = |m: &str| m.split("::").next().unwrap_or_default().to_string();
    // What each room must not import.
    let forbidden: &[(&str, &[&str])] = &[
        (
            "consistent",
            &[
                "settings", "distro", "pipeline", "trace", "metrics", "logs", "export",
            ],
        ),
        (
            "settings",
            &["distro", "pipeline", "trace", "logs", "metrics"],
        ),
        (
            "distro",
            &["pipeline", "trace", "metrics", "logs", "export"],
        ),
        ("trace", &["pipeline", "settings"]),
        ("metrics", &["pipeline", "settings"]),
        ("logs", &["pipeline", "settings"]),
        (
            "export",
            &["settings", "distro", "pipeline", "trace", "metrics", "logs"],
        ),
    ];
    for (module, deps) in graph() {
        for dep in deps {
            for (from, not) in forbidden {
                assert!(
                    !(room(&module) == *from && not.contains(&room(&dep).as_str())),
                    "{module} imports {dep}: the {from} room must not import {not:?}"
                );
            }
        }
    }
}

/// Only the `distro` room touches the FFI: the rest of the host calls distros through its typed adapters and
/// `Distro`'s methods, and never names an abi_stable type or one of the API's `ffi` module.
#[test]
fn only_the_distro_room_touches_the_ffi() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![root.clone()];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                if rel != "distro" {
                    stack.push(path);
                }
                continue;
            }
            if rel == "architecture_tests.rs" || !rel.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                assert!(
                    ![
                        "abi_stable",
                        "ndotel_api::ffi",
                        "sabi_trait",
                        "RResult",
                        "RStr"
                    ]
                    .iter()
                    .any(|ffi| code.contains(ffi)),
                    "src/{rel}:{}: outside the distro room: {line}",
                    n + 1
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "the scan found too few files: {checked}");
}
