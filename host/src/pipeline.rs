//! Building the SDK pipeline from the selected distro, the environment and `distro.toml`: the plan (which distro,
//! which settings), the resource and the propagators here; each signal's part in its own module (`trace::builder`,
//! `metrics::builder`, `logs`), and the OTLP exporters of all three in `otlp`.

use crate::config::{ConfigError, ConfigFile};
use crate::env::Env;
use crate::faults::Faults;
use crate::file::JsonLines;
use crate::plugin::LoadError;
use crate::registry::{DistroInfo, InitError, Registry, SelectError};
use crate::settings::{self, Settings};
use crate::trace::builder::sampler;
use crate::trace::exporter::Delivery;
use crate::trace::processor::{DistroSpanProcessor, Editor, Receivers};
use crate::trace::view::Attributes;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RResult;
use ndotel_api::ffi::FfiAttributes_TO;
use ndotel_api::ffi::{FfiDistroBox, FfiError};
use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::propagation::text_map_propagator::TextMapPropagator;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::Arc;
use std::time::Duration;

/// Why [`Plan::new`] could not decide what to build: the file, the selection, or loading the selected plugin.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `distro.toml` or an environment variable is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The distro could not be chosen.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The selected distro's plugin could not be loaded (or its probe failed).
    #[error(transparent)]
    Plugin(#[from] LoadError),
}

/// Why [`Pipeline::build`] could not build the pipeline from a plan: the distro's `init`, or a component.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The distro's `init` failed.
    #[error(transparent)]
    Init(#[from] InitError),
    /// A component name matches neither a built-in nor the distro's.
    #[error("{setting}: unknown {kind} {name:?}; valid: {valid}")]
    UnknownComponent {
        /// The setting that named it.
        setting: &'static str,
        /// Sampler, span exporter, ...
        kind: &'static str,
        /// The name.
        name: String,
        /// The valid names.
        valid: String,
    },
    /// A component failed to build.
    #[error("cannot build {what}: {message}")]
    Component {
        /// Which component.
        what: String,
        /// Why.
        message: String,
    },
}

/// Why [`try_init`](crate::try_init) could not start telemetry: planning or building.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// [`Plan::new`] failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// [`Pipeline::build`] failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Built-in span exporters.
pub const BUILTIN_SPAN_EXPORTERS: &[&str] = &["otlp", "console", "file", "none"];
/// Built-in metric exporters.
pub const BUILTIN_METRIC_EXPORTERS: &[&str] = &["otlp", "console", "file", "prometheus", "none"];
/// Built-in log exporters.
pub const BUILTIN_LOG_EXPORTERS: &[&str] = &["otlp", "console", "file", "none"];
/// Built-in samplers.
pub const BUILTIN_SAMPLERS: &[&str] = &[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "composite",
];

/// Everything found and decided before building: the file, the registry, the selected distro and its settings.
#[derive(Debug)]
pub struct Plan {
    /// The `distro.toml` in use.
    pub config: Option<ConfigFile>,
    /// Every distro found.
    pub registry: Registry,
    /// The selected distro.
    pub distro: DistroInfo,
    /// The effective settings.
    pub settings: Settings,
    /// The OpenTelemetry configuration file (`OTEL_CONFIG_FILE`), when one is set.
    pub declared: Option<crate::declared::Declared>,
}

impl Plan {
    /// Finds the file, discovers distros, selects one and resolves the settings.
    ///
    /// ```
    /// let env = ndotel::Env::from_pairs([("OTEL_RUST_DISTRO", "sdk"), ("OTEL_TRACES_EXPORTER", "none")], "/");
    /// let plan = ndotel::Plan::new(&env).unwrap();
    /// assert_eq!(plan.distro.name, "sdk");
    /// assert_eq!(plan.settings.traces_exporter.value, ["none"]);
    /// let pipeline = ndotel::Pipeline::build(&plan, &env).unwrap();
    /// assert!(pipeline.tracer_provider.is_some());
    /// ```
    pub fn new(env: &Env) -> Result<Plan, PlanError> {
        // The configuration file, when set, replaces the standard variables and amends distro.toml.
        let declared = crate::declared::Declared::from_env(env)?;
        let mut notes = Vec::new();
        let effective = declared.as_ref().map(|d| d.environment(env));
        let process_env = env;
        let env = effective.as_ref().unwrap_or(env);
        let config = ConfigFile::discover(env)?;
        let config = match &declared {
            Some(d) => d.amend(config, &mut notes),
            None => config,
        };
        // A plugin that failed to load is reported (`Plan::warnings`), never fatal by itself, fail-fast or not: only
        // the selected distro decides whether the service starts, or anyone able to drop a file into a plugin
        // directory could stop it.
        let mut registry = Registry::discover(env, config.as_ref());
        // Only the selected distro's plugin is loaded; every other plugin was only inspected. Plugins built before
        // ndotel-api 1.2 name their distros only once loaded: they are loaded when the name is found nowhere else.
        let name = match registry.select(env, config.as_ref()) {
            Err(SelectError::Unknown { name, .. }) if !registry.legacy_plugins().is_empty() => {
                // Loading them runs their code: probe that first, like any selected plugin.
                let legacy = registry.legacy_plugins();
                let paths: Vec<String> =
                    legacy.iter().map(|p| crate::text::shown(&p.path)).collect();
                probe_first(
                    env,
                    &name,
                    &legacy[0].path,
                    &format!(
                        "looking for distro {name} among the plugins built before ndotel-api 1.2 ({})",
                        paths.join(", ")
                    ),
                )?;
                registry.load_legacy();
                registry.select(env, config.as_ref())?.name.clone()
            }
            other => other?.name.clone(),
        };
        // A plugin distro is first loaded and initialised in a probe process, so that one which crashes or
        // aborts never takes this process down (OTEL_RUST_DISTRO_PROBE=false skips it).
        if let Some(path) = registry
            .distros()
            .iter()
            .find(|d| d.name == name && !d.is_loaded())
            .and_then(|d| d.origin.path())
        {
            probe_first(env, &name, path, &format!("distro {name}"))?;
        }
        registry.load_selected(&name)?;
        let distro = registry.select(env, config.as_ref())?.clone();
        let mut settings = Settings::resolve(env, config.as_ref(), &distro)?;
        if let Some(d) = &declared {
            let ignored = d.ignored_vars(process_env);
            if !ignored.is_empty() {
                notes.push(format!(
                    "{} {} set but {} no effect: {} names a configuration file, and only the variables it \
                     references apply",
                    ignored.join(", "),
                    if ignored.len() == 1 { "is" } else { "are" },
                    if ignored.len() == 1 { "has" } else { "have" },
                    crate::declared::CONFIG_FILE_VAR,
                ));
            }
            settings.declared = Some(crate::text::shown(&d.path));
            let mut warnings = d.warnings().to_vec();
            warnings.append(&mut notes);
            warnings.append(&mut settings.warnings);
            settings.warnings = warnings;
        }
        let (_, by) = registry.selection(env, config.as_ref());
        if by == crate::registry::NONE_SELECTED {
            let names: Vec<&str> = registry
                .selectable()
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            settings.warnings.push(format!(
                "{} distros are registered ({}) and none is selected: running the built-in `sdk` distro; select one \
                 with OTEL_RUST_DISTRO or `default` in distro.toml",
                names.len(),
                names.join(", ")
            ));
        }
        Ok(Plan {
            config,
            registry,
            distro,
            settings,
            declared,
        })
    }
}

impl Plan {
    /// The environment the plan's settings were resolved from: `env` itself, or with a configuration file, `env`
    /// as the file replaces it ([`crate::declared::Declared`]).
    pub fn environment(&self, env: &Env) -> Env {
        match &self.declared {
            Some(d) => d.environment(env),
            None => env.clone(),
        }
    }

    /// What is worth a warning before anything is built: plugins skipped, then the registry's and the settings'
    /// warnings.
    pub fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.registry
            .failures()
            .iter()
            .map(|f| format!("skipped plugin: {f}"))
            .chain(self.registry.warnings().iter().cloned())
            .chain(self.settings.warnings.iter().cloned())
    }

    /// [`Plan::warnings`] without those about unknown names ([`crate::Settings::unknown`]): what a tool that
    /// treats an unknown name as an error (`ndotel check`, `config`, `run`) still reports as a warning.
    pub fn warnings_besides_unknown(&self) -> impl Iterator<Item = String> + '_ {
        self.warnings().filter(|w| {
            !self
                .settings
                .unknown
                .iter()
                .any(|u| w.starts_with(u.as_str()))
        })
    }
}

/// Loads and initialises distro `name` in a probe child before this process loads `path`; the refusal says
/// `what` was being loaded. Skipped inside the probe child itself and with `OTEL_RUST_DISTRO_PROBE=false`.
fn probe_first(env: &Env, name: &str, path: &std::path::Path, what: &str) -> Result<(), PlanError> {
    let skip = crate::probe::in_probe()
        || env
            .get("OTEL_RUST_DISTRO_PROBE")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
    if skip {
        return Ok(());
    }
    let deadline = crate::registry::init_timeout(env) + Duration::from_secs(10);
    crate::probe::probe(env, name, deadline).map_err(|reason| {
        PlanError::Plugin(LoadError::Refused {
            path: path.to_path_buf(),
            reason: format!("{what}: {reason}"),
        })
    })
}

/// A built pipeline: the providers (absent when the SDK is disabled) and the distro's fault counters.
#[derive(Debug)]
pub struct Pipeline {
    /// The tracer provider.
    pub tracer_provider: Option<SdkTracerProvider>,
    /// The meter provider.
    pub meter_provider: Option<SdkMeterProvider>,
    /// The propagator chosen by `OTEL_PROPAGATORS`.
    pub propagator: Option<TextMapCompositePropagator>,
    /// Failures of the distro's components.
    pub faults: Arc<Faults>,
    /// The sampler's description.
    pub sampler_description: String,
    /// The logger provider for `tracing` events (`None` unless `OTEL_LOGS_EXPORTER` selects an exporter).
    pub logger_provider: Option<SdkLoggerProvider>,
    /// Whether the service's events reach stderr through the distro's log processor (the logger provider prints
    /// them) rather than through the `tracing` stderr layer.
    pub(crate) stderr_through_distro: bool,
    /// What gRPC exporters run on (tonic needs Tokio), kept alive as long as the pipeline.
    pub(crate) transport: crate::otlp::Transport,
    /// Spans handed to exporters and delivered by them.
    pub(crate) delivery: Arc<Delivery>,
    /// How long shutdown may take in all (`OTEL_RUST_SHUTDOWN_TIMEOUT`).
    pub(crate) shutdown_timeout: Duration,
    /// The distro's span processor, which also judges each new metric series before it is recorded.
    pub(crate) series_editor: Option<Arc<Editor>>,
    /// The `[[views]]` of `distro.toml`, each with whether it matched an instrument (named at shutdown if not).
    pub(crate) views: crate::metrics::builder::Views,
    /// The composite sampler and the distro sampler its `distro = {}` nodes share, when `[sampler]` chose it: what
    /// a reload replaces.
    pub(crate) composite: Option<(
        crate::consistent::Composite,
        Option<Arc<dyn crate::consistent::Composable>>,
    )>,
    /// The `prometheus` exporter's endpoint (served while the pipeline lives).
    pub(crate) prometheus: Option<crate::metrics::prometheus::Endpoint>,
    /// `OTEL_RUST_TRACING_FILTER` (valid), `OTEL_RUST_TRACING_CONTEXT_ACTIVATION` and whether
    /// `OTEL_RUST_TRACING_BRIDGE` chose ndotel's own layer, for the `tracing` bridge.
    pub(crate) tracing: (String, bool, bool),
}

/// What every exporter builder needs.
pub(crate) struct Ctx<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) distro: Option<crate::registry::Distro>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) transport: crate::otlp::Transport,
}

impl Ctx<'_> {
    /// Calls the initialised distro at start-up (`resource()`, a component constructor) under the init deadline:
    /// a distro that hangs there must not keep the application from starting.
    pub(crate) fn startup<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&FfiDistroBox) -> RResult<T, FfiError> + Send + 'static,
    ) -> Result<T, String> {
        let d = self
            .distro
            .as_ref()
            .ok_or_else(|| "distro not initialised".to_string())?;
        startup_call(d, what, f)
    }
}

pub(crate) fn open_file(path: &std::path::Path) -> Result<JsonLines, String> {
    JsonLines::open(path).map_err(|e| format!("{}: {e}", crate::text::shown(path)))
}

impl Pipeline {
    /// No telemetry at all (`OTEL_SDK_DISABLED`, or nothing could be built).
    pub(crate) fn disabled(faults: Arc<Faults>) -> Pipeline {
        Pipeline {
            tracer_provider: None,
            meter_provider: None,
            logger_provider: None,
            stderr_through_distro: false,
            propagator: None,
            faults,
            sampler_description: "disabled".into(),
            transport: Default::default(),
            delivery: Arc::default(),
            shutdown_timeout: Duration::from_secs(5),
            series_editor: None,
            views: Vec::new(),
            composite: None,
            prometheus: None,
            tracing: (
                crate::settings::DEFAULT_TRACING_FILTER.to_string(),
                true,
                true,
            ),
        }
    }

    /// Builds the pipeline the plan describes.
    pub fn build(plan: &Plan, env: &Env) -> Result<Pipeline, BuildError> {
        Pipeline::build_with(plan, env, Vec::new())
    }

    /// [`Pipeline::build`] with span processors of the caller's beside the exporters'. They see spans exactly as
    /// the exporters do — after the distro's sampler and span processor — so a service's tests can assert on what
    /// its telemetry will look like with, for example, a `SimpleSpanProcessor` over the SDK's
    /// `InMemorySpanExporter`.
    pub fn build_with(
        plan: &Plan,
        env: &Env,
        mut extra: Vec<Box<dyn opentelemetry_sdk::trace::SpanProcessor>>,
    ) -> Result<Pipeline, BuildError> {
        let effective = plan.declared.as_ref().map(|d| d.environment(env));
        let env = effective.as_ref().unwrap_or(env);
        let s = &plan.settings;
        let faults = Arc::new(
            Faults::new(plan.distro.name.clone()).with_processor_passing(
                s.on_processor_error.value == settings::OnProcessorError::Pass,
            ),
        );
        if s.sdk_disabled.value {
            return Ok(Pipeline::disabled(faults));
        }
        let distro = plan.distro.init(plan.config.as_ref(), env)?;
        let mut ctx = Ctx {
            plan,
            distro,
            faults: faults.clone(),
            transport: Default::default(),
        };
        let resource = resource(&ctx)?;
        let (sampler, sampler_description) = sampler(&ctx)?;
        let composite = match &sampler {
            crate::trace::builder::ChosenSampler::Composite(c, node) => {
                Some((c.clone(), node.clone()))
            }
            _ => None,
        };
        let component = |what: &str| {
            let what = what.to_string();
            move |message| BuildError::Component { what, message }
        };
        // Built and asked for its start attributes in one start-up call, under one deadline.
        let (processor, start_attributes) =
            if ctx.distro.is_some() && plan.distro.components.span_processor {
                let (p, attrs) = ctx
                    .startup("its span processor", |d| {
                        d.span_processor().and_then(|p| {
                            let mut attrs = Attributes::default();
                            p.start_attributes(FfiAttributes_TO::from_ptr(&mut attrs, TD_Opaque))
                                .map(|()| (p, attrs.0))
                        })
                    })
                    .map_err(component("span processor"))?;
                let edits_batches = crate::plugin::edits_batches(&plan.distro.api_version);
                (Some((p, edits_batches)), attrs)
            } else {
                (None, Vec::new())
            };
        let exporters = ctx.span_exporters()?;
        for p in &mut extra {
            p.set_resource(&resource);
        }
        let distro_processor = DistroSpanProcessor::new(
            processor,
            start_attributes,
            Receivers { exporters, extra },
            faults.clone(),
            s.call_timeout.value,
            |outlet| ctx.batch(outlet),
        );
        let series_editor = distro_processor.editor();
        let delivery = distro_processor.delivery();
        // Every limit is set here, so the SDK's own reading of OTEL_SPAN_*_LIMIT from the process environment
        // never decides (with a configuration file, variables it does not reference have no effect).
        let limit = |i: usize| u32::try_from(s.span_limits[i].value).unwrap_or(u32::MAX);
        let mut tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(sampler)
            .with_span_limits(opentelemetry_sdk::trace::SpanLimits {
                max_attributes_per_span: limit(0),
                max_events_per_span: limit(1),
                max_links_per_span: limit(2),
                max_attributes_per_event: limit(3),
                max_attributes_per_link: limit(4),
            });
        // With nothing to edit spans and nowhere to send them (`OTEL_TRACES_EXPORTER=none` without a distro
        // processor), no processor at all: the SDK then never builds a span's export data.
        if !distro_processor.is_idle() {
            tracer_provider = tracer_provider.with_span_processor(distro_processor);
        }
        let tracer_provider = tracer_provider.build();
        let metrics = ctx.meter_provider(resource.clone())?;
        let (meter_provider, views, prometheus) = match metrics {
            Some(m) => (Some(m.provider), m.views, m.endpoint),
            None => (None, Vec::new(), None),
        };
        let logger_provider = ctx.logger_provider(resource)?;
        let stderr_through_distro = ctx.edits_logs();
        Ok(Pipeline {
            tracer_provider: Some(tracer_provider),
            meter_provider,
            logger_provider,
            stderr_through_distro,
            propagator: Some(propagator(&s.propagators.value)?),
            faults,
            sampler_description,
            transport: ctx.transport,
            delivery,
            shutdown_timeout: s.shutdown_timeout.value,
            series_editor,
            views,
            composite,
            prometheus,
            tracing: (
                s.tracing_filter.value.clone(),
                s.context_activation.value,
                s.tracing_bridge.value == crate::settings::OWN_TRACING_BRIDGE,
            ),
        })
    }
}

impl Plan {
    /// The description of the sampler the pipeline would use (for `ndotel config`), without building exporters.
    pub fn sampler_description(&self, env: &Env) -> Result<String, BuildError> {
        let effective = self.declared.as_ref().map(|d| d.environment(env));
        let env = effective.as_ref().unwrap_or(env);
        let distro = self.distro.init(self.config.as_ref(), env)?;
        let ctx = Ctx {
            plan: self,
            distro,
            faults: Arc::new(Faults::new(self.distro.name.clone())),
            transport: Default::default(),
        };
        Ok(sampler(&ctx)?.1)
    }
}

/// Runs a start-up call into the distro under its init deadline.
fn startup_call<T: Send + 'static>(
    d: &crate::registry::Distro,
    what: &str,
    f: impl FnOnce(&FfiDistroBox) -> RResult<T, FfiError> + Send + 'static,
) -> Result<T, String> {
    let inner = d.inner.clone();
    crate::worker::with_deadline("ndotel-startup", d.timeout, move || ffi(f(&inner)))
        .map_err(|e| {
            format!("{what} {e} (it hangs; OTEL_RUST_DISTRO_INIT_TIMEOUT sets the deadline of start-up calls)")
        })?
}

fn ffi<T>(r: RResult<T, FfiError>) -> Result<T, String> {
    r.into_result()
        .map_err(|e| crate::text::printable(&e.to_string()).into_owned())
}

pub(crate) fn unknown(
    setting: &'static str,
    kind: &'static str,
    name: &str,
    builtin: &[&str],
    distro: &[String],
) -> BuildError {
    let mut valid: Vec<String> = builtin.iter().map(|s| s.to_string()).collect();
    valid.extend(distro.iter().cloned());
    BuildError::UnknownComponent {
        setting,
        kind,
        name: name.to_string(),
        valid: valid.join(", "),
    }
}

fn resource(ctx: &Ctx<'_>) -> Result<Resource, BuildError> {
    let info = &ctx.plan.distro;
    let s = &ctx.plan.settings;
    let distro_attrs: Vec<KeyValue> = match &ctx.distro {
        Some(_) => ctx
            .startup("its resource()", |d| {
                let mut attrs = Attributes::default();
                d.resource(FfiAttributes_TO::from_ptr(&mut attrs, TD_Opaque))
                    .map(|()| attrs.0)
            })
            .map_err(|message| BuildError::Component {
                what: format!("resource of distro {}", info.name),
                message,
            })?,
        None => Vec::new(),
    };
    let env_attrs = s
        .resource_attributes
        .value
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
    let mut builder = Resource::builder_empty()
        .with_detectors(&[Box::new(TelemetryResourceDetector)])
        .with_attributes(distro_attrs)
        .with_attributes(env_attrs);
    builder = builder.with_service_name(s.service_name.value.clone());
    Ok(builder.build())
}

/// The propagators, validated when the settings were resolved (an unknown name here is a bug there).
fn propagator(names: &[String]) -> Result<TextMapCompositePropagator, BuildError> {
    let mut list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
    for n in names {
        match n.as_str() {
            "tracecontext" => list.push(Box::new(TraceContextPropagator::new())),
            "baggage" => list.push(Box::new(BaggagePropagator::new())),
            "none" => {}
            other => {
                return Err(unknown(
                    "OTEL_PROPAGATORS",
                    "propagator",
                    other,
                    &["tracecontext", "baggage", "none"],
                    &[],
                ));
            }
        }
    }
    Ok(TextMapCompositePropagator::new(list))
}
