//! `ndotel`: a plugin host for custom OpenTelemetry distributions.
//!
//! A *distro* bundles a sampler, a span processor, span and metric exporters and resource defaults. ndotel finds
//! distros compiled into the binary (registered with `inventory` through `ndotel_api::register_distro!`) and
//! distros shipped as `.so` plugins (`ndotel_api::export_plugin!`), selects one, and builds the OpenTelemetry SDK
//! pipeline from it, the standard `OTEL_*` environment and `distro.toml`.
//!
//! ```no_run
//! // In main(): everything else is `tracing` and the OpenTelemetry API.
//! let _telemetry = ndotel::init(); // flushes and shuts down on drop
//! tracing::info_span!("work").in_scope(|| {});
//! ```
//!
//! A broken plugin never takes the application down: [`init`] reports it and falls back to the plain SDK
//! (`OTEL_RUST_DISTRO_FAIL_FAST=true` makes it a start-up failure instead); a distro component that fails or panics
//! at run time is replaced by a fallback and counted (see [`Faults`]).
//!
//! # Settings
//! Precedence, for every setting: CLI flag (`ndotel run`, passed as the environment) > environment >
//! `distro.toml` > the distro's default > the default below.
//!
//! | Environment | `distro.toml` | Default | Meaning |
//! |---|---|---|---|
//! | `OTEL_RUST_DISTRO` | `default` | the only registered distro, else `sdk` | the distro to use |
//! | `OTEL_RUST_DISTRO_CONFIG` | — | `./distro.toml` if present | the configuration file |
//! | `OTEL_RUST_DISTRO_PATH` | `[plugins] dirs` | none | plugin directories (`:`-separated; both are used) |
//! | — | `[opentelemetry_distro] name = "x.so"` or `{ path, sha256 }` | none | plugin files, relative to the file |
//! | `OTEL_RUST_DISTRO_INIT_TIMEOUT` | — | `10000` | milliseconds a distro's `init` may take before it counts as failed |
//! | `OTEL_RUST_DISTRO_FAIL_FAST` | `[plugins] fail_fast` | `false` | plugin load errors stop start-up |
//! | `OTEL_RUST_TRACING_FILTER` | — | `info,otel::tracing=trace` | which `tracing` spans become OpenTelemetry spans and which events are logged to stderr (`EnvFilter` syntax) |
//! | `OTEL_RUST_TRACING_CONTEXT_ACTIVATION` | — | `true` | `false`: entering a `tracing` span no longer makes its OpenTelemetry context current (cheaper; `Context::current()` then does not see it) |
//! | `OTEL_SDK_DISABLED` | `[otel] sdk_disabled` | `false` | no telemetry at all |
//! | `OTEL_SERVICE_NAME` | `[otel] service_name` | `unknown_service` | `service.name` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | — | none | extra resource attributes `k=v,k2=v2` |
//! | `OTEL_TRACES_EXPORTER` | `[otel] traces_exporter` | distro's first, else `otlp` | comma list: `otlp`, `console`, `file`, `none`, distro names |
//! | `OTEL_METRICS_EXPORTER` | `[otel] metrics_exporter` | distro's first, else `otlp` | comma list, as above |
//! | `OTEL_LOGS_EXPORTER` | `[otel] logs_exporter` | `none` | comma list: `otlp`, `console`, `none` — `tracing` events as log records (not redacted by distros: opt in knowingly) |
//! | `OTEL_TRACES_SAMPLER` | `[otel] traces_sampler` | distro's first, else `parentbased_always_on` | built-in or distro sampler |
//! | `OTEL_TRACES_SAMPLER_ARG` | `[otel] traces_sampler_arg` | `1.0` | ratio for `*traceidratio` |
//! | `OTEL_PROPAGATORS` | `[otel] propagators` | `tracecontext,baggage` | comma list: `tracecontext`, `baggage`, `none` |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | `[otel] metric_export_interval` | `60000` | milliseconds between metric exports |
//! | `OTEL_EXPORTER_FILE_TRACES_PATH` | `[otel] file_traces_path` | `traces.jsonl` | `file` span exporter output (OTLP JSON lines) |
//! | `OTEL_EXPORTER_FILE_METRICS_PATH` | `[otel] file_metrics_path` | `metrics.jsonl` | `file` metric exporter output |
//! | `OTEL_EXPORTER_OTLP_(TRACES_/METRICS_)PROTOCOL` | — | `http/protobuf` | `grpc` or `http/protobuf` |
//! | `OTEL_BSP_EXPORT_TIMEOUT` | — | `30000` | milliseconds a distro span exporter may take before it counts as hung |
//! | `OTEL_METRIC_EXPORT_TIMEOUT` | — | `30000` | milliseconds a distro metric exporter may take before it counts as hung |
//! | `OTEL_EXPORTER_OTLP_*`, `OTEL_BSP_*` | — | per the SDK | read by opentelemetry-otlp and the SDK |
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod config;
mod env;
mod faults;
mod file;
mod metrics;
mod pipeline;
mod plugin;
mod registry;
mod settings;
mod trace;
mod worker;

pub use config::{ConfigError, ConfigFile, FileConfig, PluginEntry};
pub use env::Env;
pub use faults::{Component, Faults};
pub use pipeline::{
    BUILTIN_LOG_EXPORTERS, BUILTIN_METRIC_EXPORTERS, BUILTIN_SAMPLERS, BUILTIN_SPAN_EXPORTERS,
    BuildError, Pipeline, Plan,
};
pub use plugin::{LoadError, Plugin};
pub use registry::{
    Components, Distro, DistroInfo, InitError, Origin, Registry, SDK_DISTRO, SelectError,
};
pub use settings::{Setting, Settings, Source};

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The version of the OpenTelemetry SDK ndotel was built with.
pub const OPENTELEMETRY_VERSION: &str = "0.33";

/// Keeps the pipeline alive; flushes every finished span and the last metrics, then shuts down, when dropped.
#[derive(Debug)]
pub struct Guard {
    pipeline: Pipeline,
    distro: String,
}

impl Guard {
    /// The name of the distro in use.
    pub fn distro(&self) -> &str {
        &self.distro
    }
    /// Failure counters of the distro's components.
    pub fn faults(&self) -> &Faults {
        &self.pipeline.faults
    }
    /// The tracer provider (`None` when the SDK is disabled).
    pub fn tracer_provider(&self) -> Option<&opentelemetry_sdk::trace::SdkTracerProvider> {
        self.pipeline.tracer_provider.as_ref()
    }
    /// The meter provider (`None` when the SDK is disabled or no metric exporter is selected).
    pub fn meter_provider(&self) -> Option<&opentelemetry_sdk::metrics::SdkMeterProvider> {
        self.pipeline.meter_provider.as_ref()
    }
    /// Flushes spans, metrics and log records now.
    pub fn flush(&self) {
        if let Some(tp) = &self.pipeline.tracer_provider {
            let _ = tp.force_flush();
        }
        if let Some(mp) = &self.pipeline.meter_provider {
            let _ = mp.force_flush();
        }
        if let Some(lp) = &self.pipeline.logger_provider {
            let _ = lp.force_flush();
        }
    }

    fn disabled(distro: &str) -> Guard {
        Guard {
            pipeline: Pipeline::disabled(Default::default()),
            distro: distro.into(),
        }
    }

    /// Installs the providers and propagator globally and the `tracing` subscriber.
    fn install(mut pipeline: Pipeline, distro: String, env: &Env) -> Guard {
        if let Some(p) = pipeline.propagator.take() {
            opentelemetry::global::set_text_map_propagator(p);
        }
        if let Some(mp) = &pipeline.meter_provider {
            opentelemetry::global::set_meter_provider(mp.clone());
        }
        if let Some(tp) = &pipeline.tracer_provider {
            opentelemetry::global::set_tracer_provider(tp.clone());
            // One global filter, not per-layer ones: with a global filter, `tracing` caches each callsite's interest
            // once, so disabled debug/trace callsites in dependencies (hyper, sqlx, tokio) cost nothing per call.
            let filter = env
                .get("OTEL_RUST_TRACING_FILTER")
                .unwrap_or("info,otel::tracing=trace");
            let otel_layer = tracing_opentelemetry::layer()
                .with_tracer(tp.tracer("ndotel"))
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_target(false)
                .with_level(false)
                // Entering a span also makes its OpenTelemetry context current (so the OpenTelemetry API works inside
                // `tracing` spans); measured at ~6% of a request's instructions, so it can be turned off.
                .with_context_activation(
                    env.get("OTEL_RUST_TRACING_CONTEXT_ACTIVATION") != Some("false"),
                );
            // The log layer sees events only: left to see spans, it would format every span's fields up front —
            // measured at 30% of a request's instructions in the example service.
            let fmt_layer = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(tracing_subscriber::filter::filter_fn(|m| m.is_event()));
            // `tracing` events become OpenTelemetry log records when OTEL_LOGS_EXPORTER selects an exporter.
            let logs_layer = pipeline
                .logger_provider
                .as_ref()
                .map(opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new);
            if tracing_subscriber::registry()
                .with(EnvFilter::new(filter))
                .with(otel_layer)
                .with(logs_layer)
                .with(fmt_layer)
                .try_init()
                .is_err()
            {
                eprintln!(
                    "ndotel: a tracing subscriber is already installed; tracing spans will not reach OpenTelemetry"
                );
            }
        }
        Guard { pipeline, distro }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(tp) = self.pipeline.tracer_provider.take() {
            if let Err(e) = tp.force_flush() {
                eprintln!("ndotel: flushing spans failed: {e}");
            }
            let _ = tp.shutdown();
        }
        if let Some(mp) = self.pipeline.meter_provider.take() {
            let _ = mp.force_flush();
            let _ = mp.shutdown();
        }
        if let Some(lp) = self.pipeline.logger_provider.take() {
            let _ = lp.force_flush();
            let _ = lp.shutdown();
        }
        if let Some(rt) = self.pipeline.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Builds and installs the pipeline from the process environment, or says why it could not.
///
/// Plugins that failed to load but were not selected are reported on standard error and skipped.
///
/// ```no_run
/// match ndotel::try_init() {
///     Ok(telemetry) => println!("telemetry through distro {}", telemetry.distro()),
///     Err(e) => eprintln!("no telemetry: {e}"),
/// }
/// ```
pub fn try_init() -> Result<Guard, BuildError> {
    try_init_with(&Env::from_process())
}

/// [`try_init`] with an explicit environment.
pub fn try_init_with(env: &Env) -> Result<Guard, BuildError> {
    let plan = Plan::new(env)?;
    for failure in plan.registry.failures() {
        eprintln!("ndotel: skipped plugin: {failure}");
    }
    for warning in plan.registry.warnings() {
        eprintln!("ndotel: warning: {warning}");
    }
    let pipeline = Pipeline::build(&plan, env)?;
    Ok(Guard::install(pipeline, plan.distro.name.clone(), env))
}

/// Builds and installs the pipeline; never fails the application.
///
/// On error it prints the reason and runs on the plain SDK distro (or with no telemetry when even that cannot be
/// built). Only with `OTEL_RUST_DISTRO_FAIL_FAST=true` does an error panic instead, as asked.
pub fn init() -> Guard {
    let env = Env::from_process();
    match try_init_with(&env) {
        Ok(guard) => guard,
        Err(e) => {
            let config = ConfigFile::discover(&env).ok().flatten();
            if settings::fail_fast(&env, config.as_ref())
                .map(|s| s.value)
                .unwrap_or(false)
            {
                panic!("ndotel: {e} (OTEL_RUST_DISTRO_FAIL_FAST is set)");
            }
            eprintln!("ndotel: {e}; falling back to the built-in `sdk` distro");
            let fallback = env.with("OTEL_RUST_DISTRO", SDK_DISTRO);
            match try_init_with(&fallback) {
                Ok(guard) => guard,
                Err(e) => {
                    eprintln!("ndotel: {e}; running without telemetry");
                    Guard::disabled(SDK_DISTRO)
                }
            }
        }
    }
}
