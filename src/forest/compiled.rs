//! A prediction-only form of a forest, laid out for throughput on large batches.
//!
//! Fully grown trees have tens of thousands of nodes each and a row visits about twenty of them
//! per tree, so batch prediction is bound by how fast a walk can fetch its next node. The
//! compiled form fixes the layout for that case (it is built once, when a [`Predictor`] is
//! made, i.e. at fit and at load, never on a first large batch); [`layout`](super::layout)
//! holds the node format and the walk:
//!
//! - **Only splits are nodes.** A split names its leaf children in place (their ordinal, with a
//!   flag), so a row's last step ends at the parent and no leaf costs a load on the way down;
//!   half a fully grown tree's nodes are leaves.
//! - **16-byte nodes, thresholds compared as `f32`.** A node is its `f32` threshold, its
//!   feature with the missing-value bit, and both children. Inputs are compared as the `f32`
//!   values the plain walk ([`Tree::leaf_of`]) compares, with the same `<=` and the same NaN
//!   rule, so every row takes exactly the path it takes there: no quantisation step, no
//!   rounding question. A chunk without NaN skips the missing-value rule.
//! - **The hot child is adjacent.** Splits are stored in depth-first preorder over hot-first
//!   children (the child more training samples reached comes first), so the likely next node
//!   is usually in the cache line just loaded.
//! - **Class-vote leaves.** When every leaf of the forest is pure (one class has fraction
//!   exactly 1, the rest exactly 0, as in any fully grown forest), a leaf holds its class and
//!   a row's probabilities are its vote counts times `1 / n_trees`. The plain path adds the same
//!   `1.0`s and `0.0`s in `f64`, in tree order, which is exact for integers, then multiplies by
//!   the same `1 / n_trees`: the results are bit-identical, not just close. A forest with any
//!   impure leaf (`max_depth`, `min_samples_leaf`, class weights, ...) keeps a leaf-fraction
//!   table and adds fractions in tree order, as the plain walk does.
//! - **Rows in chunks, trees in order.** A chunk of up to [`COMPILED_CHUNK_ROWS`] rows passes
//!   through one tree before the next tree starts, so a tree's nodes are reused from cache by
//!   thousands of rows, and each row's sum still runs over the trees in index order.
//!
//! [`Predictor`]: super::Predictor
//! [`Tree::leaf_of`]: crate::tree::Tree::leaf_of
//! [`COMPILED_CHUNK_ROWS`]: super::predict::COMPILED_CHUNK_ROWS

use rayon::prelude::*;

use super::layout::{
    class_bits, leaf_reference, FastNode, FastTree, TreeParts, FEATURE_MASK, MISSING_LEFT_BIT,
};
use super::Forest;
use crate::tree::Tree;

/// Impure forests of more classes than this keep the plain walk: adding a leaf's row of
/// fractions then costs more than reaching the leaf, so a copied leaf table would double the
/// leaves' memory (and a hostile model file's decode footprint) for no speed.
pub const MAX_TABLE_CLASSES: usize = 256;

/// One tree in the compiled layout, made on its own (so a decoder can compile each tree in the
/// task that decoded it) and assembled into a forest by [`CompiledForest::from_trees`]. Its
/// leaves hold class votes when the tree's own leaves are all pure, else fraction-table rows.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledTree {
    tree: FastTree,
}

impl CompiledTree {
    /// Compiles `tree` of a forest of `n_features` features and `n_classes` classes; `None`
    /// on a tree [`CompiledForest::new`] refuses (too many features, malformed, or impure
    /// with more than [`MAX_TABLE_CLASSES`] classes).
    pub fn new(tree: &Tree, n_features: usize, n_classes: usize) -> Option<Self> {
        if n_features > FEATURE_MASK as usize {
            return None;
        }
        // Votes first (the common, fully grown case); the first impure leaf switches to a
        // fraction table for this tree.
        match compile_tree(tree, n_features, n_classes, LeafMode::Votes) {
            Ok(tree) => Some(Self { tree }),
            // A forest of so many classes with an impure leaf keeps the plain walk (see
            // MAX_TABLE_CLASSES): no table is copied for it.
            Err(Refusal::Impure) if n_classes > MAX_TABLE_CLASSES => None,
            Err(Refusal::Impure) => compile_tree(tree, n_features, n_classes, LeafMode::Table)
                .ok()
                .map(|tree| Self { tree }),
            Err(Refusal::Malformed) => None,
        }
    }

    /// Whether the leaves hold class votes: the leaf row of every leaf of the tree it was
    /// compiled from is pure (exactly one `1.0`, zeros elsewhere).
    pub fn votes(&self) -> bool {
        self.tree.votes()
    }
}

/// What a compiled leaf holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LeafMode {
    /// Its class: every leaf must be pure.
    Votes,
    /// Its row in the tree's fraction table.
    Table,
}

/// Why [`compile_tree`] gave up on a tree.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refusal {
    /// A leaf is not pure (only in [`LeafMode::Votes`]).
    Impure,
    /// The tree is not well formed.
    Malformed,
}

/// A forest compiled for batch prediction. Build it once per fitted forest and reuse it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledForest {
    n_features: usize,
    n_classes: usize,
    /// Every leaf is pure: leaves hold classes and probabilities are votes / n_trees.
    votes: bool,
    trees: Vec<FastTree>,
}

impl CompiledForest {
    /// Compiles `forest`, or returns `None` when it does not fit the layout (2^31 features or
    /// more) or is not a well-formed forest (a child pointing backwards or outside its tree, a
    /// feature out of range, a missing leaf row); callers then use the plain walk. Runs on the
    /// current rayon pool, never panics.
    pub fn new(forest: &Forest) -> Option<Self> {
        let (n_features, n_classes) = (forest.n_features as usize, forest.n_classes as usize);
        let pieces = forest
            .trees
            .par_iter()
            .map(|t| CompiledTree::new(t, n_features, n_classes))
            .collect();
        Self::from_trees(forest, pieces)
    }

    /// Assembles the layout of `forest` from its trees compiled one by one ([`CompiledTree`],
    /// `pieces[k]` from `forest.trees[k]`, e.g. each while its tree was decoded); `None` as
    /// [`CompiledForest::new`]. When some trees are pure and others not, the pure ones are
    /// compiled again with a fraction table (their one-hot rows), so every tree adds the same
    /// kind of leaf. Runs on the current rayon pool.
    pub fn from_trees(forest: &Forest, pieces: Vec<Option<CompiledTree>>) -> Option<Self> {
        let n_features = forest.n_features as usize;
        let n_classes = forest.n_classes as usize;
        if n_features > FEATURE_MASK as usize || pieces.len() != forest.trees.len() {
            return None;
        }
        let pieces = pieces.into_iter().collect::<Option<Vec<_>>>()?;
        let votes = n_classes > 0 && pieces.iter().all(|p| p.tree.votes());
        if !votes && n_classes > MAX_TABLE_CLASSES {
            return None;
        }
        let trees = if votes {
            pieces.into_iter().map(|p| p.tree).collect()
        } else {
            pieces
                .into_par_iter()
                .zip(forest.trees.par_iter())
                .map(|(piece, tree)| match piece.tree.votes() {
                    false => Ok(piece.tree),
                    true => compile_tree(tree, n_features, n_classes, LeafMode::Table),
                })
                .collect::<Result<Vec<_>, Refusal>>()
                .ok()?
        };
        Some(Self {
            n_features,
            n_classes,
            votes,
            trees,
        })
    }

    /// Whether leaves hold class votes (every leaf of the forest is pure).
    pub fn uses_votes(&self) -> bool {
        self.votes
    }

    /// Bytes the layout holds (nodes and leaf tables), for memory reports.
    pub fn size_bytes(&self) -> usize {
        self.trees.iter().map(FastTree::size_bytes).sum()
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Mean class probabilities for `rows` (row-major `f32`, `n_features` values each, already
    /// checked) into `out` (`rows x n_classes`, zeroed): each row's leaf values summed over the
    /// trees in tree order, times `scale`. Bit-identical to the plain walk.
    pub fn predict_proba_into(&self, rows: &[f32], out: &mut [f64], scale: f64) {
        let f = self.n_features.max(1);
        let c = self.n_classes;
        let n = rows.len() / f;
        let missing = rows.iter().any(|v| v.is_nan());
        if self.votes {
            let mut votes = vec![0u32; n * c];
            for tree in &self.trees {
                tree.walk(rows, f, missing, |r, leaf| {
                    if let Some(slot) = votes.get_mut(r * c + tree.leaf_class(leaf)) {
                        *slot += 1;
                    }
                });
            }
            for (o, &v) in out.iter_mut().zip(&votes) {
                // The plain walk's sum of v ones in f64 is exactly v.
                *o = f64::from(v) * scale;
            }
        } else {
            for tree in &self.trees {
                tree.walk(rows, f, missing, |r, leaf| {
                    if let (Some(values), Some(acc)) = (
                        tree.leaf_fractions(leaf, c),
                        out.get_mut(r * c..(r + 1) * c),
                    ) {
                        for (a, v) in acc.iter_mut().zip(values) {
                            *a += f64::from(*v);
                        }
                    }
                });
            }
            out.iter_mut().for_each(|v| *v *= scale);
        }
    }

    /// The leaf (node index in the original tree) each row reaches in each tree into `out`
    /// (`rows x n_trees`).
    ///
    /// Trees are walked eight at a time (`APPLY_TREE_GROUP`) into a tree-major buffer of leaf
    /// payloads, which are then resolved to node indices and copied out row by row. The walk's
    /// callback only stores a `u32` (resolving the node inside it left the eight lanes fewer
    /// registers), and a row's output line is filled once per group, not once per tree (the
    /// output of 10,000 rows of 100 trees is 8 MB, beyond cache). One-thread kernel A/B on the
    /// 100k x 50, 100-tree forest, 10,000-row chunks: 117-161k rows/s before, 143-201k after.
    pub fn apply_into(&self, rows: &[f32], out: &mut [i64]) {
        let f = self.n_features.max(1);
        let n = rows.len() / f;
        let t = self.trees.len();
        let missing = rows.iter().any(|v| v.is_nan());
        let mut group = vec![0u32; n * APPLY_TREE_GROUP.min(t)];
        for (g, trees) in self.trees.chunks(APPLY_TREE_GROUP).enumerate() {
            for (k, tree) in trees.iter().enumerate() {
                let leaves = &mut group[k * n..(k + 1) * n];
                tree.walk(rows, f, missing, |r, leaf| {
                    if let Some(dst) = leaves.get_mut(r) {
                        *dst = leaf;
                    }
                });
            }
            let first = g * APPLY_TREE_GROUP;
            for (r, row_out) in out.chunks_exact_mut(t).enumerate().take(n) {
                let row_out = &mut row_out[first..first + trees.len()];
                for (k, (dst, tree)) in row_out.iter_mut().zip(trees).enumerate() {
                    if let Some(node) = tree.leaf_node(group[k * n + r]) {
                        *dst = i64::from(node);
                    }
                }
            }
        }
    }
}

/// Trees [`CompiledForest::apply_into`] walks before copying their leaves out: eight `i64`
/// leaves fill a cache line of a row's output.
const APPLY_TREE_GROUP: usize = 8;

/// The class of a pure leaf row (exactly one `1.0`, every other value `0.0`), else `None`.
/// Counted without a branch per value: loading a fully grown forest checks every one of its
/// leaves (1.3 million in the 100k x 50 forest), and a branch on where the `1.0` sits
/// mispredicted on most of them.
fn pure_class(row: &[f32]) -> Option<u32> {
    let (mut ones, mut others, mut class) = (0u32, 0u32, 0u32);
    for (i, &v) in row.iter().enumerate() {
        let one = u32::from(v == 1.0);
        ones += one;
        others += u32::from(v != 0.0) & (one ^ 1);
        // Only read when exactly one value is 1.0; wrapping keeps a row of many 1.0s (a
        // malformed leaf) from overflowing in a debug build.
        class = class.wrapping_add(one * i as u32);
    }
    (ones == 1 && others == 0).then_some(class)
}

/// The leaves of a tree being laid out, by ordinal.
struct LeafParts {
    /// `Some(class_bits)` while laying out votes.
    vote_bits: Option<u32>,
    n_classes: usize,
    nodes: Vec<u32>,
    values: Vec<f32>,
}

impl LeafParts {
    /// Room for `n_leaves` leaves of `n_classes` classes.
    fn new(mode: LeafMode, n_classes: usize, n_leaves: usize) -> Result<Self, Refusal> {
        let votes = mode == LeafMode::Votes;
        let table = if votes {
            0
        } else {
            n_leaves.checked_mul(n_classes).ok_or(Refusal::Malformed)?
        };
        Ok(Self {
            vote_bits: votes.then(|| class_bits(n_classes)),
            n_classes,
            nodes: vec![0; n_leaves],
            values: vec![0.0; table],
        })
    }

    /// Records original leaf `node` of `tree` as leaf `ordinal` and returns the reference its
    /// parent holds: with its class (votes; an impure leaf, or an ordinal too large to share
    /// 31 bits with a class, is refused as impure so the tree takes a table) or with its row
    /// of fractions copied into the table.
    fn set(&mut self, tree: &Tree, node: usize, ordinal: usize) -> Result<u32, Refusal> {
        let c = self.n_classes;
        let row = tree.nodes[node].right as usize;
        let values = tree
            .leaf_values
            .get(row * c..(row + 1) * c)
            .ok_or(Refusal::Malformed)?;
        *self.nodes.get_mut(ordinal).ok_or(Refusal::Malformed)? =
            u32::try_from(node).map_err(|_| Refusal::Malformed)?;
        match self.vote_bits {
            Some(bits) => {
                let class = pure_class(values).ok_or(Refusal::Impure)?;
                leaf_reference(ordinal, class, bits).ok_or(Refusal::Impure)
            }
            None => {
                self.values
                    .get_mut(ordinal * c..(ordinal + 1) * c)
                    .ok_or(Refusal::Malformed)?
                    .copy_from_slice(values);
                leaf_reference(ordinal, 0, 0).ok_or(Refusal::Malformed)
            }
        }
    }

    /// The number of leaves there is room for.
    fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Room for one more leaf (the walk learns the count as it goes).
    fn grow(&mut self) {
        self.nodes.push(0);
        if self.vote_bits.is_none() {
            self.values.resize(self.values.len() + self.n_classes, 0.0);
        }
    }

    fn into_tree(
        self,
        nodes: Vec<FastNode>,
        root: u32,
        n_features: usize,
    ) -> Result<FastTree, Refusal> {
        let parts = TreeParts {
            nodes,
            root,
            vote_bits: self.vote_bits,
            leaf_nodes: self.nodes,
            leaf_values: self.values,
        };
        FastTree::checked(parts, n_features, self.n_classes).ok_or(Refusal::Malformed)
    }
}

/// The node word of split `node`: its feature and missing-value direction.
fn split_word(node: &crate::tree::Node, n_features: usize) -> Result<u32, Refusal> {
    if node.feature() as usize >= n_features || node.feature() > FEATURE_MASK {
        return Err(Refusal::Malformed);
    }
    Ok(node.feature()
        | if node.missing_left() {
            MISSING_LEFT_BIT
        } else {
            0
        })
}

/// Re-lays one tree: its splits in hot-first depth-first preorder, its leaves named in their
/// parents. Refuses a malformed tree (a child not after its parent or outside the tree, a
/// feature out of range, a leaf row out of range) and, for votes, an impure leaf.
fn compile_tree(
    tree: &Tree,
    n_features: usize,
    n_classes: usize,
    mode: LeafMode,
) -> Result<FastTree, Refusal> {
    match compile_preordered(tree, n_features, n_classes, mode) {
        Some(result) => result,
        None => compile_by_walk(tree, n_features, n_classes, mode),
    }
}

/// [`compile_by_walk`]'s result for a tree whose nodes are in plain depth-first preorder (a
/// split's left child is the next node, its right child the node after its left subtree, the
/// root's subtree every node: every fitted and every decoded tree), in one sequential pass
/// instead of a walk that hops between the hot and cold sides. `None` for any other tree (and
/// for one the pass finds malformed), which then takes the walk.
///
/// In preorder, a split at `i` with children `l = i + 1` and `r` has its left subtree at
/// `l..r` and its right one from `r` to its own subtree's end, and a subtree of `size` nodes
/// holds `(size - 1) / 2` splits. So every node's place (its hot child's subtree right after
/// it, its cold child's after that), first leaf ordinal and subtree end follow from its
/// parent's, top-down: the left child's are carried to the next node, the right child's wait
/// on a stack as deep as the tree until the leaf that closes the left subtree. The pass checks
/// the preorder as it goes (each node is the one its predecessor expects, each child lies in
/// its parent's subtree, the stack empties at the last node), so no array the size of the tree
/// is needed besides the layout itself. (It replaced a backward pass that sized every subtree
/// first and two tree-sized arrays of places: the 23.7 MB file of the 100k x 50 forest then
/// loaded in 126-152 ms best of 15, against 93-112 ms since, in a Rust A/B of both builds.)
fn compile_preordered(
    tree: &Tree,
    n_features: usize,
    n_classes: usize,
    mode: LeafMode,
) -> Option<Result<FastTree, Refusal>> {
    let n = tree.nodes.len();
    // (Without classes the walk gives every leaf row 0; such a forest takes the walk.)
    if n == 0 || n_classes == 0 || u32::try_from(n).is_err() || n.is_multiple_of(2) {
        return None;
    }
    match place_preordered(tree, n_features, n_classes, mode) {
        // Not in preorder, or malformed: the walk gives the answer.
        Err(Refusal::Malformed) => None,
        result => Some(result),
    }
}

/// Where a node of a preordered tree goes, set by its parent (see [`compile_preordered`]).
#[derive(Clone, Copy)]
struct Slot {
    /// The node's index: the node the pass must meet next.
    node: u32,
    /// Its place among the compiled splits (splits only).
    place: u32,
    /// The ordinal of the first leaf of its subtree.
    first_leaf: u32,
    /// One past the last node of its subtree.
    end: u32,
}

/// The pass of [`compile_preordered`]; `Malformed` also for a tree not in preorder.
fn place_preordered(
    tree: &Tree,
    n_features: usize,
    n_classes: usize,
    mode: LeafMode,
) -> Result<FastTree, Refusal> {
    let n = tree.nodes.len();
    let samples = |i: usize| tree.stats.n_samples.get(i).copied().unwrap_or(0);
    let n_splits = (n - 1) / 2;
    let mut out = LeafParts::new(mode, n_classes, n_splits + 1)?;
    if tree.nodes[0].is_leaf() {
        if n != 1 {
            return Err(Refusal::Malformed);
        }
        let root = out.set(tree, 0, 0)?;
        return out.into_tree(Vec::new(), root, n_features);
    }
    let empty = FastNode::new(0.0, 0, 0, 0);
    let mut nodes = vec![empty; n_splits];
    let mut pending: Vec<Slot> = Vec::new();
    let mut slot = Slot {
        node: 0,
        place: 0,
        first_leaf: 0,
        end: n as u32,
    };
    for (i, node) in tree.nodes.iter().enumerate() {
        if slot.node as usize != i {
            return Err(Refusal::Malformed);
        }
        if node.is_leaf() {
            // Its parent made its reference. The next node must be the innermost pending right
            // child, whose index is this leaf's subtree end: checked as that node is met (so a
            // leaf whose subtree should be larger is caught there), and after the last node
            // nothing may be pending.
            if let Some(next) = pending.pop() {
                slot = next;
            }
            continue;
        }
        let (l, r) = (node.left as usize, node.right as usize);
        if l != i + 1 || r <= l || r >= slot.end as usize {
            return Err(Refusal::Malformed);
        }
        // Both subtrees hold at least one node: l..r and r..end.
        let splits_of = |start: usize, end: usize| ((end - start - 1) / 2) as u32;
        let (left_splits, right_splits) = (splits_of(l, r), splits_of(r, slot.end as usize));
        let hot_left = samples(l) >= samples(r);
        let hot_splits = if hot_left { left_splits } else { right_splits };
        let hot = (slot.place + 1, slot.first_leaf);
        let cold = (
            slot.place + 1 + hot_splits,
            slot.first_leaf + hot_splits + 1,
        );
        let ((l_place, l_leaf), (r_place, r_leaf)) =
            if hot_left { (hot, cold) } else { (cold, hot) };
        let mut reference =
            |child: usize, place: u32, first_leaf: u32| match tree.nodes[child].is_leaf() {
                true => out.set(tree, child, first_leaf as usize),
                false => Ok(place),
            };
        let left = reference(l, l_place, l_leaf)?;
        let right = reference(r, r_place, r_leaf)?;
        *nodes
            .get_mut(slot.place as usize)
            .ok_or(Refusal::Malformed)? =
            FastNode::new(node.threshold, split_word(node, n_features)?, left, right);
        pending.push(Slot {
            node: r as u32,
            place: r_place,
            first_leaf: r_leaf,
            end: slot.end,
        });
        slot = Slot {
            node: l as u32,
            place: l_place,
            first_leaf: l_leaf,
            end: r as u32,
        };
    }
    if !pending.is_empty() {
        return Err(Refusal::Malformed);
    }
    out.into_tree(nodes, 0, n_features)
}

/// [`compile_tree`] for any tree: a walk from the root, hot child first, that refuses what
/// it cannot lay out.
fn compile_by_walk(
    tree: &Tree,
    n_features: usize,
    n_classes: usize,
    mode: LeafMode,
) -> Result<FastTree, Refusal> {
    let n = tree.nodes.len();
    let samples = |i: usize| tree.stats.n_samples.get(i).copied().unwrap_or(0);
    let mut nodes: Vec<FastNode> = Vec::new();
    let mut out = LeafParts::new(mode, n_classes, 0)?;
    // (original node, the compact split whose child it is and whether it is the left one)
    let mut stack: Vec<(usize, Option<(usize, bool)>)> = vec![(0, None)];
    let mut root = 0;
    while let Some((i, parent)) = stack.pop() {
        // Children point strictly forward (checked below), so each node is reached at most
        // once per parent and the walk ends; this bounds it even for a malformed tree.
        if nodes.len() + out.len() >= n {
            return Err(Refusal::Malformed);
        }
        let node = tree.nodes.get(i).ok_or(Refusal::Malformed)?;
        let reference = if node.is_leaf() {
            out.grow();
            out.set(tree, i, out.len() - 1)?
        } else {
            let (l, r) = (node.left as usize, node.right as usize);
            if l <= i || r <= i || l >= n || r >= n {
                return Err(Refusal::Malformed);
            }
            let id = nodes.len();
            nodes.push(FastNode::new(
                node.threshold,
                split_word(node, n_features)?,
                0,
                0,
            ));
            let hot_left = samples(l) >= samples(r);
            let (hot, cold) = if hot_left { (l, r) } else { (r, l) };
            stack.push((cold, Some((id, cold == l))));
            stack.push((hot, Some((id, hot == l))));
            u32::try_from(id).map_err(|_| Refusal::Malformed)?
        };
        match parent {
            None => root = reference,
            Some((p, is_left)) => nodes[p].set_child(is_left, reference),
        }
    }
    out.into_tree(nodes, root, n_features)
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::forest::{ForestParams, MaxFeatures, SizeSpec};
    use crate::rng::Rng;
    use crate::tree::{Node, NodeStats};

    fn data(n: usize, classes: u32) -> (Array2<f64>, Vec<u32>) {
        let mut rng = Rng::new(3);
        let x = Array2::from_shape_fn((n, 6), |(i, j)| {
            if (i + j) % 17 == 0 {
                f64::NAN
            } else {
                (rng.unit_f64() * 10.0).round() / 3.0
            }
        });
        let y: Vec<u32> = (0..n)
            .map(|i| ((x[[i, 0]].is_nan() as usize + i) % classes as usize) as u32)
            .collect();
        (x, y)
    }

    fn plain(forest: &Forest, rows: &[f32], f: usize) -> Vec<f64> {
        let c = forest.n_classes as usize;
        let mut out = vec![0.0; rows.len() / f * c];
        for tree in &forest.trees {
            for (r, acc) in out.chunks_exact_mut(c).enumerate() {
                let leaf = tree.leaf_of(&rows[r * f..(r + 1) * f]);
                for (a, v) in acc.iter_mut().zip(tree.leaf_value(leaf)) {
                    *a += *v as f64;
                }
            }
        }
        let scale = 1.0 / forest.trees.len() as f64;
        out.iter_mut().for_each(|v| *v *= scale);
        out
    }

    #[test]
    fn compiled_predictions_equal_the_plain_walk_bit_for_bit() {
        let n = 700;
        let (x, y) = data(n, 3);
        let rows: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        for (pure, params) in [
            (
                true,
                ForestParams {
                    n_estimators: 15,
                    max_features: MaxFeatures::Count(3),
                    ..Default::default()
                },
            ),
            (
                false,
                ForestParams {
                    n_estimators: 15,
                    max_depth: Some(4),
                    ..Default::default()
                },
            ),
            (
                false,
                ForestParams {
                    n_estimators: 9,
                    min_samples_leaf: SizeSpec::Count(7),
                    ..Default::default()
                },
            ),
        ] {
            let forest = Forest::fit(x.view(), &y, 3, None, &params, 2).unwrap();
            let compiled = CompiledForest::new(&forest).unwrap();
            assert_eq!(compiled.uses_votes(), pure, "{params:?}");
            let mut out = vec![0.0; n * 3];
            compiled.predict_proba_into(&rows, &mut out, 1.0 / forest.trees.len() as f64);
            let want = plain(&forest, &rows, 6);
            assert!(
                out.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{params:?}"
            );
            let mut leaves = vec![0i64; n * forest.trees.len()];
            compiled.apply_into(&rows, &mut leaves);
            assert_eq!(
                Array2::from_shape_vec((n, forest.trees.len()), leaves).unwrap(),
                forest.apply(x.view(), 1).unwrap()
            );
        }
    }

    #[test]
    fn impure_forests_of_many_classes_keep_the_plain_walk() {
        use crate::forest::Predictor;
        let classes = (MAX_TABLE_CLASSES + 1) as u32;
        let (x, y) = noisy(2 * classes as usize, 3, classes, 5);
        let shallow = ForestParams {
            n_estimators: 3,
            max_depth: Some(2),
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, classes as usize, None, &shallow, 1).unwrap();
        assert!(CompiledForest::new(&forest).is_none());
        let predictor = Predictor::with_threads(forest.clone(), 1);
        let x32 = x.mapv(|v| v as f32);
        assert_eq!(
            predictor.predict_proba(x32.view(), 1).unwrap(),
            forest.predict_proba(x32.view(), 1).unwrap()
        );
        // At the limit an impure forest still compiles.
        let classes = MAX_TABLE_CLASSES as u32;
        let (x, y) = noisy(2 * classes as usize, 3, classes, 5);
        let forest = Forest::fit(x.view(), &y, classes as usize, None, &shallow, 1).unwrap();
        assert!(CompiledForest::new(&forest).is_some());
    }

    #[test]
    fn malformed_trees_are_refused_not_walked() {
        let (x, y) = data(200, 2);
        let params = ForestParams {
            n_estimators: 2,
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, 2, None, &params, 1).unwrap();
        assert!(CompiledForest::new(&forest).is_some());
        // A child pointing back at its parent (a cycle), and a feature out of range.
        let mut cyclic = forest.clone();
        cyclic.trees[1].nodes[0].right = 0;
        assert!(CompiledForest::new(&cyclic).is_none());
        let mut wide = forest.clone();
        wide.trees[0].nodes[0].set_feature(6);
        assert!(CompiledForest::new(&wide).is_none());
    }

    /// Noisy data (so fully grown leaves stay impure only where limits stop them), NaN in every
    /// column at some rows, values on a coarse grid so thresholds and inputs coincide.
    fn noisy(n: usize, f: usize, classes: u32, seed: u64) -> (Array2<f64>, Vec<u32>) {
        let mut rng = Rng::new(seed);
        let x = Array2::from_shape_fn((n, f), |(i, j)| {
            if (i * 7 + j * 3) % 23 == 0 {
                f64::NAN
            } else {
                (rng.unit_f64() * 40.0).round() / 7.0 - 2.0
            }
        });
        let y = (0..n)
            .map(|i| {
                let a = x[[i, 0]];
                let b = x[[i, 1 % f]];
                let s = if a.is_nan() { 3.0 } else { a } + if b.is_nan() { -1.0 } else { b };
                let noise = (rng.unit_f64() * 3.0) as u32;
                (s.abs() as u32 + noise) % classes
            })
            .collect();
        (x, y)
    }

    #[test]
    fn every_kind_of_forest_predicts_bit_identically_through_the_layout() {
        use crate::forest::{ClassWeight, Predictor};
        let mut checked = (0, 0);
        for (case, classes) in [2u32, 3, 5].into_iter().enumerate() {
            let (x, y) = noisy(900, 5, classes, case as u64 + 11);
            let x32 = x.mapv(|v| v as f32);
            for params in [
                ForestParams::default(),
                ForestParams {
                    max_depth: Some(3),
                    ..Default::default()
                },
                ForestParams {
                    max_depth: Some(9),
                    max_features: MaxFeatures::Count(2),
                    ..Default::default()
                },
                ForestParams {
                    min_samples_leaf: SizeSpec::Count(5),
                    ..Default::default()
                },
                ForestParams {
                    class_weight: ClassWeight::Balanced,
                    max_leaf_nodes: Some(40),
                    ..Default::default()
                },
                ForestParams {
                    class_weight: ClassWeight::BalancedSubsample,
                    bootstrap: true,
                    ..Default::default()
                },
            ] {
                let params = ForestParams {
                    n_estimators: 12,
                    random_state: case as u64,
                    ..params
                };
                let forest = Forest::fit(x.view(), &y, classes as usize, None, &params, 2).unwrap();
                let want = forest.predict_proba(x.view(), 1).unwrap();
                let want_leaves = forest.apply(x.view(), 1).unwrap();
                let p = Predictor::with_threads(forest, 2);
                let compiled = p.compiled().expect("every fitted forest compiles");
                if compiled.uses_votes() {
                    checked.0 += 1;
                } else {
                    checked.1 += 1;
                }
                for threads in [1, 2] {
                    for got in [
                        p.predict_proba(x.view(), threads).unwrap(),
                        p.predict_proba(x32.view(), threads).unwrap(),
                    ] {
                        let same = got
                            .iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{classes} classes, {params:?}");
                    }
                    assert_eq!(p.apply(x.view(), threads).unwrap(), want_leaves);
                    assert_eq!(p.apply(x32.view(), threads).unwrap(), want_leaves);
                }
            }
        }
        // Both leaf kinds were exercised: vote forests and fraction-table forests.
        assert!(checked.0 >= 3 && checked.1 >= 3, "{checked:?}");
    }

    /// Trees compiled one by one and assembled give the forest's layout; a forest mixing pure
    /// and impure trees gets fraction tables for all of them and stays bit-identical.
    #[test]
    fn a_forest_of_pure_and_impure_trees_compiles_tree_by_tree() {
        let (x, y) = noisy(600, 5, 3, 7);
        let fit = |params: ForestParams| Forest::fit(x.view(), &y, 3, None, &params, 2).unwrap();
        let pure = fit(ForestParams {
            n_estimators: 4,
            ..Default::default()
        });
        let shallow = fit(ForestParams {
            n_estimators: 3,
            max_depth: Some(3),
            ..Default::default()
        });
        let mut mixed = pure.clone();
        mixed.trees.extend(shallow.trees.iter().cloned());
        mixed.trees.swap(1, 5);
        let rows: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        for (forest, votes) in [(&pure, true), (&shallow, false), (&mixed, false)] {
            let pieces = forest
                .trees
                .iter()
                .map(|t| CompiledTree::new(t, 5, 3))
                .collect();
            let assembled = CompiledForest::from_trees(forest, pieces).unwrap();
            let compiled = CompiledForest::new(forest).unwrap();
            assert_eq!(assembled, compiled);
            assert_eq!(compiled.uses_votes(), votes);
            let mut out = vec![0.0; 600 * 3];
            compiled.predict_proba_into(&rows, &mut out, 1.0 / forest.trees.len() as f64);
            let want = plain(forest, &rows, 5);
            assert!(out
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        // Pieces that do not belong to the forest's trees are refused, not walked.
        let wrong = vec![CompiledTree::new(&pure.trees[0], 5, 3)];
        assert!(CompiledForest::from_trees(&pure, wrong).is_none());
        let mut malformed = pure.clone();
        malformed.trees[2].nodes[0].right = 0;
        assert!(CompiledTree::new(&malformed.trees[2], 5, 3).is_none());
    }

    /// A tree of two classes from each node's children (`None` for a leaf; leaves take rows
    /// in node order and alternate between the classes), with every node's sample count 1.
    fn hand_made(children: &[Option<(u32, u32)>]) -> Tree {
        let mut leaves = 0u32;
        let mut leaf_values = Vec::new();
        let nodes = children
            .iter()
            .map(|c| match *c {
                Some((left, right)) => Node::split(0, 0.5, left, right, false),
                None => {
                    leaf_values.extend(if leaves.is_multiple_of(2) {
                        [1.0, 0.0]
                    } else {
                        [0.0, 1.0]
                    });
                    leaves += 1;
                    Node::leaf(leaves - 1)
                }
            })
            .collect::<Vec<_>>();
        let n = nodes.len();
        Tree {
            n_classes: 2,
            nodes,
            leaf_values,
            stats: NodeStats {
                impurity: vec![0.0; n],
                n_samples: vec![1; n],
                weighted_n_samples: vec![1.0; n],
            },
        }
    }

    /// Trees whose first splits look like preorder but which are not (unreachable nodes, a
    /// node reached twice, a leaf where a larger subtree should be): the one-pass layout must
    /// notice and leave them to the walk, so both give the same answer, layout or refusal.
    #[test]
    fn irregular_trees_compile_as_the_walk_compiles_them() {
        let cases: &[&[Option<(u32, u32)>]] = &[
            // Valid preorder, for contrast.
            &[Some((1, 4)), Some((2, 3)), None, None, None],
            // Nodes 2 and 4 unreachable: node 1's subtree should run to node 3.
            &[Some((1, 3)), None, None, None, None],
            // Node 3 reached from both node 0 and node 1.
            &[Some((1, 3)), Some((2, 3)), None, None, None],
            // Preorder by every split's own children, but node 2's subtree is cut short.
            &[
                Some((1, 6)),
                Some((2, 5)),
                Some((3, 4)),
                None,
                None,
                None,
                None,
            ],
            &[
                Some((1, 5)),
                Some((2, 3)),
                None,
                Some((4, 5)),
                None,
                None,
                None,
            ],
        ];
        for (k, children) in cases.iter().enumerate() {
            let tree = hand_made(children);
            for mode in [LeafMode::Votes, LeafMode::Table] {
                assert_eq!(
                    compile_tree(&tree, 1, 2, mode),
                    compile_by_walk(&tree, 1, 2, mode),
                    "case {k}, {mode:?}"
                );
            }
        }
    }

    /// The same tree with every split's right subtree stored before its left one: a valid
    /// tree, but not in the preorder `compile_preordered` takes.
    fn right_first(tree: &Tree) -> Tree {
        let mut out = tree.clone();
        out.nodes.clear();
        let mut stats = tree.stats.clone();
        stats.n_samples.clear();
        stats.impurity.clear();
        stats.weighted_n_samples.clear();
        // (original node, new parent, whether it is the parent's left child)
        let mut stack = vec![(0usize, None::<(usize, bool)>)];
        while let Some((i, parent)) = stack.pop() {
            let id = out.nodes.len() as u32;
            if let Some((p, is_left)) = parent {
                if is_left {
                    out.nodes[p].left = id;
                } else {
                    out.nodes[p].right = id;
                }
            }
            out.nodes.push(tree.nodes[i]);
            stats.n_samples.push(tree.stats.n_samples[i]);
            stats.impurity.push(tree.stats.impurity[i]);
            stats
                .weighted_n_samples
                .push(tree.stats.weighted_n_samples[i]);
            let node = tree.nodes[i];
            if !node.is_leaf() {
                let p = id as usize;
                stack.push((node.left as usize, Some((p, true))));
                stack.push((node.right as usize, Some((p, false))));
            }
        }
        out.stats = stats;
        out
    }

    /// The one-pass layout of a preorder tree is the walk's, node for node, in both leaf
    /// modes; a tree in another order takes the walk and still predicts the same.
    #[test]
    fn preordered_trees_are_laid_out_as_the_walk_lays_them_out() {
        let mut compared = 0;
        for (case, classes) in [2u32, 3, 5].into_iter().enumerate() {
            let (x, y) = noisy(700, 5, classes, case as u64 + 3);
            let rows: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            for max_depth in [None, Some(4)] {
                let params = ForestParams {
                    n_estimators: 6,
                    max_depth,
                    ..Default::default()
                };
                let forest = Forest::fit(x.view(), &y, classes as usize, None, &params, 2).unwrap();
                let c = classes as usize;
                for tree in &forest.trees {
                    for mode in [LeafMode::Votes, LeafMode::Table] {
                        let fast = compile_preordered(tree, 5, c, mode).expect("in preorder");
                        assert_eq!(fast, compile_by_walk(tree, 5, c, mode));
                        compared += 1;
                    }
                    let reordered = right_first(tree);
                    if reordered.nodes.len() > 1 {
                        assert!(compile_preordered(&reordered, 5, c, LeafMode::Table).is_none());
                    }
                }
                let mut other = forest.clone();
                other.trees = forest.trees.iter().map(right_first).collect();
                let compiled = CompiledForest::new(&other).unwrap();
                let mut out = vec![0.0; 700 * c];
                compiled.predict_proba_into(&rows, &mut out, 1.0 / other.trees.len() as f64);
                let want = plain(&forest, &rows, 5);
                assert!(out
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
        assert!(compared >= 60, "{compared}");
    }

    /// A chunk without NaN skips the missing-value rule; on a forest whose splits learned both
    /// directions for missing values, such chunks, chunks with NaN and a mix of both predict
    /// exactly what the plain walk predicts.
    #[test]
    fn chunks_with_and_without_missing_values_agree_with_the_plain_walk() {
        let (x, y) = noisy(1_200, 5, 3, 21);
        let params = ForestParams {
            n_estimators: 10,
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, 3, None, &params, 2).unwrap();
        let directions: Vec<bool> = forest
            .trees
            .iter()
            .flat_map(|t| {
                t.nodes
                    .iter()
                    .filter(|n| !n.is_leaf())
                    .map(|n| n.missing_left())
            })
            .collect();
        assert!(directions.contains(&true) && directions.contains(&false));
        let compiled = CompiledForest::new(&forest).unwrap();
        let all: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let complete: Vec<f32> = all
            .chunks_exact(5)
            .filter(|r| !r.iter().any(|v| v.is_nan()))
            .flatten()
            .copied()
            .collect();
        let missing: Vec<f32> = all
            .chunks_exact(5)
            .filter(|r| r.iter().any(|v| v.is_nan()))
            .flatten()
            .copied()
            .collect();
        assert!(complete.len() >= 500 * 5 && missing.len() >= 100 * 5);
        for rows in [&complete, &missing, &all] {
            let n = rows.len() / 5;
            let mut out = vec![0.0; n * 3];
            compiled.predict_proba_into(rows, &mut out, 1.0 / 10.0);
            let want = plain(&forest, rows, 5);
            assert!(out
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let mut leaves = vec![0i64; n * 10];
            compiled.apply_into(rows, &mut leaves);
            for (r, row) in rows.chunks_exact(5).enumerate() {
                for (k, tree) in forest.trees.iter().enumerate() {
                    assert_eq!(leaves[r * 10 + k], tree.leaf_of(row) as i64);
                }
            }
        }
    }

    /// Vote leaves carry their class in the payload beside their ordinal: with 37 classes
    /// (6 bits of class) a fully grown forest still votes, and bit-identically.
    #[test]
    fn many_classes_share_the_leaf_payload_with_the_ordinal() {
        let (x, y) = noisy(1_500, 5, 37, 4);
        let params = ForestParams {
            n_estimators: 6,
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, 37, None, &params, 2).unwrap();
        let compiled = CompiledForest::new(&forest).unwrap();
        assert!(compiled.uses_votes());
        let rows: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut out = vec![0.0; 1_500 * 37];
        compiled.predict_proba_into(&rows, &mut out, 1.0 / 6.0);
        assert!(out
            .iter()
            .zip(&plain(&forest, &rows, 5))
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn a_leaf_is_pure_only_with_exactly_one_one_and_zeros_elsewhere() {
        assert_eq!(pure_class(&[0.0, 1.0, 0.0]), Some(1));
        assert_eq!(pure_class(&[1.0]), Some(0));
        assert_eq!(pure_class(&[-0.0, 0.0, 0.0, 1.0]), Some(3));
        for impure in [
            &[1.0, 1.0][..],
            &[0.5, 0.5],
            &[0.0, 0.0],
            &[f32::NAN, 1.0],
            &[1.0, 1e-30],
            &[],
        ] {
            assert_eq!(pure_class(impure), None, "{impure:?}");
        }
    }

    #[test]
    fn a_leaf_payload_holds_ordinal_and_class_or_is_refused() {
        use super::super::layout::LEAF_BIT;
        assert_eq!(class_bits(1), 0);
        assert_eq!(class_bits(2), 1);
        assert_eq!(class_bits(5), 3);
        assert_eq!(class_bits(8), 3);
        assert_eq!(class_bits(9), 4);
        assert_eq!(leaf_reference(6, 4, 3), Some(LEAF_BIT | (6 << 3) | 4));
        assert_eq!(leaf_reference(0, 0, 0), Some(LEAF_BIT));
        // 2^28 leaves of 8 classes fill the 31 bits; one more does not fit.
        assert_eq!(
            leaf_reference((1 << 28) - 1, 7, 3),
            Some(LEAF_BIT | ((1 << 31) - 1))
        );
        assert_eq!(leaf_reference(1 << 28, 0, 3), None);
    }

    #[test]
    fn nan_follows_each_splits_learned_direction() {
        // Class 1 where column 0 is missing or small: a split on column 0 must send missing
        // values left, with the small ones, and rows with NaN must follow it through the layout.
        let n = 400;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| {
            if j == 0 && i % 3 == 0 {
                f64::NAN
            } else {
                (i % 11) as f64
            }
        });
        let y: Vec<u32> = (0..n)
            .map(|i| u32::from(i % 3 == 0 || i % 11 <= 2))
            .collect();
        let params = ForestParams {
            n_estimators: 5,
            bootstrap: false,
            max_features: MaxFeatures::Count(2),
            ..Default::default()
        };
        let forest = Forest::fit(x.view(), &y, 2, None, &params, 1).unwrap();
        let compiled = CompiledForest::new(&forest).unwrap();
        let rows: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut out = vec![0.0; n * 2];
        compiled.predict_proba_into(&rows, &mut out, 1.0 / 5.0);
        for (i, p) in out.chunks_exact(2).enumerate() {
            let want = i % 3 == 0 || i % 11 <= 2;
            assert_eq!(p[1], if want { 1.0 } else { 0.0 }, "row {i}");
        }
        assert_eq!(out, plain(&forest, &rows, 2));
    }
}
