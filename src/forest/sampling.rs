//! Bootstrap sampling, uniform or in proportion to sample weights.
//!
//! scikit-learn 1.9 draws each tree's bootstrap sample with probabilities proportional to
//! `sample_weight x class_weight` and then trains the tree on the draw counts alone, so weights
//! act through *which* rows are drawn. Weighted draws use Walker's alias method (Vose's stable
//! construction): O(n) to build once per fit, O(1) per draw.

use crate::rng::Rng;

/// Draws row indices in proportion to fixed non-negative weights.
#[derive(Debug, Clone)]
pub struct WeightedSampler {
    /// Probability of keeping the drawn column rather than taking its alias.
    keep: Vec<f64>,
    alias: Vec<u32>,
}

impl WeightedSampler {
    /// A sampler for `weights`, or `None` when every weight is equal (then uniform draws are
    /// the same distribution and cheaper). Weights must be finite, non-negative, and not all 0.
    pub fn new(weights: &[f64]) -> Option<Self> {
        let first = *weights.first()?;
        if weights.iter().all(|&w| w == first) {
            return None;
        }
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|&w| w * n as f64 / total).collect();
        let mut keep = vec![1.0f64; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            keep[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] = (scaled[l] + scaled[s]) - 1.0;
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is 1 up to rounding: always keep it.
        for i in small.into_iter().chain(large) {
            keep[i] = 1.0;
        }
        Some(Self { keep, alias })
    }

    /// One weighted draw.
    #[inline]
    pub fn draw(&self, rng: &mut Rng) -> usize {
        let i = rng.below(self.keep.len() as u64) as usize;
        if rng.unit_f64() < self.keep[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

/// How many times each of `n` rows is drawn into a bootstrap sample of `draws` rows: uniform
/// draws, or weighted ones through `sampler`.
pub fn bootstrap_counts(
    rng: &mut Rng,
    n: usize,
    draws: usize,
    sampler: Option<&WeightedSampler>,
) -> Vec<u32> {
    let mut counts = vec![0u32; n];
    match sampler {
        None => {
            for _ in 0..draws {
                counts[rng.below(n as u64) as usize] += 1;
            }
        }
        Some(s) => {
            for _ in 0..draws {
                counts[s.draw(rng)] += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_need_no_sampler() {
        assert!(WeightedSampler::new(&[2.0, 2.0, 2.0]).is_none());
        assert!(WeightedSampler::new(&[]).is_none());
    }

    #[test]
    fn draws_follow_the_weights_and_never_pick_zero_weight_rows() {
        let weights = [0.0, 1.0, 3.0, 0.0, 6.0];
        let s = WeightedSampler::new(&weights).unwrap();
        let mut rng = Rng::new(1);
        let counts = bootstrap_counts(&mut rng, 5, 100_000, Some(&s));
        assert_eq!(counts[0], 0);
        assert_eq!(counts[3], 0);
        for (i, expected) in [(1, 10_000.0), (2, 30_000.0), (4, 60_000.0)] {
            let got = counts[i] as f64;
            assert!(
                (got - expected).abs() < 0.03 * expected,
                "row {i}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn uniform_counts_sum_to_draws() {
        let mut rng = Rng::new(2);
        let counts = bootstrap_counts(&mut rng, 10, 25, None);
        assert_eq!(counts.iter().sum::<u32>(), 25);
    }
}
