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
    /// Class codes, row-major: `outputs.len()` per row, each in its output's `0..outputs[j]`.
    y: &'a [u32],
    n_classes: usize,
    /// Class count of each output (`[n_classes]` for a single output).
    outputs: &'a [u32],
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
        let outputs = [n_classes as u32];
        grow_forest(
            Vec::new(),
            x,
            y,
            &outputs,
            sample_weight,
            params,
            n_threads,
            None,
        )
    }

    /// Fits a multi-output forest (scikit-learn's `y` of shape `(n_samples, k)`): `y` holds
    /// `k = outputs.len()` class codes per row, row-major, output `j`'s in `0..outputs[j]`.
    /// The trees see one class space, every output's classes side by side (`n_classes` is
    /// their sum): a leaf row holds each output's fractions, each part summing to 1, and splits
    /// are ranked by the mean of the outputs' impurities, as scikit-learn ranks them. With
    /// `init`, warm-starts from it (it must have the same outputs); `progress` as in
    /// [`Forest::fit_with_progress`].
    #[allow(clippy::too_many_arguments)]
    pub fn fit_outputs<T: FeatureValue>(
        init: Option<&Forest>,
        x: ArrayView2<'_, T>,
        y: &[u32],
        outputs: &[u32],
        sample_weight: Option<&[f64]>,
        params: &ForestParams,
        n_threads: usize,
        progress: Option<&Progress>,
    ) -> Result<Forest> {
        match init {
            None => grow_forest(
                Vec::new(),
                x,
                y,
                outputs,
                sample_weight,
                params,
                n_threads,
                progress,
            ),
            Some(forest) => {
                if forest.outputs() != outputs {
                    return Err(WoodlotError::input(format!(
                        "warm_start=True needs the same outputs as the first fit: got outputs \
                         of {outputs:?} classes, the forest was fitted with {:?}",
                        forest.outputs()
                    )));
                }
                forest.grow_more(x, y, sample_weight, params, n_threads, progress)
            }
        }
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
                &[n_classes as u32],
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
            &self.outputs(),
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

/// [`validate_inputs`] for a multi-output `y` (`outputs.len()` codes per row).
fn validate_outputs<T: FeatureValue>(
    x: &ArrayView2<'_, T>,
    y: &[u32],
    outputs: &[u32],
    sample_weight: Option<&[f64]>,
    params: &ForestParams,
) -> Result<()> {
    if outputs.len() <= 1 {
        let n_classes = outputs.first().map_or(0, |&c| c as usize);
        return validate_inputs(x, y, n_classes, sample_weight);
    }
    let k = outputs.len();
    let n = x.nrows();
    if y.len() != n.saturating_mul(k) {
        return Err(WoodlotError::input(format!(
            "y holds {} class codes, expected {n} samples x {k} outputs",
            y.len()
        )));
    }
    if let Some(j) = outputs.iter().position(|&c| c == 0) {
        return Err(WoodlotError::input(format!(
            "output {j} has no classes; every output needs at least one"
        )));
    }
    for (i, row) in y.chunks(k).enumerate() {
        for (j, (&code, &c)) in row.iter().zip(outputs).enumerate() {
            if code >= c {
                return Err(WoodlotError::input(format!(
                    "class code {code} of sample {i} is out of range for output {j}'s {c} classes"
                )));
            }
        }
    }
    if params
        .monotonic_cst
        .as_ref()
        .is_some_and(|cst| cst.iter().any(|&c| c != 0))
    {
        return Err(WoodlotError::param(
            "monotonic_cst",
            "Monotonicity constraints are not supported with multiple outputs.",
        ));
    }
    // Sizes, features and weights as for one output: a row-wise view of the first output.
    let first: Vec<u32> = y.iter().step_by(k).copied().collect();
    validate_inputs(x, &first, outputs[0] as usize, sample_weight)
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
    outputs: &[u32],
    sample_weight: Option<&[f64]>,
    params: &ForestParams,
    n_threads: usize,
    progress: Option<&Progress>,
) -> Result<Forest> {
    let started = Instant::now();
    validate_outputs(&x, y, outputs, sample_weight, params)?;
    let n_classes: usize = outputs.iter().map(|&c| c as usize).sum();
    let (n, n_features) = x.dim();
    let limits = params.resolve(n, n_features, n_classes)?;
    let base_weight = base_weights(y, outputs, sample_weight, &params.class_weight);
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
                outputs,
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
            oob_estimate(&trees, x, y, outputs, params, sampler.as_ref())
        })??)
    } else {
        None
    };
    Ok(Forest {
        n_features: n_features as u32,
        n_classes: n_classes as u32,
        output_classes: if outputs.len() > 1 {
            outputs.to_vec()
        } else {
            Vec::new()
        },
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
    let outputs = [n_classes as u32];
    let base_weight = base_weights(y, &outputs, sample_weight, &params.class_weight);
    let sampler = if params.bootstrap {
        WeightedSampler::new(&base_weight)
    } else {
        None
    };
    let set = TrainingSet {
        binned,
        y,
        n_classes,
        outputs: &outputs,
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
            output_classes: Vec::new(),
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
            output_classes: Vec::new(),
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
            let base_weight =
                base_weights(y, &[n_classes as u32], sample_weight, &params.class_weight);
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
                oob_from_masks(&trees, &masks, x, y, &[n_classes as u32])
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
    // y's length already tells one output from several; the row count is in X.
    if let Some(w) = sample_weight {
        fp.numbers("sample_weight", w.iter().copied());
    }
    fp.hex()
}

/// Per-sample weight before bootstrapping: sample weight times class weight (scikit-learn
/// multiplies them the same way; `balanced` counts classes without weights). With several
/// outputs the class weight is the product of every output's (scikit-learn's
/// `compute_sample_weight`); `PerClass` then holds every output's weights side by side.
fn base_weights(
    y: &[u32],
    outputs: &[u32],
    sample_weight: Option<&[f64]>,
    class_weight: &ClassWeight,
) -> Vec<f64> {
    let per_class: Option<Vec<f64>> = match class_weight {
        ClassWeight::Uniform | ClassWeight::BalancedSubsample => None,
        ClassWeight::PerClass(w) => Some(w.clone()),
        ClassWeight::Balanced => Some(balanced_per_output(y, outputs, |_| 1)),
    };
    let offsets = output_offsets(outputs);
    let k = outputs.len();
    y.chunks(k)
        .enumerate()
        .map(|(i, row)| {
            let sw = sample_weight.map_or(1.0, |w| w[i]);
            let cw = per_class
                .as_ref()
                .map_or(1.0, |w| class_weight_of(w, row, &offsets));
            sw * cw
        })
        .collect()
}

/// Where each output's classes start in the concatenated class space.
fn output_offsets(outputs: &[u32]) -> Vec<u32> {
    outputs
        .iter()
        .scan(0u32, |start, &c| {
            let at = *start;
            *start += c;
            Some(at)
        })
        .collect()
}

/// A row's class weight: the product over outputs of its class's weight (one factor for a
/// single output, so the weight is exactly the class's).
fn class_weight_of(weights: &[f64], row: &[u32], offsets: &[u32]) -> f64 {
    let mut cw = weights[(offsets[0] + row[0]) as usize];
    for (&code, &at) in row.iter().zip(offsets).skip(1) {
        cw *= weights[(at + code) as usize];
    }
    cw
}

/// "balanced" weights of every output, side by side, counting row `i` `multiplicity(i)` times.
fn balanced_per_output(
    y: &[u32],
    outputs: &[u32],
    multiplicity: impl Fn(usize) -> u32,
) -> Vec<f64> {
    let k = outputs.len();
    let mut all = Vec::new();
    for (j, &c) in outputs.iter().enumerate() {
        let labels = y
            .iter()
            .skip(j)
            .step_by(k)
            .enumerate()
            .map(|(i, &code)| (code, multiplicity(i)));
        all.extend(balanced_weights(labels, c as usize));
    }
    all
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
    let n = set.binned.n_samples;
    let mut rng = Rng::new(tree_seed(params.random_state, index as u64));
    let counts = params.bootstrap.then(|| {
        let draws = params.bootstrap_size(n).unwrap_or(n);
        bootstrap_counts(&mut rng, n, draws, set.sampler)
    });
    let subsample_weights = match (&counts, &params.class_weight) {
        (Some(c), ClassWeight::BalancedSubsample) => {
            Some(balanced_per_output(set.y, set.outputs, |i| c[i]))
        }
        (None, ClassWeight::BalancedSubsample) => {
            Some(balanced_per_output(set.y, set.outputs, |_| 1))
        }
        _ => None,
    };
    let k = set.outputs.len();
    let offsets = output_offsets(set.outputs);
    let mut samples = Vec::with_capacity(n * k);
    for (i, row) in set.y.chunks(k).enumerate() {
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
            weight *= class_weight_of(cw, row, &offsets);
        }
        if weight > 0.0 {
            // A multi-output row goes in once per output, its class shifted to that output's
            // segment (see `TreeBuilder::with_outputs`).
            for (&code, &at) in row.iter().zip(&offsets) {
                samples.push(Sample {
                    row: i as u32,
                    class: at + code,
                    weight,
                });
            }
        }
    }
    TreeBuilder::new(&set.binned, set.n_classes, &set.limits)
        .with_outputs(set.outputs)
        .grow(&mut samples, &mut rng)
}

/// Out-of-bag class probabilities and accuracy: each row is predicted by the trees whose
/// bootstrap sample missed it (rows that no tree missed keep all-zero probabilities, as in
/// scikit-learn). Sums run in tree order, so the result does not depend on `n_jobs`.
fn oob_estimate<T: FeatureValue>(
    trees: &[Tree],
    x: ArrayView2<'_, T>,
    y: &[u32],
    outputs: &[u32],
    params: &ForestParams,
    sampler: Option<&WeightedSampler>,
) -> Result<OobEstimate> {
    let masks = oob_masks(0..trees.len(), x.nrows(), params, sampler)?;
    oob_from_masks(trees, &masks, x, y, outputs)
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
/// With several outputs the score is scikit-learn's for multilabel targets: the fraction of
/// rows whose every output is predicted right (subset accuracy).
fn oob_from_masks<T: FeatureValue>(
    trees: &[Tree],
    masks: &[Vec<u64>],
    x: ArrayView2<'_, T>,
    y: &[u32],
    outputs: &[u32],
) -> Result<OobEstimate> {
    let n = x.nrows();
    let n_classes: usize = outputs.iter().map(|&c| c as usize).sum();
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
    let k = outputs.len();
    let correct = decision
        .chunks(c)
        .zip(y.chunks(k))
        .filter(|(row, labels)| {
            let mut start = 0usize;
            outputs.iter().zip(labels.iter()).all(|(&width, &label)| {
                let end = start + width as usize;
                let right = argmax(&row[start..end]) == label as usize;
                start = end;
                right
            })
        })
        .count();
    Ok(OobEstimate {
        score: correct as f64 / n as f64,
        n_samples: n as u64,
        decision_function: decision,
    })
}
