//! Building trees and forests from another library's node arrays (scikit-learn's `tree_`).
//!
//! Why this exists: people already have scikit-learn forests (often in pickles). Bringing one
//! in means turning its flat node arrays into [`Tree`]s that route every input exactly as
//! scikit-learn does. The arrays come from outside (an unpickled object, a hand-made dict), so
//! nothing about them is trusted: every index, count and number is checked here, and a hostile
//! array set gives a clear [`WoodlotError::InvalidInput`] naming the node at fault, never a
//! panic, a hang or a huge allocation.
//!
//! What "exactly" means, and how it is kept:
//!
//! - **Thresholds.** scikit-learn casts `X` to `float32` and compares `f64::from(x) <= t` with an
//!   `f64` threshold `t`. woodlot compares in `f32`. For every `f32` `x`, `x <= t` holds exactly
//!   when `x <= t32`, where `t32` is the largest `f32` not above `t` ([`f32_threshold`]), so
//!   routing is identical for every input, NaN included (`missing_go_to_left` maps as it is).
//! - **Order.** woodlot's trees (and its model file) keep nodes in depth-first preorder; the
//!   arrays are renumbered into it. Trees scikit-learn grows depth-first are already in that
//!   order, so their node ids (`apply`) are unchanged; best-first trees (`max_leaf_nodes`) get
//!   preorder ids.
//! - **Leaf values.** scikit-learn >= 1.4 stores class fractions, 1.3 stores weighted counts;
//!   each leaf row is divided by its sum (in `f64`) and stored as `f32`, woodlot's leaf type, so
//!   probabilities agree to `f32` rounding (a few 1e-8), not bit for bit. Rows that are already
//!   `f32` fractions (a woodlot tree sent out by `to_sklearn`) are kept bit for bit, so a round
//!   trip changes nothing.
//!
//! [`bootstrap_draws`] sits here too: it replays a tree's bootstrap draw in draw order, which is
//! what scikit-learn's `estimators_samples_` reports.

use super::params::ForestParams;
use super::sampling::WeightedSampler;
use super::{FitInfo, Forest};
use crate::error::{Result, WoodlotError};
use crate::rng::{tree_seed, Rng};
use crate::tree::model::{Node, NodeStats, Tree, MAX_FEATURES};

/// scikit-learn's marker for "no child" (`TREE_LEAF`).
const NO_CHILD: i64 = -1;

/// One tree as scikit-learn's `tree_` arrays (one entry per node; `value` is `n_nodes x
/// n_classes`, row-major, for a single output). Borrowed: nothing is copied before it is checked.
#[derive(Debug, Clone, Copy)]
pub struct NodeArrays<'a> {
    /// Left child per node, `-1` for a leaf.
    pub children_left: &'a [i64],
    /// Right child per node, `-1` for a leaf.
    pub children_right: &'a [i64],
    /// Feature tested per split node (ignored for leaves).
    pub feature: &'a [i64],
    /// Threshold per split node, `x <= threshold` goes left (ignored for leaves).
    pub threshold: &'a [f64],
    /// Where NaN goes per split node (non-zero: left); `None` sends it right everywhere.
    pub missing_go_to_left: Option<&'a [u8]>,
    /// Impurity per node.
    pub impurity: &'a [f64],
    /// Training samples per node.
    pub n_node_samples: &'a [i64],
    /// Training weight per node.
    pub weighted_n_node_samples: &'a [f64],
    /// Class weights or fractions per node, `n_nodes * n_classes`.
    pub value: &'a [f64],
}

/// The largest `f32` not above `t`: for every `f32` `x`, `x <= t` (compared in `f64`, as
/// scikit-learn does) exactly when `x <= f32_threshold(t)` (compared in `f32`).
///
/// `+inf` stays `+inf` ("every present value goes left"); a threshold at or above `f32::MAX`
/// becomes `f32::MAX` (no finite `f32` is above it, and infinite inputs are refused at
/// predict). NaN and thresholds below `-f32::MAX` (which no `f32` input could reach, and which
/// woodlot cannot express) are refused.
pub fn f32_threshold(t: f64) -> Result<f32> {
    if t.is_nan() {
        return Err(WoodlotError::input("threshold is NaN"));
    }
    if t == f64::INFINITY {
        return Ok(f32::INFINITY);
    }
    if t >= f64::from(f32::MAX) {
        return Ok(f32::MAX);
    }
    if t < -f64::from(f32::MAX) {
        return Err(WoodlotError::input(format!(
            "threshold {t} is below float32's range (no input can go left of it)"
        )));
    }
    let c = t as f32; // round to nearest: at most one step above t
    Ok(if f64::from(c) > t { c.next_down() } else { c })
}

fn node_err(i: usize, msg: impl std::fmt::Display) -> WoodlotError {
    WoodlotError::input(format!("node {i}: {msg}"))
}

/// Checks `arrays` and builds the equivalent woodlot [`Tree`] for `n_features` features and
/// `n_classes` classes (see the module docs for what is preserved).
pub fn tree_from_nodes(arrays: &NodeArrays<'_>, n_features: u32, n_classes: u32) -> Result<Tree> {
    tree_from_nodes_of_outputs(arrays, n_features, n_classes, &[n_classes])
}

/// [`tree_from_nodes`] for a multi-output tree: each value row holds every output's class
/// weights side by side (`outputs[j]` for output `j`, summing to `n_classes`), and each
/// output's part of a leaf row is checked and normalised on its own.
pub fn tree_from_nodes_of_outputs(
    arrays: &NodeArrays<'_>,
    n_features: u32,
    n_classes: u32,
    outputs: &[u32],
) -> Result<Tree> {
    let widths: u64 = outputs.iter().map(|&w| u64::from(w)).sum();
    if widths != u64::from(n_classes) || outputs.contains(&0) {
        return Err(WoodlotError::input(format!(
            "output class counts {outputs:?} must each be at least 1 and sum to n_classes \
             {n_classes}"
        )));
    }
    let n = arrays.children_left.len();
    let c = n_classes as usize;
    if n == 0 {
        return Err(WoodlotError::input("the tree has no nodes"));
    }
    if u32::try_from(n).is_err() {
        return Err(WoodlotError::input(format!(
            "the tree has {n} nodes, more than woodlot addresses"
        )));
    }
    if c == 0 {
        return Err(WoodlotError::input("n_classes must be at least 1"));
    }
    // A node keeps its missing-value direction in its feature word's top bit.
    if n_features > MAX_FEATURES {
        return Err(WoodlotError::input(format!(
            "n_features {n_features} is more than the 2^31 a tree can index"
        )));
    }
    let lens = [
        ("children_right", arrays.children_right.len()),
        ("feature", arrays.feature.len()),
        ("threshold", arrays.threshold.len()),
        ("impurity", arrays.impurity.len()),
        ("n_node_samples", arrays.n_node_samples.len()),
        (
            "weighted_n_node_samples",
            arrays.weighted_n_node_samples.len(),
        ),
    ];
    for (name, len) in lens {
        if len != n {
            return Err(WoodlotError::input(format!(
                "{name} has {len} entries, children_left {n}: every node array needs one per node"
            )));
        }
    }
    if let Some(m) = arrays.missing_go_to_left {
        if m.len() != n {
            return Err(WoodlotError::input(format!(
                "missing_go_to_left has {} entries, children_left {n}",
                m.len()
            )));
        }
    }
    if Some(arrays.value.len()) != n.checked_mul(c) {
        return Err(WoodlotError::input(format!(
            "value has {} entries, expected {n} nodes x {c} classes",
            arrays.value.len()
        )));
    }

    // Depth-first preorder walk from the root (left subtree first); `seen` catches cycles and
    // shared children, so the walk visits at most n nodes.
    let mut seen = vec![false; n];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut stack: Vec<usize> = vec![0];
    seen[0] = true;
    while let Some(i) = stack.pop() {
        order.push(i);
        let (l, r) = (arrays.children_left[i], arrays.children_right[i]);
        if l == NO_CHILD && r == NO_CHILD {
            continue;
        }
        if l == NO_CHILD || r == NO_CHILD {
            return Err(node_err(
                i,
                format!("has one child only (left {l}, right {r})"),
            ));
        }
        for (side, child) in [("right", r), ("left", l)] {
            let k = usize::try_from(child)
                .ok()
                .filter(|&k| k < n)
                .ok_or_else(|| {
                    node_err(i, format!("{side} child {child} is not a node (0..{n})"))
                })?;
            if std::mem::replace(&mut seen[k], true) {
                return Err(node_err(
                    i,
                    format!("{side} child {k} is reached twice (a cycle or a shared node)"),
                ));
            }
            stack.push(k);
        }
    }
    if order.len() != n {
        let lost = seen.iter().position(|s| !s).unwrap_or(0);
        return Err(node_err(lost, "is not reachable from the root"));
    }
    let mut new_id = vec![0u32; n];
    for (k, &i) in order.iter().enumerate() {
        new_id[i] = k as u32;
    }

    let mut nodes = Vec::with_capacity(n);
    let mut leaf_values = Vec::new();
    let mut stats = NodeStats {
        impurity: Vec::with_capacity(n),
        n_samples: Vec::with_capacity(n),
        weighted_n_samples: Vec::with_capacity(n),
    };
    let mut n_leaves = 0u32;
    for &i in &order {
        let imp = arrays.impurity[i];
        if !imp.is_finite() {
            return Err(node_err(i, format!("impurity is {imp}")));
        }
        let w = arrays.weighted_n_node_samples[i];
        if !(w.is_finite() && w >= 0.0) {
            return Err(node_err(i, format!("weighted_n_node_samples is {w}")));
        }
        let ns = u32::try_from(arrays.n_node_samples[i])
            .map_err(|_| node_err(i, format!("n_node_samples is {}", arrays.n_node_samples[i])))?;
        stats.impurity.push(imp as f32);
        stats.n_samples.push(ns);
        stats.weighted_n_samples.push(w as f32);
        if arrays.children_left[i] == NO_CHILD {
            let row = &arrays.value[i * c..(i + 1) * c];
            if let Some(v) = row.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(node_err(
                    i,
                    format!("leaf value {v} is not a finite weight >= 0"),
                ));
            }
            let mut start = 0usize;
            for &width in outputs {
                let part = &row[start..start + width as usize];
                start += width as usize;
                let sum: f64 = part.iter().sum();
                if !(sum > 0.0 && sum.is_finite()) {
                    return Err(node_err(i, "leaf values sum to 0: no class distribution"));
                }
                // Fractions that are already exact `f32`s (a woodlot tree that went out through
                // `to_sklearn`) are kept bit for bit; anything else is divided by its sum.
                let exact =
                    (sum - 1.0).abs() <= 1e-6 && part.iter().all(|v| f64::from(*v as f32) == *v);
                if exact {
                    leaf_values.extend(part.iter().map(|v| *v as f32));
                } else {
                    leaf_values.extend(part.iter().map(|v| (v / sum) as f32));
                }
            }
            nodes.push(Node::leaf(n_leaves));
            n_leaves += 1;
        } else {
            let f = arrays.feature[i];
            let feature = u32::try_from(f)
                .ok()
                .filter(|&f| f < n_features)
                .ok_or_else(|| {
                    node_err(
                        i,
                        format!("feature {f} is out of range (n_features = {n_features})"),
                    )
                })?;
            let threshold = f32_threshold(arrays.threshold[i]).map_err(|e| node_err(i, e))?;
            let missing_left = arrays.missing_go_to_left.is_some_and(|m| m[i] != 0);
            let left = new_id[arrays.children_left[i] as usize];
            let right = new_id[arrays.children_right[i] as usize];
            nodes.push(Node::split(feature, threshold, left, right, missing_left));
        }
    }
    Ok(Tree {
        n_classes,
        nodes,
        leaf_values,
        stats,
    })
}

/// A forest of already built `trees` (see [`tree_from_nodes`]) with `params` as its recorded
/// hyperparameters and `n_samples` as its training size (no training fingerprint: the data
/// never passed through woodlot). Checks that the trees agree with the forest's shape and that
/// `params` hold for `n_samples`.
pub fn forest_from_trees(
    n_features: u32,
    n_classes: u32,
    params: ForestParams,
    trees: Vec<Tree>,
    n_samples: u64,
) -> Result<Forest> {
    if n_features == 0 {
        return Err(WoodlotError::input("n_features must be at least 1"));
    }
    if trees.is_empty() {
        return Err(WoodlotError::input("a forest needs at least one tree"));
    }
    if let Some(t) = trees.iter().position(|t| t.n_classes != n_classes) {
        return Err(WoodlotError::input(format!(
            "tree {t} has {} classes, the forest {n_classes}",
            trees[t].n_classes
        )));
    }
    let n = usize::try_from(n_samples)
        .map_err(|_| WoodlotError::input(format!("n_samples {n_samples} is out of range")))?;
    params.resolve(n, n_features as usize, n_classes as usize)?;
    Ok(Forest {
        n_features,
        n_classes,
        output_classes: Vec::new(),
        params,
        trees,
        oob: None,
        fit_info: FitInfo {
            training_fingerprint: String::new(),
            n_samples,
            fit_seconds: 0.0,
        },
        training_histogram: None,
    })
}

/// The row indices tree `tree_index` of a forest fitted with `params` drew into its bootstrap
/// sample, in draw order (with repeats), replaying the fit's own generator: scikit-learn's
/// `estimators_samples_[i]`. `base_weights` are the per-row sample weight x class weight the
/// fit drew in proportion to (`None`: uniform). Without bootstrap every row is in the sample.
pub fn bootstrap_draws(
    params: &ForestParams,
    tree_index: usize,
    n_samples: usize,
    base_weights: Option<&[f64]>,
) -> Result<Vec<u32>> {
    if u32::try_from(n_samples).is_err() {
        return Err(WoodlotError::input(format!(
            "n_samples {n_samples} is out of range"
        )));
    }
    if !params.bootstrap {
        return Ok((0..n_samples as u32).collect());
    }
    if let Some(w) = base_weights {
        if w.len() != n_samples {
            return Err(WoodlotError::input(format!(
                "{} base weights for {n_samples} samples",
                w.len()
            )));
        }
        if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || w.iter().all(|v| *v == 0.0) {
            return Err(WoodlotError::input(
                "base weights must be finite, >= 0 and not all 0",
            ));
        }
    }
    let draws = params.bootstrap_size(n_samples)?;
    let sampler = base_weights.and_then(WeightedSampler::new);
    let mut rng = Rng::new(tree_seed(params.random_state, tree_index as u64));
    // The same calls in the same order as `sampling::bootstrap_counts`, recording each draw.
    Ok((0..draws)
        .map(|_| match &sampler {
            None => rng.below(n_samples as u64) as u32,
            Some(s) => s.draw(&mut rng) as u32,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::sampling::bootstrap_counts;

    #[test]
    fn thresholds_route_every_f32_as_the_f64_comparison_does() {
        let mut rng = Rng::new(7);
        for _ in 0..20_000 {
            let a = f32::from_bits(rng.next_u64() as u32);
            let b = f32::from_bits(rng.next_u64() as u32);
            if !a.is_finite() || !b.is_finite() {
                continue;
            }
            let t = (f64::from(a) + f64::from(b)) / 2.0;
            let t32 = f32_threshold(t).unwrap();
            for x in [
                a,
                b,
                a.next_up(),
                a.next_down(),
                b.next_up(),
                b.next_down(),
                t as f32,
            ] {
                assert_eq!(f64::from(x) <= t, x <= t32, "x={x} t={t} t32={t32}");
            }
        }
        assert_eq!(f32_threshold(f64::INFINITY).unwrap(), f32::INFINITY);
        assert_eq!(f32_threshold(1e300).unwrap(), f32::MAX);
        assert!(f32_threshold(f64::NAN).is_err());
        assert!(f32_threshold(-1e300).is_err());
    }

    /// A root split on feature 0 at 0.5 with two pure leaves, as scikit-learn's arrays.
    const STUMP_LEFT: [i64; 3] = [1, -1, -1];
    const STUMP_RIGHT: [i64; 3] = [2, -1, -1];
    const STUMP_FEATURE: [i64; 3] = [0, -2, -2];
    const STUMP_THRESHOLD: [f64; 3] = [0.5, -2.0, -2.0];
    const STUMP_IMPURITY: [f64; 3] = [0.5, 0.0, 0.0];
    const STUMP_N: [i64; 3] = [4, 2, 2];
    const STUMP_W: [f64; 3] = [4.0, 2.0, 2.0];
    const STUMP_VALUE: [f64; 6] = [0.5, 0.5, 1.0, 0.0, 0.0, 1.0];

    fn stump() -> NodeArrays<'static> {
        NodeArrays {
            children_left: &STUMP_LEFT,
            children_right: &STUMP_RIGHT,
            feature: &STUMP_FEATURE,
            threshold: &STUMP_THRESHOLD,
            missing_go_to_left: None,
            impurity: &STUMP_IMPURITY,
            n_node_samples: &STUMP_N,
            weighted_n_node_samples: &STUMP_W,
            value: &STUMP_VALUE,
        }
    }

    #[test]
    fn a_stump_builds_and_routes() {
        let m = [1u8, 0, 0];
        let a = NodeArrays {
            missing_go_to_left: Some(&m),
            ..stump()
        };
        let tree = tree_from_nodes(&a, 1, 2).unwrap();
        assert_eq!(tree.leaf_value(tree.leaf_of(&[0.5])), &[1.0, 0.0]);
        assert_eq!(tree.leaf_value(tree.leaf_of(&[0.6])), &[0.0, 1.0]);
        assert_eq!(tree.leaf_value(tree.leaf_of(&[f32::NAN])), &[1.0, 0.0]);
    }

    #[test]
    fn hostile_arrays_are_refused_with_the_node_named() {
        let base = stump();
        let cycle = [1, 0, -1];
        let cycle_r = [2, 2, -1];
        let shared = [1, -1, -1];
        let shared_r = [1, -1, -1];
        let far = [99, -1, -1];
        let neg = [-5, -1, -1];
        let one_child = [1, -1, -1];
        let one_child_r = [-1, -1, -1];
        let bad_feature = [3, -2, -2];
        let nan_t = [f64::NAN, -2.0, -2.0];
        let zero_leaf = [0.5, 0.5, 0.0, 0.0, 0.0, 1.0];
        let neg_leaf = [0.5, 0.5, -1.0, 2.0, 0.0, 1.0];
        let short = [0.5, 0.5];
        let neg_ns = [4, -2, 2];
        let cases: Vec<(NodeArrays<'_>, &str)> = vec![
            (
                NodeArrays {
                    children_left: &cycle,
                    children_right: &cycle_r,
                    ..base
                },
                "reached twice",
            ),
            (
                NodeArrays {
                    children_left: &shared,
                    children_right: &shared_r,
                    ..base
                },
                "reached twice",
            ),
            (
                NodeArrays {
                    children_left: &far,
                    ..base
                },
                "not a node",
            ),
            (
                NodeArrays {
                    children_left: &neg,
                    ..base
                },
                "not a node",
            ),
            (
                NodeArrays {
                    children_left: &one_child,
                    children_right: &one_child_r,
                    ..base
                },
                "one child",
            ),
            (
                NodeArrays {
                    feature: &bad_feature,
                    ..base
                },
                "out of range",
            ),
            (
                NodeArrays {
                    threshold: &nan_t,
                    ..base
                },
                "NaN",
            ),
            (
                NodeArrays {
                    value: &zero_leaf,
                    ..base
                },
                "sum to 0",
            ),
            (
                NodeArrays {
                    value: &neg_leaf,
                    ..base
                },
                "finite weight",
            ),
            (
                NodeArrays {
                    value: &short,
                    ..base
                },
                "value has",
            ),
            (
                NodeArrays {
                    threshold: &short,
                    ..base
                },
                "threshold has",
            ),
            (
                NodeArrays {
                    n_node_samples: &neg_ns,
                    ..base
                },
                "n_node_samples",
            ),
        ];
        for (arrays, needle) in cases {
            let err = tree_from_nodes(&arrays, 1, 2).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
        // A node nobody points at.
        let l4 = [-1i64, -1, -1];
        let r4 = [-1i64, -1, -1];
        let err = tree_from_nodes(
            &NodeArrays {
                children_left: &l4,
                children_right: &r4,
                ..base
            },
            1,
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not reachable"), "{err}");
        // A feature index past 2^31 would run into the node's missing-value bit.
        let feature = [1i64 << 31, -2, -2];
        let arrays = NodeArrays {
            feature: &feature,
            ..base
        };
        let err = tree_from_nodes(&arrays, u32::MAX, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the 2^31"), "{err}");
    }

    #[test]
    fn best_first_order_is_renumbered_into_preorder() {
        // Root splits into 1 (split) and 2 (leaf); node 1's children are 3 and 4.
        let l = [1i64, 3, -1, -1, -1];
        let r = [2i64, 4, -1, -1, -1];
        let f = [0i64, 0, -2, -2, -2];
        let t = [0.5, 0.25, -2.0, -2.0, -2.0];
        let imp = [0.0; 5];
        let ns = [3i64, 2, 1, 1, 1];
        let w = [3.0, 2.0, 1.0, 1.0, 1.0];
        let v = [1.0, 2.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        let a = NodeArrays {
            children_left: &l,
            children_right: &r,
            feature: &f,
            threshold: &t,
            missing_go_to_left: None,
            impurity: &imp,
            n_node_samples: &ns,
            weighted_n_node_samples: &w,
            value: &v,
        };
        let tree = tree_from_nodes(&a, 1, 2).unwrap();
        // Preorder: 0, 1, 3, 4, 2.
        assert_eq!(tree.nodes[0].left, 1);
        assert_eq!(tree.nodes[0].right, 4);
        assert_eq!(tree.nodes[1].left, 2);
        assert_eq!(tree.nodes[1].right, 3);
        assert_eq!(tree.leaf_value(tree.leaf_of(&[0.9])), &[0.0, 1.0]);
        assert_eq!(tree.leaf_value(tree.leaf_of(&[0.1])), &[1.0, 0.0]);
    }

    #[test]
    fn replayed_draws_match_the_counts_the_fit_draws() {
        let params = ForestParams {
            random_state: 11,
            ..ForestParams::default()
        };
        for weights in [None, Some(vec![1.0, 0.0, 3.0, 2.0, 0.5, 1.0, 1.0])] {
            let n = 7;
            let draws = bootstrap_draws(&params, 3, n, weights.as_deref()).unwrap();
            let sampler = weights.as_deref().and_then(WeightedSampler::new);
            let mut rng = Rng::new(tree_seed(11, 3));
            let counts = bootstrap_counts(&mut rng, n, n, sampler.as_ref());
            let mut replayed = vec![0u32; n];
            for d in draws {
                replayed[d as usize] += 1;
            }
            assert_eq!(replayed, counts);
        }
    }
}
