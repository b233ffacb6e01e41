//! What a distro sees of a span (borrowed views over the host's span, read through the boundary) and how it
//! changes one ([`Edits`]). Nothing here copies a name or a value.

use crate::ffi::{FfiEditsMut, FfiLink, FfiSamplingParamsRef, FfiSpanRef, FfiTarget};
use crate::types::{
    Decision, KeyValueRef, ParentKind, SpanKind, StatusCode, ValueRef, find_attribute,
};
use abi_stable::std_types::RStr;
use std::fmt;

/// Nanoseconds since the Unix epoch.
pub type UnixNanos = u64;

/// A borrowed view of a finished span: everything the SDK recorded, including events, links, status, scope and
/// the resource.
#[repr(transparent)]
pub struct SpanView<'a>(FfiSpanRef<'a>);

impl<'a> SpanView<'a> {
    /// Views the host's span object (used by the host and the testing kit).
    #[doc(hidden)]
    pub fn from_ffi<'r>(span: &'r FfiSpanRef<'a>) -> &'r SpanView<'a> {
        // SAFETY: SpanView is a repr(transparent) wrapper around FfiSpanRef.
        unsafe { &*(span as *const FfiSpanRef<'a>).cast::<SpanView<'a>>() }
    }

    /// Views a slice of the host's span objects.
    #[doc(hidden)]
    pub fn slice_from_ffi<'r>(spans: &'r [FfiSpanRef<'a>]) -> &'r [SpanView<'a>] {
        // SAFETY: as above, element by element.
        unsafe { std::slice::from_raw_parts(spans.as_ptr().cast::<SpanView<'a>>(), spans.len()) }
    }

    /// The trace id (big-endian bytes).
    pub fn trace_id(&self) -> [u8; 16] {
        self.0.ids().trace_id
    }
    /// The span id.
    pub fn span_id(&self) -> [u8; 8] {
        self.0.ids().span_id
    }
    /// The parent span id (all zero for a root).
    pub fn parent_span_id(&self) -> [u8; 8] {
        self.0.ids().parent_span_id
    }
    /// Whether the parent came from another process.
    pub fn parent_is_remote(&self) -> bool {
        self.0.ids().flags & 2 != 0
    }
    /// Whether the span is sampled.
    pub fn sampled(&self) -> bool {
        self.0.ids().flags & 1 != 0
    }
    /// The span name.
    pub fn name(&self) -> &str {
        self.0.name().as_str()
    }
    /// The span kind.
    pub fn kind(&self) -> SpanKind {
        SpanKind::from_code_or_default(self.0.kind())
    }
    /// Start time.
    pub fn start_unix_nanos(&self) -> UnixNanos {
        self.0.start_unix_nanos()
    }
    /// End time.
    pub fn end_unix_nanos(&self) -> UnixNanos {
        self.0.end_unix_nanos()
    }
    /// The attributes.
    pub fn attributes(&self) -> &[KeyValueRef<'_>] {
        self.0.attributes().as_slice()
    }
    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<ValueRef<'_>> {
        find_attribute(self.attributes(), key)
    }
    /// The events, in the order they were added.
    pub fn events(&self) -> impl ExactSizeIterator<Item = Event<'_>> + '_ {
        self.0.events().as_slice().iter().map(|e| Event {
            name: e.name.as_str(),
            time_unix_nanos: e.time_unix_nanos,
            attributes: e.attributes.as_slice(),
        })
    }
    /// The links.
    pub fn links(&self) -> impl ExactSizeIterator<Item = Link<'_>> + '_ {
        self.0.links().as_slice().iter().map(Link::from_ffi)
    }
    /// The status code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_code_or_default(self.0.status_code())
    }
    /// The status description (empty unless the status is an error).
    pub fn status_message(&self) -> &str {
        self.0.status_message().as_str()
    }
    /// The instrumentation scope: name and version (empty when not set).
    pub fn scope(&self) -> (&str, &str) {
        (
            self.0.scope_name().as_str(),
            self.0.scope_version().as_str(),
        )
    }
    /// The resource attributes of the process (the same for every span).
    pub fn resource(&self) -> &[KeyValueRef<'_>] {
        self.0.resource().as_slice()
    }
    /// How many attributes, events and links the SDK dropped over its limits (since 1.1; zero under an older host).
    pub fn dropped_counts(&self) -> (u32, u32, u32) {
        let d = self.0.dropped_counts();
        (d.attributes, d.events, d.links)
    }
}

impl fmt::Debug for SpanView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanView")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .field("attributes", &self.attributes())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// A borrowed event of a span.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The event name (`exception` for recorded errors).
    pub name: &'a str,
    /// When it happened.
    pub time_unix_nanos: UnixNanos,
    /// Its attributes (`exception.message`, …).
    pub attributes: &'a [KeyValueRef<'a>],
}

impl<'a> Event<'a> {
    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<ValueRef<'a>> {
        find_attribute(self.attributes, key)
    }
}

/// A borrowed link of a span (or of a span about to start).
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    /// The linked trace.
    pub trace_id: [u8; 16],
    /// The linked span.
    pub span_id: [u8; 8],
    /// Whether the linked span was sampled.
    pub sampled: bool,
    /// Whether the linked span came from another process.
    pub is_remote: bool,
    /// The link's attributes.
    pub attributes: &'a [KeyValueRef<'a>],
}

impl<'a> Link<'a> {
    fn from_ffi(l: &'a FfiLink<'a>) -> Self {
        Link {
            trace_id: l.trace_id,
            span_id: l.span_id,
            sampled: l.flags & 1 != 0,
            is_remote: l.flags & 2 != 0,
            attributes: l.attributes.as_slice(),
        }
    }
}

/// What a sampler sees of a span about to start.
#[repr(transparent)]
pub struct SamplingParams<'a>(FfiSamplingParamsRef<'a>);

impl<'a> SamplingParams<'a> {
    /// Views the host's sampling parameters (used by the host and the testing kit).
    #[doc(hidden)]
    pub fn from_ffi<'r>(params: &'r FfiSamplingParamsRef<'a>) -> &'r SamplingParams<'a> {
        // SAFETY: SamplingParams is a repr(transparent) wrapper around FfiSamplingParamsRef.
        unsafe { &*(params as *const FfiSamplingParamsRef<'a>).cast::<SamplingParams<'a>>() }
    }

    /// The trace id (big-endian bytes).
    pub fn trace_id(&self) -> [u8; 16] {
        self.0.trace_id().0
    }
    /// Whether there is a parent, and where.
    pub fn parent(&self) -> ParentKind {
        ParentKind::from_code_or_default(self.0.parent_kind())
    }
    /// Whether the parent was sampled (false for roots).
    pub fn parent_sampled(&self) -> bool {
        self.0.parent_sampled()
    }
    /// What parent-based sampling decides: the parent's decision, or sampled for a root. Same as returning
    /// [`Decision::FollowParent`], spelled out for samplers that combine it with their own rules.
    pub fn parent_decision(&self) -> Decision {
        match (self.parent(), self.parent_sampled()) {
            (ParentKind::None, _) | (_, true) => Decision::RecordAndSample,
            _ => Decision::Drop,
        }
    }
    /// The span name.
    pub fn name(&self) -> &str {
        self.0.name().as_str()
    }
    /// The span kind.
    pub fn kind(&self) -> SpanKind {
        SpanKind::from_code_or_default(self.0.kind())
    }
    /// The attributes known at start.
    pub fn attributes(&self) -> &[KeyValueRef<'_>] {
        self.0.attributes().as_slice()
    }
    /// The value of attribute `key`, if present (the first of that name). Cheaper than looking through
    /// [`attributes`](Self::attributes) for a few keys: the host converts only the value asked for (since 1.7).
    pub fn attribute(&self, key: &str) -> Option<ValueRef<'_>> {
        self.0.attribute(key.into()).into_option()
    }
    /// The links known at start.
    pub fn links(&self) -> impl ExactSizeIterator<Item = Link<'_>> + '_ {
        self.0.links().as_slice().iter().map(Link::from_ffi)
    }
}

impl fmt::Debug for SamplingParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamplingParams")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .field("parent", &self.parent())
            .field("attributes", &self.attributes())
            .finish_non_exhaustive()
    }
}

/// The edits a span processor makes to one span; the host applies them after `on_end` returns, before any
/// exporter sees the span. Indexes are those of [`SpanView::events`] and [`SpanView::links`].
pub struct Edits<'a>(FfiEditsMut<'a>);

impl<'a> Edits<'a> {
    /// Wraps the host's edit sink (used by the host and the testing kit).
    #[doc(hidden)]
    pub fn from_ffi(edits: FfiEditsMut<'a>) -> Self {
        Edits(edits)
    }

    /// Drops the span: no exporter sees it.
    pub fn drop_span(&mut self) {
        self.0.drop_span();
    }
    /// Renames the span.
    pub fn rename(&mut self, name: &str) {
        self.0.rename_span(name.into());
    }
    /// Sets (adds or replaces) a span attribute.
    pub fn set<'v>(&mut self, key: &str, value: impl Into<ValueRef<'v>>) {
        self.0.set(FfiTarget::SPAN, key.into(), value.into());
    }
    /// Replaces the value of a span attribute by [`REDACTED`](crate::REDACTED).
    pub fn redact(&mut self, key: &str) {
        self.0.redact(FfiTarget::SPAN, key.into());
    }
    /// Renames a span attribute (keeping its value).
    pub fn rename_attribute(&mut self, from: &str, to: &str) {
        self.0
            .rename_attribute(FfiTarget::SPAN, from.into(), to.into());
    }
    /// Removes a span attribute.
    pub fn remove(&mut self, key: &str) {
        self.0.remove_attribute(FfiTarget::SPAN, key.into());
    }
    /// Sets an attribute of event `index`.
    pub fn set_event_attribute<'v>(
        &mut self,
        index: usize,
        key: &str,
        value: impl Into<ValueRef<'v>>,
    ) {
        self.0
            .set(FfiTarget::event(index), key.into(), value.into());
    }
    /// Redacts an attribute of event `index`.
    pub fn redact_event_attribute(&mut self, index: usize, key: &str) {
        self.0.redact(FfiTarget::event(index), key.into());
    }
    /// Renames an attribute of event `index`.
    pub fn rename_event_attribute(&mut self, index: usize, from: &str, to: &str) {
        self.0
            .rename_attribute(FfiTarget::event(index), from.into(), to.into());
    }
    /// Drops event `index`.
    pub fn drop_event(&mut self, index: usize) {
        self.0.drop_event(index as u32);
    }
    /// Sets an attribute of link `index`.
    pub fn set_link_attribute<'v>(
        &mut self,
        index: usize,
        key: &str,
        value: impl Into<ValueRef<'v>>,
    ) {
        self.0.set(FfiTarget::link(index), key.into(), value.into());
    }
    /// Redacts an attribute of link `index`.
    pub fn redact_link_attribute(&mut self, index: usize, key: &str) {
        self.0.redact(FfiTarget::link(index), key.into());
    }
    /// Renames an attribute of link `index`.
    pub fn rename_link_attribute(&mut self, index: usize, from: &str, to: &str) {
        self.0
            .rename_attribute(FfiTarget::link(index), from.into(), to.into());
    }
    /// Replaces the status description (the status code stays). Only an error status has a description: for
    /// another status this changes nothing.
    pub fn set_status_message(&mut self, message: &str) {
        self.0.set_status_message(message.into());
    }
    /// Replaces the status description by [`REDACTED`](crate::REDACTED).
    pub fn redact_status_message(&mut self) {
        self.0.set_status_message(RStr::from_str(crate::REDACTED));
    }
}

impl fmt::Debug for Edits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Edits").finish_non_exhaustive()
    }
}
