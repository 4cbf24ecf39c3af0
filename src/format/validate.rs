//! Structural validation of a [`Forest`]: everything prediction, importances and the Python
//! attributes rely on without checking again.
//!
//! A decoded payload is only data; this is what makes it a forest. A tree that fails here is
//! rejected before anything traverses it. The checks are also cheap enough to run on an
//! in-memory forest (the encoder runs them so it never writes a file it could not read).

use rayon::prelude::*;

use crate::error::{Result, WoodlotError};
use crate::forest::threads::{available_cores, run_in_pool};
use crate::forest::{Forest, ForestParams, SizeSpec};
use crate::tree::{NodeStats, Tree, MAX_FEATURES};

/// How far a leaf's class fractions may sum from 1 (they are `f32` quotients of weight sums).
pub const LEAF_SUM_TOLERANCE: f64 = 1e-3;

/// Payloads of at least this many bytes of trees decode their trees in parallel; below it one
/// thread is faster than waking others (and small files decode on the caller's thread alone).
pub(super) const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Runs `f` on the current rayon pool when called from one (the caller chose the threads),
/// else on the cached pool of all cores (never rayon's global pool, which a forked child
/// cannot use; see [`crate::forest::threads`]).
pub(super) fn in_parallel<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    if rayon::current_thread_index().is_some() {
        Ok(f())
    } else {
        run_in_pool(available_cores(), f)
    }
}

/// Forests of at least this many nodes encode and validate their trees in parallel.
pub(super) const PARALLEL_MIN_NODES: usize = 1 << 16;

/// Checks the structure of `forest`; the error names the tree and node at fault.
///
/// - `n_features >= 1`, `n_classes >= 1`, at least one tree;
/// - the hyperparameters pass [`ForestParams::resolve`] for the recorded training size;
/// - the fit facts are finite, the out-of-bag estimate (if any) has
///   `n_samples * n_classes` finite fractions;
/// - every tree is a proper tree (see `validate_tree`).
///
/// `params.n_estimators` need not equal the number of trees (warm start may differ).
pub fn validate_forest(forest: &Forest) -> Result<()> {
    validate_forest_head(forest)?;
    let outputs = forest.outputs();
    let check = |(t, tree): (usize, &Tree)| {
        validate_tree(tree, forest.n_features, forest.n_classes, &outputs)
            .map_err(|reason| tree_error(t, reason))
    };
    let nodes: usize = forest.trees.iter().map(|t| t.nodes.len()).sum();
    if nodes >= PARALLEL_MIN_NODES {
        // Trees are independent; the first failure in tree order is reported, as sequentially.
        let failure = in_parallel(|| {
            forest
                .trees
                .par_iter()
                .enumerate()
                .map(check)
                .find_first(|r| r.is_err())
        })?;
        failure.unwrap_or(Ok(()))
    } else {
        forest.trees.iter().enumerate().try_for_each(check)
    }
}

/// The error [`validate_forest`] gives when tree `t` fails [`validate_tree`] with `reason`.
pub(super) fn tree_error(t: usize, reason: String) -> WoodlotError {
    WoodlotError::corrupt(format!("tree {t} {reason}"))
}

/// Every check of [`validate_forest`] but the trees' own ([`validate_tree`]), in the same
/// order: a decoder that checks each tree as it decodes it runs this, then reports the first
/// failed tree, and so fails with the same first error as `validate_forest`.
pub(super) fn validate_forest_head(forest: &Forest) -> Result<()> {
    if forest.n_features == 0 {
        return Err(WoodlotError::corrupt("forest has n_features = 0"));
    }
    if forest.n_features > MAX_FEATURES {
        return Err(WoodlotError::corrupt(format!(
            "forest has n_features = {}, more than the 2^31 a tree can index",
            forest.n_features
        )));
    }
    if forest.n_classes == 0 {
        return Err(WoodlotError::corrupt("forest has n_classes = 0"));
    }
    if forest.trees.is_empty() {
        return Err(WoodlotError::corrupt("forest has no trees"));
    }
    check_outputs(forest)?;
    let n_samples = usize::try_from(forest.fit_info.n_samples).map_err(|_| {
        WoodlotError::corrupt(format!(
            "fit_info.n_samples {} does not fit this platform",
            forest.fit_info.n_samples
        ))
    })?;
    check_params(
        &forest.params,
        n_samples,
        forest.n_features,
        forest.n_classes,
    )?;
    let secs = forest.fit_info.fit_seconds;
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(WoodlotError::corrupt(format!(
            "fit_info.fit_seconds is {secs}"
        )));
    }
    if let Some(h) = &forest.training_histogram {
        h.check(forest.n_features)?;
        if h.rows != forest.fit_info.n_samples {
            return Err(WoodlotError::corrupt(format!(
                "training histogram counts {} rows, the fit {}",
                h.rows, forest.fit_info.n_samples
            )));
        }
    }
    if let Some(oob) = &forest.oob {
        let expected = oob.n_samples.checked_mul(u64::from(forest.n_classes));
        if expected != Some(oob.decision_function.len() as u64) {
            return Err(WoodlotError::corrupt(format!(
                "oob decision function has {} values, expected n_samples {} x n_classes {}",
                oob.decision_function.len(),
                oob.n_samples,
                forest.n_classes
            )));
        }
        if let Some(v) = oob
            .decision_function
            .iter()
            .find(|v| !(0.0..=1.0).contains(*v))
        {
            return Err(WoodlotError::corrupt(format!(
                "oob decision function holds {v}, not a probability"
            )));
        }
        // NaN is allowed: no sample may have been out of bag.
        if !(oob.score.is_nan() || (0.0..=1.0).contains(&oob.score)) {
            return Err(WoodlotError::corrupt(format!("oob score is {}", oob.score)));
        }
    }
    Ok(())
}

/// A multi-output forest's class counts: at least two outputs, each with a class, summing to
/// `n_classes` (an empty list is a single output).
fn check_outputs(forest: &Forest) -> Result<()> {
    let outputs = &forest.output_classes;
    if outputs.is_empty() {
        return Ok(());
    }
    if outputs.len() == 1 {
        return Err(WoodlotError::corrupt(
            "output_classes lists one output; a single-output forest records none",
        ));
    }
    if outputs.contains(&0) {
        return Err(WoodlotError::corrupt(format!(
            "output_classes {outputs:?} has an output without classes"
        )));
    }
    let total: u64 = outputs.iter().map(|&c| u64::from(c)).sum();
    if total != u64::from(forest.n_classes) {
        return Err(WoodlotError::corrupt(format!(
            "output_classes {outputs:?} sum to {total}, but the forest has {} classes",
            forest.n_classes
        )));
    }
    Ok(())
}

/// Hyperparameters must be ones `fit` would accept.
fn check_params(
    params: &ForestParams,
    n_samples: usize,
    n_features: u32,
    n_classes: u32,
) -> Result<()> {
    // `resolve` doubles min_samples_leaf; keep a hostile value from overflowing there.
    if let SizeSpec::Count(c) = params.min_samples_leaf {
        if c > usize::MAX / 4 {
            return Err(WoodlotError::corrupt(format!(
                "params: min_samples_leaf {c} is out of range"
            )));
        }
    }
    let n_features = usize::try_from(n_features).unwrap_or(usize::MAX);
    let n_classes = usize::try_from(n_classes).unwrap_or(usize::MAX);
    params
        .resolve(n_samples, n_features, n_classes)
        .map(|_| ())
        .map_err(|e| WoodlotError::corrupt(format!("params: {e}")))
}

/// Checks one tree; the error (a reason to prefix with the tree's name) names the node at fault.
///
/// - the tree has `n_classes` classes, at least one node, and `stats` arrays as long as `nodes`
///   holding finite numbers (weights >= 0);
/// - a split node's `left` and `right` are strictly greater than its own index and inside the
///   node array, its feature is `< n_features`, its threshold is neither NaN nor `-inf`
///   (`+inf` is allowed);
/// - every node but the root has exactly one parent (so the nodes form one tree);
/// - the nodes are in depth-first preorder: a split node's left child is the next node and its
///   right child the node after its left subtree (the model file stores only this order);
/// - a leaf has feature 0, threshold 0.0 and `missing_left` false (the file stores none);
/// - a leaf's `right` is its row in `leaf_values`; there are exactly `n_leaves * n_classes`
///   values, the leaves take the rows in node order (the file stores none), and each row holds
///   fractions in `[0, 1]` summing to 1 (within [`LEAF_SUM_TOLERANCE`]).
pub(super) fn validate_tree(
    tree: &Tree,
    n_features: u32,
    n_classes: u32,
    outputs: &[u32],
) -> std::result::Result<(), String> {
    // One pass that only says yes or no; a tree it doubts gets every check in order, for the
    // first failure's reason (and has the last word: the fast pass is never more lenient).
    if passes_every_check(tree, n_features, n_classes, outputs) {
        return Ok(());
    }
    check_in_order(tree, n_features, n_classes, outputs)
}

/// Whether `tree` passes every check of [`validate_tree`], in one pass over its nodes: a valid
/// tree is answered at the cost of reading it once, with no allocation but a stack as deep as
/// the tree. Conservative: `true` only if [`check_in_order`] would return `Ok`.
///
/// Why one pass suffices for the structure: in depth-first preorder, the node after a split
/// is its left child, and the node after a leaf is the right child of the innermost split whose
/// left subtree that leaf closes (the top of a stack of pending right children). Requiring both
/// at every node, and the stack empty exactly at the last node, makes every node but the root
/// the child of exactly one split, reached from the root, with children pointing forward inside
/// the array and each right child following its left subtree: passes 1 and 2 of
/// [`check_in_order`]. Leaves are met in node order, so `right == rank` is pass 3's row rule.
fn passes_every_check(tree: &Tree, n_features: u32, n_classes: u32, outputs: &[u32]) -> bool {
    let n = tree.nodes.len();
    let c = n_classes as usize;
    if !lengths_pass(tree, n_classes) || !stats_pass(&tree.stats) {
        return false;
    }
    let mut pending: Vec<u32> = Vec::new();
    let mut rank = 0usize;
    for (i, node) in tree.nodes.iter().enumerate() {
        let next = i + 1;
        if node.is_leaf() {
            if node.feature() != 0 || node.threshold.to_bits() != 0 || node.missing_left() {
                return false;
            }
            if node.right as usize != rank {
                return false;
            }
            let Some(values) = tree.leaf_values.get(rank * c..(rank + 1) * c) else {
                return false;
            };
            if !leaf_row_passes(values, outputs) {
                return false;
            }
            rank += 1;
            // The next node is the innermost pending right child, or there is none.
            match pending.pop() {
                Some(right) if right as usize == next => {}
                None if next == n => {}
                _ => return false,
            }
        } else {
            let right = node.right as usize;
            if node.left as usize != next
                || next >= n
                || right <= next
                || right >= n
                || node.feature() >= n_features
                || node.threshold.is_nan()
                || node.threshold == f32::NEG_INFINITY
            {
                return false;
            }
            pending.push(node.right);
        }
    }
    pending.is_empty() && rank.checked_mul(c) == Some(tree.leaf_values.len())
}

/// Whether `tree` has the forest's class count, at least one node, node indices that fit a
/// `u32`, and one stats entry per node: the length rules every pass relies on before indexing.
fn lengths_pass(tree: &Tree, n_classes: u32) -> bool {
    let n = tree.nodes.len();
    let s = &tree.stats;
    tree.n_classes == n_classes
        && n != 0
        && u32::try_from(n - 1).is_ok()
        && s.impurity.len() == n
        && s.n_samples.len() == n
        && s.weighted_n_samples.len() == n
}

/// Whether every impurity is finite and every weighted sample count finite and non-negative,
/// folded without a branch per element so the two scans vectorize.
fn stats_pass(stats: &NodeStats) -> bool {
    let impurity_ok = stats.impurity.iter().fold(true, |ok, v| ok & v.is_finite());
    let weights_ok = stats
        .weighted_n_samples
        .iter()
        .fold(true, |ok, v| ok & v.is_finite() & (*v >= 0.0));
    impurity_ok && weights_ok
}

/// Whether a leaf's row holds fractions in `[0, 1]` whose every output sums to 1 (one output:
/// the whole row), as pass 3 of [`check_in_order`] requires.
fn leaf_row_passes(values: &[f32], outputs: &[u32]) -> bool {
    if values.iter().any(|v| !(0.0..=1.0).contains(v)) {
        return false;
    }
    let mut start = 0usize;
    outputs.iter().all(|&width| {
        let end = (start + width as usize).min(values.len());
        let sum: f64 = values[start..end].iter().map(|&v| f64::from(v)).sum();
        start = end;
        (sum - 1.0).abs() <= LEAF_SUM_TOLERANCE
    })
}

/// [`validate_tree`] for a tree the payload decoder rebuilt from its leaf bits: the decoder
/// makes its nodes one tree in depth-first preorder, gives each leaf feature 0, threshold 0.0,
/// `missing_left` false and the next leaf row, and sizes every array from the node and leaf
/// counts, so of [`validate_tree`]'s checks only those on the values the file carries can
/// fail. The fast pass checks just those, without the structural walk's branch per node
/// (loading the 100k x 50 forest checks 2.6 million nodes); a tree it doubts gets every check
/// in order, so the answer and the first failure's reason are [`validate_tree`]'s. Unit tests
/// confirm every tree the fast pass accepts with the structural pass too.
///
/// `rows_pure` says the caller has already seen the row of every leaf of `tree` (in a decoded
/// tree, every row) hold exactly one `1.0` and zeros elsewhere, in a forest of one output:
/// such a row passes the leaf-row rule, so the pass skips reading the rows again (the
/// prediction layout's compiler reads them to make class-vote leaves, 6.6 million values in
/// the 100k x 50 forest).
pub(super) fn validate_decoded_tree(
    tree: &Tree,
    n_features: u32,
    n_classes: u32,
    outputs: &[u32],
    rows_pure: bool,
) -> std::result::Result<(), String> {
    if values_pass(tree, n_features, n_classes, outputs, rows_pure) {
        #[cfg(test)]
        assert!(
            passes_every_check(tree, n_features, n_classes, outputs),
            "validate_decoded_tree accepted a tree every check refuses: one the decoder did \
             not build, or leaf rows wrongly claimed pure"
        );
        return Ok(());
    }
    check_in_order(tree, n_features, n_classes, outputs)
}

/// The value checks of [`passes_every_check`], with no walk of the structure; see
/// [`validate_decoded_tree`] for why they suffice there. The node and stats scans fold without a
/// branch per element (so they vectorize); the leaf rows stop at the first failing row. A leaf's
/// feature 0 and threshold 0.0 pass the split rules whenever `n_features >= 1`, so nodes need no
/// test of which kind they are. With `rows_pure` (see [`validate_decoded_tree`]) the leaf
/// rows are taken as passing.
fn values_pass(
    tree: &Tree,
    n_features: u32,
    n_classes: u32,
    outputs: &[u32],
    rows_pure: bool,
) -> bool {
    let c = n_classes as usize;
    if !lengths_pass(tree, n_classes) || c == 0 || !tree.leaf_values.len().is_multiple_of(c) {
        return false;
    }
    let splits_ok = tree.nodes.iter().fold(true, |ok, node| {
        ok & (node.feature() < n_features)
            & !node.threshold.is_nan()
            & (node.threshold != f32::NEG_INFINITY)
    });
    splits_ok
        && stats_pass(&tree.stats)
        && (rows_pure
            || tree
                .leaf_values
                .chunks_exact(c)
                .all(|row| leaf_row_passes(row, outputs)))
}

/// Every check of [`validate_tree`], pass by pass; the error names the first failure.
fn check_in_order(
    tree: &Tree,
    n_features: u32,
    n_classes: u32,
    outputs: &[u32],
) -> std::result::Result<(), String> {
    if tree.n_classes != n_classes {
        return Err(format!(
            "has {} classes, the forest {n_classes}",
            tree.n_classes
        ));
    }
    let n = tree.nodes.len();
    if n == 0 {
        return Err("has no nodes".into());
    }
    if u32::try_from(n - 1).is_err() {
        return Err(format!("has {n} nodes, more than u32 indexes address"));
    }
    let s = &tree.stats;
    for (name, len) in [
        ("impurity", s.impurity.len()),
        ("n_samples", s.n_samples.len()),
        ("weighted_n_samples", s.weighted_n_samples.len()),
    ] {
        if len != n {
            return Err(format!("has {n} nodes but {len} {name} stats"));
        }
    }
    if let Some(i) = s.impurity.iter().position(|v| !v.is_finite()) {
        return Err(format!("node {i}: impurity is {}", s.impurity[i]));
    }
    if let Some(i) = s
        .weighted_n_samples
        .iter()
        .position(|v| !(v.is_finite() && *v >= 0.0))
    {
        return Err(format!(
            "node {i}: weighted_n_samples is {}",
            s.weighted_n_samples[i]
        ));
    }

    // Pass 1: child pointers, features, thresholds, parent counts; count the leaves.
    let mut has_parent = vec![false; n];
    let mut n_leaves = 0usize;
    for (i, node) in tree.nodes.iter().enumerate() {
        if node.is_leaf() {
            if node.feature() != 0 || node.threshold.to_bits() != 0 || node.missing_left() {
                return Err(format!(
                    "node {i}: a leaf must have feature 0, threshold 0 and missing_left false \
                     (has {}, {}, {})",
                    node.feature(),
                    node.threshold,
                    node.missing_left()
                ));
            }
            n_leaves += 1;
            continue;
        }
        for (side, child) in [("left", node.left), ("right", node.right)] {
            let c = child as usize;
            if c == i {
                return Err(format!("node {i}: {side} child points to itself"));
            }
            if c < i {
                return Err(format!("node {i}: {side} child {c} does not point forward"));
            }
            if c >= n {
                return Err(format!(
                    "node {i}: {side} child {c} is past the end ({n} nodes)"
                ));
            }
            if std::mem::replace(&mut has_parent[c], true) {
                return Err(format!("node {i}: {side} child {c} already has a parent"));
            }
        }
        if node.feature() >= n_features {
            return Err(format!(
                "node {i}: feature {} is out of range (n_features = {n_features})",
                node.feature()
            ));
        }
        if node.threshold.is_nan() {
            return Err(format!("node {i}: threshold is NaN"));
        }
        if node.threshold == f32::NEG_INFINITY {
            // Thresholds are midpoints of training values, or +inf for "every present value
            // goes left"; -inf would send every present value right and is never written.
            return Err(format!("node {i}: threshold is -inf"));
        }
    }
    // Children point forward, so the root is never a child; every other node needs a parent.
    if let Some(i) = has_parent.iter().skip(1).position(|p| !p) {
        return Err(format!("node {} is not reachable from the root", i + 1));
    }

    // Pass 2: depth-first preorder. `end[i]` is one past the last node of i's subtree when the
    // order holds (children point forward, so a reverse pass sees them first).
    let mut end = vec![0usize; n];
    for i in (0..n).rev() {
        let node = &tree.nodes[i];
        end[i] = if node.is_leaf() {
            i + 1
        } else {
            end[node.right as usize]
        };
    }
    for (i, node) in tree.nodes.iter().enumerate() {
        if node.is_leaf() {
            continue;
        }
        let (l, r) = (node.left as usize, node.right as usize);
        if l != i + 1 {
            return Err(format!(
                "node {i}: left child {l} is not the next node {}: nodes are not in depth-first \
                 preorder",
                i + 1
            ));
        }
        if r != end[l] {
            return Err(format!(
                "node {i}: right child {r} does not follow its left subtree (nodes {l}..{}): \
                 nodes are not in depth-first preorder",
                end[l] - 1
            ));
        }
    }

    // Pass 3: leaf rows.
    let c = n_classes as usize;
    let expected = n_leaves.checked_mul(c);
    if expected != Some(tree.leaf_values.len()) {
        return Err(format!(
            "has {n_leaves} leaves x {c} classes but {} leaf values",
            tree.leaf_values.len()
        ));
    }
    let mut row_owner = vec![false; n_leaves];
    let mut rank = 0usize;
    for (i, node) in tree.nodes.iter().enumerate() {
        if !node.is_leaf() {
            continue;
        }
        let row = node.right as usize;
        if row >= n_leaves {
            return Err(format!(
                "node {i}: leaf row {row} is out of range ({n_leaves} leaves)"
            ));
        }
        if std::mem::replace(&mut row_owner[row], true) {
            return Err(format!(
                "node {i}: leaf row {row} is shared with another leaf"
            ));
        }
        if row != rank {
            return Err(format!(
                "node {i}: leaf row {row} is out of order: leaves take rows in node order, so \
                 this one should have row {rank}"
            ));
        }
        rank += 1;
        let values = tree
            .leaf_values
            .get(row * c..(row + 1) * c)
            .unwrap_or_default();
        if let Some(v) = values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(format!(
                "node {i}: leaf value {v} is not a fraction in [0, 1]"
            ));
        }
        // Each output's fractions sum to 1 on their own (one output: the whole row).
        let mut start = 0usize;
        for (j, &width) in outputs.iter().enumerate() {
            let end = (start + width as usize).min(values.len());
            let sum: f64 = values[start..end].iter().map(|&v| f64::from(v)).sum();
            if (sum - 1.0).abs() > LEAF_SUM_TOLERANCE {
                return Err(if outputs.len() == 1 {
                    format!("node {i}: leaf values sum to {sum}, not 1")
                } else {
                    format!("node {i}: leaf values of output {j} sum to {sum}, not 1")
                });
            }
            start = end;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::{MaxFeatures, OobEstimate};
    use crate::format::testutil::sample_forest;
    use crate::tree::Node;

    fn reason(forest: &Forest) -> String {
        match validate_forest(forest) {
            Err(WoodlotError::CorruptModel(m)) => m,
            other => panic!("expected CorruptModel, got {other:?}"),
        }
    }

    /// Applies `f` to tree 0 of the sample forest (root split f0 -> node 1 leaf row 0, node 2
    /// split f2 -> nodes 3, 4 leaves rows 1, 2) and returns the rejection reason.
    fn tree0(f: impl FnOnce(&mut Tree)) -> String {
        let mut forest = sample_forest();
        f(&mut forest.trees[0]);
        reason(&forest)
    }

    fn node(feature: u32, threshold: f32, left: u32, right: u32) -> Node {
        Node::split(feature, threshold, left, right, false)
    }

    /// The one-pass check answers exactly as the pass-by-pass one, on valid trees and on
    /// thousands of single and double damages to them (pointers, rows, fields, values, stats).
    #[test]
    fn the_fast_check_agrees_with_every_check_in_order() {
        use crate::rng::Rng;
        let n = 300;
        let mut rng = Rng::new(5);
        let x = ndarray::Array2::from_shape_fn((n, 4), |_| (rng.unit_f64() * 20.0).round());
        let y: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let mut trees: Vec<Tree> = sample_forest().trees;
        for max_depth in [None, Some(3)] {
            let params = ForestParams {
                n_estimators: 3,
                max_depth,
                ..Default::default()
            };
            let fitted = Forest::fit(x.view(), &y, 3, None, &params, 1).unwrap();
            trees.extend(fitted.trees);
        }
        let same = |t: &Tree, nf: u32| {
            let fast = passes_every_check(t, nf, 3, &[3]);
            let full = check_in_order(t, nf, 3, &[3]);
            assert_eq!(fast, full.is_ok(), "fast {fast}, in order {full:?}");
            fast
        };
        let nf = 4;
        let (mut valid, mut refused) = (0, 0);
        for base in &trees {
            assert!(same(base, nf));
            for _ in 0..400 {
                let mut t = base.clone();
                for _ in 0..1 + rng.below(2) {
                    let len = t.nodes.len().min(t.stats.n_samples.len()) as u64;
                    if len == 0 || t.leaf_values.is_empty() {
                        break;
                    }
                    let i = rng.below(len) as usize;
                    let pick = rng.below(len + 2) as u32;
                    match rng.below(12) {
                        0 => t.nodes[i].left = pick,
                        1 => t.nodes[i].right = pick,
                        2 => t.nodes[i].set_feature(rng.below(6) as u32),
                        3 => {
                            t.nodes[i].threshold =
                                [f32::NAN, f32::NEG_INFINITY, 0.0, 1.5][rng.below(4) as usize]
                        }
                        4 => {
                            let flipped = !t.nodes[i].missing_left();
                            t.nodes[i].set_missing_left(flipped)
                        }
                        5 => t.stats.impurity[i] = [f32::INFINITY, 0.25][rng.below(2) as usize],
                        6 => {
                            t.stats.weighted_n_samples[i] =
                                [-1.0, f32::NAN, 3.0][rng.below(3) as usize]
                        }
                        7 => {
                            let k = rng.below(t.leaf_values.len() as u64) as usize;
                            t.leaf_values[k] =
                                [0.5, 1.0, 0.0, f32::NAN, 1.2][rng.below(5) as usize];
                        }
                        8 => {
                            let j = rng.below(len) as usize;
                            t.nodes.swap(i, j);
                        }
                        9 => {
                            t.nodes.truncate(i.max(1));
                        }
                        10 => {
                            t.leaf_values.pop();
                        }
                        _ => {
                            t.stats.n_samples.pop();
                        }
                    }
                }
                if same(&t, nf) {
                    valid += 1;
                } else {
                    refused += 1;
                }
                // A narrower forest refuses the splits on the last feature.
                same(&t, 3);
            }
        }
        assert!(
            valid > 100 && refused > 1000,
            "{valid} valid, {refused} refused"
        );
    }

    #[test]
    fn the_sample_forest_is_valid() {
        validate_forest(&sample_forest()).unwrap();
    }

    #[test]
    fn forest_level_checks() {
        let mut f = sample_forest();
        f.n_features = 0;
        assert!(reason(&f).contains("n_features = 0"));
        // A node keeps its missing-value direction in its feature word's top bit.
        let mut f = sample_forest();
        f.n_features = MAX_FEATURES + 1;
        assert!(reason(&f).contains("more than the 2^31 a tree can index"));
        let mut f = sample_forest();
        f.n_classes = 0;
        assert!(reason(&f).contains("n_classes = 0"));
        let mut f = sample_forest();
        f.trees.clear();
        assert!(reason(&f).contains("no trees"));
        let mut f = sample_forest();
        f.trees[1].n_classes = 2;
        assert!(
            reason(&f).starts_with("tree 1 has 2 classes"),
            "{}",
            reason(&f)
        );
        // Warm start: n_estimators need not match.
        let mut f = sample_forest();
        f.params.n_estimators = 50;
        validate_forest(&f).unwrap();
    }

    #[test]
    fn params_must_be_sane() {
        let mut f = sample_forest();
        f.params.max_features = MaxFeatures::Count(99);
        assert!(reason(&f).contains("max_features"), "{}", reason(&f));
        let mut f = sample_forest();
        f.params.n_estimators = 0;
        assert!(reason(&f).contains("n_estimators"));
        let mut f = sample_forest();
        f.params.min_samples_leaf = SizeSpec::Count(usize::MAX);
        assert!(reason(&f).contains("min_samples_leaf"));
        let mut f = sample_forest();
        f.params.ccp_alpha = f64::NAN;
        assert!(reason(&f).contains("ccp_alpha"));
    }

    #[test]
    fn fit_info_and_oob_checks() {
        let mut f = sample_forest();
        f.fit_info.fit_seconds = f64::NAN;
        assert!(reason(&f).contains("fit_seconds"));
        let mut f = sample_forest();
        f.oob.as_mut().unwrap().decision_function.pop();
        assert!(
            reason(&f).contains("oob decision function has 11 values"),
            "{}",
            reason(&f)
        );
        let mut f = sample_forest();
        f.oob.as_mut().unwrap().n_samples = u64::MAX;
        assert!(reason(&f).contains("oob decision function"));
        let mut f = sample_forest();
        f.oob.as_mut().unwrap().decision_function[3] = f64::NAN;
        assert!(reason(&f).contains("not a probability"));
        let mut f = sample_forest();
        f.oob.as_mut().unwrap().score = 2.0;
        assert!(reason(&f).contains("oob score"));
        let mut f = sample_forest();
        f.oob = Some(OobEstimate {
            score: f64::NAN,
            n_samples: 0,
            decision_function: vec![],
        });
        validate_forest(&f).unwrap();
    }

    #[test]
    fn children_must_point_forward_inside_the_array() {
        let m = tree0(|t| t.nodes[2].left = 1);
        assert!(
            m.contains("tree 0 node 2: left child 1 does not point forward"),
            "{m}"
        );
        let m = tree0(|t| t.nodes[2].right = 2);
        assert!(m.contains("node 2: right child points to itself"), "{m}");
        let m = tree0(|t| t.nodes[2].right = 5);
        assert!(
            m.contains("node 2: right child 5 is past the end (5 nodes)"),
            "{m}"
        );
        let m = tree0(|t| t.nodes[2].right = u32::MAX);
        assert!(m.contains("past the end"), "{m}");
    }

    #[test]
    fn every_node_has_exactly_one_parent() {
        // Both children of node 2 are node 3: node 4 is orphaned and node 3 has two parents.
        let m = tree0(|t| t.nodes[2].right = 3);
        assert!(
            m.contains("node 2: right child 3 already has a parent"),
            "{m}"
        );
        // Root points at node 2 twice... and node 1 at node 3 (a DAG, not a tree).
        let m = tree0(|t| {
            t.nodes[1] = node(0, 0.0, 3, 4);
        });
        assert!(m.contains("already has a parent"), "{m}");
        // An unreachable trailing node.
        let m = tree0(|t| {
            t.nodes.push(node(0, 0.0, 0, 3));
            t.leaf_values.extend([0.0, 0.0, 1.0]);
            t.stats.impurity.push(0.0);
            t.stats.n_samples.push(1);
            t.stats.weighted_n_samples.push(1.0);
        });
        assert!(m.contains("node 5 is not reachable from the root"), "{m}");
    }

    #[test]
    fn split_features_and_thresholds() {
        let m = tree0(|t| t.nodes[0].set_feature(3));
        assert!(
            m.contains("node 0: feature 3 is out of range (n_features = 3)"),
            "{m}"
        );
        let m = tree0(|t| t.nodes[2].threshold = f32::NAN);
        assert!(m.contains("node 2: threshold is NaN"), "{m}");
        let m = tree0(|t| t.nodes[2].threshold = f32::NEG_INFINITY);
        assert!(m.contains("node 2: threshold is -inf"), "{m}");
        let mut f = sample_forest();
        f.trees[0].nodes[0].threshold = f32::INFINITY;
        validate_forest(&f).unwrap();
    }

    #[test]
    fn leaf_rows_and_values() {
        let m = tree0(|t| t.nodes[3].right = 3);
        assert!(
            m.contains("node 3: leaf row 3 is out of range (3 leaves)"),
            "{m}"
        );
        let m = tree0(|t| t.nodes[3].right = 0);
        assert!(m.contains("node 3: leaf row 0 is shared"), "{m}");
        let m = tree0(|t| {
            t.leaf_values.pop();
        });
        assert!(m.contains("3 leaves x 3 classes but 8 leaf values"), "{m}");
        let m = tree0(|t| t.leaf_values[4] = 0.9);
        assert!(m.contains("node 3: leaf values sum to"), "{m}");
        let m = tree0(|t| t.leaf_values[4] = f32::NAN);
        assert!(
            m.contains("node 3: leaf value NaN is not a fraction"),
            "{m}"
        );
        let m = tree0(|t| t.leaf_values[0] = f32::INFINITY);
        assert!(m.contains("node 1: leaf value inf"), "{m}");
        let m = tree0(|t| {
            t.leaf_values[0] = 1.5;
            t.leaf_values[1] = -0.5;
        });
        assert!(m.contains("not a fraction"), "{m}");
        let m = tree0(|t| t.leaf_values[6..9].copy_from_slice(&[0.0, 0.0, 0.0]));
        assert!(m.contains("node 4: leaf values sum to 0"), "{m}");
    }

    #[test]
    fn nodes_must_be_in_depth_first_preorder() {
        // Breadth-first order is one proper tree, but not in preorder: 0 -> (1, 2), 1 -> (3, 4).
        let m = tree0(|t| {
            t.nodes = vec![
                node(0, 0.5, 1, 2),
                node(2, 1.5, 3, 4),
                node(0, 0.0, 0, 0),
                node(0, 0.0, 0, 1),
                node(0, 0.0, 0, 2),
            ];
        });
        assert!(
            m.contains(
                "tree 0 node 0: right child 2 does not follow its left subtree (nodes 1..4)"
            ),
            "{m}"
        );
        // Children swapped: the left child is not the next node.
        let m = tree0(|t| {
            t.nodes[0].left = 2;
            t.nodes[0].right = 1;
        });
        assert!(
            m.contains("node 0: left child 2 is not the next node 1: nodes are not in depth-first"),
            "{m}"
        );
    }

    #[test]
    fn leaves_take_rows_in_node_order_and_carry_no_split() {
        let m = tree0(|t| {
            t.nodes[1].right = 1;
            t.nodes[3].right = 0;
        });
        assert!(
            m.contains(
                "node 1: leaf row 1 is out of order: leaves take rows in node order, so \
                        this one should have row 0"
            ),
            "{m}"
        );
        let m = tree0(|t| t.nodes[3].set_feature(2));
        assert!(
            m.contains("node 3: a leaf must have feature 0, threshold 0"),
            "{m}"
        );
        let m = tree0(|t| t.nodes[4].threshold = -0.0);
        assert!(m.contains("node 4: a leaf must have"), "{m}");
        let m = tree0(|t| t.nodes[1].set_missing_left(true));
        assert!(m.contains("(has 0, 0, true)"), "{m}");
    }

    #[test]
    fn stats_must_match_the_nodes() {
        let m = tree0(|t| {
            t.stats.n_samples.pop();
        });
        assert!(m.contains("5 nodes but 4 n_samples stats"), "{m}");
        let m = tree0(|t| t.stats.impurity[2] = f32::NAN);
        assert!(m.contains("node 2: impurity is NaN"), "{m}");
        let m = tree0(|t| t.stats.weighted_n_samples[1] = -1.0);
        assert!(m.contains("node 1: weighted_n_samples is -1"), "{m}");
        let m = tree0(|t| {
            t.nodes.clear();
            t.stats = Default::default();
        });
        assert!(m.contains("tree 0 has no nodes"), "{m}");
    }
}
