//! The best split of one node: draw candidate features at random, sweep each one's histogram.
//!
//! Candidate features are drawn per split without replacement (Fisher-Yates), as scikit-learn's
//! `BestSplitter` does: `max_features` draws, where a feature found constant in the node still
//! counts as drawn, and drawing goes on past `max_features` only while every feature drawn so far
//! was constant. When values are missing, each cut is tried with the missing samples on the left
//! and on the right, and "all present values left, missing right" is a candidate of its own.

use super::binning::{BinnedMatrix, FeatureBins};
use super::histogram::{Histogram, Sample};
use crate::forest::params::TreeLimits;
use crate::rng::Rng;

/// The node being split, as the splitter needs to see it.
pub struct NodeView<'a> {
    /// The node's samples.
    pub samples: &'a [Sample],
    /// Class weights of the node.
    pub class_weights: &'a [f64],
    /// Total weight of the node.
    pub weight: f64,
    /// Monotonic bounds on the positive-class fraction (`-inf..inf` when unconstrained).
    pub bounds: (f64, f64),
}

/// The chosen split of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Feature tested.
    pub feature: u32,
    /// Go left when `x <= threshold`.
    pub threshold: f32,
    /// Non-missing samples with a bin code `<= split_bin` go left.
    pub split_bin: u8,
    /// Where missing values go.
    pub missing_left: bool,
    /// Proxy score of the split (larger is better).
    pub proxy: f64,
    /// Class weights of the left child.
    pub left_weights: Vec<f64>,
    /// Number of samples in the left child.
    pub n_left: u32,
}

/// Reusable state for split search within one tree.
pub struct Splitter {
    n_classes: usize,
    histogram: Histogram,
    features: Vec<u32>,
    left: Vec<f64>,
    right: Vec<f64>,
}

/// Per-search constants derived once per node.
struct SearchLimits<'a> {
    limits: &'a TreeLimits,
    min_weight_leaf: f64,
}

impl Splitter {
    /// A splitter for `n_features` features and `n_classes` classes.
    pub fn new(n_features: usize, n_classes: usize) -> Self {
        Self {
            n_classes,
            histogram: Histogram::new(n_classes),
            features: (0..n_features as u32).collect(),
            left: vec![0.0; n_classes],
            right: vec![0.0; n_classes],
        }
    }

    /// The best admissible split of `node`, or `None` when no drawn feature admits one.
    pub fn best_split(
        &mut self,
        data: &BinnedMatrix,
        node: &NodeView<'_>,
        limits: &TreeLimits,
        min_weight_leaf: f64,
        rng: &mut Rng,
    ) -> Option<Split> {
        let search = SearchLimits {
            limits,
            min_weight_leaf,
        };
        let n_features = self.features.len();
        let mut best: Option<Split> = None;
        let mut visited = 0usize;
        let mut found_non_constant = false;
        let mut drawn = 0usize;
        while drawn < n_features && (visited < limits.max_features || !found_non_constant) {
            let j = drawn + rng.below((n_features - drawn) as u64) as usize;
            self.features.swap(drawn, j);
            let feature = self.features[drawn] as usize;
            drawn += 1;
            visited += 1;
            self.histogram.build(data.column(feature), node.samples);
            if self.histogram.is_constant() {
                continue;
            }
            found_non_constant = true;
            let bins = &data.bins[feature];
            if self.histogram.missing_count > 0 {
                self.sweep(feature, bins, node, &search, true, &mut best);
            }
            self.sweep(feature, bins, node, &search, false, &mut best);
        }
        best
    }

    /// Tries every cut of the current histogram with missing values on one side.
    fn sweep(
        &mut self,
        feature: usize,
        bins: &FeatureBins,
        node: &NodeView<'_>,
        search: &SearchLimits<'_>,
        missing_left: bool,
        best: &mut Option<Split>,
    ) {
        let h = &self.histogram;
        let limits = search.limits;
        let n_total = node.samples.len() as u32;
        let k = h.n_bins();
        let has_missing = h.missing_count > 0;
        let (mut n_left, mut w_left) = if missing_left {
            self.left.copy_from_slice(&h.missing_weights);
            (h.missing_count, h.missing_weight)
        } else {
            self.left.iter_mut().for_each(|v| *v = 0.0);
            (0u32, 0.0f64)
        };
        // With missing values on the right, cutting after the last present bin is a real split.
        let cuts = if has_missing && !missing_left {
            k
        } else {
            k - 1
        };
        let min_leaf = limits.min_samples_leaf as u32;
        let cst = limits.monotonic_cst.get(feature).copied().unwrap_or(0);
        for j in 0..cuts {
            for (l, w) in self.left.iter_mut().zip(h.bin_weights(j)) {
                *l += w;
            }
            n_left += h.counts[j];
            w_left += h.bin_weight[j];
            let n_right = n_total - n_left;
            let w_right = node.weight - w_left;
            if n_left < min_leaf || w_left < search.min_weight_leaf {
                continue;
            }
            if n_right < min_leaf || w_right < search.min_weight_leaf || n_right == 0 {
                break;
            }
            for ((r, t), l) in self
                .right
                .iter_mut()
                .zip(node.class_weights)
                .zip(&self.left)
            {
                *r = (t - l).max(0.0);
            }
            if cst != 0 && !monotonic_ok(cst, &self.left, w_left, &self.right, w_right, node.bounds)
            {
                continue;
            }
            let proxy = limits
                .criterion
                .proxy(&self.left, w_left, &self.right, w_right);
            if best.as_ref().is_none_or(|b| proxy > b.proxy) {
                let threshold = if j + 1 < k {
                    bins.threshold_between(h.bins[j], h.bins[j + 1])
                } else {
                    f32::INFINITY
                };
                let missing_left = if has_missing {
                    missing_left
                } else {
                    // Nothing was missing here: send future missing values to the bigger child.
                    n_left > n_right
                };
                *best = Some(Split {
                    feature: feature as u32,
                    threshold,
                    split_bin: h.bins[j],
                    missing_left,
                    proxy,
                    left_weights: self.left.clone(),
                    n_left,
                });
            }
        }
        debug_assert_eq!(self.left.len(), self.n_classes);
    }
}

/// Whether a split respects a monotonic constraint on the positive-class fraction (binary
/// classification): left and right values ordered as `cst` asks and inside the node's bounds.
fn monotonic_ok(
    cst: i8,
    left: &[f64],
    w_left: f64,
    right: &[f64],
    w_right: f64,
    bounds: (f64, f64),
) -> bool {
    let vl = left[1] / w_left;
    let vr = right[1] / w_right;
    let (lo, hi) = bounds;
    vl >= lo && vr >= lo && vl <= hi && vr <= hi && (vl - vr) * cst as f64 <= 0.0
}
