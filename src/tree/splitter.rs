//! The best split of one node: draw candidate features at random, sweep each one's histogram.
//!
//! Candidate features are drawn per split without replacement (Fisher-Yates), as scikit-learn's
//! `BestSplitter` does: `max_features` draws, where a feature found constant in the node still
//! counts as drawn, and drawing goes on past `max_features` only while every feature drawn so far
//! was constant. When values are missing, each cut is tried with the missing samples on the left
//! and on the right, and "all present values left, missing right" is a candidate of its own.
//! The first `max_features` draws are histogrammed together in one pass over the node.

use super::binning::BinnedMatrix;
use super::histogram::{NodeHistograms, Sample};
use super::limits::TreeLimits;
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
    histograms: NodeHistograms,
    /// Permutation pool of feature indices for Fisher-Yates draws.
    features: Vec<u32>,
    /// Present bins of the histogram being swept.
    bins: [u8; 256],
    left: Vec<f64>,
    right: Vec<f64>,
    /// Number of outputs whose class weights lie side by side in the histograms: a sample of a
    /// multi-output tree is stored once per output, so counts and summed weights are this many
    /// times the node's.
    n_outputs: u32,
}

/// The best cut seen so far, kept small: the left child's weights are recomputed once, for the
/// winner, instead of being copied at every improvement.
#[derive(Debug, Clone, Copy)]
struct BestCut {
    proxy: f64,
    slot: usize,
    split_bin: u8,
    /// The next present bin (the cut lies between the two), `None` for "missing only right".
    next_bin: Option<u8>,
    /// Missing values went left during the sweep that found this cut.
    missing_left: bool,
    has_missing: bool,
    n_left: u32,
    n_right: u32,
}

/// Per-search constants.
struct SearchLimits<'a> {
    limits: &'a TreeLimits,
    min_weight_leaf: f64,
}

impl Splitter {
    /// A splitter for `n_features` features, `max_features` draws per node and `n_classes`
    /// classes.
    pub fn new(n_features: usize, max_features: usize, n_classes: usize) -> Self {
        Self {
            histograms: NodeHistograms::new(max_features.min(n_features), n_classes),
            features: (0..n_features as u32).collect(),
            bins: [0; 256],
            left: vec![0.0; n_classes],
            right: vec![0.0; n_classes],
            n_outputs: 1,
        }
    }

    /// The splitter for a tree of `n_outputs` outputs (see [`Splitter::n_outputs`]'s field).
    pub fn with_outputs(mut self, n_outputs: u32) -> Self {
        self.n_outputs = n_outputs.max(1);
        self
    }

    /// Moves a random not-yet-drawn feature to position `drawn` of the pool.
    fn draw(&mut self, drawn: usize, rng: &mut Rng) {
        let j = drawn + rng.below((self.features.len() - drawn) as u64) as usize;
        self.features.swap(drawn, j);
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
        let m = limits.max_features.min(n_features);
        for d in 0..m {
            self.draw(d, rng);
        }
        self.histograms
            .build(data.codes(), n_features, &self.features[..m], node.samples);
        let mut best: Option<BestCut> = None;
        let mut found_non_constant = false;
        for slot in 0..m {
            if !self.histograms.built()[slot].is_constant() {
                found_non_constant = true;
                self.sweep_feature(slot, node, &search, &mut best);
            }
        }
        // Every drawn feature was constant here: draw on, one at a time, until one is not.
        let mut drawn = m;
        while !found_non_constant && drawn < n_features {
            self.draw(drawn, rng);
            self.histograms.build(
                data.codes(),
                n_features,
                &self.features[drawn..drawn + 1],
                node.samples,
            );
            drawn += 1;
            if !self.histograms.built()[0].is_constant() {
                found_non_constant = true;
                self.sweep_feature(0, node, &search, &mut best);
            }
        }
        best.map(|b| self.materialise(b, data))
    }

    /// Sweeps one feature's histogram with missing values on each side in turn.
    fn sweep_feature(
        &mut self,
        slot: usize,
        node: &NodeView<'_>,
        search: &SearchLimits<'_>,
        best: &mut Option<BestCut>,
    ) {
        let h = &self.histograms.built()[slot];
        let k = h.present_bins(&mut self.bins);
        let feature = h.feature as usize;
        if h.missing_count() > 0 {
            self.sweep(slot, k, feature, node, search, true, best);
        }
        self.sweep(slot, k, feature, node, search, false, best);
    }

    /// Tries every cut between present bins with missing values on one side.
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        &mut self,
        slot: usize,
        k: usize,
        feature: usize,
        node: &NodeView<'_>,
        search: &SearchLimits<'_>,
        missing_left: bool,
        best: &mut Option<BestCut>,
    ) {
        let h = &self.histograms.built()[slot];
        let limits = search.limits;
        let n_total = node.samples.len() as u32;
        let has_missing = h.missing_count() > 0;
        let crit = limits.criterion;
        let mut n_left = 0u32;
        let mut w_left = 0.0f64;
        if missing_left {
            self.left.copy_from_slice(h.missing_weights());
            n_left = h.missing_count();
            w_left = self.left.iter().sum();
        } else {
            self.left.iter_mut().for_each(|v| *v = 0.0);
        }
        for ((r, t), l) in self
            .right
            .iter_mut()
            .zip(node.class_weights)
            .zip(&self.left)
        {
            *r = (t - l).max(0.0);
        }
        let mut sum_left: f64 = self.left.iter().map(|&w| crit.term(w)).sum();
        let mut sum_right: f64 = self.right.iter().map(|&w| crit.term(w)).sum();
        // With missing values on the right, cutting after the last present bin is a real split.
        let cuts = if has_missing && !missing_left {
            k
        } else {
            k - 1
        };
        // Every row is stored once per output: counts and class weights are that many times
        // the rows' (exact for one output: scaling by 1 changes nothing).
        let outputs = self.n_outputs;
        let per_output = outputs as f64;
        let min_leaf = (limits.min_samples_leaf as u32).saturating_mul(outputs);
        let cst = limits.monotonic_cst.get(feature).copied().unwrap_or(0);
        for j in 0..cuts {
            let b = self.bins[j];
            let mut move_left = |c: usize, w: f64| {
                let l = self.left[c] + w;
                let r = (self.right[c] - w).max(0.0);
                sum_left += crit.term(l) - crit.term(self.left[c]);
                sum_right += crit.term(r) - crit.term(self.right[c]);
                self.left[c] = l;
                self.right[c] = r;
                w_left += w;
            };
            match h.single(b) {
                Some((c, w)) => move_left(c, w),
                None => {
                    for (c, &w) in h.weights(b).iter().enumerate() {
                        if w != 0.0 {
                            move_left(c, w);
                        }
                    }
                }
            }
            n_left += h.count(b);
            let n_right = n_total - n_left;
            let w_left_rows = w_left / per_output;
            let w_right = node.weight - w_left_rows;
            if n_left < min_leaf || w_left_rows < search.min_weight_leaf {
                continue;
            }
            if n_right < min_leaf || n_right == 0 || w_right < search.min_weight_leaf {
                break;
            }
            if cst != 0
                && !monotonic_ok(
                    cst,
                    &self.left,
                    w_left_rows,
                    &self.right,
                    w_right,
                    node.bounds,
                )
            {
                continue;
            }
            let proxy =
                crit.proxy_of_outputs(sum_left, w_left_rows, sum_right, w_right, per_output);
            if best.is_none_or(|b| proxy > b.proxy) {
                *best = Some(BestCut {
                    proxy,
                    slot,
                    split_bin: b,
                    next_bin: (j + 1 < k).then(|| self.bins[j + 1]),
                    missing_left,
                    has_missing,
                    n_left,
                    n_right,
                });
            }
        }
    }

    /// Turns the winning cut into a [`Split`], recomputing the left child's class weights.
    fn materialise(&self, cut: BestCut, data: &BinnedMatrix) -> Split {
        let h = &self.histograms.built()[cut.slot];
        let mut left = vec![0.0f64; self.left.len()];
        let mut bins = [0u8; 256];
        let k = h.present_bins(&mut bins);
        for &b in bins[..k].iter().take_while(|&&b| b <= cut.split_bin) {
            for (l, w) in left.iter_mut().zip(h.weights(b)) {
                *l += w;
            }
        }
        if cut.has_missing && cut.missing_left {
            for (l, w) in left.iter_mut().zip(h.missing_weights()) {
                *l += w;
            }
        }
        let feature_bins = &data.bins[h.feature as usize];
        let threshold = match cut.next_bin {
            Some(next) => feature_bins.threshold_between(cut.split_bin, next),
            None => f32::INFINITY,
        };
        Split {
            feature: h.feature,
            threshold,
            split_bin: cut.split_bin,
            // Nothing was missing here: future missing values go to the bigger child.
            missing_left: if cut.has_missing {
                cut.missing_left
            } else {
                cut.n_left > cut.n_right
            },
            proxy: cut.proxy,
            left_weights: left,
            n_left: cut.n_left,
        }
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
