//! The limits one tree is grown under: the forest's hyperparameters resolved against the
//! training set's size (`ForestParams::resolve` in the forest layer builds them). They live here,
//! with the tree, because only the builder and the splitter read them.

use super::criterion::Criterion;

/// Limits of one tree, resolved against the training set's size.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeLimits {
    /// Split criterion.
    pub criterion: Criterion,
    /// Maximum depth (`usize::MAX` for none).
    pub max_depth: usize,
    /// Minimum distinct samples to split a node (already at least `2 * min_samples_leaf`).
    pub min_samples_split: usize,
    /// Minimum distinct samples per leaf.
    pub min_samples_leaf: usize,
    /// Minimum weight per leaf, as a fraction of the tree's total weight.
    pub min_weight_fraction_leaf: f64,
    /// Number of features drawn per split.
    pub max_features: usize,
    /// Best-first growth with this many leaves at most.
    pub max_leaf_nodes: Option<usize>,
    /// Minimum weighted impurity decrease of a split.
    pub min_impurity_decrease: f64,
    /// Cost-complexity pruning strength.
    pub ccp_alpha: f64,
    /// Per-feature monotonic constraints (empty for none).
    pub monotonic_cst: Vec<i8>,
}
