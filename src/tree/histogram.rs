//! Per-node, per-feature histograms of weighted class counts over bin codes.
//!
//! Building a histogram is one pass over the node's samples: O(samples), no sort. The result is
//! compacted to the bins actually present in the node, in ascending order, so the sweep that
//! follows costs O(present bins x classes) whether the node holds five samples or a million.

use super::binning::MISSING_BIN;

/// One training sample as the builder sees it: its row, its class code and its weight
/// (bootstrap count x sample weight x class weight). Samples of weight 0 are never stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Row index in the training matrix.
    pub row: u32,
    /// Class code.
    pub class: u32,
    /// Positive weight.
    pub weight: f64,
}

/// Reusable histogram buffers for one tree builder.
#[derive(Debug, Clone)]
pub struct Histogram {
    n_classes: usize,
    dense: Vec<f64>,
    dense_counts: Vec<u32>,
    touched: Vec<u8>,
    /// Bin codes present in the node, ascending, missing excluded.
    pub bins: Vec<u8>,
    /// `bins.len() * n_classes` class weights, one row per present bin.
    pub weights: Vec<f64>,
    /// Total weight of each present bin.
    pub bin_weight: Vec<f64>,
    /// Number of samples in each present bin.
    pub counts: Vec<u32>,
    /// Class weights of the samples whose value is missing.
    pub missing_weights: Vec<f64>,
    /// Total weight of the missing samples.
    pub missing_weight: f64,
    /// Number of samples whose value is missing.
    pub missing_count: u32,
}

impl Histogram {
    /// Empty buffers for `n_classes` classes.
    pub fn new(n_classes: usize) -> Self {
        Self {
            n_classes,
            dense: vec![0.0; 256 * n_classes],
            dense_counts: vec![0; 256],
            touched: Vec::with_capacity(256),
            bins: Vec::with_capacity(256),
            weights: Vec::with_capacity(256 * n_classes),
            bin_weight: Vec::with_capacity(256),
            counts: Vec::with_capacity(256),
            missing_weights: vec![0.0; n_classes],
            missing_weight: 0.0,
            missing_count: 0,
        }
    }

    /// Fills the histogram of `samples` over the feature whose codes are `codes`.
    pub fn build(&mut self, codes: &[u8], samples: &[Sample]) {
        let c = self.n_classes;
        self.touched.clear();
        for s in samples {
            let b = codes[s.row as usize] as usize;
            if self.dense_counts[b] == 0 {
                self.touched.push(b as u8);
            }
            self.dense_counts[b] += 1;
            self.dense[b * c + s.class as usize] += s.weight;
        }
        self.touched.sort_unstable();
        self.bins.clear();
        self.weights.clear();
        self.bin_weight.clear();
        self.counts.clear();
        self.missing_weights.iter_mut().for_each(|w| *w = 0.0);
        self.missing_weight = 0.0;
        self.missing_count = 0;
        for &b in &self.touched {
            let bu = b as usize;
            let row = &mut self.dense[bu * c..(bu + 1) * c];
            let total: f64 = row.iter().sum();
            if b == MISSING_BIN {
                self.missing_weights.copy_from_slice(row);
                self.missing_weight = total;
                self.missing_count = self.dense_counts[bu];
            } else {
                self.bins.push(b);
                self.weights.extend_from_slice(row);
                self.bin_weight.push(total);
                self.counts.push(self.dense_counts[bu]);
            }
            row.iter_mut().for_each(|w| *w = 0.0);
            self.dense_counts[bu] = 0;
        }
    }

    /// Number of present (non-missing) bins.
    pub fn n_bins(&self) -> usize {
        self.bins.len()
    }

    /// Class weights of the `j`-th present bin.
    #[inline]
    pub fn bin_weights(&self, j: usize) -> &[f64] {
        &self.weights[j * self.n_classes..(j + 1) * self.n_classes]
    }

    /// Whether the feature cannot split this node: one value and no missing, or all missing.
    pub fn is_constant(&self) -> bool {
        self.bins.len() + usize::from(self.missing_count > 0) <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_present_bins_in_order_and_resets() {
        let codes = [5u8, 2, 5, MISSING_BIN, 2, 7];
        let samples: Vec<Sample> = (0..6)
            .map(|i| Sample {
                row: i,
                class: i % 2,
                weight: 1.0 + i as f64,
            })
            .collect();
        let mut h = Histogram::new(2);
        h.build(&codes, &samples);
        assert_eq!(h.bins, vec![2, 5, 7]);
        assert_eq!(h.counts, vec![2, 2, 1]);
        assert_eq!(h.bin_weights(0), &[5.0, 2.0]); // rows 4 (class 0, w 5) and 1 (class 1, w 2)
        assert_eq!(h.bin_weights(1), &[4.0, 0.0]); // rows 0 and 2, both class 0
        assert_eq!(h.missing_count, 1);
        assert_eq!(h.missing_weights, vec![0.0, 4.0]);
        assert!(!h.is_constant());
        // A second build over a subset starts from zero.
        h.build(&codes, &samples[..1]);
        assert_eq!(h.bins, vec![5]);
        assert_eq!(h.bin_weights(0), &[1.0, 0.0]);
        assert!(h.is_constant());
    }
}
