//! Live reconfiguration of a running service's sampler: `SIGHUP`, or with `OTEL_RUST_DISTRO_RELOAD=watch` a change
//! to `distro.toml` (or to the configuration file, `OTEL_CONFIG_FILE`, whose `composite/development` sampler is then
//! the tree), re-reads the file with the trust checks of start-up, builds the `[sampler]` tree whole, and
//! only then swaps it in; a file that fails any of that is refused with its `file:line` error and the running tree
//! is untouched. Each span is decided under one generation of the tree ([`Composite::replace`]).
//!
//! What a reload cannot change without a restart (every other table of the file: exporters, plugins, the distro's
//! own settings, views) is named in the reload's line, not half-applied. A new tree is watched for a health window
//! and rolled back when its sampler keeps failing. Each outcome — applied, refused (why), unchanged, rolled back
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
    /// On `SIGHUP` (the default when `distro.toml` has a `[sampler]` table).
    Signal,
    /// On `SIGHUP`, and when the file's content changes (read twice alike, so a write in progress is not taken).
    Watch,
}

impl Mode {
    /// The mode `env` asks for; an unknown value is a warning and the default.
    pub(crate) fn of(env: &Env) -> Mode {
        match env.get("OTEL_RUST_DISTRO_RELOAD").map(str::trim) {
            None | Some("") | Some("signal") => Mode::Signal,
            Some("off") => Mode::Off,
            Some("watch") => Mode::Watch,
            Some(other) => {
                eprintln!(
                    "ndotel: warning: OTEL_RUST_DISTRO_RELOAD={:?} is not off, signal or watch; using signal",
                    crate::text::printable(other)
                );
                Mode::Signal
            }
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
    },
    /// The applied tree failed within its health window: the one before it is back, as a new generation.
    RolledBack { generation: u64, reason: String },
    /// The file did not pass; the running tree is untouched.
    Refused { reason: String },
    /// The file says what is running already.
    Unchanged,
}

/// Reloads one service's composite sampler from its `distro.toml`.
#[derive(Debug)]
pub(crate) struct Reloader {
    sampler: Composite,
    /// The distro's own sampler, which `distro = {}` nodes share (its start-up code cannot run again).
    distro_node: Option<Arc<dyn Composable>>,
    path: PathBuf,
    /// The text of the file the running tree came from.
    applied: std::sync::Mutex<String>,
    /// The text the service started with: what "needs a restart" is judged against.
    startup: String,
    status: Option<PathBuf>,
    /// With a configuration file (`OTEL_CONFIG_FILE`): the environment its references are substituted from (the
    /// process's at start-up). `None`: the file is `distro.toml`.
    declared: Option<Env>,
    /// The pipeline's failure counters: a new tree whose sampler fails is rolled back.
    faults: Arc<crate::distro::faults::Faults>,
    /// How long a new tree is watched (`OTEL_RUST_DISTRO_RELOAD_HEALTH_WINDOW`, milliseconds, 30 s by default).
    window: Duration,
    /// The tree applied last, while it is watched: until when, the failures counted when it came in, and the
    /// tree it replaced.
    watched: std::sync::Mutex<Option<Watched>>,
    /// The text of the file whose tree was rolled back: refused as such until the file changes.
    rolled_back: std::sync::Mutex<Option<String>>,
}

/// A tree under watch: until when, the sampler failures counted when it came in, and the tree it replaced.
type Watched = (std::time::Instant, u64, Arc<dyn Composable>, String);

/// Sampler failures (errors, panics, hangs) of a new tree within its health window that roll it back.
pub(crate) const ROLLBACK_FAILURES: u64 = 10;

impl Reloader {
    pub(crate) fn new(
        sampler: Composite,
        distro_node: Option<Arc<dyn Composable>>,
        config: &ConfigFile,
        env: &Env,
        faults: Arc<crate::distro::faults::Faults>,
    ) -> Self {
        let window = env
            .get("OTEL_RUST_DISTRO_RELOAD_HEALTH_WINDOW")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(30), Duration::from_millis);
        Reloader {
            faults,
            window,
            watched: std::sync::Mutex::new(None),
            rolled_back: std::sync::Mutex::new(None),
            sampler,
            distro_node,
            path: config.path.clone(),
            applied: std::sync::Mutex::new(config.text.clone()),
            startup: config.text.clone(),
            status: env.get("OTEL_RUST_DISTRO_RELOAD_STATUS").map(PathBuf::from),
            declared: None,
        }
    }

    /// A reloader of the configuration file `declared` (read from `text`): its `composite/development` sampler is
    /// what a reload changes, with `env`'s variables substituted as at start-up.
    pub(crate) fn of_declared(
        sampler: Composite,
        distro_node: Option<Arc<dyn Composable>>,
        declared: &crate::settings::declared::Declared,
        env: &Env,
        faults: Arc<crate::distro::faults::Faults>,
    ) -> Self {
        let file = ConfigFile {
            path: declared.path.clone(),
            text: declared.text.clone(),
            config: Default::default(),
        };
        let mut reloader = Reloader::new(sampler, distro_node, &file, env, faults);
        reloader.declared = Some(env.clone());
        reloader
    }

    /// The new file's text and sampler configuration, and what else changed (needing a restart), or why it is
    /// refused.
    fn read(&self) -> Result<(String, ComposableConfig, Vec<String>), String> {
        if let Some(env) = &self.declared {
            use crate::settings::declared::Declared;
            let text = Declared::read(&self.path).map_err(|e| e.to_string())?;
            let new = Declared::parse(&self.path, &text, env).map_err(|e| e.to_string())?;
            let Some(composite) = new.translated.composite.clone() else {
                return Err(format!(
                    "{} has no composite/development (or probability/development) sampler any more: which sampler a \
                     service uses changes only with a restart",
                    crate::text::shown(&self.path)
                ));
            };
            let restart = match Declared::parse(&self.path, &self.startup, env) {
                Ok(old) => changed_settings(&old, &new),
                Err(_) => Vec::new(),
            };
            return Ok((text, composite, restart));
        }
        let config = ConfigFile::load(&self.path).map_err(|e| e.to_string())?;
        let Some(section) = &config.config.sampler else {
            return Err(format!(
                "{} has no [sampler] table any more: which sampler a service uses changes only with a restart",
                crate::text::shown(&self.path)
            ));
        };
        let composite = section.get_ref().composite.clone();
        let restart = changed_tables(&self.startup, &config.text);
        Ok((config.text, composite, restart))
    }

    /// Reads, checks and builds the file, and swaps the tree in when all of that passed.
    pub(crate) fn reload(&self) -> Outcome {
        let (text, composite, restart) = match self.read() {
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
        let root = match composite.build_with(&distro) {
            Ok(root) => root,
            Err(problem) => {
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
        let failures = self.sampler_failures();
        let (generation, previous) = self.sampler.put(Arc::from(root));
        let previous_text = std::mem::replace(&mut *applied, text);
        if let Ok(mut w) = self.watched.lock() {
            *w = Some((
                std::time::Instant::now() + self.window,
                failures,
                previous,
                previous_text,
            ));
        }
        Outcome::Applied {
            generation,
            sampler: self.sampler.description(),
            restart,
        }
    }

    fn sampler_failures(&self) -> u64 {
        self.faults.count(crate::distro::faults::Component::Sampler) + self.faults.hung()
    }

    /// Looks at the tree applied last while its health window lasts: past [`ROLLBACK_FAILURES`] failures of the
    /// sampler since it came in, the tree before it comes back (said once); past the window, it is kept.
    pub(crate) fn check_health(&self) -> Option<Outcome> {
        let mut watched = self.watched.lock().ok()?;
        let (until, at_apply, _, _) = watched.as_ref()?;
        let failed = self.sampler_failures().saturating_sub(*at_apply);
        if failed >= ROLLBACK_FAILURES {
            let (_, _, previous, previous_text) = watched.take()?;
            // Never both locks at once (a reload takes `applied`, then `watched`).
            drop(watched);
            let (generation, _) = self.sampler.put(previous);
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
                reason: format!(
                    "the sampler failed {failed} times within {:?} of the reload (errors, panics or hangs; see \
                     `ndotel check`)",
                    self.window
                ),
            });
        }
        if std::time::Instant::now() >= *until {
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
        let generation = self.sampler.generation();
        let (word, detail) = match outcome {
            Outcome::Applied {
                sampler, restart, ..
            } => (
                "applied",
                format!(
                    "sampler: {sampler}{}",
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
                format!("{reason}; the running sampler (generation {generation}) is unchanged"),
            ),
            Outcome::Unchanged => ("unchanged", "the file says what is running".into()),
            Outcome::RolledBack { reason, .. } => (
                "rolled back",
                format!(
                    "{reason}; the tree before it is back: {}",
                    self.sampler.description()
                ),
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
                "file": file,
                "sha256": sha,
                "outcome": word,
                "generation": generation,
                "detail": detail,
            });
            // Written whole, then renamed over the old one: a reader never sees half a status.
            let tmp = status.with_extension("tmp");
            let written = std::fs::write(&tmp, json.to_string() + "\n")
                .and_then(|()| std::fs::rename(&tmp, status));
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

/// The settings of a configuration file that changed besides its sampler: each needs a restart.
fn changed_settings(
    old: &crate::settings::declared::Declared,
    new: &crate::settings::declared::Declared,
) -> Vec<String> {
    let (old, new) = (&old.translated, &new.translated);
    let mut keys: Vec<&String> = old.vars.keys().chain(new.vars.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out: Vec<String> = keys
        .into_iter()
        .filter(|k| !k.starts_with("OTEL_TRACES_SAMPLER"))
        .filter(|k| old.vars.get(*k).map(|v| &v.0) != new.vars.get(*k).map(|v| &v.0))
        .map(|k| k.to_string())
        .collect();
    if old.views != new.views {
        out.push("meter_provider.views".into());
    }
    if old.distro_settings != new.distro_settings {
        out.push("distribution.ndotel.settings".into());
    }
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
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts reloading `reloader` as `mode` says; `None` when off or when `SIGHUP` cannot be watched (said once).
pub(crate) fn start(reloader: Reloader, mode: Mode) -> Option<Running> {
    if mode == Mode::Off {
        return None;
    }
    let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "ndotel: warning: cannot watch for SIGHUP ({e}); the sampler will not be reloaded"
            );
            return None;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("ndotel-reload".into())
        .spawn(move || {
            // The file seen at the last look (a change is taken once it reads the same twice: a finished write),
            // and the file last refused (not tried again until it changes: its content, or its mode or owner, which
            // the trust checks judge — a `chmod` moves its ctime).
            let mut last_seen: Option<Look> = None;
            let mut refused: Option<Look> = None;
            while !stopped.load(Ordering::Relaxed) {
                let mut due = signals.pending().next().is_some();
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
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    if let Err(e) = spawned {
        eprintln!(
            "ndotel: warning: cannot start the reload thread ({e}); the sampler will not be reloaded"
        );
        return None;
    }
    Some(Running { stop })
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
            Composite::new(root),
            None,
            &config,
            &Env::from_pairs::<&str, &str>([], dir.path()),
            Arc::new(crate::distro::faults::Faults::new("test")),
        );
        (dir, path, reloader)
    }

    #[test]
    fn a_good_file_is_swapped_in_and_a_bad_one_leaves_the_running_tree_untouched() {
        let (_dir, path, r) = setup("[sampler]\ncomposite = { always_off = {} }\n");
        assert_eq!(r.sampler.description(), "Composite{AlwaysOff}");
        assert_eq!(r.reload(), Outcome::Unchanged);
        std::fs::write(&path, "[sampler]\ncomposite = { always_on = {} }\n").unwrap();
        assert_eq!(
            r.reload(),
            Outcome::Applied {
                generation: 1,
                sampler: "Composite{AlwaysOn}".into(),
                restart: vec![],
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
            assert_eq!(r.sampler.generation(), 1);
            assert_eq!(r.sampler.description(), "Composite{AlwaysOn}");
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
        assert!(r.sampler.description().contains("th=8"));
    }
}
