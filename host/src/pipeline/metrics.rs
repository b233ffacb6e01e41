//! The metric signal's part of the pipeline: one periodic reader per metric exporter (built-in, OTLP or the
//! distro's).

use crate::distro::exporter::PluginMetricExporter;
use crate::metrics::FileMetricExporter;
use crate::pipeline::ctx::{BuildError, Ctx, open_file, unknown};
use crate::settings::BUILTIN_METRIC_EXPORTERS;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The views built, each with whether it matched an instrument yet (one that never did is named at shutdown).
pub(crate) type Views = Vec<(crate::settings::config::ViewConfig, Arc<AtomicBool>)>;

/// What the metric signal's builder makes.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) provider: SdkMeterProvider,
    pub(crate) views: Views,
    /// The `prometheus` exporter's endpoint, served as long as this lives.
    pub(crate) endpoint: Option<crate::export::prometheus::Endpoint>,
}

/// The `[[views]]` of `distro.toml` as SDK views.
fn views(
    mut builder: opentelemetry_sdk::metrics::MeterProviderBuilder,
    config: &[crate::settings::config::ViewConfig],
    limits: Option<&crate::settings::config::CardinalityLimits>,
) -> (opentelemetry_sdk::metrics::MeterProviderBuilder, Views) {
    use opentelemetry_sdk::metrics::{Instrument, Stream};
    let limit_of = {
        let limits = limits.cloned();
        move |i: &Instrument| limits.as_ref().and_then(|l| l.of(kind_name(i.kind())))
    };
    // The configuration file's limits for every instrument no view names; a view that names one applies them
    // itself (when it has no limit of its own), so no instrument gets a second stream.
    if limits.is_some() {
        let (config, limit_of) = (config.to_vec(), limit_of.clone());
        builder = builder.with_view(move |i: &Instrument| {
            if config.iter().any(|v| v.matches(i.name(), i.scope().name())) {
                return None;
            }
            Stream::builder()
                .with_cardinality_limit(limit_of(i)?)
                .build()
                .ok()
        });
    }
    let mut seen = Vec::new();
    for view in config {
        let limit_of = limit_of.clone();
        let matched = Arc::new(AtomicBool::new(false));
        seen.push((view.clone(), matched.clone()));
        let v = view.clone();
        builder = builder.with_view(move |i: &Instrument| {
            if !v.matches(i.name(), i.scope().name()) {
                return None;
            }
            matched.store(true, Ordering::Relaxed);
            let mut stream = Stream::builder();
            if let Some(name) = &v.rename {
                stream = stream.with_name(name.clone());
            }
            if let Some(description) = &v.description {
                stream = stream.with_description(description.clone());
            }
            if let Some(keys) = &v.keep_attributes {
                stream = stream.with_allowed_attribute_keys(
                    keys.iter().map(|k| opentelemetry::Key::new(k.clone())),
                );
            }
            if let Some(aggregation) = aggregation(&v, i.kind()) {
                stream = stream.with_aggregation(aggregation);
            }
            if let Some(limit) = v.cardinality_limit.or_else(|| limit_of(i)) {
                stream = stream.with_cardinality_limit(limit);
            }
            stream.build().ok()
        });
    }
    (builder, seen)
}

/// The configuration schema's name of an instrument kind.
fn kind_name(kind: opentelemetry_sdk::metrics::InstrumentKind) -> &'static str {
    use opentelemetry_sdk::metrics::InstrumentKind as K;
    match kind {
        K::Counter => "counter",
        K::UpDownCounter => "up_down_counter",
        K::Histogram => "histogram",
        K::Gauge => "gauge",
        K::ObservableCounter => "observable_counter",
        K::ObservableUpDownCounter => "observable_up_down_counter",
        K::ObservableGauge => "observable_gauge",
    }
}

/// The explicit bucket histogram's default boundaries (the specification's).
const DEFAULT_BOUNDARIES: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// The aggregation `view` gives an instrument of `kind`, when not its default. One the instrument cannot take (`sum`
/// of a gauge, `last_value` of a counter) leaves it its default, as the specification says, rather than have the
/// SDK refuse the instrument; `buckets` (and `record_min_max` alone) apply to histograms only, as before.
fn aggregation(
    view: &crate::settings::config::ViewConfig,
    kind: opentelemetry_sdk::metrics::InstrumentKind,
) -> Option<opentelemetry_sdk::metrics::Aggregation> {
    use opentelemetry_sdk::metrics::{Aggregation, InstrumentKind as K};
    let record_min_max = view.record_min_max.unwrap_or(true);
    let gauge = matches!(kind, K::Gauge | K::ObservableGauge);
    let explicit = || Aggregation::ExplicitBucketHistogram {
        boundaries: view
            .buckets
            .clone()
            .unwrap_or_else(|| DEFAULT_BOUNDARIES.to_vec()),
        record_min_max,
    };
    Some(match view.aggregation.as_deref() {
        _ if view.drop => Aggregation::Drop,
        Some("sum") if !gauge => Aggregation::Sum,
        Some("last_value") if gauge => Aggregation::LastValue,
        Some("base2_exponential_bucket_histogram") => Aggregation::Base2ExponentialHistogram {
            max_size: view.max_size.unwrap_or(160),
            max_scale: view.max_scale.unwrap_or(20),
            record_min_max,
        },
        Some("explicit_bucket_histogram") => explicit(),
        // `buckets` (or `record_min_max`) alone say an explicit histogram, for histograms only.
        None if kind == K::Histogram
            && (view.buckets.is_some() || view.record_min_max.is_some()) =>
        {
            explicit()
        }
        _ => return None,
    })
}

/// A periodic reader exporting through `exporter` every `interval`.
fn periodic<E: PushMetricExporter>(exporter: E, interval: Duration) -> PeriodicReader<E> {
    PeriodicReader::builder(exporter)
        .with_interval(interval)
        .build()
}

impl Ctx<'_> {
    /// The meter provider, its views and endpoint, or `None` when no exporter is selected (the global no-op
    /// provider then stays, so instruments cost nothing and the SDK does not warn that their callbacks will never
    /// run).
    pub(crate) fn meter_provider(
        &mut self,
        resource: Resource,
    ) -> Result<Option<Metrics>, BuildError> {
        let plan = self.plan;
        let s = &plan.settings;
        let interval = s.metric_export_interval.value;
        let temporality = s.temporality.value;
        let builder = SdkMeterProvider::builder().with_resource(resource);
        let configured = plan
            .config
            .as_ref()
            .map(|c| {
                c.config
                    .views
                    .iter()
                    .map(|v| v.get_ref().clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let limits = plan
            .declared
            .as_ref()
            .and_then(|d| d.translated.cardinality_limits.as_ref());
        let (mut builder, views) = views(builder, &configured, limits);
        let mut endpoint = None;
        let mut readers = 0;
        for name in &s.metrics_exporter.value {
            let comp = |message: String| BuildError::Component {
                what: format!("metric exporter {name:?}"),
                message,
            };
            builder = match name.as_str() {
                "none" => continue,
                "console" => builder.with_reader(periodic(
                    opentelemetry_stdout::MetricExporter::default(),
                    interval,
                )),
                "file" => {
                    let out = open_file(&s.file_metrics_path.value).map_err(comp)?;
                    builder.with_reader(periodic(
                        FileMetricExporter::new(out, temporality),
                        interval,
                    ))
                }
                "prometheus" => {
                    let port = u16::try_from(s.prometheus_port.value).unwrap_or(9464);
                    match crate::export::prometheus::start(&s.prometheus_host.value, port) {
                        Ok((reader, served)) => {
                            eprintln!(
                                "ndotel: metrics: prometheus → http://{}/metrics",
                                served.addr()
                            );
                            endpoint = Some(served);
                            builder.with_reader(reader)
                        }
                        // A port already in use must not stop the service: said once, and the other exporters
                        // still run.
                        Err(e) => {
                            eprintln!("ndotel: error: {e}; metrics are not served to Prometheus");
                            continue;
                        }
                    }
                }
                "otlp" => {
                    let exporter = s.otlp[1]
                        .metric_exporter(&mut self.transport, temporality)
                        .map_err(comp)?;
                    builder.with_reader(periodic(exporter, interval))
                }
                other
                    if plan
                        .distro
                        .components
                        .metric_exporters
                        .iter()
                        .any(|n| n == other) =>
                {
                    let e = self
                        .distro()
                        .and_then(|d| d.metric_exporter(other))
                        .map_err(comp)?;
                    let e = PluginMetricExporter::new(
                        e,
                        self.faults.clone(),
                        s.metric_export_timeout.value,
                    )
                    .map_err(|e| comp(e.to_string()))?;
                    builder.with_reader(periodic(e, interval))
                }
                other => {
                    let names = &plan.distro.components.metric_exporters;
                    return Err(unknown(
                        "OTEL_METRICS_EXPORTER",
                        "metric exporter",
                        other,
                        BUILTIN_METRIC_EXPORTERS,
                        names,
                    ));
                }
            };
            readers += 1;
        }
        Ok((readers > 0).then(|| Metrics {
            provider: builder.build(),
            views,
            endpoint,
        }))
    }
}
