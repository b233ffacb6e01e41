//! Loading one plugin `.so`: the safety checks before `dlopen` (ownership, permissions, sha256 pin), the abi_stable
//! root-module checks after it, and errors short enough to read.
//!
//! Each file is loaded with `lib_header_from_path(..).init_root_module()`, never `RootModule::load_from_file`,
//! which caches one module per type and would hand every later plugin the first one's module.

use crate::distro::inspect::Inspected;
use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::library::{LibHeader, LibraryError, RootModule, lib_header_from_path};
use ndotel_api::ffi::{DistroDescriptorRef, PluginModRef};
use sha2::{Digest, Sha256};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Why a plugin file did not load.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LoadError {
    /// The file does not exist or cannot be read.
    #[error("{}: cannot read plugin: {reason}", crate::text::shown(.path))]
    Missing {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// Refused before loading: writable by others, owned by another user, or a symlink to such.
    #[error("{}: refused: {reason}", crate::text::shown(.path))]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why, and how to fix it.
        reason: String,
    },
    /// The file's sha256 differs from the pin in `distro.toml`.
    #[error(
        "{}: refused: sha256 is {found}, distro.toml pins {expected}; rebuild or update the pin", crate::text::shown(.path))]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The pinned digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// The dynamic loader rejected the file: not a shared library, empty, truncated, wrong architecture.
    #[error("{}: not a loadable shared library: {reason}", crate::text::shown(.path))]
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// A shared library, but it exports no ndotel root module.
    #[error(
        "{}: not an ndotel plugin (it exports no ndotel-api root module; build it with ndotel_api::export_plugin!)", crate::text::shown(.path))]
    NotAPlugin {
        /// The file.
        path: PathBuf,
    },
    /// Built with `panic = "abort"`: no panic in it could be caught, so any would kill the host.
    #[error(
        "{}: refused: built with panic = \"abort\", so any panic in the distro would abort this process; set panic = \"unwind\" (the default) in the [profile.*] sections of the plugin's Cargo.toml and rebuild", crate::text::shown(.path))]
    PanicAbort {
        /// The file.
        path: PathBuf,
    },
    /// Built against an incompatible `ndotel-api`.
    #[error(
        "{}: plugin built for an incompatible ndotel-api (plugin: {found}, host needs: {expected}): {detail}; rebuild the plugin against ndotel-api {expected}", crate::text::shown(.path))]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// The API version the host was built with.
        expected: String,
        /// The API version the plugin was built with.
        found: String,
        /// The first lines of the layout check's report.
        detail: String,
    },
}

impl LoadError {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Missing { path, .. }
            | LoadError::Refused { path, .. }
            | LoadError::Checksum { path, .. }
            | LoadError::Open { path, .. }
            | LoadError::NotAPlugin { path }
            | LoadError::PanicAbort { path }
            | LoadError::Incompatible { path, .. } => path,
        }
    }
}

/// A loaded plugin file and the distros it holds.
#[derive(Clone)]
pub struct Plugin {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// The `ndotel-api` version it was built with.
    pub api_version: String,
    /// The capabilities of that API version.
    pub capabilities: Vec<String>,
    /// The distros it exports (empty while it is only inspected).
    pub distros: Vec<DistroDescriptorRef>,
    /// What its metadata section says (`None` for a plugin built before ndotel-api 1.2).
    pub meta: Option<ndotel_api::meta::PluginMeta>,
    /// Its sha256 pin.
    pin: Option<String>,
    /// Device and inode of the file inspected.
    id: (u64, u64),
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("api_version", &self.api_version)
            .field("capabilities", &self.capabilities)
            .field("distros", &self.distros.len())
            .finish()
    }
}

impl Plugin {
    /// Checks the plugin at `path` and reads what it holds **without running any of its code**: the trust chain,
    /// the sha256 pin (`sha256`, from `distro.toml`), the ELF pre-flight, then the metadata section that
    /// `export_plugin!` writes. Its distros are known by name; [`Plugin::load`] loads it when one is selected.
    ///
    /// A plugin built before ndotel-api 1.2 has no metadata section ([`Plugin::is_legacy`]): its distros are known
    /// only once it is loaded, which the registry does only when the selected distro is found nowhere else. A
    /// shared library with neither the section nor an ndotel root module is refused unloaded.
    pub fn inspect(path: &Path, sha256: Option<&str>) -> Result<Plugin, LoadError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let file = verified_open(&path, sha256)?;
        let open = |reason: String| LoadError::Open {
            path: path.clone(),
            reason,
        };
        let id = file_id(&file).map_err(|e| open(e.to_string()))?;
        let meta = match crate::distro::inspect::inspect(&file).map_err(open)? {
            Inspected::Meta(meta) => {
                check_version(&path, &meta.api_version)?;
                if !meta.panic_unwind {
                    return Err(LoadError::PanicAbort { path });
                }
                Some(meta)
            }
            Inspected::Legacy => None,
            Inspected::NotAPlugin => return Err(LoadError::NotAPlugin { path }),
        };
        Ok(Plugin {
            api_version: meta
                .as_ref()
                .map(|m| m.api_version.clone())
                .unwrap_or_default(),
            capabilities: meta
                .as_ref()
                .map(|m| m.capabilities.clone())
                .unwrap_or_default(),
            distros: Vec::new(),
            meta,
            pin: sha256.map(str::to_string),
            id,
            path,
        })
    }

    /// The names of the distros it holds.
    pub fn distro_names(&self) -> Vec<String> {
        match &self.meta {
            Some(meta) => meta.distros.iter().map(|d| d.name.clone()).collect(),
            None => self.distros.iter().map(|d| d.name().to_string()).collect(),
        }
    }

    /// Whether the plugin is only inspected, not loaded (then its distros are named by its metadata, or — for a
    /// plugin built before ndotel-api 1.2 — not known until it is loaded).
    pub fn inspected_only(&self) -> bool {
        self.distros.is_empty()
    }

    /// Whether it was built before ndotel-api 1.2: no metadata, so its distros are known only once it is loaded.
    pub fn is_legacy(&self) -> bool {
        self.meta.is_none()
    }

    /// Loads an inspected plugin: the same checks again on a fresh open, which must find the very file inspected,
    /// then `dlopen` of that descriptor and the root module's checks. The library stays loaded for the life of
    /// the process.
    pub fn load(&self) -> Result<Plugin, LoadError> {
        if !self.inspected_only() {
            return Ok(self.clone());
        }
        let file = verified_open(&self.path, self.pin.as_deref())?;
        let id = file_id(&file).map_err(|e| LoadError::Missing {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if id != self.id {
            return Err(LoadError::Refused {
                path: self.path.clone(),
                reason:
                    "the file was replaced after it was inspected; find out who can write there"
                        .into(),
            });
        }
        load_file(
            self.path.clone(),
            file,
            self.pin.as_deref(),
            self.meta.clone(),
        )
    }

    /// One line for each capability of this host's API that the plugin's (older) API lacks, saying what the host
    /// does without it.
    pub fn missing_capabilities(&self) -> Vec<String> {
        ndotel_api::CAPABILITIES
            .iter()
            .filter(|c| !self.capabilities.iter().any(|p| p == *c))
            .filter_map(|c| Some((c, degradation(c)?)))
            .map(|(c, degradation)| {
                format!(
                    "{}: built with ndotel-api {}, which predates `{c}`: {}",
                    crate::text::shown(&self.path),
                    self.api_version,
                    degradation
                )
            })
            .collect()
    }
}

/// Checks the plugin's API version and layout, then initialises its root module.
///
/// abi_stable's own `init_root_module` checks the host's layout as the *interface* and the plugin's as the
/// *implementation*, which lets an older host load a newer library but refuses what ndotel needs: a newer host
/// loading a plugin built against an older 1.x (the host's vtables and modules have gained fields). So the check runs
/// the other way round: the plugin's layout is the interface, the host's the implementation. Fields a plugin lacks
/// are then read through `missing_field(option)` accessors and default trait methods, which abi_stable resolves
/// from the metadata each prefix value carries. A plugin built against a newer minor version is refused by version.
fn check_module(path: &Path, header: &'static LibHeader) -> Result<PluginModRef, LoadError> {
    let found = header.version_strings().version.to_string();
    let incompatible = |detail: String| LoadError::Incompatible {
        path: path.to_path_buf(),
        expected: ndotel_api::API_VERSION.to_string(),
        found: found.clone(),
        detail,
    };
    check_version(path, &found)?;
    let layout = header
        .layout()
        .ok_or_else(|| incompatible("it carries no layout to check".into()))?;
    let expected = <PluginModRef as abi_stable::StableAbi>::LAYOUT;
    if let Err(report) = check_layout_compatibility(layout, expected) {
        let mut detail = summarise_abi_report(&report.to_string());
        if found == ndotel_api::API_VERSION {
            // Same number, different layout: a modified or mismatched copy of the API crate.
            detail = format!("same version number but a different layout ({detail})");
        }
        return Err(incompatible(detail));
    }
    // SAFETY: the layout was checked just above (plugin as interface, host as implementation, see the doc comment).
    unsafe { header.init_root_module_with_unchecked_layout::<PluginModRef>() }
        .map_err(|e| classify(path, e))
}

/// The host API's (major, minor), from its version string.
/// Whether a distro built against API `version` edits a batch of spans per call (`span_batch`, since 1.5).
pub(crate) fn edits_batches(version: &str) -> bool {
    let (major, minor) = host_version(version);
    major == 1 && minor >= 5
}

fn host_version(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Device and inode of an open file: what identifies it across opens.
fn file_id(file: &std::fs::File) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().map(|m| (m.dev(), m.ino()))
}

/// Opens `path` through the trust checks, checks its pin (hashing the open descriptor) and runs the ELF
/// pre-flight on it.
fn verified_open(path: &Path, sha256: Option<&str>) -> Result<std::fs::File, LoadError> {
    // One open: the trust checks, the hash, the ELF checks and the loader all see this one file, so nothing can be
    // swapped in between (the descriptor's identity must match what the trust checks verified).
    let file = open_trusted(path)?;
    if let Some(expected) = sha256 {
        // Streamed from the descriptor: bounded memory whatever the file's size.
        let mut hasher = Sha256::new();
        std::io::copy(&mut &file, &mut hasher).map_err(|e| LoadError::Missing {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let found = format!("{:x}", hasher.finalize());
        if !found.eq_ignore_ascii_case(expected.trim()) {
            return Err(LoadError::Checksum {
                path: path.to_path_buf(),
                expected: expected.to_string(),
                found,
            });
        }
    }
    preflight_elf(&file).map_err(|reason| LoadError::Open {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(file)
}

/// Loads the verified `file` and checks its root module; with `meta`, the module must hold the distros the
/// metadata named.
fn load_file(
    path: PathBuf,
    file: std::fs::File,
    pin: Option<&str>,
    meta: Option<ndotel_api::meta::PluginMeta>,
) -> Result<Plugin, LoadError> {
    let id = file_id(&file).unwrap_or_default();
    // The loader opens the verified descriptor, not the path. This is sound because the library is never unloaded
    // (abi_stable leaks every loaded library for the life of the process): once mapped, what runs is what was
    // checked, and closing our descriptor afterwards would not affect the mapping.
    let by_fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    let header = lib_header_from_path(&by_fd).map_err(|e| classify(&path, e))?;
    // The descriptor stays open for the life of the process, like the library: the dynamic loader knows a library
    // by the name it was opened under, so a reused descriptor number would make the next plugin's `dlopen` return
    // this one.
    std::mem::forget(file);
    let module = check_module(&path, header)?;
    if !module.panic_unwind() {
        return Err(LoadError::PanicAbort { path });
    }
    let capabilities = module
        .capabilities()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let distros = (module.distros())().into_vec();
    if let Some(meta) = &meta {
        let named: Vec<String> = meta.distros.iter().map(|d| d.name.clone()).collect();
        let held: Vec<String> = distros.iter().map(|d| d.name().to_string()).collect();
        if named != held {
            return Err(LoadError::Refused {
                path,
                reason: format!(
                    "its metadata names distros {named:?} but its module holds {held:?} (a damaged or altered file)"
                ),
            });
        }
    }
    Ok(Plugin {
        api_version: module.api_version().to_string(),
        capabilities,
        distros,
        meta,
        pin: pin.map(str::to_string),
        id,
        path,
    })
}

/// Refuses an API version the host cannot load: another major version, or a newer minor one.
fn check_version(path: &Path, found: &str) -> Result<(), LoadError> {
    let plugin = host_version(found);
    let host = host_version(ndotel_api::API_VERSION);
    let incompatible = |detail: String| LoadError::Incompatible {
        path: path.to_path_buf(),
        expected: ndotel_api::API_VERSION.to_string(),
        found: found.to_string(),
        detail,
    };
    if plugin.0 != host.0 {
        return Err(incompatible(format!(
            "a different major version (plugin {}.x, host {}.x)",
            plugin.0, host.0
        )));
    }
    if plugin.1 > host.1 {
        return Err(incompatible(format!(
            "the plugin is newer than this host (upgrade the host to ndotel-api {}.{} or later, or build the plugin \
             against {})",
            plugin.0,
            plugin.1,
            ndotel_api::API_VERSION
        )));
    }
    Ok(())
}

/// What the host does without a capability a plugin lacks (`None`: nothing the operator would notice).
fn degradation(capability: &str) -> Option<&'static str> {
    Some(match capability {
        // The host calls the processor once per span instead of once per batch, with the same edits.
        "span_batch" => return None,
        // Without it, the host reads a composite node's intent from the plugin's decision (`FfiSampler::intent`'s
        // default body): the same sampling, without a threshold to write.
        "sampling_intent" => return None,
        // Without it, the host asks the sampler about every span, children included: the same decisions.
        "sampler_children_follow_parent" => return None,
        "processor_shutdown" => "its span processor is not told when the pipeline shuts down",
        "setting_error_path" => {
            "an error in its distros' settings names their table in distro.toml, not the line of the key"
        }
        "host_env" => "it reads the process environment, not the one the host was configured with",
        "log_processor" => {
            "its distros have no log processor, so a distro that redacts spans has its log records left unexported \
             unless OTEL_LOGS_EXPORTER is set"
        }
        "metadata_section" => {
            "it has no metadata section, so it is loaded at discovery to learn its distros (its code runs even when \
             another distro is selected); rebuild it against ndotel-api 1.2 or later"
        }
        _ => "the host does without it (rebuild the plugin against this ndotel-api to use it)",
    })
}

/// Checks the ELF header and program headers before `dlopen`: the loader maps every segment the headers name, and
/// touching a page beyond the end of a truncated file kills the process with SIGBUS — no error value, no recovery.
fn preflight_elf(mut file: &std::fs::File) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut h = [0u8; 64];
    file.read_exact(&mut h)
        .map_err(|_| format!("file too short for an ELF header ({len} bytes)"))?;
    if &h[..4] != b"\x7fELF" {
        return Err("invalid ELF header (not a shared library)".into());
    }
    if h[4] != 2 || h[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u64_at = |b: &[u8], o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    if u16_at(&h, 16) != 3 {
        return Err("ELF file is not a shared object (ET_DYN)".into());
    }
    let (phoff, shoff) = (u64_at(&h, 0x20), u64_at(&h, 0x28));
    let (phentsize, phnum) = (u16_at(&h, 0x36), u16_at(&h, 0x38));
    let (shentsize, shnum) = (u16_at(&h, 0x3a), u16_at(&h, 0x3c));
    let truncated =
        |what: &str| format!("truncated: {what} lies beyond the end of the file ({len} bytes)");
    if phentsize < 56 || phoff.saturating_add(phentsize * phnum) > len {
        return Err(truncated("the program header table"));
    }
    if shoff.saturating_add(shentsize * shnum) > len {
        return Err(truncated("the section header table"));
    }
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    file.seek(SeekFrom::Start(phoff))
        .and_then(|_| file.read_exact(&mut ph))
        .map_err(|e| e.to_string())?;
    for entry in ph.chunks_exact(phentsize as usize) {
        let (offset, filesz) = (u64_at(entry, 8), u64_at(entry, 0x20));
        if offset.saturating_add(filesz) > len {
            return Err(truncated("a loadable segment"));
        }
    }
    Ok(())
}

fn classify(path: &Path, e: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match e {
        LibraryError::OpenError { err, .. } => LoadError::Open {
            path,
            reason: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin { path },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::Incompatible {
            path,
            expected: expected_version.to_string(),
            found: actual_version.to_string(),
            detail: "semver-incompatible API version".into(),
        },
        LibraryError::InvalidAbiHeader(h) => LoadError::Incompatible {
            path,
            expected: format!("abi_stable {}", PluginModRef::VERSION_STRINGS.version),
            found: format!("abi_stable header {}.{}", h.abi_major, h.abi_minor),
            detail: "built with an incompatible abi_stable".into(),
        },
        other => LoadError::Open {
            path,
            reason: first_line(&other.to_string()),
        },
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// abi_stable's layout report runs to thousands of lines; its `Error:` lines say what differs.
fn summarise_abi_report(report: &str) -> String {
    let mut errors: Vec<&str> = Vec::new();
    for line in report.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Error:") {
            let rest = rest.trim();
            if !rest.is_empty() && !errors.contains(&rest) {
                errors.push(rest);
            }
        }
    }
    if errors.is_empty() {
        return first_line(report);
    }
    let more = errors.len().saturating_sub(3);
    let mut text = errors.into_iter().take(3).collect::<Vec<_>>().join("; ");
    if more > 0 {
        text.push_str(&format!(" (+{more} more)"));
    }
    text
}

/// The trust chain (see [`crate::trust`]) — the file, every directory up to `/`, and a symlink's target and
/// owner — then the one open of the verified file: `O_NOFOLLOW` (the resolved path has no link left, so one that
/// appears there now is a swap), `O_NONBLOCK` (a FIFO cannot hang the open), and an `fstat` of the descriptor that
/// must find the very file the checks verified, still a regular file nobody else can write.
pub(crate) fn open_trusted(path: &Path) -> Result<std::fs::File, LoadError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let missing = |reason: String| LoadError::Missing {
        path: path.to_path_buf(),
        reason,
    };
    let refused = |reason: String| LoadError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| missing(e.to_string()))?;
    if !meta.is_file() {
        return Err(missing("not a regular file".into()));
    }
    let checked = crate::trust::check_chain(path).map_err(refused)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&checked.real)
        .map_err(|e| {
            refused(format!(
                "{} changed while it was checked ({e})",
                crate::text::shown(&checked.real)
            ))
        })?;
    let opened = file.metadata().map_err(|e| missing(e.to_string()))?;
    if (opened.dev(), opened.ino()) != checked.id || !opened.is_file() {
        return Err(refused(format!(
            "{} was replaced while it was checked; try again, and find out who can write there",
            crate::text::shown(&checked.real)
        )));
    }
    // Mode and owner as opened (they could have changed after the path checks).
    if opened.mode() & 0o022 != 0
        || !(opened.uid() == 0 || opened.uid() == crate::trust::current_uid())
    {
        return Err(refused(format!(
            "{} changed mode or owner while it was checked; run `chmod go-w` on it",
            crate::text::shown(&checked.real)
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_report_is_summarised_to_its_error_lines() {
        let report = "Error:a\n  lots\n  of\n lines\nError: field x has type u8, expected u16\nError: field x has type u8, expected u16\n";
        assert_eq!(
            summarise_abi_report(report),
            "a; field x has type u8, expected u16"
        );
    }
}
