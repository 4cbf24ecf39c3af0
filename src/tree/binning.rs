//! Pre-binning of the training features into at most 255 value bins per feature.
//!
//! Split search on large nodes is a histogram sweep over bins (as LightGBM and XGBoost do)
//! instead of a sort per node and feature. A feature with at most 255 distinct training values
//! gets one bin per value, so every split scikit-learn could choose is still available and its
//! threshold is the same midpoint between neighbouring values. Features with more distinct values
//! get quantile bins: each bin keeps the smallest and largest value it holds, so a threshold is
//! always the midpoint between real training values on either side of the cut.

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::error::{Result, WoodlotError};
use crate::value::FeatureValue;

/// Bin code of a missing (NaN) value.
pub const MISSING_BIN: u8 = 255;
/// Most value bins per feature (codes `0..MAX_VALUE_BINS`).
pub const MAX_VALUE_BINS: usize = 255;

/// The value range of each bin of one feature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureBins {
    /// Smallest training value in each bin.
    pub lower: Vec<f32>,
    /// Largest training value in each bin (bins are ordered: `upper[b] < lower[b + 1]`).
    pub upper: Vec<f32>,
}

impl FeatureBins {
    /// Number of value bins.
    pub fn len(&self) -> usize {
        self.upper.len()
    }

    /// Whether the feature has no non-missing value at all.
    pub fn is_empty(&self) -> bool {
        self.upper.is_empty()
    }

    /// Bin code of a non-missing value (values beyond the last bin land in the last bin).
    #[inline]
    pub fn code(&self, v: f32) -> u8 {
        let b = self.upper.partition_point(|&u| u < v);
        b.min(self.upper.len().saturating_sub(1)) as u8
    }

    /// The threshold separating bin `lo` (goes left) from bin `hi` (goes right), `lo < hi`: the
    /// midpoint between the largest value of `lo` and the smallest of `hi`, nudged down to `lo`'s
    /// largest value when `f32` rounding would land it on `hi`'s smallest (as scikit-learn does).
    pub fn threshold_between(&self, lo: u8, hi: u8) -> f32 {
        let a = self.upper[lo as usize];
        let b = self.lower[hi as usize];
        let mid = ((a as f64 + b as f64) / 2.0) as f32;
        if mid >= b || mid.is_infinite() {
            a
        } else {
            mid
        }
    }
}

/// The training matrix as bin codes, column-major, plus each feature's bin ranges.
#[derive(Debug, Clone)]
pub struct BinnedMatrix {
    /// Number of rows.
    pub n_samples: usize,
    /// Number of features.
    pub n_features: usize,
    /// `codes[i * n_features + f]` is the bin of sample `i` in feature `f` (row-major, so a
    /// node's pass over its samples reads one cache line per sample for all its features).
    codes: Vec<u8>,
    /// Bin ranges per feature.
    pub bins: Vec<FeatureBins>,
    /// Whether each feature has at least one missing value.
    pub has_missing: Vec<bool>,
}

impl BinnedMatrix {
    /// Bins every feature of `x`. Rejects infinite values (and finite `f64` values too large for
    /// `f32`), naming the first offending row and column. Runs on the current rayon pool.
    pub fn from_matrix<T: FeatureValue>(x: ArrayView2<'_, T>) -> Result<Self> {
        let (n_samples, n_features) = x.dim();
        let columns: Vec<Result<(FeatureBins, Vec<u8>, bool)>> = (0..n_features)
            .into_par_iter()
            .map(|f| bin_column(x.column(f).iter().map(|v| v.to_f32()).collect(), f))
            .collect();
        let mut column_codes = Vec::with_capacity(n_features);
        let mut bins = Vec::with_capacity(n_features);
        let mut has_missing = Vec::with_capacity(n_features);
        for column in columns {
            let (b, c, m) = column?;
            column_codes.push(c);
            bins.push(b);
            has_missing.push(m);
        }
        // Transpose to row-major, in parallel over blocks of rows.
        let mut codes = vec![0u8; n_samples * n_features];
        const ROWS: usize = 4096;
        codes
            .par_chunks_mut(ROWS * n_features.max(1))
            .enumerate()
            .for_each(|(block, out)| {
                let first = block * ROWS;
                for (r, row) in out.chunks_exact_mut(n_features).enumerate() {
                    for (f, dst) in row.iter_mut().enumerate() {
                        *dst = column_codes[f][first + r];
                    }
                }
            });
        Ok(Self {
            n_samples,
            n_features,
            codes,
            bins,
            has_missing,
        })
    }

    /// Rebuilds a matrix binned elsewhere (the driver of a distributed fit bins once and ships
    /// its codes and bins to every worker, so every worker grows its trees on exactly the bins a
    /// local fit would use). Checks everything a tree relies on without checking again: the code
    /// count, ordered bins of at most [`MAX_VALUE_BINS`], every code inside its feature's bins
    /// (or [`MISSING_BIN`] on a feature marked as having missing values).
    pub fn from_parts(
        n_samples: usize,
        n_features: usize,
        codes: Vec<u8>,
        bins: Vec<FeatureBins>,
        has_missing: Vec<bool>,
    ) -> Result<Self> {
        let bad = |what: String| Err(WoodlotError::input(format!("binned training set: {what}")));
        if n_samples.checked_mul(n_features) != Some(codes.len()) {
            return bad(format!(
                "{} codes for {n_samples} samples x {n_features} features",
                codes.len()
            ));
        }
        if bins.len() != n_features || has_missing.len() != n_features {
            return bad(format!(
                "{} bin ranges and {} missing-value flags for {n_features} features",
                bins.len(),
                has_missing.len()
            ));
        }
        for (f, b) in bins.iter().enumerate() {
            let ordered = b.lower.len() == b.upper.len()
                && b.len() <= MAX_VALUE_BINS
                && b.lower.iter().zip(&b.upper).all(|(l, u)| l <= u)
                && b.upper
                    .windows(2)
                    .zip(b.lower.get(1..).unwrap_or(&[]))
                    .all(|(w, l)| w[0] < *l);
            if !ordered {
                return bad(format!(
                    "the bins of feature {f} are not ordered value ranges"
                ));
            }
        }
        if n_features > 0 {
            for (i, row) in codes.chunks_exact(n_features).enumerate() {
                for (f, &c) in row.iter().enumerate() {
                    let ok = if c == MISSING_BIN {
                        has_missing[f]
                    } else {
                        (c as usize) < bins[f].len()
                    };
                    if !ok {
                        return bad(format!(
                            "code {c} of sample {i} is outside feature {f}'s bins"
                        ));
                    }
                }
            }
        }
        Ok(Self {
            n_samples,
            n_features,
            codes,
            bins,
            has_missing,
        })
    }

    /// All codes, row-major (`n_features` per row).
    #[inline]
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// The bin code of sample `row` in `feature`.
    #[inline]
    pub fn code(&self, row: usize, feature: usize) -> u8 {
        self.codes[row * self.n_features + feature]
    }
}

/// Bins one column: returns its bins, its codes and whether it has missing values.
fn bin_column(values: Vec<f32>, feature: usize) -> Result<(FeatureBins, Vec<u8>, bool)> {
    let n_samples = values.len();
    let mut sorted: Vec<f32> = Vec::with_capacity(n_samples);
    for (row, &v) in values.iter().enumerate() {
        if v.is_infinite() {
            return Err(WoodlotError::input(format!(
                "Input X contains infinity or a value too large for dtype('float32') \
                 (row {row}, column {feature}); replace it or drop the row"
            )));
        }
        if !v.is_nan() {
            sorted.push(v);
        }
    }
    let has_missing = sorted.len() < n_samples;
    sorted.sort_unstable_by(f32::total_cmp);
    let bins = make_bins(&sorted);
    let codes = values
        .iter()
        .map(|&v| {
            if v.is_nan() {
                MISSING_BIN
            } else {
                bins.code(v)
            }
        })
        .collect();
    Ok((bins, codes, has_missing))
}

/// Chooses bins for sorted, finite values: one per distinct value when there are at most
/// [`MAX_VALUE_BINS`], otherwise quantile cuts that never split a run of equal values.
fn make_bins(sorted: &[f32]) -> FeatureBins {
    let mut distinct: Vec<f32> = Vec::new();
    for &v in sorted {
        // -0.0 and 0.0 compare equal and must share a bin.
        if distinct.last().is_none_or(|&last| last < v) {
            distinct.push(v);
        }
    }
    if distinct.len() <= MAX_VALUE_BINS {
        return FeatureBins {
            lower: distinct.clone(),
            upper: distinct,
        };
    }
    let n = sorted.len();
    let mut upper: Vec<f32> = Vec::with_capacity(MAX_VALUE_BINS);
    for k in 1..MAX_VALUE_BINS {
        let pos = (k * n).div_ceil(MAX_VALUE_BINS) - 1;
        let v = sorted[pos];
        if upper.last().is_none_or(|&last| last < v) {
            upper.push(v);
        }
    }
    let max = sorted[n - 1];
    if upper.last().is_none_or(|&last| last < max) {
        upper.push(max);
    }
    let mut lower = Vec::with_capacity(upper.len());
    lower.push(sorted[0]);
    for w in upper.windows(2) {
        // The smallest distinct value above the previous bin's largest.
        let i = distinct.partition_point(|&d| d <= w[0]);
        lower.push(distinct[i]);
    }
    FeatureBins { lower, upper }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let x = array![[3.0f64, 1.0], [1.0, f64::NAN], [2.0, 1.0], [3.0, 5.0]];
        let m = BinnedMatrix::from_matrix(x.view()).unwrap();
        assert_eq!(m.bins[0].upper, vec![1.0, 2.0, 3.0]);
        let col = |f: usize| (0..4).map(|r| m.code(r, f)).collect::<Vec<u8>>();
        assert_eq!(col(0), vec![2, 0, 1, 2]);
        assert_eq!(col(1), vec![0, MISSING_BIN, 0, 1]);
        assert!(!m.has_missing[0]);
        assert!(m.has_missing[1]);
        assert_eq!(m.bins[0].threshold_between(0, 1), 1.5);
        assert_eq!(m.bins[0].threshold_between(0, 2), 2.0);
    }

    #[test]
    fn many_distinct_values_get_quantile_bins_that_respect_order() {
        let n = 10_000;
        let col: Vec<f32> = (0..n).map(|i| ((i * 7919) % n) as f32 * 0.5).collect();
        let x = ndarray::Array2::from_shape_vec((n, 1), col.clone()).unwrap();
        let m = BinnedMatrix::from_matrix(x.view()).unwrap();
        let b = &m.bins[0];
        assert!(b.len() <= MAX_VALUE_BINS && b.len() > 200);
        for i in 0..b.len() {
            assert!(b.lower[i] <= b.upper[i]);
            if i + 1 < b.len() {
                assert!(b.upper[i] < b.lower[i + 1]);
            }
        }
        // Every value sits inside the range of its bin.
        for (i, &v) in col.iter().enumerate() {
            let c = m.code(i, 0) as usize;
            assert!(
                b.lower[c] <= v && v <= b.upper[c],
                "value {v} not in bin {c}"
            );
        }
    }

    #[test]
    fn heavy_ties_stay_in_one_bin() {
        let mut col = vec![1.0f32; 5000];
        col.extend((0..5000).map(|i| 2.0 + i as f32));
        let x = ndarray::Array2::from_shape_vec((col.len(), 1), col).unwrap();
        let m = BinnedMatrix::from_matrix(x.view()).unwrap();
        assert_eq!(m.bins[0].upper[0], 1.0);
        assert_eq!(m.bins[0].lower[1], 2.0);
    }

    #[test]
    fn infinity_is_rejected_with_its_position() {
        let x = array![[1.0f64, 2.0], [f64::INFINITY, 1.0]];
        let err = BinnedMatrix::from_matrix(x.view()).unwrap_err().to_string();
        assert!(err.contains("infinity") && err.contains("row 1"), "{err}");
        let big = array![[1e300f64]];
        assert!(BinnedMatrix::from_matrix(big.view()).is_err());
    }

    #[test]
    fn from_parts_rebuilds_the_same_matrix_and_refuses_codes_outside_the_bins() {
        let x = array![[3.0f64, 1.0], [1.0, f64::NAN], [2.0, 1.0], [3.0, 5.0]];
        let m = BinnedMatrix::from_matrix(x.view()).unwrap();
        let back = BinnedMatrix::from_parts(
            4,
            2,
            m.codes().to_vec(),
            m.bins.clone(),
            m.has_missing.clone(),
        )
        .unwrap();
        assert_eq!(back.codes(), m.codes());
        assert_eq!(back.bins, m.bins);
        let mut codes = m.codes().to_vec();
        codes[0] = 7; // feature 0 has 3 bins
        let err = BinnedMatrix::from_parts(4, 2, codes, m.bins.clone(), m.has_missing.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sample 0") && err.contains("feature 0"),
            "{err}"
        );
        let no_missing = vec![false, false];
        let err = BinnedMatrix::from_parts(4, 2, m.codes().to_vec(), m.bins.clone(), no_missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside feature 1"), "{err}");
        assert!(
            BinnedMatrix::from_parts(3, 2, m.codes().to_vec(), m.bins.clone(), vec![true; 2])
                .is_err()
        );
        let mut unordered = m.bins.clone();
        unordered[0].upper.reverse();
        assert!(BinnedMatrix::from_parts(
            4,
            2,
            m.codes().to_vec(),
            unordered,
            m.has_missing.clone()
        )
        .is_err());
    }

    #[test]
    fn rounding_never_puts_a_threshold_on_the_right_value() {
        let a = 1.0f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let bins = FeatureBins {
            lower: vec![a, b],
            upper: vec![a, b],
        };
        let t = bins.threshold_between(0, 1);
        assert!(a <= t && t < b);
    }
}
