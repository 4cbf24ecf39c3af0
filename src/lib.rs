//! woodlot: random forests trained in Rust with scikit-learn's face, and a version store that
//! makes model updates safe.
//!
//! The crate is a pure Rust core; the Python extension (`woodlot._native`) lives in [`py`],
//! behind the `python` feature, and is the only place that knows about pyo3.
//!
//! - [`tree`]: flat-array decision trees and the histogram-based builder that grows them.
//! - [`forest`]: the ensemble (parallel fit, prediction, importances, linfa traits).
//! - [`format`]: the checksummed model file shared by `dump`/`load`, pickle and the store.
//! - [`fingerprint`]: BLAKE3 fingerprints of data sets, for lineage.

pub mod error;
pub mod fingerprint;
pub mod forest;
pub mod format;
pub mod rng;
pub mod serve;
pub mod store;
pub mod tree;
pub mod value;

#[cfg(feature = "python")]
mod py;

pub use error::{Result, WoodlotError};
pub use forest::{Forest, ForestParams};
pub use tree::Tree;
