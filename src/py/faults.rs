//! Test-only: the process-wide side of the fault switch (`src/store/backend/faults.rs`), for
//! crash trials that kill a child at a deterministic I/O step. The per-thread
//! `_store_fault_arm`/`_store_fault_steps` are in `store.rs`.

use pyo3::prelude::*;

use crate::store::faults::{self, FaultMode};

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

/// Registers the functions on the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_store_fault_arm_process, m)?)?;
    m.add_function(wrap_pyfunction!(_store_fault_process_steps, m)?)?;
    m.add_function(wrap_pyfunction!(_store_fault_process_log, m)?)?;
    Ok(())
}
