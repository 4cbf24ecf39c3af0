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
