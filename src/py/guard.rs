//! `NativeGuard` and the guard functions: the binding of [`crate::guard`], thin.
//!
//! Everything runs in Rust with the GIL released; records cross as JSON text, as the store's
//! binding does. The friendly face (`woodlot.Guard`, `store.guard(...)`, `store.drift(...)`)
//! is `python/woodlot/_guard.py`.

use std::sync::Arc;
use std::time::Duration;

use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::store::{labels, NativeStore, RefArg};
use crate::guard::decide::{Metric, TestSpec};
use crate::guard::psi::Reference;
use crate::guard::sim::{simulate, trace, SimSpec};
use crate::guard::{self, Guard, Mode, SegmentLimits, StartOptions};
use crate::store::Ref;

fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v)
        .map_err(|e| PyValueError::new_err(format!("could not serialise a guard record: {e}")))
}

fn to_ref(r: RefArg) -> PyResult<Ref> {
    match r {
        RefArg::Int(n) => Ref::number(n),
        RefArg::Str(s) => Ref::parse(&s),
    }
    .py()
}

fn limits(max_rows: usize, max_bytes: usize, max_age_seconds: f64) -> PyResult<SegmentLimits> {
    if max_rows == 0 || !(1024..=(4 << 20)).contains(&max_bytes) {
        return Err(PyValueError::new_err(format!(
            "segment limits: max_rows must be >= 1 and max_bytes between 1024 and 4 MiB; got \
             {max_rows} rows, {max_bytes} bytes"
        )));
    }
    if !(0.0..=86_400.0).contains(&max_age_seconds) {
        return Err(PyValueError::new_err(format!(
            "max_age_seconds must be between 0 and 86400; got {max_age_seconds}"
        )));
    }
    Ok(SegmentLimits {
        max_rows,
        max_bytes,
        max_age: Duration::from_secs_f64(max_age_seconds),
    })
}

/// `score`'s answer: probabilities, request ids, answering versions.
type ScoredPy<'py> = (Bound<'py, PyArray2<f64>>, Vec<String>, Vec<u64>);

/// A deployment guard (see `woodlot.Guard`).
#[pyclass(module = "woodlot._native", name = "NativeGuard", frozen)]
pub struct NativeGuard {
    inner: Arc<Guard>,
}

#[pymethods]
impl NativeGuard {
    /// Starts a guard of `candidate` against the active version.
    #[staticmethod]
    #[pyo3(signature = (store, candidate, mode="probation", metric="log_loss", alpha=0.05,
                        margin=0.0, min_outcomes=200, canary_fraction=0.0, auto_promote=false,
                        clip=0.001, reason=None, max_rows=4096, max_bytes=2097152,
                        max_age_seconds=5.0))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        py: Python<'_>,
        store: &Bound<'_, NativeStore>,
        candidate: RefArg,
        mode: &str,
        metric: &str,
        alpha: f64,
        margin: f64,
        min_outcomes: u64,
        canary_fraction: f64,
        auto_promote: bool,
        clip: f64,
        reason: Option<String>,
        max_rows: usize,
        max_bytes: usize,
        max_age_seconds: f64,
    ) -> PyResult<Self> {
        let mut opts = StartOptions::new(to_ref(candidate)?);
        opts.mode = Mode::parse(mode).py()?;
        opts.metric = Metric::parse(metric).py()?;
        opts.alpha = alpha;
        opts.margin = margin;
        opts.min_outcomes = min_outcomes;
        opts.canary_fraction = canary_fraction;
        opts.auto_promote = auto_promote;
        opts.clip = clip;
        opts.reason = reason;
        let limits = limits(max_rows, max_bytes, max_age_seconds)?;
        let store = store.get().inner.clone();
        let g = py.detach(|| Guard::start(store, opts, limits)).py()?;
        Ok(Self { inner: Arc::new(g) })
    }

    /// Reopens guard `guard` from the store.
    #[staticmethod]
    #[pyo3(signature = (store, guard, max_rows=4096, max_bytes=2097152, max_age_seconds=5.0))]
    fn open(
        py: Python<'_>,
        store: &Bound<'_, NativeStore>,
        guard: u64,
        max_rows: usize,
        max_bytes: usize,
        max_age_seconds: f64,
    ) -> PyResult<Self> {
        let limits = limits(max_rows, max_bytes, max_age_seconds)?;
        let store = store.get().inner.clone();
        let g = py.detach(|| Guard::open(store, guard, limits)).py()?;
        Ok(Self { inner: Arc::new(g) })
    }

    /// The guard's id (the number of its `guard_started` event).
    #[getter]
    fn id(&self) -> u64 {
        self.inner.spec().guard
    }

    /// The specification as JSON.
    fn spec_json(&self) -> PyResult<String> {
        to_json(self.inner.spec())
    }

    /// Scores rows with both versions: `(probabilities of the answering version, request ids,
    /// answering version per row)`.
    #[pyo3(signature = (x, request_ids=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        request_ids: Option<Vec<String>>,
    ) -> PyResult<ScoredPy<'py>> {
        let view = x.as_array();
        let g = self.inner.clone();
        let scored = py.detach(|| g.score(view, request_ids)).py()?;
        Ok((scored.proba.into_pyarray(py), scored.ids, scored.served))
    }

    /// Writes the buffered prediction rows.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let g = self.inner.clone();
        py.detach(|| g.flush()).py()
    }

    /// Evaluates, applies a decision if due; the status as JSON.
    fn check(&self, py: Python<'_>) -> PyResult<String> {
        let g = self.inner.clone();
        to_json(&py.detach(|| g.check()).py()?)
    }

    /// The status as JSON, deciding nothing.
    fn status(&self, py: Python<'_>) -> PyResult<String> {
        let g = self.inner.clone();
        to_json(&py.detach(|| g.status()).py()?)
    }

    /// Stops the guard without a verdict; the status as JSON.
    #[pyo3(signature = (reason=None))]
    fn stop(&self, py: Python<'_>, reason: Option<String>) -> PyResult<String> {
        let g = self.inner.clone();
        to_json(&py.detach(|| g.stop(reason)).py()?)
    }

    /// Records outcomes for this guard; the report as JSON.
    #[pyo3(signature = (request_ids, y_num=None, y_str=None))]
    fn record_outcomes(
        &self,
        py: Python<'_>,
        request_ids: Vec<String>,
        y_num: Option<PyReadonlyArray1<'_, f64>>,
        y_str: Option<Vec<String>>,
    ) -> PyResult<String> {
        let y = labels(y_num, y_str, "y_true")?;
        let g = self.inner.clone();
        to_json(&py.detach(|| g.record_outcomes(&request_ids, &y)).py()?)
    }

    /// Writes what is buffered.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let g = self.inner.clone();
        py.detach(|| g.close()).py()
    }
}

/// Every guard in the store's history, as JSON.
#[pyfunction]
fn guard_records(py: Python<'_>, store: &Bound<'_, NativeStore>) -> PyResult<String> {
    let store = store.get().inner.clone();
    to_json(&py.detach(|| guard::guards(&store)).py()?)
}

/// Records outcomes for guard `guard` (the running one when `None`); the report as JSON.
#[pyfunction]
#[pyo3(signature = (store, request_ids, y_num=None, y_str=None, guard=None))]
fn guard_record_outcomes(
    py: Python<'_>,
    store: &Bound<'_, NativeStore>,
    request_ids: Vec<String>,
    y_num: Option<PyReadonlyArray1<'_, f64>>,
    y_str: Option<Vec<String>>,
    guard: Option<u64>,
) -> PyResult<String> {
    let y = labels(y_num, y_str, "y_true")?;
    let store = store.get().inner.clone();
    to_json(
        &py.detach(|| guard::record_outcomes(&store, guard, &request_ids, &y))
            .py()?,
    )
}

/// The decision rule a simulation runs (the same [`TestSpec`] a guard replays).
fn test_spec(
    metric: &str,
    alpha: f64,
    margin: f64,
    min_outcomes: u64,
    clip: f64,
) -> PyResult<TestSpec> {
    Ok(TestSpec {
        metric: Metric::parse(metric).py()?,
        alpha,
        margin,
        min_outcomes,
        clip,
    })
}

/// Runs the decision rule on simulated label streams; the result as JSON.
#[pyfunction]
#[pyo3(signature = (streams, max_outcomes, metric="accuracy", alpha=0.05, margin=0.0,
                    min_outcomes=200, base_accuracy=0.85, delta=0.0, discordance=0.12, seed=0,
                    clip=0.001))]
#[allow(clippy::too_many_arguments)]
fn guard_simulate(
    py: Python<'_>,
    streams: usize,
    max_outcomes: u64,
    metric: &str,
    alpha: f64,
    margin: f64,
    min_outcomes: u64,
    base_accuracy: f64,
    delta: f64,
    discordance: f64,
    seed: u64,
    clip: f64,
) -> PyResult<String> {
    if streams > 1_000_000 || max_outcomes > 10_000_000 {
        return Err(PyValueError::new_err(
            "guard_simulate: at most 1,000,000 streams of 10,000,000 outcomes",
        ));
    }
    let test = test_spec(metric, alpha, margin, min_outcomes, clip)?;
    let spec = SimSpec {
        streams,
        max_outcomes,
        test,
        base_accuracy,
        delta,
        discordance,
        seed,
    };
    to_json(&py.detach(|| simulate(&spec)).py()?)
}

/// Stream 0 of the same simulation, traced every `every` outcomes; the points as JSON.
#[pyfunction]
#[pyo3(signature = (max_outcomes, every=10, metric="accuracy", alpha=0.05, margin=0.0,
                    min_outcomes=200, base_accuracy=0.85, delta=0.0, discordance=0.12, seed=0,
                    clip=0.001))]
#[allow(clippy::too_many_arguments)]
fn guard_simulate_trace(
    py: Python<'_>,
    max_outcomes: u64,
    every: u64,
    metric: &str,
    alpha: f64,
    margin: f64,
    min_outcomes: u64,
    base_accuracy: f64,
    delta: f64,
    discordance: f64,
    seed: u64,
    clip: f64,
) -> PyResult<String> {
    if max_outcomes > 10_000_000 {
        return Err(PyValueError::new_err(
            "guard_simulate_trace: at most 10,000,000 outcomes",
        ));
    }
    let test = test_spec(metric, alpha, margin, min_outcomes, clip)?;
    let spec = SimSpec {
        streams: 1,
        max_outcomes,
        test,
        base_accuracy,
        delta,
        discordance,
        seed,
    };
    to_json(&py.detach(|| trace(&spec, every)).py()?)
}

/// PSI per feature of `x` against the reference rows `x_ref`; the report as JSON.
#[pyfunction]
#[pyo3(signature = (x_ref, x, bins=10, threshold=0.2))]
fn guard_drift(
    py: Python<'_>,
    x_ref: PyReadonlyArray2<'_, f64>,
    x: PyReadonlyArray2<'_, f64>,
    bins: usize,
    threshold: f64,
) -> PyResult<String> {
    let (r, v) = (x_ref.as_array(), x.as_array());
    let report = py.detach(|| Reference::fit(r, bins).and_then(|f| f.drift(v, threshold)));
    to_json(&report.py()?)
}

/// PSI per feature of `x` against the training histogram of the version `ref` names; the
/// report as JSON. A version without a histogram is a `ValueError` that says to pass rows.
#[pyfunction]
#[pyo3(signature = (store, r#ref, x, threshold=0.2))]
fn guard_version_drift(
    py: Python<'_>,
    store: &Bound<'_, NativeStore>,
    r#ref: RefArg,
    x: PyReadonlyArray2<'_, f64>,
    threshold: f64,
) -> PyResult<String> {
    let r = to_ref(r#ref)?;
    let store = store.get().inner.clone();
    let v = x.as_array();
    let report = py.detach(|| guard::drift::version_drift(&store, &r, v, threshold));
    to_json(&report.py()?)
}

/// Registers the guard's class and functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeGuard>()?;
    m.add_function(wrap_pyfunction!(guard_records, m)?)?;
    m.add_function(wrap_pyfunction!(guard_record_outcomes, m)?)?;
    m.add_function(wrap_pyfunction!(guard_simulate, m)?)?;
    m.add_function(wrap_pyfunction!(guard_simulate_trace, m)?)?;
    m.add_function(wrap_pyfunction!(guard_drift, m)?)?;
    m.add_function(wrap_pyfunction!(guard_version_drift, m)?)?;
    Ok(())
}
