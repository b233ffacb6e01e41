//! Deciding what to build: the configuration file and `distro.toml`, the registry, the selected distro (probed in a
//! child first when it is a plugin) and the settings.

use crate::distro::plugin::LoadError;
use crate::distro::registry::{DistroInfo, Registry, SelectError};
use crate::env::Env;
use crate::pipeline::probe;
use crate::settings::Settings;
use crate::settings::boot::Boot;
use crate::settings::config::{ConfigError, ConfigFile};
use std::time::Duration;

/// Why [`Plan::new`] could not decide what to build: the file, the selection, or loading the selected plugin.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `distro.toml` or an environment variable is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The distro could not be chosen.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The selected distro's plugin could not be loaded (or its probe failed).
    #[error(transparent)]
    Plugin(#[from] LoadError),
}

/// Everything found and decided before building: the file, the registry, the selected distro and its settings.
#[derive(Debug)]
pub struct Plan {
    /// The `distro.toml` in use.
    pub config: Option<ConfigFile>,
    /// Every distro found.
    pub registry: Registry,
    /// The selected distro.
    pub distro: DistroInfo,
    /// The effective settings.
    pub settings: Settings,
    /// The OpenTelemetry configuration file (`OTEL_CONFIG_FILE`), when one is set.
    pub declared: Option<crate::settings::declared::Declared>,
}

impl Plan {
    /// Finds the file, discovers distros, selects one and resolves the settings.
    ///
    /// ```
    /// let env = ndotel::Env::from_pairs([("OTEL_RUST_DISTRO", "sdk"), ("OTEL_TRACES_EXPORTER", "none")], "/");
    /// let plan = ndotel::Plan::new(&env).unwrap();
    /// assert_eq!(plan.distro.name, "sdk");
    /// assert_eq!(plan.settings.traces_exporter.value, ["none"]);
    /// let pipeline = ndotel::Pipeline::build(&plan, &env).unwrap();
    /// assert!(pipeline.tracer_provider.is_some());
    /// ```
    pub fn new(env: &Env) -> Result<Plan, PlanError> {
        Plan::from_boot(env, Boot::resolve(env))
    }

    /// [`Plan::new`] from the boot settings resolved from `process_env`.
    pub(crate) fn from_boot(process_env: &Env, mut boot: Boot) -> Result<Plan, PlanError> {
        if let Some(e) = boot.error.take() {
            return Err(e.into());
        }
        // The configuration file, when set, replaces the standard variables and amends distro.toml.
        let mut notes = std::mem::take(&mut boot.notes);
        let (env, config, declared) = (&boot.env, boot.config.as_ref(), boot.declared.as_ref());
        let probe = Probe {
            enabled: boot.probe.value,
            init_timeout: boot.init_timeout.value,
        };
        // A plugin that failed to load is reported (`Plan::warnings`), never fatal by itself, fail-fast or not: only
        // the selected distro decides whether the service starts, or anyone able to drop a file into a plugin
        // directory could stop it.
        let mut registry = Registry::discover(env, config);
        // Only the selected distro's plugin is loaded; every other plugin was only inspected. Plugins built before
        // ndotel-api 1.2 name their distros only once loaded: they are loaded when the name is found nowhere else.
        let name = match registry.select(env, config) {
            Err(SelectError::Unknown { name, .. }) if !registry.legacy_plugins().is_empty() => {
                // Loading them runs their code: probe that first, like any selected plugin.
                let legacy = registry.legacy_plugins();
                let paths: Vec<String> =
                    legacy.iter().map(|p| crate::text::shown(&p.path)).collect();
                probe_first(
                    probe,
                    process_env,
                    &name,
                    &legacy[0].path,
                    &format!(
                        "looking for distro {name} among the plugins built before ndotel-api 1.2 ({})",
                        paths.join(", ")
                    ),
                )?;
                registry.load_legacy();
                registry.select(env, config)?.name.clone()
            }
            other => other?.name.clone(),
        };
        // A plugin distro is first loaded and initialised in a probe process, so that one which crashes or
        // aborts never takes this process down (OTEL_RUST_DISTRO_PROBE=false skips it).
        if let Some(path) = registry
            .distros()
            .iter()
            .find(|d| d.name == name && !d.is_loaded())
            .and_then(|d| d.origin.path())
        {
            probe_first(probe, process_env, &name, path, &format!("distro {name}"))?;
        }
        registry.load_selected(&name)?;
        let distro = registry.select(env, config)?.clone();
        let mut settings = Settings::resolve_boot(&boot, distro.offer())?;
        if let Some(d) = declared {
            // opentelemetry-otlp reads these from the process environment itself, whether the file references
            // them (for another exporter) or not.
            let read_itself = |v: &str| {
                v.starts_with("OTEL_EXPORTER_OTLP_")
                    && ["HEADERS", "COMPRESSION", "INSECURE"]
                        .iter()
                        .any(|s| v.ends_with(s))
            };
            let mut read_anyway: Vec<String> = process_env
                .vars()
                .filter(|(k, v)| read_itself(k) && !v.trim().is_empty())
                .map(|(k, _)| k.clone())
                .collect();
            read_anyway.sort();
            let ignored: Vec<String> = d
                .ignored_vars(process_env)
                .into_iter()
                .filter(|v| !read_itself(v))
                .collect();
            if !read_anyway.is_empty() {
                notes.push(format!(
                    "{} {} set: opentelemetry-otlp, which exports OTLP metrics (and spans and logs with \
                     OTEL_RUST_OTLP_ENCODER=opentelemetry-otlp), reads {} from the process environment itself, \
                     whatever {} says; unset {}",
                    read_anyway.join(", "),
                    if read_anyway.len() == 1 { "is" } else { "are" },
                    if read_anyway.len() == 1 { "it" } else { "them" },
                    crate::settings::declared::CONFIG_FILE_VAR,
                    if read_anyway.len() == 1 { "it" } else { "them" },
                ));
            }
            if !ignored.is_empty() {
                notes.push(format!(
                    "{} {} set but {} no effect: {} names a configuration file, and only the variables it \
                     references apply",
                    ignored.join(", "),
                    if ignored.len() == 1 { "is" } else { "are" },
                    if ignored.len() == 1 { "has" } else { "have" },
                    crate::settings::declared::CONFIG_FILE_VAR,
                ));
            }
            settings.declared = Some(crate::text::shown(&d.path));
            let mut warnings = d.warnings().to_vec();
            warnings.append(&mut notes);
            warnings.append(&mut settings.warnings);
            settings.warnings = warnings;
        }
        let (_, by) = registry.selection(env, config);
        if by == crate::distro::registry::NONE_SELECTED {
            let names: Vec<&str> = registry
                .selectable()
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            settings.warnings.push(format!(
                "{} distros are registered ({}) and none is selected: running the built-in `sdk` distro; select one \
                 with OTEL_RUST_DISTRO or `default` in distro.toml",
                names.len(),
                names.join(", ")
            ));
        }
        Ok(Plan {
            config: boot.config,
            registry,
            distro,
            settings,
            declared: boot.declared,
        })
    }
}

impl Plan {
    /// The environment the plan's settings were resolved from: `env` itself, or with a configuration file, `env`
    /// as the file replaces it ([`crate::settings::declared::Declared`]).
    pub fn environment(&self, env: &Env) -> Env {
        match &self.declared {
            Some(d) => d.environment(env),
            None => env.clone(),
        }
    }

    /// What is worth a warning before anything is built: plugins skipped, then the registry's and the settings'
    /// warnings.
    pub fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.registry
            .failures()
            .iter()
            .map(|f| format!("skipped plugin: {f}"))
            .chain(self.registry.warnings().iter().cloned())
            .chain(self.settings.warnings.iter().cloned())
    }

    /// [`Plan::warnings`] without those about unknown names ([`crate::Settings::unknown`]): what a tool that
    /// treats an unknown name as an error (`ndotel check`, `config`, `run`) still reports as a warning.
    pub fn warnings_besides_unknown(&self) -> impl Iterator<Item = String> + '_ {
        self.warnings().filter(|w| {
            !self
                .settings
                .unknown
                .iter()
                .any(|u| w.starts_with(u.as_str()))
        })
    }
}

/// Whether and how long a probe child is given (the boot settings `OTEL_RUST_DISTRO_PROBE` and
/// `OTEL_RUST_DISTRO_INIT_TIMEOUT`).
#[derive(Debug, Clone, Copy)]
struct Probe {
    enabled: bool,
    init_timeout: Duration,
}

/// Loads and initialises distro `name` in a probe child before this process loads `path`; the refusal says
/// `what` was being loaded. Skipped inside the probe child itself and with `OTEL_RUST_DISTRO_PROBE=false`.
/// The child gets the process's own environment (`process_env`), not the one a configuration file adjusted: it
/// reads the file itself, with the same variables, and so substitutes exactly as this process did.
fn probe_first(
    probe: Probe,
    process_env: &Env,
    name: &str,
    path: &std::path::Path,
    what: &str,
) -> Result<(), PlanError> {
    let skip = probe::in_probe() || !probe.enabled;
    if skip {
        return Ok(());
    }
    // Keeps the probe child's constructor linked into every binary that selects a plugin distro.
    std::hint::black_box(&PROBE_HOOK);
    let deadline = probe.init_timeout + Duration::from_secs(10);
    probe::probe(process_env, name, deadline).map_err(|reason| {
        PlanError::Plugin(LoadError::Refused {
            path: path.to_path_buf(),
            reason: format!("{what}: {reason}"),
        })
    })
}

/// Probes distro `name` of the plugin at `path` in a child, as start-up does (for a reload of its settings: the
/// child reads the files as they are now).
pub(crate) fn probe_for_reload(
    env: &Env,
    name: &str,
    path: &std::path::Path,
) -> Result<(), String> {
    // A reload reads the environment again: its start-up deadline and probe switch are the environment's now.
    let probe = Probe {
        enabled: crate::settings::probe_enabled(env),
        init_timeout: crate::settings::init_timeout(env),
    };
    probe_first(
        probe,
        env,
        name,
        path,
        &format!("distro {name} with its new settings"),
    )
    .map_err(|e| e.to_string())
}

/// Registered in `.init_array`, so it runs in every process that links this library, before `main`.
#[used]
#[unsafe(link_section = ".init_array")]
static PROBE_HOOK: extern "C" fn() = probe_hook;

extern "C" fn probe_hook() {
    if std::env::var_os(probe::PROBE_VAR).is_none() {
        return;
    }
    if !probe::verified(std::env::var(probe::KEY_VAR).ok().as_deref()) {
        eprintln!(
            "ndotel: {} is set in this process's environment, but this process was not started as a \
             probe by ndotel; ignored (remove it from the service's environment)",
            probe::PROBE_VAR
        );
        return;
    }
    probe::PROBING.store(true, std::sync::atomic::Ordering::Relaxed);
    crate::child::become_reaper();
    let deadline = std::env::var(probe::DEADLINE_VAR)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_millis);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("ndotel-probe".into())
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(run_probe));
        });
    let code = match spawned.map(|_| rx.recv_timeout(deadline)) {
        Ok(Ok(Ok(Ok(())))) => 0,
        Ok(Ok(Ok(Err(message)))) => {
            eprintln!("{message}");
            3
        }
        Ok(Ok(Err(_))) => 4,
        Ok(Err(_)) => {
            eprintln!(
                "loading or initialising it did not finish within {deadline:?} in the probe process"
            );
            5
        }
        Err(e) => {
            eprintln!("cannot start the probe thread: {e}");
            6
        }
    };
    // Nothing the plugin started outlives the probe, not even a daemon that left the process group.
    crate::child::kill_descendants();
    // SAFETY: ends the probe child without running `main` or any exit handler of the application.
    unsafe { libc::_exit(code) }
}

/// In the probe child: what the application would do with the selected distro, up to its `init`.
fn run_probe() -> Result<(), String> {
    let env = Env::from_process();
    let plan = Plan::new(&env).map_err(|e| e.to_string())?;
    let config = plan.config.as_ref();
    plan.distro.init(config, &env).map_err(|e| e.to_string())?;
    Ok(())
}
