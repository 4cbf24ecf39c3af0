//! The node layout of a compiled tree and the walk over it: the one place where batch
//! prediction spends its time.
//!
//! A tree keeps only its splits as nodes. A child reference is either the index of another
//! split or, with [`LEAF_BIT`] set, the leaf's payload: its ordinal (its rank in the compiled
//! order), and in a vote tree its class in the low bits as well. A walk thus knows it has
//! reached a leaf, and in a vote tree what it votes for, from the parent it has already
//! loaded: a fully grown tree has as many leaves as splits plus one, and none of them costs a
//! dependent load (a class table looked up per leaf cost about a fifth of the walk). Nodes are
//! 16 bytes and 16-byte aligned, so no node straddles a cache line, and both children sit in
//! the node: the step is a compare and a conditional move, with no branch to mispredict but
//! the one that notices a leaf.
//!
//! The walk indexes without bounds checks. That is sound because a [`FastTree`] can only be
//! made through [`FastTree::checked`], which proves every reference of the tree points inside
//! it and every feature inside a row before the tree is ever walked; the walk's own arithmetic
//! (`row * n_features + feature < rows.len()`) follows from the row count it derives. Measured
//! on the 100k x 50, 100-tree forest, the checks cost about an eighth of the walk.

/// In a child reference: the child is a leaf, and the other bits are its payload.
pub(super) const LEAF_BIT: u32 = 1 << 31;
/// In a node's word: a missing (NaN) value goes left at this split.
pub(super) const MISSING_LEFT_BIT: u32 = 1 << 31;
/// The feature bits of a node's word.
pub(super) const FEATURE_MASK: u32 = MISSING_LEFT_BIT - 1;

/// One split: `x[feature] <= threshold` (or a missing value where the word says so) goes to
/// the left child, anything else to the right one.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(16))]
pub(super) struct FastNode {
    pub threshold: f32,
    /// The feature, with [`MISSING_LEFT_BIT`].
    pub word: u32,
    /// The left child's reference in the low 32 bits, the right child's in the high ones: one
    /// load brings both into registers, where a conditional move on the compare's outcome
    /// picks the next reference. (Two fields picked by a select compiled to a second load,
    /// indexed by the compare, which made every step wait on it; shifting the 64-bit value by
    /// the outcome put three dependent instructions on every step's chain where the move puts
    /// one: one-thread A/B on the 100k x 50, 100-tree forest, 250-256k rows/s shifted,
    /// 288-293k moved.)
    children: u64,
}

impl FastNode {
    /// A split on `word` (feature and missing bit) at `threshold` with both child references.
    pub fn new(threshold: f32, word: u32, left: u32, right: u32) -> Self {
        Self {
            threshold,
            word,
            children: u64::from(left) | (u64::from(right) << 32),
        }
    }

    /// The left child's reference.
    pub fn left(&self) -> u32 {
        self.children as u32
    }

    /// The right child's reference.
    pub fn right(&self) -> u32 {
        (self.children >> 32) as u32
    }

    /// Sets one child's reference.
    pub fn set_child(&mut self, is_left: bool, reference: u32) {
        *self = match is_left {
            true => Self::new(self.threshold, self.word, reference, self.right()),
            false => Self::new(self.threshold, self.word, self.left(), reference),
        };
    }
}

/// A tree's splits in the compiled order and what its leaves hold, checked once (see
/// [`FastTree::checked`]). Fields are private so no unchecked tree can be walked.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FastTree {
    nodes: Vec<FastNode>,
    /// `0`, or the leaf reference of a tree that is a single leaf (then `nodes` is empty).
    root: u32,
    /// Low bits of a leaf payload that hold its class (vote trees), else 0.
    class_bits: u32,
    /// Whether leaves carry their class (else they index `leaf_values`).
    votes: bool,
    /// The node index in the original tree of each leaf, by ordinal (for `apply`).
    leaf_nodes: Vec<u32>,
    /// Fraction tables: `n_leaves * n_classes` fractions, by ordinal; empty for votes.
    leaf_values: Vec<f32>,
}

/// The parts of a [`FastTree`], as the compiler lays them out.
pub(super) struct TreeParts {
    pub nodes: Vec<FastNode>,
    pub root: u32,
    /// `Some(class_bits)` for a vote tree.
    pub vote_bits: Option<u32>,
    pub leaf_nodes: Vec<u32>,
    pub leaf_values: Vec<f32>,
}

/// The bits a class code of a forest of `n_classes` classes needs in a leaf payload.
pub(super) fn class_bits(n_classes: usize) -> u32 {
    usize::BITS - n_classes.saturating_sub(1).leading_zeros()
}

/// The leaf reference of leaf `ordinal` voting for `class` (`class_bits` from
/// [`class_bits`]; 0 and class 0 for a table tree), or `None` when it does not fit 31 bits.
pub(super) fn leaf_reference(ordinal: usize, class: u32, class_bits: u32) -> Option<u32> {
    let payload = (ordinal as u64).checked_shl(class_bits)? | u64::from(class);
    (payload < u64::from(LEAF_BIT)).then_some(LEAF_BIT | payload as u32)
}

impl FastTree {
    /// `parts` as a tree that may be walked, or `None` unless every reference is in range:
    /// each child is a split index below `nodes.len()` or a leaf whose ordinal is below the
    /// number of leaves (and, in a vote tree, whose class is below `n_classes`), every feature
    /// is below `n_features`, the root is split 0 (or the one leaf of a one-leaf tree), and a
    /// table holds exactly `n_classes` fractions per leaf.
    pub fn checked(parts: TreeParts, n_features: usize, n_classes: usize) -> Option<Self> {
        let leaves = parts.leaf_nodes.len();
        let splits = parts.nodes.len();
        let votes = parts.vote_bits.is_some();
        let class_bits = parts.vote_bits.unwrap_or(0);
        if class_bits >= 31 || n_classes == 0 {
            return None;
        }
        let class_mask = (1u32 << class_bits) - 1;
        // Both readings of a reference are checked and one is picked, and the nodes' checks
        // are and-ed without stopping early: whether a child is a leaf follows no pattern, so
        // a branch on it mispredicted on about half of the 2.6 million references a load of
        // the 100k x 50 forest checks.
        let reference_ok = |r: u32| {
            let payload = r & !LEAF_BIT;
            let ordinal_ok = ((payload >> class_bits) as usize) < leaves;
            let leaf_ok = ordinal_ok & (((payload & class_mask) as usize) < n_classes);
            std::hint::select_unpredictable(r & LEAF_BIT != 0, leaf_ok, (r as usize) < splits)
        };
        let root_ok = match parts.root {
            0 => splits > 0,
            r => splits == 0 && r & LEAF_BIT != 0 && reference_ok(r),
        };
        let nodes_ok = parts.nodes.iter().fold(true, |ok, n| {
            ok & (((n.word & FEATURE_MASK) as usize) < n_features)
                & reference_ok(n.left())
                & reference_ok(n.right())
        });
        let leaves_ok = if votes {
            parts.leaf_values.is_empty()
        } else {
            Some(parts.leaf_values.len()) == leaves.checked_mul(n_classes)
        };
        (root_ok && nodes_ok && leaves_ok).then_some(Self {
            nodes: parts.nodes,
            root: parts.root,
            class_bits,
            votes,
            leaf_nodes: parts.leaf_nodes,
            leaf_values: parts.leaf_values,
        })
    }

    /// Whether the leaves hold classes (else fraction rows).
    pub fn votes(&self) -> bool {
        self.votes
    }

    /// The class a leaf payload votes for (vote trees).
    #[inline]
    pub fn leaf_class(&self, payload: u32) -> usize {
        (payload & ((1 << self.class_bits) - 1)) as usize
    }

    /// The fractions of the leaf with `payload` (table trees), `n_classes` of them.
    #[inline]
    pub fn leaf_fractions(&self, payload: u32, n_classes: usize) -> Option<&[f32]> {
        let start = (payload >> self.class_bits) as usize * n_classes;
        self.leaf_values.get(start..start + n_classes)
    }

    /// The original node index of the leaf with `payload`.
    #[inline]
    pub fn leaf_node(&self, payload: u32) -> Option<u32> {
        self.leaf_nodes
            .get((payload >> self.class_bits) as usize)
            .copied()
    }

    /// Bytes the tree holds.
    pub fn size_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<FastNode>()
            + self.leaf_nodes.len() * std::mem::size_of::<u32>()
            + self.leaf_values.len() * std::mem::size_of::<f32>()
    }

    /// Walks every row of `rows` (row-major, `n_features` values each, the `n_features` the
    /// tree was checked against) to its leaf, calling `emit(row, leaf payload)` once per row
    /// (not in row order). `has_missing` says whether any value of `rows` is NaN: without
    /// one, a step skips the missing-value rule (a fifth of its instructions).
    #[inline]
    pub fn walk(
        &self,
        rows: &[f32],
        n_features: usize,
        has_missing: bool,
        emit: impl FnMut(usize, u32),
    ) {
        let unroll = self.nodes.len() >= UNROLLED_MIN_SPLITS;
        match (has_missing, unroll) {
            (true, true) => self.walk_lanes::<true, true>(rows, n_features, emit),
            (true, false) => self.walk_lanes::<true, false>(rows, n_features, emit),
            (false, true) => self.walk_lanes::<false, true>(rows, n_features, emit),
            (false, false) => self.walk_lanes::<false, false>(rows, n_features, emit),
        }
    }

    /// Reads one word of every cache line of the splits, front to back, so the hardware
    /// streams the whole tree into cache before the lanes need it. The lanes reach a deep
    /// tree's nodes in no order, each miss waiting on the one before it in its lane: on the
    /// 100k x 50 forest a pass of a 16,384-row chunk spent about 100 µs per tree on those
    /// misses (the pass took that much longer for every chunk, however few its rows), while
    /// the sweep brings the tree's 200 KB in order. One-thread A/B of both builds: 240-244k
    /// rows/s without, 285-293k with (prefetch instructions instead of reads: 239-259k).
    #[inline]
    fn warm(&self) {
        const NODES_PER_LINE: usize = 64 / std::mem::size_of::<FastNode>();
        let mut sum = 0u32;
        for node in self.nodes.iter().step_by(NODES_PER_LINE) {
            // SAFETY: a reference to a live element; volatile so the read is not dropped.
            sum = sum.wrapping_add(unsafe { std::ptr::read_volatile(&node.word) });
        }
        std::hint::black_box(sum);
    }

    /// One step of a row whose values start at `row`, at split `at`: the next reference.
    ///
    /// # Safety
    /// `at` is below the tree's split count, `nodes` points at its splits, and `row` at
    /// `n_features` readable values for the `n_features` the tree was checked against.
    #[inline(always)]
    unsafe fn step<const MISSING: bool>(nodes: *const FastNode, row: *const f32, at: u32) -> u32 {
        // A volatile read keeps the node one load into registers: from a plain read the
        // compiler re-reads the chosen child after the compare instead.
        let node = std::ptr::read_volatile(nodes.add(at as usize));
        let v = *row.add((node.word & FEATURE_MASK) as usize);
        let goes_left = if MISSING {
            let missing_left = node.word & MISSING_LEFT_BIT != 0;
            (v <= node.threshold) | (v.is_nan() & missing_left)
        } else {
            v <= node.threshold
        };
        // A conditional move, not a branch: a mispredicted branch would flush the other lanes.
        let (left, right) = (node.children as u32, (node.children >> 32) as u32);
        std::hint::select_unpredictable(goes_left, left, right)
    }

    /// Walks [`LANES`] rows at once: their node loads are independent, so the processor
    /// overlaps them instead of waiting on one chain. A lane whose row reaches its leaf takes
    /// the next row; when the rows run out, the lanes still walking finish one by one.
    ///
    /// `UNROLL` writes the lanes out one after another, so each lane's split and row live in
    /// registers and each lane's leaf test is a branch of its own: on deep trees (the 100k x
    /// 50 forest) that walked about 1.25 times faster than a loop over the lanes, on trees of
    /// a few dozen splits (breast_cancer, wine) about 1.3-1.5 times slower, in one-thread
    /// runs of both on the same machine.
    #[inline(always)]
    fn walk_lanes<const MISSING: bool, const UNROLL: bool>(
        &self,
        rows: &[f32],
        n_features: usize,
        mut emit: impl FnMut(usize, u32),
    ) {
        let f = n_features.max(1);
        let n = rows.len() / f;
        if self.root & LEAF_BIT != 0 {
            (0..n).for_each(|r| emit(r, self.root & !LEAF_BIT));
            return;
        }
        let nodes = self.nodes.as_ptr();
        let x = rows.as_ptr();
        // SAFETY (every `step` below): `at[k]` is the root (split 0 of a tree with splits) or
        // a split reference of a checked node, so it is below `nodes.len()` (and aligned, as
        // every element of the vector is, for the read); `xr[k]` is `x + r * f` for a row
        // `r < n = rows.len() / f`, and every checked feature is below `n_features <= f`.
        // The leaf payload of the row at `row` walked alone from split `at`.
        let walk_alone = |row: *const f32, mut at: u32| loop {
            let next = unsafe { Self::step::<MISSING>(nodes, row, at) };
            if next & LEAF_BIT != 0 {
                return next & !LEAF_BIT;
            }
            at = next;
        };
        if n < LANES {
            return (0..n).for_each(|r| emit(r, walk_alone(unsafe { x.add(r * f) }, self.root)));
        }
        self.warm();
        let mut row: [usize; LANES] = std::array::from_fn(|k| k);
        let mut xr: [*const f32; LANES] = std::array::from_fn(|k| unsafe { x.add(k * f) });
        let mut at = [self.root; LANES];
        let mut next_row = LANES;
        // The lane that found no row left to take (every other lane still holds a row).
        let done;
        macro_rules! lane {
            ($k:expr, $rows:lifetime) => {
                // The row's pointer is read from memory on every step, beside the node's load:
                // eight lanes of a pointer and a split do not fit the registers, and left to
                // itself the compiler kept the splits in vector registers, shuffling one in and
                // out inside every step's chain of loads (one-thread A/B on the 100k x 50
                // forest: 239-247k rows/s with the shuffles, 255-257k with the volatile read).
                let next = unsafe {
                    Self::step::<MISSING>(nodes, std::ptr::read_volatile(&xr[$k]), at[$k])
                };
                if next & LEAF_BIT != 0 {
                    emit(row[$k], next & !LEAF_BIT);
                    if next_row == n {
                        done = $k;
                        break $rows;
                    }
                    row[$k] = next_row;
                    xr[$k] = unsafe { x.add(next_row * f) };
                    at[$k] = self.root;
                    next_row += 1;
                } else {
                    at[$k] = next;
                }
            };
        }
        'rows: loop {
            if UNROLL {
                lane!(0, 'rows);
                lane!(1, 'rows);
                lane!(2, 'rows);
                lane!(3, 'rows);
                lane!(4, 'rows);
                lane!(5, 'rows);
                lane!(6, 'rows);
                lane!(7, 'rows);
            } else {
                for k in 0..LANES {
                    lane!(k, 'rows);
                }
            }
        }
        for k in (0..LANES).filter(|&k| k != done) {
            emit(row[k], walk_alone(xr[k], at[k]));
        }
    }
}

/// Rows in flight at once in a walk (4, 8 and 16 measured within the machine's noise of one
/// another on the 100k x 50 forest; 1, the plain row-after-row walk, was 1.6 times slower).
/// The unrolled walk writes out exactly this many lanes.
const LANES: usize = 8;
const _: () = assert!(LANES == 8, "walk_lanes writes out lanes 0 to 7 by hand");

/// Trees of at least this many splits take the unrolled walk (digits' trees, about 150 splits,
/// walked a little faster unrolled; breast_cancer's, about 15, much slower).
const UNROLLED_MIN_SPLITS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// A vote tree of 2 features and 3 classes: split 0 sends rows to split 1 or to leaf 0
    /// (class 1); split 1 to leaf 1 (class 2) or leaf 2 (class 0).
    fn parts() -> TreeParts {
        let leaf = |ordinal, class| leaf_reference(ordinal, class, class_bits(3)).unwrap();
        TreeParts {
            nodes: vec![
                FastNode::new(0.5, 0, 1, leaf(0, 1)),
                FastNode::new(1.5, 1 | MISSING_LEFT_BIT, leaf(1, 2), leaf(2, 0)),
            ],
            root: 0,
            vote_bits: Some(class_bits(3)),
            leaf_nodes: vec![2, 3, 4],
            leaf_values: Vec::new(),
        }
    }

    #[test]
    fn every_reference_out_of_range_is_refused() {
        assert!(FastTree::checked(parts(), 2, 3).is_some());
        let bits = class_bits(3);
        type Edit = fn(&mut TreeParts, u32);
        let edits: [(&str, Edit); 6] = [
            ("a split index past the splits", |p, _| {
                p.nodes[0].set_child(true, 2)
            }),
            ("a leaf ordinal past the leaves", |p, bits| {
                p.nodes[1].set_child(false, leaf_reference(3, 0, bits).unwrap())
            }),
            ("a class past the classes", |p, bits| {
                p.nodes[0].set_child(false, leaf_reference(0, 3, bits).unwrap())
            }),
            ("a feature past the features", |p, _| p.nodes[1].word = 2),
            ("a root that is not split 0", |p, _| p.root = 1),
            ("a vote tree with a fraction table", |p, _| {
                p.leaf_values = vec![0.0; 9]
            }),
        ];
        for (what, edit) in edits {
            let mut p = parts();
            edit(&mut p, bits);
            assert!(FastTree::checked(p, 2, 3).is_none(), "{what} was accepted");
        }
        // The same shape as a table tree: its leaves name rows, 3 fractions each.
        let table = |values: usize| {
            let leaf = |ordinal| leaf_reference(ordinal, 0, 0).unwrap();
            let mut p = parts();
            p.nodes[0].set_child(false, leaf(0));
            p.nodes[1] = FastNode::new(1.5, 1, leaf(1), leaf(2));
            p.vote_bits = None;
            p.leaf_values = vec![0.5; values];
            p
        };
        assert!(FastTree::checked(table(9), 2, 3).is_some());
        assert!(
            FastTree::checked(table(8), 2, 3).is_none(),
            "a short table was accepted"
        );
    }
}
