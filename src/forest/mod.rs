//! The random forest: an ensemble of [`Tree`]s, each grown on a bootstrap sample with a fresh
//! random draw of candidate features at every split (Breiman's forest, as scikit-learn builds it).
//!
//! - [`params`]: hyperparameters and their resolution.
//! - [`fit`]: parallel training, class weights, out-of-bag estimates.
//! - [`from_nodes`]: trees and forests from another library's node arrays (scikit-learn's).
//! - [`histogram`]: each feature's training histogram, from the fit's bins (for drift).
//! - [`merge`]: the tree shares of a distributed fit back in order, and merging forests.
//! - [`outputs`]: multi-output forests: per-output prediction and single-output refusals.
//! - [`compiled`]: a prediction-only layout for large batches.
//! - [`predict`]: blocked batch prediction, leaf indices, the single-row path.
//! - [`predictor`]: the serving handle: plain walk for small batches, compiled layout (cached)
//!   for large ones.
//! - [`sampling`]: bootstrap draws, uniform or weighted.
//! - [`progress`]: the trees-built counter behind `verbose` and progress bars.
//! - [`threads`]: the cached rayon pools behind `n_jobs`.
//! - [`linfa_impl`]: linfa's `Fit` and `PredictInplace`.

pub mod compiled;
pub mod fit;
pub mod from_nodes;
pub mod histogram;
mod layout;
pub mod linfa_impl;
pub mod merge;
pub mod outputs;
pub mod params;
pub mod predict;
pub mod predictor;
pub mod progress;
pub mod sampling;
pub mod threads;

use serde::{Deserialize, Serialize};

use crate::tree::Tree;
pub use histogram::TrainingHistogram;
pub use params::{ClassWeight, Criterion, ForestParams, MaxFeatures, SizeSpec};
pub use predictor::{Predictor, COMPILED_MIN_ROWS};

/// Out-of-bag estimates, recorded when `oob_score` is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OobEstimate {
    /// Accuracy of the out-of-bag predictions (with several outputs, the fraction of rows
    /// whose every output is right: scikit-learn's subset accuracy).
    pub score: f64,
    /// Number of training samples (rows of `decision_function`).
    pub n_samples: u64,
    /// `n_samples * n_classes` mean out-of-bag class probabilities (every output's side by side
    /// for a multi-output forest); rows never out of bag are 0.
    pub decision_function: Vec<f64>,
}

/// Facts about the fit that produced a forest, recorded for lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitInfo {
    /// BLAKE3 fingerprint of the training features, labels and weights (see [`crate::fingerprint`]).
    pub training_fingerprint: String,
    /// Number of training samples.
    pub n_samples: u64,
    /// Wall-clock seconds the fit took.
    pub fit_seconds: f64,
}

/// A fitted random forest classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// Number of input features.
    pub n_features: u32,
    /// Number of classes; class codes are `0..n_classes`. For a multi-output forest, the sum
    /// of every output's class count: leaf rows hold each output's fractions side by side.
    pub n_classes: u32,
    /// Class count of each output of a multi-output forest (at least two outputs, summing to
    /// `n_classes`); empty for a single output, the common case.
    pub output_classes: Vec<u32>,
    /// The hyperparameters the forest was trained with.
    pub params: ForestParams,
    /// The trees, in index order (tree `i` was seeded from `(random_state, i)`).
    pub trees: Vec<Tree>,
    /// Out-of-bag estimates, if requested.
    pub oob: Option<OobEstimate>,
    /// Lineage facts about the fit.
    pub fit_info: FitInfo,
    /// Each feature's histogram over the rows of the (latest) fit, from its bins: the
    /// reference drift is measured against. `None` for forests converted from another library,
    /// merged from parts with different histograms, or read from a file that has none.
    pub training_histogram: Option<TrainingHistogram>,
}

impl Forest {
    /// Class count of each output: `[n_classes]` for a single-output forest.
    pub fn outputs(&self) -> Vec<u32> {
        if self.output_classes.is_empty() {
            vec![self.n_classes]
        } else {
            self.output_classes.clone()
        }
    }

    /// Whether the forest predicts several outputs at once.
    pub fn is_multi_output(&self) -> bool {
        self.output_classes.len() > 1
    }

    /// Impurity-based feature importances: each tree's normalised importances averaged over the
    /// trees that split at least once, then normalised again (scikit-learn's definition).
    pub fn feature_importances(&self) -> Vec<f64> {
        let n = self.n_features as usize;
        let mut sum = vec![0.0f64; n];
        let mut used = 0usize;
        for tree in &self.trees {
            if tree.node_count() > 1 {
                used += 1;
                for (s, v) in sum.iter_mut().zip(tree.feature_importances(n)) {
                    *s += v;
                }
            }
        }
        if used == 0 {
            return sum;
        }
        let total: f64 = sum.iter().sum();
        if total > 0.0 {
            for s in &mut sum {
                *s /= total;
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests;
