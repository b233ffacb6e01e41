//! The `ndotel` command: list, check and explain distros, and run an application under one.

use anyhow::{Context as _, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ndotel::{Env, Pipeline, Plan, Registry};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use std::process::ExitCode;

mod scaffold;

/// Plugin host for custom OpenTelemetry distributions.
#[derive(Debug, Parser)]
#[command(name = "ndotel", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every distro found (compiled in and plugins), its origin, components and load status.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Also load each plugin — each in a child process, so a crashing one is only reported — to show its
        /// components and whether its distros initialise. Without it no plugin code runs.
        #[arg(long)]
        probe: bool,
    },
    /// (internal) Load one plugin and print its distros as `list --json` would; run by `list --probe`.
    #[command(name = "__probe", hide = true)]
    Probe {
        /// The plugin file.
        path: std::path::PathBuf,
        /// Only this distro of it.
        name: Option<String>,
    },
    /// Load the selected distro, build its pipeline and send one probe span through it (in a child process, so
    /// a plugin that crashes or aborts is reported instead of taking `ndotel` down). With `--pid`, the last reload
    /// of a running service instead.
    Check {
        #[command(flatten)]
        select: Select,
        /// Show the last reload of the running service PID — applied, refused or rolled back (why), its generation
        /// and the file's sha256 — from the status file it writes (`OTEL_RUST_DISTRO_RELOAD_STATUS` in its
        /// environment). Exits 3 when that reload was refused or rolled back.
        #[arg(long, value_name = "PID", conflicts_with_all = ["distro", "distro_path", "config_file"])]
        pid: Option<u32>,
    },
    /// (internal) What `check` runs in its child process.
    #[command(name = "__check", hide = true)]
    CheckHere,
    /// Every effective setting and where it came from.
    Config {
        #[command(flatten)]
        select: Select,
        /// Print a JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run APP with the distro settings in its environment (like `opentelemetry-instrument`).
    Run(RunArgs),
    /// Create a new distro workspace: the distro with tests, its one-line cdylib, a distro.toml and a README.
    New {
        /// The distro's name (lowercase, digits and `_`): the crate, the `.so` and `OTEL_RUST_DISTRO`.
        name: String,
        /// Where to create the `<name>` directory.
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// Build against this ndotel-api crate (a path) instead of a copy of this host's API written beside it.
        #[arg(long = "api-path")]
        api_path: Option<std::path::PathBuf>,
    },
}

/// Which distro, as flags (they set the environment variables of the same meaning).
#[derive(Debug, Clone, Default, clap::Args)]
struct Select {
    /// The distro (`OTEL_RUST_DISTRO`).
    #[arg(long)]
    distro: Option<String>,
    /// Plugin directories, `:`-separated (`OTEL_RUST_DISTRO_PATH`).
    #[arg(long = "distro-path", visible_alias = "distro_path")]
    distro_path: Option<String>,
    /// The OpenTelemetry configuration file, YAML (`OTEL_CONFIG_FILE`).
    #[arg(long = "config-file", visible_alias = "config_file")]
    config_file: Option<String>,
}

impl Select {
    fn pairs(&self) -> [(&'static str, Option<&String>); 3] {
        [
            ("OTEL_RUST_DISTRO", self.distro.as_ref()),
            ("OTEL_RUST_DISTRO_PATH", self.distro_path.as_ref()),
            ("OTEL_CONFIG_FILE", self.config_file.as_ref()),
        ]
    }

    /// The variables these flags set, each with its flag.
    fn given(&self) -> Vec<(&'static str, &'static str)> {
        [
            ("OTEL_RUST_DISTRO", "--distro", self.distro.is_some()),
            (
                "OTEL_RUST_DISTRO_PATH",
                "--distro-path",
                self.distro_path.is_some(),
            ),
            (
                "OTEL_CONFIG_FILE",
                "--config-file",
                self.config_file.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, _, given)| *given)
        .map(|(var, flag, _)| (var, flag))
        .collect()
    }

    /// The process environment with these flags applied.
    fn env(&self) -> Env {
        self.pairs()
            .into_iter()
            .fold(Env::from_process(), |env, (var, value)| match value {
                Some(v) => env.with(var, v),
                None => env,
            })
    }
}

/// What `ndotel run` was given as the application without a `--` before it: the words that are neither an option
/// nor an option's value (`--distro X` takes `X`; `--distro=X` takes nothing after it).
fn run_app_without_dashes(args: &[String]) -> Vec<String> {
    let cli = Cli::command();
    let takes_value: Vec<String> = cli
        .find_subcommand("run")
        .map(|run| {
            run.get_arguments()
                .filter(|a| a.get_action().takes_values() && a.get_long().is_some())
                .flat_map(|a| {
                    a.get_long_and_visible_aliases()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|l| format!("--{l}"))
                        .chain(a.get_short().map(|c| format!("-{c}")))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut app = Vec::new();
    let mut words = args.iter();
    while let Some(w) = words.next() {
        if w.starts_with('-') {
            if takes_value.contains(w) {
                words.next();
            }
        } else {
            app.push(w.clone());
        }
    }
    app
}

/// `text` with each `env VAR` (how the library names a value's source) said as the flag that set VAR, since the
/// flags reach the library as environment variables.
fn credit_flags(text: &str, given: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (var, flag) in given {
        let needle = format!("env {var}");
        let mut from = 0;
        while let Some(i) = out[from..].find(&needle).map(|i| i + from) {
            let end = i + needle.len();
            // `env OTEL_RUST_DISTRO` is not `env OTEL_RUST_DISTRO_PATH`.
            if out[end..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                from = end;
                continue;
            }
            let by = format!("flag {flag}");
            out.replace_range(i..end, &by);
            from = i + by.len();
        }
    }
    out
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    select: Select,
    /// `OTEL_TRACES_EXPORTER`.
    #[arg(long = "traces-exporter", visible_alias = "traces_exporter")]
    traces_exporter: Option<String>,
    /// `OTEL_METRICS_EXPORTER`.
    #[arg(long = "metrics-exporter", visible_alias = "metrics_exporter")]
    metrics_exporter: Option<String>,
    /// `OTEL_LOGS_EXPORTER`.
    #[arg(long = "logs-exporter", visible_alias = "logs_exporter")]
    logs_exporter: Option<String>,
    /// `OTEL_SERVICE_NAME`.
    #[arg(long = "service-name", visible_alias = "service_name")]
    service_name: Option<String>,
    /// `OTEL_TRACES_SAMPLER`.
    #[arg(long = "traces-sampler", visible_alias = "traces_sampler")]
    traces_sampler: Option<String>,
    /// The application and its arguments.
    #[arg(last = true, required = true)]
    app: Vec<String>,
}

impl RunArgs {
    /// The exporter, service name and sampler flags given, each with its variable.
    fn flags(&self) -> [(&'static str, &'static str, Option<&String>); 5] {
        [
            (
                "OTEL_TRACES_EXPORTER",
                "--traces-exporter",
                self.traces_exporter.as_ref(),
            ),
            (
                "OTEL_METRICS_EXPORTER",
                "--metrics-exporter",
                self.metrics_exporter.as_ref(),
            ),
            (
                "OTEL_LOGS_EXPORTER",
                "--logs-exporter",
                self.logs_exporter.as_ref(),
            ),
            (
                "OTEL_SERVICE_NAME",
                "--service-name",
                self.service_name.as_ref(),
            ),
            (
                "OTEL_TRACES_SAMPLER",
                "--traces-sampler",
                self.traces_sampler.as_ref(),
            ),
        ]
    }

    /// The variables the flags set, each with its flag.
    fn given(&self) -> Vec<(&'static str, &'static str)> {
        let mut given = self.select.given();
        given.extend(
            self.flags()
                .into_iter()
                .filter(|(_, _, v)| v.is_some())
                .map(|(var, flag, _)| (var, flag)),
        );
        given
    }
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away (`ndotel list | head`) instead of
    // panicking on the broken pipe.
    // SAFETY: restoring the default disposition of SIGPIPE at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // `--version` also names the OpenTelemetry SDK and plugin API versions this host was built with.
    let long_version = format!(
        "{} (opentelemetry {}, ndotel-api {})",
        env!("CARGO_PKG_VERSION"),
        ndotel::OPENTELEMETRY_VERSION,
        ndotel_api::API_VERSION
    );
    // `ndotel run echo hi`: the application goes after `--`; say so instead of clap's "unexpected argument".
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("run") && !args.iter().any(|a| a == "--") {
        let app = run_app_without_dashes(&args[2..]);
        if !app.is_empty() {
            eprintln!(
                "ndotel: error: put the application after `--`: ndotel run [OPTIONS] -- {}",
                app.join(" ")
            );
            return ExitCode::from(2);
        }
    }
    let matches = match Cli::command()
        .version(long_version.clone())
        .long_version(long_version)
        .try_get_matches()
    {
        Ok(m) => m,
        // Help and version print as clap prints them; errors get the same `ndotel: ` prefix as every other error.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprint!("ndotel: {}", e.render());
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // The variables set by flags, so that messages name the flag rather than the environment.
    let given = match &cli.command {
        Command::Check { select, .. } | Command::Config { select, .. } => select.given(),
        Command::Run(args) => args.given(),
        _ => Vec::new(),
    };
    let result = match cli.command {
        Command::List { json, probe } => list(json, probe),
        // The internal children run plugin code: nothing it starts may outlive them.
        Command::Probe { path, name } => {
            ndotel::child::become_reaper();
            let result = probe_one(&path, name.as_deref());
            ndotel::child::kill_descendants();
            result
        }
        Command::Check { pid: Some(pid), .. } => reload_status(pid),
        Command::Check { select, pid: None } => check_in_child(&select, &given),
        Command::CheckHere => {
            ndotel::child::become_reaper();
            let result = check();
            ndotel::child::kill_descendants();
            result
        }
        Command::Config { select, json } => config(&select, json, &given),
        Command::Run(args) => run(args),
        Command::New {
            name,
            dir,
            api_path,
        } => scaffold::new_distro(&name, &dir, api_path.as_deref()).map(|root| {
            println!("created {}", root.display());
            println!(
                "next: cd {} && cargo test && cargo build --release, then copy target/release/lib{name}.so into a \
                 plugin directory and select it with OTEL_RUST_DISTRO={name} (see its README.md)",
                root.display()
            );
            ExitCode::SUCCESS
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ndotel: error: {}", credit_flags(&format!("{e:#}"), &given));
            ExitCode::from(1)
        }
    }
}

/// One row of `ndotel list` per distro (initialised to report its status, unless only inspected), then one per
/// plugin that failed to load. With `only`, the rows of that plugin's distros.
fn rows(
    registry: &Registry,
    config: Option<&ndotel::ConfigFile>,
    env: &Env,
    only: Option<(&std::path::Path, Option<&str>)>,
) -> Vec<serde_json::Value> {
    let duplicates = registry.duplicates();
    let mut rows = Vec::new();
    for d in registry.distros() {
        if only.is_some_and(|(p, name)| {
            d.origin.path() != Some(p) || name.is_some_and(|n| n != d.name)
        }) {
            continue;
        }
        let error = match duplicates
            .iter()
            .find(|e| matches!(e, ndotel::SelectError::Duplicate { name, .. } if *name == d.name))
        {
            Some(dup) => Some(dup.to_string()),
            None if !d.is_loaded() => None,
            None => d.init(config, env).err().map(|e| e.message),
        };
        let status = match (&error, d.is_loaded()) {
            (Some(_), _) => "error",
            (None, true) => "ok",
            (None, false) => "found",
        };
        rows.push(serde_json::json!({
            "name": d.name,
            "origin": d.origin.kind(),
            "path": d.origin.path().map(|p| p.display().to_string()),
            "version": d.version,
            "api_version": d.api_version,
            "description": d.description,
            "components": d.is_loaded().then_some(&d.components),
            "status": status,
            "error": error,
        }));
    }
    if only.is_none() {
        for p in registry.legacy_plugins() {
            rows.push(serde_json::json!({
                "name": null,
                "origin": "plugin",
                "path": p.path.display().to_string(),
                "version": null,
                "api_version": null,
                "description": "built before ndotel-api 1.2 (no metadata): its distros are known only once it is loaded",
                "components": null,
                "status": "found",
                "error": null,
            }));
        }
        for f in registry.failures() {
            rows.push(serde_json::json!({
                "name": null,
                "origin": "plugin",
                "path": f.path().display().to_string(),
                "version": null,
                "api_version": null,
                "description": null,
                "components": null,
                "status": "error",
                "error": f.to_string(),
            }));
        }
    }
    rows
}

/// `ndotel __probe PATH [NAME]`: loads the plugin at PATH (found by discovery, with its pin) and prints the rows
/// of its distros (of distro NAME only, when given).
fn probe_one(path: &std::path::Path, only_name: Option<&str>) -> Result<ExitCode> {
    let env = Env::from_process();
    let config = ndotel::ConfigFile::discover(&env)?;
    let mut registry = Registry::discover(&env, config.as_ref());
    registry.load_legacy();
    let names: Vec<String> = registry
        .distros()
        .iter()
        .filter(|d| d.origin.path() == Some(path) && only_name.is_none_or(|n| n == d.name))
        .map(|d| d.name.clone())
        .collect();
    let mut rows = Vec::new();
    for name in &names {
        if let Err(e) = registry.load_selected(name) {
            rows.push(serde_json::json!({"path": path.display().to_string(), "status": "error", "error": e.to_string()}));
            println!("{}", serde_json::to_string(&rows)?);
            return Ok(ExitCode::SUCCESS);
        }
    }
    rows = self::rows(&registry, config.as_ref(), &env, Some((path, only_name)));
    println!("{}", serde_json::to_string(&rows)?);
    Ok(ExitCode::SUCCESS)
}

/// Runs `ndotel __probe PATH [NAME]` in a child process; its rows, or one error row saying how the child died.
fn probe_child(path: &str, name: Option<&str>) -> Vec<serde_json::Value> {
    let error_row = |error: String| {
        vec![serde_json::json!({
            "name": name, "origin": "plugin", "path": path, "version": null, "api_version": null,
            "description": null, "components": null, "status": "error", "error": error,
        })]
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return error_row(format!("cannot probe: {e}")),
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["__probe", path]).args(name);
    let out = match ndotel::child::run_bounded(&mut cmd, CHILD_DEADLINE) {
        Ok(out) => out,
        Err(e) => return error_row(format!("cannot probe: {e}")),
    };
    let Some(status) = out.status else {
        return error_row(format!(
            "loading or initialising it did not finish within {CHILD_DEADLINE:?} in the probe process; it was \
             stopped, and everything it started with it"
        ));
    };
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(signal) = status.signal() {
        return error_row(format!(
            "loading or initialising it crashed the probe process (signal {signal}); it was not loaded here — \
             in a service it would take the process down: rebuild or replace it"
        ));
    }
    match serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout) {
        Ok(rows) if status.success() => rows,
        _ => error_row(format!(
            "the probe process failed ({status}): {}",
            out.last_error_line().unwrap_or_default()
        )),
    }
}

/// How long a child running plugin code for `list --probe` or `check` may take before it is stopped.
const CHILD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

fn list(json: bool, probe: bool) -> Result<ExitCode> {
    let env = Env::from_process();
    let config = ndotel::ConfigFile::discover(&env)?;
    let registry = Registry::discover(&env, config.as_ref());
    let mut rows = rows(&registry, config.as_ref(), &env, None);
    if probe {
        // One child per distro (one per plugin built before 1.2, whose distros are unknown until loaded), so a
        // distro that crashes costs only its own row.
        let mut probed = Vec::with_capacity(rows.len());
        for row in rows {
            match (row["status"].as_str(), row["path"].as_str()) {
                (Some("found"), Some(path)) => {
                    probed.extend(probe_child(path, row["name"].as_str()));
                }
                _ => probed.push(row),
            }
        }
        rows = probed;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<8} {:<8} {:<6} COMPONENTS / PATH / ERROR",
        "NAME", "ORIGIN", "VERSION", "STATUS"
    );
    // Every field may come from a plugin or a file name: printed with control characters and escapes escaped.
    let field =
        |row: &serde_json::Value, key: &str| row[key].as_str().map(ndotel::child::printable);
    for row in &rows {
        let name = field(row, "name").unwrap_or_else(|| "-".into());
        let origin = field(row, "origin").unwrap_or_else(|| "-".into());
        let version = field(row, "version").unwrap_or_else(|| "-".into());
        let status = field(row, "status").unwrap_or_else(|| "-".into());
        let components = ndotel::child::printable(&components_summary(row));
        println!("{name:<24} {origin:<8} {version:<8} {status:<6} {components}");
        if let Some(path) = field(row, "path") {
            println!("{:<24} path: {path}", "");
        }
        if let Some(err) = field(row, "error") {
            println!("{:<24} error: {err}", "");
        }
    }
    for w in registry.warnings() {
        println!("warning: {}", ndotel::child::printable(w));
    }
    Ok(ExitCode::SUCCESS)
}

/// `sampler:a processor span_exporter:b …` from a row, or what to do when the plugin was only inspected.
fn components_summary(row: &serde_json::Value) -> String {
    if row["status"] == "found" {
        return "(not loaded: `ndotel list --probe` loads it in a child process)".into();
    }
    serde_json::from_value::<ndotel::Components>(row["components"].clone())
        .map(|c| c.summary())
        .unwrap_or_default()
}

/// `check --pid PID`: the last reload of a running service, from the status file it writes. Exits 3 when that
/// reload was refused or rolled back.
fn reload_status(pid: u32) -> Result<ExitCode> {
    use std::io::Read as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    const VAR: &[u8] = b"OTEL_RUST_DISTRO_RELOAD_STATUS=";
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let environ = std::fs::read(proc_dir.join("environ")).with_context(|| {
        format!(
            "reading the environment of process {pid} (no such process, or one of another user)"
        )
    })?;
    let owner = std::fs::metadata(&proc_dir)
        .with_context(|| format!("process {pid}"))?
        .uid();
    // The last one counts, as for the service; blank is unset.
    let value = environ
        .split(|b| *b == 0)
        .filter_map(|kv| kv.strip_prefix(VAR))
        .map(|v| v.trim_ascii())
        .next_back()
        .filter(|v| !v.is_empty());
    let Some(value) = value else {
        anyhow::bail!(
            "process {pid} does not write a reload status: start it with OTEL_RUST_DISTRO_RELOAD_STATUS=<file> to \
             see its reloads here (its standard error has one line per reload)"
        );
    };
    let mut path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(value));
    if path.is_relative() {
        let cwd = std::fs::read_link(proc_dir.join("cwd"))
            .with_context(|| format!("finding the working directory of process {pid}"))?;
        path = cwd.join(path);
    }
    let shown = ndotel::child::printable(&path.display().to_string());
    // Not followed, never blocking: a status is the service's own regular file.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("process {pid}: no reload yet ({shown} does not exist)");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).with_context(|| format!("opening {shown}")),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("reading {shown}"))?;
    anyhow::ensure!(
        meta.is_file() && (1..=64 * 1024).contains(&meta.len()),
        "{shown} is not a reload status (not a regular file of at most 64 KiB)"
    );
    anyhow::ensure!(
        meta.uid() == owner,
        "{shown} is owned by uid {}, not by process {pid}'s user (uid {owner}): not its status",
        meta.uid()
    );
    let mut text = Vec::new();
    file.take(64 * 1024)
        .read_to_end(&mut text)
        .with_context(|| format!("reading {shown}"))?;
    let status: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{shown} is not a reload status (JSON)"))?;
    let written_by = status["pid"].as_u64();
    anyhow::ensure!(
        written_by == Some(u64::from(pid)),
        "{shown} was written by {}, not by process {pid}: it has not reloaded since it started, or cannot write \
         its status (its standard error says why)",
        written_by.map_or("another process".to_string(), |p| format!("process {p}"))
    );
    let field = |k: &str| match &status[k] {
        serde_json::Value::String(s) => ndotel::child::printable(s),
        serde_json::Value::Null => "?".into(),
        other => ndotel::child::printable(&other.to_string()),
    };
    let outcome = field("outcome");
    anyhow::ensure!(
        ["applied", "unchanged", "refused", "rolled back"].contains(&outcome.as_str()),
        "{shown} is not a reload status (outcome {outcome:?})"
    );
    println!(
        "process {pid}: last reload of {} (sha256 {}): {outcome}, generation {}\n  {}",
        field("file"),
        field("sha256"),
        field("generation"),
        field("detail")
    );
    Ok(if outcome == "refused" || outcome == "rolled back" {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn check_in_child(select: &Select, given: &[(&str, &str)]) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the ndotel executable")?;
    let mut cmd = std::process::Command::new(exe);
    for (var, value) in select.pairs() {
        if let Some(v) = value {
            cmd.env(var, v);
        }
    }
    cmd.arg("__check");
    let out = ndotel::child::run_bounded(&mut cmd, CHILD_DEADLINE)
        .context("starting the check process")?;
    // What the child printed comes from plugin code too: printed with control characters escaped.
    print!(
        "{}",
        credit_flags(&ndotel::child::printable_lines(&out.stdout), given)
    );
    eprint!(
        "{}",
        credit_flags(&ndotel::child::printable_lines(&out.stderr), given)
    );
    let Some(status) = out.status else {
        eprintln!(
            "ndotel: check: the check process did not finish within {CHILD_DEADLINE:?}; it was stopped, and \
             everything it started with it (a distro that hangs at start-up?)"
        );
        return Ok(ExitCode::from(1));
    };
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(signal) = status.signal() {
        let name = match signal {
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGABRT => {
                " (SIGABRT: the plugin aborted, for example a panic with panic = \"abort\")"
            }
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGKILL => " (SIGKILL)",
            _ => "",
        };
        eprintln!(
            "ndotel: check: the selected distro crashed the check process with signal {signal}{name}; in a \
             service it would have taken the process down. Fix or replace its plugin"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

fn check() -> Result<ExitCode> {
    let env = Env::from_process();
    let plan = Plan::new(&env).context("selecting the distro")?;
    for w in plan.warnings_besides_unknown() {
        eprintln!("ndotel: warning: {}", ndotel::child::printable(&w));
    }
    println!(
        "distro: {} {} ({})",
        plan.distro.name, plan.distro.version, plan.distro.origin
    );
    // `init()` leaves an unknown name out and runs with the rest; `check` says it is wrong.
    let mut problems: Vec<String> = plan
        .settings
        .unknown
        .iter()
        .map(|u| format!("unknown name: {u}"))
        .collect();
    let pipeline = Pipeline::build(&plan, &env)
        .with_context(|| format!("building the pipeline of {}", plan.distro.name))?;
    println!("sampler: {}", pipeline.sampler_description);
    println!(
        "span exporters: {}",
        plan.settings.traces_exporter.value.join(",")
    );
    println!(
        "metric exporters: {}",
        plan.settings.metrics_exporter.value.join(",")
    );
    println!(
        "log exporters: {}",
        plan.settings.logs_exporter.value.join(",")
    );
    if let Some(tp) = &pipeline.tracer_provider {
        let tracer = tp.tracer("ndotel.check");
        let mut span = tracer.start("ndotel.check");
        span.set_attribute(KeyValue::new("ndotel.check", true));
        span.end();
        println!(
            "probe span sent to: {}",
            plan.settings.trace_destinations().join(", ")
        );
        if let Err(e) = tp.force_flush() {
            let otlp = plan
                .settings
                .traces_exporter
                .value
                .iter()
                .any(|n| n == "otlp");
            problems.push(if otlp && e.to_string().contains("network error") {
                format!(
                    "no OTLP collector answered: {}. Start one there, point OTEL_EXPORTER_OTLP_ENDPOINT at yours, \
                     or export elsewhere (OTEL_TRACES_EXPORTER=console, file or none)",
                    plan.settings.trace_destinations().join(", ")
                )
            } else {
                format!("flushing the probe span failed: {e}")
            });
        }
        if let Err(e) = tp.shutdown() {
            problems.push(format!("shutting down the tracer provider failed: {e}"));
        }
    }
    if let Some(mp) = &pipeline.meter_provider {
        let _ = mp.shutdown();
    }
    for c in ndotel::Component::ALL {
        println!("{} failures: {}", c.name(), pipeline.faults.count(c));
    }
    if pipeline.faults.total() > 0 {
        problems.push(format!(
            "{} component failure(s), see above",
            pipeline.faults.total()
        ));
    }
    if problems.is_empty() {
        println!("ok");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("problem: {p}");
        }
        Ok(ExitCode::from(1))
    }
}

fn config(select: &Select, json: bool, given: &[(&str, &str)]) -> Result<ExitCode> {
    let env = select.env();
    let plan = Plan::new(&env)?;
    // With a configuration file and no distro.toml, the plan's file is the configuration file's amendments.
    let file = plan
        .config
        .as_ref()
        .filter(|c| plan.declared.as_ref().is_none_or(|d| d.path != c.path))
        .map(|c| c.path.display().to_string())
        .unwrap_or_else(|| "none".into());
    let (_, selected_by) = plan
        .registry
        .selection(&plan.environment(&env), plan.config.as_ref());
    let mut rows: Vec<(String, String, String)> = vec![
        (
            "distro.toml".into(),
            file,
            "OTEL_RUST_DISTRO_CONFIG or ./distro.toml".to_string(),
        ),
        (
            "OTEL_RUST_DISTRO".into(),
            plan.distro.name.clone(),
            selected_by,
        ),
        (
            "distro origin".into(),
            plan.distro.origin.to_string(),
            "where the selected distro was found".to_string(),
        ),
    ];
    rows.extend(
        plan.settings
            .rows()
            .into_iter()
            .map(|(name, value, source)| (name.to_string(), value, source)),
    );
    rows.extend(distro_rows(&plan));
    for row in &mut rows {
        row.2 = credit_flags(&row.2, given);
    }
    let description = plan.sampler_description(&env)?;
    if json {
        let settings: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, value, source)| {
                serde_json::json!({ "name": name, "value": value, "source": source })
            })
            .collect();
        let out = serde_json::json!({
            "settings": settings,
            "sampler_description": description,
            "warnings": plan.settings.warnings,
            "unknown": plan.settings.unknown,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        // Columns as wide as their longest entry, so long names and paths never run into each other.
        let name_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let value_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        println!(
            "{:<name_width$}  {:<value_width$}  SOURCE",
            "SETTING", "VALUE"
        );
        for (name, value, source) in rows {
            println!("{name:<name_width$}  {value:<value_width$}  {source}");
        }
        println!("sampler description: {description}");
    }
    for w in plan.warnings_besides_unknown() {
        eprintln!(
            "ndotel: warning: {}",
            credit_flags(&ndotel::child::printable(&w), given)
        );
    }
    // An unknown name is an error here (and for `check` and `run`); `init()` leaves it out and runs with the rest.
    for u in &plan.settings.unknown {
        eprintln!(
            "ndotel: error: {}",
            credit_flags(&ndotel::child::printable(u), given)
        );
    }
    Ok(if plan.settings.unknown.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The selected distro's own settings as read: every key of its `[distro.NAME]` table (nested tables as dotted
/// keys), with the `distro.toml` line it is on; a key not written there is the distro's code default.
fn distro_rows(plan: &Plan) -> Vec<(String, String, String)> {
    let name = &plan.distro.name;
    let table = plan
        .config
        .as_ref()
        .and_then(|c| c.config.distro.get(name.as_str()).map(|t| (c, t)));
    // Settings from the configuration file's `distribution.ndotel.settings`.
    if let Some(d) = &plan.declared
        && d.model
            .pointer("/distribution/ndotel/distro")
            .and_then(|v| v.as_str())
            == Some(name.as_str())
        && let Some((_, table)) = table.filter(|(_, t)| !t.is_empty())
        && d.model.pointer("/distribution/ndotel/settings").is_some()
    {
        let mut flat = Vec::new();
        flatten(&mut vec![], table, &mut flat);
        return flat
            .into_iter()
            .map(|(path, value)| {
                let pointer = format!("/distribution/ndotel/settings/{}", path.join("/"));
                (
                    format!("[distro.{name}] {}", path.join(".")),
                    value,
                    format!(
                        "config {} (replaces {name}'s code default)",
                        ndotel::child::printable(&d.origin(&pointer))
                    ),
                )
            })
            .collect();
    }
    let Some((file, table)) = table.filter(|(_, t)| !t.is_empty()) else {
        return vec![(
            format!("[distro.{name}]"),
            "(not in distro.toml)".to_string(),
            format!(
                "no [distro.{name}] table in distro.toml: every setting of {name} is its code default"
            ),
        )];
    };
    let mut flat = Vec::new();
    flatten(&mut vec![], table, &mut flat);
    flat.into_iter()
        .map(|(path, value)| {
            let at = file
                .locate_distro_setting(name, &path)
                .unwrap_or_else(|| file.to_string());
            (
                format!("[distro.{name}] {}", path.join(".")),
                value,
                format!("{at} (replaces {name}'s code default)"),
            )
        })
        .collect()
}

/// Whether a distro setting's key names a secret, by ndotel-redact's default keys (the names the reference distro
/// redacts): its value, whatever its type, is shown as `***`. What a redaction setting lists (`redact.keys`) names
/// secrets without being one.
fn secret_key(path: &[String]) -> bool {
    static KEYS: std::sync::LazyLock<Option<ndotel_redact::Redactor>> =
        std::sync::LazyLock::new(|| {
            ndotel_redact::Redactor::new(&ndotel_redact::RedactSettings::default()).ok()
        });
    let redaction = path
        .iter()
        .any(|k| k.to_ascii_lowercase().contains("redact"));
    let last = path.last().map(String::as_str).unwrap_or_default();
    // Without the matcher (it always compiles), everything is masked rather than nothing.
    !redaction && KEYS.as_ref().is_none_or(|k| k.is_sensitive_key(last))
}

/// `table`'s leaves as (key path, TOML value), in the table's order; a secret's value masked.
fn flatten(prefix: &mut Vec<String>, table: &toml::Table, out: &mut Vec<(Vec<String>, String)>) {
    for (key, value) in table {
        prefix.push(key.clone());
        match value {
            toml::Value::Table(inner) => flatten(prefix, inner, out),
            _ if secret_key(prefix) => out.push((prefix.clone(), "***".to_string())),
            v => out.push((prefix.clone(), ndotel::child::printable(&v.to_string()))),
        }
        prefix.pop();
    }
}

/// The line and column of the key at `path` in the parsed document `root` of `text`.
fn run(args: RunArgs) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt as _;
    let flags = args.flags().map(|(var, _, value)| (var, value));
    let pairs: Vec<(&str, &String)> = args
        .select
        .pairs()
        .into_iter()
        .chain(flags)
        .filter_map(|(var, value)| value.map(|v| (var, v)))
        .collect();
    // Check the selection before handing over, as `check` does: a typo in `--distro` is an error here, not a
    // service that quietly runs without telemetry.
    let env = pairs
        .iter()
        .fold(Env::from_process(), |env, (var, v)| env.with(var, v));
    let plan = Plan::new(&env).context("selecting the distro")?;
    if !plan.settings.unknown.is_empty() {
        anyhow::bail!(
            "{} (`ndotel config` lists every setting)",
            plan.settings.unknown.join("; ")
        );
    }
    let mut cmd = std::process::Command::new(&args.app[0]);
    cmd.args(&args.app[1..]);
    for (var, v) in pairs {
        cmd.env(var, v);
    }
    let err = cmd.exec();
    Err(anyhow::Error::new(err).context(format!("cannot run {}", args.app[0])))
}
