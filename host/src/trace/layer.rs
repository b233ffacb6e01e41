//! ndotel's own `tracing` → OpenTelemetry bridge: each `tracing` span becomes an SDK span, with the span shape of
//! `tracing-opentelemetry` (names, `otel.*` fields, parents, fields as attributes, events, errors) for ~20% fewer
//! instructions per span and a quarter of its cost per enter (`benches/results.md`).
//!
//! What it does differently:
//! - the SDK span starts when the `tracing` span is created, and its OpenTelemetry context is kept in the span's
//!   extensions as is: no builder kept until the first enter, no lock of its own around it;
//! - field names are `tracing`'s static strings, used as attribute keys without a copy;
//! - the span ends when the `tracing` span closes (`tracing-opentelemetry` ends it at its last exit, which takes a
//!   clock reading on every exit).
//!
//! `set_parent` after creation does not exist here (the span has started, sampled with its parent at that moment):
//! a service continuing an incoming trace makes the extracted context current before it creates the span, or uses
//! `OTEL_RUST_TRACING_BRIDGE=tracing-opentelemetry`.
//!
//! No extensions lock is held while the SDK runs code that may emit `tracing` events itself (starting a span
//! samples it; ending it runs the span processors), so another layer reading the span's extensions from such an
//! event never waits on this one.

use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
};
use opentelemetry::{Context, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SdkTracer;
use std::cell::RefCell;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

/// The OpenTelemetry context of one `tracing` span (its SDK span is the context's active span).
struct OtelSpan(Context);

/// How [`crate::SpanExt`] reaches the layer from a `tracing::Span`: the layer answers `downcast_raw` for this type
/// with a function that knows the subscriber's concrete type.
pub(crate) struct WithContext(fn(&tracing::Dispatch, &Id) -> Option<Context>);

impl WithContext {
    /// The OpenTelemetry context of span `id`, if this layer made one.
    pub(crate) fn context(&self, dispatch: &tracing::Dispatch, id: &Id) -> Option<Context> {
        (self.0)(dispatch, id)
    }
}

/// A `tracing` span entered on this thread: the layer that saw it (span ids are unique per subscriber only), its id,
/// the address of its SDK span's context (only ever compared: the span is alive while entered, so no other span can
/// have it), and the guard of the context its entry attached (none when it was entered again inside itself with its
/// span still the active one).
struct Entered {
    layer: usize,
    id: u64,
    span: usize,
    guard: Option<opentelemetry::ContextGuard>,
}

/// The address of the span context of `cx`'s active span: which span object it is.
fn span_address(cx: &Context) -> usize {
    cx.span().span_context() as *const SpanContext as usize
}

thread_local! {
    /// The spans entered on this thread, innermost last (spans may exit out of order).
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

/// The layer. `activation`: entering a span makes its context current (`Context::current()` sees it).
pub(crate) struct SpanLayer<S> {
    tracer: SdkTracer,
    activation: bool,
    with_context: WithContext,
    _subscriber: std::marker::PhantomData<fn(S)>,
}

impl<S> SpanLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    pub(crate) fn new(tracer: SdkTracer, activation: bool) -> Self {
        SpanLayer {
            tracer,
            activation,
            with_context: WithContext(Self::context_of),
            _subscriber: std::marker::PhantomData,
        }
    }

    fn context_of(dispatch: &tracing::Dispatch, id: &Id) -> Option<Context> {
        let subscriber = dispatch.downcast_ref::<S>()?;
        let span = subscriber.span(id)?;
        let extensions = span.extensions();
        extensions.get::<OtelSpan>().map(|s| s.0.clone())
    }

    /// The parent context of a new span: its explicit parent's, else (a contextual span) the current one's, else
    /// none (an explicit root).
    fn parent(&self, attrs: &Attributes<'_>, cx: &LayerContext<'_, S>) -> Context {
        let of = |span: tracing_subscriber::registry::SpanRef<'_, S>| {
            span.extensions().get::<OtelSpan>().map(|s| s.0.clone())
        };
        if let Some(parent) = attrs.parent() {
            // A parent this layer never saw (filtered out) makes a root, as in `tracing-opentelemetry`.
            return cx.span(parent).and_then(of).unwrap_or_default();
        }
        if !attrs.is_contextual() {
            return Context::new();
        }
        if self.activation {
            // The entered span's context is current, or, with no `tracing` span entered, whatever the service
            // made current through the OpenTelemetry API (an HTTP middleware's SERVER span, say).
            return Context::current();
        }
        cx.lookup_current()
            .and_then(of)
            .unwrap_or_else(Context::current)
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: LayerContext<'_, S>) {
        let Some(span) = cx.span(id) else { return };
        let parent = self.parent(attrs, &cx);
        let meta = attrs.metadata();
        let mut fields = SpanFields::with_capacity(meta.fields().len());
        attrs.record(&mut fields);
        let mut builder = SpanBuilder::from_name(
            fields
                .name
                .map_or(std::borrow::Cow::Borrowed(meta.name()), Into::into),
        )
        .with_attributes(fields.attributes);
        builder.span_kind = fields.kind;
        // No extensions lock is held here: the sampler may emit events.
        let mut otel = self.tracer.build_with_context(builder, &parent);
        if let Some(status) = fields.status {
            otel.set_status(status);
        }
        let cx = parent.with_span(otel);
        span.extensions_mut().insert(OtelSpan(cx));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: LayerContext<'_, S>) {
        let Some(span) = cx.span(id) else { return };
        let mut fields = SpanFields::with_capacity(0);
        values.record(&mut fields);
        let extensions = span.extensions();
        let Some(OtelSpan(otel)) = extensions.get::<OtelSpan>() else {
            return;
        };
        let otel = otel.span();
        if let Some(name) = fields.name {
            otel.update_name(name);
        }
        if let Some(status) = fields.status {
            otel.set_status(status);
        }
        // A kind cannot change once the span has started (nor can it in `tracing-opentelemetry`'s started spans).
        otel.set_attributes(fields.attributes);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, cx: LayerContext<'_, S>) {
        let (Some(span), Some(follows)) = (cx.span(id), cx.span(follows)) else {
            return;
        };
        let Some(target) = follows
            .extensions()
            .get::<OtelSpan>()
            .map(|s| s.0.span().span_context().clone())
        else {
            return;
        };
        if let Some(OtelSpan(otel)) = span.extensions().get::<OtelSpan>() {
            otel.span().add_link(target, Vec::new());
        }
    }

    fn on_event(&self, event: &Event<'_>, cx: LayerContext<'_, S>) {
        let span = match event.parent() {
            Some(parent) => cx.span(parent),
            None if event.is_contextual() => cx.lookup_current(),
            None => None,
        };
        let Some(span) = span else { return };
        let meta = event.metadata();
        let mut fields = EventFields {
            name: None,
            error_status: None,
            exception: false,
            attributes: vec![
                KeyValue::new("level", meta.level().as_str()),
                KeyValue::new("target", meta.target()),
            ],
            span_attributes: Vec::new(),
        };
        event.record(&mut fields);
        let extensions = span.extensions();
        let Some(OtelSpan(otel)) = extensions.get::<OtelSpan>() else {
            return;
        };
        let otel = otel.span();
        match fields.error_status {
            Some(status) => otel.set_status(status),
            None if *meta.level() == tracing::Level::ERROR => otel.set_status(Status::error("")),
            None => {}
        }
        if !fields.span_attributes.is_empty() {
            otel.set_attributes(fields.span_attributes);
        }
        let name = match fields.name {
            Some(name) => name.into(),
            None if fields.exception => "exception".into(),
            None => std::borrow::Cow::Borrowed(meta.name()),
        };
        otel.add_event(name, fields.attributes);
    }

    fn on_enter(&self, id: &Id, cx: LayerContext<'_, S>) {
        if !self.activation {
            return;
        }
        let raw = id.into_u64();
        let layer = self as *const Self as usize;
        // Entered again inside itself (an instrumented future polling a stream instrumented with the same span, as
        // sqlx's do on every poll): when its span is still the active one, nothing is attached, and neither the span
        // nor its extensions are looked up. What was attached inside it with that span still active (baggage, a
        // value, a suppressed scope) then stays current too, where `tracing-opentelemetry` attaches the span's own
        // context again.
        // One visit to the thread's list: the check, and the entry either way.
        let _ = ENTERED.try_with(|entered| {
            {
                let mut list = entered.borrow_mut();
                if let Some(top) = list.last() {
                    let span = top.span;
                    if top.id == raw
                        && top.layer == layer
                        && Context::map_current(|current| span_address(current) == span)
                    {
                        list.push(Entered {
                            layer,
                            id: raw,
                            span,
                            guard: None,
                        });
                        return;
                    }
                }
            }
            // The list is not borrowed meanwhile: attaching may run code that enters spans.
            let Some(span) = cx.span(id) else { return };
            let Some(otel) = span.extensions().get::<OtelSpan>().map(|s| s.0.clone()) else {
                return;
            };
            let span = span_address(&otel);
            let guard = Some(otel.attach());
            entered.borrow_mut().push(Entered {
                layer,
                id: raw,
                span,
                guard,
            });
        });
    }

    fn on_exit(&self, id: &Id, _cx: LayerContext<'_, S>) {
        if !self.activation {
            return;
        }
        let id = id.into_u64();
        let layer = self as *const Self as usize;
        // The guard is dropped after the borrow ends: detaching runs no code of ours, but stays outside it anyway.
        let guard = ENTERED
            .try_with(|entered| {
                let mut entered = entered.borrow_mut();
                let at = entered
                    .iter()
                    .rposition(|e| e.id == id && e.layer == layer)?;
                entered.remove(at).guard
            })
            .ok()
            .flatten();
        drop(guard);
    }

    fn on_close(&self, id: Id, cx: LayerContext<'_, S>) {
        let Some(span) = cx.span(&id) else { return };
        let otel = span.extensions_mut().remove::<OtelSpan>();
        // Ended with no extensions lock held: the span processors run now, and may emit events.
        if let Some(OtelSpan(otel)) = otel {
            otel.span().end();
        }
    }

    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<WithContext>() {
            Some(&self.with_context as *const WithContext as *const ())
        } else {
            None
        }
    }
}

/// `otel.kind`'s values, as `tracing-opentelemetry` reads them.
fn span_kind(s: &str) -> Option<SpanKind> {
    [
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
        ("internal", SpanKind::Internal),
    ]
    .into_iter()
    .find(|(name, _)| s.eq_ignore_ascii_case(name))
    .map(|(_, kind)| kind)
}

/// `otel.status_code`'s values.
fn status(s: &str) -> Status {
    if s.eq_ignore_ascii_case("ok") {
        Status::Ok
    } else if s.eq_ignore_ascii_case("error") {
        Status::error("")
    } else {
        Status::Unset
    }
}

/// An error's `source()` chain, outermost first.
fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<StringValue> {
    let mut chain = Vec::new();
    let mut next = error.source();
    while let Some(e) = next {
        chain.push(e.to_string().into());
        next = e.source();
    }
    chain
}

/// A span's fields: the `otel.*` ones set the name, kind and status; every other one is an attribute keyed by the
/// field's static name. Unsigned integers are recorded as their decimal text, as `tracing-opentelemetry` does.
struct SpanFields {
    name: Option<String>,
    kind: Option<SpanKind>,
    status: Option<Status>,
    attributes: Vec<KeyValue>,
}

impl SpanFields {
    fn with_capacity(attributes: usize) -> Self {
        SpanFields {
            name: None,
            kind: None,
            status: None,
            attributes: Vec::with_capacity(attributes),
        }
    }

    /// Whether `field` was one of the `otel.*` fields, now applied.
    #[inline]
    fn special(&mut self, name: &'static str, value: &str) -> bool {
        // One byte rules out almost every field before any string comparison.
        if name.as_bytes().first() != Some(&b'o') || !name.starts_with("otel.") {
            return false;
        }
        self.apply_special(name, value)
    }

    #[cold]
    fn apply_special(&mut self, name: &'static str, value: &str) -> bool {
        match name {
            "otel.name" => self.name = Some(value.to_string()),
            "otel.kind" => self.kind = span_kind(value),
            "otel.status_code" => self.status = Some(status(value)),
            "otel.status_description" => self.status = Some(Status::error(value.to_string())),
            _ => return false,
        }
        true
    }
}

impl Visit for SpanFields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if !self.special(name, value) {
            self.attributes.push(KeyValue::new(name, value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        let text = format!("{value:?}");
        if !self.special(name, &text) {
            self.attributes.push(KeyValue::new(name, text));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        let chain = chain(value);
        self.attributes.extend([
            KeyValue::new("exception.message", message.clone()),
            KeyValue::new("exception.stacktrace", Value::Array(chain.clone().into())),
            KeyValue::new(field.name(), message),
            KeyValue::new(
                Key::new(format!("{}.chain", field.name())),
                Value::Array(chain.into()),
            ),
        ]);
    }
}

/// An event's fields: `message` names the span event; an `error` field makes it an `exception` event and sets the
/// span's status; every other field is an attribute of the event.
struct EventFields {
    name: Option<String>,
    error_status: Option<Status>,
    exception: bool,
    attributes: Vec<KeyValue>,
    /// What an error value recorded on the event adds to the span itself (`exception.*`).
    span_attributes: Vec<KeyValue>,
}

impl EventFields {
    /// An `error` field given as text (what `#[instrument(err)]` records): the status and an `exception` event.
    fn error_text(&mut self, text: String) -> bool {
        if self.name.is_some() || self.exception {
            return false;
        }
        self.error_status = Some(Status::error(text.clone()));
        self.exception = true;
        self.attributes
            .push(KeyValue::new("exception.message", text));
        true
    }
}

impl Visit for EventFields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "message" => self.name = Some(value.to_string()),
            name => self.attributes.push(KeyValue::new(name, value)),
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "message" => self.name = Some(value.to_string()),
            name => self.attributes.push(KeyValue::new(name, value)),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "message" => self.name = Some(value.to_string()),
            name => self.attributes.push(KeyValue::new(name, value)),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.name = Some(value.to_string()),
            "error" if self.error_text(format!("{value:?}")) => {}
            name => self.attributes.push(KeyValue::new(name, value.to_string())),
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.name = Some(format!("{value:?}")),
            "error" if self.error_text(format!("{value:?}")) => {}
            name => self
                .attributes
                .push(KeyValue::new(name, format!("{value:?}"))),
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        let chain = chain(value);
        for to in [&mut self.attributes, &mut self.span_attributes] {
            to.extend([
                KeyValue::new("exception.message", message.clone()),
                KeyValue::new("exception.stacktrace", Value::Array(chain.clone().into())),
            ]);
        }
        self.attributes.extend([
            KeyValue::new(field.name(), message),
            KeyValue::new(
                Key::new(format!("{}.chain", field.name())),
                Value::Array(chain.into()),
            ),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use std::collections::HashMap;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Debug)]
    struct Boom(std::io::Error);
    impl fmt::Display for Boom {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("boom")
        }
    }
    impl std::error::Error for Boom {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// Every shape a service gives its `tracing` spans: `otel.*` fields, every field type, parents (contextual,
    /// explicit, none, and an OpenTelemetry-API span around them), late records, events with messages, errors as
    /// text and as `Error` values, follows-from links, and OpenTelemetry-API spans inside `tracing` spans.
    fn workload(api: &opentelemetry_sdk::trace::SdkTracer) {
        use opentelemetry::trace::Tracer as _;
        let outer = api.start("api outer");
        let _outer = Context::current_with_span(outer).attach();
        let root = tracing::info_span!(
            "root",
            otel.name = "GET /items",
            otel.kind = "server",
            text = "a value",
            int = -7,
            big = u64::MAX,
            small = 7u64,
            yes = true,
            ratio = 0.5,
            debug = ?vec![1, 2],
            display = %"shown",
            late = tracing::field::Empty,
        );
        root.record("late", 5);
        {
            let _root = root.enter();
            let child =
                tracing::info_span!("child", otel.kind = "client", db.system.name = "sqlite");
            child.in_scope(|| {
                tracing::info!(rows = 3, "fetched {} rows", 3);
                tracing::warn!(retry = true, "slow");
                tracing::error!(error = "boom", "query failed");
                let api_child = api.start("api child");
                drop(api_child);
            });
            let failing = tracing::info_span!("failing");
            failing.in_scope(|| {
                tracing::error!(error = "bad input");
            });
            let errored = tracing::info_span!("errored");
            errored.in_scope(|| {
                let e = Boom(std::io::Error::other("disk"));
                tracing::error!(
                    error = &e as &(dyn std::error::Error + 'static),
                    "it failed"
                );
            });
            let status = tracing::info_span!(
                "status",
                otel.status_code = "error",
                otel.status_description = "went wrong"
            );
            let ok = tracing::info_span!("ok", otel.status_code = "OK");
            drop((status, ok));
            let renamed = tracing::info_span!("renamed", otel.name = tracing::field::Empty);
            renamed.record("otel.name", "renamed later");
            drop(renamed);
        }
        let explicit = tracing::info_span!(parent: &root, "explicit child");
        let detached = tracing::info_span!(parent: None, "detached");
        detached.follows_from(&explicit);
        drop((explicit, detached));
        drop(root);
    }

    /// A span reduced to what both bridges must agree on (no ids, no times): parents as names.
    fn shape(spans: &[SpanData]) -> Vec<String> {
        let names: HashMap<_, _> = spans
            .iter()
            .map(|s| (s.span_context.span_id(), s.name.to_string()))
            .collect();
        let mut out: Vec<String> = spans
            .iter()
            .map(|s| {
                let mut attributes: Vec<String> = s
                    .attributes
                    .iter()
                    .map(|kv| format!("{}={:?}", kv.key, kv.value))
                    .collect();
                attributes.sort();
                let events: Vec<String> = s
                    .events
                    .iter()
                    .map(|e| {
                        let mut a: Vec<String> = e
                            .attributes
                            .iter()
                            .map(|kv| format!("{}={:?}", kv.key, kv.value))
                            .collect();
                        a.sort();
                        format!("{}{a:?}", e.name)
                    })
                    .collect();
                let links: Vec<String> = s
                    .links
                    .iter()
                    .map(|l| names.get(&l.span_context.span_id()).cloned().unwrap_or_default())
                    .collect();
                format!(
                    "{} kind={:?} parent={:?} status={:?} attributes={attributes:?} events={events:?} links={links:?}",
                    s.name,
                    s.span_kind,
                    names.get(&s.parent_span_id),
                    s.status,
                )
            })
            .collect();
        out.sort();
        out
    }

    /// A tracer provider that keeps every finished span.
    fn in_memory() -> (InMemorySpanExporter, SdkTracerProvider) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        (exporter, provider)
    }

    type Bridge = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

    /// ndotel's layer (`own`) or `tracing-opentelemetry` configured as `init()` configures it.
    fn bridge(own: bool, provider: &SdkTracerProvider, activation: bool) -> Bridge {
        let tracer = provider.tracer("ndotel");
        if own {
            Box::new(SpanLayer::new(tracer, activation))
        } else {
            Box::new(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_location(false)
                    .with_threads(false)
                    .with_tracked_inactivity(false)
                    .with_target(false)
                    .with_level(false)
                    .with_context_activation(activation),
            )
        }
    }

    fn run(own: bool, activation: bool) -> Vec<String> {
        let (exporter, provider) = in_memory();
        let api = provider.tracer("api");
        let subscriber = tracing_subscriber::registry().with(bridge(own, &provider, activation));
        tracing::subscriber::with_default(subscriber, || workload(&api));
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 11, "{spans:#?}");
        shape(&spans)
    }

    #[test]
    fn spans_have_the_shape_tracing_opentelemetry_gives_them() {
        for activation in [true, false] {
            let theirs = run(false, activation);
            let ours = run(true, activation);
            assert_eq!(ours, theirs, "context activation {activation}");
        }
    }

    #[test]
    fn span_ext_gives_the_span_context_under_either_bridge() {
        use crate::SpanExt as _;
        for own in [true, false] {
            let (exporter, provider) = in_memory();
            let subscriber = tracing_subscriber::registry().with(bridge(own, &provider, true));
            let seen = tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("work");
                let seen = span.otel_context().span().span_context().clone();
                // A disabled span has no context.
                assert!(!tracing::Span::none().otel_context().has_active_span());
                seen
            });
            let spans = exporter.get_finished_spans().unwrap();
            assert_eq!(spans.len(), 1, "own layer {own}");
            assert_eq!(
                spans[0].span_context.span_id(),
                seen.span_id(),
                "own layer {own}"
            );
        }
    }

    #[test]
    fn a_span_entered_inside_itself_stays_current_under_either_bridge() {
        use crate::SpanExt as _;
        use opentelemetry::trace::Tracer as _;
        // What `Context::current()` holds after each step: the span entered again inside itself (what sqlx's
        // instrumented streams do), with and without another context attached in between.
        let steps = |own: bool| {
            let (_exporter, provider) = in_memory();
            let api = provider.tracer("api");
            let subscriber = tracing_subscriber::registry().with(bridge(own, &provider, true));
            tracing::subscriber::with_default(subscriber, || {
                let a = tracing::info_span!("a");
                let a_id = a.otel_context().span().span_context().span_id();
                let other = Context::current_with_span(api.start("other"));
                let other_id = other.span().span_context().span_id();
                let current = || {
                    let id = Context::map_current(|cx| cx.span().span_context().span_id());
                    if id == a_id {
                        "a"
                    } else if id == other_id {
                        "other"
                    } else {
                        "none"
                    }
                };
                let mut seen = Vec::new();
                let outer = a.enter();
                seen.push(current());
                let inner = a.enter();
                seen.push(current());
                drop(inner);
                seen.push(current());
                let foreign = other.clone().attach();
                seen.push(current());
                let again = a.enter();
                seen.push(current());
                drop(again);
                seen.push(current());
                drop(foreign);
                seen.push(current());
                drop(outer);
                seen.push(current());
                seen
            })
        };
        let ours = steps(true);
        assert_eq!(ours, ["a", "a", "a", "other", "a", "other", "a", "none"]);
        assert_eq!(ours, steps(false), "as tracing-opentelemetry has it");
    }

    #[test]
    fn a_span_of_another_subscriber_with_the_same_id_is_made_current() {
        use crate::SpanExt as _;
        // Span ids are unique per subscriber: the first span of a second subscriber on this thread may have the id
        // of a span entered under the first, and must still become current when entered.
        let (_exporter, provider) = in_memory();
        let first = tracing_subscriber::registry().with(bridge(true, &provider, true));
        tracing::subscriber::with_default(first, || {
            let a = tracing::info_span!("a");
            let _a = a.enter();
            let second = tracing_subscriber::registry().with(bridge(true, &provider, true));
            tracing::subscriber::with_default(second, || {
                let b = tracing::info_span!("b");
                assert_eq!(b.id(), a.id(), "the case this test is about");
                let b_id = b.otel_context().span().span_context().span_id();
                let _b = b.enter();
                let current = Context::map_current(|cx| cx.span().span_context().span_id());
                assert_eq!(current, b_id);
            });
        });
    }

    /// A span processor that emits `tracing` events while a span starts and ends.
    #[derive(Debug)]
    struct Chatty;
    impl opentelemetry_sdk::trace::SpanProcessor for Chatty {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {
            tracing::warn!("span starting");
        }
        fn on_end(&self, _: SpanData) {
            tracing::warn!("span ended");
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(
            &self,
            _: std::time::Duration,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn events_emitted_while_a_span_starts_or_ends_do_not_deadlock_other_layers() {
        // The fmt layer reads the extensions of every span in an event's scope: were this layer to hold an entered
        // span's extensions while the SDK runs the processors (as a layer starting spans lazily on enter would),
        // the processor's event would wait on it forever. Events emitted while a span is created are not
        // dispatched at all (`tracing` is inside its dispatcher then); those of enter, exit and close are.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let provider = SdkTracerProvider::builder()
                .with_span_processor(Chatty)
                .build();
            let subscriber = tracing_subscriber::registry()
                .with(SpanLayer::new(provider.tracer("ndotel"), true))
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
            tracing::subscriber::with_default(subscriber, || {
                let outer = tracing::info_span!("outer", n = 1);
                let _outer = outer.enter();
                let inner = tracing::info_span!("inner", n = 2);
                inner.in_scope(|| {
                    tracing::info!("inside");
                    // An OpenTelemetry-API span started and ended while `inner` is entered.
                    use opentelemetry::trace::Tracer as _;
                    drop(provider.tracer("api").start("api"));
                });
                drop(inner);
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the spans finished (no deadlock)");
    }

    #[test]
    fn log_records_carry_the_trace_context_of_the_span_they_are_emitted_in() {
        use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
        for own in [true, false] {
            let (spans, provider) = in_memory();
            let logs = InMemoryLogExporter::default();
            let loggers = SdkLoggerProvider::builder()
                .with_simple_exporter(logs.clone())
                .build();
            let subscriber = tracing_subscriber::registry()
                .with(bridge(own, &provider, true))
                .with(
                    opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(
                        &loggers,
                    ),
                );
            tracing::subscriber::with_default(subscriber, || {
                tracing::info_span!("work").in_scope(|| tracing::info!("inside"));
                tracing::info!("outside");
            });
            let span = spans.get_finished_spans().unwrap().remove(0);
            let records = logs.get_emitted_logs().unwrap();
            assert_eq!(records.len(), 2, "own layer {own}");
            let inside = records[0].record.trace_context().expect("a trace context");
            assert_eq!(
                inside.trace_id,
                span.span_context.trace_id(),
                "own layer {own}"
            );
            assert_eq!(
                inside.span_id,
                span.span_context.span_id(),
                "own layer {own}"
            );
            assert!(
                records[1].record.trace_context().is_none(),
                "own layer {own}"
            );
        }
    }
}
