//! Test fixtures for the format module: a small hand-built forest and helpers that craft
//! hostile files with a valid checksum.

use crate::forest::{FitInfo, Forest, ForestParams, OobEstimate};
use crate::tree::{Node, NodeStats, Tree};

/// A fingerprint string the hostile-payload tests can find in the encoded payload.
pub const FINGERPRINT: &str = "blake3:fingerprint-marker-0123456789";

fn split(feature: u32, threshold: f32, left: u32, right: u32) -> Node {
    Node::split(feature, threshold, left, right, true)
}

fn leaf(row: u32) -> Node {
    Node::leaf(row)
}

fn stats(impurity: &[f32], n_samples: &[u32], weighted: &[f32]) -> NodeStats {
    NodeStats {
        impurity: impurity.to_vec(),
        n_samples: n_samples.to_vec(),
        weighted_n_samples: weighted.to_vec(),
    }
}

/// A valid forest: 3 features, 3 classes, two trees.
///
/// Tree 0: node 0 splits on feature 0 into leaf 1 (row 0) and node 2, which splits on feature 2
/// (threshold `+inf`) into leaves 3 (row 1) and 4 (row 2). Tree 1 is a lone leaf.
pub fn sample_forest() -> Forest {
    let tree0 = Tree {
        n_classes: 3,
        nodes: vec![
            split(0, 0.5, 1, 2),
            leaf(0),
            split(2, f32::INFINITY, 3, 4),
            leaf(1),
            leaf(2),
        ],
        leaf_values: vec![1.0, 0.0, 0.0, 0.25, 0.5, 0.25, 0.0, 0.0, 1.0],
        stats: stats(
            &[0.66, 0.0, 0.5, 0.625, 0.0],
            &[4, 1, 3, 2, 1],
            &[6.0, 2.0, 4.0, 3.0, 1.0],
        ),
    };
    let tree1 = Tree {
        n_classes: 3,
        nodes: vec![leaf(0)],
        leaf_values: vec![0.2, 0.3, 0.5],
        stats: stats(&[0.62], &[4], &[4.0]),
    };
    Forest {
        n_features: 3,
        n_classes: 3,
        output_classes: Vec::new(),
        params: ForestParams {
            n_estimators: 2,
            oob_score: true,
            random_state: 42,
            ..ForestParams::default()
        },
        trees: vec![tree0, tree1],
        oob: Some(OobEstimate {
            score: 0.75,
            n_samples: 4,
            decision_function: vec![1.0, 0.0, 0.0, 0.2, 0.3, 0.5, 0.0, 0.0, 0.0, 0.5, 0.25, 0.25],
        }),
        fit_info: FitInfo {
            training_fingerprint: FINGERPRINT.to_string(),
            n_samples: 4,
            fit_seconds: 0.125,
        },
        training_histogram: None,
    }
}

/// A valid complete tree of the given depth in depth-first preorder, over 3 features, with
/// every threshold, statistic and leaf row distinct (so every column is stored raw).
pub fn balanced_tree(depth: u32, n_classes: u32) -> Tree {
    fn grow(t: &mut Tree, depth: u32) -> u32 {
        let id = t.nodes.len() as u32;
        let k = id as f32;
        t.stats.impurity.push(0.001 * k + 0.5);
        t.stats.n_samples.push(id * 3 + 1);
        t.stats.weighted_n_samples.push(0.25 * k + 0.125);
        if depth == 0 {
            let row = (t.leaf_values.len() / t.n_classes as usize) as u32;
            let c = t.n_classes as usize;
            let first = if c == 1 { 1.0 } else { 1.0 / (2.0 + k) };
            t.leaf_values.push(first);
            for j in 1..c {
                let rest = (1.0 - first) / (c - 1) as f32;
                t.leaf_values.push(if j + 1 == c {
                    1.0 - first - rest * (c - 2) as f32
                } else {
                    rest
                });
            }
            t.nodes.push(leaf(row));
        } else {
            t.nodes.push(Node::split(
                id % 3,
                k * 0.37 + 0.001,
                id + 1,
                0,
                id.is_multiple_of(2),
            ));
            grow(t, depth - 1);
            let right = grow(t, depth - 1);
            t.nodes[id as usize].right = right;
        }
        id
    }
    let mut t = Tree {
        n_classes,
        nodes: Vec::new(),
        leaf_values: Vec::new(),
        stats: NodeStats::default(),
    };
    grow(&mut t, depth);
    t
}

/// The Python face of the sample forest, as the estimator would record it.
pub fn estimator() -> serde_json::Value {
    serde_json::json!({
        "classes": ["barolo", "grignolino", "barbera"],
        "classes_dtype": "<U10",
        "feature_names_in": ["alcohol", "malic_acid", "ash"],
        "params": {"n_estimators": 2, "max_depth": null, "min_weight_fraction_leaf": 0.0,
                   "max_features": "sqrt", "ccp_alpha": 0.1},
    })
}

/// Recomputes the checksum of a (possibly tampered) file in place, so tests reach the checks
/// behind it.
pub fn reseal(bytes: &mut [u8]) {
    super::header::seal(bytes).expect("file shorter than the header");
}

/// Offsets of the sections of a well-formed file: (meta start, payload start).
pub fn sections(bytes: &[u8]) -> (usize, usize) {
    let h = super::Header::parse(bytes).expect("well-formed file");
    (64, 64 + h.meta_len as usize)
}

/// A model file of the given sections, with a correct header and checksum (the meta and
/// payload may be anything).
pub fn assemble(meta: &[u8], payload: &[u8]) -> Vec<u8> {
    let header = super::Header::new(meta.len() as u64, payload.len() as u64);
    let mut file = header.to_bytes().to_vec();
    file.extend_from_slice(meta);
    file.extend_from_slice(payload);
    reseal(&mut file);
    file
}

/// Runs `f` and returns its result with the largest single allocation it requested on this
/// thread (the test allocator tracks requests per thread, so parallel tests do not interfere).
pub fn largest_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST_REQUEST.with(|c| c.set(0));
    let out = f();
    (out, LARGEST_REQUEST.with(|c| c.get()))
}

/// Runs `f` and returns its result with the most bytes it held allocated at once on this
/// thread (requested sizes, net of what it freed; `f` must run on this thread alone, as the
/// decoder does).
pub fn peak_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
    let out = f();
    (out, PEAK.with(|c| c.get()).max(0) as usize)
}

thread_local! {
    static LARGEST_REQUEST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    static LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
    static PEAK: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

/// The system allocator, noting the largest request and the live bytes per thread. It only
/// observes: the lib's test binary behaves exactly as with the default allocator (`System`).
struct Tracking;

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping touches only
// const-initialised thread-local `Cell`s, which never allocate.
unsafe impl std::alloc::GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        live(layout.size() as isize);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        live(layout.size() as isize);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        live(-(layout.size() as isize));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        live(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = LARGEST_REQUEST.try_with(|c| {
        if size > c.get() {
            c.set(size);
        }
    });
}

fn live(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get().saturating_add(delta);
        l.set(now);
        let _ = PEAK.try_with(|p| {
            if now > p.get() {
                p.set(now);
            }
        });
    });
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;
