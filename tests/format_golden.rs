//! The model file's bytes are frozen: encoding a fixed forest gives the same bytes as the
//! format 2.0 encoder did when the format was last changed on purpose.
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
    check(&fitted(&params, 300, 6, 3, 1), golden_default());
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
    check(&fitted(&params, 500, 40, 3, 2), golden_rich());
}

/// As written by the format 2.0 encoder.
fn golden_rich() -> Golden {
    Golden {
        header: HEADER.to_vec(),
        meta: "0c6a39673903039e7d880be0ef593aa48989553a0fd41debdf39637cad37b654".into(),
        payload_len: 12899,
        payload: "318365b758b60cfbfab979aa56a6c0c153ea5032cb77907e8c13d2131beb23a8".into(),
    }
}

fn golden_default() -> Golden {
    Golden {
        header: HEADER.to_vec(),
        meta: "20b255950c513e360c0c5c03296625027e2ba2039de2e35fd614f1300e828587".into(),
        payload_len: 2231,
        payload: "8ed7a68c748b8cd5d3b1f95c935bcce394dcfda79c5a93ef3bde617fb40c7a09".into(),
    }
}

/// Magic, then format 2.0 with no flags.
const HEADER: [u8; 16] = [
    0x89, b'W', b'D', b'L', b'\r', b'\n', 0x1a, b'\n', 2, 0, 0, 0, 0, 0, 0, 0,
];
