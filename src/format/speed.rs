//! Where `decode` and `encode` spend their time on a large model file, phase by phase:
//! `WOODLOT_SPEED_FILE=model.wdl cargo test --release --lib format::speed -- --ignored --nocapture`
//! (without the variable it fits a forest of its own). Figures only, no timed assertions.

use std::time::Instant;

use super::header::Header;
use super::meta::ModelMeta;
use super::{
    decode, decode_for_prediction, encode, encode_valid, file_checksum, payload, validate_forest,
    ValidForest,
};
use crate::forest::{Forest, ForestParams, Predictor};

/// Best of `runs` wall times of `f`, in milliseconds.
fn best_ms(runs: usize, f: &mut dyn FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best * 1e3
}

/// The model file to time: the one named by `WOODLOT_SPEED_FILE`, or a fitted forest's.
fn model_file() -> Vec<u8> {
    if let Ok(path) = std::env::var("WOODLOT_SPEED_FILE") {
        return std::fs::read(path).expect("WOODLOT_SPEED_FILE is readable");
    }
    let (n, f) = (20_000, 20);
    let x = ndarray::Array2::from_shape_fn((n, f), |(i, j)| {
        ((i * 2_654_435_761 + j * 40_503) % 1_000) as f64 / 10.0
    });
    let y: Vec<u32> = (0..n).map(|i| ((i * 7) % 5) as u32).collect();
    let params = ForestParams {
        n_estimators: 20,
        random_state: 1,
        ..ForestParams::default()
    };
    let forest = Forest::fit(x.view(), &y, 5, None, &params, 2).unwrap();
    encode(&forest, &serde_json::json!({})).unwrap()
}

#[test]
#[ignore]
fn load_and_save_phases() {
    let bytes = model_file();
    let runs = 9;
    let header = Header::parse(&bytes).unwrap();
    let (meta_bytes, payload_bytes) = header.sections(&bytes).unwrap();
    println!(
        "file {:.1} MB (meta {} B, payload {} B)",
        bytes.len() as f64 / 1e6,
        meta_bytes.len(),
        payload_bytes.len()
    );
    let checksum = best_ms(runs, &mut || {
        file_checksum(&bytes).unwrap();
    });
    let meta = best_ms(runs, &mut || {
        ModelMeta::from_json(meta_bytes).unwrap();
    });
    let payload = best_ms(runs, &mut || {
        payload::decode_payload(payload_bytes, bytes.len()).unwrap();
    });
    let (forest, model_meta) = decode(&bytes).unwrap();
    let validate = best_ms(runs, &mut || validate_forest(&forest).unwrap());
    let forest = std::sync::Arc::new(forest);
    let layout = best_ms(runs, &mut || {
        Predictor::new(std::sync::Arc::clone(&forest));
    });
    let whole = best_ms(runs, &mut || {
        decode(&bytes).unwrap();
    });
    let load = best_ms(runs, &mut || {
        let (f, _) = decode(&bytes).unwrap();
        Predictor::new(f);
    });
    let fused = best_ms(runs, &mut || {
        decode_for_prediction(&bytes).unwrap();
    });
    println!(
        "load: checksum {checksum:.1} ms, meta {meta:.1} ms, payload {payload:.1} ms, \
         validate {validate:.1} ms, layout {layout:.1} ms; decode {whole:.1} ms, \
         decode + layout {load:.1} ms, decode_for_prediction (each tree decoded, validated \
         and compiled in one task) {fused:.1} ms"
    );
    let est = model_meta.estimator.clone();
    let check = best_ms(runs, &mut || validate_forest(&forest).unwrap());
    let meta_json = best_ms(runs, &mut || {
        ModelMeta::for_forest(&forest, &est)
            .unwrap()
            .to_json()
            .unwrap();
    });
    let payload = best_ms(runs, &mut || {
        payload::encode_payload(&forest).unwrap();
    });
    let seal = best_ms(runs, &mut || {
        file_checksum(&bytes).unwrap();
    });
    let whole = best_ms(runs, &mut || {
        encode(&forest, &est).unwrap();
    });
    let valid = ValidForest::check(std::sync::Arc::clone(&forest)).unwrap();
    let known_valid = best_ms(runs, &mut || {
        encode_valid(&valid, &est).unwrap();
    });
    println!(
        "save: validate {check:.1} ms, meta {meta_json:.1} ms, payload {payload:.1} ms, \
         checksum {seal:.1} ms; encode {whole:.1} ms, encode_valid (known valid) \
         {known_valid:.1} ms"
    );
}
