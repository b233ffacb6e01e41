//! The trust chain, as sshd's StrictModes and sudo check it: a file ndotel acts on (a plugin, `distro.toml`) and
//! every directory from it up to `/` must be owned by root or the current user and not writable by group or
//! others — unless the directory is sticky (like `/tmp`), where nobody can replace an entry they do not own, and
//! then the entry inside must be owned by root or the current user. A symlink is resolved, every component of the
//! resolved path is checked, and so is the link's own owner. Each refusal names the path, the rule and the fix.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub(crate) fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn owner_ok(uid: u32, me: u32) -> bool {
    uid == 0 || uid == me
}

/// Opens `path` for ndotel to write telemetry into (appending), created with mode `0640` when new. A file that
/// another user planted is refused — in a directory others can write to (`/tmp`), it could collect what is written,
/// or redirect the writes: a file of another user's, a symlink of another user's, a hard link (to a file of this
/// user's, or of root's), a FIFO (whose open would block) or anything but a regular file or a character device.
/// A file this call creates is ours whatever the file system reports (NFS `root_squash`); a symlink of root's or
/// this user's is followed (`/dev/null`); the process's own descriptors (`/dev/stdout`, `/dev/stderr`,
/// `/dev/fd/N`) are whoever started it chose, and are taken as they are.
pub(crate) fn open_output(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let own_descriptor = ["/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/"]
        .iter()
        .any(|p| path.to_str().is_some_and(|s| s.starts_with(p)));
    if own_descriptor {
        return std::fs::OpenOptions::new().append(true).open(path);
    }
    let me = current_uid();
    let refused = |what: String| {
        std::io::Error::other(format!(
            "{} {what}: refusing to write telemetry into a file someone else may control; remove it, or choose a \
             path in a directory only you can write to",
            crate::text::shown(path)
        ))
    };
    let options = |create_new: bool| {
        let mut o = std::fs::OpenOptions::new();
        o.append(true).mode(0o640);
        if create_new {
            o.create_new(true);
        }
        // Non-blocking for the open only: a FIFO without a reader fails at once instead of hanging.
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        o
    };
    // A new file is ours.
    match options(true).open(path) {
        Ok(file) => return blocking(file),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let file = match options(false).open(path) {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let link = std::fs::symlink_metadata(path)?;
            if !owner_ok(link.uid(), me) {
                return Err(refused(format!(
                    "is a symbolic link owned by another user (uid {})",
                    link.uid()
                )));
            }
            if link.nlink() > 1 {
                return Err(refused("is a hard link to a symbolic link".into()));
            }
            let mut o = std::fs::OpenOptions::new();
            o.append(true).custom_flags(libc::O_NONBLOCK);
            o.open(path)?
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(refused("is a FIFO".into()));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !(kind.is_file() || kind.is_char_device()) {
        return Err(refused("is neither a regular file nor a device".into()));
    }
    if !owner_ok(meta.uid(), me) {
        return Err(refused(format!(
            "is owned by another user (uid {})",
            meta.uid()
        )));
    }
    if kind.is_file() && meta.nlink() > 1 {
        return Err(refused(format!(
            "has {} hard links (another name for it may be someone else's)",
            meta.nlink()
        )));
    }
    blocking(file)
}

/// `file` with `O_NONBLOCK` cleared: writes wait as usual.
fn blocking(file: std::fs::File) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns, with flags read from it.
    let cleared = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if cleared {
        Ok(file)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Writes `bytes` to `path` whole (a reader never sees half of it): into a new file of a name nobody can have
/// planted (`O_EXCL`, beside `path`), renamed over `path`.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// What [`check_chain`] verified: the resolved path and the identity of the file it found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// `path` with every symlink resolved.
    pub(crate) real: std::path::PathBuf,
    /// Device and inode of the verified file: whatever is opened later must be this file.
    pub(crate) id: (u64, u64),
}

/// Checks `path` (a file) and the chain above it; `Err` says which path broke which rule and how to fix it.
pub(crate) fn check_chain(path: &Path) -> Result<Checked, String> {
    let me = current_uid();
    let link = std::fs::symlink_metadata(path).map_err(|e| format!("cannot stat it: {e}"))?;
    if link.file_type().is_symlink() && !owner_ok(link.uid(), me) {
        return Err(format!(
            "symlink {} is owned by uid {}, not by root or you (uid {me}); replace it with a link you own",
            crate::text::shown(path),
            link.uid()
        ));
    }
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve it: {e}"))?;
    let meta = std::fs::metadata(&real).map_err(|e| format!("cannot stat it: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file",
            crate::text::shown(&real)
        ));
    }
    let shown = if real == path {
        String::new()
    } else {
        format!(" (the target of {})", crate::text::shown(path))
    };
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "file {}{shown} is writable by group or others (mode {:o}); run `chmod go-w {}`",
            crate::text::shown(&real),
            meta.mode() & 0o7777,
            crate::text::shown(&real)
        ));
    }
    if !owner_ok(meta.uid(), me) {
        return Err(format!(
            "file {}{shown} is owned by uid {}, not by root or you (uid {me})",
            crate::text::shown(&real),
            meta.uid()
        ));
    }
    if let Some(dir) = real.parent() {
        check_dirs(dir, meta.uid(), me, &shown)?;
    }
    // A link is as safe as the directories that hold it: whoever can write there can point it elsewhere.
    if link.file_type().is_symlink() {
        let parent = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or_else(|| format!("cannot find the directory of {}", crate::text::shown(path)))?;
        let parent = std::fs::canonicalize(&parent)
            .map_err(|e| format!("cannot resolve {}: {e}", crate::text::shown(&parent)))?;
        check_dirs(
            &parent,
            link.uid(),
            me,
            &format!(" (it holds the link {})", crate::text::shown(path)),
        )?;
    }
    Ok(Checked {
        id: (meta.dev(), meta.ino()),
        real,
    })
}

/// Checks `dir` and every directory above it (`dir` holds an entry owned by `entry_owner`): each owned by root or
/// `me`, and not writable by group or others unless sticky with the entry below it owned by root or `me`.
fn check_dirs(dir: &Path, entry_owner: u32, me: u32, shown: &str) -> Result<(), String> {
    let mut child_owner = entry_owner;
    for dir in dir.ancestors() {
        let m = std::fs::metadata(dir)
            .map_err(|e| format!("cannot stat {}: {e}", crate::text::shown(dir)))?;
        if !owner_ok(m.uid(), me) {
            return Err(format!(
                "directory {}{shown} is owned by uid {}, not by root or you (uid {me}): its owner can replace \
                 what it holds",
                crate::text::shown(dir),
                m.uid()
            ));
        }
        let sticky = m.mode() & 0o1000 != 0;
        if m.mode() & 0o022 != 0 && !(sticky && owner_ok(child_owner, me)) {
            return Err(format!(
                "directory {}{shown} is writable by group or others (mode {:o}); run `chmod go-w {}`",
                crate::text::shown(dir),
                m.mode() & 0o7777,
                crate::text::shown(dir)
            ));
        }
        child_owner = m.uid();
    }
    Ok(())
}

#[cfg(test)]
mod output_tests {
    use super::*;

    /// A file, a symlink, a FIFO or a hard link planted where ndotel writes is refused (a file of another user is
    /// planted only when the tests run as root: as `nobody`); a fresh file is created 0640 (less the umask).
    #[test]
    fn an_output_file_another_user_controls_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.jsonl");
        let f = open_output(&fresh).unwrap();
        // 0640 less whatever the umask takes away: never a bit beyond it.
        let mode = f.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "{mode:o}");
        drop(f);
        assert!(open_output(&fresh).is_ok(), "our own file, opened again");
        // A FIFO fails at once (no reader: the open would block), and so does a hard link.
        let fifo = dir.path().join("fifo.jsonl");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_output(&fifo).unwrap_err().to_string();
        assert!(e.contains("is a FIFO"), "{e}");
        let linked = dir.path().join("linked.jsonl");
        std::fs::hard_link(&fresh, &linked).unwrap();
        let e = open_output(&linked).unwrap_err().to_string();
        assert!(e.contains("hard links"), "{e}");
        // A device of root's (what /dev/stdout leads to, say) is written to.
        assert!(open_output(Path::new("/dev/null")).is_ok());
        // The process's own descriptor, as it was started with it.
        assert!(open_output(Path::new("/dev/stderr")).is_ok());
        if current_uid() != 0 {
            return; // planting a file of another user needs root
        }
        let planted = dir.path().join("planted.jsonl");
        std::fs::write(&planted, b"").unwrap();
        std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
        let e = open_output(&planted).unwrap_err().to_string();
        assert!(e.contains("owned by another user (uid 65534)"), "{e}");
        let target = dir.path().join("mine");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        let e = open_output(&link).unwrap_err().to_string();
        assert!(
            e.contains("is a symbolic link owned by another user"),
            "{e}"
        );
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"keep",
            "nothing written through the link"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_writable_grandparent_is_refused_and_a_safe_chain_passes() {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o700);
        let mid = tmp.path().join("a/b");
        std::fs::create_dir_all(&mid).unwrap();
        let file = mid.join("f.so");
        std::fs::write(&file, b"x").unwrap();
        chmod(&file, 0o644);
        chmod(&mid, 0o755);
        chmod(&tmp.path().join("a"), 0o755);
        assert!(check_chain(&file).is_ok());
        chmod(&tmp.path().join("a"), 0o777);
        let err = check_chain(&file).unwrap_err();
        assert!(err.contains("/a is writable by group or others"), "{err}");
        // Sticky and writable by all (like /tmp) is fine when the entry inside is ours.
        chmod(&tmp.path().join("a"), 0o1777);
        assert!(check_chain(&file).is_ok());
    }

    #[test]
    fn a_symlink_in_a_writable_directory_is_refused_even_to_a_safe_file() {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o700);
        let safe = tmp.path().join("safe");
        std::fs::create_dir(&safe).unwrap();
        chmod(&safe, 0o755);
        let target = safe.join("otel.yaml");
        std::fs::write(&target, b"x").unwrap();
        chmod(&target, 0o644);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let link = open.join("otel.yaml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = check_chain(&link).unwrap_err();
        assert!(
            err.contains("/open") && err.contains("it holds the link"),
            "{err}"
        );
        // Sticky, like /tmp, with our own link in it: fine.
        chmod(&open, 0o1777);
        assert!(check_chain(&link).is_ok());
        assert!(check_chain(&target).is_ok());
    }

    #[test]
    fn a_symlink_into_a_writable_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o700);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let target = open.join("f.so");
        std::fs::write(&target, b"x").unwrap();
        chmod(&target, 0o644);
        let safe = tmp.path().join("safe");
        std::fs::create_dir(&safe).unwrap();
        chmod(&safe, 0o755);
        let link = safe.join("f.so");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = check_chain(&link).unwrap_err();
        assert!(
            err.contains("/open (the target of") && err.contains("is writable"),
            "{err}"
        );
    }

    #[test]
    fn a_symlink_owned_by_another_user_is_refused_even_to_a_safe_target() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("\n*** SKIPPED: changing a link's owner needs root ***\n");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o1777); // sticky and open, like /tmp
        let target = tmp.path().join("real.so");
        std::fs::write(&target, b"x").unwrap();
        chmod(&target, 0o644);
        let link = tmp.path().join("link.so");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        let err = check_chain(&link).unwrap_err();
        assert!(
            err.contains("symlink") && err.contains("uid 65534"),
            "{err}"
        );
        assert!(check_chain(&target).is_ok());
    }
}
