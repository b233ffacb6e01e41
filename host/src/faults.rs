//! Counting failures of distro components. A failing component is faulty, not fatal: the adapter uses a fallback
//! (sampler → parent-based always-on, processor → pass-through, exporter → drop the batch), prints one line the
//! first time, and counts every failure here so `ndotel check` can show it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
        }
    }
    fn fallback(self) -> &'static str {
        match self {
            Component::Sampler => "using the parent-based always-on decision",
            Component::SpanProcessor => "passing spans through unchanged",
            Component::SpanExporter => "dropping the batch",
            Component::MetricExporter => "dropping the collection",
        }
    }
    /// All components.
    pub const ALL: [Component; 4] = [
        Component::Sampler,
        Component::SpanProcessor,
        Component::SpanExporter,
        Component::MetricExporter,
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
    counters: [Counter; 4],
}

impl Faults {
    /// Counters for the pipeline of `distro`.
    pub fn new(distro: impl Into<String>) -> Self {
        Faults {
            distro: distro.into(),
            counters: Default::default(),
        }
    }

    /// Records one failure; prints a line for the first failure of each component.
    pub fn record(&self, component: Component, error: &dyn std::fmt::Display) {
        let c = &self.counters[component.index()];
        c.count.fetch_add(1, Ordering::Relaxed);
        if !c.logged.swap(true, Ordering::Relaxed) {
            eprintln!(
                "ndotel: {} of distro {} failed: {error}; {} (further failures are counted, see `ndotel check`)",
                component.name(),
                self.distro,
                component.fallback()
            );
        }
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
