//! Drift of live rows against a stored version's training histogram (`store.drift(X, ref)`).
//!
//! Every fitted forest keeps each feature's histogram over its training rows (format 2.1,
//! [`crate::forest::histogram`]), so comparing live inputs with what a version was trained on
//! needs only the version, not its training data. A version without one (saved from a file
//! older than 2.1, converted from scikit-learn, merged from parts with different histograms) is
//! refused with the way out: pass reference rows instead ([`Reference::fit`]).

use ndarray::ArrayView2;

use crate::error::{Result, WoodlotError};
use crate::format;
use crate::guard::psi::{Drift, Reference};
use crate::store::names::version_name;
use crate::store::{Ref, Store};

/// The training histogram of the version `r` names (its model verified as every load is).
pub fn training_histogram(store: &Store, r: &Ref) -> Result<Reference> {
    let (m, bytes) = store.read_model(r, true)?;
    let (forest, _) = format::decode(&bytes)?;
    forest.training_histogram.ok_or_else(|| {
        WoodlotError::input(format!(
            "{} has no training histogram (its model file predates format 2.1, or it was \
             converted from scikit-learn or merged from parts fitted apart): pass reference= \
             rows (e.g. its training data) to measure drift against those instead",
            version_name(m.version)
        ))
    })
}

/// PSI per feature of the live rows `x` against the training histogram of the version `r`
/// names; features above `threshold` flagged.
pub fn version_drift(
    store: &Store,
    r: &Ref,
    x: ArrayView2<'_, f64>,
    threshold: f64,
) -> Result<Drift> {
    training_histogram(store, r)?.drift(x, threshold)
}
