//! woodlot: random forests trained in Rust with scikit-learn's face, and a version store that
//! makes model updates safe.
//!
//! The crate is a pure Rust core; the Python extension (`woodlot._native`) lives in `py`,
//! behind the `python` feature, and is the only place that knows about pyo3.
//!
//! # Layers
//!
//! The modules form layers that import downward only (`tests/layers.rs` fails the build
//! otherwise; docs/ARCHITECTURE.md explains each):
//!
//! ```text
//! tree  <-  forest  <-  format  <-  store  <-  guard  <-  serve  <-  py
//! ```
//!
//! - [`tree`]: flat-array decision trees and the histogram-based builder that grows them, with
//!   the limits and criterion a tree is grown under.
//! - [`forest`]: the ensemble (parallel fit, prediction, the compiled serving layout and its
//!   cache, thread pools, linfa traits).
//! - [`format`]: the checksummed model file shared by `dump`/`load`, pickle and the store.
//! - [`store`]: the version store (save, compare, promote, rollback, gc, verify) over a local
//!   directory or object storage.
//! - [`guard`]: guarded deployment: a candidate scored beside the active version on live
//!   traffic, outcomes joined by request id, anytime-valid rollback or confirmation.
//! - [`serve`]: following a store reference: a watched, verified, atomically swapped model
//!   ([`serve::LiveModel`]), MLflow-style scoring input and a first HTTP server.
//! - `py` (feature `python`): the pyo3 binding, `woodlot._native`.
//!
//! Shared by every layer and importing none:
//!
//! - [`error`]: the one error type, [`WoodlotError`].
//! - [`rng`]: the seeded random number generator (bit-identical across platforms).
//! - [`value`]: [`FeatureValue`](value::FeatureValue), the `f32`/`f64` inputs fit and predict
//!   accept.
//! - [`fingerprint`]: BLAKE3 fingerprints of data sets, for lineage.

pub mod error;
pub mod fingerprint;
pub mod forest;
pub mod format;
pub mod guard;
pub mod rng;
pub mod serve;
pub mod store;
pub mod tree;
pub mod value;

#[cfg(feature = "python")]
mod py;

pub use error::{Result, WoodlotError};
pub use forest::{Forest, ForestParams, Predictor};
pub use tree::Tree;
