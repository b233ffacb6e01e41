//! The OTLP JSON lines file shared by the built-in `file` exporters: each record is serialised whole, then written
//! with one `write_all` under a lock and flushed, so a line is never torn, even if the process dies right after.

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An append-only JSON lines file.
#[derive(Debug)]
pub(crate) struct JsonLines {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonLines {
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLines {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub(crate) fn write(&self, record: &impl Serialize) -> OTelSdkResult {
        let mut line =
            serde_json::to_vec(record).map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("file lock poisoned".into()))?;
        file.write_all(&line)
            .and_then(|_| file.flush())
            .map_err(|e| OTelSdkError::InternalFailure(format!("{}: {e}", self.path.display())))
    }

    pub(crate) fn flush(&self) -> OTelSdkResult {
        let mut file = self
            .file
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("file lock poisoned".into()))?;
        file.flush()
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }
}
