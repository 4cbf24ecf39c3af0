//! Decision trees: the fitted model ([`model`]) and how one is grown from pre-binned data
//! ([`binning`], [`histogram`], [`splitter`], [`builder`], [`pruning`]) under resolved
//! [`limits`] with a split [`criterion`].
//!
//! The lowest layer of the crate: it imports nothing from the forest layer or above
//! (`tests/layers.rs` keeps it so).
//!
//! - [`model`]: the fitted tree as flat arrays, its traversal and importances.
//! - [`binning`]: features quantised once to at most 255 bins, with the thresholds between them.
//! - [`histogram`]: per-node class-weight histograms of the binned features.
//! - [`splitter`]: the best split of a node over a random draw of features.
//! - [`builder`]: grows one tree depth-first or best-first.
//! - [`pruning`]: minimal cost-complexity pruning.
//! - [`criterion`]: Gini and entropy, and the split-ranking proxy.
//! - [`limits`]: the per-tree limits a forest's hyperparameters resolve to.

pub mod binning;
pub mod builder;
pub mod criterion;
pub mod histogram;
pub mod limits;
pub mod model;
pub mod pruning;
pub mod splitter;

pub use binning::BinnedMatrix;
pub use builder::TreeBuilder;
pub use criterion::Criterion;
pub use histogram::Sample;
pub use limits::TreeLimits;
pub use model::{Node, NodeStats, Tree, LEAF, MAX_FEATURES};

#[cfg(test)]
pub(crate) mod tests;
