//! `gc()`: removes debris and the blobs of deleted versions, never anything in use.
//!
//! What goes: temp files of interrupted writes and blobs no live version references, each only
//! once it is older than the grace period (default an hour), so a save in flight in another
//! process, which writes its blobs before its manifest, is never robbed. gc also holds the
//! writer lock, and a save that reuses an existing blob touches it, so locally even a zero grace
//! period is safe; the grace period is what protects stores without locks (object storage).
//! If any manifest cannot be read, gc does not collect blobs at all: it cannot know what that
//! version needs. It also writes tombstones that an interrupted delete left out.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::Result;
use crate::store::backend::Entry;
use crate::store::events::{self, EventKind};
use crate::store::layout::{Dir, Key};
use crate::store::names::version_name;
use crate::store::store::Store;

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
    /// Debris kept because it is younger than the grace period.
    pub kept_recent: u64,
    /// Repairs made (or that would be).
    pub repaired: Vec<String>,
    /// Why some collection was skipped, if it was.
    pub skipped: Vec<String>,
}

impl Store {
    /// Collects garbage older than `grace_seconds`; with `dry_run`, only reports.
    pub fn gc(&self, dry_run: bool, grace_seconds: f64) -> Result<GcReport> {
        let mut report = GcReport {
            dry_run,
            ..Default::default()
        };
        let _lock = self.backend.lock()?;

        for e in self.backend.list(Dir::Tmp)? {
            let Some(key) = Key::from_listing(Dir::Tmp, &e.name) else {
                continue;
            };
            self.collect(&mut report, &key, &e, grace_seconds, "temporary file")?;
        }

        let listing = self.listing()?;
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
                    report.skipped.push(format!(
                        "blobs not collected: {} is unreadable ({e})",
                        version_name(n)
                    ));
                }
            }
        }
        if readable {
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

        for ev in events::all(&*self.backend)? {
            if ev.kind == EventKind::Delete {
                if let Some(v) = ev.version {
                    if !listing.deleted.contains(&v) {
                        if !dry_run {
                            self.write_tombstone(v, ev.seq)?;
                        }
                        report.repaired.push(format!(
                            "wrote the missing tombstone of {}",
                            version_name(v)
                        ));
                    }
                }
            }
        }
        Ok(report)
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
