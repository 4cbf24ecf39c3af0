//! What a reference points to now, and loading one version for serving.
//!
//! A live model asks the store the same question every poll interval, so the question must be
//! cheap. For `active` and aliases, [`Watch::target`] first reads only the head anchor
//! (`ACTIVE`: one small file read locally, one GET on S3, see [`Store::head_anchor`]); an
//! anchor unchanged since the last full answer means nothing moved, and that answer stands.
//! Otherwise, and at least every [`FULL_CHECK_EVERY`] (an anchor write can be late or lost;
//! the state is the truth, the anchor only a hint), one read of the store's state decides
//! (the newest event, found through the anchor: three small reads), and only a changed answer
//! pays for a full [`Store::resolve`] (which also checks the version's manifest and
//! tombstone) and then for loading it. `latest` and fixed versions always take the full path.
//!
//! Loading uses [`Store::read_verified_model`]: the blob's size and BLAKE3, the whole model
//! file's validation and the replay of the probe predictions stored at save time, keeping the
//! forest that validation decoded (one decode per swap). Only a model that passed all of it
//! becomes a [`Served`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::error::Result;
use crate::forest::Forest;
use crate::store::events::Anchor;
use crate::store::{Manifest, Ref, Store};

/// How long an unchanged head anchor is trusted before the state is read in full anyway.
pub const FULL_CHECK_EVERY: Duration = Duration::from_secs(5);

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

/// The watcher's memory between checks: the head anchor read just before the last full
/// answer, that answer, and when it was given.
#[derive(Debug, Default)]
pub struct Watch {
    last: Option<(Anchor, u64, Instant)>,
}

impl Watch {
    /// The version `reference` points to now; `known` is the version served now. Costs one
    /// small read while nothing moves (see the module documentation).
    pub fn target(&mut self, store: &Store, reference: &Ref, known: Option<u64>) -> Result<u64> {
        let cheap = matches!(reference, Ref::Active | Ref::Alias(_));
        if let (true, Some((anchor, answer, at))) = (cheap, &self.last) {
            if known == Some(*answer) && at.elapsed() < FULL_CHECK_EVERY {
                if let Some(now) = store.head_anchor() {
                    if now == *anchor {
                        return Ok(*answer);
                    }
                }
            }
        }
        // Read before the state, so the anchor kept is never newer than the answer.
        let anchor = if cheap { store.head_anchor() } else { None };
        self.last = None;
        let n = current_target(store, reference, known)?;
        if let Some(anchor) = anchor {
            self.last = Some((anchor, n, Instant::now()));
        }
        Ok(n)
    }

    /// Forgets the last answer, so the next check reads the state in full.
    pub fn forget(&mut self) {
        self.last = None;
    }
}

/// Loads version `n`, validates the model file completely and replays its probes.
pub fn load_served(store: &Store, n: u64, generation: u64) -> Result<Served> {
    let started = Instant::now();
    let (manifest, bytes, forest) = store.read_verified_model(&Ref::Number(n))?;
    // The server answers one label per row: a multi-output model is refused before it serves.
    forest.require_single_output(&format!("serving version {n}"))?;
    Ok(Served {
        manifest,
        forest,
        bytes: bytes.into(),
        generation,
        loaded_at: SystemTime::now(),
        load_time: started.elapsed(),
    })
}
