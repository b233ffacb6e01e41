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
//! A broken plugin never takes the application down, and never leaks what it would have redacted: when the selected
//! distro cannot be used, [`init`] reports it and runs with telemetry off (`OTEL_RUST_DISTRO_FALLBACK=sdk` opts
//! into the plain SDK, `OTEL_RUST_DISTRO_FAIL_FAST=true` into a start-up failure); a distro component that fails,
//! panics or hangs at run time is replaced by a fallback and counted (see [`Faults`]).
//!
//! # Settings
//! Precedence, for every setting: CLI flag (`ndotel run`, passed as the environment) > environment >
//! `distro.toml` > the distro's default > the default below.
//!
//! Every value follows the specification's rules: an empty variable is unset; Booleans are `true` or `false` in any
//! case (nothing else is true); enum values are case-insensitive; lists are trimmed and deduplicated; an invalid value
//! is a warning (printed once by `init()`, shown by `ndotel config`) and the next source or the default applies. A
//! name no component answers to (a sampler, exporter or propagator) is left out by `init()`, which runs with the
//! rest, and fails `ndotel check` and `ndotel config`; one OpenTelemetry specifies but ndotel lacks (`xray`,
//! `zipkin`, `prometheus`, `b3`) is a warning.
//!
//! The table below is generated from [`SETTINGS`], the list `ndotel config` follows too:
//!
#![doc = include_str!("../SETTINGS.md")]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

#[cfg(test)]
mod architecture_tests;
#[doc(hidden)]
pub mod child; // for the `ndotel` binary's own children

/// What `benches/` measures on its own (not part of the API).
#[doc(hidden)]
pub mod bench {
    /// ndotel's OTLP span encoder, as its exporter keeps it for a pipeline's resource.
    #[derive(Debug)]
    pub struct SpanEncoder(crate::export::otlp::wire::Encoder);

    impl SpanEncoder {
        /// The encoder of a pipeline with `resource`.
        pub fn new(resource: &opentelemetry_sdk::Resource) -> Self {
            SpanEncoder(crate::export::otlp::wire::Encoder::new(resource))
        }

        /// Writes the `ExportTraceServiceRequest` of `spans` into `buf`, as the exporter does for each batch.
        pub fn encode(&self, spans: &[opentelemetry_sdk::trace::SpanData], buf: &mut Vec<u8>) {
            self.0.encode(spans, buf);
        }
    }
}
mod components;
pub mod consistent;
mod distro;
mod env;
mod export;
mod logs;
mod metrics;
mod pipeline;
mod settings;
/// The OpenTelemetry configuration file (`OTEL_CONFIG_FILE`).
pub use settings::declared;
mod text;
mod trace;
mod trust;

pub use components::Components;
pub use components::DistroOffer;
pub use distro::faults::{Component, Faults};
pub use distro::plugin::{LoadError, Plugin};
pub use distro::registry::{
    Distro, DistroInfo, InitError, Origin, Registry, SDK_DISTRO, SelectError,
};
pub use env::Env;
/// The version of `ndotel-api` this host was built with (plugins built against the same major version load).
pub use ndotel_api::API_VERSION;
pub use pipeline::{
    BUILTIN_LOG_EXPORTERS, BUILTIN_METRIC_EXPORTERS, BUILTIN_SAMPLERS, BUILTIN_SPAN_EXPORTERS,
    BuildError, Pipeline, Plan, PlanError, StartError,
};
pub use settings::config::{ConfigError, ConfigFile, FileConfig, MAX_CONFIG_BYTES, PluginEntry};
pub use settings::{SETTINGS, Setting, SettingDoc, Settings, Source, settings_table};

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The version of the OpenTelemetry SDK ndotel was built with.
pub const OPENTELEMETRY_VERSION: &str = "0.33";

/// Keeps the pipeline alive; flushes every finished span and the last metrics, then shuts down, when dropped.
#[derive(Debug)]
pub struct Guard {
    pipeline: Pipeline,
    distro: String,
    /// Reloads the composite sampler and the distro's own settings on `SIGHUP` (and file changes) while the guard
    /// lives.
    reload: Option<pipeline::reload::Running>,
}

impl Guard {
    /// The name of the distro in use (or selected, when telemetry is off because it could not be used).
    pub fn distro(&self) -> &str {
        &self.distro
    }
    /// Whether telemetry is on: `false` when the SDK is disabled or the selected distro could not be used.
    pub fn enabled(&self) -> bool {
        self.pipeline.tracer_provider.is_some()
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
            reload: None,
        }
    }

    /// Installs the providers and propagator globally and the `tracing` subscriber.
    fn install(mut pipeline: Pipeline, distro: String) -> Guard {
        if let Some(p) = pipeline.propagator.take() {
            opentelemetry::global::set_text_map_propagator(p);
        }
        if let Some(mp) = &pipeline.meter_provider {
            match pipeline.series_editor.clone() {
                // The distro's redaction applies to every metric series before it is recorded.
                Some(editor) => opentelemetry::global::set_meter_provider(
                    metrics::series::RedactingMeterProvider::new(mp.clone(), editor),
                ),
                None => opentelemetry::global::set_meter_provider(mp.clone()),
            }
        }
        if let Some(tp) = &pipeline.tracer_provider {
            opentelemetry::global::set_tracer_provider(tp.clone());
            // One global filter, not per-layer ones: with a global filter, `tracing` caches each callsite's interest
            // once, so disabled debug/trace callsites in dependencies (hyper, sqlx, tokio) cost nothing per call.
            let (filter, context_activation, own_layer) = pipeline.tracing.clone();
            let stderr_through_distro = pipeline.stderr_through_distro;
            // `tracing` spans become OpenTelemetry spans through ndotel's own layer (`trace::layer`), or through
            // `tracing-opentelemetry` for services that use its `OpenTelemetrySpanExt`.
            let own = own_layer
                .then(|| trace::layer::SpanLayer::new(tp.tracer("ndotel"), context_activation));
            let bridge = (!own_layer).then(|| {
                tracing_opentelemetry::layer()
                    .with_tracer(tp.tracer("ndotel"))
                    .with_location(false)
                    .with_threads(false)
                    .with_tracked_inactivity(false)
                    .with_target(false)
                    .with_level(false)
                    // Entering a span also makes its OpenTelemetry context current (so the OpenTelemetry API works
                    // inside `tracing` spans); measured at ~6% of a request's instructions, so it can be turned off.
                    .with_context_activation(context_activation)
            });
            // Told of events only, and each one checked here rather than by a per-layer filter: a per-layer filter
            // anywhere makes the registry keep filter state for every span, on each creation, enter, exit and
            // close. The global filter below has already applied the levels.
            let fmt_layer = EventsOnly(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colours only for a terminal: a redirected stderr gets plain text.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
                // The service's own events are printed from the logger provider, after the distro's log processor
                // has redacted them; the OpenTelemetry libraries' repeated complaints are left out.
                move |m: &tracing::Metadata<'_>| {
                    (!stderr_through_distro || logs::internal_target(m.target()))
                        && !repeated_sdk_message(m)
                },
            );
            // A filter of targets and levels only (the default's shape) is applied as `Targets`, which decides per
            // callsite; `EnvFilter` also tracks every span it enables and looks it up on each enter and exit of
            // the span (each poll of an instrumented future): ~2% of the example service's instructions per
            // request. Span- and field-based directives still get `EnvFilter`.
            let targets = filter.parse::<tracing_subscriber::filter::Targets>().ok();
            // `tracing` events become OpenTelemetry log records when OTEL_LOGS_EXPORTER selects an exporter —
            // except those of the libraries on the export path, which would loop.
            let logs_layer = pipeline.logger_provider.as_ref().map(|lp| {
                EventsOnly(
                    opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(lp),
                    |m: &tracing::Metadata<'_>| !logs::internal_target(m.target()),
                )
            });
            if tracing_subscriber::registry()
                .with(targets.is_none().then(|| EnvFilter::new(&filter)))
                .with(targets)
                .with(own)
                .with(bridge)
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
        Guard {
            pipeline,
            distro,
            reload: None,
        }
    }
}

/// The OpenTelemetry side of a `tracing` span, whichever bridge `OTEL_RUST_TRACING_BRIDGE` chose.
///
/// ```no_run
/// use ndotel::SpanExt as _;
/// use opentelemetry::trace::TraceContextExt as _;
/// let _telemetry = ndotel::init();
/// let span = tracing::info_span!("work");
/// let trace_id = span.otel_context().span().span_context().trace_id();
/// # let _ = trace_id;
/// ```
pub trait SpanExt {
    /// The span's OpenTelemetry context, with the span as its active span: to inject into an outgoing request, or
    /// to parent spans made with the OpenTelemetry API. An empty context when the span is disabled or no bridge is
    /// installed.
    fn otel_context(&self) -> opentelemetry::Context;
}

impl SpanExt for tracing::Span {
    fn otel_context(&self) -> opentelemetry::Context {
        let own = self
            .with_subscriber(|(id, dispatch)| {
                dispatch
                    .downcast_ref::<trace::layer::WithContext>()
                    .map(|with| with.context(dispatch, id))
            })
            .flatten();
        match own {
            Some(cx) => cx.unwrap_or_default(),
            None => tracing_opentelemetry::OpenTelemetrySpanExt::context(self),
        }
    }
}

/// A layer that is told of the events `wanted` accepts — never of spans, so it cannot spend anything per span.
///
/// Measured: a per-layer filter instead (`Layer::with_filter`) costs ~290 instructions on every enter and exit of
/// any span (each poll of an instrumented future), ~4,000 per request of the example service, for layers that never
/// look at spans.
struct EventsOnly<L, F>(L, F);

impl<S, L, F> tracing_subscriber::Layer<S> for EventsOnly<L, F>
where
    S: tracing::Subscriber,
    L: tracing_subscriber::Layer<S>,
    F: Fn(&tracing::Metadata<'_>) -> bool + Send + Sync + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, cx: tracing_subscriber::layer::Context<'_, S>) {
        if (self.1)(event.metadata()) {
            self.0.on_event(event, cx);
        }
    }

    /// Answers for itself, else for the inner layer (a formatter's types, say).
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded unchanged; the inner layer upholds the contract for its own types.
        unsafe { self.0.downcast_raw(id) }
    }
}

/// Whether `m` is an OpenTelemetry library's own event (an export failing, say) already shown in the last minute:
/// a collector that is down would otherwise repeat the same line every few seconds. Where spans go is said once at
/// start-up, and `ndotel check` tells a missing collector apart from a broken pipeline.
fn repeated_sdk_message(m: &tracing::Metadata<'_>) -> bool {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static SHOWN: Mutex<Option<HashMap<tracing::callsite::Identifier, Instant>>> = Mutex::new(None);
    if !m.target().starts_with("opentelemetry") {
        return false;
    }
    let Ok(mut shown) = SHOWN.lock() else {
        return false;
    };
    let shown = shown.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    match shown.get(&m.callsite()) {
        Some(at) if now.duration_since(*at) < Duration::from_secs(60) => true,
        _ => {
            shown.insert(m.callsite(), now);
            false
        }
    }
}

impl Guard {
    /// Flushes and shuts down every provider now, within `OTEL_RUST_SHUTDOWN_TIMEOUT` in all, and says how it went:
    /// `Err(OTelSdkError::Timeout(_))` when the deadline passed, `Err(InternalFailure)` naming what failed
    /// otherwise. Dropping the guard does the same and prints the outcome instead.
    pub fn shutdown(mut self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.finish()
    }

    fn finish(&mut self) -> opentelemetry_sdk::error::OTelSdkResult {
        use opentelemetry_sdk::error::OTelSdkError;
        // No reload once shutdown starts.
        drop(self.reload.take());
        // No scrape is answered once the providers shut down: the endpoint stops first (it frees its port).
        drop(self.pipeline.prometheus.take());
        let tp = self.pipeline.tracer_provider.take();
        let mp = self.pipeline.meter_provider.take();
        let lp = self.pipeline.logger_provider.take();
        let transport = std::mem::take(&mut self.pipeline.transport);
        // Told once: by the span pipeline after its last batch, or here when no span pipeline was installed.
        let editor = self.pipeline.series_editor.clone();
        if tp.is_none() && mp.is_none() && lp.is_none() {
            return Ok(());
        }
        let timeout = self.pipeline.shutdown_timeout;
        let finished = distro::worker::with_deadline("ndotel-shutdown", timeout, move || {
            let mut failed = Vec::new();
            let mut note = |what: &str, r: opentelemetry_sdk::error::OTelSdkResult| match r {
                Ok(()) | Err(OTelSdkError::AlreadyShutdown) => {}
                Err(e) => failed.push(format!("{what}: {e}")),
            };
            // Metrics first: the last collection runs observable callbacks, whose new series still go through
            // the distro's processor, which the tracer provider's shutdown shuts down.
            if let Some(mp) = mp {
                // Shutdown collects and exports once more; a flush before it would export every data point twice.
                note("metrics", mp.shutdown());
            }
            if let Some(tp) = tp {
                note("flushing spans", tp.force_flush());
                note("traces", tp.shutdown());
            }
            if let Some(editor) = editor {
                editor.load().shutdown();
            }
            if let Some(lp) = lp {
                note("flushing logs", lp.force_flush());
                note("logs", lp.shutdown());
            }
            transport.shutdown();
            failed
        });
        // Views are matched as instruments are created; one that never matched names an instrument this service
        // does not have (a typo, or another service's): said once, here.
        for (view, matched) in std::mem::take(&mut self.pipeline.views) {
            if !matched.load(std::sync::atomic::Ordering::Relaxed) {
                eprintln!(
                    "ndotel: warning: the [[views]] entry for instrument {:?}{} matched no instrument of this \
                     service; check the name (the instruments are listed in any metric export)",
                    crate::text::printable(&view.instrument),
                    view.meter
                        .as_deref()
                        .map(|m| format!(" of meter {:?}", crate::text::printable(m)))
                        .unwrap_or_default()
                );
            }
        }
        let lost = self.pipeline.delivery.undelivered();
        let full = self.pipeline.delivery.dropped_full();
        if lost > full {
            eprintln!(
                "ndotel: {} span export(s) were not delivered (an export failed or shutdown ran out of time)",
                lost.saturating_sub(full)
            );
        }
        if full > 0 {
            eprintln!(
                "ndotel: {full} span(s) were dropped because the span queue was full; raise OTEL_BSP_MAX_QUEUE_SIZE \
                 or lower OTEL_BSP_SCHEDULE_DELAY"
            );
        }
        match finished {
            Ok(failed) if failed.is_empty() => Ok(()),
            Ok(failed) => Err(OTelSdkError::InternalFailure(failed.join("; "))),
            Err(distro::worker::Missed::TimedOut(d)) => Err(OTelSdkError::Timeout(d)),
            Err(e) => Err(OTelSdkError::InternalFailure(format!("shutdown {e}"))),
        }
    }
}

impl Drop for Guard {
    /// Flushes and shuts down every provider within `OTEL_RUST_SHUTDOWN_TIMEOUT` in all: a collector that accepts
    /// connections but never answers must not hold the service's exit hostage. What was not delivered is said.
    fn drop(&mut self) {
        use opentelemetry_sdk::error::OTelSdkError;
        match self.finish() {
            Ok(()) => {}
            Err(OTelSdkError::Timeout(d)) => eprintln!(
                "ndotel: shutdown did not return within {d:?} (an exporter is slow or its collector does not \
                 answer); stopping anyway (OTEL_RUST_SHUTDOWN_TIMEOUT sets this deadline)"
            ),
            Err(e) => eprintln!("ndotel: shutdown: {e}"),
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
pub fn try_init() -> Result<Guard, StartError> {
    try_init_with(&Env::from_process())
}

/// [`try_init`] with an explicit environment.
pub fn try_init_with(env: &Env) -> Result<Guard, StartError> {
    try_init_from(env, settings::boot::Boot::resolve(env))
}

/// [`try_init_with`] from the boot settings resolved from `env`.
fn try_init_from(env: &Env, boot: settings::boot::Boot) -> Result<Guard, StartError> {
    let plan = Plan::from_boot(env, boot)?;
    for warning in plan.warnings() {
        eprintln!("ndotel: warning: {warning}");
    }
    let mut pipeline = Pipeline::build(&plan, env)?;
    // Once, where telemetry goes: the first thing to check when nothing arrives.
    if pipeline.tracer_provider.is_some() {
        eprintln!(
            "ndotel: distro {}; spans: {}",
            plan.distro.name,
            plan.settings.trace_destinations().join(", ")
        );
    }
    // A composite sampler from `distro.toml` (`[sampler]`) or from the configuration file
    // (`composite/development`), and the distro's own settings (`[distro.NAME]`, `distribution.ndotel.settings`),
    // can be reloaded while the service runs.
    let (sampler, node) = match pipeline.composite.clone() {
        Some((sampler, node)) => (Some(sampler), node),
        None => (None, None),
    };
    let watch = (
        plan.settings.reload_health_window.value,
        plan.settings
            .reload_status
            .value
            .clone()
            .map(|p| env.cwd().join(p)),
    );
    let reloadable = sampler.is_some() || pipeline.distro_parts.is_some();
    let reloader = match (&plan.declared, &plan.config) {
        _ if !reloadable => None,
        (Some(declared), _) => Some(pipeline::reload::Reloader::of_declared(
            sampler,
            pipeline.distro_parts.take(),
            node,
            declared,
            plan.config.as_ref(),
            env,
            pipeline.faults.clone(),
            watch,
        )),
        (None, Some(config)) => Some(pipeline::reload::Reloader::new(
            sampler,
            pipeline.distro_parts.take(),
            node,
            config,
            env,
            pipeline.faults.clone(),
            watch,
        )),
        (None, None) => None,
    };
    let reload = reloader.and_then(|r| {
        pipeline::reload::start(r, pipeline::reload::Mode::of(&plan.settings.reload.value))
    });
    let mut guard = Guard::install(pipeline, plan.distro.name.clone());
    guard.reload = reload;
    Ok(guard)
}

/// Builds and installs the pipeline; never fails the application.
///
/// **Fail closed for data, open for the service.** When the selected distro cannot be used (its plugin refused,
/// its `init` or a component failing, two distros with its name), the service runs with telemetry *off*: nothing
/// the distro would have redacted or dropped leaves the process. The reason is printed once on standard error
/// (`ndotel check` shows it too). `OTEL_RUST_DISTRO_FALLBACK=sdk` runs the plain SDK instead — with the same
/// exporters and *without* the distro's redaction. `OTEL_RUST_DISTRO_FAIL_FAST=true` makes it a start-up failure:
/// the error is printed and the process exits with status 1 (no panic).
pub fn init() -> Guard {
    let env = Env::from_process();
    // Resolved once: what the plan is made from is what decides when it fails (the configuration file's
    // `distribution.ndotel` and distro.toml's `[plugins]` included, when they can be read).
    let boot = settings::boot::Boot::resolve(&env);
    let (fail_fast, fallback, wanted) = (
        boot.fail_fast.value,
        boot.fallback.value,
        boot.wanted.clone(),
    );
    match try_init_from(&env, boot) {
        Ok(guard) => guard,
        Err(e) => {
            if fail_fast {
                eprintln!("ndotel: error: {e}");
                eprintln!("ndotel: stopping start-up because OTEL_RUST_DISTRO_FAIL_FAST is set");
                std::process::exit(1);
            }
            let is_sdk = wanted.as_deref() == Some(SDK_DISTRO);
            if fallback == settings::Fallback::Sdk && !is_sdk {
                eprintln!(
                    "ndotel: {e}; running the built-in `sdk` distro instead, as OTEL_RUST_DISTRO_FALLBACK=sdk asks \
                     (its exports are NOT redacted by the distro)"
                );
                match try_init_with(&Env::from_process().forcing("OTEL_RUST_DISTRO", SDK_DISTRO)) {
                    Ok(guard) => return guard,
                    Err(e) => eprintln!("ndotel: the `sdk` fallback failed too: {e}"),
                }
            } else if !is_sdk {
                eprintln!(
                    "ndotel: {e}; telemetry is OFF: the selected distro{} cannot be used, and exporting without it \
                     could leak what it would have redacted (set OTEL_RUST_DISTRO_FALLBACK=sdk to export through the \
                     plain SDK instead, unredacted)",
                    wanted
                        .as_deref()
                        .map(|w| format!(" {w}"))
                        .unwrap_or_default()
                );
                return Guard::disabled(wanted.as_deref().unwrap_or(SDK_DISTRO));
            }
            eprintln!("ndotel: {e}; telemetry is OFF");
            Guard::disabled(SDK_DISTRO)
        }
    }
}
