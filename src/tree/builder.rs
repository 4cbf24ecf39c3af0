//! Growing one tree: depth-first, or best-first when `max_leaf_nodes` is set, as scikit-learn's
//! `DepthFirstTreeBuilder` and `BestFirstTreeBuilder` do, with the same stopping rules.
//!
//! All samples of the tree live in one buffer; a node owns a contiguous range of it, and a split
//! partitions that range in place, so growing a node allocates nothing per sample. Nodes are
//! recorded with their class weights while growing (pruning needs the values of internal
//! nodes); [`finish`] turns them into the compact [`Tree`].

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::binning::{BinnedMatrix, MISSING_BIN};
use super::histogram::Sample;
use super::limits::TreeLimits;
use super::model::{Node, NodeStats, Tree, LEAF};
use super::pruning::prune_cost_complexity;
use super::splitter::{NodeView, Split, Splitter};
use crate::rng::Rng;

/// Impurities at or below this are pure (scikit-learn uses the double epsilon too).
const EPSILON: f64 = f64::EPSILON;

/// A node while the tree grows: split fields plus statistics and bounds.
#[derive(Debug, Clone)]
pub(crate) struct RawNode {
    pub feature: u32,
    pub threshold: f32,
    /// Child indices; `LEAF` while the node is (or becomes) a leaf.
    pub left: u32,
    pub right: u32,
    pub missing_left: bool,
    pub impurity: f64,
    pub n_samples: u32,
    pub weight: f64,
    /// Monotonic bounds on the positive-class fraction.
    pub bounds: (f64, f64),
}

/// A node waiting to be split, with the split already chosen (or `None`: it will be a leaf).
struct Pending {
    node: u32,
    start: usize,
    end: usize,
    depth: usize,
    split: Option<Split>,
    /// Weighted impurity decrease of `split`, the best-first priority.
    improvement: f64,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Larger improvement first; among equals, the older node first (deterministic order).
    fn cmp(&self, other: &Self) -> Ordering {
        self.improvement
            .total_cmp(&other.improvement)
            .then_with(|| other.node.cmp(&self.node))
    }
}

/// Grows one tree on `samples` (each with a positive weight) of `data`.
pub struct TreeBuilder<'a> {
    data: &'a BinnedMatrix,
    limits: &'a TreeLimits,
    n_classes: usize,
    splitter: Splitter,
    nodes: Vec<RawNode>,
    /// Class weights of every node, `nodes.len() * n_classes`.
    values: Vec<f64>,
    total_weight: f64,
    min_weight_leaf: f64,
    /// Holds a node's right-going samples during a stable partition.
    scratch: Vec<Sample>,
    /// Class count of each output, their sum `n_classes`: `[n_classes]` for one output. A
    /// multi-output tree is given each row once per output (same row and weight, the class
    /// shifted into that output's segment), so a node's class weights are every output's side
    /// by side, each summing to the node's weight.
    outputs: Vec<u32>,
}

impl<'a> TreeBuilder<'a> {
    /// A builder for trees over `data` with `n_classes` classes.
    pub fn new(data: &'a BinnedMatrix, n_classes: usize, limits: &'a TreeLimits) -> Self {
        Self {
            data,
            limits,
            n_classes,
            splitter: Splitter::new(data.n_features, limits.max_features, n_classes),
            scratch: Vec::new(),
            nodes: Vec::new(),
            values: Vec::new(),
            total_weight: 0.0,
            min_weight_leaf: 0.0,
            outputs: vec![n_classes as u32],
        }
    }

    /// A builder for a multi-output tree: `outputs[j]` classes for output `j`, summing to the
    /// builder's `n_classes`, with every row given once per output (see the `outputs` field).
    pub fn with_outputs(mut self, outputs: &[u32]) -> Self {
        if outputs.len() > 1 {
            self.outputs = outputs.to_vec();
            self.splitter = self.splitter.with_outputs(outputs.len() as u32);
        }
        self
    }

    /// Number of outputs: every row appears this many times among the samples.
    fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// A weight summed over a node's class weights (every output's), per row.
    fn per_row(&self, summed: f64) -> f64 {
        summed / self.n_outputs() as f64
    }

    /// Grows a tree. `samples` is reordered in place.
    pub fn grow(mut self, samples: &mut [Sample], rng: &mut Rng) -> Tree {
        let c = self.n_classes;
        let mut root_weights = vec![0.0f64; c];
        for s in samples.iter() {
            root_weights[s.class as usize] += s.weight;
        }
        self.total_weight = self.per_row(root_weights.iter().sum());
        self.min_weight_leaf = self.limits.min_weight_fraction_leaf * self.total_weight;
        let root = self.add_node(
            &root_weights,
            (samples.len() / self.n_outputs()) as u32,
            (f64::NEG_INFINITY, f64::INFINITY),
        );
        let first = self.plan(root, 0, samples.len(), 0, samples, rng);
        match self.limits.max_leaf_nodes {
            None => {
                let mut stack = vec![first];
                while let Some(p) = stack.pop() {
                    if let Some((l, r)) = self.split(p, samples, rng) {
                        stack.push(r);
                        stack.push(l);
                    }
                }
            }
            Some(max_leaves) => {
                let mut heap = BinaryHeap::from([first]);
                let mut splits_left = max_leaves - 1;
                while let Some(p) = heap.pop() {
                    if splits_left == 0 {
                        continue;
                    }
                    if let Some((l, r)) = self.split(p, samples, rng) {
                        splits_left -= 1;
                        heap.push(l);
                        heap.push(r);
                    }
                }
            }
        }
        if self.limits.ccp_alpha > 0.0 {
            prune_cost_complexity(&mut self.nodes, self.total_weight, self.limits.ccp_alpha);
        }
        finish(&self.nodes, &self.values, &self.outputs)
    }

    /// Records a node and its class weights; returns its index.
    fn add_node(&mut self, class_weights: &[f64], n_samples: u32, bounds: (f64, f64)) -> u32 {
        let weight = self.per_row(class_weights.iter().sum());
        let impurity =
            self.limits
                .criterion
                .impurity_of_outputs(class_weights, weight, &self.outputs);
        self.nodes.push(RawNode {
            feature: 0,
            threshold: 0.0,
            left: LEAF,
            right: LEAF,
            missing_left: false,
            impurity,
            n_samples,
            weight,
            bounds,
        });
        self.values.extend_from_slice(class_weights);
        (self.nodes.len() - 1) as u32
    }

    /// Decides whether a node is split and how (scikit-learn's stopping rules, in its order).
    fn plan(
        &mut self,
        node: u32,
        start: usize,
        end: usize,
        depth: usize,
        samples: &[Sample],
        rng: &mut Rng,
    ) -> Pending {
        let c = self.n_classes;
        let raw = &self.nodes[node as usize];
        let (n, w, impurity, bounds) =
            (raw.n_samples as usize, raw.weight, raw.impurity, raw.bounds);
        let l = self.limits;
        let is_leaf = depth >= l.max_depth
            || n < l.min_samples_split
            || n < l.min_samples_leaf.saturating_mul(2)
            || w < 2.0 * self.min_weight_leaf
            || impurity <= EPSILON;
        let mut pending = Pending {
            node,
            start,
            end,
            depth,
            split: None,
            improvement: 0.0,
        };
        if is_leaf {
            return pending;
        }
        let class_weights = self.values[node as usize * c..(node as usize + 1) * c].to_vec();
        let view = NodeView {
            samples: &samples[start..end],
            class_weights: &class_weights,
            weight: w,
            bounds,
        };
        let Some(split) = self
            .splitter
            .best_split(self.data, &view, l, self.min_weight_leaf, rng)
        else {
            return pending;
        };
        let w_left = self.per_row(split.left_weights.iter().sum());
        let right: Vec<f64> = class_weights
            .iter()
            .zip(&split.left_weights)
            .map(|(t, l)| (t - l).max(0.0))
            .collect();
        let w_right = w - w_left;
        let imp_left = l
            .criterion
            .impurity_of_outputs(&split.left_weights, w_left, &self.outputs);
        let imp_right = l
            .criterion
            .impurity_of_outputs(&right, w_right, &self.outputs);
        let improvement = (w / self.total_weight)
            * (impurity - (w_right / w) * imp_right - (w_left / w) * imp_left);
        if improvement + EPSILON < l.min_impurity_decrease {
            return pending;
        }
        pending.split = Some(split);
        pending.improvement = improvement;
        pending
    }

    /// Applies a planned split: partitions the samples, records both children and plans them.
    fn split(
        &mut self,
        p: Pending,
        samples: &mut [Sample],
        rng: &mut Rng,
    ) -> Option<(Pending, Pending)> {
        let split = p.split?;
        let c = self.n_classes;
        let mid = partition(
            &mut samples[p.start..p.end],
            &mut self.scratch,
            self.data,
            &split,
        ) + p.start;
        let parent = p.node as usize;
        let left_weights = split.left_weights;
        let right_weights: Vec<f64> = self.values[parent * c..(parent + 1) * c]
            .iter()
            .zip(&left_weights)
            .map(|(t, l)| (t - l).max(0.0))
            .collect();
        let (left_bounds, right_bounds) =
            self.child_bounds(parent, split.feature, &left_weights, &right_weights);
        let k = self.n_outputs();
        let left = self.add_node(&left_weights, ((mid - p.start) / k) as u32, left_bounds);
        let right = self.add_node(&right_weights, ((p.end - mid) / k) as u32, right_bounds);
        let node = &mut self.nodes[parent];
        node.feature = split.feature;
        node.threshold = split.threshold;
        node.missing_left = split.missing_left;
        node.left = left;
        node.right = right;
        let depth = p.depth + 1;
        let l = self.plan(left, p.start, mid, depth, samples, rng);
        let r = self.plan(right, mid, p.end, depth, samples, rng);
        Some((l, r))
    }

    /// Children's monotonic bounds: a constrained feature splits the parent's range at the
    /// midpoint of the children's positive-class fractions (scikit-learn's rule).
    fn child_bounds(
        &self,
        parent: usize,
        feature: u32,
        left: &[f64],
        right: &[f64],
    ) -> ((f64, f64), (f64, f64)) {
        let bounds = self.nodes[parent].bounds;
        let cst = self
            .limits
            .monotonic_cst
            .get(feature as usize)
            .copied()
            .unwrap_or(0);
        if cst == 0 {
            return (bounds, bounds);
        }
        let vl = left[1] / left.iter().sum::<f64>();
        let vr = right[1] / right.iter().sum::<f64>();
        let middle = (vl + vr) / 2.0;
        if cst > 0 {
            ((bounds.0, middle), (middle, bounds.1))
        } else {
            ((middle, bounds.1), (bounds.0, middle))
        }
    }
}

/// Moves the samples that go left to the front, keeping both sides in their original (row)
/// order so later passes read the code matrix in ascending addresses; returns how many go left.
fn partition(
    samples: &mut [Sample],
    scratch: &mut Vec<Sample>,
    data: &BinnedMatrix,
    split: &Split,
) -> usize {
    let feature = split.feature as usize;
    scratch.clear();
    let mut kept = 0usize;
    for i in 0..samples.len() {
        let s = samples[i];
        let code = data.code(s.row as usize, feature);
        let left = if code == MISSING_BIN {
            split.missing_left
        } else {
            code <= split.split_bin
        };
        if left {
            samples[kept] = s;
            kept += 1;
        } else {
            scratch.push(s);
        }
    }
    samples[kept..].copy_from_slice(scratch);
    kept
}

/// Turns the grown (and possibly pruned) nodes into a compact tree in depth-first preorder,
/// dropping nodes below pruned subtrees and normalising leaf values to class fractions (each
/// output's segment of a leaf row on its own).
fn finish(nodes: &[RawNode], values: &[f64], outputs: &[u32]) -> Tree {
    let c: usize = outputs.iter().map(|&k| k as usize).sum();
    let mut out_nodes: Vec<Node> = Vec::with_capacity(nodes.len());
    let mut stats = NodeStats::default();
    let mut leaf_values: Vec<f32> = Vec::new();
    // (raw index, slot in out_nodes whose child pointer must be set: (parent, is_left))
    let mut stack: Vec<(usize, Option<(usize, bool)>)> = vec![(0, None)];
    while let Some((raw, parent)) = stack.pop() {
        let id = out_nodes.len();
        if let Some((p, is_left)) = parent {
            if is_left {
                out_nodes[p].left = id as u32;
            } else {
                out_nodes[p].right = id as u32;
            }
        }
        let r = &nodes[raw];
        stats.impurity.push(r.impurity as f32);
        stats.n_samples.push(r.n_samples);
        stats.weighted_n_samples.push(r.weight as f32);
        if r.left == LEAF {
            let row = (leaf_values.len() / c) as u32;
            let mut start = raw * c;
            for &k in outputs {
                let end = start + k as usize;
                leaf_values.extend(leaf_fractions(&values[start..end], r.bounds));
                start = end;
            }
            out_nodes.push(Node::leaf(row));
        } else {
            // Children are filled in when they are emitted.
            out_nodes.push(Node::split(
                r.feature,
                r.threshold,
                LEAF,
                LEAF,
                r.missing_left,
            ));
            stack.push((r.right as usize, Some((id, false))));
            stack.push((r.left as usize, Some((id, true))));
        }
    }
    Tree {
        n_classes: c as u32,
        nodes: out_nodes,
        leaf_values,
        stats,
    }
}

/// A leaf's class fractions, clipped to its monotonic bounds (binary case) as scikit-learn does.
fn leaf_fractions(weights: &[f64], bounds: (f64, f64)) -> Vec<f32> {
    let total: f64 = weights.iter().sum();
    // A tree whose every drawn sample weighs 0 knows nothing: it votes uniformly.
    let uniform = 1.0 / weights.len() as f64;
    let mut f: Vec<f64> = weights
        .iter()
        .map(|w| if total > 0.0 { w / total } else { uniform })
        .collect();
    if f.len() == 2 && (bounds.0 > f64::NEG_INFINITY || bounds.1 < f64::INFINITY) {
        f[1] = f[1].clamp(bounds.0, bounds.1);
        f[0] = 1.0 - f[1];
    }
    f.into_iter().map(|v| v as f32).collect()
}
