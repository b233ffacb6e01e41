//! The effective settings, each with where it came from. The precedence is written once, in [`pick`]:
//! CLI flag (which `ndotel run` passes as the environment) > environment > `distro.toml` > the distro's defaults >
//! ndotel's defaults.

pub(crate) mod boot;
pub(crate) mod config;
pub(crate) use config::{Fallback, OnProcessorError};
pub mod declared;

use crate::components::DistroOffer;
use crate::env::Env;
use crate::export::otlp::{OtlpConfig, Signal};
use crate::settings::config::{ConfigError, ConfigFile, OtelSection};
use opentelemetry_sdk::metrics::Temporality;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Built-in span exporters.
pub const BUILTIN_SPAN_EXPORTERS: &[&str] = &["otlp", "console", "file", "none"];
/// Built-in metric exporters.
pub const BUILTIN_METRIC_EXPORTERS: &[&str] = &["otlp", "console", "file", "prometheus", "none"];
/// Built-in log exporters.
pub const BUILTIN_LOG_EXPORTERS: &[&str] = &["otlp", "console", "file", "none"];
/// Built-in samplers.
pub const BUILTIN_SAMPLERS: &[&str] = &[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "composite",
];

/// One setting's documentation.
#[derive(Debug, Clone, Copy)]
pub struct SettingDoc {
    /// The environment variable(s).
    pub env: &'static str,
    /// The `distro.toml` key, or `—`.
    pub file: &'static str,
    /// Where the OpenTelemetry configuration file (`OTEL_CONFIG_FILE`) sets it, or `—`.
    pub declared: &'static str,
    /// The default.
    pub default: &'static str,
    /// What it does.
    pub meaning: &'static str,
}

/// [`SETTINGS`] as the Markdown table of the crate docs.
pub fn settings_table() -> String {
    let mut out = String::from(
        "| Environment | `distro.toml` | Configuration file | Default | Meaning |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            s.env, s.file, s.declared, s.default, s.meaning
        ));
    }
    out
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An environment variable (or the `ndotel run` flag that set it).
    Env(&'static str),
    /// `distro.toml`.
    File(PathBuf),
    /// The OpenTelemetry configuration file (`OTEL_CONFIG_FILE`): `file:line property.path`, and the variables
    /// substituted into the value.
    Declared(String),
    /// The selected distro's default.
    Distro(String),
    /// ndotel's (or the OpenTelemetry specification's) default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env(v) => write!(f, "env {v}"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Declared(o) => write!(f, "config {o}"),
            Source::Distro(d) => write!(f, "distro {d}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value and its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    /// The effective value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// The `OTEL_EXPORTER_OTLP_*` variables `ndotel config` shows when set (header values masked).
const OTLP_VARS: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
];

/// The OTLP variables set, as `ndotel config` rows: header values masked (`api-key=***`).
fn otlp_rows(env: &Env) -> Vec<(&'static str, String, String)> {
    OTLP_VARS
        .iter()
        .filter_map(|var| {
            let value = env.get(var)?;
            let shown = if var.ends_with("HEADERS") {
                value
                    .split(',')
                    .filter(|p| !p.trim().is_empty())
                    // The name only when the entry reads `name=value` with a name that can be one (a token
                    // without `=`, or one ending in `==`, would otherwise be shown).
                    .map(|p| match p.split_once('=') {
                        Some((k, v))
                            if !k.trim().is_empty()
                                && !v.trim().trim_matches('=').is_empty()
                                && k.trim().bytes().all(|b| {
                                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
                                }) =>
                        {
                            format!("{}=***", k.trim())
                        }
                        _ => "***".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                crate::text::printable(value.trim()).into_owned()
            };
            Some((*var, shown, env_source(env, var).to_string()))
        })
        .collect()
}

/// Which `tracing` spans become OpenTelemetry spans, and which events are logged.
pub(crate) const DEFAULT_TRACING_FILTER: &str = "info,otel::tracing=trace";
/// `OTEL_RUST_TRACING_BRIDGE`'s value for ndotel's own `tracing` layer (the default).
pub(crate) const OWN_TRACING_BRIDGE: &str = "ndotel";
/// `OTEL_RUST_OTLP_ENCODER`'s value for ndotel's own OTLP encoder (the default).
pub(crate) const OWN_OTLP_ENCODER: &str = "ndotel";
/// `OTEL_RUST_SPAN_QUEUE`'s value for ndotel's own batch queue.
pub(crate) const OWN_SPAN_QUEUE: &str = "ndotel";

/// Samplers OpenTelemetry specifies that ndotel does not provide: warned about, the default used.
const UNSUPPORTED_SAMPLERS: &[&str] = &["jaeger_remote", "parentbased_jaeger_remote", "xray"];
/// The propagators ndotel provides.
pub(crate) const BUILTIN_PROPAGATORS: &[&str] = &["tracecontext", "baggage", "none"];

/// A list setting to check: variable, setting, built-in names, names OpenTelemetry specifies that ndotel lacks,
/// the distro's names.
/// A list setting's variable, the setting, the built-in names, the names OpenTelemetry specifies that ndotel does not
/// support, the distro's names, the default when the distro names none, and what `distro.toml` says.
type NameList<'a> = (
    &'static str,
    &'a mut Setting<Vec<String>>,
    &'static [&'static str],
    &'static [&'static str],
    &'a [String],
    &'static [&'static str],
    Option<&'a String>,
);

fn valid(builtin: &[&str], distro: &[String]) -> String {
    builtin
        .iter()
        .map(|s| s.to_string())
        .chain(distro.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `OTEL_RUST_DISTRO_INIT_TIMEOUT`: the deadline of a distro's `init` and of every other start-up call into it
/// (milliseconds; an invalid value is a warning of the settings and the default, 10 s, is used).
pub(crate) fn init_timeout(env: &Env) -> Duration {
    init_timeout_setting(env, &mut Vec::new()).value
}

fn init_timeout_setting(env: &Env, warnings: &mut Vec<String>) -> Setting<Duration> {
    as_millis(pick_number(
        env,
        "OTEL_RUST_DISTRO_INIT_TIMEOUT",
        None,
        10_000,
        (1, MAX_MILLIS),
        warnings,
    ))
}

/// `OTEL_RUST_DISTRO_PROBE`: whether a plugin distro is first loaded in a probe child (`false` skips it).
pub(crate) fn probe_enabled(env: &Env) -> bool {
    probe_setting(env, &mut Vec::new()).value
}

fn probe_setting(env: &Env, warnings: &mut Vec<String>) -> Setting<bool> {
    pick(
        env,
        "OTEL_RUST_DISTRO_PROBE",
        None,
        None,
        true,
        parse_bool,
        warnings,
    )
}

/// `OTEL_RUST_DISTRO_FAIL_FAST` > `[plugins] fail_fast` > false.
pub(crate) fn fail_fast(
    env: &Env,
    config: Option<&ConfigFile>,
    warnings: &mut Vec<String>,
) -> Setting<bool> {
    let file = config.and_then(|c| c.config.plugins.fail_fast.map(|v| (v, c.path.clone())));
    pick(
        env,
        "OTEL_RUST_DISTRO_FAIL_FAST",
        file,
        None,
        false,
        parse_bool,
        warnings,
    )
}

/// `OTEL_RUST_DISTRO_FALLBACK` > `[plugins] fallback` > `off`. Resolvable on its own: `init()` needs it exactly
/// when the rest of the plan failed.
pub(crate) fn fallback(
    env: &Env,
    config: Option<&ConfigFile>,
    warnings: &mut Vec<String>,
) -> Setting<Fallback> {
    let file = config.and_then(|c| c.config.plugins.fallback.map(|v| (v, c.path.clone())));
    pick(
        env,
        "OTEL_RUST_DISTRO_FALLBACK",
        file,
        None,
        Fallback::Off,
        |s| match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Ok(Fallback::Off),
            "sdk" => Ok(Fallback::Sdk),
            _ => Err("off (telemetry off, the default) or sdk (plain SDK, unredacted)".into()),
        },
        warnings,
    )
}

/// A number from the environment (or the file) that must lie in `min..=max`. As the specification says for numeric
/// settings, an invalid value is a warning and the default is used; a value above `max` is clamped (a queue of 2^64
/// spans is a typo, not a wish) — never an error that would turn telemetry off, never a panic later.
fn pick_number(
    env: &Env,
    var: &'static str,
    file: Option<(u64, PathBuf)>,
    default: u64,
    (min, max): (u64, u64),
    warnings: &mut Vec<String>,
) -> Setting<u64> {
    let (raw, source) = match (env.get(var).filter(|v| !v.trim().is_empty()), file) {
        (Some(raw), _) => (raw.trim().to_string(), env_source(env, var)),
        (None, Some((v, path))) => (v.to_string(), Source::File(path)),
        (None, None) => {
            return Setting {
                value: default,
                source: Source::Default,
            };
        }
    };
    let var = env.label(var);
    match raw.parse::<u64>() {
        Ok(v) if v < min => {
            warnings.push(format!(
                "{var}={raw} ({source}) is below the minimum {min}; using the default {default}"
            ));
            Setting {
                value: default,
                source: Source::Default,
            }
        }
        Ok(v) if v > max => {
            warnings.push(format!(
                "{var}={raw} ({source}) is above the maximum {max}; using {max}"
            ));
            Setting { value: max, source }
        }
        Ok(value) => Setting { value, source },
        Err(_) => {
            warnings.push(format!(
                "{var}={raw:?} ({source}) is not a non-negative integer; using the default {default}"
            ));
            Setting {
                value: default,
                source: Source::Default,
            }
        }
    }
}

fn as_millis(s: Setting<u64>) -> Setting<Duration> {
    Setting {
        value: Duration::from_millis(s.value),
        source: s.source,
    }
}

fn as_usize(s: Setting<u64>) -> Setting<usize> {
    Setting {
        value: usize::try_from(s.value).unwrap_or(usize::MAX),
        source: s.source,
    }
}

/// Variables of the environment specification ndotel does not implement.
const NOT_IMPLEMENTED: &[&str] = &[
    "OTEL_BLRP_EXPORT_TIMEOUT",
    "OTEL_METRICS_EXEMPLAR_FILTER",
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
];

/// The longest any timeout or delay may be: a day. Longer values are typos, and some overflow `Instant` arithmetic.
const MAX_MILLIS: u64 = 86_400_000;
/// The largest count limit: what the SDK's `u32` limits hold.
const MAX_LIMIT: u64 = u32::MAX as u64;

/// The largest span or log record queue: about a million entries.
const MAX_QUEUE: u64 = 1 << 20;

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`: cumulative (default), delta, or lowmemory (delta for counters
/// and histograms, cumulative for up-down counters and every asynchronous instrument, as the OTLP exporter
/// specification says); anything else is warned about and the default used.
fn temporality(env: &Env, warnings: &mut Vec<String>) -> Setting<Temporality> {
    pick(
        env,
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        None,
        None,
        Temporality::Cumulative,
        |v| match v.trim().to_ascii_lowercase().as_str() {
            "cumulative" => Ok(Temporality::Cumulative),
            "delta" => Ok(Temporality::Delta),
            "lowmemory" => Ok(Temporality::LowMemory),
            _ => Err("cumulative, delta or lowmemory".into()),
        },
        warnings,
    )
}

/// A file path's source, marked unused when `exporters` has no `file`.
fn unused_unless(source: &Source, exporters: &[String], var: &str, exporter: &str) -> String {
    if exporters.iter().any(|e| e == exporter) {
        source.to_string()
    } else {
        format!("{source} (unused: {var} has no `{exporter}`)")
    }
}

/// The effective `service.name`: `OTEL_SERVICE_NAME` > `service.name` in `OTEL_RESOURCE_ATTRIBUTES` (the last one)
/// > `[otel] service_name` > `unknown_service:<executable name>`, as the semantic conventions say.
fn service_name(
    env: &Env,
    file: Option<&String>,
    path: &std::path::Path,
    attributes: &Setting<Vec<(String, String)>>,
) -> Setting<String> {
    if let Some(v) = env
        .get("OTEL_SERVICE_NAME")
        .filter(|v| !v.trim().is_empty())
    {
        return Setting {
            value: v.to_string(),
            source: env_source(env, "OTEL_SERVICE_NAME"),
        };
    }
    if let Some((_, v)) = attributes
        .value
        .iter()
        .rev()
        .find(|(k, _)| k == "service.name")
    {
        return Setting {
            value: v.clone(),
            source: attributes.source.clone(),
        };
    }
    if let Some(v) = file {
        return Setting {
            value: v.clone(),
            source: Source::File(path.to_path_buf()),
        };
    }
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    Setting {
        value: match exe {
            Some(name) => format!("unknown_service:{name}"),
            None => "unknown_service".to_string(),
        },
        source: Source::Default,
    }
}

/// Plugin directories: those of `OTEL_RUST_DISTRO_PATH` (relative to the working directory) and those of
/// `[plugins] dirs` (relative to the file) — a union, not an override. The source names the first that has any.
pub(crate) fn plugin_dirs(env: &Env, config: Option<&ConfigFile>) -> Setting<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut source = Source::Default;
    if let Some(list) = env.get("OTEL_RUST_DISTRO_PATH") {
        dirs.extend(
            list.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| env.cwd().join(d)),
        );
        source = Source::Env("OTEL_RUST_DISTRO_PATH");
    }
    if let Some(cfg) = config.filter(|c| !c.config.plugins.dirs.is_empty()) {
        dirs.extend(cfg.config.plugins.dirs.iter().map(|d| cfg.dir().join(d)));
        if source == Source::Default {
            source = Source::File(cfg.path.clone());
        }
    }
    Setting {
        value: dirs,
        source,
    }
}

/// Where `var`'s value came from: the environment, or the configuration file that set it.
fn env_source(env: &Env, var: &'static str) -> Source {
    match env.origin(var) {
        Some(origin) => Source::Declared(origin.to_string()),
        None => Source::Env(var),
    }
}

/// The one place the precedence lives: environment > file > distro default > default. An empty variable is unset;
/// an invalid one is a warning naming it, and the next source applies (the specification: warn and use the
/// default, never fail).
fn pick<T>(
    env: &Env,
    var: &'static str,
    file: Option<(T, PathBuf)>,
    distro: Option<(T, String)>,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
    warnings: &mut Vec<String>,
) -> Setting<T> {
    if let Some(raw) = env.get(var).filter(|v| !v.trim().is_empty()) {
        match parse(raw) {
            Ok(value) => {
                return Setting {
                    value,
                    source: env_source(env, var),
                };
            }
            Err(expected) => {
                let next = if file.is_some() {
                    "the distro.toml value"
                } else if distro.is_some() {
                    "the distro's default"
                } else {
                    "the default"
                };
                warnings.push(format!(
                    "{}={:?} is invalid (expected {expected}); using {next}",
                    env.label(var),
                    crate::text::printable(raw)
                ));
            }
        }
    }
    if let Some((value, path)) = file {
        return Setting {
            value,
            source: Source::File(path),
        };
    }
    if let Some((value, distro)) = distro {
        return Setting {
            value,
            source: Source::Distro(distro),
        };
    }
    Setting {
        value: default,
        source: Source::Default,
    }
}

/// A Boolean as the specification defines it: `true` (any case) is true, `false` is false; anything else is
/// invalid (warned about, and false by default). No other spellings: implementations must not add true values.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("true or false".into()),
    }
}

fn in_file<T: Clone>(value: Option<&T>, path: &std::path::Path) -> Option<(T, PathBuf)> {
    value.cloned().map(|v| (v, path.to_path_buf()))
}

/// The name of the sampler `[sampler]` configures.
static COMPOSITE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| "composite".to_string());

/// Splits a comma list, trimmed, lower-cased, without empties.
pub(crate) fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Parses `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, keys and values percent-decoded). A pair without `=` or key, an
/// escape that is not `%` and two hex digits, or an escape that decodes to invalid UTF-8 is an error: the
/// specification discards the whole value then.
fn parse_resource_attributes(s: &str) -> Result<Vec<(String, String)>, String> {
    fn decode(part: &str, pair: &str) -> Result<String, String> {
        let bytes = part.as_bytes();
        for (i, _) in part.match_indices('%') {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Err(format!(
                    "percent-encoded key=value pairs ({pair:?} has a '%' not followed by two hex digits)"
                ));
            }
        }
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|d| d.into_owned())
            .map_err(|_| format!("percent-encoded UTF-8 ({pair:?} decodes to invalid UTF-8)"))
    }
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                format!("key=value pairs separated by commas ({pair:?} has no '=')")
            })?;
            if k.trim().is_empty() {
                return Err(format!(
                    "key=value pairs separated by commas ({pair:?} has no key)"
                ));
            }
            Ok((decode(k.trim(), pair)?, decode(v.trim(), pair)?))
        })
        .collect()
}

/// What a setting's resolution reads, and where its warnings go.
struct Inputs<'a> {
    /// The boot settings, resolved before the distro was chosen.
    boot: &'a boot::Boot,
    env: &'a Env,
    config: Option<&'a ConfigFile>,
    otel: &'a OtelSection,
    plugins: Option<&'a crate::settings::config::PluginsSection>,
    /// The `distro.toml` in use (empty when none).
    path: PathBuf,
    /// What relative paths of `distro.toml` are relative to.
    base: PathBuf,
    distro: DistroOffer<'a>,
    w: Vec<String>,
}

impl Inputs<'_> {
    /// A `distro.toml` value, with the file it came from.
    fn file<T: Clone>(&self, value: Option<&T>) -> Option<(T, PathBuf)> {
        in_file(value, &self.path)
    }

    /// A duration in milliseconds, `min..=MAX_MILLIS`.
    fn millis(
        &mut self,
        var: &'static str,
        file: Option<u64>,
        default: u64,
        min: u64,
    ) -> Setting<Duration> {
        let file = file.map(|v| (v, self.path.clone()));
        as_millis(pick_number(
            self.env,
            var,
            file,
            default,
            (min, MAX_MILLIS),
            &mut self.w,
        ))
    }

    /// A timeout in milliseconds, where 0 means no limit (the common configuration specification's Timeout):
    /// taken as the longest ndotel has, a day.
    fn timeout(&mut self, var: &'static str, default: u64) -> Setting<Duration> {
        let mut s = self.millis(var, None, default, 0);
        if s.value.is_zero() {
            s.value = Duration::from_millis(MAX_MILLIS);
        }
        s
    }

    /// A queue or batch size, `1..=MAX_QUEUE`.
    fn size(&mut self, var: &'static str, default: u64) -> Setting<usize> {
        as_usize(pick_number(
            self.env,
            var,
            None,
            default,
            (1, MAX_QUEUE),
            &mut self.w,
        ))
    }

    /// A comma list, from the environment, `distro.toml` or the distro's first component of the kind.
    fn list(
        &mut self,
        var: &'static str,
        file: Option<&String>,
        distro_names: Option<&[String]>,
        default: &[&str],
    ) -> Setting<Vec<String>> {
        let file = self.file(file).map(|(v, p)| (list(&v), p));
        let from_distro = distro_names.and_then(|names| {
            names
                .first()
                .map(|n| (vec![n.clone()], self.distro.name.to_string()))
        });
        let default = default.iter().map(|s| s.to_string()).collect();
        pick(
            self.env,
            var,
            file,
            from_distro,
            default,
            |s| Ok(list(s)),
            &mut self.w,
        )
    }

    /// An output path: the environment's relative to the working directory, `distro.toml`'s to the file.
    fn output(
        &mut self,
        var: &'static str,
        file: Option<&PathBuf>,
        default: &str,
    ) -> Setting<PathBuf> {
        let file = self.file(file).map(|(v, p)| (self.base.join(v), p));
        let cwd = self.env.cwd().to_path_buf();
        pick(
            self.env,
            var,
            file,
            None,
            cwd.join(default),
            |s| Ok(cwd.join(s)),
            &mut self.w,
        )
    }

    /// A length limit: the variable, else `general` (with its source) when given, else none. A value that is not
    /// a non-negative integer is warned about and `general` (or none) used.
    fn length_limit(
        &mut self,
        var: &'static str,
        general: Option<&Setting<Option<u64>>>,
    ) -> Setting<Option<u64>> {
        let fallback = general.cloned().unwrap_or(Setting {
            value: None,
            source: Source::Default,
        });
        let Some(raw) = self.env.get(var).map(str::trim).filter(|v| !v.is_empty()) else {
            return fallback;
        };
        match raw.parse::<u64>() {
            Ok(v) => Setting {
                value: Some(v.min(MAX_LIMIT)),
                source: env_source(self.env, var),
            },
            Err(_) => {
                self.w.push(format!(
                    "{}={raw:?} ({}) is not a non-negative integer; using {}",
                    self.env.label(var),
                    env_source(self.env, var),
                    fallback.value.shown()
                ));
                fallback
            }
        }
    }

    /// A count limit: the variable, else `general` (with its source) when given, else 128.
    fn limit(&mut self, var: &'static str, general: Option<&Setting<u64>>) -> Setting<u64> {
        let mut s = pick_number(
            self.env,
            var,
            None,
            general.map_or(128, |g| g.value),
            (0, MAX_LIMIT),
            &mut self.w,
        );
        if let Some(g) = general.filter(|_| s.source == Source::Default) {
            s.source = g.source.clone();
        }
        s
    }
}

/// How `ndotel config` shows a setting's value.
trait Shown {
    fn shown(&self) -> String;
}

impl Shown for Duration {
    fn shown(&self) -> String {
        self.as_millis().to_string()
    }
}

impl Shown for Vec<String> {
    fn shown(&self) -> String {
        self.join(",")
    }
}

impl Shown for Vec<PathBuf> {
    fn shown(&self) -> String {
        self.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl Shown for PathBuf {
    fn shown(&self) -> String {
        self.display().to_string()
    }
}

/// A limit that may be absent: `none` then.
impl Shown for Option<u64> {
    fn shown(&self) -> String {
        self.map_or_else(|| "none".to_string(), |v| v.to_string())
    }
}

impl Shown for Option<String> {
    fn shown(&self) -> String {
        self.clone().unwrap_or_default()
    }
}

impl Shown for Vec<(String, String)> {
    fn shown(&self) -> String {
        self.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Shown for Temporality {
    fn shown(&self) -> String {
        match self {
            Temporality::Delta => "delta",
            Temporality::LowMemory => "lowmemory",
            _ => "cumulative",
        }
        .to_string()
    }
}

macro_rules! shown_by_display {
    ($($t:ty),*) => { $(impl Shown for $t { fn shown(&self) -> String { self.to_string() } })* };
}
shown_by_display!(bool, u64, usize, String, Fallback, OnProcessorError);

/// The first variable a documentation entry names: the row `ndotel config` shows for it.
fn first_var(env: &'static str) -> &'static str {
    let start = env.find("OTEL_").unwrap_or(0);
    let len = env[start..]
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(env.len() - start);
    &env[start..start + len]
}

/// The one table of settings. Each entry is a setting once: its field of [`Settings`], its environment variable,
/// `distro.toml` key and configuration-file path, default and meaning (the docs' table, [`SETTINGS`]), its row of
/// `ndotel config` (`used_with: (list, "VAR", "exporter")` marks a value unused unless that exporter list has
/// it), and how it is resolved (in this order: a later entry may read an earlier one). Adding a setting is adding
/// an entry here, and using it.
macro_rules! settings_table {
    (
        before { $( { $($before:tt)* } )* }
        table { $(
            $(#[doc = $doc:literal])*
            $field:ident: $ty:ty {
                env: $env:literal,
                file: $file:literal,
                declared: $declared:literal,
                default: $default:literal,
                meaning: $meaning:literal,
                $(used_with: ($list:ident, $listvar:literal, $exporter:literal),)?
                resolve: $resolve:expr $(,)?
            }
        )* }
        after { $( { $($after:tt)* } )* }
    ) => {
        /// Every effective setting of one pipeline.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $field: Setting<$ty>, )*
            /// `OTEL_EXPORTER_OTLP_*` for traces, metrics and logs (per-signal over generic, empty = unset).
            pub(crate) otlp: [OtlpConfig; 3],
            /// The ratio of the `traceidratio` samplers (`OTEL_TRACES_SAMPLER_ARG`, 1.0 when unset or invalid).
            pub(crate) traces_sampler_ratio: f64,
            /// Values that were invalid or out of range, each replaced as the specification says (warn, use the
            /// default or the nearest valid value); printed once by `init()` and shown by `ndotel config`.
            pub warnings: Vec<String>,
            /// Names no component answers to (a sampler, exporter or propagator), each said as a problem: also in
            /// `warnings`, there followed by what `init()` does instead (leaves it out, uses another), and an error
            /// for `ndotel check`, `config` and `run`.
            pub unknown: Vec<String>,
            /// `OTEL_CONFIG_FILE`: the configuration file in use, shown.
            pub declared: Option<String>,
            /// The OTLP variables in effect, as `ndotel config` rows (header values masked).
            otlp_rows: Vec<(&'static str, String, String)>,
        }

        /// Every setting once: environment variable(s), `distro.toml` key, configuration-file path, default,
        /// meaning. The crate docs' table is generated from it (`host/SETTINGS.md`; a test fails when they
        /// differ), and `ndotel config` shows a row for each.
        pub const SETTINGS: &[SettingDoc] = &[
            $( SettingDoc { $($before)* }, )*
            $( SettingDoc { env: $env, file: $file, declared: $declared, default: $default, meaning: $meaning }, )*
            $( SettingDoc { $($after)* }, )*
        ];

        impl Settings {
            /// Resolves every entry of the table, in order.
            fn resolve_table(i: &mut Inputs<'_>) -> Settings {
                $( let $field: Setting<$ty> = ($resolve)(&mut *i); )*
                let otlp = [Signal::Traces, Signal::Metrics, Signal::Logs]
                    .map(|signal| OtlpConfig::resolve(i.env, signal, &mut i.w));
                Settings {
                    $( $field, )*
                    otlp,
                    traces_sampler_ratio: 1.0,
                    warnings: std::mem::take(&mut i.w),
                    unknown: Vec::new(),
                    declared: None,
                    otlp_rows: otlp_rows(i.env),
                }
            }

            /// Every setting as `(name, value, source)` rows, for `ndotel config`.
            pub fn rows(&self) -> Vec<(&'static str, String, String)> {
                let mut rows = vec![(
                    "OTEL_CONFIG_FILE",
                    self.declared.clone().unwrap_or_else(|| "(none)".into()),
                    match &self.declared {
                        Some(_) => "env OTEL_CONFIG_FILE (standard OTEL_* variables it does not reference have no \
                                    effect)"
                            .to_string(),
                        None => Source::Default.to_string(),
                    },
                )];
                $(
                    rows.push((
                        first_var($env),
                        self.$field.value.shown(),
                        settings_table!(@source self, $field $(, $list, $listvar, $exporter)?),
                    ));
                )*
                rows.extend(self.otlp_rows.iter().cloned());
                rows
            }
        }
    };
    (@source $s:ident, $field:ident) => { $s.$field.source.to_string() };
    (@source $s:ident, $field:ident, $list:ident, $listvar:literal, $exporter:literal) => {
        unused_unless(&$s.$field.source, &$s.$list.value, $listvar, $exporter)
    };
}

settings_table! {
    before {
        {
            env: "`OTEL_RUST_DISTRO`",
            file: "`default`",
            declared: "`distribution.ndotel.distro`",
            default: "the only registered distro, else `sdk`",
            meaning: "the distro to use",
        }
        {
            env: "`OTEL_RUST_DISTRO_CONFIG`",
            file: "—",
            declared: "—",
            default: "`./distro.toml` if present",
            meaning: "the configuration file",
        }
        {
            env: "`OTEL_CONFIG_FILE` (`OTEL_EXPERIMENTAL_CONFIG_FILE`, deprecated)",
            file: "—",
            declared: "—",
            default: "none",
            meaning: "the OpenTelemetry configuration file (YAML, `file_format` 1.x): it replaces the standard \
                      `OTEL_*` variables it does not reference, and `[otel]`, `[[views]]` and `[sampler]` of \
                      `distro.toml` \
                      (see `CONFIGURATION.md`)",
        }
        {
            env: "—",
            file: "`[opentelemetry_distro] name = \"x.so\"` or `{ path, sha256 }`",
            declared: "—",
            default: "none",
            meaning: "plugin files, relative to the file",
        }
    }
    table {
        /// Plugin directories: `OTEL_RUST_DISTRO_PATH` and `[plugins] dirs` (both are used).
        plugin_dirs: Vec<PathBuf> {
            env: "`OTEL_RUST_DISTRO_PATH`",
            file: "`[plugins] dirs`",
            declared: "—",
            default: "none",
            meaning: "plugin directories (`:`-separated; both are used)",
            resolve: |i: &mut Inputs| i.boot.plugin_dirs.clone(),
        }
        /// `OTEL_RUST_DISTRO_INIT_TIMEOUT`: how long a distro's `init` (and every start-up call) may take.
        init_timeout: Duration {
            env: "`OTEL_RUST_DISTRO_INIT_TIMEOUT`",
            file: "—",
            declared: "—",
            default: "`10000`",
            meaning: "milliseconds a distro's `init` may take before it counts as failed",
            resolve: |i: &mut Inputs| i.boot.init_timeout.clone(),
        }
        /// `OTEL_RUST_DISTRO_PROBE`: whether a plugin distro is probed in a child process before it is loaded.
        probe: bool {
            env: "`OTEL_RUST_DISTRO_PROBE`",
            file: "—",
            declared: "—",
            default: "`true`",
            meaning: "`false` skips loading and initialising the selected plugin distro in a probe child process first \
                      (a plugin that crashes there leaves telemetry off instead of killing the process)",
            resolve: |i: &mut Inputs| i.boot.probe.clone(),
        }
        /// `OTEL_RUST_DISTRO_FAIL_FAST`.
        fail_fast: bool {
            env: "`OTEL_RUST_DISTRO_FAIL_FAST`",
            file: "`[plugins] fail_fast`",
            declared: "`distribution.ndotel.fail_fast`",
            default: "`false`",
            meaning: "a selected distro that cannot be used stops start-up (a plugin that is not selected and fails to \
                      load is only reported)",
            resolve: |i: &mut Inputs| i.boot.fail_fast.clone(),
        }
        /// `OTEL_RUST_DISTRO_FALLBACK`.
        fallback: Fallback {
            env: "`OTEL_RUST_DISTRO_FALLBACK`",
            file: "`[plugins] fallback`",
            declared: "`distribution.ndotel.fallback`",
            default: "`off`",
            meaning: "when the selected distro cannot be used: `off` (telemetry off) or `sdk` (plain SDK, unredacted)",
            resolve: |i: &mut Inputs| i.boot.fallback.clone(),
        }
        /// `OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR`.
        on_processor_error: OnProcessorError {
            env: "`OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR`",
            file: "`[plugins] on_processor_error`",
            declared: "`distribution.ndotel.on_processor_error`",
            default: "`drop`",
            meaning: "a span the distro's processor failed on: `drop` or `pass` (exported unchanged)",
            resolve: |i: &mut Inputs| {
                let file = i.plugins.and_then(|p| p.on_processor_error.map(|v| (v, i.path.clone())));
                pick(
                    i.env,
                    "OTEL_RUST_DISTRO_ON_PROCESSOR_ERROR",
                    file,
                    None,
                    OnProcessorError::Drop,
                    |s| match s.trim().to_ascii_lowercase().as_str() {
                        "drop" => Ok(OnProcessorError::Drop),
                        "pass" => Ok(OnProcessorError::Pass),
                        _ => Err("drop (the default) or pass".into()),
                    },
                    &mut i.w,
                )
            },
        }
        /// `OTEL_RUST_DISTRO_CALL_TIMEOUT`: how long one sampler or processor call may take before the watchdog
        /// bypasses that component.
        call_timeout: Duration {
            env: "`OTEL_RUST_DISTRO_CALL_TIMEOUT`",
            file: "`[plugins] call_timeout`",
            declared: "`distribution.ndotel.call_timeout`",
            default: "`200`",
            meaning: "milliseconds a sampler or processor call (the processor edits up to 64 spans per call, on the \
                      batch thread) may take: a later answer costs its spans (fail closed; a call for several spans is \
                      made again span by span); a call stuck for 5× this bypasses the component until it returns",
            resolve: |i: &mut Inputs| {
                let file = i.plugins.and_then(|p| p.call_timeout);
                i.millis("OTEL_RUST_DISTRO_CALL_TIMEOUT", file, 200, 1)
            },
        }
        /// `OTEL_RUST_DISTRO_RELOAD`: `signal`, `watch` or `off`.
        reload: String {
            env: "`OTEL_RUST_DISTRO_RELOAD`",
            file: "—",
            declared: "—",
            default: "`signal`",
            meaning: "when a running service re-reads its composite sampler and its distro's own settings: on \
                      `SIGHUP` (`signal`), also when the file changes (`watch`), or never (`off`, which leaves \
                      `SIGHUP` alone)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RUST_DISTRO_RELOAD",
                None,
                None,
                "signal".to_string(),
                |s| match s.trim().to_ascii_lowercase().as_str() {
                    m @ ("signal" | "watch" | "off") => Ok(m.to_string()),
                    _ => Err("off, signal or watch".into()),
                },
                &mut i.w,
            ),
        }
        /// `OTEL_RUST_DISTRO_RELOAD_HEALTH_WINDOW`: how long what a reload applied is watched.
        reload_health_window: Duration {
            env: "`OTEL_RUST_DISTRO_RELOAD_HEALTH_WINDOW`",
            file: "—",
            declared: "—",
            default: "`30000`",
            meaning: "milliseconds what a reload applied is watched: 10 failures of its sampler or processor in \
                      that time bring back what ran before",
            resolve: |i: &mut Inputs| i.millis("OTEL_RUST_DISTRO_RELOAD_HEALTH_WINDOW", None, 30_000, 1),
        }
        /// `OTEL_RUST_DISTRO_RELOAD_GENERATION_ATTRIBUTE`: whether each exported span says which generation of the
        /// distro's settings decided and edited it.
        reload_generation_attribute: bool {
            env: "`OTEL_RUST_DISTRO_RELOAD_GENERATION_ATTRIBUTE`",
            file: "—",
            declared: "—",
            default: "`false`",
            meaning: "each span the distro's processor edited carries `ndotel.distro.generation`: the generation of \
                      the distro's settings that decided and edited it (0 at start-up, +1 per reload that rebuilt \
                      them; to audit reloads)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RUST_DISTRO_RELOAD_GENERATION_ATTRIBUTE",
                None,
                None,
                false,
                parse_bool,
                &mut i.w,
            ),
        }
        /// `OTEL_RUST_DISTRO_RELOAD_STATUS`: the file each reload's outcome is written to, as JSON.
        reload_status: Option<String> {
            env: "`OTEL_RUST_DISTRO_RELOAD_STATUS`",
            file: "—",
            declared: "—",
            default: "none",
            meaning: "a file each reload's outcome is written to, as JSON (applied, refused, unchanged, rolled \
                      back; the generation and the file's sha256)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RUST_DISTRO_RELOAD_STATUS",
                None,
                None,
                None,
                |s| Ok(Some(s.to_string())),
                &mut i.w,
            ),
        }
        /// `OTEL_RUST_SHUTDOWN_TIMEOUT`: how long shutdown may take in all.
        shutdown_timeout: Duration {
            env: "`OTEL_RUST_SHUTDOWN_TIMEOUT`",
            file: "—",
            declared: "—",
            default: "`5000`",
            meaning: "milliseconds flushing and shutting down may take in all; what was not delivered is reported",
            resolve: |i: &mut Inputs| i.millis("OTEL_RUST_SHUTDOWN_TIMEOUT", None, 5000, 1),
        }
        /// `OTEL_BSP_SCHEDULE_DELAY`.
        bsp_schedule_delay: Duration {
            env: "`OTEL_BSP_SCHEDULE_DELAY`",
            file: "—",
            declared: "`tracer_provider.processors[].batch.schedule_delay`",
            default: "`5000`",
            meaning: "milliseconds between exports of the batch span processor (above a day: a day)",
            resolve: |i: &mut Inputs| i.millis("OTEL_BSP_SCHEDULE_DELAY", None, 5000, 1),
        }
        /// `OTEL_BSP_MAX_QUEUE_SIZE`.
        bsp_max_queue_size: usize {
            env: "`OTEL_BSP_MAX_QUEUE_SIZE`",
            file: "—",
            declared: "`tracer_provider.processors[].batch.max_queue_size`",
            default: "`2048`",
            meaning: "spans the batch span processor holds (above 2^20: 2^20; invalid: a warning and the default)",
            resolve: |i: &mut Inputs| i.size("OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        }
        /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (never above the queue size).
        bsp_max_export_batch_size: usize {
            env: "`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`",
            file: "—",
            declared: "`tracer_provider.processors[].batch.max_export_batch_size`",
            default: "`512`",
            meaning: "spans per export (never above the queue size)",
            resolve: |i: &mut Inputs| {
                let mut s = i.size("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512);
                s.value = s.value.min(bsp_max_queue_size.value);
                s
            },
        }
        /// `OTEL_BLRP_SCHEDULE_DELAY`.
        blrp_schedule_delay: Duration {
            env: "`OTEL_BLRP_SCHEDULE_DELAY`",
            file: "—",
            declared: "`logger_provider.processors[].batch.schedule_delay`",
            default: "`1000`",
            meaning: "milliseconds between exports of the batch log record processor",
            resolve: |i: &mut Inputs| i.millis("OTEL_BLRP_SCHEDULE_DELAY", None, 1000, 1),
        }
        /// `OTEL_BLRP_MAX_QUEUE_SIZE`.
        blrp_max_queue_size: usize {
            env: "`OTEL_BLRP_MAX_QUEUE_SIZE`",
            file: "—",
            declared: "`logger_provider.processors[].batch.max_queue_size`",
            default: "`2048`",
            meaning: "log records the batch log record processor holds",
            resolve: |i: &mut Inputs| i.size("OTEL_BLRP_MAX_QUEUE_SIZE", 2048),
        }
        /// `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE` (never above the queue size).
        blrp_max_export_batch_size: usize {
            env: "`OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`",
            file: "—",
            declared: "`logger_provider.processors[].batch.max_export_batch_size`",
            default: "`512`",
            meaning: "log records per export (never above the queue size)",
            resolve: |i: &mut Inputs| {
                let mut s = i.size("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512);
                s.value = s.value.min(blrp_max_queue_size.value);
                s
            },
        }
        /// `OTEL_RUST_TRACING_FILTER`: which `tracing` spans and events are recorded (`EnvFilter` syntax; checked).
        tracing_filter: String {
            env: "`OTEL_RUST_TRACING_FILTER`",
            file: "—",
            declared: "—",
            default: "`info,otel::tracing=trace`",
            meaning: "which `tracing` spans become OpenTelemetry spans and which events are logged to stderr \
                      (`EnvFilter` syntax)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RUST_TRACING_FILTER",
                None,
                None,
                DEFAULT_TRACING_FILTER.to_string(),
                |s| {
                    tracing_subscriber::EnvFilter::builder()
                        .parse(s)
                        .map(|_| s.trim().to_string())
                        .map_err(|e| format!("`tracing` filter directives ({e})"))
                },
                &mut i.w,
            ),
        }
        /// `OTEL_RUST_TRACING_BRIDGE`: `ndotel` (its own `tracing` layer) or `tracing-opentelemetry`.
        tracing_bridge: String {
            env: "`OTEL_RUST_TRACING_BRIDGE`",
            file: "—",
            declared: "—",
            default: "`ndotel`",
            meaning: "what turns `tracing` spans into OpenTelemetry spans: `ndotel`'s own layer, or \
                      `tracing-opentelemetry` (for services that call its `OpenTelemetrySpanExt`, `set_parent` say)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RUST_TRACING_BRIDGE",
                None,
                None,
                OWN_TRACING_BRIDGE.to_string(),
                |s| match s.trim().to_ascii_lowercase().as_str() {
                    b @ (OWN_TRACING_BRIDGE | "tracing-opentelemetry") => Ok(b.to_string()),
                    _ => Err("`ndotel` or `tracing-opentelemetry`".into()),
                },
                &mut i.w,
            ),
        }
        /// `OTEL_RUST_OTLP_ENCODER`: `ndotel` (its own encoder) or `opentelemetry-otlp`, for the `otlp` span and log
        /// exporters.
        otlp_encoder: String {
            env: "`OTEL_RUST_OTLP_ENCODER`",
            file: "—",
            declared: "—",
            default: "`ndotel`",
            meaning: "what turns spans and log records into OTLP protobuf for the `otlp` exporters: `ndotel`'s own \
                      encoder, or `opentelemetry-otlp`'s exporters (the setup a team writes by hand; for comparison)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RUST_OTLP_ENCODER",
                None,
                None,
                OWN_OTLP_ENCODER.to_string(),
                |s| match s.trim().to_ascii_lowercase().as_str() {
                    e @ (OWN_OTLP_ENCODER | "opentelemetry-otlp") => Ok(e.to_string()),
                    _ => Err("`ndotel` or `opentelemetry-otlp`".into()),
                },
                &mut i.w,
            ),
        }
        /// `OTEL_RUST_SPAN_QUEUE`: `ndotel` (its own batch queue) or `sdk` (the SDK's `BatchSpanProcessor`).
        span_queue: String {
            env: "`OTEL_RUST_SPAN_QUEUE`",
            file: "—",
            declared: "—",
            default: "`ndotel`",
            meaning: "what carries ended spans to the batch thread, with the `OTEL_BSP_*` settings: `ndotel`'s own \
                      queue, or the SDK's `BatchSpanProcessor` (the setup a team writes by hand; for comparison)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RUST_SPAN_QUEUE",
                None,
                None,
                OWN_SPAN_QUEUE.to_string(),
                |s| match s.trim().to_ascii_lowercase().as_str() {
                    q @ (OWN_SPAN_QUEUE | "sdk") => Ok(q.to_string()),
                    _ => Err("`ndotel` or `sdk`".into()),
                },
                &mut i.w,
            ),
        }
        /// `OTEL_RUST_TRACING_CONTEXT_ACTIVATION`: entering a `tracing` span makes its OpenTelemetry context current.
        context_activation: bool {
            env: "`OTEL_RUST_TRACING_CONTEXT_ACTIVATION`",
            file: "—",
            declared: "—",
            default: "`true`",
            meaning: "`false`: entering a `tracing` span no longer makes its OpenTelemetry context current (cheaper; \
                      `Context::current()` then does not see it)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RUST_TRACING_CONTEXT_ACTIVATION",
                None,
                None,
                true,
                parse_bool,
                &mut i.w,
            ),
        }
        /// `OTEL_SDK_DISABLED`.
        sdk_disabled: bool {
            env: "`OTEL_SDK_DISABLED`",
            file: "`[otel] sdk_disabled`",
            declared: "`disabled`",
            default: "`false`",
            meaning: "no telemetry at all; the propagators still pass context on",
            resolve: |i: &mut Inputs| {
                let file = i.file(i.otel.sdk_disabled.as_ref());
                pick(i.env, "OTEL_SDK_DISABLED", file, None, false, parse_bool, &mut i.w)
            },
        }
        /// `OTEL_RESOURCE_ATTRIBUTES`, parsed.
        resource_attributes: Vec<(String, String)> {
            env: "`OTEL_RESOURCE_ATTRIBUTES`",
            file: "—",
            declared: "`resource.attributes`, `resource.attributes_list`",
            default: "none",
            meaning: "extra resource attributes `k=v,k2=v2` (keys and values percent-decoded; the last of a duplicated key \
                      wins; a malformed value is discarded whole, with a warning)",
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_RESOURCE_ATTRIBUTES",
                None,
                None,
                Vec::new(),
                parse_resource_attributes,
                &mut i.w,
            ),
        }
        /// `OTEL_SERVICE_NAME` (`None`: the SDK's `unknown_service`).
        service_name: String {
            env: "`OTEL_SERVICE_NAME`",
            file: "`[otel] service_name`",
            declared: "`service.name` in `resource.attributes`; the `service` detector",
            default: "`service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service:<executable>`",
            meaning: "`service.name`",
            resolve: |i: &mut Inputs| {
                service_name(i.env, i.otel.service_name.as_ref(), &i.path, &resource_attributes)
            },
        }
        /// `OTEL_TRACES_EXPORTER`.
        traces_exporter: Vec<String> {
            env: "`OTEL_TRACES_EXPORTER`",
            file: "`[otel] traces_exporter`",
            declared: "`tracer_provider.processors[].*.exporter`",
            default: "distro's first, else `otlp`",
            meaning: "comma list: `otlp`, `console`, `file`, `none`, distro names",
            resolve: |i: &mut Inputs| {
                let distro = i.distro.components.span_exporters.clone();
                i.list("OTEL_TRACES_EXPORTER", i.otel.traces_exporter.as_ref(), Some(&distro), &["otlp"])
            },
        }
        /// `OTEL_METRICS_EXPORTER`.
        metrics_exporter: Vec<String> {
            env: "`OTEL_METRICS_EXPORTER`",
            file: "`[otel] metrics_exporter`",
            declared: "`meter_provider.readers[]`",
            default: "distro's first, else `otlp`",
            meaning: "comma list, as above",
            resolve: |i: &mut Inputs| {
                let distro = i.distro.components.metric_exporters.clone();
                i.list("OTEL_METRICS_EXPORTER", i.otel.metrics_exporter.as_ref(), Some(&distro), &["otlp"])
            },
        }
        /// `OTEL_LOGS_EXPORTER`.
        logs_exporter: Vec<String> {
            env: "`OTEL_LOGS_EXPORTER`",
            file: "`[otel] logs_exporter`",
            declared: "`logger_provider.processors[].*.exporter`",
            default: "`otlp`; `none` for a distro that redacts spans but has no log processor",
            meaning: "comma list: `otlp`, `console`, `file`, `none` — `tracing` events as log records, through the \
                      distro's log processor",
            resolve: |i: &mut Inputs| i.list("OTEL_LOGS_EXPORTER", i.otel.logs_exporter.as_ref(), None, &["otlp"]),
        }
        /// `OTEL_TRACES_SAMPLER`.
        traces_sampler: String {
            env: "`OTEL_TRACES_SAMPLER`",
            file: "`[otel] traces_sampler`",
            declared: "`tracer_provider.sampler`",
            default: "`composite` when `distro.toml` has `[sampler]`, else the distro's first, else \
                      `parentbased_always_on`",
            meaning: "built-in (`composite`: consistent probability sampling from `[sampler]`) or distro sampler",
            resolve: |i: &mut Inputs| {
                // `[sampler]` in the file chooses the composite sampler, unless `[otel] traces_sampler` says.
                let file = i.file(i.otel.traces_sampler.as_ref().or(i
                    .config
                    .and_then(|c| c.config.sampler.as_ref())
                    .map(|_| &*COMPOSITE)));
                let distro = i
                    .distro
                    .components
                    .samplers
                    .first()
                    .map(|s| (s.clone(), i.distro.name.to_string()));
                pick(
                    i.env,
                    "OTEL_TRACES_SAMPLER",
                    file,
                    distro,
                    "parentbased_always_on".to_string(),
                    |s| Ok(s.trim().to_string()),
                    &mut i.w,
                )
            },
        }
        /// `OTEL_TRACES_SAMPLER_ARG`.
        traces_sampler_arg: Option<String> {
            env: "`OTEL_TRACES_SAMPLER_ARG`",
            file: "`[otel] traces_sampler_arg`",
            declared: "`tracer_provider.sampler` (its `ratio`)",
            default: "`1.0`",
            meaning: "ratio for `*traceidratio` (invalid: a warning and 1.0)",
            resolve: |i: &mut Inputs| {
                let file = i.file(i.otel.traces_sampler_arg.as_ref()).map(|(v, p)| (Some(v), p));
                pick(
                    i.env,
                    "OTEL_TRACES_SAMPLER_ARG",
                    file,
                    None,
                    None,
                    |s| Ok(Some(s.to_string())),
                    &mut i.w,
                )
            },
        }
        /// `OTEL_PROPAGATORS`.
        propagators: Vec<String> {
            env: "`OTEL_PROPAGATORS`",
            file: "`[otel] propagators`",
            declared: "`propagator.composite`, `propagator.composite_list`",
            default: "`tracecontext,baggage`",
            meaning: "comma list: `tracecontext`, `baggage`, `none`",
            resolve: |i: &mut Inputs| {
                i.list("OTEL_PROPAGATORS", i.otel.propagators.as_ref(), None, &["tracecontext", "baggage"])
            },
        }
        /// `OTEL_METRIC_EXPORT_INTERVAL`.
        metric_export_interval: Duration {
            env: "`OTEL_METRIC_EXPORT_INTERVAL`",
            file: "`[otel] metric_export_interval`",
            declared: "`meter_provider.readers[].periodic.interval`",
            default: "`60000`",
            meaning: "milliseconds between metric exports",
            resolve: |i: &mut Inputs| {
                let file = i.otel.metric_export_interval;
                i.millis("OTEL_METRIC_EXPORT_INTERVAL", file, 60_000, 1)
            },
        }
        /// `OTEL_BSP_EXPORT_TIMEOUT`: how long a distro span exporter call may take.
        span_export_timeout: Duration {
            env: "`OTEL_BSP_EXPORT_TIMEOUT`",
            file: "—",
            declared: "`tracer_provider.processors[].batch.export_timeout`",
            default: "`30000`",
            meaning: "milliseconds a distro span exporter may take before it counts as hung (0: no limit, taken as a \
                      day)",
            resolve: |i: &mut Inputs| i.timeout("OTEL_BSP_EXPORT_TIMEOUT", 30_000),
        }
        /// `OTEL_METRIC_EXPORT_TIMEOUT`: how long a distro metric exporter call may take.
        metric_export_timeout: Duration {
            env: "`OTEL_METRIC_EXPORT_TIMEOUT`",
            file: "—",
            declared: "`meter_provider.readers[].periodic.timeout`",
            default: "`30000`",
            meaning: "milliseconds a distro metric exporter may take before it counts as hung (0: no limit, taken \
                      as a day)",
            resolve: |i: &mut Inputs| i.timeout("OTEL_METRIC_EXPORT_TIMEOUT", 30_000),
        }
        /// `OTEL_EXPORTER_FILE_TRACES_PATH`.
        file_traces_path: PathBuf {
            env: "`OTEL_EXPORTER_FILE_TRACES_PATH`",
            file: "`[otel] file_traces_path`",
            declared: "`tracer_provider.processors[].*.exporter.otlp_file/development.output_stream`",
            default: "`traces.jsonl`",
            meaning: "`file` span exporter output (OTLP JSON lines)",
            used_with: (traces_exporter, "OTEL_TRACES_EXPORTER", "file"),
            resolve: |i: &mut Inputs| {
                i.output("OTEL_EXPORTER_FILE_TRACES_PATH", i.otel.file_traces_path.as_ref(), "traces.jsonl")
            },
        }
        /// `OTEL_EXPORTER_FILE_METRICS_PATH`.
        file_metrics_path: PathBuf {
            env: "`OTEL_EXPORTER_FILE_METRICS_PATH`",
            file: "`[otel] file_metrics_path`",
            declared: "`meter_provider.readers[].periodic.exporter.otlp_file/development.output_stream`",
            default: "`metrics.jsonl`",
            meaning: "`file` metric exporter output",
            used_with: (metrics_exporter, "OTEL_METRICS_EXPORTER", "file"),
            resolve: |i: &mut Inputs| {
                i.output("OTEL_EXPORTER_FILE_METRICS_PATH", i.otel.file_metrics_path.as_ref(), "metrics.jsonl")
            },
        }
        /// `OTEL_EXPORTER_FILE_LOGS_PATH`.
        file_logs_path: PathBuf {
            env: "`OTEL_EXPORTER_FILE_LOGS_PATH`",
            file: "`[otel] file_logs_path`",
            declared: "`logger_provider.processors[].*.exporter.otlp_file/development.output_stream`",
            default: "`logs.jsonl`",
            meaning: "`file` log exporter output",
            used_with: (logs_exporter, "OTEL_LOGS_EXPORTER", "file"),
            resolve: |i: &mut Inputs| {
                i.output("OTEL_EXPORTER_FILE_LOGS_PATH", i.otel.file_logs_path.as_ref(), "logs.jsonl")
            },
        }
        /// `OTEL_EXPORTER_PROMETHEUS_HOST`.
        prometheus_host: String {
            env: "`OTEL_EXPORTER_PROMETHEUS_HOST`",
            file: "—",
            declared: "`meter_provider.readers[].pull.exporter.prometheus/development.host`",
            default: "`localhost`",
            meaning: "where the `prometheus` metric exporter serves `/metrics`",
            used_with: (metrics_exporter, "OTEL_METRICS_EXPORTER", "prometheus"),
            resolve: |i: &mut Inputs| pick(
                i.env,
                "OTEL_EXPORTER_PROMETHEUS_HOST",
                None,
                None,
                "localhost".to_string(),
                |s| Ok(s.trim().to_string()),
                &mut i.w,
            ),
        }
        /// `OTEL_EXPORTER_PROMETHEUS_PORT`.
        prometheus_port: u64 {
            env: "`OTEL_EXPORTER_PROMETHEUS_PORT`",
            file: "—",
            declared: "`meter_provider.readers[].pull.exporter.prometheus/development.port`",
            default: "`9464`",
            meaning: "its port (in use: a start-up error; the service runs without the endpoint)",
            used_with: (metrics_exporter, "OTEL_METRICS_EXPORTER", "prometheus"),
            resolve: |i: &mut Inputs| {
                pick_number(i.env, "OTEL_EXPORTER_PROMETHEUS_PORT", None, 9464, (0, 65535), &mut i.w)
            },
        }
        /// `OTEL_ATTRIBUTE_COUNT_LIMIT`: the attribute limits below that are not set.
        attribute_count_limit: u64 {
            env: "`OTEL_ATTRIBUTE_COUNT_LIMIT`",
            file: "—",
            declared: "`attribute_limits.attribute_count_limit`",
            default: "`128`",
            meaning: "attributes kept per span, event, link and log record, unless one of the limits below says \
                      otherwise",
            resolve: |i: &mut Inputs| i.limit("OTEL_ATTRIBUTE_COUNT_LIMIT", None),
        }
        /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`: the value length limits below that are not set.
        attribute_value_length_limit: Option<u64> {
            env: "`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`",
            file: "—",
            declared: "`attribute_limits.attribute_value_length_limit`",
            default: "none",
            meaning: "characters kept of each string attribute value (and of each string in an array) of spans, \
                      events, links and log records, unless one of the limits below says otherwise; cut after the \
                      distro's edits",
            resolve: |i: &mut Inputs| i.length_limit("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", None),
        }
        /// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`.
        span_attribute_value_length_limit: Option<u64> {
            env: "`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`",
            file: "—",
            declared: "`tracer_provider.limits.attribute_value_length_limit`",
            default: "`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`",
            meaning: "characters kept of each string attribute value of spans, their events and links",
            resolve: |i: &mut Inputs| {
                i.length_limit("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", Some(&attribute_value_length_limit))
            },
        }
        /// `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`.
        logrecord_attribute_value_length_limit: Option<u64> {
            env: "`OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`",
            file: "—",
            declared: "`logger_provider.limits.attribute_value_length_limit`",
            default: "`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`",
            meaning: "characters kept of each string attribute value of log records",
            resolve: |i: &mut Inputs| {
                i.length_limit("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", Some(&attribute_value_length_limit))
            },
        }
        /// `OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT`.
        logrecord_attribute_count_limit: u64 {
            env: "`OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT`",
            file: "—",
            declared: "`logger_provider.limits.attribute_count_limit`",
            default: "`OTEL_ATTRIBUTE_COUNT_LIMIT`",
            meaning: "attributes kept per log record (the rest are dropped)",
            resolve: |i: &mut Inputs| i.limit("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", Some(&attribute_count_limit)),
        }
        /// `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`.
        span_attribute_count_limit: u64 {
            env: "`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`",
            file: "—",
            declared: "`tracer_provider.limits.attribute_count_limit`",
            default: "`OTEL_ATTRIBUTE_COUNT_LIMIT`",
            meaning: "attributes kept per span (the rest are dropped)",
            resolve: |i: &mut Inputs| i.limit("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", Some(&attribute_count_limit)),
        }
        /// `OTEL_SPAN_EVENT_COUNT_LIMIT`.
        span_event_count_limit: u64 {
            env: "`OTEL_SPAN_EVENT_COUNT_LIMIT`",
            file: "—",
            declared: "`tracer_provider.limits.event_count_limit`",
            default: "`128`",
            meaning: "events kept per span",
            resolve: |i: &mut Inputs| i.limit("OTEL_SPAN_EVENT_COUNT_LIMIT", None),
        }
        /// `OTEL_SPAN_LINK_COUNT_LIMIT`.
        span_link_count_limit: u64 {
            env: "`OTEL_SPAN_LINK_COUNT_LIMIT`",
            file: "—",
            declared: "`tracer_provider.limits.link_count_limit`",
            default: "`128`",
            meaning: "links kept per span",
            resolve: |i: &mut Inputs| i.limit("OTEL_SPAN_LINK_COUNT_LIMIT", None),
        }
        /// `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`.
        event_attribute_count_limit: u64 {
            env: "`OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`",
            file: "—",
            declared: "`tracer_provider.limits.event_attribute_count_limit`",
            default: "`OTEL_ATTRIBUTE_COUNT_LIMIT`",
            meaning: "attributes kept per span event",
            resolve: |i: &mut Inputs| i.limit("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", Some(&attribute_count_limit)),
        }
        /// `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`.
        link_attribute_count_limit: u64 {
            env: "`OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`",
            file: "—",
            declared: "`tracer_provider.limits.link_attribute_count_limit`",
            default: "`OTEL_ATTRIBUTE_COUNT_LIMIT`",
            meaning: "attributes kept per span link",
            resolve: |i: &mut Inputs| i.limit("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", Some(&attribute_count_limit)),
        }
        /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
        temporality: Temporality {
            env: "`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`",
            file: "—",
            declared: "a metric exporter's `temporality_preference`",
            default: "`cumulative`",
            meaning: "`cumulative`, `delta` or `lowmemory`",
            resolve: |i: &mut Inputs| temporality(i.env, &mut i.w),
        }
    }
    after {
        {
            env: "`OTEL_EXPORTER_OTLP_{,TRACES_,METRICS_,LOGS_}{PROTOCOL,ENDPOINT,HEADERS,TIMEOUT,COMPRESSION}`",
            file: "—",
            declared: "the exporter (`otlp_http`, `otlp_grpc`, `encoding`) and its `endpoint`, `headers`, \
                       `headers_list`, `timeout`, `compression`",
            default: "`http/protobuf`, the SDK's endpoint, none, `10000`, none",
            meaning: "resolved by ndotel per signal (signal variable over the generic one; the generic endpoint gets \
                      `/v1/<signal>` for HTTP); `gzip` compression over both transports",
        }
        {
            env: "`OTEL_EXPORTER_OTLP_{,TRACES_,METRICS_,LOGS_}{CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY}`",
            file: "—",
            declared: "the exporter's `tls.`{`ca_file`, `cert_file`, `key_file`}",
            default: "the system's root certificates, no client certificate",
            meaning: "PEM files for `https` endpoints, both transports: the certificates to trust instead of the \
                      system's, and the client certificate and key for mutual TLS (an unreadable or invalid file is a \
                      warning and the default)",
        }
        {
            env: "`OTEL_EXPORTER_OTLP_{,TRACES_,METRICS_,LOGS_}INSECURE`",
            file: "—",
            declared: "`otlp_grpc`'s `tls.insecure`",
            default: "`false`",
            meaning: "for a gRPC endpoint written without a scheme (`collector:4317`): `true` connects in plaintext, \
                      `false` over TLS (an HTTP endpoint without a scheme is a warning and the default endpoint)",
        }
    }
}

impl Settings {
    /// Resolves every setting for `distro` from the environment and the file.
    pub fn resolve(
        env: &Env,
        config: Option<&ConfigFile>,
        distro: DistroOffer<'_>,
    ) -> Result<Settings, ConfigError> {
        Settings::resolve_boot(&boot::Boot::of(env.clone(), config.cloned()), distro)
    }

    /// [`Settings::resolve`] from the boot settings, resolved before the distro was chosen (their environment and
    /// files included).
    pub(crate) fn resolve_boot(
        boot: &boot::Boot,
        distro: DistroOffer<'_>,
    ) -> Result<Settings, ConfigError> {
        let (env, config) = (&boot.env, boot.config.as_ref());
        let empty = OtelSection::default();
        let mut inputs = Inputs {
            boot,
            env,
            config,
            otel: config.map(|c| &c.config.otel).unwrap_or(&empty),
            plugins: config.map(|c| &c.config.plugins),
            path: config.map(|c| c.path.clone()).unwrap_or_default(),
            base: config
                .map(|c| c.dir().to_path_buf())
                .unwrap_or_else(|| env.cwd().to_path_buf()),
            distro,
            w: boot.warnings.clone(),
        };
        let mut settings = Settings::resolve_table(&mut inputs);
        settings.validate(distro, inputs.otel, &inputs.path);
        // Specified variables ndotel does not implement: said, rather than silently without effect.
        for var in NOT_IMPLEMENTED {
            if env.get(var).is_some_and(|v| !v.trim().is_empty()) {
                settings.warnings.push(format!(
                    "{var} is set, but ndotel does not implement it; it has no effect"
                ));
            }
        }
        Ok(settings)
    }

    /// Applies the specification's rules to the names and values picked: enum values case-insensitive, lists
    /// deduplicated, an unknown or unsupported name warned about and replaced by the default (never an error that
    /// would turn telemetry off), the sampler argument checked, the effective service name found.
    fn validate(&mut self, distro: DistroOffer<'_>, otel: &OtelSection, path: &std::path::Path) {
        let c = distro.components;
        let (w, unknown) = (&mut self.warnings, &mut self.unknown);
        // The sampler.
        let s = &mut self.traces_sampler;
        let lower = s.value.to_ascii_lowercase();
        if let Some(b) = BUILTIN_SAMPLERS.iter().find(|b| **b == lower) {
            s.value = b.to_string();
        } else if !c.samplers.contains(&s.value) {
            let fallback = c
                .samplers
                .first()
                .cloned()
                .unwrap_or_else(|| "parentbased_always_on".to_string());
            let why = if UNSUPPORTED_SAMPLERS.contains(&lower.as_str()) {
                "is specified by OpenTelemetry but not supported by ndotel"
            } else {
                "is not a sampler ndotel or the distro knows"
            };
            let problem = format!(
                "OTEL_TRACES_SAMPLER={:?} ({}) {why}{} (valid: {})",
                crate::text::printable(&s.value),
                s.source,
                crate::text::did_you_mean(
                    &s.value,
                    BUILTIN_SAMPLERS
                        .iter()
                        .copied()
                        .chain(c.samplers.iter().map(String::as_str))
                ),
                valid(BUILTIN_SAMPLERS, &c.samplers)
            );
            if !UNSUPPORTED_SAMPLERS.contains(&lower.as_str()) {
                unknown.push(problem.clone());
            }
            w.push(format!("{problem}; using {fallback}"));
            *s = Setting {
                source: if c.samplers.is_empty() {
                    Source::Default
                } else {
                    Source::Distro(distro.name.to_string())
                },
                value: fallback,
            };
        }
        // Its argument, read only by the ratio samplers.
        if s.value.ends_with("traceidratio")
            && let Some(arg) = &self.traces_sampler_arg.value
        {
            match arg.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => self.traces_sampler_ratio = r,
                _ => w.push(format!(
                    "OTEL_TRACES_SAMPLER_ARG={:?} ({}) is not a ratio in 0.0..=1.0; using 1.0",
                    crate::text::printable(arg),
                    self.traces_sampler_arg.source
                )),
            }
        }
        // Exporter and propagator lists.
        let lists: [NameList<'_>; 4] = [
            (
                "OTEL_TRACES_EXPORTER",
                &mut self.traces_exporter,
                BUILTIN_SPAN_EXPORTERS,
                &["zipkin", "jaeger"],
                &c.span_exporters,
                &["otlp"],
                otel.traces_exporter.as_ref(),
            ),
            (
                "OTEL_METRICS_EXPORTER",
                &mut self.metrics_exporter,
                BUILTIN_METRIC_EXPORTERS,
                &[],
                &c.metric_exporters,
                &["otlp"],
                otel.metrics_exporter.as_ref(),
            ),
            (
                "OTEL_LOGS_EXPORTER",
                &mut self.logs_exporter,
                BUILTIN_LOG_EXPORTERS,
                &[],
                &[],
                &["otlp"],
                otel.logs_exporter.as_ref(),
            ),
            (
                "OTEL_PROPAGATORS",
                &mut self.propagators,
                BUILTIN_PROPAGATORS,
                &["b3", "b3multi", "jaeger", "xray", "ottrace"],
                &[],
                &["tracecontext", "baggage"],
                otel.propagators.as_ref(),
            ),
        ];
        for (var, setting, builtin, unsupported, from_distro, default, file) in lists {
            let mut kept: Vec<String> = Vec::new();
            let written = std::mem::take(&mut setting.value);
            let any_written = !written.is_empty();
            let usable = |n: &String| builtin.contains(&n.as_str()) || from_distro.contains(n);
            for name in written {
                if kept.contains(&name) {
                    continue;
                }
                if usable(&name) {
                    kept.push(name);
                    continue;
                }
                let problem = format!(
                    "{var} lists {:?} ({}), which {}{} (valid: {})",
                    crate::text::printable(&name),
                    setting.source,
                    if unsupported.contains(&name.as_str()) {
                        "OpenTelemetry specifies but ndotel does not support"
                    } else {
                        "ndotel and the distro do not know"
                    },
                    crate::text::did_you_mean(
                        &name,
                        builtin
                            .iter()
                            .copied()
                            .chain(from_distro.iter().map(String::as_str))
                    ),
                    valid(builtin, from_distro)
                );
                if !unsupported.contains(&name.as_str()) {
                    unknown.push(problem.clone());
                }
                w.push(format!("{problem}; it is left out"));
            }
            if kept.is_empty() && any_written {
                // Not one name could be used: the setting is ignored, as the specification says of an unknown
                // value, instead of turning the signal off.
                // The next source: `distro.toml`'s names it can use (when it was not the one written), then the
                // distro's, then the default.
                let from_file = file
                    .filter(|_| !matches!(setting.source, Source::File(_)))
                    .map(|f| {
                        let mut names = list(f);
                        names.retain(|n| n == "none" || usable(n));
                        names.dedup();
                        names
                    })
                    .filter(|names| !names.is_empty());
                let (value, source) = match (from_file, from_distro.first()) {
                    (Some(names), _) => (names, Source::File(path.to_path_buf())),
                    (None, Some(name)) => {
                        (vec![name.clone()], Source::Distro(distro.name.to_string()))
                    }
                    (None, None) => (
                        default.iter().map(|d| d.to_string()).collect(),
                        Source::Default,
                    ),
                };
                w.push(format!(
                    "{var} ({}) names nothing ndotel can use, so it is ignored: using {}",
                    setting.source,
                    value.join(",")
                ));
                *setting = Setting { value, source };
                continue;
            }
            if kept.is_empty() {
                kept.push("none".to_string());
            }
            setting.value = kept;
        }
        // Fail closed for logs: a distro that redacts spans but was built without a log processor (before
        // ndotel-api 1.4) would let log records through unredacted, so they are exported only when asked for.
        let logs = &mut self.logs_exporter;
        if c.span_processor
            && !c.log_processor
            && logs.source == Source::Default
            && logs.value != ["none"]
        {
            w.push(format!(
                "distro {} redacts spans but has no log processor (built before ndotel-api 1.4?), so nothing \
                 would redact log records: they are not exported (set OTEL_LOGS_EXPORTER to export them as they are)",
                distro.name
            ));
            *logs = Setting {
                value: vec!["none".to_string()],
                source: Source::Distro(distro.name.to_string()),
            };
        }
    }

    /// Where spans go, one entry per span exporter, for people (`ndotel check`, the start-up line).
    pub fn trace_destinations(&self) -> Vec<String> {
        self.traces_exporter
            .value
            .iter()
            .map(|name| match name.as_str() {
                "otlp" => format!("otlp → {}", self.otlp[0].describe(Signal::Traces)),
                "file" => format!("file → {}", self.file_traces_path.value.display()),
                "console" => "console → stdout".to_string(),
                "none" => "none (spans are not exported)".to_string(),
                other => format!("{other} (the distro's exporter)"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate docs' table is [`settings_table`]; `NDOTEL_BLESS=1 cargo test -p ndotel settings` rewrites it.
    #[test]
    fn the_settings_doc_table_is_generated_from_the_settings_list() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("SETTINGS.md");
        let want = settings_table();
        if std::env::var_os("NDOTEL_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "host/SETTINGS.md differs from settings::SETTINGS; run NDOTEL_BLESS=1 cargo test -p ndotel settings"
        );
    }

    /// Every row `ndotel config` shows is documented in [`SETTINGS`].
    #[test]
    fn every_config_row_is_in_the_settings_list() {
        let env = Env::from_pairs([("OTEL_RUST_DISTRO", "sdk")], "/");
        let registry = crate::Registry::discover(&env, None);
        let distro = registry.select(&env, None).unwrap();
        let settings = Settings::resolve(&env, None, distro.offer()).unwrap();
        for (name, _, _) in settings.rows() {
            assert!(
                SETTINGS.iter().any(|s| s.env.contains(name)),
                "{name} is shown by `ndotel config` but missing from SETTINGS"
            );
        }
    }

    /// The settings of the environment `pairs` (and `config`) under the built-in `sdk` distro.
    fn under_sdk(pairs: &[(&str, &str)], config: Option<&ConfigFile>) -> Settings {
        let env = Env::from_pairs(pairs.iter().copied(), "/").with("OTEL_RUST_DISTRO", "sdk");
        let registry = crate::Registry::discover(&env, None);
        let distro = registry.select(&env, None).unwrap();
        Settings::resolve(&env, config, distro.offer()).unwrap()
    }

    /// A list none of whose names can be used is ignored, as the specification says of an unknown value: the
    /// signal keeps its default instead of being turned off. A list with one usable name keeps that name only.
    #[test]
    fn a_list_with_no_usable_name_is_ignored_and_one_with_a_usable_name_keeps_it() {
        let s = under_sdk(
            &[
                ("OTEL_PROPAGATORS", "b3,B3"),
                ("OTEL_TRACES_EXPORTER", "zipkin"),
                ("OTEL_METRICS_EXPORTER", "nonsense"),
                ("OTEL_LOGS_EXPORTER", "none"),
            ],
            None,
        );
        assert_eq!(s.propagators.value, ["tracecontext", "baggage"]);
        assert_eq!(s.propagators.source, Source::Default);
        assert_eq!(s.traces_exporter.value, ["otlp"]);
        assert_eq!(s.metrics_exporter.value, ["otlp"]);
        assert_eq!(s.logs_exporter.value, ["none"], "written as none: kept");
        for var in [
            "OTEL_PROPAGATORS",
            "OTEL_TRACES_EXPORTER",
            "OTEL_METRICS_EXPORTER",
        ] {
            assert!(
                s.warnings
                    .iter()
                    .any(|w| w.starts_with(var) && w.contains("so it is ignored")),
                "{var}: {:?}",
                s.warnings
            );
        }
        let s = under_sdk(
            &[
                ("OTEL_PROPAGATORS", "b3,baggage"),
                ("OTEL_TRACES_EXPORTER", "zipkin,console"),
            ],
            None,
        );
        assert_eq!(s.propagators.value, ["baggage"]);
        assert_eq!(s.traces_exporter.value, ["console"]);
        // With `distro.toml` naming one, that is the next source, not the default.
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("distro.toml");
        std::fs::write(
            &toml,
            "[otel]\ntraces_exporter = \"zipkin, console\"\npropagators = \"none\"\n",
        )
        .unwrap();
        let config = ConfigFile::load(&toml).unwrap();
        let s = under_sdk(
            &[
                ("OTEL_TRACES_EXPORTER", "carrier-pigeon"),
                ("OTEL_PROPAGATORS", "b3"),
            ],
            Some(&config),
        );
        assert_eq!(s.traces_exporter.value, ["console"]);
        assert!(matches!(s.traces_exporter.source, Source::File(_)));
        assert_eq!(s.propagators.value, ["none"]);
        // A specified variable ndotel does not implement is said, not silently ignored.
        let s = under_sdk(&[("OTEL_METRICS_EXEMPLAR_FILTER", "always_on")], None);
        assert!(
            s.warnings.iter().any(|w| w.starts_with(
                "OTEL_METRICS_EXEMPLAR_FILTER is set, but ndotel does not implement it"
            )),
            "{:?}",
            s.warnings
        );
    }

    /// A Timeout of 0 is no limit (taken as a day), not an invalid value; a negative one is.
    #[test]
    fn an_export_timeout_of_zero_is_no_limit() {
        let s = under_sdk(
            &[
                ("OTEL_BSP_EXPORT_TIMEOUT", "0"),
                ("OTEL_METRIC_EXPORT_TIMEOUT", "0"),
            ],
            None,
        );
        assert_eq!(s.span_export_timeout.value, Duration::from_secs(86_400));
        assert_eq!(s.metric_export_timeout.value, Duration::from_secs(86_400));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let s = under_sdk(&[("OTEL_BSP_EXPORT_TIMEOUT", "-1")], None);
        assert_eq!(s.span_export_timeout.value, Duration::from_secs(30));
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    }

    /// `ndotel config` shows a header's name only when the entry reads `name=value`: a token written alone, or one
    /// ending in `==`, is masked whole.
    #[test]
    fn header_rows_never_show_a_value_or_a_token() {
        let env = Env::from_pairs(
            [
                ("OTEL_RUST_DISTRO", "sdk"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "api-key=v1,sometoken,dG9rZW4==,x==",
                ),
            ],
            "/",
        );
        let registry = crate::Registry::discover(&env, None);
        let distro = registry.select(&env, None).unwrap();
        let settings = Settings::resolve(&env, None, distro.offer()).unwrap();
        let row = settings
            .rows()
            .into_iter()
            .find(|r| r.0 == "OTEL_EXPORTER_OTLP_HEADERS")
            .unwrap();
        assert_eq!(row.1, "api-key=***,***,***,***");
    }

    /// And every documented variable has its row: forgetting one fails here. The exceptions say where they are
    /// shown instead.
    #[test]
    fn every_documented_variable_has_a_config_row() {
        // Shown by `ndotel config` from the plan, or only when set, or folded into other rows.
        const ELSEWHERE: &[&str] = &[
            "OTEL_RUST_DISTRO",              // the CLI's row, with how the distro was selected
            "OTEL_RUST_DISTRO_CONFIG",       // the CLI's `distro.toml` row
            "OTEL_EXPERIMENTAL_CONFIG_FILE", // the OTEL_CONFIG_FILE row
        ];
        let env = Env::from_pairs(
            OTLP_VARS.iter().map(|v| (v.to_string(), "x=y".to_string())),
            "/",
        )
        .with("OTEL_RUST_DISTRO", "sdk");
        let registry = crate::Registry::discover(&env, None);
        let distro = registry.select(&env, None).unwrap();
        let settings = Settings::resolve(&env, None, distro.offer()).unwrap();
        let rows: Vec<&str> = settings.rows().into_iter().map(|r| r.0).collect();
        for doc in SETTINGS {
            for var in doc
                .env
                .split('`')
                .filter(|v| v.starts_with("OTEL_") && !v.contains('{'))
            {
                assert!(
                    rows.contains(&var) || ELSEWHERE.contains(&var),
                    "{var} is documented but `ndotel config` has no row for it"
                );
            }
        }
        // The OTLP variables (written as one pattern) have rows when set.
        for var in OTLP_VARS {
            assert!(rows.contains(var), "{var}");
        }
    }

    #[test]
    fn logs_of_a_distro_that_redacts_spans_but_not_logs_are_exported_only_when_asked_for() {
        let env = Env::from_pairs([("OTEL_RUST_DISTRO", "sdk")], "/");
        let registry = crate::Registry::discover(&env, None);
        let mut distro = registry.select(&env, None).unwrap().clone();
        let logs = |distro: &crate::DistroInfo, env: &Env| {
            let s = Settings::resolve(env, None, distro.offer()).unwrap();
            (s.logs_exporter.value, s.warnings)
        };
        // The plain SDK redacts nothing anywhere: the specification's default applies.
        assert_eq!(logs(&distro, &env).0, ["otlp"]);
        // A distro built before log processors existed, with a span processor.
        distro.components.span_processor = true;
        let (value, warnings) = logs(&distro, &env);
        assert_eq!(value, ["none"]);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("no log processor") && w.contains("OTEL_LOGS_EXPORTER")),
            "{warnings:?}"
        );
        let explicit = Env::from_pairs(
            [
                ("OTEL_RUST_DISTRO", "sdk"),
                ("OTEL_LOGS_EXPORTER", "console"),
            ],
            "/",
        );
        assert_eq!(logs(&distro, &explicit).0, ["console"]);
        // With a log processor the default holds.
        distro.components.log_processor = true;
        assert_eq!(logs(&distro, &env).0, ["otlp"]);
    }

    #[test]
    fn resource_attributes_are_parsed_and_decoded() {
        assert_eq!(
            parse_resource_attributes("a=1, b=x%20y").unwrap(),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x y".to_string())
            ]
        );
        assert!(parse_resource_attributes("novalue").is_err());
        // Keys are decoded too: `,` and `=` in them must be encoded.
        assert_eq!(
            parse_resource_attributes("k%3Dx%2Cy=1").unwrap(),
            vec![("k=x,y".to_string(), "1".to_string())]
        );
        // A broken escape or invalid UTF-8 anywhere discards the whole value.
        for bad in ["a=1,b=%2", "a=1,b=%ZZ", "a=%FF", "%C3=1", "a=100%"] {
            assert!(parse_resource_attributes(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_resource_attributes("a=%C3%A9").unwrap(),
            vec![("a".to_string(), "é".to_string())]
        );
    }

    #[test]
    fn env_beats_default_and_bad_values_are_warnings_naming_the_variable() {
        let mut w = Vec::new();
        let env = Env::from_pairs([("OTEL_RUST_DISTRO_FAIL_FAST", "TRUE")], "/");
        assert_eq!(
            fail_fast(&env, None, &mut w),
            Setting {
                value: true,
                source: Source::Env("OTEL_RUST_DISTRO_FAIL_FAST")
            }
        );
        for not_true in ["maybe", "1", "yes", "on"] {
            let env = Env::from_pairs([("OTEL_RUST_DISTRO_FAIL_FAST", not_true)], "/");
            assert_eq!(
                fail_fast(&env, None, &mut w),
                Setting {
                    value: false,
                    source: Source::Default
                },
                "{not_true}"
            );
        }
        assert_eq!(w.len(), 4);
        assert!(w.iter().all(|m| m.contains("OTEL_RUST_DISTRO_FAIL_FAST")));
        let env = Env::from_pairs([("OTEL_RUST_DISTRO_FAIL_FAST", " ")], "/");
        let empty = fail_fast(&env, None, &mut w);
        assert_eq!(
            (empty.value, empty.source, w.len()),
            (false, Source::Default, 4),
            "empty is unset, not invalid"
        );
    }

    /// The boot settings are resolved once, before the distro is chosen: the settings take them as they are (one
    /// warning per bad value, not one per reading), and a file that cannot be read is kept as the boot's error
    /// while the rest still resolves, for `init()`'s failure path.
    #[test]
    fn the_boot_settings_are_resolved_once_and_survive_an_unreadable_file() {
        let env = Env::from_pairs(
            [
                ("OTEL_RUST_DISTRO", "sdk"),
                ("OTEL_RUST_DISTRO_INIT_TIMEOUT", "soon"),
                ("OTEL_RUST_DISTRO_FALLBACK", "sdk"),
            ],
            "/",
        );
        let boot = boot::Boot::resolve(&env);
        assert!(boot.error.is_none());
        assert_eq!(boot.init_timeout.value, Duration::from_secs(10));
        let registry = crate::Registry::discover(&env, None);
        let distro = registry.select(&env, None).unwrap();
        let settings = Settings::resolve_boot(&boot, distro.offer()).unwrap();
        let about = |var: &str| settings.warnings.iter().filter(|w| w.contains(var)).count();
        assert_eq!(
            about("OTEL_RUST_DISTRO_INIT_TIMEOUT"),
            1,
            "{:?}",
            settings.warnings
        );
        assert_eq!(settings.fallback.value, Fallback::Sdk);

        let missing = env
            .clone()
            .with("OTEL_RUST_DISTRO_CONFIG", "/nonexistent/distro.toml")
            .with("OTEL_RUST_DISTRO_FAIL_FAST", "true");
        let boot = boot::Boot::resolve(&missing);
        assert!(boot.error.is_some());
        assert!(boot.fail_fast.value && boot.fallback.value == Fallback::Sdk);
        assert_eq!(boot.wanted.as_deref(), Some("sdk"));
    }
}
