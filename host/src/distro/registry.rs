//! The registry: every distro found — compiled in (inventory), named in `[opentelemetry_distro]`, or dropped into a
//! plugin directory — with where it came from, every plugin that failed to load and why, and the selection rules.

use crate::components::Components;
use crate::distro::plugin::{LoadError, Plugin};
use crate::env::Env;
use crate::settings::config::ConfigFile;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec, Tuple2};
use ndotel_api::ffi::{
    DistroDescriptorRef, FfiDistroBox, FfiInitArgs, FfiInitArgs_TO, StaticDistro,
};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of the built-in distro: the plain SDK configured by the standard environment.
pub const SDK_DISTRO: &str = "sdk";

/// Where a distro came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// ndotel's own plain-SDK distro.
    Builtin,
    /// Linked into this binary and registered with `inventory`.
    Static,
    /// Loaded from a plugin file.
    Plugin {
        /// The `.so` file.
        path: PathBuf,
    },
}

impl Origin {
    /// `builtin`, `static` or `plugin`.
    pub fn kind(&self) -> &'static str {
        match self {
            Origin::Builtin => "builtin",
            Origin::Static => "static",
            Origin::Plugin { .. } => "plugin",
        }
    }
    /// The plugin file, for plugins.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Origin::Plugin { path } => Some(path),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Plugin { path } => write!(f, "plugin {}", crate::text::shown(path)),
            other => f.write_str(other.kind()),
        }
    }
}

/// The components a loaded or inspected distro's descriptor names.
fn components_of(d: DistroDescriptorRef) -> Components {
    let names = |v: abi_stable::std_types::RSlice<'static, RStr<'static>>| {
        v.iter().map(|s| s.to_string()).collect()
    };
    Components {
        samplers: names(d.samplers()),
        span_processor: d.span_processor(),
        log_processor: d.log_processor().unwrap_or(false),
        span_exporters: names(d.span_exporters()),
        metric_exporters: names(d.metric_exporters()),
    }
}

/// One distro of the registry.
#[derive(Debug, Clone)]
pub struct DistroInfo {
    /// The selectable name.
    pub name: String,
    /// The distro's version.
    pub version: String,
    /// One line of description.
    pub description: String,
    /// The `ndotel-api` version it was built with.
    pub api_version: String,
    /// Where it came from.
    pub origin: Origin,
    /// What it offers.
    pub components: Components,
    descriptor: Option<Descriptor>,
    /// The plugin holding it, while it is only inspected (not loaded).
    /// Shared by every distro of the plugin: its metadata is held once, not once per distro.
    unloaded: Option<std::sync::Arc<Plugin>>,
}

/// A distro's descriptor (abi_stable's prefix reference has no `Debug`).
#[derive(Clone, Copy)]
struct Descriptor(DistroDescriptorRef);

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Descriptor").field(&self.0.name()).finish()
    }
}

/// The arguments of a distro's `init`, as the plugin reads them.
struct InitArgs {
    config_toml: String,
    base_dir: String,
    env: Vec<(String, String)>,
    /// The key path `init`'s error is about, as the plugin said (since 1.7).
    error_at: std::cell::RefCell<Option<Vec<String>>>,
}

impl FfiInitArgs for InitArgs {
    fn config_toml(&self) -> RStr<'_> {
        self.config_toml.as_str().into()
    }
    fn base_dir(&self) -> RStr<'_> {
        self.base_dir.as_str().into()
    }
    fn env(&self) -> ROption<RVec<Tuple2<RString, RString>>> {
        ROption::RSome(
            self.env
                .iter()
                .map(|(k, v)| Tuple2(RString::from(k.as_str()), RString::from(v.as_str())))
                .collect(),
        )
    }
    fn setting_error_at(&self, path: RSlice<'_, RStr<'_>>) {
        // Bounded: a table's depth, not what a plugin may say.
        let path = path
            .iter()
            .take(64)
            .map(|k| k.as_str().to_string())
            .collect();
        *self.error_at.borrow_mut() = Some(path);
    }
}

/// A distro's `init` failed (returned an error or panicked).
#[derive(Debug, Clone, thiserror::Error)]
#[error("distro {distro} ({origin}): init failed: {message}")]
pub struct InitError {
    /// The distro.
    pub distro: String,
    /// Where it came from.
    pub origin: Origin,
    /// What went wrong (with the `distro.toml` location of an offending key where known).
    pub message: String,
}

/// An initialised distro, ready to build its components.
pub struct Distro {
    pub(crate) inner: std::sync::Arc<FfiDistroBox>,
    /// The deadline of every start-up call into it (`OTEL_RUST_DISTRO_INIT_TIMEOUT`).
    pub(crate) timeout: Duration,
}

impl fmt::Debug for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Distro").finish_non_exhaustive()
    }
}

impl DistroInfo {
    /// Its name and components, as the settings take them.
    pub fn offer(&self) -> crate::components::DistroOffer<'_> {
        crate::components::DistroOffer {
            name: &self.name,
            components: &self.components,
        }
    }

    fn from_descriptor(d: DistroDescriptorRef, origin: Origin, api_version: &str) -> Self {
        DistroInfo {
            name: d.name().to_string(),
            version: crate::text::printable(d.version().as_str()).into_owned(),
            description: crate::text::printable(d.description().as_str()).into_owned(),
            api_version: crate::text::printable(api_version).into_owned(),
            origin,
            components: components_of(d),
            descriptor: Some(Descriptor(d)),
            unloaded: None,
        }
    }

    /// A distro known from its plugin's metadata; nothing of the plugin has run.
    fn from_meta(
        d: &ndotel_api::meta::DistroMeta,
        origin: Origin,
        plugin: &std::sync::Arc<Plugin>,
    ) -> Self {
        DistroInfo {
            name: d.name.clone(),
            version: crate::text::printable(&d.version).into_owned(),
            description: crate::text::printable(&d.description).into_owned(),
            api_version: crate::text::printable(&plugin.api_version).into_owned(),
            origin,
            components: Components::default(),
            descriptor: None,
            unloaded: Some(std::sync::Arc::clone(plugin)),
        }
    }

    /// Whether its code is loaded (compiled in, or its plugin loaded); `false` for a distro known only from its
    /// plugin's metadata, whose components are not known yet.
    pub fn is_loaded(&self) -> bool {
        self.unloaded.is_none()
    }

    fn builtin_sdk() -> Self {
        DistroInfo {
            name: SDK_DISTRO.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description:
                "the plain OpenTelemetry SDK, configured by the standard OTEL_* environment".into(),
            api_version: ndotel_api::API_VERSION.into(),
            origin: Origin::Builtin,
            components: Components::default(),
            descriptor: None,
            unloaded: None,
        }
    }

    /// Initialises the distro with its `[distro.<name>]` table; `Ok(None)` for the built-in `sdk` distro.
    pub fn init(
        &self,
        config: Option<&ConfigFile>,
        env: &Env,
    ) -> Result<Option<Distro>, InitError> {
        let Some(descriptor) = self.descriptor else {
            if self.unloaded.is_some() {
                return Err(InitError {
                    distro: self.name.clone(),
                    origin: self.origin.clone(),
                    message: "its plugin is not loaded (Registry::load_selected loads it)".into(),
                });
            }
            return Ok(None);
        };
        let table = config
            .and_then(|c| c.config.distro.get(&self.name))
            .cloned()
            .unwrap_or_default();
        let toml_text = toml::to_string(&table).unwrap_or_default();
        let base_dir = config
            .map(|c| c.dir().to_path_buf())
            .unwrap_or_else(|| env.cwd().to_path_buf());
        let base_dir = base_dir.to_string_lossy().into_owned();
        // A distro's init runs on a thread of its own with a deadline: one that hangs (a config service that never
        // answers) must not hang the application's start-up.
        let timeout = crate::settings::init_timeout(env);
        let init = descriptor.0.init();
        let vars: Vec<(String, String)> = env.vars().map(|(k, v)| (k.clone(), v.clone())).collect();
        let result = crate::distro::worker::with_deadline(&format!("ndotel-init-{}", self.name), timeout, move || {
            let args = InitArgs {
                config_toml: toml_text,
                base_dir,
                env: vars,
                error_at: Default::default(),
            };
            let result = init(FfiInitArgs_TO::from_ptr(&args, TD_Opaque));
            (result, args.error_at.into_inner())
        })
        .map_err(|e| InitError {
            distro: self.name.clone(),
            origin: self.origin.clone(),
            message: format!(
                "init {e} (it hangs; set OTEL_RUST_DISTRO_INIT_TIMEOUT in milliseconds to wait longer)"
            ),
        })?;
        let (result, error_at) = result;
        match result {
            RResult::ROk(inner) => Ok(Some(Distro {
                inner: std::sync::Arc::new(inner),
                timeout,
            })),
            RResult::RErr(e) => {
                let mut message = crate::text::printable(e.to_string().trim()).into_owned();
                // The location points at the key the plugin's error names (a `SettingError` shows its path too).
                let located = config
                    .zip(error_at.as_deref())
                    .and_then(|(cfg, path)| cfg.locate_distro_setting(&self.name, path));
                if let Some(at) = located {
                    message = format!("{message} (at {at}, table [distro.{}])", self.name);
                } else if let Some(cfg) = config.filter(|c| {
                    c.config.distro.contains_key(&self.name) && c.distro_table_is_own(&self.name)
                }) {
                    message = format!(
                        "{message} (table [distro.{}] in {})",
                        self.name,
                        crate::text::shown(&cfg.path)
                    );
                }
                Err(InitError {
                    distro: self.name.clone(),
                    origin: self.origin.clone(),
                    message,
                })
            }
        }
    }
}

/// What [`Registry::selection`] says selected `sdk` when several distros are registered and none is named.
pub(crate) const NONE_SELECTED: &str = "default: several distros and none selected";

/// Choosing a distro failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SelectError {
    /// The name matches nothing.
    #[error("no distro named {name:?} (selected by {by}){suggestion}; available: {available}{}",
        if .not_loaded.is_empty() { String::new() } else { format!("; plugins that did not load: {}", .not_loaded.join("; ")) })]
    Unknown {
        /// The name asked for.
        name: String,
        /// `; did you mean "x"?` when a distro's name is near it, else empty.
        suggestion: String,
        /// What asked for it (`OTEL_RUST_DISTRO` or the file's `default`).
        by: String,
        /// Every available name with its origin.
        available: String,
        /// Why each plugin that could have held it did not load (refused, damaged, incompatible).
        not_loaded: Vec<String>,
    },
    /// Two or more distros have this name.
    #[error(
        "distro name {name:?} is registered more than once: {origins}; remove or rename one of them"
    )]
    Duplicate {
        /// The name.
        name: String,
        /// Every origin that registered it.
        origins: String,
    },
}

/// Every distro found and every plugin that failed.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    distros: Vec<DistroInfo>,
    failures: Vec<LoadError>,
    warnings: Vec<String>,
    /// Plugins built before ndotel-api 1.2 (no metadata), not loaded yet.
    legacy: Vec<Plugin>,
}

/// A name is selected by environment variable and printed in every report: one that can forge lines or colours
/// is refused, not just escaped.
fn clean_names(plugin: &Plugin, name: &str, components: &Components) -> Result<(), LoadError> {
    let bad = std::iter::once(name)
        .chain(
            [
                &components.samplers,
                &components.span_exporters,
                &components.metric_exporters,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str),
        )
        .find(|n| !crate::text::is_name(n));
    let Some(bad) = bad else {
        return Ok(());
    };
    Err(LoadError::Refused {
        path: plugin.path.clone(),
        reason: format!(
            "distro \"{}\" has a name or component name (\"{}\") that is not 1 to {} ASCII letters, digits, `_`, \
             `-` or `.` (a name with other characters can print like another one); rename it",
            crate::text::escaped_name(name),
            crate::text::escaped_name(bad),
            crate::text::MAX_NAME_LEN,
        ),
    })
}

/// The most distros one plugin may name in its metadata; a plugin naming more is refused.
pub(crate) const MAX_DISTROS_PER_PLUGIN: usize = 256;
/// The most distros the plugins of one directory (or of the `[opentelemetry_distro]` table) may name together;
/// plugins past it are refused.
pub(crate) const MAX_DISTROS_PER_SOURCE: usize = 1024;

impl Registry {
    /// Loads the plugin holding distro `name` if it is only inspected, so that its components are known and it
    /// can be initialised; every other plugin stays unloaded. Nothing to do for a loaded or compiled-in distro.
    pub fn load_selected(&mut self, name: &str) -> Result<(), LoadError> {
        let Some(plugin) = self
            .distros
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.unloaded.clone())
        else {
            return Ok(());
        };
        let loaded = plugin.load()?;
        for desc in &loaded.distros {
            let components = components_of(*desc);
            if let Err(e) = clean_names(&loaded, desc.name().as_str(), &components) {
                if desc.name().as_str() == name {
                    return Err(e);
                }
                continue; // refused at discovery already
            }
            for d in self.distros.iter_mut().filter(|d| {
                d.name == desc.name().as_str()
                    && d.unloaded.as_ref().is_some_and(|p| p.path == loaded.path)
            }) {
                d.descriptor = Some(Descriptor(*desc));
                d.components = components.clone();
                d.unloaded = None;
            }
        }
        Ok(())
    }

    /// Plugins built before ndotel-api 1.2 that are not loaded (their distros are unknown until they are).
    pub fn legacy_plugins(&self) -> &[Plugin] {
        &self.legacy
    }

    /// Loads the plugins built before ndotel-api 1.2 to learn their distros. Done only when the selected distro
    /// is found nowhere else, or to list them in a probe process: their code runs when they load.
    pub fn load_legacy(&mut self) {
        for plugin in std::mem::take(&mut self.legacy) {
            match plugin.load() {
                Ok(loaded) => {
                    self.warnings.extend(loaded.missing_capabilities());
                    for d in &loaded.distros {
                        let names = components_of(*d);
                        if let Err(e) = clean_names(&loaded, d.name().as_str(), &names) {
                            self.failures.push(e);
                            continue;
                        }
                        self.distros.push(DistroInfo::from_descriptor(
                            *d,
                            Origin::Plugin {
                                path: loaded.path.clone(),
                            },
                            &loaded.api_version,
                        ));
                    }
                }
                Err(e) => self.failures.push(e),
            }
        }
    }

    /// Collects compiled-in distros, the table's plugins and every plugin directory's `.so` files.
    pub fn discover(env: &Env, config: Option<&ConfigFile>) -> Registry {
        let mut reg = Registry {
            distros: vec![DistroInfo::builtin_sdk()],
            ..Default::default()
        };
        for s in inventory::iter::<StaticDistro> {
            reg.distros.push(DistroInfo::from_descriptor(
                (s.descriptor)(),
                Origin::Static,
                ndotel_api::API_VERSION,
            ));
        }
        let mut seen = BTreeSet::new();
        if let Some(cfg) = config {
            let mut budget = MAX_DISTROS_PER_SOURCE;
            for (name, entry) in &cfg.config.opentelemetry_distro {
                let path = cfg.dir().join(entry.path());
                if let Some(plugin) = reg.load_plugin(&path, entry.sha256(), &mut seen, &mut budget)
                    && !plugin.distro_names().iter().any(|n| n == name)
                {
                    let held = plugin.distro_names();
                    reg.warnings.push(format!(
                        "{}: [opentelemetry_distro] names it {name:?}, but it holds {held:?}; use one of those names",
                        crate::text::shown(&cfg.path)
                    ));
                }
            }
        }
        let dirs = crate::settings::plugin_dirs(env, config).value;
        for dir in dirs {
            reg.scan_dir(&dir, &mut seen);
        }
        reg
    }

    fn scan_dir(&mut self, dir: &Path, seen: &mut BTreeSet<PathBuf>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.warnings
                    .push(format!("plugin directory {}: {e}", crate::text::shown(dir)));
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "so"))
            .collect();
        files.sort();
        let mut budget = MAX_DISTROS_PER_SOURCE;
        for file in files {
            self.load_plugin(&file, None, seen, &mut budget);
        }
    }

    fn load_plugin(
        &mut self,
        path: &Path,
        sha256: Option<&str>,
        seen: &mut BTreeSet<PathBuf>,
        budget: &mut usize,
    ) -> Option<Plugin> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if !seen.insert(key) {
            return None; // the same file named twice (table and directory) is one plugin
        }
        // Inspection loads nothing: distros are named by the plugin's metadata, or — for a plugin built before
        // ndotel-api 1.2 — only once it is loaded (`load_legacy`).
        match Plugin::inspect(path, sha256) {
            Ok(plugin) => {
                match &plugin.meta {
                    None => self.legacy.push(plugin.clone()),
                    Some(meta) if meta.distros.len() > MAX_DISTROS_PER_PLUGIN => {
                        self.failures.push(LoadError::Refused {
                            path: plugin.path.clone(),
                            reason: format!(
                                "its metadata names {} distros, more than the {MAX_DISTROS_PER_PLUGIN} a plugin \
                                 may hold; split it into several plugins",
                                meta.distros.len()
                            ),
                        });
                        return None;
                    }
                    Some(meta) if *budget < meta.distros.len() => {
                        self.failures.push(LoadError::Refused {
                            path: plugin.path.clone(),
                            reason: format!(
                                "the plugins before it in the same directory or table already name close to \
                                 {MAX_DISTROS_PER_SOURCE} distros, the most one source may hold; move plugins to \
                                 another directory"
                            ),
                        });
                        return None;
                    }
                    Some(meta) => {
                        *budget -= meta.distros.len();
                        self.warnings.extend(plugin.missing_capabilities());
                        let origin = Origin::Plugin {
                            path: plugin.path.clone(),
                        };
                        let shared = std::sync::Arc::new(plugin.clone());
                        for d in &meta.distros {
                            match clean_names(&plugin, &d.name, &Components::default()) {
                                Ok(()) => self.distros.push(DistroInfo::from_meta(
                                    d,
                                    origin.clone(),
                                    &shared,
                                )),
                                Err(e) => self.failures.push(e),
                            }
                        }
                    }
                }
                Some(plugin)
            }
            Err(e) => {
                self.failures.push(e);
                None
            }
        }
    }

    /// Every distro, the built-in `sdk` first.
    pub fn distros(&self) -> &[DistroInfo] {
        &self.distros
    }

    /// Every plugin file that failed to load.
    pub fn failures(&self) -> &[LoadError] {
        &self.failures
    }

    /// Non-fatal oddities (missing directory, table name not held by its plugin).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Names registered more than once, each with all its origins.
    pub fn duplicates(&self) -> Vec<SelectError> {
        let mut names: Vec<&str> = self.distros.iter().map(|d| d.name.as_str()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| self.duplicate(n))
            .collect()
    }

    fn duplicate(&self, name: &str) -> Option<SelectError> {
        let origins: Vec<String> = self
            .distros
            .iter()
            .filter(|d| d.name == name)
            .map(|d| d.origin.to_string())
            .collect();
        (origins.len() > 1).then(|| SelectError::Duplicate {
            name: name.into(),
            origins: origins.join(" and "),
        })
    }

    /// The name selected and what selected it: `OTEL_RUST_DISTRO`, the file's `default`, else the only distro
    /// registered besides the built-in ones, else `sdk`.
    pub fn selection(&self, env: &Env, config: Option<&ConfigFile>) -> (String, String) {
        if let Some(n) = env.get("OTEL_RUST_DISTRO") {
            let by = match env.origin("OTEL_RUST_DISTRO") {
                Some(origin) => format!("config {origin}"),
                None => "env OTEL_RUST_DISTRO".to_string(),
            };
            (n.trim().to_string(), by)
        } else if let Some((n, cfg)) =
            config.and_then(|c| c.config.default.as_ref().map(|n| (n, c)))
        {
            (
                n.clone(),
                format!("`default` in {}", crate::text::shown(&cfg.path)),
            )
        } else {
            match self.selectable().as_slice() {
                [one] => (one.name.clone(), "the only distro registered".to_string()),
                [] => (
                    SDK_DISTRO.to_string(),
                    "default: no other distro".to_string(),
                ),
                _ => (SDK_DISTRO.to_string(), NONE_SELECTED.to_string()),
            }
        }
    }

    /// The distros besides the built-in ones.
    pub(crate) fn selectable(&self) -> Vec<&DistroInfo> {
        self.distros
            .iter()
            .filter(|d| d.origin != Origin::Builtin)
            .collect()
    }

    /// Chooses the distro: `OTEL_RUST_DISTRO`, else the file's `default`, else the only non-built-in distro, else
    /// the built-in `sdk`.
    ///
    /// ```
    /// let env = ndotel::Env::from_pairs([("OTEL_RUST_DISTRO", "nope")], "/");
    /// let reg = ndotel::Registry::discover(&env, None);
    /// let err = reg.select(&env, None).unwrap_err();
    /// assert!(err.to_string().contains("sdk (builtin)"));
    /// ```
    pub fn select(
        &self,
        env: &Env,
        config: Option<&ConfigFile>,
    ) -> Result<&DistroInfo, SelectError> {
        let (name, by) = self.selection(env, config);
        if let Some(dup) = self.duplicate(&name) {
            return Err(dup);
        }
        self.distros
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| SelectError::Unknown {
                suggestion: crate::text::did_you_mean(
                    &name,
                    self.distros.iter().map(|d| d.name.as_str()),
                ),
                name,
                by,
                available: self
                    .distros
                    .iter()
                    .map(|d| format!("{} ({})", d.name, d.origin))
                    .collect::<Vec<_>>()
                    .join(", "),
                not_loaded: self.failures.iter().map(|f| f.to_string()).collect(),
            })
    }
}
