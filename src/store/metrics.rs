//! Classification metrics of one version on one evaluation set, in scikit-learn's definitions.
//!
//! Everything is computed from label codes in a shared [`Universe`](super::labels::Universe):
//! `y` (true codes), the version's probabilities, and the map from the version's class codes to
//! universe codes. Definitions follow `sklearn.metrics` so numbers can be checked against it:
//!
//! - accuracy: fraction of rows whose predicted label (argmax, first on ties) equals the truth;
//! - balanced accuracy: mean recall over the labels present in `y`;
//! - macro F1: mean over labels present in `y` or in the predictions of `2TP / (2TP + FP + FN)`;
//! - log loss: mean of `-ln p(true label)`, with `p` clipped to `[eps, 1 - eps]` (f64 eps), and
//!   `p = 0` (so `-ln eps`) for a label the version does not know;
//! - per-class recall (`None` for a label absent from `y`) and the confusion matrix (rows true,
//!   columns predicted, over the whole universe).

use ndarray::ArrayView2;
use serde::Serialize;

use crate::error::{Result, WoodlotError};
use crate::forest::predict::argmax;

/// One version's metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// Mean recall over the labels present in `y`.
    pub balanced_accuracy: f64,
    /// Unweighted mean F1 over the labels present in `y` or the predictions.
    pub macro_f1: f64,
    /// Mean negative log-likelihood of the true labels.
    pub log_loss: f64,
    /// Recall per universe label; `None` where the label has no true rows.
    pub per_class_recall: Vec<Option<f64>>,
    /// `confusion[true][predicted]` counts over the universe.
    pub confusion: Vec<Vec<u64>>,
    /// Rows whose true label this version has no class for (always errors).
    pub n_unknown_labels: u64,
}

/// The metric names a decision can use, and whether higher is better.
pub fn metric_direction(name: &str) -> Result<bool> {
    match name {
        "accuracy" | "balanced_accuracy" | "macro_f1" => Ok(true),
        "log_loss" => Ok(false),
        other => Err(WoodlotError::param(
            "metric",
            format!(
                "unknown metric {other:?}; use accuracy, balanced_accuracy, macro_f1 or log_loss"
            ),
        )),
    }
}

impl Metrics {
    /// A metric by name.
    pub fn get(&self, name: &str) -> Result<f64> {
        metric_direction(name)?;
        Ok(match name {
            "accuracy" => self.accuracy,
            "balanced_accuracy" => self.balanced_accuracy,
            "macro_f1" => self.macro_f1,
            _ => self.log_loss,
        })
    }
}

/// Predicted universe codes: argmax of each row (first maximum on ties, as numpy), mapped.
pub fn predictions(proba: ArrayView2<'_, f64>, class_map: &[u32]) -> Vec<u32> {
    proba
        .rows()
        .into_iter()
        .map(|row| class_map[argmax(row.iter())])
        .collect()
}

/// Computes the metrics; `pred` comes from [`predictions`].
pub fn evaluate(
    y: &[u32],
    proba: ArrayView2<'_, f64>,
    class_map: &[u32],
    pred: &[u32],
    n_labels: usize,
) -> Metrics {
    let n = y.len();
    let mut confusion = vec![vec![0u64; n_labels]; n_labels];
    for (t, p) in y.iter().zip(pred) {
        confusion[*t as usize][*p as usize] += 1;
    }
    let correct: u64 = (0..n_labels).map(|k| confusion[k][k]).sum();
    let support: Vec<u64> = confusion.iter().map(|row| row.iter().sum()).collect();
    let predicted: Vec<u64> = (0..n_labels)
        .map(|k| confusion.iter().map(|row| row[k]).sum())
        .collect();

    let per_class_recall: Vec<Option<f64>> = (0..n_labels)
        .map(|k| (support[k] > 0).then(|| confusion[k][k] as f64 / support[k] as f64))
        .collect();
    let present: Vec<f64> = per_class_recall.iter().flatten().copied().collect();
    let balanced_accuracy = mean(&present);

    let f1s: Vec<f64> = (0..n_labels)
        .filter(|k| support[*k] > 0 || predicted[*k] > 0)
        .map(|k| {
            let tp = confusion[k][k] as f64;
            let denom = 2.0 * tp + (predicted[k] as f64 - tp) + (support[k] as f64 - tp);
            if denom > 0.0 {
                2.0 * tp / denom
            } else {
                0.0
            }
        })
        .collect();
    let macro_f1 = mean(&f1s);

    // Universe code -> this version's column, if it has that class.
    let mut column = vec![None; n_labels];
    for (k, u) in class_map.iter().enumerate() {
        column[*u as usize] = Some(k);
    }
    let eps = f64::EPSILON;
    let mut nll = 0.0f64;
    let mut n_unknown_labels = 0u64;
    for (i, t) in y.iter().enumerate() {
        let p = match column[*t as usize] {
            Some(k) => proba[[i, k]],
            None => {
                n_unknown_labels += 1;
                0.0
            }
        };
        nll -= p.clamp(eps, 1.0 - eps).ln();
    }
    Metrics {
        accuracy: if n > 0 {
            correct as f64 / n as f64
        } else {
            f64::NAN
        },
        balanced_accuracy,
        macro_f1,
        log_loss: if n > 0 { nll / n as f64 } else { f64::NAN },
        per_class_recall,
        confusion,
        n_unknown_labels,
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    /// y = [0,0,0,1,1,2], predictions [0,0,1,1,2,2], worked out by hand.
    #[test]
    fn hand_computed_three_class_case() {
        let proba = array![
            [0.8, 0.1, 0.1],
            [0.6, 0.3, 0.1],
            [0.3, 0.5, 0.2],
            [0.2, 0.7, 0.1],
            [0.1, 0.4, 0.5],
            [0.0, 0.0, 1.0],
        ];
        let y = [0, 0, 0, 1, 1, 2];
        let map = [0, 1, 2];
        let pred = predictions(proba.view(), &map);
        assert_eq!(pred, vec![0, 0, 1, 1, 2, 2]);
        let m = evaluate(&y, proba.view(), &map, &pred, 3);
        close(m.accuracy, 4.0 / 6.0);
        // recalls 2/3, 1/2, 1
        close(m.balanced_accuracy, (2.0 / 3.0 + 0.5 + 1.0) / 3.0);
        // F1: class0 2*2/(4+0+1)=0.8, class1 2/(2+1+1)=0.5, class2 2/(2+1+0)=2/3
        close(m.macro_f1, (0.8 + 0.5 + 2.0 / 3.0) / 3.0);
        let want_ll = -(0.8f64.ln()
            + 0.6f64.ln()
            + 0.3f64.ln()
            + 0.7f64.ln()
            + 0.4f64.ln()
            + (1.0 - f64::EPSILON).ln())
            / 6.0;
        close(m.log_loss, want_ll);
        assert_eq!(
            m.confusion,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        assert_eq!(
            m.per_class_recall,
            vec![Some(2.0 / 3.0), Some(0.5), Some(1.0)]
        );
        assert_eq!(m.n_unknown_labels, 0);
    }

    /// The version knows labels {0, 2} (universe {0, 1, 2}); true label 1 is always an error.
    #[test]
    fn unknown_labels_count_as_errors() {
        let proba = array![[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]];
        let y = [0, 2, 1];
        let map = [0, 2];
        let pred = predictions(proba.view(), &map);
        assert_eq!(pred, vec![0, 2, 0], "ties go to the first class");
        let m = evaluate(&y, proba.view(), &map, &pred, 3);
        close(m.accuracy, 2.0 / 3.0);
        assert_eq!(m.n_unknown_labels, 1);
        close(
            m.log_loss,
            -(0.9f64.ln() + 0.8f64.ln() + f64::EPSILON.ln()) / 3.0,
        );
        // recall: 1, 0, 1 -> 2/3; F1: class0 2/(2+1+0)=2/3, class1 0, class2 1 -> (5/3)/3
        close(m.balanced_accuracy, 2.0 / 3.0);
        close(m.macro_f1, (2.0 / 3.0 + 0.0 + 1.0) / 3.0);
    }

    #[test]
    fn labels_absent_from_y_are_left_out_of_balanced_accuracy() {
        let proba = array![[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]];
        let m = evaluate(&[0, 0], proba.view(), &[0, 1, 2], &[0, 0], 3);
        close(m.balanced_accuracy, 1.0);
        close(m.macro_f1, 1.0);
        assert_eq!(m.per_class_recall, vec![Some(1.0), None, None]);
    }

    #[test]
    fn metric_names() {
        assert!(metric_direction("accuracy").unwrap());
        assert!(!metric_direction("log_loss").unwrap());
        assert!(matches!(
            metric_direction("auc"),
            Err(WoodlotError::InvalidParameter { name: "metric", .. })
        ));
    }
}
