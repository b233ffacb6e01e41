//! The OpenTelemetry configuration file (`OTEL_CONFIG_FILE`): a YAML file in the schema of
//! opentelemetry-configuration (`file_format` 1.x) that describes the whole SDK.
//!
//! Reading it: the YAML is parsed with positions (`yaml.rs`), environment references are substituted in scalar values
//! as the data model says, the result is validated against the schema (bundled, v1.1.0), and the file is then
//! translated (`translate.rs`) into the one settings model every other source feeds: the values of the standard
//! settings (each with the file, line and property path it came from), the metric views, the composite sampler and
//! the distro's own settings. What ndotel cannot honour is a warning naming its path, never silently ignored.
//!
//! When the file is set, the standard `OTEL_*` variables it does not reference have no effect (a warning names each
//! one that is set); ndotel's own `OTEL_RUST_*` variables keep working unless the file's `distribution.ndotel`
//! section sets the same thing.

mod schema;
pub mod support;
mod translate;
pub(crate) mod yaml;

use crate::env::Env;
use crate::settings::config::{ConfigError, ConfigFile, MAX_CONFIG_BYTES};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(crate) use translate::Translated;

/// Where a node of the file was, and the variables its value was substituted from.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Spot {
    pub(crate) line: usize,
    pub(crate) col: usize,
    pub(crate) vars: Vec<String>,
}

/// The variable naming the file.
pub const CONFIG_FILE_VAR: &str = "OTEL_CONFIG_FILE";
/// Its name before the configuration became stable, still read (with a warning).
pub const EXPERIMENTAL_CONFIG_FILE_VAR: &str = "OTEL_EXPERIMENTAL_CONFIG_FILE";
/// The `file_format` major version ndotel reads.
pub const FILE_FORMAT_MAJOR: u64 = 1;
/// The newest `file_format` minor version ndotel knows (its schema is bundled).
pub const FILE_FORMAT_MINOR: u64 = 1;

/// A configuration file, read, validated and translated. Its `Debug` shows the path only: the model holds
/// substituted values, header secrets among them.
#[derive(Clone)]
pub struct Declared {
    /// The file.
    pub path: PathBuf,
    /// Its model after substitution, as the schema validated it.
    pub model: Value,
    spots: BTreeMap<String, Spot>,
    /// The file's text, as read.
    pub(crate) text: String,
    /// What the file means for ndotel.
    pub(crate) translated: Translated,
}

impl std::fmt::Debug for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Declared")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Declared {
    /// The file `OTEL_CONFIG_FILE` (else `OTEL_EXPERIMENTAL_CONFIG_FILE`) names, if any; relative to the working
    /// directory.
    pub fn from_env(env: &Env) -> Result<Option<Declared>, ConfigError> {
        let (var, path) = match (
            env.get(CONFIG_FILE_VAR),
            env.get(EXPERIMENTAL_CONFIG_FILE_VAR),
        ) {
            (Some(p), _) => (CONFIG_FILE_VAR, p),
            (None, Some(p)) => (EXPERIMENTAL_CONFIG_FILE_VAR, p),
            (None, None) => return Ok(None),
        };
        let mut declared = Declared::load(&env.cwd().join(path.trim()), env)?;
        if var == EXPERIMENTAL_CONFIG_FILE_VAR {
            declared.translated.warnings.insert(
                0,
                format!(
                    "{EXPERIMENTAL_CONFIG_FILE_VAR} is deprecated; name the file with {CONFIG_FILE_VAR}"
                ),
            );
        }
        Ok(Some(declared))
    }

    /// Reads, substitutes, validates and translates the file at `path`, with variables from `env`.
    pub fn load(path: &Path, env: &Env) -> Result<Declared, ConfigError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let text = Declared::read(&path)?;
        Declared::parse(&path, &text, env)
    }

    /// The text of the file at `path`, when its name, owner and permissions pass the checks of start-up (a file
    /// another user can change is refused) and it is not too large.
    pub(crate) fn read(path: &Path) -> Result<String, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message,
        };
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            return Err(parse_error(
                "a configuration file's name must end in .yaml or .yml (the data model requires it); \
                 a distro.toml goes in OTEL_RUST_DISTRO_CONFIG"
                    .into(),
            ));
        }
        let checked = crate::trust::check_chain(path).map_err(|reason| ConfigError::Untrusted {
            path: path.to_path_buf(),
            reason,
        })?;
        crate::settings::config::read_bounded(&checked, MAX_CONFIG_BYTES).map_err(|source| {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Substitutes, validates and translates `text`, the contents of `path`.
    pub fn parse(path: &Path, text: &str, env: &Env) -> Result<Declared, ConfigError> {
        let parse_error = |line, column, message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let (parsed, mut warnings) = validated(path, text, env, true)?;
        let spot_of = |pointer: &str| spot(&parsed.spots, pointer);
        let mut translated = translate::translate(
            &parsed.value,
            &|pointer| origin(path, &parsed.spots, pointer),
            &|name| env.get(name).map(str::to_string),
        )
        .map_err(|(pointer, m)| {
            let s = spot_of(&pointer);
            parse_error(s.line, s.col, format!("{}: {m}", shown_path(&pointer)))
        })?;
        warnings.append(&mut translated.warnings);
        translated.warnings = warnings;
        Ok(Declared {
            path: path.to_path_buf(),
            text: text.to_string(),
            model: parsed.value,
            spots: parsed.spots,
            translated,
        })
    }

    /// Where the node at `pointer` (a JSON pointer) is: `file:line`, and the variables it was substituted from.
    pub fn origin(&self, pointer: &str) -> String {
        origin(&self.path, &self.spots, pointer)
    }

    /// The warnings of reading it: a newer minor `file_format`, what ndotel cannot honour (each naming its path).
    pub fn warnings(&self) -> &[String] {
        &self.translated.warnings
    }

    /// The environment the settings are resolved from: `env` without the standard `OTEL_*` variables (the file
    /// replaces them), with the values the file gives, each remembered with its origin. ndotel's own `OTEL_RUST_*`
    /// variables stay unless the file sets them.
    pub(crate) fn environment(&self, env: &Env) -> Env {
        let mut out = env.without(|k| standard(k) && !env.is_forced(k));
        for (var, (value, origin)) in &self.translated.vars {
            if !env.is_forced(var) {
                out = out.with_origin(var, value, origin);
            }
        }
        out
    }

    /// The standard variables set in `env` that the file replaces: each has no effect.
    pub(crate) fn ignored_vars(&self, env: &Env) -> Vec<String> {
        // A variable the file references (`${VAR}`, or the `service` detector's) is in effect through it.
        let referenced: std::collections::BTreeSet<&str> = self
            .spots
            .values()
            .flat_map(|s| s.vars.iter().map(String::as_str))
            .chain(self.translated.referenced.iter().map(String::as_str))
            .collect();
        let mut vars: Vec<String> = env
            .vars()
            .filter(|(k, v)| {
                standard(k) && !v.trim().is_empty() && !referenced.contains(k.as_str())
            })
            .map(|(k, _)| k.clone())
            .collect();
        vars.sort();
        vars
    }

    /// `config` (the `distro.toml` in use, if any) as the file amends it: the file's views, composite sampler and
    /// distro settings replace the `distro.toml` ones, and `[otel]`, `[[views]]` and `[sampler]` give way to the
    /// file (a warning names each that was set).
    pub(crate) fn amend(
        &self,
        config: Option<ConfigFile>,
        warnings: &mut Vec<String>,
    ) -> Option<ConfigFile> {
        let t = &self.translated;
        let needs_config =
            t.composite.is_some() || !t.views.is_empty() || t.distro_settings.is_some();
        let mut config = match config {
            Some(c) => c,
            None if needs_config => ConfigFile {
                path: self.path.clone(),
                text: String::new(),
                config: Default::default(),
            },
            None => return None,
        };
        let shown = crate::text::shown(&config.path);
        let file = crate::text::shown(&self.path);
        let c = &mut config.config;
        if c.otel != crate::settings::config::OtelSection::default() {
            warnings.push(format!(
                "[otel] in {shown} has no effect: {CONFIG_FILE_VAR} ({file}) configures the SDK"
            ));
            c.otel = Default::default();
        }
        if !c.views.is_empty() {
            warnings.push(format!(
                "[[views]] in {shown} have no effect: {CONFIG_FILE_VAR} ({file}) configures the SDK \
                 (meter_provider.views)"
            ));
        }
        c.views = t
            .views
            .iter()
            .map(|v| toml::Spanned::new(0..0, v.clone()))
            .collect();
        if c.sampler.is_some() {
            warnings.push(format!(
                "[sampler] in {shown} has no effect: {CONFIG_FILE_VAR} ({file}) configures the SDK \
                 (tracer_provider.sampler)"
            ));
        }
        c.sampler = t.composite.clone().map(|composite| {
            toml::Spanned::new(0..0, crate::consistent::SamplerSection { composite })
        });
        if let Some((name, table)) = &t.distro_settings {
            c.distro.insert(name.clone(), table.clone());
        }
        Some(config)
    }
}

/// What the schema validator does: `text` parsed, substituted and validated against the schema (no version check,
/// no translation).
fn validated(
    path: &Path,
    text: &str,
    env: &Env,
    check_version: bool,
) -> Result<(yaml::Parsed, Vec<String>), ConfigError> {
    let parse_error = |line, column, message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
    };
    let parsed = yaml::parse(text, &|name| env.raw(name).map(str::to_string))
        .map_err(|e| parse_error(e.line.max(1), e.col.max(1), e.message))?;
    let mut warnings = Vec::new();
    // The version first: a file of another major is refused as such, and one of a newer minor may use properties
    // added since, which are then warnings (a property of 1.2 that 1.1 lacks), not errors.
    let mut newer = false;
    if check_version
        && parsed
            .value
            .get("file_format")
            .is_some_and(Value::is_string)
    {
        let s = spot(&parsed.spots, "/file_format");
        if let Some(w) = file_format(&parsed.value).map_err(|m| parse_error(s.line, s.col, m))? {
            warnings.push(w);
            newer = true;
        }
    }
    if let Err(problems) = schema::validate(&parsed.value) {
        let (unknown, problems): (Vec<_>, Vec<_>) = problems
            .into_iter()
            .partition(|(_, m)| newer && m.starts_with("unknown property"));
        for (pointer, message) in unknown {
            warnings.push(format!(
                "{}: {message} (of a newer file_format, it has no effect)",
                origin(path, &parsed.spots, &pointer)
            ));
        }
        if !problems.is_empty() {
            let mut lines = problems.iter().map(|(pointer, message)| {
                let s = spot(&parsed.spots, pointer);
                (s.line, s.col, format!("{}: {message}", shown_path(pointer)))
            });
            let (line, column, first) = lines.next().unwrap_or((1, 1, String::new()));
            let rest: Vec<String> = lines
                .map(|(l, c, m)| format!("\n{}:{l}:{c}: {m}", crate::text::shown(path)))
                .collect();
            return Err(parse_error(
                line,
                column,
                format!("{first}{}", rest.concat()),
            ));
        }
    }
    Ok((parsed, warnings))
}

/// `text` as the configuration schema's validator sees it: parsed, substituted with `env`'s variables and
/// validated, as JSON (what `otel_config_validator -o` writes). The `file_format` version is not checked here.
pub fn validate(path: &Path, text: &str, env: &Env) -> Result<Value, ConfigError> {
    validated(path, text, env, false).map(|(p, _)| p.value)
}

/// Whether `var` is a standard OpenTelemetry variable the file replaces.
fn standard(var: &str) -> bool {
    var.starts_with("OTEL_")
        && !var.starts_with("OTEL_RUST_")
        && var != CONFIG_FILE_VAR
        && var != EXPERIMENTAL_CONFIG_FILE_VAR
}

/// The spot of `pointer`, else of its nearest ancestor that has one (a node inside an alias).
fn spot(spots: &BTreeMap<String, Spot>, pointer: &str) -> Spot {
    let mut p = pointer;
    loop {
        if let Some(s) = spots.get(p) {
            return s.clone();
        }
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None => {
                return Spot {
                    line: 1,
                    col: 1,
                    vars: Vec::new(),
                };
            }
        }
    }
}

fn origin(path: &Path, spots: &BTreeMap<String, Spot>, pointer: &str) -> String {
    let s = spot(spots, pointer);
    let vars = if s.vars.is_empty() {
        String::new()
    } else {
        let v: Vec<String> = s.vars.iter().map(|v| format!("${{{v}}}")).collect();
        format!(" via {}", v.join(" "))
    };
    format!(
        "{}:{} {}{vars}",
        crate::text::shown(path),
        s.line,
        shown_path(pointer)
    )
}

/// A JSON pointer as the property path people read: `tracer_provider.processors[0].batch`.
pub(crate) fn shown_path(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    if out.is_empty() {
        "(the document)".into()
    } else {
        out
    }
}

/// Checks `file_format`: major 1 is read, another major is an error; a newer minor than ndotel knows is a warning
/// (its new properties are unknown keys, reported as such).
fn file_format(model: &Value) -> Result<Option<String>, String> {
    let raw = model
        .get("file_format")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let core = raw.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.');
    let major = parts.next().and_then(|m| m.parse::<u64>().ok());
    let minor = match parts.next() {
        None => Some(0),
        Some(m) => m.parse::<u64>().ok(),
    };
    match (major, minor) {
        (Some(FILE_FORMAT_MAJOR), Some(minor)) => Ok((minor > FILE_FORMAT_MINOR).then(|| {
            format!(
                "file_format {raw:?} is newer than the {FILE_FORMAT_MAJOR}.{FILE_FORMAT_MINOR} ndotel knows: \
                 properties added since are reported as unknown"
            )
        })),
        (Some(major), Some(_)) if major != FILE_FORMAT_MAJOR => Err(format!(
            "file_format {raw:?} is major version {major}; ndotel reads {FILE_FORMAT_MAJOR}.x \
             (write file_format: \"{FILE_FORMAT_MAJOR}.{FILE_FORMAT_MINOR}\" and follow the migration notes)"
        )),
        _ => Err(format!(
            "file_format {raw:?} is not a version; write file_format: \"{FILE_FORMAT_MAJOR}.{FILE_FORMAT_MINOR}\""
        )),
    }
}

#[cfg(test)]
mod tests;
