//! Paired statistics for two versions evaluated on the same rows.
//!
//! Two accuracies on the same test set are not independent samples: what matters is the rows
//! where exactly one version is right. McNemar's exact test asks whether those discordant rows
//! split evenly (a two-sided binomial test with p = 1/2, as `statsmodels`' `mcnemar(exact=True)`
//! and `scipy.stats.binomtest`), and a paired bootstrap (resampling rows, the same rows for both
//! versions) gives a 95% percentile interval for the accuracy difference. The bootstrap is
//! seeded, so the same data and seed always give the same interval.

use serde::Serialize;

use crate::rng::Rng;

/// The paired comparison of versions `a` and `b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pairwise {
    /// First version.
    pub a: u64,
    /// Second version.
    pub b: u64,
    /// Rows compared.
    pub n_rows: u64,
    /// Rows where the two predict different labels.
    pub disagreements: u64,
    /// Rows `a` gets right and `b` wrong.
    pub a_only_correct: Vec<u64>,
    /// Rows `b` gets right and `a` wrong.
    pub b_only_correct: Vec<u64>,
    /// `accuracy(a) - accuracy(b)`.
    pub accuracy_diff: f64,
    /// Exact two-sided McNemar p-value.
    pub mcnemar_p: f64,
    /// Lower end of the bootstrap 95% interval of `accuracy_diff`.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Bootstrap resamples drawn.
    pub n_bootstrap: u64,
    /// Bootstrap seed.
    pub seed: u64,
}

/// Exact two-sided McNemar p-value for `b` discordant rows one way and `c` the other:
/// `min(1, 2 * P(X <= min(b, c)))` with `X ~ Binomial(b + c, 1/2)`; 1 when there are none.
/// Summed in log space so it stays exact-to-rounding for millions of rows.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    // log C(n, i) accumulated term by term; log-sum-exp of the pmf over 0..=k.
    let mut log_c = 0.0f64;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(log_c + ln_half_n);
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    (2.0 * (max + sum.ln()).exp()).min(1.0)
}

/// Linear-interpolated quantile of sorted values (numpy's default method).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Seeded paired bootstrap 95% interval of the accuracy difference, from per-row differences
/// `d[i] = correct_a[i] - correct_b[i]` in {-1, 0, 1}.
pub fn bootstrap_ci(d: &[i8], n_bootstrap: usize, seed: u64) -> (f64, f64) {
    let n = d.len();
    if n == 0 || n_bootstrap == 0 {
        return (f64::NAN, f64::NAN);
    }
    if d.iter().all(|v| *v == 0) {
        return (0.0, 0.0);
    }
    let mut rng = Rng::new(seed);
    let mut stats: Vec<f64> = (0..n_bootstrap)
        .map(|_| {
            let mut s = 0i64;
            for _ in 0..n {
                s += d[rng.below(n as u64) as usize] as i64;
            }
            s as f64 / n as f64
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    (
        quantile_sorted(&stats, 0.025),
        quantile_sorted(&stats, 0.975),
    )
}

/// Compares two versions' per-row predictions and correctness.
pub fn pairwise(
    (a, pred_a, correct_a): (u64, &[u32], &[bool]),
    (b, pred_b, correct_b): (u64, &[u32], &[bool]),
    n_bootstrap: usize,
    seed: u64,
) -> Pairwise {
    let n = pred_a.len();
    let mut disagreements = 0u64;
    let mut a_only = Vec::new();
    let mut b_only = Vec::new();
    let mut d = Vec::with_capacity(n);
    for i in 0..n {
        if pred_a[i] != pred_b[i] {
            disagreements += 1;
        }
        match (correct_a[i], correct_b[i]) {
            (true, false) => {
                a_only.push(i as u64);
                d.push(1i8);
            }
            (false, true) => {
                b_only.push(i as u64);
                d.push(-1);
            }
            _ => d.push(0),
        }
    }
    let (ci_low, ci_high) = bootstrap_ci(&d, n_bootstrap, seed);
    Pairwise {
        a,
        b,
        n_rows: n as u64,
        disagreements,
        accuracy_diff: if n > 0 {
            (a_only.len() as f64 - b_only.len() as f64) / n as f64
        } else {
            f64::NAN
        },
        mcnemar_p: mcnemar_exact(a_only.len() as u64, b_only.len() as u64),
        a_only_correct: a_only,
        b_only_correct: b_only,
        ci_low,
        ci_high,
        n_bootstrap: n_bootstrap as u64,
        seed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} != {b}");
    }

    #[test]
    fn mcnemar_matches_hand_computed_binomials() {
        close(mcnemar_exact(0, 0), 1.0, 0.0);
        // n = 5, k = 1: 2 * (1 + 5) / 32
        close(mcnemar_exact(1, 4), 0.375, 1e-15);
        close(mcnemar_exact(4, 1), 0.375, 1e-15);
        // n = 10, k = 0: 2 / 1024
        close(mcnemar_exact(0, 10), 2.0 / 1024.0, 1e-15);
        // n = 6, k = 3 (balanced): capped at 1
        close(mcnemar_exact(3, 3), 1.0, 0.0);
        // n = 20, k = 5: 2 * (1+20+190+1140+4845+15504) / 2^20 = 2 * 21700 / 1048576
        close(mcnemar_exact(5, 15), 2.0 * 21_700.0 / 1_048_576.0, 1e-14);
        // Large n stays finite and sensible.
        let p = mcnemar_exact(49_000, 51_000);
        assert!(p > 0.0 && p < 1e-8, "{p}");
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        close(quantile_sorted(&v, 0.0), 1.0, 0.0);
        close(quantile_sorted(&v, 0.5), 2.5, 0.0);
        close(quantile_sorted(&v, 0.025), 1.075, 1e-12);
    }

    #[test]
    fn pairwise_counts_and_seeded_interval() {
        let pa = [0, 1, 1, 2, 0, 1];
        let pb = [0, 1, 2, 2, 1, 0];
        let ca = [true, true, true, false, true, false];
        let cb = [true, true, false, false, false, true];
        let p = pairwise((2, &pa, &ca), (1, &pb, &cb), 2000, 7);
        assert_eq!(p.disagreements, 3);
        assert_eq!(p.a_only_correct, vec![2, 4]);
        assert_eq!(p.b_only_correct, vec![5]);
        close(p.accuracy_diff, 1.0 / 6.0, 1e-15);
        close(p.mcnemar_p, 1.0, 0.0);
        assert!(p.ci_low <= p.accuracy_diff && p.accuracy_diff <= p.ci_high);
        assert!(p.ci_low >= -1.0 && p.ci_high <= 1.0);
        let q = pairwise((2, &pa, &ca), (1, &pb, &cb), 2000, 7);
        assert_eq!(
            (p.ci_low, p.ci_high),
            (q.ci_low, q.ci_high),
            "same seed, same interval"
        );
        // Identical predictions: no disagreement, p = 1, a degenerate interval at 0.
        let same = pairwise((1, &pa, &ca), (2, &pa, &ca), 100, 0);
        assert_eq!(
            (
                same.disagreements,
                same.mcnemar_p,
                same.ci_low,
                same.ci_high
            ),
            (0, 1.0, 0.0, 0.0)
        );
    }

    #[test]
    fn bootstrap_is_centred_on_the_observed_difference() {
        // 30 rows where a wins, 10 where b wins, 60 ties: diff 0.2.
        let mut d = vec![1i8; 30];
        d.extend(vec![-1i8; 10]);
        d.extend(vec![0i8; 60]);
        let (lo, hi) = bootstrap_ci(&d, 4000, 1);
        assert!(
            lo > 0.05 && lo < 0.2 && hi > 0.2 && hi < 0.35,
            "({lo}, {hi})"
        );
    }
}
