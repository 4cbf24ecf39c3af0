//! A prediction-only form of a forest, laid out for throughput on large batches.
//!
//! Fully grown trees have tens of thousands of nodes each; walked row by row, every level is a
//! cache miss, and batch prediction is bound by memory latency. The compiled form fixes the
//! layout for that case:
//!
//! - Input values are quantised once per row: for each feature, the sorted distinct thresholds
//!   the forest uses on it become cut points, and a value becomes the number of cut points below
//!   it (a `u16`). `x <= threshold_k` is then exactly `code(x) <= k`, so results are identical
//!   to the plain walk.
//! - Nodes shrink to 8 bytes in depth-first preorder (a split's left child is the next node and
//!   is not stored), so a tree is about 2.5 times smaller and a path touches fewer cache lines.
//! - Trees are walked tree by tree over a whole chunk of rows, so a tree stays in L2 while
//!   thousands of rows pass through it, and each 64-row group advances level by level with
//!   branch-free steps so the group's loads overlap.

use rayon::prelude::*;

use super::Forest;
use crate::tree::Tree;

/// Code of a missing (NaN) value: above every threshold code, so it never satisfies `<=`.
const MISSING_CODE: u16 = u16::MAX;
/// Threshold code of `+inf` thresholds ("every present value goes left").
const ALL_PRESENT_CODE: u16 = u16::MAX - 1;
/// Node flag bits in the top of the feature field.
const LEAF_BIT: u16 = 1 << 15;
const MISSING_LEFT_BIT: u16 = 1 << 14;
const FEATURE_MASK: u16 = MISSING_LEFT_BIT - 1;

/// One node: 8 bytes. For a split, `next` is the right child (the left child is the next
/// node); for a leaf, `next` is its row in the tree's leaf values.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CompactNode {
    feature_flags: u16,
    threshold: u16,
    next: u32,
}

#[derive(Debug, Clone, PartialEq)]
struct CompactTree {
    nodes: Vec<CompactNode>,
    leaf_values: Vec<f32>,
}

/// A forest compiled for batch prediction. Build it once per fitted forest and reuse it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledForest {
    n_features: usize,
    n_classes: usize,
    /// Per feature, the sorted distinct finite thresholds the forest splits that feature at.
    cuts: Vec<Vec<f32>>,
    trees: Vec<CompactTree>,
}

impl CompiledForest {
    /// Compiles `forest`, or returns `None` when it does not fit the compact layout (more than
    /// 16,383 features, or more than 65,533 distinct thresholds on one feature); callers then
    /// use the plain walk, which gives the same results. Runs on the current rayon pool, and
    /// fails (`None`) on a feature index out of range rather than panicking.
    pub fn new(forest: &Forest) -> Option<Self> {
        let n_features = forest.n_features as usize;
        if n_features > FEATURE_MASK as usize {
            return None;
        }
        // Per feature, the sorted distinct finite thresholds any tree splits it at. Gathered as
        // (feature, threshold) pairs, one per split node, then sorted and split by feature:
        // memory follows the forest's size, never trees x features (a forest of many tiny trees
        // over thousands of features would otherwise ask for a table per tree).
        let mut pairs: Vec<(u32, f32)> = forest
            .trees
            .par_iter()
            .flat_map_iter(|tree| {
                tree.nodes
                    .iter()
                    .filter(|n| !n.is_leaf() && n.threshold.is_finite())
                    .map(|n| (n.feature, n.threshold))
            })
            .collect();
        pairs.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        // Equal under `==` (so -0.0 and 0.0 are one cut, the first in total order kept), as a
        // per-feature sort + dedup does.
        pairs.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
        let mut cuts: Vec<Vec<f32>> = vec![Vec::new(); n_features];
        for (feature, threshold) in pairs {
            // An out-of-range feature fails in `compile_tree`, which finds no cut table for it.
            if let Some(c) = cuts.get_mut(feature as usize) {
                c.push(threshold);
            }
        }
        if cuts.iter().any(|c| c.len() >= ALL_PRESENT_CODE as usize) {
            return None;
        }
        let trees = forest
            .trees
            .par_iter()
            .map(|t| compile_tree(t, &cuts))
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            n_features,
            n_classes: forest.n_classes as usize,
            cuts,
            trees,
        })
    }

    /// Quantises rows (row-major, `n_features` values each) into `codes`.
    fn quantise(&self, rows: &[f32], codes: &mut Vec<u16>) {
        codes.clear();
        for row in rows.chunks_exact(self.n_features) {
            for (v, cuts) in row.iter().zip(&self.cuts) {
                codes.push(if v.is_nan() {
                    MISSING_CODE
                } else {
                    cuts.partition_point(|&c| c < *v) as u16
                });
            }
        }
    }

    /// Adds every tree's leaf fractions for `rows` (row-major `f32`, already checked) into
    /// `out` (`rows x n_classes`), in tree order.
    pub fn accumulate(&self, rows: &[f32], out: &mut [f64]) {
        let f = self.n_features;
        let c = self.n_classes;
        let n = rows.len() / f.max(1);
        let mut codes = Vec::with_capacity(n * f);
        self.quantise(rows, &mut codes);
        const GROUP: usize = 64;
        let mut leaves = [0u32; GROUP];
        let mut active = [0u8; GROUP];
        for tree in &self.trees {
            for (g, group_codes) in codes.chunks(GROUP * f).enumerate() {
                let m = group_codes.len() / f;
                walk_group(&tree.nodes, group_codes, f, &mut leaves[..m], &mut active);
                let group_out = &mut out[g * GROUP * c..(g * GROUP + m) * c];
                for (&leaf, acc) in leaves[..m].iter().zip(group_out.chunks_exact_mut(c)) {
                    let values = &tree.leaf_values[leaf as usize * c..(leaf as usize + 1) * c];
                    for (a, v) in acc.iter_mut().zip(values) {
                        *a += *v as f64;
                    }
                }
            }
        }
    }
}

/// Walks up to 64 rows of quantised codes to their leaves; `leaves` receives leaf rows.
fn walk_group(
    nodes: &[CompactNode],
    codes: &[u16],
    f: usize,
    leaves: &mut [u32],
    active: &mut [u8; 64],
) {
    let mut at = [0u32; 64];
    let mut n_active = leaves.len();
    for (k, a) in active.iter_mut().enumerate().take(n_active) {
        *a = k as u8;
    }
    while n_active > 0 {
        let mut kept = 0;
        for k in 0..n_active {
            let r = active[k] as usize;
            let node = nodes[at[r] as usize];
            if node.feature_flags & LEAF_BIT != 0 {
                leaves[r] = node.next;
                continue;
            }
            let code = codes[r * f + (node.feature_flags & FEATURE_MASK) as usize];
            let missing_left = node.feature_flags & MISSING_LEFT_BIT != 0;
            let go_left = (code <= node.threshold) | ((code == MISSING_CODE) & missing_left);
            // Branch-free pick: a mispredicted branch would flush the other rows' loads.
            at[r] = [node.next, at[r] + 1][go_left as usize];
            active[kept] = r as u8;
            kept += 1;
        }
        n_active = kept;
    }
}

/// Re-lays one tree in depth-first preorder with 8-byte nodes.
fn compile_tree(tree: &Tree, cuts: &[Vec<f32>]) -> Option<CompactTree> {
    let c = tree.n_classes as usize;
    let mut nodes: Vec<CompactNode> = Vec::with_capacity(tree.nodes.len());
    let mut leaf_values: Vec<f32> = Vec::with_capacity(tree.leaf_values.len());
    // (original node, index of the compact parent whose `next` must point here, if right child)
    let mut stack: Vec<(usize, Option<usize>)> = vec![(0, None)];
    while let Some((i, right_of)) = stack.pop() {
        let id = nodes.len();
        if let Some(p) = right_of {
            nodes[p].next = id as u32;
        }
        let node = tree.nodes.get(i)?;
        if node.is_leaf() {
            let row = leaf_values.len() / c.max(1);
            leaf_values.extend_from_slice(tree.leaf_value(i));
            nodes.push(CompactNode {
                feature_flags: LEAF_BIT,
                threshold: 0,
                next: row as u32,
            });
        } else {
            let feature = node.feature as usize;
            let threshold = if node.threshold.is_finite() {
                cuts.get(feature)?
                    .binary_search_by(|v| v.total_cmp(&node.threshold))
                    .ok()? as u16
            } else {
                ALL_PRESENT_CODE
            };
            let flags = feature as u16
                | if node.missing_left {
                    MISSING_LEFT_BIT
                } else {
                    0
                };
            nodes.push(CompactNode {
                feature_flags: flags,
                threshold,
                next: 0,
            });
            stack.push((node.right as usize, Some(id)));
            stack.push((node.left as usize, None));
        }
    }
    Some(CompactTree { nodes, leaf_values })
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::forest::{ForestParams, MaxFeatures};
    use crate::rng::Rng;

    #[test]
    fn compiled_predictions_equal_the_plain_walk_bit_for_bit() {
        let mut rng = Rng::new(3);
        let n = 700;
        let x = Array2::from_shape_fn((n, 6), |(i, j)| {
            if (i + j) % 17 == 0 {
                f64::NAN
            } else {
                (rng.unit_f64() * 10.0).round() / 3.0
            }
        });
        let y: Vec<u32> = (0..n)
            .map(|i| ((x[[i, 0]].is_nan() as usize + i) % 3) as u32)
            .collect();
        let params = ForestParams {
            n_estimators: 15,
            max_features: MaxFeatures::Count(3),
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, 3, None, &params, 2).unwrap();
        let compiled = CompiledForest::new(&forest).unwrap();
        let rows: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut out = vec![0.0; n * 3];
        compiled.accumulate(&rows, &mut out);
        let mut plain = vec![0.0; n * 3];
        for tree in &forest.trees {
            for (r, acc) in plain.chunks_exact_mut(3).enumerate() {
                let leaf = tree.leaf_of(&rows[r * 6..(r + 1) * 6]);
                for (a, v) in acc.iter_mut().zip(tree.leaf_value(leaf)) {
                    *a += *v as f64;
                }
            }
        }
        assert_eq!(out, plain);
        // And through the forest's entry point, in parallel chunks.
        let via_forest = forest
            .predict_proba_compiled(&compiled, x.view(), 2)
            .unwrap();
        assert_eq!(via_forest, forest.predict_proba(x.view(), 2).unwrap());
    }
}
