//! Multi-output forests in the model file: the meta's `output_classes` round-trips, files
//! without it load as single output, and what does not add up is refused.

use ndarray::Array2;
use serde_json::json;

use super::{
    decode, decode_for_prediction, encode, file_checksum, validate_forest, FLAG_MULTI_OUTPUT,
};
use crate::forest::{Forest, ForestParams};
use crate::format::testutil::{assemble, reseal, sections};
use crate::rng::Rng;

/// 200 rows of 3 features; output 0 is which third feature 0 falls in (3 classes), output 1
/// whether feature 1 is above one half (2 classes).
fn multi_output_forest() -> (Forest, Array2<f64>) {
    let mut rng = Rng::new(11);
    let x = Array2::from_shape_fn((200, 3), |_| rng.unit_f64());
    let y: Vec<u32> = x
        .rows()
        .into_iter()
        .flat_map(|r| [(r[0] * 3.0) as u32 % 3, u32::from(r[1] > 0.5)])
        .collect();
    let params = ForestParams {
        n_estimators: 8,
        oob_score: true,
        ..Default::default()
    };
    let forest = Forest::fit_outputs(None, x.view(), &y, &[3, 2], None, &params, 1, None).unwrap();
    (forest, x)
}

#[test]
fn a_multi_output_forest_round_trips_with_identical_predictions() {
    let (forest, x) = multi_output_forest();
    let bytes = encode(&forest, &json!({"classes": [[0, 1, 2], [false, true]]})).unwrap();
    let (back, meta) = decode(&bytes).unwrap();
    assert_eq!(meta.output_classes, vec![3, 2]);
    assert_eq!(back, forest);
    let (a, b) = (
        forest.predict_proba(x.view(), 1).unwrap(),
        back.predict_proba(x.view(), 1).unwrap(),
    );
    assert_eq!(a, b);
}

#[test]
fn a_single_output_meta_has_no_output_classes() {
    let mut rng = Rng::new(3);
    let x = Array2::from_shape_fn((50, 2), |_| rng.unit_f64());
    let y: Vec<u32> = x.column(0).iter().map(|&v| u32::from(v > 0.5)).collect();
    let forest = Forest::fit(x.view(), &y, 2, None, &ForestParams::default(), 1).unwrap();
    let bytes = encode(&forest, &json!({})).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("output_classes"));
    assert!(decode(&bytes).unwrap().0.output_classes.is_empty());
}

#[test]
fn output_classes_that_do_not_add_up_are_refused() {
    let (forest, _) = multi_output_forest();
    let reason = |f: &Forest| validate_forest(f).unwrap_err().to_string();
    let mut f = forest.clone();
    f.output_classes = vec![3, 3];
    assert!(reason(&f).contains("sum to 6"), "{}", reason(&f));
    f.output_classes = vec![5];
    assert!(reason(&f).contains("one output"), "{}", reason(&f));
    f.output_classes = vec![5, 0];
    assert!(reason(&f).contains("without classes"), "{}", reason(&f));
    // Read as one output of 5 classes, every leaf row sums to 2.
    f.output_classes = Vec::new();
    assert!(reason(&f).contains("sum to 2"), "{}", reason(&f));
    // Outputs split where the fractions do not: output 0 of 2 classes no longer sums to 1.
    f.output_classes = vec![2, 3];
    assert!(reason(&f).contains("of output 0 sum to"), "{}", reason(&f));
}

#[test]
fn a_multi_output_file_sets_the_header_flag_and_it_must_agree_with_the_meta() {
    let (forest, _) = multi_output_forest();
    let mut bytes = encode(&forest, &json!({})).unwrap();
    let flags = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    assert_eq!(flags, FLAG_MULTI_OUTPUT);
    // Clearing the flag (and resealing the checksum) leaves a file whose meta disagrees.
    bytes[12..16].copy_from_slice(&0u32.to_le_bytes());
    let sum = file_checksum(&bytes).unwrap();
    bytes[32..64].copy_from_slice(&sum);
    let err = decode(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("multi-output flag is clear but the meta lists 2 outputs"),
        "{err}"
    );
}

#[test]
fn loading_for_prediction_checks_each_outputs_leaf_sums_as_decode_does() {
    let (forest, x) = multi_output_forest();
    let mut bytes = encode(&forest, &json!({})).unwrap();
    let loaded = decode_for_prediction(&bytes).unwrap();
    assert_eq!(loaded.meta.output_classes, vec![3, 2]);
    assert_eq!(
        loaded.predictor.predict_proba(x.view(), 1).unwrap(),
        forest.predict_proba(x.view(), 1).unwrap()
    );
    // The meta's outputs split where the leaf fractions do not ([2, 3] for [3, 2]), resealed:
    // the per-tree check inside the parallel decode refuses it with decode's own reason.
    let text = b"\"output_classes\":[3,2]";
    let at = bytes
        .windows(text.len())
        .position(|w| w == text)
        .expect("the meta lists the outputs");
    bytes[at + text.len() - 4..at + text.len() - 1].copy_from_slice(b"2,3");
    let sum = file_checksum(&bytes).unwrap();
    bytes[32..64].copy_from_slice(&sum);
    let by_decode = decode(&bytes).unwrap_err().to_string();
    assert!(by_decode.contains("of output 0 sum to"), "{by_decode}");
    assert_eq!(
        decode_for_prediction(&bytes).unwrap_err().to_string(),
        by_decode
    );
}

/// A leaf row that is pure over all the classes (one `1.0`) is a valid row of a one-output
/// forest but not of a multi-output one, where every output's part sums to 1. Loading for
/// prediction reads such a tree's rows once, to make class votes, and skips the leaf-row rule
/// only for one output: a one-output payload under a two-output meta must still be refused,
/// with decode's reason.
#[test]
fn pure_leaf_rows_under_a_multi_output_meta_are_refused_for_prediction_too() {
    let (_, x) = multi_output_forest();
    let y: Vec<u32> = x.column(0).iter().map(|&v| (v * 5.0) as u32 % 5).collect();
    let forest = Forest::fit(x.view(), &y, 5, None, &ForestParams::default(), 1).unwrap();
    let file = encode(&forest, &json!({})).unwrap();
    let (meta_at, payload_at) = sections(&file);
    let mut meta: serde_json::Value = serde_json::from_slice(&file[meta_at..payload_at]).unwrap();
    meta["output_classes"] = json!([3, 2]);
    let mut bytes = assemble(&serde_json::to_vec(&meta).unwrap(), &file[payload_at..]);
    bytes[12..16].copy_from_slice(&FLAG_MULTI_OUTPUT.to_le_bytes());
    reseal(&mut bytes);
    let by_decode = decode(&bytes).unwrap_err().to_string();
    assert!(by_decode.contains("sum to 0, not 1"), "{by_decode}");
    assert_eq!(
        decode_for_prediction(&bytes).unwrap_err().to_string(),
        by_decode
    );
}
