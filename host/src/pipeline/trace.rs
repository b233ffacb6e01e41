//! The trace signal's part of the pipeline: the span exporters (built-in, OTLP or the distro's) behind one batch
//! processor, and the sampler (built-in or the distro's).

use crate::consistent::{Composable, Composite, Shared};
use crate::distro::exporter::PluginSpanExporter;
use crate::distro::sampler::PluginSampler;
use crate::pipeline::ctx::{BuildError, Ctx, open_file, unknown};
use crate::settings::{BUILTIN_SAMPLERS, BUILTIN_SPAN_EXPORTERS};
use crate::trace::exporter::{AnySpanExporter, FileSpanExporter};
use crate::trace::processor::{Batch, Outlet};
use crate::trace::queue::{BatchQueue, QueueConfig};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, ShouldSample};
use std::sync::Arc;

impl Ctx<'_> {
    /// The one batch processor: the distro's edits and every exporter run on its thread, with the validated
    /// `OTEL_BSP_*` settings.
    pub(crate) fn batch(&self, outlet: Outlet) -> Batch {
        let s = &self.plan.settings;
        if s.span_queue.value != crate::settings::OWN_SPAN_QUEUE {
            // Every value is set here, so the SDK's own reading of OTEL_BSP_* (which panics or aborts on absurd
            // queue sizes) never decides anything.
            let config = BatchConfigBuilder::default()
                .with_max_queue_size(s.bsp_max_queue_size.value)
                .with_max_export_batch_size(s.bsp_max_export_batch_size.value)
                .with_scheduled_delay(s.bsp_schedule_delay.value)
                .build();
            return Batch::Sdk(
                BatchSpanProcessor::builder(outlet)
                    .with_batch_config(config)
                    .build(),
            );
        }
        Batch::Own(BatchQueue::new(
            outlet,
            QueueConfig {
                max_queue_size: s.bsp_max_queue_size.value,
                max_export_batch_size: s.bsp_max_export_batch_size.value,
                schedule_delay: s.bsp_schedule_delay.value,
            },
        ))
    }

    pub(crate) fn span_exporters(&mut self) -> Result<Vec<Box<dyn AnySpanExporter>>, BuildError> {
        let plan = self.plan;
        let s = &plan.settings;
        let mut batch: Vec<Box<dyn AnySpanExporter>> = Vec::new();
        for name in &s.traces_exporter.value {
            let comp = |message: String| BuildError::Component {
                what: format!("span exporter {name:?}"),
                message,
            };
            match name.as_str() {
                "none" => {}
                "console" => batch.push(Box::new(opentelemetry_stdout::SpanExporter::default())),
                "file" => {
                    let out = open_file(&s.file_traces_path.value).map_err(comp)?;
                    batch.push(Box::new(FileSpanExporter::new(out)));
                }
                "otlp" if s.otlp_encoder.value == crate::settings::OWN_OTLP_ENCODER => {
                    let exporter = s.otlp[0].span_exporter(&mut self.transport).map_err(comp)?;
                    batch.push(Box::new(exporter));
                }
                "otlp" => {
                    let exporter = s.otlp[0]
                        .otlp_span_exporter(&mut self.transport)
                        .map_err(comp)?;
                    batch.push(Box::new(exporter));
                }
                other
                    if plan
                        .distro
                        .components
                        .span_exporters
                        .iter()
                        .any(|n| n == other) =>
                {
                    let e = self
                        .distro()
                        .and_then(|d| d.span_exporter(other))
                        .map_err(comp)?;
                    let e = PluginSpanExporter::new(
                        e,
                        self.faults.clone(),
                        s.span_export_timeout.value,
                    )
                    .map_err(|e| comp(e.to_string()))?;
                    batch.push(Box::new(e));
                }
                other => {
                    let names = &plan.distro.components.span_exporters;
                    return Err(unknown(
                        "OTEL_TRACES_EXPORTER",
                        "span exporter",
                        other,
                        BUILTIN_SPAN_EXPORTERS,
                        names,
                    ));
                }
            }
        }
        Ok(batch)
    }
}

pub(crate) fn sampler(ctx: &Ctx<'_>) -> Result<(ChosenSampler, String), BuildError> {
    let info = &ctx.plan.distro;
    let s = &ctx.plan.settings;
    let name = s.traces_sampler.value.as_str();
    if info.components.samplers.iter().any(|n| n == name) && ctx.distro.is_some() {
        let component = |message| BuildError::Component {
            what: format!("sampler {name:?}"),
            message,
        };
        // Built and asked for its description in one start-up call, under one deadline.
        let (ffi_sampler, description) = ctx
            .distro()
            .and_then(|d| d.sampler(name, true))
            .map_err(component)?;
        let description = description.unwrap_or_default();
        let sampler = PluginSampler::new(ffi_sampler, ctx.faults.clone(), s.call_timeout.value);
        return Ok((ChosenSampler::Distro(sampler), description));
    }
    if name == "composite" {
        let Some(section) = ctx
            .plan
            .config
            .as_ref()
            .and_then(|c| c.config.sampler.as_ref())
        else {
            return Err(BuildError::Component {
                what: "sampler \"composite\"".into(),
                message: "OTEL_TRACES_SAMPLER=composite needs a [sampler] table with `composite = { … }` in \
                          distro.toml (see the README's Sampling section)"
                    .into(),
            });
        };
        // The distro's own sampler, for each `distro = {}` node.
        // The distro's own sampler for each `distro = {}` node: built once, shared by the nodes and kept for
        // reloads (which cannot call the distro's start-up code again).
        let made: std::cell::RefCell<Option<Arc<dyn Composable>>> = Default::default();
        let distro_node = || -> Result<Box<dyn Composable>, String> {
            if let Some(node) = made.borrow().as_ref() {
                return Ok(Box::new(Shared(node.clone())));
            }
            let Some(own) = info
                .components
                .samplers
                .first()
                .filter(|_| ctx.distro.is_some())
            else {
                return Err(format!("distro {} has no sampler of its own", info.name));
            };
            let (ffi_sampler, description) = ctx.distro().and_then(|d| d.sampler(own, true))?;
            let description = description.unwrap_or_default();
            let sampler = PluginSampler::new(ffi_sampler, ctx.faults.clone(), s.call_timeout.value);
            let node: Arc<dyn Composable> = Arc::new(crate::distro::sampler::DistroNode::new(
                sampler,
                description,
            ));
            *made.borrow_mut() = Some(node.clone());
            Ok(Box::new(Shared(node)))
        };
        // Checked when the file was read: it builds.
        let root = section
            .get_ref()
            .composite
            .build_with(&distro_node)
            .map_err(|message| BuildError::Component {
                what: "sampler \"composite\"".into(),
                message,
            })?;
        let sampler = Composite::new(root);
        let description = sampler.description();
        let node = made.into_inner();
        return Ok((ChosenSampler::Composite(sampler, node), description));
    }
    // Checked when the settings were resolved: an invalid argument was warned about and is 1.0 here.
    let ratio = s.traces_sampler_ratio;
    let sampler = match name {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
        other => {
            return Err(unknown(
                "OTEL_TRACES_SAMPLER",
                "sampler",
                other,
                BUILTIN_SAMPLERS,
                &info.components.samplers,
            ));
        }
    };
    let description = format!("{sampler:?}");
    Ok((ChosenSampler::Builtin(sampler), description))
}

/// The chosen sampler: a built-in one or the distro's (which sees parent information itself).
#[derive(Debug, Clone)]
pub(crate) enum ChosenSampler {
    Builtin(Sampler),
    Distro(PluginSampler),
    /// The composite sampler, with the distro's sampler its `distro = {}` nodes share (kept for reloads).
    Composite(Composite, Option<Arc<dyn Composable>>),
}

impl ShouldSample for ChosenSampler {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: opentelemetry::trace::TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        match self {
            ChosenSampler::Builtin(s) => {
                s.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
            }
            ChosenSampler::Distro(s) => {
                s.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
            }
            ChosenSampler::Composite(s, _) => {
                s.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
            }
        }
    }
}
