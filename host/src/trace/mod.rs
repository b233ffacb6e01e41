//! The trace signal: adapters from distro components to the SDK's sampler, processor and exporter traits.

pub mod consistent;
pub(crate) mod exporter;
pub(crate) mod layer;
pub(crate) mod processor;
pub(crate) mod sampler;
pub(crate) mod view;
