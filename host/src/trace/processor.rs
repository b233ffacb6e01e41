//! The distro's span processor in the SDK pipeline: sets the distro's start attributes on every span on the request
//! thread, queues every ended span, and on the batch thread applies the distro's edits (rename, set, redact, drop)
//! before handing the batch to each exporter. Redaction therefore happens before any exporter — built-in or
//! distro — sees a span.
//!
//! Fail closed: a processor that fails on a span (error or panic) costs that span — it is dropped and counted —
//! unless the operator chose pass-through with `OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass`; a call past its deadline
//! costs its span whatever that setting says; while a call is stuck the watchdog bypasses the processor.

use super::exporter::{AnySpanExporter, Delivery};
use super::queue::{BatchQueue, Dropped};
use crate::distro::editor::{Editor, Progress, SpanProcessorBox};
use crate::distro::faults::Faults;
use crate::distro::view::resource_attributes;
use crate::distro::worker::Worker;
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor};
use smallvec::SmallVec;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How many editors a reload replaced are kept for the spans their generation decided and that are still queued.
/// A span older than that many reloads is edited by the editor in use.
const RETAINED: usize = 64;

/// Where the editor in use is kept: a reload swaps a new one in. Each span is edited by the editor of the
/// generation that decided it when the distro's sampler says which ([`crate::distro::generation::GENERATION_KEY`]), else by the one in
/// use when its batch starts; each metric series by the one in use. Never by a mix.
#[derive(Debug)]
pub(crate) struct EditorSlot {
    current: arc_swap::ArcSwap<Editor>,
    /// The editors reloads replaced, newest last, at most [`RETAINED`].
    replaced: std::sync::Mutex<std::collections::VecDeque<Arc<Editor>>>,
    /// Whether spans carry the generation that decided them (from the first reload that rebuilds the distro's
    /// sampler with its processor).
    tagged: AtomicBool,
    /// Whether the generation that edited a span stays on it ([`crate::distro::generation::GENERATION_KEY`]).
    keep_tag: AtomicBool,
}

impl EditorSlot {
    pub(crate) fn new(editor: Arc<Editor>) -> Self {
        EditorSlot {
            current: arc_swap::ArcSwap::new(editor),
            replaced: Default::default(),
            tagged: AtomicBool::new(false),
            keep_tag: AtomicBool::new(false),
        }
    }

    /// The editor in use.
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Editor>> {
        self.current.load()
    }

    /// Puts `new` in use; returns what was in use (kept for the spans its generation decided).
    pub(crate) fn swap(&self, new: Arc<Editor>) -> Arc<Editor> {
        // Under the lock: a batch that sees the new editor in use finds the old one kept.
        let mut replaced = self
            .replaced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let old = self.current.swap(new);
        replaced.push_back(old.clone());
        let evicted = (replaced.len() > RETAINED).then(|| replaced.pop_front());
        // An evicted editor's plugin code (its destructor) runs outside the lock the batch thread takes.
        drop(replaced);
        drop(evicted);
        old
    }

    /// Spans say which generation decided them from now on (the distro's sampler was told to tag them first).
    pub(crate) fn tagged(&self) {
        self.tagged.store(true, Ordering::Release);
    }

    /// Each edited span says which generation edited it.
    pub(crate) fn keep_tags(&self) {
        self.keep_tag.store(true, Ordering::Relaxed);
    }

    /// The batch in groups, each with the editor that edits it: the editor of the generation each span was decided
    /// under (its tag, removed here). A span without a tag was decided before tagging began, by start-up's
    /// generation (0) — unless the span limit cut its tag off (it dropped attributes), which the editor in use
    /// edits; so does a span whose generation is no longer kept.
    fn split(
        &self,
        current: Arc<Editor>,
        batch: Vec<SpanData>,
    ) -> SmallVec<[(Arc<Editor>, Vec<SpanData>); 2]> {
        let mut groups: SmallVec<[(Arc<Editor>, Vec<SpanData>); 2]> = SmallVec::new();
        if !self.tagged.load(Ordering::Acquire) {
            groups.push((current, batch));
            return groups;
        }
        let replaced = self
            .replaced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for mut span in batch {
            let tag = match take_generation(&mut span) {
                Tag::Absent if span.dropped_attributes_count == 0 => Some(0),
                Tag::Sampler(g) => Some(g),
                Tag::Absent | Tag::Other => None,
            };
            let editor = match tag {
                Some(g) if g != current.generation() => replaced
                    .iter()
                    .rev()
                    .find(|e| e.generation() == g)
                    .unwrap_or(&current),
                _ => &current,
            };
            match groups.iter_mut().find(|(e, _)| Arc::ptr_eq(e, editor)) {
                Some((_, spans)) => spans.push(span),
                None => groups.push((editor.clone(), vec![span])),
            }
        }
        groups
    }
}

/// Cuts every string attribute value of `span`, its events and its links (and every string in an array) to `limit`
/// characters, as the specification's attribute value length limit says.
fn truncate_span(span: &mut SpanData, limit: usize) {
    let attributes = span
        .attributes
        .iter_mut()
        .chain(
            span.events
                .events
                .iter_mut()
                .flat_map(|e| e.attributes.iter_mut()),
        )
        .chain(
            span.links
                .links
                .iter_mut()
                .flat_map(|l| l.attributes.iter_mut()),
        );
    for kv in attributes {
        truncate_value(&mut kv.value, limit);
    }
}

/// `value` cut to `limit` characters when it is a string or an array of strings.
pub(crate) fn truncate_value(value: &mut Value, limit: usize) {
    match value {
        Value::String(s) => {
            if let Some(cut) = cut(s.as_str(), limit) {
                *s = cut.into();
            }
        }
        Value::Array(opentelemetry::Array::String(list)) => {
            for s in list.iter_mut() {
                if let Some(cut) = cut(s.as_str(), limit) {
                    *s = cut.into();
                }
            }
        }
        _ => {}
    }
}

/// The first `limit` characters of `s`, when it has more.
pub(crate) fn cut(s: &str, limit: usize) -> Option<String> {
    s.char_indices()
        .nth(limit)
        .map(|(end, _)| s[..end].to_string())
}

/// What a span says of the generation that decided it.
#[derive(Debug, PartialEq)]
enum Tag {
    /// No tag: decided before tagging began, or the span limit cut the tag off.
    Absent,
    /// The sampler's tag.
    Sampler(u64),
    /// An attribute of that name the service set itself: it chooses nothing.
    Other,
}

/// Removes every attribute named [`crate::distro::generation::GENERATION_KEY`] from `span`; says what they were.
fn take_generation(span: &mut SpanData) -> Tag {
    let mut tag = Tag::Absent;
    span.attributes.retain(|kv| {
        if kv.key.as_str() != crate::distro::generation::GENERATION_KEY {
            return true;
        }
        tag = match (&tag, &kv.value) {
            (Tag::Absent, Value::I64(t)) => match crate::distro::generation::generation_of(*t) {
                Some(g) => Tag::Sampler(g),
                None => Tag::Other,
            },
            _ => Tag::Other,
        };
        false
    });
    tag
}

/// The distro's span processor in the SDK pipeline. On the request thread it only sets the start attributes and
/// queues the ended span; the distro's edits, the exporters and the caller's processors all run on the batch
/// thread ([`Outlet`]).
pub(crate) struct DistroSpanProcessor {
    editor: Option<Arc<EditorSlot>>,
    start_attributes: Vec<KeyValue>,
    /// The one batch queue (`None` when nothing would receive a span).
    batch: Option<Batch>,
    /// The caller's processors ([`crate::Pipeline::build_with`]): started here, ended after the edits.
    extra: Arc<[Box<dyn SpanProcessor>]>,
    delivery: Arc<Delivery>,
}

impl std::fmt::Debug for DistroSpanProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistroSpanProcessor")
            .field("has_plugin", &self.editor.is_some())
            .field("start_attributes", &self.start_attributes)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// What receives the ended spans: the exporters, and the caller's processors.
pub(crate) struct Receivers {
    pub(crate) exporters: Vec<Box<dyn AnySpanExporter>>,
    pub(crate) extra: Vec<Box<dyn SpanProcessor>>,
    /// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`: what they receive of each string attribute value, in characters.
    pub(crate) value_length_limit: Option<usize>,
}

impl DistroSpanProcessor {
    /// `start_attributes` were asked of the plugin when it was built (under the start-up deadline); `batch` makes
    /// the batch processor around the outlet, with the `OTEL_BSP_*` settings.
    /// With the plugin goes whether it has `on_end_batch` (API 1.5); without it each call edits one span.
    pub(crate) fn new(
        plugin: Option<(SpanProcessorBox, bool)>,
        start_attributes: Vec<KeyValue>,
        receivers: Receivers,
        faults: Arc<Faults>,
        call_timeout: Duration,
        batch: impl FnOnce(Outlet) -> Batch,
    ) -> Self {
        let editor = plugin.map(|(plugin, edits_batches)| {
            Arc::new(EditorSlot::new(Editor::new(
                plugin,
                edits_batches,
                faults,
                call_timeout,
            )))
        });
        let extra: Arc<[Box<dyn SpanProcessor>]> = receivers.extra.into();
        let delivery = Arc::new(Delivery::default());
        let batch = (!receivers.exporters.is_empty() || !extra.is_empty()).then(|| {
            // The edits run on a worker of their own, so a call that hangs costs that worker, not the batch thread.
            let worker = editor.as_ref().and_then(|_| {
                Worker::new(
                    "ndotel-span-edit",
                    call_timeout.max(Duration::from_millis(1)),
                )
                .ok()
            });
            batch(Outlet {
                editor: editor.clone(),
                worker,
                resource: Arc::default(),
                exporters: receivers.exporters,
                extra: extra.clone(),
                delivery: delivery.clone(),
                value_length_limit: receivers.value_length_limit,
            })
        });
        DistroSpanProcessor {
            editor,
            start_attributes,
            batch,
            extra,
            delivery,
        }
    }

    /// Whether it would do nothing: no start attributes and nothing receiving spans.
    pub(crate) fn is_idle(&self) -> bool {
        self.start_attributes.is_empty() && self.batch.is_none()
    }

    /// The distro's editor, for the metric series and reloads (`None` without a distro processor).
    pub(crate) fn editor(&self) -> Option<Arc<EditorSlot>> {
        self.editor.clone()
    }

    /// What happened to the spans queued for export.
    pub(crate) fn delivery(&self) -> Arc<Delivery> {
        self.delivery.clone()
    }
}

/// What the batch thread does with a batch: the distro's edits first — so no exporter and no caller's processor ever
/// sees an unedited span — then every exporter, each with the same edited batch.
pub(crate) struct Outlet {
    editor: Option<Arc<EditorSlot>>,
    worker: Option<Worker>,
    resource: Arc<Vec<KeyValue>>,
    exporters: Vec<Box<dyn AnySpanExporter>>,
    extra: Arc<[Box<dyn SpanProcessor>]>,
    delivery: Arc<Delivery>,
    value_length_limit: Option<usize>,
}

impl std::fmt::Debug for Outlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outlet")
            .field("exporters", &self.exporters)
            .finish_non_exhaustive()
    }
}

impl Outlet {
    /// The batch with the distro's edits. While the processor is stuck (past 5× its deadline) a batch takes the
    /// fallback: dropped, or passed unchanged when the operator chose that. The spans of the stuck call itself are
    /// dropped whatever that setting says: a call past its deadline costs its spans.
    fn edited(&self, batch: Vec<SpanData>) -> Vec<SpanData> {
        let Some(slot) = &self.editor else {
            return batch;
        };
        // One editor per span, whatever a reload swaps in meanwhile: the generation's that decided it, else the
        // one in use when the batch starts.
        let groups = slot.split(slot.current.load_full(), batch);
        let keep = slot.keep_tag.load(Ordering::Relaxed);
        let mut out = Vec::new();
        for (editor, spans) in groups {
            let start = out.len();
            let edited = self.edited_by(&editor, spans);
            // The usual single group is taken as it is: extending would copy every span.
            if out.is_empty() {
                out = edited;
            } else {
                out.extend(edited);
            }
            if keep {
                let generation = i64::try_from(editor.generation()).unwrap_or(i64::MAX);
                for span in &mut out[start..] {
                    span.attributes
                        .retain(|kv| kv.key.as_str() != crate::distro::generation::GENERATION_KEY);
                    span.attributes.push(KeyValue::new(
                        crate::distro::generation::GENERATION_KEY,
                        generation,
                    ));
                }
            }
        }
        out
    }

    /// `batch` edited by `editor`.
    fn edited_by(&self, editor: &Arc<Editor>, batch: Vec<SpanData>) -> Vec<SpanData> {
        let progress = Arc::new(Progress::default());
        let Some(worker) = &self.worker else {
            editor.edit_batch(batch, &self.resource, &progress);
            return progress.take().1;
        };
        // An abandoned call that has returned ends its job at the next chunk: wait for that, not for a stuck one.
        while worker.is_busy() && !editor.bypassed() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if worker.is_busy() {
            return if editor.on_failure() {
                batch
            } else {
                Vec::new()
            };
        }
        let kept = editor.passes().then(|| batch.clone());
        let (on_worker, resource, shared) =
            (editor.clone(), self.resource.clone(), progress.clone());
        let finished = worker.run_while(
            move || on_worker.edit_batch(batch, &resource, &shared),
            || !editor.bypassed(),
        );
        let (done, mut edited) = progress.take();
        if finished.is_err() {
            // Stuck (the watchdog has reported it): the chunks edited so far go on; the stuck call's spans are
            // dropped; the rest of the batch takes the fallback.
            let after = done.saturating_add(editor.chunk());
            edited.extend(kept.into_iter().flatten().skip(after));
        }
        edited
    }
}

impl SpanExporter for Outlet {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let taken = batch.len();
        let mut batch = self.edited(batch);
        // After the edits: a redaction sees the whole value, never a cut one it might not recognise.
        if let Some(limit) = self.value_length_limit {
            for span in &mut batch {
                truncate_span(span, limit);
            }
        }
        // Dropped by the edits: done with.
        self.delivery.settled(taken - batch.len());
        for p in self.extra.iter() {
            for span in &batch {
                p.on_end(span.clone());
            }
        }
        let n = batch.len();
        let mut exports = Vec::with_capacity(self.exporters.len());
        if let Some((last, rest)) = self.exporters.split_last() {
            for e in rest {
                exports.push(e.export(batch.clone()));
            }
            exports.push(last.export(batch));
        }
        let delivery = self.delivery.clone();
        async move {
            let mut first = None;
            for export in exports {
                if let Err(e) = export.await {
                    delivery.failed(n);
                    first.get_or_insert(e);
                }
            }
            delivery.settled(n);
            first.map_or(Ok(()), Err)
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        combine(self.exporters.iter().map(|e| e.force_flush()))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = combine(
            self.exporters
                .iter()
                .map(|e| e.shutdown_with_timeout(timeout)),
        );
        // After the last batch was edited.
        if let Some(editor) = &self.editor {
            editor.load().shutdown();
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = Arc::new(resource_attributes(resource));
        for e in &mut self.exporters {
            e.set_resource(resource);
        }
    }
}

impl SpanProcessor for DistroSpanProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        for kv in &self.start_attributes {
            span.set_attribute(kv.clone());
        }
        for p in self.extra.iter() {
            p.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        if let Some(batch) = &self.batch {
            self.delivery.queued();
            match batch {
                Batch::Own(queue) => {
                    if queue.push(span) == Err(Dropped::Full) {
                        self.delivery.full();
                    }
                }
                Batch::Sdk(processor) => processor.on_end(span),
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // The batch first: the caller's processors receive its spans.
        let batch = self.batch.as_ref().map(|b| b.force_flush());
        combine(
            batch
                .into_iter()
                .chain(self.extra.iter().map(|p| p.force_flush())),
        )
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let batch = match &self.batch {
            // The outlet shuts the editor down after the last batch.
            Some(b) => Some(b.shutdown_with_timeout(timeout)),
            None => {
                if let Some(editor) = &self.editor {
                    editor.load().shutdown();
                }
                None
            }
        };
        combine(
            batch
                .into_iter()
                .chain(self.extra.iter().map(|p| p.shutdown_with_timeout(timeout))),
        )
    }

    fn set_resource(&mut self, resource: &Resource) {
        // The caller's processors were given the resource when the pipeline was built.
        match &mut self.batch {
            Some(Batch::Own(queue)) => queue.set_resource(resource),
            Some(Batch::Sdk(processor)) => processor.set_resource(resource),
            None => {}
        }
    }
}

/// What carries ended spans to the batch thread (`OTEL_RUST_SPAN_QUEUE`).
#[derive(Debug)]
pub(crate) enum Batch {
    /// ndotel's own queue: each span moves once.
    Own(BatchQueue),
    /// The SDK's `BatchSpanProcessor`, as a hand-written setup has it (for comparison).
    Sdk(BatchSpanProcessor),
}

impl Batch {
    fn force_flush(&self) -> OTelSdkResult {
        match self {
            Batch::Own(queue) => queue.force_flush(),
            Batch::Sdk(processor) => processor.force_flush(),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self {
            Batch::Own(queue) => queue.shutdown_with_timeout(timeout),
            Batch::Sdk(processor) => processor.shutdown_with_timeout(timeout),
        }
    }
}

/// Runs every operation, keeping the first error.
pub(crate) fn combine(results: impl Iterator<Item = OTelSdkResult>) -> OTelSdkResult {
    let mut first: Option<OTelSdkError> = None;
    for r in results {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::editor::tests::span;
    use opentelemetry::trace::Status;

    /// Only the sampler's own tag chooses a generation: an attribute of that name the service set itself (any
    /// value, even a tag copied from another process) chooses nothing, and every one of them is removed.
    #[test]
    fn only_the_samplers_tag_names_a_generation() {
        use crate::distro::generation::{GENERATION_KEY, generation_tag};
        let with = |values: Vec<Value>| {
            let mut s = span(Status::Unset);
            for v in values {
                s.attributes.push(KeyValue::new(GENERATION_KEY, v));
            }
            s
        };
        let mut s = with(vec![]);
        assert_eq!(take_generation(&mut s), Tag::Absent);
        let mut s = with(vec![Value::I64(generation_tag(7))]);
        assert_eq!(take_generation(&mut s), Tag::Sampler(7));
        assert!(
            s.attributes
                .iter()
                .all(|kv| kv.key.as_str() != GENERATION_KEY)
        );
        for forged in [
            vec![Value::I64(0)],
            vec![Value::I64(-1)],
            vec![Value::I64(generation_tag(3) ^ (1 << 40))],
            vec![Value::from("0")],
            vec![Value::I64(generation_tag(2)), Value::I64(0)],
            vec![Value::I64(0), Value::I64(generation_tag(2))],
        ] {
            let mut s = with(forged.clone());
            assert_eq!(take_generation(&mut s), Tag::Other, "{forged:?}");
            assert!(
                s.attributes
                    .iter()
                    .all(|kv| kv.key.as_str() != GENERATION_KEY)
            );
        }
    }
}
