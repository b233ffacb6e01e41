//! The OTLP JSON lines file shared by the built-in `file` exporters: each record is serialised whole, then written
//! with one `write_all` under a lock. A write that fails part-way (a full disk, a file size limit) is undone by
//! truncating the file back to where the record started, so the file only ever holds whole lines.

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use serde::Serialize;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
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
        let file = crate::trust::open_output(path)?;
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
        // Where this record starts: the end of the file (it is opened for appending, and only we append under
        // this lock).
        let start = file.seek(SeekFrom::End(0)).map_err(|e| self.failed(&e))?;
        if let Err(e) = file.write_all(&line).and_then(|_| file.flush()) {
            return Err(match file.set_len(start) {
                Ok(()) => self.failed(&format!("{e}; the partial record was removed")),
                Err(undo) => self.failed(&format!(
                    "{e}; removing the partial record failed too ({undo}): the last line may be torn"
                )),
            });
        }
        Ok(())
    }

    fn failed(&self, e: &dyn std::fmt::Display) -> OTelSdkError {
        OTelSdkError::InternalFailure(format!("writing {}: {e}", self.path.display()))
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
