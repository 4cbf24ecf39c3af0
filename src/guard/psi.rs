//! Drift as an early warning: the population stability index (PSI) of live inputs against a
//! reference sample, per feature.
//!
//! Labels arrive late; inputs arrive at once. PSI compares each feature's distribution in
//! live rows with its reference (the training rows, or a window the model was known good on)
//! over the reference's decile bins: `PSI = sum_b (live_b - ref_b) ln(live_b / ref_b)`, with
//! fractions floored at 1e-4 so an empty bin is finite. Rules of thumb: below 0.1 stable, 0.1 to
//! 0.2 moderate, above 0.2 (the default threshold) a shift worth a look. A warning, never a
//! rollback by itself: a shifted input may still be predicted well.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};

/// Fractions are floored here, so an empty bin gives a finite PSI.
pub const FLOOR: f64 = 1e-4;

/// Per-feature bins of a reference sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// For each feature, the inner bin edges (ascending, deduplicated).
    pub edges: Vec<Vec<f64>>,
    /// For each feature, the fraction of reference rows per bin (`edges.len() + 1` bins).
    pub fractions: Vec<Vec<f64>>,
    /// Reference rows.
    pub rows: u64,
}

/// A drift report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// PSI per feature.
    pub psi: Vec<f64>,
    /// Features whose PSI exceeds the threshold.
    pub flagged: Vec<usize>,
    /// The threshold.
    pub threshold: f64,
    /// Live rows compared.
    pub rows: u64,
}

fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|e| *e < x)
}

fn fractions(edges: &[f64], col: impl Iterator<Item = f64>) -> (Vec<f64>, u64) {
    let mut counts = vec![0u64; edges.len() + 1];
    let mut n = 0;
    for x in col.filter(|x| !x.is_nan()) {
        counts[bin_of(edges, x)] += 1;
        n += 1;
    }
    let f = counts
        .iter()
        .map(|c| if n == 0 { 0.0 } else { *c as f64 / n as f64 })
        .collect();
    (f, n)
}

impl Reference {
    /// Decile (or `bins`-quantile) bins of every feature of `x`.
    pub fn fit(x: ArrayView2<'_, f64>, bins: usize) -> Result<Self> {
        if x.nrows() == 0 || !(2..=100).contains(&bins) {
            return Err(WoodlotError::input(format!(
                "a drift reference needs at least one row and 2 to 100 bins; got {} rows, {bins} \
                 bins",
                x.nrows()
            )));
        }
        let mut edges = Vec::with_capacity(x.ncols());
        let mut fracs = Vec::with_capacity(x.ncols());
        for col in x.columns() {
            let mut v: Vec<f64> = col.iter().copied().filter(|x| !x.is_nan()).collect();
            v.sort_by(f64::total_cmp);
            let mut e: Vec<f64> = (1..bins)
                .filter_map(|k| v.get(k * v.len() / bins).copied())
                .collect();
            e.dedup();
            let (f, _) = fractions(&e, col.iter().copied());
            edges.push(e);
            fracs.push(f);
        }
        Ok(Self {
            edges,
            fractions: fracs,
            rows: x.nrows() as u64,
        })
    }

    /// PSI of each feature of `x` against the reference; features above `threshold` flagged.
    pub fn drift(&self, x: ArrayView2<'_, f64>, threshold: f64) -> Result<Drift> {
        if x.ncols() != self.edges.len() {
            return Err(WoodlotError::input(format!(
                "X has {} features, the reference {}",
                x.ncols(),
                self.edges.len()
            )));
        }
        if !(threshold.is_finite() && threshold > 0.0) {
            return Err(WoodlotError::param(
                "threshold",
                format!("the PSI threshold must be positive, e.g. 0.2; got {threshold}"),
            ));
        }
        let mut psi = Vec::with_capacity(x.ncols());
        for (j, col) in x.columns().into_iter().enumerate() {
            let (live, _) = fractions(&self.edges[j], col.iter().copied());
            let v: f64 = live
                .iter()
                .zip(&self.fractions[j])
                .map(|(a, e)| {
                    let (a, e) = (a.max(FLOOR), e.max(FLOOR));
                    (a - e) * (a / e).ln()
                })
                .sum();
            psi.push(v);
        }
        let flagged = psi
            .iter()
            .enumerate()
            .filter(|(_, p)| **p > threshold)
            .map(|(j, _)| j)
            .collect();
        Ok(Drift {
            psi,
            flagged,
            threshold,
            rows: x.nrows() as u64,
        })
    }
}
