//! Prediction: class probabilities, labels and leaf indices.
//!
//! Rows are processed in blocks: a block is converted once to a contiguous `f32` buffer (any
//! input dtype and memory layout, checked for infinity on the way), then each tree walks every
//! row of the block while its nodes are hot in cache. Blocks run in parallel; each row's
//! probabilities are summed in tree order, so results are identical for every `n_jobs`. A single
//! row skips the thread pool altogether: its cost is a few hundred node visits.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::compiled::CompiledForest;
use super::threads::run_in_pool;
use super::Forest;
use crate::error::{Result, WoodlotError};
use crate::value::FeatureValue;

/// Rows per block: large enough to amortise walking a tree, small enough for the buffer and the
/// output to stay in L1/L2.
pub(crate) const BLOCK_ROWS: usize = 64;

/// Rows per chunk on the compiled path: enough rows per tree pass to reuse its nodes from cache
/// (on the 100k x 50, 100-tree forest, one thread, 16,384-row chunks predicted about 1.5 times
/// as many rows a second as 4,096-row ones; 32,768 and 65,536 measured within the machine's
/// noise of 16,384, for two and four times the chunk's memory).
pub const COMPILED_CHUNK_ROWS: usize = 16_384;

/// A chunk never holds fewer rows than this (the size every chunk had before wide inputs and
/// many classes were bounded) ...
const COMPILED_CHUNK_MIN_ROWS: usize = 4096;
/// ... and, above that, at most this many gathered `f32` inputs (4 MiB) ...
const COMPILED_CHUNK_MAX_VALUES: usize = 1 << 20;
/// ... and at most this many scratch counters (a vote per class and row, 1 MiB).
const COMPILED_CHUNK_MAX_SLOTS: usize = 1 << 18;

/// Rows per chunk on the compiled path for a batch of `n` rows of `n_features` values each,
/// needing `scratch` counters a row beside the output (its classes' votes, or none), on
/// `n_threads` threads: at most
/// [`COMPILED_CHUNK_ROWS`] (fewer for wide rows or outputs, see the bounds above), and a
/// multiple of the thread count in number of chunks, so no thread is left with one chunk more
/// than the others at the end.
pub(crate) fn compiled_chunk_rows(
    n: usize,
    n_features: usize,
    scratch: usize,
    n_threads: usize,
) -> usize {
    let by_memory = (COMPILED_CHUNK_MAX_VALUES / n_features.max(1))
        .min(COMPILED_CHUNK_MAX_SLOTS / scratch.max(1));
    let cap = by_memory.clamp(COMPILED_CHUNK_MIN_ROWS, COMPILED_CHUNK_ROWS);
    let threads = n_threads.max(1);
    let chunks = n.div_ceil(cap).div_ceil(threads).max(1) * threads;
    n.div_ceil(chunks).clamp(BLOCK_ROWS, cap)
}

/// Copies rows `start..start + rows` of `x` into `buf` as row-major `f32`, rejecting infinity
/// (and `f64` values too large for `f32`). NaN passes: it means "missing".
pub(crate) fn gather_rows<T: FeatureValue>(
    x: ArrayView2<'_, T>,
    start: usize,
    rows: usize,
    buf: &mut Vec<f32>,
) -> Result<()> {
    buf.clear();
    for r in start..start + rows {
        for (col, v) in x.row(r).iter().enumerate() {
            let v = v.to_f32();
            if v.is_infinite() {
                return Err(WoodlotError::input(format!(
                    "Input X contains infinity or a value too large for dtype('float32') \
                     (row {r}, column {col})"
                )));
            }
            buf.push(v);
        }
    }
    Ok(())
}

impl Forest {
    /// Checks that `x` has the forest's number of features.
    fn check_features<T: FeatureValue>(&self, x: &ArrayView2<'_, T>) -> Result<()> {
        if x.ncols() != self.n_features as usize {
            return Err(WoodlotError::input(format!(
                "X has {} features, but RandomForestClassifier is expecting {} features as input.",
                x.ncols(),
                self.n_features
            )));
        }
        Ok(())
    }

    /// Runs `per_block(first_row, rows, buffer, out_block)` over blocks of `x`, in parallel on
    /// `n_threads` threads when there is more than one block.
    #[allow(clippy::too_many_arguments)]
    fn for_each_block<T: FeatureValue, O: Send>(
        &self,
        x: ArrayView2<'_, T>,
        out: &mut [O],
        width: usize,
        block_rows: usize,
        n_threads: usize,
        per_block: impl Fn(&[f32], &mut [O]) + Sync,
    ) -> Result<()> {
        self.check_features(&x)?;
        let n = x.nrows();
        let f = x.ncols();
        let run = |(b, chunk): (usize, &mut [O])| -> Result<()> {
            let rows = chunk.len() / width.max(1);
            let mut buf = Vec::with_capacity(rows * f);
            gather_rows(x, b * block_rows, rows, &mut buf)?;
            per_block(&buf, chunk);
            Ok(())
        };
        if n <= block_rows || n_threads <= 1 {
            out.chunks_mut(block_rows * width)
                .enumerate()
                .try_for_each(run)
        } else {
            run_in_pool(n_threads, || {
                out.par_chunks_mut(block_rows * width)
                    .enumerate()
                    .try_for_each(run)
            })?
        }
    }

    /// Mean class probabilities of the trees, `n_samples x n_classes`.
    pub fn predict_proba<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Array2<f64>> {
        let c = self.n_classes as usize;
        let f = self.n_features as usize;
        let mut out = vec![0.0f64; x.nrows() * c];
        let scale = 1.0 / self.trees.len().max(1) as f64;
        self.for_each_block(x, &mut out, c, BLOCK_ROWS, n_threads, |buf, block| {
            let rows = block.len() / c;
            if rows == 1 {
                // One row: walk each tree directly, nothing to overlap.
                for tree in &self.trees {
                    let leaf = tree.leaf_of(buf);
                    for (a, v) in block.iter_mut().zip(tree.leaf_value(leaf)) {
                        *a += *v as f64;
                    }
                }
            } else {
                let mut leaves = vec![0u32; rows];
                let mut active = Vec::with_capacity(rows);
                for tree in &self.trees {
                    tree.leaves_of_block(buf, f, &mut leaves, &mut active);
                    for (&leaf, acc) in leaves.iter().zip(block.chunks_exact_mut(c)) {
                        for (a, v) in acc.iter_mut().zip(tree.leaf_value(leaf as usize)) {
                            *a += *v as f64;
                        }
                    }
                }
            }
            block.iter_mut().for_each(|v| *v *= scale);
        })?;
        Array2::from_shape_vec((x.nrows(), c), out).map_err(|e| WoodlotError::input(e.to_string()))
    }

    /// [`Forest::predict_proba`] through a [`CompiledForest`] of this forest: identical results,
    /// faster on large batches (rows go through each tree in chunks of at most
    /// [`COMPILED_CHUNK_ROWS`], so a tree stays in cache while the chunk passes).
    pub fn predict_proba_compiled<T: FeatureValue>(
        &self,
        compiled: &CompiledForest,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Array2<f64>> {
        let c = self.n_classes as usize;
        let mut out = vec![0.0f64; x.nrows() * c];
        let scale = 1.0 / self.trees.len().max(1) as f64;
        let chunk = compiled_chunk_rows(x.nrows(), x.ncols(), c, n_threads);
        self.for_each_block(x, &mut out, c, chunk, n_threads, |buf, block| {
            compiled.predict_proba_into(buf, block, scale);
        })?;
        Array2::from_shape_vec((x.nrows(), c), out).map_err(|e| WoodlotError::input(e.to_string()))
    }

    /// [`Forest::apply`] through a [`CompiledForest`] of this forest: identical results.
    pub fn apply_compiled<T: FeatureValue>(
        &self,
        compiled: &CompiledForest,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Array2<i64>> {
        let t = self.trees.len();
        let mut out = vec![0i64; x.nrows() * t];
        let chunk = compiled_chunk_rows(x.nrows(), x.ncols(), 0, n_threads);
        self.for_each_block(x, &mut out, t, chunk, n_threads, |buf, block| {
            compiled.apply_into(buf, block);
        })?;
        Array2::from_shape_vec((x.nrows(), t), out).map_err(|e| WoodlotError::input(e.to_string()))
    }

    /// Class code of the highest mean probability for each row (the first on ties).
    pub fn predict<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Vec<u32>> {
        self.require_single_output("predict")?;
        Ok(argmax_rows(&self.predict_proba(x, n_threads)?))
    }

    /// Index of the leaf each row reaches in each tree, `n_samples x n_trees` (scikit-learn's
    /// `apply`).
    pub fn apply<T: FeatureValue>(
        &self,
        x: ArrayView2<'_, T>,
        n_threads: usize,
    ) -> Result<Array2<i64>> {
        let t = self.trees.len();
        let f = self.n_features as usize;
        let mut out = vec![0i64; x.nrows() * t];
        self.for_each_block(x, &mut out, t, BLOCK_ROWS, n_threads, |buf, block| {
            let rows = block.len() / t.max(1);
            let mut leaves = vec![0u32; rows];
            let mut active = Vec::with_capacity(rows);
            for (k, tree) in self.trees.iter().enumerate() {
                tree.leaves_of_block(buf, f, &mut leaves, &mut active);
                for (&leaf, dst) in leaves.iter().zip(block.chunks_exact_mut(t)) {
                    dst[k] = i64::from(leaf);
                }
            }
        })?;
        Array2::from_shape_vec((x.nrows(), t), out).map_err(|e| WoodlotError::input(e.to_string()))
    }
}

/// Index of the first largest value (numpy's `argmax`: the first maximum wins ties).
pub fn argmax<'a>(values: impl IntoIterator<Item = &'a f64>) -> usize {
    let mut best = (0usize, f64::NEG_INFINITY);
    for (i, &v) in values.into_iter().enumerate() {
        if i == 0 || v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Class code of the highest probability in each row (the first on ties, as numpy's `argmax`).
pub fn argmax_rows(proba: &Array2<f64>) -> Vec<u32> {
    proba
        .rows()
        .into_iter()
        .map(|r| argmax(r.iter()) as u32)
        .collect()
}
