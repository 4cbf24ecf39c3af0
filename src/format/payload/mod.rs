//! The payload: a small bincode head, then every tree as struct-of-arrays.
//!
//! The in-memory [`Tree`](crate::tree::Tree) is an array of 16-byte nodes with explicit child
//! pointers. On the wire a tree stores only what its depth-first preorder does not imply. One
//! concept per file, each encoder beside its decoder:
//!
//! - [`head`]: the forest without its trees, in bincode 2 (bounded decode);
//! - [`tree`]: the trees: leaf bits, per-split and per-node arrays, rebuilt from preorder;
//! - [`column`]: the `f32` column (raw, dictionary or integer mode) every float array uses;
//! - [`bytes`]: varints, bit arrays and the bounded reader underneath them all.
//!
//! ```text
//! payload      head, trees
//! head         bincode 2 (serde, little-endian, fixed-width integers) of
//!              n_features u32, n_classes u32, params, oob, fit_info
//! trees        varint n_trees, then per tree: varint byte length, then the tree (see tree)
//! ```
//!
//! Encoding is a pure function of the forest (every choice, like a column's mode, is
//! deterministic), so the same forest always gives the same bytes (`tests/format_golden.rs`
//! freezes them).
//!
//! **Structure.** Nodes are in depth-first preorder (the builder's `finish` writes them so, and
//! [`validate_forest`](super::validate_forest) rejects any other order), so a split node's left
//! child is the next node and its right child the node after its left subtree, and a leaf's row
//! in `leaf_values` is the number of leaves before it. Both are rebuilt from the leaf bits
//! alone: the decoder rejects leaf bits that close the tree before the last node or end before
//! it is complete. Leaves carry no feature, threshold or missing direction (they are 0, 0.0 and
//! false in memory, which the validator also requires).
//!
//! **Bounded decoding.** The head's counts are checked against the file's size
//! ([`Claims`]) before the trees are read; every length inside a tree is checked against the
//! bytes that remain before anything is allocated for it (see [`tree`]).

mod bytes;
mod column;
mod head;
mod tree;

use crate::error::Result;
use crate::forest::Forest;
use crate::format::claims::Claims;
use crate::tree::Tree;

/// Encodes the payload of `forest`, which must be valid (see [`validate_forest`]): the trees
/// must be in depth-first preorder for the decoder to rebuild them.
///
/// [`validate_forest`]: super::validate_forest
pub(super) fn encode_payload(forest: &Forest) -> Result<Vec<u8>> {
    let mut out = head::encode_head(forest)?;
    tree::write_trees(&mut out, forest)?;
    Ok(out)
}

/// Decodes a payload of a file of `file_len` bytes, consuming it exactly. The head's counts
/// must be ones the file can back ([`Claims`]) before any tree is read. The forest still needs
/// [`validate_forest`](super::validate_forest): this checks only what rebuilding it needs.
pub(super) fn decode_payload(payload: &[u8], file_len: usize) -> Result<Forest> {
    decode_payload_with(payload, file_len, &|_, _, _, _| ()).map(|(forest, _)| forest)
}

/// [`decode_payload`], with `after(index, tree, n_features, n_classes)` run on each tree in the
/// (parallel) task that decoded it; its results come back in tree order.
pub(super) fn decode_payload_with<X: Send>(
    payload: &[u8],
    file_len: usize,
    after: &(dyn Fn(usize, &Tree, u32, u32) -> X + Sync),
) -> Result<(Forest, Vec<X>)> {
    let (head, used) = head::decode_head(payload)?;
    let rest = payload.get(used..).unwrap_or_default();
    Claims {
        n_features: head.n_features,
        n_classes: head.n_classes,
        n_trees: 0,
    }
    .check(file_len, payload.len())?;
    let decoded =
        tree::read_trees_with(rest, head.n_features, head.n_classes, payload.len(), after)?;
    let (trees, extras) = decoded.into_iter().unzip();
    let forest = Forest {
        n_features: head.n_features,
        n_classes: head.n_classes,
        output_classes: Vec::new(),
        params: head.params,
        trees,
        oob: head.oob,
        fit_info: head.fit_info,
        // Not in the payload: the meta carries it (format 2.1), see `file::decode`.
        training_histogram: None,
    };
    Ok((forest, extras))
}

/// bincode bytes of `value` in the head's configuration.
#[cfg(test)]
pub(crate) fn encode_bincode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, head::head_config()).expect("encodable")
}

/// The payload of `forest` written as it is, without validation: tests use it to build files
/// whose trees the validator must reject.
#[cfg(test)]
pub(crate) fn encode_unchecked(forest: &Forest) -> Vec<u8> {
    encode_payload(forest).expect("encodable")
}

/// The bytes of one tree (without its length prefix), for tests that edit them.
#[cfg(test)]
pub(crate) fn tree_bytes(tree: &crate::tree::Tree, n_features: u32) -> Vec<u8> {
    let mut out = Vec::new();
    tree::write_tree(&mut out, tree, tree::feature_width(n_features));
    out
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod speed {
    /// Decode and encode times of a forest like the tutorial's v2, and format 1's decode:
    /// `cargo test --release --lib format::payload::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn decode_speed() {
        use crate::forest::{Forest, ForestParams};
        let n = 124;
        let x = ndarray::Array2::from_shape_fn((n, 13), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f64 + (i % 3) as f64 * (j % 2) as f64 * 5.0
        });
        let y: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let params = ForestParams {
            n_estimators: 200,
            max_depth: Some(6),
            random_state: 42,
            ..ForestParams::default()
        };
        let forest = Forest::fit(x.view(), &y, 3, None, &params, 1).unwrap();
        let est = serde_json::json!({});
        let bytes = crate::format::encode(&forest, &est).unwrap();
        let payload = super::encode_payload(&forest).unwrap();
        let nodes: usize = forest.trees.iter().map(|t| t.nodes.len()).sum();
        let time = |f: &dyn Fn()| {
            let mut best = f64::MAX;
            for _ in 0..200 {
                let t = std::time::Instant::now();
                f();
                best = best.min(t.elapsed().as_secs_f64());
            }
            best * 1e6
        };
        println!("nodes {nodes} file {} B", bytes.len());
        println!(
            "decode_payload {:.1} us",
            time(&|| {
                super::decode_payload(&payload, bytes.len()).unwrap();
            })
        );
        // Format 1's payload: bincode of the whole forest, through the same bounding adapter.
        let old = bincode::serde::encode_to_vec(&forest, super::head::head_config()).unwrap();
        println!(
            "format 1 payload {} B, wire payload {} B",
            old.len(),
            payload.len()
        );
        println!(
            "format 1 decode_payload {:.1} us",
            time(&|| {
                let config =
                    super::head::head_config().with_limit::<{ super::head::PAYLOAD_LIMIT }>();
                let _: (Forest, usize) = bincode::serde::seed_decode_from_slice(
                    crate::format::bounded::BoundedSeed::default(),
                    &old,
                    config,
                )
                .unwrap();
            })
        );
        println!(
            "validate {:.1} us",
            time(&|| {
                crate::format::validate_forest(&forest).unwrap();
            })
        );
        println!(
            "checksum {:.1} us",
            time(&|| {
                crate::format::file_checksum(&bytes).unwrap();
            })
        );
        println!(
            "decode file {:.1} us",
            time(&|| {
                crate::format::decode(&bytes).unwrap();
            })
        );
        println!(
            "encode file {:.1} us",
            time(&|| {
                crate::format::encode(&forest, &est).unwrap();
            })
        );
    }
}
