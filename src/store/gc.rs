//! `gc()`: removes debris and the blobs of deleted versions, never anything in use.
//!
//! What goes: temp files of interrupted writes and blobs that no live version references (a
//! version is live unless the current state lists it as deleted, see `events.rs`; the active
//! version and alias targets are never deleted, so their blobs are always referenced). If any
//! manifest cannot be read, gc does not collect blobs at all: it cannot know what that version
//! needs.
//!
//! **With a writer lock (a local directory)** gc holds the lock, and so does every save from
//! its first blob write to its event, so gc sees each save either not begun or committed.
//! Unreferenced blobs older than the grace period (default an hour, by the filesystem's own
//! modification times) go in one run; a save that reuses an existing blob touches it, so even a
//! zero grace period is safe for writers that take the lock.
//!
//! **Without a lock (object storage)** a save can run between gc's listing and its delete, so
//! gc sweeps in two phases:
//! 1. *Mark*: a run that finds an unreferenced blob creates `gc/<digest>`.
//! 2. *Sweep*: a later run deletes a blob only if it is still unreferenced (by a listing taken
//!    in that run), its mark still exists, and the mark is at least the grace period old.
//!    Ages come from the service's timestamps only: each run first rewrites `gc/clock`, and a
//!    mark's age is the clock's last-modified time minus the mark's, both from one listing
//!    (so the gc host's clock cancels out; should the host run behind the service, the ages
//!    come out smaller, never larger).
//! 3. A save treats a marked blob as absent: it removes the mark, then writes the bytes again
//!    (see `Store::put_blob`), so a sweep that has not yet checked the mark leaves the blob.
//! 4. The remaining window (the save lands between gc's mark check and its delete) is closed
//!    twice: gc keeps the bytes it deletes, re-lists the manifests afterwards and restores
//!    every blob that became referenced; and a save re-checks its blobs after committing its
//!    manifest and writes any that is gone. Whichever of the two comes later sees the other.
//!
//! A dry run takes no lock and writes nothing (not even the clock), so it works on a read-only
//! store; on object storage it measures mark ages against the previous run's clock.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::error::Result;
use crate::store::backend::Entry;
use crate::store::layout::{Digest, Dir, Key};
use crate::store::names::version_name;
use crate::store::store::{Listing, Store};
use crate::store::sysinfo::Actor;

/// One thing gc removed (or would remove).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GcItem {
    /// Path relative to the store root.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Why it goes.
    pub reason: String,
}

/// The result of [`Store::gc`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// What was (or would be) removed.
    pub removed: Vec<GcItem>,
    /// Bytes freed (or that would be).
    pub bytes_freed: u64,
    /// Debris kept because it is younger than the grace period (or, on object storage, marked
    /// too recently).
    pub kept_recent: u64,
    /// Unreferenced blobs marked by this run (object storage): a later run may delete them.
    pub marked: u64,
    /// Blobs deleted by this run and written back because a save committed a version that
    /// references them meanwhile (object storage).
    pub restored: Vec<String>,
    /// Repairs made (or that would be).
    pub repaired: Vec<String>,
    /// Why some collection was skipped, if it was.
    pub skipped: Vec<String>,
}

impl Store {
    /// Whether the backend has no writer lock (object storage), so gc must sweep in two phases.
    ///
    /// Every backend located by a URL (`s3://bucket/prefix`) is object storage, every local one
    /// by a path (a path such as `/data/a://b` has no plain scheme before its `://`). The
    /// `Backend` trait has no method that says whether `lock` excludes anything; this is the one
    /// place that decides it.
    pub(crate) fn lock_free_backend(&self) -> bool {
        let location = self.backend.location();
        location.split_once("://").is_some_and(|(scheme, _)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        })
    }

    /// Collects garbage older than `grace_seconds`; with `dry_run`, only reports (taking no
    /// lock and writing nothing, so it works on a read-only store).
    pub fn gc(&self, dry_run: bool, grace_seconds: f64) -> Result<GcReport> {
        let mut report = GcReport {
            dry_run,
            ..Default::default()
        };
        let _lock = if dry_run {
            None
        } else {
            Some(self.backend.lock()?)
        };

        for e in self.backend.list(Dir::Tmp)? {
            let Some(key) = Key::from_listing(Dir::Tmp, &e.name) else {
                continue;
            };
            self.collect(&mut report, &key, &e, grace_seconds, "temporary file")?;
        }

        let listing = self.listing()?;
        let Some(referenced) = self.referenced_blobs(&listing, Some(&mut report)) else {
            return Ok(report);
        };
        if self.lock_free_backend() {
            self.mark_and_sweep(&mut report, &referenced, grace_seconds)?;
        } else {
            for e in self.backend.list(Dir::Blobs)? {
                let Some(key @ Key::Blob(_)) = Key::from_listing(Dir::Blobs, &e.name) else {
                    continue;
                };
                if referenced.contains(&e.name) {
                    continue;
                }
                self.collect(
                    &mut report,
                    &key,
                    &e,
                    grace_seconds,
                    "no live version references it",
                )?;
            }
        }
        Ok(report)
    }

    /// The digests every live version of `listing` references, or `None` (with the reason in
    /// the report) if a manifest cannot be read.
    fn referenced_blobs(
        &self,
        listing: &Listing,
        mut report: Option<&mut GcReport>,
    ) -> Option<HashSet<String>> {
        let mut referenced = HashSet::new();
        let mut readable = true;
        for n in listing.live() {
            match self.manifest(n) {
                Ok(m) => {
                    referenced.insert(m.blob.digest.clone());
                    referenced.insert(m.probes.digest.clone());
                }
                Err(e) => {
                    readable = false;
                    if let Some(r) = report.as_deref_mut() {
                        r.skipped.push(format!(
                            "blobs not collected: {} is unreadable ({e})",
                            version_name(n)
                        ));
                    }
                }
            }
        }
        readable.then_some(referenced)
    }

    /// The two-phase sweep of object storage (see the module docs).
    fn mark_and_sweep(
        &self,
        report: &mut GcReport,
        referenced: &HashSet<String>,
        grace_seconds: f64,
    ) -> Result<()> {
        let b = &*self.backend;
        if !report.dry_run {
            let clock = json!({"gc": Actor::now().time}).to_string();
            b.replace(&Key::GcClock, clock.as_bytes())?;
        }
        let entries = b.list(Dir::Gc)?;
        let clock_age = entries
            .iter()
            .find(|e| Key::from_listing(Dir::Gc, &e.name) == Some(Key::GcClock))
            .and_then(|e| e.age_seconds);
        // Mark digest -> age on the service's clock (None: unknown, never old enough).
        let marks: HashMap<String, Option<f64>> = entries
            .iter()
            .filter(|e| matches!(Key::from_listing(Dir::Gc, &e.name), Some(Key::GcMark(_))))
            .map(|e| {
                let age = match (e.age_seconds, clock_age) {
                    (Some(m), Some(c)) => Some((m - c).max(0.0)),
                    _ => None,
                };
                (e.name.clone(), age)
            })
            .collect();

        let blobs = b.list(Dir::Blobs)?;
        let present: HashSet<&str> = blobs.iter().map(|e| e.name.as_str()).collect();
        let mut due = Vec::new();
        for e in &blobs {
            let Some(Key::Blob(d)) = Key::from_listing(Dir::Blobs, &e.name) else {
                continue;
            };
            if referenced.contains(&e.name) {
                continue;
            }
            match marks.get(&e.name) {
                None => {
                    if !report.dry_run {
                        let doc = json!({"digest": e.name, "size": e.size}).to_string();
                        b.create_new(&Key::GcMark(d), doc.as_bytes())?;
                    }
                    report.marked += 1;
                }
                Some(Some(age)) if *age >= grace_seconds => due.push((d, e.clone())),
                Some(_) => report.kept_recent += 1,
            }
        }
        if report.dry_run {
            for (d, e) in due {
                report.bytes_freed += e.size;
                report.removed.push(GcItem {
                    path: Key::Blob(d).path(),
                    bytes: e.size,
                    reason: "no live version references it (marked by an earlier gc)".into(),
                });
            }
            return Ok(());
        }
        // Marks of blobs that are referenced again, or gone, mean nothing any more.
        for name in marks.keys() {
            if referenced.contains(name) || !present.contains(name.as_str()) {
                if let Ok(d) = Digest::parse(name) {
                    b.remove(&Key::GcMark(d))?;
                }
            }
        }

        pause::point("sweep");
        let mut deleted = Vec::new();
        for (d, e) in due {
            // A save that reuses the blob removes its mark first: then it is not garbage.
            if !b.exists(&Key::GcMark(d.clone()))? {
                report.kept_recent += 1;
                continue;
            }
            let Some(bytes) = b.read(&Key::Blob(d.clone()), e.size)? else {
                b.remove(&Key::GcMark(d))?;
                continue;
            };
            pause::point("delete");
            if b.remove(&Key::Blob(d.clone()))? {
                deleted.push((d, bytes));
            }
        }
        if deleted.is_empty() {
            return Ok(());
        }
        // A save may have committed a version referencing a blob between the mark check and
        // the delete: re-list and write back what is referenced now. If a manifest cannot be
        // read, everything deleted goes back (nothing can be known about that version).
        let now = self.listing()?;
        let still = self.referenced_blobs(&now, None);
        for (d, bytes) in deleted {
            let path = Key::Blob(d.clone()).path();
            if still.as_ref().is_none_or(|r| r.contains(d.as_str())) {
                b.create_new(&Key::Blob(d.clone()), &bytes)?;
                report.restored.push(path);
            } else {
                report.bytes_freed += bytes.len() as u64;
                report.removed.push(GcItem {
                    path,
                    bytes: bytes.len() as u64,
                    reason: "no live version references it (marked by an earlier gc)".into(),
                });
            }
            b.remove(&Key::GcMark(d))?;
        }
        Ok(())
    }

    /// Removes one unreferenced entry (or, in a dry run, only reports it) once it is older than
    /// the grace period; a younger one is counted as kept.
    fn collect(
        &self,
        report: &mut GcReport,
        key: &Key,
        entry: &Entry,
        grace_seconds: f64,
        reason: &str,
    ) -> Result<()> {
        if !entry.age_seconds.is_some_and(|a| a >= grace_seconds) {
            report.kept_recent += 1;
            return Ok(());
        }
        if report.dry_run || self.backend.remove(key)? {
            report.bytes_freed += entry.size;
            report.removed.push(GcItem {
                path: key.path(),
                bytes: entry.size,
                reason: reason.into(),
            });
        }
        Ok(())
    }
}

/// A test hook that stops gc at a named point (`"sweep"`: marks decided, nothing deleted yet;
/// `"delete"`: the mark of one blob checked, the blob about to be deleted) until released, so
/// a test can run a concurrent save at exactly that moment. Process-wide and one-shot; while
/// disarmed it costs one uncontended mutex lock per point.
pub mod pause {
    use super::*;

    #[derive(Default)]
    struct Gate {
        armed: Option<String>,
        paused: bool,
        released: bool,
    }

    static GATE: Mutex<Gate> = Mutex::new(Gate {
        armed: None,
        paused: false,
        released: false,
    });
    static SIGNAL: Condvar = Condvar::new();

    fn gate() -> std::sync::MutexGuard<'static, Gate> {
        GATE.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms the hook: the next gc to reach `stage` stops there.
    pub fn arm(stage: &str) {
        *gate() = Gate {
            armed: Some(stage.to_string()),
            ..Gate::default()
        };
    }

    /// Waits until a gc stopped at the armed point; false on timeout.
    pub fn wait_paused(timeout: Duration) -> bool {
        let g = gate();
        let (g, _) = SIGNAL
            .wait_timeout_while(g, timeout, |g| !g.paused)
            .unwrap_or_else(|p| p.into_inner());
        g.paused
    }

    /// Lets the stopped gc go on (and disarms the hook).
    pub fn release() {
        let mut g = gate();
        g.released = true;
        g.armed = None;
        SIGNAL.notify_all();
    }

    /// Called by gc at each point; stops (at most 60 s) if armed for it.
    pub(crate) fn point(stage: &str) {
        let mut g = gate();
        if g.armed.as_deref() != Some(stage) || g.paused {
            return;
        }
        g.paused = true;
        SIGNAL.notify_all();
        let _ = SIGNAL
            .wait_timeout_while(g, Duration::from_secs(60), |g| !g.released)
            .unwrap_or_else(|p| p.into_inner());
    }
}
