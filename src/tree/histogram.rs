//! Per-node histograms of weighted class counts over bin codes, for several features at once.
//!
//! A node's candidate features are histogrammed in a single pass over its samples: the codes of
//! one sample for all features sit in one row of the row-major code matrix (one cache line), so
//! a pass costs one memory access per sample instead of one per sample and feature. Which bins
//! are present is tracked in a 256-bit mask, so reading the bins back in ascending order needs
//! no sort, and clearing touches only the rows that were used. Work is O(samples x features)
//! to build plus O(present bins x classes) to sweep, whether a node holds five samples or a
//! million.

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

/// The histogram of one feature over one node.
#[derive(Debug, Clone)]
pub struct FeatureHistogram {
    n_classes: usize,
    /// Feature this histogram is for.
    pub feature: u32,
    /// `256 * n_classes` class weights, one row per bin code (row 255: missing values).
    dense: Vec<f64>,
    /// Samples per bin code.
    counts: Vec<u32>,
    /// Class of the last sample added to each bin: deep in a tree most bins hold one sample,
    /// and then this is the only class with weight, so sweeps and clears touch one cell.
    last_class: Vec<u32>,
    /// Bit `b` set when bin code `b` holds a sample.
    present: [u64; 4],
}

impl FeatureHistogram {
    fn new(n_classes: usize) -> Self {
        Self {
            n_classes,
            feature: 0,
            dense: vec![0.0; 256 * n_classes],
            counts: vec![0; 256],
            last_class: vec![0; 256],
            present: [0; 4],
        }
    }

    #[inline]
    fn add(&mut self, code: u8, class: u32, weight: f64) {
        let b = code as usize;
        self.counts[b] += 1;
        self.last_class[b] = class;
        self.dense[b * self.n_classes + class as usize] += weight;
        self.present[b >> 6] |= 1 << (b & 63);
    }

    /// Writes the present non-missing bin codes, ascending, into `out`; returns how many.
    pub fn present_bins(&self, out: &mut [u8; 256]) -> usize {
        let mut k = 0;
        for (w, &word) in self.present.iter().enumerate() {
            let mut bits = word;
            if w == 3 {
                bits &= !(1u64 << 63); // bin 255 is the missing-value bin
            }
            while bits != 0 {
                let b = w * 64 + bits.trailing_zeros() as usize;
                out[k] = b as u8;
                k += 1;
                bits &= bits - 1;
            }
        }
        k
    }

    /// Class weights of bin code `b`.
    #[inline]
    pub fn weights(&self, b: u8) -> &[f64] {
        let c = self.n_classes;
        &self.dense[b as usize * c..(b as usize + 1) * c]
    }

    /// Number of samples in bin code `b`.
    #[inline]
    pub fn count(&self, b: u8) -> u32 {
        self.counts[b as usize]
    }

    /// When bin `b` holds exactly one sample: its class and weight.
    #[inline]
    pub fn single(&self, b: u8) -> Option<(usize, f64)> {
        let b = b as usize;
        if self.counts[b] == 1 {
            let class = self.last_class[b] as usize;
            Some((class, self.dense[b * self.n_classes + class]))
        } else {
            None
        }
    }

    /// Number of samples whose value is missing.
    #[inline]
    pub fn missing_count(&self) -> u32 {
        self.counts[MISSING_BIN as usize]
    }

    /// Class weights of the samples whose value is missing.
    #[inline]
    pub fn missing_weights(&self) -> &[f64] {
        self.weights(MISSING_BIN)
    }

    /// Whether the feature cannot split the node: one value and no missing, or all missing.
    pub fn is_constant(&self) -> bool {
        let bins: u32 = self.present.iter().map(|w| w.count_ones()).sum();
        bins <= 1
    }

    /// Zeroes the rows that were used, ready for the next node.
    fn clear(&mut self) {
        let c = self.n_classes;
        for (w, word) in self.present.iter_mut().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let b = w * 64 + bits.trailing_zeros() as usize;
                if self.counts[b] == 1 {
                    self.dense[b * c + self.last_class[b] as usize] = 0.0;
                } else {
                    self.dense[b * c..(b + 1) * c]
                        .iter_mut()
                        .for_each(|v| *v = 0.0);
                }
                self.counts[b] = 0;
                bits &= bits - 1;
            }
            *word = 0;
        }
    }
}

/// Histograms of up to `capacity` features over one node, built in one pass.
#[derive(Debug, Clone)]
pub struct NodeHistograms {
    slots: Vec<FeatureHistogram>,
    used: usize,
}

impl NodeHistograms {
    /// Buffers for up to `capacity` features and `n_classes` classes.
    pub fn new(capacity: usize, n_classes: usize) -> Self {
        Self {
            slots: (0..capacity.max(1))
                .map(|_| FeatureHistogram::new(n_classes))
                .collect(),
            used: 0,
        }
    }

    /// Histograms `features` (at most the capacity) over `samples`; `codes` is the row-major
    /// code matrix with `stride` codes per row.
    pub fn build(&mut self, codes: &[u8], stride: usize, features: &[u32], samples: &[Sample]) {
        for slot in &mut self.slots[..self.used] {
            slot.clear();
        }
        let m = features.len();
        self.used = m;
        for (slot, &f) in self.slots[..m].iter_mut().zip(features) {
            slot.feature = f;
        }
        let slots = &mut self.slots[..m];
        for s in samples {
            let base = s.row as usize * stride;
            let row = &codes[base..base + stride];
            for slot in slots.iter_mut() {
                slot.add(row[slot.feature as usize], s.class, s.weight);
            }
        }
    }

    /// The histograms of the last build, in the order their features were given.
    pub fn built(&self) -> &[FeatureHistogram] {
        &self.slots[..self.used]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_several_features_in_one_pass_and_resets() {
        // 6 rows x 2 features, row-major.
        let codes = [5u8, 0, 2, 1, 5, 1, MISSING_BIN, 0, 2, 0, 7, 3];
        let samples: Vec<Sample> = (0..6)
            .map(|i| Sample {
                row: i,
                class: i % 2,
                weight: 1.0 + i as f64,
            })
            .collect();
        let mut h = NodeHistograms::new(2, 2);
        h.build(&codes, 2, &[0, 1], &samples);
        let f0 = &h.built()[0];
        let mut bins = [0u8; 256];
        let k = f0.present_bins(&mut bins);
        assert_eq!(&bins[..k], &[2, 5, 7]);
        assert_eq!(f0.count(2), 2);
        assert_eq!(f0.weights(2), &[5.0, 2.0]); // rows 4 (class 0, w 5) and 1 (class 1, w 2)
        assert_eq!(f0.weights(5), &[4.0, 0.0]); // rows 0 and 2, both class 0
        assert_eq!(f0.missing_count(), 1);
        assert_eq!(f0.missing_weights(), &[0.0, 4.0]);
        assert!(!f0.is_constant());
        let f1 = &h.built()[1];
        let k = f1.present_bins(&mut bins);
        assert_eq!(&bins[..k], &[0, 1, 3]);
        // A second build over a subset starts from zero.
        h.build(&codes, 2, &[0], &samples[..1]);
        let f0 = &h.built()[0];
        let k = f0.present_bins(&mut bins);
        assert_eq!(&bins[..k], &[5]);
        assert_eq!(f0.weights(5), &[1.0, 0.0]);
        assert!(f0.is_constant());
    }
}
