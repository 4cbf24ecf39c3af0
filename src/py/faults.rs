//! Test-only hooks into the store, for the reliability suite: the fault switch
//! (`src/store/backend/faults.rs`) per thread and per process (crash trials that kill a child at
//! a deterministic I/O step), and the gc pause that lets a test interleave a concurrent save.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::store::faults::{self, FaultMode};
use crate::store::gc;

/// Test-only: fail (or, with `crash`, abort with `SIGABRT`) at the `at`-th store I/O step counted
/// from process start, over all threads; `at = 0` disarms. The same as starting the process with
/// `WOODLOT_FAULT_AT_STEP=at` (and `WOODLOT_FAULT_MODE=error` for `crash=False`).
#[pyfunction]
#[pyo3(signature = (at, crash=true))]
pub(crate) fn _store_fault_arm_process(at: u64, crash: bool) {
    let mode = if crash {
        FaultMode::Crash
    } else {
        FaultMode::Error
    };
    faults::arm_process(at, mode);
}

/// Test-only: how many store I/O steps this process has taken since it started.
#[pyfunction]
pub(crate) fn _store_fault_process_steps() -> u64 {
    faults::process_steps()
}

/// Test-only: the names of this process's store I/O steps (kept from process start under
/// `WOODLOT_FAULT_TRACE=1` or `WOODLOT_FAULT_AT_STEP`, else from the first process arm).
#[pyfunction]
pub(crate) fn _store_fault_process_log() -> Vec<String> {
    faults::process_log()
        .into_iter()
        .map(String::from)
        .collect()
}

/// Test-only: fail (or, with `crash`, abort the process) at the `at`-th store I/O step from now
/// on this thread; `at = 0` disarms.
#[pyfunction]
#[pyo3(signature = (at, crash=false))]
pub(crate) fn _store_fault_arm(at: u64, crash: bool) {
    faults::arm(
        at,
        if crash {
            FaultMode::Crash
        } else {
            FaultMode::Error
        },
    );
}

/// Test-only: the store I/O steps taken on this thread since the last arm, by name.
#[pyfunction]
pub(crate) fn _store_fault_steps() -> Vec<String> {
    faults::steps().into_iter().map(String::from).collect()
}

/// Test-only: the next gc (in any thread) to reach `stage` (`"sweep"` or `"delete"`) stops there
/// until `_store_gc_release()`, so a test can interleave a concurrent save deterministically.
#[pyfunction]
pub(crate) fn _store_gc_pause_arm(stage: &str) -> PyResult<()> {
    if !matches!(stage, "sweep" | "delete") {
        return Err(PyValueError::new_err(format!(
            "stage must be 'sweep' or 'delete', got {stage:?}"
        )));
    }
    gc::pause::arm(stage);
    Ok(())
}

/// Test-only: waits (GIL released) until a gc stopped at the armed stage; false on timeout.
#[pyfunction]
pub(crate) fn _store_gc_pause_wait(py: Python<'_>, timeout: f64) -> bool {
    let t = std::time::Duration::from_secs_f64(timeout.clamp(0.0, 600.0));
    py.detach(|| gc::pause::wait_paused(t))
}

/// Test-only: lets the stopped gc go on.
#[pyfunction]
pub(crate) fn _store_gc_pause_release() {
    gc::pause::release();
}

/// Registers the functions on the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_store_fault_arm, m)?)?;
    m.add_function(wrap_pyfunction!(_store_fault_steps, m)?)?;
    m.add_function(wrap_pyfunction!(_store_gc_pause_arm, m)?)?;
    m.add_function(wrap_pyfunction!(_store_gc_pause_wait, m)?)?;
    m.add_function(wrap_pyfunction!(_store_gc_pause_release, m)?)?;
    m.add_function(wrap_pyfunction!(_store_fault_arm_process, m)?)?;
    m.add_function(wrap_pyfunction!(_store_fault_process_steps, m)?)?;
    m.add_function(wrap_pyfunction!(_store_fault_process_log, m)?)?;
    Ok(())
}
