//! The model file's bytes are frozen: encoding a fixed forest gives the same bytes as the
//! format 2.1 encoder did when the format was last changed on purpose (2.1 added the training
//! histogram to the meta; the payloads are 2.0's byte for byte), and a file the 2.0 encoder
//! wrote still loads.
//!
//! The file format is a contract with every file already written (on disk, in stores, in
//! pickles). Refactoring the encoder must not move a single byte, and a deliberate change
//! must bump the format version and this digest together. The forests here are fitted with
//! fixed seeds (bit-identical on every platform and thread count) and exercise every column
//! mode: raw, dictionary and integer `f32` columns, bit arrays of several widths, out-of-bag
//! estimates, per-class weights and NaN-aware splits.

use ndarray::Array2;
use woodlot::forest::{ClassWeight, Criterion, Forest, ForestParams, MaxFeatures, SizeSpec};
use woodlot::format::{decode, digest_hex, encode, Header};
use woodlot::rng::Rng;

/// Deterministic data: `n` rows, `f` features (some NaN), `c` classes.
fn data(n: usize, f: usize, c: u32, seed: u64) -> (Array2<f64>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let mut x = Array2::zeros((n, f));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i as u32) % c;
        for j in 0..f {
            let v = rng.unit_f64() + if j < 2 { f64::from(class) } else { 0.0 };
            x[[i, j]] = if j == 3 && i % 7 == 0 { f64::NAN } else { v };
        }
        y.push(class);
    }
    (x, y)
}

/// A fitted forest with its one wall-clock fact fixed.
fn fitted(params: &ForestParams, n: usize, f: usize, c: u32, seed: u64) -> Forest {
    let (x, y) = data(n, f, c, seed);
    let mut forest = Forest::fit(x.view(), &y, c as usize, None, params, 2).unwrap();
    forest.fit_info.fit_seconds = 0.125;
    forest
}

fn estimator() -> serde_json::Value {
    serde_json::json!({"classes": [0, 1, 2], "feature_names": null, "note": "golden"})
}

/// Encodes, checks the bytes against the frozen digests, and that they decode to the forest.
///
/// The payload is compared whole; the meta JSON with its `library_version` blanked (the only
/// field that changes with a release), and the 64-byte header by its fixed fields.
fn check(forest: &Forest, golden: Golden) {
    let bytes = encode(forest, &estimator()).unwrap();
    let header = Header::parse(&bytes).unwrap();
    let (meta, payload) = header.sections(&bytes).unwrap();
    let version = format!("\"library_version\":\"{}\"", env!("CARGO_PKG_VERSION"));
    let meta = String::from_utf8(meta.to_vec()).unwrap().replacen(
        &version,
        "\"library_version\":\"-\"",
        1,
    );
    let got = Golden {
        header: [&bytes[..8], &bytes[8..16]].concat(),
        meta: digest_hex(meta.as_bytes()),
        payload_len: payload.len(),
        payload: digest_hex(payload),
    };
    assert_eq!(
        got, golden,
        "the model file's bytes changed: a format change must bump the format version"
    );
    let (back, _) = decode(&bytes).unwrap();
    assert_eq!(&back, forest);
}

#[derive(Debug, PartialEq)]
struct Golden {
    /// Magic and version words.
    header: Vec<u8>,
    /// BLAKE3 of the meta JSON with `library_version` blanked.
    meta: String,
    payload_len: usize,
    /// BLAKE3 of the payload.
    payload: String,
}

#[test]
fn default_forest_bytes_are_frozen() {
    let params = ForestParams {
        n_estimators: 12,
        random_state: 7,
        ..Default::default()
    };
    let forest = fitted(&params, 300, 6, 3, 1);
    check(&forest, golden_default());
    check(&without_histogram(forest), golden_default_2_0());
}

#[test]
fn forest_with_every_kind_of_field_bytes_are_frozen() {
    let params = ForestParams {
        n_estimators: 9,
        criterion: Criterion::Entropy,
        max_depth: Some(6),
        min_samples_leaf: SizeSpec::Count(2),
        max_features: MaxFeatures::Fraction(0.5),
        oob_score: true,
        random_state: 99,
        class_weight: ClassWeight::PerClass(vec![1.0, 2.0, 0.5]),
        max_samples: Some(SizeSpec::Fraction(0.8)),
        ..Default::default()
    };
    let forest = fitted(&params, 500, 40, 3, 2);
    check(&forest, golden_rich());
    check(&without_histogram(forest), golden_rich_2_0());
}

/// The forest without its training histogram: its meta is byte-identical to 2.0's (the field
/// is omitted), so only the header's minor version differs from a 2.0 file.
fn without_histogram(mut forest: Forest) -> Forest {
    forest.training_histogram = None;
    forest
}

/// As written by the format 2.1 encoder (the payloads unchanged since 2.0).
fn golden_rich() -> Golden {
    Golden {
        header: HEADER.to_vec(),
        meta: "14364089525d16ccb412c140b1a70dba84d986f4133fe40ae00c3ce58123e816".into(),
        ..golden_rich_2_0()
    }
}

/// As written by the format 2.0 encoder (which had no histogram).
fn golden_rich_2_0() -> Golden {
    Golden {
        header: HEADER.to_vec(),
        meta: "0c6a39673903039e7d880be0ef593aa48989553a0fd41debdf39637cad37b654".into(),
        payload_len: 12899,
        payload: "318365b758b60cfbfab979aa56a6c0c153ea5032cb77907e8c13d2131beb23a8".into(),
    }
}

fn golden_default() -> Golden {
    Golden {
        meta: "cb9e7e443aa7bcaaeebeb0484fa987d42aa66781ba66db88bdd15a8bf2a9b014".into(),
        ..golden_default_2_0()
    }
}

fn golden_default_2_0() -> Golden {
    Golden {
        header: HEADER.to_vec(),
        meta: "20b255950c513e360c0c5c03296625027e2ba2039de2e35fd614f1300e828587".into(),
        payload_len: 2231,
        payload: "8ed7a68c748b8cd5d3b1f95c935bcce394dcfda79c5a93ef3bde617fb40c7a09".into(),
    }
}

/// Magic, then format 2.1 with no flags.
const HEADER: [u8; 16] = [
    0x89, b'W', b'D', b'L', b'\r', b'\n', 0x1a, b'\n', 2, 0, 1, 0, 0, 0, 0, 0,
];

/// A model file `woodlot.dump` wrote before format 2.1 (3 trees of depth 3 on scikit-learn's
/// wine data): it loads, without a training histogram, and re-encodes to the same sections
/// under a 2.1 header.
#[test]
fn a_format_2_0_file_still_loads_without_a_histogram() {
    let old: &[u8] = include_bytes!("data/model-format-2.0.wdl");
    let header = Header::parse(old).unwrap();
    assert_eq!((header.major, header.minor), (2, 0));
    let (forest, meta) = decode(old).unwrap();
    assert_eq!((forest.n_features, forest.trees.len()), (13, 3));
    assert!(forest.training_histogram.is_none() && meta.training_histogram.is_none());
    let again = encode(&forest, &meta.estimator).unwrap();
    let new_header = Header::parse(&again).unwrap();
    assert_eq!((new_header.major, new_header.minor), (2, 1));
    assert_eq!(
        header.sections(old).unwrap(),
        new_header.sections(&again).unwrap()
    );
}

#[test]
fn fitted_forests_carry_their_training_histogram() {
    let params = ForestParams {
        n_estimators: 2,
        random_state: 7,
        ..Default::default()
    };
    let forest = fitted(&params, 300, 6, 3, 1);
    let h = forest.training_histogram.as_ref().unwrap();
    assert_eq!((h.rows, h.edges.len()), (300, 6));
    // Feature 3 has a missing value in every seventh row (see `data`).
    assert_eq!(h.missing, vec![0, 0, 0, 43, 0, 0]);
    let bytes = encode(&forest, &estimator()).unwrap();
    assert_eq!(
        decode(&bytes).unwrap().0.training_histogram.as_ref(),
        Some(h)
    );
}
