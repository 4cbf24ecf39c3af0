//! Maps the core's [`WoodlotError`] to Python exceptions.
//!
//! Bad parameters and bad input become `ValueError` (the message names the parameter or the
//! problem), I/O errors become `OSError` with the OS `errno` (so Python picks the matching
//! subclass, e.g. `FileNotFoundError`), and woodlot's own conditions become the classes defined
//! in `python/woodlot/_errors.py`. Those classes inherit from `woodlot.WoodlotError` *and* the
//! matching builtin (`CorruptModelError(WoodlotError, ValueError)`), which is easy to write in
//! Python, so they are defined there and imported here once, cached in a [`PyOnceLock`].
//!
//! To add a class: define it in `_errors.py`, add a `static` cell and a match arm below.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::error::WoodlotError;

/// The Python module that defines woodlot's exception classes.
const ERRORS_MODULE: &str = "woodlot._errors";

static CORRUPT_MODEL_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static VERSION_NOT_FOUND_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFLICT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_NAME_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static STORE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Builds an exception of the class `name` from `woodlot._errors`, imported once into `cell`.
/// If the import fails (a broken installation), the import error itself is raised.
fn woodlot_exception(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: String,
) -> PyErr {
    match cell.import(py, ERRORS_MODULE, name) {
        Ok(ty) => PyErr::from_type(ty.clone(), message),
        Err(e) => e,
    }
}

/// Converts a core error into the Python exception users should see.
pub(crate) fn to_py_err(err: WoodlotError) -> PyErr {
    match err {
        WoodlotError::InvalidParameter { .. } | WoodlotError::InvalidInput(_) => {
            PyValueError::new_err(err.to_string())
        }
        WoodlotError::CorruptModel(_) => {
            let message = err.to_string();
            Python::attach(|py| {
                woodlot_exception(py, &CORRUPT_MODEL_ERROR, "CorruptModelError", message)
            })
        }
        WoodlotError::Io { context, source } => {
            let message = format!("{context}: {source}");
            match source.raw_os_error() {
                // OSError(errno, strerror) picks the subclass (FileNotFoundError, ...) itself.
                Some(code) => PyOSError::new_err((code, message)),
                // No errno: let pyo3 pick the subclass from the error kind.
                None => std::io::Error::new(source.kind(), message).into(),
            }
        }
        // The version store's conditions (src/store).
        WoodlotError::VersionNotFound(m) => Python::attach(|py| {
            woodlot_exception(py, &VERSION_NOT_FOUND_ERROR, "VersionNotFoundError", m)
        }),
        WoodlotError::Conflict(m) => {
            Python::attach(|py| woodlot_exception(py, &CONFLICT_ERROR, "ConflictError", m))
        }
        WoodlotError::InvalidName(_) => {
            let message = err.to_string();
            Python::attach(|py| {
                woodlot_exception(py, &INVALID_NAME_ERROR, "InvalidNameError", message)
            })
        }
        WoodlotError::Store(m) => {
            Python::attach(|py| woodlot_exception(py, &STORE_ERROR, "StoreError", m))
        }
        // Variants without a dedicated class yet surface as ValueError with their message.
        #[allow(unreachable_patterns)]
        other => PyValueError::new_err(other.to_string()),
    }
}

/// `?`-friendly conversion of core results: `forest.predict(..).py()?`.
pub(crate) trait IntoPyResult<T> {
    /// Maps the error with [`to_py_err`].
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, WoodlotError> {
    #[inline]
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
