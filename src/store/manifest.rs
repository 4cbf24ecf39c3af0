//! The version manifest: everything recorded about one saved model, without the user asking.
//!
//! A manifest is written once, create-only, at `versions/<n>.json`, and never changes; its
//! successful creation is what makes version `n` exist (the commit point of a save). It is small
//! JSON (a kilobyte or two) so that listing a store with thousands of versions stays fast: the
//! model itself and its probe set are content-addressed blobs the manifest names by digest.
//!
//! Manifests read from disk are treated as untrusted: they are size-bounded, parsed by serde,
//! and their digests validated before anything turns them into a key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, WoodlotError};
use crate::store::layout::Digest;
use crate::store::names::version_name;

/// Manifest format written by this version of woodlot.
pub const MANIFEST_FORMAT: u32 = 1;

/// Largest manifest or event file read (they are a few KB; this only bounds hostile files).
pub const MAX_RECORD_LEN: u64 = 16 << 20;

/// A content-addressed blob a manifest refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobRef {
    /// BLAKE3 of the blob, hex.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// What the model is, read from its own file's metadata at save time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model kind, e.g. `RandomForestClassifier`.
    pub kind: String,
    /// woodlot version that wrote the model file.
    pub library_version: String,
    /// Number of input features.
    pub n_features: u32,
    /// Number of classes.
    pub n_classes: u32,
    /// Number of trees.
    pub n_trees: u32,
    /// The class labels, in class-code order (JSON numbers, strings or booleans).
    pub classes: Value,
    /// The numpy dtype of the labels at fit time, if recorded.
    #[serde(default)]
    pub classes_dtype: Value,
    /// Feature names seen at fit (`feature_names_in_`), or `null`.
    #[serde(default)]
    pub feature_names: Value,
    /// The estimator's `get_params()`.
    #[serde(default)]
    pub params: Value,
    /// BLAKE3 fingerprint of the exact training data.
    pub training_fingerprint: String,
    /// Number of training samples.
    pub n_samples: u64,
    /// Seconds the fit took.
    pub fit_seconds: f64,
    /// How the model was trained, from its estimator description: `mode` (`local`,
    /// `distributed` or `merged`), `engine` (e.g. `dask`, `ray`), `workers`, `chunks`; `null`
    /// for models written before woodlot recorded it.
    #[serde(default)]
    pub training: Value,
}

/// One version's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format (see [`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The version number; equal to the number in the file name.
    pub version: u64,
    /// When it was saved (RFC 3339, UTC).
    pub created: String,
    /// Who saved it.
    pub user: String,
    /// On which host.
    pub host: String,
    /// From which process.
    pub pid: u32,
    /// The version it descends from: the one given at save, else the one active at save.
    pub parent: Option<u64>,
    /// What the model is.
    pub model: ModelInfo,
    /// The model file.
    pub blob: BlobRef,
    /// The probe set replayed by `load(verify=True)`, `rollback` and `verify()`.
    pub probes: BlobRef,
    /// Number of probe rows.
    pub probe_rows: u32,
    /// The user's tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The user's description.
    #[serde(default)]
    pub description: Option<String>,
    /// The user's metrics (any JSON values).
    #[serde(default)]
    pub metrics: serde_json::Map<String, Value>,
}

impl Manifest {
    /// The display name, `v<n>`.
    pub fn name(&self) -> String {
        version_name(self.version)
    }

    /// The model blob's validated digest.
    pub fn blob_digest(&self) -> Result<Digest> {
        Digest::parse(&self.blob.digest)
    }

    /// The probe blob's validated digest.
    pub fn probe_digest(&self) -> Result<Digest> {
        Digest::parse(&self.probes.digest)
    }

    /// Serialises for writing (pretty JSON: people read these files).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serialises");
        v.push(b'\n');
        v
    }

    /// Parses and validates a manifest read from `versions/<expected>.json`.
    pub fn parse(bytes: &[u8], expected: u64) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            WoodlotError::corrupt(format!(
                "manifest of {} is not valid: {e}",
                version_name(expected)
            ))
        })?;
        if m.format == 0 || m.format > MANIFEST_FORMAT {
            return Err(WoodlotError::Store(format!(
                "manifest of {} has format {}; this woodlot reads format {MANIFEST_FORMAT} (upgrade woodlot)",
                version_name(expected),
                m.format
            )));
        }
        if m.version != expected {
            return Err(WoodlotError::corrupt(format!(
                "manifest file of {} says it is {}",
                version_name(expected),
                version_name(m.version)
            )));
        }
        m.blob_digest()?;
        m.probe_digest()?;
        Ok(m)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample(version: u64) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            version,
            created: "2026-01-01T00:00:00.000000Z".into(),
            user: "u".into(),
            host: "h".into(),
            pid: 1,
            parent: None,
            model: ModelInfo {
                kind: "RandomForestClassifier".into(),
                library_version: "0.1.0".into(),
                n_features: 2,
                n_classes: 2,
                n_trees: 1,
                classes: serde_json::json!([0, 1]),
                classes_dtype: Value::Null,
                feature_names: Value::Null,
                params: serde_json::json!({}),
                training_fingerprint: "f".repeat(64),
                n_samples: 10,
                fit_seconds: 0.1,
                training: Value::Null,
            },
            blob: BlobRef {
                digest: "a".repeat(64),
                size: 10,
            },
            probes: BlobRef {
                digest: "b".repeat(64),
                size: 10,
            },
            probe_rows: 4,
            tags: BTreeMap::new(),
            description: None,
            metrics: Default::default(),
        }
    }

    #[test]
    fn round_trips_and_validates() {
        let m = sample(3);
        let bytes = m.to_bytes();
        assert_eq!(Manifest::parse(&bytes, 3).unwrap(), m);
        assert!(matches!(
            Manifest::parse(&bytes, 4),
            Err(WoodlotError::CorruptModel(_))
        ));
        assert!(Manifest::parse(b"{", 3).is_err());
        assert!(Manifest::parse(b"", 3).is_err());
        let mut evil = sample(3);
        evil.blob.digest = "../../etc/passwd".into();
        assert!(matches!(
            Manifest::parse(&evil.to_bytes(), 3),
            Err(WoodlotError::CorruptModel(_))
        ));
        let mut future = sample(3);
        future.format = 99;
        assert!(matches!(
            Manifest::parse(&future.to_bytes(), 3),
            Err(WoodlotError::Store(_))
        ));
    }

    #[test]
    fn manifests_written_before_training_was_recorded_still_parse() {
        let mut m = sample(5);
        m.model.training = serde_json::json!({"mode": "distributed", "engine": "dask"});
        assert_eq!(Manifest::parse(&m.to_bytes(), 5).unwrap(), m);
        let mut old: Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        old["model"].as_object_mut().unwrap().remove("training");
        let parsed = Manifest::parse(&serde_json::to_vec(&old).unwrap(), 5).unwrap();
        assert_eq!(parsed.model.training, Value::Null);
    }
}
