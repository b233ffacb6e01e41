//! A snapshot of the process environment (variables and working directory), so that configuration is computed from
//! one consistent view and tests can supply their own without touching the process's environment.

use std::collections::HashMap;
use std::path::PathBuf;

/// Environment variables and the working directory.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
    cwd: PathBuf,
    /// Where a variable's value came from when not the environment (the configuration file: `file:line path`).
    origins: HashMap<String, String>,
    /// Variables ndotel itself set that a configuration file does not replace (the `sdk` fallback's distro).
    forced: std::collections::HashSet<String>,
}

impl Env {
    /// The current process's environment.
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            origins: HashMap::new(),
            forced: Default::default(),
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
            origins: HashMap::new(),
            forced: Default::default(),
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
        env.origins.remove(name);
        env
    }

    /// A variable's value as set, empty or not.
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|s| s.as_str())
    }

    /// This environment without the variables `drop` selects.
    pub(crate) fn without(&self, drop: impl Fn(&str) -> bool) -> Env {
        let mut env = self.clone();
        env.vars.retain(|k, _| !drop(k));
        env.origins.retain(|k, _| !drop(k));
        env
    }

    /// This environment with `name` set to `value`, which came from `origin`.
    pub(crate) fn with_origin(mut self, name: &str, value: &str, origin: &str) -> Env {
        self.vars.insert(name.to_string(), value.to_string());
        self.origins.insert(name.to_string(), origin.to_string());
        self
    }

    /// This environment with `name` set to `value`, which a configuration file does not replace.
    pub(crate) fn forcing(&self, name: &str, value: &str) -> Env {
        let mut env = self.with(name, value);
        env.forced.insert(name.to_string());
        env
    }

    /// Whether ndotel itself set `name` ([`Env::forcing`]).
    pub(crate) fn is_forced(&self, name: &str) -> bool {
        self.forced.contains(name)
    }

    /// Where `name`'s value came from, when not the process environment.
    pub(crate) fn origin(&self, name: &str) -> Option<&str> {
        self.origins.get(name).map(|s| s.as_str())
    }

    /// How a warning names the variable `name`: itself, or the place its value came from.
    pub(crate) fn label(&self, name: &str) -> String {
        match self.origin(name) {
            Some(o) => format!("{o} ({name})"),
            None => name.to_string(),
        }
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
