//! `NativeLiveModel`: the binding of [`LiveModel`](crate::serve::LiveModel), thin.
//!
//! The watcher thread is pure Rust and never touches the interpreter. Python learns what
//! happened at call time: `epoch()` is one atomic load (unchanged means nothing happened since
//! the caller last looked), `served()` hands over the verified model the Rust side serves now
//! (its generation, version, manifest and model bytes, from which `python/woodlot/_live.py`
//! builds the estimator it delegates to), and `notices_since()` returns the swaps, refusals,
//! failed checks and recoveries to log. Everything that can wait on the store runs with the
//! GIL released.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::IntoPyResult;
use super::store::{NativeStore, RefArg};
use crate::serve::{LiveModel, LiveOptions};
use crate::store::Ref;

/// A model that follows a reference of a store (see `woodlot.LiveModel`).
#[pyclass(module = "woodlot._native", name = "NativeLiveModel", frozen)]
pub struct NativeLiveModel {
    inner: LiveModel,
}

#[pymethods]
impl NativeLiveModel {
    /// Opens the live model: checks the store once (raising if no verified model can be
    /// served) and starts the watcher thread.
    #[new]
    #[pyo3(signature = (store, reference, poll_seconds=1.0))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, NativeStore>,
        reference: RefArg,
        poll_seconds: f64,
    ) -> PyResult<Self> {
        let reference = match reference {
            RefArg::Int(n) => Ref::number(n),
            RefArg::Str(s) => Ref::parse(&s),
        }
        .py()?;
        let options = LiveOptions::with_poll_seconds(poll_seconds).py()?;
        let store = store.get().inner.clone();
        let inner = py
            .detach(|| LiveModel::open(store, reference, options))
            .py()?;
        Ok(Self { inner })
    }

    /// The newest notice's sequence number; raises `StoreError` once closed.
    fn epoch(&self) -> PyResult<u64> {
        self.inner.epoch().py()
    }

    /// `(generation, version, manifest JSON, model bytes)` of the model served now.
    fn served<'py>(&self, py: Python<'py>) -> PyResult<(u64, u64, String, Bound<'py, PyBytes>)> {
        let served = self.inner.served().py()?;
        let manifest = serde_json::to_string(&*served.manifest).map_err(|e| {
            pyo3::exceptions::PyValueError::new_err(format!("could not serialise a manifest: {e}"))
        })?;
        Ok((
            served.generation,
            served.version(),
            manifest,
            PyBytes::new(py, &served.bytes),
        ))
    }

    /// Checks the store now; returns whether the served model changed. Raises the store's
    /// error if the check failed or the target was refused (the served model is unchanged).
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        let inner = &self.inner;
        py.detach(|| inner.refresh()).py()
    }

    /// The status as JSON.
    fn status(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.status()).map_err(|e| {
            pyo3::exceptions::PyValueError::new_err(format!("could not serialise a status: {e}"))
        })
    }

    /// `(notices newer than seq as JSON, how many of them were dropped unseen)`.
    fn notices_since(&self, seq: u64) -> PyResult<(String, u64)> {
        let (notices, dropped) = self.inner.notices_since(seq);
        let json = serde_json::to_string(&notices).map_err(|e| {
            pyo3::exceptions::PyValueError::new_err(format!("could not serialise notices: {e}"))
        })?;
        Ok((json, dropped))
    }

    /// Stops and joins the watcher thread (without the GIL); idempotent.
    fn close(&self, py: Python<'_>) {
        let inner = &self.inner;
        py.detach(|| inner.close());
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The reference followed, as text.
    #[getter]
    fn reference(&self) -> String {
        self.inner.reference_name()
    }
}
