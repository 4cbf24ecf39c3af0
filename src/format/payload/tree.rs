//! One tree on the wire: its leaf bits and per-split and per-node arrays; child pointers and
//! leaf rows are rebuilt from the depth-first preorder. Each writer sits beside its reader.
//!
//! ```text
//! trees        varint n_trees, then per tree: varint byte length, then the tree
//! tree         varint n_nodes                    1 ..= 2^32
//!              is_leaf       n_nodes bits        node i is a leaf
//!              missing_left  n_splits bits       per split node, in node order
//!              feature       n_splits x w bits   w = bit length of n_features - 1
//!              threshold     f32 column, n_splits values
//!              n_samples     n_nodes varints     each <= u32::MAX
//!              impurity      f32 column, n_nodes values
//!              weighted_n_samples  f32 column, n_nodes values
//!              leaf_values   f32 column, n_leaves * n_classes values
//! ```
//!
//! **Bounded decoding.** Every length is checked against the bytes that remain before anything
//! is allocated for it: a tree's byte length against the payload, every array against the
//! tree's bytes. A node costs at least one bit of the leaf bitset and one byte of `n_samples`,
//! and a column value at least one bit, so what a tree allocates is a small multiple of its
//! bytes.

use rayon::prelude::*;

use super::bytes::{bit_length, put_bits, put_varint, Bits, Reader};
use super::column::{put_f32s, read_f32s};
use crate::error::{Result, WoodlotError};
use crate::forest::Forest;
use crate::format::claims::MIN_TREE_BYTES;
use crate::format::validate::{in_parallel, PARALLEL_MIN_BYTES, PARALLEL_MIN_NODES};
use crate::tree::{Node, NodeStats, Tree, LEAF};

/// Largest node count: node indexes are `u32`.
pub(super) const MAX_NODES: u64 = 1 << 32;

/// Bits needed for a feature index of a forest with `n_features` features.
pub(super) fn feature_width(n_features: u32) -> u32 {
    bit_length(n_features.saturating_sub(1))
}

// ---------------------------------------------------------------------------------------------
// Writing

pub(super) fn write_trees(out: &mut Vec<u8>, forest: &Forest) -> Result<()> {
    put_varint(out, forest.trees.len() as u64);
    let width = feature_width(forest.n_features);
    let encode_one = |tree: &Tree| {
        let mut body = Vec::new();
        write_tree(&mut body, tree, width);
        body
    };
    let nodes: usize = forest.trees.iter().map(|t| t.nodes.len()).sum();
    // Trees encode independently; a large forest encodes them in parallel (same bytes).
    let bodies: Vec<Vec<u8>> = if nodes >= PARALLEL_MIN_NODES {
        in_parallel(|| forest.trees.par_iter().map(encode_one).collect())?
    } else {
        forest.trees.iter().map(encode_one).collect()
    };
    out.reserve(bodies.iter().map(|b| b.len() + 10).sum());
    for body in &bodies {
        put_varint(out, body.len() as u64);
        out.extend_from_slice(body);
    }
    Ok(())
}

/// Writes one tree's arrays as they are; a valid tree gives back itself (see the module docs).
pub(super) fn write_tree(out: &mut Vec<u8>, tree: &Tree, feature_width: u32) {
    put_varint(out, tree.nodes.len() as u64);
    put_bits(out, tree.nodes.iter().map(|n| u32::from(n.is_leaf())), 1);
    let splits: Vec<&Node> = tree.nodes.iter().filter(|n| !n.is_leaf()).collect();
    put_bits(out, splits.iter().map(|n| u32::from(n.missing_left())), 1);
    put_bits(out, splits.iter().map(|n| n.feature()), feature_width);
    let thresholds: Vec<f32> = splits.iter().map(|n| n.threshold).collect();
    put_f32s(out, &thresholds);
    for &n in &tree.stats.n_samples {
        put_varint(out, u64::from(n));
    }
    put_f32s(out, &tree.stats.impurity);
    put_f32s(out, &tree.stats.weighted_n_samples);
    put_f32s(out, &tree.leaf_values);
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Buffers reused from tree to tree.
#[derive(Default)]
pub(super) struct Scratch {
    pending: Vec<u32>,
    thresholds: Vec<f32>,
    /// Each split's feature with its missing-value bit on top, in node order.
    split_words: Vec<u32>,
}

/// The trees of a payload, in parallel for a large one, each checked only as far as rebuilding
/// it needs; `after(index, tree, ..)` runs on each tree in the task that decoded it, while its
/// arrays are still in that core's cache (a check, a compiled form); it is given the forest's
/// `n_features` and `n_classes` too.
pub(super) fn read_trees_with<X: Send>(
    bytes: &[u8],
    n_features: u32,
    n_classes: u32,
    payload_len: usize,
    after: &(dyn Fn(usize, &Tree, u32, u32) -> X + Sync),
) -> Result<Vec<(Tree, X)>> {
    let mut r = Reader::new(bytes);
    let n_trees = r
        .varint("tree count")
        .map_err(|e| WoodlotError::corrupt(format!("payload: {e}")))?;
    let most = (r.remaining() / MIN_TREE_BYTES) as u64;
    if n_trees > most {
        return Err(WoodlotError::corrupt(format!(
            "payload claims {n_trees} trees but its remaining {} bytes hold at most {most}",
            r.remaining()
        )));
    }
    let width = feature_width(n_features);
    // Each tree's bytes first (a length prefix each, cheap), then the trees themselves, in
    // parallel for a large payload. n_trees <= remaining / MIN_TREE_BYTES, so this fits usize
    // and is bounded by the input.
    let mut bodies: Vec<&[u8]> = Vec::with_capacity(n_trees as usize);
    let mut bad_length = None;
    for t in 0..n_trees {
        let body = r.varint("length").and_then(|len| {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            r.take(len, "tree")
        });
        match body {
            Ok(body) => bodies.push(body),
            Err(e) => {
                // Reported after the trees before it, as a sequential reader would.
                bad_length = Some(WoodlotError::corrupt(format!("payload: tree {t}: {e}")));
                break;
            }
        }
    }
    let decode_one = |scratch: &mut Scratch, (t, body): (usize, &&[u8])| -> Result<(Tree, X)> {
        let mut tr = Reader::new(body);
        let tree = read_tree(&mut tr, n_classes, width, scratch)
            .map_err(|e| WoodlotError::corrupt(format!("payload: tree {t}: {e}")))?;
        if tr.remaining() != 0 {
            return Err(WoodlotError::corrupt(format!(
                "payload: tree {t}: {} bytes left over after its arrays (its length says {}): \
                 the arrays do not match its leaf bits",
                tr.remaining(),
                body.len()
            )));
        }
        let extra = after(t, &tree, n_features, n_classes);
        Ok((tree, extra))
    };
    let decoded: Vec<Result<(Tree, X)>> = if bytes.len() >= PARALLEL_MIN_BYTES {
        in_parallel(|| {
            bodies
                .par_iter()
                .enumerate()
                .map_init(Scratch::default, decode_one)
                .collect()
        })?
    } else {
        let mut scratch = Scratch::default();
        bodies
            .iter()
            .enumerate()
            .map(|tb| decode_one(&mut scratch, tb))
            .collect()
    };
    // The first failure in tree order, whichever thread found it.
    let trees = decoded.into_iter().collect::<Result<Vec<_>>>()?;
    if let Some(e) = bad_length {
        return Err(e);
    }
    if r.remaining() != 0 {
        let used = payload_len - r.remaining();
        return Err(WoodlotError::corrupt(format!(
            "payload has {} trailing bytes after the forest (decoded {used} of {payload_len})",
            r.remaining()
        )));
    }
    Ok(trees)
}

/// The nodes of a tree in depth-first preorder from its leaf bits: a split node's left child is
/// the next node and its right child the node after its left subtree, a leaf's row is the
/// number of leaves before it. The `k`th split node takes its feature, threshold and
/// `missing_left` from `split(k)`, called once per split in node order, so the reader fills
/// each split as it is made instead of in a second pass that would branch on every node again.
/// Rejects leaf bits that are not exactly one tree.
pub(super) fn preorder_nodes(
    n: usize,
    mut leaf_bits: Bits<'_>,
    pending: &mut Vec<u32>,
    mut split: impl FnMut(usize) -> (u32, f32, bool),
) -> std::result::Result<Vec<Node>, String> {
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    // Split nodes whose right child comes after their left subtree.
    pending.clear();
    // Child slots still to fill; the root fills the first.
    let mut open = 1usize;
    let mut leaves = 0u32;
    let mut after_leaf = false;
    for i in 0..n {
        if open == 0 {
            return Err(format!(
                "leaf bits complete the tree at node {} but {n} nodes are stored: nodes are not \
                 one tree in depth-first preorder",
                i - 1
            ));
        }
        open -= 1;
        // i < n <= 2^32.
        let id = i as u32;
        if after_leaf {
            // After a leaf comes the right child of the nearest split still waiting for one.
            let parent = pending.pop().and_then(|p| nodes.get_mut(p as usize));
            let Some(parent) = parent else {
                return Err(format!("node {i} has no parent in depth-first preorder"));
            };
            parent.right = id;
        }
        after_leaf = leaf_bits.next() == 1;
        nodes.push(if after_leaf {
            leaves += 1;
            Node::leaf(leaves - 1)
        } else {
            pending.push(id);
            open += 2;
            // Not past the end: a split node never completes the tree, so it is not last. Its
            // right child is set when that child is met.
            let (feature, threshold, missing_left) = split(i - leaves as usize);
            Node::split(feature, threshold, id.wrapping_add(1), LEAF, missing_left)
        });
    }
    // Padding first: a wrong node count shows there before it leaves the tree incomplete.
    leaf_bits.finish("leaf bitset")?;
    if open > 0 {
        return Err(format!(
            "leaf bits end with {open} children missing: {n} nodes are not a complete tree in \
             depth-first preorder"
        ));
    }
    Ok(nodes)
}

/// How many of the first `n` bits of `bytes` (least significant first, as [`put_bits`] packs
/// them) are ones.
fn ones_in(bytes: &[u8], n: usize) -> usize {
    let (whole, rest) = (n / 8, n % 8);
    let mut ones: usize = bytes
        .iter()
        .take(whole)
        .map(|b| b.count_ones() as usize)
        .sum();
    if rest > 0 {
        if let Some(last) = bytes.get(whole) {
            ones += (last & ((1u8 << rest) - 1)).count_ones() as usize;
        }
    }
    ones
}

/// Reads one tree and rebuilds its nodes (see the module docs).
pub(super) fn read_tree(
    r: &mut Reader<'_>,
    n_classes: u32,
    feature_width: u32,
    scratch: &mut Scratch,
) -> std::result::Result<Tree, String> {
    let n = r.varint("node count")?;
    if n == 0 {
        return Err("has no nodes".into());
    }
    if n > MAX_NODES {
        return Err(format!("has {n} nodes, more than u32 indexes address"));
    }
    let n = usize::try_from(n).map_err(|_| format!("has {n} nodes, more than fit memory"))?;
    // From here on n <= 8 x the bytes the leaf bitset takes.
    let leaf_bytes = r.packed(n, 1, "leaf bitset")?;
    // Every node has an n_samples varint: a count the tree's bytes cannot hold is rejected
    // before the nodes are allocated, so they take at most 16 bytes per byte of input.
    if n > r.remaining() {
        return Err(format!(
            "claims {n} nodes but only {} bytes follow its leaf bits",
            r.remaining()
        ));
    }
    // The split arrays' lengths follow from the number of leaves, which the bitset's ones
    // give before any node is built (for leaf bits that are one tree; the pass below rejects
    // any others).
    let n_splits = n - ones_in(leaf_bytes, n);
    let split_arrays = (|| {
        let missing = r.bit_array(n_splits, 1, "missing_left bitset")?;
        let features = r.bit_array(n_splits, feature_width, "features")?;
        read_f32s(r, n_splits, &mut scratch.thresholds, "thresholds")?;
        Ok((missing, features))
    })();
    let (mut missing, mut features) = match split_arrays {
        Ok(readers) => readers,
        Err(reason) => {
            // Leaf bits that are not one tree are reported first, as they come first.
            preorder_nodes(n, Bits::new(leaf_bytes, 1), &mut scratch.pending, |_| {
                (0, 0.0, false)
            })?;
            return Err(reason);
        }
    };
    // Unpacked in a loop of their own, so the preorder pass below keeps one reader's state in
    // registers rather than three. (A valid forest's features are below 2^31, so their
    // width leaves the top bit free; a wider forest is refused by the forest's checks.)
    const MISSING_LEFT_BIT: u32 = 1 << 31;
    let words = &mut scratch.split_words;
    words.clear();
    // A missing bit is 0 or 1.
    words.extend((0..n_splits).map(|_| features.next() | (missing.next() * MISSING_LEFT_BIT)));
    let (words, thresholds) = (&scratch.split_words, &scratch.thresholds);
    let nodes = preorder_nodes(n, Bits::new(leaf_bytes, 1), &mut scratch.pending, |k| {
        let word = words.get(k).copied().unwrap_or(0);
        let threshold = thresholds.get(k).copied().unwrap_or(0.0);
        (
            word & !MISSING_LEFT_BIT,
            threshold,
            word & MISSING_LEFT_BIT != 0,
        )
    })?;
    // After the leaf bits' own faults, which come first in the tree.
    missing.finish("missing_left bitset")?;
    features.finish("features")?;
    let n_leaves = n - n_splits;
    let mut n_samples = Vec::with_capacity(n);
    for _ in 0..n {
        let v = r.varint("n_samples")?;
        n_samples.push(u32::try_from(v).map_err(|_| format!("n_samples {v} is out of range"))?);
    }
    let mut impurity = Vec::new();
    read_f32s(r, n, &mut impurity, "impurity")?;
    let mut weighted_n_samples = Vec::new();
    read_f32s(r, n, &mut weighted_n_samples, "weighted_n_samples")?;
    let n_values = n_leaves
        .checked_mul(n_classes as usize)
        .ok_or_else(|| format!("{n_leaves} leaves x {n_classes} classes overflow"))?;
    let mut leaf_values = Vec::new();
    read_f32s(r, n_values, &mut leaf_values, "leaf values")?;
    Ok(Tree {
        n_classes,
        nodes,
        leaf_values,
        stats: NodeStats {
            impurity,
            n_samples,
            weighted_n_samples,
        },
    })
}
