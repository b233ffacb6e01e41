//! Building the SDK pipeline from the selected distro, the environment and `distro.toml`: the plan (which distro,
//! which settings), the resource and the propagators here; each signal's part in its own module (`trace::builder`,
//! `metrics::builder`, `logs`), and the OTLP exporters of all three in `otlp`.

pub(crate) mod ctx;
pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod plan;
pub(crate) mod probe;
pub(crate) mod reload;
pub(crate) mod trace;

use crate::distro::faults::Faults;
use crate::env::Env;
use crate::pipeline::trace::sampler;
use crate::settings::{self};
pub use crate::settings::{
    BUILTIN_LOG_EXPORTERS, BUILTIN_METRIC_EXPORTERS, BUILTIN_SAMPLERS, BUILTIN_SPAN_EXPORTERS,
};
use crate::trace::exporter::Delivery;
use crate::trace::processor::{DistroSpanProcessor, EditorSlot, Receivers};
pub use ctx::BuildError;
use ctx::{Ctx, unknown};
use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::propagation::text_map_propagator::TextMapPropagator;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::SdkTracerProvider;
pub use plan::{Plan, PlanError};
use std::sync::Arc;
use std::time::Duration;

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
    pub(crate) transport: crate::export::otlp::Transport,
    /// Spans handed to exporters and delivered by them.
    pub(crate) delivery: Arc<Delivery>,
    /// How long shutdown may take in all (`OTEL_RUST_SHUTDOWN_TIMEOUT`).
    pub(crate) shutdown_timeout: Duration,
    /// The distro's span processor, which also judges each new metric series before it is recorded.
    pub(crate) series_editor: Option<Arc<EditorSlot>>,
    /// The distro's parts a reload of its own settings rebuilds (a distro with a processor or a sampler in use).
    pub(crate) distro_parts: Option<reload::DistroParts>,
    /// The `[[views]]` of `distro.toml`, each with whether it matched an instrument (named at shutdown if not).
    pub(crate) views: crate::pipeline::metrics::Views,
    /// The composite sampler and the distro sampler its `distro = {}` nodes share, when `[sampler]` chose it: what
    /// a reload replaces.
    pub(crate) composite: Option<(
        crate::consistent::Composite,
        Option<Arc<dyn crate::consistent::Composable>>,
    )>,
    /// The `prometheus` exporter's endpoint (served while the pipeline lives).
    pub(crate) prometheus: Option<crate::export::prometheus::Endpoint>,
    /// `OTEL_RUST_TRACING_FILTER` (valid), `OTEL_RUST_TRACING_CONTEXT_ACTIVATION` and whether
    /// `OTEL_RUST_TRACING_BRIDGE` chose ndotel's own layer, for the `tracing` bridge.
    pub(crate) tracing: (String, bool, bool),
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
            distro_parts: None,
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
            // The specification: OTEL_SDK_DISABLED "has no effect on propagators configured through the
            // OTEL_PROPAGATORS variable", so a disabled service still passes its callers' context on.
            return Ok(Pipeline {
                propagator: Some(propagator(&s.propagators.value)?),
                ..Pipeline::disabled(faults)
            });
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
            crate::pipeline::trace::ChosenSampler::Composite(c, node) => {
                Some((c.clone(), node.clone()))
            }
            _ => None,
        };
        let component = |what: &str| {
            let what = what.to_string();
            move |message| BuildError::Component { what, message }
        };
        let edits_batches = crate::distro::plugin::edits_batches(&plan.distro.api_version);
        // Built and asked for its start attributes in one start-up call, under one deadline.
        let (processor, start_attributes) =
            if ctx.distro.is_some() && plan.distro.components.span_processor {
                let (p, attrs) = ctx
                    .distro()
                    .and_then(|d| d.span_processor(true))
                    .map_err(component("span processor"))?;
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
            Receivers {
                exporters,
                extra,
                value_length_limit: limit_of(&s.span_attribute_value_length_limit),
            },
            faults.clone(),
            s.call_timeout.value,
            |outlet| ctx.batch(outlet),
        );
        let series_editor = distro_processor.editor();
        // What a reload of the distro's own settings rebuilds: its processor's editor, and its sampler when the
        // pipeline asks it directly.
        let distro_sampler = match &sampler {
            crate::pipeline::trace::ChosenSampler::Distro(ps) => {
                Some((ps.slot(), s.traces_sampler.value.clone()))
            }
            _ => None,
        };
        let mut distro_parts = reload::DistroParts {
            info: plan.distro.clone(),
            editor: series_editor.clone().map(|slot| (slot, edits_batches)),
            sampler: distro_sampler,
            log: None,
            generation_attribute: s.reload_generation_attribute.value,
            built: Default::default(),
            current: Default::default(),
        };
        let delivery = distro_processor.delivery();
        // Every limit is set here, so the SDK's own reading of OTEL_SPAN_*_LIMIT from the process environment
        // never decides (with a configuration file, variables it does not reference have no effect).
        let limit = |l: &crate::Setting<u64>| u32::try_from(l.value).unwrap_or(u32::MAX);
        let mut tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(sampler)
            .with_span_limits(opentelemetry_sdk::trace::SpanLimits {
                max_attributes_per_span: limit(&s.span_attribute_count_limit),
                max_events_per_span: limit(&s.span_event_count_limit),
                max_links_per_span: limit(&s.span_link_count_limit),
                max_attributes_per_event: limit(&s.event_attribute_count_limit),
                max_attributes_per_link: limit(&s.link_attribute_count_limit),
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
        let (logger_provider, log_slot) = match ctx.logger_provider(resource)? {
            Some((provider, slot)) => (Some(provider), slot),
            None => (None, None),
        };
        distro_parts.log = log_slot;
        let distro_parts = (distro_parts.editor.is_some()
            || distro_parts.sampler.is_some()
            || distro_parts.log.is_some())
        .then_some(distro_parts);
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
            distro_parts,
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

fn resource(ctx: &Ctx<'_>) -> Result<Resource, BuildError> {
    let info = &ctx.plan.distro;
    let s = &ctx.plan.settings;
    let distro_attrs: Vec<KeyValue> = match &ctx.distro {
        Some(d) => d.resource().map_err(|message| BuildError::Component {
            what: format!("resource of distro {}", info.name),
            message,
        })?,
        None => Vec::new(),
    };
    // A configuration file's typed attributes keep their type (their text is what the settings show).
    let typed: &[KeyValue] = ctx
        .plan
        .declared
        .as_ref()
        .map_or(&[], |d| &d.translated.typed_resource);
    let env_attrs = s.resource_attributes.value.iter().map(|(k, v)| {
        typed
            .iter()
            .rfind(|kv| kv.key.as_str() == k)
            .cloned()
            .unwrap_or_else(|| KeyValue::new(k.clone(), v.clone()))
    });
    let mut builder = Resource::builder_empty()
        .with_detectors(&[Box::new(TelemetryResourceDetector)])
        .with_attributes(distro_attrs)
        .with_attributes(env_attrs);
    builder = builder.with_service_name(s.service_name.value.clone());
    if let Some(url) = ctx
        .plan
        .declared
        .as_ref()
        .and_then(|d| d.translated.resource_schema_url.clone())
    {
        builder = builder.with_schema_url([], url);
    }
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

/// A length limit's value as a `usize` (a limit beyond `usize` is no limit).
pub(crate) fn limit_of(setting: &crate::Setting<Option<u64>>) -> Option<usize> {
    setting.value.and_then(|v| usize::try_from(v).ok())
}
