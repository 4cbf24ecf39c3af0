//! Merging forests: the shares of one distributed fit, and forests people fitted themselves.
//!
//! A random forest is embarrassingly parallel across trees, so the standard way to fit one on
//! a cluster (scikit-learn under a joblib engine, R's `randomForest::combine`) is that each
//! worker grows some of the trees on the full data and the forests are merged. Two merges
//! live here, with different promises:
//!
//! - [`assemble`]: the [`TreeShare`]s of *one* fit (tree indices `first..first + len`, grown
//!   by [`super::fit::grow_tree_range`] on the driver's bins) back in tree order. Every index is
//!   covered exactly once and every share was grown with the same parameters on the same data,
//!   or nothing is built: a lost or duplicated share is an error, never a smaller forest. The
//!   result is bit-identical to a local fit.
//! - [`merge_forests`]: independently fitted forests (`woodlot.merge_forests`). Their trees
//!   are concatenated; they must agree on what a tree means (features, classes, the tree
//!   parameters) and on their binning, which is a function of the training data alone, so
//!   equal training fingerprints mean equal bins. Two parts with the same seed would hold the
//!   same trees, so that is refused too. The merged forest keeps the parts' training
//!   histogram when they all carry the same one (same rows, same bins), else it has none.

use super::{FitInfo, Forest, ForestParams};
use crate::error::{Result, WoodlotError};
use crate::tree::Tree;

/// Trees `first..first + forest.trees.len()` of one fit, grown elsewhere, with their out-of-bag
/// masks when the fit computes an out-of-bag estimate.
#[derive(Debug, Clone)]
pub struct TreeShare {
    /// Index of the share's first tree in the whole forest.
    pub first: usize,
    /// The share's trees as a forest of their own (what travels back from a worker).
    pub forest: Forest,
    /// One out-of-bag bit set per tree (see `fit::oob_masks`), or `None`.
    pub oob_masks: Option<OobMasks>,
}

/// Out-of-bag bit sets, one per tree.
pub type OobMasks = Vec<Vec<u64>>;

/// The trees (and masks) of `shares` in tree order, covering `first..expected.params.n_estimators`
/// exactly once. Each share must have been grown with `expected`'s parameters, feature and class
/// counts, on data with `expected`'s training fingerprint and sample count.
pub fn assemble(
    mut shares: Vec<TreeShare>,
    first: usize,
    expected: &Forest,
) -> Result<(Vec<Tree>, Option<OobMasks>)> {
    let end = expected.params.n_estimators;
    let fail = |what: String| {
        Err(WoodlotError::input(format!(
            "the tree shares of this fit do not make a forest: {what}; no forest was built"
        )))
    };
    shares.sort_by_key(|s| s.first);
    let mut next = first;
    let want_masks = expected.params.oob_score;
    let mut trees = Vec::with_capacity(end.saturating_sub(first));
    let mut masks = want_masks.then(Vec::new);
    for share in shares {
        let f = &share.forest;
        let len = f.trees.len();
        let range = format!("trees {}..{}", share.first, share.first + len);
        if share.first != next {
            return if share.first > next {
                fail(format!("trees {next}..{} are missing", share.first))
            } else {
                fail(format!("{range} overlap trees before {next}"))
            };
        }
        if len == 0 {
            return fail(format!(
                "the share starting at tree {} is empty",
                share.first
            ));
        }
        if f.n_features != expected.n_features || f.n_classes != expected.n_classes {
            return fail(format!(
                "{range} have {} features / {} classes, the fit has {} / {}",
                f.n_features, f.n_classes, expected.n_features, expected.n_classes
            ));
        }
        if f.params != expected.params {
            return fail(format!("{range} were grown with other parameters"));
        }
        if f.fit_info.training_fingerprint != expected.fit_info.training_fingerprint
            || f.fit_info.n_samples != expected.fit_info.n_samples
        {
            return fail(format!("{range} were grown on other training data"));
        }
        if f.training_histogram != expected.training_histogram {
            return fail(format!("{range} were grown on other bins"));
        }
        match (&mut masks, share.oob_masks) {
            (Some(all), Some(m)) if m.len() == len => all.extend(m),
            (Some(_), _) => {
                return fail(format!("{range} carry no out-of-bag mask per tree"));
            }
            (None, _) => {}
        }
        next += len;
        trees.extend(share.forest.trees);
    }
    if next != end {
        return fail(format!(
            "trees {next}..{end} are missing ({} of {} grown)",
            next - first,
            end - first
        ));
    }
    Ok((trees, masks))
}

/// Merges independently fitted forests into one whose trees are theirs, in order. Refuses,
/// naming what differs and between which parts, forests that disagree on the number of
/// features or classes, on the tree parameters (everything but `n_estimators`,
/// `random_state` and `oob_score`), on their binning (their training data), or that share a
/// seed. The merged forest records the first part's parameters with `n_estimators` = the tree
/// count, no out-of-bag estimate (that needs the data; `oob_score` is off), and the parts'
/// summed fit time.
pub fn merge_forests(parts: &[&Forest]) -> Result<Forest> {
    let Some(&head) = parts.first() else {
        return Err(WoodlotError::input(
            "merge_forests needs at least one fitted forest",
        ));
    };
    let refuse = |msg: String| {
        Err(WoodlotError::input(format!(
            "cannot merge these forests: {msg}"
        )))
    };
    let head_params = comparable_params(&head.params);
    for (k, f) in parts.iter().enumerate().skip(1) {
        if f.n_features != head.n_features {
            return refuse(format!(
                "features: forest 0 has {} features, forest {k} has {}",
                head.n_features, f.n_features
            ));
        }
        if f.n_classes != head.n_classes {
            return refuse(format!(
                "classes: forest 0 has {} classes, forest {k} has {}",
                head.n_classes, f.n_classes
            ));
        }
        if f.outputs() != head.outputs() {
            return refuse(format!(
                "outputs: forest 0 has outputs of {:?} classes, forest {k} of {:?}",
                head.outputs(),
                f.outputs()
            ));
        }
        let (a, b) = (&head.fit_info, &f.fit_info);
        if a.training_fingerprint != b.training_fingerprint || a.n_samples != b.n_samples {
            return refuse(format!(
                "binning: forest 0 and forest {k} were binned on different training data \
                 (training fingerprints {}… and {}…, {} and {} samples); fit every part on the \
                 same X, y and sample_weight",
                short(&a.training_fingerprint),
                short(&b.training_fingerprint),
                a.n_samples,
                b.n_samples
            ));
        }
        let differing = differing_params(&head_params, &comparable_params(&f.params));
        if !differing.is_empty() {
            return refuse(format!(
                "parameters: forest 0 and forest {k} differ in {}",
                differing.join(", ")
            ));
        }
    }
    for (i, a) in parts.iter().enumerate() {
        for (j, b) in parts.iter().enumerate().skip(i + 1) {
            if a.params.random_state == b.params.random_state {
                return refuse(format!(
                    "seeds: forest {i} and forest {j} were fitted with the same seed, so their \
                     first trees are the same trees; fit each part with its own random_state"
                ));
            }
        }
    }
    let trees: Vec<Tree> = parts.iter().flat_map(|f| f.trees.iter().cloned()).collect();
    let params = ForestParams {
        n_estimators: trees.len(),
        oob_score: false,
        ..head.params.clone()
    };
    Ok(Forest {
        n_features: head.n_features,
        n_classes: head.n_classes,
        output_classes: head.output_classes.clone(),
        params,
        trees,
        oob: None,
        fit_info: FitInfo {
            training_fingerprint: head.fit_info.training_fingerprint.clone(),
            n_samples: head.fit_info.n_samples,
            fit_seconds: parts.iter().map(|f| f.fit_info.fit_seconds).sum(),
        },
        // Equal fingerprints mean the same rows, hence the same bins and histogram: keep it
        // when every part has it (a part read from an older file may not).
        training_histogram: parts
            .iter()
            .all(|f| f.training_histogram == head.training_histogram)
            .then(|| head.training_histogram.clone())
            .flatten(),
    })
}

/// The parameters that decide what a tree is, as JSON fields (so a mismatch can be named).
fn comparable_params(p: &ForestParams) -> serde_json::Map<String, serde_json::Value> {
    let normalised = ForestParams {
        n_estimators: 0,
        random_state: 0,
        oob_score: false,
        ..p.clone()
    };
    match serde_json::to_value(normalised) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

fn differing_params(
    a: &serde_json::Map<String, serde_json::Value>,
    b: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut names: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(b.keys().filter(|k| !a.contains_key(*k)).cloned())
        .collect();
    names.sort();
    names
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::fit::{grow_tree_range, prepare_training_set};
    use ndarray::Array2;

    fn data(n: usize, f: usize, seed: u64) -> (Array2<f64>, Vec<u32>) {
        let mut rng = crate::rng::Rng::new(seed);
        let x = Array2::from_shape_fn((n, f), |_| rng.unit_f64());
        let y = (0..n)
            .map(|i| u32::from(x[[i, 0]] + 0.3 * x[[i, 1]] > 0.6) + u32::from(x[[i, 2]] > 0.8))
            .collect();
        (x, y)
    }

    fn params(n_estimators: usize, seed: u64) -> ForestParams {
        ForestParams {
            n_estimators,
            random_state: seed,
            max_depth: Some(6),
            oob_score: true,
            ..Default::default()
        }
    }

    /// Fits `params` in shares of the given sizes, the way a cluster would.
    fn fit_in_shares(x: &Array2<f64>, y: &[u32], p: &ForestParams, sizes: &[usize]) -> Forest {
        let (binned, fp) = prepare_training_set(x.view(), y, 3, None, p, 1).unwrap();
        let mut shares = Vec::new();
        let mut first = 0;
        for &len in sizes {
            let b = binned.clone();
            shares.push(
                grow_tree_range(b, y, 3, None, p, first..first + len, fp.clone(), 1).unwrap(),
            );
            first += len;
        }
        shares.reverse(); // arrival order does not matter
        Forest::from_shares(None, shares, x.view(), y, 3, None, p, fp, 0.0, 2).unwrap()
    }

    #[test]
    fn shares_in_any_split_make_the_local_forest_bit_for_bit() {
        let (x, y) = data(600, 5, 1);
        let p = params(7, 42);
        let local = Forest::fit(x.view(), &y, 3, None, &p, 2).unwrap();
        for sizes in [&[7][..], &[3, 4], &[1, 1, 5], &[2, 2, 2, 1]] {
            let merged = fit_in_shares(&x, &y, &p, sizes);
            assert_eq!(merged.trees, local.trees, "split {sizes:?}");
            assert_eq!(merged.oob, local.oob, "split {sizes:?}");
            assert!(merged.training_histogram.is_some());
            assert_eq!(
                merged.training_histogram, local.training_histogram,
                "split {sizes:?}"
            );
            assert_eq!(
                merged.fit_info.training_fingerprint,
                local.fit_info.training_fingerprint
            );
        }
    }

    #[test]
    fn a_missing_or_doubled_share_is_refused_never_a_smaller_forest() {
        let (x, y) = data(300, 4, 2);
        let p = params(6, 7);
        let (binned, fp) = prepare_training_set(x.view(), &y, 3, None, &p, 1).unwrap();
        let share = |r: std::ops::Range<usize>| {
            grow_tree_range(binned.clone(), &y, 3, None, &p, r, fp.clone(), 1).unwrap()
        };
        let build = |shares| {
            Forest::from_shares(None, shares, x.view(), &y, 3, None, &p, fp.clone(), 0.0, 1)
        };
        let err = build(vec![share(0..2), share(4..6)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("trees 2..4 are missing"), "{err}");
        let err = build(vec![share(0..4)]).unwrap_err().to_string();
        assert!(err.contains("trees 4..6 are missing"), "{err}");
        let err = build(vec![share(0..3), share(2..6)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("overlap"), "{err}");
        let mut other = share(3..6);
        other.forest.params.max_depth = Some(2);
        let err = build(vec![share(0..3), other]).unwrap_err().to_string();
        assert!(err.contains("other parameters"), "{err}");
        let mut other_bins = share(3..6);
        other_bins.forest.training_histogram = None;
        let err = build(vec![share(0..3), other_bins])
            .unwrap_err()
            .to_string();
        assert!(err.contains("other bins"), "{err}");
        let mut no_masks = share(3..6);
        no_masks.oob_masks = None;
        let err = build(vec![share(0..3), no_masks]).unwrap_err().to_string();
        assert!(err.contains("out-of-bag"), "{err}");
        assert_eq!(
            build(vec![share(0..3), share(3..6)]).unwrap().trees.len(),
            6
        );
    }

    #[test]
    fn merge_forests_concatenates_and_names_each_mismatch() {
        let (x, y) = data(400, 4, 3);
        let a = Forest::fit(x.view(), &y, 3, None, &params(3, 1), 1).unwrap();
        let b = Forest::fit(x.view(), &y, 3, None, &params(4, 2), 1).unwrap();
        let m = merge_forests(&[&a, &b]).unwrap();
        assert_eq!(m.trees.len(), 7);
        assert_eq!(m.params.n_estimators, 7);
        assert!(m.oob.is_none() && !m.params.oob_score);
        assert_eq!(&m.trees[..3], &a.trees[..]);
        assert_eq!(&m.trees[3..], &b.trees[..]);
        // Same rows, same bins: the parts' histogram is kept, unless a part has none.
        assert!(m.training_histogram.is_some());
        assert_eq!(m.training_histogram, a.training_histogram);
        let mut bare = b.clone();
        bare.training_histogram = None;
        assert!(merge_forests(&[&a, &bare])
            .unwrap()
            .training_histogram
            .is_none());

        let err = |parts: &[&Forest]| merge_forests(parts).unwrap_err().to_string();
        assert!(err(&[&a, &a]).contains("same seed"));
        let (x2, y2) = data(400, 4, 9);
        let other_data = Forest::fit(x2.view(), &y2, 3, None, &params(3, 5), 1).unwrap();
        assert!(err(&[&a, &other_data]).contains("binning"));
        let deeper = Forest::fit(
            x.view(),
            &y,
            3,
            None,
            &ForestParams {
                max_depth: Some(9),
                ..params(3, 6)
            },
            1,
        )
        .unwrap();
        let e = err(&[&a, &deeper]);
        assert!(e.contains("parameters") && e.contains("max_depth"), "{e}");
        let mut wide = b.clone();
        wide.n_features = 5;
        assert!(err(&[&a, &wide]).contains("features: forest 0 has 4 features, forest 1 has 5"));
        let mut more = b.clone();
        more.n_classes = 4;
        assert!(err(&[&a, &more]).contains("classes"));
        assert!(merge_forests(&[]).is_err());
    }
}
