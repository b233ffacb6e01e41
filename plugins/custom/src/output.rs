//! The exporters' output files, opened as the host opens its own: a file planted where the distro writes (in a
//! shared directory such as `/tmp`) must neither collect its telemetry nor redirect its writes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Opens `path` for appending, created `0600` when new. Refused: a symlink (`O_NOFOLLOW`), a FIFO (the open fails
/// at once instead of blocking), anything but a regular file, a file of another user (root's aside), and a file with
/// a second hard link (another name for it may be someone else's).
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    // The process's own descriptors and the null device are whoever started it chose, and taken as they are.
    // `/dev/fd/` with a number and nothing else: `/dev/fd/../../../tmp/x` names no descriptor.
    let fd = path
        .to_str()
        .and_then(|s| s.strip_prefix("/dev/fd/"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let chosen = fd
        || ["/dev/null", "/dev/stdout", "/dev/stderr"]
            .iter()
            .any(|p| path == Path::new(p));
    if chosen {
        return OpenOptions::new().append(true).open(path);
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let refused = |why: String| {
        Err(io::Error::other(format!(
            "{} {why}: refusing to write telemetry into a file someone else may control; remove it, or choose a \
             path in a directory only you can write to",
            path.display()
        )))
    };
    if !meta.file_type().is_file() {
        return refused("is not a regular file".into());
    }
    if meta.uid() != me && meta.uid() != 0 {
        return refused(format!("is owned by another user (uid {})", meta.uid()));
    }
    if meta.nlink() > 1 {
        return refused(format!("has {} hard links", meta.nlink()));
    }
    // O_NONBLOCK changes nothing for a regular file's writes.
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_fifo_or_hard_link_is_refused_and_a_new_file_is_private() {
        let dir = std::env::temp_dir().join(format!("otel-custom-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let fresh = dir.join("fresh.jsonl");
        let f = open_append(&fresh).unwrap();
        assert_eq!(f.metadata().unwrap().mode() & 0o077, 0, "private");
        assert!(open_append(&fresh).is_ok(), "reopened for appending");
        let target = dir.join("target");
        std::fs::write(&target, b"").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("link")).unwrap();
        assert!(open_append(&dir.join("link")).is_err(), "a symlink");
        std::fs::hard_link(&target, dir.join("hard")).unwrap();
        let err = open_append(&dir.join("hard")).unwrap_err().to_string();
        assert!(err.contains("hard links"), "{err}");
        let fifo = std::ffi::CString::new(dir.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(
            open_append(&dir.join("fifo")).is_err(),
            "a FIFO, without hanging"
        );
        assert!(
            open_append(Path::new("/dev/null")).is_ok(),
            "the null device"
        );
        // A path that only starts like a descriptor (`/dev/fd` is `/proc/self/fd`, three levels below `/`) is
        // checked like any other: here it names the planted symlink.
        let via = format!("/dev/fd/../../..{}", dir.join("link").display());
        assert!(open_append(Path::new(&via)).is_err(), "{via}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
