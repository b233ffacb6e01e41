//! `distro.toml`: where it is found, what it may contain, and errors that point at file:line:column.
//!
//! This is the raw stage of the configuration (ripgrep's `LowArgs`): what the file says, kept apart from the
//! environment. [`crate::settings`] merges it with the environment into the effective settings.

use crate::env::Env;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The largest `distro.toml` read: a configuration file, not a data file.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a regular file of at most `limit` bytes. Opened non-blocking, so a FIFO cannot hang start-up, and checked
/// on the open descriptor, so `/dev/zero` or a 2 GB file is an error instead of a hang or an exhausted memory.
pub(crate) fn read_bounded(checked: &crate::trust::Checked, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt};
    // The file the trust checks verified, by its resolved path, no link followed: a link or file swapped in since
    // is not read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&checked.real)?;
    let meta = file.metadata()?;
    if (meta.dev(), meta.ino()) != checked.id
        || meta.mode() & 0o022 != 0
        || !(meta.uid() == 0 || meta.uid() == crate::trust::current_uid())
    {
        return Err(std::io::Error::other(
            "it was replaced, or changed mode or owner, while it was checked; try again, and find out who can \
             write there",
        ));
    }
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO or directory cannot be a configuration file)",
        ));
    }
    if meta.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} bytes, more than the limit of {limit}", meta.len()),
        ));
    }
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it grew past the limit of {limit} bytes while being read"),
        ));
    }
    Ok(text)
}

/// An error reading `distro.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a key ndotel does not know.
    #[error("{}:{line}:{column}: {message}", crate::text::shown(.path))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// The file may not be trusted: it, or a directory above it, can be changed by another user.
    #[error("{}: refused: {reason}", crate::text::shown(.path))]
    Untrusted {
        /// The file.
        path: PathBuf,
        /// Which path broke which rule, and the fix.
        reason: String,
    },
    /// An environment variable has a value ndotel cannot use.
    #[error("{var}={value:?} is not valid: expected {expected}")]
    Env {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
        /// What would have been valid.
        expected: String,
    },
}

/// A plugin entry of the `[opentelemetry_distro]` table: a path, or a path with a sha256 pin.
///
/// A table accepts exactly `path` and `sha256` (64 hex digits, either case): a misspelled key (`sha`, `checksum`,
/// `SHA256`) is an error naming it, never a silently unpinned plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginEntry {
    /// `name = "path/to/plugin.so"`.
    Path(PathBuf),
    /// `name = { path = "...", sha256 = "..." }`.
    Pinned {
        /// The `.so` file.
        path: PathBuf,
        /// The expected sha256 of the file, hex.
        sha256: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinnedEntry {
    path: PathBuf,
    sha256: Option<String>,
}

impl<'de> Deserialize<'de> for PluginEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PluginEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a path ("lib.so") or a table { path = "lib.so", sha256 = "<64 hex digits>" }"#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PluginEntry, E> {
                Ok(PluginEntry::Path(PathBuf::from(v)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<PluginEntry, A::Error> {
                let e =
                    PinnedEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if let Some(pin) = &e.sha256
                    && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(serde::de::Error::custom(format!(
                        "sha256 must be 64 hex digits (the output of `sha256sum`), not {pin:?}"
                    )));
                }
                Ok(PluginEntry::Pinned {
                    path: e.path,
                    sha256: e.sha256.map(|p| p.to_ascii_lowercase()),
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl PluginEntry {
    /// The path as written.
    pub fn path(&self) -> &Path {
        match self {
            PluginEntry::Path(p) | PluginEntry::Pinned { path: p, .. } => p,
        }
    }
    /// The sha256 pin, if any.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            PluginEntry::Path(_) => None,
            PluginEntry::Pinned { sha256, .. } => sha256.as_deref(),
        }
    }
}

/// `[plugins]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// Directories whose `.so` files are loaded as plugins (relative to the file).
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Turn plugin load errors into a start-up failure.
    pub fail_fast: Option<bool>,
    /// `OTEL_RUST_DISTRO_FALLBACK`: what runs when the selected distro cannot be used.
    pub fallback: Option<Fallback>,
    /// `OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR`: what happens to a span the distro's processor failed on.
    pub on_processor_error: Option<OnProcessorError>,
    /// `OTEL_RUST_DISTRO_CALL_TIMEOUT`, milliseconds.
    pub call_timeout: Option<u64>,
}

/// `[otel]`: the standard settings, overridden by their `OTEL_*` environment variables.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtelSection {
    /// `OTEL_SERVICE_NAME`.
    pub service_name: Option<String>,
    /// `OTEL_TRACES_EXPORTER` (comma list).
    pub traces_exporter: Option<String>,
    /// `OTEL_METRICS_EXPORTER` (comma list).
    pub metrics_exporter: Option<String>,
    /// `OTEL_LOGS_EXPORTER` (comma list).
    pub logs_exporter: Option<String>,
    /// `OTEL_TRACES_SAMPLER`.
    pub traces_sampler: Option<String>,
    /// `OTEL_TRACES_SAMPLER_ARG`.
    pub traces_sampler_arg: Option<String>,
    /// `OTEL_PROPAGATORS` (comma list).
    pub propagators: Option<String>,
    /// `OTEL_SDK_DISABLED`.
    pub sdk_disabled: Option<bool>,
    /// `OTEL_METRIC_EXPORT_INTERVAL`, milliseconds.
    pub metric_export_interval: Option<u64>,
    /// `OTEL_EXPORTER_FILE_TRACES_PATH`.
    pub file_traces_path: Option<PathBuf>,
    /// `OTEL_EXPORTER_FILE_METRICS_PATH`.
    pub file_metrics_path: Option<PathBuf>,
    /// `OTEL_EXPORTER_FILE_LOGS_PATH`.
    pub file_logs_path: Option<PathBuf>,
}

/// The contents of one `distro.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The distro used when `OTEL_RUST_DISTRO` is unset.
    pub default: Option<String>,
    /// Plugins by name: `name = "path.so"` or `name = { path = "...", sha256 = "..." }`.
    #[serde(default)]
    pub opentelemetry_distro: BTreeMap<String, PluginEntry>,
    /// Plugin directories and loading policy.
    #[serde(default)]
    pub plugins: PluginsSection,
    /// Standard OpenTelemetry settings.
    #[serde(default)]
    pub otel: OtelSection,
    /// Per-distro tables, handed to the distro's `init`.
    #[serde(default)]
    pub distro: BTreeMap<String, toml::Table>,
    /// Metric views (`[[views]]`), applied with the SDK's view API in this order.
    #[serde(default)]
    pub views: Vec<toml::Spanned<ViewConfig>>,
    /// A composite sampler the host builds (`[sampler]`), used unless `OTEL_TRACES_SAMPLER` names another.
    pub sampler: Option<toml::Spanned<crate::consistent::SamplerSection>>,
}

/// One `[[views]]` entry: which instruments it matches and how their streams change.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    /// The instrument name it applies to; `*` matches any run of characters (`http.server.*`).
    pub instrument: String,
    /// Also require this instrument scope (meter) name.
    pub meter: Option<String>,
    /// The stream's new name.
    pub rename: Option<String>,
    /// The stream's new description.
    pub description: Option<String>,
    /// Only these attribute keys are kept; every other key is dropped (an empty list drops them all).
    pub keep_attributes: Option<Vec<String>>,
    /// Histogram bucket boundaries, increasing.
    pub buckets: Option<Vec<f64>>,
    /// Drop the instrument: nothing it records is exported.
    #[serde(default)]
    pub drop: bool,
    /// At most this many series per collection (the SDK's default is 2000).
    pub cardinality_limit: Option<usize>,
    /// The stream's aggregation, when not the instrument's default: `sum`, `last_value`,
    /// `explicit_bucket_histogram` or `base2_exponential_bucket_histogram` (`drop = true` and `buckets` say the others).
    pub aggregation: Option<String>,
    /// Whether a histogram records its min and max (default `true`).
    pub record_min_max: Option<bool>,
    /// A base-2 exponential histogram's most buckets (default 160) and largest scale (default 20, at least -10).
    pub max_size: Option<u32>,
    /// See `max_size`.
    pub max_scale: Option<i8>,
}

/// A configuration file's cardinality limits (`meter_provider.readers[].cardinality_limits`): per instrument kind,
/// else `default`, else the SDK's 2000. A view's own `cardinality_limit` comes first.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CardinalityLimits {
    /// `default`.
    pub(crate) default: Option<usize>,
    /// By the schema's name of the instrument kind (`counter`, `observable_gauge`, …).
    pub(crate) by_kind: BTreeMap<String, usize>,
}

impl CardinalityLimits {
    /// The schema's names of the instrument kinds.
    pub(crate) const KINDS: [&'static str; 7] = [
        "counter",
        "gauge",
        "histogram",
        "observable_counter",
        "observable_gauge",
        "observable_up_down_counter",
        "up_down_counter",
    ];

    /// The limit of an instrument of kind `kind` (a name of [`Self::KINDS`]).
    pub(crate) fn of(&self, kind: &str) -> Option<usize> {
        self.by_kind.get(kind).copied().or(self.default)
    }
}

/// The largest cardinality limit ndotel takes (a view's, or a configuration file's): the SDK sets aside room for that
/// many series of each instrument, per reader, when the instrument is created.
pub(crate) const MAX_CARDINALITY_LIMIT: usize = 100_000;

/// The most buckets a base-2 exponential histogram may keep (the SDK's default is 160).
pub(crate) const MAX_EXPONENTIAL_BUCKETS: u32 = 16_384;

/// The aggregations a view may name (`aggregation`).
pub(crate) const VIEW_AGGREGATIONS: &[&str] = &[
    "default",
    "sum",
    "last_value",
    "explicit_bucket_histogram",
    "base2_exponential_bucket_histogram",
];

impl ViewConfig {
    /// Whether the view applies to instrument `name` of meter `meter`.
    pub fn matches(&self, name: &str, meter: &str) -> bool {
        glob(&self.instrument, name) && self.meter.as_deref().is_none_or(|m| m == meter)
    }

    /// What is wrong with it, if anything (checked when the file is loaded).
    pub(crate) fn problem(&self) -> Option<String> {
        if self.instrument.trim().is_empty() {
            return Some(
                "`instrument` is empty; name an instrument (`*` matches any run of characters)"
                    .into(),
            );
        }
        if let Some(b) = &self.buckets
            && (b.iter().any(|x| !x.is_finite()) || b.windows(2).any(|w| w[0] >= w[1]))
        {
            return Some(format!(
                "`buckets` {b:?} must be finite and strictly increasing"
            ));
        }
        if let Some(limit) = self
            .cardinality_limit
            .filter(|l| !(1..=MAX_CARDINALITY_LIMIT).contains(l))
        {
            return Some(format!(
                "`cardinality_limit` {limit} must be within 1..={MAX_CARDINALITY_LIMIT} (the SDK sets aside room \
                 for that many series of each instrument when it is created)"
            ));
        }
        let aggregation = self.aggregation.as_deref();
        if let Some(a) = aggregation.filter(|a| !VIEW_AGGREGATIONS.contains(a)) {
            return Some(format!(
                "`aggregation` {a:?} is none of {}",
                VIEW_AGGREGATIONS.join(", ")
            ));
        }
        let exponential = aggregation == Some("base2_exponential_bucket_histogram");
        if self.buckets.is_some() && aggregation.is_some_and(|a| a != "explicit_bucket_histogram") {
            return Some(
                "`buckets` are an explicit bucket histogram's: not with another `aggregation`"
                    .into(),
            );
        }
        if !exponential && (self.max_size.is_some() || self.max_scale.is_some()) {
            return Some(
                "`max_size` and `max_scale` are a base-2 exponential histogram's: set `aggregation = \
                 \"base2_exponential_bucket_histogram\"`"
                    .into(),
            );
        }
        if self.record_min_max.is_some() && matches!(aggregation, Some("sum" | "last_value")) {
            return Some(
                "`record_min_max` is a histogram's: not with `sum` or `last_value`".into(),
            );
        }
        if self
            .max_size
            .is_some_and(|n| !(2..=MAX_EXPONENTIAL_BUCKETS).contains(&n))
            || self.max_scale.is_some_and(|s| !(-10..=20).contains(&s))
        {
            return Some(format!(
                "`max_size` must be within 2..={MAX_EXPONENTIAL_BUCKETS} and `max_scale` within -10..=20"
            ));
        }
        if self.drop
            && (self.rename.is_some()
                || self.keep_attributes.is_some()
                || self.buckets.is_some()
                || self.aggregation.is_some())
        {
            return Some(
                "`drop = true` drops the instrument; its other keys would do nothing".into(),
            );
        }
        None
    }
}

/// `pattern` with `*` as any run of characters, against `name`.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A loaded `distro.toml`, with where it came from.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// The file (absolute).
    pub path: PathBuf,
    /// Its source text (for locating keys in error messages).
    pub text: String,
    /// What it says.
    pub config: FileConfig,
}

impl ConfigFile {
    /// Finds `distro.toml`: `OTEL_RUST_DISTRO_CONFIG`, else `./distro.toml`, else none.
    ///
    /// A `./distro.toml` (file or symlink) another user owns is ignored with a warning rather than refused: in a
    /// working directory others can write to (`/tmp`), anyone could otherwise plant one and turn the service's
    /// telemetry off. One of the user's own that fails the trust checks is refused, as is any file named by
    /// `OTEL_RUST_DISTRO_CONFIG`.
    pub fn discover(env: &Env) -> Result<Option<ConfigFile>, ConfigError> {
        use std::os::unix::fs::MetadataExt as _;
        if let Some(path) = env.get("OTEL_RUST_DISTRO_CONFIG") {
            return ConfigFile::load(Path::new(path)).map(Some);
        }
        let local = env.cwd().join("distro.toml");
        if !local.is_file() {
            return Ok(None);
        }
        // Whose it is, asked again when it fails the checks: it may have been swapped meanwhile.
        let planted = || {
            let me = crate::trust::current_uid();
            match std::fs::symlink_metadata(&local) {
                // A second name for a file (a hard link) may have been made by anyone who can write here.
                Ok(meta) if meta.nlink() > 1 && !meta.is_dir() => {
                    eprintln!(
                        "ndotel: warning: ignoring {}, found in the working directory: it has {} hard links, and \
                         anyone who can write there can make one; name the file to use with \
                         OTEL_RUST_DISTRO_CONFIG",
                        crate::text::shown(&local),
                        meta.nlink()
                    );
                    true
                }
                Ok(meta) if meta.uid() == 0 || meta.uid() == me => false,
                Ok(meta) => {
                    eprintln!(
                        "ndotel: warning: ignoring {}, found in the working directory: it is owned by uid {}, not \
                         by root or you (uid {me}); name the file to use with OTEL_RUST_DISTRO_CONFIG",
                        crate::text::shown(&local),
                        meta.uid()
                    );
                    true
                }
                // Gone since: as if it had never been there.
                Err(_) => true,
            }
        };
        if planted() {
            return Ok(None);
        }
        match ConfigFile::load(&local) {
            Err(ConfigError::Untrusted { .. } | ConfigError::Read { .. }) if planted() => Ok(None),
            loaded => loaded.map(Some),
        }
    }

    /// Reads and parses one file. It must be a regular file of at most [`MAX_CONFIG_BYTES`], and pass the same
    /// trust checks as a plugin (it names plugins and switches redaction on and off): neither it nor any directory
    /// above it may be changeable by another user.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let untrusted = |reason: String| ConfigError::Untrusted {
            path: path.clone(),
            reason,
        };
        let checked = crate::trust::check_chain(&path).map_err(untrusted)?;
        let text =
            read_bounded(&checked, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
        let config = ConfigFile::parse(&path, &text)?;
        Ok(ConfigFile { path, text, config })
    }

    /// Parses `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
        let config = toml::from_str::<FileConfig>(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            // serde names the unknown key and the keys valid where it stands ("unknown field `x`, expected …").
            let message = e.message().trim().to_string();
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        })?;
        for view in &config.views {
            if let Some(problem) = view.get_ref().problem() {
                let (line, column) = line_col(text, view.span().start);
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: format!("in [[views]]: {problem}"),
                });
            }
        }
        if let Some(sampler) = &config.sampler
            && let Err(problem) = sampler.get_ref().composite.build()
        {
            let (line, column) = line_col(text, sampler.span().start);
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: format!("in [sampler] composite.{problem}"),
            });
        }
        Ok(config)
    }

    /// The directory relative paths in the file are resolved against.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// Whether the `[distro.<name>]` table in effect is the one this file's text holds (a configuration file's
    /// `distribution.ndotel.settings` replaces it).
    pub fn distro_table_is_own(&self, distro: &str) -> bool {
        toml::from_str::<FileConfig>(&self.text)
            .is_ok_and(|own| own.distro.get(distro) == self.config.distro.get(distro))
    }

    /// Where the setting at `path` (keys from `[distro.<name>]` down, array indexes in decimal) is set, as
    /// `file:line:column` of its key: the deepest key of the path the file has (the table's own when it has none
    /// of them), or `None` when the file has no `[distro.<name>]` table.
    pub fn locate_distro_setting(&self, distro: &str, path: &[impl AsRef<str>]) -> Option<String> {
        use toml::de::DeValue;
        if !self.distro_table_is_own(distro) {
            return None;
        }
        let root = toml::de::DeTable::parse(&self.text).ok()?;
        let (key, value) = root
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == "distro")?;
        let mut at = key.span().start;
        let mut node = value.get_ref();
        for (i, want) in std::iter::once(distro)
            .chain(path.iter().map(AsRef::as_ref))
            .enumerate()
        {
            let found = match node {
                DeValue::Table(table) => table
                    .iter()
                    .find(|(k, _)| k.get_ref().as_ref() == want)
                    .map(|(k, v)| (k.span().start, v)),
                DeValue::Array(items) => want
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| items.get(n))
                    .map(|v| (v.span().start, v)),
                _ => None,
            };
            match found {
                Some((start, value)) => {
                    at = start;
                    node = value.get_ref();
                }
                // The distro's own table must be there; below it, the deepest key found stands for the path.
                None if i == 0 => return None,
                None => break,
            }
        }
        let (line, column) = line_col(&self.text, at);
        Some(format!(
            "{}:{line}:{column}",
            crate::text::shown(&self.path)
        ))
    }
}

impl fmt::Display for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", crate::text::shown(&self.path))
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// What [`init`](crate::init) runs when the selected distro cannot be used (its plugin refused or missing, its
/// `init` or a component failing, a duplicate name): fail closed by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Telemetry off: nothing the distro would have processed (redacted, dropped) leaves the process.
    Off,
    /// The plain `sdk` distro with the same exporters: telemetry keeps flowing, *without* the distro's redaction.
    Sdk,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fallback::Off => "off",
            Fallback::Sdk => "sdk",
        })
    }
}

/// What happens to a span when the distro's span processor fails on it (returns an error, panics or hangs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnProcessorError {
    /// The span is dropped (counted): a processor that redacts cannot leak what it failed to redact.
    Drop,
    /// The span is exported unchanged: for distros whose processor only enriches.
    Pass,
}

impl fmt::Display for OnProcessorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnProcessorError::Drop => "drop",
            OnProcessorError::Pass => "pass",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `distro.toml` another user planted in the working directory is ignored, not refused (which would turn
    /// telemetry off); the same file named by `OTEL_RUST_DISTRO_CONFIG` is refused, and so is one of the user's own
    /// that others can write.
    #[test]
    fn a_planted_distro_toml_in_the_working_directory_is_ignored_and_a_named_one_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("distro.toml");
        std::fs::write(&file, "[opentelemetry_distro]\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let cwd = Env::from_pairs(Vec::<(String, String)>::new(), dir.path());
        assert!(
            matches!(
                ConfigFile::discover(&cwd),
                Err(ConfigError::Untrusted { .. })
            ),
            "the user's own, writable by others"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            ConfigFile::discover(&cwd).unwrap().is_some(),
            "a trusted one is read"
        );
        // A hard link to it, elsewhere: ignored there (anyone who can write a directory can link a file into it).
        let other = tempfile::tempdir().unwrap();
        std::fs::hard_link(&file, other.path().join("distro.toml")).unwrap();
        let there = Env::from_pairs(Vec::<(String, String)>::new(), other.path());
        assert!(
            ConfigFile::discover(&there).unwrap().is_none(),
            "a hard link: ignored"
        );
        std::fs::remove_file(other.path().join("distro.toml")).unwrap();
        if crate::trust::current_uid() != 0 {
            eprintln!("\n*** SKIPPED: planting a file of another user needs root ***\n");
            return;
        }
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        assert!(
            ConfigFile::discover(&cwd).unwrap().is_none(),
            "planted: ignored"
        );
        let named = cwd.with("OTEL_RUST_DISTRO_CONFIG", file.to_str().unwrap());
        assert!(matches!(
            ConfigFile::discover(&named),
            Err(ConfigError::Untrusted { .. })
        ));
    }

    #[test]
    fn view_globs_match_whole_names_only() {
        for (pattern, name, want) in [
            ("http.server.*", "http.server.request.duration", true),
            ("http.server.*", "http.server.", true),
            ("http.server.*", "xhttp.server.a", false),
            ("*", "anything", true),
            ("*", "", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false), // the prefix and suffix may not overlap
            ("ab*ba", "abba", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*.duration", "http.server.request.duration", true),
            ("*.duration", "duration", false),
        ] {
            assert_eq!(glob(pattern, name), want, "{pattern:?} ~ {name:?}");
        }
        let view = ViewConfig {
            instrument: "items.*".into(),
            meter: Some("app".into()),
            ..Default::default()
        };
        assert!(view.matches("items.created", "app"));
        assert!(!view.matches("items.created", "other"));
    }

    #[test]
    fn a_distro_setting_is_located_at_its_deepest_key_the_file_has() {
        let text = "[distro.d]\n\"a.b\" = 1\nlist = [{ x = 1 }, { y = 2 }]\n[distro.d.t]\nk = 1\n\
                    [[distro.d.rows]]\nn = 1\n[[distro.d.rows]]\n  m = 2\n";
        let file = ConfigFile {
            path: "/x/distro.toml".into(),
            text: text.into(),
            config: ConfigFile::parse(Path::new("/x/distro.toml"), text).unwrap(),
        };
        let at = |path: &[&str]| file.locate_distro_setting("d", path);
        assert_eq!(
            at(&["a.b"]).as_deref(),
            Some("/x/distro.toml:2:1"),
            "a quoted key with a dot"
        );
        assert_eq!(
            at(&["list", "1", "y"]).as_deref(),
            Some("/x/distro.toml:3:22")
        );
        assert_eq!(at(&["t", "k"]).as_deref(), Some("/x/distro.toml:5:1"));
        assert_eq!(
            at(&["rows", "1", "m"]).as_deref(),
            Some("/x/distro.toml:9:3")
        );
        // A key the file lacks (a missing field's table, an index past the end) stands at the deepest one it has.
        assert_eq!(
            at(&["t", "missing"]).as_deref(),
            Some("/x/distro.toml:4:11")
        );
        assert_eq!(at(&["rows", "7"]).as_deref(), Some("/x/distro.toml:6:12"));
        assert_eq!(at(&[]).as_deref(), Some("/x/distro.toml:1:9"));
        assert_eq!(file.locate_distro_setting("other", &["a"]), None);
        // A table a configuration file put in its place is not this file's: no line of it is named.
        let mut replaced = file.clone();
        replaced
            .config
            .distro
            .insert("d".into(), "t = 2".parse().unwrap());
        assert!(!replaced.distro_table_is_own("d") && file.distro_table_is_own("d"));
        assert_eq!(replaced.locate_distro_setting("d", &["t"]), None);
    }

    #[test]
    fn a_views_aggregation_is_checked_where_it_is_written() {
        let ok = ConfigFile::parse(
            Path::new("d.toml"),
            "[[views]]\ninstrument = \"db.client.*\"\naggregation = \"base2_exponential_bucket_histogram\"\n\
             max_size = 80\n",
        )
        .unwrap();
        let view = ok.views[0].get_ref();
        assert_eq!(
            (view.aggregation.as_deref(), view.max_size),
            (Some("base2_exponential_bucket_histogram"), Some(80))
        );
        for (bad, needle) in [
            ("aggregation = \"avg\"", "is none of"),
            ("aggregation = \"sum\"\nbuckets = [1.0]", "`buckets`"),
            ("max_scale = 3", "base-2 exponential"),
            (
                "aggregation = \"sum\"\nrecord_min_max = false",
                "`record_min_max`",
            ),
            (
                "aggregation = \"base2_exponential_bucket_histogram\"\nmax_scale = 40",
                "within -10..=20",
            ),
            (
                "aggregation = \"base2_exponential_bucket_histogram\"\nmax_size = 3000000000",
                "`max_size` must be within",
            ),
            ("cardinality_limit = 100001", "must be within 1..=100000"),
        ] {
            let text = format!("default = \"x\"\n[[views]]\ninstrument = \"a\"\n{bad}\n");
            let err = ConfigFile::parse(Path::new("d.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("d.toml:2:") && err.contains(needle),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn syntax_error_points_at_line_and_column() {
        let err = ConfigFile::parse(Path::new("/x/distro.toml"), "default = \"a\"\n[plugins\n")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/x/distro.toml:2:"), "{text}");
    }

    #[test]
    fn unknown_key_is_named_with_its_position() {
        let err = ConfigFile::parse(
            Path::new("d.toml"),
            "[plugins]\ndirs = []\nfail_fsat = true\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("d.toml:3:1"), "{text}");
        assert!(text.contains("fail_fsat"), "{text}");
    }

    #[test]
    fn plugin_entries_take_both_forms() {
        let cfg = ConfigFile::parse(
            Path::new("d.toml"),
            "[opentelemetry_distro]\na = \"a.so\"\nb = { path = \"b.so\", sha256 = \"ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB\" }\n",
        )
        .unwrap();
        assert_eq!(cfg.opentelemetry_distro["a"].path(), Path::new("a.so"));
        assert_eq!(
            cfg.opentelemetry_distro["b"].sha256(),
            Some("abababababababababababababababababababababababababababababababab")
        );
    }
}
