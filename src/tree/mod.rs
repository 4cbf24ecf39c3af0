//! Decision trees: the fitted model ([`model`]) and how one is grown from pre-binned data
//! ([`binning`], [`histogram`], [`splitter`], [`builder`], [`pruning`]).

pub mod binning;
pub mod builder;
pub mod criterion;
pub mod histogram;
pub mod model;
pub mod pruning;
pub mod splitter;

pub use binning::BinnedMatrix;
pub use builder::TreeBuilder;
pub use histogram::Sample;
pub use model::{Node, NodeStats, Tree, LEAF};
