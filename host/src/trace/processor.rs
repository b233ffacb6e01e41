//! The distro's span processor in the SDK pipeline: sets the distro's start attributes on every span on the request
//! thread, queues every ended span, and on the batch thread applies the distro's edits (rename, set, redact, drop)
//! before handing the batch to each exporter. Redaction therefore happens before any exporter — built-in or
//! distro — sees a span.
//!
//! Fail closed: a processor that fails on a span (error or panic) costs that span — it is dropped and counted —
//! unless the operator chose pass-through with `OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass`; a call past its deadline
//! costs its span whatever that setting says; while a call is stuck the watchdog bypasses the processor.

use super::exporter::{AnySpanExporter, Delivery};
use super::view::{HostSpan, resource_attributes, to_otel_value, with_scratch};
use crate::distro::faults::{Component, Faults};
use crate::distro::watchdog::Watched;
use crate::distro::worker::Worker;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr};
use ndotel_api::REDACTED;
use ndotel_api::ValueRef;
use ndotel_api::ffi::{
    FfiEdits, FfiEdits_TO, FfiEditsMut, FfiError, FfiSpan_TO, FfiSpanProcessorBox, FfiSpanRef,
    FfiTarget,
};
use opentelemetry::trace::{Span as _, Status};
use opentelemetry::{Context, Key, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How many spans one call into the distro's processor edits on the batch thread (a plugin built before API 1.5
/// is called once per span): `OTEL_RUST_DISTRO_CALL_TIMEOUT` bounds one such call.
pub(crate) const EDIT_CHUNK: usize = 64;

/// How many editors a reload replaced are kept for the spans their generation decided and that are still queued.
/// A span older than that many reloads is edited by the editor in use.
const RETAINED: usize = 64;

/// Where the editor in use is kept: a reload swaps a new one in. Each span is edited by the editor of the
/// generation that decided it when the distro's sampler says which ([`super::GENERATION_KEY`]), else by the one in
/// use when its batch starts; each metric series by the one in use. Never by a mix.
#[derive(Debug)]
pub(crate) struct EditorSlot {
    current: arc_swap::ArcSwap<Editor>,
    /// The editors reloads replaced, newest last, at most [`RETAINED`].
    replaced: std::sync::Mutex<std::collections::VecDeque<Arc<Editor>>>,
    /// Whether spans carry the generation that decided them (from the first reload that rebuilds the distro's
    /// sampler with its processor).
    tagged: AtomicBool,
    /// Whether the generation that edited a span stays on it ([`super::GENERATION_KEY`]).
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
                Some(g) if g != current.generation => replaced
                    .iter()
                    .rev()
                    .find(|e| e.generation == g)
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

/// Removes every attribute named [`super::GENERATION_KEY`] from `span`; says what they were.
fn take_generation(span: &mut SpanData) -> Tag {
    let mut tag = Tag::Absent;
    span.attributes.retain(|kv| {
        if kv.key.as_str() != super::GENERATION_KEY {
            return true;
        }
        tag = match (&tag, &kv.value) {
            (Tag::Absent, Value::I64(t)) => match super::generation_of(*t) {
                Some(g) => Tag::Sampler(g),
                None => Tag::Other,
            },
            _ => Tag::Other,
        };
        false
    });
    tag
}

/// The distro's span processor behind its watchdog: what edits a span. Shared by the span pipeline and the metric
/// series redaction ([`crate::metrics::series`]).
pub(crate) struct Editor {
    plugin: FfiSpanProcessorBox,
    watched: Arc<Watched>,
    faults: Arc<Faults>,
    /// Spans per call: [`EDIT_CHUNK`], or 1 for a plugin from before `on_end_batch` (whose calls then keep a
    /// deadline per span) and with pass-through (so a stuck call holds one span, and the rest of its batch passes).
    chunk: usize,
    shut_down: AtomicBool,
    /// The generation of the distro's settings it was built from (0 at start-up).
    generation: u64,
    /// Unique to this editor in the process (what the metric series' remembered verdicts were judged by).
    id: u64,
    /// Its own failures (errors, panics, late answers): what a reload's health window judges it by.
    failures: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Editor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Editor").finish_non_exhaustive()
    }
}

impl Editor {
    /// The distro's processor `plugin` (with whether it has `on_end_batch`, API 1.5) behind its watchdog.
    pub(crate) fn new(
        plugin: FfiSpanProcessorBox,
        edits_batches: bool,
        faults: Arc<Faults>,
        call_timeout: Duration,
    ) -> Arc<Editor> {
        let watched = Watched::new(Component::SpanProcessor, call_timeout, faults.clone());
        Editor::watched_by(plugin, edits_batches, faults, watched, 0)
    }

    /// [`Editor::new`] for `generation` of the distro's settings, under the watchdog entry `watched` of the editor
    /// it replaces: a call of the old editor still stuck on the worker then bypasses the new one too (rather than a
    /// batch waiting for a worker the new editor's own entry would never see stuck).
    pub(crate) fn watched_by(
        plugin: FfiSpanProcessorBox,
        edits_batches: bool,
        faults: Arc<Faults>,
        watched: Arc<Watched>,
        generation: u64,
    ) -> Arc<Editor> {
        let chunk = if edits_batches && !faults.processor_passes() {
            EDIT_CHUNK
        } else {
            1
        };
        Arc::new(Editor {
            plugin,
            watched,
            faults,
            chunk,
            shut_down: AtomicBool::new(false),
            generation,
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
            failures: Default::default(),
        })
    }

    /// Its watchdog entry (shared by the editors a reload swaps in).
    pub(crate) fn watched(&self) -> Arc<Watched> {
        self.watched.clone()
    }

    /// Unique to this editor in the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Its own failures so far.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Whether its processor is bypassed now (a call stuck past 5× the deadline).
    pub(crate) fn bypassed(&self) -> bool {
        self.watched.bypassed()
    }

    /// What a span the processor failed on becomes: dropped, or unchanged when the operator chose pass-through.
    fn on_failure(&self, span: SpanData) -> Option<SpanData> {
        self.faults.processor_passes().then_some(span)
    }

    /// Applies the distro's edits to one span (a new metric series); `None` when the span is dropped.
    pub(crate) fn edit(&self, span: SpanData, resource: &[KeyValue]) -> Option<SpanData> {
        let mut out = Vec::with_capacity(1);
        self.edit_chunk(vec![span], resource, &mut out, &Progress::default());
        out.pop()
    }

    /// Applies the distro's edits to a batch on the batch thread, [`EDIT_CHUNK`] spans per call into the plugin,
    /// handing each chunk's result to `progress` (the spans dropped — by the distro, or failed closed — are left
    /// out). Stops at the next chunk once the batch thread has abandoned the batch (it gave up on a stuck call).
    pub(crate) fn edit_batch(
        &self,
        batch: Vec<SpanData>,
        resource: &[KeyValue],
        progress: &Progress,
    ) {
        let mut spans = batch.into_iter();
        loop {
            let chunk: Vec<SpanData> = spans.by_ref().take(self.chunk).collect();
            let n = chunk.len();
            if n == 0 || progress.abandoned() {
                return;
            }
            let mut out = Vec::with_capacity(n);
            self.edit_chunk(chunk, resource, &mut out, progress);
            let Ok(mut p) = progress.0.lock() else { return };
            if p.abandoned {
                return;
            }
            p.done += n;
            p.out.extend(out);
        }
    }

    fn edit_chunk(
        &self,
        chunk: Vec<SpanData>,
        resource: &[KeyValue],
        out: &mut Vec<SpanData>,
        progress: &Progress,
    ) {
        if self.watched.bypassed() {
            out.extend(chunk.into_iter().filter_map(|s| self.on_failure(s)));
            return;
        }
        let mut edits: Vec<SpanEdits> = chunk.iter().map(|_| SpanEdits::default()).collect();
        let mut failed: SmallVec<[ROption<FfiError>; EDIT_CHUNK]> =
            chunk.iter().map(|_| ROption::RNone).collect();
        let trace = u128::from_be_bytes(chunk[0].span_context.trace_id().to_bytes());
        let result = with_scratch(|bump| {
            let views: SmallVec<[HostSpan<'_>; EDIT_CHUNK]> = chunk
                .iter()
                .map(|s| HostSpan::new(s, resource, bump))
                .collect();
            let views: SmallVec<[FfiSpanRef<'_>; EDIT_CHUNK]> = views
                .iter()
                .map(|v| FfiSpan_TO::from_ptr(v, TD_Opaque))
                .collect();
            let mut sinks: SmallVec<[FfiEditsMut<'_>; EDIT_CHUNK]> = edits
                .iter_mut()
                .map(|e| FfiEdits_TO::from_ptr(e, TD_Opaque))
                .collect();
            self.watched.call(trace, || {
                self.plugin.on_end_batch(
                    views.as_slice().into(),
                    sinks.as_mut_slice().into(),
                    failed.as_mut_slice().into(),
                )
            })
        });
        // Edits that came too late cost their spans, even with pass-through: the call is slow on this input, and
        // passing the spans unedited would turn slowness into a leak (the watchdog counted it). Which span of the
        // chunk was slow is not known: each is edited again on its own, so a slow span costs only itself.
        if result.overdue {
            self.failures.fetch_add(1, Ordering::Relaxed);
            if chunk.len() > 1 {
                for span in chunk {
                    if progress.abandoned() {
                        return;
                    }
                    self.edit_chunk(vec![span], resource, out, progress);
                }
            }
            return;
        }
        if let RResult::RErr(e) = result.value {
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.faults.record_span_call(Component::SpanProcessor, &e);
            out.extend(chunk.into_iter().filter_map(|s| self.on_failure(s)));
            return;
        }
        for ((span, edits), failed) in chunk.into_iter().zip(edits).zip(failed) {
            let edited = match failed {
                ROption::RSome(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    self.faults.record_span_call(Component::SpanProcessor, &e);
                    self.on_failure(span)
                }
                ROption::RNone => edits.apply(span),
            };
            out.extend(edited);
        }
    }

    /// Tells the distro's processor the pipeline shuts down (once, however often asked).
    pub(crate) fn shutdown(&self) {
        if !self.shut_down.swap(true, Ordering::AcqRel)
            && !self.watched.bypassed()
            && let RResult::RErr(e) = self.watched.call(0, || self.plugin.shutdown()).value
        {
            self.faults.record_span_call(Component::SpanProcessor, &e);
        }
    }
}

/// The distro's span processor in the SDK pipeline. On the request thread it only sets the start attributes and
/// queues the ended span; the distro's edits, the exporters and the caller's processors all run on the batch
/// thread ([`Outlet`]).
pub(crate) struct DistroSpanProcessor {
    editor: Option<Arc<EditorSlot>>,
    start_attributes: Vec<KeyValue>,
    /// The one batch queue (`None` when nothing would receive a span).
    batch: Option<BatchSpanProcessor>,
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
}

impl DistroSpanProcessor {
    /// `start_attributes` were asked of the plugin when it was built (under the start-up deadline); `batch` makes
    /// the batch processor around the outlet, with the `OTEL_BSP_*` settings.
    /// With the plugin goes whether it has `on_end_batch` (API 1.5); without it each call edits one span.
    pub(crate) fn new(
        plugin: Option<(FfiSpanProcessorBox, bool)>,
        start_attributes: Vec<KeyValue>,
        receivers: Receivers,
        faults: Arc<Faults>,
        call_timeout: Duration,
        batch: impl FnOnce(Outlet) -> BatchSpanProcessor,
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
            out.extend(self.edited_by(&editor, spans));
            if keep {
                let generation = i64::try_from(editor.generation).unwrap_or(i64::MAX);
                for span in &mut out[start..] {
                    span.attributes
                        .retain(|kv| kv.key.as_str() != super::GENERATION_KEY);
                    span.attributes
                        .push(KeyValue::new(super::GENERATION_KEY, generation));
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
        while worker.is_busy() && !editor.watched.bypassed() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if worker.is_busy() {
            return batch
                .into_iter()
                .filter_map(|s| editor.on_failure(s))
                .collect();
        }
        let kept = editor.faults.processor_passes().then(|| batch.clone());
        let (on_worker, resource, shared) =
            (editor.clone(), self.resource.clone(), progress.clone());
        let finished = worker.run_while(
            move || on_worker.edit_batch(batch, &resource, &shared),
            || !editor.watched.bypassed(),
        );
        let (done, mut edited) = progress.take();
        if finished.is_err() {
            // Stuck (the watchdog has reported it): the chunks edited so far go on; the stuck call's spans are
            // dropped; the rest of the batch takes the fallback.
            let after = done.saturating_add(editor.chunk);
            edited.extend(kept.into_iter().flatten().skip(after));
        }
        edited
    }
}

/// How far the edit worker got with a batch, shared with the batch thread.
#[derive(Debug, Default)]
pub(crate) struct Progress(std::sync::Mutex<ProgressState>);

#[derive(Debug, Default)]
struct ProgressState {
    /// The batch thread gave up on it: the worker hands over nothing more.
    abandoned: bool,
    /// Spans of the batch done with (edited, dropped or failed closed).
    done: usize,
    /// The edited spans of those.
    out: Vec<SpanData>,
}

impl Progress {
    fn abandoned(&self) -> bool {
        self.0.lock().map_or(true, |p| p.abandoned)
    }

    /// Marks the batch abandoned and takes what was done: how many spans, and the edited ones.
    fn take(&self) -> (usize, Vec<SpanData>) {
        match self.0.lock() {
            Ok(mut p) => {
                p.abandoned = true;
                (p.done, std::mem::take(&mut p.out))
            }
            Err(_) => (usize::MAX, Vec::new()),
        }
    }
}

impl SpanExporter for Outlet {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let taken = batch.len();
        let batch = self.edited(batch);
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

/// Where an edit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Span,
    Event(usize),
    Link(usize),
}

impl From<FfiTarget> for Target {
    fn from(t: FfiTarget) -> Self {
        match t.kind {
            1 => Target::Event(t.index as usize),
            2 => Target::Link(t.index as usize),
            _ => Target::Span,
        }
    }
}

/// One recorded edit, with owned values (the span is borrowed while the distro runs).
#[derive(Debug)]
enum SpanEdit {
    Rename(String),
    Set(Target, KeyValue),
    Redact(Target, String),
    RenameAttribute(Target, String, String),
    Remove(Target, String),
    DropEvent(usize),
    StatusMessage(String),
}

/// The edits a distro's processor made to one span; empty (and allocation-free) for a span left alone.
#[derive(Debug, Default)]
struct SpanEdits {
    drop: bool,
    edits: SmallVec<[SpanEdit; 2]>,
}

impl FfiEdits for SpanEdits {
    fn drop_span(&mut self) {
        self.drop = true;
    }
    fn rename_span(&mut self, name: RStr<'_>) {
        self.edits.push(SpanEdit::Rename(name.to_string()));
    }
    fn set(&mut self, target: FfiTarget, key: RStr<'_>, value: ValueRef<'_>) {
        // A value kind this host does not know (a newer plugin) cannot be represented: the edit is skipped.
        if let Some(value) = to_otel_value(value) {
            let kv = KeyValue::new(key.to_string(), value);
            self.edits.push(SpanEdit::Set(target.into(), kv));
        }
    }
    fn redact(&mut self, target: FfiTarget, key: RStr<'_>) {
        self.edits
            .push(SpanEdit::Redact(target.into(), key.to_string()));
    }
    fn rename_attribute(&mut self, target: FfiTarget, from: RStr<'_>, to: RStr<'_>) {
        self.edits.push(SpanEdit::RenameAttribute(
            target.into(),
            from.to_string(),
            to.to_string(),
        ));
    }
    fn remove_attribute(&mut self, target: FfiTarget, key: RStr<'_>) {
        self.edits
            .push(SpanEdit::Remove(target.into(), key.to_string()));
    }
    fn drop_event(&mut self, index: u32) {
        self.edits.push(SpanEdit::DropEvent(index as usize));
    }
    fn set_status_message(&mut self, message: RStr<'_>) {
        self.edits
            .push(SpanEdit::StatusMessage(message.to_string()));
    }
}

/// The attribute list an edit targets (`None` for an index the span does not have).
fn attributes_of(span: &mut SpanData, target: Target) -> Option<&mut Vec<KeyValue>> {
    match target {
        Target::Span => Some(&mut span.attributes),
        Target::Event(i) => span.events.events.get_mut(i).map(|e| &mut e.attributes),
        Target::Link(i) => span.links.links.get_mut(i).map(|l| &mut l.attributes),
    }
}

impl SpanEdits {
    /// Applies the edits in order; `None` when the span is dropped. Event drops apply last, so every edit's index
    /// means the event the distro saw.
    fn apply(self, mut span: SpanData) -> Option<SpanData> {
        if self.drop {
            return None;
        }
        if self.edits.is_empty() {
            return Some(span);
        }
        let mut dropped_events: SmallVec<[usize; 4]> = SmallVec::new();
        for edit in self.edits {
            match edit {
                SpanEdit::Rename(name) => span.name = Cow::Owned(name),
                SpanEdit::Set(target, kv) => {
                    if let Some(attributes) = attributes_of(&mut span, target) {
                        match attributes.iter_mut().find(|a| a.key == kv.key) {
                            Some(existing) => *existing = kv,
                            None => attributes.push(kv),
                        }
                    }
                }
                SpanEdit::Redact(target, key) => {
                    if let Some(attributes) = attributes_of(&mut span, target) {
                        for a in attributes.iter_mut().filter(|a| a.key.as_str() == key) {
                            a.value = Value::from(REDACTED);
                        }
                    }
                }
                SpanEdit::RenameAttribute(target, from, to) => {
                    if from == to {
                        continue;
                    }
                    if let Some(attributes) = attributes_of(&mut span, target) {
                        let to = Key::from(to);
                        attributes.retain(|a| a.key != to);
                        for a in attributes.iter_mut().filter(|a| a.key.as_str() == from) {
                            a.key = to.clone();
                        }
                    }
                }
                SpanEdit::Remove(target, key) => {
                    if let Some(attributes) = attributes_of(&mut span, target) {
                        attributes.retain(|a| a.key.as_str() != key);
                    }
                }
                SpanEdit::DropEvent(i) => dropped_events.push(i),
                SpanEdit::StatusMessage(message) => {
                    if let Status::Error { description } = &mut span.status {
                        *description = Cow::Owned(message);
                    }
                }
            }
        }
        if !dropped_events.is_empty() {
            dropped_events.sort_unstable();
            dropped_events.dedup();
            for i in dropped_events.into_iter().rev() {
                if i < span.events.events.len() {
                    span.events.events.remove(i);
                    span.events.dropped_count += 1;
                }
            }
        }
        Some(span)
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
            batch.on_end(span);
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
        if let Some(b) = &mut self.batch {
            b.set_resource(resource);
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
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{
        Event, Link, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    /// Only the sampler's own tag chooses a generation: an attribute of that name the service set itself (any
    /// value, even a tag copied from another process) chooses nothing, and every one of them is removed.
    #[test]
    fn only_the_samplers_tag_names_a_generation() {
        use crate::trace::{GENERATION_KEY, generation_tag};
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

    fn span(status: Status) -> SpanData {
        let event = |name: &'static str, kv: KeyValue| {
            Event::new(name, SystemTime::UNIX_EPOCH, vec![kv], 0)
        };
        let mut events = SpanEvents::default();
        events.events = vec![
            event("a", KeyValue::new("k", "1")),
            event("b", KeyValue::new("k", "2")),
            event("c", KeyValue::new("k", "3")),
        ];
        let mut links = SpanLinks::default();
        links.links = vec![Link::with_context(SpanContext::empty_context())];
        links.links[0].attributes = vec![KeyValue::new("peer.token", "t")];
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: "GET /x".into(),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes: vec![KeyValue::new("a", "1"), KeyValue::new("secret", "s")],
            dropped_attributes_count: 0,
            events,
            links,
            status,
            instrumentation_scope: InstrumentationScope::builder("t").build(),
        }
    }

    fn edits(list: Vec<SpanEdit>) -> SpanEdits {
        SpanEdits {
            drop: false,
            edits: list.into_iter().collect(),
        }
    }

    #[test]
    fn edits_apply_in_order_with_indexes_meaning_what_the_distro_saw() {
        let out = edits(vec![
            SpanEdit::DropEvent(0),
            SpanEdit::Set(Target::Event(1), KeyValue::new("k", "two")),
            SpanEdit::Redact(Target::Link(0), "peer.token".into()),
            SpanEdit::Redact(Target::Span, "secret".into()),
            SpanEdit::RenameAttribute(Target::Span, "a".into(), "a".into()),
            SpanEdit::RenameAttribute(Target::Span, "a".into(), "b".into()),
            SpanEdit::Set(Target::Event(9), KeyValue::new("ignored", "out of range")),
            SpanEdit::StatusMessage("[REDACTED]".into()),
        ])
        .apply(span(Status::error("token=x")))
        .unwrap();
        let names: Vec<&str> = out.events.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(names, ["b", "c"], "event 0 dropped after the other edits");
        assert_eq!(out.events.dropped_count, 1);
        assert_eq!(out.events.events[0].attributes[0].value.as_str(), "two");
        assert_eq!(out.links.links[0].attributes[0].value.as_str(), REDACTED);
        let attrs: Vec<(String, String)> = out
            .attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        assert_eq!(
            attrs,
            [("b".into(), "1".into()), ("secret".into(), REDACTED.into())],
            "renaming to itself keeps the attribute"
        );
        assert_eq!(out.status, Status::error("[REDACTED]"));
        // Only an error status has a message.
        let ok = edits(vec![SpanEdit::StatusMessage("x".into())])
            .apply(span(Status::Ok))
            .unwrap();
        assert_eq!(ok.status, Status::Ok);
        let dropped = SpanEdits {
            drop: true,
            edits: SmallVec::new(),
        };
        assert!(dropped.apply(span(Status::Unset)).is_none());
    }
}
