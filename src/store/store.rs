//! The store itself: opening, saving, reading and resolving versions.
//!
//! The operations that move the active version (promote, rollback, aliases, delete) are in
//! `promote.rs`, comparison in `compare.rs`, integrity checks in `verify.rs` and garbage
//! collection in `gc.rs`; all are methods of [`Store`].
//!
//! A save writes, in this order: the model blob and the probe blob (content-addressed, so
//! rewriting one is harmless), the manifest `versions/<n>.json` (create-only: the commit point
//! that makes version `n` exist; losing the race for `n` means trying `n + 1`, which keeps
//! numbers unique and gapless), then the `save` event, then the head hint. A crash between any
//! two steps leaves either no version (and unreferenced blobs, which gc removes after a grace
//! period) or a complete version whose history record may be missing (`verify()` notes it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::error::{Result, WoodlotError};
use crate::forest::Forest;
use crate::format;
use crate::store::backend::Backend;
use crate::store::events::{self, check_record_len, Draft, EventKind, State};
use crate::store::layout::{Digest, Dir, Key, ROOT_ENTRIES, STORE_FORMAT};
use crate::store::local::LocalBackend;
use crate::store::manifest::{BlobRef, Manifest, ModelInfo, MANIFEST_FORMAT, MAX_RECORD_LEN};
use crate::store::names::{validate_text, version_name, Ref};
use crate::store::probe::{self, ProbeSet};
use crate::store::sysinfo::Actor;

/// How many version numbers a save tries before giving up (each loss means another writer won).
const MAX_SAVE_ATTEMPTS: usize = 10_000;

/// Most tags a version may carry; with the per-tag limits below, tags stay under 0.5 MiB of a
/// manifest, far inside what readers accept ([`MAX_RECORD_LEN`]).
pub const MAX_TAGS: usize = 100;
/// Longest tag name, in bytes.
pub const MAX_TAG_NAME_LEN: usize = 256;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE_LEN: usize = 4096;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 100_000;

/// The user's additions to a saved version.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// A description.
    pub description: Option<String>,
    /// The user's own metrics (any JSON values).
    pub metrics: serde_json::Map<String, Value>,
    /// The parent version; by default the version active at save time.
    pub parent: Option<Ref>,
}

/// A version store.
#[derive(Debug)]
pub struct Store {
    pub(crate) backend: Box<dyn Backend>,
    /// Manifests are immutable once written, so a parsed manifest never goes stale.
    cache: Mutex<HashMap<u64, Arc<Manifest>>>,
}

/// The versions found by one listing of `versions/`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    /// Every version number with a manifest, ascending.
    pub manifests: Vec<u64>,
    /// Versions with a tombstone.
    pub deleted: BTreeSet<u64>,
}

impl Listing {
    /// Live (not deleted) versions, ascending.
    pub fn live(&self) -> impl Iterator<Item = u64> + '_ {
        self.manifests
            .iter()
            .copied()
            .filter(|n| !self.deleted.contains(n))
    }
}

/// Prefixes a model-validation error with the version it concerns.
pub(crate) fn about(n: u64, err: WoodlotError) -> WoodlotError {
    match err {
        WoodlotError::CorruptModel(m) => {
            WoodlotError::CorruptModel(format!("{}: {m}", version_name(n)))
        }
        other => other,
    }
}

impl Store {
    /// Opens (creating if needed) a store in a local directory.
    ///
    /// A directory that holds anything but a store's own entries and has no `FORMAT` file is
    /// refused, so pointing a store at the wrong directory never scatters files into it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_backend(Box::new(LocalBackend::new(path.as_ref())?))
    }

    /// Opens a store on any backend.
    pub fn with_backend(backend: Box<dyn Backend>) -> Result<Self> {
        let store = Self {
            backend,
            cache: Mutex::new(HashMap::new()),
        };
        store.init()?;
        Ok(store)
    }

    /// Where the store lives.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    fn init(&self) -> Result<()> {
        let b = &*self.backend;
        let existing = match b.read(&Key::Format, 4096)? {
            Some(bytes) => Some(bytes),
            None => {
                let foreign: Vec<String> = b
                    .list_root()?
                    .into_iter()
                    .filter(|n| !ROOT_ENTRIES.contains(&n.as_str()))
                    .collect();
                if !foreign.is_empty() {
                    return Err(WoodlotError::Store(format!(
                        "{} is not a woodlot store (it has no FORMAT file) and is not empty \
                         (it holds {}); use an empty or new directory",
                        b.location(),
                        foreign
                            .iter()
                            .take(3)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                let doc = json!({"format": "woodlot-store", "version": STORE_FORMAT,
                                 "created": Actor::now().time});
                let mut bytes = serde_json::to_vec_pretty(&doc).expect("json");
                bytes.push(b'\n');
                b.ensure_dirs()?;
                if b.create_new(&Key::Format, &bytes)? {
                    None
                } else {
                    b.read(&Key::Format, 4096)? // another process initialised it first
                }
            }
        };
        if let Some(bytes) = existing {
            let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
                WoodlotError::corrupt(format!("the store's FORMAT file is not valid JSON: {e}"))
            })?;
            if doc.get("format").and_then(Value::as_str) != Some("woodlot-store") {
                return Err(WoodlotError::corrupt(
                    "the store's FORMAT file does not describe a woodlot store",
                ));
            }
            match doc.get("version").and_then(Value::as_u64) {
                Some(v) if v >= 1 && v <= STORE_FORMAT as u64 => {}
                Some(v) => {
                    return Err(WoodlotError::Store(format!(
                        "this store's FORMAT file says format {v}; this woodlot handles format \
                         {STORE_FORMAT} (upgrade woodlot, or restore FORMAT if it was damaged)"
                    )))
                }
                None => {
                    return Err(WoodlotError::corrupt(
                        "the store's FORMAT file has no version",
                    ))
                }
            }
        }
        b.ensure_dirs()
    }

    // ---------------------------------------------------------------------------------------
    // reading
    // ---------------------------------------------------------------------------------------

    /// Lists `versions/` once, against the current state (which says what is deleted).
    pub(crate) fn listing(&self) -> Result<Listing> {
        self.listing_in(&self.state()?)
    }

    /// Lists `versions/` once; deleted are the versions `state` lists as deleted, plus any with
    /// a tombstone (written by older woodlots, whose delete committed with it).
    pub(crate) fn listing_in(&self, state: &State) -> Result<Listing> {
        let mut out = Listing {
            deleted: state.deleted.clone(),
            ..Listing::default()
        };
        for e in self.backend.list(Dir::Versions)? {
            match Key::from_listing(Dir::Versions, &e.name) {
                Some(Key::Manifest(n)) => out.manifests.push(n),
                Some(Key::Tombstone(n)) => {
                    out.deleted.insert(n);
                }
                _ => {}
            }
        }
        out.manifests.sort_unstable();
        Ok(out)
    }

    /// The manifest of version `n`, which must exist (deleted or not).
    pub fn manifest(&self, n: u64) -> Result<Arc<Manifest>> {
        if let Some(m) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&n) {
            return Ok(m.clone());
        }
        let bytes = self
            .backend
            .read(&Key::Manifest(n), MAX_RECORD_LEN)?
            .ok_or_else(|| {
                WoodlotError::VersionNotFound(format!("no version {}", version_name(n)))
            })?;
        let m = Arc::new(Manifest::parse(&bytes, n)?);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n, m.clone());
        Ok(m)
    }

    /// Every live version, oldest first.
    pub fn versions(&self) -> Result<Vec<Arc<Manifest>>> {
        let listing = self.listing()?;
        listing.live().map(|n| self.manifest(n)).collect()
    }

    /// The store's current state (active version, aliases) from the newest event.
    pub fn state(&self) -> Result<State> {
        Ok(events::head(&*self.backend)?.state())
    }

    /// Whether version `n` is deleted in `state` (or, in a store written by an older woodlot,
    /// has a tombstone).
    pub(crate) fn is_deleted_in(&self, n: u64, state: &State) -> Result<bool> {
        Ok(state.deleted.contains(&n) || self.backend.exists(&Key::Tombstone(n))?)
    }

    /// Resolves a reference against a given state to a live version number.
    pub(crate) fn resolve_in(&self, r: &Ref, state: &State) -> Result<u64> {
        let n = match r {
            Ref::Number(n) => *n,
            Ref::Latest => {
                return self.listing_in(state)?.live().last().ok_or_else(|| {
                    WoodlotError::VersionNotFound("the store has no versions yet".into())
                })
            }
            Ref::Active => state.active.ok_or_else(|| {
                WoodlotError::VersionNotFound("no version is active yet; promote one first".into())
            })?,
            Ref::Alias(a) => *state.aliases.get(a).ok_or_else(|| {
                WoodlotError::VersionNotFound(format!("no version or alias named {a:?}"))
            })?,
        };
        if !self.backend.exists(&Key::Manifest(n))? {
            return Err(WoodlotError::VersionNotFound(format!(
                "no version {}",
                version_name(n)
            )));
        }
        if self.is_deleted_in(n, state)? {
            return Err(WoodlotError::VersionNotFound(format!(
                "{} was deleted",
                version_name(n)
            )));
        }
        Ok(n)
    }

    /// Resolves a reference to a live version number.
    pub fn resolve(&self, r: &Ref) -> Result<u64> {
        self.resolve_in(r, &self.state()?)
    }

    /// The manifest of the version a reference names.
    pub fn get(&self, r: &Ref) -> Result<Arc<Manifest>> {
        self.manifest(self.resolve(r)?)
    }

    /// The active version's manifest, if any.
    pub fn active(&self) -> Result<Option<Arc<Manifest>>> {
        let state = self.state()?;
        match state.active {
            Some(n) if !self.is_deleted_in(n, &state)? => Ok(Some(self.manifest(n)?)),
            _ => Ok(None),
        }
    }

    /// Reads a content-addressed blob and checks its size and digest.
    pub(crate) fn read_blob(&self, n: u64, blob: &BlobRef, what: &str) -> Result<Vec<u8>> {
        let digest = Digest::parse(&blob.digest).map_err(|e| about(n, e))?;
        let bytes = self
            .backend
            .read(&Key::Blob(digest.clone()), blob.size)?
            .ok_or_else(|| {
                WoodlotError::corrupt(format!(
                    "{}: its {what} blob {digest} is missing",
                    version_name(n)
                ))
            })?;
        if bytes.len() as u64 != blob.size || Digest::of(&bytes) != digest {
            return Err(WoodlotError::corrupt(format!(
                "{}: its {what} blob {digest} is damaged (size or BLAKE3 does not match)",
                version_name(n)
            )));
        }
        Ok(bytes)
    }

    /// Fully validates a version's model bytes and replays its probes; returns the forest.
    pub(crate) fn check_model(&self, m: &Manifest, bytes: &[u8]) -> Result<Forest> {
        let (forest, _meta) = format::decode(bytes).map_err(|e| about(m.version, e))?;
        let probe_bytes = self.read_blob(m.version, &m.probes, "probe")?;
        let probes = ProbeSet::decode(&probe_bytes).map_err(|e| about(m.version, e))?;
        probes.replay(&forest).map_err(|e| about(m.version, e))?;
        Ok(forest)
    }

    /// The model file bytes of a version; with `verify`, fully validated and probe-replayed.
    /// Without it, the blob's size and BLAKE3 are still checked (the loader checks the rest).
    pub fn read_model(&self, r: &Ref, verify: bool) -> Result<(Arc<Manifest>, Vec<u8>)> {
        let m = self.get(r)?;
        let bytes = self.read_blob(m.version, &m.blob, "model")?;
        if verify {
            self.check_model(&m, &bytes)?;
        }
        Ok((m, bytes))
    }

    /// Like [`Store::read_model`] with `verify`, and also hands over the forest that the
    /// verification decoded, so a caller that serves it (the live model) decodes once.
    pub fn read_verified_model(&self, r: &Ref) -> Result<(Arc<Manifest>, Vec<u8>, Forest)> {
        let m = self.get(r)?;
        let bytes = self.read_blob(m.version, &m.blob, "model")?;
        let forest = self.check_model(&m, &bytes)?;
        Ok((m, bytes, forest))
    }

    /// The head anchor (`ACTIVE`) as written, read with one small read (one request on S3);
    /// `None` when there is none or it cannot be read. A cheap change detector for watchers:
    /// every move appends an event and then rewrites the anchor, so an anchor unchanged since
    /// a full [`Store::state`] read means no move was anchored since. It is a hint, never the
    /// state: an anchor write can be late or lost, so a watcher must still read the state now
    /// and then.
    pub fn head_anchor(&self) -> Option<events::Anchor> {
        events::read_anchor(&*self.backend).ok().flatten()
    }

    /// Loads and verifies version `n` (decode + probe replay): the gate rollback and promote use.
    pub(crate) fn load_verified(&self, n: u64) -> Result<Forest> {
        let m = self.manifest(n)?;
        let bytes = self.read_blob(n, &m.blob, "model")?;
        self.check_model(&m, &bytes)
    }

    // ---------------------------------------------------------------------------------------
    // saving
    // ---------------------------------------------------------------------------------------

    /// Writes a blob under its digest, unless an intact copy is already there (then it is only
    /// touched, so gc's grace period covers the version about to reference it).
    ///
    /// A blob that gc has marked (object storage, see `gc.rs`) is treated as absent: the mark
    /// is removed first, then the bytes are written again, so a sweep that checks the mark
    /// before deleting leaves it alone, and one already past that check is answered by the
    /// re-check after the manifest (see [`Store::ensure_blobs`]).
    fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let key = Key::Blob(digest.clone());
        let mark = Key::GcMark(digest.clone());
        if self.backend.exists(&mark)? {
            self.backend.remove(&mark)?;
            return self.backend.replace(&key, bytes);
        }
        if !self.backend.exists(&key)? && self.backend.create_new(&key, bytes)? {
            return Ok(());
        }
        let intact = matches!(
            self.backend.read(&key, bytes.len() as u64),
            Ok(Some(ref existing)) if Digest::of(existing) == *digest
        );
        if intact {
            self.backend.touch(&key)
        } else {
            // A damaged blob under this name is repaired by the bytes it must hold.
            self.backend.replace(&key, bytes)
        }
    }

    /// After a manifest is committed: every blob it names must still exist. A gc sweep on
    /// object storage (no lock) can delete a blob between a save's write of it and the
    /// manifest; gc re-lists the manifests after deleting and restores what became referenced,
    /// and this check covers the other order (the manifest appeared after gc's re-listing, so
    /// after its delete, so this sees the blob gone and writes it again).
    fn ensure_blobs(&self, blobs: &[(&Digest, &[u8])]) -> Result<()> {
        for (digest, bytes) in blobs {
            let key = Key::Blob((*digest).clone());
            if !self.backend.exists(&key)? {
                self.backend.create_new(&key, bytes)?;
            }
        }
        Ok(())
    }

    /// Saves a model file as a new version and returns its manifest.
    ///
    /// The bytes are fully validated first (a damaged model is never stored), the probes are
    /// predicted, and the version gets the next free number.
    pub fn save(&self, model: &[u8], opts: SaveOptions) -> Result<Arc<Manifest>> {
        if let Some(d) = &opts.description {
            validate_text("description", d, MAX_DESCRIPTION_LEN)?;
        }
        if opts.tags.len() > MAX_TAGS {
            return Err(WoodlotError::input(format!(
                "{} tags given; a version holds at most {MAX_TAGS} (MAX_TAGS)",
                opts.tags.len()
            )));
        }
        for (k, v) in &opts.tags {
            validate_text("tag name", k, MAX_TAG_NAME_LEN)?;
            validate_text("tag value", v, MAX_TAG_VALUE_LEN)?;
        }
        let metrics_len = serde_json::to_vec(&opts.metrics)
            .map(|v| v.len())
            .unwrap_or(0);
        if metrics_len > 1 << 20 {
            return Err(WoodlotError::input("metrics are larger than 1 MiB of JSON"));
        }
        let (forest, meta) = format::decode(model)?;
        let probes = probe::build(&forest, probe::default_rows(forest.n_features as usize))?;
        let probe_bytes = probes.encode();
        let digest = Digest::of(model);
        let probe_digest = Digest::of(&probe_bytes);
        let (classes, classes_dtype) = classes_of(&meta.estimator);
        let info = ModelInfo {
            kind: meta.kind.clone(),
            library_version: meta.library_version.clone(),
            n_features: meta.n_features,
            n_classes: meta.n_classes,
            n_trees: meta.n_trees,
            classes,
            classes_dtype,
            feature_names: meta
                .estimator
                .get("feature_names_in")
                .cloned()
                .unwrap_or(Value::Null),
            params: meta.estimator.get("params").cloned().unwrap_or(Value::Null),
            training_fingerprint: meta.fit.training_fingerprint.clone(),
            n_samples: meta.fit.n_samples,
            fit_seconds: meta.fit.fit_seconds,
            training: meta
                .estimator
                .get("training")
                .cloned()
                .unwrap_or(Value::Null),
        };

        let _lock = self.backend.lock()?;
        self.put_blob(&digest, model)?;
        self.put_blob(&probe_digest, &probe_bytes)?;
        let state = self.state()?;
        let parent = match &opts.parent {
            Some(r) => Some(self.resolve_in(r, &state)?),
            None => state.active,
        };
        let actor = Actor::now();
        let mut claimed = None;
        for _ in 0..MAX_SAVE_ATTEMPTS {
            let last = self.listing()?.manifests.last().copied().unwrap_or(0);
            // A (damaged or foreign) manifest numbered u64::MAX must not wrap the next number
            // around to 0: that version would be written but never listed.
            let n = last.checked_add(1).ok_or_else(|| {
                WoodlotError::corrupt(format!(
                    "versions/ holds a manifest numbered {last}: no version number is left after \
                     it (a damaged or foreign file?)"
                ))
            })?;
            let manifest = Manifest {
                format: MANIFEST_FORMAT,
                version: n,
                created: actor.time.clone(),
                user: actor.user.clone(),
                host: actor.host.clone(),
                pid: actor.pid,
                parent,
                model: info.clone(),
                blob: BlobRef {
                    digest: digest.to_string(),
                    size: model.len() as u64,
                },
                probes: BlobRef {
                    digest: probe_digest.to_string(),
                    size: probe_bytes.len() as u64,
                },
                probe_rows: probes.x.nrows() as u32,
                tags: opts.tags.clone(),
                description: opts.description.clone(),
                metrics: opts.metrics.clone(),
            };
            let bytes = manifest.to_bytes();
            // Readers refuse records over MAX_RECORD_LEN, so one committed would break every
            // other process's versions() and gc: refuse it before claiming the number.
            check_record_len("the manifest of this version", bytes.len())?;
            match self.backend.create_new(&Key::Manifest(n), &bytes) {
                Ok(true) => {
                    claimed = Some(Arc::new(manifest));
                    break;
                }
                Ok(false) => {}
                // A failure after the manifest was linked into place (the fsync of versions/)
                // leaves version n visible: say that it exists, or a retry saves it twice.
                Err(e) if self.holds(&Key::Manifest(n), &bytes) => {
                    return Err(after_commit(n, "it may not be durable yet", e));
                }
                Err(e) => return Err(e),
            }
        }
        let manifest = claimed.ok_or_else(|| {
            WoodlotError::Conflict(format!(
                "could not claim a version number after {MAX_SAVE_ATTEMPTS} attempts"
            ))
        })?;
        let n = manifest.version;
        self.ensure_blobs(&[(&digest, model), (&probe_digest, &probe_bytes)])
            .map_err(|e| after_commit(n, "its blobs were not re-checked", e))?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n, manifest.clone());
        let details = json!({
            "digest": manifest.blob.digest,
            "size": manifest.blob.size,
            "parent": parent,
            "training_fingerprint": manifest.model.training_fingerprint,
        });
        events::append(&*self.backend, |head| {
            Ok(Draft {
                kind: EventKind::Save,
                version: Some(n),
                reason: None,
                details: details.clone(),
                state: head.state(),
            })
        })
        .map_err(|e| after_commit(n, "its history event was not", e))?;
        Ok(manifest)
    }
}

impl Store {
    /// Whether `key` holds exactly `bytes` now (false when it cannot be read).
    fn holds(&self, key: &Key, bytes: &[u8]) -> bool {
        matches!(self.backend.read(key, bytes.len() as u64 + 1), Ok(Some(b)) if b == bytes)
    }
}

/// An I/O error after a save's commit point says that the version exists all the same.
fn after_commit(n: u64, what: &str, e: WoodlotError) -> WoodlotError {
    match e {
        WoodlotError::Io { context, source } => WoodlotError::Io {
            context: format!(
                "{} was saved (its manifest is durable) but {what}: {context}",
                version_name(n)
            ),
            source,
        },
        other => other,
    }
}

/// The class labels and their dtype from the estimator description. Accepts both
/// `{"classes": {"dtype": "<i8", "values": [...]}}` and a bare list.
fn classes_of(estimator: &Value) -> (Value, Value) {
    match estimator.get("classes") {
        // A multi-output model: one `{dtype, values}` per output, recorded as a list of label
        // lists and a list of dtypes.
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_object) => {
            let each = a.iter().map(classes_of_output);
            let (values, dtypes): (Vec<Value>, Vec<Value>) = each.unzip();
            (Value::Array(values), Value::Array(dtypes))
        }
        Some(Value::Array(a)) => (Value::Array(a.clone()), Value::Null),
        Some(Value::Object(o)) => (
            o.get("values").cloned().unwrap_or(Value::Null),
            o.get("dtype").cloned().unwrap_or(Value::Null),
        ),
        _ => (Value::Null, Value::Null),
    }
}

/// One output's `{dtype, values}` as `(values, dtype)`.
fn classes_of_output(output: &Value) -> (Value, Value) {
    (
        output.get("values").cloned().unwrap_or(Value::Null),
        output.get("dtype").cloned().unwrap_or(Value::Null),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::TempDir;
    use crate::store::testutil::{model_bytes, tiny_forest};

    #[test]
    fn save_numbers_versions_and_records_everything() {
        let t = TempDir::new("save");
        let s = Store::open(&t.0).unwrap();
        let bytes = model_bytes(&tiny_forest());
        let v1 = s.save(&bytes, SaveOptions::default()).unwrap();
        let v2 = s
            .save(
                &bytes,
                SaveOptions {
                    tags: [("team".to_string(), "fraud".to_string())].into(),
                    description: Some("second".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        assert_eq!(v1.blob, v2.blob, "identical bytes share a blob");
        assert_eq!(v2.model.classes, json!([0, 1]));
        assert_eq!(v2.model.n_features, 2);
        assert_eq!(v2.tags["team"], "fraud");
        assert_eq!(v1.parent, None);
        let listed: Vec<u64> = s.versions().unwrap().iter().map(|m| m.version).collect();
        assert_eq!(listed, vec![1, 2]);
        assert_eq!(s.get(&Ref::Latest).unwrap().version, 2);
        assert!(matches!(
            s.get(&Ref::Number(3)),
            Err(WoodlotError::VersionNotFound(_))
        ));
        assert!(matches!(
            s.get(&Ref::Active),
            Err(WoodlotError::VersionNotFound(_))
        ));
        let (m, read) = s.read_model(&Ref::Number(1), true).unwrap();
        assert_eq!((m.version, read), (1, bytes));
        let history = events::all(&*s.backend).unwrap();
        assert_eq!(history.len(), 2);
        assert!(history.iter().all(|e| e.kind == EventKind::Save));
        // A second handle sees the same store.
        let again = Store::open(&t.0).unwrap();
        assert_eq!(again.versions().unwrap().len(), 2);
    }

    #[test]
    fn damaged_models_are_never_stored() {
        let t = TempDir::new("save-bad");
        let s = Store::open(&t.0).unwrap();
        let mut bytes = model_bytes(&tiny_forest());
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            s.save(&bytes, SaveOptions::default()),
            Err(WoodlotError::CorruptModel(_))
        ));
        assert!(matches!(
            s.save(b"", SaveOptions::default()),
            Err(WoodlotError::CorruptModel(_))
        ));
        assert!(s.versions().unwrap().is_empty());
    }

    #[test]
    fn a_foreign_directory_is_refused() {
        let t = TempDir::new("foreign");
        std::fs::write(t.0.join("thesis.tex"), b"...").unwrap();
        assert!(matches!(Store::open(&t.0), Err(WoodlotError::Store(_))));
        assert!(!t.0.join("FORMAT").exists());
    }

    #[test]
    fn a_newer_store_format_is_refused() {
        let t = TempDir::new("future");
        Store::open(&t.0).unwrap();
        std::fs::write(
            t.0.join("FORMAT"),
            br#"{"format":"woodlot-store","version":9}"#,
        )
        .unwrap();
        assert!(matches!(Store::open(&t.0), Err(WoodlotError::Store(m)) if m.contains("upgrade")));
    }

    #[test]
    fn tampered_blobs_fail_loudly_and_are_repaired_by_a_resave() {
        let t = TempDir::new("tamper");
        let s = Store::open(&t.0).unwrap();
        let bytes = model_bytes(&tiny_forest());
        let v1 = s.save(&bytes, SaveOptions::default()).unwrap();
        let path = t.0.join(Key::Blob(v1.blob_digest().unwrap()).path());
        let mut damaged = bytes.clone();
        damaged[100] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        let err = s.read_model(&Ref::Number(1), false).unwrap_err();
        assert!(
            matches!(err, WoodlotError::CorruptModel(ref m) if m.contains("v1") && m.contains("damaged"))
        );
        s.save(&bytes, SaveOptions::default()).unwrap();
        s.read_model(&Ref::Number(1), true).unwrap();
    }

    #[test]
    fn concurrent_saves_get_unique_gapless_numbers() {
        let t = TempDir::new("save-race");
        let bytes = model_bytes(&tiny_forest());
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    let s = Store::open(&t.0).unwrap();
                    for _ in 0..5 {
                        s.save(&bytes, SaveOptions::default()).unwrap();
                    }
                });
            }
        });
        let s = Store::open(&t.0).unwrap();
        let listed: Vec<u64> = s.versions().unwrap().iter().map(|m| m.version).collect();
        assert_eq!(listed, (1..=20).collect::<Vec<_>>());
        assert_eq!(events::all(&*s.backend).unwrap().len(), 20);
    }
}
