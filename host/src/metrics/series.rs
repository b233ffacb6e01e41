//! The distro's redaction for metrics. The SDK hands exporters finished, immutable data points, so the rules
//! apply where a series is born instead: every instrument made through the global meter provider passes each
//! attribute set it has not seen before through the distro's span processor (as an `INTERNAL` span named after
//! the instrument, scope `ndotel.metric_series`) once, and remembers the answer. A measurement then costs one
//! lookup; the distro runs once per series, not per request. A series the distro drops (or fails on, when failures
//! drop) is not recorded.

use crate::distro::editor::Editor;
use crate::trace::processor::EditorSlot;
use opentelemetry::metrics::{
    AsyncInstrument, AsyncInstrumentBuilder, Counter, Gauge, Histogram, HistogramBuilder,
    InstrumentBuilder, InstrumentProvider, Meter, MeterProvider, ObservableCounter,
    ObservableGauge, ObservableUpDownCounter, SyncInstrument, UpDownCounter,
};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Series remembered per instrument; past that (attributes an attacker controls, say) each new attribute set is
/// judged afresh on every measurement, so the bound costs time, never a secret.
const SERIES_LIMIT: usize = 2000;

/// The global meter provider when the distro has a span processor.
#[derive(Clone)]
pub(crate) struct RedactingMeterProvider {
    inner: SdkMeterProvider,
    editor: Arc<EditorSlot>,
}

impl RedactingMeterProvider {
    pub(crate) fn new(inner: SdkMeterProvider, editor: Arc<EditorSlot>) -> Self {
        RedactingMeterProvider { inner, editor }
    }
}

impl MeterProvider for RedactingMeterProvider {
    fn meter_with_scope(&self, scope: InstrumentationScope) -> Meter {
        Meter::new(Arc::new(Instruments {
            inner: self.inner.meter_with_scope(scope),
            editor: self.editor.clone(),
        }))
    }
}

/// Attribute set as measured → as recorded (`None`: not recorded).
/// Hashed with foldhash: a lookup per measurement is the whole cost of a known series, and SipHash doubled it.
type Verdicts = HashMap<Vec<KeyValue>, Option<Arc<[KeyValue]>>, foldhash::fast::RandomState>;

/// One instrument's series.
struct Series {
    name: Cow<'static, str>,
    editor: Arc<EditorSlot>,
    known: RwLock<Verdicts>,
    /// The editor the verdicts in `known` came from: a reload that swaps another one in clears them.
    judged_by: std::sync::atomic::AtomicU64,
}

impl Series {
    fn new(name: Cow<'static, str>, editor: Arc<EditorSlot>) -> Arc<Self> {
        Arc::new(Series {
            name,
            editor,
            known: RwLock::new(HashMap::default()),
            judged_by: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Calls `record` with the attributes as the distro left them, unless it dropped the series.
    fn with(&self, attributes: &[KeyValue], record: impl FnOnce(&[KeyValue])) {
        use std::sync::atomic::Ordering;
        let editor = self.editor.load();
        let id = editor.id();
        if self.judged_by.load(Ordering::Acquire) != id {
            // Another editor (a reload): what the old one decided no longer holds.
            if let Ok(mut known) = self.known.write()
                && self.judged_by.load(Ordering::Acquire) != id
            {
                known.clear();
                self.judged_by.store(id, Ordering::Release);
            }
        }
        let mut full = true;
        if let Ok(known) = self.known.read() {
            if let Some(verdict) = known.get(attributes) {
                if let Some(attrs) = verdict {
                    record(attrs);
                }
                return;
            }
            full = known.len() >= SERIES_LIMIT;
        }
        let verdict = self.judge(&editor, attributes);
        if let Some(attrs) = &verdict {
            record(attrs);
        }
        // Once full, no write lock is taken (it would stall every measurement on each new attribute set).
        // Kept only when the verdicts are still this editor's (a reload may have cleared them meanwhile).
        if !full
            && let Ok(mut known) = self.known.write()
            && self.judged_by.load(Ordering::Acquire) == id
        {
            known.insert(attributes.to_vec(), verdict);
        }
    }

    fn judge(&self, editor: &Editor, attributes: &[KeyValue]) -> Option<Arc<[KeyValue]>> {
        let span = SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: self.name.clone(),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes: attributes.to_vec(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("ndotel.metric_series").build(),
        };
        editor.edit(span, &[]).map(|span| span.attributes.into())
    }
}

/// A synchronous instrument recording through its series.
struct Redacting<I> {
    inner: I,
    series: Arc<Series>,
}

/// An observer handed to a callback in place of the SDK's.
struct Observer<'a, T> {
    inner: &'a dyn AsyncInstrument<T>,
    series: &'a Series,
}

impl<T: Copy + Send + Sync> AsyncInstrument<T> for Observer<'_, T> {
    fn observe(&self, measurement: T, attributes: &[KeyValue]) {
        self.series
            .with(attributes, |a| self.inner.observe(measurement, a));
    }
}

struct Instruments {
    inner: Meter,
    editor: Arc<EditorSlot>,
}

macro_rules! recorded_through_series {
    ($($kind:ident<$t:ty>: $record:ident;)*) => {
        $(
            impl SyncInstrument<$t> for Redacting<$kind<$t>> {
                fn measure(&self, measurement: $t, attributes: &[KeyValue]) {
                    self.series.with(attributes, |a| self.inner.$record(measurement, a));
                }
            }
        )*
    };
}

recorded_through_series! {
    Counter<u64>: add;
    Counter<f64>: add;
    UpDownCounter<i64>: add;
    UpDownCounter<f64>: add;
    Gauge<u64>: record;
    Gauge<f64>: record;
    Gauge<i64>: record;
    Histogram<f64>: record;
    Histogram<u64>: record;
}

impl Instruments {
    fn series(&self, name: &str) -> Arc<Series> {
        Series::new(Cow::Owned(name.to_string()), self.editor.clone())
    }

    /// Wraps each callback so its observations go through the instrument's series.
    fn callbacks<T: Copy + Send + Sync + 'static>(
        &self,
        name: &str,
        callbacks: Vec<opentelemetry::metrics::Callback<T>>,
    ) -> Vec<impl Fn(&dyn AsyncInstrument<T>) + Send + Sync + 'static> {
        let series = self.series(name);
        callbacks
            .into_iter()
            .map(move |cb| {
                let series = series.clone();
                move |observer: &dyn AsyncInstrument<T>| {
                    cb(&Observer {
                        inner: observer,
                        series: &series,
                    })
                }
            })
            .collect()
    }
}

/// The inner builder of a synchronous instrument with the caller's name, description and unit.
macro_rules! rebuild {
    ($self:ident, $b:ident, $method:ident) => {{
        let mut inner = $self.inner.$method($b.name.clone());
        if let Some(d) = $b.description.clone() {
            inner = inner.with_description(d);
        }
        if let Some(u) = $b.unit.clone() {
            inner = inner.with_unit(u);
        }
        inner
    }};
}

macro_rules! sync_method {
    ($method:ident, $kind:ident<$t:ty>, $builder:ident) => {
        fn $method(&self, b: $builder<'_, $kind<$t>>) -> $kind<$t> {
            let inner = rebuild!(self, b, $method).build();
            $kind::new(Arc::new(Redacting {
                inner,
                series: self.series(&b.name),
            }))
        }
    };
}

macro_rules! histogram_method {
    ($method:ident, $t:ty) => {
        fn $method(&self, b: HistogramBuilder<'_, Histogram<$t>>) -> Histogram<$t> {
            let mut inner = rebuild!(self, b, $method);
            if let Some(bounds) = b.boundaries.clone() {
                inner = inner.with_boundaries(bounds);
            }
            Histogram::new(Arc::new(Redacting {
                inner: inner.build(),
                series: self.series(&b.name),
            }))
        }
    };
}

macro_rules! async_method {
    ($method:ident, $kind:ident<$t:ty>) => {
        fn $method(&self, b: AsyncInstrumentBuilder<'_, $kind<$t>, $t>) -> $kind<$t> {
            let mut inner = rebuild!(self, b, $method);
            for cb in self.callbacks(&b.name, b.callbacks) {
                inner = inner.with_callback(cb);
            }
            // The SDK keeps the callbacks; the returned handle is a marker.
            let _registered = inner.build();
            $kind::new()
        }
    };
}

impl InstrumentProvider for Instruments {
    sync_method!(u64_counter, Counter<u64>, InstrumentBuilder);
    sync_method!(f64_counter, Counter<f64>, InstrumentBuilder);
    sync_method!(i64_up_down_counter, UpDownCounter<i64>, InstrumentBuilder);
    sync_method!(f64_up_down_counter, UpDownCounter<f64>, InstrumentBuilder);
    sync_method!(u64_gauge, Gauge<u64>, InstrumentBuilder);
    sync_method!(f64_gauge, Gauge<f64>, InstrumentBuilder);
    sync_method!(i64_gauge, Gauge<i64>, InstrumentBuilder);
    histogram_method!(f64_histogram, f64);
    histogram_method!(u64_histogram, u64);
    async_method!(u64_observable_counter, ObservableCounter<u64>);
    async_method!(f64_observable_counter, ObservableCounter<f64>);
    async_method!(i64_observable_up_down_counter, ObservableUpDownCounter<i64>);
    async_method!(f64_observable_up_down_counter, ObservableUpDownCounter<f64>);
    async_method!(u64_observable_gauge, ObservableGauge<u64>);
    async_method!(i64_observable_gauge, ObservableGauge<i64>);
    async_method!(f64_observable_gauge, ObservableGauge<f64>);
}
