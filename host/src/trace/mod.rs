//! The trace signal: adapters from distro components to the SDK's sampler, processor and exporter traits.

pub mod consistent;
pub(crate) mod exporter;
pub(crate) mod layer;
pub(crate) mod processor;
pub(crate) mod sampler;
pub(crate) mod view;

/// The attribute that carries a span's generation of the distro's settings — the one whose sampler decided it — to
/// its edits on the batch thread, so that the same generation edits it: set by the distro's sampler from the first
/// reload that rebuilds its sampler and processor, removed before the distro or any exporter sees the span (kept, as the
/// generation that edited it, with `OTEL_RUST_DISTRO_RELOAD_GENERATION_ATTRIBUTE`).
pub(crate) const GENERATION_KEY: &str = "ndotel.distro.generation";
