//! Each feature's training histogram: what the fit saw, kept with the forest so live inputs can
//! be compared with it later (population stability index, `guard::psi`) before labels arrive.
//!
//! The fit has already binned every feature (`tree::binning`: at most 255 value bins, each the
//! range of training values it holds, plus a missing-value code), so the histogram costs one
//! pass over the 1-byte codes, never a second pass over the raw rows. Decile-style edges are
//! read off the cumulative bin counts: edge `k` (of `DRIFT_BINS - 1`) is the largest value of
//! the bin that holds the `k * n / DRIFT_BINS`-th smallest value, so every fit bin falls
//! inside one histogram bin and the counts are exact. With at most 255 distinct values per
//! feature (one fit bin per value) the edges are exactly the sample deciles a direct
//! computation from the rows gives; with more they are the decile rounded up to its fit bin's
//! largest value. Values are compared at `f32` precision, the precision the trees read.
//! Missing values are counted in a bin of their own.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};
use crate::tree::binning::MISSING_BIN;
use crate::tree::BinnedMatrix;

/// Histogram bins per feature (deciles), the usual choice for PSI.
pub const DRIFT_BINS: usize = 10;

/// Rows per block when counting codes in parallel.
const COUNT_ROWS: usize = 16_384;

/// Per-feature histograms of a set of rows: value bins between `edges`, and missing values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingHistogram {
    /// For each feature, the inner bin edges (ascending, distinct, finite): a value `x` falls in
    /// bin `edges.partition_point(|e| *e < x)` (bins are closed on the right).
    pub edges: Vec<Vec<f64>>,
    /// For each feature, the rows per value bin (`edges.len() + 1` bins).
    pub counts: Vec<Vec<u64>>,
    /// For each feature, the rows whose value is missing (NaN).
    pub missing: Vec<u64>,
    /// Rows counted.
    pub rows: u64,
}

/// The bin of `x` between `edges`, at the precision the trees read (`f32`).
#[inline]
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    let x = f64::from(x as f32);
    edges.partition_point(|e| *e < x)
}

impl TrainingHistogram {
    /// The histogram of the rows `binned` holds, from their bin codes.
    pub fn from_binned(binned: &BinnedMatrix) -> Self {
        let nf = binned.n_features;
        let per_code = code_counts(binned);
        let mut edges = Vec::with_capacity(nf);
        let mut counts = Vec::with_capacity(nf);
        let mut missing = Vec::with_capacity(nf);
        for (f, bins) in binned.bins.iter().enumerate() {
            let codes = &per_code[f * 256..(f + 1) * 256];
            let values = &codes[..bins.len()];
            let present: u64 = values.iter().sum();
            // Edge k: the largest value of the bin holding sorted position k * present / BINS.
            let mut e: Vec<f64> = Vec::with_capacity(DRIFT_BINS - 1);
            let (mut bin, mut through) = (0usize, values.first().copied().unwrap_or(0));
            for k in 1..DRIFT_BINS as u64 {
                let pos = k * present / DRIFT_BINS as u64;
                if pos >= present {
                    break;
                }
                while through <= pos {
                    bin += 1;
                    through += values[bin];
                }
                let edge = f64::from(bins.upper[bin]);
                if e.last().is_none_or(|&last| last < edge) {
                    e.push(edge);
                }
            }
            let mut c = vec![0u64; e.len() + 1];
            let mut slot = 0;
            for (b, &n) in values.iter().enumerate() {
                // Every value of fit bin `b` lies in one histogram bin (edges are bin maxima).
                while slot < e.len() && e[slot] < f64::from(bins.upper[b]) {
                    slot += 1;
                }
                c[slot] += n;
            }
            edges.push(e);
            counts.push(c);
            missing.push(codes[MISSING_BIN as usize]);
        }
        Self {
            edges,
            counts,
            missing,
            rows: binned.n_samples as u64,
        }
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.edges.len()
    }

    /// Checks what a histogram read from a file must satisfy to be used: one entry per feature
    /// (`n_features`), ascending finite edges, a count per bin, and counts that add up to the
    /// rows. The reason names the feature.
    pub fn check(&self, n_features: u32) -> Result<()> {
        let bad = |m: String| Err(WoodlotError::corrupt(format!("training histogram: {m}")));
        let nf = n_features as usize;
        if self.edges.len() != nf || self.counts.len() != nf || self.missing.len() != nf {
            return bad(format!(
                "{} edge lists, {} count lists and {} missing counts for {nf} features",
                self.edges.len(),
                self.counts.len(),
                self.missing.len()
            ));
        }
        for (f, ((e, c), &m)) in self
            .edges
            .iter()
            .zip(&self.counts)
            .zip(&self.missing)
            .enumerate()
        {
            if e.len() > 255 || c.len() != e.len() + 1 {
                return bad(format!(
                    "feature {f} has {} edges and {} counts (at most 255 edges, one count per \
                     bin)",
                    e.len(),
                    c.len()
                ));
            }
            if e.iter().any(|v| !v.is_finite()) || e.windows(2).any(|w| w[0] >= w[1]) {
                return bad(format!(
                    "the edges of feature {f} are not ascending finite values"
                ));
            }
            let total = c
                .iter()
                .try_fold(m, |acc, &n| acc.checked_add(n))
                .filter(|&t| t == self.rows);
            if total.is_none() {
                return bad(format!(
                    "the counts of feature {f} do not add up to its {} rows",
                    self.rows
                ));
            }
        }
        Ok(())
    }
}

/// `counts[f * 256 + code]`: how many rows have each code in each feature, counted in
/// parallel blocks of rows over the row-major codes.
fn code_counts(binned: &BinnedMatrix) -> Vec<u64> {
    let nf = binned.n_features;
    if nf == 0 {
        return Vec::new();
    }
    binned
        .codes()
        .par_chunks(COUNT_ROWS * nf)
        .map(|block| {
            let mut local = vec![0u64; nf * 256];
            for row in block.chunks_exact(nf) {
                for (f, &c) in row.iter().enumerate() {
                    local[f * 256 + c as usize] += 1;
                }
            }
            local
        })
        .reduce(
            || vec![0u64; nf * 256],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// The rows of each bin, computed directly from the column with [`bin_of`].
    fn direct(edges: &[f64], col: impl Iterator<Item = f64>) -> (Vec<u64>, u64) {
        let mut c = vec![0u64; edges.len() + 1];
        let mut missing = 0;
        for x in col {
            if x.is_nan() {
                missing += 1;
            } else {
                c[bin_of(edges, x)] += 1;
            }
        }
        (c, missing)
    }

    /// Sample deciles of the non-missing values, as `guard::psi` computes them from rows.
    fn deciles(col: impl Iterator<Item = f64>) -> Vec<f64> {
        let mut v: Vec<f64> = col
            .filter(|x| !x.is_nan())
            .map(|x| f64::from(x as f32))
            .collect();
        v.sort_by(f64::total_cmp);
        let mut e: Vec<f64> = (1..DRIFT_BINS)
            .filter_map(|k| v.get(k * v.len() / DRIFT_BINS).copied())
            .collect();
        e.dedup();
        e
    }

    fn histogram(x: &Array2<f64>) -> TrainingHistogram {
        TrainingHistogram::from_binned(&BinnedMatrix::from_matrix(x.view()).unwrap())
    }

    #[test]
    fn few_distinct_values_give_the_sample_deciles_and_exact_counts() {
        // 7 distinct values, skewed, and a missing value in about one row in nine.
        let x = Array2::from_shape_fn((1000, 2), |(i, j)| match (i % 9, j) {
            (0, 1) => f64::NAN,
            _ => [0.1, 0.1, 0.1, 0.25, 0.5, 0.5, 1.0, 3.0, 7.5][(i * 7 + j) % 9] + j as f64,
        });
        let h = histogram(&x);
        assert_eq!(h.rows, 1000);
        for f in 0..2 {
            let col = || x.column(f).to_vec().into_iter();
            assert_eq!(h.edges[f], deciles(col()), "feature {f}");
            let (counts, missing) = direct(&h.edges[f], col());
            assert_eq!(h.counts[f], counts, "feature {f}");
            assert_eq!(h.missing[f], missing, "feature {f}");
        }
        assert_eq!(h.missing[0], 0);
        assert!(h.missing[1] > 100);
        h.check(2).unwrap();
    }

    #[test]
    fn many_distinct_values_give_exact_counts_near_the_deciles() {
        let n = 20_000;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| ((i * 7919) % n) as f64 * 0.37 - 900.0);
        let h = histogram(&x);
        let col = || x.column(0).to_vec().into_iter();
        let (counts, missing) = direct(&h.edges[0], col());
        assert_eq!((h.counts[0].clone(), h.missing[0]), (counts, missing));
        assert_eq!(h.edges[0].len(), DRIFT_BINS - 1);
        // Each bin holds about a tenth of the rows (a fit bin holds about 1/255 of them).
        for c in &h.counts[0] {
            let share = *c as f64 / n as f64;
            assert!((share - 0.1).abs() < 0.01, "{:?}", h.counts[0]);
        }
    }

    #[test]
    fn a_fit_keeps_the_histogram_of_its_rows_and_a_warm_start_that_of_the_new_rows() {
        use crate::forest::{Forest, ForestParams};
        let x = Array2::from_shape_fn((400, 3), |(i, j)| ((i * 37 + j * 11) % 101) as f64);
        let y: Vec<u32> = (0..400).map(|i| (i % 2) as u32).collect();
        let params = ForestParams {
            n_estimators: 2,
            random_state: 5,
            ..ForestParams::default()
        };
        let forest = Forest::fit(x.view(), &y, 2, None, &params, 1).unwrap();
        assert_eq!(forest.training_histogram, Some(histogram(&x)));
        let x2 = x.mapv(|v| v * 2.0 + 1.0);
        let more = ForestParams {
            n_estimators: 4,
            ..params
        };
        let warm = forest.fit_more(x2.view(), &y, None, &more, 1).unwrap();
        assert_eq!(warm.training_histogram, Some(histogram(&x2)));
    }

    #[test]
    fn constant_and_all_missing_features_have_one_bin() {
        let x = Array2::from_shape_fn((50, 2), |(_, j)| if j == 0 { 4.0 } else { f64::NAN });
        let h = histogram(&x);
        assert_eq!(h.edges, vec![vec![4.0], vec![]]);
        assert_eq!(h.counts, vec![vec![50, 0], vec![0]]);
        assert_eq!(h.missing, vec![0, 50]);
        h.check(2).unwrap();
    }

    #[test]
    fn check_names_what_is_wrong() {
        let x = Array2::from_shape_fn((100, 2), |(i, j)| (i * (j + 1)) as f64);
        let good = histogram(&x);
        good.check(2).unwrap();
        let reason = |h: &TrainingHistogram, nf| h.check(nf).unwrap_err().to_string();
        assert!(reason(&good, 3).contains("for 3 features"));
        let mut h = good.clone();
        h.edges[1].reverse();
        assert!(reason(&h, 2).contains("feature 1 are not ascending"));
        let mut h = good.clone();
        h.edges[0][0] = f64::NAN;
        assert!(reason(&h, 2).contains("feature 0 are not ascending"));
        let mut h = good.clone();
        h.counts[0][0] += 1;
        assert!(reason(&h, 2).contains("feature 0 do not add up"));
        let mut h = good.clone();
        h.counts[1].pop();
        assert!(reason(&h, 2).contains("feature 1 has"));
        let mut h = good;
        h.missing[0] = u64::MAX;
        assert!(reason(&h, 2).contains("do not add up"));
    }
}

#[cfg(test)]
mod speed {
    /// The histogram's share of a fit on 100k x 50 (issue 12's data shape), in one run:
    /// `cargo test --release --lib forest::histogram::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn histogram_cost_against_binning_and_fit() {
        use crate::forest::{Forest, ForestParams};
        use crate::tree::BinnedMatrix;
        let (n, f) = (100_000, 50);
        let mut rng = crate::rng::Rng::new(3);
        let x = ndarray::Array2::from_shape_fn((n, f), |_| rng.unit_f64());
        let y: Vec<u32> = (0..n).map(|i| (x[[i, 0]] * 5.0) as u32).collect();
        let best = |f: &dyn Fn()| {
            (0..5)
                .map(|_| {
                    let t = std::time::Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        let binned = BinnedMatrix::from_matrix(x.view()).unwrap();
        let bin = best(&|| {
            BinnedMatrix::from_matrix(x.view()).unwrap();
        });
        let hist = best(&|| {
            super::TrainingHistogram::from_binned(&binned);
        });
        let params = ForestParams {
            n_estimators: 10,
            random_state: 0,
            ..ForestParams::default()
        };
        let t = std::time::Instant::now();
        let forest = Forest::fit(x.view(), &y, 5, None, &params, 2).unwrap();
        let fit = t.elapsed().as_secs_f64();
        let json = serde_json::to_vec(&forest.training_histogram)
            .unwrap()
            .len();
        println!(
            "binning {:.1} ms, histogram {:.2} ms ({:.2}% of binning)",
            bin * 1e3,
            hist * 1e3,
            100.0 * hist / bin
        );
        println!(
            "fit of 10 trees {fit:.2} s: histogram is {:.4}% of it",
            100.0 * hist / fit
        );
        println!("histogram JSON {json} B");
    }
}
