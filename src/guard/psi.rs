//! Drift as an early warning: the population stability index (PSI) of live inputs against a
//! reference histogram, per feature.
//!
//! Labels arrive late; inputs arrive at once. PSI compares each feature's distribution in
//! live rows with its reference over the reference's bins: `PSI = sum_b (live_b - ref_b)
//! ln(live_b / ref_b)`, with fractions floored at 1e-4 so an empty bin is finite. The
//! reference is a [`TrainingHistogram`]: the one every fitted forest keeps (decile bins read
//! off the fit's own bins, see [`crate::forest::histogram`]), or one built here from reference
//! rows ([`Reference::fit`]: a window the model was known good on). Missing values are a bin
//! of their own on both sides, so a feature that starts arriving empty is drift too. Values
//! are compared at `f32` precision, as the trees read them. Rules of thumb: below 0.1 stable,
//! 0.1 to 0.2 moderate, above 0.2 (the default threshold) a shift worth a look. A warning,
//! never a rollback by itself: a shifted input may still be predicted well.
//!
//! PSI alone cannot tell drift from sampling noise: with `n` live rows in `B` bins it is about
//! `(B - 1) / n` on rows from the reference's own distribution (a chi-square over `n`), and an
//! empty bin adds about 0.7 through the floor, so 54 in-distribution rows show PSI of 0.14 to 1.1.
//! A feature is therefore flagged only when its PSI exceeds the threshold *and* a chi-square test
//! of homogeneity between the live and the reference counts rejects "same distribution" at
//! [`FAMILY_ALPHA`] over all features (Bonferroni): large enough to matter and unlikely to be
//! chance. The p-value of every feature is reported beside its PSI.
//!
//! [`LiveCounts`] accumulates live rows batch by batch (the guard counts every row it scores),
//! so a report over a long stream costs one count per feature and bin, never the rows.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};
use crate::forest::histogram::bin_of;
pub use crate::forest::TrainingHistogram as Reference;

/// Fractions are floored here, so an empty bin gives a finite PSI.
pub const FLOOR: f64 = 1e-4;

/// The threshold above which a feature is flagged unless the caller names another.
pub const DEFAULT_THRESHOLD: f64 = 0.2;

/// The chance, over all features of one report, of flagging any feature whose live rows come
/// from the reference's own distribution: each feature's test runs at this over the feature
/// count (Bonferroni).
pub const FAMILY_ALPHA: f64 = 0.01;

/// A drift report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// PSI per feature.
    pub psi: Vec<f64>,
    /// The chi-square test's p-value per feature: how likely counts at least this far from the
    /// reference's would be if the live rows came from the reference's distribution.
    pub p_value: Vec<f64>,
    /// Features whose PSI exceeds the threshold and whose p-value is below
    /// [`FAMILY_ALPHA`] over the feature count.
    pub flagged: Vec<usize>,
    /// The threshold.
    pub threshold: f64,
    /// Live rows compared.
    pub rows: u64,
}

impl Reference {
    /// Decile (or `bins`-quantile) bins of every feature of the reference rows `x`.
    pub fn fit(x: ArrayView2<'_, f64>, bins: usize) -> Result<Self> {
        if x.nrows() == 0 || !(2..=100).contains(&bins) {
            return Err(WoodlotError::input(format!(
                "a drift reference needs at least one row and 2 to 100 bins; got {} rows, {bins} \
                 bins",
                x.nrows()
            )));
        }
        let mut edges = Vec::with_capacity(x.ncols());
        for col in x.columns() {
            let mut v: Vec<f64> = col
                .iter()
                .filter(|x| !x.is_nan())
                .map(|&x| f64::from(x as f32))
                .collect();
            v.sort_by(f64::total_cmp);
            let mut e: Vec<f64> = (1..bins)
                .filter_map(|k| v.get(k * v.len() / bins).copied())
                .filter(|e| e.is_finite())
                .collect();
            e.dedup();
            edges.push(e);
        }
        let mut counts = LiveCounts::empty(&edges);
        counts.add(&edges, x);
        Ok(Self {
            edges,
            counts: counts.counts,
            missing: counts.missing,
            rows: counts.rows,
        })
    }

    /// PSI of each feature of the live rows `x` against the reference; features above
    /// `threshold` flagged.
    pub fn drift(&self, x: ArrayView2<'_, f64>, threshold: f64) -> Result<Drift> {
        if x.ncols() != self.n_features() {
            return Err(WoodlotError::input(format!(
                "X has {} features, the reference {}",
                x.ncols(),
                self.n_features()
            )));
        }
        if x.nrows() == 0 {
            return Err(WoodlotError::input(
                "X has 0 rows: drift compares at least one live row with the reference",
            ));
        }
        let mut live = LiveCounts::new(self);
        live.add(&self.edges, x);
        live.drift(self, threshold)
    }
}

/// Live rows counted into a reference's bins, batch by batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCounts {
    counts: Vec<Vec<u64>>,
    missing: Vec<u64>,
    rows: u64,
}

impl LiveCounts {
    /// No rows yet, in `reference`'s bins.
    pub fn new(reference: &Reference) -> Self {
        Self::empty(&reference.edges)
    }

    fn empty(edges: &[Vec<f64>]) -> Self {
        Self {
            counts: edges.iter().map(|e| vec![0; e.len() + 1]).collect(),
            missing: vec![0; edges.len()],
            rows: 0,
        }
    }

    /// Live rows counted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Counts the rows of `x` (one column per feature of `edges`, checked by the caller).
    pub fn add(&mut self, edges: &[Vec<f64>], x: ArrayView2<'_, f64>) {
        for ((col, e), (c, m)) in x
            .columns()
            .into_iter()
            .zip(edges)
            .zip(self.counts.iter_mut().zip(self.missing.iter_mut()))
        {
            for &v in col {
                if v.is_nan() {
                    *m += 1;
                } else {
                    c[bin_of(e, v)] += 1;
                }
            }
        }
        self.rows += x.nrows() as u64;
    }

    /// PSI of the rows counted so far against `reference` (whose bins these are). With no rows
    /// yet every PSI is 0 and nothing is flagged: there is nothing to compare.
    pub fn drift(&self, reference: &Reference, threshold: f64) -> Result<Drift> {
        if !(threshold.is_finite() && threshold > 0.0) {
            return Err(WoodlotError::param(
                "threshold",
                format!("the PSI threshold must be positive, e.g. 0.2; got {threshold}"),
            ));
        }
        let n_features = reference.n_features();
        let live_bins = |f: usize| self.counts[f].iter().chain([&self.missing[f]]).copied();
        let reference_bins = |f: usize| {
            reference.counts[f]
                .iter()
                .chain([&reference.missing[f]])
                .copied()
        };
        let psi: Vec<f64> = (0..n_features)
            .map(|f| {
                if self.rows == 0 {
                    return 0.0;
                }
                live_bins(f)
                    .zip(reference_bins(f))
                    .map(|(a, e)| {
                        let a = (a as f64 / self.rows as f64).max(FLOOR);
                        let e = (e as f64 / reference.rows.max(1) as f64).max(FLOOR);
                        (a - e) * (a / e).ln()
                    })
                    .sum()
            })
            .collect();
        let p_value: Vec<f64> = (0..n_features)
            .map(|f| homogeneity_p_value(live_bins(f).zip(reference_bins(f))))
            .collect();
        let per_feature_alpha = FAMILY_ALPHA / n_features.max(1) as f64;
        let flagged = (0..n_features)
            .filter(|&j| psi[j] > threshold && p_value[j] < per_feature_alpha)
            .collect();
        Ok(Drift {
            psi,
            p_value,
            flagged,
            threshold,
            rows: self.rows,
        })
    }
}

/// The p-value of Pearson's chi-square test of homogeneity on a 2 x B table: `(live, reference)`
/// counts per bin. Bins empty on both sides carry no information and are left out; with fewer
/// than two bins left, or no rows on one side, nothing can differ and the p-value is 1.
fn homogeneity_p_value(bins: impl Iterator<Item = (u64, u64)>) -> f64 {
    let bins: Vec<(f64, f64)> = bins
        .filter(|&(a, e)| a + e > 0)
        .map(|(a, e)| (a as f64, e as f64))
        .collect();
    let live: f64 = bins.iter().map(|b| b.0).sum();
    let reference: f64 = bins.iter().map(|b| b.1).sum();
    if bins.len() < 2 || live == 0.0 || reference == 0.0 {
        return 1.0;
    }
    let total = live + reference;
    let statistic: f64 = bins
        .iter()
        .map(|&(a, e)| {
            let column = a + e;
            let (expect_live, expect_reference) =
                (column * live / total, column * reference / total);
            (a - expect_live).powi(2) / expect_live
                + (e - expect_reference).powi(2) / expect_reference
        })
        .sum();
    let degrees = (bins.len() - 1) as f64;
    match statrs::distribution::ChiSquared::new(degrees) {
        Ok(chi2) => statrs::distribution::ContinuousCDF::sf(&chi2, statistic),
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::{Forest, ForestParams};
    use crate::rng::Rng;
    use ndarray::Array2;

    /// `n` rows of 3 features: uniform, many distinct values; normal-ish; 6 levels.
    fn rows(n: usize, seed: u64) -> Array2<f64> {
        let mut rng = Rng::new(seed);
        Array2::from_shape_fn((n, 3), |(_, j)| match j {
            0 => rng.unit_f64() * 10.0,
            1 => (0..4).map(|_| rng.unit_f64()).sum::<f64>(),
            _ => (rng.unit_f64() * 6.0).floor(),
        })
    }

    fn fitted(x: &Array2<f64>) -> Forest {
        let y: Vec<u32> = x.column(0).iter().map(|v| u32::from(*v > 5.0)).collect();
        let params = ForestParams {
            n_estimators: 3,
            max_depth: Some(3),
            random_state: 1,
            ..ForestParams::default()
        };
        Forest::fit(x.view(), &y, 2, None, &params, 1).unwrap()
    }

    #[test]
    fn the_training_rows_do_not_drift_from_their_own_histogram() {
        let x = rows(5000, 1);
        let h = fitted(&x).training_histogram.unwrap();
        let d = h.drift(x.view(), DEFAULT_THRESHOLD).unwrap();
        assert!(d.psi.iter().all(|p| p.abs() < 1e-12), "{:?}", d.psi);
        assert!(d.flagged.is_empty());
        assert_eq!(d.rows, 5000);
        // Fresh rows from the same distribution: small.
        let d = h.drift(rows(3000, 2).view(), DEFAULT_THRESHOLD).unwrap();
        assert!(d.psi.iter().all(|p| *p < 0.02), "{:?}", d.psi);
    }

    #[test]
    fn a_shifted_feature_is_flagged_and_only_it() {
        let h = fitted(&rows(5000, 1)).training_histogram.unwrap();
        let mut live = rows(3000, 3);
        live.column_mut(1).mapv_inplace(|v| v + 0.5);
        let d = h.drift(live.view(), DEFAULT_THRESHOLD).unwrap();
        assert_eq!(d.flagged, vec![1], "{:?}", d.psi);
        assert!(
            d.psi[1] > 0.5 && d.psi[0] < 0.02 && d.psi[2] < 0.02,
            "{:?}",
            d.psi
        );
    }

    #[test]
    fn the_homogeneity_p_value_matches_a_hand_computed_chi_square() {
        // live [10, 20], reference [20, 10]: every expected count is 15, the statistic
        // 4 * 25 / 15 = 6.667 on 1 degree of freedom; scipy's chi2.sf(20 / 3, 1) = 0.0098232.
        let p = homogeneity_p_value([(10, 20), (20, 10)].into_iter());
        assert!((p - 0.009_823_2).abs() < 1e-6, "{p}");
        // A bin empty on both sides changes nothing; identical proportions give 1.
        assert_eq!(
            p,
            homogeneity_p_value([(10, 20), (0, 0), (20, 10)].into_iter())
        );
        assert!((homogeneity_p_value([(5, 50), (10, 100)].into_iter()) - 1.0).abs() < 1e-12);
        assert_eq!(homogeneity_p_value([(0, 7), (0, 9)].into_iter()), 1.0);
        assert_eq!(homogeneity_p_value([(3, 7)].into_iter()), 1.0);
    }

    #[test]
    fn small_samples_from_the_training_distribution_are_rarely_flagged() {
        // 54 rows, as many as the wine tutorial's test split. PSI alone is noise at this size
        // (about (B - 1) / n = 0.19 per feature before any empty bin); the chi-square gate keeps
        // flagged reports near FAMILY_ALPHA, where the bare threshold flags most of them.
        let h = fitted(&rows(5000, 1)).training_histogram.unwrap();
        let trials = 400;
        let (mut gated, mut bare) = (0u64, 0u64);
        for t in 0..trials {
            let d = h
                .drift(rows(54, 100 + t).view(), DEFAULT_THRESHOLD)
                .unwrap();
            gated += u64::from(!d.flagged.is_empty());
            bare += u64::from(d.psi.iter().any(|p| *p > DEFAULT_THRESHOLD));
        }
        assert!(gated <= trials * 3 / 100, "{gated} of {trials} flagged");
        assert!(
            bare >= trials / 3,
            "the bare threshold flagged only {bare} of {trials}"
        );
    }

    #[test]
    fn a_real_shift_is_flagged_on_a_small_sample_too() {
        let h = fitted(&rows(5000, 1)).training_histogram.unwrap();
        let mut live = rows(54, 7);
        live.column_mut(0).mapv_inplace(|v| v * 0.5);
        let d = h.drift(live.view(), DEFAULT_THRESHOLD).unwrap();
        assert_eq!(d.flagged, vec![0], "{:?} {:?}", d.psi, d.p_value);
        assert!(d.p_value[0] < 1e-6, "{:?}", d.p_value);
    }

    #[test]
    fn missing_values_arriving_are_drift() {
        let h = fitted(&rows(5000, 1)).training_histogram.unwrap();
        let mut live = rows(2000, 4);
        for i in (0..2000).step_by(4) {
            live[[i, 2]] = f64::NAN;
        }
        let d = h.drift(live.view(), DEFAULT_THRESHOLD).unwrap();
        assert_eq!(d.flagged, vec![2], "{:?}", d.psi);
    }

    #[test]
    fn counting_in_batches_equals_counting_at_once() {
        let h = fitted(&rows(2000, 1)).training_histogram.unwrap();
        let live = rows(1000, 5);
        let mut counts = LiveCounts::new(&h);
        assert_eq!(counts.drift(&h, 0.2).unwrap().psi, vec![0.0; 3]);
        for start in (0..1000).step_by(137) {
            let end = (start + 137).min(1000);
            counts.add(&h.edges, live.slice(ndarray::s![start..end, ..]));
        }
        assert_eq!(counts.rows(), 1000);
        assert_eq!(
            counts.drift(&h, 0.2).unwrap(),
            h.drift(live.view(), 0.2).unwrap()
        );
    }

    #[test]
    fn reference_rows_give_the_same_bins_as_the_fit_when_values_are_few() {
        // Feature 2 has 6 distinct values: one fit bin each, so the deciles agree exactly.
        let x = rows(3000, 6);
        let from_fit = fitted(&x).training_histogram.unwrap();
        let from_rows = Reference::fit(x.view(), 10).unwrap();
        assert_eq!(from_rows.edges[2], from_fit.edges[2]);
        assert_eq!(from_rows.counts[2], from_fit.counts[2]);
        assert_eq!(from_rows.rows, from_fit.rows);
    }

    #[test]
    fn bad_input_is_refused_with_what_to_do() {
        let h = fitted(&rows(500, 1)).training_histogram.unwrap();
        let err = |r: Result<Drift>| r.unwrap_err().to_string();
        assert!(err(h.drift(rows(10, 2).slice(ndarray::s![.., ..2]), 0.2)).contains("2 features"));
        assert!(err(h.drift(rows(0, 2).view(), 0.2)).contains("0 rows"));
        assert!(err(h.drift(rows(10, 2).view(), 0.0)).contains("threshold"));
        assert!(err(h.drift(rows(10, 2).view(), f64::NAN)).contains("threshold"));
        assert!(Reference::fit(rows(0, 1).view(), 10).is_err());
        assert!(Reference::fit(rows(10, 1).view(), 1).is_err());
    }
}
