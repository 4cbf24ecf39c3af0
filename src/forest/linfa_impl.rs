//! linfa integration: fit a forest from a `linfa::Dataset` and predict into `Array1<usize>`.
//!
//! [`RandomForestParams`] wraps [`ForestParams`] with a thread count so Rust users can write
//! `RandomForestParams::default().fit(&dataset)?` and `forest.predict(&records)` the linfa way.
//! Targets are class indices `0..n_classes`; dataset weights become sample weights.

use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, ArrayBase, Data, Ix2};

use super::{Forest, ForestParams};
use crate::error::WoodlotError;
use crate::value::FeatureValue;

/// Hyperparameters plus the number of threads, for linfa's `Fit`.
#[derive(Debug, Clone, Default)]
pub struct RandomForestParams {
    /// The forest's hyperparameters.
    pub params: ForestParams,
    /// Threads to train on (at least 1).
    pub n_threads: usize,
}

impl From<linfa::Error> for WoodlotError {
    fn from(e: linfa::Error) -> Self {
        WoodlotError::input(format!("linfa: {e}"))
    }
}

impl<F, D, T> Fit<ArrayBase<D, Ix2>, T, WoodlotError> for RandomForestParams
where
    F: FeatureValue,
    D: Data<Elem = F>,
    T: AsSingleTargets<Elem = usize>,
{
    type Object = Forest;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<Forest, WoodlotError> {
        let targets = dataset.as_single_targets();
        let mut y = Vec::with_capacity(targets.len());
        for &t in targets.iter() {
            let code = u32::try_from(t)
                .map_err(|_| WoodlotError::input(format!("class index {t} is too large")))?;
            y.push(code);
        }
        let n_classes = y.iter().max().map_or(0, |&m| m as usize + 1);
        let weights: Option<Vec<f64>> = dataset
            .weights()
            .map(|w| w.iter().map(|&v| v as f64).collect());
        Forest::fit(
            dataset.records.view(),
            &y,
            n_classes,
            weights.as_deref(),
            &self.params,
            self.n_threads.max(1),
        )
    }
}

impl<F, D> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>> for Forest
where
    F: FeatureValue,
    D: Data<Elem = F>,
{
    /// # Panics
    /// As every linfa model does, when `x` has the wrong number of features or `y` the wrong
    /// length, or when `x` holds infinity (linfa's trait has no error channel; use
    /// [`Forest::predict`] for a `Result`).
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        assert_eq!(
            x.nrows(),
            y.len(),
            "the number of records and targets must match"
        );
        let codes = self
            .predict(x.view(), 1)
            .expect("records must match the forest's features");
        for (dst, c) in y.iter_mut().zip(codes) {
            *dst = c as usize;
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

#[cfg(test)]
mod tests {
    use linfa::prelude::*;
    use ndarray::{Array1, Array2};

    use super::RandomForestParams;
    use crate::forest::ForestParams;

    #[test]
    fn fits_and_predicts_the_linfa_way() {
        // Class = whether the first feature exceeds the second.
        let n = 300;
        let records = Array2::from_shape_fn((n, 3), |(i, j)| ((i * 7 + j * 13) % 31) as f64 / 31.0);
        let targets: Array1<usize> = records
            .rows()
            .into_iter()
            .map(|r| usize::from(r[0] > r[1]))
            .collect();
        let dataset = Dataset::new(records.clone(), targets.clone());
        let params = RandomForestParams {
            params: ForestParams {
                n_estimators: 30,
                ..Default::default()
            },
            n_threads: 2,
        };
        let forest = params.fit(&dataset).unwrap();
        // The inherent `Forest::predict` returns a Result; linfa's trait is called by name.
        let predicted: Array1<usize> = Predict::predict(&forest, &records);
        let correct = predicted
            .iter()
            .zip(&targets)
            .filter(|(a, b)| a == b)
            .count();
        assert!(correct as f64 / n as f64 > 0.95);
        // linfa's confusion matrix works on our predictions.
        let cm = predicted.confusion_matrix(&dataset).unwrap();
        assert!(cm.accuracy() > 0.95);
    }
}
