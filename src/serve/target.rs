//! What a reference points to now, and loading one version for serving.
//!
//! A live model asks the store the same question every poll interval, so the question must be
//! cheap: for `active` and aliases it is one read of the store's state (the newest event, found
//! through the head hint: on a local store a few small file reads, on S3 a handful of small
//! requests) and nothing else while the answer is the version already served. Only a changed
//! answer pays for a full [`Store::resolve`] (which also checks the version's manifest and
//! tombstone) and then for loading it.
//!
//! Loading uses [`Store::read_model`] with `verify`: the blob's size and BLAKE3, the whole model
//! file's validation and the replay of the probe predictions stored at save time. Only a model
//! that passed all of it becomes a [`Served`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::error::Result;
use crate::forest::Forest;
use crate::format;
use crate::store::{Manifest, Ref, Store};

/// A verified model ready to serve: immutable, shared by every call that started on it.
#[derive(Debug)]
pub struct Served {
    /// The version's manifest (its record in the store).
    pub manifest: Arc<Manifest>,
    /// The decoded forest.
    pub forest: Forest,
    /// The model file bytes (BLAKE3-checked), for callers that build their own estimator.
    pub bytes: Arc<[u8]>,
    /// Which load of this live model it is: 1 for the first model served, +1 per swap. Lets a
    /// caller's cache tell two loads of the same version apart.
    pub generation: u64,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// How long loading and verifying it took.
    pub load_time: Duration,
}

impl Served {
    /// The version number.
    pub fn version(&self) -> u64 {
        self.manifest.version
    }

    /// `"v<n>"`.
    pub fn name(&self) -> String {
        self.manifest.name()
    }
}

/// The version `reference` points to now.
///
/// `known` is the version served now: when a state read says the reference still points to it,
/// nothing else is read. Otherwise (or for `latest` and plain numbers, whose answer is not in
/// the state) the full [`Store::resolve`] decides, so a deleted or missing version is an error.
pub fn current_target(store: &Store, reference: &Ref, known: Option<u64>) -> Result<u64> {
    let from_state = match reference {
        Ref::Active => Some(store.state()?.active),
        Ref::Alias(a) => Some(store.state()?.aliases.get(a).copied()),
        Ref::Number(_) | Ref::Latest => None,
    };
    match (from_state, known) {
        (Some(Some(n)), Some(k)) if n == k => Ok(n),
        _ => store.resolve(reference),
    }
}

/// Loads version `n`, validates the model file completely and replays its probes.
pub fn load_served(store: &Store, n: u64, generation: u64) -> Result<Served> {
    let started = Instant::now();
    let (manifest, bytes) = store.read_model(&Ref::Number(n), true)?;
    // `read_model(.., true)` has validated and probe-replayed these exact bytes; decoding them
    // again is the only public way to keep the forest (about a millisecond for a small model).
    let (forest, _meta) = format::decode(&bytes)?;
    Ok(Served {
        manifest,
        forest,
        bytes: bytes.into(),
        generation,
        loaded_at: SystemTime::now(),
        load_time: started.elapsed(),
    })
}
