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
//! The commit protocol needs only what both a local filesystem and object storage (S3 with
//! `If-None-Match: *`, GCS, Azure) provide: read a whole object, create one only if it does not
//! exist yet, replace one atomically, list a prefix, delete. Everything above this trait is
//! written against it, so an `object_store`-based backend is one more implementation (see the
//! notes on [`Backend::create_new`] and [`Backend::lock`] for what it must honour).

use std::fmt;

pub mod faults;
pub mod local;
#[cfg(feature = "s3")]
pub mod object;
pub mod open;
#[cfg(feature = "s3")]
pub mod s3config;

use crate::error::Result;
use crate::store::layout::{Dir, Key};

/// A directory entry, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The file name inside its directory (not a full path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Seconds since the entry was last modified, if known; gc's grace period uses it.
    pub age_seconds: Option<f64>,
}

/// Held while a writer holds the advisory lock; dropping it releases the lock.
pub type LockGuard = Box<dyn std::any::Any + Send>;

/// The storage operations the store protocol is built from.
pub trait Backend: Send + Sync + fmt::Debug {
    /// A human-readable location (a path or URL) for messages.
    fn location(&self) -> String;

    /// The names at the root of the store (to recognise an empty or foreign directory).
    fn list_root(&self) -> Result<Vec<String>>;

    /// Creates the directories the layout needs (a no-op for object storage).
    fn ensure_dirs(&self) -> Result<()>;

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

    /// Lists a directory.
    fn list(&self, dir: Dir) -> Result<Vec<Entry>>;

    /// Takes the advisory writer lock, waiting for it. It only saves writers from retrying; the
    /// create-only writes are what make concurrent use correct (gc also relies on its grace
    /// period). A backend without locks (object storage) returns a guard that holds nothing.
    fn lock(&self) -> Result<LockGuard>;
}
