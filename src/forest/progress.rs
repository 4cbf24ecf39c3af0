//! A trees-built counter that fit threads bump and another thread reads while the fit runs.
//!
//! Fits of large forests take minutes, and scikit-learn users expect `verbose` to show them
//! moving. The fit runs on rayon threads with the GIL released, so the Python side cannot be
//! called from them (that would serialise the fit on the GIL); instead each finished tree does
//! one relaxed `fetch_add` on a shared counter, and a Python thread polls it a few times a
//! second to print messages or move a progress bar. One atomic add per tree (each tree costs
//! at least microseconds) cannot slow a fit measurably.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A shared count of the trees a fit has finished; cloning shares the same counter.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicUsize>);

impl Progress {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one more finished tree (called by the fit threads).
    pub fn tree_done(&self) {
        // Relaxed: readers want a recent count, not an ordering with the trees' data.
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Trees finished so far.
    pub fn trees_built(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::{Forest, ForestParams};
    use ndarray::Array2;

    fn params(n_estimators: usize) -> ForestParams {
        ForestParams {
            n_estimators,
            ..Default::default()
        }
    }

    #[test]
    fn a_fit_counts_each_tree_once_and_a_warm_start_only_its_new_trees() {
        let x = Array2::from_shape_fn((60, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64);
        let y: Vec<u32> = (0..60).map(|i| (i % 2) as u32).collect();
        let p = Progress::new();
        let forest =
            Forest::fit_with_progress(None, x.view(), &y, 2, None, &params(12), 2, &p).unwrap();
        assert_eq!((forest.trees.len(), p.trees_built()), (12, 12));
        let q = Progress::new();
        let more =
            Forest::fit_with_progress(Some(&forest), x.view(), &y, 2, None, &params(20), 2, &q)
                .unwrap();
        assert_eq!((more.trees.len(), q.trees_built()), (20, 8));
        // Counting changes nothing about the trees.
        let plain = Forest::fit(x.view(), &y, 2, None, &params(12), 1).unwrap();
        assert_eq!(plain.trees, forest.trees);
    }

    #[test]
    fn clones_share_one_count() {
        let p = Progress::new();
        let q = p.clone();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..250 {
                        q.tree_done();
                    }
                });
            }
        });
        assert_eq!(p.trees_built(), 1000);
    }
}
