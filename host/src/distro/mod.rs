//! Finding, checking, probing-free loading and calling distros: the plugin files (inspected before they are loaded,
//! then loaded), the registry of every distro found, the watchdog and the worker that bound every call into distro
//! code, and the fault counters. The only room besides the signals' adapters that touches the FFI types.

pub(crate) mod faults;
pub(crate) mod gate;
pub(crate) mod inspect;
pub(crate) mod plugin;
pub(crate) mod registry;
pub(crate) mod watchdog;
pub(crate) mod worker;
