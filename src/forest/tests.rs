//! Behavioural tests of fit and predict on small synthetic problems (no Python needed). How one
//! tree grows (limits, pruning, missing values, monotonicity) is tested in the tree layer.

use ndarray::{Array2, ArrayView2};

use super::params::{ClassWeight, Criterion, ForestParams};
use super::Forest;
use crate::tree::tests::blobs;

/// A forest of `n_trees` default-parameter trees on `n_threads` threads.
fn fit_trees(
    x: &Array2<f64>,
    y: &[u32],
    n_classes: usize,
    n_trees: usize,
    n_threads: usize,
) -> Forest {
    let params = ForestParams {
        n_estimators: n_trees,
        ..Default::default()
    };
    Forest::fit(x.view(), y, n_classes, None, &params, n_threads).unwrap()
}

fn accuracy(forest: &Forest, x: ArrayView2<'_, f64>, y: &[u32]) -> f64 {
    let pred = forest.predict(x, 1).unwrap();
    pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

#[test]
fn learns_separable_classes() {
    let (x, y) = blobs(600, 3, 1);
    let (xt, yt) = blobs(300, 3, 2);
    let forest = Forest::fit(x.view(), &y, 3, None, &ForestParams::default(), 2).unwrap();
    assert!(accuracy(&forest, xt.view(), &yt) > 0.97);
    let proba = forest.predict_proba(xt.view(), 2).unwrap();
    for row in proba.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-6);
    }
    let imp = forest.feature_importances();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(imp[0] > imp[2] && imp[1] > imp[4], "{imp:?}");
}

#[test]
fn identical_for_every_thread_count_and_layout() {
    let (x, y) = blobs(500, 4, 3);
    let params = ForestParams {
        n_estimators: 20,
        random_state: 7,
        ..Default::default()
    };
    let a = Forest::fit(x.view(), &y, 3, None, &params, 1).unwrap();
    let b = Forest::fit(x.view(), &y, 3, None, &params, 3).unwrap();
    let fortran = x.t().to_owned().reversed_axes();
    let c = Forest::fit(fortran.view(), &y, 3, None, &params, 2).unwrap();
    assert_eq!(a.trees, b.trees);
    assert_eq!(a.trees, c.trees);
    let pa = a.predict_proba(x.view(), 1).unwrap();
    let pb = b.predict_proba(x.view(), 2).unwrap();
    assert_eq!(pa, pb);
    let other = Forest::fit(
        x.view(),
        &y,
        3,
        None,
        &ForestParams {
            random_state: 8,
            ..params
        },
        1,
    )
    .unwrap();
    assert_ne!(a.trees, other.trees);
}

#[test]
fn warm_start_equals_one_big_fit() {
    let (x, y) = blobs(300, 2, 4);
    let p10 = ForestParams {
        n_estimators: 10,
        ..Default::default()
    };
    let p25 = ForestParams {
        n_estimators: 25,
        ..Default::default()
    };
    let small = Forest::fit(x.view(), &y, 3, None, &p10, 2).unwrap();
    let grown = small.fit_more(x.view(), &y, None, &p25, 2).unwrap();
    let full = Forest::fit(x.view(), &y, 3, None, &p25, 2).unwrap();
    assert_eq!(grown.trees, full.trees);
    assert!(small
        .fit_more(
            x.view(),
            &y,
            None,
            &ForestParams {
                n_estimators: 5,
                ..p10
            },
            1
        )
        .is_err());
}

#[test]
fn infinity_and_bad_shapes_are_errors_not_panics() {
    let (x, y) = blobs(50, 1, 7);
    let f = fit_trees(&x, &y, 3, 3, 1);
    let inf = ndarray::array![[f64::INFINITY, 0.0, 0.0]];
    assert!(f.predict_proba(inf.view(), 1).is_err());
    let narrow = ndarray::array![[0.0, 0.0]];
    let err = f.predict_proba(narrow.view(), 1).unwrap_err().to_string();
    assert!(err.contains("X has 2 features"), "{err}");
    assert!(Forest::fit(x.view(), &y[..10], 3, None, &ForestParams::default(), 1).is_err());
    let empty = Array2::<f64>::zeros((0, 3));
    assert!(Forest::fit(empty.view(), &[], 3, None, &ForestParams::default(), 1).is_err());
    assert!(
        Forest::fit(x.view(), &y, 2, None, &ForestParams::default(), 1).is_err(),
        "code 2 >= n_classes"
    );
    let neg = vec![-1.0; 50];
    assert!(Forest::fit(x.view(), &y, 3, Some(&neg), &ForestParams::default(), 1).is_err());
}

#[test]
fn oob_score_is_close_to_test_accuracy() {
    let (x, y) = blobs(600, 3, 10);
    let p = ForestParams {
        oob_score: true,
        n_estimators: 50,
        ..Default::default()
    };
    let f = Forest::fit(x.view(), &y, 3, None, &p, 2).unwrap();
    let oob = f.oob.as_ref().unwrap();
    assert_eq!(oob.decision_function.len(), 600 * 3);
    assert!(oob.score > 0.95, "{}", oob.score);
    let f1 = Forest::fit(x.view(), &y, 3, None, &p, 1).unwrap();
    assert_eq!(f1.oob, f.oob);
}

#[test]
fn weights_and_class_weights_shift_the_decision() {
    // Overlapping classes: heavy weight on class 1 should make it win the overlap.
    let n = 400;
    let mut x = Array2::zeros((n, 1));
    let mut y = Vec::new();
    for i in 0..n {
        x[[i, 0]] = ((i / 2) % 10) as f64;
        y.push((i % 2) as u32);
    }
    let p = ForestParams {
        n_estimators: 10,
        ..Default::default()
    };
    let heavy: Vec<f64> = y.iter().map(|&c| if c == 1 { 5.0 } else { 1.0 }).collect();
    let f = Forest::fit(x.view(), &y, 2, Some(&heavy), &p, 1).unwrap();
    assert!(f.predict(x.view(), 1).unwrap().iter().all(|&c| c == 1));
    let cw = ForestParams {
        class_weight: ClassWeight::PerClass(vec![1.0, 5.0]),
        ..p.clone()
    };
    let f = Forest::fit(x.view(), &y, 2, None, &cw, 1).unwrap();
    assert!(f.predict(x.view(), 1).unwrap().iter().all(|&c| c == 1));
    for cw in [ClassWeight::Balanced, ClassWeight::BalancedSubsample] {
        let p = ForestParams {
            class_weight: cw,
            criterion: Criterion::Entropy,
            ..p.clone()
        };
        Forest::fit(x.view(), &y, 2, None, &p, 2).unwrap();
    }
}

#[test]
fn apply_returns_leaf_indices() {
    let (x, y) = blobs(100, 1, 12);
    let f = fit_trees(&x, &y, 3, 4, 1);
    let leaves = f.apply(x.view(), 2).unwrap();
    assert_eq!(leaves.dim(), (100, 4));
    for (k, tree) in f.trees.iter().enumerate() {
        for r in 0..100 {
            assert!(tree.nodes[leaves[[r, k]] as usize].is_leaf());
        }
    }
}

#[test]
fn single_class_gives_certain_predictions() {
    let (x, _) = blobs(30, 1, 13);
    let y = vec![0u32; 30];
    let f = fit_trees(&x, &y, 1, 3, 1);
    let p = f.predict_proba(x.view(), 1).unwrap();
    assert!(p.iter().all(|&v| v == 1.0));
}
