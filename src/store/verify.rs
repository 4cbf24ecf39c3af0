//! `verify()`: checks every version and the whole history, and says what is wrong.
//!
//! Problems are things that lose or misstate data: a manifest that does not parse, a blob that
//! is missing or does not match its digest, a model that fails validation or no longer replays
//! its probes, a gap or a broken hash link in the history, state that names a version that does
//! not exist, an active or aliased version that is deleted, and an `ACTIVE` anchor that points
//! past the end of the history or disagrees with the event it names (a lost tail: reads and
//! writes refuse such a store until it is restored). Notes are the expected leftovers of
//! interrupted writes (temp files, unreferenced blobs, a version whose save event was never
//! written, an unreadable anchor): they harm nothing, and gc cleans up what can be cleaned.
//!
//! verify never needs the head to be sound: it reads the history file by file, so it can say
//! what is wrong with a store that reads refuse.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::store::events::{self, EventKind};
use crate::store::layout::{Dir, Key};
use crate::store::names::version_name;
use crate::store::store::Store;

/// One problem found by [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// What it concerns: `v3`, `event 12`, `store`.
    pub subject: String,
    /// What is wrong.
    pub message: String,
}

/// The result of [`Store::verify`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// No problems were found.
    pub ok: bool,
    /// Live versions fully checked (blob digest, model validation, probe replay).
    pub versions_checked: u64,
    /// Deleted versions seen (manifest checked only).
    pub versions_deleted: u64,
    /// Events checked.
    pub events_checked: u64,
    /// What is wrong.
    pub problems: Vec<Problem>,
    /// Harmless leftovers worth knowing about.
    pub notes: Vec<String>,
}

impl Store {
    /// Checks every version and event.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut r = VerifyReport::default();
        let problem = |r: &mut VerifyReport, subject: String, message: String| {
            r.problems.push(Problem { subject, message });
        };
        let seqs = events::list(&*self.backend)?;
        // The state of the newest listed event (not `head`, which refuses a damaged chain).
        let listed_state = match seqs.last() {
            Some(&last) => match events::read(&*self.backend, last) {
                Ok(Some((ev, _))) => ev.state,
                _ => Default::default(),
            },
            None => Default::default(),
        };
        let listing = self.listing_in(&listed_state)?;
        let manifests: BTreeSet<u64> = listing.manifests.iter().copied().collect();
        let mut referenced = HashSet::new();
        for &n in &listing.manifests {
            let m = match self.manifest(n) {
                Ok(m) => m,
                Err(e) => {
                    problem(&mut r, version_name(n), e.to_string());
                    continue;
                }
            };
            if listing.deleted.contains(&n) {
                r.versions_deleted += 1;
                continue;
            }
            referenced.insert(m.blob.digest.clone());
            referenced.insert(m.probes.digest.clone());
            r.versions_checked += 1;
            let checked = self
                .read_blob(n, &m.blob, "model")
                .and_then(|bytes| self.check_model(&m, &bytes));
            if let Err(e) = checked {
                problem(&mut r, version_name(n), e.to_string());
            }
        }
        for &n in &listing.deleted {
            if !manifests.contains(&n) {
                problem(
                    &mut r,
                    version_name(n),
                    "a tombstone without a manifest".into(),
                );
            }
        }

        let mut saved = HashSet::new();
        let mut digests: HashMap<u64, String> = HashMap::new();
        let mut deleted_by_event = BTreeSet::new();
        let mut prev_digest: Option<String> = None;
        let mut last_state = None;
        for (i, &seq) in seqs.iter().enumerate() {
            let subject = format!("event {seq}");
            if seq != i as u64 + 1 && (i == 0 || seqs[i - 1] + 1 != seq) {
                problem(
                    &mut r,
                    subject.clone(),
                    format!("events before {seq} are missing"),
                );
                prev_digest = None;
            }
            r.events_checked += 1;
            let (ev, digest) = match events::read(&*self.backend, seq) {
                Ok(Some(x)) => x,
                Ok(None) => continue,
                Err(e) => {
                    problem(&mut r, subject, e.to_string());
                    prev_digest = None;
                    continue;
                }
            };
            if seq > 1 && prev_digest.is_some() && ev.prev != prev_digest {
                problem(
                    &mut r,
                    subject.clone(),
                    "its link to the previous event does not match (edited history?)".into(),
                );
            }
            if seq == 1 && ev.prev.is_some() {
                problem(
                    &mut r,
                    subject.clone(),
                    "the first event links to a predecessor".into(),
                );
            }
            digests.insert(seq, digest.clone());
            prev_digest = Some(digest);
            let mut named: Vec<u64> = ev.version.into_iter().collect();
            named.extend(ev.state.active);
            named.extend(ev.state.aliases.values().copied());
            named.extend(ev.state.deleted.iter().copied());
            for v in named {
                if !manifests.contains(&v) {
                    problem(
                        &mut r,
                        subject.clone(),
                        format!("it names {}, which has no manifest", version_name(v)),
                    );
                }
            }
            match ev.kind {
                EventKind::Save => {
                    saved.extend(ev.version);
                }
                EventKind::Delete => {
                    deleted_by_event.extend(ev.version);
                }
                EventKind::Unknown => r
                    .notes
                    .push(format!("{subject} has a kind this woodlot does not know")),
                _ => {}
            }
            last_state = Some(ev.state);
        }
        if let Some(s) = &last_state {
            if let Some(a) = s.active {
                if listing.deleted.contains(&a) {
                    problem(
                        &mut r,
                        "store".into(),
                        format!("the active version {} is deleted", version_name(a)),
                    );
                }
            }
            for (alias, v) in &s.aliases {
                if listing.deleted.contains(v) {
                    problem(
                        &mut r,
                        "store".into(),
                        format!(
                            "alias {alias:?} points at {}, which is deleted",
                            version_name(*v)
                        ),
                    );
                }
            }
        }
        let last_seq = seqs.last().copied().unwrap_or(0);
        match events::read_anchor(&*self.backend)? {
            Some(a) if a.seq > last_seq => problem(
                &mut r,
                "ACTIVE".into(),
                format!(
                    "it anchors event {} but the history ends at event {last_seq}: events were \
                     lost (a truncated sync or restore?); reads and writes refuse the store until \
                     events/ is restored (or ACTIVE removed to accept the loss)",
                    a.seq
                ),
            ),
            Some(a) => {
                if let (Some(want), Some(have)) = (&a.digest, digests.get(&a.seq)) {
                    if want != have {
                        problem(
                            &mut r,
                            "ACTIVE".into(),
                            format!(
                                "it anchors event {} with BLAKE3 {want}, but that event's file has \
                                 {have} (the history was replaced or edited)",
                                a.seq
                            ),
                        );
                    }
                }
            }
            None => {
                if last_seq > 0 && self.backend.exists(&Key::Hint)? {
                    r.notes.push(
                        "ACTIVE is unreadable; the head is found from a listing (the next write \
                         rewrites it)"
                            .into(),
                    );
                }
            }
        }
        for &n in &listing.manifests {
            if !saved.contains(&n) {
                r.notes.push(format!(
                    "{} has no save event (a save was interrupted after its commit point; the version is complete)",
                    version_name(n)
                ));
            }
        }
        for n in deleted_by_event.difference(&listing.deleted) {
            r.notes.push(format!(
                "{} has a delete event but is not deleted (a delete by an older woodlot that was \
                 interrupted before its tombstone); it stays live: delete it again",
                version_name(*n)
            ));
        }
        let temps = self.backend.list(Dir::Tmp)?.len();
        if temps > 0 {
            r.notes.push(format!(
                "{temps} temporary file(s) from interrupted writes (gc removes them)"
            ));
        }
        let unreferenced = self
            .backend
            .list(Dir::Blobs)?
            .iter()
            .filter(|e| matches!(Key::from_listing(Dir::Blobs, &e.name), Some(Key::Blob(_))))
            .filter(|e| !referenced.contains(&e.name))
            .count();
        if unreferenced > 0 {
            r.notes.push(format!(
                "{unreferenced} unreferenced blob(s) (gc removes them after the grace period)"
            ));
        }
        r.ok = r.problems.is_empty();
        Ok(r)
    }
}
