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

/// Whether `path` names one of the process's own descriptors (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`), which
/// whoever started it chose.
pub(crate) fn own_descriptor(path: &Path) -> bool {
    let Some(s) = path.to_str() else {
        return false;
    };
    // A number and nothing else: `/dev/fd/../../tmp/x` names no descriptor.
    let fd = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    s == "/dev/stdout"
        || s == "/dev/stderr"
        || s.strip_prefix("/dev/fd/").is_some_and(fd)
        || s.strip_prefix("/proc/self/fd/").is_some_and(fd)
}

/// Opens `path` for ndotel to write telemetry into (appending), created with mode `0640` when new. A file that
/// another user planted is refused — in a directory others can write to (`/tmp`), it could collect what is written,
/// or redirect the writes: a file of another user's, a symlink of another user's, a hard link (to a file of this
/// user's, or of root's), a FIFO (whose open would block) or anything but a regular file or a character device.
/// A file this call creates is ours whatever the file system reports (NFS `root_squash`); a symlink of root's or
/// this user's is followed (`/dev/null`); the process's own descriptors (`/dev/stdout`, `/dev/stderr`,
/// `/dev/fd/N`) are whoever started it chose, and are taken as they are. The directory it is in is checked (and
/// created) as [`output_dir`] says.
pub(crate) fn open_output(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    if own_descriptor(path) {
        return std::fs::OpenOptions::new().append(true).open(path);
    }
    output_dir_of(path)?;
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
            // Every link it leads through, and the directories holding them, as `check_chain` checks them; then
            // the directory of the file it names, as the output's own directory is checked.
            let real =
                resolve(path, me).map_err(|why| refused(format!("leads through a link: {why}")))?;
            output_dir_of(&real)?;
            let mut o = std::fs::OpenOptions::new();
            o.append(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
            o.open(&real)?
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

/// Writes `bytes` to `path` whole (a reader never sees half of it): into a new file beside `path` of a name nobody
/// can guess (`O_EXCL`, so nothing planted is ever written to), renamed over `path`. The directory is checked as
/// [`output_dir`] checks it.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::hash::{BuildHasher as _, Hasher as _};
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    output_dir_of(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attempt = 0;
    let (mut file, tmp) = loop {
        // Random per call: `RandomState` is seeded from the operating system's randomness.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", h.finish()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(file) => break (file, tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
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
    // Every symlink on the way, the last component's included, is checked as it is met.
    let real = resolve(path, me)?;
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
    Ok(Checked {
        id: (meta.dev(), meta.ino()),
        real,
    })
}

/// Checks the directory that will hold a file ndotel writes telemetry into, creating what is missing of it (mode
/// `0700`) only below a directory that passed. Refused: a directory on the way owned by another user (root aside),
/// who could replace it and read what is written or send it elsewhere, and a symlink on the way that another user
/// owns or could replace (held by a directory others can write, not sticky). A directory on the way that group or
/// others can write (a volume shared with a log shipper, a team directory) is allowed with a warning in the
/// returned list: someone could rename or remove the files, but the file itself is opened by [`open_output`],
/// which refuses whatever another user planted at its name.
pub(crate) fn output_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    use std::os::unix::fs::DirBuilderExt as _;
    let me = current_uid();
    let dir = std::path::absolute(dir)?;
    let check = |d: &Path| -> std::io::Result<Vec<String>> {
        let real = resolve(d, me).map_err(refused_dir)?;
        let mut warnings = Vec::new();
        check_dirs_warning(&real, me, me, "", Some(&mut warnings)).map_err(refused_dir)?;
        Ok(warnings)
    };
    // The deepest part that exists (a dangling link counts: `resolve` says so).
    let existing = dir
        .ancestors()
        .find(|a| std::fs::symlink_metadata(a).is_ok())
        .unwrap_or(Path::new("/"));
    let warnings = check(existing)?;
    if existing == dir {
        return Ok(warnings);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    check(&dir)
}

/// [`output_dir`] for the directory of the file `path` (`.` for a bare name), its warnings said on stderr.
fn output_dir_of(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    for warning in output_dir(dir.unwrap_or(Path::new(".")))? {
        eprintln!("ndotel: warning: {warning}");
    }
    Ok(())
}

fn refused_dir(why: String) -> std::io::Error {
    std::io::Error::other(format!(
        "{why}; refusing to write telemetry there, where someone else could read it or send it elsewhere"
    ))
}

/// `path` with every symlink resolved, as the kernel resolves it, each link checked as it is met: owned by root or
/// `me`, and held by a directory that passes [`check_dirs`] (whoever can write there can point the link
/// elsewhere). `std::fs::canonicalize` would check none of the links in the middle of the path.
fn resolve(path: &Path, me: u32) -> Result<std::path::PathBuf, String> {
    use std::path::Component;
    let absolute = std::path::absolute(path)
        .map_err(|e| format!("cannot resolve {}: {e}", crate::text::shown(path)))?;
    // The names still to walk, first to last.
    let mut pending = std::collections::VecDeque::new();
    fn push_front(pending: &mut std::collections::VecDeque<std::ffi::OsString>, p: &Path) {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => pending.push_front(n.to_os_string()),
                Component::ParentDir => pending.push_front("..".into()),
                Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            }
        }
    }
    push_front(&mut pending, &absolute);
    let mut real = std::path::PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            real.pop();
            continue;
        }
        let next = real.join(&name);
        let m = std::fs::symlink_metadata(&next)
            .map_err(|e| format!("cannot stat {}: {e}", crate::text::shown(&next)))?;
        if !m.file_type().is_symlink() {
            real = next;
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(format!(
                "{} has too many levels of symbolic links",
                crate::text::shown(path)
            ));
        }
        if !owner_ok(m.uid(), me) {
            return Err(format!(
                "symlink {} is owned by uid {}, not by root or you (uid {me}); replace it with a link you own",
                crate::text::shown(&next),
                m.uid()
            ));
        }
        check_dirs(
            &real,
            m.uid(),
            me,
            &format!(" (it holds the link {})", crate::text::shown(&next)),
        )?;
        let target = std::fs::read_link(&next)
            .map_err(|e| format!("cannot read the link {}: {e}", crate::text::shown(&next)))?;
        if target.is_absolute() {
            real = std::path::PathBuf::from("/");
        }
        push_front(&mut pending, &target);
    }
    Ok(real)
}

/// Checks `dir` and every directory above it (`dir` holds an entry owned by `entry_owner`): each owned by root or
/// `me`, and not writable by group or others unless sticky with the entry below it owned by root or `me`.
fn check_dirs(dir: &Path, entry_owner: u32, me: u32, shown: &str) -> Result<(), String> {
    check_dirs_warning(dir, entry_owner, me, shown, None)
}

/// [`check_dirs`]; with `writable` given, a directory writable by group or others is said there instead of
/// refused.
fn check_dirs_warning(
    dir: &Path,
    entry_owner: u32,
    me: u32,
    shown: &str,
    mut writable: Option<&mut Vec<String>>,
) -> Result<(), String> {
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
            if let Some(warnings) = writable.as_deref_mut() {
                warnings.push(format!(
                    "directory {}{shown} is writable by group or others (mode {:o}): they can rename or remove \
                     the telemetry written there (`chmod go-w {}`, or `chmod +t` it, if that is not intended)",
                    crate::text::shown(dir),
                    m.mode() & 0o7777,
                    crate::text::shown(dir)
                ));
                child_owner = m.uid();
                continue;
            }
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
        // The process's own descriptor, as it was started with it; a path that only starts like one is not.
        assert!(open_output(Path::new("/dev/stderr")).is_ok());
        assert!(own_descriptor(Path::new("/dev/fd/2")));
        assert!(!own_descriptor(Path::new("/dev/fd/../../tmp/x")));
        assert!(!own_descriptor(Path::new("/dev/stdout/../x")));
        // A link of ours to a file of ours, in directories only we can write: followed.
        let ours = dir.path().join("ours.jsonl");
        std::fs::write(&ours, b"").unwrap();
        std::os::unix::fs::symlink(&ours, dir.path().join("to-ours.jsonl")).unwrap();
        assert!(open_output(&dir.path().join("to-ours.jsonl")).is_ok());
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
        // A link of ours into a directory of another user's, where their own link leads on to a file of ours:
        // every link on the way is checked, not only the first.
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::symlink(&target, theirs.join("t.jsonl")).unwrap();
        std::os::unix::fs::lchown(theirs.join("t.jsonl"), Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let chained = dir.path().join("chained.jsonl");
        std::os::unix::fs::symlink(theirs.join("t.jsonl"), &chained).unwrap();
        let e = open_output(&chained).unwrap_err().to_string();
        assert!(e.contains("uid 65534"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep", "nothing written");
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

    /// A link to a directory in the middle of the path is checked like the last one: whoever can write the
    /// directory holding it, or owns it, could point it at another directory.
    #[test]
    fn a_symlinked_directory_in_the_middle_of_the_path_is_checked() {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o700);
        let safe = tmp.path().join("safe");
        std::fs::create_dir(&safe).unwrap();
        chmod(&safe, 0o755);
        let file = safe.join("f.so");
        std::fs::write(&file, b"x").unwrap();
        chmod(&file, 0o644);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        std::os::unix::fs::symlink(&safe, open.join("plugins")).unwrap();
        let through = open.join("plugins/f.so");
        let err = check_chain(&through).unwrap_err();
        assert!(
            err.contains("/open") && err.contains("it holds the link") && err.contains("/plugins"),
            "{err}"
        );
        // The same link in a directory only we can write: fine, and resolved to the file itself.
        chmod(&open, 0o755);
        assert_eq!(check_chain(&through).unwrap().real, file);
        // A link reached through `..` and a relative target resolves as the kernel does.
        std::os::unix::fs::symlink("../safe", open.join("rel")).unwrap();
        assert_eq!(
            check_chain(&open.join("rel/../safe/f.so")).unwrap().real,
            file
        );
        // A loop is an error, not a hang.
        std::os::unix::fs::symlink(open.join("loop"), open.join("loop")).unwrap();
        let err = check_chain(&open.join("loop/f.so")).unwrap_err();
        assert!(err.contains("too many levels"), "{err}");
    }

    /// The directory of an output file: created 0700 when missing, refused when another user could replace it or a
    /// link on the way to it.
    #[test]
    fn an_output_directory_another_user_could_replace_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o700);
        let fresh = tmp.path().join("a/b");
        output_dir(&fresh).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o077,
            0,
            "created for us only"
        );
        assert!(output_dir(&fresh).unwrap().is_empty());
        // Writable by others (a volume shared with a log shipper): allowed, and said.
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let warnings = output_dir(&open.join("below")).unwrap();
        assert!(
            warnings.len() == 1 && warnings[0].contains("/open is writable by group or others"),
            "{warnings:?}"
        );
        // Sticky, like /tmp: a directory of ours inside is fine, without a word; a link someone could retarget
        // is not.
        chmod(&open, 0o1777);
        assert!(output_dir(&open.join("mine")).unwrap().is_empty());
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let unsafe_parent = tmp.path().join("shared");
        std::fs::create_dir(&unsafe_parent).unwrap();
        std::os::unix::fs::symlink(&elsewhere, unsafe_parent.join("out")).unwrap();
        chmod(&unsafe_parent, 0o777);
        let err = output_dir(&unsafe_parent.join("out"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("it holds the link"), "{err}");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let theirs = tmp.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            chmod(&theirs, 0o755);
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let err = output_dir(&theirs.join("otel")).unwrap_err().to_string();
            assert!(err.contains("uid 65534"), "{err}");
            assert!(!theirs.join("otel").exists(), "nothing created under it");
        }
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
