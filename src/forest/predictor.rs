//! A fitted forest ready to serve: the plain walk for small batches, the compiled layout (see
//! [`compiled`](super::compiled)) for large ones, compiled once on first need and kept.
//!
//! This is the fast path every caller should predict through when a forest answers more than
//! one batch (the Python handle, the store's `compare`, a Rust service). Both paths give
//! bit-identical probabilities, so the choice is only about speed: compiling costs about as much
//! as predicting a few thousand rows, so batches below [`COMPILED_MIN_ROWS`] never trigger it.

use std::sync::{Arc, OnceLock};

use ndarray::{Array2, ArrayView2};

use super::compiled::CompiledForest;
use super::predict::argmax_rows;
use super::threads::run_in_pool;
use super::Forest;
use crate::error::Result;
use crate::value::FeatureValue;

/// Batches of at least this many rows go through the compiled forest; compiling costs about as
/// much as predicting a few thousand rows, once per model.
pub const COMPILED_MIN_ROWS: usize = 2048;

/// A fitted forest (shared, immutable) and its compiled layout, built on the first large batch.
///
/// `Sync`: any number of threads may predict at once; the first large batch compiles while the
/// others wait for it (once).
#[derive(Debug)]
pub struct Predictor {
    forest: Arc<Forest>,
    /// `None` inside when the forest does not fit the compact layout (the plain walk is used).
    compiled: OnceLock<Option<CompiledForest>>,
}

impl Predictor {
    /// Wraps a fitted forest; nothing is compiled yet.
    pub fn new(forest: impl Into<Arc<Forest>>) -> Self {
        Self {
            forest: forest.into(),
            compiled: OnceLock::new(),
        }
    }

    /// The forest.
    pub fn forest(&self) -> &Arc<Forest> {
        &self.forest
    }

    /// The compiled forest for a batch of `n_rows`, if the batch is large enough to use it
    /// (compiling on `n_threads` threads the first time).
    pub fn compiled_for(&self, n_rows: usize, n_threads: usize) -> Option<&CompiledForest> {
        if n_rows < COMPILED_MIN_ROWS {
            return None;
        }
        self.compiled
            .get_or_init(|| {
                run_in_pool(n_threads, || CompiledForest::new(&self.forest))
                    .ok()
                    .flatten()
            })
            .as_ref()
    }

    /// Mean class probabilities of the trees, `n_samples x n_classes`; identical to
    /// [`Forest::predict_proba`], through the compiled layout for large batches.
    pub fn predict_proba<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Array2<f64>> {
        match self.compiled_for(x.nrows(), n_threads) {
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
        Ok(argmax_rows(&self.predict_proba(x, n_threads)?))
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
    fn large_batches_compile_once_and_agree_with_the_plain_walk() {
        let (x, y) = data(COMPILED_MIN_ROWS + 100);
        let params = ForestParams {
            n_estimators: 8,
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, 2, None, &params, 2).unwrap();
        let want = forest.predict_proba(x.view(), 1).unwrap();
        let p = Predictor::new(forest);
        let small = x.slice(ndarray::s![..10, ..]);
        assert_eq!(
            p.predict_proba(small, 1).unwrap(),
            want.slice(ndarray::s![..10, ..])
        );
        assert!(p.compiled.get().is_none(), "a small batch must not compile");
        assert_eq!(p.predict_proba(x.view(), 2).unwrap(), want);
        let first = p.compiled_for(x.nrows(), 1).unwrap() as *const CompiledForest;
        assert_eq!(p.predict_proba(x.view(), 1).unwrap(), want);
        let again = p.compiled_for(x.nrows(), 1).unwrap() as *const CompiledForest;
        assert_eq!(first, again, "compiled once, then reused");
        assert_eq!(p.predict(x.view(), 1).unwrap(), argmax_rows(&want));
    }
}
