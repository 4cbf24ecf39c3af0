//! The Python extension module `woodlot._native`: the only place in the crate that knows
//! about pyo3. One concept per file:
//!
//! - [`forest`]: `NativeForest`, the handle on a fitted forest.
//! - [`convert`]: numpy arrays and parameter dicts to core types, without copying data.
//! - [`errors`]: core errors to Python exceptions.
//!
//! Everything scikit-learn-shaped (input validation, labels, attributes) is Python code in
//! `python/woodlot/`; everything heavy runs here with the GIL released.

mod convert;
mod errors;
mod forest;
mod live;
mod store;

use pyo3::prelude::*;

/// The native module. Registered names are listed in `python/woodlot/_native.pyi`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<forest::NativeForest>()?;
    m.add_function(wrap_pyfunction!(forest::effective_n_jobs, m)?)?;
    store::register(m)?;
    m.add_class::<live::NativeLiveModel>()?;
    Ok(())
}
