//! `NativeForest`: the Python handle on a fitted [`Forest`].
//!
//! A thin wrapper: it borrows numpy arrays (see [`super::convert`]), releases the GIL around
//! every call that can take long, and maps errors (see [`super::errors`]). The forest sits
//! behind an `Arc` and never changes after fit, so the class is `frozen` and any number of
//! Python threads can predict with it at once. The scikit-learn-facing estimator is Python code
//! (`woodlot/_estimator.py`) that validates input once and calls into this class.

use std::sync::Arc;

use ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::convert::{params_from_dict, slice, with_view, Matrix};
use super::errors::IntoPyResult;
use crate::forest::from_nodes::{
    bootstrap_draws, forest_from_trees, tree_from_nodes_of_outputs, NodeArrays,
};
use crate::forest::predict::argmax_rows;
use crate::forest::progress::Progress;
use crate::forest::threads::{resolve_n_jobs, run_in_pool};
use crate::forest::{FitInfo, Forest, Predictor};
use crate::format::{validate_forest, ValidForest};
use crate::tree::Tree;

/// Below this many row-tree visits a prediction is cheaper than releasing and re-taking the
/// GIL (which, with other Python threads running, can wait a whole switch interval).
const DETACH_MIN_WORK: usize = 4096;

/// A fitted random forest (immutable). Create it with `NativeForest.fit` or
/// `NativeForest.from_bytes`.
#[pyclass(module = "woodlot._native", name = "NativeForest", frozen)]
pub struct NativeForest {
    /// The forest and its compiled layout for large batches (see [`Predictor`]).
    inner: Predictor,
    /// The same forest when it is known valid (checked after its fit, or loaded from a file):
    /// saving it skips validating it again. `None` for forests built from other arrays
    /// (conversion, merge), which are validated when saved.
    valid: Option<ValidForest>,
}

impl NativeForest {
    /// A forest with its prediction layout built now (at fit, load, conversion or merge),
    /// so no large batch pays for it on its first call.
    fn new(forest: Forest) -> Self {
        Self {
            inner: Predictor::new(forest),
            valid: None,
        }
    }

    fn forest(&self) -> &Arc<Forest> {
        self.inner.forest()
    }

    fn tree(&self, index: isize) -> PyResult<&Tree> {
        let n = self.forest().trees.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if i < 0 || i >= n {
            return Err(PyIndexError::new_err(format!(
                "tree index {index} out of range for {n} trees"
            )));
        }
        Ok(&self.forest().trees[i as usize])
    }

    fn heavy(&self, n_rows: usize) -> bool {
        n_rows.saturating_mul(self.forest().trees.len()) >= DETACH_MIN_WORK
    }
}

/// A fitted forest ready to predict, and its proof of validity: checked once here (a small
/// share of the fit), so that saving it need not. A forest that fails is simply not marked,
/// and saving it reports why.
fn predictor_known_valid(forest: Forest, n_threads: usize) -> (Predictor, Option<ValidForest>) {
    let inner = Predictor::with_threads(forest, n_threads);
    let forest = Arc::clone(inner.forest());
    let valid = run_in_pool(n_threads, || ValidForest::check(forest))
        .ok()
        .and_then(|checked| checked.ok());
    (inner, valid)
}

/// Thread count for `n_jobs`, with no system query for the common `None` / `1` (the one-row
/// path must stay a few microseconds; counting cores reads cgroup files).
#[inline]
fn n_threads(n_jobs: Option<i64>) -> PyResult<usize> {
    match n_jobs {
        None | Some(1) => Ok(1),
        _ => resolve_n_jobs(n_jobs).py(),
    }
}

/// Runs `f` without the GIL when `detach` is set.
fn maybe_detach<T: Send, F: Send + FnOnce() -> T>(py: Python<'_>, detach: bool, f: F) -> T {
    if detach {
        py.detach(f)
    } else {
        f()
    }
}

fn fit_info_dict<'py>(py: Python<'py>, info: &FitInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("training_fingerprint", &info.training_fingerprint)?;
    d.set_item("n_samples", info.n_samples)?;
    d.set_item("fit_seconds", info.fit_seconds)?;
    Ok(d)
}

#[pymethods]
impl NativeForest {
    /// Trains a forest. `x`: 2-D float32/float64 array (any layout); `y`: contiguous uint32
    /// class codes in `0..n_classes`; `sample_weight`: contiguous float64 or None; `params`:
    /// scikit-learn-named hyperparameters; `n_jobs`: scikit-learn semantics. With `init`, keeps
    /// `init`'s trees and grows new ones up to `params["n_estimators"]` (warm start).
    /// With `progress`, each finished tree bumps its counter (read by `verbose` reporting).
    /// With `output_classes` (each output's class count, two or more outputs), `y` holds that
    /// many codes per row, row-major, and `n_classes` is their sum: a multi-output forest.
    #[staticmethod]
    #[pyo3(signature = (x, y, n_classes, sample_weight=None, params=None, n_jobs=None, init=None, progress=None, output_classes=None))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: PyReadonlyArray1<'_, u32>,
        n_classes: usize,
        sample_weight: Option<PyReadonlyArray1<'_, f64>>,
        params: Option<&Bound<'_, PyDict>>,
        n_jobs: Option<i64>,
        init: Option<&Bound<'_, NativeForest>>,
        progress: Option<&Bound<'_, FitProgress>>,
        output_classes: Option<Vec<u32>>,
    ) -> PyResult<Self> {
        let params = params
            .map(params_from_dict)
            .transpose()?
            .unwrap_or_default();
        let n_threads = n_threads(n_jobs)?;
        let x = Matrix::extract(x)?;
        let y = slice(&y, "y")?;
        let w = sample_weight
            .as_ref()
            .map(|w| slice(w, "sample_weight"))
            .transpose()?;
        let init = init.map(|f| Arc::clone(f.get().forest()));
        let progress = progress.map(|p| p.get().0.clone());
        if let Some(outputs) = output_classes.filter(|o| o.len() > 1) {
            let total: u64 = outputs.iter().map(|&c| u64::from(c)).sum();
            if total != n_classes as u64 {
                return Err(PyValueError::new_err(format!(
                    "n_classes is {n_classes} but output_classes {outputs:?} sum to {total}"
                )));
            }
            let forest = with_view!(&x, view => py.detach(|| Forest::fit_outputs(
                init.as_deref(), view, y, &outputs, w, &params, n_threads, progress.as_ref(),
            )
            .map(|forest| predictor_known_valid(forest, n_threads))))
            .py()?;
            let (inner, valid) = forest;
            return Ok(Self { inner, valid });
        }
        let forest = with_view!(&x, view => py.detach(|| match (&init, &progress) {
            (_, Some(p)) => Forest::fit_with_progress(init.as_deref(), view, y, n_classes, w, &params, n_threads, p),
            (None, None) => Forest::fit(view, y, n_classes, w, &params, n_threads),
            (Some(prev), None) => prev.fit_more(view, y, w, &params, n_threads),
        }
        .map(|forest| predictor_known_valid(forest, n_threads))))
        .py()?;
        let (inner, valid) = forest;
        Ok(Self { inner, valid })
    }

    /// Checks scikit-learn-named hyperparameters for `n_samples` x `n_features` data with
    /// `n_classes` classes without fitting: a warm start that fits no new tree still owes the
    /// caller the same parameter errors a fit would raise (scikit-learn checks before it returns).
    #[staticmethod]
    fn check_params(
        params: &Bound<'_, PyDict>,
        n_samples: usize,
        n_features: usize,
        n_classes: usize,
    ) -> PyResult<()> {
        params_from_dict(params)?
            .resolve(n_samples, n_features, n_classes)
            .py()?;
        Ok(())
    }

    /// Mean class probabilities of the trees, `(n_rows, n_classes)` float64.
    #[pyo3(signature = (x, n_jobs=None))]
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        n_jobs: Option<i64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = Matrix::extract(x)?;
        let n_threads = n_threads(n_jobs)?;
        let detach = self.heavy(x.shape().0);
        let proba =
            with_view!(&x, view => maybe_detach(py, detach, || self.inner.predict_proba(view, n_threads)))
                .py()?;
        Ok(proba.into_pyarray(py))
    }

    /// Predicted class codes (argmax of `predict_proba`), uint32.
    #[pyo3(signature = (x, n_jobs=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        n_jobs: Option<i64>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        self.forest().require_single_output("predict").py()?;
        let x = Matrix::extract(x)?;
        let n_threads = n_threads(n_jobs)?;
        let detach = self.heavy(x.shape().0);
        let codes = with_view!(&x, view => maybe_detach(py, detach, || {
            self.inner.predict_proba(view, n_threads).map(|p| argmax_rows(&p))
        }))
        .py()?;
        Ok(codes.into_pyarray(py))
    }

    /// Index of the leaf each row lands in, per tree: `(n_rows, n_trees)` int64.
    #[pyo3(signature = (x, n_jobs=None))]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        n_jobs: Option<i64>,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let x = Matrix::extract(x)?;
        let n_threads = n_threads(n_jobs)?;
        let detach = self.heavy(x.shape().0);
        let leaves =
            with_view!(&x, view => maybe_detach(py, detach, || self.inner.apply(view, n_threads)))
                .py()?;
        Ok(leaves.into_pyarray(py))
    }

    /// Impurity-based feature importances, normalised (all zeros if no tree splits).
    fn feature_importances<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.forest().feature_importances().into_pyarray(py)
    }

    /// Out-of-bag accuracy, or None when the forest was trained without `oob_score`.
    fn oob_score(&self) -> Option<f64> {
        self.forest().oob.as_ref().map(|o| o.score)
    }

    /// Out-of-bag class probabilities `(n_samples, n_classes)`, or None.
    fn oob_decision_function<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<Bound<'py, PyArray2<f64>>>> {
        let Some(oob) = &self.forest().oob else {
            return Ok(None);
        };
        let shape = (oob.n_samples as usize, self.forest().n_classes as usize);
        let arr = Array2::from_shape_vec(shape, oob.decision_function.clone())
            .map_err(|e| PyValueError::new_err(format!("inconsistent out-of-bag estimate: {e}")))?;
        Ok(Some(arr.into_pyarray(py)))
    }

    /// Number of trees.
    #[getter]
    fn n_trees(&self) -> usize {
        self.forest().trees.len()
    }

    /// Number of input features.
    #[getter]
    fn n_features(&self) -> u32 {
        self.forest().n_features
    }

    /// Number of classes (for a multi-output forest, the sum over outputs).
    #[getter]
    fn n_classes(&self) -> u32 {
        self.forest().n_classes
    }

    /// Class count of each output: `[n_classes]` for a single-output forest.
    #[getter]
    fn output_classes(&self) -> Vec<u32> {
        self.forest().outputs()
    }

    /// Number of nodes of tree `i`.
    fn node_count(&self, i: isize) -> PyResult<usize> {
        Ok(self.tree(i)?.node_count())
    }

    /// Depth of tree `i` (a lone root has depth 0).
    fn max_depth(&self, i: isize) -> PyResult<usize> {
        Ok(self.tree(i)?.depth())
    }

    /// Number of leaves of tree `i`.
    fn n_leaves(&self, i: isize) -> PyResult<usize> {
        Ok(self.tree(i)?.n_leaves())
    }

    /// Tree `i` as scikit-learn's `tree_` arrays: `children_left`, `children_right` (-1 for
    /// leaves), `feature` (-2 for leaves), `threshold` (-2.0 for leaves), `missing_go_to_left`
    /// (uint8), `impurity`, `n_node_samples`, `weighted_n_node_samples` and `value`
    /// (`(n_nodes, 1, n_classes)` class fractions).
    fn tree_arrays<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyDict>> {
        let tree = self.tree(i)?;
        let n = tree.node_count();
        let c = tree.n_classes as usize;
        let mut left = Vec::with_capacity(n);
        let mut right = Vec::with_capacity(n);
        let mut feature = Vec::with_capacity(n);
        let mut threshold = Vec::with_capacity(n);
        let mut missing_left = Vec::with_capacity(n);
        for node in &tree.nodes {
            if node.is_leaf() {
                left.push(-1i64);
                right.push(-1i64);
                feature.push(-2i64);
                threshold.push(-2.0f64);
                missing_left.push(0u8);
            } else {
                left.push(node.left as i64);
                right.push(node.right as i64);
                feature.push(node.feature() as i64);
                threshold.push(node.threshold as f64);
                missing_left.push(node.missing_left() as u8);
            }
        }
        let s = &tree.stats;
        let per_node = |v: &[f32]| -> Vec<f64> {
            (0..n)
                .map(|k| v.get(k).copied().unwrap_or(0.0) as f64)
                .collect()
        };
        let n_node_samples: Vec<i64> = (0..n)
            .map(|k| s.n_samples.get(k).copied().unwrap_or(0) as i64)
            .collect();
        let value = ndarray::Array3::from_shape_vec((n, 1, c), tree.node_values())
            .map_err(|e| PyValueError::new_err(format!("inconsistent tree: {e}")))?;
        let d = PyDict::new(py);
        d.set_item("node_count", n)?;
        d.set_item("n_leaves", tree.n_leaves())?;
        d.set_item("max_depth", tree.depth())?;
        d.set_item("n_classes", c)?;
        d.set_item("n_features", self.forest().n_features)?;
        d.set_item("children_left", left.into_pyarray(py))?;
        d.set_item("children_right", right.into_pyarray(py))?;
        d.set_item("feature", feature.into_pyarray(py))?;
        d.set_item("threshold", threshold.into_pyarray(py))?;
        d.set_item("missing_go_to_left", missing_left.into_pyarray(py))?;
        d.set_item("impurity", per_node(&s.impurity).into_pyarray(py))?;
        d.set_item("n_node_samples", n_node_samples.into_pyarray(py))?;
        d.set_item(
            "weighted_n_node_samples",
            per_node(&s.weighted_n_samples).into_pyarray(py),
        )?;
        let value: Bound<'py, PyArray3<f64>> = value.into_pyarray(py);
        d.set_item("value", value)?;
        Ok(d)
    }

    /// A forest built from another library's node arrays (scikit-learn's `tree_`): `trees` is a
    /// list of dicts with `children_left`, `children_right`, `feature`, `n_node_samples`
    /// (contiguous int64), `threshold`, `impurity`, `weighted_n_node_samples` (float64),
    /// `missing_go_to_left` (uint8 or None) and `value` (contiguous float64 `(n_nodes,
    /// n_classes)`); `params` are the hyperparameters to record (scikit-learn-named),
    /// `n_samples` the training size. Every array is checked (see `forest::from_nodes`), and
    /// the result passes the model file's structural validation, so it can be saved; bad arrays
    /// raise `ValueError` naming the tree and node.
    /// With `output_classes` (two or more outputs' class counts, summing to `n_classes`), each
    /// `value` row holds every output's fractions side by side: a multi-output forest.
    #[staticmethod]
    #[pyo3(signature = (n_features, n_classes, trees, params, n_samples, output_classes=None))]
    fn from_node_arrays(
        py: Python<'_>,
        n_features: u32,
        n_classes: u32,
        trees: &Bound<'_, PyList>,
        params: &Bound<'_, PyDict>,
        n_samples: u64,
        output_classes: Option<Vec<u32>>,
    ) -> PyResult<Self> {
        let outputs = output_classes
            .filter(|o| o.len() > 1)
            .unwrap_or_else(|| vec![n_classes]);
        let params = params_from_dict(params)?;
        let mut built = Vec::with_capacity(trees.len());
        for (t, item) in trees.iter().enumerate() {
            let d = item.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err(format!("tree {t}: expected a dict of node arrays"))
            })?;
            let tree = tree_from_dict(py, d, n_features, n_classes, &outputs)
                .map_err(|e| PyValueError::new_err(format!("tree {t}: {e}")))?;
            built.push(tree);
        }
        let forest = forest_from_trees(n_features, n_classes, params, built, n_samples)
            .map(|mut f| {
                if outputs.len() > 1 {
                    f.output_classes = outputs.clone();
                }
                f
            })
            .and_then(|f| validate_forest(&f).map(|()| f))
            .py()?;
        Ok(Self::new(forest))
    }

    /// The row indices tree `i` drew into its bootstrap sample, in draw order with repeats
    /// (scikit-learn's `estimators_samples_[i]`), replayed from the fit's seed for `n_samples`
    /// training rows; `base_weights` are the per-row weights the fit drew in proportion to
    /// (None: uniform). Without bootstrap, every row.
    #[pyo3(signature = (i, n_samples, base_weights=None))]
    fn bootstrap_draws<'py>(
        &self,
        py: Python<'py>,
        i: isize,
        n_samples: usize,
        base_weights: Option<PyReadonlyArray1<'py, f64>>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        self.tree(i)?;
        let index = if i < 0 {
            i + self.forest().trees.len() as isize
        } else {
            i
        } as usize;
        let w = match &base_weights {
            Some(w) => Some(slice(w, "base_weights")?),
            None => None,
        };
        let draws = bootstrap_draws(&self.forest().params, index, n_samples, w).py()?;
        Ok(draws.into_pyarray(py))
    }

    /// `{"training_fingerprint", "n_samples", "fit_seconds"}` of the fit.
    fn fit_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        fit_info_dict(py, &self.forest().fit_info)
    }

    /// Each feature's training histogram as JSON (`edges`, `counts`, `missing`, `rows`), or
    /// None when the forest has none (converted, merged from different fits, or loaded from a
    /// file older than format 2.1).
    fn training_histogram_json(&self) -> PyResult<Option<String>> {
        self.forest()
            .training_histogram
            .as_ref()
            .map(|h| serde_json::to_string(h).map_err(|e| PyValueError::new_err(e.to_string())))
            .transpose()
    }

    /// The hyperparameters the forest was trained with, as the core's JSON.
    fn params_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.forest().params)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The model file (see docs/ARCHITECTURE.md, "The file format") with `estimator_json` stored as the
    /// estimator's description in its metadata.
    fn to_bytes<'py>(
        &self,
        py: Python<'py>,
        estimator_json: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let estimator: serde_json::Value = serde_json::from_str(estimator_json)
            .map_err(|e| PyValueError::new_err(format!("estimator_json is not valid JSON: {e}")))?;
        let bytes = py
            .detach(|| match &self.valid {
                Some(valid) => crate::format::encode_valid(valid, &estimator),
                None => crate::format::encode(self.forest(), &estimator),
            })
            .py()?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads a model file: `(forest, metadata_json)`. A damaged or hostile file raises
    /// `woodlot.CorruptModelError` with the failed check.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<(Self, String)> {
        // The prediction layout is built here, without the GIL, so no first batch pays for it.
        let loaded = py
            .detach(|| crate::format::decode_for_prediction(data))
            .py()?;
        let meta = serde_json::to_string(&loaded.meta)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let native = Self {
            inner: loaded.predictor,
            valid: Some(loaded.valid),
        };
        Ok((native, meta))
    }

    /// Pickles as its model file.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        let ctor = slf.get_type().getattr("_from_model_file")?;
        Ok((ctor, (slf.get().to_bytes(py, "{}")?,)))
    }

    /// Unpickling helper: the forest of a model file.
    #[staticmethod]
    fn _from_model_file(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        Ok(Self::from_bytes(py, data)?.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "NativeForest(n_trees={}, n_features={}, n_classes={})",
            self.forest().trees.len(),
            self.forest().n_features,
            self.forest().n_classes
        )
    }
}

/// One array of a tree's node-array dict, borrowed read-only; a missing key or a wrong dtype
/// is a message naming the key.
fn node_array<'py, T: numpy::Element>(
    d: &Bound<'py, PyDict>,
    key: &str,
) -> Result<PyReadonlyArray1<'py, T>, String> {
    let v = d
        .get_item(key)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("missing node array {key:?}"))?;
    v.extract::<PyReadonlyArray1<'py, T>>().map_err(|_| {
        format!(
            "{key} must be a 1-D numpy array of {}",
            std::any::type_name::<T>()
        )
    })
}

/// A woodlot tree from one dict of scikit-learn node arrays (see `from_node_arrays`).
fn tree_from_dict(
    py: Python<'_>,
    d: &Bound<'_, PyDict>,
    n_features: u32,
    n_classes: u32,
    outputs: &[u32],
) -> Result<Tree, String> {
    let left = node_array::<i64>(d, "children_left")?;
    let right = node_array::<i64>(d, "children_right")?;
    let feature = node_array::<i64>(d, "feature")?;
    let threshold = node_array::<f64>(d, "threshold")?;
    let impurity = node_array::<f64>(d, "impurity")?;
    let n_node_samples = node_array::<i64>(d, "n_node_samples")?;
    let weighted = node_array::<f64>(d, "weighted_n_node_samples")?;
    let missing = match d
        .get_item("missing_go_to_left")
        .map_err(|e| e.to_string())?
    {
        Some(v) if !v.is_none() => Some(
            v.extract::<PyReadonlyArray1<'_, u8>>()
                .map_err(|_| "missing_go_to_left must be a 1-D numpy array of u8".to_string())?,
        ),
        _ => None,
    };
    let value = d
        .get_item("value")
        .map_err(|e| e.to_string())?
        .ok_or("missing node array \"value\"")?
        .extract::<PyReadonlyArray2<'_, f64>>()
        .map_err(|_| "value must be a 2-D float64 numpy array (n_nodes, n_classes)".to_string())?;
    let contiguous = |what: &str| format!("{what} must be C-contiguous");
    let arrays = NodeArrays {
        children_left: left.as_slice().map_err(|_| contiguous("children_left"))?,
        children_right: right.as_slice().map_err(|_| contiguous("children_right"))?,
        feature: feature.as_slice().map_err(|_| contiguous("feature"))?,
        threshold: threshold.as_slice().map_err(|_| contiguous("threshold"))?,
        missing_go_to_left: match &missing {
            Some(m) => Some(m.as_slice().map_err(|_| contiguous("missing_go_to_left"))?),
            None => None,
        },
        impurity: impurity.as_slice().map_err(|_| contiguous("impurity"))?,
        n_node_samples: n_node_samples
            .as_slice()
            .map_err(|_| contiguous("n_node_samples"))?,
        weighted_n_node_samples: weighted
            .as_slice()
            .map_err(|_| contiguous("weighted_n_node_samples"))?,
        value: value.as_slice().map_err(|_| contiguous("value"))?,
    };
    if value.shape()[1] != n_classes as usize {
        return Err(format!(
            "value has {} columns, expected n_classes = {n_classes}",
            value.shape()[1]
        ));
    }
    py.detach(|| tree_from_nodes_of_outputs(&arrays, n_features, n_classes, outputs))
        .map_err(|e| e.to_string())
}

/// scikit-learn's `n_jobs` resolved to a thread count (None → 1, -1 → all cores, 0 → error).
#[pyfunction]
#[pyo3(signature = (n_jobs=None))]
pub(crate) fn effective_n_jobs(n_jobs: Option<i64>) -> PyResult<usize> {
    resolve_n_jobs(n_jobs).py()
}

/// A trees-built counter for one fit: pass it to `NativeForest.fit(progress=...)` and read
/// `trees_built` from another thread while the fit runs without the GIL.
#[pyclass(module = "woodlot._native", name = "FitProgress", frozen)]
pub struct FitProgress(Progress);

#[pymethods]
impl FitProgress {
    #[new]
    fn new() -> Self {
        Self(Progress::new())
    }

    /// Trees the fit has finished so far.
    #[getter]
    fn trees_built(&self) -> usize {
        self.0.trees_built()
    }
}

// ---------------------------------------------------------------------------------------------
// Distributed fits and merging (see `crate::forest::merge`; the engine side is Python's
// `woodlot/_distributed.py`). The driver bins once, workers grow tree ranges on those bins,
// the driver assembles them; every step checks what it is handed.
// ---------------------------------------------------------------------------------------------

/// The shipped form of a binned training set: `(codes, lower, upper, offsets, has_missing)`.
type BinnedParts<'py> = (
    Bound<'py, PyArray2<u8>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<bool>>,
);

/// [`BinnedParts`] as a worker receives them.
type ShippedBins<'py> = (
    numpy::PyReadonlyArray2<'py, u8>,
    PyReadonlyArray1<'py, f32>,
    PyReadonlyArray1<'py, f32>,
    PyReadonlyArray1<'py, u64>,
    PyReadonlyArray1<'py, bool>,
);

/// The driver's half of a distributed fit: the checks of a local fit, then the bins and the
/// training fingerprint. Returns `((codes, lower, upper, offsets, has_missing), fingerprint)`:
/// `codes` is `(n_samples, n_features)` uint8, feature `f`'s bins are
/// `lower/upper[offsets[f]:offsets[f + 1]]`.
#[pyfunction]
#[pyo3(signature = (x, y, n_classes, sample_weight=None, params=None, n_jobs=None))]
pub(crate) fn prepare_training_set<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: PyReadonlyArray1<'py, u32>,
    n_classes: usize,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    params: Option<&Bound<'py, PyDict>>,
    n_jobs: Option<i64>,
) -> PyResult<(BinnedParts<'py>, String)> {
    let params = params
        .map(params_from_dict)
        .transpose()?
        .unwrap_or_default();
    let n_threads = n_threads(n_jobs)?;
    let x = Matrix::extract(x)?;
    let y = slice(&y, "y")?;
    let w = sample_weight
        .as_ref()
        .map(|w| slice(w, "sample_weight"))
        .transpose()?;
    let (binned, fingerprint) = with_view!(&x, view => py.detach(|| {
        crate::forest::fit::prepare_training_set(view, y, n_classes, w, &params, n_threads)
    }))
    .py()?;
    let codes = Array2::from_shape_vec(
        (binned.n_samples, binned.n_features),
        binned.codes().to_vec(),
    )
    .map_err(|e| PyValueError::new_err(format!("inconsistent bins: {e}")))?;
    let mut offsets = vec![0u64];
    let (mut lower, mut upper) = (Vec::new(), Vec::new());
    for b in &binned.bins {
        lower.extend_from_slice(&b.lower);
        upper.extend_from_slice(&b.upper);
        offsets.push(lower.len() as u64);
    }
    let parts = (
        codes.into_pyarray(py),
        lower.into_pyarray(py),
        upper.into_pyarray(py),
        offsets.into_pyarray(py),
        binned.has_missing.clone().into_pyarray(py),
    );
    Ok((parts, fingerprint))
}

/// A worker's half: trees `start..stop` of the forest a local fit of `params` grows, on the
/// driver's bins (the parts [`prepare_training_set`] returned). Returns `(forest, masks)`:
/// the trees as a forest of their own, and with `oob_score` their out-of-bag bit sets,
/// `(stop - start, ceil(n_samples / 64))` uint64 (else None).
#[pyfunction]
#[pyo3(signature = (binned, y, n_classes, sample_weight, params, start, stop, training_fingerprint, n_jobs=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn grow_tree_range<'py>(
    py: Python<'py>,
    binned: ShippedBins<'py>,
    y: PyReadonlyArray1<'py, u32>,
    n_classes: usize,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    params: &Bound<'py, PyDict>,
    start: usize,
    stop: usize,
    training_fingerprint: String,
    n_jobs: Option<i64>,
) -> PyResult<(NativeForest, Option<Bound<'py, PyArray2<u64>>>)> {
    let params = params_from_dict(params)?;
    let n_threads = n_threads(n_jobs)?;
    let (codes, lower, upper, offsets, has_missing) = binned;
    let (n_samples, n_features) = codes.as_array().dim();
    let codes = codes
        .as_slice()
        .map_err(|_| PyValueError::new_err("codes must be a C-contiguous 2-D array"))?
        .to_vec();
    let (lower, upper) = (slice(&lower, "lower")?, slice(&upper, "upper")?);
    let offsets = slice(&offsets, "offsets")?;
    let has_missing = slice(&has_missing, "has_missing")?.to_vec();
    let bad_offsets = offsets.len() != n_features + 1
        || offsets.first() != Some(&0)
        || offsets.last().map(|&o| o as usize) != Some(lower.len())
        || lower.len() != upper.len()
        || offsets.windows(2).any(|w| w[0] > w[1]);
    if bad_offsets {
        return Err(PyValueError::new_err(format!(
            "binned training set: offsets must rise from 0 to the {} bin bounds, one per feature \
             plus one ({} features)",
            lower.len(),
            n_features
        )));
    }
    let bins = offsets
        .windows(2)
        .map(|w| crate::tree::binning::FeatureBins {
            lower: lower[w[0] as usize..w[1] as usize].to_vec(),
            upper: upper[w[0] as usize..w[1] as usize].to_vec(),
        })
        .collect();
    let y = slice(&y, "y")?;
    let w = sample_weight
        .as_ref()
        .map(|w| slice(w, "sample_weight"))
        .transpose()?;
    let share = py
        .detach(|| {
            let binned = crate::tree::BinnedMatrix::from_parts(
                n_samples,
                n_features,
                codes,
                bins,
                has_missing,
            )?;
            crate::forest::fit::grow_tree_range(
                binned,
                y,
                n_classes,
                w,
                &params,
                start..stop,
                training_fingerprint,
                n_threads,
            )
        })
        .py()?;
    let masks = match share.oob_masks {
        Some(m) => {
            let words = n_samples.div_ceil(64);
            let flat: Vec<u64> = m.into_iter().flatten().collect();
            let arr = Array2::from_shape_vec((flat.len() / words.max(1), words), flat)
                .map_err(|e| PyValueError::new_err(format!("inconsistent masks: {e}")))?;
            Some(arr.into_pyarray(py))
        }
        None => None,
    };
    Ok((NativeForest::new(share.forest), masks))
}

/// The driver's last step: the forest of `init`'s trees (warm start) followed by the trees of
/// `shares`, `[(first tree index, forest, masks or None), ...]` from [`grow_tree_range`], with a
/// local fit's out-of-bag estimate over `x`. Refuses shares that leave a tree index uncovered
/// or cover one twice, or that were grown with other parameters or on other data.
#[pyfunction]
#[pyo3(signature = (shares, x, y, n_classes, sample_weight, params, training_fingerprint, fit_seconds, n_jobs=None, init=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble_shares(
    py: Python<'_>,
    shares: Vec<(
        usize,
        PyRef<'_, NativeForest>,
        Option<numpy::PyReadonlyArray2<'_, u64>>,
    )>,
    x: &Bound<'_, PyAny>,
    y: PyReadonlyArray1<'_, u32>,
    n_classes: usize,
    sample_weight: Option<PyReadonlyArray1<'_, f64>>,
    params: &Bound<'_, PyDict>,
    training_fingerprint: String,
    fit_seconds: f64,
    n_jobs: Option<i64>,
    init: Option<&Bound<'_, NativeForest>>,
) -> PyResult<NativeForest> {
    let params = params_from_dict(params)?;
    let n_threads = n_threads(n_jobs)?;
    let shares: Vec<crate::forest::merge::TreeShare> = shares
        .iter()
        .map(|(first, forest, masks)| crate::forest::merge::TreeShare {
            first: *first,
            forest: Forest::clone(forest.forest()),
            oob_masks: masks.as_ref().map(|m| {
                m.as_array()
                    .rows()
                    .into_iter()
                    .map(|r| r.to_vec())
                    .collect()
            }),
        })
        .collect();
    let x = Matrix::extract(x)?;
    let y = slice(&y, "y")?;
    let w = sample_weight
        .as_ref()
        .map(|w| slice(w, "sample_weight"))
        .transpose()?;
    let init = init.map(|f| Arc::clone(f.get().forest()));
    let forest = with_view!(&x, view => py.detach(|| Forest::from_shares(
        init.as_deref(),
        shares,
        view,
        y,
        n_classes,
        w,
        &params,
        training_fingerprint,
        fit_seconds,
        n_threads,
    )))
    .py()?;
    Ok(NativeForest::new(forest))
}

/// Independently fitted forests merged into one (see `crate::forest::merge::merge_forests`):
/// refuses, naming the difference, forests that disagree on features, classes, tree
/// parameters or binning, or that share a seed.
#[pyfunction]
pub(crate) fn merge_forests(forests: Vec<PyRef<'_, NativeForest>>) -> PyResult<NativeForest> {
    let parts: Vec<&Forest> = forests.iter().map(|f| f.forest().as_ref()).collect();
    let merged = crate::forest::merge::merge_forests(&parts).py()?;
    Ok(NativeForest::new(merged))
}
