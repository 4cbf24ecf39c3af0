//! Multi-output forests (scikit-learn's `y` of shape `(n_samples, k)`): every output's classes
//! side by side in one class space, so a probability row holds each output's probabilities
//! one after the other and the prediction machinery (plain walk, compiled layout, probes) works
//! on it unchanged. This module holds what differs: the per-output prediction, and the
//! refusal of single-output answers (one class code per row) a multi-output forest cannot give.

use ndarray::{Array2, ArrayView2};

use super::predict::argmax;
use super::Forest;
use crate::error::{Result, WoodlotError};
use crate::value::FeatureValue;

impl Forest {
    /// Refuses `what` (an operation that answers one class per row, such as `predict`, a
    /// comparison by accuracy, or serving) on a multi-output forest, with what to do instead.
    pub fn require_single_output(&self, what: &str) -> Result<()> {
        if self.is_multi_output() {
            return Err(WoodlotError::input(format!(
                "{what} needs a single-output forest, but this forest has {} outputs (of {:?} \
                 classes); use predict_outputs / predict_proba per output, or fit one forest \
                 per output",
                self.output_classes.len(),
                self.output_classes
            )));
        }
        Ok(())
    }

    /// Each output's class code for every row, `n_rows x n_outputs` (row-major `u32`): the
    /// argmax of each output's part of the probability row (the first on ties). For a
    /// single-output forest, one column equal to [`Forest::predict`]'s.
    pub fn predict_outputs<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Array2<u32>> {
        let proba = self.predict_proba(x, n_threads)?;
        argmax_outputs(&proba, &self.outputs())
    }
}

/// Per-output argmax of concatenated probability rows: `outputs[j]` columns for output `j`.
pub fn argmax_outputs(proba: &Array2<f64>, outputs: &[u32]) -> Result<Array2<u32>> {
    let width: usize = outputs.iter().map(|&c| c as usize).sum();
    if proba.ncols() != width {
        return Err(WoodlotError::input(format!(
            "probability rows have {} columns, but the outputs have {width} classes in all",
            proba.ncols()
        )));
    }
    let k = outputs.len();
    let mut codes = Array2::<u32>::zeros((proba.nrows(), k));
    for (row, mut out) in proba.rows().into_iter().zip(codes.rows_mut()) {
        let mut start = 0usize;
        for (j, &c) in outputs.iter().enumerate() {
            let end = start + c as usize;
            out[j] = argmax(row.slice(ndarray::s![start..end]).iter()) as u32;
            start = end;
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};

    use super::super::params::{ClassWeight, Criterion, ForestParams, SizeSpec};
    use super::super::Forest;
    use super::*;
    use crate::tree::tests::blobs;

    /// Two outputs: the blob label (3 classes) and whether feature 0 is positive (2 classes),
    /// row-major codes.
    fn two_outputs(x: &Array2<f64>, y: &[u32]) -> Vec<u32> {
        y.iter()
            .zip(x.column(0))
            .flat_map(|(&c, &v)| [c, u32::from(v > 0.0)])
            .collect()
    }

    fn params(n: usize) -> ForestParams {
        ForestParams {
            n_estimators: n,
            random_state: 3,
            ..Default::default()
        }
    }

    #[test]
    fn argmax_outputs_takes_each_outputs_segment() {
        let proba = array![[0.2, 0.8, 0.5, 0.1, 0.4], [0.6, 0.4, 0.1, 0.1, 0.8]];
        let codes = argmax_outputs(&proba, &[2, 3]).unwrap();
        assert_eq!(codes, array![[1, 0], [0, 2]]);
        assert!(argmax_outputs(&proba, &[2, 2]).is_err());
    }

    #[test]
    fn multi_output_forest_learns_every_output_and_leaf_segments_sum_to_one() {
        let (x, y) = blobs(600, 3, 1);
        let (xt, yt) = blobs(300, 3, 2);
        let y2 = two_outputs(&x, &y);
        let forest =
            Forest::fit_outputs(None, x.view(), &y2, &[3, 2], None, &params(30), 2, None).unwrap();
        assert_eq!(forest.n_classes, 5);
        assert_eq!(forest.output_classes, vec![3, 2]);
        for tree in &forest.trees {
            for leaf in tree.leaf_values.chunks(5) {
                let a: f32 = leaf[..3].iter().sum();
                let b: f32 = leaf[3..].iter().sum();
                assert!((a - 1.0).abs() < 1e-5 && (b - 1.0).abs() < 1e-5, "{leaf:?}");
            }
        }
        let want = two_outputs(&xt, &yt);
        let codes = forest.predict_outputs(xt.view(), 1).unwrap();
        for j in 0..2 {
            let right = codes
                .column(j)
                .iter()
                .zip(want.iter().skip(j).step_by(2))
                .filter(|(a, b)| a == b)
                .count();
            assert!(right as f64 / 300.0 > 0.95, "output {j}: {right}/300");
        }
        // Node sample counts are rows, not rows x outputs.
        assert_eq!(forest.trees[0].stats.n_samples[0] as usize, {
            let mut rng = crate::rng::Rng::new(crate::rng::tree_seed(3, 0));
            super::super::sampling::bootstrap_counts(&mut rng, 600, 600, None)
                .iter()
                .filter(|&&c| c > 0)
                .count()
        });
        let err = forest.predict(xt.view(), 1).unwrap_err().to_string();
        assert!(err.contains("2 outputs"), "{err}");
    }

    #[test]
    fn the_oob_score_of_several_outputs_is_subset_accuracy() {
        let (x, y) = blobs(300, 3, 8);
        let y2 = two_outputs(&x, &y);
        let p = ForestParams {
            oob_score: true,
            ..params(25)
        };
        let forest = Forest::fit_outputs(None, x.view(), &y2, &[3, 2], None, &p, 1, None).unwrap();
        let oob = forest.oob.as_ref().unwrap();
        assert_eq!(oob.decision_function.len(), 300 * 5);
        let proba = Array2::from_shape_vec((300, 5), oob.decision_function.clone()).unwrap();
        let codes = argmax_outputs(&proba, &[3, 2]).unwrap();
        let right = codes
            .rows()
            .into_iter()
            .zip(y2.chunks(2))
            .filter(|(c, want)| c[0] == want[0] && c[1] == want[1])
            .count();
        assert_eq!(oob.score, right as f64 / 300.0);
        assert!(oob.score > 0.8, "{}", oob.score);
    }

    #[test]
    fn one_output_through_fit_outputs_is_fit() {
        let (x, y) = blobs(300, 3, 4);
        let p = params(10);
        let a = Forest::fit(x.view(), &y, 3, None, &p, 1).unwrap();
        let b = Forest::fit_outputs(None, x.view(), &y, &[3], None, &p, 1, None).unwrap();
        assert_eq!(a.trees, b.trees);
        assert!(b.output_classes.is_empty());
    }

    #[test]
    fn a_duplicated_output_grows_the_single_output_trees() {
        // Two identical outputs: every output's impurity is the same, so their mean is the
        // single output's and the trees split exactly where a single-output forest splits
        // (Gini over bootstrap counts is exact arithmetic), with leaf-size limits in rows.
        let (x, y) = blobs(300, 3, 5);
        for p in [
            params(5),
            ForestParams {
                min_samples_leaf: SizeSpec::Count(7),
                ..params(5)
            },
        ] {
            assert_same_splits(&x, &y, &p);
        }
    }

    #[test]
    fn a_duplicated_output_under_entropy_picks_the_single_output_root_splits() {
        // Entropy's logarithms round differently when two outputs' terms are summed, so
        // near-ties deep in a tree may break the other way; the root splits must agree.
        let (x, y) = blobs(300, 3, 5);
        let p = ForestParams {
            criterion: Criterion::Entropy,
            ..params(8)
        };
        let single = Forest::fit(x.view(), &y, 3, None, &p, 1).unwrap();
        let doubled: Vec<u32> = y.iter().flat_map(|&c| [c, c]).collect();
        let multi =
            Forest::fit_outputs(None, x.view(), &doubled, &[3, 3], None, &p, 1, None).unwrap();
        for (s, m) in single.trees.iter().zip(&multi.trees) {
            let root = |t: &crate::tree::Tree| (t.nodes[0].feature(), t.nodes[0].threshold);
            assert_eq!(root(s), root(m));
            assert_eq!(s.stats.impurity[0], m.stats.impurity[0]);
        }
    }

    fn assert_same_splits(x: &Array2<f64>, y: &[u32], p: &ForestParams) {
        let single = Forest::fit(x.view(), y, 3, None, p, 1).unwrap();
        let doubled: Vec<u32> = y.iter().flat_map(|&c| [c, c]).collect();
        let multi =
            Forest::fit_outputs(None, x.view(), &doubled, &[3, 3], None, p, 1, None).unwrap();
        for (s, m) in single.trees.iter().zip(&multi.trees) {
            let split = |t: &crate::tree::Tree| {
                t.nodes
                    .iter()
                    .map(|n| (n.feature(), n.threshold, n.left))
                    .collect::<Vec<_>>()
            };
            assert_eq!(split(s), split(m));
            assert_eq!(s.stats.n_samples, m.stats.n_samples);
        }
    }

    #[test]
    fn class_weights_multiply_across_outputs() {
        let (x, y) = blobs(201, 2, 6);
        let y2 = two_outputs(&x, &y);
        // Per-output weights side by side: output 0 (3 classes), output 1 (2 classes).
        let p = ForestParams {
            class_weight: ClassWeight::PerClass(vec![1.0, 2.0, 4.0, 3.0, 5.0]),
            bootstrap: false,
            n_estimators: 1,
            max_depth: Some(1),
            ..Default::default()
        };
        let forest = Forest::fit_outputs(None, x.view(), &y2, &[3, 2], None, &p, 1, None).unwrap();
        let w: f64 = y2
            .chunks(2)
            .map(|r| [1.0, 2.0, 4.0][r[0] as usize] * [3.0, 5.0][r[1] as usize])
            .sum();
        let root = forest.trees[0].stats.weighted_n_samples[0] as f64;
        assert!((root - w).abs() < 1e-3 * w, "{root} vs {w}");
    }

    #[test]
    fn bad_multi_output_input_is_refused_clearly() {
        let (x, y) = blobs(50, 2, 7);
        let y2 = two_outputs(&x, &y);
        let p = params(2);
        let short = Forest::fit_outputs(None, x.view(), &y2[..99], &[3, 2], None, &p, 1, None);
        assert!(short
            .unwrap_err()
            .to_string()
            .contains("50 samples x 2 outputs"));
        let mut bad = y2.clone();
        bad[3] = 2;
        let err = Forest::fit_outputs(None, x.view(), &bad, &[3, 2], None, &p, 1, None);
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("output 1's 2 classes"));
        let mono = ForestParams {
            monotonic_cst: Some(vec![1, 0]),
            ..p.clone()
        };
        let err = Forest::fit_outputs(None, x.view(), &y2, &[3, 2], None, &mono, 1, None);
        assert!(err.unwrap_err().to_string().contains("multiple outputs"));
        let single = Forest::fit(x.view(), &y, 3, None, &p, 1).unwrap();
        let err = Forest::fit_outputs(Some(&single), x.view(), &y2, &[3, 2], None, &p, 1, None);
        assert!(err.unwrap_err().to_string().contains("same outputs"));
    }
}
