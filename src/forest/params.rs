//! The forest's hyperparameters, in their scikit-learn meaning, and their resolution against a
//! concrete data set (e.g. `max_features="sqrt"` becomes a number of features).

use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};
pub use crate::tree::{Criterion, TreeLimits};

/// Why `oob_score=True` is refused without `bootstrap` (scikit-learn's message).
pub const OOB_WITHOUT_BOOTSTRAP: &str = "Out of bag estimation only available if bootstrap=True";

/// A count given either absolutely or as a fraction of the training samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SizeSpec {
    /// An absolute number.
    Count(usize),
    /// A fraction in (0, 1] of the number of training samples.
    Fraction(f64),
}

/// How many features each split draws, as scikit-learn's `max_features`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MaxFeatures {
    /// `"sqrt"`: `max(1, floor(sqrt(n_features)))`.
    Sqrt,
    /// `"log2"`: `max(1, floor(log2(n_features)))`.
    Log2,
    /// `None`: every feature.
    All,
    /// An absolute number of features.
    Count(usize),
    /// `max(1, floor(fraction * n_features))`.
    Fraction(f64),
}

/// Class weighting, as scikit-learn's `class_weight`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClassWeight {
    /// Every class weighs 1.
    Uniform,
    /// `n_samples / (n_classes * count(class))` over the whole training set.
    Balanced,
    /// As `Balanced`, but computed on each tree's bootstrap sample.
    BalancedSubsample,
    /// One weight per class code.
    PerClass(Vec<f64>),
}

/// Every hyperparameter of scikit-learn's `RandomForestClassifier` that shapes the model.
///
/// `n_jobs` and `verbose` are not here: they change how a fit runs, never what it produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    /// Number of trees.
    pub n_estimators: usize,
    /// Split criterion.
    pub criterion: Criterion,
    /// Maximum depth; `None` grows until the other limits stop it.
    pub max_depth: Option<usize>,
    /// Minimum number of samples a node needs to be split.
    pub min_samples_split: SizeSpec,
    /// Minimum number of samples in each leaf.
    pub min_samples_leaf: SizeSpec,
    /// Minimum fraction of the total sample weight in each leaf.
    pub min_weight_fraction_leaf: f64,
    /// Features drawn per split.
    pub max_features: MaxFeatures,
    /// Grow best-first with at most this many leaves.
    pub max_leaf_nodes: Option<usize>,
    /// A split must decrease the weighted impurity by at least this much.
    pub min_impurity_decrease: f64,
    /// Draw a bootstrap sample per tree.
    pub bootstrap: bool,
    /// Compute the out-of-bag score and decision function.
    pub oob_score: bool,
    /// Seed of all randomness.
    pub random_state: u64,
    /// Class weighting.
    pub class_weight: ClassWeight,
    /// Minimal cost-complexity pruning strength.
    pub ccp_alpha: f64,
    /// Bootstrap sample size; `None` means the number of training samples.
    pub max_samples: Option<SizeSpec>,
    /// Per-feature monotonicity constraint (-1, 0, 1) on the positive class probability.
    pub monotonic_cst: Option<Vec<i8>>,
}

impl Default for ForestParams {
    /// scikit-learn 1.9's defaults, with `random_state = 0`.
    fn default() -> Self {
        Self {
            n_estimators: 100,
            criterion: Criterion::Gini,
            max_depth: None,
            min_samples_split: SizeSpec::Count(2),
            min_samples_leaf: SizeSpec::Count(1),
            min_weight_fraction_leaf: 0.0,
            max_features: MaxFeatures::Sqrt,
            max_leaf_nodes: None,
            min_impurity_decrease: 0.0,
            bootstrap: true,
            oob_score: false,
            random_state: 0,
            class_weight: ClassWeight::Uniform,
            ccp_alpha: 0.0,
            max_samples: None,
            monotonic_cst: None,
        }
    }
}

impl ForestParams {
    /// Checks every value's range and resolves the per-tree limits for `n_samples` x
    /// `n_features` training data with `n_classes` classes.
    pub fn resolve(
        &self,
        n_samples: usize,
        n_features: usize,
        n_classes: usize,
    ) -> Result<TreeLimits> {
        if self.n_estimators == 0 {
            return Err(WoodlotError::param("n_estimators", "must be at least 1"));
        }
        if n_features > crate::tree::MAX_FEATURES as usize {
            return Err(WoodlotError::input(format!(
                "X has {n_features} features; a tree indexes at most 2^31 of them"
            )));
        }
        if let Some(0) = self.max_depth {
            return Err(WoodlotError::param(
                "max_depth",
                "must be at least 1 or None",
            ));
        }
        let min_samples_leaf = match self.min_samples_leaf {
            SizeSpec::Count(0) => {
                return Err(WoodlotError::param(
                    "min_samples_leaf",
                    "an integer must be at least 1",
                ))
            }
            SizeSpec::Count(c) => c,
            SizeSpec::Fraction(f) if f > 0.0 && f < 1.0 => {
                ((f * n_samples as f64).ceil() as usize).max(1)
            }
            SizeSpec::Fraction(f) => {
                return Err(WoodlotError::param(
                    "min_samples_leaf",
                    format!("a float must be in (0.0, 1.0), got {f}"),
                ))
            }
        };
        let min_samples_split = match self.min_samples_split {
            SizeSpec::Count(c) if c >= 2 => c,
            SizeSpec::Count(c) => {
                return Err(WoodlotError::param(
                    "min_samples_split",
                    format!("an integer must be at least 2, got {c}"),
                ))
            }
            SizeSpec::Fraction(f) if f > 0.0 && f <= 1.0 => {
                ((f * n_samples as f64).ceil() as usize).max(2)
            }
            SizeSpec::Fraction(f) => {
                return Err(WoodlotError::param(
                    "min_samples_split",
                    format!("a float must be in (0.0, 1.0], got {f}"),
                ))
            }
        };
        if !(0.0..=0.5).contains(&self.min_weight_fraction_leaf) {
            return Err(WoodlotError::param(
                "min_weight_fraction_leaf",
                format!(
                    "must be in [0.0, 0.5], got {}",
                    self.min_weight_fraction_leaf
                ),
            ));
        }
        let max_features = match self.max_features {
            MaxFeatures::Sqrt => ((n_features as f64).sqrt() as usize).max(1),
            MaxFeatures::Log2 => ((n_features as f64).log2() as usize).max(1),
            MaxFeatures::All => n_features,
            MaxFeatures::Count(c) if c >= 1 && c <= n_features => c,
            MaxFeatures::Count(c) => {
                return Err(WoodlotError::param(
                    "max_features",
                    format!("must be in (0, n_features={n_features}], got {c}"),
                ))
            }
            MaxFeatures::Fraction(f) if f > 0.0 && f <= 1.0 => {
                ((f * n_features as f64) as usize).max(1)
            }
            MaxFeatures::Fraction(f) => {
                return Err(WoodlotError::param(
                    "max_features",
                    format!("a float must be in (0.0, 1.0], got {f}"),
                ))
            }
        };
        if let Some(m) = self.max_leaf_nodes {
            if m < 2 {
                return Err(WoodlotError::param(
                    "max_leaf_nodes",
                    format!("must be at least 2 or None, got {m}"),
                ));
            }
        }
        if self.min_impurity_decrease.is_nan() || self.min_impurity_decrease < 0.0 {
            return Err(WoodlotError::param(
                "min_impurity_decrease",
                "must be a number >= 0",
            ));
        }
        if self.ccp_alpha.is_nan() || self.ccp_alpha < 0.0 {
            return Err(WoodlotError::param("ccp_alpha", "must be a number >= 0"));
        }
        if self.oob_score && !self.bootstrap {
            // The one place this is checked (the Python estimator relies on it), in
            // scikit-learn's words so code matching its message keeps working.
            return Err(WoodlotError::param("oob_score", OOB_WITHOUT_BOOTSTRAP));
        }
        if self.max_samples.is_some() && !self.bootstrap {
            return Err(WoodlotError::param(
                "max_samples",
                // scikit-learn's words (its tests match on them).
                "`max_sample` cannot be set if `bootstrap=False`. Either switch to \
                 `bootstrap=True` or set `max_sample=None`.",
            ));
        }
        self.bootstrap_size(n_samples)?;
        if let ClassWeight::PerClass(w) = &self.class_weight {
            if w.len() != n_classes {
                return Err(WoodlotError::param(
                    "class_weight",
                    format!(
                        "expected {n_classes} weights, one per class, got {}",
                        w.len()
                    ),
                ));
            }
            if w.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(WoodlotError::param(
                    "class_weight",
                    "weights must be finite and >= 0",
                ));
            }
        }
        let monotonic_cst = match &self.monotonic_cst {
            None => Vec::new(),
            Some(cst) => {
                if cst.len() != n_features {
                    return Err(WoodlotError::param(
                        "monotonic_cst",
                        format!(
                            "monotonic_cst has shape {} but the input data X has {n_features} \
                             features.",
                            cst.len()
                        ),
                    ));
                }
                if cst.iter().any(|c| !(-1..=1).contains(c)) {
                    return Err(WoodlotError::param(
                        "monotonic_cst",
                        "monotonic_cst must be None or an array-like of -1, 0 or 1.",
                    ));
                }
                if n_classes > 2 && cst.iter().any(|c| *c != 0) {
                    return Err(WoodlotError::param(
                        "monotonic_cst",
                        "Monotonicity constraints are not supported with multiclass classification",
                    ));
                }
                cst.clone()
            }
        };
        Ok(TreeLimits {
            criterion: self.criterion,
            max_depth: self.max_depth.unwrap_or(usize::MAX),
            min_samples_split: min_samples_split.max(min_samples_leaf.saturating_mul(2)),
            min_samples_leaf,
            min_weight_fraction_leaf: self.min_weight_fraction_leaf,
            max_features,
            max_leaf_nodes: self.max_leaf_nodes,
            min_impurity_decrease: self.min_impurity_decrease,
            ccp_alpha: self.ccp_alpha,
            monotonic_cst,
        })
    }

    /// Number of draws of each tree's bootstrap sample. As in scikit-learn 1.9, a count may
    /// exceed the number of samples (draws are with replacement), and a fraction may exceed 1.
    pub fn bootstrap_size(&self, n_samples: usize) -> Result<usize> {
        match self.max_samples {
            None => Ok(n_samples),
            Some(SizeSpec::Count(c)) if c >= 1 => Ok(c),
            Some(SizeSpec::Count(c)) => Err(WoodlotError::param(
                "max_samples",
                format!("an integer must be at least 1, got {c}"),
            )),
            // Python's round(): ties go to even, as scikit-learn computes it.
            Some(SizeSpec::Fraction(f)) if f > 0.0 && f.is_finite() => {
                Ok(((n_samples as f64 * f).round_ties_even() as usize).max(1))
            }
            Some(SizeSpec::Fraction(f)) => Err(WoodlotError::param(
                "max_samples",
                format!("a float must be > 0.0, got {f}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_like_scikit_learn() {
        let p = ForestParams::default();
        let l = p.resolve(100, 13, 3).unwrap();
        assert_eq!(l.max_features, 3);
        assert_eq!(l.min_samples_split, 2);
        assert_eq!(l.min_samples_leaf, 1);
        assert_eq!(l.max_depth, usize::MAX);
        // A node keeps its missing-value direction in its feature word's top bit.
        let too_wide = crate::tree::MAX_FEATURES as usize + 1;
        let m = p.resolve(100, too_wide, 3).unwrap_err().to_string();
        assert!(m.contains("at most 2^31"), "{m}");
        assert!(p.resolve(100, too_wide - 1, 3).is_ok());
    }

    #[test]
    fn fractions_resolve() {
        let p = ForestParams {
            min_samples_leaf: SizeSpec::Fraction(0.1),
            max_features: MaxFeatures::Fraction(0.5),
            max_samples: Some(SizeSpec::Fraction(0.5)),
            ..Default::default()
        };
        let l = p.resolve(101, 10, 2).unwrap();
        assert_eq!(l.min_samples_leaf, 11);
        assert_eq!(l.min_samples_split, 22);
        assert_eq!(l.max_features, 5);
        assert_eq!(p.bootstrap_size(101).unwrap(), 50);
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let cases: Vec<(ForestParams, &str)> = vec![
            (
                ForestParams {
                    n_estimators: 0,
                    ..Default::default()
                },
                "n_estimators",
            ),
            (
                ForestParams {
                    max_features: MaxFeatures::Count(99),
                    ..Default::default()
                },
                "max_features",
            ),
            (
                ForestParams {
                    min_samples_split: SizeSpec::Count(1),
                    ..Default::default()
                },
                "min_samples_split",
            ),
            (
                ForestParams {
                    oob_score: true,
                    bootstrap: false,
                    ..Default::default()
                },
                "oob_score",
            ),
            (
                ForestParams {
                    ccp_alpha: f64::NAN,
                    ..Default::default()
                },
                "ccp_alpha",
            ),
            (
                ForestParams {
                    max_leaf_nodes: Some(1),
                    ..Default::default()
                },
                "max_leaf_nodes",
            ),
        ];
        for (p, name) in cases {
            match p.resolve(10, 4, 2) {
                Err(WoodlotError::InvalidParameter { name: n, message }) => {
                    assert_eq!(n, name);
                    if name == "oob_score" {
                        assert_eq!(message, OOB_WITHOUT_BOOTSTRAP);
                    }
                }
                other => panic!("expected an error naming {name}, got {other:?}"),
            }
        }
    }
}
