//! Training: validate, bin once, grow every tree in parallel, then out-of-bag estimates.
//!
//! Tree `i` draws all of its randomness (bootstrap sample, then feature draws) from one
//! generator seeded by `(random_state, i)`, so a forest is bit-identical for every `n_jobs`
//! and warm-starting more trees gives the same trees as fitting them all at once.
//!
//! The same rule lets a fit be split across machines (see [`super::merge`]): the driver checks
//! and bins once ([`prepare_training_set`]), each worker grows a range of tree indices on those
//! bins ([`grow_tree_range`]), and [`Forest::from_shares`] puts them back in order with the
//! out-of-bag estimate summed exactly as a local fit sums it.

use std::ops::Range;
use std::time::Instant;

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::merge::{assemble, TreeShare};
use super::params::{ClassWeight, ForestParams, TreeLimits};
use super::predict::argmax;
use super::progress::Progress;
use super::sampling::{bootstrap_counts, WeightedSampler};
use super::threads::run_in_pool;
use super::{FitInfo, Forest, OobEstimate, TrainingHistogram};
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
    validate_sizes(n, f, y, n_classes, sample_weight)
}

/// [`validate_inputs`] for a training set of `n` samples and `f` features that is not a matrix
/// here (a worker of a distributed fit holds only its bins).
fn validate_sizes(
    n: usize,
    f: usize,
    y: &[u32],
    n_classes: usize,
    sample_weight: Option<&[f64]>,
) -> Result<()> {
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
    let (new_trees, training_fingerprint, histogram) = run_in_pool(
        n_threads,
        || -> Result<(Vec<Tree>, String, TrainingHistogram)> {
            let (binned, fingerprint) = rayon::join(
                || BinnedMatrix::from_matrix(x),
                || training_fingerprint(x, y, sample_weight),
            );
            let binned = binned?;
            check_missing_values(&limits, &binned)?;
            let histogram = TrainingHistogram::from_binned(&binned);
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
            Ok((new_trees, fingerprint, histogram))
        },
    )??;
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
        training_histogram: Some(histogram),
    })
}

/// Monotonic constraints and missing values do not mix (scikit-learn refuses them too).
fn check_missing_values(limits: &TreeLimits, binned: &BinnedMatrix) -> Result<()> {
    if !limits.monotonic_cst.is_empty() && binned.has_missing.iter().any(|&m| m) {
        return Err(WoodlotError::param(
            "monotonic_cst",
            "monotonic constraints are not supported with missing values in X; \
                 impute them first or drop monotonic_cst",
        ));
    }
    Ok(())
}

/// The driver's half of a fit whose trees are grown elsewhere: every check a local fit makes
/// before its first tree, then the bins and the training fingerprint, computed once on the full
/// data. Shipping the bins (1 byte per value) instead of `x` is what makes every worker's trees
/// the trees a local fit grows, and it ships a quarter to an eighth of the bytes.
pub fn prepare_training_set<T: FeatureValue>(
    x: ArrayView2<'_, T>,
    y: &[u32],
    n_classes: usize,
    sample_weight: Option<&[f64]>,
    params: &ForestParams,
    n_threads: usize,
) -> Result<(BinnedMatrix, String)> {
    validate_inputs(&x, y, n_classes, sample_weight)?;
    let (n, n_features) = x.dim();
    let limits = params.resolve(n, n_features, n_classes)?;
    run_in_pool(n_threads, || -> Result<(BinnedMatrix, String)> {
        let (binned, fingerprint) = rayon::join(
            || BinnedMatrix::from_matrix(x),
            || training_fingerprint(x, y, sample_weight),
        );
        let binned = binned?;
        check_missing_values(&limits, &binned)?;
        Ok((binned, fingerprint))
    })?
}

/// A worker's half: grows trees `range` of the forest a local fit of `params` would grow, on
/// the driver's bins, with class weights and bootstrap draws from the full `y` and
/// `sample_weight` (global counts, so tree `i` is the local fit's tree `i`). Returns them as a
/// forest of their own, recording the driver's `training_fingerprint`, and with `oob_score`
/// their out-of-bag masks (the in-bag information the driver's out-of-bag sum needs).
#[allow(clippy::too_many_arguments)]
pub fn grow_tree_range(
    binned: BinnedMatrix,
    y: &[u32],
    n_classes: usize,
    sample_weight: Option<&[f64]>,
    params: &ForestParams,
    range: Range<usize>,
    training_fingerprint: String,
    n_threads: usize,
) -> Result<TreeShare> {
    let started = Instant::now();
    let (n, n_features) = (binned.n_samples, binned.n_features);
    validate_sizes(n, n_features, y, n_classes, sample_weight)?;
    if range.start >= range.end || range.end > params.n_estimators {
        return Err(WoodlotError::input(format!(
            "tree range {}..{} is empty or outside the forest's {} trees",
            range.start, range.end, params.n_estimators
        )));
    }
    let limits = params.resolve(n, n_features, n_classes)?;
    check_missing_values(&limits, &binned)?;
    let base_weight = base_weights(y, n_classes, sample_weight, &params.class_weight);
    let sampler = if params.bootstrap {
        WeightedSampler::new(&base_weight)
    } else {
        None
    };
    let set = TrainingSet {
        binned,
        y,
        n_classes,
        base_weight: &base_weight,
        sampler: sampler.as_ref(),
        limits,
    };
    let first = range.start;
    let (trees, oob_masks, histogram) = run_in_pool(n_threads, || -> Result<_> {
        // Every worker holds the driver's bins, so every share carries the same histogram
        // (one pass over the codes); `assemble` checks that they agree.
        let trees: Vec<Tree> = range
            .clone()
            .into_par_iter()
            .map(|i| grow_tree(&set, params, i))
            .collect();
        let masks = if params.oob_score {
            Some(oob_masks(range, n, params, sampler.as_ref())?)
        } else {
            None
        };
        Ok((trees, masks, TrainingHistogram::from_binned(&set.binned)))
    })??;
    Ok(TreeShare {
        first,
        forest: Forest {
            n_features: n_features as u32,
            n_classes: n_classes as u32,
            params: params.clone(),
            trees,
            oob: None,
            fit_info: FitInfo {
                training_fingerprint,
                n_samples: n as u64,
                fit_seconds: started.elapsed().as_secs_f64(),
            },
            training_histogram: Some(histogram),
        },
        oob_masks,
    })
}

impl Forest {
    /// The driver's last step: the forest whose trees `init`'s trees and then `shares` hold
    /// (every index from `init`'s tree count to `params.n_estimators` exactly once; anything
    /// else is refused, never a smaller forest), with the out-of-bag estimate of a local fit:
    /// the same masks, summed in tree order over the full `x`. `fit_seconds` is the whole
    /// fit's wall time, measured by the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn from_shares<T: FeatureValue>(
        init: Option<&Forest>,
        shares: Vec<TreeShare>,
        x: ArrayView2<'_, T>,
        y: &[u32],
        n_classes: usize,
        sample_weight: Option<&[f64]>,
        params: &ForestParams,
        training_fingerprint: String,
        fit_seconds: f64,
        n_threads: usize,
    ) -> Result<Forest> {
        validate_inputs(&x, y, n_classes, sample_weight)?;
        let (n, n_features) = x.dim();
        let mut trees = init.map_or_else(Vec::new, |f| f.trees.clone());
        let first = trees.len();
        // The shares were grown on the driver's bins, so their histograms are the fit's (and
        // `assemble` refuses shares whose histograms differ from the first's).
        let training_histogram = shares
            .iter()
            .min_by_key(|s| s.first)
            .and_then(|s| s.forest.training_histogram.clone());
        let expected = Forest {
            n_features: n_features as u32,
            n_classes: n_classes as u32,
            params: params.clone(),
            trees: Vec::new(),
            oob: None,
            fit_info: FitInfo {
                training_fingerprint,
                n_samples: n as u64,
                fit_seconds,
            },
            training_histogram,
        };
        let (new_trees, new_masks) = assemble(shares, first, &expected)?;
        trees.extend(new_trees);
        let oob = if params.oob_score {
            let base_weight = base_weights(y, n_classes, sample_weight, &params.class_weight);
            let sampler = if params.bootstrap {
                WeightedSampler::new(&base_weight)
            } else {
                None
            };
            let new_masks = new_masks.ok_or_else(|| {
                WoodlotError::input("oob_score is on but the tree shares carry no out-of-bag masks")
            })?;
            Some(run_in_pool(n_threads, || -> Result<OobEstimate> {
                let mut masks = oob_masks(0..first, n, params, sampler.as_ref())?;
                masks.extend(new_masks);
                oob_from_masks(&trees, &masks, x, y, n_classes)
            })??)
        } else {
            None
        };
        Ok(Forest {
            trees,
            oob,
            ..expected
        })
    }
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
    let masks = oob_masks(0..trees.len(), y.len(), params, sampler)?;
    oob_from_masks(trees, &masks, x, y, n_classes)
}

/// The out-of-bag rows of trees `range` as bit sets (`n.div_ceil(64)` words per tree; bit `r`
/// set when tree `i`'s bootstrap sample missed row `r`), redrawn from each tree's seed.
pub(crate) fn oob_masks(
    range: Range<usize>,
    n: usize,
    params: &ForestParams,
    sampler: Option<&WeightedSampler>,
) -> Result<Vec<Vec<u64>>> {
    let draws = params.bootstrap_size(n)?;
    let words = n.div_ceil(64);
    Ok(range
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
        .collect())
}

/// The out-of-bag estimate from every tree's mask (see [`oob_masks`]), summed in tree order.
fn oob_from_masks<T: FeatureValue>(
    trees: &[Tree],
    masks: &[Vec<u64>],
    x: ArrayView2<'_, T>,
    y: &[u32],
    n_classes: usize,
) -> Result<OobEstimate> {
    let n = y.len();
    let words = n.div_ceil(64);
    if masks.len() != trees.len() || masks.iter().any(|m| m.len() != words) {
        return Err(WoodlotError::input(format!(
            "{} out-of-bag masks for {} trees (each must hold {words} words for {n} samples)",
            masks.len(),
            trees.len()
        )));
    }
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
                for (tree, mask) in trees.iter().zip(masks) {
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
