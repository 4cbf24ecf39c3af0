//! Hostile files sized to make the decoder allocate: every claim is bounded by the file's size
//! (see `claims`), and decoding never holds more than [`MAX_DECODE_RATIO`] bytes per byte of
//! file (plus a small constant), measured on files of several sizes, accepted or refused.

use super::claims::MAX_DECODE_RATIO;
use super::meta::ModelMeta;
use super::payload::encode_unchecked;
use super::testutil::{assemble, estimator, peak_allocation_during, sample_forest};
use crate::error::WoodlotError;
use crate::forest::compiled::CompiledForest;
use crate::forest::threads::run_in_pool;
use crate::forest::Forest;
use crate::tree::{Node, NodeStats, Tree};

/// Bytes decoding may hold besides the ratio: the meta JSON, bincode's head, small vectors.
const SLACK: usize = 256 * 1024;

/// A file of `forest` with a matching meta, written as it is (no validation).
fn file_of(forest: &Forest) -> Vec<u8> {
    let meta = ModelMeta::for_forest(forest, &estimator())
        .unwrap()
        .to_json()
        .unwrap();
    assemble(&meta, &encode_unchecked(forest))
}

/// The sample forest's head with these trees and counts, and no out-of-bag estimate.
fn forest_with(n_features: u32, n_classes: u32, trees: Vec<Tree>) -> Forest {
    let mut f = sample_forest();
    f.n_features = n_features;
    f.n_classes = n_classes;
    f.oob = None;
    f.trees = trees;
    f
}

fn reason(bytes: &[u8]) -> String {
    match super::decode(bytes) {
        Err(WoodlotError::CorruptModel(m)) => m,
        Err(other) => panic!("expected CorruptModel, got {other:?}"),
        Ok(_) => panic!("expected the file to be refused, it decoded"),
    }
}

/// One leaf holding `n_classes` equal fractions: a dictionary column of one entry, one bit
/// per value, the densest expansion the format allows (32 bytes decoded per byte stored).
fn one_leaf(n_classes: u32) -> Tree {
    Tree {
        n_classes,
        nodes: vec![Node::leaf(0)],
        leaf_values: vec![1.0 / n_classes as f32; n_classes as usize],
        stats: NodeStats {
            impurity: vec![0.5],
            n_samples: vec![1],
            weighted_n_samples: vec![1.0],
        },
    }
}

/// A complete tree of `depth` whose every column is constant: about two bytes per node on
/// disk, the most nodes per byte a tree can hold.
fn dense_tree(depth: u32) -> Tree {
    fn grow(t: &mut Tree, depth: u32) -> u32 {
        let id = t.nodes.len() as u32;
        t.stats.impurity.push(0.5);
        t.stats.n_samples.push(1);
        t.stats.weighted_n_samples.push(1.0);
        if depth == 0 {
            let row = (t.leaf_values.len() / 3) as u32;
            t.leaf_values.extend([1.0, 0.0, 0.0]);
            t.nodes.push(Node::leaf(row));
        } else {
            t.nodes.push(Node::split(0, 0.5, id + 1, 0, false));
            grow(t, depth - 1);
            let right = grow(t, depth - 1);
            t.nodes[id as usize].right = right;
        }
        id
    }
    let mut t = Tree {
        n_classes: 3,
        nodes: Vec::new(),
        leaf_values: Vec::new(),
        stats: NodeStats::default(),
    };
    grow(&mut t, depth);
    t
}

/// Decodes `bytes` and checks what it held at its peak against the file's size.
fn assert_bounded(what: &str, bytes: &[u8]) {
    let (result, peak) = peak_allocation_during(|| super::decode(bytes).map(|_| ()));
    let bound = MAX_DECODE_RATIO * bytes.len() + SLACK;
    eprintln!(
        "{what}: {} bytes, peak {peak} ({:.1} per byte)",
        bytes.len(),
        peak as f64 / bytes.len() as f64
    );
    assert!(
        peak <= bound,
        "{what}: decoding a {} byte file held {peak} bytes at its peak ({:.1} per byte), more \
         than {MAX_DECODE_RATIO} per byte (result: {result:?})",
        bytes.len(),
        peak as f64 / bytes.len() as f64
    );
}

#[test]
fn a_small_file_claiming_huge_counts_is_refused_before_sizing_anything() {
    // Claims in both the meta and the payload's head (they must agree), ~1 KB files.
    let mut wide = sample_forest();
    wide.n_features = u32::MAX;
    let bytes = file_of(&wide);
    assert!(bytes.len() < 2048, "{}", bytes.len());
    let m = reason(&bytes);
    assert!(m.contains("claims 4294967295 features"), "{m}");

    let mut wide = sample_forest();
    wide.n_features = 65_537;
    let m = reason(&file_of(&wide));
    assert!(m.contains("claims 65537 features"), "{m}");

    let many_classes = forest_with(3, 1 << 16, vec![one_leaf(3)]);
    let m = reason(&file_of(&many_classes));
    assert!(m.contains("claims 65536 classes"), "{m}");

    // Millions of trees claimed by the meta: refused before the payload is read.
    let forest = sample_forest();
    let mut meta = ModelMeta::for_forest(&forest, &estimator()).unwrap();
    meta.n_trees = 5_000_000;
    let bytes = assemble(&meta.to_json().unwrap(), &encode_unchecked(&forest));
    let m = reason(&bytes);
    assert!(m.contains("claims 5000000 trees"), "{m}");
}

#[test]
fn the_head_alone_cannot_claim_what_the_file_cannot_hold() {
    // The meta says 3 features; the payload's head says u32::MAX. The head is checked before
    // its trees are read, not only when meta and payload are compared afterwards.
    let forest = sample_forest();
    let meta = ModelMeta::for_forest(&forest, &estimator())
        .unwrap()
        .to_json()
        .unwrap();
    let mut wide = forest.clone();
    wide.n_features = u32::MAX;
    let m = reason(&assemble(&meta, &encode_unchecked(&wide)));
    assert!(m.contains("claims 4294967295 features"), "{m}");
}

#[test]
fn wide_forests_in_small_files_are_refused_at_save_not_at_load() {
    let mut wide = sample_forest();
    wide.n_features = 70_000;
    let err = super::encode(&wide, &estimator()).unwrap_err();
    assert!(
        matches!(&err, WoodlotError::InvalidInput(m) if m.contains("70000 features")),
        "{err}"
    );
    // Up to the floor, any file may claim them.
    wide.n_features = 65_536;
    let bytes = super::encode(&wide, &estimator()).unwrap();
    assert_eq!(super::decode(&bytes).unwrap().0, wide);
}

#[test]
fn decoding_holds_a_bounded_multiple_of_the_file_at_every_size() {
    for scale in [1usize, 4, 16] {
        // Leaf values at one bit each: accepted (a valid, if absurd, model).
        let classes = (scale * 128 * 1024) as u32;
        let bytes = file_of(&forest_with(3, classes, vec![one_leaf(classes)]));
        assert!(super::decode(&bytes).is_ok());
        assert_bounded("one leaf of many classes", &bytes);

        // Nodes at about two bytes each: accepted.
        let depth = 12 + scale.trailing_zeros();
        let bytes = file_of(&forest_with(3, 3, vec![dense_tree(depth); 2]));
        assert!(super::decode(&bytes).is_ok());
        assert_bounded("dense trees", &bytes);

        // Many one-leaf trees: accepted.
        let bytes = file_of(&forest_with(3, 3, vec![one_leaf(3); scale * 8_000]));
        assert!(super::decode(&bytes).is_ok());
        assert_bounded("many tiny trees", &bytes);

        // Refused late: the same dense trees with one leaf row that does not sum to 1 (the
        // whole payload is decoded before the validator finds it).
        let mut bad = dense_tree(depth);
        *bad.leaf_values.last_mut().unwrap() = 0.5;
        let bytes = file_of(&forest_with(3, 3, vec![bad]));
        assert!(reason(&bytes).contains("sum"));
        assert_bounded("a dense tree refused by the validator", &bytes);
    }
}

#[test]
fn compiling_a_decoded_forest_holds_a_bounded_multiple_of_the_file() {
    // Many one-leaf trees over 16,000 features (under the floor any file may claim): the
    // compiled layout's memory follows the forest's size and one cut table, never one table
    // per tree (which was 16,000 x 24 bytes for each of the 2,000 trees).
    let forest = forest_with(16_000, 3, vec![one_leaf(3); 2_000]);
    let bytes = file_of(&forest);
    let (decoded, _) = super::decode(&bytes).unwrap();
    // One worker thread, so the thread-local tracking sees every allocation of the build.
    let (compiled, peak) = run_in_pool(1, || {
        peak_allocation_during(|| CompiledForest::new(&decoded))
    })
    .unwrap();
    assert!(compiled.is_some());
    let bound = MAX_DECODE_RATIO * bytes.len().max(decoded.n_features as usize) + SLACK;
    assert!(
        peak <= bound,
        "compiling a {} byte file's forest held {peak} bytes (bound {bound})",
        bytes.len()
    );
}
