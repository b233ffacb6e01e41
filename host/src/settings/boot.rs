//! The boot stage of the settings: what is needed before a distro is chosen, resolved once.

use super::config::{ConfigError, ConfigFile, Fallback};
use super::declared::Declared;
use super::{Setting, fail_fast, fallback, init_timeout_setting, plugin_dirs, probe_setting};
use crate::env::Env;
use std::path::PathBuf;
use std::time::Duration;

/// What is needed before a distro is chosen, resolved once from the process environment: the configuration file
/// and the environment it makes, `distro.toml` (as the file amends it), the distro asked for, the plugin
/// directories, the deadline of start-up calls, the probe, and what happens when the distro cannot be used. The
/// plan is made from it and the settings table takes these entries from it; `init()`'s failure path decides from
/// the same values, without reading a file again.
#[derive(Debug)]
pub(crate) struct Boot {
    /// The environment the settings resolve from: the process's, or the one the configuration file makes.
    pub(crate) env: Env,
    /// The configuration file (`OTEL_CONFIG_FILE`), when one is set and could be read.
    pub(crate) declared: Option<Declared>,
    /// `distro.toml` (amended by the configuration file), when there is one and it could be read.
    pub(crate) config: Option<ConfigFile>,
    /// What amending `distro.toml` with the configuration file noted.
    pub(crate) notes: Vec<String>,
    /// The first file that could not be read; what follows it was resolved without that file.
    pub(crate) error: Option<ConfigError>,
    /// The distro asked for: `OTEL_RUST_DISTRO`, else `default` in `distro.toml`.
    pub(crate) wanted: Option<String>,
    pub(crate) plugin_dirs: Setting<Vec<PathBuf>>,
    pub(crate) init_timeout: Setting<Duration>,
    pub(crate) probe: Setting<bool>,
    pub(crate) fail_fast: Setting<bool>,
    pub(crate) fallback: Setting<Fallback>,
    /// Invalid values among these (each also a warning of the settings).
    pub(crate) warnings: Vec<String>,
}

impl Boot {
    /// Reads the configuration file and `distro.toml` once and resolves the boot settings from them and `env`. A
    /// file that cannot be read is kept as [`Boot::error`], and the rest resolved without it.
    pub(crate) fn resolve(process_env: &Env) -> Boot {
        let mut error = None;
        let declared = Declared::from_env(process_env).unwrap_or_else(|e| {
            error.get_or_insert(e);
            None
        });
        let env = match &declared {
            Some(d) => d.environment(process_env),
            None => process_env.clone(),
        };
        let config = ConfigFile::discover(&env).unwrap_or_else(|e| {
            error.get_or_insert(e);
            None
        });
        let mut notes = Vec::new();
        let config = match &declared {
            Some(d) => d.amend(config, &mut notes),
            None => config,
        };
        Boot {
            declared,
            notes,
            error,
            ..Boot::of(env, config)
        }
    }

    /// The boot settings of `env` and `config` as given: no file is read.
    pub(crate) fn of(env: Env, config: Option<ConfigFile>) -> Boot {
        let mut warnings = Vec::new();
        let wanted = env
            .get("OTEL_RUST_DISTRO")
            .map(str::to_string)
            .or_else(|| config.as_ref().and_then(|c| c.config.default.clone()));
        Boot {
            plugin_dirs: plugin_dirs(&env, config.as_ref()),
            init_timeout: init_timeout_setting(&env, &mut warnings),
            probe: probe_setting(&env, &mut warnings),
            fail_fast: fail_fast(&env, config.as_ref(), &mut warnings),
            fallback: fallback(&env, config.as_ref(), &mut warnings),
            wanted,
            warnings,
            env,
            declared: None,
            config,
            notes: Vec::new(),
            error: None,
        }
    }
}
