//! A snapshot of the process environment (variables and working directory), so that configuration is computed from
//! one consistent view and tests can supply their own without touching the process's environment.

use std::collections::HashMap;
use std::path::PathBuf;

/// Environment variables and the working directory.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    cwd: PathBuf,
}

impl Env {
    /// The current process's environment.
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }

    /// An environment made of `vars`, with `cwd` as working directory.
    ///
    /// ```
    /// let env = ndotel::Env::from_pairs([("OTEL_RUST_DISTRO", "sdk")], "/tmp");
    /// assert_eq!(env.get("OTEL_RUST_DISTRO"), Some("sdk"));
    /// ```
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
        cwd: impl Into<PathBuf>,
    ) -> Self {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            cwd: cwd.into(),
        }
    }

    /// A variable's value; empty values count as unset, as the OpenTelemetry specification asks.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|s| s.as_str())
            .filter(|s| !s.trim().is_empty())
    }

    /// This environment with `name` set to `value`.
    pub fn with(&self, name: &str, value: &str) -> Env {
        let mut env = self.clone();
        env.vars.insert(name.to_string(), value.to_string());
        env
    }

    /// Every variable.
    pub(crate) fn vars(&self) -> impl Iterator<Item = (&String, &String)> {
        self.vars.iter()
    }

    /// The working directory.
    pub fn cwd(&self) -> &std::path::Path {
        &self.cwd
    }
}
