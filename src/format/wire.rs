//! The payload: a small bincode head, then every tree as struct-of-arrays.
//!
//! The in-memory [`Tree`] is an array of 20-byte nodes with explicit child pointers. On the wire
//! a tree stores only what its depth-first preorder does not imply:
//!
//! ```text
//! payload      head, trees
//! head         bincode 2 (serde, little-endian, fixed-width integers) of
//!              n_features u32, n_classes u32, params, oob, fit_info
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
//! f32 column   u8 mode, then
//!              0 raw:        count x f32 LE
//!              1 dictionary: u8 k-1, k f32 LE (in order of first use), count indices of
//!                            max(1, bit length of k-1) bits each
//!              2 integers:   count varints u32, each value is `u as f32`
//! ```
//!
//! Bit arrays are packed least significant bit first, each starts on a byte boundary, and the
//! padding bits of its last byte must be zero. Varints are LEB128, minimal, at most 64 bits.
//! The encoder picks the smallest column mode (the lowest mode on a tie), so `encode` is a pure
//! function of the forest.
//!
//! **Structure.** Nodes are in depth-first preorder (the builder's `finish` writes them so, and
//! [`validate_forest`](super::validate_forest) rejects any other order), so a split node's left
//! child is the next node and its right child the node after its left subtree, and a leaf's row
//! in `leaf_values` is the number of leaves before it. Both are rebuilt from the leaf bits
//! alone: the decoder rejects leaf bits that close the tree before the last node or end before
//! it is complete. Leaves carry no feature, threshold or missing direction (they are 0, 0.0 and
//! false in memory, which the validator also requires).
//!
//! **Bounded decoding.** Every length is checked against the bytes that remain before anything
//! is allocated for it: a tree's byte length against the payload, every array against the
//! tree's bytes. A node costs at least one bit of the leaf bitset and one byte of `n_samples`,
//! and a dictionary index at least one bit, so what a tree allocates is a small multiple of its
//! bytes. The head goes through [`Bounded`](super::bounded) (see [`codec`](super::codec)).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bincode::config::{Configuration, Fixint, LittleEndian, NoLimit};
use bincode::error::DecodeError;
use serde::{Deserialize, Serialize};

use super::bounded::BoundedSeed;
use super::header::MAX_PAYLOAD_LEN;
use crate::error::{Result, WoodlotError};
use crate::forest::{FitInfo, Forest, ForestParams, OobEstimate};
use crate::tree::{Node, NodeStats, Tree, LEAF};

/// The decode limit for the head: [`MAX_PAYLOAD_LEN`] as a `usize`.
const PAYLOAD_LIMIT: usize = MAX_PAYLOAD_LEN as usize;
const _: () = assert!(
    MAX_PAYLOAD_LEN <= usize::MAX as u64,
    "the limit must fit a usize"
);

/// f32 column modes.
const RAW: u8 = 0;
const DICTIONARY: u8 = 1;
const INTEGERS: u8 = 2;

/// Largest dictionary of an f32 column.
const MAX_DICTIONARY: usize = 256;

/// The fewest bytes a tree takes on the wire (length, node count, leaf bits, four column modes,
/// an `n_samples` varint): bounds the trees a payload can claim.
const MIN_TREE_BYTES: usize = 8;

/// Largest node count: node indexes are `u32`.
const MAX_NODES: u64 = 1 << 32;

/// The forest without its trees, borrowed for encoding.
#[derive(Serialize)]
struct HeadRef<'a> {
    n_features: u32,
    n_classes: u32,
    params: &'a ForestParams,
    oob: &'a Option<OobEstimate>,
    fit_info: &'a FitInfo,
}

/// The forest without its trees, as decoded (same fields, same order as [`HeadRef`]).
#[derive(Deserialize)]
struct Head {
    n_features: u32,
    n_classes: u32,
    params: ForestParams,
    oob: Option<OobEstimate>,
    fit_info: FitInfo,
}

/// The head's bincode configuration (before the decode limit is added).
fn head_config() -> Configuration<LittleEndian, Fixint, NoLimit> {
    bincode::config::standard().with_fixed_int_encoding()
}

/// Encodes the payload of `forest`, which must be valid (see [`validate_forest`]): the trees
/// must be in depth-first preorder for the decoder to rebuild them.
///
/// [`validate_forest`]: super::validate_forest
pub(super) fn encode_payload(forest: &Forest) -> Result<Vec<u8>> {
    let head = HeadRef {
        n_features: forest.n_features,
        n_classes: forest.n_classes,
        params: &forest.params,
        oob: &forest.oob,
        fit_info: &forest.fit_info,
    };
    let mut out = bincode::serde::encode_to_vec(&head, head_config())
        .map_err(|e| WoodlotError::input(format!("cannot encode the forest: {e}")))?;
    write_trees(&mut out, forest);
    Ok(out)
}

/// Decodes a payload, consuming it exactly. The forest still needs
/// [`validate_forest`](super::validate_forest): this checks only what rebuilding it needs.
pub(super) fn decode_payload(payload: &[u8]) -> Result<Forest> {
    let config = head_config().with_limit::<PAYLOAD_LIMIT>();
    let (head, used): (Head, usize) =
        bincode::serde::seed_decode_from_slice(BoundedSeed::default(), payload, config)
            .map_err(|e| head_error(e, payload.len()))?;
    let rest = payload.get(used..).unwrap_or_default();
    let trees = read_trees(rest, head.n_features, head.n_classes, payload.len())?;
    Ok(Forest {
        n_features: head.n_features,
        n_classes: head.n_classes,
        params: head.params,
        trees,
        oob: head.oob,
        fit_info: head.fit_info,
    })
}

fn head_error(e: DecodeError, len: usize) -> WoodlotError {
    match e {
        DecodeError::LimitExceeded => WoodlotError::corrupt(format!(
            "payload is damaged: a length inside it claims more than its {len} bytes"
        )),
        DecodeError::UnexpectedEnd { .. } => WoodlotError::corrupt(format!(
            "payload ends early: its {len} bytes hold less than the forest they describe"
        )),
        other => WoodlotError::corrupt(format!("payload does not decode as a forest: {other}")),
    }
}

/// Bits needed for a feature index of a forest with `n_features` features.
fn feature_width(n_features: u32) -> u32 {
    bit_length(n_features.saturating_sub(1))
}

fn bit_length(v: u32) -> u32 {
    u32::BITS - v.leading_zeros()
}

/// Bits per index of a dictionary of `k` entries (at least one, so that every value costs
/// input and a column's length is bounded by its bytes).
fn index_width(k: usize) -> u32 {
    bit_length(u32::try_from(k.saturating_sub(1)).unwrap_or(u32::MAX)).max(1)
}

// ---------------------------------------------------------------------------------------------
// Writing

fn write_trees(out: &mut Vec<u8>, forest: &Forest) {
    put_varint(out, forest.trees.len() as u64);
    let width = feature_width(forest.n_features);
    let mut body = Vec::new();
    for tree in &forest.trees {
        body.clear();
        write_tree(&mut body, tree, width);
        put_varint(out, body.len() as u64);
        out.extend_from_slice(&body);
    }
}

/// Writes one tree's arrays as they are; a valid tree gives back itself (see the module docs).
fn write_tree(out: &mut Vec<u8>, tree: &Tree, feature_width: u32) {
    put_varint(out, tree.nodes.len() as u64);
    put_bits(out, tree.nodes.iter().map(|n| u32::from(n.is_leaf())), 1);
    let splits: Vec<&Node> = tree.nodes.iter().filter(|n| !n.is_leaf()).collect();
    put_bits(out, splits.iter().map(|n| u32::from(n.missing_left)), 1);
    put_bits(out, splits.iter().map(|n| n.feature), feature_width);
    let thresholds: Vec<f32> = splits.iter().map(|n| n.threshold).collect();
    put_f32s(out, &thresholds);
    for &n in &tree.stats.n_samples {
        put_varint(out, u64::from(n));
    }
    put_f32s(out, &tree.stats.impurity);
    put_f32s(out, &tree.stats.weighted_n_samples);
    put_f32s(out, &tree.leaf_values);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (bit_length_u64(v).max(1) as usize).div_ceil(7)
}

fn bit_length_u64(v: u64) -> u32 {
    u64::BITS - v.leading_zeros()
}

/// Packs `values` in `width` bits each (`width <= 32`), least significant bit first; the last
/// byte is zero-padded.
fn put_bits(out: &mut Vec<u8>, values: impl IntoIterator<Item = u32>, width: u32) {
    debug_assert!(width <= 32);
    let mask = (1u64 << width) - 1;
    let (mut acc, mut filled) = (0u64, 0u32);
    for v in values {
        acc |= (u64::from(v) & mask) << filled;
        filled += width;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// The value of `v` as an integer column entry, if `u as f32` gives back its exact bits.
fn as_integer(v: f32) -> Option<u32> {
    let u = v as u32;
    ((u as f32).to_bits() == v.to_bits()).then_some(u)
}

/// Hashes an f32's bits for the encoder's dictionary: one multiply, high bits folded down (the
/// values are trusted, so no protection against collisions is needed).
#[derive(Default)]
struct BitsHasher(u64);

impl Hasher for BitsHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b) ^ (self.0 as u32));
        }
    }

    fn write_u32(&mut self, v: u32) {
        let h = u64::from(v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The dictionary of `values` (distinct bit patterns in order of first use) and each value's
/// index, if there are at most [`MAX_DICTIONARY`] distinct values.
fn dictionary(values: &[f32]) -> Option<(Vec<u32>, Vec<u32>)> {
    let mut entries: Vec<u32> = Vec::new();
    let mut index: HashMap<u32, u32, BuildHasherDefault<BitsHasher>> = HashMap::default();
    let mut indices = Vec::with_capacity(values.len());
    for v in values {
        let bits = v.to_bits();
        let i = match index.get(&bits) {
            Some(&i) => i,
            None => {
                if entries.len() == MAX_DICTIONARY {
                    return None;
                }
                let i = entries.len() as u32;
                entries.push(bits);
                index.insert(bits, i);
                i
            }
        };
        indices.push(i);
    }
    Some((entries, indices))
}

/// Writes an f32 column in its smallest mode (the lowest mode on a tie).
fn put_f32s(out: &mut Vec<u8>, values: &[f32]) {
    let raw = 4 * values.len();
    let dict = if values.is_empty() {
        None
    } else {
        dictionary(values)
    };
    let dict_size = dict.as_ref().map(|(entries, _)| {
        1 + 4 * entries.len() + (values.len() * index_width(entries.len()) as usize).div_ceil(8)
    });
    let int_size: Option<usize> = values
        .iter()
        .map(|v| as_integer(*v).map(|u| varint_len(u64::from(u))))
        .sum();
    let mut best = (raw, RAW);
    for (size, mode) in [(dict_size, DICTIONARY), (int_size, INTEGERS)] {
        if let Some(size) = size {
            if size < best.0 {
                best = (size, mode);
            }
        }
    }
    out.push(best.1);
    match (best.1, dict) {
        (DICTIONARY, Some((entries, indices))) => {
            out.push((entries.len() - 1) as u8);
            for bits in &entries {
                out.extend_from_slice(&bits.to_le_bytes());
            }
            put_bits(out, indices, index_width(entries.len()));
        }
        (INTEGERS, _) => {
            for v in values {
                put_varint(out, u64::from(as_integer(*v).unwrap_or_default()));
            }
        }
        _ => {
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A cursor over a byte slice whose reads fail with a reason instead of running past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let rest = self.remaining();
        if n > rest {
            return Err(format!("{what} ends early: needs {n} bytes, {rest} remain"));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    /// A minimal LEB128 varint of at most 64 bits.
    #[inline]
    fn varint(&mut self, what: &str) -> std::result::Result<u64, String> {
        // Most varints (node counts, n_samples, integer columns) are one byte.
        if let Some(&b) = self.bytes.get(self.at) {
            if b < 0x80 {
                self.at += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow(what)
    }

    fn varint_slow(&mut self, what: &str) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8(what)?;
            if i == 9 && b > 1 {
                return Err(format!("{what} is a varint longer than 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(format!("{what} is a varint with redundant bytes"));
                }
                return Ok(v);
            }
        }
        Err(format!("{what} is a varint longer than 64 bits"))
    }

    /// The bytes of `count` packed values of `width` bits (`width <= 32`), as a [`Bits`]
    /// reader. The caller bounds `count` when `width` is 0 (no bytes are read then).
    fn bit_array(
        &mut self,
        count: usize,
        width: u32,
        what: &str,
    ) -> std::result::Result<Bits<'a>, String> {
        let n_bits = count
            .checked_mul(width as usize)
            .ok_or_else(|| format!("{what}: {count} values of {width} bits overflow"))?;
        let bytes = self.take(n_bits.div_ceil(8), what)?;
        Ok(Bits::new(bytes, width))
    }

    /// `count` values of `width` bits, collected.
    #[cfg(test)]
    fn bits(
        &mut self,
        count: usize,
        width: u32,
        what: &str,
    ) -> std::result::Result<Vec<u32>, String> {
        let mut bits = self.bit_array(count, width, what)?;
        let out = (0..count).map(|_| bits.next()).collect();
        bits.finish(what)?;
        Ok(out)
    }

    /// An f32 column of `count` values, decoded into `out` (cleared first).
    fn f32s_into(
        &mut self,
        count: usize,
        out: &mut Vec<f32>,
        what: &str,
    ) -> std::result::Result<(), String> {
        out.clear();
        match self.u8(what)? {
            RAW => {
                let n = count
                    .checked_mul(4)
                    .ok_or_else(|| format!("{what}: {count} values overflow"))?;
                let bytes = self.take(n, what)?;
                out.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            DICTIONARY => {
                let k = usize::from(self.u8(what)?) + 1;
                let mut entries = [0f32; MAX_DICTIONARY];
                for (e, c) in entries
                    .iter_mut()
                    .zip(self.take(4 * k, what)?.chunks_exact(4))
                {
                    *e = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
                // At least one bit per index: `count` is bounded by the bytes just taken.
                let mut indices = self.bit_array(count, index_width(k), what)?;
                out.reserve_exact(count);
                for _ in 0..count {
                    let i = indices.next() as usize;
                    if i >= k {
                        return Err(format!("{what}: dictionary index {i} but only {k} entries"));
                    }
                    out.push(entries[i]);
                }
                indices.finish(what)?;
            }
            INTEGERS => {
                // Each value takes at least one byte: never reserve more than remain.
                out.reserve_exact(count.min(self.remaining()));
                for _ in 0..count {
                    let v = self.varint(what)?;
                    let u = u32::try_from(v)
                        .map_err(|_| format!("{what}: integer {v} is out of range"))?;
                    out.push(u as f32);
                }
            }
            mode => return Err(format!("{what} has unknown column mode {mode}")),
        }
        Ok(())
    }

    /// An f32 column of `count` values.
    #[cfg(test)]
    fn f32s(&mut self, count: usize, what: &str) -> std::result::Result<Vec<f32>, String> {
        let mut out = Vec::new();
        self.f32s_into(count, &mut out, what)?;
        Ok(out)
    }
}

/// Reads packed values of one width from a slice that holds exactly the bits of the values the
/// caller reads (see [`Reader::bit_array`]); [`Bits::finish`] checks that nothing else is set.
struct Bits<'a> {
    bytes: std::slice::Iter<'a, u8>,
    acc: u64,
    have: u32,
    width: u32,
    mask: u64,
}

impl<'a> Bits<'a> {
    fn new(bytes: &'a [u8], width: u32) -> Self {
        Self {
            bytes: bytes.iter(),
            acc: 0,
            have: 0,
            width,
            mask: (1u64 << width) - 1,
        }
    }

    /// The next value. Past the slice's end it reads zeros (a caller reading more values than
    /// it took bytes for gets them; it never does).
    #[inline]
    fn next(&mut self) -> u32 {
        while self.have < self.width {
            self.acc |= u64::from(self.bytes.next().copied().unwrap_or(0)) << self.have;
            self.have += 8;
        }
        let v = (self.acc & self.mask) as u32;
        self.acc >>= self.width;
        self.have -= self.width;
        v
    }

    /// Every value was read: the padding bits of the last byte must be zero.
    fn finish(self, what: &str) -> std::result::Result<(), String> {
        if self.acc != 0 || self.bytes.len() != 0 {
            return Err(format!("{what} has nonzero padding bits"));
        }
        Ok(())
    }
}

/// Buffers reused from tree to tree.
#[derive(Default)]
struct Scratch {
    pending: Vec<u32>,
    thresholds: Vec<f32>,
}

fn read_trees(
    bytes: &[u8],
    n_features: u32,
    n_classes: u32,
    payload_len: usize,
) -> Result<Vec<Tree>> {
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
    // n_trees <= remaining / MIN_TREE_BYTES, so this fits usize and is bounded by the input.
    let mut trees = Vec::with_capacity(n_trees as usize);
    let mut scratch = Scratch::default();
    for t in 0..n_trees {
        let body = r
            .varint("length")
            .and_then(|len| {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                r.take(len, "tree")
            })
            .map_err(|e| WoodlotError::corrupt(format!("payload: tree {t}: {e}")))?;
        let mut tr = Reader::new(body);
        let tree = read_tree(&mut tr, n_classes, width, &mut scratch)
            .map_err(|e| WoodlotError::corrupt(format!("payload: tree {t}: {e}")))?;
        if tr.remaining() != 0 {
            return Err(WoodlotError::corrupt(format!(
                "payload: tree {t}: {} bytes left over after its arrays (its length says {}): \
                 the arrays do not match its leaf bits",
                tr.remaining(),
                body.len()
            )));
        }
        trees.push(tree);
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
/// number of leaves before it. Split nodes get feature 0, threshold 0 and `missing_left` false
/// for the caller to fill. Rejects leaf bits that are not exactly one tree.
fn preorder_nodes(
    n: usize,
    mut leaf_bits: Bits<'_>,
    pending: &mut Vec<u32>,
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
            Node {
                feature: 0,
                threshold: 0.0,
                left: LEAF,
                right: leaves - 1,
                missing_left: false,
            }
        } else {
            pending.push(id);
            open += 2;
            Node {
                feature: 0,
                threshold: 0.0,
                // Not past the end: a split node never completes the tree, so it is not last.
                left: id.wrapping_add(1),
                right: LEAF,
                missing_left: false,
            }
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

/// Reads one tree and rebuilds its nodes (see the module docs).
fn read_tree(
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
    let leaf_bits = r.bit_array(n, 1, "leaf bitset")?;
    // Every node has an n_samples varint: a count the tree's bytes cannot hold is rejected
    // before the nodes are allocated, so they take at most 20 bytes per byte of input.
    if n > r.remaining() {
        return Err(format!(
            "claims {n} nodes but only {} bytes follow its leaf bits",
            r.remaining()
        ));
    }
    let mut nodes = preorder_nodes(n, leaf_bits, &mut scratch.pending)?;
    let n_leaves = nodes.iter().filter(|n| n.is_leaf()).count();
    let n_splits = n - n_leaves;
    let mut missing = r.bit_array(n_splits, 1, "missing_left bitset")?;
    let mut features = r.bit_array(n_splits, feature_width, "features")?;
    r.f32s_into(n_splits, &mut scratch.thresholds, "thresholds")?;
    let splits = nodes.iter_mut().filter(|n| !n.is_leaf());
    for (node, &threshold) in splits.zip(&scratch.thresholds) {
        node.missing_left = missing.next() == 1;
        node.feature = features.next();
        node.threshold = threshold;
    }
    missing.finish("missing_left bitset")?;
    features.finish("features")?;
    let mut n_samples = Vec::with_capacity(n);
    for _ in 0..n {
        let v = r.varint("n_samples")?;
        n_samples.push(u32::try_from(v).map_err(|_| format!("n_samples {v} is out of range"))?);
    }
    let mut impurity = Vec::new();
    r.f32s_into(n, &mut impurity, "impurity")?;
    let mut weighted_n_samples = Vec::new();
    r.f32s_into(n, &mut weighted_n_samples, "weighted_n_samples")?;
    let n_values = n_leaves
        .checked_mul(n_classes as usize)
        .ok_or_else(|| format!("{n_leaves} leaves x {n_classes} classes overflow"))?;
    let mut leaf_values = Vec::new();
    r.f32s_into(n_values, &mut leaf_values, "leaf values")?;
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

// ---------------------------------------------------------------------------------------------
// Test helpers

/// bincode bytes of `value` in the head's configuration.
#[cfg(test)]
pub(crate) fn encode_bincode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, head_config()).expect("encodable")
}

/// The payload of `forest` written as it is, without validation: tests use it to build files
/// whose trees the validator must reject.
#[cfg(test)]
pub(crate) fn encode_unchecked(forest: &Forest) -> Vec<u8> {
    encode_payload(forest).expect("encodable")
}

/// The bytes of one tree (without its length prefix), for tests that edit them.
#[cfg(test)]
pub(crate) fn tree_bytes(tree: &Tree, n_features: u32) -> Vec<u8> {
    let mut out = Vec::new();
    write_tree(&mut out, tree, feature_width(n_features));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testutil::{balanced_tree, largest_allocation_during, sample_forest};
    use crate::format::validate_forest;

    fn reason(payload: &[u8]) -> String {
        match decode_payload(payload) {
            Err(WoodlotError::CorruptModel(m)) => m,
            Err(other) => panic!("expected CorruptModel, got {other:?}"),
            Ok(_) => panic!("expected an error, the payload decoded"),
        }
    }

    /// The sample forest's head followed by the given tree bodies (each given its length).
    fn payload_with(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut forest = sample_forest();
        forest.trees.clear();
        let mut out = encode_unchecked(&forest);
        assert_eq!(out.pop(), Some(0), "an empty forest ends with n_trees 0");
        put_varint(&mut out, bodies.len() as u64);
        for body in bodies {
            put_varint(&mut out, body.len() as u64);
            out.extend_from_slice(body);
        }
        out
    }

    /// Tree 0 of the sample forest (3 features, 3 classes, 5 nodes), as bytes.
    fn tree0() -> Vec<u8> {
        tree_bytes(&sample_forest().trees[0], 3)
    }

    fn column(values: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        put_f32s(&mut out, values);
        out
    }

    fn read_column(bytes: &[u8], count: usize) -> std::result::Result<Vec<f32>, String> {
        let mut r = Reader::new(bytes);
        let v = r.f32s(count, "column")?;
        assert_eq!(r.remaining(), 0, "column left bytes over");
        Ok(v)
    }

    fn bits_of(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn the_sample_payload_matches_its_bodies() {
        let forest = sample_forest();
        let bodies: Vec<Vec<u8>> = forest.trees.iter().map(|t| tree_bytes(t, 3)).collect();
        assert_eq!(payload_with(&bodies), encode_unchecked(&forest));
        assert_eq!(decode_payload(&payload_with(&bodies)).unwrap(), forest);
    }

    #[test]
    fn varints_round_trip_and_must_be_minimal() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), 1 << 63, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut r = Reader::new(&out);
            assert_eq!(r.varint("v").unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        let bad: [(&[u8], &str); 4] = [
            (&[0x80, 0x00], "redundant"),
            (&[0x81, 0x80, 0x00], "redundant"),
            (&[0xff; 9], "ends early"),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                "longer than 64",
            ),
        ];
        for (bytes, expected) in bad {
            let m = Reader::new(bytes).varint("v").unwrap_err();
            assert!(m.contains(expected), "{bytes:?}: {m}");
        }
        let mut eleven = vec![0xff; 10];
        eleven.push(0);
        assert!(Reader::new(&eleven).varint("v").is_err());
    }

    #[test]
    fn bits_round_trip_and_padding_must_be_zero() {
        for width in [0, 1, 2, 3, 7, 8, 9, 16, 31, 32] {
            let mask = ((1u64 << width) - 1) as u32;
            let values: Vec<u32> = (0..37u32)
                .map(|i| i.wrapping_mul(2_654_435_761) & mask)
                .collect();
            let mut out = Vec::new();
            put_bits(&mut out, values.iter().copied(), width);
            assert_eq!(out.len(), (37 * width as usize).div_ceil(8));
            let mut r = Reader::new(&out);
            assert_eq!(r.bits(37, width, "b").unwrap(), values, "width {width}");
            assert_eq!(r.remaining(), 0);
        }
        // 3 one-bit values use 3 bits of one byte; the other 5 must be zero.
        let m = Reader::new(&[0b0000_1101]).bits(3, 1, "b").unwrap_err();
        assert!(m.contains("nonzero padding"), "{m}");
        let m = Reader::new(&[0b101]).bits(9, 1, "b").unwrap_err();
        assert!(m.contains("ends early: needs 2 bytes, 1 remain"), "{m}");
    }

    #[test]
    fn columns_pick_the_smallest_mode_and_round_trip_bit_exactly() {
        let distinct: Vec<f32> = (0..40).map(|i| i as f32 * 0.37 + 0.001).collect();
        let few = [0.0, 1.0, 1.0, 0.0, 0.5, 0.0, -0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        let integers: Vec<f32> = (0..40).map(|i| (i * 7) as f32).collect();
        let odd = [
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            -0.0,
            f32::MIN_POSITIVE,
            4294967296.0,
        ];
        let cases: [(&[f32], u8); 6] = [
            (&[], RAW),
            (&distinct, RAW),
            (&few, DICTIONARY),
            (&integers, INTEGERS),
            (&[1.0; 100], DICTIONARY),
            (&odd, RAW),
        ];
        for (values, mode) in cases {
            let bytes = column(values);
            assert_eq!(bytes[0], mode, "{values:?}");
            let back = read_column(&bytes, values.len()).unwrap();
            assert_eq!(bits_of(&back), bits_of(values));
        }
        // 100 copies of one value: a mode byte, k - 1, one entry, 100 one-bit indices.
        assert_eq!(column(&[1.0; 100]).len(), 1 + 1 + 4 + 13);
        // -0.0 is not the integer 0; 2^32 is stored as u32::MAX, which casts back to 2^32.
        assert_eq!(as_integer(-0.0), None);
        assert_eq!(as_integer(f32::NAN), None);
        assert_eq!(as_integer(4294967296.0), Some(u32::MAX));
        assert_eq!(as_integer(0.5), None);
        // 257 distinct values do not fit a dictionary.
        let many: Vec<f32> = (0..257).map(|i| i as f32 + 0.5).collect();
        assert!(dictionary(&many).is_none());
        assert_eq!(column(&many)[0], RAW);
    }

    #[test]
    fn hostile_columns_are_rejected() {
        let cases: [(Vec<u8>, usize, &str); 6] = [
            (vec![3], 1, "unknown column mode 3"),
            (vec![RAW, 0, 0, 0], 1, "ends early"),
            // Dictionary of 2 entries, index 3 of 2-bit width is out of range... width is 1
            // for k = 2, so use k = 3 (width 2) and index 3.
            (
                [&[DICTIONARY, 2][..], &[0; 12], &[0b11]].concat(),
                1,
                "dictionary index 3 but only 3 entries",
            ),
            ([&[DICTIONARY, 0][..], &[0; 4]].concat(), 9, "ends early"),
            (
                vec![INTEGERS, 0xff, 0xff, 0xff, 0xff, 0x10],
                1,
                "out of range",
            ),
            (vec![INTEGERS, 1, 2], 3, "ends early"),
        ];
        for (bytes, count, expected) in cases {
            let m = read_column(&bytes, count).unwrap_err();
            assert!(m.contains(expected), "{bytes:?}: {m}");
        }
        // A claimed column far longer than its bytes allocates nothing for it.
        for mode in [RAW, DICTIONARY, INTEGERS] {
            let bytes = [mode, 0, 0, 0, 0, 0];
            let (r, peak) =
                largest_allocation_during(|| Reader::new(&bytes).f32s(1 << 40, "c").map(|_| ()));
            assert!(r.is_err());
            assert!(peak < 4096, "mode {mode}: {peak}");
        }
    }

    /// Each node's `right` (a split's right child, a leaf's row) from leaf bits.
    fn preorder_links(bits: &[u32]) -> std::result::Result<Vec<u32>, String> {
        let mut packed = Vec::new();
        put_bits(&mut packed, bits.iter().copied(), 1);
        let nodes = preorder_nodes(bits.len(), Bits::new(&packed, 1), &mut Vec::new())?;
        for (i, node) in nodes.iter().enumerate() {
            assert_eq!(node.is_leaf(), bits[i] == 1);
            if !node.is_leaf() {
                assert_eq!(node.left as usize, i + 1);
            }
        }
        Ok(nodes.iter().map(|n| n.right).collect())
    }

    #[test]
    fn leaf_bits_must_be_exactly_one_preorder_tree() {
        // Sample tree 0: split, leaf, split, leaf, leaf.
        assert_eq!(
            preorder_links(&[0, 1, 0, 1, 1]).unwrap(),
            vec![2, 0, 4, 1, 2]
        );
        assert_eq!(preorder_links(&[1]).unwrap(), vec![0]);
        // A left spine: 0 -> (1, 6), 1 -> (2, 5), 2 -> (3, 4).
        assert_eq!(
            preorder_links(&[0, 0, 0, 1, 1, 1, 1]).unwrap(),
            vec![6, 5, 4, 0, 1, 2, 3]
        );
        let cases: [(&[u32], &str); 5] = [
            (
                &[1, 1],
                "complete the tree at node 0 but 2 nodes are stored",
            ),
            (
                &[0, 1, 1, 1],
                "complete the tree at node 2 but 4 nodes are stored",
            ),
            (&[0], "end with 2 children missing"),
            (&[0, 1], "end with 1 children missing"),
            (&[0, 0, 1, 1], "end with 1 children missing"),
        ];
        for (bits, expected) in cases {
            let m = preorder_links(bits).unwrap_err();
            assert!(m.contains(expected), "{bits:?}: {m}");
        }
    }

    #[test]
    fn malformed_trees_are_rejected_with_the_tree_named() {
        let body = tree0();
        // Byte 0: node count 5; byte 1: leaf bits 0b11010 (nodes 1, 3, 4 are leaves).
        assert_eq!(&body[..2], &[5, 0b11010]);
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = tree0();
            f(&mut b);
            reason(&payload_with(&[
                tree_bytes(&sample_forest().trees[1], 3),
                b,
            ]))
        };
        type Edit = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Edit, &str)> = vec![
            // Node 1 a split too: the tree ends incomplete.
            (Box::new(|b| b[1] = 0b11000), "tree 1: leaf bits end with"),
            // Node 2 a leaf: the tree is complete after node 2.
            (
                Box::new(|b| b[1] = 0b11110),
                "tree 1: leaf bits complete the tree at node 2",
            ),
            // Padding bits of the leaf bitset.
            (
                Box::new(|b| b[1] |= 0x80),
                "tree 1: leaf bitset has nonzero padding",
            ),
            (Box::new(|b| b[0] = 0), "tree 1: has no nodes"),
            // One node fewer: the fifth leaf bit is now padding.
            (
                Box::new(|b| b[0] = 4),
                "tree 1: leaf bitset has nonzero padding",
            ),
            (
                Box::new(|b| {
                    b[0] = 4;
                    b[1] = 0b1010;
                }),
                "tree 1: leaf bits end with 1 children missing",
            ),
            // Three nodes that are one tree, but the arrays are those of five: they misalign.
            (
                Box::new(|b| {
                    b[0] = 3;
                    b[1] = 0b110;
                }),
                "tree 1: ",
            ),
            // An array one byte longer than the leaf bits say.
            (
                Box::new(|b| b.push(0)),
                "tree 1: 1 bytes left over after its arrays",
            ),
            // The last leaf value's column cut short.
            (
                Box::new(|b| {
                    b.pop();
                }),
                "tree 1: leaf values ends early",
            ),
        ];
        for (f, expected) in cases {
            let m = edit(&*f);
            assert!(m.starts_with("payload: "), "{m}");
            assert!(m.contains(expected), "expected {expected:?}, got {m:?}");
        }
    }

    #[test]
    fn every_truncation_of_a_tree_is_rejected() {
        let one = tree_bytes(&sample_forest().trees[1], 3);
        for tree in [tree0(), tree_bytes(&balanced_tree(4, 3), 3)] {
            for cut in 0..tree.len() {
                let m = reason(&payload_with(&[one.clone(), tree[..cut].to_vec()]));
                assert!(m.contains("payload: tree 1: "), "cut {cut}: {m}");
                assert!(
                    m.contains("ends early")
                        || m.contains("no nodes")
                        || m.contains("bytes follow its leaf bits"),
                    "{cut}: {m}"
                );
            }
            // Cut the payload instead of the tree: its length claims more than remains.
            let full = payload_with(&[one.clone(), tree.clone()]);
            for cut in 1..=tree.len() {
                let m = reason(&full[..full.len() - cut]);
                assert!(m.contains("payload: tree 1: tree ends early"), "{cut}: {m}");
            }
        }
    }

    #[test]
    fn counts_and_lengths_are_checked_before_allocating() {
        let one = tree_bytes(&sample_forest().trees[1], 3);
        let mut p = payload_with(std::slice::from_ref(&one));
        // n_trees is the byte before the one tree's length and body.
        let at = p.len() - one.len() - 2;
        assert_eq!(p[at], 1);
        p[at] = 100;
        let m = reason(&p);
        assert!(
            m.contains("payload claims 100 trees but its remaining"),
            "{m}"
        );
        // A node count of 2^32 + 1, and one whose leaf bits are not there.
        for (claim, expected) in [
            ((1u64 << 32) + 1, "more than u32"),
            (1 << 30, "leaf bitset ends early"),
        ] {
            let mut body = Vec::new();
            put_varint(&mut body, claim);
            body.extend_from_slice(&one[1..]);
            let p = payload_with(&[body]);
            let (r, peak) = largest_allocation_during(|| decode_payload(&p));
            let m = match r {
                Err(WoodlotError::CorruptModel(m)) => m,
                other => panic!("{other:?}"),
            };
            assert!(m.contains(expected), "{m}");
            assert!(peak < 4096, "{peak}");
        }
    }

    #[test]
    fn huge_class_counts_cannot_make_leaf_columns_free() {
        // A leaf tree whose leaf value column is a one-entry dictionary: with n_classes from a
        // hostile head, the count is huge but every index still costs a bit.
        let mut forest = sample_forest();
        forest.n_classes = u32::MAX;
        forest.trees.truncate(1);
        forest.trees[0] = sample_forest().trees[1].clone();
        forest.trees[0].leaf_values = vec![1.0; 3];
        let p = encode_unchecked(&forest);
        let (r, peak) = largest_allocation_during(|| decode_payload(&p));
        assert!(r.is_err());
        assert!(peak < 4096, "{peak}");
    }

    #[test]
    fn encoding_is_deterministic_and_valid_trees_come_back_exactly() {
        let mut forest = sample_forest();
        forest.trees.push(balanced_tree(6, 3));
        forest.trees.push(balanced_tree(0, 3));
        validate_forest(&forest).unwrap();
        let a = encode_payload(&forest).unwrap();
        assert_eq!(a, encode_payload(&forest).unwrap());
        let back = decode_payload(&a).unwrap();
        assert_eq!(back, forest);
        assert_eq!(encode_payload(&back).unwrap(), a);
    }

    #[test]
    fn feature_widths() {
        assert_eq!(feature_width(0), 0);
        assert_eq!(feature_width(1), 0);
        assert_eq!(feature_width(2), 1);
        assert_eq!(feature_width(13), 4);
        assert_eq!(feature_width(256), 8);
        assert_eq!(feature_width(257), 9);
        assert_eq!(feature_width(u32::MAX), 32);
        // One feature: features take no bytes and decode as 0.
        let mut forest = sample_forest();
        forest.n_features = 1;
        for t in &mut forest.trees {
            for n in &mut t.nodes {
                if !n.is_leaf() {
                    n.feature = 0;
                }
            }
        }
        forest.params.max_features = crate::forest::MaxFeatures::All;
        validate_forest(&forest).unwrap();
        assert_eq!(
            decode_payload(&encode_payload(&forest).unwrap()).unwrap(),
            forest
        );
    }
}

#[cfg(test)]
mod speed {
    /// Decode and encode times of a forest like the tutorial's v2, and format 1's decode:
    /// `cargo test --release --lib format::wire::speed -- --ignored --nocapture`
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
                super::decode_payload(&payload).unwrap();
            })
        );
        // Format 1's payload: bincode of the whole forest, through the same bounding adapter.
        let old = bincode::serde::encode_to_vec(&forest, super::head_config()).unwrap();
        println!(
            "format 1 payload {} B, wire payload {} B",
            old.len(),
            payload.len()
        );
        println!(
            "format 1 decode_payload {:.1} us",
            time(&|| {
                let config = super::head_config().with_limit::<{ super::PAYLOAD_LIMIT }>();
                let _: (Forest, usize) = bincode::serde::seed_decode_from_slice(
                    super::BoundedSeed::default(),
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
