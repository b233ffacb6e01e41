//! The distro's span processor behind its watchdog: the editor that hands spans to the distro across the FFI, a
//! chunk per call, and applies the edits it answers with. Shared by the span pipeline (on the batch thread) and the
//! metric series redaction.

use super::faults::{Component, Faults};
use super::view::{HostSpan, to_otel_value, with_scratch};
use super::watchdog::Watched;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr};
use ndotel_api::ffi::{
    FfiEdits, FfiEdits_TO, FfiEditsMut, FfiError, FfiSpan_TO, FfiSpanProcessorBox, FfiSpanRef,
    FfiTarget,
};
use ndotel_api::{REDACTED, ValueRef};
use opentelemetry::trace::Status;
use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A distro's span processor, as built (opaque outside this room).
pub(crate) type SpanProcessorBox = FfiSpanProcessorBox;

/// How many spans one call into the distro's processor edits on the batch thread (a plugin built before API 1.5
/// is called once per span): `OTEL_RUST_DISTRO_CALL_TIMEOUT` bounds one such call.
pub(crate) const EDIT_CHUNK: usize = 64;

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

    /// The generation of the distro's settings it was built from (0 at start-up).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Spans per call into the distro.
    pub(crate) fn chunk(&self) -> usize {
        self.chunk
    }

    /// Whether a span its processor failed on passes unedited (`OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass`).
    pub(crate) fn passes(&self) -> bool {
        self.faults.processor_passes()
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

    /// What a span the processor failed on becomes: dropped (`false`), or kept unchanged when the operator chose
    /// pass-through.
    pub(crate) fn on_failure(&self) -> bool {
        self.faults.processor_passes()
    }

    /// Applies the distro's edits to one span (a new metric series); `None` when the span is dropped.
    pub(crate) fn edit(&self, mut span: SpanData, resource: &[KeyValue]) -> Option<SpanData> {
        let keep = self.edit_chunk(
            std::slice::from_mut(&mut span),
            resource,
            &Progress::default(),
        );
        keep[0].then_some(span)
    }

    /// Applies the distro's edits to a batch on the batch thread, [`EDIT_CHUNK`] spans per call into the plugin,
    /// handing each chunk's result to `progress` (the spans dropped — by the distro, or failed closed — are left
    /// out). Stops at the next chunk once the batch thread has abandoned the batch (it gave up on a stuck call).
    ///
    /// Spans are edited where they lie in `batch` and moved once, one by one, into `progress`: a span is hundreds
    /// of bytes, and moving a chunk or a batch of them whole costs a copy of it all.
    pub(crate) fn edit_batch(
        &self,
        batch: Vec<SpanData>,
        resource: &[KeyValue],
        progress: &Progress,
    ) {
        let mut spans = batch.into_iter();
        loop {
            let n = spans.len().min(self.chunk);
            if n == 0 || progress.abandoned() {
                return;
            }
            let keep = self.edit_chunk(&mut spans.as_mut_slice()[..n], resource, progress);
            let Ok(mut p) = progress.0.lock() else { return };
            if p.abandoned {
                return;
            }
            p.done += n;
            p.out.reserve(n);
            for (span, keep) in spans.by_ref().take(n).zip(keep) {
                if keep {
                    p.out.push(span);
                }
            }
        }
    }

    /// Edits `chunk` in place in one call into the plugin; whether each span is kept (`false`: dropped by the
    /// distro, or failed closed).
    fn edit_chunk(
        &self,
        chunk: &mut [SpanData],
        resource: &[KeyValue],
        progress: &Progress,
    ) -> SmallVec<[bool; EDIT_CHUNK]> {
        if self.watched.bypassed() {
            return chunk.iter().map(|_| self.on_failure()).collect();
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
            let mut keep: SmallVec<[bool; EDIT_CHUNK]> = chunk.iter().map(|_| false).collect();
            if chunk.len() > 1 {
                for (span, keep) in chunk.iter_mut().zip(keep.iter_mut()) {
                    if progress.abandoned() {
                        break;
                    }
                    *keep = self.edit_chunk(std::slice::from_mut(span), resource, progress)[0];
                }
            }
            return keep;
        }
        if let RResult::RErr(e) = result.value {
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.faults.record_span_call(Component::SpanProcessor, &e);
            return chunk.iter().map(|_| self.on_failure()).collect();
        }
        chunk
            .iter_mut()
            .zip(edits)
            .zip(failed)
            .map(|((span, edits), failed)| match failed {
                ROption::RSome(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    self.faults.record_span_call(Component::SpanProcessor, &e);
                    self.on_failure()
                }
                ROption::RNone => edits.apply(span),
            })
            .collect()
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
    pub(crate) fn take(&self) -> (usize, Vec<SpanData>) {
        match self.0.lock() {
            Ok(mut p) => {
                p.abandoned = true;
                (p.done, std::mem::take(&mut p.out))
            }
            Err(_) => (usize::MAX, Vec::new()),
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

/// A key as the distro named it, short ones kept inline: setting an attribute the span has (the usual edit, a
/// redacted or stripped value) allocates no key, and frees none on the thread that drops the span.
type KeyBytes = SmallVec<[u8; 48]>;

/// One recorded edit, with owned values (the span is borrowed while the distro runs).
#[derive(Debug)]
enum SpanEdit {
    Rename(String),
    Set(Target, KeyBytes, Value),
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
        self.edits.push(SpanEdit::Rename(name.as_str().to_owned()));
    }
    fn set(&mut self, target: FfiTarget, key: RStr<'_>, value: ValueRef<'_>) {
        // A value kind this host does not know (a newer plugin) cannot be represented: the edit is skipped.
        if let Some(value) = to_otel_value(value) {
            let key = KeyBytes::from_slice(key.as_str().as_bytes());
            self.edits.push(SpanEdit::Set(target.into(), key, value));
        }
    }
    fn redact(&mut self, target: FfiTarget, key: RStr<'_>) {
        self.edits
            .push(SpanEdit::Redact(target.into(), key.as_str().to_owned()));
    }
    fn rename_attribute(&mut self, target: FfiTarget, from: RStr<'_>, to: RStr<'_>) {
        self.edits.push(SpanEdit::RenameAttribute(
            target.into(),
            from.as_str().to_owned(),
            to.as_str().to_owned(),
        ));
    }
    fn remove_attribute(&mut self, target: FfiTarget, key: RStr<'_>) {
        self.edits
            .push(SpanEdit::Remove(target.into(), key.as_str().to_owned()));
    }
    fn drop_event(&mut self, index: u32) {
        self.edits.push(SpanEdit::DropEvent(index as usize));
    }
    fn set_status_message(&mut self, message: RStr<'_>) {
        self.edits
            .push(SpanEdit::StatusMessage(message.as_str().to_owned()));
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
    /// Applies the edits in order to `span`; `false` when the span is dropped. Event drops apply last, so every
    /// edit's index means the event the distro saw.
    fn apply(self, span: &mut SpanData) -> bool {
        if self.drop {
            return false;
        }
        if self.edits.is_empty() {
            return true;
        }
        let mut dropped_events: SmallVec<[usize; 4]> = SmallVec::new();
        for edit in self.edits {
            match edit {
                SpanEdit::Rename(name) => span.name = Cow::Owned(name),
                SpanEdit::Set(target, key, value) => {
                    if let Some(attributes) = attributes_of(span, target) {
                        match attributes
                            .iter_mut()
                            .find(|a| a.key.as_str().as_bytes() == key.as_slice())
                        {
                            Some(existing) => existing.value = value,
                            // The bytes are a `str`'s: the conversion cannot fail.
                            None => {
                                if let Ok(key) = String::from_utf8(key.into_vec()) {
                                    attributes.push(KeyValue::new(key, value));
                                }
                            }
                        }
                    }
                }
                SpanEdit::Redact(target, key) => {
                    if let Some(attributes) = attributes_of(span, target) {
                        for a in attributes.iter_mut().filter(|a| a.key.as_str() == key) {
                            a.value = Value::from(REDACTED);
                        }
                    }
                }
                SpanEdit::RenameAttribute(target, from, to) => {
                    if from == to {
                        continue;
                    }
                    if let Some(attributes) = attributes_of(span, target) {
                        let to = Key::from(to);
                        attributes.retain(|a| a.key != to);
                        for a in attributes.iter_mut().filter(|a| a.key.as_str() == from) {
                            a.key = to.clone();
                        }
                    }
                }
                SpanEdit::Remove(target, key) => {
                    if let Some(attributes) = attributes_of(span, target) {
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
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{
        Event, Link, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    /// A span with three events, links and attributes to edit.
    pub(crate) fn span(status: Status) -> SpanData {
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

    /// A key longer than [`KeyBytes`] keeps inline.
    const LONG: &str = "an.attribute.key.longer.than.forty.eight.bytes.kept.on.the.heap";

    fn set(target: Target, key: &str, value: &'static str) -> SpanEdit {
        SpanEdit::Set(
            target,
            KeyBytes::from_slice(key.as_bytes()),
            Value::from(value),
        )
    }

    #[test]
    fn edits_apply_in_order_with_indexes_meaning_what_the_distro_saw() {
        let mut out = span(Status::error("token=x"));
        let kept = edits(vec![
            SpanEdit::DropEvent(0),
            set(Target::Event(1), "k", "two"),
            SpanEdit::Redact(Target::Link(0), "peer.token".into()),
            SpanEdit::Redact(Target::Span, "secret".into()),
            SpanEdit::RenameAttribute(Target::Span, "a".into(), "a".into()),
            SpanEdit::RenameAttribute(Target::Span, "a".into(), "b".into()),
            set(Target::Event(9), "ignored", "out of range"),
            // A key too long to be kept inline, new to the span: appended.
            set(Target::Span, LONG, "appended"),
            set(Target::Span, "b", "set again"),
            SpanEdit::StatusMessage("[REDACTED]".into()),
        ])
        .apply(&mut out);
        assert!(kept);
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
            [
                ("b".into(), "set again".into()),
                ("secret".into(), REDACTED.into()),
                (LONG.into(), "appended".into())
            ],
            "renaming to itself keeps the attribute; setting one the span has replaces its value in place"
        );
        assert_eq!(out.status, Status::error("[REDACTED]"));
        // Only an error status has a message.
        let mut ok = span(Status::Ok);
        assert!(edits(vec![SpanEdit::StatusMessage("x".into())]).apply(&mut ok));
        assert_eq!(ok.status, Status::Ok);
        let dropped = SpanEdits {
            drop: true,
            edits: SmallVec::new(),
        };
        assert!(!dropped.apply(&mut span(Status::Unset)));
    }
}
