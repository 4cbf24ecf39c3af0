//! Conversions between Python objects and the core's types.
//!
//! - Feature matrices: a 2-D `float32` or `float64` numpy array of any memory layout (C, Fortran,
//!   strided, negative strides) is borrowed as an [`ndarray::ArrayView2`] without a copy. Only an
//!   array numpy flags as misaligned, or whose strides are not whole elements, is copied first.
//! - Labels and weights: 1-D contiguous `uint32` / `float64` arrays, borrowed as slices.
//! - Hyperparameters: a `dict` in scikit-learn's spelling becomes a [`ForestParams`]; a Python
//!   `int` means an absolute count and a `float` a fraction, as in scikit-learn, and `bool`s are
//!   rejected where scikit-learn rejects them.

use numpy::{
    PyArrayDescrMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use crate::forest::{ClassWeight, Criterion, ForestParams, MaxFeatures, SizeSpec};

/// A borrowed feature matrix of one of the two element types the core reads.
pub(crate) enum Matrix<'py> {
    /// `float32` data (scikit-learn's own training precision).
    F32(PyReadonlyArray2<'py, f32>),
    /// `float64` data.
    F64(PyReadonlyArray2<'py, f64>),
}

/// Runs `$body` with `$view` bound to an `ArrayView2` of the matrix's element type.
macro_rules! with_view {
    ($matrix:expr, $view:ident => $body:expr) => {
        match $matrix {
            $crate::py::convert::Matrix::F32(a) => {
                let $view = a.as_array();
                $body
            }
            $crate::py::convert::Matrix::F64(a) => {
                let $view = a.as_array();
                $body
            }
        }
    };
}
pub(crate) use with_view;

/// Whether ndarray can view the array as is: aligned, with strides in whole elements.
fn viewable(arr: &Bound<'_, PyUntypedArray>, itemsize: isize) -> bool {
    arr.is_aligned() && arr.strides().iter().all(|s| s % itemsize == 0)
}

impl<'py> Matrix<'py> {
    /// Borrows `obj`, which must be a 2-D `float32` or `float64` numpy array.
    pub(crate) fn extract(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let untyped = obj.cast::<PyUntypedArray>().map_err(|_| {
            PyTypeError::new_err(format!(
                "X must be a 2-D float32 or float64 numpy array, got {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        if untyped.ndim() != 2 {
            return Err(PyValueError::new_err(format!(
                "Expected a 2D array, got an array with {} dimension(s); reshape your data either using \
                 array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it \
                 contains a single sample",
                untyped.ndim()
            )));
        }
        let itemsize = untyped.dtype().itemsize() as isize;
        if itemsize > 0 && !viewable(untyped, itemsize) {
            // A misaligned or oddly strided view (e.g. a field of a packed record array):
            // copy once into a fresh, aligned array.
            let copy = obj.call_method0("copy")?;
            return Self::extract_aligned(&copy);
        }
        Self::extract_aligned(obj)
    }

    fn extract_aligned(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, f64>>() {
            return Ok(Self::F64(a));
        }
        if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, f32>>() {
            return Ok(Self::F32(a));
        }
        let dtype = obj
            .getattr("dtype")
            .and_then(|d| d.str().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(PyTypeError::new_err(format!(
            "X must be a float32 or float64 numpy array in native byte order, got dtype {dtype}"
        )))
    }

    /// `(n_rows, n_cols)`.
    pub(crate) fn shape(&self) -> (usize, usize) {
        match self {
            Matrix::F32(a) => a.as_array().dim(),
            Matrix::F64(a) => a.as_array().dim(),
        }
    }
}

/// Borrows a 1-D contiguous array as a slice.
pub(crate) fn slice<'a, T: numpy::Element>(
    arr: &'a PyReadonlyArray1<'_, T>,
    what: &str,
) -> PyResult<&'a [T]> {
    arr.as_slice()
        .map_err(|_| PyValueError::new_err(format!("{what} must be a contiguous 1-D array")))
}

// ---------------------------------------------------------------------------------------------
// Hyperparameters
// ---------------------------------------------------------------------------------------------

fn bad(name: &str, message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!(
        "The '{name}' parameter of RandomForestClassifier {message}"
    ))
}

/// A Python `int` that is not a `bool`.
fn as_int(v: &Bound<'_, PyAny>) -> Option<i64> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return None;
    }
    v.extract::<i64>().ok()
}

/// A Python `float` (not an `int`, not a `bool`).
fn as_float(v: &Bound<'_, PyAny>) -> Option<f64> {
    if !v.is_instance_of::<PyFloat>() {
        return None;
    }
    v.extract::<f64>().ok()
}

fn non_negative_int(name: &str, v: &Bound<'_, PyAny>) -> PyResult<usize> {
    match as_int(v) {
        Some(i) if i >= 0 => Ok(i as usize),
        _ => Err(bad(
            name,
            format!("must be a non-negative int, got {}", repr(v)),
        )),
    }
}

fn real(name: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if v.is_instance_of::<PyBool>() {
        return Err(bad(name, format!("must be a float, got {}", repr(v))));
    }
    if let Some(i) = as_int(v) {
        return Ok(i as f64);
    }
    as_float(v).ok_or_else(|| bad(name, format!("must be a float, got {}", repr(v))))
}

fn boolean(name: &str, v: &Bound<'_, PyAny>) -> PyResult<bool> {
    if v.is_instance_of::<PyBool>() {
        Ok(v.extract::<bool>()?)
    } else {
        Err(bad(name, format!("must be a bool, got {}", repr(v))))
    }
}

/// `int` → count, `float` → fraction.
fn size_spec(name: &str, v: &Bound<'_, PyAny>) -> PyResult<SizeSpec> {
    if let Some(i) = as_int(v) {
        if i < 0 {
            return Err(bad(
                name,
                format!("must be a non-negative int or a float, got {i}"),
            ));
        }
        return Ok(SizeSpec::Count(i as usize));
    }
    if let Some(f) = as_float(v) {
        return Ok(SizeSpec::Fraction(f));
    }
    Err(bad(
        name,
        format!("must be an int or a float, got {}", repr(v)),
    ))
}

fn repr(v: &Bound<'_, PyAny>) -> String {
    v.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".into())
}

fn string(v: &Bound<'_, PyAny>) -> Option<String> {
    if v.is_instance_of::<PyString>() {
        v.extract::<String>().ok()
    } else {
        None
    }
}

/// Builds [`ForestParams`] from a dict in scikit-learn's spelling. Missing keys keep
/// scikit-learn's defaults; unknown keys are an error (a typo must not be silently ignored).
///
/// Accepted values: `n_estimators: int`, `criterion: "gini"|"entropy"|"log_loss"`,
/// `max_depth: int|None`, `min_samples_split` / `min_samples_leaf: int|float`,
/// `min_weight_fraction_leaf: float`, `max_features: "sqrt"|"log2"|None|int|float`,
/// `max_leaf_nodes: int|None`, `min_impurity_decrease: float`, `bootstrap` / `oob_score: bool`,
/// `random_state: int >= 0`, `class_weight: None|"balanced"|"balanced_subsample"|list[float]`
/// (one weight per class code), `ccp_alpha: float`, `max_samples: None|int|float`,
/// `monotonic_cst: None|list[int]`.
pub(crate) fn params_from_dict(d: &Bound<'_, PyDict>) -> PyResult<ForestParams> {
    let mut p = ForestParams::default();
    for (key, v) in d.iter() {
        let key =
            string(&key).ok_or_else(|| PyTypeError::new_err("parameter names must be strings"))?;
        let none = v.is_none();
        match key.as_str() {
            "n_estimators" => p.n_estimators = non_negative_int("n_estimators", &v)?,
            "criterion" => {
                p.criterion = match string(&v).as_deref() {
                    Some("gini") => Criterion::Gini,
                    Some("entropy") | Some("log_loss") => Criterion::Entropy,
                    _ => {
                        return Err(bad(
                            "criterion",
                            format!(
                                "must be a str among {{'gini', 'entropy', 'log_loss'}}, got {}",
                                repr(&v)
                            ),
                        ))
                    }
                }
            }
            "max_depth" => {
                p.max_depth = if none {
                    None
                } else {
                    Some(non_negative_int("max_depth", &v)?)
                }
            }
            "min_samples_split" => p.min_samples_split = size_spec("min_samples_split", &v)?,
            "min_samples_leaf" => p.min_samples_leaf = size_spec("min_samples_leaf", &v)?,
            "min_weight_fraction_leaf" => {
                p.min_weight_fraction_leaf = real("min_weight_fraction_leaf", &v)?
            }
            "max_features" => {
                p.max_features = if none {
                    MaxFeatures::All
                } else if let Some(s) = string(&v) {
                    match s.as_str() {
                        "sqrt" => MaxFeatures::Sqrt,
                        "log2" => MaxFeatures::Log2,
                        _ => {
                            return Err(bad(
                                "max_features",
                                format!(
                                    "must be 'sqrt', 'log2', None, an int or a float, got {}",
                                    repr(&v)
                                ),
                            ))
                        }
                    }
                } else {
                    match size_spec("max_features", &v)? {
                        SizeSpec::Count(c) => MaxFeatures::Count(c),
                        SizeSpec::Fraction(f) => MaxFeatures::Fraction(f),
                    }
                }
            }
            "max_leaf_nodes" => {
                p.max_leaf_nodes = if none {
                    None
                } else {
                    Some(non_negative_int("max_leaf_nodes", &v)?)
                }
            }
            "min_impurity_decrease" => p.min_impurity_decrease = real("min_impurity_decrease", &v)?,
            "bootstrap" => p.bootstrap = boolean("bootstrap", &v)?,
            "oob_score" => p.oob_score = boolean("oob_score", &v)?,
            "random_state" => {
                p.random_state = match as_int(&v) {
                    Some(i) if i >= 0 => i as u64,
                    _ => {
                        return Err(bad(
                            "random_state",
                            format!("must be a non-negative int, got {}", repr(&v)),
                        ))
                    }
                }
            }
            "class_weight" => {
                p.class_weight = if none {
                    ClassWeight::Uniform
                } else if let Some(s) = string(&v) {
                    match s.as_str() {
                        "balanced" => ClassWeight::Balanced,
                        "balanced_subsample" => ClassWeight::BalancedSubsample,
                        _ => {
                            return Err(bad(
                                "class_weight",
                                format!(
                                "must be 'balanced', 'balanced_subsample', a dict or None, got {}",
                                repr(&v)
                            ),
                            ))
                        }
                    }
                } else {
                    let w: Vec<f64> = v.extract().map_err(|_| {
                        bad(
                            "class_weight",
                            format!("must be a list of per-class weights here, got {}", repr(&v)),
                        )
                    })?;
                    ClassWeight::PerClass(w)
                }
            }
            "ccp_alpha" => p.ccp_alpha = real("ccp_alpha", &v)?,
            "max_samples" => {
                p.max_samples = if none {
                    None
                } else {
                    Some(size_spec("max_samples", &v)?)
                }
            }
            "monotonic_cst" => {
                p.monotonic_cst = if none {
                    None
                } else {
                    let c: Vec<i64> = v.extract().map_err(|_| {
                        bad(
                            "monotonic_cst",
                            format!("must be a list of -1, 0, 1, got {}", repr(&v)),
                        )
                    })?;
                    // Which values are allowed is the core's rule (ForestParams::resolve), so
                    // its message is the one users see. Values beyond i8 saturate to i8::MIN or
                    // i8::MAX, which that rule refuses like any other value outside -1..=1.
                    Some(
                        c.into_iter()
                            .map(|x| x.clamp(i8::MIN as i64, i8::MAX as i64) as i8)
                            .collect(),
                    )
                }
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown RandomForestClassifier parameter {other:?}"
                )))
            }
        }
    }
    Ok(p)
}
