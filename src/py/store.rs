//! The version store's binding: `NativeStore` and `NativeComparison`, both thin (the test-only
//! hooks are in `faults.rs`). Every operation runs in Rust with the GIL released; records cross the
//! boundary as JSON text (one `json.loads` in Python is cheaper than building nested Python
//! objects field by field, and keeps this layer free of store logic). The friendly Python
//! classes (`VersionStore`, `ModelVersion`, `Comparison`, ...) live in `python/woodlot/_store.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::Value;

use super::errors::IntoPyResult;
use crate::store::{
    CompareOptions, Comparison, Decision, Event, Expect, Labels, Manifest, Ref, SaveOptions, Store,
};

/// A version reference as Python passes it: an int or a string.
#[derive(FromPyObject)]
pub(crate) enum RefArg {
    /// `3`
    Int(i64),
    /// `"v3"`, `"latest"`, `"active"`, an alias.
    Str(String),
}

impl RefArg {
    fn to_ref(&self) -> PyResult<Ref> {
        match self {
            RefArg::Int(n) => Ref::number(*n).py(),
            RefArg::Str(s) => Ref::parse(s).py(),
        }
    }
}

fn refs(r: Option<RefArg>) -> PyResult<Option<Ref>> {
    r.map(|r| r.to_ref()).transpose()
}

/// Serialises a store record for Python. Our records always serialise; should one ever not,
/// the caller gets a `ValueError` rather than a panic.
fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v)
        .map_err(|e| PyValueError::new_err(format!("could not serialise a store record: {e}")))
}

fn parse_json(what: &str, s: &str) -> PyResult<Value> {
    serde_json::from_str(s)
        .map_err(|e| PyValueError::new_err(format!("{what}: not valid JSON: {e}")))
}

/// Labels handed over from Python (`what`: their name in the message), a float64 array or a
/// list of strings: evaluation labels here, outcomes in the guard's binding.
pub(crate) fn labels(
    y_num: Option<PyReadonlyArray1<'_, f64>>,
    y_str: Option<Vec<String>>,
    what: &str,
) -> PyResult<Labels> {
    match (y_num, y_str) {
        (Some(a), None) => Ok(Labels::Num(a.as_array().to_vec())),
        (None, Some(s)) => Ok(Labels::Str(s)),
        _ => Err(PyTypeError::new_err(format!(
            "pass {what} either as numbers or as strings"
        ))),
    }
}

fn event_json(e: &Event) -> PyResult<String> {
    to_json(e)
}

fn manifest_json(m: &Manifest) -> PyResult<String> {
    to_json(m)
}

/// A version store opened on a local directory or on S3-compatible object storage.
#[pyclass(module = "woodlot._native", name = "NativeStore", frozen)]
pub struct NativeStore {
    pub(crate) inner: Arc<Store>,
}

#[pymethods]
impl NativeStore {
    /// `path` is a local directory or `s3://bucket/prefix`; `storage_options` (s3:// only) are
    /// string pairs such as `("endpoint_url", "http://127.0.0.1:9000")`.
    #[new]
    #[pyo3(signature = (path, storage_options=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        storage_options: Option<Vec<(String, String)>>,
    ) -> PyResult<Self> {
        let options = storage_options.unwrap_or_default();
        let store = py
            .detach(|| match path.to_str() {
                Some(location) => Store::open_location(location, &options),
                None if options.is_empty() => Store::open(&path),
                None => Store::open_location(&path.to_string_lossy(), &options),
            })
            .py()?;
        Ok(Self {
            inner: Arc::new(store),
        })
    }

    /// Where the store lives.
    #[getter]
    fn location(&self) -> String {
        self.inner.location()
    }

    /// Saves model-file bytes; returns the manifest as JSON.
    #[pyo3(signature = (model, tags_json="{}", description=None, metrics_json="{}", parent=None))]
    fn save(
        &self,
        py: Python<'_>,
        model: &[u8],
        tags_json: &str,
        description: Option<String>,
        metrics_json: &str,
        parent: Option<RefArg>,
    ) -> PyResult<String> {
        let tags: BTreeMap<String, String> = serde_json::from_str(tags_json)
            .map_err(|e| PyValueError::new_err(format!("tags must map strings to strings: {e}")))?;
        let metrics = match parse_json("metrics", metrics_json)? {
            Value::Object(o) => o,
            _ => return Err(PyValueError::new_err("metrics must be a dict")),
        };
        let opts = SaveOptions {
            tags,
            description,
            metrics,
            parent: refs(parent)?,
        };
        let store = &self.inner;
        let m = py.detach(|| store.save(model, opts)).py()?;
        manifest_json(&m)
    }

    /// Every live version's manifest, oldest first, as one JSON list.
    fn versions(&self, py: Python<'_>) -> PyResult<String> {
        let store = &self.inner;
        let all = py.detach(|| store.versions()).py()?;
        let mut out = String::from("[");
        for (i, m) in all.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&manifest_json(m)?);
        }
        out.push(']');
        Ok(out)
    }

    /// The manifest a reference names.
    fn get(&self, py: Python<'_>, r: RefArg) -> PyResult<String> {
        let r = r.to_ref()?;
        let store = &self.inner;
        let m = py.detach(|| store.get(&r)).py()?;
        manifest_json(&m)
    }

    /// The active version's manifest, or None.
    fn active(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let store = &self.inner;
        py.detach(|| store.active())
            .py()?
            .map(|m| manifest_json(&m))
            .transpose()
    }

    /// `(manifest JSON, model bytes)`; with `verify`, validated and probe-replayed first.
    fn read_model<'py>(
        &self,
        py: Python<'py>,
        r: RefArg,
        verify: bool,
    ) -> PyResult<(String, Bound<'py, PyBytes>)> {
        let r = r.to_ref()?;
        let store = &self.inner;
        let (m, bytes) = py.detach(|| store.read_model(&r, verify)).py()?;
        Ok((manifest_json(&m)?, PyBytes::new(py, &bytes)))
    }

    /// The current state (active version, aliases) as JSON.
    fn state(&self, py: Python<'_>) -> PyResult<String> {
        let store = &self.inner;
        to_json(&py.detach(|| store.state()).py()?)
    }

    /// Makes a version active; `expect_nothing` or `expect` check the current one atomically.
    #[pyo3(signature = (r, reason=None, expect=None, expect_nothing=false))]
    fn promote(
        &self,
        py: Python<'_>,
        r: RefArg,
        reason: Option<String>,
        expect: Option<RefArg>,
        expect_nothing: bool,
    ) -> PyResult<(String, String)> {
        let r = r.to_ref()?;
        let expect = refs(expect)?;
        let store = &self.inner;
        let (m, e) = py
            .detach(|| {
                let exp = match (&expect, expect_nothing) {
                    (_, true) => Some(Expect::Nothing),
                    (Some(x), false) => Some(store.resolve_expect(x)?),
                    (None, false) => None,
                };
                store.promote(&r, reason, exp)
            })
            .py()?;
        Ok((manifest_json(&m)?, event_json(&e)?))
    }

    /// Rolls back to the previous active version (or `to`).
    #[pyo3(signature = (to=None, reason=None))]
    fn rollback(
        &self,
        py: Python<'_>,
        to: Option<RefArg>,
        reason: Option<String>,
    ) -> PyResult<(String, String)> {
        let to = refs(to)?;
        let store = &self.inner;
        let (m, e) = py.detach(|| store.rollback(to.as_ref(), reason)).py()?;
        Ok((manifest_json(&m)?, event_json(&e)?))
    }

    /// The history as a JSON list.
    fn history(&self, py: Python<'_>) -> PyResult<String> {
        let store = &self.inner;
        to_json(&py.detach(|| store.history()).py()?)
    }

    /// Points an alias at a version.
    fn set_alias(&self, py: Python<'_>, name: String, r: RefArg) -> PyResult<String> {
        let r = r.to_ref()?;
        let store = &self.inner;
        event_json(&py.detach(|| store.set_alias(&name, &r)).py()?)
    }

    /// Removes an alias.
    fn remove_alias(&self, py: Python<'_>, name: String) -> PyResult<String> {
        let store = &self.inner;
        event_json(&py.detach(|| store.remove_alias(&name)).py()?)
    }

    /// Checks every version and event; the report as JSON.
    fn verify(&self, py: Python<'_>) -> PyResult<String> {
        let store = &self.inner;
        to_json(&py.detach(|| store.verify()).py()?)
    }

    /// Deletes a version.
    #[pyo3(signature = (r, force=false, reason=None))]
    fn delete(
        &self,
        py: Python<'_>,
        r: RefArg,
        force: bool,
        reason: Option<String>,
    ) -> PyResult<String> {
        let r = r.to_ref()?;
        let store = &self.inner;
        event_json(&py.detach(|| store.delete(&r, force, reason)).py()?)
    }

    /// Collects garbage older than `grace_seconds`.
    #[pyo3(signature = (dry_run=false, grace_seconds=3600.0))]
    fn gc(&self, py: Python<'_>, dry_run: bool, grace_seconds: f64) -> PyResult<String> {
        if grace_seconds.is_nan() || grace_seconds < 0.0 {
            return Err(PyValueError::new_err(
                "grace_seconds must be a non-negative number",
            ));
        }
        let store = &self.inner;
        to_json(&py.detach(|| store.gc(dry_run, grace_seconds)).py()?)
    }

    /// Compares versions on `x` (float64, rows x features) and labels.
    #[pyo3(signature = (x, y_num=None, y_str=None, versions=None, n_bootstrap=2000, seed=0, n_threads=0, record=true, feature_names=None))]
    #[allow(clippy::too_many_arguments)]
    fn compare(
        &self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f64>,
        y_num: Option<PyReadonlyArray1<'_, f64>>,
        y_str: Option<Vec<String>>,
        versions: Option<Vec<RefArg>>,
        n_bootstrap: usize,
        seed: u64,
        n_threads: usize,
        record: bool,
        feature_names: Option<Vec<String>>,
    ) -> PyResult<NativeComparison> {
        let y = labels(y_num, y_str, "y")?;
        let refs: Option<Vec<Ref>> = versions
            .map(|v| v.iter().map(RefArg::to_ref).collect())
            .transpose()?;
        let opts = CompareOptions {
            n_bootstrap,
            seed,
            n_threads,
            record,
            feature_names,
        };
        let view = x.as_array();
        let store = &self.inner;
        let cmp = py
            .detach(|| store.compare(view, &y, refs.as_deref(), &opts))
            .py()?;
        Ok(NativeComparison {
            inner: Arc::new(cmp),
        })
    }

    /// The tutorial's rule made safe; returns `(decision JSON, comparison or None)`.
    #[pyo3(signature = (r, x, y_num=None, y_str=None, metric="accuracy", min_delta=0.0, alpha=None, reason=None, n_bootstrap=2000, seed=0, n_threads=0, feature_names=None))]
    #[allow(clippy::too_many_arguments)]
    fn promote_if_better(
        &self,
        py: Python<'_>,
        r: RefArg,
        x: PyReadonlyArray2<'_, f64>,
        y_num: Option<PyReadonlyArray1<'_, f64>>,
        y_str: Option<Vec<String>>,
        metric: &str,
        min_delta: f64,
        alpha: Option<f64>,
        reason: Option<String>,
        n_bootstrap: usize,
        seed: u64,
        n_threads: usize,
        feature_names: Option<Vec<String>>,
    ) -> PyResult<(String, Option<NativeComparison>)> {
        let r = r.to_ref()?;
        let y = labels(y_num, y_str, "y")?;
        let opts = CompareOptions {
            n_bootstrap,
            seed,
            n_threads,
            record: true,
            feature_names,
        };
        let view = x.as_array();
        let store = &self.inner;
        let d: Decision = py
            .detach(|| {
                store.promote_if_better(&r, view, &y, metric, min_delta, alpha, reason, &opts)
            })
            .py()?;
        let cmp = d
            .comparison
            .clone()
            .map(|c| NativeComparison { inner: Arc::new(c) });
        Ok((to_json(&d)?, cmp))
    }
}

/// The result of a comparison, kept native so any pair can be computed on demand.
#[pyclass(module = "woodlot._native", name = "NativeComparison", frozen)]
pub struct NativeComparison {
    inner: Arc<Comparison>,
}

#[pymethods]
impl NativeComparison {
    /// Everything (metrics, confusion matrices, highlighted pairs) as JSON.
    fn summary(&self) -> String {
        self.inner.to_json(true).to_string()
    }

    /// The version number a reference (`3`, `"v3"`, `"active"`, `"best"`) names in this
    /// comparison, by the store's own reference parser.
    fn resolve(&self, r: RefArg) -> PyResult<u64> {
        self.inner.resolve(&r.to_ref()?).py()
    }

    /// Paired statistics of version `a` against `b` (references as for `resolve`), as JSON.
    fn pairwise(&self, py: Python<'_>, a: RefArg, b: RefArg) -> PyResult<String> {
        let cmp = &self.inner;
        let (a, b) = (
            cmp.resolve(&a.to_ref()?).py()?,
            cmp.resolve(&b.to_ref()?).py()?,
        );
        let p = py.detach(|| cmp.pairwise(a, b)).py()?;
        Ok(Comparison::pair_json(&p, true).to_string())
    }
}

/// Registers the store's classes and functions on the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeStore>()?;
    m.add_class::<NativeComparison>()?;
    Ok(())
}
