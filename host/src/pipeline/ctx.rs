//! What every signal's builder shares: the plan being built, the distro's handle, the fault counters and the
//! transports; the errors of building; the helpers that open a file output or name an unknown component.

use crate::distro::faults::Faults;
use crate::distro::registry::InitError;
use crate::export::file::JsonLines;
use crate::pipeline::plan::Plan;
use abi_stable::std_types::RResult;
use ndotel_api::ffi::{FfiDistroBox, FfiError};
use std::sync::Arc;

/// Why [`Pipeline::build`](crate::Pipeline::build) could not build the pipeline from a plan: the distro's `init`, or a component.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The distro's `init` failed.
    #[error(transparent)]
    Init(#[from] InitError),
    /// A component name matches neither a built-in nor the distro's.
    #[error("{setting}: unknown {kind} {name:?}; valid: {valid}")]
    UnknownComponent {
        /// The setting that named it.
        setting: &'static str,
        /// Sampler, span exporter, ...
        kind: &'static str,
        /// The name.
        name: String,
        /// The valid names.
        valid: String,
    },
    /// A component failed to build.
    #[error("cannot build {what}: {message}")]
    Component {
        /// Which component.
        what: String,
        /// Why.
        message: String,
    },
}

/// What every exporter builder needs.
pub(crate) struct Ctx<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) distro: Option<crate::distro::registry::Distro>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) transport: crate::export::otlp::Transport,
}

impl Ctx<'_> {
    /// Calls the initialised distro at start-up (`resource()`, a component constructor) under the init deadline:
    /// a distro that hangs there must not keep the application from starting.
    pub(crate) fn startup<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&FfiDistroBox) -> RResult<T, FfiError> + Send + 'static,
    ) -> Result<T, String> {
        let d = self
            .distro
            .as_ref()
            .ok_or_else(|| "distro not initialised".to_string())?;
        startup_call(d, what, f)
    }
}

pub(crate) fn open_file(path: &std::path::Path) -> Result<JsonLines, String> {
    JsonLines::open(path).map_err(|e| format!("{}: {e}", crate::text::shown(path)))
}

/// Runs a start-up call into the distro under its init deadline.
pub(crate) fn startup_call<T: Send + 'static>(
    d: &crate::distro::registry::Distro,
    what: &str,
    f: impl FnOnce(&FfiDistroBox) -> RResult<T, FfiError> + Send + 'static,
) -> Result<T, String> {
    let inner = d.inner.clone();
    crate::distro::worker::with_deadline("ndotel-startup", d.timeout, move || ffi(f(&inner)))
        .map_err(|e| {
            format!("{what} {e} (it hangs; OTEL_RUST_DISTRO_INIT_TIMEOUT sets the deadline of start-up calls)")
        })?
}

pub(crate) fn ffi<T>(r: RResult<T, FfiError>) -> Result<T, String> {
    r.into_result()
        .map_err(|e| crate::text::printable(&e.to_string()).into_owned())
}

pub(crate) fn unknown(
    setting: &'static str,
    kind: &'static str,
    name: &str,
    builtin: &[&str],
    distro: &[String],
) -> BuildError {
    let mut valid: Vec<String> = builtin.iter().map(|s| s.to_string()).collect();
    valid.extend(distro.iter().cloned());
    BuildError::UnknownComponent {
        setting,
        kind,
        name: name.to_string(),
        valid: valid.join(", "),
    }
}
