//! Impurity measures over weighted class counts.
//!
//! Split search ranks candidates by a *proxy* that is cheaper than the full weighted impurity of
//! both children but orders splits identically (scikit-learn's `proxy_impurity_improvement`);
//! the real impurities are computed once, for the winning split.

use serde::{Deserialize, Serialize};

/// Split quality measure. scikit-learn's `"log_loss"` and `"entropy"` are the same criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Criterion {
    /// Gini impurity `1 - sum p_k^2`.
    Gini,
    /// Shannon entropy `-sum p_k log p_k` (scikit-learn's "entropy" and "log_loss").
    Entropy,
}

impl Criterion {
    /// Impurity of a node with class weights `counts` summing to `total`.
    /// Entropy is in bits, as in scikit-learn (so `min_impurity_decrease` means the same).
    pub fn impurity(self, counts: &[f64], total: f64) -> f64 {
        if total <= 0.0 {
            return 0.0;
        }
        match self {
            Criterion::Gini => {
                let sq: f64 = counts.iter().map(|c| c * c).sum();
                1.0 - sq / (total * total)
            }
            Criterion::Entropy => {
                let mut e = 0.0;
                for &c in counts {
                    if c > 0.0 {
                        let p = c / total;
                        e -= p * p.log2();
                    }
                }
                e
            }
        }
    }

    /// Impurity of a node over several outputs (scikit-learn's multi-output criterion): the mean
    /// of each output's impurity, where `counts` holds every output's class weights one after
    /// the other (`outputs[j]` classes for output `j`) and each output's weights sum to `total`.
    /// With one output this is [`Criterion::impurity`] itself.
    pub fn impurity_of_outputs(self, counts: &[f64], total: f64, outputs: &[u32]) -> f64 {
        if outputs.len() <= 1 {
            return self.impurity(counts, total);
        }
        let mut sum = 0.0;
        let mut start = 0usize;
        for &k in outputs {
            let end = start + k as usize;
            sum += self.impurity(&counts[start..end], total);
            start = end;
        }
        sum / outputs.len() as f64
    }

    /// The per-class term whose sums give the split proxy: `w^2` for Gini, `w ln w` for
    /// entropy. Sweeps keep running sums of it for each side, so moving a bin from the right
    /// child to the left updates the score in O(classes that bin holds), not O(all classes).
    #[inline]
    pub fn term(self, w: f64) -> f64 {
        match self {
            Criterion::Gini => w * w,
            Criterion::Entropy => {
                if w > 0.0 {
                    w * w.ln()
                } else {
                    0.0
                }
            }
        }
    }

    /// A score that orders splits like `-(w_left * impurity_left + w_right * impurity_right)`,
    /// larger is better, from the running sums of [`Criterion::term`] over each side's classes.
    #[inline]
    pub fn proxy(self, sum_left: f64, w_left: f64, sum_right: f64, w_right: f64) -> f64 {
        self.proxy_of_outputs(sum_left, w_left, sum_right, w_right, 1.0)
    }

    /// [`Criterion::proxy`] for `n_outputs` outputs whose class terms are summed together: it
    /// orders splits like the weighted mean of the outputs' impurities (each output's class
    /// weights on a side sum to that side's weight `w`, so entropy's `w ln w` counts once per
    /// output; Gini's proxy needs no change).
    #[inline]
    pub fn proxy_of_outputs(
        self,
        sum_left: f64,
        w_left: f64,
        sum_right: f64,
        w_right: f64,
        n_outputs: f64,
    ) -> f64 {
        match self {
            Criterion::Gini => sum_left / w_left + sum_right / w_right,
            Criterion::Entropy => {
                (sum_left - n_outputs * w_left * w_left.ln())
                    + (sum_right - n_outputs * w_right * w_right.ln())
            }
        }
    }

    /// [`Criterion::proxy`] computed from the two sides' class weights.
    pub fn proxy_of(self, left: &[f64], w_left: f64, right: &[f64], w_right: f64) -> f64 {
        let sl: f64 = left.iter().map(|&c| self.term(c)).sum();
        let sr: f64 = right.iter().map(|&c| self.term(c)).sum();
        self.proxy(sl, w_left, sr, w_right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((Criterion::Gini.impurity(&[1.0, 1.0], 2.0) - 0.5).abs() < 1e-12);
        assert!((Criterion::Entropy.impurity(&[1.0, 1.0], 2.0) - 1.0).abs() < 1e-12);
        assert_eq!(Criterion::Gini.impurity(&[3.0, 0.0], 3.0), 0.0);
        assert_eq!(Criterion::Entropy.impurity(&[0.0, 3.0], 3.0), 0.0);
    }

    #[test]
    fn impurity_of_outputs_is_the_mean_of_each_outputs_impurity() {
        // Output 0: classes [1, 1] (gini 0.5, entropy 1); output 1: [2, 0, 0] (pure).
        let counts = [1.0, 1.0, 2.0, 0.0, 0.0];
        let g = Criterion::Gini.impurity_of_outputs(&counts, 2.0, &[2, 3]);
        assert!((g - 0.25).abs() < 1e-12, "{g}");
        let e = Criterion::Entropy.impurity_of_outputs(&counts, 2.0, &[2, 3]);
        assert!((e - 0.5).abs() < 1e-12, "{e}");
        let single = Criterion::Gini.impurity_of_outputs(&[1.0, 3.0], 4.0, &[2]);
        assert_eq!(single, Criterion::Gini.impurity(&[1.0, 3.0], 4.0));
    }

    #[test]
    fn multi_output_proxy_orders_like_mean_weighted_impurity() {
        // Two outputs of two classes each; every side's outputs sum to the side's weight.
        let splits = [
            ([5.0, 1.0, 3.0, 3.0], [1.0, 5.0, 3.0, 3.0]),
            ([6.0, 0.0, 1.0, 5.0], [0.0, 6.0, 5.0, 1.0]),
            ([3.0, 3.0, 6.0, 0.0], [3.0, 3.0, 0.0, 6.0]),
            ([4.0, 2.0, 2.0, 4.0], [2.0, 4.0, 4.0, 2.0]),
        ];
        let outputs = [2u32, 2];
        for crit in [Criterion::Gini, Criterion::Entropy] {
            let mut by_proxy: Vec<(f64, usize)> = Vec::new();
            let mut by_imp: Vec<(f64, usize)> = Vec::new();
            for (i, (l, r)) in splits.iter().enumerate() {
                let (wl, wr) = (l[..2].iter().sum::<f64>(), r[..2].iter().sum::<f64>());
                let sl: f64 = l.iter().map(|&c| crit.term(c)).sum();
                let sr: f64 = r.iter().map(|&c| crit.term(c)).sum();
                by_proxy.push((crit.proxy_of_outputs(sl, wl, sr, wr, 2.0), i));
                let imp = wl * crit.impurity_of_outputs(l, wl, &outputs)
                    + wr * crit.impurity_of_outputs(r, wr, &outputs);
                by_imp.push((-imp, i));
            }
            by_proxy.sort_by(|a, b| a.0.total_cmp(&b.0));
            by_imp.sort_by(|a, b| a.0.total_cmp(&b.0));
            let order = |v: &Vec<(f64, usize)>| v.iter().map(|p| p.1).collect::<Vec<_>>();
            assert_eq!(order(&by_proxy), order(&by_imp), "{crit:?}");
        }
    }

    #[test]
    fn proxy_orders_like_weighted_impurity() {
        let splits = [
            ([5.0, 1.0], [1.0, 5.0]),
            ([6.0, 3.0], [0.0, 3.0]),
            ([3.0, 3.0], [3.0, 3.0]),
        ];
        for crit in [Criterion::Gini, Criterion::Entropy] {
            let mut by_proxy: Vec<(f64, usize)> = Vec::new();
            let mut by_imp: Vec<(f64, usize)> = Vec::new();
            for (i, (l, r)) in splits.iter().enumerate() {
                let (wl, wr) = (l.iter().sum::<f64>(), r.iter().sum::<f64>());
                by_proxy.push((crit.proxy_of(l, wl, r, wr), i));
                by_imp.push((-(wl * crit.impurity(l, wl) + wr * crit.impurity(r, wr)), i));
            }
            by_proxy.sort_by(|a, b| a.0.total_cmp(&b.0));
            by_imp.sort_by(|a, b| a.0.total_cmp(&b.0));
            let order = |v: &Vec<(f64, usize)>| v.iter().map(|p| p.1).collect::<Vec<_>>();
            assert_eq!(order(&by_proxy), order(&by_imp), "{crit:?}");
        }
    }
}
