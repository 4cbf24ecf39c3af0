//! A fitted forest ready to serve: its compiled layout (see [`compiled`](super::compiled)),
//! built when the predictor is made, for every batch of [`COMPILED_MIN_ROWS`] rows or more,
//! and the plain walk for smaller ones.
//!
//! This is the fast path every caller should predict through when a forest answers more than
//! one batch (the Python handle, the store's `compare`, a Rust service). Both paths give
//! bit-identical probabilities and leaves, so the choice is only about speed. The layout is
//! built eagerly (at fit and at load, in parallel over the trees, about 10 bytes per node), so
//! no first large batch pays for it and concurrent callers never wait on one another.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use super::compiled::{CompiledForest, CompiledTree};
use super::predict::argmax_rows;
use super::threads::{available_cores, run_in_pool};
use super::Forest;
use crate::error::Result;
use crate::value::FeatureValue;

/// Batches of at least this many rows go through the compiled forest; a single row walks the
/// original trees, which costs no allocation and no setup.
pub const COMPILED_MIN_ROWS: usize = 2;

/// A fitted forest (shared, immutable) and its compiled layout.
///
/// `Sync`: any number of threads may predict at once.
#[derive(Debug)]
pub struct Predictor {
    forest: Arc<Forest>,
    /// `None` when the forest does not fit the compiled layout (the plain walk is used).
    compiled: Option<CompiledForest>,
}

impl Predictor {
    /// Wraps a fitted forest and compiles it on all cores.
    pub fn new(forest: impl Into<Arc<Forest>>) -> Self {
        Self::with_threads(forest, available_cores())
    }

    /// Wraps a fitted forest and compiles it on `n_threads` threads.
    pub fn with_threads(forest: impl Into<Arc<Forest>>, n_threads: usize) -> Self {
        let forest = forest.into();
        let compiled = if n_threads <= 1 || forest.trees.len() <= 1 {
            CompiledForest::new(&forest)
        } else {
            run_in_pool(n_threads, || CompiledForest::new(&forest))
                .ok()
                .flatten()
        };
        Self { forest, compiled }
    }

    /// Wraps `forest` with the layout assembled from its trees compiled one by one, where
    /// `pieces[k]` is [`CompiledTree::new`] of `forest.trees[k]` (the model-file decoder
    /// compiles each tree in the task that decoded it). Call it on the pool that should do the
    /// work: a forest mixing pure and impure trees recompiles the pure ones in parallel.
    pub(crate) fn from_compiled_trees(
        forest: impl Into<Arc<Forest>>,
        pieces: Vec<Option<CompiledTree>>,
    ) -> Self {
        let forest = forest.into();
        let compiled = CompiledForest::from_trees(&forest, pieces);
        Self { forest, compiled }
    }

    /// The forest.
    pub fn forest(&self) -> &Arc<Forest> {
        &self.forest
    }

    /// The compiled forest, if the forest fits the layout.
    pub fn compiled(&self) -> Option<&CompiledForest> {
        self.compiled.as_ref()
    }

    /// The compiled forest for a batch of `n_rows`, if the batch is large enough to use it.
    pub fn compiled_for(&self, n_rows: usize) -> Option<&CompiledForest> {
        if n_rows < COMPILED_MIN_ROWS {
            return None;
        }
        self.compiled.as_ref()
    }

    /// Mean class probabilities of the trees, `n_samples x n_classes`; identical to
    /// [`Forest::predict_proba`].
    pub fn predict_proba<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Array2<f64>> {
        match self.compiled_for(x.nrows()) {
            Some(compiled) => self.forest.predict_proba_compiled(compiled, x, n_threads),
            None => self.forest.predict_proba(x, n_threads),
        }
    }

    /// Class code of the highest mean probability for each row (the first on ties).
    pub fn predict<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Vec<u32>> {
        self.forest().require_single_output("predict")?;
        Ok(argmax_rows(&self.predict_proba(x, n_threads)?))
    }

    /// Index of the leaf each row reaches in each tree, `n_samples x n_trees`; identical to
    /// [`Forest::apply`].
    pub fn apply<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Array2<i64>> {
        match self.compiled_for(x.nrows()) {
            Some(compiled) => self.forest.apply_compiled(compiled, x, n_threads),
            None => self.forest.apply(x, n_threads),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::forest::ForestParams;
    use crate::rng::Rng;

    fn data(n: usize) -> (Array2<f64>, Vec<u32>) {
        let mut rng = Rng::new(3);
        let x = Array2::from_shape_fn((n, 4), |_| rng.unit_f64());
        let y = x
            .rows()
            .into_iter()
            .map(|r| u32::from(r[0] + r[1] > 1.0))
            .collect();
        (x, y)
    }

    #[test]
    fn the_layout_is_built_up_front_and_agrees_with_the_plain_walk() {
        let (x, y) = data(3000);
        let params = ForestParams {
            n_estimators: 8,
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, 2, None, &params, 2).unwrap();
        let want = forest.predict_proba(x.view(), 1).unwrap();
        let leaves = forest.apply(x.view(), 1).unwrap();
        let p = Predictor::with_threads(forest, 2);
        assert!(p.compiled().is_some(), "built before the first batch");
        for n in [1, 2, 10, 3000] {
            let rows = x.slice(ndarray::s![..n, ..]);
            let part = want.slice(ndarray::s![..n, ..]);
            assert_eq!(p.predict_proba(rows, 2).unwrap(), part);
            assert_eq!(p.predict_proba(rows, 1).unwrap(), part);
            assert_eq!(
                p.apply(rows, 2).unwrap(),
                leaves.slice(ndarray::s![..n, ..])
            );
        }
        assert_eq!(p.predict(x.view(), 1).unwrap(), argmax_rows(&want));
    }
}
