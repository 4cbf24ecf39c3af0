//! The meta section: a small UTF-8 JSON document describing the model.
//!
//! It is what a listing reads (`read_meta` skips the payload), and it carries the Python face
//! of the estimator (`estimator`: classes, their dtype, feature names, constructor params) that
//! the Rust core keeps opaque. Unknown fields are ignored, so a later minor version may add
//! fields without breaking older readers: format 2.1 added `training_histogram` (the
//! forest's [`TrainingHistogram`], present when the fit recorded one; absent in 2.0 files and for
//! converted forests), which the decoder hands to the forest and [`validate_forest`] checks;
//! `output_classes` (each output's class count, multi-output forests only) is handed over and
//! checked the same way.
//!
//! [`validate_forest`]: super::validate_forest

use serde::{Deserialize, Serialize};

use crate::error::{Result, WoodlotError};
use crate::forest::{FitInfo, Forest, TrainingHistogram};

/// The only model kind this version writes and reads.
pub const KIND: &str = "RandomForestClassifier";

/// The payload codec: a bincode 2 head (serde, little-endian, fixed-width integers), then the
/// trees as struct-of-arrays in depth-first preorder (format 2).
pub const CODEC: &str = "bincode2+soa-trees";

/// The JSON meta section of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Model kind, [`KIND`].
    pub kind: String,
    /// Payload codec, [`CODEC`].
    pub codec: String,
    /// Version of the woodlot that wrote the file.
    pub library_version: String,
    /// Number of input features (must equal the payload's).
    pub n_features: u32,
    /// Number of classes (must equal the payload's).
    pub n_classes: u32,
    /// Number of trees (must equal the payload's).
    pub n_trees: u32,
    /// Lineage facts recorded at fit.
    pub fit: FitInfo,
    /// The Python face of the estimator (classes, their dtype, feature names, params). Opaque to
    /// Rust, but always a JSON object.
    pub estimator: serde_json::Value,
    /// Each feature's histogram over the training rows (format 2.1; omitted when the forest
    /// has none, so such a file's meta is byte-identical to 2.0's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_histogram: Option<TrainingHistogram>,
    /// Class count of each output of a multi-output forest (summing to `n_classes`); omitted
    /// for a single output, so such a file's meta is unchanged. An older reader ignores it and
    /// then refuses the file, as each leaf row sums to the number of outputs, not 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_classes: Vec<u32>,
}

impl ModelMeta {
    /// The meta of `forest`, with the estimator's Python face `estimator` (a JSON object).
    pub fn for_forest(forest: &Forest, estimator: &serde_json::Value) -> Result<Self> {
        if !estimator.is_object() {
            return Err(WoodlotError::input(format!(
                "estimator metadata must be a JSON object, got {}",
                json_type(estimator)
            )));
        }
        let n_trees = u32::try_from(forest.trees.len()).map_err(|_| {
            WoodlotError::input(format!(
                "{} trees is more than a model file holds",
                forest.trees.len()
            ))
        })?;
        Ok(Self {
            kind: KIND.to_string(),
            codec: CODEC.to_string(),
            library_version: env!("CARGO_PKG_VERSION").to_string(),
            n_features: forest.n_features,
            n_classes: forest.n_classes,
            n_trees,
            fit: forest.fit_info.clone(),
            estimator: estimator.clone(),
            training_histogram: forest.training_histogram.clone(),
            output_classes: forest.output_classes.clone(),
        })
    }

    /// The JSON bytes of the meta section.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| WoodlotError::input(format!("cannot write the model meta as JSON: {e}")))
    }

    /// Parses a meta section and checks what can be checked without the payload: the kind, the
    /// codec, and that `estimator` is an object.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // serde_json bounds nesting depth (128), so hostile JSON cannot overflow the stack.
        let meta: Self = serde_json::from_slice(bytes).map_err(|e| {
            WoodlotError::corrupt(format!("meta is not a valid woodlot meta JSON: {e}"))
        })?;
        if meta.kind != KIND {
            return Err(WoodlotError::corrupt(format!(
                "file holds a model of kind {:?}; this woodlot reads only {KIND}",
                meta.kind
            )));
        }
        if meta.codec != CODEC {
            return Err(WoodlotError::corrupt(format!(
                "payload codec {:?} is unknown; this woodlot reads {CODEC:?}",
                meta.codec
            )));
        }
        if !meta.estimator.is_object() {
            return Err(WoodlotError::corrupt(format!(
                "meta.estimator must be a JSON object, found {}",
                json_type(&meta.estimator)
            )));
        }
        Ok(meta)
    }

    /// Checks that the meta describes `forest`: the counts and the lineage facts (except the
    /// fit time, a float that JSON may not round-trip to the last bit) must agree.
    pub fn check_matches(&self, forest: &Forest) -> Result<()> {
        let disagree =
            |what: &str, meta: &dyn std::fmt::Display, payload: &dyn std::fmt::Display| {
                Err(WoodlotError::corrupt(format!(
                    "meta says {what} is {meta} but the payload has {payload}"
                )))
            };
        if self.n_features != forest.n_features {
            return disagree("n_features", &self.n_features, &forest.n_features);
        }
        if self.n_classes != forest.n_classes {
            return disagree("n_classes", &self.n_classes, &forest.n_classes);
        }
        if u32::try_from(forest.trees.len()) != Ok(self.n_trees) {
            return disagree("n_trees", &self.n_trees, &forest.trees.len());
        }
        if self.fit.n_samples != forest.fit_info.n_samples {
            return disagree(
                "fit.n_samples",
                &self.fit.n_samples,
                &forest.fit_info.n_samples,
            );
        }
        if self.fit.training_fingerprint != forest.fit_info.training_fingerprint {
            return disagree(
                "fit.training_fingerprint",
                &self.fit.training_fingerprint,
                &forest.fit_info.training_fingerprint,
            );
        }
        Ok(())
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testutil::{estimator, sample_forest};

    fn corrupt(r: Result<ModelMeta>) -> String {
        match r {
            Err(WoodlotError::CorruptModel(m)) => m,
            other => panic!("expected CorruptModel, got {other:?}"),
        }
    }

    #[test]
    fn json_round_trips() {
        let meta = ModelMeta::for_forest(&sample_forest(), &estimator()).unwrap();
        assert_eq!(meta.kind, "RandomForestClassifier");
        assert_eq!(meta.codec, "bincode2+soa-trees");
        assert_eq!(meta.n_trees, 2);
        let back = ModelMeta::from_json(&meta.to_json().unwrap()).unwrap();
        assert_eq!(back, meta);
        back.check_matches(&sample_forest()).unwrap();
    }

    /// Needs serde_json's `float_roundtrip` feature: without it about 9% of f64 values (this
    /// one among them) come back one ulp off, so a loaded model's params would drift.
    #[test]
    fn floats_round_trip_bit_exactly() {
        let mut forest = sample_forest();
        forest.fit_info.fit_seconds = 39.430133835633676;
        let est = serde_json::json!({"params": {"ccp_alpha": 39.430133835633676, "w": 1.0 / 3.0}});
        let meta = ModelMeta::for_forest(&forest, &est).unwrap();
        let back = ModelMeta::from_json(&meta.to_json().unwrap()).unwrap();
        assert_eq!(
            back.fit.fit_seconds.to_bits(),
            39.430133835633676f64.to_bits()
        );
        assert_eq!(back, meta);
    }

    #[test]
    fn unknown_fields_are_ignored_for_later_minor_versions() {
        let meta = ModelMeta::for_forest(&sample_forest(), &estimator()).unwrap();
        let mut v = serde_json::to_value(&meta).unwrap();
        v["added_in_1_1"] = serde_json::json!({"x": 1});
        let back = ModelMeta::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn wrong_kind_codec_or_estimator_is_rejected() {
        let meta = ModelMeta::for_forest(&sample_forest(), &estimator()).unwrap();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(&meta).unwrap();
            f(&mut v);
            ModelMeta::from_json(&serde_json::to_vec(&v).unwrap())
        };
        assert!(corrupt(with(&|v| v["kind"] = "GradientBoosting".into())).contains("kind"));
        assert!(corrupt(with(&|v| v["codec"] = "pickle".into())).contains("codec \"pickle\""));
        assert!(corrupt(with(&|v| v["estimator"] = serde_json::json!([1]))).contains("an array"));
        assert!(corrupt(with(&|v| v["n_trees"] = (-1).into())).contains("valid woodlot meta"));
        assert!(corrupt(ModelMeta::from_json(b"\xff\xfe{")).contains("valid woodlot meta"));
        let deep = "[".repeat(100_000);
        assert!(corrupt(ModelMeta::from_json(deep.as_bytes())).contains("valid woodlot meta"));
    }

    #[test]
    fn estimator_must_be_an_object_when_writing() {
        let err = ModelMeta::for_forest(&sample_forest(), &serde_json::json!("x")).unwrap_err();
        assert!(matches!(err, WoodlotError::InvalidInput(_)), "{err:?}");
    }

    #[test]
    fn disagreement_with_the_payload_is_named() {
        let forest = sample_forest();
        let meta = ModelMeta::for_forest(&forest, &estimator()).unwrap();
        let mut m = meta.clone();
        m.n_features += 1;
        assert!(m
            .check_matches(&forest)
            .unwrap_err()
            .to_string()
            .contains("n_features is 4"));
        let mut m = meta.clone();
        m.n_trees = 7;
        assert!(m.check_matches(&forest).is_err());
        let mut m = meta.clone();
        m.fit.training_fingerprint = "other".into();
        assert!(m.check_matches(&forest).is_err());
        let mut m = meta;
        m.fit.fit_seconds += 1.0;
        m.check_matches(&forest).unwrap();
    }
}
