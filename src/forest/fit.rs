//! Training: validate, bin once, grow every tree in parallel, then out-of-bag estimates.
//!
//! Tree `i` draws all of its randomness (bootstrap sample, then feature draws) from one
//! generator seeded by `(random_state, i)`, so a forest is bit-identical for every `n_jobs`
//! and warm-starting more trees gives the same trees as fitting them all at once.

use std::time::Instant;

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::params::{ClassWeight, ForestParams, TreeLimits};
use super::predict::argmax;
use super::progress::Progress;
use super::sampling::{bootstrap_counts, WeightedSampler};
use super::threads::run_in_pool;
use super::{FitInfo, Forest, OobEstimate};
use crate::error::{Result, WoodlotError};
use crate::fingerprint::Fingerprinter;
use crate::rng::{tree_seed, Rng};
use crate::tree::{BinnedMatrix, Sample, Tree, TreeBuilder};
use crate::value::FeatureValue;

/// Everything a tree needs from the training set, shared read-only by all trees.
struct TrainingSet<'a> {
    binned: BinnedMatrix,
    y: &'a [u32],
    n_classes: usize,
    /// Sample weight x class weight (for every class weighting but `balanced_subsample`).
    base_weight: &'a [f64],
    /// With bootstrap and unequal base weights: draws rows in proportion to them.
    sampler: Option<&'a WeightedSampler>,
    limits: TreeLimits,
}

impl Forest {
    /// Fits a forest of `params.n_estimators` trees on `x` (`n_samples x n_features`) and class
    /// codes `y` in `0..n_classes`, with optional non-negative `sample_weight`, on `n_threads`
    /// threads.
    pub fn fit<T: FeatureValue>(
        x: ArrayView2<'_, T>,
        y: &[u32],
        n_classes: usize,
        sample_weight: Option<&[f64]>,
        params: &ForestParams,
        n_threads: usize,
    ) -> Result<Forest> {
        grow_forest(
            Vec::new(),
            x,
            y,
            n_classes,
            sample_weight,
            params,
            n_threads,
            None,
        )
    }

    /// [`Forest::fit`] (no `init`) or [`Forest::fit_more`] (warm start from `init`), bumping
    /// `progress` once per finished tree, so another thread can report the fit's progress.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_with_progress<T: FeatureValue>(
        init: Option<&Forest>,
        x: ArrayView2<'_, T>,
        y: &[u32],
        n_classes: usize,
        sample_weight: Option<&[f64]>,
        params: &ForestParams,
        n_threads: usize,
        progress: &Progress,
    ) -> Result<Forest> {
        match init {
            None => grow_forest(
                Vec::new(),
                x,
                y,
                n_classes,
                sample_weight,
                params,
                n_threads,
                Some(progress),
            ),
            Some(forest) => {
                forest.grow_more(x, y, sample_weight, params, n_threads, Some(progress))
            }
        }
    }

    /// Warm start: keeps this forest's trees and grows trees `len(trees)..params.n_estimators`
    /// on the given data (scikit-learn's `warm_start=True`).
    pub fn fit_more<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        y: &[u32],
        sample_weight: Option<&[f64]>,
        params: &ForestParams,
        n_threads: usize,
    ) -> Result<Forest> {
        self.grow_more(x, y, sample_weight, params, n_threads, None)
    }

    fn grow_more<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        y: &[u32],
        sample_weight: Option<&[f64]>,
        params: &ForestParams,
        n_threads: usize,
        progress: Option<&Progress>,
    ) -> Result<Forest> {
        let have = self.trees.len();
        if params.n_estimators < have {
            return Err(WoodlotError::param(
                "n_estimators",
                format!(
                    "n_estimators={} must be larger or equal to len(estimators_)={have} when warm_start==True",
                    params.n_estimators
                ),
            ));
        }
        if x.ncols() != self.n_features as usize {
            return Err(WoodlotError::input(format!(
                "X has {} features, but the forest being warm-started was fitted with {} features",
                x.ncols(),
                self.n_features
            )));
        }
        grow_forest(
            self.trees.clone(),
            x,
            y,
            self.n_classes as usize,
            sample_weight,
            params,
            n_threads,
            progress,
        )
    }
}

/// Checks the training inputs, with messages that say what to do.
fn validate_inputs<T: FeatureValue>(
    x: &ArrayView2<'_, T>,
    y: &[u32],
    n_classes: usize,
    sample_weight: Option<&[f64]>,
) -> Result<()> {
    let (n, f) = x.dim();
    if n == 0 {
        return Err(WoodlotError::input(
            "Found array with 0 sample(s) (shape=(0, _)) while a minimum of 1 is required.",
        ));
    }
    if f == 0 {
        return Err(WoodlotError::input(format!(
            "Found array with 0 feature(s) (shape=({n}, 0)) while a minimum of 1 is required."
        )));
    }
    if n > u32::MAX as usize {
        return Err(WoodlotError::input(
            "more than 4,294,967,295 samples are not supported",
        ));
    }
    if y.len() != n {
        return Err(WoodlotError::input(format!(
            "Found input variables with inconsistent numbers of samples: [{n}, {}]",
            y.len()
        )));
    }
    if n_classes == 0 {
        return Err(WoodlotError::input("n_classes must be at least 1"));
    }
    if let Some(bad) = y.iter().find(|&&c| c as usize >= n_classes) {
        return Err(WoodlotError::input(format!(
            "class code {bad} is out of range for {n_classes} classes"
        )));
    }
    if let Some(w) = sample_weight {
        if w.len() != n {
            return Err(WoodlotError::input(format!(
                "sample_weight.shape == ({},), expected ({n},)!",
                w.len()
            )));
        }
        if w.iter().any(|v| !v.is_finite()) {
            return Err(WoodlotError::input(
                "sample_weight contains NaN or infinity",
            ));
        }
        if w.iter().any(|&v| v < 0.0) {
            return Err(WoodlotError::input(
                "Negative values in data passed to `sample_weight`",
            ));
        }
        if w.iter().all(|&v| v == 0.0) {
            return Err(WoodlotError::input(
                "Sample weights must contain at least one non-zero number.",
            ));
        }
    }
    Ok(())
}

/// Fits trees `trees.len()..params.n_estimators` and appends them to `trees`.
#[allow(clippy::too_many_arguments)]
fn grow_forest<T: FeatureValue>(
    mut trees: Vec<Tree>,
    x: ArrayView2<'_, T>,
    y: &[u32],
    n_classes: usize,
    sample_weight: Option<&[f64]>,
    params: &ForestParams,
    n_threads: usize,
    progress: Option<&Progress>,
) -> Result<Forest> {
    let started = Instant::now();
    validate_inputs(&x, y, n_classes, sample_weight)?;
    let (n, n_features) = x.dim();
    let limits = params.resolve(n, n_features, n_classes)?;
    let base_weight = base_weights(y, n_classes, sample_weight, &params.class_weight);
    let sampler = if params.bootstrap {
        WeightedSampler::new(&base_weight)
    } else {
        None
    };
    let first = trees.len();
    let (new_trees, training_fingerprint) =
        run_in_pool(n_threads, || -> Result<(Vec<Tree>, String)> {
            let (binned, fingerprint) = rayon::join(
                || BinnedMatrix::from_matrix(x),
                || training_fingerprint(x, y, sample_weight),
            );
            let binned = binned?;
            if !limits.monotonic_cst.is_empty() && binned.has_missing.iter().any(|&m| m) {
                return Err(WoodlotError::param(
                    "monotonic_cst",
                    "monotonic constraints are not supported with missing values in X; \
                 impute them first or drop monotonic_cst",
                ));
            }
            let set = TrainingSet {
                binned,
                y,
                n_classes,
                base_weight: &base_weight,
                sampler: sampler.as_ref(),
                limits,
            };
            let new_trees = (first..params.n_estimators)
                .into_par_iter()
                .map(|i| {
                    let tree = grow_tree(&set, params, i);
                    if let Some(p) = progress {
                        p.tree_done();
                    }
                    tree
                })
                .collect();
            Ok((new_trees, fingerprint))
        })??;
    trees.extend(new_trees);
    let oob = if params.oob_score {
        Some(run_in_pool(n_threads, || {
            oob_estimate(&trees, x, y, n_classes, params, sampler.as_ref())
        })??)
    } else {
        None
    };
    Ok(Forest {
        n_features: n_features as u32,
        n_classes: n_classes as u32,
        params: params.clone(),
        trees,
        oob,
        fit_info: FitInfo {
            training_fingerprint,
            n_samples: n as u64,
            fit_seconds: started.elapsed().as_secs_f64(),
        },
    })
}

/// BLAKE3 fingerprint of exactly what the forest was trained on.
fn training_fingerprint<T: FeatureValue>(
    x: ArrayView2<'_, T>,
    y: &[u32],
    sample_weight: Option<&[f64]>,
) -> String {
    let mut fp = Fingerprinter::new();
    fp.matrix("X", x).numbers("y", y.iter().map(|&c| c as f64));
    if let Some(w) = sample_weight {
        fp.numbers("sample_weight", w.iter().copied());
    }
    fp.hex()
}

/// Per-sample weight before bootstrapping: sample weight times class weight (scikit-learn
/// multiplies them the same way; `balanced` counts classes without weights).
fn base_weights(
    y: &[u32],
    n_classes: usize,
    sample_weight: Option<&[f64]>,
    class_weight: &ClassWeight,
) -> Vec<f64> {
    let per_class: Option<Vec<f64>> = match class_weight {
        ClassWeight::Uniform | ClassWeight::BalancedSubsample => None,
        ClassWeight::PerClass(w) => Some(w.clone()),
        ClassWeight::Balanced => Some(balanced_weights(y.iter().map(|&c| (c, 1u32)), n_classes)),
    };
    y.iter()
        .enumerate()
        .map(|(i, &c)| {
            let sw = sample_weight.map_or(1.0, |w| w[i]);
            let cw = per_class.as_ref().map_or(1.0, |w| w[c as usize]);
            sw * cw
        })
        .collect()
}

/// `n / (n_present_classes * count(class))` for classes present, 0 for absent ones, over
/// `(class, multiplicity)` pairs: scikit-learn's "balanced" weights.
fn balanced_weights(labels: impl Iterator<Item = (u32, u32)>, n_classes: usize) -> Vec<f64> {
    let mut counts = vec![0u64; n_classes];
    for (c, m) in labels {
        counts[c as usize] += m as u64;
    }
    let total: u64 = counts.iter().sum();
    let present = counts.iter().filter(|&&k| k > 0).count().max(1) as f64;
    counts
        .iter()
        .map(|&k| {
            if k > 0 {
                total as f64 / (present * k as f64)
            } else {
                0.0
            }
        })
        .collect()
}

/// Grows tree `index` of the forest.
fn grow_tree(set: &TrainingSet<'_>, params: &ForestParams, index: usize) -> Tree {
    let n = set.y.len();
    let mut rng = Rng::new(tree_seed(params.random_state, index as u64));
    let counts = params.bootstrap.then(|| {
        let draws = params.bootstrap_size(n).unwrap_or(n);
        bootstrap_counts(&mut rng, n, draws, set.sampler)
    });
    let subsample_weights = match (&counts, &params.class_weight) {
        (Some(c), ClassWeight::BalancedSubsample) => Some(balanced_weights(
            set.y.iter().zip(c).map(|(&class, &m)| (class, m)),
            set.n_classes,
        )),
        (None, ClassWeight::BalancedSubsample) => Some(balanced_weights(
            set.y.iter().map(|&c| (c, 1)),
            set.n_classes,
        )),
        _ => None,
    };
    let mut samples = Vec::with_capacity(n);
    for (i, &class) in set.y.iter().enumerate() {
        let draws = counts.as_ref().map_or(1, |c| c[i]);
        if draws == 0 {
            continue;
        }
        // With bootstrap, weights already decided which rows were drawn (scikit-learn >= 1.9):
        // the tree sees draw counts. Without it, the tree sees the weights themselves.
        let mut weight = if counts.is_some() {
            draws as f64
        } else {
            set.base_weight[i]
        };
        if let Some(cw) = &subsample_weights {
            weight *= cw[class as usize];
        }
        if weight > 0.0 {
            samples.push(Sample {
                row: i as u32,
                class,
                weight,
            });
        }
    }
    TreeBuilder::new(&set.binned, set.n_classes, &set.limits).grow(&mut samples, &mut rng)
}

/// Out-of-bag class probabilities and accuracy: each row is predicted by the trees whose
/// bootstrap sample missed it (rows that no tree missed keep all-zero probabilities, as in
/// scikit-learn). Sums run in tree order, so the result does not depend on `n_jobs`.
fn oob_estimate<T: FeatureValue>(
    trees: &[Tree],
    x: ArrayView2<'_, T>,
    y: &[u32],
    n_classes: usize,
    params: &ForestParams,
    sampler: Option<&WeightedSampler>,
) -> Result<OobEstimate> {
    let n = y.len();
    let draws = params.bootstrap_size(n)?;
    let words = n.div_ceil(64);
    let masks: Vec<Vec<u64>> = (0..trees.len())
        .into_par_iter()
        .map(|i| {
            let mut rng = Rng::new(tree_seed(params.random_state, i as u64));
            let counts = bootstrap_counts(&mut rng, n, draws, sampler);
            let mut bits = vec![0u64; words];
            for (r, &c) in counts.iter().enumerate() {
                if c == 0 {
                    bits[r / 64] |= 1 << (r % 64);
                }
            }
            bits
        })
        .collect();
    let c = n_classes;
    let mut decision = vec![0.0f64; n * c];
    let block = super::predict::BLOCK_ROWS;
    decision
        .par_chunks_mut(block * c)
        .enumerate()
        .try_for_each(|(b, out)| -> Result<()> {
            let start = b * block;
            let rows = out.len() / c;
            let mut buf = Vec::new();
            super::predict::gather_rows(x, start, rows, &mut buf)?;
            let f = x.ncols();
            for r in 0..rows {
                let row = &buf[r * f..(r + 1) * f];
                let acc = &mut out[r * c..(r + 1) * c];
                let global = start + r;
                let mut k = 0u32;
                for (tree, mask) in trees.iter().zip(&masks) {
                    if mask[global / 64] >> (global % 64) & 1 == 1 {
                        let leaf = tree.leaf_of(row);
                        for (a, v) in acc.iter_mut().zip(tree.leaf_value(leaf)) {
                            *a += *v as f64;
                        }
                        k += 1;
                    }
                }
                if k > 0 {
                    acc.iter_mut().for_each(|a| *a /= k as f64);
                }
            }
            Ok(())
        })?;
    let correct = decision
        .chunks(c)
        .zip(y)
        .filter(|(row, &label)| argmax(*row) == label as usize)
        .count();
    Ok(OobEstimate {
        score: correct as f64 / n as f64,
        n_samples: n as u64,
        decision_function: decision,
    })
}
