//! Behaviour of one tree, grown directly with [`TreeBuilder`] on small synthetic problems:
//! the limits hold, pruning shrinks, missing values and monotonic constraints are learned.
//! (These lived in the forest's tests; they need nothing above this layer.)

use ndarray::Array2;

use super::{BinnedMatrix, Criterion, Sample, Tree, TreeBuilder, TreeLimits};
use crate::rng::Rng;

/// Two informative features (class = which of three regions), plus `noise` noise features.
/// Shared with the forest's tests (a lower layer's fixture may serve the one above).
pub(crate) fn blobs(n: usize, noise: usize, seed: u64) -> (Array2<f64>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let f = 2 + noise;
    let mut x = Array2::zeros((n, f));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i % 3) as u32;
        let (cx, cy) = [(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)][class as usize];
        x[[i, 0]] = cx + rng.unit_f64() * 2.0 - 1.0;
        x[[i, 1]] = cy + rng.unit_f64() * 2.0 - 1.0;
        for j in 2..f {
            x[[i, j]] = rng.unit_f64();
        }
        y.push(class);
    }
    (x, y)
}

/// scikit-learn's defaults for a tree over `n_features` features, all of them drawn per split.
fn limits(n_features: usize) -> TreeLimits {
    TreeLimits {
        criterion: Criterion::Gini,
        max_depth: usize::MAX,
        min_samples_split: 2,
        min_samples_leaf: 1,
        min_weight_fraction_leaf: 0.0,
        max_features: n_features,
        max_leaf_nodes: None,
        min_impurity_decrease: 0.0,
        ccp_alpha: 0.0,
        monotonic_cst: Vec::new(),
    }
}

/// One tree on every row of `x` with weight 1.
fn grow(x: &Array2<f64>, y: &[u32], n_classes: usize, limits: &TreeLimits, seed: u64) -> Tree {
    let binned = BinnedMatrix::from_matrix(x.view()).unwrap();
    let mut samples: Vec<Sample> = y
        .iter()
        .enumerate()
        .map(|(i, &class)| Sample {
            row: i as u32,
            class,
            weight: 1.0,
        })
        .collect();
    TreeBuilder::new(&binned, n_classes, limits).grow(&mut samples, &mut Rng::new(seed))
}

/// Class fractions the tree gives `row`.
fn proba(tree: &Tree, row: &[f64]) -> Vec<f32> {
    let row: Vec<f32> = row.iter().map(|&v| v as f32).collect();
    tree.leaf_value(tree.leaf_of(&row)).to_vec()
}

fn predict(tree: &Tree, row: &[f64]) -> u32 {
    let p = proba(tree, row);
    (0..p.len()).fold(0, |best, k| if p[k] > p[best] { k } else { best }) as u32
}

#[test]
fn depth_leaf_count_and_leaf_size_limits_hold() {
    let (x, y) = blobs(400, 3, 5);
    let depth = TreeLimits {
        max_depth: 3,
        ..limits(5)
    };
    assert!(grow(&x, &y, 3, &depth, 1).depth() <= 3);
    // One feature drawn per split: the unlimited tree needs many leaves to separate the blobs.
    let one_feature = TreeLimits {
        max_features: 1,
        ..limits(5)
    };
    assert!(grow(&x, &y, 3, &one_feature, 1).n_leaves() > 5);
    let leaves = TreeLimits {
        max_leaf_nodes: Some(5),
        ..one_feature
    };
    assert_eq!(grow(&x, &y, 3, &leaves, 1).n_leaves(), 5);
    let min_leaf = TreeLimits {
        min_samples_leaf: 20,
        min_samples_split: 40,
        ..limits(5)
    };
    let t = grow(&x, &y, 3, &min_leaf, 1);
    assert!(t.n_leaves() > 1);
    for (i, n) in t.nodes.iter().enumerate() {
        if n.is_leaf() {
            assert!(t.stats.n_samples[i] >= 20);
        }
    }
}

#[test]
fn pruning_shrinks_trees_monotonically() {
    let (x, y) = blobs(400, 5, 6);
    let sizes: Vec<usize> = [0.0, 0.002, 0.02, 0.5]
        .iter()
        .map(|&alpha| {
            let l = TreeLimits {
                ccp_alpha: alpha,
                max_features: 2,
                ..limits(7)
            };
            grow(&x, &y, 3, &l, 2).node_count()
        })
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert!(sizes[0] > sizes[2]);
    assert_eq!(sizes[3], 1, "a huge alpha leaves one root leaf");
}

#[test]
fn missing_values_are_learned() {
    // Class 1 is exactly the rows whose feature 0 is missing.
    let n = 400;
    let mut x = Array2::zeros((n, 2));
    let mut y = Vec::new();
    let mut rng = Rng::new(9);
    for i in 0..n {
        let missing = i % 2 == 0;
        x[[i, 0]] = if missing { f64::NAN } else { rng.unit_f64() };
        x[[i, 1]] = rng.unit_f64();
        y.push(u32::from(missing));
    }
    let t = grow(&x, &y, 2, &limits(2), 3);
    for (row, &want) in x.rows().into_iter().zip(&y) {
        assert_eq!(predict(&t, row.as_slice().unwrap()), want);
    }
    assert_eq!(predict(&t, &[f64::NAN, 0.5]), 1);
    assert_eq!(predict(&t, &[0.5, 0.5]), 0);
}

#[test]
fn monotonic_constraint_is_respected() {
    // The label is noisy-increasing in feature 0; constrain P(class 1) to increase with it.
    let n = 500;
    let mut rng = Rng::new(11);
    let mut x = Array2::zeros((n, 2));
    let mut y = Vec::new();
    for i in 0..n {
        let v = rng.unit_f64();
        x[[i, 0]] = v;
        x[[i, 1]] = rng.unit_f64();
        y.push(u32::from(rng.unit_f64() < v));
    }
    let l = TreeLimits {
        monotonic_cst: vec![1, 0],
        ..limits(2)
    };
    for seed in 0..5 {
        let t = grow(&x, &y, 2, &l, seed);
        let p1: Vec<f32> = (0..=100)
            .map(|i| proba(&t, &[i as f64 / 100.0, 0.5])[1])
            .collect();
        for w in p1.windows(2) {
            assert!(w[1] >= w[0] - 1e-6, "P(class 1) decreased: {w:?}");
        }
    }
}
