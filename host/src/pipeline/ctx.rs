//! What every signal's builder shares: the plan being built, the initialised distro, the fault counters and the
//! transports; the errors of building; the helpers that open a file output or name an unknown component.

use crate::distro::faults::Faults;
use crate::distro::registry::InitError;
use crate::export::file::JsonLines;
use crate::pipeline::plan::Plan;
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
    /// The initialised distro, whose start-up calls build its components.
    pub(crate) fn distro(&self) -> Result<&crate::distro::registry::Distro, String> {
        self.distro
            .as_ref()
            .ok_or_else(|| "distro not initialised".to_string())
    }
}

pub(crate) fn open_file(path: &std::path::Path) -> Result<JsonLines, String> {
    JsonLines::open(path).map_err(|e| format!("{}: {e}", crate::text::shown(path)))
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
