//! `ndotel-api`: the one FFI-safe boundary between the ndotel host and distro plugins.
//!
//! A *distro* is a named bundle of sampler, span processor, span exporter, metric exporter and resource defaults.
//! Distro authors implement the plain Rust traits of this crate ([`Distro`], [`Sampler`], [`SpanProcessor`],
//! [`SpanExporter`], [`MetricExporter`]) and then ship the distro both ways, written once:
//!
//! * in the distro's rlib crate, [`register_distro!`] registers it with `inventory`, so any binary that links the
//!   crate (and references it: `use my_distro as _;`) finds it at start-up;
//! * in a one-line cdylib crate beside it, [`export_plugin!`] exports the abi_stable root module, so the same distro
//!   loads at run time from a `.so` file.
//!
//! Two crates, because the root module is a `#[no_mangle]` symbol: two distro crates that each exported it could
//! never be linked into one binary.
//!
//! # What crosses the boundary
//! Per-span calls pass borrowed views ([`SamplingParams`], [`SpanView`], [`KeyValueRef`]) and return small values;
//! a processor that changes a span answers with [`SpanEdit`]s that the host applies, so a span it leaves alone costs
//! no allocation. Metrics cross once per export interval as an OTLP `ExportMetricsServiceRequest` in protobuf.
//! No futures and no SDK types cross.
//!
//! Every entry point the macros generate runs the distro's code inside `catch_unwind`: a panic becomes an
//! [`FfiError`] of kind [`ErrorKind::Panicked`] instead of aborting the host process.
//!
//! # Evolution rules
//! * The root module [`PluginMod`] and every `#[sabi_trait]` in [`ffi`] are prefix types: new fields and methods are
//!   only ever appended *after* the `#[sabi(last_prefix_field)]` marker, and the host checks for their presence.
//! * Changing, reordering or removing anything before the marker is a breaking change: bump the minor version while
//!   below 1.0 (abi_stable then refuses to load plugins built for the older API, with a one-line reason).
//! * Value types (`#[repr(C)]` structs and `#[repr(u8)]` enums) are checked for layout at load time.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod ffi;
mod guard;
mod types;

pub use ffi::{
    DistroDescriptor, FfiDistroBox, FfiMetricExporterBox, FfiSamplerBox, FfiSpanExporterBox,
    FfiSpanProcessorBox, PluginMod, PluginModRef, StaticDistro,
};
pub use guard::{descriptor, plugin_module};
pub use types::*;

#[doc(hidden)]
pub use abi_stable;
#[doc(hidden)]
pub use inventory;
pub use toml;

/// The version of this API crate, compiled into every plugin and checked by the host.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Error type returned by distro code; any error converts into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The configuration handed to [`Distro::init`]: the distro's `[distro.<name>]` table from `distro.toml`.
#[derive(Debug, Clone, Default)]
pub struct DistroConfig {
    table: toml::Table,
    base_dir: std::path::PathBuf,
}

impl DistroConfig {
    /// Builds a configuration from a TOML table and the directory relative paths are resolved against.
    pub fn new(table: toml::Table, base_dir: impl Into<std::path::PathBuf>) -> Self {
        DistroConfig {
            table,
            base_dir: base_dir.into(),
        }
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
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, BoxError> {
        Ok(toml::Value::Table(self.table.clone()).try_into()?)
    }
}

/// The component names a distro offers; the first entry of each list is its default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ComponentNames {
    /// Samplers, selectable with `OTEL_TRACES_SAMPLER`.
    pub samplers: &'static [&'static str],
    /// Whether the distro has a span processor.
    pub span_processor: bool,
    /// Span exporters, selectable with `OTEL_TRACES_EXPORTER`.
    pub span_exporters: &'static [&'static str],
    /// Metric exporters, selectable with `OTEL_METRICS_EXPORTER`.
    pub metric_exporters: &'static [&'static str],
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
    /// The components this distro offers.
    const COMPONENTS: ComponentNames;

    /// Builds the distro from its configuration table. Errors are reported with the distro's name and origin.
    fn init(config: &DistroConfig) -> Result<Self, BoxError>;

    /// Resource attributes the distro adds (the environment and `OTEL_RESOURCE_ATTRIBUTES` win over these).
    fn resource(&self) -> Vec<KeyValue> {
        Vec::new()
    }
    /// Builds the sampler called `name` (one of `COMPONENTS.samplers`).
    fn sampler(&self, name: &str) -> Result<Box<dyn Sampler>, BoxError> {
        Err(format!("distro {} has no sampler named {name:?}", Self::NAME).into())
    }
    /// Builds the span processor (when `COMPONENTS.span_processor`).
    fn span_processor(&self) -> Result<Box<dyn SpanProcessor>, BoxError> {
        Err(format!("distro {} has no span processor", Self::NAME).into())
    }
    /// Builds the span exporter called `name` (one of `COMPONENTS.span_exporters`).
    fn span_exporter(&self, name: &str) -> Result<Box<dyn SpanExporter>, BoxError> {
        Err(format!("distro {} has no span exporter named {name:?}", Self::NAME).into())
    }
    /// Builds the metric exporter called `name` (one of `COMPONENTS.metric_exporters`).
    fn metric_exporter(&self, name: &str) -> Result<Box<dyn MetricExporter>, BoxError> {
        Err(format!(
            "distro {} has no metric exporter named {name:?}",
            Self::NAME
        )
        .into())
    }
}

/// Decides, before a span starts, whether it is recorded and sampled. Called on the application's hot path.
pub trait Sampler: Send + Sync + 'static {
    /// The decision for one span.
    fn should_sample(&self, params: &SamplingParams<'_>) -> Decision;
    /// A human description (shown by `ndotel config`), like the SDK's `Sampler::description`.
    fn description(&self) -> String;
}

/// Enriches spans as they start and edits them as they end, before any exporter sees them.
pub trait SpanProcessor: Send + Sync + 'static {
    /// Attributes set on every span when it starts; asked once when the pipeline is built, never per span.
    fn start_attributes(&self) -> Vec<KeyValue> {
        Vec::new()
    }
    /// Inspects an ended span and pushes the edits to apply (none for a span left alone).
    fn on_end(&self, span: &SpanView<'_>, edits: &mut Edits);
}

/// Sends finished spans somewhere. Called from the batch processor's thread, never concurrently.
pub trait SpanExporter: Send + Sync + 'static {
    /// Exports one batch; `resource` holds the resource attributes of the process.
    fn export(&self, resource: &[KeyValueRef<'_>], spans: &[SpanView<'_>]) -> Result<(), BoxError>;
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
/// use ndotel_api::{BoxError, ComponentNames, Distro, DistroConfig};
///
/// struct Minimal;
/// impl Distro for Minimal {
///     const NAME: &'static str = "minimal";
///     const VERSION: &'static str = "1.0.0";
///     const COMPONENTS: ComponentNames = ComponentNames {
///         samplers: &[], span_processor: false, span_exporters: &[], metric_exporters: &[],
///     };
///     fn init(_: &DistroConfig) -> Result<Self, BoxError> {
///         Ok(Minimal)
///     }
/// }
/// ndotel_api::register_distro!(Minimal);
///
/// let names: Vec<_> = ndotel_api::inventory::iter::<ndotel_api::StaticDistro>
///     .into_iter()
///     .map(|d| (d.descriptor)().name.to_string())
///     .collect();
/// assert!(names.contains(&"minimal".to_string()));
/// ```
#[macro_export]
macro_rules! register_distro {
    ($distro:ty) => {
        $crate::inventory::submit! {
            $crate::StaticDistro { descriptor: $crate::descriptor::<$distro> }
        }
    };
}

/// Exports the root module for one or more distros from a cdylib crate (needs `abi_stable` as a dependency):
/// `ndotel_api::export_plugin!(my_distro::MyDistro);` — the whole `lib.rs` of `plugins/custom-so`.
///
/// The root module lists the distros' descriptors; the host loads the library, checks the module's layout and
/// version, and initialises the distro it selects.
#[macro_export]
macro_rules! export_plugin {
    ($($distro:ty),+ $(,)?) => {
        extern "C" fn __ndotel_distros() -> $crate::abi_stable::std_types::RVec<$crate::DistroDescriptor> {
            let mut all = $crate::abi_stable::std_types::RVec::new();
            $( all.push($crate::descriptor::<$distro>()); )+
            all
        }

        /// The root module of this ndotel plugin.
        #[$crate::abi_stable::export_root_module]
        pub fn ndotel_root_module() -> $crate::PluginModRef {
            $crate::plugin_module(__ndotel_distros)
        }
    };
}
