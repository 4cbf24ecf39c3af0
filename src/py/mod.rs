//! The Python extension module `woodlot._native`: the only place in the crate that knows
//! about pyo3. One concept per file:
//!
//! - [`forest`]: `NativeForest`, the handle on a fitted forest (a thin binding over
//!   [`Predictor`](crate::forest::Predictor), which holds the serving fast path).
//! - [`store`]: `NativeStore` and `NativeComparison`, the handles on the version store.
//! - [`live`]: `NativeLiveModel`, the handle on a [`serve::LiveModel`](crate::serve::LiveModel)
//!   that follows a store reference.
//! - `serve` (feature `http`): `NativeHttpServer`, the handle on the HTTP scoring server.
//! - [`guard`]: `NativeGuard` and the guard functions, over [`crate::guard`].
//! - [`durable`]: `write_file_durably`, the store's temp + fsync + rename for `woodlot.dump`.
//! - [`faults`]: the underscored, test-only hooks of the reliability suite (fault arming per
//!   thread and per process, the gc pause).
//! - [`convert`]: numpy arrays and parameter dicts to core types, without copying data.
//! - [`errors`]: core errors to Python exceptions.
//!
//! The top layer: it may use every module of the core; nothing in the core uses it.
//!
//! Everything scikit-learn-shaped (input validation, labels, attributes) is Python code in
//! `python/woodlot/`; everything heavy runs here with the GIL released.

mod convert;
mod durable;
mod errors;
mod faults;
mod forest;
mod guard;
mod live;
#[cfg(feature = "http")]
mod serve;
mod store;

use pyo3::prelude::*;

/// The native module. Registered names are listed in `python/woodlot/_native.pyi`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<forest::NativeForest>()?;
    m.add_function(wrap_pyfunction!(forest::effective_n_jobs, m)?)?;
    m.add_function(wrap_pyfunction!(forest::prepare_training_set, m)?)?;
    m.add_function(wrap_pyfunction!(forest::grow_tree_range, m)?)?;
    m.add_function(wrap_pyfunction!(forest::assemble_shares, m)?)?;
    m.add_function(wrap_pyfunction!(forest::merge_forests, m)?)?;
    store::register(m)?;
    durable::register(m)?;
    faults::register(m)?;
    m.add_class::<live::NativeLiveModel>()?;
    m.add_class::<forest::FitProgress>()?;
    #[cfg(feature = "http")]
    m.add_class::<serve::NativeHttpServer>()?;
    guard::register(m)?;
    Ok(())
}
