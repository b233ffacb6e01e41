//! The trace signal: the SDK span processor that hands each batch to the distro's edits (its generation's) and then
//! to the exporters, the `tracing` layer and the built-in `file` exporter.

pub(crate) mod exporter;
pub(crate) mod layer;
pub(crate) mod processor;
pub(crate) mod queue;
