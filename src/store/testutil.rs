//! Fixtures for the store's tests: a scratch directory, small hand-made forests and their model
//! files.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::forest::{FitInfo, Forest, ForestParams};
use crate::format;
use crate::tree::{Node, NodeStats, Tree};

/// A fresh, unique, empty directory under the system temp dir (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory whose name carries `tag`, the process id and a counter.
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "woodlot-test-{tag}-{}-{nanos}-{n}",
            std::process::id()
        ));
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn split(feature: u32, threshold: f32, left: u32, right: u32) -> Node {
    Node::split(feature, threshold, left, right, true)
}

fn leaf(row: u32) -> Node {
    Node::leaf(row)
}

/// A one-split tree on `feature` at `threshold`: left leaf `l`, right leaf `r` (class 0, 1).
fn stump(feature: u32, threshold: f32, l: [f32; 2], r: [f32; 2]) -> Tree {
    Tree {
        n_classes: 2,
        nodes: vec![split(feature, threshold, 1, 2), leaf(0), leaf(1)],
        leaf_values: vec![l[0], l[1], r[0], r[1]],
        stats: NodeStats {
            impurity: vec![0.5, 0.2, 0.2],
            n_samples: vec![10, 5, 5],
            weighted_n_samples: vec![10.0, 5.0, 5.0],
        },
    }
}

/// A forest of stumps over two features that predicts class 1 when `x0 > t` (mostly).
/// Different `t` give different, comparable models.
pub fn forest_with_threshold(t: f32) -> Forest {
    Forest {
        n_features: 2,
        n_classes: 2,
        output_classes: Vec::new(),
        params: ForestParams {
            n_estimators: 3,
            ..ForestParams::default()
        },
        trees: vec![
            stump(0, t, [0.9, 0.1], [0.2, 0.8]),
            stump(0, t + 0.25, [0.8, 0.2], [0.1, 0.9]),
            stump(1, 0.5, [0.6, 0.4], [0.4, 0.6]),
        ],
        oob: None,
        fit_info: FitInfo {
            training_fingerprint: "0".repeat(64),
            n_samples: 10,
            fit_seconds: 0.01,
        },
        training_histogram: None,
    }
}

/// The default fixture forest.
pub fn tiny_forest() -> Forest {
    forest_with_threshold(0.5)
}

/// The model file of a forest, with an estimator description like the Python estimator's.
pub fn model_bytes(forest: &Forest) -> Vec<u8> {
    let estimator = json!({
        "class": "RandomForestClassifier",
        "params": {"n_estimators": forest.trees.len(), "max_depth": 1, "random_state": 0},
        "classes": {"dtype": "<i8", "values": [0, 1]},
        "n_features_in": forest.n_features,
        "feature_names_in": null,
    });
    format::encode(forest, &estimator).expect("fixture encodes")
}

/// `storage_options` as the store takes them, from string pairs.
pub fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
