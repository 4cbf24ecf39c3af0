//! The storage layer: the small trait a store runs on, and its implementations.
//!
//! - [`local`]: a local directory (temp + fsync + hard link, rename, dir fsync, `File::lock`).
//! - [`object`] / [`s3config`]: S3-compatible object storage through the `object_store` crate
//!   (`If-None-Match: *` puts, no lock), and its URL and options.
//! - [`open`]: picking a backend from a location (`s3://bucket/prefix` or a directory).
//! - [`faults`]: the test-only switch that fails or crashes at the N-th I/O step.
//!
//! Nothing here knows about versions, events or models: the layer above (`crate::store`) builds
//! its commit protocol from these operations and the typed keys of `layout`.
//!
//! Adding a backend: implement [`Backend`] (create-only writes that appear whole and are durable
//! when they return, atomic replacement, canonical-name listings through [`is_canonical`], a
//! [`Backend::head`] with the storage's own clock), route every I/O call through
//! [`faults::step`] with a name (`read_*` for reads), and pick it in [`open::backend_for`].
//!
//! The commit protocol needs only what both a local filesystem and object storage (S3 with
//! `If-None-Match: *`, GCS, Azure) provide: read a whole object, create one only if it does not
//! exist yet, replace one atomically, list a prefix, delete. Everything above this trait is
//! written against it, so an `object_store`-based backend is one more implementation (see the
//! notes on [`Backend::create_new`] and [`Backend::lock`] for what it must honour).

use std::fmt;
use std::time::SystemTime;

pub mod faults;
pub mod local;
#[cfg(feature = "s3")]
pub mod object;
pub mod open;
#[cfg(feature = "s3")]
pub mod s3config;

use crate::error::Result;
use crate::store::layout::{Dir, Key};

/// A directory entry, as listed. Listings hold only canonical record names (see
/// [`is_canonical`]): a stray `7.json` beside `0000000007.json`, an editor's backup or a foreign
/// file is not in them.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The file name inside its directory (not a full path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Seconds since the entry was last modified, if known; gc's grace period uses it. On object
    /// storage this compares the service's clock with ours (never negative); prefer
    /// [`Entry::last_modified`] and [`Entry::etag`] to decide whether something changed.
    pub age_seconds: Option<f64>,
    /// When it was last modified, by the clock of whoever stores it (the service's, on S3).
    pub last_modified: Option<SystemTime>,
    /// An identifier that changes whenever the object is rewritten, as [`ObjectMeta::etag`].
    pub etag: Option<String>,
}

/// What the storage knows about one record without reading it ([`Backend::head`]).
///
/// Two-phase gc compares the meta recorded at its mark with the meta at its sweep: a blob that
/// a save re-`PUT` (or touched) in between has a newer `last_modified` even though its bytes,
/// and so on S3 its `etag` (an MD5 of them), are the same. Compare with [`ObjectMeta::same_object`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// Last modification, by the storage's clock: the service's on S3 (never the gc host's),
    /// the file's mtime locally (a touch moves it).
    pub last_modified: Option<SystemTime>,
    /// The service's `ETag` on S3; locally `<dev>:<inode>:<mtime ns>:<size>`, which changes
    /// when the file is replaced or touched.
    pub etag: Option<String>,
    /// The object version on a versioned bucket, if the service reports one.
    pub version: Option<String>,
}

impl ObjectMeta {
    /// Whether `self` and `other` describe the same write of an object: same size, same
    /// modification time, and same etag and version where both are known.
    pub fn same_object(&self, other: &ObjectMeta) -> bool {
        fn agree(a: &Option<String>, b: &Option<String>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
        }
        self.size == other.size
            && self.last_modified == other.last_modified
            && agree(&self.etag, &other.etag)
            && agree(&self.version, &other.version)
    }
}

/// What [`Backend::remove_if_unchanged`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// It matched the expected meta and is gone.
    Removed,
    /// It was already gone.
    Absent,
    /// It changed since the expected meta was taken (a save reused it): left in place.
    Changed(ObjectMeta),
}

/// Held while a writer holds the advisory lock; dropping it releases the lock.
pub type LockGuard = Box<dyn std::any::Any + Send>;

/// The answer of [`Backend::lock_or_read_only`].
pub enum WriterLock {
    /// The writer lock is held (or, on a backend without locks, nothing needs holding).
    Held(LockGuard),
    /// This process cannot write to the store (a read-only mount, a directory it may not
    /// write): no lock is held, and nothing may be written. `reason` says why, for messages.
    ReadOnly {
        /// Why, e.g. "cannot create LOCK in /srv/models: Read-only file system".
        reason: String,
    },
}

impl fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriterLock::Held(_) => f.write_str("Held"),
            WriterLock::ReadOnly { reason } => {
                f.debug_struct("ReadOnly").field("reason", reason).finish()
            }
        }
    }
}

/// Whether `name`, found by listing `dir`, is a record's canonical name: it parses as a key of
/// that directory and the key renders back to exactly this name. `7.json` and `07.json` parse as
/// version 7 but are not `0000000007.json`; listings drop them so that a stray copy neither
/// shows up twice nor sends a reader to a file that does not exist.
pub fn is_canonical(dir: Dir, name: &str) -> bool {
    Key::from_listing(dir, name).is_some_and(|key| {
        key.path()
            .strip_prefix(dir.name())
            .and_then(|rest| rest.strip_prefix('/'))
            == Some(name)
    })
}

/// The storage operations the store protocol is built from.
pub trait Backend: Send + Sync + fmt::Debug {
    /// A human-readable location (a path or URL) for messages.
    fn location(&self) -> String;

    /// The names at the root of the store (to recognise an empty or foreign directory).
    fn list_root(&self) -> Result<Vec<String>>;

    /// Creates the directories the layout needs (a no-op for object storage).
    fn ensure_dirs(&self) -> Result<()>;

    /// Creates one directory outside [`Dir::ALL`] on first use (e.g. `guard/`, which stores
    /// made before it existed lack); a no-op where prefixes need no creating.
    fn ensure_dir(&self, dir: Dir) -> Result<()> {
        let _ = dir;
        Ok(())
    }

    /// Reads a whole record, or `None` if it does not exist. Records larger than `max_len`
    /// bytes are refused with `CorruptModel` before anything is allocated for them.
    fn read(&self, key: &Key, max_len: u64) -> Result<Option<Vec<u8>>>;

    /// Whether a record exists.
    fn exists(&self, key: &Key) -> Result<bool>;

    /// Creates a record only if it does not exist yet: returns `true` if this call created it and
    /// `false` if it was already there (whoever wrote it won). The record must appear whole or
    /// not at all, and be durable when this returns. Locally: temp file, fsync, hard link, fsync
    /// of the directory. On S3: `PUT` with `If-None-Match: *` (a 412 means `false`).
    fn create_new(&self, key: &Key, bytes: &[u8]) -> Result<bool>;

    /// Replaces (or creates) a record atomically: readers see the old bytes or the new ones.
    fn replace(&self, key: &Key, bytes: &[u8]) -> Result<()>;

    /// Removes a record; returns whether it existed.
    fn remove(&self, key: &Key) -> Result<bool>;

    /// Marks a record as freshly used (its modification time becomes now), so that gc's grace
    /// period protects a blob that a save is about to reference again.
    fn touch(&self, key: &Key) -> Result<()>;

    /// Lists a directory: canonical record names only ([`is_canonical`]), sorted.
    fn list(&self, dir: Dir) -> Result<Vec<Entry>>;

    /// What the storage knows about a record without reading it, `None` if it does not exist.
    /// Both backends implement it; the default (for test wrappers) says it is unsupported.
    fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        Err(crate::error::WoodlotError::Store(format!(
            "{}: this storage backend does not report object metadata ({key})",
            self.location()
        )))
    }

    /// Removes a record only if it is still the write `expected` describes
    /// ([`ObjectMeta::same_object`]); for two-phase gc, whose sweep must not delete a blob a save
    /// refreshed after the mark. Neither backend can make this one atomic step (object storage
    /// has no conditional `DELETE` in `object_store`, and a local rename-and-check would race
    /// a touch the same way), so it is a `HEAD`, a comparison and a `DELETE`: the window is one
    /// round trip, which the protocol above must tolerate (locally the writer lock closes it).
    fn remove_if_unchanged(&self, key: &Key, expected: &ObjectMeta) -> Result<Removal> {
        match self.head(key)? {
            None => Ok(Removal::Absent),
            Some(now) if !now.same_object(expected) => Ok(Removal::Changed(now)),
            Some(_) => Ok(if self.remove(key)? {
                Removal::Removed
            } else {
                Removal::Absent
            }),
        }
    }

    /// Takes the advisory writer lock, waiting for it. It only saves writers from retrying; the
    /// create-only writes are what make concurrent use correct (gc also relies on its grace
    /// period). A backend without locks (object storage) returns a guard that holds nothing.
    fn lock(&self) -> Result<LockGuard>;

    /// Takes the writer lock if this process can write to the store, and otherwise says that
    /// the store is read-only for it instead of failing: for operations that only read but
    /// would like to exclude writers while they look (`gc(dry_run=True)`, reads on a read-only
    /// mount). Errors are other failures (I/O errors, a `LOCK` that is not a regular file).
    fn lock_or_read_only(&self) -> Result<WriterLock> {
        self.lock().map(WriterLock::Held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_names_that_render_back_exactly_are_canonical() {
        let d = "a".repeat(64);
        for (dir, name) in [
            (Dir::Versions, "0000000007.json"),
            (Dir::Versions, "0000000007.deleted"),
            (Dir::Versions, "18446744073709551615.json"),
            (Dir::Events, "000000000012.json"),
            (Dir::Blobs, d.as_str()),
            (Dir::Tmp, "123-456-7.tmp"),
        ] {
            assert!(is_canonical(dir, name), "{name}");
        }
        for (dir, name) in [
            (Dir::Versions, "7.json"),
            (Dir::Versions, "07.json"),
            (Dir::Versions, "00000000007.json"),
            (Dir::Versions, "0000000007.json.bak"),
            (Dir::Events, "12.json"),
            (Dir::Events, "0000000012.json"),
            (Dir::Blobs, "A"),
            (Dir::Tmp, ".."),
        ] {
            assert!(!is_canonical(dir, name), "{name}");
        }
    }

    #[test]
    fn same_object_needs_the_same_write() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let m = ObjectMeta {
            size: 3,
            last_modified: Some(t),
            etag: Some("e".into()),
            version: None,
        };
        assert!(m.same_object(&m.clone()));
        let rewritten = ObjectMeta {
            last_modified: Some(t + Duration::from_millis(1)),
            ..m.clone()
        };
        assert!(!m.same_object(&rewritten), "same bytes, later PUT");
        let other = ObjectMeta {
            etag: Some("f".into()),
            ..m.clone()
        };
        assert!(!m.same_object(&other));
        let unknown = ObjectMeta {
            etag: None,
            ..m.clone()
        };
        assert!(m.same_object(&unknown), "an unknown etag does not decide");
    }
}
