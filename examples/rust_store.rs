//! woodlot from Rust: fit a forest, keep it in a version store, promote it, load the active
//! version back and serve predictions from it.
//!
//! `cargo run --example rust_store` (on a fresh temporary directory, removed at the end).
//! `ForestParams` -> `Forest::fit` -> `format::encode` (the checksummed model file) ->
//! `Store::save` (an immutable version, probes predicted) -> `Store::promote` (probes replayed
//! first) -> `Store::read_model` (checked) -> `format::decode` -> `Predictor` (the serving fast
//! path) -> `predict_proba`.

use std::error::Error;

use ndarray::Array2;
use woodlot::forest::{ForestParams, MaxFeatures, Predictor};
use woodlot::format;
use woodlot::rng::Rng;
use woodlot::store::{Ref, SaveOptions, Store};
use woodlot::Forest;

/// Two classes: whether the first two features sum past 1, with some label noise.
fn data(n: usize, seed: u64) -> (Array2<f64>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let x = Array2::from_shape_fn((n, 4), |_| rng.unit_f64());
    let y = x
        .rows()
        .into_iter()
        .map(|r| u32::from(r[0] + r[1] > 1.0) ^ u32::from(rng.unit_f64() < 0.05))
        .collect();
    (x, y)
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::temp_dir().join(format!("woodlot-rust-store-{}", std::process::id()));
    let result = run(&dir);
    // Best effort: the example leaves nothing behind, whatever happened.
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(dir: &std::path::Path) -> Result<(), Box<dyn Error>> {
    let (x, y) = data(2_000, 1);
    let (x_test, y_test) = data(5_000, 2);

    // 1. Fit: scikit-learn's hyperparameters, by name; 2 threads (results are identical for
    //    every thread count).
    let params = ForestParams {
        n_estimators: 50,
        max_depth: Some(8),
        max_features: MaxFeatures::Sqrt,
        random_state: 42,
        ..ForestParams::default()
    };
    let forest = Forest::fit(x.view(), &y, 2, None, &params, 2)?;
    println!(
        "fitted {} trees on {} rows in {:.2} s",
        forest.trees.len(),
        forest.fit_info.n_samples,
        forest.fit_info.fit_seconds
    );

    // 2. The model file. The estimator description is opaque to the core; `classes` lets the
    //    store's `compare` map class codes to labels.
    let estimator = serde_json::json!({"classes": [0, 1], "note": "fitted from Rust"});
    let model = format::encode(&forest, &estimator)?;

    // 3. Save it as a version and promote it (the store replays its probes before it moves).
    let store = Store::open(dir)?;
    let saved = store.save(
        &model,
        SaveOptions {
            description: Some("50 trees, depth 8".into()),
            ..SaveOptions::default()
        },
    )?;
    println!(
        "saved v{} ({} bytes) in {}",
        saved.version,
        model.len(),
        store.location()
    );
    let (active, _event) = store.promote(
        &Ref::Number(saved.version),
        Some("first deployment".into()),
        None,
    )?;
    println!("active: v{}", active.version);

    // 4. Serve: load the active version (checksum and probes verified) and predict through the
    //    Predictor, which compiles the forest once for large batches.
    let (_manifest, bytes) = store.read_model(&Ref::Active, true)?;
    let (loaded, _meta) = format::decode(&bytes)?;
    assert_eq!(
        loaded, forest,
        "the store gives back the very forest that was saved"
    );
    let predictor = Predictor::new(loaded);
    let proba = predictor.predict_proba(x_test.view(), 2)?;
    let labels = predictor.predict(x_test.view(), 2)?;
    let accuracy =
        labels.iter().zip(&y_test).filter(|(p, t)| p == t).count() as f64 / y_test.len() as f64;
    println!(
        "P(class 1) of the first test row: {:.3}; test accuracy on {} rows: {accuracy:.3}",
        proba[[0, 1]],
        y_test.len()
    );
    if accuracy < 0.85 {
        return Err(format!("accuracy {accuracy} is far below what this data allows").into());
    }
    Ok(())
}
