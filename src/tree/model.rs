//! The fitted decision tree: flat node arrays, never boxed nodes.
//!
//! A tree is a `Vec<Node>` plus a dense array of leaf class fractions. Children always have a
//! larger index than their parent, so index 0 (the root) can never be a child and `left == 0`
//! marks a leaf. Per-node statistics (impurity, sample counts) are kept beside the nodes because
//! scikit-learn users inspect them (`tree_.impurity`, `tree_.n_node_samples`) and feature
//! importances are computed from them.

use serde::{Deserialize, Serialize};

/// Marker stored in [`Node::left`] for leaves.
pub const LEAF: u32 = 0;

/// Features a tree may index: a node keeps its missing-value direction in its feature word's
/// top bit.
pub const MAX_FEATURES: u32 = 1 << 31;

/// In [`Node`]'s feature word: a missing value goes left at this split.
const MISSING_LEFT: u32 = MAX_FEATURES;

/// One node of a tree. Samples go left when `x[feature] <= threshold`, as in scikit-learn.
///
/// 16 bytes: the missing-value direction shares a word with the feature (features are below
/// [`MAX_FEATURES`]). A bool of its own made a node 20 bytes, and a loaded 100-tree forest of
/// 2.6 million nodes 10.5 MB larger, all of it memory a load must fault in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The feature a split node tests, with [`MISSING_LEFT`]; 0 for a leaf.
    feature_word: u32,
    /// Split threshold; `+inf` means "every non-missing value goes left".
    pub threshold: f32,
    /// Index of the left child, or [`LEAF`] for a leaf.
    pub left: u32,
    /// Index of the right child for a split node; for a leaf, the leaf's row in
    /// [`Tree::leaf_values`].
    pub right: u32,
}

impl Node {
    /// A split node: `x[feature] <= threshold` goes to `left`, a larger value to `right`,
    /// a missing value to `left` when `missing_left`. `feature` must be below
    /// [`MAX_FEATURES`] (a forest's feature count is checked against it); its top bit is not
    /// kept.
    pub fn split(feature: u32, threshold: f32, left: u32, right: u32, missing_left: bool) -> Self {
        let direction = if missing_left { MISSING_LEFT } else { 0 };
        Self {
            feature_word: (feature & !MISSING_LEFT) | direction,
            threshold,
            left,
            right,
        }
    }

    /// A leaf whose class fractions are row `row` of the tree's leaf values. Its unused fields
    /// are zero, the canonical form the model file requires.
    pub fn leaf(row: u32) -> Self {
        Self {
            feature_word: 0,
            threshold: 0.0,
            left: LEAF,
            right: row,
        }
    }

    /// The feature a split node tests (0 for a leaf).
    #[inline]
    pub fn feature(&self) -> u32 {
        self.feature_word & !MISSING_LEFT
    }

    /// Where a missing (NaN) value goes at this split: left when true.
    #[inline]
    pub fn missing_left(&self) -> bool {
        self.feature_word & MISSING_LEFT != 0
    }

    /// Sets the feature a split tests (below [`MAX_FEATURES`]; the top bit is not kept).
    pub fn set_feature(&mut self, feature: u32) {
        self.feature_word = (feature & !MISSING_LEFT) | (self.feature_word & MISSING_LEFT);
    }

    /// Sets where a missing value goes at this split.
    pub fn set_missing_left(&mut self, missing_left: bool) {
        let direction = if missing_left { MISSING_LEFT } else { 0 };
        self.feature_word = (self.feature_word & !MISSING_LEFT) | direction;
    }

    /// Whether this node is a leaf.
    #[inline]
    pub fn is_leaf(&self) -> bool {
        self.left == LEAF
    }
}

/// Per-node statistics recorded at fit time, parallel to [`Tree::nodes`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Impurity of the node under the training criterion.
    pub impurity: Vec<f32>,
    /// Number of distinct training samples that reached the node.
    pub n_samples: Vec<u32>,
    /// Total sample weight (bootstrap counts x sample weight x class weight) at the node.
    pub weighted_n_samples: Vec<f32>,
}

/// A fitted classification tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Number of classes; each leaf holds this many fractions.
    pub n_classes: u32,
    /// Nodes in creation order; node 0 is the root.
    pub nodes: Vec<Node>,
    /// `n_leaves * n_classes` class fractions (each leaf's row sums to 1).
    pub leaf_values: Vec<f32>,
    /// Statistics per node.
    pub stats: NodeStats,
}

impl Tree {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.leaf_values.len() / self.n_classes.max(1) as usize
    }

    /// Depth of the tree (a lone root has depth 0), computed without recursion.
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.nodes.len()];
        let mut max = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.is_leaf() {
                let d = depth[i] + 1;
                depth[node.left as usize] = d;
                depth[node.right as usize] = d;
                max = max.max(d);
            }
        }
        max
    }

    /// Index of the leaf a row lands in. `row[f]` must exist for every feature the tree uses.
    #[inline]
    pub fn leaf_of(&self, row: &[f32]) -> usize {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.is_leaf() {
                return i;
            }
            let v = row[node.feature() as usize];
            i = if v <= node.threshold {
                node.left as usize
            } else if v > node.threshold {
                node.right as usize
            } else if node.missing_left() {
                node.left as usize
            } else {
                node.right as usize
            };
        }
    }

    /// The leaf of every row of a row-major block (`n_features` values per row) into `leaves`;
    /// `active` is scratch space.
    ///
    /// Rows advance one level at a time, all unfinished rows per round, instead of one row
    /// walking to its leaf before the next starts: the rows' node loads are independent, so the
    /// processor overlaps their cache misses. Rows that reach a leaf leave the round, so the work
    /// is the sum of the rows' depths, not the deepest depth times the rows.
    pub fn leaves_of_block(
        &self,
        block: &[f32],
        n_features: usize,
        leaves: &mut [u32],
        active: &mut Vec<u32>,
    ) {
        leaves.iter_mut().for_each(|l| *l = 0);
        active.clear();
        active.extend(0..leaves.len() as u32);
        while !active.is_empty() {
            let mut kept = 0;
            for k in 0..active.len() {
                let r = active[k] as usize;
                let node = &self.nodes[leaves[r] as usize];
                if node.is_leaf() {
                    continue;
                }
                let v = block[r * n_features + node.feature() as usize];
                // Non-short-circuit operators and an indexed pick compile to branch-free code: a
                // mispredicted branch here would flush the other rows' loads in flight.
                let go_left = (v <= node.threshold) | (v.is_nan() & node.missing_left());
                leaves[r] = [node.right, node.left][go_left as usize];
                active[kept] = r as u32;
                kept += 1;
            }
            active.truncate(kept);
        }
    }

    /// The class fractions of a leaf node.
    #[inline]
    pub fn leaf_value(&self, leaf_node: usize) -> &[f32] {
        let c = self.n_classes as usize;
        let row = self.nodes[leaf_node].right as usize;
        &self.leaf_values[row * c..(row + 1) * c]
    }

    /// Impurity-based feature importances of this tree, normalised to sum to 1 (all zeros for a
    /// tree with no split), as scikit-learn's `DecisionTreeClassifier.feature_importances_`.
    pub fn feature_importances(&self, n_features: usize) -> Vec<f64> {
        let mut imp = vec![0.0f64; n_features];
        let s = &self.stats;
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_leaf() {
                continue;
            }
            let (l, r) = (node.left as usize, node.right as usize);
            let gain = s.weighted_n_samples[i] as f64 * s.impurity[i] as f64
                - s.weighted_n_samples[l] as f64 * s.impurity[l] as f64
                - s.weighted_n_samples[r] as f64 * s.impurity[r] as f64;
            imp[node.feature() as usize] += gain;
        }
        let total: f64 = imp.iter().sum();
        if total > 0.0 {
            for v in &mut imp {
                *v /= total;
            }
        }
        imp
    }

    /// Class fractions of every node (internal nodes too), `node_count * n_classes`, derived
    /// bottom-up from the leaves weighted by `weighted_n_samples`: exactly the class distribution
    /// of the training samples at each node. This is scikit-learn's `tree_.value`.
    pub fn node_values(&self) -> Vec<f64> {
        let c = self.n_classes as usize;
        let mut out = vec![0.0f64; self.nodes.len() * c];
        for i in (0..self.nodes.len()).rev() {
            let node = self.nodes[i];
            if node.is_leaf() {
                for (k, v) in self.leaf_value(i).iter().enumerate() {
                    out[i * c + k] = *v as f64;
                }
            } else {
                let (l, r) = (node.left as usize, node.right as usize);
                let wl = self.stats.weighted_n_samples[l] as f64;
                let wr = self.stats.weighted_n_samples[r] as f64;
                let w = wl + wr;
                for k in 0..c {
                    let v = if w > 0.0 {
                        (out[l * c + k] * wl + out[r * c + k] * wr) / w
                    } else {
                        0.0
                    };
                    out[i * c + k] = v;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_feature_and_missing_direction_in_one_word() {
        assert_eq!(std::mem::size_of::<Node>(), 16);
        for (feature, missing_left) in [(0, false), (0, true), (7, true), (MAX_FEATURES - 1, false)]
        {
            let mut node = Node::split(feature, 0.5, 1, 2, missing_left);
            assert_eq!(
                (node.feature(), node.missing_left()),
                (feature, missing_left)
            );
            node.set_feature(3);
            assert_eq!((node.feature(), node.missing_left()), (3, missing_left));
            node.set_missing_left(!missing_left);
            assert_eq!((node.feature(), node.missing_left()), (3, !missing_left));
        }
        let leaf = Node::leaf(4);
        assert_eq!(
            (leaf.feature(), leaf.missing_left(), leaf.right),
            (0, false, 4)
        );
    }
}
