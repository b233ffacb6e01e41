//! Live reconfiguration of a running service's sampler: `SIGHUP`, or with `OTEL_RUST_DISTRO_RELOAD=watch` a change
//! to `distro.toml` (or to the configuration file, `OTEL_CONFIG_FILE`, whose `composite/development` sampler is then
//! the tree, and whose `distribution.ndotel.settings` the distro's table), re-reads the file with the trust checks of start-up, builds the `[sampler]` tree whole, and
//! only then swaps it in; a file that fails any of that is refused with its `file:line` error and the running tree
//! is untouched. Each span is decided under one generation of the tree ([`Composite::replace`]).
//!
//! The selected distro's own table (`[distro.NAME]`) is applied too: its `init` runs again with the new table (in a
//! probe child first for a plugin), its span processor, sampler and log processor are rebuilt, and then swapped in
//! (`DistroParts`): each span is decided and edited under one generation (the one whose sampler decided it, when
//! the distro's sampler is in use), each log record under one. What a reload cannot change without a restart
//! (every other table of the file: exporters, plugins, views) is named in the reload's line, not half-applied. What
//! was applied is watched for a health window and rolled back when its sampler or processor keeps failing. Each outcome — applied, refused (why), unchanged, rolled back
//! (why) — is one stderr line with the generation and the file's sha256, the content of
//! `OTEL_RUST_DISTRO_RELOAD_STATUS` (a JSON file) when that is set, and a count of the `ndotel.reload` metric.

use crate::consistent::{Composable, ComposableConfig, Composite, Shared};
use crate::env::Env;
use crate::settings::config::ConfigFile;
use sha2::Digest as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// When the sampler is reloaded (`OTEL_RUST_DISTRO_RELOAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Never.
    Off,
    /// On `SIGHUP` (the default, when there is something to reload: a composite sampler, or a distro with a
    /// processor or sampler, and a file).
    Signal,
    /// On `SIGHUP`, and when the file's content changes (read twice alike, so a write in progress is not taken).
    Watch,
}

impl Mode {
    /// The mode `OTEL_RUST_DISTRO_RELOAD` says (checked when the settings were resolved).
    pub(crate) fn of(setting: &str) -> Mode {
        match setting {
            "off" => Mode::Off,
            "watch" => Mode::Watch,
            _ => Mode::Signal,
        }
    }
}

/// What one reload did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The new tree is in use from this generation on; `restart` names the changed tables that need a restart.
    Applied {
        generation: u64,
        sampler: String,
        restart: Vec<String>,
        /// The distro whose own settings were applied, and what of it was rebuilt (its processors, its sampler).
        distro: Option<String>,
    },
    /// The applied tree (or distro settings) failed within its health window: what ran before is back.
    RolledBack { generation: u64, reason: String },
    /// The file did not pass; the running tree is untouched.
    Refused { reason: String },
    /// The file says what is running already.
    Unchanged,
}

/// Reloads one service's composite sampler and its distro's own settings from its `distro.toml` (or the composite
/// sampler of its configuration file).
pub(crate) struct Reloader {
    /// The composite sampler, when the file has one.
    sampler: Option<Composite>,
    /// The distro's parts its own settings rebuild, when it has any (`distro.toml` only).
    distro: Option<DistroParts>,
    /// The environment of start-up (the distro's `init` gets it again).
    env: Env,
    /// Generations of what the reloader applied when there is no composite sampler to count them.
    generation: std::sync::atomic::AtomicU64,
    /// The distro's own sampler, which `distro = {}` nodes share (its start-up code cannot run again).
    distro_node: Option<Arc<dyn Composable>>,
    path: PathBuf,
    /// The text of the file the running tree came from.
    applied: std::sync::Mutex<String>,
    /// The text the service started with: what "needs a restart" is judged against.
    startup: String,
    status: Option<PathBuf>,
    /// With a configuration file (`OTEL_CONFIG_FILE`, its references substituted from `env`, as at start-up):
    /// what its distro's settings are applied with. `None`: the file is `distro.toml`.
    declared: Option<DeclaredBase>,
    /// The pipeline's failure counters: a new tree whose sampler fails is rolled back.
    faults: Arc<crate::distro::faults::Faults>,
    /// How long a new tree is watched (`OTEL_RUST_DISTRO_RELOAD_HEALTH_WINDOW`, milliseconds, 30 s by default).
    window: Duration,
    /// The tree applied last, while it is watched: until when, the failures counted when it came in, and the
    /// tree it replaced.
    watched: std::sync::Mutex<Option<Watched>>,
    /// The text of the file whose tree was rolled back: refused as such until the file changes.
    rolled_back: std::sync::Mutex<Option<String>>,
    /// Set when the service shuts down: no swap after that (held across each swap).
    halted: Arc<std::sync::Mutex<bool>>,
}

/// What a configuration file's reload applies the distro's settings with.
struct DeclaredBase {
    /// The `distro.toml` the file amended at start-up (or the file alone): a reload amends it again.
    config: ConfigFile,
    /// The environment the file makes: what the distro's `init` gets.
    init_env: Env,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a reload applied, while its health window lasts.
struct Watched {
    until: std::time::Instant,
    /// The composite sampler's failures and hung calls counted when a changed tree came in (`None`: the reload
    /// left the tree as it was).
    tree_baseline: Option<u64>,
    /// The distro's parts it applied: they count their own failures.
    parts: Option<Parts>,
    /// Whether the distro's processor was already stuck (a call of an older generation on the edit worker).
    stuck_before: bool,
    /// What it replaced: the tree, the distro's parts, and the file's text.
    previous_tree: Option<Arc<dyn Composable>>,
    previous_parts: Option<Parts>,
    previous_text: String,
}

/// The distro's own parts a reload of its settings replaces: its span processor's editor and its sampler (when the
/// pipeline asks it directly), rebuilt from a fresh `init` with the new settings — probed in a child first when the
/// distro is a plugin — before anything is swapped.
pub(crate) struct DistroParts {
    pub(crate) info: crate::distro::registry::DistroInfo,
    /// The editor's slot, and whether the plugin edits batches (API 1.5).
    pub(crate) editor: Option<(Arc<crate::trace::processor::EditorSlot>, bool)>,
    /// The sampler's slot, and the sampler's name.
    pub(crate) sampler: Option<(Arc<crate::distro::sampler::SamplerSlot>, String)>,
    /// The log processor's slot.
    pub(crate) log: Option<Arc<crate::logs::processor::LogSlot>>,
    /// Whether each edited span says which generation edited it (`OTEL_RUST_DISTRO_RELOAD_GENERATION_ATTRIBUTE`).
    pub(crate) generation_attribute: bool,
    /// The newest generation swapped in so far (0: start-up's).
    pub(crate) built: std::sync::atomic::AtomicU64,
    /// The generation in use (a rollback brings an older one back).
    pub(crate) current: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for DistroParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistroParts")
            .field("distro", &self.info.name)
            .finish_non_exhaustive()
    }
}

/// What a rebuild made, or what a swap replaced: one generation of the distro's parts.
#[derive(Default, Clone)]
struct Parts {
    generation: u64,
    editor: Option<Arc<crate::distro::editor::Editor>>,
    sampler: Option<Arc<crate::distro::sampler::GenSampler>>,
    log: Option<Arc<crate::distro::log_editor::LogEditor>>,
}

impl Parts {
    /// Their own failures so far (each part counts its own: the parts of other generations, still editing the
    /// spans their generation decided, count nothing here).
    fn failures(&self) -> u64 {
        self.editor.as_ref().map_or(0, |e| e.failures())
            + self
                .sampler
                .as_ref()
                .map_or(0, |s| s.failures.load(Ordering::Relaxed))
            + self.log.as_ref().map_or(0, |l| l.failures())
    }
}

impl DistroParts {
    /// Reloads can swap these parts from now on: each edited span says which generation edited it when asked.
    fn start_reloading(&self) {
        if let (Some((slot, _)), true) = (&self.editor, self.generation_attribute) {
            slot.keep_tags();
        }
    }

    /// Before the first swap: when the distro's sampler and its processor both run, each span decided from now
    /// on carries its generation to its edits, so that the same generation edits it (a service never reloaded
    /// pays nothing for it). A decision under the new generation is made only after the swap, which follows this.
    fn begin_tagging(&self) {
        if let (Some((editor, _)), Some((sampler, _))) = (&self.editor, &self.sampler) {
            // The editor first: a span that carries a tag reaches an editor that looks for it.
            editor.tagged();
            sampler.tag();
        }
    }

    /// Builds the distro's parts from `config` (its `[distro.NAME]` table), touching nothing that runs.
    /// The probe child gets `probe_env` (the process's, as at start-up: it reads the files itself), `init` gets
    /// `init_env` (with a configuration file, the environment it makes).
    fn rebuild(
        &self,
        config: &ConfigFile,
        (probe_env, init_env): (&Env, &Env),
        faults: &Arc<crate::distro::faults::Faults>,
    ) -> Result<Parts, String> {
        if let Some(path) = self.info.origin.path() {
            crate::pipeline::plan::probe_for_reload(probe_env, &self.info.name, path)?;
        }
        let distro = self
            .info
            .init(Some(config), init_env)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("distro {} is not loaded", self.info.name))?;
        // Numbered when swapped in: a rebuild that fails uses no number.
        let generation = self.built.load(Ordering::Relaxed) + 1;
        let editor = match &self.editor {
            Some((slot, edits_batches)) => {
                let (p, _) = distro.span_processor(false)?;
                Some(crate::distro::editor::Editor::watched_by(
                    p,
                    *edits_batches,
                    faults.clone(),
                    slot.load().watched(),
                    generation,
                ))
            }
            None => None,
        };
        let sampler = match &self.sampler {
            Some((_, name)) => {
                let (s, _) = distro.sampler(name, false)?;
                Some(Arc::new(s.of_generation(generation)))
            }
            None => None,
        };
        let log = match &self.log {
            Some(slot) => {
                let p = distro.log_processor()?;
                Some(crate::distro::log_editor::LogEditor::new(
                    p,
                    slot.load().watched(),
                    faults.clone(),
                ))
            }
            None => None,
        };
        Ok(Parts {
            generation,
            editor,
            sampler,
            log,
        })
    }

    /// Puts `parts` in use; returns what was in use.
    fn swap(&self, parts: Parts) -> Parts {
        self.begin_tagging();
        let generation = self.current.swap(parts.generation, Ordering::Relaxed);
        self.built.fetch_max(parts.generation, Ordering::Relaxed);
        let editor = match (&self.editor, parts.editor) {
            (Some((slot, _)), Some(new)) => Some(slot.swap(new)),
            _ => None,
        };
        let sampler = match (&self.sampler, parts.sampler) {
            (Some((slot, _)), Some(new)) => Some(slot.swap(new)),
            _ => None,
        };
        let log = match (&self.log, parts.log) {
            (Some(slot), Some(new)) => Some(slot.swap(new)),
            _ => None,
        };
        Parts {
            generation,
            editor,
            sampler,
            log,
        }
    }
}

/// Sampler failures (errors, panics, hangs) of a new tree within its health window that roll it back.
pub(crate) const ROLLBACK_FAILURES: u64 = 10;

impl Reloader {
    pub(crate) fn new(
        sampler: Option<Composite>,
        distro: Option<DistroParts>,
        distro_node: Option<Arc<dyn Composable>>,
        config: &ConfigFile,
        env: &Env,
        faults: Arc<crate::distro::faults::Faults>,
        (window, status): (Duration, Option<PathBuf>),
    ) -> Self {
        Reloader {
            faults,
            window,
            watched: std::sync::Mutex::new(None),
            rolled_back: std::sync::Mutex::new(None),
            halted: Arc::default(),
            sampler,
            distro,
            env: env.clone(),
            generation: Default::default(),
            distro_node,
            path: config.path.clone(),
            applied: std::sync::Mutex::new(config.text.clone()),
            startup: config.text.clone(),
            status,
            declared: None,
        }
    }

    /// A reloader of the configuration file `declared` (read from `text`): its `composite/development` sampler and
    /// the distro's settings (`distribution.ndotel.settings`) are what a reload changes, with `env`'s variables
    /// substituted as at start-up.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn of_declared(
        sampler: Option<Composite>,
        distro: Option<DistroParts>,
        distro_node: Option<Arc<dyn Composable>>,
        declared: &crate::settings::declared::Declared,
        base: Option<&ConfigFile>,
        env: &Env,
        faults: Arc<crate::distro::faults::Faults>,
        watch: (Duration, Option<PathBuf>),
    ) -> Self {
        let file = ConfigFile {
            path: declared.path.clone(),
            text: declared.text.clone(),
            config: Default::default(),
        };
        let mut reloader = Reloader::new(sampler, distro, distro_node, &file, env, faults, watch);
        reloader.declared = Some(DeclaredBase {
            config: base.cloned().unwrap_or(file),
            init_env: declared.environment(env),
        });
        reloader
    }

    /// The new file's text, its sampler configuration (when the running sampler is a composite one), what else
    /// changed that needs a restart, and its `distro.toml` when the selected distro's own settings changed and can
    /// be applied; or why it is refused.
    #[allow(clippy::type_complexity)]
    fn read(
        &self,
    ) -> Result<
        (
            String,
            Option<ComposableConfig>,
            Vec<String>,
            Option<ConfigFile>,
        ),
        String,
    > {
        if let Some(base) = &self.declared {
            use crate::settings::declared::Declared;
            let env = &self.env;
            let text = Declared::read(&self.path).map_err(|e| e.to_string())?;
            let new = Declared::parse(&self.path, &text, env).map_err(|e| e.to_string())?;
            let composite = match (&self.sampler, new.translated.composite.clone()) {
                (Some(_), Some(composite)) => Some(composite),
                (Some(_), None) => {
                    return Err(format!(
                        "{} has no composite/development (or probability/development) sampler any more: which \
                         sampler a service uses changes only with a restart",
                        crate::text::shown(&self.path)
                    ));
                }
                (None, _) => None,
            };
            let mut restart = match Declared::parse(&self.path, &self.startup, env) {
                Ok(old) => changed_settings(&old, &new, self.sampler.is_some()),
                Err(_) => Vec::new(),
            };
            // The selected distro's settings are applied by rebuilding its parts.
            let mut distro_config = None;
            if let Some(d) = &self.distro {
                restart.retain(|k| k != DISTRO_SETTINGS);
                let applied_text = self.applied.lock().map(|a| a.clone()).unwrap_or_default();
                let settings = |t: &crate::settings::declared::Translated| {
                    t.distro_settings
                        .as_ref()
                        .filter(|(name, _)| *name == d.info.name)
                        .map(|(_, table)| table.clone())
                };
                let applied = Declared::parse(&self.path, &applied_text, env)
                    .ok()
                    .and_then(|a| settings(&a.translated));
                let table = settings(&new.translated);
                if applied != table {
                    let mut config = base.config.clone();
                    config
                        .config
                        .distro
                        .insert(d.info.name.clone(), table.unwrap_or_default());
                    distro_config = Some(config);
                }
            }
            return Ok((text, composite, restart, distro_config));
        }
        let config = ConfigFile::load(&self.path).map_err(|e| e.to_string())?;
        let composite = match (&self.sampler, &config.config.sampler) {
            (Some(_), Some(section)) => Some(section.get_ref().composite.clone()),
            (Some(_), None) => {
                return Err(format!(
                    "{} has no [sampler] table any more: which sampler a service uses changes only with a restart",
                    crate::text::shown(&self.path)
                ));
            }
            (None, _) => None,
        };
        let mut restart = changed_tables(&self.startup, &config.text);
        // The selected distro's own table is applied by rebuilding its parts; the other distros' tables do
        // nothing (they are not running).
        let applied_text = self.applied.lock().map(|a| a.clone()).unwrap_or_default();
        let distro_changed = self.distro.as_ref().is_some_and(|d| {
            distro_table(&applied_text, &d.info.name) != distro_table(&config.text, &d.info.name)
        });
        if self.distro.is_some() {
            restart.retain(|t| t != "[distro]");
        }
        if self.sampler.is_none() && restart.iter().any(|t| t == "[sampler]") {
            restart.retain(|t| t != "[sampler]");
            restart.push("[sampler] (the running sampler is not a composite one)".into());
        }
        let text = config.text.clone();
        Ok((text, composite, restart, distro_changed.then_some(config)))
    }

    /// Reads, checks and builds the file — the composite tree, and the distro's parts when its own settings
    /// changed — and swaps them in when all of that passed.
    pub(crate) fn reload(&self) -> Outcome {
        let (text, composite, restart, distro_config) = match self.read() {
            Ok(read) => read,
            Err(reason) => return Outcome::Refused { reason },
        };
        let mut applied = self
            .applied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if text == *applied {
            return Outcome::Unchanged;
        }
        if self
            .rolled_back
            .lock()
            .is_ok_and(|r| r.as_deref() == Some(text.as_str()))
        {
            return Outcome::Refused {
                reason: format!(
                    "{} is the file whose sampler was rolled back (it kept failing); change it to try again",
                    crate::text::shown(&self.path)
                ),
            };
        }
        let node = self.distro_node.clone();
        let distro = move || -> Result<Box<dyn Composable>, String> {
            match &node {
                Some(n) => Ok(Box::new(Shared(n.clone()))),
                None => Err(
                    "a `distro = {}` node the running tree does not have needs a restart (the distro's sampler is \
                     built at start-up)"
                        .into(),
                ),
            }
        };
        let root = match composite.map(|c| c.build_with(&distro)) {
            None => None,
            Some(Ok(root)) => Some(root),
            Some(Err(problem)) => {
                let at = if self.declared.is_some() {
                    "tracer_provider.sampler.composite/development"
                } else {
                    "[sampler] composite"
                };
                return Outcome::Refused {
                    reason: format!("{}: in {at}.{problem}", crate::text::shown(&self.path)),
                };
            }
        };
        // The distro's parts with its new settings, probed and built before anything changes.
        let parts = match (&self.distro, &distro_config) {
            (Some(d), Some(config)) => match d.rebuild(
                config,
                (
                    &self.env,
                    self.declared.as_ref().map_or(&self.env, |b| &b.init_env),
                ),
                &self.faults,
            ) {
                Ok(parts) => Some(parts),
                Err(reason) => {
                    return Outcome::Refused {
                        reason: format!(
                            "{}: [distro.{}]: {reason}",
                            crate::text::shown(&self.path),
                            d.info.name
                        ),
                    };
                }
            },
            _ => None,
        };
        if root.is_none() && parts.is_none() {
            // Nothing that runs changes (another table, or a comment): nothing to watch or roll back.
            *applied = text;
            return Outcome::Applied {
                generation: self.generation(),
                sampler: self.description(),
                restart,
                distro: None,
            };
        }
        let tree_baseline = root.is_some().then(|| self.tree_failures());
        let stuck_before = self.processor_stuck();
        let applied_parts = parts.clone();
        // No swap once the service shuts down (what it swapped in would never be shut down).
        let halted = self
            .halted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *halted {
            return Outcome::Refused {
                reason: "the service is shutting down".into(),
            };
        }
        let previous_tree = match (&self.sampler, root) {
            (Some(sampler), Some(root)) => Some(sampler.put(Arc::from(root)).1),
            _ => None,
        };
        // The distro and what of it was rebuilt, as the reload's line says it.
        let distro_name = match (&parts, &self.distro) {
            (Some(p), Some(d)) => {
                let rebuilt: Vec<&str> = [
                    (p.editor.is_some(), "span processor"),
                    (p.sampler.is_some(), "sampler"),
                    (p.log.is_some(), "log processor"),
                ]
                .into_iter()
                .filter_map(|(built, what)| built.then_some(what))
                .collect();
                Some(format!(
                    "{} (generation {}): its {}",
                    d.info.name,
                    p.generation,
                    rebuilt.join(", ")
                ))
            }
            _ => None,
        };
        let previous_parts = match (&self.distro, parts) {
            (Some(d), Some(parts)) => Some(d.swap(parts)),
            _ => None,
        };
        if self.sampler.is_none() {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        drop(halted);
        let previous_text = std::mem::replace(&mut *applied, text);
        if let Ok(mut w) = self.watched.lock() {
            let now = std::time::Instant::now();
            let mut entry = Watched {
                until: now + self.window,
                tree_baseline,
                parts: applied_parts,
                stuck_before,
                previous_tree,
                previous_parts,
                previous_text,
            };
            // A reload within the window of another: a rollback goes back to before the first (what ran last
            // without failing), for what either changed; the newest parts are judged.
            if let Some(earlier) = w.take().filter(|e| now < e.until) {
                entry.tree_baseline = earlier.tree_baseline.or(entry.tree_baseline);
                entry.parts = entry.parts.or(earlier.parts);
                entry.stuck_before = earlier.stuck_before;
                entry.previous_tree = earlier.previous_tree.or(entry.previous_tree);
                entry.previous_parts = earlier.previous_parts.or(entry.previous_parts);
                entry.previous_text = earlier.previous_text;
            }
            *w = Some(entry);
        }
        Outcome::Applied {
            generation: self.generation(),
            sampler: self.description(),
            restart,
            distro: distro_name,
        }
    }

    /// The generation in use: the composite tree's, else the reloader's own count.
    fn generation(&self) -> u64 {
        match &self.sampler {
            Some(s) => s.generation(),
            None => self.generation.load(Ordering::Relaxed),
        }
    }

    /// The running sampler, as the reload's line says it.
    fn description(&self) -> String {
        match &self.sampler {
            Some(s) => s.description(),
            None => "the distro's".into(),
        }
    }

    /// What counts against a new composite tree: the sampler's failures and the calls found hung.
    fn tree_failures(&self) -> u64 {
        self.faults.count(crate::distro::faults::Component::Sampler) + self.faults.hung()
    }

    /// Whether the distro's processor is stuck now (bypassed: every batch takes the fallback).
    fn processor_stuck(&self) -> bool {
        self.distro
            .as_ref()
            .and_then(|d| d.editor.as_ref())
            .is_some_and(|(slot, _)| slot.load().bypassed())
    }

    /// Looks at the tree applied last while its health window lasts: past [`ROLLBACK_FAILURES`] failures of the
    /// sampler since it came in, the tree before it comes back (said once); past the window, it is kept.
    pub(crate) fn check_health(&self) -> Option<Outcome> {
        let mut watched = self.watched.lock().ok()?;
        let entry = watched.as_ref()?;
        let until = entry.until;
        let failed = entry
            .tree_baseline
            .map_or(0, |b| self.tree_failures().saturating_sub(b))
            + entry.parts.as_ref().map_or(0, Parts::failures);
        // Stuck counts against the new processor only when it was not stuck already (an older generation's call).
        let stuck = entry.parts.as_ref().is_some_and(|p| p.editor.is_some())
            && !entry.stuck_before
            && self.processor_stuck();
        if failed >= ROLLBACK_FAILURES || stuck {
            let halted = self
                .halted
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if *halted {
                return None;
            }
            let Watched {
                previous_tree,
                previous_parts,
                previous_text,
                ..
            } = watched.take()?;
            // Never both locks at once (a reload takes `applied`, then `watched`).
            drop(watched);
            if let (Some(sampler), Some(tree)) = (&self.sampler, previous_tree) {
                sampler.put(tree);
            }
            if let (Some(d), Some(parts)) = (&self.distro, previous_parts) {
                d.swap(parts);
            }
            drop(halted);
            if self.sampler.is_none() {
                self.generation.fetch_add(1, Ordering::Relaxed);
            }
            let generation = self.generation();
            // What runs again is the previous file's tree; the file that failed is refused until it changes.
            let mut applied = self
                .applied
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let failed_text = std::mem::replace(&mut *applied, previous_text);
            if let Ok(mut r) = self.rolled_back.lock() {
                *r = Some(failed_text);
            }
            return Some(Outcome::RolledBack {
                generation,
                reason: if stuck {
                    format!(
                        "the distro's processor is stuck (a call past 5× its deadline) within {:?} of the reload",
                        self.window
                    )
                } else {
                    format!(
                        "the sampler or the distro's processor failed {failed} times within {:?} of the reload \
                         (errors, panics or hangs; see `ndotel check`)",
                        self.window
                    )
                },
            });
        }
        if std::time::Instant::now() >= until {
            *watched = None;
        }
        None
    }

    /// Says what a reload did: one stderr line, and the status file when one is asked for.
    pub(crate) fn report(&self, outcome: &Outcome) {
        let sha = std::fs::read(&self.path)
            .map(|b| {
                sha2::Sha256::digest(&b)
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
            })
            .unwrap_or_default();
        let file = crate::text::shown(&self.path);
        let generation = self.generation();
        let (word, detail) = match outcome {
            Outcome::Applied {
                sampler,
                restart,
                distro,
                ..
            } => (
                "applied",
                format!(
                    "sampler: {sampler}{}{}",
                    distro
                        .as_ref()
                        .map(|d| format!(
                            "; distro {d} rebuilt with its new settings (its start attributes, resource and \
                             exporters change only with a restart)"
                        ))
                        .unwrap_or_default(),
                    if restart.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; changed but NOT applied until a restart: {}",
                            restart.join(", ")
                        )
                    }
                ),
            ),
            Outcome::Refused { reason } => (
                "refused",
                format!("{reason}; what runs (generation {generation}) is unchanged"),
            ),
            Outcome::Unchanged => ("unchanged", "the file says what is running".into()),
            Outcome::RolledBack { reason, .. } => (
                "rolled back",
                format!("{reason}; what ran before is back: {}", self.description()),
            ),
        };
        // Counted as a metric too, by outcome (when the service exports metrics).
        opentelemetry::global::meter("ndotel")
            .u64_counter("ndotel.reload")
            .with_description("Reloads of the sampler from distro.toml, by outcome")
            .build()
            .add(1, &[opentelemetry::KeyValue::new("outcome", word)]);
        // The status file first: whoever waits for the line finds the file written.
        if let Some(status) = &self.status {
            let json = serde_json::json!({
                "pid": std::process::id(),
                "file": file,
                "sha256": sha,
                "outcome": word,
                "generation": generation,
                "detail": detail,
            });
            // Written whole, then renamed over the old one: a reader never sees half a status.
            let written =
                crate::trust::write_replacing(status, (json.to_string() + "\n").as_bytes());
            if let Err(e) = written {
                eprintln!(
                    "ndotel: warning: cannot write the reload status to {}: {e}",
                    crate::text::shown(status)
                );
            }
        }
        eprintln!(
            "ndotel: reload of {file} (sha256 {}): {word}, generation {generation}: {}",
            &sha[..sha.len().min(16)],
            crate::text::printable(&detail)
        );
    }
}

/// The tables (other than `[sampler]`) whose content differs between two versions of the file.
fn changed_tables(old: &str, new: &str) -> Vec<String> {
    let parse = |t: &str| t.parse::<toml::Table>().unwrap_or_default();
    let (old, new) = (parse(old), parse(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| k.as_str() != "sampler" && old.get(*k) != new.get(*k))
        .map(|k| {
            if old.get(k).or(new.get(k)).is_some_and(toml::Value::is_table) {
                format!("[{k}]")
            } else {
                k.clone()
            }
        })
        .collect()
}

/// The `[distro.NAME]` table of a `distro.toml` text (an unreadable text has none).
fn distro_table(text: &str, name: &str) -> Option<toml::Value> {
    let table = text.parse::<toml::Table>().ok()?;
    table.get("distro")?.get(name).cloned()
}

/// What `changed_settings` calls a change of the distro's settings.
const DISTRO_SETTINGS: &str = "distribution.ndotel.settings";

/// The settings of a configuration file that changed besides its composite sampler (when one runs,
/// `reloads_sampler`): each needs a restart.
fn changed_settings(
    old: &crate::settings::declared::Declared,
    new: &crate::settings::declared::Declared,
    reloads_sampler: bool,
) -> Vec<String> {
    let (old, new) = (&old.translated, &new.translated);
    let mut keys: Vec<&String> = old.vars.keys().chain(new.vars.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out: Vec<String> = keys
        .into_iter()
        .filter(|k| !(reloads_sampler && k.starts_with("OTEL_TRACES_SAMPLER")))
        .filter(|k| old.vars.get(*k).map(|v| &v.0) != new.vars.get(*k).map(|v| &v.0))
        .map(|k| k.to_string())
        .collect();
    if old.views != new.views {
        out.push("meter_provider.views".into());
    }
    if !reloads_sampler && format!("{:?}", old.composite) != format!("{:?}", new.composite) {
        out.push("tracer_provider.sampler".into());
    }
    if old.distro_settings != new.distro_settings {
        out.push(DISTRO_SETTINGS.into());
    }
    if old.typed_resource != new.typed_resource
        || old.resource_schema_url != new.resource_schema_url
    {
        out.push("resource".into());
    }
    if old.cardinality_limits != new.cardinality_limits {
        out.push("meter_provider.readers[].cardinality_limits".into());
    }
    out.dedup();
    out
}

/// What watch mode compares between looks: the file's content, and its change time (mode and owner changes move
/// it).
type Look = (Vec<u8>, i64, i64);

fn look(path: &std::path::Path) -> Option<Look> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((std::fs::read(path).ok()?, meta.ctime(), meta.ctime_nsec()))
}

/// The reload thread of a running pipeline; stops when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    stop: Arc<AtomicBool>,
    halted: Arc<std::sync::Mutex<bool>>,
}

impl Drop for Running {
    /// Once it returns, nothing is swapped any more (a swap under way has finished).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        *self
            .halted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
    }
}

/// Starts reloading `reloader` as `mode` says; `None` when off or when `SIGHUP` cannot be watched (said once).
pub(crate) fn start(reloader: Reloader, mode: Mode) -> Option<Running> {
    if mode == Mode::Off {
        return None;
    }
    if let Some(d) = &reloader.distro {
        d.start_reloading();
    }
    // A SIGHUP writes a byte to this socket pair, which wakes the reload thread at once.
    let hup = std::os::unix::net::UnixStream::pair().and_then(|(rx, tx)| {
        rx.set_read_timeout(Some(Duration::from_millis(200)))?;
        let id = signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, tx)?;
        Ok((rx, id))
    });
    let (mut signals, hup_id) = match hup {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "ndotel: warning: cannot watch for SIGHUP ({e}); the sampler and the distro's settings will not be reloaded"
            );
            return None;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let halted = reloader.halted.clone();
    let spawned = std::thread::Builder::new()
        .name("ndotel-reload".into())
        .spawn(move || {
            // The file seen at the last look (a change is taken once it reads the same twice: a finished write),
            // and the file last refused (not tried again until it changes: its content, or its mode or owner, which
            // the trust checks judge — a `chmod` moves its ctime).
            let mut last_seen: Option<Look> = None;
            let mut refused: Option<Look> = None;
            loop {
                // Waits for a SIGHUP, at most 200 ms (the watch and the health window are looked at meanwhile).
                let mut buf = [0u8; 64];
                let mut due = match std::io::Read::read(&mut signals, &mut buf) {
                    Ok(n) if n > 0 => true,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) =>
                    {
                        false
                    }
                    // Never expected (the writing end lives as long as the registration): never a busy loop.
                    _ => {
                        std::thread::sleep(Duration::from_millis(200));
                        false
                    }
                };
                if stopped.load(Ordering::Relaxed) {
                    signal_hook::low_level::unregister(hup_id);
                    break;
                }
                let now = (mode == Mode::Watch)
                    .then(|| look(&reloader.path))
                    .flatten();
                if let Some(now) = &now {
                    let stable = last_seen.as_ref() == Some(now);
                    let applied = reloader
                        .applied
                        .lock()
                        .map(|a| now.0 == a.as_bytes())
                        .unwrap_or(true);
                    due |= stable && !applied && refused.as_ref() != Some(now);
                }
                last_seen = now.clone();
                if let Some(rolled_back) = reloader.check_health() {
                    reloader.report(&rolled_back);
                }
                if due {
                    let outcome = reloader.reload();
                    reloader.report(&outcome);
                    refused = match outcome {
                        Outcome::Refused { .. } => now.or_else(|| look(&reloader.path)),
                        _ => None,
                    };
                }
            }
        });
    if let Err(e) = spawned {
        // SIGHUP keeps no handler that nothing reads.
        signal_hook::low_level::unregister(hup_id);
        eprintln!(
            "ndotel: warning: cannot start the reload thread ({e}); the sampler and the distro's settings will not be reloaded"
        );
        return None;
    }
    Some(Running { stop, halted })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn setup(text: &str) -> (tempfile::TempDir, PathBuf, Reloader) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("distro.toml");
        std::fs::write(&path, text).unwrap();
        let config = ConfigFile::load(&path).unwrap();
        let root = config
            .config
            .sampler
            .as_ref()
            .unwrap()
            .get_ref()
            .composite
            .build()
            .unwrap();
        let reloader = Reloader::new(
            Some(Composite::new(root)),
            None,
            None,
            &config,
            &Env::from_pairs::<&str, &str>([], dir.path()),
            Arc::new(crate::distro::faults::Faults::new("test")),
            (Duration::from_secs(30), None),
        );
        (dir, path, reloader)
    }

    #[test]
    fn a_good_file_is_swapped_in_and_a_bad_one_leaves_the_running_tree_untouched() {
        let (_dir, path, r) = setup("[sampler]\ncomposite = { always_off = {} }\n");
        assert_eq!(r.description(), "Composite{AlwaysOff}");
        assert_eq!(r.reload(), Outcome::Unchanged);
        std::fs::write(&path, "[sampler]\ncomposite = { always_on = {} }\n").unwrap();
        assert_eq!(
            r.reload(),
            Outcome::Applied {
                generation: 1,
                sampler: "Composite{AlwaysOn}".into(),
                restart: vec![],
                distro: None,
            }
        );
        // Refused whole: a bad value (with its line), a syntax error, a removed table, a file others can write.
        for (text, says) in [
            (
                "[otel]\nservice_name = \"x\"\n[sampler]\ncomposite = { probability = { ratio = 2.0 } }\n",
                "distro.toml:3:1: in [sampler] composite.probability: ratio 2 is not between 0 and 1",
            ),
            ("[sampler\n", "distro.toml:1:"),
            ("[otel]\n", "no [sampler] table any more"),
            (
                "[sampler]\ncomposite = { distro = {} }\n",
                "a `distro = {}` node the running tree does not have needs a restart",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            match r.reload() {
                Outcome::Refused { reason } => assert!(reason.contains(says), "{text}: {reason}"),
                other => panic!("{text}: {other:?}"),
            }
            assert_eq!(r.generation(), 1);
            assert_eq!(r.description(), "Composite{AlwaysOn}");
        }
        std::fs::write(&path, "[sampler]\ncomposite = { always_off = {} }\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        match r.reload() {
            Outcome::Refused { reason } => {
                assert!(reason.contains("writable by group or others"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // What a reload cannot apply is named, and the sampler still changes.
        std::fs::write(
            &path,
            "[otel]\nservice_name = \"y\"\n[sampler]\ncomposite = { probability = { ratio = 0.5 } }\n",
        )
        .unwrap();
        match r.reload() {
            Outcome::Applied {
                generation,
                restart,
                ..
            } => assert_eq!((generation, restart), (2, vec!["[otel]".to_string()])),
            other => panic!("{other:?}"),
        }
        assert!(r.description().contains("th=8"));
    }
}
