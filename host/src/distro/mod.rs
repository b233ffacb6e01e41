//! Finding, checking, probing-free loading and calling distros: the plugin files (inspected before they are loaded,
//! then loaded), the registry of every distro found, the watchdog and the worker that bound every call into distro
//! code, the fault counters, and the adapters that put a distro's components behind the SDK's traits (sampler, span
//! and log editors, exporters) with the host's views of spans and records. The only room that touches the FFI types:
//! the rest of the host calls distros through these typed adapters and [`registry::Distro`]'s methods.

pub(crate) mod editor;
pub(crate) mod exporter;
pub(crate) mod faults;
pub(crate) mod gate;
pub(crate) mod generation;
pub(crate) mod inspect;
pub(crate) mod log_editor;
pub(crate) mod plugin;
pub(crate) mod registry;
pub(crate) mod sampler;
pub(crate) mod startup;
pub(crate) mod view;
pub(crate) mod watchdog;
pub(crate) mod worker;
