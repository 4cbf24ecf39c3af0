//! `woodlot._native.write_file_durably`: model files written by the Rust core the way the store
//! writes its own (temp in the same directory, fsync, rename, directory fsync, permissions from
//! the umask), so `woodlot.dump` cannot leave a torn or `0600` file behind.

use std::path::PathBuf;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use crate::error::WoodlotError;
use crate::store::backend::local;

/// The errno for an I/O error that carries none (an injected fault, a path with no file name).
fn errno_of(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind as K;
    e.raw_os_error().unwrap_or(match e.kind() {
        K::NotFound => libc_errno::ENOENT,
        K::PermissionDenied => libc_errno::EACCES,
        K::AlreadyExists => libc_errno::EEXIST,
        K::InvalidInput => libc_errno::EINVAL,
        _ => libc_errno::EIO,
    })
}

/// The POSIX numbers used above (the same on every platform Python's `errno` maps).
mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EACCES: i32 = 13;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
}

/// An `OSError` of the errno's subclass (e.g. `FileNotFoundError`) whose `filename` is `path`.
fn os_error(path: &std::path::Path, err: WoodlotError) -> PyErr {
    match err {
        WoodlotError::Io { context, source } => {
            let message = format!("{context}: {source}");
            // OSError(errno, strerror, filename) picks the subclass itself.
            PyOSError::new_err((errno_of(&source), message, path.display().to_string()))
        }
        other => super::errors::to_py_err(other),
    }
}

/// Writes `data` to `path` durably and atomically: readers (and a crash) see the old file or
/// the new one. Raises `OSError` naming the path. `data` is borrowed, not copied.
#[pyfunction]
pub(crate) fn write_file_durably(
    py: Python<'_>,
    path: PathBuf,
    data: PyBackedBytes,
) -> PyResult<()> {
    py.detach(|| local::write_file_durably(&path, &data))
        .map_err(|e| os_error(&path, e))
}

/// Registers the function on the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(write_file_durably, m)?)?;
    Ok(())
}
