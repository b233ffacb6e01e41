//! `ndotel-api`: the one FFI-safe boundary between the ndotel host and distro plugins.
//!
//! A *distro* is a named bundle of sampler, span processor, span exporter, metric exporter and resource defaults.
//! Distro authors implement the plain Rust traits of this crate ([`Distro`], [`Sampler`], [`SpanProcessor`],
//! [`SpanExporter`], [`MetricExporter`], [`LogProcessor`]) and then ship the distro both ways, written once:
//!
//! * in the distro's rlib crate, [`register_distro!`] registers it with `inventory`, so any binary that links the
//!   crate (and references it: `use my_distro as _;`) finds it at start-up;
//! * in a one-line cdylib crate beside it, [`export_plugin!`] exports the root module, so the same distro loads at
//!   run time from a `.so` file. That crate depends on `ndotel-api` and the distro's rlib, nothing else.
//!
//! Two crates, because the root module is a `#[no_mangle]` symbol: two distro crates that each exported it could
//! never be linked into one binary. [`testing`] runs a sampler or processor over spans built in a unit test.
//!
//! # What a distro sees
//! A sampler sees a span about to start ([`SamplingParams`]: trace id, parent, name, kind, attributes, links). A
//! processor sees the whole finished span ([`SpanView`]: ids, name, kind, times, attributes of every type, events,
//! links, status, instrumentation scope and the resource) and answers with [`Edits`] that the host applies before
//! any exporter sees the span: set, rename, redact or remove attributes of the span, its events and its links,
//! replace the status message, drop events, rename or drop the span. A log processor sees each log record
//! ([`LogView`]: severity, body, attributes, trace context, target) and answers with [`LogEdits`]: set or redact
//! the body, set, redact or remove attributes, drop the record. All of it is borrowed from the host's span;
//! a span the processor leaves alone costs no allocation. Metrics cross once per export interval as an OTLP
//! `ExportMetricsServiceRequest` in protobuf. No futures and no SDK types cross.
//!
//! Every entry point the macros generate runs the distro's code inside `catch_unwind`, so a panic becomes an
//! error the host reports instead of aborting the process. That needs unwinding: the host refuses a plugin built
//! with `panic = "abort"` (say `panic = "unwind"` in the plugin's Cargo profile, or leave the default).
//!
//! # Evolution rules (the API is 1.x: every 1.y host loads every 1.x plugin)
//! What the code enforces, and so what a later 1.y may do:
//! * The root module and the distro descriptor are abi_stable prefix types with `missing_field(option)`: new
//!   fields are appended after the last one; a host reads a field an older plugin lacks as absent.
//! * The boundary's traits (the plugin's sampler, processor, exporters and distro; the host's span and sampling
//!   views, edit and attribute sinks) are `#[sabi_trait]`s. New methods are appended after the last one and must
//!   have a default body, which runs when the other side was built before the method existed.
//! * Enums cross as integer codes; each side maps a code it does not know to a documented default
//!   ([`AnyValue::Unknown`] for a new value kind). The Rust enums that may grow in 1.x, [`AnyValue`] and
//!   [`Value`], have been `#[non_exhaustive]` since 1.0. The others — [`Decision`], [`SpanKind`], [`ParentKind`],
//!   [`StatusCode`], [`Temporality`] — were exhaustive in 1.0, so a distro may match them without a `_` arm, and
//!   they stay so in 1.x: a new variant of one of them needs 2.0 (a new meaning in 1.x comes as a new method).
//!   Released versions are immutable: `tests/fixtures/api-1.0` is 1.0.0 as released, and CI checks every change
//!   against it with cargo-semver-checks.
//! * Records that cross inside slices (attributes, events, links) are frozen; they grow through new view methods.
//! * Anything else — removing or changing a field, method or code — is a breaking change and needs 2.0, which the
//!   host refuses in one line naming both versions.
//!
//! Each 1.y lists what it added in [`CAPABILITIES`]; the host reads the plugin's list and says, in one line,
//! what it does without a capability an older plugin lacks. A plugin built against a newer 1.y than the host's is
//! refused (upgrade the host), as is any other major version.
//!
//! The host checks a plugin's layout with the plugin's types as the interface and its own as the implementation
//! (abi_stable's loader checks the other way round, which suits an old host loading a new library, not a new host
//! loading an old plugin). `tests/fixtures/api-1.0` is a frozen copy of 1.0.0; a plugin built against it outside
//! the workspace is loaded and run by the host's tests on every change.
//!
//! # Versions
//! * 1.0.0 — the boundary above.
//! * 1.1.0 — [`SpanView::dropped_counts`] (a new view method), [`Unavailable`] errors (a new error kind code), and
//!   [`SpanProcessor::shutdown`] (a new trait method with a default; capability `processor_shutdown`).
//! * 1.2.0 — [`export_plugin!`] also writes the plugin's metadata into an ELF section (capability
//!   `metadata_section`), so the host lists and selects distros without loading plugins.
//! * 1.3.0 — the host hands `init` its environment ([`DistroConfig::env_var`], capability `host_env`), so a distro
//!   reads what the host was configured with, not the process environment behind its back.
//! * 1.4.0 — log records pass through the distro too: [`LogProcessor`] (a new distro method with a default, a new
//!   descriptor field, capability `log_processor`) sees each record ([`LogView`]) and answers with [`LogEdits`].
//!   The host does not export the logs of a distro that has a span processor but no log processor unless
//!   `OTEL_LOGS_EXPORTER` is set explicitly, since nothing would redact them.
//! * 1.5.0 — the host edits spans on its batch thread, a batch per call: `FfiSpanProcessor::on_end_batch` (a new
//!   trait method whose default calls `on_end` per span; capability `span_batch`). Nothing changes for a distro's
//!   [`SpanProcessor`], which still sees one span at a time.
//! * 1.6.0 — consistent probability sampling: [`Sampler::intent`] (a new trait method with a default, and
//!   `FfiSampler::intent`, whose default maps `should_sample`; capability `sampling_intent`) and the [`sampling`]
//!   module, so a distro's sampler can be a node of the host's composite sampler and say ratios as thresholds. [`Decision`] and [`Temporality`] are exhaustive
//!   again, as released in 1.0.0: a change after 1.0.0 had made them `#[non_exhaustive]` without a release, which
//!   broke the source of a 1.0 distro that matched them without a `_` arm (its built plugins kept loading).
//! * 1.7.0 — an error in a distro's settings names its key: [`DistroConfig::deserialize`] returns a
//!   [`SettingError`] with the key path, and the host, told the path through `FfiInitArgs::setting_error_at` (a new
//!   host method with a default; capability `setting_error_path`), names the file, line and column that set it.
//!   [`SamplingParams::attribute`] asks the host for that one value (`FfiSamplingParams::attribute`, a new view
//!   method), so a sampler that looks up a few keys no longer has every attribute of the span converted.
//! * 1.8.0 — [`Sampler::children_follow_parent`] (a new trait method with a default, and
//!   `FfiSampler::children_follow_parent`, whose default says `false`; capability
//!   `sampler_children_follow_parent`): a parent-based sampler says so once, and the host decides its child spans
//!   without a call across the boundary.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

#[doc(hidden)]
pub mod ffi;
mod guard;
mod log;
#[doc(hidden)]
pub mod meta;
pub mod sampling;
pub mod testing;
mod types;
mod view;

#[doc(hidden)]
pub use guard::{descriptor, plugin_module};
pub use log::*;
pub use types::*;
pub use view::*;

#[doc(hidden)]
pub use abi_stable;
#[doc(hidden)]
pub use inventory;
pub use toml;

/// The version of this API crate, compiled into every plugin and checked by the host.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What this API version offers, by name; compiled into every plugin (see "Evolution rules").
pub const CAPABILITIES: &[&str] = &ffi::CAPABILITY_NAMES;

/// This crate's own sources (`Cargo.toml` and `src/*`), for `ndotel new`, which writes a copy of the API beside a new
/// distro. Not part of the API.
#[doc(hidden)]
pub const SOURCES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../Cargo.toml")),
    ("src/lib.rs", include_str!("lib.rs")),
    ("src/ffi.rs", include_str!("ffi.rs")),
    ("src/guard.rs", include_str!("guard.rs")),
    ("src/meta.rs", include_str!("meta.rs")),
    ("src/log.rs", include_str!("log.rs")),
    ("src/sampling.rs", include_str!("sampling.rs")),
    ("src/types.rs", include_str!("types.rs")),
    ("src/view.rs", include_str!("view.rs")),
    ("src/testing.rs", include_str!("testing.rs")),
];

/// Error type returned by distro code; any error converts into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error saying the destination is unavailable right now (a collector down, a full queue), as opposed to a
/// failure of the component: return `Err(Unavailable(..).into())` from an exporter. Since 1.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// The configuration handed to [`Distro::init`]: the distro's `[distro.<name>]` table from `distro.toml`.
#[derive(Debug, Clone, Default)]
pub struct DistroConfig {
    table: toml::Table,
    base_dir: std::path::PathBuf,
    env: Option<std::sync::Arc<std::collections::HashMap<String, String>>>,
}

impl DistroConfig {
    /// Builds a configuration from a TOML table and the directory relative paths are resolved against.
    pub fn new(table: toml::Table, base_dir: impl Into<std::path::PathBuf>) -> Self {
        DistroConfig {
            table,
            base_dir: base_dir.into(),
            env: None,
        }
    }

    /// This configuration with the host's environment: [`env_var`](Self::env_var) reads it instead of the
    /// process's (the host passes it since 1.3, so `ndotel::try_init_with` an explicit environment reaches the
    /// distro too).
    ///
    /// ```
    /// let config = ndotel_api::DistroConfig::new(Default::default(), ".")
    ///     .with_env([("DEPLOYMENT_ENVIRONMENT", "staging"), ("EMPTY", "")]);
    /// assert_eq!(config.env_var("DEPLOYMENT_ENVIRONMENT").as_deref(), Some("staging"));
    /// assert_eq!(config.env_var("EMPTY"), None, "empty is unset");
    /// assert_eq!(config.env_var("PATH"), None, "the process environment is not read");
    /// ```
    pub fn with_env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env = Some(std::sync::Arc::new(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ));
        self
    }

    /// An environment variable as the host sees it (the process environment under a host before 1.3); empty
    /// counts as unset, as the OpenTelemetry specification says.
    pub fn env_var(&self, name: &str) -> Option<String> {
        match &self.env {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
        .filter(|v| !v.is_empty())
    }

    /// The raw table (empty when `distro.toml` has no section for this distro).
    pub fn table(&self) -> &toml::Table {
        &self.table
    }

    /// The directory holding the `distro.toml` that configured this distro (the working directory otherwise).
    pub fn base_dir(&self) -> &std::path::Path {
        &self.base_dir
    }

    /// Deserialises the table into the distro's settings type; use `#[serde(deny_unknown_fields)]` so that a typo is
    /// an error naming the key instead of a silently ignored setting.
    ///
    /// ```
    /// #[derive(serde::Deserialize, Default, Debug)]
    /// #[serde(deny_unknown_fields, default)]
    /// struct Settings { ratio: f64 }
    /// let table: ndotel_api::toml::Table = "ratio = 0.5".parse().unwrap();
    /// let config = ndotel_api::DistroConfig::new(table, ".");
    /// assert_eq!(config.deserialize::<Settings>().unwrap().ratio, 0.5);
    /// let bad: ndotel_api::toml::Table = "ratoi = 0.5".parse().unwrap();
    /// let err = ndotel_api::DistroConfig::new(bad, ".").deserialize::<Settings>().unwrap_err();
    /// assert!(err.to_string().contains("ratoi"));
    /// ```
    ///
    /// The error is a [`SettingError`] naming the key it is about (since 1.7), which the host turns into the file
    /// and line that set it:
    ///
    /// ```
    /// # #[derive(serde::Deserialize, Default, Debug)]
    /// # #[serde(deny_unknown_fields, default)]
    /// # struct Settings { ratio: f64, exporter: Exporter }
    /// # #[derive(serde::Deserialize, Default, Debug)]
    /// # #[serde(deny_unknown_fields, default)]
    /// # struct Exporter { endpoint: String }
    /// let bad: ndotel_api::toml::Table = "[exporter]\nendpoint = 4317".parse().unwrap();
    /// let err = ndotel_api::DistroConfig::new(bad, ".").deserialize::<Settings>().unwrap_err();
    /// let err = err.downcast_ref::<ndotel_api::SettingError>().unwrap();
    /// assert_eq!(err.path(), ["exporter", "endpoint"]);
    /// assert!(err.message().starts_with("invalid type: integer `4317`"), "{}", err.message());
    /// ```
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, BoxError> {
        serde_path_to_error::deserialize(toml::Value::Table(self.table.clone())).map_err(|e| {
            use serde_path_to_error::Segment;
            // A segment the tracker could not name ends the path: what precedes it is still right.
            let path = e
                .path()
                .iter()
                .map_while(|segment| match segment {
                    Segment::Map { key } => Some(key.clone()),
                    Segment::Enum { variant } => Some(variant.clone()),
                    Segment::Seq { index } => Some(index.to_string()),
                    Segment::Unknown => None,
                })
                .collect::<Vec<_>>();
            let message = e.into_inner().message().trim().to_string();
            SettingError::new(path, message).into()
        })
    }
}

/// A distro's settings could not be read: the key path in its `[distro.<name>]` table and why (since 1.7).
///
/// [`DistroConfig::deserialize`] returns one. When `init` fails with it (anywhere in the error's `source()`
/// chain), the host names the file, line and column that set the key. An array index is written in decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    path: Vec<String>,
    message: String,
}

impl SettingError {
    /// An error about the setting at `path` (keys from the distro's table down; empty for the table itself).
    pub fn new<K: Into<String>>(
        path: impl IntoIterator<Item = K>,
        message: impl Into<String>,
    ) -> Self {
        SettingError {
            path: path.into_iter().map(Into::into).collect(),
            message: message.into(),
        }
    }

    /// The key path, from the distro's table down.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// What is wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The first `SettingError` in `error`'s `source()` chain, `error` included: the one the host is told about
    /// when `init` returns `error`, so a distro may wrap it in an error of its own.
    ///
    /// ```
    /// #[derive(Debug)]
    /// struct Wrapped(ndotel_api::SettingError);
    /// impl std::fmt::Display for Wrapped {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("bad settings") }
    /// }
    /// impl std::error::Error for Wrapped {
    ///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> { Some(&self.0) }
    /// }
    /// let error: ndotel_api::BoxError = Box::new(Wrapped(ndotel_api::SettingError::new(["a", "b"], "no")));
    /// let found = ndotel_api::SettingError::find(&*error).unwrap();
    /// assert_eq!((found.path(), found.to_string().as_str()), (&["a".to_string(), "b".into()][..], "at `a.b`: no"));
    /// ```
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a SettingError> {
        let mut at = Some(error);
        while let Some(e) = at {
            if let Some(found) = e.downcast_ref::<SettingError>() {
                return Some(found);
            }
            at = e.source();
        }
        None
    }
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        write!(f, "at `{}`: {}", self.path.join("."), self.message)
    }
}

impl std::error::Error for SettingError {}

/// The components a distro offers, each with its name and how to build it: the one place both come from.
///
/// The first sampler, span exporter and metric exporter added are the defaults. Names must be unique per kind.
///
/// ```
/// use ndotel_api::{Components, Decision, Sampler, SamplingParams};
/// struct Always;
/// impl Sampler for Always {
///     fn should_sample(&self, _: &SamplingParams<'_>) -> Decision { Decision::RecordAndSample }
///     fn description(&self) -> String { "Always".into() }
/// }
/// struct MyDistro { ratio: f64 }
/// let components = Components::<MyDistro>::new()
///     .sampler("always", |_d: &MyDistro| Ok::<_, ndotel_api::BoxError>(Always));
/// assert_eq!(components.sampler_names(), ["always"]);
/// ```
pub struct Components<D> {
    samplers: Vec<(&'static str, Factory<D, dyn Sampler>)>,
    span_processor: Option<Factory<D, dyn SpanProcessor>>,
    log_processor: Option<Factory<D, dyn LogProcessor>>,
    span_exporters: Vec<(&'static str, Factory<D, dyn SpanExporter>)>,
    metric_exporters: Vec<(&'static str, Factory<D, dyn MetricExporter>)>,
}

type Factory<D, T> = Box<dyn Fn(&D) -> Result<Box<T>, BoxError> + Send + Sync>;

impl<D> Default for Components<D> {
    fn default() -> Self {
        Components {
            samplers: Vec::new(),
            span_processor: None,
            log_processor: None,
            span_exporters: Vec::new(),
            metric_exporters: Vec::new(),
        }
    }
}

impl<D: 'static> std::fmt::Debug for Components<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Components")
            .field("samplers", &self.sampler_names())
            .field("span_processor", &self.span_processor.is_some())
            .field("log_processor", &self.log_processor.is_some())
            .field("span_exporters", &names(&self.span_exporters))
            .field("metric_exporters", &names(&self.metric_exporters))
            .finish()
    }
}

fn names<T>(list: &[(&'static str, T)]) -> Vec<&'static str> {
    list.iter().map(|(n, _)| *n).collect()
}

fn find<'c, T>(list: &'c [(&'static str, T)], name: &str) -> Option<&'c T> {
    list.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
}

impl<D: 'static> Components<D> {
    /// No components.
    pub fn new() -> Self {
        Self::default()
    }
    /// Offers a sampler, selectable with `OTEL_TRACES_SAMPLER=<name>`.
    pub fn sampler<S: Sampler, E: Into<BoxError>>(
        mut self,
        name: &'static str,
        build: impl Fn(&D) -> Result<S, E> + Send + Sync + 'static,
    ) -> Self {
        let f: Factory<D, dyn Sampler> = Box::new(move |d| {
            build(d)
                .map(|s| Box::new(s) as Box<dyn Sampler>)
                .map_err(Into::into)
        });
        self.samplers.push((name, f));
        self
    }
    /// Sets the span processor, which runs on every span before any exporter.
    pub fn span_processor<P: SpanProcessor, E: Into<BoxError>>(
        mut self,
        build: impl Fn(&D) -> Result<P, E> + Send + Sync + 'static,
    ) -> Self {
        self.span_processor = Some(Box::new(move |d| {
            build(d)
                .map(|p| Box::new(p) as Box<dyn SpanProcessor>)
                .map_err(Into::into)
        }));
        self
    }
    /// Sets the log record processor, which runs on every log record before any log exporter (since 1.4).
    pub fn log_processor<P: LogProcessor, E: Into<BoxError>>(
        mut self,
        build: impl Fn(&D) -> Result<P, E> + Send + Sync + 'static,
    ) -> Self {
        self.log_processor = Some(Box::new(move |d| {
            build(d)
                .map(|p| Box::new(p) as Box<dyn LogProcessor>)
                .map_err(Into::into)
        }));
        self
    }
    /// Offers a span exporter, selectable with `OTEL_TRACES_EXPORTER=<name>`.
    pub fn span_exporter<X: SpanExporter, E: Into<BoxError>>(
        mut self,
        name: &'static str,
        build: impl Fn(&D) -> Result<X, E> + Send + Sync + 'static,
    ) -> Self {
        let f: Factory<D, dyn SpanExporter> = Box::new(move |d| {
            build(d)
                .map(|x| Box::new(x) as Box<dyn SpanExporter>)
                .map_err(Into::into)
        });
        self.span_exporters.push((name, f));
        self
    }
    /// Offers a metric exporter, selectable with `OTEL_METRICS_EXPORTER=<name>`.
    pub fn metric_exporter<X: MetricExporter, E: Into<BoxError>>(
        mut self,
        name: &'static str,
        build: impl Fn(&D) -> Result<X, E> + Send + Sync + 'static,
    ) -> Self {
        let f: Factory<D, dyn MetricExporter> = Box::new(move |d| {
            build(d)
                .map(|x| Box::new(x) as Box<dyn MetricExporter>)
                .map_err(Into::into)
        });
        self.metric_exporters.push((name, f));
        self
    }

    /// The sampler names, default first.
    pub fn sampler_names(&self) -> Vec<&'static str> {
        names(&self.samplers)
    }
    /// Whether a span processor is set.
    pub fn has_span_processor(&self) -> bool {
        self.span_processor.is_some()
    }
    /// Whether a log processor is set.
    pub fn has_log_processor(&self) -> bool {
        self.log_processor.is_some()
    }
    /// The span exporter names, default first.
    pub fn span_exporter_names(&self) -> Vec<&'static str> {
        names(&self.span_exporters)
    }
    /// The metric exporter names, default first.
    pub fn metric_exporter_names(&self) -> Vec<&'static str> {
        names(&self.metric_exporters)
    }

    /// Builds the sampler called `name`.
    pub fn build_sampler(&self, distro: &D, name: &str) -> Result<Box<dyn Sampler>, BoxError> {
        let f = find(&self.samplers, name).ok_or_else(|| format!("no sampler named {name:?}"))?;
        f(distro)
    }
    /// Builds the span processor.
    pub fn build_span_processor(&self, distro: &D) -> Result<Box<dyn SpanProcessor>, BoxError> {
        let f = self.span_processor.as_ref().ok_or("no span processor")?;
        f(distro)
    }
    /// Builds the log processor.
    pub fn build_log_processor(&self, distro: &D) -> Result<Box<dyn LogProcessor>, BoxError> {
        let f = self.log_processor.as_ref().ok_or("no log processor")?;
        f(distro)
    }
    /// Builds the span exporter called `name`.
    pub fn build_span_exporter(
        &self,
        distro: &D,
        name: &str,
    ) -> Result<Box<dyn SpanExporter>, BoxError> {
        let f = find(&self.span_exporters, name)
            .ok_or_else(|| format!("no span exporter named {name:?}"))?;
        f(distro)
    }
    /// Builds the metric exporter called `name`.
    pub fn build_metric_exporter(
        &self,
        distro: &D,
        name: &str,
    ) -> Result<Box<dyn MetricExporter>, BoxError> {
        let f = find(&self.metric_exporters, name)
            .ok_or_else(|| format!("no metric exporter named {name:?}"))?;
        f(distro)
    }
}

/// A distro: implement this, then register it with [`register_distro!`] and export it with [`export_plugin!`].
///
/// Components are built on request, by name, so a distro that offers an OTLP exporter costs nothing when the user
/// picked another one.
pub trait Distro: Send + Sync + Sized + 'static {
    /// The name users select with `OTEL_RUST_DISTRO`.
    const NAME: &'static str;
    /// The distro's version (shown by `ndotel list`).
    const VERSION: &'static str;
    /// One line saying what the distro does.
    const DESCRIPTION: &'static str = "";

    /// Builds the distro from its configuration table. Errors are reported with the distro's name and origin.
    fn init(config: &DistroConfig) -> Result<Self, BoxError>;

    /// The components this distro offers: names and how to build each (none by default).
    fn components() -> Components<Self> {
        Components::new()
    }

    /// Resource attributes the distro adds (the environment and `OTEL_RESOURCE_ATTRIBUTES` win over these).
    fn resource(&self) -> Vec<KeyValue> {
        Vec::new()
    }
}

/// Decides, before a span starts, whether it is recorded and sampled. Called on the application's hot path.
pub trait Sampler: Send + Sync + 'static {
    /// The decision for one span.
    fn should_sample(&self, params: &SamplingParams<'_>) -> Decision;
    /// A human description (shown by `ndotel config`), like the SDK's `Sampler::description`.
    fn description(&self) -> String;
    /// Since 1.6: the decision in the terms of consistent probability sampling, which the host asks when the
    /// sampler is a node of its composite sampler (`distro = {}` in `[sampler]` of `distro.toml`). Say a ratio
    /// with [`SamplingIntent::ratio`](sampling::SamplingIntent::ratio) (the span then carries `th` and every service agrees on it). The default
    /// reads [`Sampler::should_sample`]'s decision ([`SamplingIntent::from_decision`](sampling::SamplingIntent::from_decision)).
    fn intent(&self, params: &SamplingParams<'_>) -> sampling::SamplingIntent {
        sampling::SamplingIntent::from_decision(self.should_sample(params))
    }
    /// Since 1.8: whether every span that has a parent gets [`Decision::FollowParent`] from this sampler (and
    /// [`SamplingIntent::FollowParent`](sampling::SamplingIntent::FollowParent) from [`Sampler::intent`]), as a
    /// parent-based sampler's do. Say `true` and the host decides a child span itself, as `FollowParent` would,
    /// without calling the sampler: a trace's every child span costs no call across the boundary. Asked once, when
    /// the sampler is built. The default, `false`, has every span asked.
    fn children_follow_parent(&self) -> bool {
        false
    }
}

/// Enriches spans as they start and edits them as they end, before any exporter sees them.
pub trait SpanProcessor: Send + Sync + 'static {
    /// Attributes set on every span when it starts; asked once when the pipeline is built, never per span.
    fn start_attributes(&self) -> Vec<KeyValue> {
        Vec::new()
    }
    /// Inspects an ended span and records the edits to apply (none for a span left alone).
    ///
    /// Metric series pass through here too, so one set of redaction rules covers both signals: the host hands
    /// each attribute set a metric instrument records for the first time to `on_end` as an `INTERNAL` span named
    /// after the instrument, with instrumentation scope `ndotel.metric_series`, no events, links or status, and
    /// applies the attribute edits to the series (once; later measurements reuse the answer). Dropping that span
    /// drops the series; renaming it is ignored.
    fn on_end(&self, span: &SpanView<'_>, edits: &mut Edits<'_>);
    /// The pipeline shuts down: release what the processor holds (since 1.1; hosts before 1.1 do not call it). A
    /// processor that a reload of the distro's settings replaces is not told: it is dropped once no queued span
    /// needs it, so release in `Drop` what must be released either way.
    fn shutdown(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Edits log records before any log exporter sees them (since 1.4): the `tracing` events of the service and
/// whatever else reaches the OpenTelemetry logs API. Called on the thread that logs, under the same watchdog and
/// fail-closed rule as the span processor.
///
/// ```
/// use ndotel_api::{LogEdits, LogProcessor, LogView};
/// struct DropDebug;
/// impl LogProcessor for DropDebug {
///     fn on_emit(&self, record: &LogView<'_>, edits: &mut LogEdits<'_>) {
///         if record.severity_number() < 9 { edits.drop_record(); } // below INFO
///         if record.attribute("password").is_some() { edits.redact("password"); }
///     }
/// }
/// ```
pub trait LogProcessor: Send + Sync + 'static {
    /// Inspects a record and records the edits to apply (none for a record left alone).
    fn on_emit(&self, record: &LogView<'_>, edits: &mut LogEdits<'_>);
    /// The pipeline shuts down: release what the processor holds. A processor that a reload of the distro's
    /// settings replaces is not told: it is dropped once nothing uses it, so release in `Drop` what must be
    /// released either way.
    fn shutdown(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Sends finished spans somewhere. Called from the batch processor's thread, never concurrently.
pub trait SpanExporter: Send + Sync + 'static {
    /// Exports one batch (each span carries the resource, see [`SpanView::resource`]).
    fn export(&self, spans: &[SpanView<'_>]) -> Result<(), BoxError>;
    /// Flushes whatever the exporter buffers.
    fn force_flush(&self) -> Result<(), BoxError> {
        Ok(())
    }
    /// Flushes and releases resources; no export follows.
    fn shutdown(&self) -> Result<(), BoxError> {
        self.force_flush()
    }
}

/// Sends metrics somewhere, once per export interval.
pub trait MetricExporter: Send + Sync + 'static {
    /// The aggregation temporality the exporter wants.
    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
    /// Exports one collection: an OTLP `ExportMetricsServiceRequest` encoded as protobuf.
    fn export(&self, otlp_protobuf: &[u8]) -> Result<(), BoxError>;
    /// Flushes whatever the exporter buffers.
    fn force_flush(&self) -> Result<(), BoxError> {
        Ok(())
    }
    /// Flushes and releases resources; no export follows.
    fn shutdown(&self) -> Result<(), BoxError> {
        self.force_flush()
    }
}

/// Registers a distro (a type implementing [`Distro`]) with `inventory`, from the distro's rlib crate.
///
/// A binary finds it only if it links the crate: reference it with `use my_distro as _;`.
///
/// ```
/// use ndotel_api::{BoxError, Distro, DistroConfig};
///
/// struct Minimal;
/// impl Distro for Minimal {
///     const NAME: &'static str = "minimal";
///     const VERSION: &'static str = "1.0.0";
///     fn init(_: &DistroConfig) -> Result<Self, BoxError> {
///         Ok(Minimal)
///     }
/// }
/// ndotel_api::register_distro!(Minimal);
///
/// let names: Vec<_> = ndotel_api::inventory::iter::<ndotel_api::ffi::StaticDistro>
///     .into_iter()
///     .map(|d| (d.descriptor)().name().to_string())
///     .collect();
/// assert!(names.contains(&"minimal".to_string()));
/// ```
#[macro_export]
macro_rules! register_distro {
    ($distro:ty) => {
        $crate::inventory::submit! {
            $crate::ffi::StaticDistro { descriptor: $crate::descriptor::<$distro> }
        }
    };
}

/// Exports the root module for one or more distros from a cdylib crate that depends on `ndotel-api` and the
/// distros' crates: `ndotel_api::export_plugin!(my_distro::MyDistro);` is the whole `lib.rs` of
/// `plugins/custom-so`.
///
/// The root module records the API version and capabilities the plugin was built with, whether it unwinds on
/// panic, and the distros' descriptors. The host checks all of it before it initialises the distro it selects.
#[macro_export]
macro_rules! export_plugin {
    ($($distro:ty),+ $(,)?) => {
        extern "C" fn __ndotel_distros()
            -> $crate::abi_stable::std_types::RVec<$crate::ffi::DistroDescriptorRef>
        {
            let mut all = $crate::abi_stable::std_types::RVec::new();
            $( all.push($crate::descriptor::<$distro>()); )+
            all
        }

        // The metadata the host reads without loading the plugin (see `ndotel_api::meta`).
        const __NDOTEL_META_PARTS: &[(u8, &str)] = &[
            ($crate::meta::API_VERSION, $crate::API_VERSION),
            ($crate::meta::PANIC, if cfg!(panic = "unwind") { "unwind" } else { "abort" }),
            $(
                ($crate::meta::DISTRO, <$distro as $crate::Distro>::NAME),
                ($crate::meta::DISTRO_VERSION, <$distro as $crate::Distro>::VERSION),
                ($crate::meta::DISTRO_DESCRIPTION, <$distro as $crate::Distro>::DESCRIPTION),
            )+
        ];
        #[used]
        #[unsafe(link_section = ".ndotel_meta")]
        static __NDOTEL_META: [u8; $crate::meta::len(__NDOTEL_META_PARTS)] =
            $crate::meta::encode(__NDOTEL_META_PARTS);

        fn __ndotel_root_module() -> $crate::ffi::PluginModRef {
            // Keeps the metadata section in the library whatever the linker's section garbage collection does.
            ::core::hint::black_box(&__NDOTEL_META);
            $crate::plugin_module(__ndotel_distros, cfg!(panic = "unwind"))
        }

        // What `#[abi_stable::export_root_module]` generates, spelled through `$crate` so that the plugin needs no
        // direct dependency on abi_stable: the header abi_stable's loader looks up by this name.
        /// The abi_stable header of this ndotel plugin.
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased_module() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(__ndotel_root_module)
            }
            // SAFETY: the constructor returns the module type named here, as `export_root_module` requires.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::ffi::PluginModRef>(
                    erased_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
