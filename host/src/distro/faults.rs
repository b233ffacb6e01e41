//! Counting failures of distro components. A failing component is faulty, not fatal: the adapter uses a fallback
//! (sampler → parent-based always-on, processor → drop the span unless the operator chose pass-through, exporter →
//! drop the batch), prints one line the first time, and counts every failure here so `ndotel check` can show it.
//!
//! A panic message from a sampler or processor may quote the span data it was looking at (Rust's own slicing panics
//! print the string), so for those components only the panic's location is printed, never its message.

use ndotel_api::ffi::{ErrorKind, FfiError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A call past this many times its deadline is stuck, and bypasses its component until it returns.
pub(crate) const STUCK_FACTOR: u32 = 5;

/// The components whose failures are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The distro's sampler.
    Sampler,
    /// The distro's span processor.
    SpanProcessor,
    /// A span exporter.
    SpanExporter,
    /// A metric exporter.
    MetricExporter,
    /// The distro's log record processor.
    LogProcessor,
}

impl Component {
    fn index(self) -> usize {
        self as usize
    }
    /// Human name.
    pub fn name(self) -> &'static str {
        match self {
            Component::Sampler => "sampler",
            Component::SpanProcessor => "span processor",
            Component::SpanExporter => "span exporter",
            Component::MetricExporter => "metric exporter",
            Component::LogProcessor => "log processor",
        }
    }
    fn fallback(self, processor_passes: bool) -> &'static str {
        match self {
            Component::Sampler => "using the parent-based always-on decision",
            Component::SpanProcessor if processor_passes => {
                "passing spans through unchanged (OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass)"
            }
            Component::SpanProcessor => {
                "dropping the span, which it may not have redacted (OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass exports it unchanged instead)"
            }
            Component::SpanExporter => "dropping the batch",
            Component::MetricExporter => "dropping the collection",
            Component::LogProcessor if processor_passes => {
                "passing log records through unchanged (OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass)"
            }
            Component::LogProcessor => {
                "dropping the log record, which it may not have redacted (OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR=pass exports it unchanged instead)"
            }
        }
    }
    /// All components.
    pub const ALL: [Component; 5] = [
        Component::Sampler,
        Component::SpanProcessor,
        Component::SpanExporter,
        Component::MetricExporter,
        Component::LogProcessor,
    ];
}

#[derive(Debug, Default)]
struct Counter {
    count: AtomicU64,
    logged: AtomicBool,
}

/// Failure counters of one pipeline.
#[derive(Debug, Default)]
pub struct Faults {
    distro: String,
    counters: [Counter; 5],
    processor_passes: bool,
    hung: AtomicU64,
    hang_logged: AtomicBool,
    gate: crate::distro::gate::Gate,
}

impl Faults {
    /// Counters for the pipeline of `distro`.
    pub fn new(distro: impl Into<String>) -> Self {
        Faults {
            distro: distro.into(),
            counters: Default::default(),
            processor_passes: false,
            hung: AtomicU64::new(0),
            hang_logged: AtomicBool::new(false),
            gate: Default::default(),
        }
    }

    /// Where the pipeline's calls on application threads take their places.
    pub(crate) fn gate(&self) -> &crate::distro::gate::Gate {
        &self.gate
    }

    /// Counters for a pipeline whose processor failures pass spans through (`OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR`).
    pub(crate) fn with_processor_passing(mut self, passes: bool) -> Self {
        self.processor_passes = passes;
        self
    }

    /// Whether a span the processor failed on is exported unchanged (otherwise it is dropped).
    pub(crate) fn processor_passes(&self) -> bool {
        self.processor_passes
    }

    /// Records a failed per-span call (sampler, processor): like [`Faults::record`], but a panic is reported by its
    /// location only — its message may quote the attribute values or log text the component was looking at.
    pub(crate) fn record_span_call(&self, component: Component, error: &FfiError) {
        match error.kind {
            ErrorKind::PANICKED => {
                let at = error
                    .message
                    .rfind(" (at ")
                    .map(|i| &error.message.as_str()[i + 1..])
                    .unwrap_or("(location unknown)");
                self.record(
                    component,
                    &format!(
                        "panicked {at}; its message is withheld because it may quote telemetry data"
                    ),
                );
            }
            _ => self.record(component, error),
        }
    }

    /// Records that the watchdog found a call of `component` on `thread` (for a span of `trace`) past its deadline:
    /// that span or record is dropped when the call returns; the component stays in service.
    pub(crate) fn record_overdue(
        &self,
        component: Component,
        thread: &str,
        trace: String,
        deadline: Duration,
    ) {
        if self.count_first(component) {
            eprintln!(
                "ndotel: {} of distro {} is slow: a call on thread {thread}{} ran past its deadline ({deadline:?}, \
                 OTEL_RUST_DISTRO_CALL_TIMEOUT); what it was called for is dropped, which it may not have \
                 redacted, and the component stays in service (further failures are counted, see `ndotel check`)",
                component.name(),
                self.distro,
                for_trace(&trace),
            );
        }
    }

    /// Records that the watchdog found a call of `component` stuck on `thread` (for a span of `trace`): the
    /// component is bypassed until the call returns.
    pub(crate) fn record_hang(
        &self,
        component: Component,
        thread: &str,
        trace: String,
        stuck_for: Duration,
        deadline: Duration,
    ) {
        self.hung.fetch_add(1, Ordering::Relaxed);
        if self.hang_logged.swap(true, Ordering::Relaxed) {
            return;
        }
        eprintln!(
            "ndotel: {} of distro {} is stuck: a call on thread {thread}{} has not returned after {stuck_for:?} \
             ({}× the deadline {deadline:?}, OTEL_RUST_DISTRO_CALL_TIMEOUT); it is bypassed until that call returns, \
             {} (the request on that thread stays stuck; every other request is served)",
            component.name(),
            self.distro,
            for_trace(&trace),
            STUCK_FACTOR,
            component.fallback(self.processor_passes)
        );
    }

    /// Records that a call of `component` found no room: every application thread allowed into distro code at once
    /// ([`crate::distro::gate::room`]) was in a call that did not return within `deadline`, so this one took the
    /// fallback instead of waiting (and holding one more of the application's threads).
    pub(crate) fn record_no_room(&self, component: Component, room: usize, deadline: Duration) {
        if self.count_first(component) {
            eprintln!(
                "ndotel: {} of distro {} was not called: the {room} application thread(s) allowed into distro code \
                 at once are all in calls that did not return within {deadline:?} (OTEL_RUST_DISTRO_CALL_TIMEOUT); \
                 {} so that this thread keeps serving (further failures are counted, see `ndotel check`)",
                component.name(),
                self.distro,
                component.fallback(self.processor_passes)
            );
        }
    }

    /// How many calls the watchdog found stuck.
    pub fn hung(&self) -> u64 {
        self.hung.load(Ordering::Relaxed)
    }

    /// Records one failure; prints a line for the first failure of each component.
    pub fn record(&self, component: Component, error: &dyn std::fmt::Display) {
        if self.count_first(component) {
            eprintln!(
                "ndotel: {} of distro {} failed: {}; {} (further failures are counted, see `ndotel check`)",
                component.name(),
                self.distro,
                crate::text::printable(&error.to_string()),
                component.fallback(self.processor_passes)
            );
        }
    }

    /// Counts one failure of `component`; whether it is the first, the one that is printed.
    fn count_first(&self, component: Component) -> bool {
        let c = &self.counters[component.index()];
        c.count.fetch_add(1, Ordering::Relaxed);
        !c.logged.swap(true, Ordering::Relaxed)
    }

    /// How many times `component` failed.
    pub fn count(&self, component: Component) -> u64 {
        self.counters[component.index()]
            .count
            .load(Ordering::Relaxed)
    }

    /// Total failures.
    pub fn total(&self) -> u64 {
        Component::ALL.iter().map(|c| self.count(*c)).sum()
    }
}

/// ` for a span of trace T`, or nothing when the call was for no trace.
fn for_trace(trace: &str) -> String {
    if trace.is_empty() {
        String::new()
    } else {
        format!(" for a span of trace {trace}")
    }
}
